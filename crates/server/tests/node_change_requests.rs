//! An operator's node change and a rotation's preflight read the engine once for what they
//! weigh (issue 14): a pause, a drain (weighed first: tasks, services, nodes) and a role change
//! inspect the node once, and the update goes out at the version read; the rotation of a
//! secret that global services use lists their tasks in one request, not one per service. What
//! each does stays: the pause and the drain apply, the role change is answered, the rotation
//! is refused naming both services' tasks.
//!
//! On a Docker engine of the test's own (`lab/small-engine.sh`), a single-node swarm whose one
//! node may be paused and drained without disturbing the host's swarm; the app reaches it
//! through a proxy that counts the requests ([`support::engine_proxy`]).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::engine_proxy::EngineProxy;
use support::{Call, TestApp};

/// A Docker engine of the test's own, a swarm manager alone; stopped and removed when dropped.
struct EngineLab {
    name: String,
    host: String,
}

impl EngineLab {
    fn up() -> EngineLab {
        let name = format!("skreq{}", std::process::id());
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../lab/small-engine.sh"
            ))
            .args(["up", &name, "384m"])
            .output()
            .expect("run lab/small-engine.sh");
        let lab = EngineLab {
            name,
            host: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        };
        assert!(
            out.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        lab
    }

    /// The docker CLI against the lab's engine; its trimmed stdout.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Copies the host's `image` into the lab (which pulls nothing: it has no route out).
    fn load(&self, image: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run docker save");
        let load = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(["load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .expect("run docker load");
        assert!(save.wait().unwrap().success() && load.status.success());
    }
}

impl Drop for EngineLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../lab/small-engine.sh"
            ))
            .args(["down", &self.name])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_changes_and_a_rotation_preflight_read_the_engine_once() {
    let lab = EngineLab::up();
    let image = support::test_image();
    lab.load(image);
    let node = lab.docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    let secret = "skreqsecret";
    let mut create = Command::new("docker")
        .env("DOCKER_HOST", &lab.host)
        .args(["secret", "create", secret, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = create.stdin.take().unwrap();
        stdin.write_all(b"the old value").unwrap();
    }
    assert!(create.wait().unwrap().success());
    let global = ["skreqglobal1", "skreqglobal2"];
    for name in global {
        lab.docker(&[
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--mode",
            "global",
            "--secret",
            secret,
            image,
            "/bin/busybox",
            "sleep",
            "3600",
        ]);
    }
    support::wait_for("both global tasks running", Duration::from_secs(60), || {
        let running = lab.docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
            global[0],
            global[1],
        ]);
        running.lines().filter(|l| l.starts_with("Running")).count() == 2
    });

    let proxy = EngineProxy::start(Some(&lab.host));
    let app = TestApp::new().await;
    let admin = &app.admin;
    let inspected = format!("/nodes/{node}");

    // A pause: one inspect, then the update.
    proxy.clear();
    app.call(
        Call::post(&format!("/api/nodes/{node}/availability"))
            .bearer(&admin.token)
            .json(&json!({"availability": "pause"})),
    )
    .await
    .expect(200);
    assert_eq!(proxy.asked("GET", &inspected), 1, "{:?}", proxy.lines());
    assert_eq!(proxy.asked("POST", &format!("/nodes/{node}/update")), 1);

    // The rotation is refused (the global tasks run on a paused node): the tasks of both
    // users in one listing.
    proxy.clear();
    let message = app
        .call(
            Call::post(&format!("/api/secrets/{secret}/rotate"))
                .bearer(&admin.token)
                .json(&json!({"data": "a new value"})),
        )
        .await
        .expect_json_error(409);
    assert!(
        global.iter().all(|g| message.contains(g)) && message.contains("(pause)"),
        "{message}"
    );
    assert_eq!(proxy.asked("GET", "/tasks"), 1, "{:?}", proxy.lines());

    // A drain: weighed (tasks, services, nodes), the node inspected once, then applied. The
    // global services go first: the lab engine's container mounts are in this process's
    // mount table, where the server looks for its own container, and a task of theirs would
    // read as the dashboard's own (a drain then asks for a confirmation, unweighed).
    for name in global {
        lab.docker(&["service", "rm", name]);
    }
    proxy.clear();
    app.call(
        Call::post(&format!("/api/nodes/{node}/availability"))
            .bearer(&admin.token)
            .json(&json!({"availability": "drain"})),
    )
    .await
    .expect(200);
    let seen = proxy.lines();
    assert_eq!(proxy.asked("GET", &inspected), 1, "{seen:?}");
    assert_eq!(proxy.asked("GET", "/tasks"), 1, "{seen:?}");
    assert_eq!(proxy.asked("GET", "/nodes"), 1, "{seen:?}");
    assert_eq!(
        lab.docker(&["node", "inspect", "-f", "{{.Spec.Availability}}", &node]),
        "drain"
    );

    // A role change: the managers listed and the node inspected, once each.
    proxy.clear();
    app.call(
        Call::post(&format!("/api/nodes/{node}/role"))
            .bearer(&admin.token)
            .json(&json!({"role": "manager"})),
    )
    .await
    .expect(200);
    let seen = proxy.lines();
    assert_eq!(proxy.asked("GET", &inspected), 1, "{seen:?}");
    assert_eq!(proxy.asked("GET", "/nodes"), 1, "{seen:?}");
    drop(proxy);
}
