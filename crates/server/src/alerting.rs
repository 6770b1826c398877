//! Alerts, carried out. The server observes the cluster (its stored reports and disk samples,
//! Swarm's nodes, services and tasks, the memory and OOM kills in the reported usage samples),
//! `swarmkeeper_alerts::evaluate` decides what fires and resolves, and `swarmkeeper_notify`
//! delivers the messages to every channel: the `--alert-webhook`s and those an admin added on
//! the Alerts page.
//!
//! - Evaluation is coalesced: one task evaluates, woken by each agent report and every
//!   [`EVALUATION_INTERVAL`], at most once per [`MIN_EVALUATION_GAP`]; a burst of reports
//!   costs one evaluation. Swarm's nodes, services and tasks are listed at most once per
//!   [`EVALUATION_INTERVAL`] (a report's evaluation reuses the last listing), so the engine
//!   sees three list calls per interval whatever the number of agents.
//! - The rules, the ongoing alerts (pending and firing, with when each was last sent), the
//!   silences and the history of messages are in the server's SQLite file: a restart neither
//!   forgets a firing alert nor sends it again. While an alert is pending, each evaluation
//!   also writes when it ran, so that a start restores the pending alerts' `for` clocks as
//!   Prometheus does (`swarmkeeper_alerts::ForRestore`: the outage does not count, a pending
//!   alert is forgotten after an outage longer than the tolerance, and none fires within the
//!   grace period after the start). The task ends the restart-loop rule counts are stored
//!   with each listing too, with the listing's time, and read back at a start
//!   (`RestartLedger::restored`): Swarm lists at most 4 ended tasks of a slot, so a new server
//!   counting its first listing alone resolved a loop (tryout finding 1).
//! - Channels' settings are sealed with the server's key (purpose `alert-channel:NAME`), like
//!   registry credentials; a failed delivery is logged naming the channel by its host only.
//! - A message that did not reach a channel is tried again for that channel alone, with
//!   back-off ([`DELIVERY_BACKOFF`], `swarmkeeper_alerts::Outbox` decides what is due): the
//!   channels that got it are not sent it again, the alert's state moves on whatever the
//!   deliveries did (its resolution is recorded when its condition ends), and the history has
//!   one row per message, its retries' outcome noted on it (tryout 12 findings 5 and 6). What
//!   waits is stored whenever it changes and sent again from the start after a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_alerts::{
    evaluate_routed, requested_rollback, AlertRules, AlertState, Attempt, Backoff,
    ChannelObservation, ForRestore, Membership, Message, NodeDisk, NodeObservation, Observation,
    Outbox, Readiness, RestartLedger, Rollback, Routed, RuleId, Sending, ServiceObservation,
    Silence, TaskEnd, TaskObservation, UpdateOrigin,
};
use swarmkeeper_auth::Action;
use swarmkeeper_auth::SealingKey;
use swarmkeeper_deploy::RolledBackRevision;
use swarmkeeper_engine::UpdateState;
use swarmkeeper_notify::{
    Channel, ChannelKind, Delivery, Notifier, NotifyError, RetryPolicy, Secret,
};
use swarmkeeper_report::{NodeReport, UsageSample};
use swarmkeeper_store::{AlertRecord, Store, StoredChannel, StoredSilence, StoredTaskEnd};

use crate::state::AppState;

/// How often the cluster is evaluated without a report, and how old Swarm's listing of nodes,
/// services and tasks may be: node-down, rolled-back and not-converged have no report to wake
/// them, so this bounds their latency.
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(3);
/// The least time between two evaluations, however many reports come.
pub const MIN_EVALUATION_GAP: Duration = Duration::from_secs(1);
/// How often firing alerts are sent again to Alertmanager channels: Alertmanager resolves an
/// alert by itself when it is not repeated within its `endsAt`
/// (`swarmkeeper_notify::render::ALERTMANAGER_ENDS_AFTER`, 4 minutes), as Prometheus does.
pub const ALERTMANAGER_REMINDER: Duration = Duration::from_secs(60);
/// The wait before a failed delivery is tried again for its channel: one evaluation interval,
/// doubling with each failure, at most 5 minutes. Alertmanager's notifier retries with
/// exponential back-off too, and tries a failed notification again at the next flush of its
/// group (`group_interval`, 5 minutes by default): a channel down for hours costs an attempt
/// every 5 minutes (each the notifier's own 3 tries), not one per evaluation, and one that
/// comes back gets its messages within 5 minutes.
pub const DELIVERY_BACKOFF: Backoff = Backoff {
    first: EVALUATION_INTERVAL,
    max: Duration::from_secs(5 * 60),
};
/// Messages the alerts page shows from the history.
pub const HISTORY_SHOWN: usize = 200;

const RULES_KEY: &str = "rules";
const STATE_KEY: &str = "state";
/// When the stored state was last evaluated (RFC 3339), written while an alert is pending:
/// Prometheus' `ALERTS_FOR_STATE` sample time, the "down at" of a restart.
const EVALUATED_KEY: &str = "state_evaluated_at";
/// The messages channels have not had yet (`Outbox::waiting`, JSON): a start sends them again.
const OUTBOX_KEY: &str = "outbox";

/// A channel as the Alerts page and `GET /api/alerts` list it: never a secret.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelRow {
    /// `None` for an `--alert-webhook` (configured as code, removed there).
    pub id: Option<i64>,
    pub name: String,
    pub kind: String,
    /// Name, kind and host.
    pub describe: String,
    pub added_by: Option<String>,
    pub added_at: Option<Timestamp>,
    /// Why it cannot be used (sealed with another key), if so.
    pub problem: Option<String>,
}

