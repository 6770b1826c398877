//! Moving the real server by its placement label, on a lab swarm of two managers
//! (`lab/lab.sh --managers 2`) with `deploy/swarmkeeper.yml` at its defaults:
//!
//! - the server runs on the manager labelled `swarmkeeper.state=true` (the lab puts the label
//!   on `manager`), and its dashboard shows the stack's deploy history;
//! - the label moved to the other manager (`docker node update --label-add` there, then
//!   `--label-rm` on the first), Swarm moves the server there, the first node no longer
//!   serves it, and the dashboard on the new node shows the same history: it is kept in the
//!   swarm, not in the server's SQLite file (which stayed on the first node's volume).
//!
//! The lab (with the stack and its history) goes when the test ends. Runs as root (CI does);
//! skips otherwise. `SWARMKEEPER_STATIC_BINARY` names a static binary to put in the image
//! instead of building one.

mod support;

use std::time::{Duration, Instant};

use support::server::{Server, PASSWORD};
use support::{is_root, tempdir, SwarmLab};

/// The dashboard's port in `deploy/swarmkeeper.yml` (published on the server's node).
const PORT: u16 = 8080;

/// The node (hostname) whose `swarmkeeper_server` task runs, if one does.
fn server_node(lab: &SwarmLab) -> Option<String> {
    let tasks = lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "swarmkeeper_server",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}}",
        ],
    );
    tasks
        .lines()
        .find(|line| line.contains(" Running"))
        .and_then(|line| line.split_whitespace().next())
        .map(str::to_owned)
}

/// Waits until the server runs on `node` and answers there.
fn wait_server_on(lab: &SwarmLab, node: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let hostname = lab.hostname(node).to_owned();
    let server = Server::remote(lab.addr(node), PORT);
    loop {
        if server_node(lab).as_deref() == Some(hostname.as_str())
            && server.call("GET /login", &[], "").0 == 200
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the server does not answer on {node} after {limit:?}: {}",
            lab.docker(
                "manager",
                &["service", "ps", "--no-trunc", "swarmkeeper_server"]
            )
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn moving_the_state_label_moves_the_server_and_its_history_stays() {
    if !is_root() {
        eprintln!("skipped: lab/lab.sh needs root");
        return;
    }
    let lab = SwarmLab::up("hist", &["--workers", "1", "--managers", "2"]);
    let agent = lab.push_agent_image();
    let web = lab.push_image("statemove/web:1", 1);
    let dir = tempdir("lab-state-move");
    let stack = format!("move{}", std::process::id());

    // A revision in the swarm's history, deployed from this "machine" through the manager.
    let file = dir.join("stack.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {web}\n    entrypoint: [\"/bin/busybox\", \"sleep\", \"3600\"]\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .args(["deploy", "-c", file.to_str().unwrap(), &stack])
        .env("DOCKER_HOST", lab.host("manager"))
        .env("USER", "alice")
        .env("SWARMKEEPER_STATE_DIR", dir.join("alice"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The real server, placed by its label on `manager`.
    lab.deploy_agent(&agent, &[("SWARMKEEPER_ADMIN_PASSWORD", PASSWORD)]);
    let took = wait_server_on(&lab, "manager", Duration::from_secs(180));
    eprintln!("server up on manager after {took:.1?}");
    let shown = vec![(1, "alice".to_owned())];
    assert_eq!(
        Server::remote(lab.addr("manager"), PORT).revisions(&stack),
        shown
    );

    // The label moves: the server follows it.
    let (from, to) = (lab.hostname("manager"), lab.hostname("worker1"));
    lab.docker(
        "manager",
        &[
            "node",
            "update",
            "--label-add",
            "swarmkeeper.state=true",
            to,
        ],
    );
    lab.docker(
        "manager",
        &["node", "update", "--label-rm", "swarmkeeper.state", from],
    );
    let moved = wait_server_on(&lab, "worker1", Duration::from_secs(180));
    eprintln!("server moved to worker1 {moved:.1?} after the label did");
    assert_eq!(
        Server::remote(lab.addr("manager"), PORT)
            .call("GET /login", &[], "")
            .0,
        0,
        "the first manager still serves the dashboard"
    );
    assert_eq!(
        Server::remote(lab.addr("worker1"), PORT).revisions(&stack),
        shown,
        "the history stayed in the swarm"
    );
}
