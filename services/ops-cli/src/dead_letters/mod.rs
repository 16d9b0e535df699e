//! `lockbridge dead-letters list|show|replay|purge`: the messages each work queue's consumer
//! could not handle, in `<queue>.dead-letter` (design §4). Every command reads a queue in one
//! pass that settles each message for good (see [`pass`]): looking never ages a message
//! toward the queue's delivery limit, and a message is always somewhere.

mod letter;
mod pass;
mod replay;

use std::{collections::BTreeMap, io::Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use lapin::message::Delivery;
use lockbridge_runtime::{
    amqp::{Broker, Publisher, topology::WORK_QUEUES},
    configuration::Settings,
};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};

use letter::{DeadLetter, Origin, properties_json};
use pass::{Done, Verdict};
use replay::Replayer;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Every dead letter and why it was refused; how many each queue holds.
    ///
    /// Per message, oldest first: its queue, id (message_id), type, when it was dead-lettered,
    /// its size and the reason; then how many each queue holds. Listing changes nothing: a message
    /// listed any number of times stays as it was.
    List {
        #[command(flatten)]
        queues: Queues,
    },
    /// One dead letter's properties and headers; its body only with --body.
    ///
    /// The headers say where it came from and why (x-death, x-lockbridge-error…). Its body is
    /// shown only with --body: it may hold a patron's address, or a PIN (pin.issued events).
    Show {
        /// The message_id.
        id: String,
        /// Show the body too (pretty JSON). It may hold personal data and PINs: mind where
        /// the output goes.
        #[arg(long)]
        body: bool,
        #[command(flatten)]
        queues: Queues,
    },
    /// Publishes dead letters again to where they were first published.
    ///
    /// To the exchange and routing key they were first published with, as they were (same message_id, type, correlation_id, headers, persistent), without
    /// the dead-letter headers, then takes them out of the dead-letter queue. Replay once the
    /// cause is fixed (a space created, a service repaired); consumers handle a message id
    /// once, so replaying one already handled is harmless. A message whose origin is unknown,
    /// or that only another RabbitMQ user may replay (an intake message keeps its source, see
    /// docs/operations.md), is left in place with the reason.
    Replay {
        #[command(flatten)]
        which: Which,
    },
    /// Deletes dead letters for good (needs --yes, unless --dry-run).
    ///
    /// For messages that must never be handled: garbage, a test, a booking superseded since.
    Purge {
        #[command(flatten)]
        which: Which,
        /// Yes, delete them.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub(crate) struct Queues {
    /// Only this queue: a work queue (lock-provisioner.bookings, notifier.pins,
    /// booking-intake.bookings) or its dead-letter queue's name. By default, every one.
    #[arg(long, value_name = "NAME")]
    queue: Option<String>,
}

#[derive(Args)]
pub(crate) struct Which {
    /// The message_ids (a message without one is reached only with --all).
    #[arg(required_unless_present = "all", value_name = "ID")]
    ids: Vec<String>,
    /// Every message the queues hold now.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    queues: Queues,
}

/// What the command line reads beyond the common sections: booking-intake's map of RabbitMQ
/// users to sources, to replay an intake message under its own source.
#[derive(serde::Deserialize)]
struct Sections {
    #[serde(default)]
    intake: Intake,
}

#[derive(serde::Deserialize, Default)]
struct Intake {
    #[serde(default)]
    amqp_sources: BTreeMap<String, String>,
}

pub(crate) async fn run(command: Command, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let settings = Settings::<Sections>::load().context("the configuration is not valid")?;
    let queues = match &command {
        Command::List { queues } | Command::Show { queues, .. } => queues,
        Command::Replay { which } | Command::Purge { which, .. } => &which.queues,
    };
    let queues = dead_letter_queues(queues)?;
    if let Command::Purge {
        which: Which { dry_run: false, .. },
        yes: false,
    } = command
    {
        bail!(
            "purge deletes messages for good: add --yes (or see what it would delete with --dry-run)"
        );
    }
    let url = settings.amqp.url;
    let broker = Broker::connect(url.clone(), "lockbridge-cli").await?;
    let replayer = Replayer {
        user: url
            .expose_secret()
            .parse::<lapin::uri::AMQPUri>()
            .map_err(anyhow::Error::msg)
            .context("amqp.url is not a valid AMQP URL")?
            .authority
            .userinfo
            .username,
        sources: settings.own.intake.amqp_sources,
    };
    let mut session = Session {
        publisher: Publisher::new(broker.clone()),
        broker,
        queues,
    };
    let done = match command {
        Command::List { .. } => session.list(json, out).await,
        Command::Show { id, body, .. } => session.show(&id, body, json, out).await,
        Command::Replay { which } => {
            session
                .act(Action::Replay(&replayer), which, json, out)
                .await
        }
        Command::Purge { which, .. } => session.act(Action::Purge, which, json, out).await,
    };
    session.broker.close().await;
    done
}

