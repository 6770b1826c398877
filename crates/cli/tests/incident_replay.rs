//! The seed incident, end to end, on a real multi-node swarm (`lab/lab.sh`): a worker with a
//! 256 MiB disk runs a service that is updated after each push of a new 30 MiB version, as a CI
//! pipeline with auto deploy does.
//!
//! 1. Without the agent the worker's disk fills up and its tasks are rejected ("No such image",
//!    "no space left on device"): the test can fail.
//! 2. With the agent deployed as a global service from `deploy/swarmkeeper.yml`, all 15
//!    versions converge, no task is rejected, and the previous version's image stays on the
//!    worker after every update (a rollback needs no pull).
//!
//! Runs as root (CI does); skips otherwise. About two minutes. Figures are printed:
//! `cargo test -p swarmkeeper-cli --test incident_replay -- --nocapture`.
//!
//! The agent's thresholds for this 256 MiB disk (each version is ~33 MiB, ~13 % of it):
//! - `SWARMKEEPER_HIGH_THRESHOLD=60`, `SWARMKEEPER_LOW_THRESHOLD=45`: collect when a fifth
//!   version arrives (~64 %), down to three (~40 %); four (~52 %) are left alone.
//! - `SWARMKEEPER_MIN_AGE=5s`: a version just pulled is safe until its container exists (it is
//!   in use from then on); versions come every ~5 s here, not every few minutes.
//! - `SWARMKEEPER_CONTAINER_MIN_AGE=0s`: the stopped task containers of old versions go at once
//!   (the newest one of the slot stays), so that their images can be collected: a new version
//!   comes every 2.5-5 s here, faster than the default 1m.
//! - `SWARMKEEPER_ROLLBACK_RESERVE=2` (the default): the running and the previous version stay.

mod support;

use std::time::{Duration, Instant, SystemTime};

use support::{fs_space, is_root, metric_sum, usage_percent, DiskSampler, EventFollower, SwarmLab};

const VERSIONS: usize = 15;
const LAYER_MIB: usize = 30;
const HIGH: u64 = 60;
const LOW: u64 = 45;
const SMALL: &str = "worker1";
const SERVICE: &str = "app";

/// The versions pushed so far: `REGISTRY/app@sha256:…` of version n at index n-1.
struct Pipeline<'a> {
    lab: &'a SwarmLab,
    pushed: Vec<String>,
}

impl Pipeline<'_> {
    /// Builds and pushes version `n` if it is not in the registry yet (the CI part).
    fn push(&mut self, n: usize) -> &str {
        while self.pushed.len() < n {
            let v = self.pushed.len() + 1;
            let reference = self.lab.push_image(&format!("app:v{v}"), LAYER_MIB);
            self.pushed.push(reference);
        }
        &self.pushed[n - 1]
    }

    fn tag(&self, n: usize) -> String {
        format!("{}/app:v{n}", self.lab.registry())
    }
}

/// `docker service update --image REGISTRY/app:vN` (the auto-deploy part), waiting for the
/// update to finish; returns whether the CLI said it converged.
fn update(lab: &SwarmLab, image: &str) -> bool {
    let out = std::process::Command::new("timeout")
        .args([
            "120",
            "docker",
            "service",
            "update",
            "--detach=false",
            "-q",
            "--image",
            image,
            SERVICE,
        ])
        .env("DOCKER_HOST", lab.host("manager"))
        .output()
        .expect("run docker service update");
    out.status.success()
}

fn create_service(lab: &SwarmLab, image: &str) -> bool {
    let constraint = format!("node.labels.lab.node=={SMALL}");
    let out = std::process::Command::new("timeout")
        .args([
            "120",
            "docker",
            "service",
            "create",
            "--detach=false",
            "-q",
            "--name",
            SERVICE,
            "--constraint",
            &constraint,
            "--update-delay",
            "0s",
            "--update-monitor",
            "1s",
            "--stop-grace-period",
            "2s",
            image,
            "/bin/busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; /bin/busybox sleep 3600 & wait",
        ])
        .env("DOCKER_HOST", lab.host("manager"))
        .output()
        .expect("run docker service create");
    out.status.success()
}

/// Errors of the service's tasks (the ones Swarm still lists).
fn task_errors(lab: &SwarmLab) -> Vec<String> {
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
    .filter(|l| !l.trim_end().ends_with(':') || l.contains("Rejected") || l.contains("Failed"))
    .map(str::to_string)
    .collect()
}

