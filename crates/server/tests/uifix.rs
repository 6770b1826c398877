//! What a new user's tryout of the dashboard found wrong, each fixed and checked against the
//! host's swarm.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Call, TempDir, TestApp, TestService};

/// A running task has no exit code (the engine reports `ExitCode: 0` for a running
/// container), and its page's restarts are the JSON twin's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_shows_no_exit_code_and_its_restarts() {
    let app = TestApp::new().await;
    let op = &app.operator;
    // The first task fails, the second finds the marker it left and runs: one restart.
    let marks = TempDir::new("marks");
    let mount = format!("type=bind,source={},target=/m", marks.path().display());
    let service = TestService::running(
        "taskonce",
        &["--restart-delay", "1s", "--mount", &mount],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "if [ -e /m/once ]; then exec /bin/busybox sleep 3600; fi; touch /m/once; exit 1",
        ],
    );
    // The first task runs a moment too: wait for the second one to run.
    let mut id = String::new();
    support::wait_for(
        "the slot's second task running",
        Duration::from_secs(60),
        || {
            let all = support::docker(&["service", "ps", "-q", &service.name]);
            let running: Vec<String> = service
                .tasks("{{.ID}} {{.CurrentState}}")
                .into_iter()
                .filter(|t| t.contains(" Running"))
                .collect();
            match running.first() {
                Some(task) if all.lines().count() >= 2 => {
                    id = task.split(' ').next().unwrap_or_default().to_owned();
                    true
                }
                _ => false,
            }
        },
    );
    let task: Value = app
        .call(Call::get(&format!("/api/tasks/{id}")).bearer(&op.token))
        .await
        .json();
    assert_eq!(task["state"], "running", "{task}");
    assert_eq!(task["exit"], Value::Null, "{task}");
    assert_eq!(task["exit_code"], Value::Null, "{task}");
    assert_eq!(task["restarts"], 1, "{task}");
    let page = app
        .call(Call::get(&format!("/tasks/{id}")).session(op))
        .await;
    page.expect(200);
    let text = page.text();
    assert!(!text.contains("Exit code"), "{text}");
    assert!(
        text.contains(r#"<dd id="restarts">1 in the last"#),
        "{text}"
    );
}

/// The nodes list and the node page say the same "last GC pass": the pass the agent last
/// reported, also one that had nothing to free (no stored run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_list_and_the_node_page_share_the_last_gc_pass() {
    let app = TestApp::new().await;
    let hostname = support::unique("gcpass");
    let mut report = support::report("", &hostname);
    report.gc_runs.clear();
    let pass_at = report.reported_at - jiff::SignedDuration::from_secs(40);
    report.last_pass = Some(swarmkeeper_report::LastPass {
        started_at: pass_at,
        space_trigger: None,
        usage_percent_after: 60,
        shortfall_bytes: 0,
        short_of_low_threshold: false,
        short_of_headroom: false,
    });
    post_report(&app, &report).await;
    let key = format!("hostname:{hostname}");
    let nodes: Value = app
        .call(Call::get("/api/nodes").bearer(&app.viewer.token))
        .await
        .json();
    let row = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == key.as_str())
        .unwrap_or_else(|| panic!("{key} in {nodes}"))
        .clone();
    let node: Value = app
        .call(Call::get(&format!("/api/nodes/{key}")).bearer(&app.viewer.token))
        .await
        .json();
    let want = Value::String(pass_at.to_string());
    assert_eq!(row["last_gc"], want, "{row}");
    assert_eq!(node["last_pass"]["started_at"], want, "{node}");
    assert_eq!(node["last_gc"], want, "{node}");
    let list = app
        .call(Call::get("/nodes").session(&app.viewer))
        .await
        .text();
    let our_row = list
        .rsplit(hostname.as_str())
        .next()
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("{hostname} in {list}"));
    assert!(!our_row.contains("never"), "{our_row}");
    assert!(our_row.contains("ago"), "{our_row}");
}

