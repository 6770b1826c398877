//! The agent as a Swarm global service (`deploy/swarmkeeper.yml`) on a real swarm of three
//! daemons (`lab/lab.sh`), each node with a disk of its own size:
//!
//! - every agent reports its own node's disk;
//! - every agent collects an unused image on its node, and no image in use is ever deleted;
//! - a worker daemon stopped and started again: its agent comes back and its memory (first
//!   seen, last used, in SQLite on the named volume) survived;
//! - the agent's container killed: Swarm starts another one.
//!
//! One test drives the whole sequence on one lab. Runs as root (CI does); skips otherwise.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{fs_space, is_root, metric, usage_percent, wait_until, EventFollower, SwarmLab};

const STATE: &str = "/var/lib/docker/volumes/swarmkeeper_state/_data";

/// `swarmkeeper gc snapshot` on a node (inside its namespaces, where /var/lib/docker is its data
/// root) with the agent's state: `(first_seen, last_used)` of an image.
fn remembered(lab: &SwarmLab, node: &str, image_id: &str) -> (String, serde_json::Value) {
    let bin = env!("CARGO_BIN_EXE_swarmkeeper");
    let mut last = String::new();
    for _ in 0..20 {
        let out = lab.exec(node, &[bin, "gc", "snapshot", "--state-dir", STATE]);
        if out.status.success() {
            let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let image = snapshot["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == image_id)
                .unwrap_or_else(|| panic!("{image_id} is not in the snapshot of {node}"))
                .clone();
            return (
                image["first_seen"].as_str().unwrap().to_string(),
                image["last_used"].clone(),
            );
        }
        // The agent may hold the SQLite file for a moment.
        last = String::from_utf8_lossy(&out.stderr).to_string();
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("gc snapshot on {node} failed: {last}");
}

/// The id of the running agent container on a node, if any.
fn agent_container(lab: &SwarmLab, node: &str) -> Option<String> {
    let ids = lab.docker(
        node,
        &[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=swarmkeeper_agent",
        ],
    );
    ids.lines().next().map(str::to_string)
}

#[test]
fn the_agent_as_a_global_service_on_a_three_node_swarm() {
    if !is_root() {
        eprintln!("skipped: the Swarm lab (lab/lab.sh) needs root");
        return;
    }
    let start = Instant::now();
    // Three disk sizes, so that each agent's figures can only come from its own node.
    let lab = SwarmLab::up(
        "cl",
        &[
            "--workers",
            "2",
            "--disk",
            "manager=448m",
            "--worker-disk",
            "256m",
            "--disk",
            "worker2=320m",
        ],
    );
    let nodes = lab.nodes();
    let agent_image = lab.push_agent_image();
    let web = lab.push_image("web:1", 1);
    let junk = lab.push_image("junk:1", 1);
    let marker = lab.push_image("marker:1", 1);
    let tag = |r: &str| format!("{}:1", r.rsplit_once('@').unwrap().0);

    // An image in use on every node: a global service.
    lab.docker(
        "manager",
        &[
            "service",
            "create",
            "--detach=false",
            "-q",
            "--name",
            "web",
            "--mode",
            "global",
            "--stop-grace-period",
            "2s",
            &tag(&web),
            "/bin/busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; /bin/busybox sleep 3600 & wait",
        ],
    );
    // Every image deletion on every node, from before the agents start.
    let deletions: Vec<(String, EventFollower)> = nodes
        .iter()
        .map(|n| {
            (
                n.clone(),
                EventFollower::start(lab.host(n), &["type=image", "event=delete"]),
            )
        })
        .collect();

    // As eager as it gets: collect every unused image 5 s after it arrived, look every 2 s.
    lab.deploy_agent(
        &agent_image,
        &[
            ("SWARMKEEPER_HIGH_THRESHOLD", "0"),
            ("SWARMKEEPER_LOW_THRESHOLD", "0"),
            ("SWARMKEEPER_MIN_AGE", "5s"),
            ("SWARMKEEPER_INTERVAL", "2s"),
            ("SWARMKEEPER_PIN", "*/marker:*"),
        ],
    );
    lab.wait_agents(Duration::from_secs(60));
    eprintln!("agents up on {nodes:?} after {:.0?}", start.elapsed());

    // --- Each agent reports its own node's disk. -----------------------------------------
    for node in &nodes {
        // /metrics answers as soon as the agent listens; its disk figures come with its first
        // pass (0 until then), which a loaded machine may delay past the first answer.
        let mut metrics = String::new();
        wait_until(
            &format!("the agent on {node} measures its disk"),
            Duration::from_secs(30),
            || {
                metrics = lab.metrics(node).unwrap_or_default();
                metric(&metrics, "swarmkeeper_disk_capacity_bytes").is_some_and(|c| c > 0.0)
            },
        );
        let (capacity, available) = fs_space(&lab.data(node));
        let reported = metric(&metrics, "swarmkeeper_disk_capacity_bytes").unwrap();
        assert_eq!(
            reported as u64, capacity,
            "the agent on {node} reports a capacity of {reported}, its data root has {capacity}"
        );
        let usage = metric(&metrics, "swarmkeeper_disk_usage_percent").unwrap() as i64;
        let measured = usage_percent(capacity, available) as i64;
        assert!(
            (usage - measured).abs() <= 3,
            "{node}: agent says {usage}%, the data root is at {measured}%"
        );
        eprintln!("{node}: capacity {capacity} bytes, {usage}% used, as its agent reports");
    }

    // --- Each agent collects an unused image on its node. ----------------------------------
    let junk_id = {
        for node in &nodes {
            lab.docker(node, &["pull", "-q", &tag(&junk)]);
        }
        lab.docker(
            nodes.last().unwrap(),
            &["image", "inspect", "-f", "{{.Id}}", &junk],
        )
    };
    let collected = Instant::now();
    for node in &nodes {
        wait_until(
            &format!("the agent on {node} collects the unused image"),
            Duration::from_secs(30),
            || !lab.has_image(node, &junk_id),
        );
    }
    eprintln!(
        "the unused image was collected on every node within {:.1?}",
        collected.elapsed()
    );

    // --- A worker daemon stopped and started: the agent's memory survives. -----------------
    let node = "worker2";
    lab.docker(node, &["pull", "-q", &tag(&marker)]);
    let marker_id = lab.docker(node, &["image", "inspect", "-f", "{{.Id}}", &marker]);
    // The agent maps a container event's image reference to an image id with what its last
    // pass saw: let a pass (every 2 s) see the new image before the container runs.
    std::thread::sleep(Duration::from_secs(3));
    lab.docker(
        node,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &tag(&marker),
            "/bin/busybox",
            "true",
        ],
    );
    let mut before = (String::new(), serde_json::Value::Null);
    wait_until(
        "the agent records that the marker image was used",
        Duration::from_secs(15),
        || {
            before = remembered(&lab, node, &marker_id);
            !before.1.is_null()
        },
    );
    let old_agent = agent_container(&lab, node).expect("an agent runs on worker2");
    let restart = Instant::now();
    lab.lab("stop-node", &[node]);
    assert!(lab.metrics(node).is_none(), "the agent still answers");
    lab.lab("start-node", &[node]);
    // Normally 6-7 s after start-node (Swarm's restart delay of 5 s, then the agent's start);
    // a task Swarm keeps rejecting never comes back, and its reason is what to read.
    let came_back = Instant::now();
    while lab.metrics(node).is_none() {
        assert!(
            came_back.elapsed() < Duration::from_secs(90),
            "the agent on worker2 does not answer again after 90s: {}",
            lab.docker(
                "manager",
                &["service", "ps", "--no-trunc", "swarmkeeper_agent"]
            )
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "worker2 stopped and started; its agent answered again after {:.1?}",
        restart.elapsed()
    );
    let new_agent = agent_container(&lab, node).expect("an agent runs on worker2");
    assert_ne!(
        old_agent, new_agent,
        "the agent's container should be a new one"
    );
    let after = remembered(&lab, node, &marker_id);
    assert_eq!(
        before, after,
        "first seen / last used of the marker image on worker2 before and after the restart"
    );
    let metrics = lab.metrics(node).unwrap();
    assert_eq!(metric(&metrics, "swarmkeeper_engine_up"), Some(1.0));
    assert!(
        lab.data(node)
            .join("volumes/swarmkeeper_state/_data/swarmkeeper.db")
            .exists(),
        "the state file is not on the named volume"
    );
    eprintln!(
        "worker2's agent remembered the marker image: first seen {}, last used {}",
        after.0, after.1
    );

    // --- The agent's container killed: Swarm starts another. -------------------------------
    let node = "worker1";
    let killed = agent_container(&lab, node).expect("an agent runs on worker1");
    let kill = Instant::now();
    lab.docker(node, &["kill", &killed]);
    wait_until(
        "Swarm restarts the killed agent",
        Duration::from_secs(60),
        || agent_container(&lab, node).is_some_and(|c| c != killed) && lab.metrics(node).is_some(),
    );
    eprintln!(
        "the killed agent on worker1 was replaced and answered after {:.1?}",
        kill.elapsed()
    );
    // Let the new agent run a few passes.
    std::thread::sleep(Duration::from_secs(5));

    // --- No image in use was ever deleted. ------------------------------------------------
    let mut in_use: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &nodes {
        let ids = lab.docker(node, &["ps", "-aq"]);
        for c in ids.lines() {
            let image = lab.docker(node, &["inspect", "-f", "{{.Image}}", c]);
            in_use.entry(node.clone()).or_default().push(image);
        }
    }
    for (node, follower) in &deletions {
        let deleted: Vec<String> = follower
            .events()
            .iter()
            .filter_map(|e| e["Actor"]["ID"].as_str().map(str::to_string))
            .collect();
        for image in &in_use[node] {
            assert!(
                !deleted.contains(image),
                "{image}, in use on {node}, was deleted"
            );
            assert!(lab.has_image(node, image), "{image} is gone from {node}");
        }
        assert!(
            deleted.contains(&junk_id),
            "no delete event for the unused image on {node}: {deleted:?}"
        );
        eprintln!(
            "{node}: {} images deleted, none of the {} in use",
            deleted.len(),
            in_use[node].len()
        );
    }
    assert!(
        lab.has_image("worker2", &marker_id),
        "the pinned image was deleted"
    );
    eprintln!("lab cluster test took {:.0?}", start.elapsed());
}
