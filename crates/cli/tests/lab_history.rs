//! One deploy history in a swarm of two managers (`lab/lab.sh --managers 2`), with default
//! settings:
//!
//! - two "machines" (a state directory and a user each, `alice` through the manager, `bob`
//!   through the other manager) deploy one stack; `history` through either manager shows both
//!   revisions, with each user's name and image;
//! - the dashboard shows the same history; a server started on the other manager with a state
//!   directory of its own (the server moved: its SQLite file stayed behind) shows it too;
//! - a deploy started while another one of the stack runs waits for it, saying who holds the
//!   stack, and both end up in the history.
//!
//! The lab (and with it the stack and its history) goes when the test ends. Runs as root (CI
//! does); skips otherwise.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::server::Server;
use support::{is_root, tempdir, SwarmLab};

/// `swarmkeeper ARGS…` as `user`, through `host`, with a state directory of its own.
fn swarmkeeper(host: &str, user: &str, state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"));
    command
        .args(args)
        .env("DOCKER_HOST", host)
        .env("USER", user)
        .env("SWARMKEEPER_STATE_DIR", state);
    command
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stack file of one service; `version` changes its environment (an update), `health`
/// gives it a healthcheck that passes after that many seconds (a deploy that takes a while).
fn compose(dir: &Path, image: &str, version: u32, health: u32) -> String {
    let path = dir.join(format!("stack-{version}.yml"));
    let check = if health > 0 {
        format!(
            "    healthcheck:\n      test: [\"CMD\", \"/bin/busybox\", \"true\"]\n      interval: {health}s\n"
        )
    } else {
        String::new()
    };
    std::fs::write(
        &path,
        format!(
            "services:\n  web:\n    image: {image}\n    entrypoint: [\"/bin/busybox\", \"sleep\", \"3600\"]\n    environment:\n      VERSION: \"{version}\"\n{check}"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn history(host: &str, state: &Path, stack: &str) -> Value {
    let out = swarmkeeper(host, "carol", state, &["history", stack, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(revision, by, image of the service)` of each revision, newest first.
fn summary(revisions: &Value) -> Vec<(u64, String, String)> {
    revisions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["by"].as_str().unwrap().to_owned(),
                r["services"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn two_machines_one_history_through_either_manager_and_the_dashboard() {
    if !is_root() {
        eprintln!("skipped: lab/lab.sh needs root");
        return;
    }
    let lab = SwarmLab::up("ch", &["--workers", "1", "--managers", "2"]);
    let (first, second) = (lab.host("manager"), lab.host("worker1"));
    let image = lab.push_image("history/web:1", 1);
    let root = tempdir("lab-history");
    let (alice, bob, carol) = (root.join("alice"), root.join("bob"), root.join("carol"));
    let stack = format!("hist{}", std::process::id());

    // Two machines, each through its own manager.
    let out = swarmkeeper(
        first,
        "alice",
        &alice,
        &["deploy", "-c", &compose(&root, &image, 1, 0), &stack],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = swarmkeeper(
        second,
        "bob",
        &bob,
        &["deploy", "-c", &compose(&root, &image, 2, 0), &stack],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let expected = vec![
        (2, "bob".to_owned(), image.clone()),
        (1, "alice".to_owned(), image.clone()),
    ];
    for host in [first, second] {
        let listed = history(host, &carol, &stack);
        assert_eq!(summary(&listed["revisions"]), expected, "{listed}");
        assert_eq!(listed["revisions"][0]["outcome"], "succeeded", "{listed}");
    }

    // The dashboard, then the server moved to the other manager with a new state directory.
    let server = Server::start_with(&root.join("server-1"), &[("DOCKER_HOST", first)]);
    let shown = vec![(2, "bob".to_owned()), (1, "alice".to_owned())];
    assert_eq!(server.revisions(&stack), shown);
    server.stop();
    let server = Server::start_with(&root.join("server-2"), &[("DOCKER_HOST", second)]);
    assert_eq!(
        server.revisions(&stack),
        shown,
        "the history stayed in the swarm"
    );
    server.stop();

    // A deploy while another one runs (its new task healthy after 4 s) waits for it.
    let running = swarmkeeper(
        first,
        "alice",
        &alice,
        &[
            "deploy",
            "--progress",
            "plain",
            "-c",
            &compose(&root, &image, 3, 4),
            &stack,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let lock = lab.docker_output(
            "manager",
            &["config", "inspect", &format!("swarmkeeper-lock-{stack}")],
        );
        if lock.status.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "alice's deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let waited = swarmkeeper(
        second,
        "bob",
        &bob,
        &[
            "deploy",
            "--progress",
            "plain",
            "-c",
            &compose(&root, &image, 4, 0),
            &stack,
        ],
    )
    .output()
    .unwrap();
    let first_done = running.wait_with_output().unwrap();
    assert!(first_done.status.success(), "{}", text(&first_done));
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains(&format!(
            "waiting for the deploy of {stack} by alice (since "
        )),
        "{}",
        text(&waited)
    );
    let listed = history(second, &carol, &stack);
    let by: Vec<_> = summary(&listed["revisions"])
        .into_iter()
        .map(|(n, by, _)| (n, by))
        .collect();
    assert_eq!(
        by,
        vec![
            (4, "bob".to_owned()),
            (3, "alice".to_owned()),
            (2, "bob".to_owned()),
            (1, "alice".to_owned())
        ],
        "{listed}"
    );
    std::fs::remove_dir_all(&root).ok();
}
