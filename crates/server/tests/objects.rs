//! Secrets and configs through the whole router against the host's swarm: listed with their
//! users, created (the value never shown back), removal refused while in use, rotation moving
//! a running service to the new version through the deploy engine, and a rotation whose new
//! content breaks the service rolled back with the old version kept.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{docker, exists, is_html, try_docker, unique, wait_for, TestApp, TestService};
use swarmkeeper_deploy::History;

/// Secrets and configs a test made, removed when it ends, passed or not.
struct Made {
    kind: &'static str,
    names: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = try_docker(&[self.kind, "rm", name]);
        }
    }
}

/// The service's references of `list` (`Secrets` or `Configs`): (name, target file).
fn references(service: &TestService, list: &str) -> Vec<(String, String)> {
    let spec = service.spec();
    let prefix = &list[..list.len() - 1];
    spec.pointer(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    (
                        r[format!("{prefix}Name")].as_str().unwrap().to_owned(),
                        r["File"]["Name"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn row<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
}

#[tokio::test]
async fn a_secret_is_created_listed_guarded_and_rotated() {
    let app = TestApp::new().await;
    let (v, op) = (&app.viewer, &app.operator);
    let name = unique("pw");
    let mut made = Made {
        kind: "secret",
        names: vec![name.clone(), format!("{name}.v2")],
    };

    // Create: a viewer may not; bad input names the field and creates nothing.
    let create =
        |data: &str| support::Call::post("/api/secrets").json(&json!({"name": name, "data": data}));
    app.call(create("hunter2").bearer(&v.token))
        .await
        .expect_json_error(403);
    let message = app
        .call(
            support::Call::post("/api/secrets")
                .bearer(&op.token)
                .json(&json!({"name": "-bad name", "data": "x"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("name: "), "{message}");
    let message = app
        .call(create("").bearer(&op.token))
        .await
        .expect_json_error(400);
    assert!(message.starts_with("data: "), "{message}");
    let page = app
        .call(
            support::Call::post("/secrets")
                .session(op)
                .form(&[("name", "a b"), ("data", "s3cret-form-value")]),
        )
        .await;
    page.expect(422);
    assert!(is_html(&page.headers));
    let html = page.text();
    assert!(html.contains("may hold only letters"), "{html}");
    assert!(
        !html.contains("s3cret-form-value"),
        "the value is not shown back"
    );
    // Tryout 13 finding 5: a wrong name and no value, both in one answer.
    let page = app
        .call(
            support::Call::post("/secrets")
                .session(op)
                .form(&[("name", "a b"), ("data", "")]),
        )
        .await;
    page.expect(422);
    let html = page.text();
    assert!(
        html.contains("may hold only letters") && html.contains("a secret needs a value"),
        "{html}"
    );
    assert!(!exists("secret", &name));

    let answer = app.call(create("hunter2").bearer(&op.token)).await;
    answer.expect(201);
    let created = answer.json();
    assert_eq!(created["name"], name.as_str());
    assert!(!answer.text().contains("hunter2"), "{}", answer.text());
    assert!(exists("secret", &name));
    app.call(create("again").bearer(&op.token))
        .await
        .expect_json_error(409);

    // A running service reads it as /run/secrets/app_pw.
    let service = TestService::running(
        "pwuser",
        &[
            "--secret",
            &format!("source={name},target=app_pw"),
            "--stop-grace-period",
            "1s",
        ],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "cat /run/secrets/app_pw; sleep 3600",
        ],
    );
    service.wait_running(1);

    // Listed with its user and the file, to a viewer; never with its value.
    let answer = app
        .call(support::Call::get("/api/secrets").bearer(&v.token))
        .await;
    answer.expect(200);
    assert!(!answer.text().contains("hunter2"));
    let list = answer.json();
    let listed = row(&list, &name).expect("the secret is listed");
    assert_eq!(
        listed["users"],
        json!([{"service": service.name, "target": "app_pw"}])
    );
    let page = app.call(support::Call::get("/secrets").session(v)).await;
    page.expect(200);
    assert!(page.text().contains(&service.name));
    assert!(
        !page.text().contains("Rotate</button>"),
        "a viewer sees no change button"
    );
    // The list carries no per-row form (500 of them made the page 371 KB): each object's
    // rotate and remove forms are on its own page.
    let listed_by_op = app.call(support::Call::get("/secrets").session(op)).await;
    listed_by_op.expect(200);
    assert!(!listed_by_op.text().contains("Rotate</button>"));
    assert!(listed_by_op
        .text()
        .contains(&format!("href=\"/secrets/{name}\"")));
    let own = app
        .call(support::Call::get(&format!("/secrets/{name}")).session(op))
        .await;
    own.expect(200);
    assert!(own.text().contains("Rotate</button>"), "{}", own.text());
    assert!(own.text().contains(&service.name));
    let own = app
        .call(support::Call::get(&format!("/secrets/{name}")).session(v))
        .await;
    own.expect(200);
    assert!(!own.text().contains("Rotate</button>"));
    let one = app
        .call(support::Call::get(&format!("/api/secrets/{name}")).bearer(&v.token))
        .await;
    one.expect(200);
    assert_eq!(
        one.json()["users"],
        json!([{"service": service.name, "target": "app_pw"}])
    );
    app.call(support::Call::get("/api/secrets/skservertest-no-such").bearer(&v.token))
        .await
        .expect_json_error(404);

    // Removal is refused while the service uses it, naming the service.
    let message = app
        .call(support::Call::delete(&format!("/api/secrets/{name}")).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(message.contains(&service.name), "{message}");
    assert!(exists("secret", &name));

    // Rotate: the new version, the service moved to it (same file), the old one gone.
    let answer = app
        .call(
            support::Call::post(&format!("/api/secrets/{name}/rotate"))
                .bearer(&op.token)
                .json(&json!({"data": "correct-horse"})),
        )
        .await;
    answer.expect(200);
    let rotated = answer.json();
    let new_name = format!("{name}.v2");
    assert_eq!(rotated["new_name"], new_name.as_str());
    assert_eq!(rotated["succeeded"], true);
    assert_eq!(rotated["removed_old"], true);
    assert_eq!(rotated["groups"][0]["services"], json!([service.name]));
    assert_eq!(
        references(&service, "Secrets"),
        [(new_name.clone(), "app_pw".to_owned())]
    );
    assert!(!exists("secret", &name), "the old version is removed");
    assert!(exists("secret", &new_name));
    service.wait_running(1);
    // Recorded in the service's history (it is in no stack) as an edit by the operator that
    // names the rotation, as a form's edit says "edited in the dashboard by NAME".
    let history = app.state.history().revisions(&service.name).await.unwrap();
    support::remove_history(&service.name);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].kind.to_string(), "edit");
    assert_eq!(
        history[0].by_sentence(),
        format!("rotated secret {name} → {new_name} in the dashboard by operator")
    );
    assert_eq!(history[0].outcome.to_string(), "succeeded");
    let audit = app.audit().await;
    let rotations: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "rotate-secret" && e["target"] == name.as_str())
        .collect();
    assert_eq!(rotations.len(), 2, "start and end: {audit:?}");
    assert!(audit
        .iter()
        .any(|e| e["action"] == "create-secret" && e["target"] == name.as_str()));

    // Once nothing uses it, the new version may be removed; the service first, and its task
    // stopped (until then it still mounts the secret).
    let service_name = service.name.clone();
    drop(service);
    wait_for("the service to be gone", Duration::from_secs(30), || {
        try_docker(&["service", "inspect", &service_name]).is_err()
    });
    wait_for("its task to stop", Duration::from_secs(30), || {
        try_docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service_name}"),
        ])
        .is_ok_and(|ids| ids.is_empty())
    });
    // Swarm's task list says the task stopped a moment after its container is gone: until
    // then the removal is refused (409, naming the task), as it should be.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let removed = app
            .call(support::Call::delete(&format!("/api/secrets/{new_name}")).bearer(&op.token))
            .await;
        if removed.status.as_u16() != 409 || std::time::Instant::now() > deadline {
            removed.expect(204);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!exists("secret", &new_name));
    made.names.clear();
}

