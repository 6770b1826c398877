//! Why an alert ended: the words of its resolved message (tryout finding 10: a resolved
//! forecast said "will be full in about 2m", the last firing summary).
//!
//! Asked only for the alerts that resolve at an evaluation, from the same [`Observation`]
//! that no longer shows their condition, so it costs nothing while nothing resolves.

use jiff::Timestamp;

use crate::observe::{count_within, disk_forecast_ended, mib, Membership, Observation};
use crate::rules::{AlertRules, RuleId};

/// One line for a person saying why `rule`'s alert about `subject` ended at `now`, read from
/// `observation` (where its condition no longer holds): what is true now, with the figures.
pub fn why_ended(
    rules: &AlertRules,
    observation: &Observation,
    rule: RuleId,
    subject: &str,
    now: Timestamp,
) -> String {
    if !rules.enabled(rule) {
        return format!("the {rule} rule was switched off");
    }
    match rule {
        RuleId::NodeDown
        | RuleId::AgentSilent
        | RuleId::DiskGcShortfall
        | RuleId::DiskFullForecast => node_ended(rules, observation, rule, subject, now),
        RuleId::ServiceNotConverged | RuleId::RolledBack | RuleId::RestartLoop => {
            service_ended(rules, observation, rule, subject, now)
        }
        RuleId::OomKill | RuleId::MemoryNearLimit => task_ended(rules, observation, rule, subject),
        RuleId::AlertChannelUnusable => {
            // Asked only once its condition went: the channel is gone, or opens.
            if observation.channels.iter().any(|c| c.name == subject) {
                format!("alert channel {subject} can be used again: its settings open")
            } else {
                format!("alert channel {subject} was removed")
            }
        }
        RuleId::Test => "a test message".into(),
    }
}

fn node_ended(
    rules: &AlertRules,
    observation: &Observation,
    rule: RuleId,
    name: &str,
    now: Timestamp,
) -> String {
    let Some(node) = observation.nodes.iter().find(|n| n.name == name) else {
        return format!("node {name} is no longer in the swarm");
    };
    if node.membership == Membership::Removed {
        return format!("node {name} was removed from the swarm");
    }
    match rule {
        RuleId::NodeDown if node.down => {
            format!("node {name} was drained: its maintenance pages no one")
        }
        RuleId::NodeDown => format!("node {name} is up again"),
        RuleId::AgentSilent if node.down => {
            format!("node {name} is down: the node-down alert tells of it")
        }
        RuleId::AgentSilent if node.membership == Membership::Drained => {
            format!("node {name} was drained, which stopped its agent")
        }
        RuleId::AgentSilent
            if node
                .ready_since
                .zip(node.last_report)
                .is_some_and(|(ready, last)| last < ready) =>
        {
            format!("node {name} is back: its agent has its time to report again")
        }
        RuleId::AgentSilent => format!("the agent on node {name} reports again"),
        _ => {
            let Some(disk) = &node.disk else {
                return format!("node {name} has no agent reporting its disk");
            };
            let used = disk.usage_percent;
            match rule {
                RuleId::DiskGcShortfall if used < disk.high_threshold_percent => format!(
                    "disk of node {name} is {used}% full, below the GC high threshold ({}%)",
                    disk.high_threshold_percent
                ),
                RuleId::DiskGcShortfall => {
                    format!("garbage collection on node {name} freed enough (disk {used}% full)")
                }
                _ => disk_forecast_ended(&rules.disk_full_forecast, name, disk, now),
            }
        }
    }
}

fn service_ended(
    rules: &AlertRules,
    observation: &Observation,
    rule: RuleId,
    name: &str,
    now: Timestamp,
) -> String {
    let Some(service) = observation.services.iter().find(|s| s.name == name) else {
        return format!("service {name} is no longer listed (removed)");
    };
    match rule {
        RuleId::ServiceNotConverged => format!("service {name} converged"),
        RuleId::RolledBack => match service
            .rolled_back
            .as_ref()
            .and_then(|r| r.requested_by.as_ref())
        {
            Some(who) => format!("service {name} was rolled back by {who}, on request"),
            None => format!("service {name} was updated again since the rollback"),
        },
        _ => {
            let restart = &rules.restart_loop;
            let within = humantime::format_duration(restart.within);
            let current = count_within(&service.spec_restarts(), now, restart.within);
            let newest = service.spec_restarts().into_iter().max();
            match service.spec_since {
                _ if service.restarts_partial && service.loop_ended => match newest {
                    Some(newest) => format!(
                        "service {name}: its restart loop has ended, no task restart since \
                         {newest} ({current} counted in the last {within}; the server's \
                         restart may have missed some)"
                    ),
                    None => format!("service {name}: no task restart in the last {within}"),
                },
                Some(since) if current < count_within(&service.restarts, now, restart.within) => {
                    format!(
                        "service {name} runs another spec since {since}: {current} task \
                         restarts of it in the last {within}, fewer than {}",
                        restart.restarts
                    )
                }
                _ => format!(
                    "service {name}: {current} task restarts in the last {within}, fewer than {}",
                    restart.restarts
                ),
            }
        }
    }
}

