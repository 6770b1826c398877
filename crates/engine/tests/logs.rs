//! `Engine::logs` against the real single-node swarm: services of several replicas that print
//! numbered lines, updated so that old tasks linger, read the way `swarmkeeper logs` and the
//! dashboard read them. Services are named uniquely and removed when the test ends.

#[allow(dead_code)]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarmkeeper_engine::logs::{LogItem, Logs, LogsRequest, NamedLine};
use swarmkeeper_engine::{Engine, Service, TaskState};

use common::{docker, unique, Scratch};

/// Removes its services when dropped, and waits for their containers so the image can go.
struct Services(Vec<String>);

impl Drop for Services {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["service", "rm", name])
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in &self.0 {
            let filter = format!("label=com.docker.swarm.service.name={name}");
            while Instant::now() < deadline {
                let left = docker(&["ps", "-aq", "--filter", &filter]);
                if left.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Prints `NAME tick N` about twenty times a second.
const TICKS: &str =
    "i=0; while true; do echo \"$(hostname) tick $i\"; i=$((i+1)); sleep 0.05; done";

async fn create(
    engine: &Engine,
    services: &mut Services,
    image: &str,
    replicas: u64,
    driver: Value,
) -> Service {
    let name = unique("logs");
    let spec = json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["/bin/busybox", "sh", "-c", TICKS],
                "StopGracePeriod": 1_000_000_000u64
            },
            "LogDriver": driver,
            "RestartPolicy": {"Condition": "none"}
        },
        "Mode": {"Replicated": {"Replicas": replicas}}
    });
    engine.create_service(&spec, None).await.unwrap();
    services.0.push(name.clone());
    engine.inspect_service(&name).await.unwrap()
}

