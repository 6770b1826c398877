//! Alerts, carried out: after each agent report and every [`EVALUATION_INTERVAL`], the server
//! observes the cluster (its stored reports and disk samples, Swarm's nodes and services, the
//! OOM kills in the reported usage samples), `swarmkeeper_alerts::evaluate` decides what fires
//! and resolves, and `swarmkeeper_notify` delivers the messages to every `--alert-webhook`,
//! on a task of its own so no request waits for a receiver. A failed delivery is logged (the
//! channel's host only, never its URL) and sent again at the next evaluation.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_alerts::{
    evaluate, AlertRules, AlertState, Message, NodeDisk, NodeObservation, Observation,
    ServiceObservation, TaskObservation, UpdateOrigin,
};
use swarmkeeper_notify::{Channel, ChannelKind, Notifier, RetryPolicy, Secret};
use swarmkeeper_report::NodeReport;

use crate::state::AppState;

/// How often the cluster is evaluated besides after each report: node-down, agent-silent and
/// not-converged have no report to wake them.
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(15);

/// The alert rules, the ongoing alerts and where messages go.
pub struct Alerting {
    channels: Vec<Channel>,
    notifier: Option<Notifier>,
    rules: AlertRules,
    /// Held across an evaluation so two never interleave their steps.
    state: tokio::sync::Mutex<Evaluations>,
}

#[derive(Default)]
struct Evaluations {
    alerts: AlertState,
    /// Per node (hostname), per task container: the OOM kill count last seen in its usage
    /// samples; replaced by each report, so containers that went are forgotten.
    oom_counts: HashMap<String, HashMap<String, u64>>,
    /// Per task slot (`service.slot`): when its OOM kills were seen.
    oom_kills: BTreeMap<String, (String, Vec<Timestamp>)>,
}

impl Alerting {
    /// Alerting to `webhooks` (the product's generic JSON webhook) with the default rules.
    /// Without a webhook nothing is evaluated.
    pub fn new(webhooks: &[Secret]) -> Alerting {
        let channels: Vec<Channel> = webhooks
            .iter()
            .enumerate()
            .map(|(i, url)| Channel {
                name: format!("alert-webhook-{}", i + 1),
                kind: ChannelKind::Webhook { url: url.clone() },
            })
            .collect();
        let notifier = if channels.is_empty() {
            None
        } else {
            Notifier::new(RetryPolicy::default(), None)
                .inspect_err(|e| tracing::error!(error = %e, "alerts cannot be delivered"))
                .ok()
        };
        Alerting {
            channels,
            notifier,
            rules: AlertRules::default(),
            state: tokio::sync::Mutex::new(Evaluations::default()),
        }
    }

    fn enabled(&self) -> bool {
        self.notifier.is_some()
    }
}

/// Evaluates every [`EVALUATION_INTERVAL`] until the server shuts down.
pub fn spawn(state: AppState) {
    if !state.alerting.enabled() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVALUATION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = state.shutdown.started();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => evaluate_now(&state, None).await,
                () = &mut stop => return,
            }
        }
    });
}

/// After a stored report: notes its OOM kills and evaluates, on a task of its own.
pub fn after_report(state: &AppState, report: &NodeReport) {
    if !state.alerting.enabled() {
        return;
    }
    let (state, report) = (state.clone(), report.clone());
    tokio::spawn(async move { evaluate_now(&state, Some(&report)).await });
}

async fn evaluate_now(state: &AppState, report: Option<&NodeReport>) {
    let alerting = &state.alerting;
    let messages = {
        let mut evaluations = alerting.state.lock().await;
        if let Some(report) = report {
            let keep = signed(alerting.rules.oom_kill.keep_firing_for);
            note_oom_kills(&mut evaluations, report, keep, Timestamp::now());
        }
        let now = Timestamp::now();
        let observation = observe(state, &evaluations, now).await;
        evaluate(
            &mut evaluations.alerts,
            &alerting.rules,
            &observation,
            &[],
            now,
        )
    };
    // Delivered without the lock: a slow receiver (three attempts, backoff) holds up no
    // evaluation; messages of one evaluation go in order.
    for message in messages {
        deliver(state, message).await;
    }
}

