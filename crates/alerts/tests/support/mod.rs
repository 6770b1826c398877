//! What the forecast tests share: the server's side of one node's disk as it runs it, the
//! stored samples thinned by its housekeeping and the observation it evaluates.

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_alerts::{Membership, NodeDisk, NodeObservation, Observation};
use swarmkeeper_report::{thin, DiskSample, RetentionPolicy};

/// How often the server thins the stored samples.
pub const HOUSEKEEPING: SignedDuration = SignedDuration::from_mins(5);

/// The first moment of every replay.
pub fn start() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

/// Thins `samples` (oldest first) as the server's housekeeping does (`report::thin`), when
/// its last pass, `last_thinned`, is [`HOUSEKEEPING`] before `now`.
pub fn housekeep(samples: &mut Vec<DiskSample>, last_thinned: &mut Timestamp, now: Timestamp) {
    if now.duration_since(*last_thinned) < HOUSEKEEPING {
        return;
    }
    let gone = thin(samples, now, &RetentionPolicy::default());
    let mut i = 0;
    samples.retain(|_| {
        i += 1;
        gone.binary_search(&(i - 1)).is_err()
    });
    *last_thinned = now;
}

/// The observation of one node, `name`, a member whose agent reports every `interval` and
/// has just reported `disk`.
pub fn one_node(
    name: &str,
    now: Timestamp,
    interval: SignedDuration,
    disk: NodeDisk,
) -> Observation {
    Observation {
        nodes: vec![NodeObservation {
            name: name.into(),
            down: false,
            membership: Membership::Member,
            last_report: Some(now),
            ready_since: None,
            report_interval_seconds: interval.as_secs() as u64,
            disk: Some(disk),
        }],
        ..Observation::default()
    }
}
