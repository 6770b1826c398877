//! An OOM kill on the real engine reaches a real webhook receiver: a service limited to
//! 16 MiB that allocates 64 MiB, a `swarmkeeper agent` reading its cgroup with stats on, a
//! `swarmkeeper server` with `--alert-webhook`, each a process of its own. Prints the alert
//! latency: from the kernel's OOM kill (the engine's `oom` event) to the message received.
//!
//! The agent's stats and report intervals are its defaults (they are the OOM path's
//! latency); its GC policy is `AlertSetup::agent`'s, which cannot delete anything on the
//! shared host engine that this test did not create (the default policy would collect other
//! tests' unused images whenever the host's disk is past 85 %).

mod support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::server::Server;
use support::*;

/// The times (ns since the epoch) of the engine's `oom` events for `service`'s containers,
/// from a `docker events` stream followed from `since` (seconds since the epoch). Followed
/// rather than asked for afterwards: the engine keeps only its last 256 events, which a busy
/// shared engine turns over in seconds.
struct OomEvents {
    child: std::process::Child,
    times: mpsc::Receiver<u128>,
}

impl OomEvents {
    fn follow(host: &str, service: &str, since: u64) -> OomEvents {
        let mut child = std::process::Command::new("docker")
            .env("DOCKER_HOST", host)
            .args([
                "events",
                "--since",
                &since.to_string(),
                "--filter",
                "event=oom",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
                "--format",
                "{{.TimeNano}}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("docker events");
        let stdout = child.stdout.take().unwrap();
        let (tx, times) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(time) = line.trim().parse() {
                    if tx.send(time).is_err() {
                        break;
                    }
                }
            }
        });
        OomEvents { child, times }
    }
}

impl Drop for OomEvents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_task_killed_for_memory_alerts_the_webhook() {
    // A child process is killed; the container keeps running.
    oom_alert(
        "child",
        "while true; do /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 5; done",
    );
}

#[test]
fn a_task_whose_main_process_is_killed_for_memory_alerts_the_webhook_then_a_restart_loop() {
    // The main process is killed: the container exits at once, its cgroup with it, and Swarm
    // starts a new task after its restart delay (issue #15: this never alerted). At Swarm's
    // default 5 s delay that is also a restart loop, which a listing of the tasks alone never
    // showed: Swarm keeps 4 ended tasks of a slot, the rule wants 5 restarts in 10 minutes.
    oom_alert(
        "main",
        "exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
    );
}

/// The page of one of `service`'s tasks that the kernel killed (issue #15, tryout #9): its
/// exit line says "out of memory" with the limit, not "stopped by Swarm", and its restarts
/// are the server's count, past the 4 ended tasks Swarm keeps listing.
fn task_page_says_out_of_memory(server: &Server, host: &str, service: &str) {
    let token = server.token(&server.login(), "oom-task-page");
    let ended = docker(
        host,
        &[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=shutdown",
            "--format",
            "{{.ID}}",
            service,
        ],
    );
    // Not the newest ended task (listed first): it may have died a moment ago, before the
    // agent reported its kill and before the engine set its container's `OOMKilled` (both come
    // after the exit; CI once read the page in between). Nor only the oldest: Swarm keeps a
    // few ended tasks per slot and may drop it between the listing and the read (CI once got
    // 404). The next newest that is still there.
    let listed: Vec<&str> = ended
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let (task, body) = listed
        .iter()
        .skip(1)
        .chain(listed.first())
        .find_map(|task| {
            let (status, body) = server.get(&format!("/api/tasks/{task}"), &token);
            (status != 404).then(|| {
                assert_eq!(status, 200, "{body}");
                (task.to_string(), body)
            })
        })
        .expect("an ended task Swarm still lists");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        page["exit"], "exit 137 (killed: out of memory, limit 16 MiB)",
        "{page}"
    );
    assert_eq!(page["error_summary"], "", "{page}");
    let restarts = page["restarts"].as_u64().unwrap();
    assert!(
        restarts >= 5,
        "the restart-loop alert counted 5 restarts; the page says {restarts}: {page}"
    );
    let (status, html) = server.get(&format!("/tasks/{task}"), &token);
    assert_eq!(status, 200);
    assert!(
        html.contains("exit 137 (killed: out of memory, limit 16 MiB)"),
        "{html}"
    );
    assert!(!html.contains("stopped by Swarm"));
    eprintln!(
        "task page of an OOM-killed task: {}; restarts {restarts} in the last {}",
        page["exit"], page["restarts_within"]
    );
}