/// The alert rules, the ongoing alerts and where messages go.
pub struct Alerting {
    /// `--alert-webhook`s.
    webhooks: Vec<Channel>,
    /// Those added on the Alerts page, opened; with the rows the page lists.
    stored: RwLock<StoredChannels>,
    key: Option<SealingKey>,
    notifier: Option<Notifier>,
    rules: RwLock<AlertRules>,
    /// What reports said about tasks, kept between reports (and read back at a start).
    observed: Mutex<Observed>,
    /// When this server loaded its alerts: the task rules wait for every node to report
    /// since (`swarmkeeper_alerts::Observation::started_at`).
    started_at: Timestamp,
    /// Per Swarm node ID: whether it could run its agent at the last evaluation, and since
    /// when (`swarmkeeper_alerts::Readiness`): a node's return restarts its agent's allowance.
    readiness: Mutex<HashMap<String, Readiness>>,
    /// Held across an evaluation's step so two never interleave.
    state: tokio::sync::Mutex<Evaluations>,
    wake: tokio::sync::Notify,
    started: AtomicBool,
    /// Per service (by name): the start of its last rollback Swarm completed, and who asked
    /// for it (`None`: nobody, Swarm did it), so the audit log is read once per rollback,
    /// not at every listing.
    rollbacks_asked: Mutex<HashMap<String, (Timestamp, Option<String>)>>,
    /// Per channel (by name): held while a message is sent to it, so that one channel gets its
    /// messages in the order they were decided. Without it a firing message retried (or an
    /// Alertmanager reminder) could land after the resolved one and fire the alert again
    /// there.
    sending: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The stored channels that could be opened (by id), and the rows of all of them.
type StoredChannels = (Arc<Vec<(i64, Channel)>>, Vec<ChannelRow>);

#[derive(Default)]
struct Evaluations {
    alerts: AlertState,
    /// The state as last written to the store: written again only when it changed.
    written: String,
    /// Swarm's listing and when it was made.
    swarm: Option<(Instant, SwarmView)>,
    /// Every task end seen in the listings, for as long as the restart-loop rule looks back:
    /// one listing shows at most 4 ended tasks of a slot.
    restarts: RestartLedger,
    /// When firing alerts were last sent again to the Alertmanager channels.
    reminded: Option<Instant>,
    /// The messages channels have not had yet: being sent, or waiting to be tried again.
    outbox: Outbox,
    /// The outbox as last written to the store: written again only when it changed.
    outbox_written: String,
}

#[derive(Default, Clone)]
struct SwarmView {
    nodes: Vec<swarmkeeper_engine::SwarmNode>,
    /// The node list could be read: a reported node missing from it was removed.
    nodes_listed: bool,
    /// Each service by id; its `restarts` are filled from the ledger.
    services: Vec<(String, ServiceObservation)>,
    /// The services and tasks could be listed: `ends` is what Swarm shows.
    tasks_listed: bool,
    /// The tasks of the listing that ended on their own.
    ends: Vec<TaskEnd>,
}

#[derive(Default)]
struct Observed {
    /// Per node (hostname), per task container: the OOM kill count last seen in its usage
    /// samples; replaced by each report, so containers that went are forgotten.
    oom_counts: HashMap<String, HashMap<String, u64>>,
    /// Per task slot (`service.slot`): its node and when its OOM kills were seen.
    oom_kills: BTreeMap<String, (String, Vec<Timestamp>)>,
    /// Per node (hostname), per task slot: memory use and limit in the newest sample.
    memory: HashMap<String, BTreeMap<String, (u64, Option<u64>)>>,
}

impl Alerting {
    /// Alerting to `webhooks` (the product's generic JSON webhook) and the channels, rules,
    /// ongoing alerts stored in `store`; channels are opened with `key`; the pending alerts'
    /// `for` clocks restored by `restore`.
    pub fn load(
        webhooks: &[Secret],
        key: Option<SealingKey>,
        restore: &ForRestore,
        store: &Store,
    ) -> Alerting {
        let webhooks = webhooks
            .iter()
            .enumerate()
            .map(|(i, url)| Channel {
                name: format!("alert-webhook-{}", i + 1),
                kind: ChannelKind::Webhook { url: url.clone() },
            })
            .collect();
        let notifier = Notifier::new(RetryPolicy::default(), None)
            .inspect_err(|e| tracing::error!(error = %e, "alerts cannot be delivered"))
            .ok();
        let rules = match store.alert_setting(RULES_KEY) {
            Ok(Some(text)) => AlertRules::from_json(&text).unwrap_or_else(|e| {
                tracing::error!(error = %e, "stored alert rules unreadable; the defaults apply");
                AlertRules::default()
            }),
            Ok(None) => AlertRules::default(),
            Err(e) => {
                tracing::error!(error = %e, "alert rules cannot be read; the defaults apply");
                AlertRules::default()
            }
        };
        let (mut alerts, written): (AlertState, String) = match store.alert_setting(STATE_KEY) {
            Ok(Some(text)) => match serde_json::from_str(&text) {
                Ok(alerts) => (alerts, text),
                Err(e) => {
                    tracing::warn!(error = %e, "stored alert state unreadable; starting afresh");
                    (AlertState::default(), String::new())
                }
            },
            _ => (AlertState::default(), String::new()),
        };
        let started_at = Timestamp::now();
        alerts.restore(&rules, last_evaluated(store), started_at, restore);
        let (outbox, outbox_written) = restore_outbox(store, started_at);
        let observed = restore_observed(store, signed(rules.oom_kill.keep_firing_for), started_at);
        let rules_within = rules.restart_loop.within;
        let alerting = Alerting {
            webhooks,
            stored: RwLock::new((Arc::new(Vec::new()), Vec::new())),
            key,
            notifier,
            rules: RwLock::new(rules),
            observed: Mutex::new(observed),
            started_at,
            state: tokio::sync::Mutex::new(Evaluations {
                alerts,
                written,
                swarm: None,
                restarts: restore_restarts(store, rules_within, started_at),
                reminded: None,
                outbox,
                outbox_written,
            }),
            wake: tokio::sync::Notify::new(),
            started: AtomicBool::new(false),
            rollbacks_asked: Mutex::new(HashMap::new()),
            readiness: Mutex::new(HashMap::new()),
            sending: Mutex::new(HashMap::new()),
        };
        match store.alert_channels() {
            Ok(stored) => alerting.reload_channels(&stored),
            Err(e) => tracing::error!(error = %e, "alert channels cannot be read"),
        }
        alerting
    }

    /// The key channels are sealed with, if the server has one.
    pub fn key(&self) -> Option<&SealingKey> {
        self.key.as_ref()
    }

