//! How many messages wait in each dead-letter queue: counted with a passive declare, which
//! any AMQP user may make on a queue it can read, so admin needs no management API access.

use lockbridge_runtime::{
    amqp::{Broker, topology::WORK_QUEUES},
    telemetry::error_chain,
};

/// One dead-letter queue and what it holds, or why that is not known.
pub(crate) struct DeadLetters {
    pub queue: String,
    pub count: Result<u32, String>,
}

pub(crate) async fn count(broker: &Broker) -> Vec<DeadLetters> {
    let mut counts = Vec::new();
    for queue in WORK_QUEUES {
        let name = queue.dead_letter_queue();
        let count = broker
            .message_count(&name)
            .await
            .map_err(|error| error_chain(&error));
        counts.push(DeadLetters { queue: name, count });
    }
    counts
}
