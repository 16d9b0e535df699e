//! Group commit for the HTTP API: a request hands its change to the writer and waits for the
//! answer; the writer stores whatever changes are waiting as one [`Batch`].
//!
//! Nothing waits for a batch to fill: a writer that is free takes what has arrived, so a lone
//! request is stored at once, and under load the requests that arrive while batches are being
//! stored make up the next ones. Two changes of one booking never share a batch: the later
//! waits for the next one, which keeps them in the order they came.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use lockbridge_http::problem::Problem;
use lockbridge_runtime::telemetry::error_chain;
use lockbridge_sealing::pins::PinSealer;
use sqlx::PgPool;
use tokio::{
    sync::{Semaphore, mpsc, oneshot},
    task::JoinSet,
};

use crate::batch::{Answer, Batch, Request};

/// The most changes in one batch: enough to carry a burst, small enough that one transaction
/// holds few locks and little memory.
const MAX_BATCH: usize = 64;
/// Batches stored at once: two let PostgreSQL use both of a small machine's cores, one batch
/// being written while the other commits.
const IN_FLIGHT: usize = 2;
/// Requests waiting for a writer before new ones wait to be accepted (backpressure).
const QUEUE: usize = 1024;

struct Pending {
    request: Request,
    reply: oneshot::Sender<Answer>,
}

/// Hands changes to the writer; cloned into every request handler.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Pending>,
}

impl Writer {
    /// A writer storing into `pool`, and the task that does it. The task ends once every
    /// `Writer` is gone (when the HTTP server has finished its last request) and what they
    /// handed it is stored.
    pub(crate) fn new(pool: PgPool, pins: PinSealer) -> (Self, WriterTask) {
        let (queue, arrivals) = mpsc::channel(QUEUE);
        let task = WriterTask {
            pool,
            pins: Arc::new(pins),
            arrivals,
        };
        (Self { queue }, task)
    }

    /// Stores `request`'s change with others waiting, and answers how it went.
    pub(crate) async fn store(&self, request: Request) -> Answer {
        let (reply, answer) = oneshot::channel();
        let gone = || Problem::unavailable("the service is stopping; retry later");
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

pub(crate) struct WriterTask {
    pool: PgPool,
    pins: Arc<PinSealer>,
    arrivals: mpsc::Receiver<Pending>,
}

impl WriterTask {
    pub(crate) async fn run(mut self) {
        let free = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut storing = JoinSet::new();
        // Changes held back from a batch that already had their booking, oldest first.
        let mut held: VecDeque<Pending> = VecDeque::new();
        loop {
            let permit = free.clone().acquire_owned().await.expect("never closed");
            let first = match held.pop_front() {
                Some(pending) => pending,
                None => match self.arrivals.recv().await {
                    Some(pending) => pending,
                    None => break,
                },
            };
            let mut batch = vec![first];
            let mut bookings: HashSet<_> = HashSet::from([batch[0].request.booking_id.clone()]);
            let mut later = VecDeque::new();
            let mut take = |pending: Pending, batch: &mut Vec<Pending>| {
                if bookings.insert(pending.request.booking_id.clone()) {
                    batch.push(pending);
                } else {
                    later.push_back(pending);
                }
            };
            while batch.len() < MAX_BATCH
                && let Some(pending) = held.pop_front()
            {
                take(pending, &mut batch);
            }
            while batch.len() < MAX_BATCH
                && let Ok(pending) = self.arrivals.try_recv()
            {
                take(pending, &mut batch);
            }
            // Held back just now were ahead in line of what was held and did not fit: they
            // stay ahead, so a booking's changes keep their order.
            later.extend(held.drain(..));
            held = later;
            let pool = self.pool.clone();
            let pins = self.pins.clone();
            storing.spawn(async move {
                store(&pool, &pins, batch).await;
                drop(permit);
            });
            // Reap finished batches so the set does not grow; a panic is the caller's to see.
            while let Some(finished) = storing.try_join_next() {
                finished.expect("storing a batch does not panic");
            }
        }
        while let Some(finished) = storing.join_next().await {
            finished.expect("storing a batch does not panic");
        }
    }
}

/// Stores a batch and answers each request. When the batch fails, each change is tried on its
/// own (the batch rolled back whole), so one that cannot be stored fails alone instead of
/// failing the others with it.
async fn store(pool: &PgPool, pins: &PinSealer, batch: Vec<Pending>) {
    let (requests, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    let answers = match store_all(pool, pins, &requests).await {
        Ok(answers) => answers,
        Err(error) if requests.len() > 1 => {
            tracing::warn!(error = %error_chain(&error), changes = requests.len(), "a batch of booking changes failed; storing each on its own");
            let mut answers = Vec::with_capacity(requests.len());
            for request in &requests {
                answers.push(
                    match store_all(pool, pins, std::slice::from_ref(request)).await {
                        Ok(mut one) => one.pop().expect("one answer per request"),
                        Err(error) => Err(error.into()),
                    },
                );
            }
            answers
        }
        Err(error) => vec![Err(error.into())],
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A request whose client has gone needs no answer.
        let _ = reply.send(answer);
    }
}

async fn store_all(
    pool: &PgPool,
    pins: &PinSealer,
    requests: &[Request],
) -> Result<Vec<Answer>, sqlx::Error> {
    Batch::begin(pool, pins, requests).await?.apply().await
}