/// A service whose task waits is on the overview with the scheduler's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_says_why_a_service_waits() {
    let app = TestApp::new().await;
    let waiting = TestService::create(
        "waits",
        &["--constraint", "node.labels.skservertest-nowhere==yes"],
    );
    let mut row = Value::Null;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let overview = app
            .call(Call::get("/api/overview").bearer(&app.viewer.token))
            .await
            .json();
        row = overview["attention"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == waiting.name.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        let said = row["pending"].as_array().is_some_and(|p| {
            p.iter()
                .any(|why| why.as_str().unwrap().contains("no suitable node"))
        });
        if said {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let why = row["pending"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no pending reason: {row}"))
        .to_owned();
    assert!(why.starts_with("pending: no suitable node ("), "{row}");
    let page = app.call(Call::get("/").session(&app.viewer)).await.text();
    let attention = page.split(r#"id="attention""#).nth(1).unwrap_or_default();
    assert!(attention.contains(&why), "{attention}");
}

/// Who made a revision is said once: a dashboard edit's "edited in the dashboard by NAME" is
/// not led by another "by" on the stacks list, a plain name is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_list_says_who_changed_a_stack_once() {
    use swarmkeeper_deploy::{DeployKind, DeployOutcome, History, RevisionEnd, RevisionStart};
    let app = TestApp::new().await;
    let stack = support::unique("who");
    let _history = support::TestStack {
        name: stack.clone(),
    };
    let namespace = format!("com.docker.stack.namespace={stack}");
    let _service = TestService::create("whoweb", &["--label", &namespace]);
    let history = app.state.history();
    let now = jiff::Timestamp::now();
    for by in ["alice", "edited in the dashboard by alice"] {
        let start = RevisionStart {
            stack: &stack,
            by,
            kind: &DeployKind::Edit,
            files: &[],
            at: now,
        };
        let number = history.append(&start).await.unwrap();
        let end = RevisionEnd {
            outcome: &DeployOutcome::Succeeded,
            summary: "",
            services: &[],
            objects: &[],
            at: now,
        };
        history.finish(&stack, number, &end).await.unwrap();
    }
    let list = app
        .call(Call::get("/stacks").session(&app.viewer))
        .await
        .text();
    let row = list
        .rsplit(stack.as_str())
        .next()
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("{stack} in {list}"));
    assert!(
        row.contains("edit edited in the dashboard by alice,"),
        "{row}"
    );
    assert!(!row.contains("by edited"), "{row}");
    let page = app
        .call(Call::get(&format!("/stacks/{stack}")).session(&app.viewer))
        .await
        .text();
    // The stack page: Who is the name, the sentence's rest goes to Summary.
    assert_eq!(page.matches("<td>alice</td>").count(), 2, "{page}");
    assert!(page.contains("<td>edited in the dashboard</td>"), "{page}");
    assert!(!page.contains("by alice</td>"), "{page}");
}

/// Removing swarmkeeper's own server (a service, or the stack holding it) says that the
/// dashboard stops, and the JSON API takes it only with `confirm` naming what goes. (The
/// agent's label is left alone here: volume removals on this engine look for it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_swarmkeeper_itself_says_so_and_needs_a_confirmation() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = support::TestStack::new("skself");
    let namespace = format!("com.docker.stack.namespace={}", stack.name);
    let server = TestService::create(
        "skserver",
        &["--label", "swarmkeeper.server=true", "--label", &namespace],
    );
    let other = TestService::create("skother", &["--label", &namespace]);

    // The service: its page's confirmation says it, the API refuses without `confirm`.
    let page = app
        .call(Call::get(&format!("/services/{}", server.name)).session(op))
        .await
        .text();
    assert!(
        page.contains(&format!(
            r#"action="/services/{0}/remove?confirm={0}""#,
            server.name
        )),
        "{page}"
    );
    assert!(
        page.contains("data-confirm=\"This removes swarmkeeper")
            && page.contains("own server: this dashboard stops. Remove service"),
        "{page}"
    );
    let json: Value = app
        .call(Call::get(&format!("/api/services/{}", server.name)).bearer(&op.token))
        .await
        .json();
    assert!(
        json["removal_warning"]
            .as_str()
            .is_some_and(|w| w.contains("this dashboard stops")),
        "{json}"
    );
    let refused = app
        .call(Call::delete(&format!("/api/services/{}", server.name)).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("this dashboard stops"), "{refused}");
    assert!(
        refused.contains(&format!("?confirm={}", server.name)),
        "{refused}"
    );
    app.call(
        Call::delete(&format!("/api/services/{}?confirm=nope", server.name)).bearer(&op.token),
    )
    .await
    .expect_json_error(409);
    assert!(support::try_docker(&["service", "inspect", &server.name]).is_ok());
    // Any other service goes as before, without a word.
    let plain: Value = app
        .call(Call::get(&format!("/api/services/{}", other.name)).bearer(&op.token))
        .await
        .json();
    assert_eq!(plain.get("removal_warning"), None, "{plain}");

    // The stack holding it: the same.
    let page = app
        .call(Call::get(&format!("/stacks/{}", stack.name)).session(op))
        .await
        .text();
    assert!(
        page.contains(&format!(
            r#"action="/stacks/{0}/remove?confirm={0}""#,
            stack.name
        )),
        "{page}"
    );
    assert!(page.contains("this dashboard stops."), "{page}");
    let refused = app
        .call(Call::delete(&format!("/api/stacks/{}", stack.name)).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("this dashboard stops"), "{refused}");
    assert!(support::try_docker(&["service", "inspect", &other.name]).is_ok());
    let removed: Value = app
        .call(Call::delete(&format!("/api/stacks/{0}?confirm={0}", stack.name)).bearer(&op.token))
        .await
        .json();
    let services = removed["removed"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{removed}");
}

/// The silence form refuses an empty silence next to its subject field, and warns — without
/// refusing — about a subject nothing has now; a subject the swarm has gets no warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_silence_form_refuses_empty_and_warns_about_unknown_subjects() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let empty = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", ""),
            ("duration", ""),
            ("comment", ""),
        ]))
        .await;
    empty.expect(422);
    let page = empty.text();
    assert!(
        page.contains(r#"data-field="subject">a silence must name a rule, a subject or both"#),
        "{page}"
    );
    let before = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await
        .json();
    assert_eq!(before["silences"], serde_json::json!([]), "{before}");

    // A subject nothing has: made, and said.
    let typo = support::unique("no-such-node");
    let made = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", &typo),
            ("duration", "10m"),
            ("comment", ""),
        ]))
        .await;
    made.expect(200);
    let page = made.text();
    let warning = page
        .split(r#"id="silence-warning""#)
        .nth(1)
        .unwrap_or_else(|| panic!("no warning: {page}"));
    assert!(
        warning.contains("matches no node, service or task slot"),
        "{warning}"
    );
    let json = app
        .call(
            Call::post("/api/alerts/silences")
                .bearer(&admin.token)
                .json(&serde_json::json!({"subject": typo, "duration": "10m"})),
        )
        .await;
    json.expect(201);
    let row = json.json();
    assert!(
        row["warning"].as_str().is_some_and(|w| w.contains(&typo)),
        "{row}"
    );

    // A service that exists, and one of its task slots: no warning.
    let service = TestService::create("silenced", &[]);
    service.wait_running(1);
    for subject in [service.name.clone(), format!("{}.1", service.name)] {
        let row = app
            .call(
                Call::post("/api/alerts/silences")
                    .bearer(&admin.token)
                    .json(&serde_json::json!({"subject": subject, "duration": "10m"})),
            )
            .await
            .json();
        assert_eq!(row.get("warning"), None, "{row}");
    }
    let listed = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await
        .json();
    assert_eq!(listed["silences"].as_array().unwrap().len(), 4, "{listed}");
}