    /// Opens the stored channels again (after one was added or removed).
    pub fn reload_channels(&self, stored: &[StoredChannel]) {
        let mut open = Vec::new();
        let mut rows: Vec<ChannelRow> = self
            .webhooks
            .iter()
            .map(|c| ChannelRow {
                id: None,
                name: c.name.clone(),
                kind: c.kind.kind_name().to_string(),
                describe: c.describe(),
                added_by: None,
                added_at: None,
                problem: None,
            })
            .collect();
        for s in stored {
            let problem = match open_channel(self.key.as_ref(), s) {
                Ok(channel) => {
                    open.push((s.id, channel));
                    None
                }
                Err(problem) => Some(problem),
            };
            rows.push(ChannelRow {
                id: Some(s.id),
                name: s.name.clone(),
                kind: s.kind.clone(),
                describe: s.describe.clone(),
                added_by: Some(s.created_by.clone()),
                added_at: Some(s.created_at),
                problem,
            });
        }
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(open), rows);
        // The alert-channel-unusable rule reads them: an added or removed channel tells soon.
        self.wake.notify_one();
    }

    /// The stored channels that cannot be used, each as `NAME: why` (never a secret): the
    /// banner of the Alerts page and the overview.
    pub fn unusable_channels(&self) -> Vec<String> {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        stored
            .1
            .iter()
            .filter_map(|row| Some(format!("{}: {}", row.name, row.problem.as_ref()?)))
            .collect()
    }

    /// The channels an admin added, and why each cannot be used, if so: what the
    /// alert-channel-unusable rule watches.
    fn stored_channels(&self) -> Vec<ChannelObservation> {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        stored
            .1
            .iter()
            .filter(|row| row.id.is_some())
            .map(|row| ChannelObservation {
                name: row.name.clone(),
                problem: row.problem.clone(),
            })
            .collect()
    }

    /// The channels as the page lists them.
    pub fn channel_rows(&self) -> Vec<ChannelRow> {
        self.stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// A stored channel, opened.
    pub fn channel(&self, id: i64) -> Option<Channel> {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        stored
            .0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, c)| c.clone())
    }

    /// Every channel a message goes to.
    fn channels(&self) -> Vec<Channel> {
        let stored = self
            .stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        self.webhooks
            .iter()
            .cloned()
            .chain(stored.iter().map(|(_, c)| c.clone()))
            .collect()
    }

    pub fn rules(&self) -> AlertRules {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stores `rules` and applies them from the next evaluation.
    pub fn set_rules(&self, store: &Store, rules: AlertRules) -> Result<(), String> {
        rules.validate().map_err(|e| e.to_string())?;
        let text = serde_json::to_string(&rules).expect("rules serialise");
        store
            .set_alert_setting(RULES_KEY, &text)
            .map_err(|e| e.to_string())?;
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
        self.wake.notify_one();
        Ok(())
    }

    /// The ongoing alerts (pending and firing), by rule then subject.
    pub async fn ongoing(&self) -> Vec<swarmkeeper_alerts::Alert> {
        self.state.lock().await.alerts.alerts().cloned().collect()
    }

    /// Sends the test message to `channel`; what the receiver answered.
    pub async fn send_test(&self, channel: &Channel) -> Result<Delivery, NotifyError> {
        let Some(notifier) = &self.notifier else {
            return Err(NotifyError {
                channel: channel.describe(),
                attempts: 0,
                problem: swarmkeeper_notify::Problem::Config("no HTTP client".into()),
            });
        };
        notifier
            .send(channel, &Message::test(Timestamp::now()))
            .await
    }

    /// The ends of one slot of a service (task id, when) that the evaluations saw in Swarm's
    /// listings within the restart-loop rule's window, oldest first: more than the 4 ended
    /// tasks Swarm keeps listing.
    pub async fn slot_ends(&self, service_id: &str, slot: &str) -> Vec<(String, Timestamp)> {
        self.state.lock().await.restarts.slot_ends(service_id, slot)
    }

    /// Asks for an evaluation soon (a silence or a rule changed).
    pub fn evaluate_soon(&self) {
        self.wake.notify_one();
    }

    /// Sends `message` to every channel of `channels` at once, each after the messages decided
    /// before it for that channel (a fair lock per channel: evaluations are at least
    /// [`MIN_EVALUATION_GAP`] apart, and each hands its messages to a task at once). The
    /// results in the channels' order.
    async fn send_in_order(
        &self,
        notifier: &Notifier,
        channels: &[Channel],
        message: &Message,
    ) -> Vec<Result<(), NotifyError>> {
        let sends = channels.iter().map(|channel| {
            let lock = self
                .sending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(channel.name.clone())
                .or_default()
                .clone();
            async move {
                let _turn = lock.lock().await;
                notifier.send(channel, message).await.map(|_| ())
            }
        });
        futures_util::future::join_all(sends).await
    }
}

/// The seal's associated data: a channel's sealed settings open only under its own name.
pub fn channel_purpose(name: &str) -> String {
    format!("alert-channel:{name}")
}

/// A stored channel's settings, opened with `key`.
fn open_channel(key: Option<&SealingKey>, stored: &StoredChannel) -> Result<Channel, String> {
    let key = key.ok_or("its settings are sealed, and the server has no secret key")?;
    let open = key
        .open(&channel_purpose(&stored.name), &stored.sealed)
        .map_err(|e| format!("its settings cannot be opened: {e}; remove it and add it again"))?;
    serde_json::from_slice(&open).map_err(|_| "its settings are not readable".to_string())
}

/// Starts the evaluating task if it is not running yet; it stops when the server shuts down.
pub fn spawn(state: AppState) {
    if state.alerting.started.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async move {
        let stop = state.shutdown.started();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = state.alerting.wake.notified() => {}
                () = tokio::time::sleep(EVALUATION_INTERVAL) => {}
                () = &mut stop => return,
            }
            let started = Instant::now();
            evaluate_now(&state).await;
            tokio::time::sleep(MIN_EVALUATION_GAP.saturating_sub(started.elapsed())).await;
        }
    });
}

/// After a stored report: notes its memory samples and OOM kills and asks for an evaluation.
pub fn after_report(state: &AppState, report: &NodeReport) {
    let keep = signed(state.alerting.rules().oom_kill.keep_firing_for);
    note_usage(
        &mut state
            .alerting
            .observed
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
        &report.hostname,
        &report.usage,
        keep,
        Timestamp::now(),
    );
    spawn(state.clone());
    state.alerting.wake.notify_one();
}

