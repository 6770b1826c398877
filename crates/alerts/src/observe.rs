//! What the server sees of the cluster at one evaluation, and which rule conditions hold.
//!
//! The server fills an [`Observation`] from facts defined elsewhere (Swarm's node state, the
//! rollout crate's "converged", the agents' reports and samples); [`conditions`] only applies
//! the thresholds of [`AlertRules`].

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::{node_reporting_state, silent_after, DiskSample, ReportingState};

use crate::forecast::{forecast_full, Forecast};
use crate::rules::{AlertRules, DiskFullForecast, RuleId};

/// The cluster at one evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub nodes: Vec<NodeObservation>,
    pub services: Vec<ServiceObservation>,
    pub tasks: Vec<TaskObservation>,
    /// When the observer (the server) started, if it says: until every node still in the
    /// swarm has reported since, or has had its time to (`swarmkeeper_report::silent_after`
    /// of its interval), a task slot without a sample may be one whose node has not spoken
    /// yet, so the task rules (oom-kill, memory-near-limit) are unknown for every subject
    /// they do not see holding, as a Prometheus rule restored after a restart waits for data.
    pub started_at: Option<Timestamp>,
    /// The alert channels an admin added (not the `--alert-webhook`s, which need no key), and
    /// whether each can be used.
    pub channels: Vec<ChannelObservation>,
}

/// One alert channel stored by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelObservation {
    /// The channel's name (unique among channels): the subject of its alert.
    pub name: String,
    /// Why the server cannot use it (its settings, sealed with another key, do not open),
    /// in words without a secret; `None` when it can.
    pub problem: Option<String>,
}

/// One Swarm node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObservation {
    /// The node's hostname: the subject of its alerts.
    pub name: String,
    /// Swarm reports the node `down` or `disconnected` (`Status.State`).
    pub down: bool,
    /// Whether the node is still in the swarm and takes tasks (see [`Membership`]).
    pub membership: Membership,
    /// When the server last received a report from the node's agent (by the server's clock);
    /// `None` if it never did (no agent: no agent-silent alert).
    pub last_report: Option<Timestamp>,
    /// When the server saw the node become able to run its agent again (see [`Readiness`]):
    /// back from `down` or out of `drain`. Its agent, a global task Swarm starts anew then,
    /// gets the silence allowance from here, not from its last report before (tryout
    /// findings 6 and 8). `None`: no such change seen since the server started.
    pub ready_since: Option<Timestamp>,
    /// The interval the agent announced in its reports.
    pub report_interval_seconds: u64,
    /// The image filesystem, from the agent's reports; `None` without an agent.
    pub disk: Option<NodeDisk>,
}

/// Where a node stands in Swarm's node list, which decides the rules that own it (as
/// Alertmanager's inhibition rules would say it): node-down owns a node Swarm calls down; an
/// operator who drained a node owns it (the drain stopped its agent, a global task, so
/// agent-silent would only repeat what they did, and a drained node shut down for its
/// maintenance raises no node-down); a node removed from the swarm has no alerts at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// In the node list with availability `active` or `pause`, or the list could not be read
    /// (then the reports are all the server knows).
    Member,
    /// In the node list with availability `drain`: no agent-silent or node-down alert, and
    /// what its agent last said about its disk is unknown, neither firing nor resolved.
    Drained,
    /// No longer in the node list (`docker node rm`): every alert about it resolves, and no
    /// new one starts, whatever its agent last reported.
    Removed,
}

/// Whether a node could run its agent at an evaluation (Swarm does not call it down and it is
/// not drained), and since when, as the server saw it: [`NodeObservation::ready_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub able: bool,
    /// When `able` turned true; `None` when it was already so at the first sight of the node,
    /// or the node is not able.
    pub since: Option<Timestamp>,
}

impl Readiness {
    /// The node's readiness at `now`, given the one of the previous evaluation (`None`: the
    /// first since the server started, when how long it has been able is unknown, so the
    /// agent's last report alone counts, as before a restart).
    pub fn next(previous: Option<Readiness>, able: bool, now: Timestamp) -> Readiness {
        match previous {
            Some(p) if p.able == able => p,
            Some(_) => Readiness {
                able,
                since: able.then_some(now),
            },
            None => Readiness { able, since: None },
        }
    }
}

/// A node's image filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDisk {
    /// `swarmkeeper_gc::usage_percent` of the latest report.
    pub usage_percent: u8,
    /// The agent's GC high threshold.
    pub high_threshold_percent: u8,
    /// The agent's latest GC pass ended with outcome `shortfall`.
    pub gc_fell_short: bool,
    /// The node's disk history, in any order; the forecast reads the last window of it.
    pub samples: Vec<DiskSample>,
}

