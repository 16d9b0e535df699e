//! `lockbridge retention run [--dry-run]`: one retention pass now (crates/retention), as the
//! admin runs one every `retention.interval`, and what it did per table.

use std::io::Write;

use anyhow::bail;
use clap::Subcommand;
use lockbridge_retention::{Mode, Sections, run_exclusive};
use serde::Serialize;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Purges the personal data of bookings that ended retention.days ago and prunes what
    /// retention.prune_after allows, now; prints the rows per table.
    Run {
        /// Counts what a run would do now, and changes nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Serialize)]
struct Answer<'a> {
    dry_run: bool,
    counts: &'a lockbridge_retention::Counts,
}

pub(crate) async fn run(
    Command::Run { dry_run }: Command,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let settings = crate::settings::<Sections>()?;
    let pool = crate::connect(&settings).await?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    let Some(counts) = run_exclusive(&pool, &settings.own.retention, mode).await? else {
        bail!(
            "another retention pass is running (an admin's, or another command's); try again once it is done"
        );
    };
    if json {
        serde_json::to_writer_pretty(
            &mut *out,
            &Answer {
                dry_run,
                counts: &counts,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = counts
        .iter()
        .map(|c| {
            vec![
                c.table.to_owned(),
                c.action.as_str().to_owned(),
                c.rows.to_string(),
            ]
        })
        .collect();
    crate::table(out, &["TABLE", "ACTION", "ROWS"], &rows)?;
    if dry_run {
        writeln!(
            out,
            "dry run: {} rows are due; nothing was changed",
            counts.total()
        )?;
    } else {
        writeln!(out, "{} rows purged or deleted", counts.total())?;
    }
    Ok(())
}
