//! A credential in a service's environment is never shown back (issue 14, tryout 12 finding
//! 8): an operator's edit form and "edit as compose" text show `DB_PASSWORD`'s value as
//! `<hidden>` (and `PLAIN`'s as it is), and saving what the pages show keeps the running value,
//! with no change; the placeholder on a variable the service does not have is refused at its
//! line, nothing applied. A value typed in its place replaces it, and the change list names
//! the variable without its old or new value, on the form's answer and on its job's page.
// test lane: waiting (a rolling update followed until its task runs)

mod support;

use serde_json::json;
use support::{
    followed_job, greeting_stack, service_form, service_version, textarea_of, Call, HistoryOf,
    TestApp, TestService, TestStack, SLEEP,
};

#[tokio::test]
async fn a_credential_is_hidden_from_the_edit_pages_and_kept_on_save() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running(
        "hiddencred",
        &["--env", "DB_PASSWORD=s3cret", "--env", "PLAIN=1"],
        SLEEP,
    );
    let name = service.name.clone();
    let _history = HistoryOf(name.clone());
    service.wait_running(1);
    let env = || service.spec()["TaskTemplate"]["ContainerSpec"]["Env"].clone();
    let running = json!(["DB_PASSWORD=s3cret", "PLAIN=1"]);
    assert_eq!(env(), running);

    // The form: hidden, PLAIN shown; its environment posted back changes nothing.
    let page = app
        .call(Call::get(&format!("/services/{name}/edit")).session(op))
        .await;
    page.expect(200);
    let page = page.text();
    assert!(!page.contains("s3cret"), "{page}");
    let shown_env = textarea_of(&page, "env");
    assert_eq!(shown_env, "DB_PASSWORD=<hidden>\nPLAIN=1", "{page}");
    let before = service_version(&name);
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({ "env": shown_env })),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["changes"], json!([]), "{}", answer.json());
    assert!(!answer.text().contains("s3cret"), "{}", answer.text());
    assert_eq!(env(), running);
    assert_eq!(service_version(&name), before, "nothing applied");

    // As compose: the same, and a new variable left at the placeholder is refused at its line.
    let text = app.service_compose(&name, op).await;
    assert!(
        !text.contains("s3cret") && text.contains("PLAIN=1") && text.contains("<hidden>"),
        "{text}"
    );
    let answer = app.post_compose(&name, op, &text).await;
    answer.expect(200);
    assert_eq!(answer.json()["changes"], json!([]), "{}", answer.json());
    assert_eq!(env(), running);
    let renamed = text.replace("DB_PASSWORD=", "DB_PASS=");
    let line = renamed
        .lines()
        .position(|l| l.contains("DB_PASS="))
        .unwrap()
        + 1;
    let message = app
        .post_compose(&name, op, &renamed)
        .await
        .expect_json_error(400);
    assert!(
        message.contains(&format!("{name}.yml:{line}:")) && message.contains("type its value"),
        "{message}"
    );
    assert_eq!(env(), running);
    assert_eq!(service_version(&name), before, "nothing applied");

    // A value typed replaces it; the change list shows neither value.
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({ "env": "DB_PASSWORD=n3w\nPLAIN=1" })),
        )
        .await;
    answer.expect(200);
    let changes = answer.json()["changes"].to_string();
    assert!(
        changes.contains("DB_PASSWORD=<changed>")
            && !changes.contains("s3cret")
            && !changes.contains("n3w"),
        "{changes}"
    );
    assert_eq!(env(), json!(["DB_PASSWORD=n3w", "PLAIN=1"]));

    // The form's change runs as a job whose page any logged-in viewer reads: its progress
    // names the variable, never a value.
    let posted = app
        .call(service_form(
            op,
            &name,
            &[
                ("name", name.as_str()),
                ("env", "DB_PASSWORD=an0ther\nPLAIN=1"),
                ("confirm", "yes"),
            ],
        ))
        .await;
    let (job, end) = followed_job(&app, &posted).await;
    assert!(end.succeeded, "{end:?}");
    let lines = job.seen(0).lines.join("\n");
    assert!(lines.contains("DB_PASSWORD=<changed>"), "{lines}");
    let page = app
        .call(Call::get(&format!("/jobs/{}", job.id)).session(&app.viewer))
        .await;
    page.expect(200);
    let page = page.text();
    assert!(
        page.contains("DB_PASSWORD=&lt;changed&gt;")
            || page.contains("DB_PASSWORD=&#60;changed&#62;"),
        "{page}"
    );
    for value in ["s3cret", "n3w", "an0ther"] {
        assert!(
            !lines.contains(value) && !page.contains(value),
            "{value}: {lines}"
        );
    }
    assert_eq!(env(), json!(["DB_PASSWORD=an0ther", "PLAIN=1"]));
}

/// Tryout 13 finding 1: the stack diff's JSON twin answers each change's values next to its
/// text; a credential's are never among them, whether the change is the variable itself or
/// another one of the same environment (a list change carries the whole list).
#[tokio::test]
async fn a_stack_diff_answers_no_credential_value() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = TestStack::new("credstack");
    let st = stack.name.as_str();
    let with = |password: &str, extra: &str| {
        greeting_stack("hi", "1s").replace(
            "      GREETING: \"hi\"\n",
            &format!("      GREETING: \"hi\"\n      DB_PASSWORD: \"{password}\"\n{extra}"),
        )
    };
    let deployed = app
        .call(
            Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
                .bearer(&op.token)
                .json(&json!({"compose": with("s3cret", "")})),
        )
        .await;
    deployed.expect(200);
    assert_eq!(deployed.json()["succeeded"], true, "{}", deployed.json());
    for (compose, said) in [
        (
            with("s3cret", "      EXTRA: \"one\"\n"),
            "DB_PASSWORD=<hidden>",
        ),
        (with("n3w", ""), "DB_PASSWORD=<changed>"),
    ] {
        let diff = app
            .call(
                Call::post(&format!("/api/stacks/{st}/diff"))
                    .bearer(&op.token)
                    .json(&json!({ "compose": compose })),
            )
            .await;
        diff.expect(200);
        let text = diff.text();
        assert!(
            !text.contains("s3cret") && !text.contains("n3w") && text.contains(said),
            "{text}"
        );
    }
}
