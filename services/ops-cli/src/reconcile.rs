//! `lockbridge reconcile [--dry-run]`: one drift pass now (lock-provisioner's drift/), as each
//! provisioner runs one every `reconcile.interval`, and what it found and did. It calls
//! RemoteLock with the stored authorization, as the services do.

use std::io::Write;

use anyhow::{Context, bail};
use lock_provisioner::drift::{DriftPass, Mode};
use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_sealing::pins::PinKeySettings;
use serde::Deserialize;

/// What the pass needs: RemoteLock access and the PIN key (to compare PINs).
#[derive(Deserialize)]
struct ReconcileSections {
    remotelock: RemoteLockSettings,
    pins: PinKeySettings,
}

pub(crate) async fn run(dry_run: bool, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let settings = crate::settings::<ReconcileSections>()?;
    let ReconcileSections { remotelock, pins } = &settings.own;
    let [client_secret, token_key] = remotelock.credentials();
    let [pin_key] = pins.credentials();
    settings.require(&[client_secret, token_key, pin_key])?;
    let pool = crate::connect(&settings).await?;
    let pass = DriftPass {
        client: crate::remotelock(pool.clone(), remotelock)?,
        sealer: pins.sealer()?,
        pool,
    };
    let mode = if dry_run { Mode::DryRun } else { Mode::Repair };
    let Some(report) = pass
        .run_exclusive(mode)
        .await
        .context("the drift pass failed")?
    else {
        bail!(
            "another drift pass is running (a provisioner's, or another command's); try again once it is done"
        );
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.booking_id.to_string(),
                f.guest_id.to_string(),
                f.kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                f.outcome.as_str().to_owned(),
            ]
        })
        .collect();
    crate::table(out, &["BOOKING", "GUEST", "DRIFT", "OUTCOME"], &rows)?;
    let done = if dry_run {
        "dry run: nothing was changed"
    } else {
        "repairs queued, the rest reported"
    };
    writeln!(
        out,
        "{} guests checked, {} drifted; {done}",
        report.checked,
        report.findings.len()
    )?;
    Ok(())
}
