//! What a lock reported, in the words staff read on the booking and Locks pages.

/// One RemoteLock event (`kind` without `_event`, its `status` and `status_info`) in words.
pub(super) fn describe(kind: &str, status: Option<&str>, status_info: Option<&str>) -> String {
    let failed = status == Some("failed");
    let why = status_info.map_or_else(String::new, |why| format!(" ({why})"));
    match (kind, failed) {
        ("unlocked", _) => "unlocked with a booking's PIN".to_owned(),
        ("access_person_used", false) => "PIN used at the keypad".to_owned(),
        ("access_person_used", true) => "PIN refused at the keypad (outside its window)".to_owned(),
        ("access_denied", _) => "access denied (a PIN it does not hold)".to_owned(),
        ("access_person_synced", _) => "the lock confirmed it holds the PIN".to_owned(),
        ("access_person_sync_failed", _) => format!("the lock could not take the PIN{why}"),
        ("connectivity", false) => "connected".to_owned(),
        ("connectivity", true) => "connection lost".to_owned(),
        ("power_level_low", _) => "battery low".to_owned(),
        ("battery_replaced", _) => "battery replaced".to_owned(),
        (other, _) => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn each_event_reads_as_a_sentence_and_an_unknown_one_as_its_name() {
        assert_eq!(
            describe("unlocked", Some("succeeded"), None),
            "unlocked with a booking's PIN"
        );
        assert_eq!(
            describe("access_person_sync_failed", Some("failed"), Some("timeout")),
            "the lock could not take the PIN (timeout)"
        );
        assert_eq!(
            describe("connectivity", Some("failed"), None),
            "connection lost"
        );
        assert_eq!(describe("jammed", Some("failed"), None), "jammed");
    }
}