/// Swarm itself refuses to remove a secret only while a service's spec names it; a task keeps
/// the spec it was made with. Here the service moves from secret A to B while its old task
/// ignores SIGTERM for its 20 s stop grace period: until it has stopped, removing A is
/// refused naming that task, its node and state; then it goes.
#[tokio::test]
async fn a_secret_a_stopping_task_still_mounts_is_not_removed_until_it_stopped() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let (a, b) = (unique("objs11old"), unique("objs11new"));
    let _made = Made {
        kind: "secret",
        names: vec![a.clone(), b.clone()],
    };
    for name in [&a, &b] {
        app.call(
            support::Call::post("/api/secrets")
                .bearer(&op.token)
                .json(&json!({"name": name, "data": "v"})),
        )
        .await
        .expect(201);
    }
    // PID 1 ignores SIGTERM: the container runs until Swarm kills it after the grace period.
    let service = TestService::running(
        "objs11holder",
        &[
            "--secret",
            &format!("source={a},target=app_pw"),
            "--stop-grace-period",
            "20s",
        ],
        &["/bin/busybox", "sh", "-c", "trap '' TERM; sleep 3600"],
    );
    service.wait_running(1);
    let hostname = docker(&[
        "node",
        "inspect",
        "self",
        "--format",
        "{{.Description.Hostname}}",
    ]);
    docker(&[
        "service",
        "update",
        "--detach",
        "--quiet",
        "--secret-rm",
        &a,
        "--secret-add",
        &format!("source={b},target=app_pw"),
        &service.name,
    ]);
    // No service names A any more; the old task still stops.
    let get_a = || support::Call::get(&format!("/api/secrets/{a}")).bearer(&op.token);
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = app.call(get_a()).await.json();
        if seen["users"] == json!([]) && seen["tasks"].as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let task = &seen["tasks"][0];
    assert_eq!(task["task"], format!("{}.1", service.name), "{seen}");
    assert_eq!(task["node"], hostname.as_str(), "{seen}");
    assert_eq!(task["state"], "running", "{seen}");
    assert_eq!(task["desired_state"], "shutdown", "{seen}");
    assert_eq!(task["target"], "app_pw", "{seen}");
    let message = app
        .call(support::Call::delete(&format!("/api/secrets/{a}")).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(
        message.contains(&format!(
            "{}.1 on {hostname} (running, desired shutdown)",
            service.name
        )),
        "{message}"
    );
    assert!(exists("secret", &a), "{message}");
    // The object's page and the list say it too; the page offers no remove button.
    let page = app
        .call(support::Call::get(&format!("/secrets/{a}")).session(op))
        .await;
    page.expect(200);
    assert!(page.text().contains("Still mounted by"), "{}", page.text());
    assert!(!page.text().contains(">Remove</button>"), "{}", page.text());
    let list = app
        .call(support::Call::get("/api/secrets").bearer(&op.token))
        .await
        .json();
    assert_eq!(row(&list, &a).unwrap()["tasks"][0]["id"], task["id"]);

    // Once it stopped (Swarm kills it after the grace period), A goes.
    let mut answer = None;
    for _ in 0..60 {
        let now = app.call(get_a()).await.json();
        if now["tasks"] == json!([]) {
            answer = Some(
                app.call(support::Call::delete(&format!("/api/secrets/{a}")).bearer(&op.token))
                    .await,
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    answer
        .expect("the old task stopped within 30 s")
        .expect(204);
    assert!(!exists("secret", &a));
}

#[tokio::test]
async fn a_rotation_that_breaks_its_service_is_rolled_back_and_keeps_the_old_config() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("cfg");
    let _made = Made {
        kind: "config",
        names: vec![name.clone(), format!("{name}.v2")],
    };
    app.call(
        support::Call::post("/api/configs")
            .bearer(&op.token)
            .json(&json!({"name": name, "data": "mode=good\n"})),
    )
    .await
    .expect(201);
    // The service runs only while its config says good.
    let service = TestService::running(
        "cfguser",
        &[
            "--config",
            &format!("source={name},target=/etc/app.conf"),
            "--stop-grace-period",
            "1s",
        ],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "grep -q good /etc/app.conf || exit 1; sleep 3600",
        ],
    );
    service.wait_running(1);

    // A form with no value: the message next to the rotate field, nothing applied.
    let page = app
        .call(
            support::Call::post(&format!("/configs/{name}/rotate"))
                .session(op)
                .form(&[("data", "")]),
        )
        .await;
    page.expect(422);
    assert!(
        page.text().contains("a config needs a value"),
        "{}",
        page.text()
    );
    assert!(!exists("config", &format!("{name}.v2")));

    let answer = app
        .call(
            support::Call::post(&format!("/api/configs/{name}/rotate"))
                .bearer(&op.token)
                .json(&json!({"data": "mode=broken\n"})),
        )
        .await;
    answer.expect(409);
    let rotated = answer.json();
    assert_eq!(rotated["succeeded"], false, "{rotated}");
    assert_eq!(rotated["removed_old"], false);
    assert_eq!(rotated["groups"][0]["outcome"], "rolled back", "{rotated}");
    assert_eq!(
        references(&service, "Configs"),
        [(name.clone(), "/etc/app.conf".to_owned())],
        "the service is back on the old config"
    );
    assert!(exists("config", &name));
    assert!(
        !exists("config", &format!("{name}.v2")),
        "the unused new version is removed"
    );
    let history = app.state.history().revisions(&service.name).await.unwrap();
    support::remove_history(&service.name);
    assert_eq!(history[0].outcome.to_string(), "rolled back");
    service.wait_running(1);
    docker(&["service", "rm", &service.name]);
}

/// Swarmkeeper's own deploy history (revision configs and the stack's lock) is not an
/// operator's config: not listed as one, and never removed or rotated from the dashboard —
/// a removed end record would make the history call a finished revision "interrupted".
#[tokio::test]
async fn deploy_history_configs_are_not_listed_nor_removable() {
    use swarmkeeper_deploy::{DeployKind, DeployOutcome, FileDigest, Locking};
    let app = TestApp::new().await;
    let (op, admin) = (&app.operator, &app.admin);
    let stack = unique("hist");
    let _cleanup = support::TestStack {
        name: stack.clone(),
    };
    let history = app.state.history();
    let files = [FileDigest {
        path: "stack.yml".into(),
        sha256: swarmkeeper_deploy::sha256_hex(b"services: {}\n"),
        text: Some("services: {}\n".into()),
    }];
    let now = jiff::Timestamp::now();
    let number =
        support::record_revision(&app, &stack, "alice", &DeployKind::Deploy, &files, now).await;
    let locked = history.lock(&stack, "alice", now).await.unwrap();
    assert!(matches!(locked, Locking::Acquired(_)), "{locked:?}");
    let end_name = format!("swarmkeeper-rev-{stack}-{number}-end");
    let start_name = format!("swarmkeeper-rev-{stack}-{number}");
    let lock_name = format!("swarmkeeper-lock-{stack}");

    // Listed only as a count per stack, with the page pointing at the stack's history.
    let listed = app
        .call(support::Call::get("/api/configs").bearer(&op.token))
        .await
        .json();
    for name in [&end_name, &start_name, &lock_name] {
        assert!(row(&listed, name).is_none(), "{name} listed: {listed}");
    }
    assert_eq!(listed["deploy_history"][&stack], 3, "{listed}");
    let page = app
        .call(support::Call::get("/configs").session(op))
        .await
        .text();
    assert!(!page.contains(&end_name), "{page}");
    assert!(page.contains(&format!("/stacks/{stack}")), "{page}");

    // Removal and rotation refused, by API and by form, naming the history and the flag.
    for name in [&end_name, &start_name, &lock_name] {
        let message = app
            .call(support::Call::delete(&format!("/api/configs/{name}")).bearer(&admin.token))
            .await
            .expect_json_error(409);
        assert!(message.contains(&format!("/stacks/{stack}")), "{message}");
        assert!(message.contains("--keep-revisions"), "{message}");
        app.call(
            support::Call::post(&format!("/api/configs/{name}/rotate"))
                .bearer(&admin.token)
                .json(&json!({"data": "x"})),
        )
        .await
        .expect_json_error(409);
        app.call(support::Call::post(&format!("/configs/{name}/remove")).session(admin))
            .await
            .expect(409);
        assert!(exists("config", name), "{name} was removed");
    }
    let object_page = app
        .call(support::Call::get(&format!("/configs/{end_name}")).session(admin))
        .await
        .text();
    assert!(!object_page.contains("/remove"), "{object_page}");
    assert!(!object_page.contains("/rotate"), "{object_page}");

    // The history is intact: the revision still ended as it did.
    let revisions = history.revisions(&stack).await.unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(
        revisions[0].outcome,
        DeployOutcome::Succeeded,
        "{revisions:?}"
    );
}

/// A label with an empty key is refused by field, and nothing is created.
#[tokio::test]
async fn a_label_without_a_key_is_refused() {
    let app = TestApp::new().await;
    let name = unique("lbl");
    let _made = Made {
        kind: "secret",
        names: vec![name.clone()],
    };
    let message = app
        .call(
            support::Call::post("/api/secrets")
                .bearer(&app.operator.token)
                .json(&json!({"name": name, "data": "x", "labels": {"": "v"}})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("labels: "), "{message}");
    assert!(!exists("secret", &name));
}

/// What the swarm stores of config `name`, decoded.
fn stored_config(name: &str) -> Vec<u8> {
    use base64::Engine as _;
    let data = docker(&["config", "inspect", "--format", "{{json .Spec.Data}}", name]);
    let data: String = serde_json::from_str(&data).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

/// Tryout 14 findings 20 and 21: a form's textarea comes as CRLF and is stored with LF, as a
/// file's bytes would be; binary content is posted as base64; the JSON API's text is kept as
/// sent.
#[tokio::test]
async fn a_value_is_stored_as_the_bytes_it_stands_for() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let (form, json_text, binary, bad) = (
        unique("crlf"),
        unique("crlfjson"),
        unique("bin"),
        unique("badb64"),
    );
    let _made = Made {
        kind: "config",
        names: vec![form.clone(), json_text.clone(), binary.clone(), bad.clone()],
    };
    app.call(
        support::Call::post("/configs")
            .session(op)
            .form(&[("name", form.as_str()), ("data", "line1\r\nline2\r\n")]),
    )
    .await
    .expect(303);
    assert_eq!(stored_config(&form), b"line1\nline2\n");
    let json_answer = app
        .call(
            support::Call::post("/api/configs")
                .bearer(&op.token)
                .json(&json!({"name": json_text, "data": "a\r\nb"})),
        )
        .await;
    json_answer.expect(201);
    assert_eq!(stored_config(&json_text), b"a\r\nb");
    let made = app
        .call(
            support::Call::post("/api/configs")
                .bearer(&op.token)
                .json(&json!({"name": binary, "data": "AAEC/w==", "encoding": "base64"})),
        )
        .await;
    made.expect(201);
    assert_eq!(stored_config(&binary), [0u8, 1, 2, 255]);
    let refused = app
        .call(
            support::Call::post("/api/configs")
                .bearer(&op.token)
                .json(&json!({"name": bad, "data": "not base64!", "encoding": "base64"})),
        )
        .await;
    assert!(refused
        .expect_json_error(400)
        .starts_with("data: is not base64"));
    assert!(!exists("config", &bad));
}