/// The dead-letter queues named, or all of them.
fn dead_letter_queues(queues: &Queues) -> anyhow::Result<Vec<String>> {
    let all = WORK_QUEUES.map(|queue| queue.dead_letter_queue());
    let Some(named) = &queues.queue else {
        return Ok(all.to_vec());
    };
    let found = WORK_QUEUES
        .iter()
        .find(|queue| queue.name == named || queue.dead_letter_queue() == *named);
    match found {
        Some(queue) => Ok(vec![queue.dead_letter_queue()]),
        None => bail!(
            "there is no dead-letter queue {named}; the queues are {}",
            all.join(", ")
        ),
    }
}

struct Session {
    broker: Broker,
    publisher: Publisher,
    queues: Vec<String>,
}

/// What `replay` or `purge` does to the messages chosen.
#[derive(Clone, Copy)]
enum Action<'a> {
    Replay(&'a Replayer),
    Purge,
}

impl Action<'_> {
    /// What to do with a message chosen, or why it is left in place.
    fn verdict(self, letter: &DeadLetter, delivery: &Delivery) -> Result<Verdict, String> {
        match self {
            Action::Purge => Ok(Verdict::Purge),
            Action::Replay(replayer) => {
                let origin = letter
                    .origin
                    .clone()
                    .map_err(|why| format!("where it came from is not known: {why}"))?;
                let properties = replayer.properties(letter, delivery)?;
                Ok(Verdict::Replay {
                    origin,
                    properties: Box::new(properties),
                })
            }
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Replay(_) => "replay",
            Action::Purge => "purge",
        }
    }
}

/// What happened, or would happen, to one message chosen.
#[derive(Serialize)]
struct Outcome {
    queue: String,
    id: Option<String>,
    /// `replayed`, `purged`, `left` (in place, with the reason), or `would replay`, `would
    /// purge`, `would leave` on a dry run.
    outcome: String,
    to: Option<Origin>,
    reason: Option<String>,
}

impl Session {
    /// Every message of every queue, each left as it was.
    async fn read_all(
        &mut self,
        mut look: impl FnMut(&DeadLetter, &Delivery),
    ) -> anyhow::Result<Vec<DeadLetter>> {
        let mut letters = Vec::new();
        for queue in &self.queues {
            let done = pass::run(
                &self.broker,
                &mut self.publisher,
                queue,
                |letter, delivery| {
                    look(letter, delivery);
                    Verdict::Keep
                },
            )
            .await?;
            letters.extend(done.into_iter().map(|(letter, _)| letter));
        }
        Ok(letters)
    }

    async fn list(&mut self, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
        let letters = self.read_all(|_, _| {}).await?;
        let counts: Vec<(&String, usize)> = self
            .queues
            .iter()
            .map(|queue| (queue, letters.iter().filter(|l| &l.queue == queue).count()))
            .collect();
        if json {
            let queues: Vec<Value> = counts
                .iter()
                .map(|(queue, messages)| json!({"queue": queue, "messages": messages}))
                .collect();
            serde_json::to_writer_pretty(
                &mut *out,
                &json!({"queues": queues, "messages": letters}),
            )?;
            writeln!(out)?;
            return Ok(());
        }
        crate::report(
            out,
            false,
            &letters,
            &["QUEUE", "ID", "TYPE", "DEAD-LETTERED", "SIZE", "REASON"],
            |letter| {
                vec![
                    letter.queue.clone(),
                    letter.id.clone().unwrap_or_else(|| "-".to_owned()),
                    letter.what(),
                    letter.dead_lettered_at.map_or_else(
                        || "?".to_owned(),
                        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    ),
                    letter.size.to_string(),
                    letter.reason.clone(),
                ]
            },
        )?;
        writeln!(out)?;
        for (queue, messages) in counts {
            writeln!(out, "{queue}: {messages} message(s)")?;
        }
        Ok(())
    }