/// The image ids of the service's running containers on the small worker.
fn running_images(lab: &SwarmLab) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={SERVICE}");
    let ids = lab.docker(SMALL, &["ps", "-q", "--filter", &filter]);
    ids.lines()
        .map(|id| lab.docker(SMALL, &["inspect", "-f", "{{.Image}}", id]))
        .collect()
}

fn small_usage(lab: &SwarmLab) -> u64 {
    let (capacity, available) = fs_space(&lab.data(SMALL));
    usage_percent(capacity, available)
}

fn remove_service(lab: &SwarmLab) {
    lab.docker("manager", &["service", "rm", SERVICE]);
    let filter = format!("label=com.docker.swarm.service.name={SERVICE}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lab
        .docker(SMALL, &["ps", "-aq", "--filter", &filter])
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the service's containers are still on {SMALL}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn event_time(e: &serde_json::Value) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(e["timeNano"].as_u64().unwrap_or(0))
}

#[test]
fn the_disk_full_incident_happens_without_the_agent_and_not_with_it() {
    if !is_root() {
        eprintln!("skipped: the Swarm lab (lab/lab.sh) needs root");
        return;
    }
    let start = Instant::now();
    // The manager and the other worker get disks of their own too, so that their agents do not
    // measure (and try to collect on) the host's disk.
    let lab = SwarmLab::up(
        "rp",
        &[
            "--workers",
            "2",
            "--worker-disk",
            "256m",
            "--disk",
            "manager=1g",
            "--disk",
            "worker2=1g",
        ],
    );
    let agent_image = lab.push_agent_image();
    let mut ci = Pipeline {
        lab: &lab,
        pushed: Vec::new(),
    };

    // --- 1. The control run: no agent. -------------------------------------------------
    let control_start = Instant::now();
    ci.push(1);
    assert!(
        create_service(&lab, &ci.tag(1)),
        "the first version does not start"
    );
    let mut failed = None;
    for n in 2..=12 {
        ci.push(n);
        let converged = update(&lab, &ci.tag(n));
        let errors: Vec<String> = task_errors(&lab)
            .into_iter()
            .filter(|e| e.contains("No such image") || e.contains("no space left on device"))
            .collect();
        if !errors.is_empty() {
            failed = Some((n, converged, small_usage(&lab), errors));
            break;
        }
    }
    let (failed_at, converged, usage_at_failure, errors) = failed.expect(
        "without the agent the small worker never failed: the replay does not reproduce the incident",
    );
    eprintln!(
        "control run (no agent): version {failed_at} failed on {SMALL} at {usage_at_failure}% usage \
         (update converged: {converged}) after {:.0?}:\n  {}",
        control_start.elapsed(),
        errors.join("\n  ")
    );
    remove_service(&lab);
    // A pull Swarm retried for the rejected task may still be landing: prune until the disk
    // is back to (nearly) empty.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        lab.docker(SMALL, &["image", "prune", "-af"]);
        if small_usage(&lab) <= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{SMALL} stays at {}% after the control run",
            small_usage(&lab)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("{SMALL} cleaned: {}% used", small_usage(&lab));

    // --- 2. The same pipeline with the agent. ---------------------------------------------
    let run_start = Instant::now();
    lab.deploy_agent(
        &agent_image,
        &[
            ("SWARMKEEPER_HIGH_THRESHOLD", &HIGH.to_string()),
            ("SWARMKEEPER_LOW_THRESHOLD", &LOW.to_string()),
            ("SWARMKEEPER_MIN_AGE", "5s"),
            ("SWARMKEEPER_CONTAINER_MIN_AGE", "0s"),
            ("SWARMKEEPER_LOG", "info"),
        ],
    );
    lab.wait_agents(Duration::from_secs(60));
    let events = EventFollower::start(
        lab.host(SMALL),
        &["type=image", "event=pull", "event=delete"],
    );
    let sampler = DiskSampler::start(&lab.data(SMALL), Duration::from_millis(25));

    assert!(
        create_service(&lab, &ci.tag(1)),
        "the first version does not start"
    );
    for n in 2..=VERSIONS {
        let pushed = ci.push(n).to_string();
        let converged = update(&lab, &ci.tag(n));
        let errors = task_errors(&lab);
        assert!(
            converged && errors.is_empty(),
            "version {n} did not converge on {SMALL} ({}% used): {errors:?}",
            small_usage(&lab)
        );
        let image_id = lab.docker(SMALL, &["image", "inspect", "-f", "{{.Id}}", &pushed]);
        let running = running_images(&lab);
        assert!(
            running == [image_id.clone()],
            "version {n}: {SMALL} runs {running:?}, expected {image_id} ({pushed})"
        );
        let previous = &ci.pushed[n - 2];
        assert!(
            lab.has_image(SMALL, previous),
            "after the update to version {n}, version {} ({previous}) is gone from {SMALL}: \
             a rollback would need a pull",
            n - 1
        );
    }
    let converged_in = run_start.elapsed();
    // Let the last pass finish before the figures are read.
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.stop();
    let events = events.events();
    let metrics = lab
        .metrics(SMALL)
        .expect("the agent on the small worker answers");

    // --- 3. Figures. --------------------------------------------------------------------------
    let usage = |s: &(SystemTime, u64, u64)| usage_percent(s.1, s.2);
    let peak = samples.iter().map(usage).max().unwrap();
    let pulls: Vec<SystemTime> = events
        .iter()
        .filter(|e| e["Action"] == "pull")
        .map(event_time)
        .collect();
    let deletes = events.iter().filter(|e| e["Action"] == "delete").count();
    // For each pull after which the disk was at or above the high threshold: how long until
    // it was back at or under the low one. The timeline is printed whatever happens.
    let t0 = pulls.first().copied().unwrap_or(SystemTime::now());
    let secs = |t: SystemTime| t.duration_since(t0).unwrap_or_default().as_secs_f64();
    let mut recoveries = Vec::new();
    let mut timeline = String::new();
    let mut stuck = Vec::new();
    for (i, &pulled) in pulls.iter().enumerate() {
        let next = pulls.get(i + 1).copied().unwrap_or(SystemTime::now());
        let after: Vec<_> = samples
            .iter()
            .filter(|s| s.0 >= pulled && s.0 < next)
            .collect();
        let Some(first) = after.first() else { continue };
        let gone: Vec<String> = events
            .iter()
            .filter(|e| e["Action"] == "delete" && event_time(e) >= pulled && event_time(e) < next)
            .map(|e| format!("{:.2}s", secs(event_time(e))))
            .collect();
        let lowest = after.iter().map(|s| usage(s)).min().unwrap();
        let mut line = format!(
            "    pull {:>2} at {:>6.2}s: {:>2}% -> lowest {:>2}% before the next pull; deletes at {:?}",
            i + 1,
            secs(pulled),
            usage(first),
            lowest,
            gone
        );
        if usage(first) >= HIGH {
            match after.iter().find(|s| usage(s) <= LOW) {
                Some(back) => {
                    let took = back.0.duration_since(pulled).unwrap_or_default();
                    line.push_str(&format!("; <= {LOW}% after {took:.2?}"));
                    recoveries.push(took);
                }
                None => stuck.push(i + 1),
            }
        }
        timeline.push_str(&line);
        timeline.push('\n');
    }
    eprint!("timeline on {SMALL} (t = 0 at the first pull):\n{timeline}");
    assert!(
        stuck.is_empty(),
        "after pulls {stuck:?} the disk stayed above {LOW}% until the next pull"
    );
    recoveries.sort();
    let deleted = metric_sum(&metrics, "swarmkeeper_gc_images_deleted_total");
    let deleted_space = metric_sum(
        &metrics,
        "swarmkeeper_gc_images_deleted_total{reason=\"space\"}",
    );
    let freed = metric_sum(&metrics, "swarmkeeper_gc_freed_bytes_total");
    let containers = metric_sum(&metrics, "swarmkeeper_gc_containers_removed_total");
    eprintln!(
        "with the agent (high {HIGH}%, low {LOW}%): {VERSIONS}/{VERSIONS} versions converged in \
         {converged_in:.0?}, no task rejected, the previous version on {SMALL} after every update"
    );
    eprintln!(
        "  peak usage {peak}% ({} samples); pulls {}; GC after {} of them; pull done -> usage <= \
         {LOW}%: max {:.2?}, median {:.2?}",
        samples.len(),
        pulls.len(),
        recoveries.len(),
        recoveries.last().copied().unwrap_or_default(),
        recoveries
            .get(recoveries.len() / 2)
            .copied()
            .unwrap_or_default(),
    );
    eprintln!(
        "  agent metrics on {SMALL}: images deleted {deleted} (space {deleted_space}), bytes freed \
         {freed} ({:.1} MiB), dead containers removed {containers}; image delete events {deletes}",
        freed / 1048576.0
    );
    eprintln!("incident replay total {:.0?}", start.elapsed());

    assert!(peak < 100, "the disk filled up");
    assert!(
        !recoveries.is_empty(),
        "the disk never reached {HIGH}%: the replay did not exercise GC"
    );
    let slowest = *recoveries.last().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "usage took {slowest:?} to get back under {LOW}% after a pull (target: under 5 s)"
    );
    assert!(deleted >= 1.0 && freed > 0.0, "{metrics}");
}