async fn evaluate_now(state: &AppState) {
    let alerting = &state.alerting;
    let rules = alerting.rules();
    let now = Timestamp::now();
    let swarm = {
        let cached = alerting.state.lock().await.swarm.clone();
        let mut view = match cached {
            Some((at, view)) if at.elapsed() < EVALUATION_INTERVAL => view,
            _ => {
                let view = list_swarm(state).await;
                let mut evaluations = alerting.state.lock().await;
                if view.tasks_listed {
                    let within = rules.restart_loop.within;
                    let added = evaluations
                        .restarts
                        .record(view.ends.iter().cloned(), now, within);
                    store_task_ends(state, &added, now, within);
                }
                evaluations.swarm = Some((Instant::now(), view.clone()));
                view
            }
        };
        let evaluations = alerting.state.lock().await;
        for (id, service) in &mut view.services {
            service.restarts = evaluations.restarts.restarts(id);
            service.restarts_partial =
                evaluations
                    .restarts
                    .may_be_short(id, now, rules.restart_loop.within);
            service.loop_ended = evaluations
                .restarts
                .loop_ended(id, now, &rules.restart_loop);
        }
        view
    };
    let observation = observe(state, &rules, swarm, now);
    let silences: Vec<Silence> = match state.store().alert_silences(now) {
        Ok(stored) => stored.iter().filter_map(silence_of).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: cannot read the silences");
            Vec::new()
        }
    };
    let channel_names: Vec<String> = alerting.channels().into_iter().map(|c| c.name).collect();
    let (messages, retries, reminders) = {
        let mut evaluations = alerting.state.lock().await;
        let routed = evaluate_routed(
            &mut evaluations.alerts,
            &rules,
            &observation,
            &silences,
            &channel_names,
            now,
        );
        persist(state, &mut evaluations, now);
        evaluations.outbox.keep_channels(&channel_names);
        let messages: Vec<(Routed, Sending)> = routed
            .into_iter()
            .map(|r| {
                let sending = evaluations.outbox.route(&r.message, &r.channels);
                (r, sending)
            })
            .collect();
        let retries = evaluations.outbox.due(now);
        persist_outbox(state, &mut evaluations);
        let due = evaluations
            .reminded
            .is_none_or(|at| at.elapsed() >= ALERTMANAGER_REMINDER);
        let reminders = if due {
            evaluations.reminded = Some(Instant::now());
            evaluations.alerts.firing_messages(&silences, now)
        } else {
            Vec::new()
        };
        (messages, retries, reminders)
    };
    remind_alertmanagers(state, reminders);
    if messages.is_empty() && retries.is_empty() {
        return;
    }
    // Delivered on a task of its own: a slow receiver (three attempts, backoff) holds up no
    // evaluation; messages of one evaluation go in order.
    let state = state.clone();
    tokio::spawn(async move {
        let every = state.alerting.channels();
        let mut records = Vec::new();
        let mut outcomes = Vec::new();
        // The dropped firing messages' rows say so before the resolution's row is written.
        for (_, sending) in &messages {
            for (channel, record) in &sending.dropped {
                note(
                    &state,
                    *record,
                    &format!(
                        "; channel {channel}: dropped, the alert resolved before this message \
                         reached it"
                    ),
                );
            }
        }
        for (routed, sending) in messages {
            let to: Vec<Channel> = every
                .iter()
                .filter(|c| sending.send.contains(&c.name))
                .cloned()
                .collect();
            let (delivery, failed) = if routed.channels.is_empty() && !every.is_empty() {
                (
                    "not sent: no channel had its firing message".to_string(),
                    Vec::new(),
                )
            } else {
                deliver(&state, &to, &routed, &sending.dropped).await
            };
            records.push(AlertRecord {
                at: Timestamp::now(),
                status: routed.message.status.as_str().to_string(),
                rule: routed.message.rule.as_str().to_string(),
                subject: routed.message.subject.clone(),
                summary: routed.message.summary.clone(),
                started_at: routed.message.started_at,
                ended_at: routed.message.ended_at,
                delivery,
            });
            outcomes.push((routed.message, to, failed));
        }
        let ids = state.store().record_alerts(&records).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "alerts: cannot write the alert history");
            Vec::new()
        });
        {
            let mut evaluations = state.alerting.state.lock().await;
            for (i, (message, to, failed)) in outcomes.iter().enumerate() {
                let record = ids.get(i).copied();
                for channel in to {
                    if failed.contains(&channel.name) {
                        evaluations.outbox.failed(
                            message,
                            &channel.name,
                            record,
                            DELIVERY_BACKOFF,
                            Timestamp::now(),
                        );
                    } else {
                        evaluations.outbox.delivered(message, &channel.name);
                    }
                }
            }
            persist_outbox(&state, &mut evaluations);
        }
        for attempt in retries {
            retry(&state, &every, attempt).await;
        }
    });
}

/// Tries `attempt` again for its channel alone: delivered, the message's history row says so;
/// failed, it waits longer ([`DELIVERY_BACKOFF`]; the notifier has logged why).
async fn retry(state: &AppState, every: &[Channel], attempt: Attempt) {
    let Some(notifier) = &state.alerting.notifier else {
        return;
    };
    let Some(channel) = every.iter().find(|c| c.name == attempt.channel) else {
        return;
    };
    let result = state
        .alerting
        .send_in_order(notifier, std::slice::from_ref(channel), &attempt.message)
        .await;
    let now = Timestamp::now();
    let delivered = result.iter().all(Result::is_ok);
    {
        let mut evaluations = state.alerting.state.lock().await;
        if delivered {
            evaluations
                .outbox
                .delivered(&attempt.message, &channel.name);
        } else {
            evaluations
                .outbox
                .failed(&attempt.message, &channel.name, None, DELIVERY_BACKOFF, now);
        }
        persist_outbox(state, &mut evaluations);
    }
    if delivered {
        note(
            state,
            attempt.record,
            &format!(
                "; channel {}: delivered at {} after {} failed attempt(s)",
                channel.name,
                swarmkeeper_alerts::rfc3339_seconds(now),
                attempt.failures
            ),
        );
    }
}

/// Adds `text` to the delivery of history row `record`, if it was written.
fn note(state: &AppState, record: Option<i64>, text: &str) {
    let Some(id) = record else {
        return;
    };
    if let Err(e) = state.store().note_alert_delivery(id, text) {
        tracing::warn!(error = %e, "alerts: cannot write the alert history");
    }
}

