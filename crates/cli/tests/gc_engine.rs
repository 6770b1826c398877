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

/// Three images built on each other (each adds 20 MiB to the one below), none used, loaded as
/// a pull would bring them (no parent links), and a 30 MiB image used recently. Freeing 45 MiB
/// takes the three: the first two free nothing alone, the third frees all the layers at once.
/// The plan counts it layer by layer, `gc run` does what the plan says and stops as soon as the
/// disk is at the low threshold, and the used image stays.
#[test]
fn a_chain_of_images_sharing_layers_goes_together_and_gc_stops_at_the_low_threshold() {
    let lab = Lab::up("gcchain", "256m");
    lab.build("chain/one:1", 20, &[]);
    lab.build_on("chain/one:1", "chain/two:1", 20);
    lab.build_on("chain/two:1", "chain/three:1", 20);
    let archive = tempdir("gcchain-archive").join("chain.tar");
    let archive = archive.to_str().unwrap();
    let chain = ["chain/one:1", "chain/two:1", "chain/three:1"];
    lab.docker(&[&["save", "-o", archive][..], &chain].concat());
    lab.docker(&[&["rmi"][..], &chain].concat());
    lab.docker(&["load", "-i", archive]);
    std::fs::remove_file(archive).ok();
    let chain_ids: Vec<String> = chain
        .iter()
        .map(|t| lab.docker(&["image", "inspect", "-f", "{{.Id}}", t]))
        .collect();
    let other = lab.build("app/other:1", 30, &[]);
    lab.docker(&["run", "--rm", "app/other:1", "/bin/busybox", "true"]);

    let usage = lab.usage_percent();
    let state = tempdir("gcchain-state");
    let state = state.to_str().unwrap();
    let mib = 1u64 << 20;
    // Low such that 45-55 MiB must go: the chain's 60 MiB suffice, other's 30 would not.
    let capacity = json(&lab.swarmkeeper(&["disk", "--json"]))["filesystem"]["capacity_bytes"]
        .as_u64()
        .unwrap();
    let low = usage - (45 * mib * 100).div_ceil(capacity);
    let policy = [
        "--high-threshold",
        &usage.to_string(),
        "--low-threshold",
        &low.to_string(),
        "--min-age",
        "0s",
        "--state-dir",
        state,
    ]
    .map(String::from);
    let policy: Vec<&str> = policy.iter().map(String::as_str).collect();

    let dry = lab.swarmkeeper(&[&["gc", "plan", "--json"][..], &policy].concat());
    assert_eq!(code(&dry), 0, "{}", String::from_utf8_lossy(&dry.stderr));
    let plan = json(&dry);
    assert_eq!(plan["accounting"], "layers", "{plan}");
    let planned: Vec<&str> = plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned.iter().copied().collect::<BTreeSet<_>>(),
        chain_ids
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        "{plan}"
    );
    let planned_bytes = plan["planned_free_bytes"].as_u64().unwrap();
    assert!(planned_bytes >= 60 * mib, "{plan}");
    assert_eq!(plan["shortfall_bytes"], 0, "{plan}");

    let run = lab.swarmkeeper(&[&["gc", "run", "--json"][..], &policy].concat());
    assert_eq!(code(&run), 0, "{}", String::from_utf8_lossy(&run.stderr));
    let outcome = json(&run);
    let deleted: Vec<&str> = outcome["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    // `docker load` links each image to its parent: the engine refuses the parents first,
    // and removes them, untagged, with the top of the chain.
    assert_eq!(
        deleted.iter().copied().collect::<BTreeSet<_>>(),
        planned.iter().copied().collect::<BTreeSet<_>>(),
        "the live pass does what the plan says: {outcome}"
    );
    assert!(
        outcome["failures"].as_array().unwrap().is_empty(),
        "{outcome}"
    );
    let freed = outcome["bytes_freed"].as_u64().unwrap();
    // What statvfs measured is what the layers said, give or take the image store's records.
    assert!(
        freed.abs_diff(planned_bytes) < 2 * mib,
        "planned {planned_bytes}, freed {freed}"
    );
    let after = lab.usage_percent();
    assert!(after <= low, "usage {after}% > low {low}%");
    assert!(lab.has_image(&other), "the used image was deleted");
    std::fs::remove_dir_all(state).ok();
}

