//! Reporting to `swarmkeeper server`: after each GC pass the agent tells the server what its
//! node looks like. The GC loop only hands over what the pass saw; a task of its own measures
//! the disk and posts, one report at a time, so that a slow or unreachable server never delays
//! a pass. GC runs wait (at most [`MAX_PENDING_RUNS`]) until a post succeeds.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use swarmkeeper_engine::{DfVolume, Engine, EngineInfo, SystemDf};
use swarmkeeper_gc::{
    plan, reclaimable_bytes, DiskReport, DiskUsageInput, PlanMode, Policy, LABEL_SERVICE_NAME,
};
use swarmkeeper_report::{
    reported_images, secret_from_file_content, DataRoot, LastPass, NodeReport, ReportedDeletion,
    ReportedImage, ReportedRun, ReportedVolume, UnboundedLog, DISK_BREAKDOWN_MAX_AGE,
    MAX_PENDING_RUNS, MAX_REPORT_BYTES, REPORT_PATH,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use swarmkeeper_engine::layout;

use crate::stats::Usage;
use crate::{fs, Detail, GcOutcome, Node, Trigger};

/// Bounds a whole post, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The part of an error answer worth repeating in a log line.
const MAX_ERROR_BODY: usize = 1024;

/// The server's address: `http://HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `HOST:PORT` to connect to.
    address: String,
    /// The `Host` header: the authority as given.
    authority: String,
    /// Where reports go: the prefix, then [`REPORT_PATH`].
    report_path: String,
}

impl FromStr for ServerUrl {
    type Err = String;

    /// Only plain HTTP: the agent reaches the server over the stack's overlay network (which
    /// Swarm encrypts when the network has `driver_opts: {encrypted: ""}`); TLS would add a
    /// certificate to manage and weight to an agent that runs on every node.
    fn from_str(text: &str) -> Result<ServerUrl, String> {
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("not a URL ({e}); expected http://HOST[:PORT]"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "{other}:// is not supported: the agent reports over plain http:// \
                     inside the stack's network"
                ))
            }
            None => return Err("expected http://HOST[:PORT]".to_string()),
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or("the URL names no host")?;
        if authority.as_str().contains('@') {
            return Err("user names and passwords do not belong in the URL".to_string());
        }
        if uri.query().is_some() {
            return Err("the URL must not have a query".to_string());
        }
        let prefix = uri.path().trim_end_matches('/');
        Ok(ServerUrl {
            address: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            authority: authority.to_string(),
            report_path: format!("{prefix}{REPORT_PATH}"),
        })
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

/// The shared secret the server expects as `Authorization: Bearer SECRET`.
#[derive(Clone)]
pub struct ReportSecret(HeaderValue);

impl ReportSecret {
    /// The secret in a secret file, read as the server reads it
    /// ([`secret_from_file_content`]).
    pub fn from_file_content(content: &str) -> Result<ReportSecret, String> {
        let secret = secret_from_file_content(content);
        if secret.is_empty() {
            return Err("the file is empty".to_string());
        }
        // Header values may carry other bytes, but servers read them as ASCII text.
        let header = secret
            .is_ascii()
            .then(|| HeaderValue::from_str(&format!("Bearer {secret}")).ok())
            .flatten();
        let mut header = header.ok_or_else(|| {
            "the secret has characters an HTTP header cannot carry (control characters or \
             non-ASCII)"
                .to_string()
        })?;
        header.set_sensitive(true);
        Ok(ReportSecret(header))
    }
}

impl std::fmt::Debug for ReportSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportSecret(..)")
    }
}

/// Where and how the agent reports.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub server: ServerUrl,
    pub secret: ReportSecret,
}

/// Why a post did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot reach {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("{server} did not answer within {}s", POST_TIMEOUT.as_secs())]
    Timeout { server: String },
    #[error("{server} refused the report secret (401): the agent's --report-secret-file and the server's must hold the same secret")]
    Unauthorized { server: String },
    #[error("{server} refused a report of {bytes} bytes as too large (413)")]
    TooLarge { server: String, bytes: usize },
    #[error("{server} answered {status}: {message}")]
    Refused {
        server: String,
        status: StatusCode,
        message: String,
    },
}

