//! Disk pressure on a real swarm (`lab/lab.sh`): the stack from `deploy/swarmkeeper.yml` (the
//! agent on every node, the server on the manager) at its default threshold (95 %). A worker
//! whose disk is filled past it with bytes GC cannot free is paused by the server and labelled
//! with why; a new service's tasks all land on the other worker; once the disk is freed, the
//! worker is set active again and the label removed.
//!
//! Only the timings are shortened: reports every 5 s instead of 30 s and a release after 20 s
//! instead of 5 minutes. The dashboard serves HTTPS (`SWARMKEEPER_TLS_SELF_SIGNED=true`, as
//! the stack file offers): the pressure is seen only if the agents' reports still reach the
//! server, over its plain report listener. Runs as root (CI does); skips otherwise. About a minute and a half.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{fs_space, is_root, usage_percent, wait_until, SwarmLab};

const FULL: &str = "worker1";
const OTHER: &str = "worker2";
const LABEL: &str = "swarmkeeper.disk-pressure";
const PROBE: &str = "probe";

/// `(availability, the disk pressure label)` of a node, as the manager has it.
fn node_state(lab: &SwarmLab, node: &str) -> (String, Option<String>) {
    let text = lab.docker(
        "manager",
        &[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}} {{json .Spec.Labels}}",
            lab.hostname(node),
        ],
    );
    let (availability, labels) = text.split_once(' ').expect("availability and labels");
    let labels: serde_json::Value = serde_json::from_str(labels).unwrap();
    (
        availability.to_string(),
        labels[LABEL].as_str().map(str::to_string),
    )
}

/// Writes `bytes` into the node's data root filesystem, beside the
/// engine's folders: space no GC can give back.
fn fill(path: &std::path::Path, bytes: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    // Written, not allocated: tmpfs keeps every written page, zeros too.
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
}

#[test]
fn a_full_worker_is_paused_skipped_by_new_tasks_and_released() {
    if !is_root() {
        eprintln!("skipped: the Swarm lab (lab/lab.sh) needs root");
        return;
    }
    let start = Instant::now();
    let lab = SwarmLab::up_small_worker("gcp");
    let agent_image = lab.push_agent_image();
    let probe = lab.push_image("probe:v1", 1);
    lab.deploy_agent(
        &agent_image,
        &[
            ("SWARMKEEPER_INTERVAL", "5s"),
            ("SWARMKEEPER_DISK_PRESSURE_RELEASE", "20s"),
            ("SWARMKEEPER_TLS_SELF_SIGNED", "true"),
        ],
    );
    lab.wait_agents(Duration::from_secs(90));
    assert_eq!(node_state(&lab, FULL), ("active".to_string(), None));

    // Past the hard threshold: 97 % used, nothing for GC to delete.
    let data = lab.data(FULL);
    let filler = data.join("swarmkeeper-test-filler");
    let (capacity, available) = fs_space(&data);
    let target_available = capacity * 3 / 100;
    fill(&filler, available.saturating_sub(target_available));
    let (capacity, available) = fs_space(&data);
    let usage = usage_percent(capacity, available);
    assert!(usage >= 95, "{FULL} filled to {usage}% only");
    let filled = Instant::now();
    wait_until(
        &format!("the server pauses {FULL} at {usage}%"),
        Duration::from_secs(60),
        || node_state(&lab, FULL).0 == "pause",
    );
    let paused_in = filled.elapsed();
    let (_, why) = node_state(&lab, FULL);
    let why = why.expect("a node swarmkeeper paused carries the label");
    assert!(
        why.contains(">= 95%") && why.contains("GC could not free enough"),
        "{why}"
    );
    eprintln!("{FULL} at {usage}%: paused {paused_in:.1?} after the disk filled ({why})");

    // Swarm sends a new service's tasks to the other worker only.
    let constraint = "node.role==worker";
    lab.docker(
        "manager",
        &[
            "service",
            "create",
            "--detach=false",
            "-q",
            "--name",
            PROBE,
            "--replicas",
            "3",
            "--constraint",
            constraint,
            &probe,
            "/bin/busybox",
            "sleep",
            "3600",
        ],
    );
    let nodes = lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}}",
            PROBE,
        ],
    );
    let nodes: Vec<&str> = nodes.lines().collect();
    assert_eq!(
        nodes,
        [lab.hostname(OTHER); 3],
        "the tasks of a new service went to {nodes:?}"
    );

    // The server's log says what it did (on the container's stderr).
    let out = lab.docker_output("manager", &["service", "logs", "swarmkeeper_server"]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logs.contains(&format!("paused {}", lab.hostname(FULL))),
        "{logs}"
    );

    // Freed: active again after usage stayed below the high threshold for the release time.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    wait_until(
        &format!("the server sets {FULL} active again"),
        Duration::from_secs(90),
        || node_state(&lab, FULL) == ("active".to_string(), None),
    );
    let released_in = freed.elapsed();
    eprintln!("{FULL} freed: active again {released_in:.1?} later (release time 20s)");
    assert!(
        released_in >= Duration::from_secs(15),
        "released after {released_in:?}: before usage had stayed low for the release time"
    );
    lab.docker("manager", &["service", "rm", PROBE]);
    eprintln!("disk pressure on the lab: {:.0?} in all", start.elapsed());
}