/// One Swarm service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObservation {
    pub name: String,
    /// Converged as `swarmkeeper_rollout` defines it.
    pub converged: bool,
    /// The service's last update was rolled back, by Swarm (`UpdateStatus.State`
    /// `rollback_completed`) or by the deploy engine (a revision that ended rolled back, and
    /// no update of the service since), with what made that update and why.
    pub rolled_back: Option<Rollback>,
    /// When the service's tasks were restarted (a task replaced one that ended), in any order.
    pub restarts: Vec<Timestamp>,
    /// When the service's current task spec came in ([`spec_since`]): restart-loop counts only
    /// the restarts since, as the kubelet's restart count is per pod spec. The failed tasks of
    /// an update that was rolled back are that update's failure (`rolled-back` tells of it),
    /// not restarts of what runs now (tryout finding 5). `None`: every restart counts.
    pub spec_since: Option<Timestamp>,
    /// `restarts` may lack some within the restart-loop rule's window (ends during a restart
    /// of the server that Swarm no longer lists, `RestartLedger::may_be_short`): a count
    /// below the rule's is unknown, not fine.
    pub restarts_partial: bool,
    /// With [`restarts_partial`](Self::restarts_partial): the loop is known to be over
    /// (`RestartLedger::loop_ended`: every slot quiet for longer than its pace), so a count
    /// below the rule's resolves the alert instead of holding it until the outage has left
    /// the window.
    pub loop_ended: bool,
}

impl ServiceObservation {
    /// [`restarts`](Self::restarts) of the current task spec: at or after
    /// [`spec_since`](Self::spec_since).
    pub fn spec_restarts(&self) -> Vec<Timestamp> {
        self.restarts
            .iter()
            .copied()
            .filter(|at| self.spec_since.is_none_or(|since| *at >= since))
            .collect()
    }
}

/// When a service's current task spec came in, from Swarm's `UpdateStatus` of its last update
/// (`None` without one: never updated) and the service's `UpdatedAt`, all by the managers'
/// clock. After an update (`updating`, `paused`, `completed`) the spec is the update's, since
/// its start; after a rollback (`rollback_*`, `rollback`: true) the previous spec is back since
/// the rollback's end, or while it runs since its start, which moved `UpdatedAt` (Swarm keeps
/// the failed update's `StartedAt` for a rollback it does itself). The deploy engine's own
/// rollback is an update of Swarm's, so its start counts.
pub fn spec_since(
    rollback: bool,
    started_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
) -> Option<Timestamp> {
    if rollback {
        completed_at.or(updated_at)
    } else {
        started_at
    }
}

/// How a service's last update was rolled back: the words of its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub origin: UpdateOrigin,
    /// The deploy history's revision that rolled back (stack, number), when one did.
    pub revision: Option<(String, u64)>,
    /// Why, in the deploy engine's words (the revision's summary) or Swarm's
    /// (`UpdateStatus.Message`); may be empty.
    pub reason: String,
    /// Who asked for this rollback, when an operator did (the service page's "Roll back",
    /// `POST /api/services/{name}/rollback`, see [`requested_rollback`]): their own act, not
    /// a failed update, so no alert (tryout finding 12).
    pub requested_by: Option<String>,
}

/// How far apart the leader's clock and the server's may put an operator's rollback request
/// (the audit log's time, written as soon as Swarm accepted it) and the start of the rollback
/// Swarm records (`UpdateStatus.StartedAt`, set when it accepts the request). A failed update
/// that starts within this of an operator's rollback is taken for theirs.
pub const ROLLBACK_REQUEST_SKEW: SignedDuration = SignedDuration::from_secs(10);

/// Who asked for a rollback that Swarm started at `rollback_started`, given the newest
/// rollback an operator asked swarmkeeper for on that service (`request`: who, when, from the
/// audit log): theirs when the two are within [`ROLLBACK_REQUEST_SKEW`]. Swarm starts a
/// rollback it is asked for at once, and keeps the failed update's start for one it does
/// itself (`failure_action: rollback`), so a failed update after an operator's rollback is
/// not taken for theirs. `None`: Swarm's or the deploy engine's, or not known.
pub fn requested_rollback(
    rollback_started: Option<Timestamp>,
    request: Option<(&str, Timestamp)>,
) -> Option<String> {
    let started = rollback_started?;
    let (who, at) = request?;
    (at.duration_since(started).abs() <= ROLLBACK_REQUEST_SKEW).then(|| who.to_string())
}

/// What made the update that was rolled back; it only changes the words of the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOrigin {
    /// `swarmkeeper deploy` or the dashboard's deploy.
    Deploy,
    /// swarmkeeper's auto-deploy following an image tag.
    AutoDeploy,
    /// Anything else (`docker service update`, another tool).
    Update,
}

/// One running task container, with its latest resource sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskObservation {
    /// `service.slot` for a replicated service, `service.node` for a global one: the same
    /// across restarts of the task, so an alert follows the slot, not one container.
    pub name: String,
    /// The node's hostname.
    pub node: String,
    /// Working-set bytes (usage less inactive file cache, what the kubelet and `docker stats`
    /// count against the limit).
    pub memory_bytes: u64,
    /// `None` without a memory limit.
    pub memory_limit_bytes: Option<u64>,
    /// When the kernel OOM-killed a process of this slot's containers, in any order.
    pub oom_kills: Vec<Timestamp>,
}