/// POSTs one report body (JSON) to the server; any 2xx answer (the server sends 204) is
/// success. Gives up after ten seconds.
pub async fn post_report(config: &ReportConfig, body: impl Into<Bytes>) -> Result<(), ReportError> {
    let body = body.into();
    let server = config.server.to_string();
    tokio::time::timeout(POST_TIMEOUT, exchange(config, body, &server))
        .await
        .map_err(|_| ReportError::Timeout {
            server: server.clone(),
        })?
}

async fn exchange(config: &ReportConfig, body: Bytes, server: &str) -> Result<(), ReportError> {
    let unreachable = |detail: String| ReportError::Unreachable {
        server: server.to_string(),
        detail,
    };
    let stream = tokio::net::TcpStream::connect(&config.server.address)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(format!("HTTP handshake failed: {e}")))?;
    // Bounded on its own too: the post's timeout drops the request, not this task.
    tokio::spawn(tokio::time::timeout(POST_TIMEOUT, connection));
    let bytes = body.len();
    let request = Request::post(config.server.report_path.as_str())
        .header(HOST, config.server.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, config.secret.0.clone())
        .header(
            USER_AGENT,
            concat!("swarmkeeper-agent/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| unreachable(format!("cannot build the request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| {
        // What a TLS server answers to plain HTTP: say what to do, not "invalid HTTP version".
        let hint = if e.is_parse() {
            "; the server did not answer in HTTP: if it serves HTTPS (--tls-cert, \
             --tls-self-signed), send reports to its plain report listener (--report-listen; \
             http://server:8081 in deploy/swarmkeeper.yml)"
        } else {
            ""
        };
        unreachable(format!("the request failed: {e}{hint}"))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let server = server.to_string();
    Err(match status {
        StatusCode::UNAUTHORIZED => ReportError::Unauthorized { server },
        StatusCode::PAYLOAD_TOO_LARGE => ReportError::TooLarge { server, bytes },
        _ => {
            let text = match Limited::new(response.into_body(), MAX_ERROR_BODY)
                .collect()
                .await
            {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).trim().to_string(),
                Err(_) => String::new(),
            };
            let message = if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no explanation")
                    .to_string()
            } else {
                text
            };
            ReportError::Refused {
                server,
                status,
                message,
            }
        }
    })
}

/// The reporting side of the agent. The GC loop calls [`Reporter::after_pass`]; a task started
/// with the reporter posts, and stops when the reporter is dropped.
pub struct Reporter {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    identity: Option<Identity>,
    /// The images after the newest pass; every report until the next pass carries them.
    images: Option<Vec<ReportedImage>>,
    /// Runs not yet accepted by the server, oldest first, each with a sequence number so that
    /// a post removes exactly the runs it carried.
    runs: VecDeque<(u64, ReportedRun)>,
    next_run: u64,
    /// How the newest pass ended, and the headroom it kept.
    last_pass: Option<LastPass>,
    pull_headroom_bytes: u64,
    /// What GC may give back once it needs space, as of the images after the newest pass.
    reclaimable_bytes: u64,
    /// A volume was created or removed since the volume list was taken.
    volumes_changed: bool,
}

#[derive(Clone)]
struct Identity {
    node_id: String,
    hostname: String,
    engine_version: String,
}

/// What every report repeats.
struct Settings {
    config: ReportConfig,
    interval_seconds: u64,
    high_threshold_percent: u8,
    low_threshold_percent: u8,
    /// The policy's pull headroom setting, as the report states it.
    pull_headroom: String,
    /// Resource usage samples to carry; `None` with statistics off.
    usage: Option<Arc<Usage>>,
}

