//! Tryout 8 finding 13 (issue #14): promoting a worker on a lab swarm at its defaults (a
//! manager and two workers) notes that 2 managers tolerate no failure; a demote right after,
//! while the node is still joining the managers' raft, is 409 "still joining" (never the
//! engine's bare 404), and succeeds once the node is in. Runs as root (CI does); skips
//! otherwise.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::Server;
use support::{is_root, tempdir, SwarmLab};

fn post_role(server: &Server, token: &str, node: &str, role: &str) -> (u16, Value) {
    let (status, _, answer) = server.call(
        &format!("POST /api/nodes/{node}/role"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        &format!(r#"{{"role": "{role}"}}"#),
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

#[test]
fn a_demote_right_after_a_promote_says_the_node_is_still_joining() {
    if !is_root() {
        eprintln!("skipped: lab/lab.sh needs root");
        return;
    }
    let lab = SwarmLab::up("role", &[]);
    let worker = lab.hostname("worker1").to_owned();
    let root = tempdir("lab-role");
    let server = Server::start_with(&root, &[("DOCKER_HOST", lab.host("manager"))]);
    let session = server.login();
    let token = server.token(&session, "lab");

    let (status, promoted) = post_role(&server, &token, &worker, "manager");
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(
        promoted["note"],
        "2 managers tolerate no failure, as 1 would: Raft needs a majority of managers; \
         3 or 5 are recommended",
        "{promoted}"
    );
    // At once: 409 while the node joins the raft, then 200; never the engine's 404.
    let start = Instant::now();
    let mut joining = 0;
    let demoted = loop {
        let (status, answer) = post_role(&server, &token, &worker, "worker");
        match status {
            200 => break answer,
            409 => {
                let error = answer["error"].as_str().unwrap_or_default();
                assert_eq!(
                    error,
                    format!(
                        "{worker} is still joining the managers' raft: demote it again in a few \
                         seconds"
                    )
                );
                joining += 1;
            }
            other => panic!("demote answered {other}: {answer}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still joining after a minute"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!(
        "demoted after {joining} 409 answer(s), {:.1?}",
        start.elapsed()
    );
    assert_eq!(demoted["after"], "worker", "{demoted}");
    assert!(demoted.get("note").is_none(), "1 manager: {demoted}");
    server.stop();
}
