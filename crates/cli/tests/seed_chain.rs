//! The seed's chain, end to end (issue 12): the workflow that filled the incident's worker,
//! replayed on a real multi-node swarm (`lab/lab.sh`) with swarmkeeper's **default** settings.
//!
//! - The lab's registry wants a password (htpasswd) and sends its push notifications to the
//!   server's `POST /api/hooks/registry` (`--registry-notify`, with the registry hook token).
//! - worker1's data root is a 256 MiB tmpfs; the agent runs on every node as the global
//!   service of `deploy/swarmkeeper.yml`, every option at its default (85/80, min age 2m,
//!   pull headroom auto, interval 30s).
//! - `swarmkeeper server` (on the host, through the lab's manager; the stack's own server is
//!   scaled to 0 so that one server follows the service) has the registry's password from the
//!   Registries API, and follows `app` (label `swarmkeeper.autodeploy=true`, nothing else: the
//!   default 1m interval).
//! - "CI" pushes 12 versions of a ~31 MiB image to the same tag, one after another. Each one
//!   is rolled out by auto-deploy alone. Version 7 exits 1: it is rolled back, remembered (a
//!   later check of the same digest says "failed before" and writes no spec) and version 8
//!   deploys.
//! - Never a task rejected ("No such image", "no space left on device"), and worker1's disk
//!   never above the high threshold plus one image.
//!
//! Pace: a version every [`PACE`] at most, about what a CI build that pushes a 30 MB image
//! takes. (The agent's default `--min-age 2m` does not hold the versions `app` has moved past:
//! only its newest `--rollback-reserve` versions and an image no task has run yet wait.)
//!
//! Runs as root (CI does); skips otherwise. About six minutes plus the static build. Figures
//! are printed: `cargo test -p swarmkeeper-cli --test seed_chain -- --nocapture`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::server::Server;
use support::{
    build, fs_space, is_root, output_text, tempdir, usage_percent, DiskSampler, SwarmLab,
};

const VERSIONS: usize = 12;
const BROKEN: usize = 7;
const LAYER_MIB: usize = 30;
const PACE: Duration = Duration::from_secs(30);
const MIB: u64 = 1 << 20;
const SMALL: &str = "worker1";
const SERVICE: &str = "app";
const USER: &str = "ci";
const PASSWORD: &str = "seed-chain-registry-pw";
/// The agent's default high threshold (`deploy/swarmkeeper.yml`).
const HIGH_PERCENT: u64 = 85;

/// CI: builds version `n` on the manager (busybox and `LAYER_MIB` MiB of its own; version
/// [`BROKEN`]'s file name ends in `broken`, which makes the service's command exit 1), pushes
/// it as `REGISTRY/app:stable` and removes it from the manager. Returns the pushed digest.
fn push_version(lab: &SwarmLab, n: usize) -> String {
    let registry = lab.registry();
    let suffix = if n == BROKEN { "-broken" } else { "" };
    let built = format!("{registry}/app:v{n}{suffix}");
    let tag = format!("{registry}/app:stable");
    build(lab.host("manager"), &built, None, LAYER_MIB, &[]);
    lab.docker("manager", &["tag", &built, &tag]);
    let out = Command::new("timeout")
        .args(["120", "docker", "push", "-q", &tag])
        .env("DOCKER_HOST", lab.host("manager"))
        .output()
        .expect("run docker push");
    assert!(out.status.success(), "push {tag}: {}", output_text(&out));
    let digests = lab.docker(
        "manager",
        &[
            "image",
            "inspect",
            "-f",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            &tag,
        ],
    );
    let digest = digests
        .lines()
        .find_map(|d| d.strip_prefix(&format!("{registry}/app@")))
        .unwrap_or_else(|| panic!("no digest for {tag}: {digests}"))
        .to_string();
    lab.docker("manager", &["image", "rm", "-f", &built, &tag]);
    digest
}