impl Reporter {
    /// Starts posting reports for `node`, whose engine keeps its data in `root_dir`.
    pub fn start(
        config: ReportConfig,
        node: &Node,
        root_dir: PathBuf,
        policy: &Policy,
        interval: Duration,
        usage: Option<Arc<Usage>>,
    ) -> Reporter {
        if let Some(usage) = &usage {
            usage.keep_for_reports();
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        let settings = Settings {
            config,
            interval_seconds: interval.as_secs().max(1),
            high_threshold_percent: policy.high_threshold_percent(),
            low_threshold_percent: policy.low_threshold_percent(),
            pull_headroom: policy.pull_headroom().to_string(),
            usage,
        };
        let disk = DiskSource {
            engine: node.engine.clone(),
            fs_path: node.fs_path().to_path_buf(),
            root_dir,
            breakdown: None,
            last_attempt: None,
        };
        let task = tokio::spawn(post_reports(shared.clone(), settings, disk));
        Reporter { shared, task }
    }

    /// Hands over what a successful pass did and what the node looks like after it. Returns
    /// once the node is observed; the post happens in the background.
    ///
    /// The images come from a fresh light observation (`/images/json`, `/containers/json`):
    /// the pass's own snapshot predates its deletions. The engine's identity is asked for
    /// again after each startup pass, since the engine may have joined a swarm meanwhile.
    pub async fn after_pass(&self, node: &mut Node, policy: &Policy, outcome: &GcOutcome) {
        if outcome.trigger == Trigger::Startup || self.lock().identity.is_none() {
            match node.engine.info().await {
                Ok(info) => self.lock().identity = Some(Identity::from(&info)),
                Err(e) => tracing::debug!(error = %e, "cannot ask the engine who it is"),
            }
        }
        let images = match node.observe(Detail::Light).await {
            Ok(snapshot) => Some((
                reported_images(&snapshot, &plan(&snapshot, policy, PlanMode::Threshold)),
                reclaimable_bytes(&snapshot, policy),
            )),
            Err(e) => {
                tracing::debug!(error = %e, "cannot observe the node for the report");
                None
            }
        };
        let mut state = self.lock();
        state.last_pass = Some(last_pass(outcome));
        state.pull_headroom_bytes = outcome.pull_headroom_bytes;
        if let Some(run) = reported_run(outcome) {
            let sequence = state.next_run;
            state.next_run += 1;
            state.runs.push_back((sequence, run));
            while state.runs.len() > MAX_PENDING_RUNS {
                state.runs.pop_front();
            }
        }
        if let Some((images, reclaimable)) = images {
            state.images = Some(images);
            state.reclaimable_bytes = reclaimable;
            drop(state);
            self.shared.wake.notify_one();
        }
    }

    /// Posts a report now, with the images of the newest pass and the usage samples taken
    /// since the last report (an OOM kill's, which must not wait for the next pass).
    pub fn report_now(&self) {
        self.shared.wake.notify_one();
    }

    /// A volume was created or removed: the next report, posted now, lists the volumes
    /// afresh (`GET /volumes`, not the whole `/system/df` breakdown).
    pub fn volumes_changed(&self) {
        self.lock().volumes_changed = true;
        self.shared.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere cannot have
        // left it half-changed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl From<&EngineInfo> for Identity {
    fn from(info: &EngineInfo) -> Identity {
        Identity {
            node_id: info.node_id.clone().unwrap_or_default(),
            hostname: info.hostname.clone(),
            engine_version: info.server_version.clone(),
        }
    }
}

/// How a pass ended, as every report repeats it.
fn last_pass(outcome: &GcOutcome) -> LastPass {
    LastPass {
        started_at: outcome.started_at,
        space_trigger: outcome.space_trigger.map(|t| t.as_str().to_string()),
        usage_percent_after: outcome.usage_percent_after,
        shortfall_bytes: outcome.shortfall_bytes,
        short_of_low_threshold: outcome.space_trigger.is_some()
            && outcome.usage_percent_after > outcome.low_threshold_percent,
        short_of_headroom: outcome.short_of_headroom(),
    }
}

/// The run as the server records it; `None` for a pass that found nothing to do.
fn reported_run(outcome: &GcOutcome) -> Option<ReportedRun> {
    let eventful = !outcome.deleted.is_empty()
        || !outcome.removed_containers.is_empty()
        || !outcome.failures.is_empty()
        || outcome.build_cache_freed_bytes > 0
        || outcome.fell_short();
    eventful.then(|| ReportedRun {
        started_at: outcome.started_at,
        trigger: outcome.trigger.as_str().to_string(),
        usage_percent_before: outcome.usage_percent_before,
        usage_percent_after: outcome.usage_percent_after,
        bytes_freed: outcome.bytes_freed,
        deleted: outcome
            .deleted
            .iter()
            .map(|d| ReportedDeletion {
                id: d.id.clone(),
                repo_tags: d.repo_tags.clone(),
                name: d.name.clone(),
                reason: d.reason.as_str().to_string(),
                bytes: d.bytes,
            })
            .collect(),
        containers_removed: outcome.removed_containers.len() as u64,
        // As the agent's own run log words it.
        outcome: if outcome.fell_short() {
            "shortfall"
        } else if outcome.failures.is_empty() {
            "ok"
        } else {
            "partial"
        }
        .to_string(),
        build_cache_freed_bytes: outcome.build_cache_freed_bytes,
        space_trigger: outcome.space_trigger.map(|t| t.as_str().to_string()),
        pull_headroom_bytes: outcome.pull_headroom_bytes,
    })
}

/// A server that does not answer for this long is worth a warning. The agents of a fresh
/// install start with their server, whose name does not resolve until its task runs: their
/// first reports fail for a few seconds, which is no fault.
const REPORT_GRACE: Duration = Duration::from_secs(60);

/// A report that could not be delivered is sent again after 1 s, 2 s, 4 s, … up to this, unless
/// a newer pass brings a newer report first.
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(30);

/// The posting task: waits for a pass, posts the newest report, retries one that the server
/// did not take until a newer one replaces it.
async fn post_reports(shared: Arc<Shared>, settings: Settings, mut disk: DiskSource) {
    let mut failures = FailureStreak::default();
    // A report the server did not take, with the sequence of the last run it carries.
    let mut pending: Option<(Bytes, Carried)> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        if pending.is_some() {
            tokio::select! {
                () = shared.wake.notified() => pending = None,
                () = tokio::time::sleep(backoff) => {}
            }
        } else {
            shared.wake.notified().await;
        }
        if std::mem::take(&mut shared.lock().volumes_changed) {
            disk.refresh_volumes().await;
        }
        let (body, carried) = match pending.take() {
            Some(pending) => pending,
            None => match next_report(&shared, &settings, &mut disk).await {
                Some(next) => next,
                None => continue,
            },
        };
        let result = post_report(&settings.config, body.clone()).await;
        // A run the server will never take must not hold back the ones after it.
        if matches!(result, Ok(()) | Err(ReportError::TooLarge { .. })) {
            if let Some(carried) = carried.runs {
                shared
                    .lock()
                    .runs
                    .retain(|(sequence, _)| *sequence > carried);
            }
            if let (Some(usage), Some(through)) = (&settings.usage, carried.usage) {
                usage.delivered(through);
            }
        }
        match result {
            Ok(()) => {
                failures.ended(&settings.config.server);
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                failures.failed(&e);
                if matches!(
                    e,
                    ReportError::Unreachable { .. } | ReportError::Timeout { .. }
                ) {
                    pending = Some((body, carried));
                    backoff = (backoff * 2).min(MAX_REPORT_BACKOFF);
                }
            }
        }
        disk.refresh_if_stale().await;
    }
}

/// The newest report as JSON, with the sequence of the last run it carries; `None` when no
/// pass has handed over images yet or the disk cannot be measured.
/// The sequence numbers of the newest GC run and usage sample a report carries: once the
/// server took it, those and the older ones are not sent again.
#[derive(Clone, Copy)]
struct Carried {
    runs: Option<u64>,
    usage: Option<u64>,
}

async fn next_report(
    shared: &Shared,
    settings: &Settings,
    disk: &mut DiskSource,
) -> Option<(Bytes, Carried)> {
    let (identity, images, runs, last_pass, pull_headroom_bytes, reclaimable_bytes) = {
        let state = shared.lock();
        let identity = state.identity.clone()?;
        // Kept, not taken: a report asked for between passes repeats them.
        let images = state.images.clone()?;
        let runs: Vec<(u64, ReportedRun)> = state.runs.iter().cloned().collect();
        (
            identity,
            images,
            runs,
            state.last_pass.clone(),
            state.pull_headroom_bytes,
            state.reclaimable_bytes,
        )
    };
    // The first report waits for a breakdown; later ones use the one they have, so that a
    // slow `/system/df` delays the next report's breakdown, not the report.
    if disk.breakdown.is_none() {
        disk.refresh().await;
    }
    let mut report = match disk.report(&identity, settings, images) {
        Ok(report) => report,
        Err(e) => {
            tracing::debug!(error = %e, "cannot measure the disk for the report");
            return None;
        }
    };
    let carried_runs = runs.last().map(|(sequence, _)| *sequence);
    report.gc_runs = runs.into_iter().map(|(_, run)| run).collect();
    report.last_pass = last_pass;
    report.pull_headroom_bytes = pull_headroom_bytes;
    report.reclaimable_bytes = reclaimable_bytes;
    let (samples, carried_usage) = match &settings.usage {
        Some(usage) => usage.undelivered(),
        None => (Vec::new(), None),
    };
    report.usage = samples;
    Some((
        Bytes::from(report.to_json_within(MAX_REPORT_BYTES)),
        Carried {
            runs: carried_runs,
            usage: carried_usage,
        },
    ))
}

/// Failed posts in a row, logged so that a server down for an hour does not fill the node's
/// logs: one warning per streak, once it has lasted [`REPORT_GRACE`] (at once when the server
/// refuses the report: a wrong secret does not fix itself), and a line when it ends.
#[derive(Default)]
struct FailureStreak {
    since: Option<Instant>,
    warned: bool,
}

impl FailureStreak {
    fn failed(&mut self, error: &ReportError) {
        let since = *self.since.get_or_insert_with(Instant::now);
        let refused = !matches!(
            error,
            ReportError::Unreachable { .. } | ReportError::Timeout { .. }
        );
        if self.warned || !(refused || since.elapsed() >= REPORT_GRACE) {
            tracing::debug!(error = %error, "report not delivered; trying again");
            return;
        }
        tracing::warn!(
            error = %error,
            "cannot report to the server; GC runs are kept (the last {MAX_PENDING_RUNS}) until it \
             accepts a report, and this is logged again only after it has"
        );
        self.warned = true;
    }