/// A rule's condition holding for one subject, with the words of its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub rule: RuleId,
    /// What the alert is about: a node's hostname, a service's name or a task's `service.slot`.
    pub subject: String,
    /// One line for a person: what is wrong, with the figures.
    pub summary: String,
    /// How long the condition must hold before its alert fires when that is shorter than the
    /// rule's `for` (the disk forecast's hold shrinks with the time left); `None`: the rule's
    /// `for`.
    pub hold: Option<Duration>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The conditions that hold now.
    pub active: Vec<Condition>,
    /// (rule, subject) pairs that cannot be told now (a silent node's disk, a forecast with too
    /// few samples): an ongoing alert for them stays as it is, neither resolved nor started.
    pub unknown: Vec<(RuleId, String)>,
    /// Rules that cannot be told now for any subject not in `active` (the task rules just
    /// after a restart, see [`Observation::started_at`]): their ongoing alerts stay as they
    /// are.
    pub unknown_rules: Vec<RuleId>,
    /// (rule, subject) pairs whose ongoing alert stays exactly as it is, pending or firing,
    /// with no message (no first firing, no repeat, no resolution), and for which no alert
    /// starts: the disk forecast while disk-gc-shortfall holds for the node ("full now" is
    /// not a forecast), or while a fill that may resume is flat (tryout finding 7).
    pub held: Vec<(RuleId, String)>,
}

/// Which conditions of the enabled rules hold in `observation` at `now`.
pub fn conditions(rules: &AlertRules, observation: &Observation, now: Timestamp) -> Conditions {
    let mut out = Conditions::default();
    for node in &observation.nodes {
        node_conditions(rules, node, now, &mut out);
    }
    for service in &observation.services {
        service_conditions(rules, service, now, &mut out);
    }
    for task in &observation.tasks {
        task_conditions(rules, task, now, &mut out);
    }
    if rules.alert_channel_unusable.enabled {
        for channel in &observation.channels {
            if let Some(problem) = &channel.problem {
                out.push(
                    RuleId::AlertChannelUnusable,
                    &channel.name,
                    format!("alert channel {} gets no alerts: {problem}", channel.name),
                );
            }
        }
    }
    if let Some(started) = observation.started_at {
        let waiting = observation.nodes.iter().any(|node| {
            node.membership != Membership::Removed
                && !node.down
                && node.last_report.is_some_and(|last| last < started)
                && now.duration_since(started) <= silent_after(node.report_interval_seconds)
        });
        if waiting {
            out.unknown_rules = [RuleId::OomKill, RuleId::MemoryNearLimit]
                .into_iter()
                .filter(|rule| rules.enabled(*rule))
                .collect();
        }
    }
    out
}

fn node_conditions(
    rules: &AlertRules,
    node: &NodeObservation,
    now: Timestamp,
    out: &mut Conditions,
) {
    let name = &node.name;
    if node.membership == Membership::Removed {
        return;
    }
    // A node drained first is in an operator's maintenance: shut down, it is shown down and
    // pages no one (tryout 11 finding 8: drain-then-reboot paged node-down every time).
    if rules.node_down.enabled && node.down && node.membership != Membership::Drained {
        out.push(RuleId::NodeDown, name, format!("node {name} is down"));
    }
    // The allowance runs from the later of the last report and the node's return.
    let counted_from = node
        .last_report
        .map(|last| node.ready_since.map_or(last, |ready| last.max(ready)));
    let silent = match node_reporting_state(counted_from, node.report_interval_seconds, now) {
        ReportingState::Silent { .. } => node.last_report,
        ReportingState::Reporting | ReportingState::Never => None,
    };
    let drained = node.membership == Membership::Drained;
    if rules.agent_silent.enabled && !node.down && !drained {
        if let Some(since) = silent {
            out.push(
                RuleId::AgentSilent,
                name,
                format!("the agent on node {name} has not reported since {since}"),
            );
        }
    }
    let Some(disk) = &node.disk else { return };
    // What a silent agent last said about its disk may no longer hold, nor may it be wrong;
    // nor what it said before its node went away and came back.
    let not_since_return = node
        .ready_since
        .zip(node.last_report)
        .is_some_and(|(ready, last)| last < ready);
    if silent.is_some() || node.down || drained || not_since_return {
        for rule in [RuleId::DiskGcShortfall, RuleId::DiskFullForecast] {
            if rules.enabled(rule) {
                out.unknown.push((rule, name.clone()));
            }
        }
        return;
    }
    let short = rules.disk_gc_shortfall.enabled
        && disk.gc_fell_short
        && disk.usage_percent >= disk.high_threshold_percent;
    if short {
        out.push(
            RuleId::DiskGcShortfall,
            name,
            format!(
                "disk of node {name} is {}% full (GC starts at {}%) and garbage collection \
                 could not free enough",
                disk.usage_percent, disk.high_threshold_percent
            ),
        );
    }
    let forecast = &rules.disk_full_forecast;
    if forecast.enabled {
        disk_forecast(forecast, name, disk, short, now, out);
    }
}

/// The disk-full forecast of one node (tryout 8 findings 2 and 7): the usage GC would leave
/// is forecast ([`forecast_full`]); while disk-gc-shortfall holds for the node, or the disk
/// has not risen at its recent cadence, an ongoing forecast alert is held as it is and none
/// starts.
fn disk_forecast(
    forecast: &DiskFullForecast,
    name: &str,
    disk: &NodeDisk,
    short: bool,
    now: Timestamp,
    out: &mut Conditions,
) {
    let key = (RuleId::DiskFullForecast, name.to_string());
    if short {
        out.held.push(key);
        return;
    }
    match forecast_of(forecast, disk, now) {
        Forecast::TooFewSamples => out.unknown.push(key),
        Forecast::NotFilling => {}
        full @ Forecast::FullIn {
            in_,
            bytes_per_hour,
            used_percent,
            fitted_over,
            reclaimable_bytes,
            rising_now,
        } => {
            if in_ > signed(forecast.within) {
                return;
            }
            if !rising_now {
                out.held.push(key);
                return;
            }
            out.push(
                RuleId::DiskFullForecast,
                name,
                format!(
                    "disk of node {name} will be full in about {} at the rate of the last {} \
                     (+{}/h, {used_percent:.0}% used now{})",
                    rounded(in_),
                    rounded(fitted_over),
                    mib(bytes_per_hour as u64),
                    reclaimable(reclaimable_bytes),
                ),
            );
            let hold = full.hold(signed(forecast.for_duration));
            if let Some(last) = out.active.last_mut() {
                last.hold = hold.and_then(|h| Duration::try_from(h).ok());
            }
        }
    }
}

