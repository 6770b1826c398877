//! The stack deploy form and the stack page say what is true (tryout 7, entries 4, 13, 19):
//! a lint refusal names the first error and the form's own checkbox, the review shows the safe
//! defaults the deploy adds, and a compose edit that changes nothing offers no apply.

mod support;

use serde_json::json;
use support::{Call, TestApp, TestStack, IMAGE};

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
