//! `lockbridge`: the operators' command line. `main` only wires: parse, run, say how it went.

use std::process::ExitCode;

use clap::Parser;
use lockbridge_cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse(), &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lockbridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}
