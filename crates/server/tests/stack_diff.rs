//! The deploy page shows what a deploy would do before it runs: `POST /api/stacks/{name}/diff`
//! and the form's review, against the host's swarm. The form deploys only with the `confirm`
//! of a diff of the same file.

mod support;

use serde_json::{json, Value};
use support::{docker, Call, TestApp, TestStack, IMAGE};

fn compose(greeting: &str) -> String {
    format!(
        "services:
  web:
    image: {IMAGE}
    environment:
      GREETING: \"{greeting}\"
    logging:
      driver: local
      options:
        max-size: 1m
    deploy:
      update_config:
        monitor: 1s
"
    )
}

fn greeting(stack: &str) -> String {
    docker(&[
        "service",
        "inspect",
        &format!("{stack}_web"),
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
    ])
}

fn services(stack: &str) -> String {
    docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ])
}

/// The `confirm` value the review put in the form.
fn confirm_of(page: &str) -> String {
    let at = page
        .find("name=\"confirm\" value=\"")
        .unwrap_or_else(|| panic!("no confirm field in the review:\n{page}"));
    let rest = &page[at + "name=\"confirm\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_deploy_from_the_page_is_shown_as_a_diff_and_runs_once_confirmed() {
    let app = TestApp::new().await;
    let stack = TestStack::new("diffpage");
    let st = stack.name.as_str();
    let (v, op) = (&app.viewer, &app.operator);
    let diff = |who: &str, text: &str| {
        Call::post(&format!("/api/stacks/{st}/diff"))
            .bearer(who)
            .json(&json!({"compose": text}))
    };

    app.call(diff(&v.token, &compose("one")))
        .await
        .expect_json_error(403);
    let answer = app.call(diff(&op.token, &compose("one"))).await;
    answer.expect(200);
    let first: Value = answer.json();
    assert_eq!(first["changes"], true, "{first}");
    assert_eq!(first["services"][0]["name"], format!("{st}_web"));
    assert_eq!(first["services"][0]["action"], "create");
    assert!(
        first["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "network" && o["action"] == "create"),
        "{first}"
    );
    assert!(services(st).is_empty(), "a diff changes nothing");

    // The form's deploy button reviews first: the page shows the diff, nothing runs.
    let form = |text: &str, action: &str, confirm: &str| {
        Call::post("/stacks/deploy").session(op).form(&[
            ("stack", st),
            ("compose", text),
            ("action", action),
            ("confirm", confirm),
        ])
    };
    let review = app.call(form(&compose("one"), "deploy", "")).await;
    review.expect(200);
    let page = review.text();
    assert!(page.contains("id=\"diff-services\"") && page.contains("Confirm deploy"));
    assert!(services(st).is_empty(), "no deploy without a confirmation");
    let confirm = confirm_of(&page);
    assert_eq!(confirm, first["confirm"].as_str().unwrap());

    // Confirmed, it deploys through the deploy engine as a job followed on its page.
    let ran = app.call(form(&compose("one"), "deploy", &confirm)).await;
    let (_, end) = support::followed_job(&app, &ran).await;
    assert_eq!(end.outcome, "succeeded", "{end:?}");
    assert!(greeting(st).contains("GREETING=one"));

    // A changed file: the diff names the field; a confirmation of another file does not
    // deploy this one, it reviews it again.
    let answer = app.call(diff(&op.token, &compose("two"))).await;
    let second: Value = answer.json();
    assert_eq!(second["services"][0]["action"], "restart", "{second}");
    let texts: Vec<&str> = second["services"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"TaskTemplate.ContainerSpec.Env[0]: GREETING=one → GREETING=two"),
        "{texts:?}"
    );
    let stale = app
        .call(form(
            &compose("three"),
            "deploy",
            second["confirm"].as_str().unwrap(),
        ))
        .await;
    stale.expect(200);
    assert!(stale.text().contains("Confirm deploy"));
    assert!(greeting(st).contains("GREETING=one"), "not deployed");
    let unchanged = app.call(diff(&op.token, &compose("one"))).await.json();
    assert_eq!(unchanged["changes"], false, "{unchanged}");
    assert_eq!(unchanged["services"][0]["action"], "unchanged");
}