    async fn show(
        &mut self,
        id: &str,
        with_body: bool,
        json: bool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let mut shown = Vec::new();
        self.read_all(|letter, delivery| {
            if letter.is(id) {
                shown.push(json!({
                    "queue": letter.queue,
                    "reason": letter.reason,
                    "dead_lettered_at": letter.dead_lettered_at,
                    "origin": letter.origin.as_ref().ok(),
                    "properties": properties_json(&delivery.properties),
                    "body": with_body.then(|| body(&delivery.data)),
                    "size": letter.size,
                }));
            }
        })
        .await?;
        if shown.is_empty() {
            bail!("there is no dead letter {id} in {}", self.queues.join(", "));
        }
        if json {
            serde_json::to_writer_pretty(&mut *out, &shown)?;
            writeln!(out)?;
            return Ok(());
        }
        for message in &shown {
            writeln!(
                out,
                "queue: {}",
                message["queue"].as_str().unwrap_or_default()
            )?;
            writeln!(
                out,
                "reason: {}",
                message["reason"].as_str().unwrap_or_default()
            )?;
            writeln!(
                out,
                "properties: {}",
                serde_json::to_string_pretty(&message["properties"])?
            )?;
            match &message["body"] {
                Value::Null => writeln!(
                    out,
                    "body: {} bytes, not shown: it may hold a patron's address or a PIN (--body shows it)",
                    message["size"]
                )?,
                body => writeln!(out, "body: {}", serde_json::to_string_pretty(body)?)?,
            }
        }
        Ok(())
    }

    /// Replays or purges the messages chosen. Named ids are checked first, in a pass that
    /// changes nothing: an unknown id, or one that cannot be replayed, refuses the whole
    /// command.
    async fn act(
        &mut self,
        action: Action<'_>,
        which: Which,
        json: bool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let chosen = |letter: &DeadLetter| which.all || which.ids.iter().any(|id| letter.is(id));
        if which.dry_run || !which.all {
            let mut planned = Vec::new();
            self.read_all(|letter, delivery| {
                if chosen(letter) {
                    planned.push(would(action, letter, delivery));
                }
            })
            .await?;
            if let Some(unknown) = which
                .ids
                .iter()
                .find(|id| !planned.iter().any(|o| o.id.as_ref() == Some(id)))
            {
                bail!(
                    "there is no dead letter {unknown} in {}",
                    self.queues.join(", ")
                );
            }
            let left = planned.iter().find(|o| o.outcome == "would leave");
            if let (false, Some(left)) = (which.all, left) {
                bail!(
                    "cannot {} {}: {}; nothing was changed",
                    action.verb(),
                    left.id.as_deref().unwrap_or_default(),
                    left.reason.as_deref().unwrap_or_default()
                );
            }
            if which.dry_run {
                return print_outcomes(out, json, &planned);
            }
        }
        let mut outcomes = Vec::new();
        for queue in self.queues.clone() {
            let mut left = Vec::new();
            let done = pass::run(
                &self.broker,
                &mut self.publisher,
                &queue,
                |letter, delivery| {
                    if !chosen(letter) {
                        return Verdict::Keep;
                    }
                    action.verdict(letter, delivery).unwrap_or_else(|why| {
                        left.push(why);
                        Verdict::Keep
                    })
                },
            )
            .await?;
            let mut left = left.into_iter();
            for (letter, done) in done.into_iter().filter(|(letter, _)| chosen(letter)) {
                let (outcome, to, reason) = match done {
                    Done::Replayed => ("replayed", letter.origin.ok(), None),
                    Done::Purged => ("purged", None, None),
                    Done::Refused(refused) => (
                        "left",
                        None,
                        Some(format!("RabbitMQ refused the replay: {refused}")),
                    ),
                    Done::Kept => ("left", None, left.next()),
                };
                outcomes.push(Outcome {
                    queue: letter.queue,
                    id: letter.id,
                    outcome: outcome.to_owned(),
                    to,
                    reason,
                });
            }
        }
        print_outcomes(out, json, &outcomes)
    }
}

/// What a dry run says would be done with a message chosen.
fn would(action: Action<'_>, letter: &DeadLetter, delivery: &Delivery) -> Outcome {
    let (outcome, to, reason) = match action.verdict(letter, delivery) {
        Ok(Verdict::Replay { origin, .. }) => ("would replay", Some(origin), None),
        Ok(_) => ("would purge", None, None),
        Err(why) => ("would leave", None, Some(why)),
    };
    Outcome {
        queue: letter.queue.clone(),
        id: letter.id.clone(),
        outcome: outcome.to_owned(),
        to,
        reason,
    }
}

fn print_outcomes(out: &mut impl Write, json: bool, outcomes: &[Outcome]) -> anyhow::Result<()> {
    crate::report(
        out,
        json,
        outcomes,
        &["QUEUE", "ID", "OUTCOME", "TO / WHY"],
        |o| {
            vec![
                o.queue.clone(),
                o.id.clone().unwrap_or_else(|| "-".to_owned()),
                o.outcome.clone(),
                match (&o.to, &o.reason) {
                    (Some(to), _) => format!("{} {}", to.exchange, to.routing_key),
                    (None, Some(why)) => why.clone(),
                    (None, None) => String::new(),
                },
            ]
        },
    )
}

/// A body as pretty JSON when it is JSON, else as text.
fn body(data: &[u8]) -> Value {
    serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}
