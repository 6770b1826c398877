//! Disk pressure, the kubelet's node condition for Swarm: when a node's disk is at or above a
//! hard threshold and its agent's last GC pass could not free enough, the server sets the
//! node's availability to `pause` (running tasks stay, no new ones go there), so that Swarm
//! stops sending it tasks it would reject; once usage has stayed below the high threshold for
//! a while, the node goes back to `active`. Only nodes that swarmkeeper paused itself are ever
//! set back: an operator's pause or drain is never touched.
//!
//! [`disk_pressure`] decides, from the node's reports; the server carries it out and marks the
//! nodes it paused with [`PRESSURE_LABEL`].

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{silent_after, DiskSample, NodeReport};

/// The node label the server sets when it pauses a node for disk pressure, with why as its
/// value; its presence is what [`NodeState::paused_by_swarmkeeper`] means.
pub const PRESSURE_LABEL: &str = "swarmkeeper.disk-pressure";

/// The server's settings (`--disk-pressure-threshold`, `--disk-pressure-release`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PressurePolicy {
    /// Pause at or above this usage (with a pass that fell short); 0 turns disk pressure off.
    pub threshold_percent: u8,
    /// Release once usage has stayed below the node's high threshold this long.
    pub release_after: SignedDuration,
}

impl Default for PressurePolicy {
    fn default() -> Self {
        PressurePolicy {
            threshold_percent: 95,
            release_after: SignedDuration::from_mins(5),
        }
    }
}

/// What the decision needs of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PressureSample {
    /// When the server received the report (its own clock).
    pub received_at: Timestamp,
    pub usage_percent: u8,
    /// The agent's high threshold.
    pub high_threshold_percent: u8,
    /// The agent's last pass ran space GC and could not free enough.
    pub last_pass_fell_short: bool,
    /// The agent's reporting interval, to tell a silent node.
    pub interval_seconds: u64,
}

impl PressureSample {
    pub fn from_report(report: &NodeReport, received_at: Timestamp) -> PressureSample {
        PressureSample {
            received_at,
            usage_percent: report.disk.usage_percent,
            high_threshold_percent: report.high_threshold_percent,
            last_pass_fell_short: report.last_pass.as_ref().is_some_and(|p| p.fell_short()),
            interval_seconds: report.interval_seconds,
        }
    }
}

/// The samples [`disk_pressure`] decides on: the node's disk samples received before
/// `received_at` (oldest first), at the report's high threshold and interval, then `report`
/// itself. Only the newest sample says whether the last pass fell short: a pause is decided
/// on the newest report alone.
pub fn pressure_samples(
    history: &[DiskSample],
    report: &NodeReport,
    received_at: Timestamp,
) -> Vec<PressureSample> {
    let latest = PressureSample::from_report(report, received_at);
    history
        .iter()
        .filter(|s| s.at < received_at)
        .map(|s| PressureSample {
            received_at: s.at,
            usage_percent: swarmkeeper_gc::usage_percent(
                s.capacity_bytes,
                s.capacity_bytes.saturating_sub(s.used_bytes),
            ),
            last_pass_fell_short: false,
            ..latest
        })
        .chain(std::iter::once(latest))
        .collect()
}

/// A Swarm node's availability (`Spec.Availability`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Active,
    Pause,
    Drain,
    /// A value this build does not know.
    Other(String),
}

impl Availability {
    pub fn parse(text: &str) -> Availability {
        match text {
            "active" => Availability::Active,
            "pause" => Availability::Pause,
            "drain" => Availability::Drain,
            other => Availability::Other(other.to_string()),
        }
    }
}

/// The node as Swarm has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub availability: Availability,
    /// The node carries [`PRESSURE_LABEL`]: swarmkeeper paused it.
    pub paused_by_swarmkeeper: bool,
}

/// What the server should do with a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PressureAction {
    /// Set availability to `pause` and [`PRESSURE_LABEL`] to `reason`.
    Pause {
        reason: String,
    },
    /// Set availability back to `active` and remove [`PRESSURE_LABEL`].
    Release,
    /// An operator changed the availability of a node swarmkeeper had paused: remove
    /// [`PRESSURE_LABEL`] and leave the availability as the operator set it.
    Forget,
    LeaveAlone,
}

