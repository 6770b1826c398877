//! `POST /api/stacks/{name}/rollback` behaves like every other change path (tryout 8, finding
//! 9): a revision no node can run is refused at once, naming the service and the reason, with
//! nothing changed and nothing recorded; with `?wait=false` a rollback that can start answers
//! 202 with its job, whose JSON ends with the outcome, instead of holding the request for up
//! to the deploy timeout; and a failed rollback answers 409, never 200. Against the host's
//! single-node swarm, each stack named uniquely and removed at the end.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{
    docker, greeting_of, greeting_stack, node_id, service_version, unique, Answer, Call, NodeLabel,
    TempDir, TestApp, TestService, TestStack, IMAGE, SLEEP,
};
use swarmkeeper_deploy::History;

/// Deploys `compose` as `stack` through the API, waiting for the end: it must succeed.
async fn deployed(app: &TestApp, stack: &str, compose: &str) {
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{stack}/deploy?wait=true"))
                .bearer(&app.operator.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["outcome"], "succeeded", "{}", answer.text());
}

async fn rollback(app: &TestApp, stack: &str, query: &str, body: Value) -> Answer {
    app.call(
        Call::post(&format!("/api/stacks/{stack}/rollback{query}"))
            .bearer(&app.operator.token)
            .json(&body),
    )
    .await
}

/// The finding's case on one node: revision 1 was placed by a node label the node no longer
/// has (as a paused or drained node no longer takes tasks). Swarm would leave the task pending
/// "no suitable node" until the timeout; the rollback is refused before anything changes.
#[tokio::test]
async fn a_rollback_to_a_revision_no_node_can_run_is_refused_at_once() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rbplace");
    let st = stack.name.as_str();
    let key = unique("rbplace");
    let label = NodeLabel::add(&node_id(), &key, "yes");
    let placed = greeting_stack("one", "1s").replace(
        "    deploy:\n",
        &format!(
            "    deploy:\n      placement:\n        constraints: [\"node.labels.{key} == yes\"]\n"
        ),
    );
    deployed(&app, st, &placed).await;
    deployed(&app, st, &greeting_stack("two", "1s")).await;
    drop(label);

    let web = format!("{st}_web");
    let version = service_version(&web);
    let revisions = app.state.history().revisions(st).await.unwrap().len();
    for (query, body) in [
        ("", json!({"to": 1})),
        ("?wait=true", json!({"to": 1})),
        // The default target, the last good revision before what runs, is revision 1 too.
        ("", json!({})),
    ] {
        let started = Instant::now();
        let answer = rollback(&app, st, query, body.clone()).await;
        let took = started.elapsed();
        let message = answer.expect_json_error(400);
        eprintln!("{query} {body}: refused after {took:?}");
        assert!(
            message.contains(&format!("revision 1 of {st} cannot be rolled back to"))
                && message.contains(&format!("service {web} cannot be placed"))
                && message.contains(&key),
            "{query} {body}: {message}"
        );
        // At once: the preflight asks the engine a few questions, never waits for a rollout.
        assert!(took < Duration::from_secs(30), "{query} {body}: {took:?}");
    }
    assert_eq!(service_version(&web), version, "nothing was applied");
    assert!(greeting_of(st).contains("GREETING=two"));
    assert_eq!(
        app.state.history().revisions(st).await.unwrap().len(),
        revisions,
        "nothing was recorded"
    );
    // The stack page's form is refused the same way, before any job starts.
    let form = app
        .call(
            Call::post(&format!("/stacks/{st}/rollback"))
                .session(&app.operator)
                .form(&[("to", "1")]),
        )
        .await;
    assert_eq!(form.status.as_u16(), 400, "{}", form.text());
    assert!(app.state.jobs.running().is_empty());
}

