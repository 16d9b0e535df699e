//! `lockbridge keys rotate`: brings every sealed value under the current keys, so the previous
//! ones can be dropped (docs/operations.md, "Rotating an encryption key").
//!
//! The order of a rotation: set the new key as `…encryption_key` and the old one as
//! `…previous_encryption_key` on every service and restart them (values sealed under either
//! key open), run this, then remove the previous key and restart again. Each table is walked in
//! batches, each batch one transaction holding its rows, so services keep running throughout.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use lockbridge_domain::Pin;
use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_runtime::configuration::Settings;
use lockbridge_sealing::{
    Sealer,
    pins::{PinKeySettings, PinSealer},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Reseals what the previous keys sealed (and seals PINs an older version stored in
    /// clear) under `pins.encryption_key` and `remotelock.token_encryption_key`. Reads the
    /// `[pins]` and `[remotelock]` sections, as the services do.
    Rotate {
        /// Count what would be resealed, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Deserialize)]
struct KeySections {
    pins: PinKeySettings,
    remotelock: RemoteLockSettings,
}

/// What one table held, and what became of it.
#[derive(Serialize, Default)]
struct Resealed {
    table: &'static str,
    /// Values sealed under the current key before, or now.
    resealed: u64,
    /// Values no configured key opens: dropping the previous key would lose them.
    unopenable: u64,
}

const BATCH: i64 = 500;
/// Where a `pin.issued` payload (outbox row or email job) holds its PIN.
const EVENT_PIN: &str = "/data/pin";

pub(crate) async fn run(
    pool: &PgPool,
    Command::Rotate { dry_run }: Command,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let settings = Settings::<KeySections>::load().context("the configuration is not valid")?;
    let keys = &settings.own;
    let pins = keys.pins.sealer().context("cannot use the PIN keys")?;
    let tokens = keys
        .remotelock
        .token_sealer()
        .context("cannot use the token keys")?;
    let results = vec![
        booking_pins(pool, &pins, dry_run).await?,
        payloads(pool, &pins, Payloads::OUTBOX, dry_run).await?,
        payloads(pool, &pins, Payloads::EMAIL_JOBS, dry_run).await?,
        authorization(pool, &tokens, dry_run).await?,
    ];
    crate::report(
        out,
        json,
        &results,
        &["TABLE", "RESEALED", "UNOPENABLE"],
        |r| {
            vec![
                r.table.to_owned(),
                r.resealed.to_string(),
                r.unopenable.to_string(),
            ]
        },
    )?;
    let unopenable: u64 = results.iter().map(|r| r.unopenable).sum();
    anyhow::ensure!(
        unopenable == 0,
        "{unopenable} stored values open under none of the configured keys: keep the previous \
         keys until they are found (they were sealed under another key, or are damaged)"
    );
    if dry_run {
        writeln!(out, "dry run: nothing was changed")?;
    }
    Ok(())
}

/// The PINs of `booking_pins`, sealed with their digests; a PIN an older version stored in
/// clear is sealed too.
async fn booking_pins(pool: &PgPool, pins: &PinSealer, dry_run: bool) -> anyhow::Result<Resealed> {
    let mut result = Resealed {
        table: "booking_pins",
        ..Resealed::default()
    };
    let mut after = String::new();
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<(String, Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
            "SELECT booking_id, pin_sealed, pin FROM booking_pins
             WHERE booking_id > $1 AND (pin_sealed IS NOT NULL OR pin IS NOT NULL)
             ORDER BY booking_id LIMIT $2 FOR UPDATE",
        )
        .bind(&after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some((last, ..)) = rows.last() else {
            return Ok(result);
        };
        after = last.clone();
        for (booking_id, sealed, plain) in rows {
            let resealed = match (sealed, plain.and_then(|p| Pin::parse(p).ok())) {
                (Some(sealed), _) => match pins.reseal(&sealed) {
                    Ok(resealed) => resealed,
                    Err(_) => {
                        result.unopenable += 1;
                        continue;
                    }
                },
                (None, Some(pin)) => Some(pins.seal(&pin)),
                (None, None) => None,
            };
            let Some(resealed) = resealed else { continue };
            sqlx::query(
                "UPDATE booking_pins SET pin_sealed = $2, pin_digest = $3, pin = NULL
                 WHERE booking_id = $1",
            )
            .bind(&booking_id)
            .bind(&resealed.sealed)
            .bind(&resealed.digest)
            .execute(&mut *tx)
            .await?;
            result.resealed += 1;
        }
        finish(tx, dry_run).await?;
    }
}

/// Stored payloads that may hold a `pin.issued` event's PIN.
struct Payloads {
    table: &'static str,
    select: &'static str,
    update: &'static str,
}

impl Payloads {
    const OUTBOX: Self = Self {
        table: "outbox",
        select: "SELECT id, payload FROM outbox
                 WHERE id > $1 AND payload->'data' ? 'pin' ORDER BY id LIMIT $2 FOR UPDATE",
        update: "UPDATE outbox SET payload = $2 WHERE id = $1",
    };
    const EMAIL_JOBS: Self = Self {
        table: "jobs (email)",
        select: "SELECT id, payload FROM jobs
                 WHERE id > $1 AND queue = 'email' AND payload->'data' ? 'pin'
                 ORDER BY id LIMIT $2 FOR UPDATE",
        update: "UPDATE jobs SET payload = $2 WHERE id = $1",
    };
}

async fn payloads(
    pool: &PgPool,
    pins: &PinSealer,
    payloads: Payloads,
    dry_run: bool,
) -> anyhow::Result<Resealed> {
    let mut result = Resealed {
        table: payloads.table,
        ..Resealed::default()
    };
    let mut after = 0_i64;
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<(i64, Value)> = sqlx::query_as(payloads.select)
            .bind(after)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let Some((last, _)) = rows.last() else {
            return Ok(result);
        };
        after = *last;
        for (id, mut payload) in rows {
            match pins.reseal_field(&mut payload, EVENT_PIN) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => {
                    result.unopenable += 1;
                    continue;
                }
            }
            sqlx::query(payloads.update)
                .bind(id)
                .bind(&payload)
                .execute(&mut *tx)
                .await?;
            result.resealed += 1;
        }
        finish(tx, dry_run).await?;
    }
}

/// The RemoteLock tokens: one row at most.
async fn authorization(pool: &PgPool, tokens: &Sealer, dry_run: bool) -> anyhow::Result<Resealed> {
    let mut result = Resealed {
        table: "remotelock_authorization",
        ..Resealed::default()
    };
    let mut tx = pool.begin().await?;
    let stored: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT access_token_enc, refresh_token_enc FROM remotelock_authorization FOR UPDATE",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((access, refresh)) = stored else {
        return Ok(result);
    };
    let (Ok(new_access), Ok(new_refresh)) = (
        tokens.reseal(&access),
        refresh.as_deref().map(|r| tokens.reseal(r)).transpose(),
    ) else {
        result.unopenable += 1;
        return Ok(result);
    };
    let new_refresh = new_refresh.flatten();
    if new_access.is_none() && new_refresh.is_none() {
        return Ok(result);
    }
    // A refresh racing this rewrites both tokens under the current key anyway; the row lock
    // makes one of the two win whole.
    sqlx::query(
        "UPDATE remotelock_authorization
         SET access_token_enc = coalesce($1, access_token_enc),
             refresh_token_enc = coalesce($2, refresh_token_enc)",
    )
    .bind(new_access)
    .bind(new_refresh)
    .execute(&mut *tx)
    .await?;
    result.resealed += 1;
    finish(tx, dry_run).await?;
    Ok(result)
}

/// A dry run rolls back what it did.
async fn finish(tx: Transaction<'static, Postgres>, dry_run: bool) -> sqlx::Result<()> {
    if dry_run {
        tx.rollback().await
    } else {
        tx.commit().await
    }
}
