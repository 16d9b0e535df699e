//! What a pass did, per table: for the log line, the command line and the metrics.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The row stays, its personal data replaced or removed.
    Purged,
    /// The row is gone.
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purged => "purged",
            Self::Deleted => "deleted",
        }
    }
}

/// Rows of one table one action touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counted {
    pub table: &'static str,
    pub action: Action,
    pub rows: u64,
}

/// Every table and action a pass can touch, in the order it works, zero where nothing was due.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counts(Vec<Counted>);

impl Counts {
    /// Adds `rows` to the table's count of `action`.
    pub(crate) fn add(&mut self, table: &'static str, action: Action, rows: u64) {
        match self
            .0
            .iter_mut()
            .find(|c| c.table == table && c.action == action)
        {
            Some(counted) => counted.rows += rows,
            None => self.0.push(Counted {
                table,
                action,
                rows,
            }),
        }
    }

    /// How many rows of `table` the pass touched by `action`.
    pub fn of(&self, table: &str, action: Action) -> u64 {
        self.0
            .iter()
            .find(|c| c.table == table && c.action == action)
            .map_or(0, |c| c.rows)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.rows).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Counted> {
        self.0.iter()
    }

    /// One `table action=rows` word each for the log, the tables that changed only.
    pub fn summary(&self) -> String {
        let changed: Vec<String> = self
            .0
            .iter()
            .filter(|c| c.rows > 0)
            .map(|c| format!("{}.{}={}", c.table, c.action.as_str(), c.rows))
            .collect();
        if changed.is_empty() {
            "nothing due".to_owned()
        } else {
            changed.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_table_and_action() {
        let mut counts = Counts::default();
        counts.add("outbox", Action::Deleted, 2);
        counts.add("bookings", Action::Purged, 0);
        counts.add("outbox", Action::Deleted, 3);
        assert_eq!(counts.of("outbox", Action::Deleted), 5);
        assert_eq!(counts.of("outbox", Action::Purged), 0);
        assert_eq!(counts.total(), 5);
        assert_eq!(counts.summary(), "outbox.deleted=5");
        assert_eq!(Counts::default().summary(), "nothing due");
    }
}