    fn ended(&mut self, server: &ServerUrl) {
        if self.warned {
            tracing::info!(server = %server, "the server accepts reports again");
        } else if let Some(since) = self.since {
            tracing::info!(server = %server, after = ?since.elapsed(), "reporting to the server");
        }
        *self = FailureStreak::default();
    }
}

/// The disk as the reports show it: statvfs for every report, the engine's breakdown from the
/// last `/system/df`.
struct DiskSource {
    engine: Engine,
    fs_path: PathBuf,
    root_dir: PathBuf,
    breakdown: Option<Breakdown>,
    last_attempt: Option<Instant>,
}

struct Breakdown {
    input: DiskUsageInput,
    /// Shared bytes per image id, for images whose layers the agent could not read.
    shared: HashMap<String, u64>,
    /// Containers logging to `json-file` without a size limit, largest first.
    unbounded_logs: Vec<UnboundedLog>,
    /// The node's volumes, largest first.
    volumes: Vec<ReportedVolume>,
    at: Timestamp,
}

impl DiskSource {
    async fn refresh_if_stale(&mut self) {
        if self
            .last_attempt
            .is_none_or(|at| at.elapsed() >= DISK_BREAKDOWN_MAX_AGE)
        {
            self.refresh().await;
        }
    }

    /// Lists the volumes again, keeping the sizes and users the breakdown measured for those
    /// still there; a new volume is unmeasured until the next breakdown.
    async fn refresh_volumes(&mut self) {
        let Some(breakdown) = &mut self.breakdown else {
            return;
        };
        match self.engine.list_volumes().await {
            Ok(listed) => breakdown.volumes = merge_volumes(&breakdown.volumes, listed),
            Err(e) => tracing::debug!(error = %e, "cannot list the volumes for the report"),
        }
    }

