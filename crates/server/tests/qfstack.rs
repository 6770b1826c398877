//! The stack deploy form and the stack page say what is true (tryout 7, entries 4, 13, 19):
//! a lint refusal names the first error and the form's own checkbox, the review shows the safe
//! defaults the deploy adds, and a compose edit that changes nothing offers no apply.

mod support;

use serde_json::json;
use support::{Call, TestApp, TestStack, IMAGE};
use swarmkeeper_deploy::History;

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
            Call::post(&format!("/api/stacks/{st}/deploy"))
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
