//! Supervised background work: a service whose consumer, relay or job loop dies says so on
//! `/readyz` and stops with an error naming it (so the process exits non-zero and its
//! supervisor restarts it); a stopping service waits for its tasks only up to a deadline.

use std::time::{Duration, Instant};

use lockbridge_e2e::{TestBroker, TestDatabase, services};
use lockbridge_runtime::service::{Infrastructure, Server};
use serde::de::IgnoredAny;
use tokio_util::sync::CancellationToken;

async fn server(db: &TestDatabase, broker: &TestBroker) -> Server {
    // The sections every service reads, and no service's own.
    let settings = services::settings::<IgnoredAny>(&[
        ("database.url", db.url.clone()),
        ("amqp.url", broker.url.clone()),
    ]);
    let infrastructure = Infrastructure::connect(&settings, "supervision-test")
        .await
        .expect("infrastructure");
    Server::bind(infrastructure, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind")
}

/// Runs `work` as a background task under a server until the server stops; answers what `/readyz` said meanwhile
/// and how the server ended.
async fn watch_death(
    work: impl Future<Output = ()> + Send + 'static,
) -> (Vec<u16>, Result<(), String>) {
    let (db, broker) = (TestDatabase::create().await, TestBroker::create().await);
    let server = server(&db, &broker).await;
    let task = tokio::spawn(work);
    let ready = format!("http://{}/readyz", server.local_addr());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(server.run(axum::Router::new(), shutdown, [("test loop", task)]));
    let mut statuses = Vec::new();
    let http = reqwest::Client::new();
    while !run.is_finished() {
        if let Ok(response) = http.get(&ready).send().await {
            statuses.push(response.status().as_u16());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = run.await.expect("the server task ends");
    (statuses, ended.map_err(|died| died.to_string()))
}

#[tokio::test]
async fn a_background_task_that_ends_makes_the_service_unready_and_stop_with_an_error() {
    // A sleep's deadline is set when it is made: made inside, it counts from the start.
    let (statuses, ended) =
        watch_death(async { tokio::time::sleep(Duration::from_millis(500)).await }).await;
    assert_eq!(ended, Err("its test loop stopped unexpectedly".to_owned()));
    assert_eq!(
        statuses.first(),
        Some(&200),
        "ready while it worked: {statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&503),
        "unready once it died: {statuses:?}"
    );
}

#[tokio::test]
async fn a_background_task_that_panics_is_a_death_too() {
    let (statuses, ended) = watch_death(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        panic!("a bug in a loop");
    })
    .await;
    assert_eq!(ended, Err("its test loop stopped unexpectedly".to_owned()));
    assert!(statuses.contains(&503), "{statuses:?}");
}

#[tokio::test]
async fn a_stopping_service_waits_for_its_tasks_only_up_to_the_drain_deadline() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::create().await);
    let server = server(&db, &broker)
        .await
        .drain_within(Duration::from_secs(1));
    let shutdown = CancellationToken::new();
    // A task that ignores the shutdown token.
    let stubborn = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    let run = tokio::spawn(server.run(
        axum::Router::new(),
        shutdown.clone(),
        [("stubborn loop", stubborn)],
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops within the deadline")
        .expect("the server task ends");
    assert!(ended.is_ok(), "a requested stop is not a death: {ended:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}
