//! A deploy stopped by a signal (Ctrl-C, `timeout`, a CI job cancelled) on the real
//! single-node swarm: it records what it did as interrupted, gives the stack's lock back at
//! once (the next deploy does not wait for it to expire), and exits as a shell reports the
//! signal (130 for SIGINT, 143 for SIGTERM).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::deploy::{images, room_for_one_replica, service, stack_file, text, Stack};

/// Starts `swarmkeeper ARGS`, reads its progress until a line contains `seen`, then sends it
/// `signal`; returns its exit code, what it printed before and after.
fn signal_when(stack: &Stack, args: &[&str], seen: &str, signal: &str) -> (Option<i32>, String) {
    let mut child: Child = stack
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "ended before {seen:?}: {printed}"
        );
        printed.push_str(&line);
        if line.contains(seen) {
            break;
        }
    }
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    printed.push_str(&text(&out));
    (out.status.code(), printed)
}

#[test]
fn sigterm_while_following_records_the_revision_as_interrupted_and_frees_the_stack() {
    let (ok, _) = images();
    let stack = Stack::new("sigterm");
    let v1 = stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    // Revision 2 converges slowly (never): its second task waits for memory the node has
    // given to the first.
    let reservation = room_for_one_replica();
    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service("web", ok, 2, &reservation)]),
    );
    let deploy = [
        "deploy",
        "--progress",
        "plain",
        "--by",
        "tester",
        "--timeout",
        "120s",
        "-c",
        v2.to_str().unwrap(),
        &stack.name,
    ];
    let (code, said) = signal_when(&stack, &deploy, "no suitable node", "TERM");
    assert_eq!(code, Some(143), "{said}");
    let web = format!("{}_web", stack.name);
    let line = format!(
        "swarmkeeper: deploy of {} interrupted by SIGTERM: applied {web}; not applied: none; \
         Swarm continues the rollout of what was applied",
        stack.name
    );
    assert!(said.contains(&line), "{said}");
    assert!(
        said.contains("revision 2 is recorded as interrupted and the stack's lock is released"),
        "{said}"
    );
    // Swarm owns the rollout it started: swarmkeeper neither followed nor rolled it back.
    assert!(stack.runs_rev("web", 2), "{said}");

    let history = stack.history();
    let newest = &history["revisions"][0];
    assert_eq!(newest["revision"], 2, "{history}");
    assert_eq!(newest["outcome"], "interrupted", "{history}");
    assert!(
        newest["summary"].as_str().unwrap().starts_with(&format!(
            "interrupted by SIGTERM: applied {web}; not applied: none"
        )),
        "{history}"
    );
    assert!(
        newest["finished_at"].is_string(),
        "the revision has its end: {history}"
    );

    // The lock is free at once: a deploy that would not wait for it goes through.
    let started = Instant::now();
    let again = stack.deploy(&v1, &["--no-wait"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("waiting for the deploy"),
        "{}",
        text(&again)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{}",
        text(&again)
    );
    assert!(stack.runs_rev("web", 1));
}

#[test]
fn sigint_while_waiting_for_the_lock_exits_130_having_changed_nothing() {
    let (ok, _) = images();
    let stack = Stack::new("sigint");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let version = stack.version("web");
    // Another deploy holds the stack.
    let holder = stack.file("holder", "bob\n");
    support::docker(
        support::deploy::HOST,
        &[
            "config",
            "create",
            "--label",
            "swarmkeeper.lock.holder=bob",
            &format!("swarmkeeper-lock-{}", stack.name),
            holder.to_str().unwrap(),
        ],
    );
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", ok, 2, "")]));
    let deploy = [
        "deploy",
        "--progress",
        "plain",
        "-c",
        v2.to_str().unwrap(),
        &stack.name,
    ];
    let (code, said) = signal_when(&stack, &deploy, "waiting for the deploy of", "INT");
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains(&format!(
            "swarmkeeper: deploy of {} interrupted by SIGINT before it changed anything; no \
             revision was begun and the stack's lock is not held",
            stack.name
        )),
        "{said}"
    );
    assert_eq!(stack.version("web"), version, "nothing changed");
    assert_eq!(stack.history()["revisions"].as_array().unwrap().len(), 1);
}
