//! The long-running agent: follows the engine's events, collects on every pull and on a timer,
//! serves metrics, and rides out engine restarts.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use swarmkeeper_engine::{Engine, EngineEvent, EventKind};
use swarmkeeper_gc::Policy;
use swarmkeeper_store::Store;
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep_until, Instant};

use crate::http::{self, Shared};
use crate::stats::{self, StatsConfig};
use crate::{collect, AgentError, FirstSighting, Metrics, Node, ReportConfig, Reporter, Trigger};

/// Pulls come in bursts (a stack update pulls several images, a build tags many): a pass runs
/// once the events have been quiet this long ...
const PULL_DEBOUNCE: Duration = Duration::from_millis(250);
/// ... or this long after the first of them, whichever comes first.
const PULL_DEBOUNCE_MAX: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Events handled per database transaction.
const EVENT_BATCH: usize = 512;
/// SQLite's page cache for the agent, KiB (the store's default is 512).
const AGENT_PAGE_CACHE_KIB: u32 = 128;

pub struct AgentConfig {
    pub policy: Policy,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    pub interval: Duration,
    /// The filesystem to measure; the engine's data root when `None`.
    pub fs_path: Option<PathBuf>,
    pub metrics_token: Option<String>,
    /// Where to report this node after each pass; no reports when `None`.
    pub report: Option<ReportConfig>,
    /// Resource usage of the task containers (`--stats-interval`, zero: off).
    pub stats: StatsConfig,
}

enum Signal {
    Event(EngineEvent),
    /// The event stream broke and was re-established: events may have been missed.
    Reconnected,
}

