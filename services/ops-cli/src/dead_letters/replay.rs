//! What a replay publishes, and as whom.
//!
//! A replay goes to the message's origin with the original's properties and headers, without
//! the dead-letter headers: to its consumer it is the message it was. One property needs
//! thought: `user_id`. booking-intake takes the source of an AMQP booking from it, and trusts
//! it because RabbitMQ refuses a publish whose `user_id` is not the publishing connection's
//! user. A replay is published by this command line's user, so it can carry no other
//! `user_id`: replayed as someone else, an intake message would be applied under another
//! source (or none). So a message that was published with a `user_id` is replayed only by a
//! user that booking-intake maps to the same source: the very user, or one that
//! `intake.amqp_sources` (read from the same configuration as booking-intake's) maps to the
//! same source name; anything else is refused, naming the user to connect as. Nobody can
//! spoof a source this way: the replay carries the replaying user's `user_id`, which RabbitMQ
//! verifies, and booking-intake maps it with its own configuration; the check here only keeps
//! an operator from moving a message to another source by mistake.

use std::collections::BTreeMap;

use lapin::{BasicProperties, message::Delivery};
use lockbridge_runtime::amqp::dead_letter::carried_properties;

use super::letter::{DeadLetter, original_headers};

/// Who replays: the user of `amqp.url`, and booking-intake's map of users to sources.
pub(crate) struct Replayer {
    pub user: String,
    pub sources: BTreeMap<String, String>,
}

impl Replayer {
    /// The user_id a replay of `letter` carries (`None`: none), or why it cannot be replayed
    /// by this user.
    pub fn user_id_for(&self, letter: &DeadLetter) -> Result<Option<String>, String> {
        let Some(publisher) = letter.published_by.as_deref() else {
            return Ok(None);
        };
        if publisher == self.user {
            return Ok(Some(self.user.clone()));
        }
        match (self.sources.get(publisher), self.sources.get(&self.user)) {
            (Some(theirs), Some(ours)) if theirs == ours => Ok(Some(self.user.clone())),
            (Some(theirs), _) => Err(format!(
                "it was published by RabbitMQ user {publisher}, whose bookings are source \
                 {theirs}: replay it connected (amqp.url) as {publisher} or as another user \
                 intake.amqp_sources maps to {theirs}, not as {}",
                self.user
            )),
            (None, _) => Err(format!(
                "it was published by RabbitMQ user {publisher}, which intake.amqp_sources maps \
                 to no source: replay it connected (amqp.url) as {publisher}, not as {}",
                self.user
            )),
        }
    }

    /// The properties of `delivery`'s replay, or why it cannot be replayed by this user.
    pub fn properties(
        &self,
        letter: &DeadLetter,
        delivery: &Delivery,
    ) -> Result<BasicProperties, String> {
        let user_id = self.user_id_for(letter)?;
        let original = &delivery.properties;
        let properties =
            carried_properties(original, original_headers(original.headers().as_ref()));
        Ok(match user_id {
            Some(user_id) => properties.with_user_id(user_id.into()),
            None => properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letters::letter::Origin;

    fn letter(published_by: Option<&str>) -> DeadLetter {
        DeadLetter {
            queue: "booking-intake.bookings.dead-letter".into(),
            id: Some("m-1".into()),
            kind: None,
            origin: Ok(Origin {
                exchange: "lockbridge.intake".into(),
                routing_key: "booking.upsert".into(),
            }),
            reason: "space_id: no such space".into(),
            dead_lettered_at: None,
            size: 2,
            published_by: published_by.map(Into::into),
        }
    }

    fn replayer(user: &str) -> Replayer {
        Replayer {
            user: user.into(),
            sources: [
                ("bridge", "libcal"),
                ("bridge-2", "libcal"),
                ("other", "campus"),
            ]
            .map(|(user, source)| (user.to_owned(), source.to_owned()))
            .into(),
        }
    }

    #[test]
    fn a_message_keeps_its_source_or_is_refused_naming_whom_to_connect_as() {
        assert_eq!(replayer("ops").user_id_for(&letter(None)), Ok(None));
        assert_eq!(
            replayer("bridge").user_id_for(&letter(Some("bridge"))),
            Ok(Some("bridge".into()))
        );
        // Another user of the same source: booking-intake gives the replay the same source.
        assert_eq!(
            replayer("bridge-2").user_id_for(&letter(Some("bridge"))),
            Ok(Some("bridge-2".into()))
        );
        let refused = replayer("other")
            .user_id_for(&letter(Some("bridge")))
            .unwrap_err();
        assert!(
            refused.contains("connected (amqp.url) as bridge"),
            "{refused}"
        );
        assert!(refused.contains("source libcal"), "{refused}");
        let unmapped = replayer("ops")
            .user_id_for(&letter(Some("stranger")))
            .unwrap_err();
        assert!(unmapped.contains("maps to no source"), "{unmapped}");
        // The same user replays a message of an unmapped user (once it is mapped at intake).
        assert_eq!(
            replayer("stranger").user_id_for(&letter(Some("stranger"))),
            Ok(Some("stranger".into()))
        );
    }
}