/// A volume a running task mounts is in use as soon as the task runs, whatever its node's
/// last report said, and its removal is refused naming the task, its service and its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_a_task_mounts_is_in_use_and_its_refusal_names_the_task() {
    let app = TestApp::new().await;
    let volume = support::unique("busyvol");
    let mount = format!("type=volume,source={volume},target=/data");
    let service = TestService::create("volsvc", &["--mount", &mount]);
    service.wait_running(1);
    // The node reported the volume before the task started: no container on it.
    let node = support::node_id();
    let mut here = support::report(&node, "volhost");
    here.volumes = Some(vec![swarmkeeper_report::ReportedVolume {
        name: volume.clone(),
        driver: "local".into(),
        mountpoint: format!("/var/lib/docker/volumes/{volume}/_data"),
        size_bytes: None,
        ..Default::default()
    }]);
    post_report(&app, &here).await;

    let listed: Value = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await
        .json();
    let row = listed["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .unwrap_or_else(|| panic!("{volume} in {listed}"))
        .clone();
    assert_eq!(row["unused"], false, "{row}");
    assert_eq!(
        row["tasks"][0]["task"],
        format!("{}.1", service.name).as_str(),
        "{row}"
    );
    let page = app
        .call(Call::get("/volumes").session(&app.admin))
        .await
        .text();
    let line = page
        .split("<tr")
        .find(|row| row.contains(volume.as_str()))
        .unwrap_or_default();
    assert!(line.contains(&format!("{}.1", service.name)), "{line}");
    assert!(line.contains("not measured yet"), "{line}");
    assert!(!line.contains("Remove"), "{line}");

    let refused = app
        .call(Call::delete(&format!("/api/volumes/{volume}?node={node}")).bearer(&app.admin.token))
        .await
        .expect_json_error(409);
    assert!(
        refused.contains(&format!(
            "on node volhost is in use by task {0}.1 (service {0})",
            service.name
        )),
        "{refused}"
    );
    drop(service);
    wait_for_volume_free(&volume);
}

