//! The durable job queue on real PostgreSQL: one run per request even with several workers,
//! slow runs keep their lease, a job asked for again while running runs again, and retries
//! are rescheduled with the reason kept.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lockbridge_e2e::TestDatabase;
use lockbridge_runtime::{
    jobs::{
        self, Escalation, Job, JobError, JobHandler, OnConflict, RetryPolicy, Retrying, Worker,
    },
    wakeup::Channel,
};
use tokio_util::sync::CancellationToken;

struct Counting {
    runs: AtomicUsize,
    completed: AtomicUsize,
    run_time: Duration,
    fail_first: bool,
}

impl JobHandler for Counting {
    type Payload = String;
    const QUEUE: &'static str = "test";

    async fn run(&self, _job: &Job<String>) -> Result<(), JobError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.run_time).await;
        if self.fail_first && run == 0 {
            return Err(JobError::Transient {
                error: "not yet".into(),
                retry_after: Some(Duration::from_millis(200)),
            });
        }
        Ok(())
    }

    async fn escalate(
        &self,
        _job: &Job<String>,
        _error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        Ok(Escalation::Stop)
    }
}

/// Refuses every run for good, and escalates as told.
struct Refusing {
    runs: AtomicUsize,
    escalated: AtomicUsize,
    then: Escalation,
}

impl JobHandler for Refusing {
    type Payload = String;
    const QUEUE: &'static str = "test";

    async fn run(&self, _job: &Job<String>) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Err(JobError::Permanent("refused".into()))
    }

    async fn escalate(
        &self,
        _job: &Job<String>,
        _error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        self.escalated.fetch_add(1, Ordering::SeqCst);
        Ok(self.then)
    }
}

fn handler(run_time: Duration, fail_first: bool) -> Arc<Counting> {
    Arc::new(Counting {
        runs: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        run_time,
        fail_first,
    })
}

async fn enqueue(db: &TestDatabase, key: &str) {
    let mut tx = db.pool.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        "test",
        key,
        &key.to_owned(),
        chrono::Utc::now(),
        OnConflict::Requeue,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Channel::jobs("test").ring();
}

fn start<H: JobHandler>(
    db: &TestDatabase,
    handler: &Arc<H>,
    lease: Duration,
    shutdown: &CancellationToken,
) {
    start_with(db, handler, lease, 1, shutdown);
}

fn start_with<H: JobHandler>(
    db: &TestDatabase,
    handler: &Arc<H>,
    lease: Duration,
    concurrency: usize,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let worker = Worker {
        pool: db.pool.clone(),
        handler: handler.clone(),
        policy: RetryPolicy::default(),
        lease,
        concurrency,
    };
    tokio::spawn(worker.run(shutdown.clone()))
}

async fn state_of(db: &TestDatabase, key: &str) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT state::text, attempts, last_error FROM jobs WHERE job_key = $1")
        .bind(key)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn wait_for_state(db: &TestDatabase, key: &str, state: &str) {
    for _ in 0..200 {
        if state_of(db, key).await.0 == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "job {key} never reached {state}: {:?}",
        state_of(db, key).await
    );
}

