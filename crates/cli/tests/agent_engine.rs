//! `swarmkeeper agent` against real engines with small tmpfs disks.

mod support;

use std::time::{Duration, Instant};

use support::server::Server;
use support::{json, metric, tempdir, Agent, Lab};

/// Polls until usage is at or below `target`; returns how long it took.
fn wait_for_usage(lab: &Lab, target: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let usage = lab.usage_percent();
        if usage <= target {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "usage still {usage}% > {target}% after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_agent_empties_a_full_disk_at_start_and_answers_each_pull() {
    let lab = Lab::up("agfull", "256m");
    lab.build("app/in-use:1", 17, &[]);
    lab.docker(&["run", "-d", "app/in-use:1", "/bin/busybox", "sleep", "600"]);
    for n in 1..=5 {
        lab.build(&format!("app/old:{n}"), 17, &[]);
    }
    let in_use = lab.docker(&["image", "inspect", "-f", "{{.Id}}", "app/in-use:1"]);
    let usage = lab.usage_percent();
    let (high, low) = (usage - 5, usage - 25);
    let state = tempdir("agfull-state");
    let agent = Agent::start(
        &lab.host,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--interval",
            "1h",
            "--min-age",
            "0s",
            "--high-threshold",
            &high.to_string(),
            "--low-threshold",
            &low.to_string(),
        ],
    );
    let took = wait_for_usage(&lab, low, Duration::from_secs(10));
    eprintln!("startup: {usage}% -> <= {low}% in {took:?}");
    let metrics = agent.get("/metrics").unwrap();
    let deleted = metric(
        &metrics,
        "swarmkeeper_gc_images_deleted_total{reason=\"space\"}",
    );
    assert!(deleted.unwrap_or(0.0) >= 3.0, "{metrics}");
    assert!(metric(&metrics, "swarmkeeper_gc_freed_bytes_total").unwrap() > 50e6);
    assert_eq!(metric(&metrics, "swarmkeeper_engine_up"), Some(1.0));
    let health = lab.swarmkeeper(&[
        "healthcheck",
        "--listen",
        &format!("0.0.0.0:{}", agent.port),
    ]);
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    // The interval is an hour: only the engine's events can make the agent act now.
    // Four more images take the disk from about 15% back over the high threshold (36%) even
    // once every build's temporary files are gone.
    for n in 1..=4 {
        lab.build(&format!("app/new:{n}"), 17, &[]);
    }
    // The agent may already be at work while the builds run: what matters is that it acted on
    // the events (trigger "pull") and the disk is back.
    let took = wait_for_usage(&lab, low, Duration::from_secs(5));
    eprintln!("after a burst of new images: back to <= {low}% {took:?} after the last build");
    let metrics = agent.get("/metrics").unwrap();
    let pull_runs = metric(&metrics, "swarmkeeper_gc_runs_total{trigger=\"pull\"}");
    assert!(pull_runs.unwrap_or(0.0) >= 1.0, "{metrics}");
    assert!(
        lab.has_image(&in_use),
        "the image of a running container was deleted"
    );
    assert_eq!(agent.stop(), Some(0));
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn last_used_survives_an_agent_restart() {
    let lab = Lab::up("agmem", "256m");
    let used = lab.build("app/used:1", 1, &[]);
    let unused = lab.build("app/unused:1", 1, &[]);
    let state = tempdir("agmem-state");
    let state = state.to_str().unwrap();
    let quiet = ["--state-dir", state, "--interval", "1h", "--min-age", "1h"];
    let agent = Agent::start(&lab.host, &quiet);
    std::thread::sleep(Duration::from_millis(500));
    let before_run = jiff::Timestamp::now();
    // The container is gone before anything but the agent's event follower could see it.
    lab.docker(&["run", "--rm", "app/used:1", "/bin/busybox", "true"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.stop(), Some(0));

    let snapshot = lab.swarmkeeper(&["gc", "snapshot", "--state-dir", state]);
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    let snapshot = json(&snapshot);
    let image = |id: &str| {
        snapshot["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    let last_used: jiff::Timestamp = image(&used)["last_used"].as_str().unwrap().parse().unwrap();
    assert!(last_used >= before_run, "{last_used} < {before_run}");
    assert!(image(&unused)["last_used"].is_null());
    let first_seen: jiff::Timestamp = image(&used)["first_seen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_seen < before_run);
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn the_agent_rides_out_an_engine_restart() {
    let lab = Lab::up("agrst", "128m");
    let state = tempdir("agrst-state");
    let agent = Agent::start(
        &lab.host,
        &["--state-dir", state.to_str().unwrap(), "--interval", "1s"],
    );
    let engine_up = |agent: &Agent| {
        agent
            .get("/metrics")
            .and_then(|m| metric(&m, "swarmkeeper_engine_up"))
    };
    let wait = |want: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while engine_up(&agent) != Some(want) {
            assert!(Instant::now() < deadline, "engine_up never became {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(1.0);
    lab.down();
    wait(0.0);
    assert!(agent
        .get("/healthz")
        .unwrap()
        .contains("\"engine\":\"unreachable\""));
    lab.restart("128m");
    wait(1.0);
    assert_eq!(agent.stop(), Some(0));
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn a_pass_that_fell_short_is_retried_soon_not_an_interval_later() {
    let lab = Lab::up("agshort", "256m");
    let young = lab.build("app/young:1", 30, &[]);
    let usage = lab.usage_percent();
    let state = tempdir("agshort-state");
    // The only candidate is too young at first; the interval is an hour, so only the retry of
    // a pass that fell short can collect it once it is three seconds old.
    let agent = Agent::start(
        &lab.host,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--interval",
            "1h",
            "--min-age",
            "3s",
            "--high-threshold",
            &(usage - 2).to_string(),
            "--low-threshold",
            &(usage - 5).to_string(),
        ],
    );
    let took = wait_for_usage(&lab, usage - 5, Duration::from_secs(15));
    eprintln!("collected {took:?} after start with min-age 3s");
    assert!(!lab.has_image(&young));
    let metrics = agent.get("/metrics").unwrap();
    assert!(
        metric(
            &metrics,
            "swarmkeeper_gc_failures_total{reason=\"shortfall\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    assert_eq!(agent.stop(), Some(0));
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn a_task_on_an_engine_with_a_cgroup_parent_has_usage_series() {
    // lab/small-engine.sh starts dockerd with --cgroup-parent /swarmkeeper-lab-NAME, as every
    // lab node is (issue #15: no swarmkeeper_container_* series there at all). The container
    // carries the labels Swarm puts on a task container, which are all the agent reads.
    let lab = Lab::up("agcgp", "128m");
    lab.build("app/task:1", 1, &[]);
    let state = tempdir("agcgp-state");
    let state = state.to_str().unwrap();
    let agent = Agent::start(
        &lab.host,
        &[
            "--state-dir",
            state,
            "--interval",
            "1h",
            "--stats-interval",
            "1s",
        ],
    );
    let task = "q7cgparenttask01";
    lab.docker(&[
        "run",
        "-d",
        "-m",
        "32m",
        "--label",
        &format!("com.docker.swarm.task.id={task}"),
        "--label",
        "com.docker.swarm.service.name=web",
        "--label",
        &format!("com.docker.swarm.task.name=web.1.{task}"),
        "app/task:1",
        "/bin/busybox",
        "sleep",
        "600",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let series = |metrics: &str, name: &str| -> Option<f64> {
        let line = metrics.lines().find(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!("task=\"{task}\""))
        })?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let limit = loop {
        let metrics = agent.get("/metrics").unwrap_or_default();
        if let Some(limit) = series(&metrics, "swarmkeeper_container_memory_limit_bytes") {
            assert!(series(&metrics, "swarmkeeper_container_memory_bytes").unwrap() > 0.0);
            break limit;
        }
        assert!(
            Instant::now() < deadline,
            "no series for the task on a --cgroup-parent engine:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(limit, f64::from(32 << 20));
    drop(agent);
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn a_new_volume_is_in_the_next_report_not_the_next_breakdown() {
    // The disk breakdown (`/system/df`) is refreshed every 10 minutes; a volume created or
    // removed between two is listed again at once (issue #15).
    let host = std::env::var("DOCKER_HOST").unwrap_or("unix:///var/run/docker.sock".into());
    let dir = tempdir("agvol");
    let volume = format!("skagvol-{}", std::process::id());
    let secret = dir.join("report-secret");
    std::fs::write(&secret, "agent-volume-report-secret\n").unwrap();
    let server = Server::start_with(
        &dir.join("server"),
        &[
            ("DOCKER_HOST", host.as_str()),
            ("SWARMKEEPER_REPORT_SECRET_FILE", secret.to_str().unwrap()),
        ],
    );
    let session = server.login();
    let token = server.token(&session, "agvol");
    let agent_state = dir.join("agent");
    let agent = Agent::start(
        &host,
        &[
            "--state-dir",
            agent_state.to_str().unwrap(),
            "--server",
            &format!("http://127.0.0.1:{}", server.port()),
            "--report-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let listed = || server.get("/api/volumes", &token).1.contains(&volume);
    // The first report (with its breakdown) is in.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .get("/api/nodes", &token)
        .1
        .contains("\"agent_version\":\"")
    {
        assert!(Instant::now() < deadline, "no report from the agent");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(!listed());
    let created = Instant::now();
    support::docker(&host, &["volume", "create", &volume]);
    let found = loop {
        if listed() {
            break created.elapsed();
        }
        assert!(
            created.elapsed() < Duration::from_secs(10),
            "volume {volume} not reported within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "volume created -> on the server: {:.2} s",
        found.as_secs_f64()
    );
    support::docker(&host, &["volume", "rm", &volume]);
    let removed = Instant::now();
    while listed() {
        assert!(
            removed.elapsed() < Duration::from_secs(10),
            "removed volume {volume} still reported after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(agent);
    server.stop();
    std::fs::remove_dir_all(&dir).ok();
}
