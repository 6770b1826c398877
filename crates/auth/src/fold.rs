//! Repeated events folded into few audit rows, so that a flood of failed logins cannot grow
//! the audit log (or the admin's audit page) without bound. The log stays append-only: the
//! first event of a kind (same who, action and target) is written at once, so an attack shows
//! while it happens; the ones that follow within a window are only counted, and written as one
//! row with their count when the window closes. Plain data, `now` passed in.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::store::AuditEntry;
use crate::token::later;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Kind {
    who: String,
    action: String,
    target: String,
}

#[derive(Debug, Clone)]
struct Open {
    /// The written event that opened the window.
    first: Timestamp,
    /// Events counted since, not yet written.
    folded: u64,
    last: Timestamp,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AuditFold {
    window: SignedDuration,
    max_kinds: usize,
    open: HashMap<Kind, Open>,
}

impl AuditFold {
    /// Folds events of one kind for `window`, keeping at most `max_kinds` kinds open: past
    /// that, the oldest window closes early (its row is written) to make room.
    pub fn new(window: SignedDuration, max_kinds: usize) -> AuditFold {
        AuditFold {
            window,
            max_kinds: max_kinds.max(1),
            open: HashMap::new(),
        }
    }

    /// An event happened (at `entry.at`): the rows to append now, oldest first.
    pub fn record(&mut self, entry: AuditEntry) -> Vec<AuditEntry> {
        let kind = Kind {
            who: entry.who.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
        };
        let mut rows = Vec::new();
        if let Some(open) = self.open.get_mut(&kind) {
            if entry.at < later(open.first, self.window) {
                open.folded += 1;
                open.last = open.last.max(entry.at);
                return rows;
            }
            let open = self.open.remove(&kind).expect("the kind is open");
            rows.extend(summary(kind.clone(), open));
        } else if self.open.len() >= self.max_kinds {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, open)| open.first)
                .map(|(kind, _)| kind.clone());
            if let Some(oldest) = oldest {
                let open = self.open.remove(&oldest).expect("the kind is open");
                rows.extend(summary(oldest, open));
            }
        }
        self.open.insert(
            kind,
            Open {
                first: entry.at,
                folded: 0,
                last: entry.at,
            },
        );
        rows.push(entry);
        rows
    }

    /// The rows of windows closed by `now`, oldest first.
    pub fn due(&mut self, now: Timestamp) -> Vec<AuditEntry> {
        let window = self.window;
        let closed: Vec<Kind> = self
            .open
            .iter()
            .filter(|(_, open)| now >= later(open.first, window))
            .map(|(kind, _)| kind.clone())
            .collect();
        let mut rows: Vec<AuditEntry> = closed
            .into_iter()
            .filter_map(|kind| {
                let open = self.open.remove(&kind)?;
                summary(kind, open)
            })
            .collect();
        rows.sort_by_key(|row| row.at);
        rows
    }

    /// Every open window's row, as at shutdown.
    pub fn drain(&mut self) -> Vec<AuditEntry> {
        self.due(Timestamp::MAX)
    }
}

fn summary(kind: Kind, open: Open) -> Option<AuditEntry> {
    (open.folded > 0).then(|| AuditEntry {
        at: open.last,
        who: kind.who,
        action: kind.action,
        target: kind.target,
        detail: format!(
            "{} more between {} and {}",
            open.folded, open.first, open.last
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        "2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
    }

    fn failure(who: &str, source: &str, seconds: i64) -> AuditEntry {
        AuditEntry {
            at: at(seconds),
            who: who.into(),
            action: "login-failed".into(),
            target: source.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn a_flood_of_one_kind_is_two_rows_per_window() {
        let mut fold = AuditFold::new(SignedDuration::from_mins(15), 100);
        let mut written = fold.record(failure("admin", "192.0.2.1", 0));
        for second in 1..900 {
            written.extend(fold.record(failure("admin", "192.0.2.1", second)));
        }
        assert_eq!(written, [failure("admin", "192.0.2.1", 0)]);
        assert!(fold.due(at(899)).is_empty());
        let closed = fold.due(at(900));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].at, at(899));
        assert_eq!(
            closed[0].detail,
            "899 more between 2026-11-26T12:00:00Z and 2026-11-26T12:14:59Z"
        );
        // The next event opens the next window.
        let next = fold.record(failure("admin", "192.0.2.1", 999));
        assert_eq!(next.len(), 1);
        assert_eq!(fold.drain().len(), 0);
    }

    #[test]
    fn kinds_fold_apart_and_a_late_event_closes_its_window() {
        let mut fold = AuditFold::new(SignedDuration::from_mins(15), 100);
        assert_eq!(fold.record(failure("admin", "a", 0)).len(), 1);
        assert_eq!(fold.record(failure("admin", "b", 1)).len(), 1);
        assert_eq!(fold.record(failure("bob", "a", 2)).len(), 1);
        assert!(fold.record(failure("admin", "a", 3)).is_empty());
        let rows = fold.record(failure("admin", "a", 2000));
        assert_eq!(rows.len(), 2);
        assert!(rows[0].detail.starts_with("1 more"));
        assert_eq!(rows[1], failure("admin", "a", 2000));
    }

    #[test]
    fn the_table_stays_bounded_and_closes_the_oldest_window_first() {
        let mut fold = AuditFold::new(SignedDuration::from_mins(15), 2);
        fold.record(failure("a", "x", 0));
        fold.record(failure("a", "x", 1));
        fold.record(failure("b", "x", 2));
        let rows = fold.record(failure("c", "x", 3));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].who, "a");
        assert!(rows[0].detail.starts_with("1 more"));
        assert_eq!(fold.open.len(), 2);
    }
}
