//! `swarmkeeper logs` against the real single-node swarm: a service whose tasks were replaced
//! twice (six tasks ever run, two current), read as an operator would. Issue 10: `logs --tail 1
//! -t` printed one line per task ever run, out of time order. Services are named uniquely and
//! removed when the test ends.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{docker, swarmkeeper};

const HOST: &str = "unix:///var/run/docker.sock";

/// Removes the services when dropped, and the image once their containers are gone.
struct Cleanup {
    services: Vec<String>,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.services {
            let _ = Command::new("docker")
                .args(["service", "rm", name])
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in &self.services {
            let filter = format!("label=com.docker.swarm.service.name={name}");
            while Instant::now() < deadline
                && !docker(HOST, &["ps", "-aq", "--filter", &filter]).is_empty()
            {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let _ = Command::new("docker").args(["rmi", &self.image]).output();
    }
}

/// An image of busybox for one test (each test removes its own).
fn image(test: &str) -> String {
    let tag = format!("sklogscli{}{test}:v1", std::process::id());
    support::build(HOST, &tag, None, 0, &[]);
    tag
}

/// A service printing `HOST tick N` every 0.2 s. `extra` goes before the image.
fn service(cleanup: &mut Cleanup, what: &str, replicas: u32, extra: &[&str]) -> String {
    let name = format!("sklogs{}{what}", std::process::id());
    let replicas = replicas.to_string();
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        &name,
        "--replicas",
        &replicas,
        "--stop-grace-period",
        "1s",
        "--update-parallelism",
        "0",
    ];
    args.extend_from_slice(extra);
    let command = "i=0; while true; do echo \"$(hostname) tick $i\"; i=$((i+1)); sleep 0.2; done";
    args.extend_from_slice(&[&cleanup.image, "/bin/busybox", "sh", "-c", command]);
    docker(HOST, &args);
    cleanup.services.push(name.clone());
    name
}

/// Waits until `n` tasks run that are not among `before`; returns their ids.
fn new_tasks_running(name: &str, n: usize, before: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let running: Vec<String> = docker(
            HOST,
            &[
                "service",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                name,
            ],
        )
        .lines()
        .map(str::to_owned)
        .filter(|id| !before.contains(id))
        .collect();
        let states = docker(
            HOST,
            &[
                "service",
                "ps",
                "--format",
                "{{.CurrentState}}",
                "--filter",
                "desired-state=running",
                name,
            ],
        );
        if running.len() >= n && states.lines().all(|s| s.starts_with("Running")) {
            return running;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: tasks did not run: {states}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `(time, task)` of each `TIME TASK | TEXT` line.
fn lines(out: &Output) -> Vec<(String, String)> {
    stdout(out)
        .lines()
        .map(|line| {
            let (time, rest) = line.split_once(' ').expect("a time");
            let (task, _) = rest.split_once(" | ").expect("a task");
            (time.to_owned(), task.to_owned())
        })
        .collect()
}

#[test]
fn tail_is_per_current_task_merged_by_time() {
    let mut cleanup = Cleanup {
        services: Vec::new(),
        image: image("tail"),
    };
    let name = service(&mut cleanup, "web", 2, &[]);
    let mut seen = new_tasks_running(&name, 2, &[]);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(2));
        docker(
            HOST,
            &["service", "update", "--detach", "--quiet", "--force", &name],
        );
        let now = new_tasks_running(&name, 2, &seen);
        seen.extend(now);
    }
    let current = &seen[4..];
    std::thread::sleep(Duration::from_secs(2));

    let out = swarmkeeper(HOST, &["logs", "--tail", "1", "-t", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let got = lines(&out);
    assert_eq!(
        got.len(),
        2,
        "one line of each current task: {}",
        text(&out)
    );
    for id in current {
        assert!(
            got.iter()
                .any(|(_, task)| task.contains(&format!(".{}@", &id[..12]))),
            "no line of the current task {id}: {}",
            text(&out)
        );
    }
    assert!(got[0].0 <= got[1].0, "in time order: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4 earlier task(s) not shown"),
        "{}",
        text(&out)
    );

    let out = swarmkeeper(HOST, &["logs", "--tail", "1", "-t", "--all-tasks", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let got = lines(&out);
    assert_eq!(got.len(), 6, "one line of every task: {}", text(&out));
    assert!(
        got.windows(2).all(|w| w[0].0 <= w[1].0),
        "in time order: {}",
        text(&out)
    );

    let out = swarmkeeper(HOST, &["logs", "--tail", "5", "-t", &name]);
    let got = lines(&out);
    assert_eq!(got.len(), 10, "{}", text(&out));
    assert!(
        got.windows(2).all(|w| w[0].0 <= w[1].0),
        "in time order: {}",
        text(&out)
    );

    // `all`, as the docker CLI takes it; anything else is named.
    let out = swarmkeeper(HOST, &["logs", "--tail", "all", "-t", &name]);
    assert!(
        out.status.success() && lines(&out).len() > 10,
        "{}",
        text(&out)
    );
    let out = swarmkeeper(HOST, &["logs", "--tail", "lots", &name]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tail"),
        "{}",
        text(&out)
    );
}

#[test]
fn syslog_is_read_through_the_engines_cache_and_none_is_explained() {
    let mut cleanup = Cleanup {
        services: Vec::new(),
        image: image("drivers"),
    };
    // syslog over UDP needs no listener; the engine keeps a copy (dual logging).
    let syslog = service(
        &mut cleanup,
        "syslog",
        1,
        &[
            "--log-driver",
            "syslog",
            "--log-opt",
            "syslog-address=udp://127.0.0.1:5514",
        ],
    );
    let none = service(&mut cleanup, "none", 1, &["--log-driver", "none"]);
    new_tasks_running(&syslog, 1, &[]);
    new_tasks_running(&none, 1, &[]);
    std::thread::sleep(Duration::from_secs(1));

    let out = swarmkeeper(HOST, &["logs", &syslog]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(" tick 0"), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("local cache"),
        "the note on the cache: {}",
        text(&out)
    );

    let out = swarmkeeper(HOST, &["logs", &none]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not support reading") && stderr.contains("driver: local"),
        "{}",
        text(&out)
    );
}