/// Sends `reminders` (firing alerts already sent) again to the Alertmanager channels only, on
/// a task of its own; not recorded in the history. Failures are logged by the notifier.
fn remind_alertmanagers(state: &AppState, reminders: Vec<Message>) {
    let channels: Vec<Channel> = state
        .alerting
        .channels()
        .into_iter()
        .filter(|c| matches!(c.kind, ChannelKind::Alertmanager { .. }))
        .collect();
    let Some(notifier) = state.alerting.notifier.clone() else {
        return;
    };
    if channels.is_empty() || reminders.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for message in reminders {
            state
                .alerting
                .send_in_order(&notifier, &channels, &message)
                .await;
        }
    });
}

/// When the stored alert state was last evaluated; `None` when never written or unreadable.
fn last_evaluated(store: &Store) -> Option<Timestamp> {
    store
        .alert_setting(EVALUATED_KEY)
        .ok()
        .flatten()
        .and_then(|text| text.parse().ok())
}

/// Writes the ongoing alerts when they changed since last written, and when they were
/// evaluated (`now`) while one is pending: what a restart restores its `for` clock from.
fn persist(state: &AppState, evaluations: &mut Evaluations, now: Timestamp) {
    if evaluations.alerts.alerts().any(|a| !a.is_firing()) {
        if let Err(e) = state
            .store()
            .set_alert_setting(EVALUATED_KEY, &now.to_string())
        {
            tracing::warn!(error = %e, "alerts: cannot write when they were evaluated");
        }
    }
    let text = serde_json::to_string(&evaluations.alerts).expect("alert state serialises");
    if text != evaluations.written {
        match state.store().set_alert_setting(STATE_KEY, &text) {
            Ok(()) => evaluations.written = text,
            Err(e) => tracing::warn!(error = %e, "alerts: cannot write the alert state"),
        }
    }
}

/// Writes the outbox to the store when it changed since it was last written.
fn persist_outbox(state: &AppState, evaluations: &mut Evaluations) {
    let text = serde_json::to_string(&evaluations.outbox.waiting()).expect("the outbox serialises");
    if text != evaluations.outbox_written {
        match state.store().set_alert_setting(OUTBOX_KEY, &text) {
            Ok(()) => evaluations.outbox_written = text,
            Err(e) => tracing::warn!(error = %e, "alerts: cannot write the undelivered messages"),
        }
    }
}

/// The stored outbox, each message due at `started_at`, and its text as stored; an empty
/// one when none is stored or it cannot be read (said in the log).
fn restore_outbox(store: &Store, started_at: Timestamp) -> (Outbox, String) {
    let text = match store.alert_setting(OUTBOX_KEY) {
        Ok(Some(text)) => text,
        Ok(None) => return (Outbox::default(), String::new()),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: cannot read the undelivered messages");
            return (Outbox::default(), String::new());
        }
    };
    match serde_json::from_str(&text) {
        Ok(waiting) => (Outbox::restored(waiting, started_at), text),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: stored undelivered messages unreadable; dropped");
            (Outbox::default(), String::new())
        }
    }
}

/// A stored silence as the rules read it; one naming a rule this build does not know is
/// left out.
pub fn silence_of(stored: &StoredSilence) -> Option<Silence> {
    let rule = match &stored.rule {
        Some(text) => Some(text.parse::<RuleId>().ok()?),
        None => None,
    };
    Some(Silence {
        rule,
        subject: stored.subject.clone(),
        starts_at: stored.starts_at,
        ends_at: stored.ends_at,
        created_by: stored.created_by.clone(),
        comment: stored.comment.clone(),
    })
}

/// Sends one routed message to `channels` (those of its channels it is sent to now; the
/// others, `dropped`, never had its firing message). Returns how it went, for the history
/// (channels named without secrets), and the names of the channels it failed for: each is
/// tried again with back-off, and the row says so.
async fn deliver(
    state: &AppState,
    channels: &[Channel],
    routed: &Routed,
    dropped: &[(String, Option<i64>)],
) -> (String, Vec<String>) {
    let Some(notifier) = &state.alerting.notifier else {
        return ("not sent: no HTTP client".to_string(), Vec::new());
    };
    if channels.is_empty() && dropped.is_empty() {
        return ("no channel configured".to_string(), Vec::new());
    }
    let results = state
        .alerting
        .send_in_order(notifier, channels, &routed.message)
        .await;
    // `Notifier::send` has logged each failure, naming the channel by its host only.
    let mut failed = Vec::new();
    let mut problems = Vec::new();
    for (channel, result) in channels.iter().zip(&results) {
        if let Err(e) = result {
            failed.push(channel.name.clone());
            problems.push(e.to_string());
        }
    }
    if results.is_empty() {
        // Every channel it was for never had the firing message (tryout 13: this read "sent
        // to 0 of 0 channel(s)").
        let never: Vec<String> = dropped
            .iter()
            .map(|(channel, _)| format!("channel {channel} never had its firing message"))
            .collect();
        return (format!("not sent: {}", never.join("; ")), Vec::new());
    }
    let sent = results.len() - failed.len();
    let mut text = format!("sent to {sent} of {} channel(s)", results.len());
    if routed.catch_up {
        text.push_str(" added since it fired");
    }
    for problem in problems {
        text.push_str("; ");
        text.push_str(&problem);
    }
    if !failed.is_empty() {
        text.push_str("; undelivered, retrying with back-off");
    }
    for (channel, _) in dropped {
        text.push_str(&format!(
            "; not sent to channel {channel}: its firing message never reached it"
        ));
    }
    (text, failed)
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// Swarm's nodes, and its services with their restarts. What cannot be listed is left out
/// and logged: the rules then see fewer nodes or services, never wrong ones.
async fn list_swarm(state: &AppState) -> SwarmView {
    let history = state.history();
    let (nodes, services, tasks, rollbacks) = tokio::join!(
        state.engine.list_nodes(),
        state.engine.list_services(None),
        state.engine.list_all_tasks(),
        history.rolled_back()
    );
    let rollbacks = rollbacks.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "alerts: cannot read the deploy history's rollbacks");
        Vec::new()
    });
    let nodes_listed = nodes.is_ok();
    let nodes = nodes.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "alerts: cannot list the nodes");
        Vec::new()
    });
    let (services, ends, tasks_listed) = match (services, tasks) {
        (Ok(services), Ok(tasks)) => {
            let ends = tasks
                .iter()
                .filter(|t| t.ended_on_its_own())
                .filter_map(|t| {
                    Some(TaskEnd {
                        service_id: t.service_id.clone(),
                        task_id: t.id.clone(),
                        slot: t.slot_key(),
                        at: t.timestamp?,
                    })
                })
                .collect();
            let facts: Vec<swarmkeeper_rollout::preflight::NodeFacts> =
                nodes.iter().map(swarmkeeper_deploy::node_facts).collect();
            let services = crate::views::services::service_rows(&services, &tasks, &facts)
                .into_iter()
                .map(|row| {
                    let swarm_service = services.iter().find(|s| s.id == row.id);
                    let update_status = swarm_service.and_then(|s| s.update_status.as_ref());
                    let update_started = update_status.and_then(|u| u.started_at);
                    let spec_since = update_status.and_then(|u| {
                        swarmkeeper_alerts::spec_since(
                            matches!(
                                u.state,
                                UpdateState::RollbackStarted
                                    | UpdateState::RollbackPaused
                                    | UpdateState::RollbackCompleted
                            ),
                            u.started_at,
                            u.completed_at,
                            swarm_service.and_then(|s| s.updated_at),
                        )
                    });
                    let rolled_back = match engine_rollback(&rollbacks, &row.name, update_started) {
                        Some(r) => Some(Rollback {
                            origin: UpdateOrigin::Deploy,
                            revision: Some((r.stack.clone(), r.revision)),
                            reason: r.reason.clone(),
                            requested_by: None,
                        }),
                        None => row.rolled_back.then(|| Rollback {
                            origin: UpdateOrigin::Update,
                            revision: None,
                            reason: row.update_message.clone(),
                            requested_by: rollback_asked_by(state, &row.name, update_started),
                        }),
                    };
                    let service = ServiceObservation {
                        name: row.name,
                        converged: row.converged,
                        rolled_back,
                        restarts: Vec::new(),
                        restarts_partial: false,
                        loop_ended: false,
                        spec_since,
                    };
                    (row.id, service)
                })
                .collect();

            (services, ends, true)
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "alerts: cannot list the services");
            (Vec::new(), Vec::new(), false)
        }
    };
    SwarmView {
        nodes,
        nodes_listed,
        services,
        tasks_listed,
        ends,
    }
}

