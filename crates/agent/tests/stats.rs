//! Resource statistics against the real engine (/var/run/docker.sock, a swarm manager): a
//! Swarm service's running task container shows up on the agent's /metrics with the PRODUCT
//! labels, nonzero memory, its limit, and the OOM kill its command provoked. Needs Debian's
//! busybox-static.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use swarmkeeper_agent::{AgentConfig, StatsConfig};
use swarmkeeper_engine::Engine;
use swarmkeeper_gc::{Policy, PolicySettings, PullHeadroom};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A service of one replica on a `FROM scratch` busybox image; the service, the image and
/// the build folder go when dropped.
struct Service {
    name: String,
    image: String,
}

impl Service {
    fn create(stack: &str, limit: &str, script: &str) -> Service {
        let image = format!("{stack}:busybox");
        let dir = std::env::temp_dir().join(format!("{stack}-image"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy("/bin/busybox", dir.join("busybox"))
            .expect("/bin/busybox (Debian's busybox-static) builds the test image");
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
        std::fs::remove_dir_all(&dir).unwrap();
        let service = Service {
            name: format!("{stack}_web"),
            image,
        };
        docker(&[
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            &service.name,
            "--container-label",
            &format!("com.docker.stack.namespace={stack}"),
            "--limit-memory",
            limit,
            "--restart-condition",
            "none",
            &service.image,
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ]);
        service
    }

    /// The running task's id, once there is one.
    fn running_task(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = docker(&[
                "service",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.ID}} {{.CurrentState}}",
                &self.name,
            ]);
            if let Some(line) = tasks.lines().find(|l| l.contains("Running")) {
                return line.split_whitespace().next().unwrap().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no running task of {}: {tasks}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["service", "rm", &self.name])
            .output();
        // The task container goes a moment after the service.
        for _ in 0..50 {
            let gone = Command::new("docker")
                .args(["rmi", &self.image])
                .output()
                .is_ok_and(|o| o.status.success());
            if gone {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The agent's /metrics answer; empty while the agent is not listening yet. The agent runs
/// on this test's task, so the request goes through a blocking thread.
async fn get_metrics(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return String::new();
        };
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: agent\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

/// The value of the series `name{labels}` in an exposition, if present.
fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{labels} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_shows_up_with_its_labels_memory_and_oom_kill() {
    let stack = format!("skagstats{}", std::process::id());
    // dd's 64 MiB buffer cannot fit under 16 MiB: the kernel kills dd, the shell lives on.
    let service = Service::create(
        &stack,
        "16m",
        "/bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1; exec /bin/busybox sleep 300",
    );
    let task = service.running_task();
    let node = docker(&["info", "--format", "{{.Name}}"]);

    let listen = free_port();
    let state_dir = std::env::temp_dir().join(format!("{stack}-state"));
    // The host engine is shared: this agent must collect nothing at all.
    let week = Duration::from_secs(7 * 24 * 3600);
    let policy = Policy::new(PolicySettings {
        high_threshold_percent: 100,
        low_threshold_percent: 99,
        min_age: week,
        container_min_age: week,
        build_cache_min_age: week,
        pull_headroom: PullHeadroom::Off,
        ..PolicySettings::default()
    })
    .unwrap();
    let config = AgentConfig {
        policy,
        state_dir: state_dir.clone(),
        listen,
        interval: Duration::from_secs(3600),
        fs_path: None,
        metrics_token: None,
        report: None,
        stats: StatsConfig {
            interval: Duration::from_millis(500),
            ..StatsConfig::default()
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = swarmkeeper_agent::run(Engine::from_env().unwrap(), config, async {
        let _ = stopped.await;
    });
    let check = async {
        let text = exposed(&stack, &task, &node, listen).await;
        let _ = stop.send(());
        text
    };
    let (ran, task_gone) = tokio::join!(agent, check);
    ran.unwrap();
    drop(service);
    assert!(task_gone);
    let _ = std::fs::remove_dir_all(state_dir);
}

/// Checks what the agent at `listen` exposes about `task`; true once its series went with
/// the service.
async fn exposed(stack: &str, task: &str, node: &str, listen: SocketAddr) -> bool {
    let labels = format!(
        r#"{{node="{node}",stack="{stack}",service="{stack}_web",task="{task}",slot="1"}}"#
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = get_metrics(listen).await;
        let oom = value(&text, "swarmkeeper_container_oom_kills_total", &labels);
        if oom.is_some_and(|n| n >= 1.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no OOM kill of task {task} on /metrics within 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let memory = value(&text, "swarmkeeper_container_memory_bytes", &labels).unwrap();
    assert!(memory > 0.0, "{text}");
    assert_eq!(
        value(&text, "swarmkeeper_container_memory_limit_bytes", &labels),
        Some(16.0 * 1024.0 * 1024.0)
    );
    assert!(value(&text, "swarmkeeper_container_cpu_seconds_total", &labels).unwrap() > 0.0);
    // The service's overlay-less default network is still its own namespace.
    assert!(
        value(
            &text,
            "swarmkeeper_container_network_receive_bytes_total",
            &labels
        )
        .is_some(),
        "{text}"
    );
    assert!(value(&text, "swarmkeeper_node_memory_total_bytes", "").unwrap() > 0.0);

    // Once the service is gone, so are its series.
    docker(&["service", "rm", &format!("{stack}_web")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = get_metrics(listen).await;
        if !text.contains(task) && text.contains("# EOF") {
            break;
        }
        assert!(Instant::now() < deadline, "task {task} still exposed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    true
}
