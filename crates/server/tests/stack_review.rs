//! What the stack pages say before and after a deploy, against the host's swarm: the deploy
//! form's review (`POST /api/stacks/{name}/diff` and the form's preview) shows what a deploy
//! would do, the safe defaults it adds and the lint findings they fix, and deploys only with
//! the `confirm` of a diff of the same file; a lint refusal names the first error and the
//! form's own checkbox; a compose edit that changes nothing offers no apply; the stacks list
//! and the stack page say who changed a stack (tryout 7, entries 4, 13, 19).

mod support;

use serde_json::{json, Value};
use support::{
    greeting_of, greeting_stack, stack_services, Call, TestApp, TestService, TestStack, IMAGE,
};
use swarmkeeper_deploy::History;

/// The stack file of one busybox service saying `greeting`, converging in a second.
fn one_service(greeting: &str) -> String {
    greeting_stack(greeting, "1s")
}

/// The `confirm` value the review put in the form.
fn confirm_of(page: &str) -> String {
    let at = page
        .find("name=\"confirm\" value=\"")
        .unwrap_or_else(|| panic!("no confirm field in the review:\n{page}"));
    let rest = &page[at + "name=\"confirm\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `POST /api/stacks/{name}/diff` and the form's review show what a deploy would do before it
/// runs; the form deploys only with the `confirm` of a diff of the same file.
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

    app.call(diff(&v.token, &one_service("one")))
        .await
        .expect_json_error(403);
    let answer = app.call(diff(&op.token, &one_service("one"))).await;
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
    assert!(stack_services(st).is_empty(), "a diff changes nothing");

    // The form's deploy button reviews first: the page shows the diff, nothing runs.
    let form = |text: &str, action: &str, confirm: &str| {
        Call::post("/stacks/deploy").session(op).form(&[
            ("stack", st),
            ("compose", text),
            ("action", action),
            ("confirm", confirm),
        ])
    };
    let review = app.call(form(&one_service("one"), "deploy", "")).await;
    review.expect(200);
    let page = review.text();
    assert!(page.contains("id=\"diff-services\"") && page.contains("Confirm deploy"));
    assert!(
        stack_services(st).is_empty(),
        "no deploy without a confirmation"
    );
    let confirm = confirm_of(&page);
    assert_eq!(confirm, first["confirm"].as_str().unwrap());

    // Confirmed, it deploys through the deploy engine as a job followed on its page.
    let ran = app
        .call(form(&one_service("one"), "deploy", &confirm))
        .await;
    let (_, end) = support::followed_job(&app, &ran).await;
    assert_eq!(end.outcome, "succeeded", "{end:?}");
    assert!(greeting_of(st).contains("GREETING=one"));

    // A changed file: the diff names the field; a confirmation of another file does not
    // deploy this one, it reviews it again.
    let answer = app.call(diff(&op.token, &one_service("two"))).await;
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
            &one_service("three"),
            "deploy",
            second["confirm"].as_str().unwrap(),
        ))
        .await;
    stale.expect(200);
    assert!(stale.text().contains("Confirm deploy"));
    assert!(greeting_of(st).contains("GREETING=one"), "not deployed");
    let unchanged = app.call(diff(&op.token, &one_service("one"))).await.json();
    assert_eq!(unchanged["changes"], false, "{unchanged}");
    assert_eq!(unchanged["services"][0]["action"], "unchanged");
}

/// A file whose only error (SK001, logging driver `none`, line 5) comes after a warning
/// (SK010, no `update_config`, line 2).
fn warning_then_error() -> String {
    format!("services:\n  web:\n    image: {IMAGE}\n    logging:\n      driver: none\n")
}

#[tokio::test]
async fn a_lint_refusal_names_the_first_error_and_the_checkbox_by_its_label() {
    let app = TestApp::new().await;
    let stack = TestStack::new("qflint");
    let st = stack.name.as_str();
    let op = &app.operator;

    let refused = app
        .call(Call::post("/stacks/deploy").session(op).form(&[
            ("stack", st),
            ("compose", &warning_then_error()),
            ("action", "preview"),
        ]))
        .await;
    refused.expect(400);
    let page = refused.text();
    assert!(
        page.contains("the first at stack.yml:5:15: SK001"),
        "the refusal names the error, not the warning before it:\n{page}"
    );
    assert!(
        page.contains("fix them or tick &quot;Deploy even if lint finds errors&quot;")
            || page.contains("fix them or tick &#34;Deploy even if lint finds errors&#34;"),
        "the form names its checkbox:\n{page}"
    );
    assert!(!page.contains("deploy with ignore_lint_errors"), "{page}");

    // The API names its field.
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{st}/diff"))
                .bearer(&op.token)
                .json(&json!({"compose": warning_then_error()})),
        )
        .await;
    let error = answer.expect_json_error(400);
    assert!(error.contains("stack.yml:5:15: SK001"), "{error}");
    assert!(error.contains("ignore_lint_errors"), "{error}");
}

