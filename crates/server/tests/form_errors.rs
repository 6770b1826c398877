//! Bad input is refused by the field's own name, with nothing applied: what the engine would
//! refuse in a service, in the form (the field) and as compose (the file's line and column),
//! by the same rules (`compose::engine_refusals`, `lint::mode_change`); and the Alerts page's
//! small forms, next to their field: a silence without a usable duration, a Slack channel
//! whose URL is not one (the form's field is `url`, whatever the channel calls it).

mod support;

use serde_json::json;
use support::{try_docker, Call, TestApp, TestService};

fn version(name: &str) -> String {
    try_docker(&["service", "inspect", "--format", "{{.Version.Index}}", name]).unwrap()
}

#[tokio::test]
async fn what_the_engine_refuses_names_the_field_or_the_line_on_both_paths() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running("refusals", &[], &["/bin/busybox", "sleep", "3600"]);
    let name = service.name.clone();
    let before = version(&name);
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
            7,
            "deploy.resources.limits.memory",
        ),
        ("mode: global", 5, "deploy.mode"),
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
            message.starts_with(&format!("{name}.yml:{line}:")) && message.contains(setting),
            "{message}"
        );
    }
    assert_eq!(version(&name), before, "nothing was applied");
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
}