/// Why a disk-full forecast alert of node `name` ended, in its resolved message (tryout 8
/// finding 10: the resolution repeated "will be full in about 2m"): "disk of node w1 is no
/// longer predicted full: 66% used, growth stopped", or, for a fill now slower than the
/// rule's horizon, "… within 24h: 70% used, full in about 2d 3h at +5.0 MiB/h".
pub fn disk_forecast_ended(
    forecast: &DiskFullForecast,
    name: &str,
    disk: &NodeDisk,
    now: Timestamp,
) -> String {
    let newest = disk
        .samples
        .iter()
        .filter(|s| s.at <= now)
        .max_by_key(|s| s.at);
    let gc_frees = reclaimable(newest.map_or(0, |s| s.reclaimable_bytes));
    let used = disk.usage_percent;
    match forecast_of(forecast, disk, now) {
        Forecast::FullIn {
            in_,
            bytes_per_hour,
            ..
        } if in_ > signed(forecast.within) => format!(
            "disk of node {name} is no longer predicted full within {}: {used}% used{gc_frees}, \
             full in about {} at +{}/h",
            humantime::format_duration(forecast.within),
            rounded(in_),
            mib(bytes_per_hour as u64),
        ),
        Forecast::NotFilling => format!(
            "disk of node {name} is no longer predicted full: {used}% used{gc_frees}, growth \
             stopped"
        ),
        _ => format!("disk of node {name} is no longer predicted full: {used}% used{gc_frees}"),
    }
}

/// [`forecast_full`] of the node's samples under the rule's figures.
fn forecast_of(forecast: &DiskFullForecast, disk: &NodeDisk, now: Timestamp) -> Forecast {
    forecast_full(
        &disk.samples,
        now,
        signed(forecast.window),
        forecast.min_samples,
        signed(forecast.min_span),
    )
}

/// ", 90.0 MiB of it reclaimable by GC", or nothing for none.
fn reclaimable(bytes: u64) -> String {
    if bytes > 0 {
        format!(", {} of it reclaimable by GC", mib(bytes))
    } else {
        String::new()
    }
}

fn service_conditions(
    rules: &AlertRules,
    service: &ServiceObservation,
    now: Timestamp,
    out: &mut Conditions,
) {
    let name = &service.name;
    if rules.service_not_converged.enabled && !service.converged {
        out.push(
            RuleId::ServiceNotConverged,
            name,
            format!(
                "service {name} has not converged for {}",
                humantime::format_duration(rules.service_not_converged.for_duration)
            ),
        );
    }
    if rules.rolled_back.enabled {
        let failed = service
            .rolled_back
            .as_ref()
            .filter(|r| r.requested_by.is_none());
        if let Some(rollback) = failed {
            let what = match rollback.origin {
                UpdateOrigin::Deploy => "the deploy",
                UpdateOrigin::AutoDeploy => "the auto-deploy",
                UpdateOrigin::Update => "the last update",
            };
            let mut summary = format!("{what} of service {name} was rolled back");
            let reason = rollback.reason.trim();
            match (&rollback.revision, reason.is_empty()) {
                (Some((stack, number)), true) => {
                    summary.push_str(&format!(" (revision {number} of stack {stack})"))
                }
                (Some((stack, number)), false) => {
                    summary.push_str(&format!(" (revision {number} of stack {stack}: {reason})"))
                }
                (None, false) => summary.push_str(&format!(": {reason}")),
                (None, true) => {}
            }
            out.push(RuleId::RolledBack, name, summary);
        }
    }
    let restart = &rules.restart_loop;
    if restart.enabled {
        let recent = count_within(&service.spec_restarts(), now, restart.within);
        if recent >= restart.restarts {
            out.push(
                RuleId::RestartLoop,
                name,
                format!(
                    "service {name}: {recent} task restarts in the last {}",
                    humantime::format_duration(restart.within)
                ),
            );
        } else if service.restarts_partial && !service.loop_ended {
            out.unknown.push((RuleId::RestartLoop, name.clone()));
        }
    }
}

