//! `libcal-sim`: serves the simulator until SIGTERM or Ctrl-C. Settings come from
//! `LIBCAL_SIM_*` variables (see README).

use std::process::ExitCode;

use libcal_sim::{BinConfig, Simulator};
use lockbridge_runtime::shutdown;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    sim_support::init_logging();

    let BinConfig { sim: config, demo } = match BinConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("libcal-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match Simulator::start(config.clone()).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("libcal-sim: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("libcal-sim listening on {}", handle.base_url());
    println!("  client_id={}", config.client_id);
    if demo {
        // Demo runs get a random secret unless one was set; print it so it can be used.
        println!("  client_secret={}", config.client_secret);
        let demo = handle.load_demo();
        println!("  location {} (America/New_York)", demo.lid);
        println!("  category {}: rooms {:?}", demo.rooms_cid, demo.room_ids);
        println!("  seated space {}: seats {:?}", demo.hall_id, demo.seat_ids);
    }

    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone());
    stop.cancelled().await;
    handle.shutdown();
    ExitCode::SUCCESS
}