/// Runs the agent until `shutdown` completes. Returns early only for problems an operator must
/// fix (the state directory, the listen address); engine errors are logged and retried.
pub async fn run(
    engine: Engine,
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    crate::alloc::limit();
    crate::advice::trim_own_pages();
    let store = Store::open(&config.state_dir)?;
    // The agent's tables of a thousand-image node are a few hundred KiB, read whole by each
    // pass: a cache that holds them all only raises the agent's peak. Misses are reads from
    // the operating system's page cache.
    store.set_page_cache(AGENT_PAGE_CACHE_KIB)?;
    // `gc plan` on this node reads it, so that it plans as the agent does.
    crate::write_policy(&config.state_dir, config.policy.settings()).map_err(|source| {
        AgentError::Filesystem {
            path: config.state_dir.join(crate::POLICY_FILE),
            source,
        }
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
    let metrics = Arc::new(Metrics::new());
    let engine_up = Arc::new(AtomicBool::new(false));
    let shared = Shared {
        metrics: metrics.clone(),
        engine_up: engine_up.clone(),
        token: config.metrics_token.as_deref().map(Arc::from),
    };
    tracing::info!(listen = %config.listen, state = %store.path().display(), "agent starting");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, http::router(shared)).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });

    // An OOM kill asks the sampler for a pass at once, and that pass for a report at once:
    // the alert would otherwise wait for the next tick and then for the next report.
    let oom_killed = Arc::new(Notify::new());
    let urgent_taken = Arc::new(Notify::new());
    if !config.stats.interval.is_zero() {
        tokio::spawn(stats::sample_forever(
            engine.clone(),
            config.stats.clone(),
            metrics.usage().clone(),
            oom_killed.clone(),
            urgent_taken.clone(),
        ));
    }

    tokio::pin!(shutdown);
    let root_dir = tokio::select! {
        root = wait_for_engine(&engine, &metrics, &engine_up) => root,
        () = &mut shutdown => return Ok(()),
    };
    let fs_path = config.fs_path.clone().unwrap_or_else(|| root_dir.clone());
    let mut node = Node::new(engine.clone(), store, fs_path, root_dir.clone());
    let reporter = config.report.clone().map(|report| {
        tracing::info!(server = %report.server, "reporting to the server");
        let usage = (!config.stats.interval.is_zero()).then(|| metrics.usage().clone());
        Reporter::start(
            report,
            &node,
            root_dir,
            &config.policy,
            config.interval,
            usage,
        )
    });
    let (signals, mut incoming) = mpsc::channel(EVENT_BATCH * 2);
    tokio::spawn(follow_events(
        engine,
        signals,
        metrics.clone(),
        engine_up.clone(),
    ));

    let mut next_pass = Instant::now();
    // The first pull of a burst not yet answered by a pass, and when that pass is due.
    let mut burst_started: Option<Instant> = None;
    let mut pull_due: Option<Instant> = None;
    let mut trigger = Trigger::Startup;
    let mut backoff = Duration::from_secs(1);
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        tokio::select! {
            () = sleep_until(pull_due.map_or(next_pass, |due| due.min(next_pass))) => {
                burst_started = None;
                pull_due = None;
                match collect(&mut node, &config.policy, trigger).await {
                    Ok(outcome) => {
                        engine_up.store(true, Ordering::Relaxed);
                        metrics.engine_up(true);
                        metrics.record_run(&outcome);
                        if let Ok(fs) = node.measure() {
                            metrics.observe_disk(&fs, node.store.image_count().unwrap_or(0));
                        }
                        if !outcome.deleted.is_empty() || !outcome.removed_containers.is_empty() || outcome.fell_short() {
                            tracing::info!(
                                trigger = trigger.as_str(),
                                usage_before = outcome.usage_percent_before,
                                usage_after = outcome.usage_percent_after,
                                deleted = outcome.deleted.len(),
                                containers_removed = outcome.removed_containers.len(),
                                bytes_freed = outcome.bytes_freed,
                                shortfall_bytes = outcome.shortfall_bytes,
                                "gc pass"
                            );
                        }
                        node.first_sighting = FirstSighting::Now;
                        if let Some(reporter) = &reporter {
                            reporter.after_pass(&mut node, &config.policy, &outcome).await;
                        }
                        trigger = if outcome.fell_short() { Trigger::Retry } else { Trigger::Interval };
                        // A pass that fell short may have met images still being pulled or
                        // too young: look again soon, backing off, rather than a whole interval
                        // later with the disk still full.
                        let wait = if outcome.fell_short() { backoff } else { config.interval };
                        backoff = if outcome.fell_short() {
                            (backoff * 2).min(MAX_BACKOFF)
                        } else {
                            Duration::from_secs(1)
                        };
                        next_pass = Instant::now() + wait.min(config.interval);
                    }
                    Err(e) => {
                        let reason = failure_reason(&e);
                        if reason == "engine" {
                            engine_up.store(false, Ordering::Relaxed);
                            metrics.engine_up(false);
                        }
                        metrics.failure(reason);
                        tracing::warn!(error = %e, retry_in = ?backoff, "gc pass failed");
                        next_pass = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            received = incoming.recv_many(&mut batch, EVENT_BATCH) => {
                if received == 0 {
                    // The follower only stops when the runtime does.
                    return Ok(());
                }
                let volumes_changed = batch.iter().any(|s| {
                    matches!(s, Signal::Event(e) if e.kind == EventKind::Volume
                        && matches!(e.action.as_str(), "create" | "destroy"))
                });
                if let (true, Some(reporter)) = (volumes_changed, &reporter) {
                    reporter.volumes_changed();
                }
                if let Some(soon) = handle_signals(&mut node, &mut batch, &oom_killed, metrics.usage()).await {
                    // A pending startup pass or retry already does more than a pull asks.
                    if trigger == Trigger::Interval {
                        trigger = soon;
                    }
                    let now = Instant::now();
                    let first = *burst_started.get_or_insert(now);
                    pull_due = Some((now + PULL_DEBOUNCE).min(first + PULL_DEBOUNCE_MAX));
                }
            }
            () = urgent_taken.notified(), if reporter.is_some() => {
                if let Some(reporter) = &reporter {
                    reporter.report_now();
                }
            }
            () = &mut shutdown => {
                tracing::info!("agent stopping");
                return Ok(());
            }
        }
    }
}

/// The engine's data root, once the engine answers.
async fn wait_for_engine(engine: &Engine, metrics: &Metrics, engine_up: &AtomicBool) -> PathBuf {
    let mut backoff = Duration::from_secs(1);
    loop {
        match engine.info().await {
            Ok(info) => {
                engine_up.store(true, Ordering::Relaxed);
                metrics.engine_up(true);
                return info.root_dir;
            }
            Err(e) => {
                metrics.engine_up(false);
                metrics.failure("engine");
                tracing::warn!(error = %e, retry_in = ?backoff, "waiting for the Docker Engine");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Whether `event` is the kernel's OOM killer striking a Swarm task's container (Docker's
/// `{"Type":"container","Action":"oom"}`, with the task's labels among the attributes).
fn is_task_oom(event: &EngineEvent) -> bool {
    event.kind == EventKind::Container
        && event.action == "oom"
        && event.attributes.contains_key("com.docker.swarm.task.id")
}

/// Records image uses from container events and notifies `oom_killed` of a task's OOM kill;
/// returns a trigger when a pass should run soon.
async fn handle_signals(
    node: &mut Node,
    batch: &mut Vec<Signal>,
    oom_killed: &Notify,
    usage: &stats::Usage,
) -> Option<Trigger> {
    let mut trigger = None;
    let mut uses: Vec<(String, Timestamp)> = Vec::new();
    for signal in batch.drain(..) {
        match signal {
            Signal::Reconnected => trigger = Some(Trigger::Startup),
            Signal::Event(event) if is_task_oom(&event) => {
                usage.note_oom(event.actor_id, event.attributes);
                oom_killed.notify_one();
            }
            Signal::Event(event) => match event.kind {
                EventKind::Image
                    if matches!(event.action.as_str(), "pull" | "load" | "import" | "tag") =>
                {
                    trigger.get_or_insert(Trigger::Pull);
                }
                EventKind::Container
                    if matches!(
                        event.action.as_str(),
                        "create" | "start" | "die" | "destroy"
                    ) =>
                {
                    let Some(reference) = event.image.as_deref() else {
                        continue;
                    };
                    // An image pulled since the last pass is not in the node's index yet: a
                    // container that starts and ends between two passes must still count.
                    let id = match node.resolve_image(reference) {
                        Some(id) => Some(id.to_string()),
                        None => node.engine.image_id(reference).await.ok(),
                    };
                    if let Some(id) = id {
                        uses.push((id, event.time));
                    }
                }
                _ => {}
            },
        }
    }
    if !uses.is_empty() {
        if let Err(e) = node
            .store
            .record_used(uses.iter().map(|(id, at)| (id.as_str(), *at)))
        {
            tracing::warn!(error = %e, "cannot record image use");
        }
    }
    trigger
}

/// Forwards the engine's events, reconnecting with backoff and resuming from the last event
/// seen so that nothing in between is lost. A stream error asks the engine at once whether it
/// answers and sets `engine_up` by that: a pass may fail earlier for another reason (the data
/// root gone with the engine) and never reach the engine.
async fn follow_events(
    engine: Engine,
    signals: mpsc::Sender<Signal>,
    metrics: Arc<Metrics>,
    engine_up: Arc<AtomicBool>,
) {
    let mut since: Option<Timestamp> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut events = engine.events(since);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    backoff = Duration::from_secs(1);
                    since = Some(event.time);
                    if signals.send(Signal::Event(event)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "engine event stream");
                    let up = engine.info().await.is_ok();
                    engine_up.store(up, Ordering::Relaxed);
                    metrics.engine_up(up);
                }
            }
        }
        tracing::warn!(retry_in = ?backoff, "engine event stream ended; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if signals.send(Signal::Reconnected).await.is_err() {
            return;
        }
    }
}

fn failure_reason(error: &AgentError) -> &'static str {
    match error {
        AgentError::Engine(_) => "engine",
        AgentError::Store(_) => "store",
        AgentError::Filesystem { .. } => "filesystem",
        AgentError::Listen { .. } => "setup",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, action: &str, labels: &[&str]) -> EngineEvent {
        EngineEvent {
            kind,
            action: action.into(),
            actor_id: "c1".into(),
            image: Some("busybox".into()),
            attributes: labels
                .iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect(),
            time: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn only_a_task_containers_oom_asks_for_an_early_report() {
        let task = ["com.docker.swarm.task.id", "com.docker.swarm.service.name"];
        assert!(is_task_oom(&event(EventKind::Container, "oom", &task)));
        // A plain `docker run` container is not a task: no series, no alert.
        assert!(!is_task_oom(&event(EventKind::Container, "oom", &["name"])));
        assert!(!is_task_oom(&event(EventKind::Container, "die", &task)));
        assert!(!is_task_oom(&event(EventKind::Image, "oom", &task)));
    }
}
