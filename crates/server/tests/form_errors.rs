//! Bad input is refused by the field's own name, with nothing applied: what the engine would
//! refuse in a service, in the form (the field) and as compose (the file's line and column),
//! by the same rules (`compose::engine_refusals`, `lint::mode_change`); and the Alerts page's
//! small forms, next to their field: a silence without a usable duration, a Slack channel
//! whose URL is not one (the form's field is `url`, whatever the channel calls it), an empty
//! silence (and a warning, without a refusal, for a subject nothing has).

mod support;

use serde_json::json;
use support::{service_version, Call, TestApp, TestService, SLEEP};

#[tokio::test]
async fn what_the_engine_refuses_names_the_field_or_the_line_on_both_paths() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running("refusals", &[], SLEEP);
    let name = service.name.clone();
    let before = service_version(&name);
    // The form: each refusal names its field.
    for (field, value) in [
        ("limit_memory", json!("1k")),
        ("ports", json!(["8080:80", "8080:81"])),
        ("update_max_failure_ratio", json!("2")),
        ("log_options", json!(["max-file=0"])),
        ("mode", json!("global")),
    ] {
        let mut body = json!({ field: value });
        if field == "mode" {
            body["replicas"] = json!(null);
        }
        let message = app
            .call(
                Call::put(&format!("/api/services/{name}"))
                    .bearer(&op.token)
                    .json(&body),
            )
            .await
            .expect_json_error(400);
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field}: {message}"
        );
    }
    let page = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", &name),
                    ("image", support::test_image()),
                    ("limit_memory", "1k"),
                ]),
        )
        .await;
    page.expect(422);
    assert!(
        page.text().contains("data-field=\"limit_memory\""),
        "{}",
        page.text()
    );
    // As compose: the same rules, with the file's line and column.
    let image = support::test_image();
    for (deploy, line, setting) in [
        (
            "resources:\n        limits:\n          memory: 1k",
            "7:19",
            "deploy.resources.limits.memory",
        ),
        ("mode: global", "5:13", "deploy.mode"),
        // Tryout 7, finding 3: at the value, not at the block's first key (6:9).
        (
            "update_config:\n        parallelism: 1\n        max_failure_ratio: 2",
            "7:28",
            "deploy.update_config.max_failure_ratio",
        ),
    ] {
        let text =
            format!("services:\n  {name}:\n    image: {image}\n    deploy:\n      {deploy}\n");
        let message = app
            .call(
                Call::post(&format!("/api/services/{name}/compose"))
                    .bearer(&op.token)
                    .json(&json!({ "compose": text })),
            )
            .await
            .expect_json_error(400);
        assert!(
            message.starts_with(&format!("{name}.yml:{line}: ")) && message.contains(setting),
            "{message}"
        );
    }
    // What no node has: at the setting that asks for it.
    for (lines, place, says) in [
        (
            "    logging:\n      driver: nosuchdriver\n",
            "5:15",
            "nosuchdriver",
        ),
        (
            "    deploy:\n      placement:\n        constraints:\n          - node.role==manager\n          \
             - node.labels.sknowhere==yes\n",
            "8:13",
            "node.labels.sknowhere==yes",
        ),
    ] {
        let text = format!("services:\n  {name}:\n    image: {image}\n{lines}");
        let message = app
            .call(
                Call::post(&format!("/api/services/{name}/compose"))
                    .bearer(&op.token)
                    .json(&json!({ "compose": text })),
            )
            .await
            .expect_json_error(400);
        assert!(
            message.starts_with(&format!("{name}.yml:{place}: {name}: cannot be placed:"))
                && message.contains(says),
            "{message}"
        );
    }
    // A variable without a value: the form's rule, at the name's place in the text.
    let text =
        format!("services:\n  {name}:\n    image: {image}\n    environment: [A=1, NOEQUALS]\n");
    let message = app
        .call(
            Call::post(&format!("/api/services/{name}/compose"))
                .bearer(&op.token)
                .json(&json!({ "compose": text })),
        )
        .await
        .expect_json_error(400);
    let rule = swarmkeeper_compose::bare_variable("NOEQUALS", |_| None).unwrap_err();
    assert!(
        message.starts_with(&format!("{name}.yml:4:24: {rule}")),
        "{message}"
    );
    let form = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({ "env": ["A=1", "NOEQUALS"] })),
        )
        .await
        .expect_json_error(400);
    assert!(form.starts_with(&format!("env: {rule}")), "{form}");
    assert_eq!(service_version(&name), before, "nothing was applied");
}