/// A rollback that follows a 10 s monitor window answers 202 while it runs, `Location` its
/// job's JSON; the job's JSON ends with the outcome and the revision.
#[tokio::test]
async fn an_api_rollback_with_wait_false_answers_202_at_once_and_its_job_ends_with_the_outcome() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rbjob");
    let st = stack.name.as_str();
    deployed(&app, st, &greeting_stack("one", "10s")).await;
    deployed(&app, st, &greeting_stack("two", "10s")).await;

    let started = Instant::now();
    let answer = rollback(&app, st, "?wait=false", json!({})).await;
    let took = started.elapsed();
    answer.expect(202);
    let (id, job) = support::job_of(&app, &answer);
    assert!(
        job.seen(0).end.is_none(),
        "the answer came after the rollback ended ({took:?})"
    );
    eprintln!("202 after {took:?}");

    // The job's JSON, as any logged-in user reads it, until it ends.
    let deadline = Instant::now() + Duration::from_secs(180);
    let end = loop {
        let view = app
            .call(Call::get(&format!("/api/jobs/{id}")).bearer(&app.viewer.token))
            .await;
        view.expect(200);
        let view = view.json();
        if !view["end"].is_null() {
            assert_eq!(view["running"], false, "{view}");
            break view["end"].clone();
        }
        assert_eq!(view["running"], true, "{view}");
        assert!(Instant::now() < deadline, "the job never ended: {view}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("the job ended after {:?}", started.elapsed());
    assert_eq!(end["succeeded"], true, "{end}");
    assert_eq!(end["outcome"], "succeeded", "{end}");
    let newest = app.state.history().revisions(st).await.unwrap()[0].clone();
    assert_eq!(newest.kind.to_string(), "rollback");
    assert_eq!(
        end["links"][0]["text"],
        format!("revision {} of {st}", newest.revision),
        "{end}"
    );
    assert!(greeting_of(st).contains("GREETING=one"));
}

/// Revision 1 bind-mounts a directory that is gone by the time of the rollback: its task is
/// rejected, Swarm and the deploy engine roll the stack back, and the waiting form answers 409
/// with the failure.
#[tokio::test]
async fn a_failed_rollback_with_wait_answers_409_with_the_failures() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rbfail");
    let st = stack.name.as_str();
    let dir = TempDir::new("rbfail");
    let source = dir.path().to_str().unwrap().to_owned();
    let mounted = |greeting: &str, source: Option<&str>| {
        let volumes = source.map_or(String::new(), |s| {
            format!(
                "    volumes:\n      - type: bind\n        source: {s}\n        target: /data\n"
            )
        });
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    command: [/bin/busybox, sleep, \"3600\"]\n\
             {volumes}    environment:\n      GREETING: \"{greeting}\"\n    logging:\n      \
             driver: local\n    deploy:\n      update_config:\n        monitor: 2s\n        \
             failure_action: rollback\n      rollback_config:\n        monitor: 1s\n      \
             restart_policy:\n        delay: 1s\n"
        )
    };
    deployed(&app, st, &mounted("one", Some(&source))).await;
    deployed(&app, st, &mounted("two", None)).await;
    drop(dir);

    let answer = rollback(&app, st, "?wait=true", json!({"to": 1})).await;
    answer.expect(409);
    let view = answer.json();
    assert_eq!(view["succeeded"], false, "{view}");
    assert_eq!(view["outcome"], "rolled back", "{view}");
    let web = format!("{st}_web");
    assert_eq!(view["failures"][0]["service"], web.as_str(), "{view}");
    assert!(greeting_of(st).contains("GREETING=two"));
}

/// The service rollback is Swarm's own: it answers as soon as Swarm took it, or with
/// `?wait=true` at its end like the stacks' changes, 200 rolled back, 409 when Swarm paused it.
#[tokio::test]
async fn a_service_rollback_with_wait_answers_200_or_409_at_its_end() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let settings = [
        "--update-monitor",
        "1s",
        "--rollback-monitor",
        "2s",
        "--rollback-failure-action",
        "pause",
        "--restart-delay",
        "1s",
    ];
    let good = TestService::running("rbsvc", &settings, SLEEP);
    good.wait_running(1);
    docker(&[
        "service",
        "update",
        "--quiet",
        "--env-add",
        "A=2",
        &good.name,
    ]);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/rollback?wait=true", good.name))
                .bearer(&op.token),
        )
        .await;
    answer.expect(200);
    let done = answer.json();
    assert_eq!(done["outcome"], "rolled back", "{done}");
    assert!(!good.spec().to_string().contains("A=2"));

    // Its previous spec exits at once: Swarm's rollback pauses on the first failed task.
    let broken = TestService::running("rbsvcx", &settings, &["/bin/busybox", "sh", "-c", "exit 1"]);
    docker(&[
        "service",
        "update",
        "--quiet",
        "--args",
        "/bin/busybox sleep 3600",
        &broken.name,
    ]);
    broken.wait_running(1);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/rollback?wait=true", broken.name))
                .bearer(&op.token),
        )
        .await;
    answer.expect(409);
    let failed = answer.json();
    assert_eq!(failed["outcome"], "paused", "{failed}");
    assert!(
        failed["why"].as_str().is_some_and(|w| !w.is_empty()),
        "{failed}"
    );
}