/// Who asked for the rollback of `service` that Swarm started at `started` and completed
/// (`swarmkeeper_alerts::requested_rollback` over the newest `rollback` of the service in
/// the audit log: the service page's "Roll back", `POST /api/services/{name}/rollback`).
/// The audit log is read once per rollback: an answer is kept for that start, a "nobody"
/// only once the start is older than `ROLLBACK_REQUEST_SKEW` (a request audited a moment
/// after Swarm started it still counts).
fn rollback_asked_by(
    state: &AppState,
    service: &str,
    started: Option<Timestamp>,
) -> Option<String> {
    let started = started?;
    let mut asked = state
        .alerting
        .rollbacks_asked
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((at, who)) = asked.get(service) {
        if *at == started {
            return who.clone();
        }
    }
    let entry = swarmkeeper_auth::store::latest_audit_of(
        &state.auth(),
        service,
        &[Action::Rollback.as_str()],
    )
    .inspect_err(|e| tracing::debug!(error = %e, "alerts: cannot read the audit log"))
    .ok()
    .flatten();
    let who = requested_rollback(
        Some(started),
        entry.as_ref().map(|e| (e.who.as_str(), e.at)),
    );
    let settled =
        Timestamp::now().duration_since(started) > swarmkeeper_alerts::ROLLBACK_REQUEST_SKEW;
    if who.is_some() || settled {
        asked.insert(service.to_string(), (started, who.clone()));
    }
    who
}
/// The deploy engine's rollback of `service` that is still its last word (tryout finding
/// 20): the newest revision that put it back, unless Swarm started an update of it after that
/// revision ended (both times by the managers' clock). The engine's own rollback is an update
/// that ends `completed`, so Swarm's `UpdateStatus` alone never tells it.
fn engine_rollback<'a>(
    rollbacks: &'a [RolledBackRevision],
    service: &str,
    update_started: Option<Timestamp>,
) -> Option<&'a RolledBackRevision> {
    rollbacks
        .iter()
        .filter(|r| r.services.iter().any(|s| s == service))
        .max_by_key(|r| r.ended_at)
        .filter(|r| update_started.is_none_or(|started| started <= r.ended_at))
}

/// The cluster as the rules read it.
fn observe(state: &AppState, rules: &AlertRules, swarm: SwarmView, now: Timestamp) -> Observation {
    let window = signed(rules.disk_full_forecast.window);
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
    let mut readiness = state
        .alerting
        .readiness
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut ready_since = |node: &swarmkeeper_engine::SwarmNode| {
        let able = !is_down(&node.state) && membership(node) == Membership::Member;
        let next = Readiness::next(readiness.get(&node.id).copied(), able, now);
        readiness.insert(node.id.clone(), next);
        next.since
    };
    let mut nodes: Vec<NodeObservation> = Vec::new();
    for (report, received_at, samples) in reports {
        let swarm_node = swarm.nodes.iter().find(|n| n.id == report.node_id);
        let membership = match swarm_node {
            Some(node) => membership(node),
            // A report whose node Swarm no longer lists: removed (`docker node rm`), unless
            // the list could not be read or the engine is outside a swarm.
            None if swarm.nodes_listed && !report.node_id.is_empty() => Membership::Removed,
            None => Membership::Member,
        };
        nodes.push(NodeObservation {
            name: report.hostname.clone(),
            down: swarm_node.is_some_and(|n| is_down(&n.state)),
            membership,
            last_report: Some(received_at),
            ready_since: swarm_node.and_then(&mut ready_since),
            report_interval_seconds: report.interval_seconds,
            disk: Some(NodeDisk {
                usage_percent: report.disk.usage_percent,
                high_threshold_percent: report.high_threshold_percent,
                gc_fell_short: report.last_pass.as_ref().is_some_and(|p| p.fell_short()),
                samples,
            }),
        });
    }
    for node in &swarm.nodes {
        if !nodes.iter().any(|n| n.name == node.hostname) {
            nodes.push(NodeObservation {
                name: node.hostname.clone(),
                down: is_down(&node.state),
                membership: membership(node),
                last_report: None,
                ready_since: ready_since(node),
                report_interval_seconds: 0,
                disk: None,
            });
        }
    }
    if swarm.nodes_listed {
        readiness.retain(|id, _| swarm.nodes.iter().any(|n| &n.id == id));
    }
    drop(readiness);
    let tasks = {
        let keep = signed(rules.oom_kill.keep_firing_for);
        let mut observed = state
            .alerting
            .observed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        forget_old_kills(&mut observed, keep, now);
        tasks_of(&observed)
    };
    Observation {
        nodes,
        services: swarm
            .services
            .into_iter()
            .map(|(_, service)| service)
            .collect(),
        tasks,
        started_at: Some(state.alerting.started_at),
        channels: state.alerting.stored_channels(),
    }
}

