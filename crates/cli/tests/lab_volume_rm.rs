//! Removing a volume that lives on a worker, from the dashboard's API, on a lab swarm at its
//! defaults (`lab/lab.sh up`: a manager and two workers). The server works through the
//! manager; a real `swarmkeeper agent` reports the worker's volumes to it (run here against
//! the worker's engine, as the stack runs it there). The removal runs as a one-task Swarm job
//! on the worker, in the image of the service labelled `swarmkeeper.agent=true`:
//!
//! - a volume a container holds is refused (409) naming that container, also when the report
//!   is older than the container: the worker's engine refuses, and the job says so;
//! - an unused one is gone from the worker afterwards, and from the volumes list at once.
//!
//! Runs as root (CI does); skips otherwise. `SWARMKEEPER_STATIC_BINARY` names a static binary
//! to put in the image instead of building one.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::Server;
use support::{is_root, tempdir, wait_until, Agent, SwarmLab};

/// `DELETE PATH` with a bearer token: the status and the body.
fn delete(server: &Server, token: &str, path: &str) -> (u16, String) {
    let (status, _, body) = server.call(
        &format!("DELETE {path}"),
        &[format!("Authorization: Bearer {token}")],
        "",
    );
    (status, body)
}

/// The names of the volumes the server lists on node `node_id`.
fn listed(server: &Server, token: &str, node_id: &str) -> Vec<String> {
    let (status, body) = server.get("/api/volumes", token);
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    view["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["node_key"] == node_id)
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_volume_on_a_worker_is_removed_by_a_job_there_and_refused_while_held() {
    if !is_root() {
        eprintln!("skipped: lab/lab.sh needs root");
        return;
    }
    let started = Instant::now();
    let lab = SwarmLab::up("vrm", &[]);
    let agent_image = lab.push_agent_image();
    let holder_image = lab.push_image("volrm/holder:1", 0);
    let pid = std::process::id();
    let (free, held, holder) = (
        format!("volrm-free-{pid}"),
        format!("volrm-held-{pid}"),
        format!("volrm-holder-{pid}"),
    );
    // deploy/swarmkeeper.yml labels its agent service so; removal jobs run in its image. A
    // stand-in without tasks is enough here: the job only takes the image.
    lab.docker(
        "manager",
        &[
            "service",
            "create",
            "--detach",
            "--name",
            &format!("volrm-agent-{pid}"),
            "--replicas",
            "0",
            "--label",
            "swarmkeeper.agent=true",
            &agent_image,
        ],
    );
    let worker = lab.hostname("worker1").to_owned();
    let worker_id = lab.docker("manager", &["node", "inspect", "-f", "{{.ID}}", &worker]);
    lab.docker("worker1", &["volume", "create", &free]);
    lab.docker("worker1", &["volume", "create", &held]);

    let root = tempdir("lab-volume-rm");
    let secret = root.join("report-secret");
    std::fs::write(&secret, "lab-volume-rm-secret").unwrap();
    let secret = secret.to_str().unwrap();
    std::fs::create_dir_all(root.join("server")).unwrap();
    std::fs::create_dir_all(root.join("agent")).unwrap();
    let server = Server::start_with(
        &root.join("server"),
        &[
            ("DOCKER_HOST", lab.host("manager")),
            ("SWARMKEEPER_REPORT_SECRET_FILE", secret),
        ],
    );
    let session = server.login();
    let token = server.token(&session, "lab");
    let data = lab.data("worker1");
    let state = root.join("agent");
    let agent = Agent::start(
        lab.host("worker1"),
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--fs-path",
            data.to_str().unwrap(),
            "--server",
            &format!("http://127.0.0.1:{}", server.port()),
            "--report-secret-file",
            secret,
        ],
    );
    wait_until(
        "the worker's agent to report both volumes",
        Duration::from_secs(30),
        || {
            let names = listed(&server, &token, &worker_id);
            names.contains(&free) && names.contains(&held)
        },
    );
    drop(agent);

    // A container takes the volume after the report: the server still thinks it unused, so
    // the job runs on the worker and the worker's engine refuses, naming the container.
    let container = lab.docker(
        "worker1",
        &[
            "create",
            "--name",
            &holder,
            "-v",
            &format!("{held}:/data"),
            &holder_image,
            "/bin/busybox",
            "true",
        ],
    );
    let (status, body) = delete(
        &server,
        &token,
        &format!("/api/volumes/{held}?node={worker_id}"),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("in use") && body.contains(&container[..12]),
        "the refusal names the container {container}: {body}"
    );
    assert!(lab
        .docker_output("worker1", &["volume", "inspect", &held])
        .status
        .success());

    // The unused one goes, there, and leaves the list at once.
    let (status, body) = delete(
        &server,
        &token,
        &format!("/api/volumes/{free}?node={worker_id}"),
    );
    assert_eq!(status, 204, "{body}");
    assert!(
        !lab.docker_output("worker1", &["volume", "inspect", &free])
            .status
            .success(),
        "volume {free} is still on {worker}"
    );
    assert!(!listed(&server, &token, &worker_id).contains(&free));
    // The jobs are gone too.
    let jobs = lab.docker(
        "manager",
        &[
            "service",
            "ls",
            "-q",
            "--filter",
            "label=swarmkeeper.volume-removal",
        ],
    );
    assert!(jobs.is_empty(), "removal jobs left behind: {jobs}");
    let (_, audit) = server.audit(&token);
    assert!(audit.contains("removed by a job on the node"), "{audit}");
    eprintln!(
        "volume removal on the lab: {:.1?} in all",
        started.elapsed()
    );
    server.stop();
}