#[tokio::test]
async fn a_slow_job_keeps_its_lease_and_runs_once_among_several_workers() {
    let db = TestDatabase::create().await;
    let slow = handler(Duration::from_millis(4000), false);
    let shutdown = CancellationToken::new();
    // The run takes four leases' time: without renewal another worker would take it over. (A
    // lease much shorter than a second can run out on a loaded machine before its renewal,
    // every third of it, gets a connection.)
    for _ in 0..3 {
        start(&db, &slow, Duration::from_secs(1), &shutdown);
    }
    enqueue(&db, "slow").await;
    wait_for_state(&db, "slow", "succeeded").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slow.runs.load(Ordering::SeqCst), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_job_asked_for_again_while_running_runs_again() {
    let db = TestDatabase::create().await;
    let counting = handler(Duration::from_millis(600), false);
    let shutdown = CancellationToken::new();
    start(&db, &counting, Duration::from_secs(30), &shutdown);
    enqueue(&db, "again").await;
    wait_for_state(&db, "again", "running").await;
    enqueue(&db, "again").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_for_state(&db, "again", "succeeded").await;
    assert_eq!(
        counting.runs.load(Ordering::SeqCst),
        2,
        "the second request was not lost"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_transient_failure_is_rescheduled_with_its_reason_then_succeeds() {
    let db = TestDatabase::create().await;
    let flaky = handler(Duration::ZERO, true);
    let shutdown = CancellationToken::new();
    start(&db, &flaky, Duration::from_secs(30), &shutdown);
    enqueue(&db, "flaky").await;
    wait_for_state(&db, "flaky", "succeeded").await;
    let (_, attempts, last_error) = state_of(&db, "flaky").await;
    assert_eq!(attempts, 2);
    assert_eq!(last_error, None, "a success clears the reason");
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 2);
    shutdown.cancel();
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_abandons_the_run_and_leaves_the_job_to_its_new_holder() {
    let db = TestDatabase::create().await;
    let slow = handler(Duration::from_millis(2000), false);
    let shutdown = CancellationToken::new();
    start(&db, &slow, Duration::from_millis(300), &shutdown);
    enqueue(&db, "taken").await;
    wait_for_state(&db, "taken", "running").await;
    // Another worker's claim (which it keeps renewing), as after this one's renewals had
    // failed for a whole lease.
    let theirs: uuid::Uuid = sqlx::query_scalar(
        "UPDATE jobs SET lease_token = gen_random_uuid(), lease_until = now() + interval '1 hour'
         WHERE job_key = 'taken' RETURNING lease_token",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        slow.completed.load(Ordering::SeqCst),
        0,
        "the run was abandoned"
    );
    let (state, token): (String, uuid::Uuid) =
        sqlx::query_as("SELECT state::text, lease_token FROM jobs WHERE job_key = 'taken'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), token),
        ("running", theirs),
        "the new holder's claim stands"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_escalated_job_stops_or_keeps_trying_as_its_handler_says_and_a_retry_runs_it_now() {
    let db = TestDatabase::create().await;
    let shutdown = CancellationToken::new();
    let stopping = Arc::new(Refusing {
        runs: AtomicUsize::new(0),
        escalated: AtomicUsize::new(0),
        then: Escalation::Stop,
    });
    start(&db, &stopping, Duration::from_secs(30), &shutdown);
    enqueue(&db, "stops").await;
    wait_for_state(&db, "stops", "failed").await;
    assert_eq!(stopping.escalated.load(Ordering::SeqCst), 1);
    shutdown.cancel();

    let shutdown = CancellationToken::new();
    let persistent = Arc::new(Refusing {
        runs: AtomicUsize::new(0),
        escalated: AtomicUsize::new(0),
        then: Escalation::KeepTrying,
    });
    start(&db, &persistent, Duration::from_secs(30), &shutdown);
    enqueue(&db, "persists").await;
    for _ in 0..200 {
        if persistent.escalated.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_state(&db, "persists", "queued").await;
    let (_, _, last_error) = state_of(&db, "persists").await;
    assert_eq!(last_error.as_deref(), Some("refused"));
    let waits: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM run_at - now())::float8 FROM jobs WHERE job_key = 'persists'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let longest = RetryPolicy::default().max_delay.as_secs_f64();
    assert!(
        waits > longest - 60.0,
        "retried at the policy's longest delay, not given up: {waits}s"
    );

    // Staff retry: it runs again at once.
    let retried = jobs::retry_now(&db.pool, "test", Retrying::Job("persists"))
        .await
        .unwrap();
    assert_eq!(retried, 1);
    for _ in 0..200 {
        if persistent.runs.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(persistent.runs.load(Ordering::SeqCst), 2);
    shutdown.cancel();
}

/// Notes which jobs run at the same time.
#[derive(Default)]
struct Overlapping {
    in_flight: Mutex<Vec<String>>,
    most_at_once: AtomicUsize,
    twice_at_once: AtomicUsize,
    runs: AtomicUsize,
}

impl JobHandler for Overlapping {
    type Payload = String;
    const QUEUE: &'static str = "test";

    async fn run(&self, job: &Job<String>) -> Result<(), JobError> {
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if in_flight.contains(&job.key) {
                self.twice_at_once.fetch_add(1, Ordering::SeqCst);
            }
            in_flight.push(job.key.clone());
            self.most_at_once
                .fetch_max(in_flight.len(), Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut in_flight = self.in_flight.lock().unwrap();
        let at = in_flight.iter().position(|k| k == &job.key).unwrap();
        in_flight.remove(at);
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn escalate(
        &self,
        _job: &Job<String>,
        _error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        Ok(Escalation::Stop)
    }
}

#[tokio::test]
async fn workers_run_many_jobs_at_once_but_never_one_job_twice_and_finish_them_on_stop() {
    const JOBS: usize = 24;
    let db = TestDatabase::create().await;
    for i in 0..JOBS {
        enqueue(&db, &format!("job-{i}")).await;
    }
    let overlapping = Arc::new(Overlapping::default());
    let shutdown = CancellationToken::new();
    // Two processes' workers of four slots each.
    let workers = [
        start_with(&db, &overlapping, Duration::from_secs(30), 4, &shutdown),
        start_with(&db, &overlapping, Duration::from_secs(30), 4, &shutdown),
    ];
    for i in 0..JOBS {
        wait_for_state(&db, &format!("job-{i}"), "succeeded").await;
    }
    assert_eq!(
        overlapping.runs.load(Ordering::SeqCst),
        JOBS,
        "each job ran once"
    );
    assert_eq!(overlapping.twice_at_once.load(Ordering::SeqCst), 0);
    let most = overlapping.most_at_once.load(Ordering::SeqCst);
    assert!(
        most > 1 && most <= 8,
        "jobs ran side by side, within the slots: {most}"
    );

    // Asked to stop mid-run, a worker finishes the jobs it holds.
    enqueue(&db, "last").await;
    wait_for_state(&db, "last", "running").await;
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(state_of(&db, "last").await.0, "succeeded");
}

/// Defers each job's first run by `wait`, as a job whose RemoteLock budget is spent does.
struct Deferring {
    /// (job, attempt) of every run, in order.
    runs: Mutex<Vec<(String, i32)>>,
    wait: chrono::Duration,
}

impl JobHandler for Deferring {
    type Payload = String;
    const QUEUE: &'static str = "test";

    async fn run(&self, job: &Job<String>) -> Result<(), JobError> {
        let first = {
            let mut runs = self.runs.lock().unwrap();
            runs.push((job.key.clone(), job.attempt));
            runs.iter().filter(|(key, _)| key == &job.key).count() == 1
        };
        if first && job.key.starts_with("defer") {
            return Err(JobError::Deferred {
                until: chrono::Utc::now() + self.wait,
            });
        }
        Ok(())
    }

    async fn escalate(&self, job: &Job<String>, _: &JobError) -> Result<Escalation, sqlx::Error> {
        panic!("{} was escalated: a deferral is no failure", job.key);
    }
}

#[tokio::test]
async fn a_deferred_job_frees_its_worker_and_runs_later_without_counting_an_attempt() {
    let db = TestDatabase::create().await;
    let deferring = Arc::new(Deferring {
        runs: Mutex::new(Vec::new()),
        wait: chrono::Duration::seconds(3),
    });
    let shutdown = CancellationToken::new();
    // One slot: the job that comes after can only run if the deferred one gave it up.
    start(&db, &deferring, Duration::from_secs(30), &shutdown);
    enqueue(&db, "deferred").await;
    while deferring.runs.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_state(&db, "deferred", "queued").await;
    let (_, attempts, last_error) = state_of(&db, "deferred").await;
    assert_eq!((attempts, last_error), (0, None), "not a failed attempt");
    enqueue(&db, "after").await;
    wait_for_state(&db, "after", "succeeded").await;
    assert_eq!(
        state_of(&db, "deferred").await.0,
        "queued",
        "still waiting while the other job ran"
    );

    wait_for_state(&db, "deferred", "succeeded").await;
    let runs = deferring.runs.lock().unwrap().clone();
    assert_eq!(
        runs,
        [
            ("deferred".to_owned(), 1),
            ("after".to_owned(), 1),
            ("deferred".to_owned(), 1)
        ],
        "each run of the deferred job is its first attempt"
    );
    assert_eq!(state_of(&db, "deferred").await.1, 1);
    shutdown.cancel();
}
