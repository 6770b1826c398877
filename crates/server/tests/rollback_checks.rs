//! What a rollback refuses before it changes anything (issue 14): a revision, or a service's
//! previous spec, that publishes a port another service took since (400, naming the port and
//! the service that has it), and a revision that cannot be a rollback's target by the rule
//! the stack page offers "Roll back to this" by (409, saying why and which can). Against the
//! host's single-node swarm, each stack and service named uniquely and removed at the end.

mod support;

use serde_json::{json, Value};
use support::{
    greeting_of, greeting_stack, service_version, Answer, Call, TestApp, TestService, TestStack,
};
use swarmkeeper_deploy::History;

/// Deploys `compose` as `stack` through the API, waiting for the end: it must end `outcome`.
async fn deployed(app: &TestApp, stack: &str, compose: &str, outcome: &str) {
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{stack}/deploy?wait=true"))
                .bearer(&app.operator.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["outcome"], outcome, "{}", answer.text());
}

async fn rollback(app: &TestApp, stack: &str, body: Value) -> Answer {
    app.call(
        Call::post(&format!("/api/stacks/{stack}/rollback?wait=true"))
            .bearer(&app.operator.token)
            .json(&body),
    )
    .await
}

/// A port of the routing mesh for this test binary alone (the host's swarm is shared).
fn free_port(offset: u32) -> u32 {
    20_000 + (std::process::id() % 9_000) * 2 + offset
}

/// Revision 1 published a port that a service outside the stack took after revision 2 gave it
/// up: the engine would refuse the rollback's update half-way; it is refused before anything
/// changes, by number and by default, from the API and the stack page's form.
#[tokio::test]
async fn a_rollback_to_a_revision_whose_port_another_service_took_is_refused_at_once() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rbport");
    let st = stack.name.as_str();
    let port = free_port(0);
    let published = greeting_stack("one", "1s").replace(
        "    deploy:\n",
        &format!("    ports:\n      - \"{port}:80\"\n    deploy:\n"),
    );
    deployed(&app, st, &published, "succeeded").await;
    deployed(&app, st, &greeting_stack("two", "1s"), "succeeded").await;
    let taker = TestService::create("rbporty", &["--publish", &format!("{port}:80")]);

    let web = format!("{st}_web");
    let version = service_version(&web);
    let revisions = app.state.history().revisions(st).await.unwrap().len();
    for body in [json!({"to": 1}), json!({})] {
        let message = rollback(&app, st, body.clone())
            .await
            .expect_json_error(400);
        assert!(
            message.contains(&format!("revision 1 of {st} cannot be rolled back to"))
                && message.contains(&format!(
                    "service {web} publishes port {port}/tcp, which service {} already publishes",
                    taker.name
                )),
            "{body}: {message}"
        );
    }
    let form = app
        .call(
            Call::post(&format!("/stacks/{st}/rollback"))
                .session(&app.operator)
                .form(&[("to", "1")]),
        )
        .await;
    assert_eq!(form.status.as_u16(), 400, "{}", form.text());
    assert!(app.state.jobs.running().is_empty());
    assert_eq!(service_version(&web), version, "nothing was applied");
    assert!(greeting_of(st).contains("GREETING=two"));
    assert_eq!(
        app.state.history().revisions(st).await.unwrap().len(),
        revisions,
        "nothing was recorded"
    );

    // Once the port is free again the same rollback goes through.
    drop(taker);
    let answer = rollback(&app, st, json!({"to": 1})).await;
    answer.expect(200);
    assert!(greeting_of(st).contains("GREETING=one"));
}

/// Swarm's own rollback of a service whose previous spec published a port another service
/// took since: refused before Swarm is asked, naming the port and the service that has it.
#[tokio::test]
async fn a_service_rollback_to_a_port_another_service_took_is_refused_at_once() {
    let app = TestApp::new().await;
    let port = free_port(1);
    let service = TestService::create("rbsvcport", &["--publish", &format!("{port}:80")]);
    support::docker(&[
        "service",
        "update",
        "--quiet",
        "--publish-rm",
        // PUBLISHED:TARGET: a bare number would name the target port.
        &format!("{port}:80"),
        &service.name,
    ]);
    // Swarm gives an ingress port back a moment after the update that dropped it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while support::docker(&[
        "service",
        "inspect",
        "--format",
        "{{len .Endpoint.Ports}}",
        &service.name,
    ])
    .trim()
        != "0"
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let taker = TestService::create("rbsvcporty", &["--publish", &format!("{port}:80")]);
    let version = service_version(&service.name);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/rollback", service.name))
                .bearer(&app.operator.token),
        )
        .await;
    let message = answer.expect_json_error(400);
    assert_eq!(
        message,
        format!(
            "service {} cannot be rolled back: its previous spec publishes port {port}/tcp, \
             which service {} already publishes: a port of the routing mesh belongs to one \
             service",
            service.name, taker.name
        )
    );
    assert_eq!(service_version(&service.name), version, "nothing was asked");
}

/// One rule for which revision a rollback may re-apply: the stack page offers "Roll back to
/// this" only on a revision that succeeded and does not run now, and the API refuses any
/// other `to` with 409, saying why and which revisions can be the target.
#[tokio::test]
async fn only_a_succeeded_revision_that_does_not_run_now_can_be_a_rollback_target() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rbrule");
    let st = stack.name.as_str();
    // 1 succeeded ("one"), 2 unchanged, 3 succeeded ("two", runs now).
    deployed(&app, st, &greeting_stack("one", "1s"), "succeeded").await;
    deployed(&app, st, &greeting_stack("one", "1s"), "unchanged").await;
    deployed(&app, st, &greeting_stack("two", "1s"), "succeeded").await;

    let view = app
        .call(Call::get(&format!("/api/stacks/{st}")).bearer(&app.operator.token))
        .await
        .json();
    let offered: Vec<(u64, bool)> = view["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["revision"].as_u64().unwrap(),
                d["can_roll_back_to"] == true,
            )
        })
        .collect();
    assert_eq!(offered, [(3, false), (2, false), (1, true)], "{view}");
    let page = app
        .call(Call::get(&format!("/stacks/{st}")).session(&app.operator))
        .await
        .text();
    assert_eq!(page.matches("Roll back to this").count(), 1, "{page}");
    assert!(
        page.contains("<input type=\"hidden\" name=\"to\" value=\"1\">"),
        "{page}"
    );

    let revisions = app.state.history().revisions(st).await.unwrap().len();
    for (to, why) in [
        (
            3,
            "the stack runs its specs now, so re-applying them would change nothing",
        ),
        (
            2,
            "it changed nothing: its specs are those of the succeeded revision before it",
        ),
    ] {
        let message = rollback(&app, st, json!({"to": to}))
            .await
            .expect_json_error(409);
        assert!(
            message.starts_with(&format!("revision {to} of {st} ("))
                && message.contains(why)
                && message.ends_with("the revisions that can be the target now: 1"),
            "{to}: {message}"
        );
    }
    let form = app
        .call(
            Call::post(&format!("/stacks/{st}/rollback"))
                .session(&app.operator)
                .form(&[("to", "3")]),
        )
        .await;
    assert_eq!(form.status.as_u16(), 409, "{}", form.text());
    assert!(app.state.jobs.running().is_empty());
    assert!(greeting_of(st).contains("GREETING=two"));
    assert_eq!(
        app.state.history().revisions(st).await.unwrap().len(),
        revisions,
        "nothing was recorded"
    );
}
