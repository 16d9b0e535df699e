//! `lockbridge outbox status`: what each producer has written and RabbitMQ has not confirmed.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;
use sqlx::PgPool;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Unsent events per producer, the oldest's age, and those the broker refused.
    Status,
}

#[derive(Serialize, sqlx::FromRow)]
struct Producer {
    producer: String,
    unsent: i64,
    oldest_unsent_seconds: Option<f64>,
    /// Refused by the broker (unroutable, nacked) and waiting out a backoff.
    refused: i64,
    last_error: Option<String>,
}

pub(crate) async fn run(
    pool: &PgPool,
    Command::Status: Command,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let producers: Vec<Producer> = sqlx::query_as(
        "SELECT producer, count(*) FILTER (WHERE published_at IS NULL) AS unsent,
                extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL))::float8
                    AS oldest_unsent_seconds,
                count(*) FILTER (WHERE published_at IS NULL AND retry_at > now()) AS refused,
                (array_agg(last_error ORDER BY id DESC)
                     FILTER (WHERE published_at IS NULL AND last_error IS NOT NULL))[1] AS last_error
         FROM outbox GROUP BY producer ORDER BY producer",
    )
    .fetch_all(pool)
    .await?;
    crate::report(
        out,
        json,
        &producers,
        &["PRODUCER", "UNSENT", "OLDEST", "REFUSED", "LAST ERROR"],
        |p| {
            vec![
                p.producer.clone(),
                p.unsent.to_string(),
                p.oldest_unsent_seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.0} s")),
                p.refused.to_string(),
                p.last_error.clone().unwrap_or_default(),
            ]
        },
    )
}