/// POSTs a build context (a folder, sent as a tar) to the engine's BuildKit (`/build?version=2`),
/// as `DOCKER_BUILDKIT=1 docker build` does without a session; returns the engine's last line.
fn buildkit_build(lab: &Lab, dir: &std::path::Path, tag: &str) -> String {
    use std::io::{Read, Write};
    let tar = std::process::Command::new("tar")
        .args(["-C", dir.to_str().unwrap(), "-cf", "-", "."])
        .output()
        .expect("run tar");
    assert!(tar.status.success());
    let socket = lab.host.strip_prefix("unix://").unwrap();
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        stream,
        "POST /build?version=2&networkmode=none&t={tag} HTTP/1.1\r\nHost: docker\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tar.stdout.len()
    )
    .unwrap();
    stream.write_all(&tar.stdout).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("Successfully tagged"),
        "BuildKit build failed: {answer}"
    );
    answer
}

/// A node that builds (a CI runner on the swarm): under space pressure the build cache unused
/// for the build cache min-age goes first, with `/build/prune`, and an old unused image stays
/// when that is enough. The plan says so, the outcome and the run log count it.
#[test]
fn build_cache_goes_before_images_under_space_pressure() {
    let lab = Lab::up("gcbuild", "256m");
    let old = lab.build("app/old:1", 5, &[]);
    let context = tempdir("gcbuild-context");
    std::fs::copy("/bin/busybox", context.join("busybox")).unwrap();
    let blob = std::process::Command::new("head")
        .args(["-c", "30000000", "/dev/urandom"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(context.join("blob"), blob).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY blob /blob\n",
    )
    .unwrap();
    buildkit_build(&lab, &context, "ci/built:1");
    std::fs::remove_dir_all(&context).ok();
    // The records must be older than the min-age.
    std::thread::sleep(std::time::Duration::from_secs(2));

    let usage = lab.usage_percent();
    let state = tempdir("gcbuild-state");
    let state = state.to_str().unwrap();
    // 5% (about 13 MiB) must go: the unshared build cache (the build context, ~30 MiB) covers it.
    let policy = [
        "--high-threshold",
        &usage.to_string(),
        "--low-threshold",
        &(usage - 5).to_string(),
        "--min-age",
        "0s",
        "--build-cache-min-age",
        "1s",
        "--state-dir",
        state,
    ]
    .map(String::from);
    let policy: Vec<&str> = policy.iter().map(String::as_str).collect();

    let plan = json(&lab.swarmkeeper(&[&["gc", "plan", "--json"][..], &policy].concat()));
    let prune = &plan["prune_build_cache"];
    assert!(prune["bytes"].as_u64().unwrap() > 0, "{plan}");
    assert_eq!(prune["until"], "1s");
    assert!(plan["delete"].as_array().unwrap().is_empty(), "{plan}");

    let run = lab.swarmkeeper(&[&["gc", "run", "--json"][..], &policy].concat());
    let outcome = json(&run);
    assert_eq!(
        code(&run),
        0,
        "{}\n{plan}\n{outcome}\n{}",
        String::from_utf8_lossy(&run.stderr),
        lab.docker(&["system", "df", "-v"])
    );
    assert!(
        outcome["build_cache_freed_bytes"].as_u64().unwrap() >= 20 << 20,
        "{outcome}"
    );
    assert!(
        outcome["deleted"].as_array().unwrap().is_empty(),
        "{outcome}"
    );
    assert!(lab.has_image(&old));
    assert!(lab.usage_percent() <= usage - 5);
    std::fs::remove_dir_all(state).ok();
}

/// Containers logging with json-file and no max-size are reported by `disk`, with their size;
/// bounded ones are not; nothing is deleted.
#[test]
fn unbounded_json_file_logs_are_reported() {
    let lab = Lab::up("gclogs", "128m");
    lab.build("app/chatty:1", 0, &[]);
    let say = "i=0; while [ $i -lt 2000 ]; do echo line $i of a chatty log; i=$((i+1)); done";
    let unbounded = lab.docker(&[
        "run",
        "-d",
        "--log-driver",
        "json-file",
        "--name",
        "chatty",
        "app/chatty:1",
        "/bin/busybox",
        "sh",
        "-c",
        say,
    ]);
    let bounded = lab.docker(&[
        "run",
        "-d",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--name",
        "tidy",
        "app/chatty:1",
        "/bin/busybox",
        "sh",
        "-c",
        say,
    ]);
    lab.docker(&["wait", &unbounded]);
    lab.docker(&["wait", &bounded]);
    let disk = json(&lab.swarmkeeper(&["disk", "--json"]));
    let logs = disk["unbounded_logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{disk}");
    assert_eq!(logs[0]["container_id"], unbounded.as_str());
    assert_eq!(logs[0]["name"], "chatty");
    assert!(logs[0]["size_bytes"].as_u64().unwrap() > 50_000, "{disk}");
    assert!(disk["mount"]["fs_type"] == "tmpfs", "{disk}");
    let text = String::from_utf8(lab.swarmkeeper(&["disk"]).stdout).unwrap();
    assert!(text.contains("json-file logs without max-size"), "{text}");
    assert!(lab.docker(&["ps", "-aq"]).contains(&unbounded[..12]));
}

/// `gc plan` without policy flags plans with the policy the agent on the node runs with
/// (it writes it into its state directory); a flag given still wins.
#[test]
fn gc_plan_uses_the_agents_policy() {
    let lab = Lab::up("gcpol", "128m");
    let state = tempdir("gcpol-state");
    let state = state.to_str().unwrap();
    let agent = support::Agent::start(
        &lab.host,
        &[
            "--state-dir",
            state,
            "--interval",
            "1h",
            "--high-threshold",
            "61",
            "--low-threshold",
            "41",
            "--pull-headroom",
            "7m",
        ],
    );
    let out = lab.swarmkeeper(&["gc", "plan", "--json", "--state-dir", state]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let plan = json(&out);
    assert_eq!(
        (
            &plan["high_threshold_percent"],
            &plan["low_threshold_percent"],
            &plan["pull_headroom_bytes"]
        ),
        (
            &serde_json::json!(61),
            &serde_json::json!(41),
            &serde_json::json!(7 << 20)
        )
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the agent's policy"));
    let plan = json(&lab.swarmkeeper(&[
        "gc",
        "plan",
        "--json",
        "--state-dir",
        state,
        "--high-threshold",
        "90",
    ]));
    assert_eq!(plan["high_threshold_percent"], 90);
    assert_eq!(plan["low_threshold_percent"], 41);
    assert_eq!(agent.stop(), Some(0));
    std::fs::remove_dir_all(state).ok();
}

/// `gc snapshot` lists exactly the images the engine lists (tagged and dangling ones, never
/// the intermediate images the classic builder leaves in the image store), each with the
/// layers the API gives for it; and a second snapshot of the unchanged node gives the same
/// images and containers without writing to the state database.
#[test]
fn the_snapshot_is_what_the_engine_lists_and_a_repeat_writes_nothing() {
    let lab = Lab::up("gcsnap", "256m");
    lab.build("snap/base:1", 1, &[]);
    lab.build_on("snap/base:1", "snap/app:1", 1);
    lab.build("snap/pinned:1", 1, &["swarmkeeper.gc.pin=true"]);
    // Built twice under one tag: the first is left dangling.
    let dangling = lab.build("snap/again:1", 1, &[]);
    lab.build("snap/again:1", 1, &[]);
    lab.docker(&["create", "snap/app:1", "/bin/busybox", "true"]);
    lab.docker(&["run", "snap/base:1", "/bin/busybox", "true"]);

    let state = tempdir("gcsnap-state");
    let snapshot = || {
        let out = lab.swarmkeeper(&["gc", "snapshot", "--state-dir", state.to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{}", support::output_text(&out));
        json(&out)
    };
    let first = snapshot();
    let listed: BTreeSet<String> = lab.image_ids().into_iter().collect();
    let stored: BTreeSet<String> = lab
        .docker(&["images", "-a", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(listed.contains(&dangling));
    assert!(
        stored.len() > listed.len(),
        "the classic builder left intermediate images"
    );
    assert_eq!(ids(&first, "images"), listed, "{first}");

    let engine = swarmkeeper_engine::Engine::connect(&lab.host).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for image in first["images"].as_array().unwrap() {
        let id = image["id"].as_str().unwrap();
        let api: Vec<(String, u64)> = runtime
            .block_on(engine.image_layers(id))
            .unwrap()
            .expect("the image's history gives its layers' sizes")
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let snapshot: Vec<(String, u64)> = image["layers"]
            .as_array()
            .unwrap_or_else(|| panic!("no layers: {image}"))
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().unwrap().to_string();
                (digest, l["size_bytes"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(snapshot, api, "{id}");
    }

    let database =
        || ["swarmkeeper.db", "swarmkeeper.db-wal"].map(|f| std::fs::read(state.join(f)).ok());
    let written = database();
    let second = snapshot();
    assert!(
        database() == written,
        "a snapshot of an unchanged node wrote to the state database"
    );
    for key in [
        "images",
        "containers",
        "service_image_history",
        "build_cache",
    ] {
        // The engine lists images and containers in no set order.
        let sorted = |v: &serde_json::Value| {
            let mut items = v[key].as_array().cloned().unwrap_or_default();
            items.sort_by_key(|i| i["id"].as_str().unwrap_or_default().to_owned());
            items
        };
        assert_eq!(sorted(&first), sorted(&second), "{key}");
    }
    std::fs::remove_dir_all(state).ok();
}
