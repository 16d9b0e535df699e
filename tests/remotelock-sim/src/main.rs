//! `remotelock-sim`: serves the simulator until SIGTERM or Ctrl-C.
//!
//! Settings come from `REMOTELOCK_SIM_*` variables (see README); `--listen ADDR` overrides
//! `REMOTELOCK_SIM_LISTEN`.

use std::process::ExitCode;

use remotelock_sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> ExitCode {
    sim_support::init_logging();

    let mut config = match SimConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("remotelock-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let listen = match arg.as_str() {
            "--listen" => args.next(),
            other => other.strip_prefix("--listen=").map(str::to_owned),
        };
        match listen.map(|addr| addr.parse()) {
            Some(Ok(addr)) => config.listen = addr,
            _ => {
                eprintln!("usage: remotelock-sim [--listen ADDR]  (bad argument {arg:?})");
                return ExitCode::FAILURE;
            }
        }
    }

    let handle = match Simulator::start(config.clone()).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("remotelock-sim: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let seed = handle.seed();
    println!("remotelock-sim listening on {}", handle.base_url());
    println!(
        "  oauth client_id={} client_secret={}",
        config.client_id, config.client_secret
    );
    println!("  account  {}", seed.account_id);
    for location in &seed.locations {
        println!(
            "  location {}  {} ({})",
            location.id, location.name, location.time_zone
        );
    }
    for lock in &seed.locks {
        println!(
            "  lock     {}  {}  battery {}%{}",
            lock.id,
            lock.name,
            lock.power_level,
            if lock.connected { "" } else { "  (offline)" }
        );
    }

    wait_for_stop_signal().await;
    tracing::info!("shutting down");
    handle.shutdown();
    ExitCode::SUCCESS
}

async fn wait_for_stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