/// Removes the test's volume once the removed service's container has let go of it.
fn wait_for_volume_free(volume: &str) {
    let start = std::time::Instant::now();
    while support::try_docker(&["volume", "rm", volume]).is_err()
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Removes a label of the host's node when dropped.
struct NodeLabel {
    node: String,
    key: String,
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        let _ = support::try_docker(&["node", "update", "--label-rm", &self.key, &self.node]);
    }
}

/// Labels that take a running service's placement away from its node — the dashboard's own
/// server here — are not saved without a confirmation, and the form and the API say which
/// tasks stop and that the dashboard does. Nothing is written to the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_that_would_stop_the_dashboard_need_a_confirmation() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let node = support::node_id();
    let label = NodeLabel {
        node: node.clone(),
        key: support::unique("state"),
    };
    support::docker(&[
        "node",
        "update",
        "--label-add",
        &format!("{}=true", label.key),
        &node,
    ]);
    let constraint = format!("node.labels.{}==true", label.key);
    let server = TestService::create(
        "placed",
        &[
            "--constraint",
            &constraint,
            "--label",
            "swarmkeeper.server=true",
        ],
    );
    server.wait_running(1);
    let labels: serde_json::Map<String, Value> = serde_json::from_str(&support::docker(&[
        "node",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        &node,
    ]))
    .unwrap();
    let mut without = labels.clone();
    without.remove(&label.key);

    let refused = app
        .call(
            Call::put(&format!("/api/nodes/{node}/labels"))
                .bearer(&op.token)
                .json(&serde_json::json!({ "labels": without })),
        )
        .await
        .expect_json_error(409);
    assert!(
        refused.contains(&format!("{}.1 stops: would stay pending", server.name)),
        "{refused}"
    );
    assert!(refused.contains("this stops the dashboard"), "{refused}");
    assert!(refused.contains("\"confirm\": true"), "{refused}");

    let text: String = without
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap_or_default()))
        .collect();
    let form = app
        .call(
            Call::post(&format!("/nodes/{node}/labels"))
                .session(op)
                .form(&[("labels", &text)]),
        )
        .await;
    form.expect(409);
    let page = form.text();
    assert!(page.contains(r#"id="stops-dashboard""#), "{page}");
    assert!(page.contains(&server.name), "{page}");
    assert!(page.contains(r#"name="confirm" value="true""#), "{page}");

    let still = support::docker(&[
        "node",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        &node,
    ]);
    assert!(still.contains(&label.key), "{still}");
}

/// Posts `report` as its node's agent would.
async fn post_report(app: &TestApp, report: &swarmkeeper_report::NodeReport) {
    app.call(
        Call::post("/api/agent/report")
            .bearer(support::REPORT_SECRET)
            .body("application/json", serde_json::to_vec(report).unwrap()),
    )
    .await
    .expect(204);
}