fn task_ended(rules: &AlertRules, observation: &Observation, rule: RuleId, name: &str) -> String {
    let task = observation.tasks.iter().find(|t| t.name == name);
    match (rule, task) {
        (RuleId::OomKill, _) => format!(
            "no OOM kill of task {name} in the last {}",
            humantime::format_duration(rules.oom_kill.keep_firing_for)
        ),
        (_, Some(task)) => match task.memory_limit_bytes {
            Some(limit) if limit > 0 => format!(
                "task {name} uses {}% of its memory limit ({} of {}), below {}%",
                u128::from(task.memory_bytes) * 100 / u128::from(limit),
                mib(task.memory_bytes),
                mib(limit),
                rules.memory_near_limit.percent
            ),
            _ => format!("task {name} has no memory limit any more"),
        },
        (_, None) => format!("task {name} no longer runs (no usage sample of it)"),
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::observe::{NodeDisk, NodeObservation, ServiceObservation, TaskObservation};
    use crate::{evaluate, AlertState, Status};

    const MIB: u64 = 1 << 20;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn node(name: &str, down: bool, usage_percent: u8) -> NodeObservation {
        NodeObservation {
            name: name.into(),
            down,
            membership: Membership::Member,
            last_report: None,
            ready_since: None,
            report_interval_seconds: 30,
            disk: Some(NodeDisk {
                usage_percent,
                high_threshold_percent: 85,
                gc_fell_short: true,
                samples: vec![],
            }),
        }
    }

    fn service(restarts: usize) -> ServiceObservation {
        ServiceObservation {
            name: "web".into(),
            converged: true,
            rolled_back: None,
            restarts: (0..restarts as i64).map(at).collect(),
            restarts_partial: false,
            loop_ended: false,
            spec_since: None,
        }
    }

    /// Tryout finding 10: the resolved message says why the alert ended, not the firing
    /// text; each rule in its own words.
    #[test]
    fn a_resolved_message_says_why_its_alert_ended() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let firing = Observation {
            nodes: vec![node("w1", true, 50), node("w2", false, 90)],
            services: vec![service(5)],
            ..Observation::default()
        };
        let sent = evaluate(&mut state, &rules, &firing, &[], at(10));
        assert!(sent.iter().any(|m| m.rule == RuleId::RestartLoop));
        let sent = evaluate(&mut state, &rules, &firing, &[], at(100));
        assert!(sent.iter().any(|m| m.rule == RuleId::NodeDown), "{sent:?}");
        let ended = Observation {
            nodes: vec![node("w1", false, 50), node("w2", false, 60)],
            services: vec![service(4)],
            ..Observation::default()
        };
        // 4 of the 5 restarts are still within the window 10 minutes after the first.
        let later = at(600);
        let sent = evaluate(&mut state, &rules, &ended, &[], later);
        let resolved: Vec<(RuleId, &str)> = sent
            .iter()
            .filter(|m| m.status == Status::Resolved)
            .map(|m| (m.rule, m.summary.as_str()))
            .collect();
        assert_eq!(
            resolved,
            [
                (
                    RuleId::DiskGcShortfall,
                    "disk of node w2 is 60% full, below the GC high threshold (85%)"
                ),
                (RuleId::NodeDown, "node w1 is up again"),
                (
                    RuleId::RestartLoop,
                    "service web: 4 task restarts in the last 10m, fewer than 5"
                ),
            ]
        );
    }

    /// Tryout finding 5: a loop that ends because the service runs another spec says so.
    #[test]
    fn a_restart_loop_left_behind_by_a_new_spec_says_so() {
        let rules = AlertRules::default();
        let mut s = service(6);
        s.spec_since = Some(at(4));
        let observation = Observation {
            services: vec![s],
            ..Observation::default()
        };
        assert_eq!(
            why_ended(&rules, &observation, RuleId::RestartLoop, "web", at(10)),
            format!(
                "service web runs another spec since {}: 2 task restarts of it in the last \
                 10m, fewer than 5",
                at(4)
            )
        );
    }

    /// Issue 15 item 3: a loop resolved after a restart, its count possibly short, says the
    /// loop ended, not "fewer than 5".
    #[test]
    fn a_loop_seen_over_after_a_restart_says_so() {
        let rules = AlertRules::default();
        let mut s = service(2);
        s.restarts_partial = true;
        s.loop_ended = true;
        let observation = Observation {
            services: vec![s],
            ..Observation::default()
        };
        assert_eq!(
            why_ended(&rules, &observation, RuleId::RestartLoop, "web", at(300)),
            format!(
                "service web: its restart loop has ended, no task restart since {} (2 counted \
                 in the last 10m; the server's restart may have missed some)",
                at(1)
            )
        );
    }

    #[test]
    fn each_rule_has_its_words() {
        let rules = AlertRules::default();
        let now = at(0) + SignedDuration::from_hours(1);
        let mut drained = node("w2", false, 50);
        drained.membership = Membership::Drained;
        let mut removed = node("w3", false, 50);
        removed.membership = Membership::Removed;
        // Back from down (tryout finding 8): its agent has not reported since, and has time to.
        let mut back = node("w4", false, 50);
        back.last_report = Some(now - SignedDuration::from_mins(10));
        back.ready_since = Some(now - SignedDuration::from_mins(1));
        // Drained, then shut down for its maintenance (tryout 11 finding 8).
        let mut maintained = node("w5", true, 50);
        maintained.membership = Membership::Drained;
        let observation = Observation {
            nodes: vec![node("w1", false, 90), drained, removed, back, maintained],
            services: vec![service(0)],
            tasks: vec![TaskObservation {
                name: "web.1".into(),
                node: "w1".into(),
                memory_bytes: 50 * MIB,
                memory_limit_bytes: Some(100 * MIB),
                oom_kills: vec![],
            }],
            ..Observation::default()
        };
        let why = |rule, subject| why_ended(&rules, &observation, rule, subject, now);
        assert_eq!(
            why(RuleId::DiskGcShortfall, "w1"),
            "garbage collection on node w1 freed enough (disk 90% full)"
        );
        assert_eq!(
            why(RuleId::DiskFullForecast, "w1"),
            "disk of node w1 is no longer predicted full: 90% used"
        );
        assert_eq!(
            why(RuleId::AgentSilent, "w1"),
            "the agent on node w1 reports again"
        );
        assert_eq!(
            why(RuleId::AgentSilent, "w2"),
            "node w2 was drained, which stopped its agent"
        );
        assert_eq!(
            why(RuleId::NodeDown, "w5"),
            "node w5 was drained: its maintenance pages no one"
        );
        assert_eq!(
            why(RuleId::AgentSilent, "w4"),
            "node w4 is back: its agent has its time to report again"
        );
        assert_eq!(
            why(RuleId::NodeDown, "w3"),
            "node w3 was removed from the swarm"
        );
        assert_eq!(
            why(RuleId::NodeDown, "gone"),
            "node gone is no longer in the swarm"
        );
        assert_eq!(
            why(RuleId::ServiceNotConverged, "web"),
            "service web converged"
        );
        assert_eq!(
            why(RuleId::RolledBack, "web"),
            "service web was updated again since the rollback"
        );
        assert_eq!(
            why(RuleId::RolledBack, "api"),
            "service api is no longer listed (removed)"
        );
        assert_eq!(
            why(RuleId::OomKill, "web.1"),
            "no OOM kill of task web.1 in the last 15m"
        );
        assert_eq!(
            why(RuleId::MemoryNearLimit, "web.1"),
            "task web.1 uses 50% of its memory limit (50.0 MiB of 100.0 MiB), below 90%"
        );
        assert_eq!(
            why(RuleId::MemoryNearLimit, "web.2"),
            "task web.2 no longer runs (no usage sample of it)"
        );
        let mut off = rules.clone();
        off.node_down.enabled = false;
        assert_eq!(
            why_ended(&off, &observation, RuleId::NodeDown, "w1", now),
            "the node-down rule was switched off"
        );
    }
}