/// Runs a service limited to 16 MiB whose `script` allocates 64 MiB, and waits for the
/// oom-kill alert about its slot at the webhook; prints the latency from the kill.
fn oom_alert(case: &str, script: &str) {
    let setup = AlertSetup::start(&format!("oom{case}"));
    // Stats and reports at the agent's defaults: they decide how soon a kill is seen.
    let _agent = setup.agent(&[]);
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let oom_events = OomEvents::follow(&setup.host, &setup.service, since);
    let created = std::time::Instant::now();
    setup.create_service("16M", script);
    let AlertSetup {
        host,
        service,
        server,
        messages,
        cleanup: _cleanup,
        ..
    } = setup;
    let slot = format!("{service}.1");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let (received, alert) = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (at, body) = messages
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no oom-kill alert about {slot} within 90 s"));
        if body["subject"] == slot.as_str() && body["rule"] == "oom-kill" {
            break (at, body);
        }
    };
    assert_eq!(alert["status"], "firing", "{alert}");
    let summary = alert["summary"].as_str().unwrap();
    assert!(summary.contains(&slot), "{summary}");
    let first = oom_events
        .times
        .recv_timeout(Duration::from_secs(30))
        .expect("the engine reported no oom event");
    let received = received.duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let latency = Duration::from_nanos(received.saturating_sub(first) as u64);
    eprintln!(
        "OOM kill ({case} process) -> oom-kill alert received: {:.2} s (agent defaults): {summary}",
        latency.as_secs_f64()
    );
    if case == "main" {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let alert = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (_, body) = messages.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no restart-loop alert about {service} within 120 s of the OOM alert")
            });
            if body["subject"] == service.as_str() && body["rule"] == "restart-loop" {
                break body;
            }
        };
        assert_eq!(alert["status"], "firing", "{alert}");
        eprintln!(
            "restart-loop alert {:.1} s after the service was created (Swarm's default 5 s \
             restart delay): {}",
            created.elapsed().as_secs_f64(),
            alert["summary"]
        );
        task_page_says_out_of_memory(&server, &host, &service);
    }
    server.stop();
}

/// Tryout finding 20: a rollback the deploy engine does itself sent no `rolled-back` alert.
/// A stack of two services goes from revision 1 to 2: `ok` changes and converges, `bad`'s
/// task exits 1, so Swarm rolls `bad` back (`failure_action: rollback`) and the deploy engine
/// puts `ok` back itself, with a plain update that ends `completed`. The server must say both
/// were rolled back, naming the revision and why, `ok` included (before: nothing about it).
#[test]
fn a_rollback_the_deploy_engine_does_itself_alerts_the_webhook() {
    let setup = AlertSetup::start("rollback");
    let stack = format!("skrb{}", std::process::id());
    struct Stack(String);
    impl Drop for Stack {
        fn drop(&mut self) {
            remove_stack(&self.0);
        }
    }
    let _stack = Stack(stack.clone());
    let file = |ok_env: &str, bad_command: &str| {
        format!(
            "services:\n  ok:\n    image: {image}\n    command: [\"/bin/busybox\", \"sleep\", \
             \"3600\"]\n    environment: [\"V={ok_env}\"]\n  bad:\n    image: {image}\n    \
             command: {bad_command}\n",
            image = setup.image
        )
    };
    let sleep = "[\"/bin/busybox\", \"sleep\", \"3600\"]";
    let v1 = setup.dir.join("v1.yml");
    std::fs::write(&v1, file("1", sleep)).unwrap();
    let v2 = setup.dir.join("v2.yml");
    std::fs::write(
        &v2,
        file("2", "[\"/bin/busybox\", \"sh\", \"-c\", \"exit 1\"]"),
    )
    .unwrap();
    let deploy = |path: &std::path::Path| {
        swarmkeeper(
            &setup.host,
            &[
                "deploy",
                "--ignore-lint",
                "-c",
                path.to_str().unwrap(),
                &stack,
            ],
        )
    };
    let first = deploy(&v1);
    assert_eq!(first.status.code(), Some(0), "{}", output_text(&first));
    let second = deploy(&v2);
    assert_eq!(second.status.code(), Some(1), "{}", output_text(&second));
    let ended = std::time::Instant::now();
    let ok = format!("{stack}_ok");
    let state = docker(
        &setup.host,
        &[
            "service",
            "inspect",
            "--format",
            "{{.UpdateStatus.State}}",
            &ok,
        ],
    );
    assert_eq!(
        state, "completed",
        "the engine put {ok} back with a plain update"
    );
    let deadline = ended + Duration::from_secs(20);
    let alert = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (_, body) = setup
            .messages
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no rolled-back alert about {ok} within 20 s"));
        if body["subject"] == ok.as_str() && body["rule"] == "rolled-back" {
            break body;
        }
    };
    assert_eq!(alert["status"], "firing", "{alert}");
    let summary = alert["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("revision 2 of stack {stack}")) && summary.contains("_bad"),
        "{summary}"
    );
    eprintln!(
        "deploy engine's rollback -> rolled-back alert received {:.1} s after the deploy \
         ended: {summary}",
        ended.elapsed().as_secs_f64()
    );
    setup.server.stop();
}