    /// Asks the engine for the breakdown; one that fails is retried only when a fresh one is
    /// due, as `/system/df` failing usually means it timed out on a busy node.
    async fn refresh(&mut self) {
        self.last_attempt = Some(Instant::now());
        match self.engine.system_df().await {
            Ok(df) => {
                let root_dir = self.root_dir.clone();
                let logs = tokio::task::spawn_blocking(move || {
                    (
                        swarmkeeper_engine::layout::container_log_bytes(&root_dir),
                        swarmkeeper_engine::layout::unbounded_json_logs(&root_dir),
                    )
                })
                .await
                .unwrap_or_default();
                self.breakdown = Some(Breakdown::new(&df, logs.0, logs.1.unwrap_or_default()));
            }
            Err(e) => tracing::debug!(error = %e, "no disk breakdown for the report"),
        }
    }

    fn report(
        &self,
        identity: &Identity,
        settings: &Settings,
        mut images: Vec<ReportedImage>,
    ) -> std::io::Result<NodeReport> {
        let filesystem = fs::measure(&self.fs_path)?;
        let usage = fs::usage(&self.fs_path)?;
        let data_root = fs::mount_info(&self.fs_path).map(|mount| DataRoot {
            path: self.fs_path.clone(),
            mount_point: mount.mount_point,
            source: mount.source,
            fs_type: mount.fs_type,
            size_bytes: usage.size_bytes,
            reserved_bytes: usage.reserved_bytes,
        });
        let disk = match &self.breakdown {
            Some(breakdown) => {
                for image in images.iter_mut().filter(|i| i.shared_bytes == 0) {
                    image.shared_bytes = breakdown.shared.get(&image.id).copied().unwrap_or(0);
                }
                DiskReport::new(filesystem, &breakdown.input)
            }
            None => DiskReport::new(filesystem, &DiskUsageInput::default()),
        };
        Ok(NodeReport {
            node_id: identity.node_id.clone(),
            hostname: identity.hostname.clone(),
            engine_version: identity.engine_version.clone(),
            reported_at: Timestamp::now(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            interval_seconds: settings.interval_seconds,
            disk,
            disk_breakdown_at: self.breakdown.as_ref().map(|b| b.at),
            high_threshold_percent: settings.high_threshold_percent,
            low_threshold_percent: settings.low_threshold_percent,
            images,
            gc_runs: Vec::new(),
            truncated: false,
            data_root,
            pull_headroom_bytes: 0,
            reclaimable_bytes: 0,
            pull_headroom: settings.pull_headroom.clone(),
            last_pass: None,
            unbounded_logs: self
                .breakdown
                .as_ref()
                .map(|b| b.unbounded_logs.clone())
                .unwrap_or_default(),
            usage: Vec::new(),
            volumes: self.breakdown.as_ref().map(|b| b.volumes.clone()),
        })
    }
}

impl Breakdown {
    /// Keeps only the figures: a busy node's `/system/df` lists thousands of containers and
    /// volumes with their names and labels, which the agent has no use for between reports.
    fn new(
        df: &SystemDf,
        log_bytes: Option<u64>,
        unbounded: Vec<layout::UnboundedLog>,
    ) -> Breakdown {
        let containers: HashMap<&str, &swarmkeeper_engine::DfContainer> =
            df.containers.iter().map(|c| (c.id.as_str(), c)).collect();
        let mut unbounded_logs: Vec<UnboundedLog> = unbounded
            .into_iter()
            .map(|log| {
                let container = containers.get(log.container_id.as_str());
                UnboundedLog {
                    name: container
                        .and_then(|c| c.names.first().cloned())
                        .unwrap_or_default(),
                    service: container.and_then(|c| c.labels.get(LABEL_SERVICE_NAME).cloned()),
                    container_id: log.container_id,
                    size_bytes: log.size,
                }
            })
            .collect();
        unbounded_logs.sort_by(|a, b| {
            b.size_bytes
                .cmp(&a.size_bytes)
                .then_with(|| a.container_id.cmp(&b.container_id))
        });
        Breakdown {
            unbounded_logs,
            volumes: reported_volumes(df),
            input: DiskUsageInput {
                layers_bytes: df.layers_size,
                images: df.images.iter().map(|i| (i.size, i.shared_size)).collect(),
                container_rw_bytes: df.containers.iter().map(|c| c.size_rw).collect(),
                volume_bytes: df.volumes.iter().map(|v| v.size).collect(),
                build_cache_bytes: df.build_cache.iter().map(|b| b.size).collect(),
                log_bytes,
            },
            shared: df
                .images
                .iter()
                .map(|i| (i.id.clone(), i.shared_size))
                .collect(),
            at: Timestamp::now(),
        }
    }
}

/// The volumes `listed` now, with what `measured` (the breakdown's) says of each, in the
/// order [`reported_volumes`] gives.
fn merge_volumes(measured: &[ReportedVolume], listed: Vec<DfVolume>) -> Vec<ReportedVolume> {
    let mut volumes: Vec<ReportedVolume> = listed
        .into_iter()
        .map(|v| match measured.iter().find(|m| m.name == v.name) {
            Some(known) => known.clone(),
            None => ReportedVolume {
                name: v.name,
                driver: v.driver,
                mountpoint: v.mountpoint,
                size_bytes: None,
                labels: v.labels,
                containers: Vec::new(),
            },
        })
        .collect();
    sort_volumes(&mut volumes);
    volumes
}

fn sort_volumes(volumes: &mut [ReportedVolume]) {
    volumes.sort_by(|a, b| {
        b.size_bytes
            .cmp(&a.size_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The volumes in `df`, largest first (unmeasured ones last), each with the containers that
/// mount it by name.
fn reported_volumes(df: &SystemDf) -> Vec<ReportedVolume> {
    let mut users: HashMap<&str, Vec<String>> = HashMap::new();
    for container in &df.containers {
        let name = container.names.first().unwrap_or(&container.id);
        for volume in &container.volumes {
            users.entry(volume.as_str()).or_default().push(name.clone());
        }
    }
    let mut volumes: Vec<ReportedVolume> = df
        .volumes
        .iter()
        .map(|v| {
            let mut containers = users.remove(v.name.as_str()).unwrap_or_default();
            containers.sort();
            containers.dedup();
            ReportedVolume {
                name: v.name.clone(),
                driver: v.driver.clone(),
                mountpoint: v.mountpoint.clone(),
                size_bytes: v.size,
                labels: v.labels.clone(),
                containers,
            }
        })
        .collect();
    sort_volumes(&mut volumes);
    volumes
}

#[cfg(test)]
mod tests {
    use swarmkeeper_gc::DeletionReason;

    use super::*;
    use crate::{DeletedImage, Failure, RemovedContainer};

    fn outcome() -> GcOutcome {
        GcOutcome::for_tests()
    }

    #[test]
    fn volumes_name_the_containers_that_mount_them_largest_first() {
        let container =
            |id: &str, names: &[&str], volumes: &[&str]| swarmkeeper_engine::DfContainer {
                id: id.into(),
                image_id: "sha256:aa".into(),
                state: "running".into(),
                created: Timestamp::UNIX_EPOCH,
                labels: Default::default(),
                size_rw: 0,
                names: names.iter().map(|n| n.to_string()).collect(),
                volumes: volumes.iter().map(|v| v.to_string()).collect(),
            };
        let volume = |name: &str, size: Option<u64>| swarmkeeper_engine::DfVolume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/docker/volumes/{name}/_data"),
            labels: Default::default(),
            size,
            ref_count: -1,
        };
        let df = SystemDf {
            layers_size: 0,
            images: vec![],
            containers: vec![
                container("c1", &["db.1.x"], &["db_data", "shared"]),
                container("c2", &[], &["shared"]),
            ],
            volumes: vec![
                volume("shared", Some(10)),
                volume("nfs", None),
                volume("db_data", Some(4096)),
                volume("orphan", Some(10)),
            ],
            build_cache: vec![],
        };
        let volumes = reported_volumes(&df);
        let seen: Vec<(&str, Vec<&str>)> = volumes
            .iter()
            .map(|v| {
                let users = v.containers.iter().map(String::as_str).collect();
                (v.name.as_str(), users)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("db_data", vec!["db.1.x"]),
                ("orphan", vec![]),
                ("shared", vec!["c2", "db.1.x"]),
                ("nfs", vec![]),
            ]
        );
    }

    #[test]
    fn a_volume_list_keeps_what_the_breakdown_measured() {
        let reported = |name: &str, size: Option<u64>| ReportedVolume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/v/{name}"),
            size_bytes: size,
            labels: Default::default(),
            containers: if size.is_some() {
                vec!["web".into()]
            } else {
                vec![]
            },
        };
        let listed = |name: &str| DfVolume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/v/{name}"),
            labels: Default::default(),
            size: None,
            ref_count: -1,
        };
        let measured = [reported("big", Some(900)), reported("gone", Some(500))];
        let merged = merge_volumes(&measured, vec![listed("new"), listed("big")]);
        assert_eq!(merged, [reported("big", Some(900)), reported("new", None)]);
    }

    #[test]
    fn the_last_pass_says_whether_the_headroom_was_missed() {
        let mut o = outcome();
        o.space_trigger = Some(swarmkeeper_gc::SpaceTrigger::PullHeadroom);
        o.pull_headroom_bytes = 800;
        o.shortfall_bytes = 300;
        let pass = last_pass(&o);
        assert!(pass.fell_short() && pass.short_of_headroom);
        assert!(
            !pass.short_of_low_threshold,
            "79% is under the low threshold"
        );
        assert_eq!(pass.space_trigger.as_deref(), Some("pull-headroom"));
        let run = reported_run(&o).unwrap();
        assert_eq!(
            (run.outcome.as_str(), run.pull_headroom_bytes),
            ("shortfall", 800)
        );
    }

    #[test]
    fn a_pass_that_did_nothing_is_not_reported() {
        assert_eq!(reported_run(&outcome()), None);
    }

    #[test]
    fn a_pass_that_deleted_images_is_reported_whole() {
        let mut o = outcome();
        o.deleted.push(DeletedImage {
            id: "sha256:aa".into(),
            name: "app:1".into(),
            repo_tags: vec!["app:1".into()],
            reason: DeletionReason::SpaceReserve,
            bytes: 450,
        });
        o.removed_containers.push(RemovedContainer {
            id: "c1".into(),
            service: Some("web".into()),
        });
        o.bytes_freed = 400;
        let run = reported_run(&o).unwrap();
        assert_eq!(run.trigger, "pull");
        assert_eq!(run.outcome, "ok");
        assert_eq!((run.bytes_freed, run.containers_removed), (400, 1));
        assert_eq!(
            run.deleted,
            [ReportedDeletion {
                id: "sha256:aa".into(),
                repo_tags: vec!["app:1".into()],
                name: "app:1".into(),
                reason: "space-reserve".into(),
                bytes: 450,
            }]
        );
    }

    #[test]
    fn outcomes_are_worded_like_the_run_log() {
        let mut refused = outcome();
        refused.failures.push(Failure {
            id: "sha256:bb".into(),
            error: "conflict".into(),
        });
        assert_eq!(reported_run(&refused).unwrap().outcome, "partial");
        let mut short = refused.clone();
        short.shortfall_bytes = 10;
        assert_eq!(reported_run(&short).unwrap().outcome, "shortfall");
    }

    #[test]
    fn server_urls_are_plain_http() {
        let url: ServerUrl = "http://swarmkeeper_server:8080".parse().unwrap();
        assert_eq!(url.address, "swarmkeeper_server:8080");
        assert_eq!(url.authority, "swarmkeeper_server:8080");
        assert_eq!(url.report_path, "/api/agent/report");
        assert_eq!(url.to_string(), "http://swarmkeeper_server:8080");

        let prefixed: ServerUrl = "http://10.0.0.5/swarmkeeper/".parse().unwrap();
        assert_eq!(prefixed.address, "10.0.0.5:80");
        assert_eq!(prefixed.report_path, "/swarmkeeper/api/agent/report");

        let v6: ServerUrl = "http://[::1]:9000".parse().unwrap();
        assert_eq!(v6.address, "[::1]:9000");

        for (bad, why) in [
            ("https://server", "https://"),
            ("server:8080", "http://"),
            ("http://", "URL"),
            ("http://me:pw@server", "passwords"),
            ("http://server/?a=1", "query"),
        ] {
            let err = bad.parse::<ServerUrl>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn the_secret_is_the_file_without_its_last_newline() {
        let header = |content: &str| ReportSecret::from_file_content(content).map(|s| s.0);
        assert_eq!(header("s3cret\n").unwrap(), "Bearer s3cret");
        assert_eq!(header("s3cret\r\n").unwrap(), "Bearer s3cret");
        assert_eq!(header("s3cret").unwrap(), "Bearer s3cret");
        assert!(
            header("s3cret\n\n").is_err(),
            "a second newline is part of it"
        );
        assert_eq!(header("\n").unwrap_err(), "the file is empty");
        assert!(header("").is_err());
        assert!(header("sécret").is_err());
        assert!(format!("{:?}", ReportSecret::from_file_content("s3cret").unwrap()).contains(".."));
    }
}