/// Every task slot a report told of: its newest memory figures and its recent OOM kills.
fn tasks_of(observed: &Observed) -> Vec<TaskObservation> {
    let mut tasks: BTreeMap<&str, TaskObservation> = BTreeMap::new();
    for (node, slots) in &observed.memory {
        for (slot, (memory, limit)) in slots {
            tasks.insert(
                slot,
                TaskObservation {
                    name: slot.clone(),
                    node: node.clone(),
                    memory_bytes: *memory,
                    memory_limit_bytes: *limit,
                    oom_kills: Vec::new(),
                },
            );
        }
    }
    for (slot, (node, kills)) in &observed.oom_kills {
        tasks
            .entry(slot)
            .or_insert_with(|| TaskObservation {
                name: slot.clone(),
                node: node.clone(),
                memory_bytes: 0,
                memory_limit_bytes: None,
                oom_kills: Vec::new(),
            })
            .oom_kills = kills.clone();
    }
    tasks.into_values().collect()
}

/// Swarm's `Status.State` for a node that is not there.
fn is_down(state: &str) -> bool {
    matches!(state, "down" | "disconnected")
}

/// A listed node's place in the swarm: drained (`Spec.Availability`) or a member.
fn membership(node: &swarmkeeper_engine::SwarmNode) -> Membership {
    if node.availability == "drain" {
        Membership::Drained
    } else {
        Membership::Member
    }
}

/// A task's slot as alerts name it: `service.slot`, `service.node` for a global service, so
/// an alert follows the slot across the task's restarts.
fn slot_name(task: &swarmkeeper_report::TaskUsage, node: &str) -> String {
    if task.slot.is_empty() {
        format!("{}.{node}", task.service)
    } else {
        format!("{}.{}", task.service, task.slot)
    }
}

/// Records what `report`'s usage samples show: each task slot's memory in the newest sample
/// (replacing what the node's previous report said), and the OOM kills: a task container's
/// kill count that grew since it was last seen (or is above zero the first time it is seen)
/// is a kill at that sample's time. Kills older than `keep` are forgotten.
fn note_usage(
    observed: &mut Observed,
    hostname: &str,
    usage: &[UsageSample],
    keep: jiff::SignedDuration,
    now: Timestamp,
) {
    if !usage.is_empty() {
        let before = observed.oom_counts.remove(hostname).unwrap_or_default();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for sample in usage {
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
                    observed
                        .oom_kills
                        .entry(slot_name(task, hostname))
                        .or_insert_with(|| (hostname.to_string(), Vec::new()))
                        .1
                        .push(sample.taken_at);
                }
            }
        }
        observed.oom_counts.insert(hostname.to_string(), seen);
        let newest = usage.iter().max_by_key(|s| s.taken_at);
        let memory = newest
            .map(|sample| {
                sample
                    .tasks
                    .iter()
                    .map(|t| {
                        (
                            slot_name(t, hostname),
                            (t.memory_bytes, t.memory_limit_bytes),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        observed.memory.insert(hostname.to_string(), memory);
    }
    forget_old_kills(observed, keep, now);
}

/// How far before the OOM-kill window a restart reads the stored usage samples: the samples
/// of that stretch only tell each container's kill count before the window, so that a kill
/// counted before it is not taken for a new one.
const RESTORE_BASELINE: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// What the reports said about tasks before the server (re)started, read back from the usage
/// samples in the store: the samples of the OOM-kill window and [`RESTORE_BASELINE`] before it
/// go through [`note_usage`] node by node, oldest first, as they went when they arrived. So a
/// restart keeps each slot's newest memory figures and its OOM kills with their times, and
/// the rules that read them neither resolve (memory-near-limit, oom-kill: tryout finding 25)
/// nor fire again. Prometheus restores its alerts' state from its own time series
/// (`ALERTS_FOR_STATE`) the same way. Nothing readable: an empty start, logged.
fn restore_observed(store: &Store, keep: jiff::SignedDuration, now: Timestamp) -> Observed {
    let mut observed = Observed::default();
    let since = now
        .checked_sub(keep)
        .and_then(|t| t.checked_sub(RESTORE_BASELINE))
        .unwrap_or(Timestamp::MIN);
    let reports = match store.latest_node_reports() {
        Ok(reports) => reports,
        Err(e) => {
            tracing::warn!(error = %e, "alerts: cannot read the node reports to restore from");
            return observed;
        }
    };
    for (report, _) in reports {
        let rows = match store.recent_task_usage(&[report.node_key()], since) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, node = %report.hostname,
                    "alerts: cannot read the usage samples to restore from");
                continue;
            }
        };
        let mut by_time: BTreeMap<Timestamp, Vec<swarmkeeper_report::TaskUsage>> = BTreeMap::new();
        for (at, task) in rows {
            by_time.entry(at).or_default().push(task);
        }
        let usage: Vec<UsageSample> = by_time
            .into_iter()
            .map(|(taken_at, tasks)| UsageSample {
                taken_at,
                node: None,
                tasks,
            })
            .collect();
        note_usage(&mut observed, &report.hostname, &usage, keep, now);
    }
    observed
}

/// The restart-loop rule's ledger as the previous server left it: the task ends it stored
/// within the rule's window before `now` (`within`), and when it last listed. Nothing
/// readable: a ledger that knows nothing before its first listing, logged.
fn restore_restarts(store: &Store, within: Duration, now: Timestamp) -> RestartLedger {
    let since = now.checked_sub(signed(within)).unwrap_or(Timestamp::MIN);
    match store.task_ends(since) {
        Ok((ends, listed_at)) => RestartLedger::restored(
            ends.into_iter().map(|end| TaskEnd {
                service_id: end.service_id,
                task_id: end.task_id,
                slot: end.slot,
                at: end.ended_at,
            }),
            listed_at,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: cannot read the stored task ends");
            RestartLedger::restored([], None)
        }
    }
}