/// The service's image as its spec says (`REGISTRY/app:stable@sha256:…`).
fn spec_image(lab: &SwarmLab) -> String {
    lab.docker(
        "manager",
        &[
            "service",
            "inspect",
            "-f",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            SERVICE,
        ],
    )
}

/// Whether a task of the service runs `digest` on the small worker.
fn runs(lab: &SwarmLab, digest: &str) -> bool {
    lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}} {{.Image}}",
            SERVICE,
        ],
    )
    .lines()
    .any(|l| l.starts_with(&format!("{} Running", lab.hostname(SMALL))) && l.ends_with(digest))
}

/// Task errors Swarm still lists that say a pull failed.
fn rejections(lab: &SwarmLab) -> Vec<String> {
    lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.CurrentState}}: {{.Error}}",
            SERVICE,
        ],
    )
    .lines()
    .filter(|l| {
        l.contains("No such image") || l.contains("no space left") || l.contains("Rejected")
    })
    .map(str::to_string)
    .collect()
}

/// `GET /api/services/app` as the admin.
fn service_view(server: &Server, token: &str) -> Value {
    let (status, body) = server.get(&format!("/api/services/{SERVICE}"), token);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn post(server: &Server, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = server.call(
        &format!("POST {path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        &body.to_string(),
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// One version's figures.
struct Step {
    n: usize,
    push: Duration,
    /// End of the push → the service's spec names the new digest (the rollout started).
    started: Duration,
    /// End of the push → a task runs it on the small worker (or, for the broken one, the
    /// rollback ran the previous version again and the digest is remembered).
    done: Duration,
    usage: u64,
}

#[test]
fn auto_deploy_rolls_out_twelve_pushes_on_a_small_worker_at_default_settings() {
    if !is_root() {
        eprintln!("skipped: the Swarm lab (lab/lab.sh) needs root");
        return;
    }
    let start = Instant::now();
    let dir = tempdir("seed-chain");

    // The server first: the registry sends it notifications with its hook token, which it
    // makes. It reaches the lab's manager through that socket once the lab is up.
    let name = format!("seed{}", std::process::id());
    let manager = format!("unix:///run/swarmkeeper-swarm/{name}/nodes/manager/run/docker.sock");
    std::fs::write(
        dir.join("secret-key"),
        "seed chain: a sealing key of 32 bytes or more",
    )
    .unwrap();
    let state = dir.join("server");
    std::fs::create_dir_all(&state).unwrap();
    let server = Server::start_with(
        &state,
        &[
            ("DOCKER_HOST", manager.as_str()),
            (
                "SWARMKEEPER_SECRET_KEY_FILE",
                dir.join("secret-key").to_str().unwrap(),
            ),
        ],
    );
    let session = server.login();
    let admin = server.token(&session, "seed-chain");
    let (status, created) = post(&server, "/api/registries/hook-token", &admin, &json!({}));
    assert_eq!(status, 201, "{created}");
    let hook_token = created["token"].as_str().unwrap().to_string();
    let hook_url = format!("http://127.0.0.1:{}/api/hooks/registry", server.port());

    let lab = SwarmLab::up(
        "seed",
        &[
            "--workers",
            "1",
            "--worker-disk",
            "256m",
            "--disk",
            "manager=1g",
            "--registry-auth",
            &format!("{USER}:{PASSWORD}"),
            "--registry-notify",
            &hook_url,
            "--registry-notify-token",
            &hook_token,
        ],
    );
    assert_eq!(
        lab.host("manager"),
        manager,
        "the lab's manager socket moved"
    );
    let config = dir.join("docker");
    std::fs::create_dir_all(&config).unwrap();
    lab.login(&config, USER, PASSWORD);
    // This process's docker CLI pushes (and deploys the agent) with these credentials.
    std::env::set_var("DOCKER_CONFIG", &config);
    let (status, added) = post(
        &server,
        "/api/registries",
        &admin,
        &json!({"host": lab.registry(), "kind": "password", "username": USER, "password": PASSWORD}),
    );
    assert_eq!(status, 201, "{added}");
    assert!(!added.to_string().contains(PASSWORD), "{added}");

    // The agent on every node, every option at its default.
    let agent_image = lab.push_agent_image();
    lab.deploy_agent(&agent_image, &[]);
    lab.docker(
        "manager",
        &["service", "scale", "-d", "swarmkeeper_server=0"],
    );
    lab.wait_agents(Duration::from_secs(90));
    let setup = start.elapsed();

    // Version 1, deployed by hand with the credentials, then followed.
    let sampler = DiskSampler::start(&lab.data(SMALL), Duration::from_millis(100));
    let mut digests = vec![push_version(&lab, 1)];
    let constraint = format!("node.labels.lab.node=={SMALL}");
    let out = Command::new("timeout")
        .args(["120", "docker", "service", "create", "--detach=false", "-q"])
        .args(["--with-registry-auth", "--name", SERVICE])
        .args(["--label", "swarmkeeper.autodeploy=true"])
        .args(["--constraint", &constraint])
        // The service's own rollout settings, as a team running 30 MB versions would pick
        // them; swarmkeeper's are its defaults.
        .args(["--update-monitor", "3s", "--stop-grace-period", "1s"])
        .arg(format!("{}/app:stable", lab.registry()))
        .args(["/bin/busybox", "sh", "-c"])
        .arg(
            "for f in /blob-*; do case $f in *broken) echo broken version; exit 1;; esac; done; \
             trap 'exit 0' TERM; /bin/busybox sleep 3600 & wait",
        )
        .env("DOCKER_HOST", lab.host("manager"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "service create: {}",
        output_text(&out)
    );
    assert!(runs(&lab, &digests[0]), "version 1 does not run on {SMALL}");
    wait("the server follows app", Duration::from_secs(40), || {
        service_view(&server, &admin)["autodeploy"]["enabled"] == true
    });

    let mut steps = Vec::new();
    let mut last_push = Instant::now();
    for n in 2..=VERSIONS {
        if let Some(rest) = PACE.checked_sub(last_push.elapsed()) {
            std::thread::sleep(rest);
        }
        last_push = Instant::now();
        let before = spec_image(&lab);
        let digest = push_version(&lab, n);
        let push = last_push.elapsed();
        let pushed = Instant::now();
        digests.push(digest.clone());
        let started = wait(
            &format!("version {n}: auto-deploy starts the rollout"),
            Duration::from_secs(90),
            || spec_image(&lab) != before,
        );
        assert!(
            spec_image(&lab).ends_with(&digest),
            "version {n}: the spec moved to {} instead of {digest}",
            spec_image(&lab)
        );
        if n == BROKEN {
            let previous = digests[n - 2].clone();
            wait(
                &format!("version {n} (broken) rolled back and remembered"),
                Duration::from_secs(120),
                || {
                    let view = service_view(&server, &admin);
                    view["autodeploy"]["failed"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["digest"] == digest.as_str()))
                        && spec_image(&lab).ends_with(&previous)
                        && runs(&lab, &previous)
                },
            );
        } else {
            wait(
                &format!("version {n} runs on {SMALL}"),
                Duration::from_secs(120),
                || runs(&lab, &digest),
            );
        }
        let done = pushed.elapsed();
        let rejected = rejections(&lab);
        let (capacity, available) = fs_space(&lab.data(SMALL));
        assert!(
            rejected.is_empty(),
            "after version {n}, tasks were rejected on {SMALL} ({}% used): {rejected:?}",
            usage_percent(capacity, available)
        );
        eprintln!(
            "version {n}: pushed in {push:.1?}, rollout started {started:.1?} after, {} {done:.1?} after; {SMALL} {}% used",
            if n == BROKEN { "rolled back" } else { "running" },
            usage_percent(capacity, available)
        );
        if started > Duration::from_secs(10) {
            eprintln!(
                "  the rollout of version {n} waited: the last checks {}",
                service_view(&server, &admin)["autodeploy"]["recent_checks"]
            );
        }
        steps.push(Step {
            n,
            push,
            started,
            done,
            usage: usage_percent(capacity, available),
        });

        if n == BROKEN {
            // The broken digest is remembered: a check of the same tag (CI's hook of the
            // service) says "failed before; waiting for a newer push" and writes no spec.
            let (status, created) = post(
                &server,
                &format!("/api/services/{SERVICE}/hook-token"),
                &admin,
                &json!({}),
            );
            assert_eq!(status, 201, "{created}");
            let service_token = created["token"].as_str().unwrap().to_string();
            let version = || {
                lab.docker(
                    "manager",
                    &["service", "inspect", "-f", "{{.Version.Index}}", SERVICE],
                )
            };
            let version_before = version();
            let (status, answer) = post(
                &server,
                &format!("/api/hooks/services/{SERVICE}"),
                &service_token,
                &json!({}),
            );
            assert_eq!(status, 202, "{answer}");
            wait(
                "a check after the rollback says known bad",
                Duration::from_secs(30),
                || {
                    service_view(&server, &admin)["autodeploy"]["recent_checks"][0]["outcome"]
                        .as_str()
                        .is_some_and(|o| o.starts_with("failed before"))
                },
            );
            assert_eq!(
                version(),
                version_before,
                "the known-bad digest was deployed again"
            );
        }
    }
    let chain = start.elapsed() - setup;
    std::thread::sleep(Duration::from_secs(1));
    let samples = sampler.stop();
    let capacity = samples[0].1;
    let most_used = samples.iter().map(|s| s.1 - s.2).max().unwrap();
    let peak = samples
        .iter()
        .map(|s| usage_percent(s.1, s.2))
        .max()
        .unwrap();
    let image_bytes = (LAYER_MIB as u64 + 1) * MIB;
    let limit = capacity * HIGH_PERCENT / 100 + image_bytes;

    eprintln!("seed chain on lab {} (worker {SMALL}: 256 MiB tmpfs, agent and server at their defaults, registry with htpasswd and notifications):", lab.name);
    eprintln!("  version  push     push->rollout started  push->running (7: rolled back, remembered)  {SMALL} used");
    for s in &steps {
        eprintln!(
            "  {:>7}  {:>5.1}s  {:>20.1}s  {:>42.1}s  {:>4}%",
            if s.n == BROKEN {
                format!("{}*", s.n)
            } else {
                s.n.to_string()
            },
            s.push.as_secs_f64(),
            s.started.as_secs_f64(),
            s.done.as_secs_f64(),
            s.usage
        );
    }
    let mut started: Vec<f64> = steps.iter().map(|s| s.started.as_secs_f64()).collect();
    started.sort_by(f64::total_cmp);
    let mut running: Vec<f64> = steps
        .iter()
        .filter(|s| s.n != BROKEN)
        .map(|s| s.done.as_secs_f64())
        .collect();
    running.sort_by(f64::total_cmp);
    eprintln!(
        "  push -> rollout started (registry notification): median {:.1}s, max {:.1}s; push -> running: median {:.1}s, max {:.1}s",
        started[started.len() / 2],
        started[started.len() - 1],
        running[running.len() / 2],
        running[running.len() - 1]
    );
    eprintln!(
        "  {SMALL}: peak {peak}% ({} MiB used of {} MiB; limit high threshold + one image = {} MiB), {} samples",
        most_used / MIB,
        capacity / MIB,
        limit / MIB,
        samples.len()
    );
    eprintln!(
        "  setup {setup:.0?} (server, lab, agent image, agents), chain {chain:.0?}, total {:.0?}",
        start.elapsed()
    );
    assert!(
        most_used <= limit,
        "{SMALL} used {} MiB, above the high threshold plus one image ({} MiB)",
        most_used / MIB,
        limit / MIB
    );
    server.stop();
    std::fs::remove_dir_all(&dir).ok();
}