fn task_conditions(
    rules: &AlertRules,
    task: &TaskObservation,
    now: Timestamp,
    out: &mut Conditions,
) {
    let name = &task.name;
    let node = &task.node;
    let oom = &rules.oom_kill;
    if oom.enabled {
        let recent = count_within(&task.oom_kills, now, oom.keep_firing_for);
        if recent > 0 {
            out.push(
                RuleId::OomKill,
                name,
                format!(
                    "task {name} on node {node} was OOM-killed ({recent} in the last {})",
                    humantime::format_duration(oom.keep_firing_for)
                ),
            );
        }
    }
    let near = &rules.memory_near_limit;
    if let (true, Some(limit)) = (near.enabled, task.memory_limit_bytes) {
        // Integer arithmetic: 90 % of the limit is reached exactly at 90 %.
        if limit > 0
            && u128::from(task.memory_bytes) * 100 >= u128::from(limit) * u128::from(near.percent)
        {
            out.push(
                RuleId::MemoryNearLimit,
                name,
                format!(
                    "task {name} on node {node} uses {}% of its memory limit ({} of {})",
                    u128::from(task.memory_bytes) * 100 / u128::from(limit),
                    mib(task.memory_bytes),
                    mib(limit)
                ),
            );
        }
    }
}

impl Conditions {
    fn push(&mut self, rule: RuleId, subject: &str, summary: String) {
        self.active.push(Condition {
            rule,
            subject: subject.to_string(),
            summary,
            hold: None,
        });
    }
}

/// How many of `times` fall in the `within` before `now` (inclusive at both ends).
pub(crate) fn count_within(times: &[Timestamp], now: Timestamp, within: Duration) -> usize {
    let within = signed(within);
    times
        .iter()
        .filter(|t| **t <= now && now.duration_since(**t) <= within)
        .count()
}