/// Stores the task ends one listing (made at `now`) added to the ledger and the listing's
/// time, and forgets those older than the restart-loop rule's window; a failure is logged (the next start then counts fewer ends,
/// and holds the rule unknown for the outage, `RestartLedger::may_be_short`).
fn store_task_ends(state: &AppState, ends: &[TaskEnd], now: Timestamp, within: Duration) {
    let rows: Vec<StoredTaskEnd> = ends
        .iter()
        .map(|end| StoredTaskEnd {
            service_id: end.service_id.clone(),
            task_id: end.task_id.clone(),
            slot: end.slot.clone(),
            ended_at: end.at,
        })
        .collect();
    let oldest = now.checked_sub(signed(within)).unwrap_or(Timestamp::MIN);
    if let Err(e) = state.store().record_task_ends(&rows, now, oldest) {
        tracing::warn!(error = %e, "alerts: cannot store the task ends");
    }
}

fn forget_old_kills(observed: &mut Observed, keep: jiff::SignedDuration, now: Timestamp) {
    observed.oom_kills.retain(|_, (_, kills)| {
        kills.retain(|at| now.duration_since(*at) <= keep);
        !kills.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use swarmkeeper_report::TaskUsage;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn usage(taken: i64, memory: u64, ooms: u64) -> UsageSample {
        UsageSample {
            taken_at: at(taken),
            node: None,
            tasks: vec![TaskUsage {
                task: "t1".into(),
                service: "web".into(),
                stack: String::new(),
                slot: "1".into(),
                cpu_ns: 0,
                memory_bytes: memory,
                memory_limit_bytes: Some(16 << 20),
                oom_kills: Some(ooms),
            }],
        }
    }

    #[test]
    fn usage_samples_give_each_slot_its_newest_memory_and_its_oom_kills() {
        let mut observed = Observed::default();
        let keep = jiff::SignedDuration::from_mins(15);
        note_usage(
            &mut observed,
            "w1",
            &[usage(0, 1 << 20, 0), usage(10, 15 << 20, 1)],
            keep,
            at(10),
        );
        let tasks = tasks_of(&observed);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].name, "web.1");
        assert_eq!(tasks[0].node, "w1");
        assert_eq!(tasks[0].memory_bytes, 15 << 20);
        assert_eq!(tasks[0].memory_limit_bytes, Some(16 << 20));
        assert_eq!(tasks[0].oom_kills, [at(10)]);
        // The same count again is no new kill; a higher one is.
        note_usage(&mut observed, "w1", &[usage(20, 2 << 20, 1)], keep, at(20));
        assert_eq!(tasks_of(&observed)[0].oom_kills, [at(10)]);
        note_usage(&mut observed, "w1", &[usage(30, 2 << 20, 3)], keep, at(30));
        assert_eq!(tasks_of(&observed)[0].oom_kills, [at(10), at(30)]);
        // Kills are forgotten after `keep`.
        forget_old_kills(&mut observed, keep, at(30 + 15 * 60 + 1));
        assert!(tasks_of(&observed)[0].oom_kills.is_empty());
    }

    /// Tryout finding 20: the deploy engine's rollback is the service's last word until Swarm
    /// starts another update of it.
    #[test]
    fn an_engine_rollback_lasts_until_the_next_update_of_the_service() {
        let revision = |number, ended| RolledBackRevision {
            stack: "shop".into(),
            revision: number,
            ended_at: at(ended),
            reason: "shop_api: timed out".into(),
            services: vec!["shop_web".into()],
        };
        let all = [revision(3, 100), revision(5, 300)];
        let last = engine_rollback(&all, "shop_web", Some(at(290))).unwrap();
        assert_eq!(last.revision, 5);
        assert!(engine_rollback(&all, "shop_web", None).is_some());
        assert!(engine_rollback(&all, "shop_web", Some(at(301))).is_none());
        assert!(engine_rollback(&all, "shop_api", Some(at(0))).is_none());
    }

    /// Tryout finding 25: a restart forgot the memory figures and OOM kills, so the
    /// memory-near-limit and oom-kill alerts resolved, then fired again. What the new server
    /// reads back from the store is what the old one had noted from the same reports.
    #[test]
    fn a_restart_reads_back_each_slots_memory_and_oom_kills_from_the_stored_samples() {
        let keep = jiff::SignedDuration::from_mins(15);
        let now = at(40 * 60);
        let mut store = Store::in_memory().unwrap();
        let mut reports = Vec::new();
        // One report a minute for 40 minutes: an OOM kill counted 30 minutes ago (outside the
        // window: no kill after the restart), another 5 minutes ago, and the memory at 95 %
        // of its limit in the newest sample.
        for minute in 0..40 {
            let ooms = if minute >= 35 {
                2
            } else if minute >= 10 {
                1
            } else {
                0
            };
            let memory = if minute == 39 { 15_200 << 10 } else { 8 << 20 };
            let mut report = swarmkeeper_report::NodeReport {
                node_id: "n1".into(),
                hostname: "w1".into(),
                ..Default::default()
            };
            report.usage = vec![usage(minute * 60, memory, ooms)];
            store.record_node_report(&report, at(minute * 60)).unwrap();
            reports.push(report);
        }
        let mut live = Observed::default();
        for report in &reports {
            note_usage(
                &mut live,
                "w1",
                &report.usage,
                keep,
                report.usage[0].taken_at,
            );
        }
        forget_old_kills(&mut live, keep, now);
        let restored = restore_observed(&store, keep, now);
        assert_eq!(tasks_of(&restored), tasks_of(&live));
        let task = &tasks_of(&restored)[0];
        assert_eq!(
            task.oom_kills,
            [at(35 * 60)],
            "only the kill within the window"
        );
        assert_eq!(task.memory_bytes, 15_200 << 10);
        // The next report with the same count is no new kill.
        let mut after = restored;
        note_usage(
            &mut after,
            "w1",
            &[usage(41 * 60, 8 << 20, 2)],
            keep,
            at(41 * 60),
        );
        assert_eq!(tasks_of(&after)[0].oom_kills, [at(35 * 60)]);
    }
}