#[tokio::test]
async fn a_compose_edit_that_changes_nothing_offers_no_apply_and_records_nothing() {
    let app = TestApp::new().await;
    let stack = TestStack::new("qfnoop");
    let st = stack.name.as_str();
    let op = &app.operator;
    let file = format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: [/bin/busybox, sleep, \"3600\"]\n    \
         logging:\n      driver: local\n"
    );
    let deployed = app
        .call(
            Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
                .bearer(&op.token)
                .json(&json!({"compose": file})),
        )
        .await;
    deployed.expect(200);
    assert_eq!(
        deployed.json()["outcome"],
        "succeeded",
        "{}",
        deployed.text()
    );
    let revisions = || async { app.state.history().revisions(st).await.unwrap().len() };
    assert_eq!(revisions().await, 1);

    let edit = app
        .call(Call::get(&format!("/stacks/{st}/compose")).session(op))
        .await;
    edit.expect(200);
    let text = support::compose_text_of(&edit.text());
    let post = |confirm: &str| {
        Call::post(&format!("/stacks/{st}/compose"))
            .session(op)
            .form(&[("compose", text.as_str()), ("confirm", confirm)])
    };
    let preview = app.call(post("")).await;
    preview.expect(200);
    let page = preview.text();
    assert!(page.contains("No change."), "{page}");
    assert!(!page.contains("id=\"apply\""), "nothing to apply:\n{page}");

    // A stale page's apply, and the API's, record nothing.
    let applied = app.call(post("yes")).await;
    applied.expect(200);
    assert!(!applied.text().contains("id=\"apply\""));
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{st}/compose"))
                .bearer(&op.token)
                .json(&json!({"compose": text})),
        )
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["outcome"], "unchanged", "{body}");
    assert_eq!(body["revision"], serde_json::Value::Null, "{body}");
    assert_eq!(revisions().await, 1, "a no-op apply records no revision");

    // The revision the stack runs is "current", with nothing to roll back to.
    let page = app
        .call(Call::get(&format!("/stacks/{st}")).session(op))
        .await
        .text();
    assert!(
        page.contains("title=\"the stack runs this revision\">current"),
        "{page}"
    );
    assert!(!page.contains("Roll back to this"), "{page}");
}

#[tokio::test]
async fn the_deploy_review_shows_the_safe_defaults_and_the_findings_they_fix() {
    let app = TestApp::new().await;
    let stack = TestStack::new("qfdefaults");
    let st = stack.name.as_str();
    let op = &app.operator;
    // No logging (SK003) and no update_config (SK010): warnings the safe defaults cure.
    let file = format!("services:\n  web:\n    image: {IMAGE}\n    deploy:\n      replicas: 2\n");

    let review = app
        .call(Call::post("/stacks/deploy").session(op).form(&[
            ("stack", st),
            ("compose", &file),
            ("action", "preview"),
        ]))
        .await;
    review.expect(200);
    let page = review.text();
    let notes = page
        .split("id=\"diff-notes\"")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or_else(|| panic!("no safe defaults in the review:\n{page}"));
    for setting in [
        "update_config.failure_action",
        "update_config.order",
        "logging",
    ] {
        assert!(
            notes.contains(&format!("safe default: {st}_web: {setting} = ")),
            "{setting} in {notes}"
        );
    }
    let lint = page
        .split("id=\"lint\"")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or_else(|| panic!("no lint in the review:\n{page}"));
    for rule in ["SK003", "SK010"] {
        let item = lint
            .split("<li")
            .find(|li| li.contains(rule))
            .unwrap_or_else(|| panic!("{rule} in {lint}"));
        assert!(item.contains("fixed by the safe defaults"), "{item}");
    }

    // Only the findings the defaults cure are marked.
    for item in lint
        .split("<li")
        .filter(|li| li.contains("fixed by the safe defaults"))
    {
        assert!(item.contains("SK003") || item.contains("SK010"), "{item}");
    }

    // The API's diff carries the same notes.
    let diff = app
        .call(
            Call::post(&format!("/api/stacks/{st}/diff"))
                .bearer(&op.token)
                .json(&json!({"compose": file})),
        )
        .await;
    diff.expect(200);
    let body = diff.json();
    assert!(
        body["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with(&format!("safe default: {st}_web: logging"))),
        "{body}"
    );
}

/// Who made a revision is said once: a dashboard edit's "edited in the dashboard by NAME" is
/// not led by another "by" on the stacks list, a plain name is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_list_says_who_changed_a_stack_once() {
    use swarmkeeper_deploy::DeployKind;
    let app = TestApp::new().await;
    let stack = support::unique("who");
    let _history = support::TestStack {
        name: stack.clone(),
    };
    let namespace = format!("com.docker.stack.namespace={stack}");
    let _service = TestService::create("whoweb", &["--label", &namespace]);
    let now = jiff::Timestamp::now();
    for by in ["alice", "edited in the dashboard by alice"] {
        support::record_revision(&app, &stack, by, &DeployKind::Edit, &[], now).await;
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