pub(crate) fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// A forecast to the minute: "3h 20m", not seconds and nanoseconds.
fn rounded(d: SignedDuration) -> String {
    let minutes = (d.as_secs() + 30) / 60;
    if minutes == 0 {
        return "less than a minute".into();
    }
    humantime::format_duration(Duration::from_secs(minutes.unsigned_abs() * 60)).to_string()
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn ago(minutes: i64) -> Timestamp {
        now() - SignedDuration::from_mins(minutes)
    }

    fn node(name: &str) -> NodeObservation {
        NodeObservation {
            name: name.into(),
            down: false,
            membership: Membership::Member,
            last_report: Some(ago(0)),
            ready_since: None,
            report_interval_seconds: 60,
            disk: Some(NodeDisk {
                usage_percent: 50,
                high_threshold_percent: 85,
                gc_fell_short: false,
                samples: (0..60)
                    .map(|age| DiskSample {
                        at: ago(age),
                        used_bytes: 500 * MIB,
                        capacity_bytes: 1000 * MIB,
                        reclaimable_bytes: 0,
                    })
                    .collect(),
            }),
        }
    }

    fn service(name: &str) -> ServiceObservation {
        ServiceObservation {
            name: name.into(),
            converged: true,
            rolled_back: None,
            restarts: vec![],
            restarts_partial: false,
            loop_ended: false,
            spec_since: None,
        }
    }

    fn task(name: &str, memory: u64, limit: Option<u64>) -> TaskObservation {
        TaskObservation {
            name: name.into(),
            node: "w1".into(),
            memory_bytes: memory,
            memory_limit_bytes: limit,
            oom_kills: vec![],
        }
    }

    fn secs_ago(seconds: i64) -> Timestamp {
        now() - SignedDuration::from_secs(seconds)
    }

    /// The conditions of the default rules over one service.
    fn of_service(service: &ServiceObservation) -> Conditions {
        conditions(
            &AlertRules::default(),
            &Observation {
                services: vec![service.clone()],
                ..Observation::default()
            },
            now(),
        )
    }

    fn fired(observation: &Observation) -> Vec<(RuleId, String)> {
        conditions(&AlertRules::default(), observation, now())
            .active
            .into_iter()
            .map(|c| (c.rule, c.subject))
            .collect()
    }

    #[test]
    fn a_healthy_cluster_raises_nothing() {
        let observation = Observation {
            nodes: vec![node("w1")],
            services: vec![service("web")],
            tasks: vec![task("web.1", 10 * MIB, Some(100 * MIB))],
            started_at: Some(ago(60)),
            channels: vec![ChannelObservation {
                name: "hook".into(),
                problem: None,
            }],
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert_eq!(c, Conditions::default());
        // Had a forecast fired, its resolution would say why it ended (finding 10).
        let disk = observation.nodes[0].disk.as_ref().unwrap();
        assert_eq!(
            disk_forecast_ended(&AlertRules::default().disk_full_forecast, "w1", disk, now()),
            "disk of node w1 is no longer predicted full: 50% used, growth stopped"
        );
    }

    #[test]
    fn gc_shortfall_needs_both_a_full_disk_and_a_short_pass() {
        let mut n = node("w1");
        let disk = n.disk.as_mut().unwrap();
        disk.gc_fell_short = true;
        disk.usage_percent = 84;
        let obs = |n: &NodeObservation| Observation {
            nodes: vec![n.clone()],
            ..Observation::default()
        };
        assert!(fired(&obs(&n)).is_empty());
        n.disk.as_mut().unwrap().usage_percent = 85;
        assert_eq!(fired(&obs(&n)), [(RuleId::DiskGcShortfall, "w1".into())]);
        n.disk.as_mut().unwrap().gc_fell_short = false;
        assert!(fired(&obs(&n)).is_empty());
    }

    #[test]
    fn a_filling_disk_is_forecast_within_the_horizon_and_not_beyond() {
        let mut n = node("w1");
        // 700 MiB used, +1 MiB a minute: full in 300 minutes.
        n.disk.as_mut().unwrap().samples = (0..60)
            .map(|age| DiskSample {
                at: ago(age),
                used_bytes: (700 - age as u64) * MIB,
                capacity_bytes: 1000 * MIB,
                reclaimable_bytes: 0,
            })
            .collect();
        let observation = Observation {
            nodes: vec![n.clone()],
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert_eq!(c.active.len(), 1, "{c:?}");
        assert_eq!(
            c.active[0].summary,
            "disk of node w1 will be full in about 5h at the rate of the last 59m \
             (+60.0 MiB/h, 70% used now)"
        );
        let mut rules = AlertRules::default();
        rules.disk_full_forecast.within = Duration::from_secs(4 * 3600);
        assert!(conditions(&rules, &observation, now()).active.is_empty());
    }

    #[test]
    fn a_forecast_without_enough_samples_is_unknown_not_resolved() {
        let mut n = node("w1");
        n.disk.as_mut().unwrap().samples.truncate(2);
        let observation = Observation {
            nodes: vec![n],
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert!(c.active.is_empty());
        assert_eq!(c.unknown, [(RuleId::DiskFullForecast, "w1".to_string())]);
    }

    #[test]
    fn a_down_node_is_down_not_silent_and_its_disk_is_unknown() {
        let mut n = node("w1");
        n.down = true;
        n.last_report = Some(ago(60));
        let observation = Observation {
            nodes: vec![n],
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert_eq!(c.active.len(), 1);
        assert_eq!(c.active[0].rule, RuleId::NodeDown);
        assert_eq!(
            c.unknown,
            [
                (RuleId::DiskGcShortfall, "w1".to_string()),
                (RuleId::DiskFullForecast, "w1".to_string())
            ]
        );
    }

    #[test]
    fn an_agent_is_silent_after_three_missed_intervals() {
        let mut n = node("w1");
        n.last_report = Some(ago(3));
        let obs = |n: &NodeObservation| Observation {
            nodes: vec![n.clone()],
            ..Observation::default()
        };
        assert!(fired(&obs(&n)).is_empty());
        n.last_report = Some(ago(4));
        assert_eq!(fired(&obs(&n)), [(RuleId::AgentSilent, "w1".into())]);
        n.last_report = None;
        assert!(fired(&obs(&n)).is_empty(), "a node without an agent");
    }

    /// Tryout finding 19: a down node removed from the swarm resolved node-down and fired
    /// agent-silent for good.
    #[test]
    fn a_node_removed_from_the_swarm_raises_nothing_and_tells_nothing_unknown() {
        let mut n = node("w1");
        n.down = true;
        n.last_report = Some(ago(60));
        n.disk.as_mut().unwrap().gc_fell_short = true;
        n.disk.as_mut().unwrap().usage_percent = 99;
        // `docker node rm` of the down node: Swarm's list no longer has it, its last report
        // stays in the store.
        n.membership = Membership::Removed;
        n.down = false;
        let c = conditions(
            &AlertRules::default(),
            &Observation {
                nodes: vec![n],
                ..Observation::default()
            },
            now(),
        );
        assert_eq!(c, Conditions::default());
    }

    /// Tryout finding 8: a node back from down fired agent-silent in the evaluation that
    /// resolved node-down, from its last report before the outage; finding 6's tail: the same
    /// when a drain ends. The agent gets its allowance from the node's return.
    #[test]
    fn a_node_back_from_down_or_drain_gives_its_agent_the_allowance_from_its_return() {
        let mut n = node("w1");
        n.last_report = Some(ago(30));
        n.ready_since = Some(ago(3));
        let obs = |n: &NodeObservation| Observation {
            nodes: vec![n.clone()],
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &obs(&n), now());
        assert!(c.active.is_empty(), "{c:?}");
        assert_eq!(
            c.unknown,
            [
                (RuleId::DiskGcShortfall, "w1".to_string()),
                (RuleId::DiskFullForecast, "w1".to_string())
            ],
            "the disk it told of before the outage is not known now"
        );
        // Three intervals after the return and still no report: silent, since its last one.
        n.ready_since = Some(ago(4));
        let c = conditions(&AlertRules::default(), &obs(&n), now());
        assert_eq!(c.active.len(), 1, "{c:?}");
        assert_eq!(c.active[0].rule, RuleId::AgentSilent);
        assert_eq!(
            c.active[0].summary,
            format!("the agent on node w1 has not reported since {}", ago(30))
        );
        // A report after the return: the usual rule, from that report.
        n.ready_since = Some(ago(10));
        n.last_report = Some(ago(5));
        assert_eq!(fired(&obs(&n)), [(RuleId::AgentSilent, "w1".into())]);
        n.last_report = Some(ago(1));
        assert!(fired(&obs(&n)).is_empty());
    }

    #[test]
    fn readiness_dates_only_a_return_it_saw() {
        let first = Readiness::next(None, true, ago(10));
        assert_eq!(
            first.since, None,
            "able at the first sight: since when is unknown"
        );
        assert_eq!(Readiness::next(Some(first), true, ago(5)), first);
        let down = Readiness::next(Some(first), false, ago(5));
        assert_eq!(
            down,
            Readiness {
                able: false,
                since: None
            }
        );
        let back = Readiness::next(Some(down), true, ago(2));
        assert_eq!(back.since, Some(ago(2)));
        assert_eq!(Readiness::next(Some(back), true, now()), back);
        assert_eq!(Readiness::next(None, false, now()).since, None);
    }

    #[test]
    fn a_drained_node_whose_agent_stopped_is_not_silent_and_its_disk_is_unknown() {
        let mut n = node("w1");
        n.last_report = Some(ago(60));
        n.membership = Membership::Drained;
        let c = conditions(
            &AlertRules::default(),
            &Observation {
                nodes: vec![n.clone()],
                ..Observation::default()
            },
            now(),
        );
        assert!(c.active.is_empty(), "{c:?}");
        assert_eq!(
            c.unknown,
            [
                (RuleId::DiskGcShortfall, "w1".to_string()),
                (RuleId::DiskFullForecast, "w1".to_string())
            ]
        );
        // Down as well (shut down for the maintenance it was drained for, tryout 11 finding
        // 8): shown down, no page.
        n.down = true;
        assert!(fired(&Observation {
            nodes: vec![n.clone()],
            ..Observation::default()
        })
        .is_empty());
        // Down without a drain pages.
        n.membership = Membership::Member;
        assert_eq!(
            fired(&Observation {
                nodes: vec![n],
                ..Observation::default()
            }),
            [(RuleId::NodeDown, "w1".into())]
        );
    }

    #[test]
    fn service_rules() {
        let mut s = service("web");
        s.converged = false;
        s.rolled_back = Some(Rollback {
            origin: UpdateOrigin::AutoDeploy,
            revision: None,
            reason: String::new(),
            requested_by: None,
        });
        s.restarts = vec![ago(1), ago(2), ago(3), ago(4), ago(11)];
        let c = conditions(
            &AlertRules::default(),
            &Observation {
                services: vec![s.clone()],
                ..Observation::default()
            },
            now(),
        );
        let summaries: Vec<&str> = c.active.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "service web has not converged for 10m",
                "the auto-deploy of service web was rolled back"
            ],
            "four restarts in ten minutes are not a loop"
        );
        s.restarts.push(ago(10));
        let c = conditions(
            &AlertRules::default(),
            &Observation {
                services: vec![s],
                ..Observation::default()
            },
            now(),
        );
        assert_eq!(
            c.active[2].summary,
            "service web: 5 task restarts in the last 10m"
        );
    }

    /// Tryout finding 20: both kinds of rollback say which revision and why.
    #[test]
    fn a_rollback_names_its_revision_and_reason() {
        let summary = |rollback: Rollback| {
            let mut s = service("shop_web");
            s.rolled_back = Some(rollback);
            conditions(
                &AlertRules::default(),
                &Observation {
                    services: vec![s],
                    ..Observation::default()
                },
                now(),
            )
            .active[0]
                .summary
                .clone()
        };
        assert_eq!(
            summary(Rollback {
                origin: UpdateOrigin::Deploy,
                revision: Some(("shop".into(), 5)),
                reason: "shop_web: timed out after 10m".into(),
                requested_by: None,
            }),
            "the deploy of service shop_web was rolled back (revision 5 of stack shop: \
             shop_web: timed out after 10m)"
        );
        assert_eq!(
            summary(Rollback {
                origin: UpdateOrigin::Update,
                revision: None,
                reason: "update paused due to failure or early termination of task x".into(),
                requested_by: None,
            }),
            "the last update of service shop_web was rolled back: update paused due to \
             failure or early termination of task x"
        );
    }

    /// Tryout finding 12: an operator's own rollback (the service page's "Roll back") paged
    /// `rolled-back`. Theirs is the one Swarm started when they asked; a rollback Swarm did
    /// itself keeps the failed update's start, which is not when they asked.
    #[test]
    fn an_operators_own_rollback_raises_nothing() {
        let started = ago(60);
        let asked = |secs: i64| Some(("admin", started + SignedDuration::from_secs(secs)));
        assert_eq!(
            requested_rollback(Some(started), asked(1)).as_deref(),
            Some("admin")
        );
        assert_eq!(
            requested_rollback(Some(started), asked(-10)).as_deref(),
            Some("admin")
        );
        assert_eq!(requested_rollback(Some(started), asked(11)), None);
        assert_eq!(requested_rollback(Some(started), asked(-600)), None);
        assert_eq!(requested_rollback(Some(started), None), None);
        assert_eq!(requested_rollback(None, asked(0)), None);
        let mut s = service("web");
        s.rolled_back = Some(Rollback {
            origin: UpdateOrigin::Update,
            revision: None,
            reason: "rollback completed".into(),
            requested_by: Some("admin".into()),
        });
        let observation = Observation {
            services: vec![s],
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert!(c.active.is_empty(), "{c:?}");
        assert!(c.unknown.is_empty(), "{c:?}");
    }

    /// Tryout finding 5: the failed tasks of deploys that were rolled back (already paged
    /// `rolled-back`) fired restart-loop for a service that ran its good spec again.
    #[test]
    fn restart_loop_counts_only_the_restarts_of_the_current_spec() {
        let secs = secs_ago;
        let fired = |s: &ServiceObservation| of_service(s).active;
        let mut s = service("st9_api");
        // Revisions 3 and 4 (a crashing image): five task ends within 45 s, each deploy rolled
        // back by the deploy engine; its last rollback (an update of Swarm's) started 15 s ago.
        s.restarts = vec![secs(60), secs(55), secs(45), secs(40), secs(35)];
        s.spec_since = spec_since(false, Some(secs(15)), Some(secs(10)), Some(secs(10)));
        assert_eq!(s.spec_since, Some(secs(15)));
        assert!(fired(&s).is_empty(), "the rolled-back deploys' failures");
        // The spec that runs now loops: its own restarts count.
        s.restarts
            .extend([secs(14), secs(12), secs(9), secs(6), secs(3)]);
        let active = fired(&s);
        assert_eq!(active.len(), 1, "{active:?}");
        assert_eq!(
            active[0].summary,
            "service st9_api: 5 task restarts in the last 10m"
        );
        // Without an update, every restart counts, as before.
        s.spec_since = spec_since(false, None, None, Some(secs(600)));
        assert_eq!(s.spec_since, None);
        assert_eq!(s.spec_restarts().len(), 10);
    }

    #[test]
    fn a_rollback_brings_the_previous_spec_back_at_its_end_or_while_it_runs_at_its_start() {
        let secs = secs_ago;
        // Swarm keeps the failed update's start for its own rollback.
        assert_eq!(
            spec_since(true, Some(secs(60)), Some(secs(10)), Some(secs(10))),
            Some(secs(10))
        );
        assert_eq!(
            spec_since(true, Some(secs(60)), None, Some(secs(20))),
            Some(secs(20))
        );
        assert_eq!(
            spec_since(false, Some(secs(60)), Some(secs(10)), Some(secs(5))),
            Some(secs(60)),
            "an update's own failures count from its start"
        );
    }

    /// Tryout finding 1: a count below the rule's that may lack the ends of a restart's
    /// outage is unknown (the ongoing alert stays), not fine; one at the rule's holds.
    #[test]
    fn a_restart_count_that_may_be_short_is_unknown_below_the_rule() {
        let mut s = service("web");
        s.restarts = vec![ago(1), ago(2), ago(3), ago(4)];
        s.restarts_partial = true;
        let observe = of_service;
        let c = observe(&s);
        assert!(c.active.is_empty(), "{c:?}");
        assert_eq!(c.unknown, [(RuleId::RestartLoop, "web".to_string())]);
        s.restarts.push(ago(5));
        let c = observe(&s);
        assert_eq!(c.active.len(), 1, "{c:?}");
        assert!(c.unknown.is_empty(), "{c:?}");
        s.restarts.pop();
        s.restarts_partial = false;
        let c = observe(&s);
        assert!(c.active.is_empty() && c.unknown.is_empty(), "{c:?}");
    }

    #[test]
    fn memory_near_the_limit_counts_from_ninety_percent_and_needs_a_limit() {
        let tasks = vec![
            task("a.1", 90 * MIB, Some(100 * MIB)),
            task("b.1", 89 * MIB, Some(100 * MIB)),
            task("c.1", 1000 * MIB, None),
        ];
        let c = conditions(
            &AlertRules::default(),
            &Observation {
                tasks,
                ..Observation::default()
            },
            now(),
        );
        assert_eq!(c.active.len(), 1);
        assert_eq!(
            c.active[0].summary,
            "task a.1 on node w1 uses 90% of its memory limit (90.0 MiB of 100.0 MiB)"
        );
    }

    #[test]
    fn an_oom_kill_keeps_firing_for_its_window() {
        let mut t = task("web.1", MIB, Some(16 * MIB));
        t.oom_kills = vec![ago(15)];
        let obs = |t: &TaskObservation| Observation {
            tasks: vec![t.clone()],
            ..Observation::default()
        };
        assert_eq!(fired(&obs(&t)), [(RuleId::OomKill, "web.1".into())]);
        t.oom_kills = vec![ago(16)];
        assert!(fired(&obs(&t)).is_empty());
    }

    /// Tryout finding 25: after a restart, before a node has reported, a slot without a
    /// sample is unknown, not fine; once every node reported (or had its time to), it is fine.
    #[test]
    fn task_rules_wait_for_every_node_after_a_start() {
        let started = ago(1);
        let mut n = node("w1");
        n.last_report = Some(ago(2));
        let mut observation = Observation {
            nodes: vec![n],
            started_at: Some(started),
            ..Observation::default()
        };
        let c = conditions(&AlertRules::default(), &observation, now());
        assert_eq!(c.unknown_rules, [RuleId::OomKill, RuleId::MemoryNearLimit]);
        // Its first report since the start: the rules judge again.
        observation.nodes[0].last_report = Some(now());
        let c = conditions(&AlertRules::default(), &observation, now());
        assert!(c.unknown_rules.is_empty());
        // A node that had three intervals to report and did not is silent, not awaited.
        observation.nodes[0].last_report = Some(ago(5));
        observation.started_at = Some(ago(4));
        let c = conditions(&AlertRules::default(), &observation, now());
        assert!(c.unknown_rules.is_empty());
        // Without a start time (a caller that does not restart), nothing is awaited.
        observation.started_at = None;
        observation.nodes[0].last_report = Some(ago(2));
        assert!(conditions(&AlertRules::default(), &observation, now())
            .unknown_rules
            .is_empty());
    }

    #[test]
    fn a_disabled_rule_raises_nothing() {
        let mut rules = AlertRules::default();
        rules.node_down.enabled = false;
        let mut n = node("w1");
        n.down = true;
        let c = conditions(
            &rules,
            &Observation {
                nodes: vec![n],
                ..Observation::default()
            },
            now(),
        );
        assert!(c.active.is_empty());
    }
}
