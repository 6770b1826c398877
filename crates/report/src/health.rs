//! When the server stops counting on a node's agent.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Reports a node may miss before it counts as silent: one late report is a slow pass or a
/// busy network, three in a row are an agent that is gone.
pub const MISSED_INTERVALS: i64 = 3;

/// The least silence that counts, however short the interval: posting takes up to ten seconds
/// and the clocks of agent and server may differ by a few.
pub const SILENT_FLOOR: SignedDuration = SignedDuration::from_secs(30);

/// Whether a node's agent is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReportingState {
    Reporting,
    /// No report for longer than [`silent_after`] the node's interval; `since` is the last
    /// report received.
    Silent {
        since: Timestamp,
    },
    /// The server has never received a report from the node (a Swarm node without an agent,
    /// or whose agent cannot reach the server).
    Never,
}

/// How long a node reporting every `interval_seconds` may stay quiet before it counts as
/// silent.
pub fn silent_after(interval_seconds: u64) -> SignedDuration {
    let interval = i64::try_from(interval_seconds).unwrap_or(i64::MAX);
    SignedDuration::from_secs(interval.saturating_mul(MISSED_INTERVALS)).max(SILENT_FLOOR)
}

/// The state of a node whose last report was received at `last_report` (by the server's clock)
/// and announced `interval_seconds`.
pub fn node_reporting_state(
    last_report: Option<Timestamp>,
    interval_seconds: u64,
    now: Timestamp,
) -> ReportingState {
    match last_report {
        None => ReportingState::Never,
        Some(last) if now.duration_since(last) > silent_after(interval_seconds) => {
            ReportingState::Silent { since: last }
        }
        Some(_) => ReportingState::Reporting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const LAST: &str = "2026-11-26T12:00:00Z";

    #[test]
    fn a_node_never_heard_from_is_never() {
        assert_eq!(
            node_reporting_state(None, 30, t(LAST)),
            ReportingState::Never
        );
    }

    #[test]
    fn a_node_is_silent_after_three_missed_intervals() {
        let state = |now| node_reporting_state(Some(t(LAST)), 30, t(now));
        assert_eq!(state("2026-11-26T12:00:31Z"), ReportingState::Reporting);
        assert_eq!(state("2026-11-26T12:01:30Z"), ReportingState::Reporting);
        assert_eq!(
            state("2026-11-26T12:01:31Z"),
            ReportingState::Silent { since: t(LAST) }
        );
    }

    #[test]
    fn a_short_interval_still_gets_thirty_seconds() {
        let state = |now| node_reporting_state(Some(t(LAST)), 1, t(now));
        assert_eq!(state("2026-11-26T12:00:30Z"), ReportingState::Reporting);
        assert_eq!(
            state("2026-11-26T12:00:31Z"),
            ReportingState::Silent { since: t(LAST) }
        );
        assert_eq!(silent_after(0), SILENT_FLOOR);
    }

    #[test]
    fn a_report_from_the_future_counts_as_reporting() {
        assert_eq!(
            node_reporting_state(Some(t(LAST)), 30, t("2026-11-26T11:59:00Z")),
            ReportingState::Reporting
        );
    }

    #[test]
    fn a_huge_interval_does_not_overflow() {
        assert_eq!(
            node_reporting_state(Some(t(LAST)), u64::MAX, t("2100-01-01T00:00:00Z")),
            ReportingState::Reporting
        );
    }

    #[test]
    fn the_state_serialises_with_a_tag() {
        let silent = serde_json::to_value(ReportingState::Silent { since: t(LAST) }).unwrap();
        assert_eq!(
            silent,
            serde_json::json!({"state": "silent", "since": LAST})
        );
        assert_eq!(
            serde_json::to_value(ReportingState::Reporting).unwrap(),
            serde_json::json!({"state": "reporting"})
        );
    }
}
