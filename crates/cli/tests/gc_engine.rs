//! `swarmkeeper gc` against real engines with small tmpfs disks (lab/small-engine.sh).

mod support;

use std::collections::BTreeSet;

use support::{json, tempdir, Lab};

fn ids(v: &serde_json::Value, key: &str) -> BTreeSet<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap()
}

#[test]
fn gc_run_deletes_only_unused_unpinned_images() {
    let lab = Lab::up("gcrun", "256m");
    let running = lab.build("app/running:1", 2, &[]);
    let stopped = lab.build("app/stopped:1", 2, &[]);
    let created = lab.build("app/created:1", 2, &[]);
    let unused_a = lab.build("app/unused:a", 2, &[]);
    let unused_b = lab.build("app/unused:b", 2, &[]);
    let labelled = lab.build("app/labelled:1", 2, &["swarmkeeper.gc.pin=true"]);
    let globbed = lab.build("base/keep:1", 2, &[]);
    lab.docker(&["run", "-d", "app/running:1", "/bin/busybox", "sleep", "600"]);
    lab.docker(&["run", "app/stopped:1", "/bin/busybox", "true"]);
    lab.docker(&["create", "app/created:1", "/bin/busybox", "true"]);
    let state = tempdir("gcrun-state");
    let state = state.to_str().unwrap();
    let policy = [
        "--high-threshold",
        "0",
        "--low-threshold",
        "0",
        "--min-age",
        "0s",
        "--pin",
        "base/*",
        "--state-dir",
        state,
    ];

    let dry = lab.swarmkeeper(&[&["gc", "run", "--dry-run", "--json"][..], &policy].concat());
    assert_eq!(code(&dry), 0, "{}", String::from_utf8_lossy(&dry.stderr));
    let plan = json(&dry);
    assert_eq!(
        ids(&plan, "delete"),
        BTreeSet::from([unused_a.clone(), unused_b.clone()])
    );
    let kept = |reason: &str| -> BTreeSet<String> {
        plan["keep"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["reason"] == reason)
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kept("in-use"),
        BTreeSet::from([running.clone(), stopped.clone(), created.clone()])
    );
    assert_eq!(
        kept("pinned"),
        BTreeSet::from([labelled.clone(), globbed.clone()])
    );
    assert!(lab.has_image(&unused_a), "a dry run deleted something");

    // Low 0% can never be reached: GC does what it can and reports the shortfall with exit 1.
    let run = lab.swarmkeeper(&[&["gc", "run", "--json"][..], &policy].concat());
    assert_eq!(code(&run), 1, "{}", String::from_utf8_lossy(&run.stderr));
    let outcome = json(&run);
    assert_eq!(
        ids(&outcome, "deleted"),
        BTreeSet::from([unused_a.clone(), unused_b.clone()])
    );
    assert!(outcome["shortfall_bytes"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&run.stderr).contains("GC fell short"));
    let left: BTreeSet<String> = lab.image_ids().into_iter().collect();
    assert_eq!(
        left,
        BTreeSet::from([running, stopped, created, labelled, globbed])
    );
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn shared_layers_are_freed_for_real_and_gc_stops_at_the_low_threshold() {
    let lab = Lab::up("gcshare", "256m");
    lab.build("base/os:1", 40, &[]);
    let a = lab.build_on("base/os:1", "app/a:1", 1);
    let b = lab.build_on("base/os:1", "app/b:1", 1);
    lab.docker(&["rmi", "base/os:1"]);
    // Unrelated, used recently: must survive because a and b free enough once both are gone.
    let other = lab.build("app/other:1", 10, &[]);
    lab.docker(&["run", "--rm", "app/other:1", "/bin/busybox", "true"]);

    let usage = lab.usage_percent();
    assert!(
        usage >= 20,
        "the images should fill the small disk: {usage}%"
    );
    // Ask for ~12% (30 MiB) back. Each of a and b has only 1 MiB of its own; only deleting both
    // frees the 40 MiB base they share. The kubelet would count 41 MiB for the first one alone
    // and stop with almost nothing freed.
    let low = (usage - 12).to_string();
    let high = usage.to_string();
    let state = tempdir("gcshare-state");
    let out = lab.swarmkeeper(&[
        "gc",
        "run",
        "--json",
        "--high-threshold",
        &high,
        "--low-threshold",
        &low,
        "--min-age",
        "0s",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let outcome = json(&out);
    assert_eq!(ids(&outcome, "deleted"), BTreeSet::from([a, b]));
    assert!(
        outcome["bytes_freed"].as_u64().unwrap() >= 40 << 20,
        "{outcome}"
    );
    assert!(lab.has_image(&other));
    assert!(lab.usage_percent() <= usage - 12);
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn rollback_images_are_the_last_resort() {
    let lab = Lab::up("gcres", "256m");
    let v1 = lab.build("app/web:1", 15, &[]);
    let v2 = lab.build("app/web:2", 15, &[]);
    let v3 = lab.build("app/web:3", 15, &[]);
    let junk = lab.build("app/junk:1", 15, &[]);
    // Task containers as Swarm labels them: the agent learns each service's history from them.
    for (n, tag) in [(1, "app/web:1"), (2, "app/web:2"), (3, "app/web:3")] {
        let task = format!("t{n}");
        let labels = [
            "--label".to_string(),
            "com.docker.swarm.service.name=web".to_string(),
            "--label".to_string(),
            format!("com.docker.swarm.task.id={task}"),
            "--label".to_string(),
            format!("com.docker.swarm.task.name=web.1.{task}"),
        ];
        let mut args: Vec<&str> = vec!["run", "--name", &task];
        args.extend(labels.iter().map(String::as_str));
        args.extend([tag, "/bin/busybox", "true"]);
        lab.docker(&args);
        // The engine lists container creation times in whole seconds.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let state = tempdir("gcres-state");
    let state = state.to_str().unwrap();
    let snap = lab.swarmkeeper(&["gc", "snapshot", "--state-dir", state]);
    assert_eq!(code(&snap), 0, "{}", String::from_utf8_lossy(&snap.stderr));
    let snapshot = json(&snap);
    assert_eq!(
        snapshot["service_image_history"]["web"],
        serde_json::json!([v3.clone(), v2.clone(), v1.clone()])
    );
    lab.docker(&["rm", "t1", "t2", "t3"]);

    let usage = lab.usage_percent();
    let run = |high: u64, low: u64| {
        let out = lab.swarmkeeper(&[
            "gc",
            "run",
            "--json",
            "--high-threshold",
            &high.to_string(),
            "--low-threshold",
            &low.to_string(),
            "--min-age",
            "0s",
            "--state-dir",
            state,
        ]);
        (code(&out), json(&out))
    };
    // Asking for more than junk and v1 free, with the disk below the high threshold once they
    // are gone: v2 and v3, the service's rollback images, stay and GC reports the shortfall.
    let (status, outcome) = run(usage, usage - 20);
    assert_eq!(status, 1, "{outcome}");
    assert_eq!(ids(&outcome, "deleted"), BTreeSet::from([junk, v1]));
    assert!(lab.has_image(&v2) && lab.has_image(&v3));

    // When the disk would stay above the high threshold, the oldest rollback image goes first.
    let usage = lab.usage_percent();
    let (_, outcome) = run(usage - 1, usage - 4);
    let deleted = outcome["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{outcome}");
    assert_eq!(deleted[0]["id"], v2.as_str());
    assert_eq!(deleted[0]["reason"], "space-reserve");
    assert!(lab.has_image(&v3));
    std::fs::remove_dir_all(state).ok();
}

#[test]
fn dead_task_containers_go_and_the_newest_of_each_slot_stays() {
    let lab = Lab::up("gcctr", "256m");
    lab.build("app/web:1", 1, &[]);
    let mut tasks = Vec::new();
    for n in 1..=3 {
        let task = format!("web.1.t{n}");
        let id = lab.docker(&[
            "run",
            "-d",
            "--label",
            "com.docker.swarm.service.name=web",
            "--label",
            &format!("com.docker.swarm.task.id=t{n}"),
            "--label",
            &format!("com.docker.swarm.task.name={task}"),
            "app/web:1",
            "/bin/busybox",
            "true",
        ]);
        lab.docker(&["wait", &id]);
        tasks.push(id);
    }
    let standalone = lab.docker(&["run", "-d", "app/web:1", "/bin/busybox", "true"]);
    lab.docker(&["wait", &standalone]);
    let state = tempdir("gcctr-state");
    let state = state.to_str().unwrap();
    let base = [
        "gc",
        "run",
        "--json",
        "--container-min-age",
        "0s",
        "--state-dir",
        state,
    ];

    let out = lab.swarmkeeper(&base);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let removed = ids(&json(&out), "removed_containers");
    assert_eq!(
        removed,
        BTreeSet::from([tasks[0].clone(), tasks[1].clone()])
    );
    let left = lab.docker(&["ps", "-aq", "--no-trunc"]);
    assert!(
        left.contains(&tasks[2]) && left.contains(&standalone),
        "{left}"
    );

    let out = lab.swarmkeeper(&[&base[..], &["--prune-standalone-containers"]].concat());
    assert_eq!(
        ids(&json(&out), "removed_containers"),
        BTreeSet::from([standalone])
    );
    std::fs::remove_dir_all(state).ok();
}