/// Sends one message to every channel; a firing message that reached none is sent again at
/// the next evaluation.
async fn deliver(state: &AppState, message: Message) {
    let Some(notifier) = &state.alerting.notifier else {
        return;
    };
    let results = notifier
        .send_to_all(&state.alerting.channels, &message)
        .await;
    // `Notifier::send` has logged each failure, naming the channel by its host only.
    if results.iter().all(Result::is_err) {
        let mut evaluations = state.alerting.state.lock().await;
        evaluations
            .alerts
            .delivery_failed(message.rule, &message.subject);
    }
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// The cluster as the rules read it. What cannot be read (the engine, the store) is left out
/// and logged: the rules then see fewer nodes or services, never wrong ones.
async fn observe(state: &AppState, evaluations: &Evaluations, now: Timestamp) -> Observation {
    let window = signed(state.alerting.rules.disk_full_forecast.window);
    let since = now.checked_sub(window).unwrap_or(Timestamp::MIN);
    let reports = {
        let store = state.store();
        match store.latest_node_reports() {
            Ok(reports) => reports
                .into_iter()
                .map(|(report, at)| {
                    let samples = store
                        .disk_samples(&report.node_key(), since)
                        .unwrap_or_default();
                    (report, at, samples)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "alerts: cannot read the node reports");
                Vec::new()
            }
        }
    };
    let swarm_nodes = state.engine.list_nodes().await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "alerts: cannot list the nodes");
        Vec::new()
    });
    let mut nodes: Vec<NodeObservation> = Vec::new();
    for (report, received_at, samples) in reports {
        let swarm = swarm_nodes.iter().find(|n| n.id == report.node_id);
        nodes.push(NodeObservation {
            name: report.hostname.clone(),
            down: swarm.is_some_and(|n| is_down(&n.state)),
            last_report: Some(received_at),
            report_interval_seconds: report.interval_seconds,
            disk: Some(NodeDisk {
                usage_percent: report.disk.usage_percent,
                high_threshold_percent: report.high_threshold_percent,
                gc_fell_short: report.last_pass.as_ref().is_some_and(|p| p.fell_short()),
                samples,
            }),
        });
    }
    for node in &swarm_nodes {
        if !nodes.iter().any(|n| n.name == node.hostname) {
            nodes.push(NodeObservation {
                name: node.hostname.clone(),
                down: is_down(&node.state),
                last_report: None,
                report_interval_seconds: 0,
                disk: None,
            });
        }
    }
    let services = match crate::routes::services::load_services(state).await {
        Ok(rows) => rows
            .into_iter()
            .map(|row| ServiceObservation {
                name: row.name,
                converged: row.converged,
                rolled_back: row.rolled_back.then_some(UpdateOrigin::Update),
                restarts: Vec::new(),
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "alerts: cannot list the services");
            Vec::new()
        }
    };
    let tasks = evaluations
        .oom_kills
        .iter()
        .map(|(name, (node, kills))| TaskObservation {
            name: name.clone(),
            node: node.clone(),
            memory_bytes: 0,
            memory_limit_bytes: None,
            oom_kills: kills.clone(),
        })
        .collect();
    Observation {
        nodes,
        services,
        tasks,
    }
}

/// Swarm's `Status.State` for a node that is not there.
fn is_down(state: &str) -> bool {
    matches!(state, "down" | "disconnected")
}

/// Records the OOM kills `report`'s usage samples show: a task container's kill count that
/// grew since it was last seen (or is above zero the first time it is seen) is a kill at that
/// sample's time, kept under the task's slot (`service.slot`, `service.node` for a global
/// service) so it follows the slot across restarts. Kills older than `keep` are forgotten.
fn note_oom_kills(
    evaluations: &mut Evaluations,
    report: &NodeReport,
    keep: jiff::SignedDuration,
    now: Timestamp,
) {
    if !report.usage.is_empty() {
        let before = evaluations
            .oom_counts
            .remove(&report.hostname)
            .unwrap_or_default();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for sample in &report.usage {
            for task in &sample.tasks {
                let Some(count) = task.oom_kills else {
                    continue;
                };
                let last = seen
                    .get(&task.task)
                    .or_else(|| before.get(&task.task))
                    .copied()
                    .unwrap_or(0);
                seen.insert(task.task.clone(), count);
                if count > last {
                    let slot = if task.slot.is_empty() {
                        format!("{}.{}", task.service, report.hostname)
                    } else {
                        format!("{}.{}", task.service, task.slot)
                    };
                    evaluations
                        .oom_kills
                        .entry(slot)
                        .or_insert_with(|| (report.hostname.clone(), Vec::new()))
                        .1
                        .push(sample.taken_at);
                }
            }
        }
        evaluations.oom_counts.insert(report.hostname.clone(), seen);
    }
    evaluations.oom_kills.retain(|_, (_, kills)| {
        kills.retain(|at| now.duration_since(*at) <= keep);
        !kills.is_empty()
    });
}