/// Waits until `n` tasks of the service run (those Swarm means to run).
async fn running(engine: &Engine, service: &Service, n: usize) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = engine.list_tasks(&service.id).await.unwrap();
        let up: HashSet<String> = tasks
            .iter()
            .filter(|t| t.desired_state == TaskState::Running && t.state == TaskState::Running)
            .map(|t| t.id.clone())
            .collect();
        if up.len() >= n {
            return up;
        }
        assert!(
            Instant::now() < deadline,
            "{n} tasks did not run: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every item until the end (a stream not followed).
async fn read_all(mut logs: Logs) -> (Vec<NamedLine>, Vec<LogItem>, Logs) {
    let mut lines = Vec::new();
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Some(item) = tokio::time::timeout_at(deadline, logs.next())
        .await
        .expect("the logs end within 60 s")
    {
        match item.unwrap() {
            LogItem::Lines(batch) => lines.extend(batch),
            item => other.push(item),
        }
    }
    (lines, other, logs)
}

fn ids_of(lines: &[NamedLine]) -> HashSet<String> {
    lines
        .iter()
        .map(|l| l.line.task_id.clone().expect("a task id"))
        .collect()
}

#[track_caller]
fn assert_time_order(lines: &[NamedLine]) {
    let back: Vec<_> = lines
        .windows(2)
        .filter(|w| w[1].time < w[0].time)
        .map(|w| (&w[0].line.text, &w[1].line.text))
        .collect();
    assert!(
        back.is_empty(),
        "{} of {} lines older than the line before them, first {:?}",
        back.len(),
        lines.len(),
        back.first()
    );
}

#[tokio::test]
async fn several_tasks_in_time_order_current_ones_by_default() {
    let engine = Engine::from_env().unwrap();
    let mut scratch = Scratch::default();
    let image = format!("{}:v1", unique("logimg"));
    scratch.build(&image, None, 256);
    let mut services = Services(Vec::new());
    let service = create(&engine, &mut services, &image, 3, json!({"Name": "local"})).await;
    let first = running(&engine, &service, 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Replace every task: the old ones stop but keep their containers, and their logs.
    docker(&["service", "update", "--detach", "--force", &service.name]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let now = loop {
        let up = running(&engine, &service, 3).await;
        if up.is_disjoint(&first) {
            break up;
        }
        assert!(Instant::now() < deadline, "the tasks were not replaced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The whole backlog: the current tasks only, merged by time.
    let request = LogsRequest::default();
    let logs = engine
        .logs(std::slice::from_ref(&service), &request)
        .await
        .unwrap();
    let (lines, other, logs) = read_all(logs).await;
    assert!(other.is_empty(), "{other:?}");
    assert!(lines.len() > 30, "{} lines", lines.len());
    assert_eq!(ids_of(&lines), now, "only the current tasks");
    assert_time_order(&lines);
    assert!(lines.iter().all(|l| l.time.is_some()));
    assert_eq!(logs.hidden_tasks(), 3, "the replaced tasks");
    let name = regex_lite(&service.name);
    for line in &lines {
        assert!(name(&line.task), "{}", line.task);
    }

    // Every task, still in time order.
    let all = LogsRequest {
        all_tasks: true,
        ..LogsRequest::default()
    };
    let (lines, _, logs) = read_all(
        engine
            .logs(std::slice::from_ref(&service), &all)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ids_of(&lines), &now | &first);
    assert_time_order(&lines);
    assert_eq!(logs.hidden_tasks(), 0);

    // `tail` counts per task: one line of each current task, oldest first.
    let tail = LogsRequest {
        tail: Some(1),
        ..LogsRequest::default()
    };
    let (lines, _, _) = read_all(
        engine
            .logs(std::slice::from_ref(&service), &tail)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(ids_of(&lines), now);
    assert_time_order(&lines);

    // Followed: the backlog in order, then new lines keep coming.
    let follow = LogsRequest {
        follow: true,
        tail: Some(20),
        ..LogsRequest::default()
    };
    let mut logs = engine
        .logs(std::slice::from_ref(&service), &follow)
        .await
        .unwrap();
    let mut lines = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(item)) = tokio::time::timeout_at(until, logs.next()).await {
        if let LogItem::Lines(batch) = item.unwrap() {
            lines.extend(batch);
        }
    }
    assert!(lines.len() > 60 + 40, "{} lines in 3 s", lines.len());
    assert_time_order(&lines[..60]);
    assert_eq!(ids_of(&lines), now);
}

#[tokio::test]
async fn drivers_decide_whether_logs_can_be_read() {
    let engine = Engine::from_env().unwrap();
    let mut scratch = Scratch::default();
    let image = format!("{}:v1", unique("logimg"));
    scratch.build(&image, None, 256);
    let mut services = Services(Vec::new());
    let none = create(&engine, &mut services, &image, 1, json!({"Name": "none"})).await;
    // syslog over UDP needs no listener; the engine keeps a copy in its cache (dual logging).
    let syslog = json!({"Name": "syslog", "Options": {"syslog-address": "udp://127.0.0.1:5514"}});
    let cached = create(&engine, &mut services, &image, 1, syslog).await;
    running(&engine, &none, 1).await;
    running(&engine, &cached, 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let both = [none.clone(), cached.clone()];
    let (lines, other, _) =
        read_all(engine.logs(&both, &LogsRequest::default()).await.unwrap()).await;
    assert_eq!(other.len(), 1, "{other:?}");
    let LogItem::Unreadable { service, message } = &other[0] else {
        panic!("{other:?}")
    };
    assert_eq!(service, &none.name);
    assert!(
        message.contains("`none`") && message.contains("driver: local"),
        "{message}"
    );
    assert!(
        !lines.is_empty(),
        "the syslog service's lines come from the cache"
    );
    assert!(lines
        .iter()
        .all(|l| l.task.starts_with(&format!("{}.1.", cached.name))));
}

/// `SERVICE.1.<12 characters>@<host>`, `SERVICE.2…`, without a regex crate.
fn regex_lite(service: &str) -> impl Fn(&str) -> bool + '_ {
    move |task: &str| {
        let Some(rest) = task.strip_prefix(service).and_then(|r| r.strip_prefix('.')) else {
            return false;
        };
        let mut parts = rest.splitn(3, '.');
        let slot = parts.next().unwrap_or_default();
        let id_host = parts.next().unwrap_or_default();
        let (id, host) = id_host.split_once('@').unwrap_or(("", ""));
        slot.parse::<u64>().is_ok() && id.len() == 12 && !host.is_empty()
    }
}

#[tokio::test]
async fn a_followed_read_ends_when_the_service_is_removed() {
    let engine = Engine::from_env().unwrap();
    let mut scratch = Scratch::default();
    let image = format!("{}:v1", unique("logimg"));
    scratch.build(&image, None, 256);
    let mut services = Services(Vec::new());
    let service = create(&engine, &mut services, &image, 1, json!({"Name": "local"})).await;
    running(&engine, &service, 1).await;
    let follow = LogsRequest {
        follow: true,
        tail: Some(1),
        ..LogsRequest::default()
    };
    let mut logs = engine
        .logs(std::slice::from_ref(&service), &follow)
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), logs.next()).await;
    assert!(
        matches!(first, Ok(Some(Ok(LogItem::Lines(_))))),
        "{first:?}"
    );
    docker(&["service", "rm", &service.name]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, logs.next()).await {
            Ok(None) => break,
            Ok(Some(item)) => assert!(item.is_ok(), "{item:?}"),
            Err(_) => panic!("the read went on after the service was removed"),
        }
    }
}