#[tokio::test]
async fn a_silence_refused_names_its_field_next_to_it() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let page = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", "web"),
            ("duration", "5 parsecs"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains("data-field=\"duration\"") && text.contains("id=\"silence-errors\""),
        "{text}"
    );
    assert!(
        text.contains("id=\"add-silence\""),
        "the page, not an error page: {text}"
    );
    // Every wrong field in one answer: a rule that does not exist and a wrong duration.
    let page = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", "no_such_rule"),
            ("subject", ""),
            ("duration", "5 parsecs"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains("data-field=\"rule\"")
            && text.contains("data-field=\"duration\"")
            && text.contains("2 field(s) to fix"),
        "{text}"
    );
    // Neither a rule nor a subject: it would silence everything.
    let page = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", ""),
            ("duration", "2h"),
        ]))
        .await;
    page.expect(422);
    assert!(
        page.text().contains("data-field=\"subject\""),
        "{}",
        page.text()
    );
    let message = app
        .call(
            Call::post("/api/alerts/silences")
                .bearer(&admin.token)
                .json(&json!({"subject": "web", "duration": "5 parsecs"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("duration:"), "{message}");
    let listed = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await;
    listed.expect(200);
    assert_eq!(listed.json()["silences"], json!([]), "nothing was added");
}

#[tokio::test]
async fn a_channel_refused_names_the_forms_url_field() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    for kind in ["slack", "discord", "ntfy", "webhook"] {
        let message = app
            .call(
                Call::post("/api/alerts/channels")
                    .bearer(&admin.token)
                    .json(&json!({"name": "ops", "type": kind, "url": "not a url"})),
            )
            .await
            .expect_json_error(400);
        assert!(message.starts_with("url:"), "{kind}: {message}");
    }
    let page = app
        .call(Call::post("/alerts/channels").session(admin).form(&[
            ("name", "ops"),
            ("type", "slack"),
            ("url", "ftp://example.com/hook"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains("data-field=\"url\"") && text.contains("id=\"add-channel\""),
        "{text}"
    );
    assert!(!text.contains("webhook_url"), "{text}");

    // Tryout 13 finding 5: every wrong field of the e-mail channel at once.
    let page = app
        .call(Call::post("/alerts/channels").session(admin).form(&[
            ("name", "mail"),
            ("type", "email"),
            ("host", ""),
            ("port", "99999"),
            ("from", "alerts@example.com"),
            ("to", "not an address"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    for field in ["host", "port", "to"] {
        assert!(
            text.contains(&format!("data-field=\"{field}\"")),
            "{field}: {text}"
        );
    }
    assert!(
        text.contains("Nothing was added: 3 field(s) to fix."),
        "{text}"
    );
    let message = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin.token)
                .json(
                    &json!({"name": "mail", "type": "email", "host": "", "port": 99999,
                              "from": "alerts@example.com", "to": "not an address"}),
                ),
        )
        .await
        .expect_json_error(400);
    assert!(
        message.starts_with("host: ") && message.contains("; port: ") && message.contains("; to: "),
        "{message}"
    );
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

    // A subject nothing has: made, and said on the page the form goes on to (POST → 303 →
    // GET, so a reload does not post it again).
    let typo = support::unique("no-such-node");
    let made = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", &typo),
            ("duration", "10m"),
            ("comment", ""),
        ]))
        .await;
    made.expect(303);
    let shown = app.call(Call::get(made.location()).session(admin)).await;
    shown.expect(200);
    let page = shown.text();
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