/// The decision for one node, from its reports (oldest first; the server's disk samples of the
/// last `release_after` or more will do), at `now`.
///
/// - Off (`threshold_percent` 0): a node swarmkeeper paused is released; nothing else.
/// - No report, or the node is silent ([`silent_after`] its interval): left as it is, paused
///   or not — a silent agent says nothing about the disk.
/// - An active node whose newest report is at or above the threshold after a pass that fell
///   short is paused. A node an operator paused or drained is never paused "again".
/// - A node swarmkeeper paused is released once every report since `now − release_after`,
///   and the one before, were below the node's high threshold; if an operator has since
///   changed its availability, swarmkeeper forgets it paused it.
pub fn disk_pressure(
    reports: &[PressureSample],
    policy: &PressurePolicy,
    node: &NodeState,
    now: Timestamp,
) -> PressureAction {
    let ours = node.paused_by_swarmkeeper;
    if ours && node.availability != Availability::Pause {
        return PressureAction::Forget;
    }
    if policy.threshold_percent == 0 {
        return if ours {
            PressureAction::Release
        } else {
            PressureAction::LeaveAlone
        };
    }
    let Some(latest) = reports.last() else {
        return PressureAction::LeaveAlone;
    };
    if now.duration_since(latest.received_at) > silent_after(latest.interval_seconds) {
        return PressureAction::LeaveAlone;
    }
    if !ours {
        let pressed =
            latest.usage_percent >= policy.threshold_percent && latest.last_pass_fell_short;
        return if pressed && node.availability == Availability::Active {
            PressureAction::Pause {
                reason: format!(
                    "disk {}% >= {}% and GC could not free enough",
                    latest.usage_percent, policy.threshold_percent
                ),
            }
        } else {
            PressureAction::LeaveAlone
        };
    }
    // Since when usage has been below the high threshold without a break.
    let below = |s: &PressureSample| s.usage_percent < s.high_threshold_percent;
    let run = reports.iter().rev().take_while(|s| below(s)).count();
    let below_since = match run {
        0 => return PressureAction::LeaveAlone,
        n => reports[reports.len() - n].received_at,
    };
    if now.duration_since(below_since) >= policy.release_after {
        PressureAction::Release
    } else {
        PressureAction::LeaveAlone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-26T12:00:00Z";

    fn at(secs_ago: i64) -> Timestamp {
        NOW.parse::<Timestamp>().unwrap() - SignedDuration::from_secs(secs_ago)
    }

    fn sample(secs_ago: i64, usage: u8, fell_short: bool) -> PressureSample {
        PressureSample {
            received_at: at(secs_ago),
            usage_percent: usage,
            high_threshold_percent: 85,
            last_pass_fell_short: fell_short,
            interval_seconds: 30,
        }
    }

    fn node(availability: Availability, ours: bool) -> NodeState {
        NodeState {
            availability,
            paused_by_swarmkeeper: ours,
        }
    }

    fn decide(reports: &[PressureSample], node: &NodeState) -> PressureAction {
        disk_pressure(reports, &PressurePolicy::default(), node, at(0))
    }

    #[test]
    fn a_full_node_whose_gc_fell_short_is_paused() {
        let action = decide(
            &[sample(40, 90, false), sample(5, 96, true)],
            &node(Availability::Active, false),
        );
        assert_eq!(
            action,
            PressureAction::Pause {
                reason: "disk 96% >= 95% and GC could not free enough".into()
            }
        );
    }

    #[test]
    fn a_full_node_whose_gc_keeps_up_or_a_busy_one_is_left_alone() {
        let active = node(Availability::Active, false);
        // GC freed enough: the next pass will bring it down.
        assert_eq!(
            decide(&[sample(5, 97, false)], &active),
            PressureAction::LeaveAlone
        );
        // Fell short, but below the hard threshold.
        assert_eq!(
            decide(&[sample(5, 94, true)], &active),
            PressureAction::LeaveAlone
        );
        assert_eq!(decide(&[], &active), PressureAction::LeaveAlone);
    }

    #[test]
    fn an_operators_pause_or_drain_is_never_touched() {
        for availability in [Availability::Pause, Availability::Drain] {
            let operator = node(availability, false);
            assert_eq!(
                decide(&[sample(5, 99, true)], &operator),
                PressureAction::LeaveAlone
            );
            assert_eq!(
                decide(&[sample(900, 10, false), sample(5, 10, false)], &operator),
                PressureAction::LeaveAlone
            );
        }
    }

    #[test]
    fn a_node_swarmkeeper_paused_is_released_after_five_minutes_below_high() {
        let ours = node(Availability::Pause, true);
        // Below 85 % for 4 minutes only.
        let recent = [
            sample(600, 96, true),
            sample(240, 80, false),
            sample(5, 70, false),
        ];
        assert_eq!(decide(&recent, &ours), PressureAction::LeaveAlone);
        // Below since 5 minutes: released.
        let long = [
            sample(600, 96, true),
            sample(300, 80, false),
            sample(5, 70, false),
        ];
        assert_eq!(decide(&long, &ours), PressureAction::Release);
        // A report back above high restarts the wait.
        let bounced = [
            sample(600, 80, false),
            sample(120, 86, false),
            sample(5, 70, false),
        ];
        assert_eq!(decide(&bounced, &ours), PressureAction::LeaveAlone);
        // Still full: stays paused.
        assert_eq!(
            decide(&[sample(5, 97, true)], &ours),
            PressureAction::LeaveAlone
        );
    }

    #[test]
    fn an_operator_who_changed_a_node_swarmkeeper_paused_takes_it_over() {
        for availability in [Availability::Active, Availability::Drain] {
            assert_eq!(
                decide(&[sample(5, 99, true)], &node(availability, true)),
                PressureAction::Forget
            );
        }
    }

    #[test]
    fn a_silent_node_is_left_as_it_is() {
        // Three intervals (90 s) without a report.
        let silent = [sample(600, 99, true), sample(100, 99, true)];
        assert_eq!(
            decide(&silent, &node(Availability::Active, false)),
            PressureAction::LeaveAlone
        );
        let silent = [sample(900, 10, false), sample(400, 10, false)];
        assert_eq!(
            decide(&silent, &node(Availability::Pause, true)),
            PressureAction::LeaveAlone
        );
    }

    #[test]
    fn off_releases_what_swarmkeeper_paused_and_does_nothing_else() {
        let off = PressurePolicy {
            threshold_percent: 0,
            ..PressurePolicy::default()
        };
        let full = [sample(5, 99, true)];
        assert_eq!(
            disk_pressure(&full, &off, &node(Availability::Active, false), at(0)),
            PressureAction::LeaveAlone
        );
        assert_eq!(
            disk_pressure(&full, &off, &node(Availability::Pause, true), at(0)),
            PressureAction::Release
        );
    }

    #[test]
    fn the_history_comes_first_in_the_kubelets_percent() {
        let mut report = NodeReport {
            high_threshold_percent: 85,
            interval_seconds: 30,
            ..NodeReport::default()
        };
        report.disk.usage_percent = 70;
        let history = [
            DiskSample {
                at: at(120),
                used_bytes: 951,
                capacity_bytes: 1000,
                reclaimable_bytes: 0,
            },
            DiskSample {
                at: at(0),
                used_bytes: 700,
                capacity_bytes: 1000,
                reclaimable_bytes: 0,
            },
        ];
        let samples = pressure_samples(&history, &report, at(0));
        let seen: Vec<_> = samples
            .iter()
            .map(|s| (s.received_at, s.usage_percent, s.high_threshold_percent))
            .collect();
        // 49 of 1000 bytes available is 96 % used (the kubelet floors what is free); the
        // sample stored with this very report is not counted twice.
        assert_eq!(seen, [(at(120), 96, 85), (at(0), 70, 85)]);
    }

    #[test]
    fn samples_come_from_reports() {
        let report: NodeReport = serde_json::from_value(serde_json::json!({
            "node_id": "n1", "hostname": "h", "engine_version": "20.10", "reported_at": NOW,
            "agent_version": "0.1.0", "interval_seconds": 30,
            "disk": {"filesystem": {"path": "/var/lib/docker", "capacity_bytes": 100, "available_bytes": 3},
                     "usage_percent": 97, "used_bytes": 97, "image_count": 0, "images_unique_bytes": 0,
                     "images_shared_bytes": 0, "container_count": 0, "containers_bytes": 0,
                     "logs_bytes": null, "volume_count": 0, "volumes_bytes": 0,
                     "build_cache_bytes": 0, "other_bytes": 97},
            "high_threshold_percent": 85, "low_threshold_percent": 80, "images": [], "gc_runs": [],
            "last_pass": {"started_at": NOW, "space_trigger": "high-threshold", "usage_percent_after": 97,
                          "shortfall_bytes": 20, "short_of_low_threshold": true, "short_of_headroom": false}
        }))
        .unwrap();
        let s = PressureSample::from_report(&report, at(0));
        assert_eq!(
            (
                s.usage_percent,
                s.high_threshold_percent,
                s.last_pass_fell_short
            ),
            (97, 85, true)
        );
        // An older agent's report has no last pass: it never counts as having fallen short.
        let mut old = report;
        old.last_pass = None;
        assert!(!PressureSample::from_report(&old, at(0)).last_pass_fell_short);
    }
}
