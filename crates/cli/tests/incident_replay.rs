//! The seed incident, end to end, on a real multi-node swarm (`lab/lab.sh`): a worker with a
//! 256 MiB disk runs a service that is updated after each push of a new 30 MiB version, as a CI
//! pipeline with auto deploy does.
//!
//! 1. Without the agent the worker's disk fills up and its tasks are rejected ("No such image",
//!    "no space left on device"): the test can fail.
//! 2. With the agent deployed as a global service from `deploy/swarmkeeper.yml` with its
//!    **default** policy, all 15 versions converge, no task is rejected, and the previous
//!    version's image stays on the worker after every update (a rollback needs no pull).
//!
//! Runs as root (CI does); skips otherwise. About three minutes. Figures are printed:
//! `cargo test -p swarmkeeper-cli --test incident_replay -- --nocapture`.
//!
//! The default policy is 85 % / 80 % with a pull headroom of about twice the service's image
//! (each version is ~31 MiB, so ~62 MiB of the 256 MiB stay available): under 85 % alone the
//! incident happens at 84 % with five unused versions on the node. Nothing is tuned: versions
//! come every ~5 s here, all younger than the default `--min-age 2m`, and GC collects the
//! versions `app` has moved past beyond its rollback reserve (min-age holds only an image no
//! task has run yet, and the reserve).

mod support;

use std::time::{Duration, Instant, SystemTime};

use support::{fs_space, is_root, metric_sum, usage_percent, DiskSampler, EventFollower, SwarmLab};

const VERSIONS: usize = 15;
const LAYER_MIB: usize = 30;
const MIB: u64 = 1 << 20;
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
    let lab = SwarmLab::up_small_worker("rp");
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

    // --- 2. The same pipeline with the agent, at its default policy. -------------------------
    let run_start = Instant::now();
    lab.deploy_agent(&agent_image, &[("SWARMKEEPER_LOG", "info")]);
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
    let headroom = metric_sum(&metrics, "swarmkeeper_gc_pull_headroom_bytes") as u64;
    let usage = |s: &(SystemTime, u64, u64)| usage_percent(s.1, s.2);
    let peak = samples.iter().map(usage).max().unwrap();
    let least_free = samples.iter().map(|s| s.2).min().unwrap();
    let pulls: Vec<SystemTime> = events
        .iter()
        .filter(|e| e["Action"] == "pull")
        .map(event_time)
        .collect();
    let deletes = events.iter().filter(|e| e["Action"] == "delete").count();
    // For each pull after which less than the headroom was free: how long until it was back.
    // The timeline is printed whatever happens.
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
        let most_free = after.iter().map(|s| s.2).max().unwrap();
        let mut line = format!(
            "    pull {:>2} at {:>6.2}s: {:>2}% ({:>3} MiB free) -> up to {:>3} MiB free before the \
             next pull; deletes at {:?}",
            i + 1,
            secs(pulled),
            usage(first),
            first.2 / MIB,
            most_free / MIB,
            gone
        );
        if first.2 < headroom {
            match after.iter().find(|s| s.2 >= headroom) {
                Some(back) => {
                    let took = back.0.duration_since(pulled).unwrap_or_default();
                    line.push_str(&format!("; >= headroom after {took:.2?}"));
                    recoveries.push(took);
                }
                None => stuck.push(i + 1),
            }
        }
        timeline.push_str(&line);
        timeline.push('\n');
    }
    eprint!("timeline on {SMALL} (t = 0 at the first pull):\n{timeline}");
    recoveries.sort();
    let deleted = metric_sum(&metrics, "swarmkeeper_gc_images_deleted_total");
    let freed = metric_sum(&metrics, "swarmkeeper_gc_freed_bytes_total");
    let containers = metric_sum(&metrics, "swarmkeeper_gc_containers_removed_total");
    eprintln!(
        "with the agent at its default policy (85/80, pull headroom {} MiB): {VERSIONS}/{VERSIONS} \
         versions converged in {converged_in:.0?}, no task rejected, the previous version on \
         {SMALL} after every update",
        headroom / MIB
    );
    eprintln!(
        "  peak usage {peak}%, least free {} MiB ({} samples); pulls {}; short of the headroom \
         after {} of them; back to the headroom: max {:.2?}, median {:.2?}",
        least_free / MIB,
        samples.len(),
        pulls.len(),
        recoveries.len() + stuck.len(),
        recoveries.last().copied().unwrap_or_default(),
        recoveries
            .get(recoveries.len() / 2)
            .copied()
            .unwrap_or_default(),
    );
    eprintln!(
        "  agent metrics on {SMALL}: images deleted {deleted}, bytes freed {freed} ({:.1} MiB), \
         dead containers removed {containers}; image delete events {deletes}",
        freed / 1048576.0
    );

    // `gc plan` on the worker plans with the agent's policy (found through its container's
    // label and mounts), not the defaults of the command.
    let plan = lab.exec(
        SMALL,
        &[env!("CARGO_BIN_EXE_swarmkeeper"), "gc", "plan", "--json"],
    );
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(plan.status.success(), "gc plan on {SMALL}: {stderr}");
    assert!(stderr.contains("the agent's policy"), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        plan["pull_headroom_bytes"].as_u64(),
        Some(headroom),
        "{plan}"
    );
    eprintln!("incident replay total {:.0?}", start.elapsed());

    // About twice a version (31 MiB each, shared layers included).
    assert!(
        (55 * MIB..=70 * MIB).contains(&headroom),
        "the agent's pull headroom is {headroom} bytes"
    );
    assert!(peak < 100, "the disk filled up");
    assert!(
        stuck.is_empty(),
        "after pulls {stuck:?} less than the headroom stayed free until the next pull"
    );
    assert!(
        deleted >= 1.0 && freed > 0.0,
        "the agent never collected: the replay did not exercise GC\n{metrics}"
    );
    let slowest = recoveries.last().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(5),
        "the headroom took {slowest:?} to come back after a pull (target: under 5 s)"
    );
}
