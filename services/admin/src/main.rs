use std::process::ExitCode;

use admin::cli::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        None => lockbridge_runtime::service::main::<admin::Application>().await,
        Some(command) => admin::cli::run(command).await,
    }
}
