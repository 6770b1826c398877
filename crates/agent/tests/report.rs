//! Reporting to a server: a small axum server on 127.0.0.1 stands in for `swarmkeeper
//! server` and records what it receives; the node observed is the real engine at `DOCKER_HOST`
//! (observing only reads it).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use swarmkeeper_agent::{
    post_report, DeletedImage, GcOutcome, Node, ReportConfig, ReportError, ReportSecret, Reporter,
    StatsPass, Trigger, Usage,
};
use swarmkeeper_engine::Engine;
use swarmkeeper_gc::{DeletionReason, Policy};
use swarmkeeper_report::{NodeReport, REPORT_PATH};
use swarmkeeper_store::Store;
use tokio::sync::mpsc;

const SECRET: &str = "correct horse battery staple";

/// One request as the server saw it.
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn report(&self) -> NodeReport {
        serde_json::from_slice(&self.body).expect("the body is a NodeReport")
    }
}

#[derive(Clone)]
struct Recorder {
    received: mpsc::UnboundedSender<Received>,
    /// Answers to give, in order; 204 once they run out.
    answers: Arc<Mutex<VecDeque<(StatusCode, &'static str)>>>,
    /// How long to wait before answering.
    delay: Duration,
}

async fn receive(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    tokio::time::sleep(recorder.delay).await;
    let _ = recorder.received.send(Received { headers, body });
    recorder
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((StatusCode::NO_CONTENT, ""))
}

struct Server {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Server {
    async fn start(answers: &[(StatusCode, &'static str)], delay: Duration) -> Server {
        Server::start_at("127.0.0.1:0".parse().unwrap(), answers, delay).await
    }

    async fn start_at(
        addr: SocketAddr,
        answers: &[(StatusCode, &'static str)],
        delay: Duration,
    ) -> Server {
        let (tx, received) = mpsc::unbounded_channel();
        let recorder = Recorder {
            received: tx,
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            delay,
        };
        let app = Router::new()
            .route(REPORT_PATH, post(receive))
            .with_state(recorder);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, received }
    }

    fn config(&self) -> ReportConfig {
        config(&format!("http://{}", self.addr))
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(30), self.received.recv())
            .await
            .expect("a report within 30 s")
            .expect("the server is running")
    }

    fn nothing_more(&mut self) -> bool {
        self.received.try_recv().is_err()
    }
}

fn config(url: &str) -> ReportConfig {
    ReportConfig {
        server: url.parse().unwrap(),
        secret: ReportSecret::from_file_content(&format!("{SECRET}\n")).unwrap(),
    }
}

fn outcome(trigger: Trigger, deleted: &[&str]) -> GcOutcome {
    GcOutcome {
        trigger,
        started_at: jiff::Timestamp::now(),
        usage_percent_before: 91,
        usage_percent_after: 79,
        high_threshold_percent: 85,
        low_threshold_percent: 80,
        rounds: 1,
        removed_containers: vec![],
        deleted: deleted
            .iter()
            .map(|id| DeletedImage {
                id: id.to_string(),
                name: format!("gone/{id}:1"),
                repo_tags: vec![format!("gone/{id}:1")],
                reason: DeletionReason::Space,
                bytes: 1_000,
            })
            .collect(),
        failures: vec![],
        bytes_freed: 900,
        shortfall_bytes: 0,
        space_trigger: None,
        pull_headroom_bytes: 0,
        available_bytes_after: 1 << 30,
        build_cache_freed_bytes: 0,
    }
}

fn a_report() -> NodeReport {
    let body = serde_json::json!({
        "node_id": "n1", "hostname": "h1", "engine_version": "20.10.24",
        "reported_at": "2026-11-26T12:00:00Z", "agent_version": "0.1.0", "interval_seconds": 30,
        "disk": {"filesystem": {"path": "/var/lib/docker", "capacity_bytes": 100, "available_bytes": 40},
                 "usage_percent": 60, "used_bytes": 60, "image_count": 0, "images_unique_bytes": 0,
                 "images_shared_bytes": 0, "container_count": 0, "containers_bytes": 0,
                 "logs_bytes": null, "volume_count": 0, "volumes_bytes": 0, "build_cache_bytes": 0,
                 "other_bytes": 60},
        "high_threshold_percent": 85, "low_threshold_percent": 80, "images": [], "gc_runs": []
    });
    serde_json::from_value(body).unwrap()
}

/// The real engine this machine runs, observed as the agent would.
async fn node() -> (Node, PathBuf, swarmkeeper_engine::EngineInfo) {
    let engine = Engine::from_env().unwrap();
    let info = engine
        .info()
        .await
        .expect("these tests need the Docker Engine (DOCKER_HOST or /var/run/docker.sock)");
    let node = Node::new(
        engine,
        Store::in_memory().unwrap(),
        PathBuf::from("/"),
        info.root_dir.clone(),
    );
    (node, info.root_dir.clone(), info)
}

#[tokio::test]
async fn a_report_reaches_the_server_with_the_secret() {
    let mut server = Server::start(&[], Duration::ZERO).await;
    let body = serde_json::to_vec(&a_report()).unwrap();
    post_report(&server.config(), body).await.unwrap();
    let received = server.next().await;
    assert_eq!(
        received.headers[header::AUTHORIZATION],
        format!("Bearer {SECRET}")
    );
    assert_eq!(received.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(received.report(), a_report());
}

#[tokio::test]
async fn the_servers_refusals_are_told_apart() {
    let server = Server::start(
        &[
            (StatusCode::UNAUTHORIZED, ""),
            (StatusCode::PAYLOAD_TOO_LARGE, ""),
            (StatusCode::SERVICE_UNAVAILABLE, "database is locked"),
        ],
        Duration::ZERO,
    )
    .await;
    let body = || serde_json::to_vec(&a_report()).unwrap();
    let to_server = server.config();
    let err = post_report(&to_server, body()).await.unwrap_err();
    assert!(matches!(err, ReportError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("--report-secret-file"), "{err}");
    let err = post_report(&to_server, body()).await.unwrap_err();
    assert!(matches!(err, ReportError::TooLarge { .. }), "{err}");
    let err = post_report(&to_server, body()).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert!(err.to_string().contains("database is locked"), "{err}");

    // Nothing listens on the port of a listener just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = post_report(&config(&url), body()).await.unwrap_err();
    assert!(matches!(err, ReportError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_given_ten_seconds() {
    let server = Server::start(&[], Duration::from_secs(60)).await;
    let started = Instant::now();
    let err = post_report(&server.config(), serde_json::to_vec(&a_report()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ReportError::Timeout { .. }), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "{took:?}"
    );
}

#[tokio::test]
async fn each_pass_is_reported_and_runs_wait_until_the_server_accepts_them() {
    let mut server = Server::start(
        &[(StatusCode::SERVICE_UNAVAILABLE, "starting up")],
        Duration::ZERO,
    )
    .await;
    let (mut node, root_dir, info) = node().await;
    let policy = Policy::default();
    let usage = Arc::new(Usage::default());
    let reporter = Reporter::start(
        server.config(),
        &node,
        root_dir,
        &policy,
        Duration::from_secs(30),
        Some(usage.clone()),
    );
    let sampled = |at: &str| StatsPass {
        taken_at: Some(at.parse().unwrap()),
        node: None,
        tasks: Vec::new(),
    };
    usage.replace(sampled("2026-11-26T12:00:00Z"));

    let pass = outcome(Trigger::Startup, &["sha256:aa", "sha256:bb"]);
    reporter.after_pass(&mut node, &policy, &pass).await;
    let first = server.next().await;
    assert_eq!(
        first.headers[header::AUTHORIZATION],
        format!("Bearer {SECRET}")
    );
    let report = first.report();
    assert_eq!(report.node_id, info.node_id.clone().unwrap_or_default());
    assert_eq!(report.hostname, info.hostname);
    assert_eq!(report.engine_version, info.server_version);
    assert_eq!(report.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(report.interval_seconds, 30);
    assert_eq!(
        (report.high_threshold_percent, report.low_threshold_percent),
        (
            policy.high_threshold_percent(),
            policy.low_threshold_percent()
        )
    );
    assert_eq!(report.pull_headroom, "auto");
    let data_root = report
        .data_root
        .as_ref()
        .expect("the data root's filesystem is named");
    assert!(data_root.size_bytes >= report.disk.filesystem.capacity_bytes);
    assert!(report.last_pass.is_some());
    assert!(report.disk.filesystem.capacity_bytes > 0);
    assert!(
        report.disk_breakdown_at.is_some(),
        "the first report waits for /system/df"
    );
    assert!(report.images.is_empty() || report.disk.image_count > 0);
    assert!(report.images.iter().all(|i| i.id.starts_with("sha256:")));
    assert!(
        report
            .images
            .windows(2)
            .all(|w| w[0].size_bytes >= w[1].size_bytes),
        "largest first"
    );
    assert!(
        report
            .images
            .iter()
            .all(|i| i.keep_reason.is_some() || !i.in_use),
        "an image in use is always kept"
    );
    assert_eq!(report.gc_runs.len(), 1);
    assert_eq!(report.gc_runs[0].started_at, pass.started_at);
    assert_eq!(report.gc_runs[0].deleted.len(), 2);
    assert_eq!(report.gc_runs[0].trigger, "startup");
    assert_eq!(report.usage.len(), 1);

    // The server refused that one: the run and the sample go again with the next pass's
    // report, with the sample taken since.
    usage.replace(sampled("2026-11-26T12:00:10Z"));
    let quiet = outcome(Trigger::Interval, &[]);
    reporter.after_pass(&mut node, &policy, &quiet).await;
    let second = server.next().await.report();
    assert_eq!(second.gc_runs, report.gc_runs);
    assert!(second.reported_at >= report.reported_at);
    let taken: Vec<String> = second
        .usage
        .iter()
        .map(|s| s.taken_at.to_string())
        .collect();
    assert_eq!(taken, ["2026-11-26T12:00:00Z", "2026-11-26T12:00:10Z"]);

    // Accepted: it is not sent a third time, and a quiet pass adds no run.
    reporter.after_pass(&mut node, &policy, &quiet).await;
    let third = server.next().await.report();
    assert!(third.gc_runs.is_empty(), "{:?}", third.gc_runs);
    assert!(third.usage.is_empty(), "{:?}", third.usage);
    assert!(server.nothing_more());
}

/// A fresh install: the agents start with their server, which is not there yet. The first
/// report is sent again after a second or two, not a whole interval later (and the agent says
/// nothing alarming meanwhile: the failures are logged at debug level within a minute).
#[tokio::test]
async fn a_server_that_comes_up_after_the_agent_gets_the_first_report_soon() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (mut node, root_dir, _) = node().await;
    let policy = Policy::default();
    let reporter = Reporter::start(
        config(&format!("http://{addr}")),
        &node,
        root_dir,
        &policy,
        Duration::from_secs(3600),
        None,
    );
    reporter
        .after_pass(
            &mut node,
            &policy,
            &outcome(Trigger::Startup, &["sha256:aa"]),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut server = Server::start_at(addr, &[], Duration::ZERO).await;
    let report = server.next().await.report();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the first report came {:?} after the server",
        started.elapsed()
    );
    assert_eq!(report.gc_runs.len(), 1, "the startup pass's run");
}

#[tokio::test]
async fn a_server_that_hangs_does_not_hold_up_the_passes() {
    let mut server = Server::start(&[], Duration::from_secs(60)).await;
    let (mut node, root_dir, _) = node().await;
    let policy = Policy::default();
    let reporter = Reporter::start(
        server.config(),
        &node,
        root_dir,
        &policy,
        Duration::from_secs(30),
        None,
    );
    for n in 0..5 {
        let started = Instant::now();
        let id = format!("sha256:{n}");
        reporter
            .after_pass(&mut node, &policy, &outcome(Trigger::Pull, &[&id]))
            .await;
        // Observing the real engine is all a pass waits for.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pass {n} waited {:?}",
            started.elapsed()
        );
    }
    assert!(server.nothing_more());
}

/// A volume on the real engine, removed when dropped.
struct TestVolume(String);

impl Drop for TestVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI (docker.io)");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_nodes_volumes_are_reported_with_their_size_and_labels() {
    let name = format!("skvol-{}", std::process::id());
    docker(&[
        "volume",
        "create",
        "--label",
        "com.docker.stack.namespace=skvoltest",
        &name,
    ]);
    let volume = TestVolume(name.clone());
    let mountpoint = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &name]);
    // 64 KiB of data, written where the engine keeps the volume (the tests run as root).
    std::fs::write(PathBuf::from(&mountpoint).join("data"), vec![7u8; 65_536]).unwrap();

    let mut server = Server::start(&[], Duration::ZERO).await;
    let (mut node, root_dir, _) = node().await;
    let policy = Policy::default();
    let reporter = Reporter::start(
        server.config(),
        &node,
        root_dir,
        &policy,
        Duration::from_secs(3600),
        None,
    );
    reporter
        .after_pass(&mut node, &policy, &outcome(Trigger::Startup, &[]))
        .await;
    let report = server.next().await.report();
    let volumes = report
        .volumes
        .expect("the first report carries the volumes");
    let reported = volumes
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} not in {volumes:?}"));
    assert_eq!(reported.driver, "local");
    assert_eq!(reported.mountpoint, mountpoint);
    assert!(
        reported.size_bytes.is_some_and(|s| s >= 65_536),
        "{reported:?}"
    );
    assert_eq!(
        reported.labels["com.docker.stack.namespace"], "skvoltest",
        "{reported:?}"
    );
    assert!(reported.containers.is_empty(), "no container uses it");
    drop(volume);
}
