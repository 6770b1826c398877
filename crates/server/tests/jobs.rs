//! Dashboard changes run as jobs followed live. The service form's post answers 303 to the
//! job's page at once, the deploy engine's lines reach the job's event stream while the deploy
//! runs, the job ends with the outcome and links to the history, and the history and audit log
//! record the edit as the JSON API's would. Any logged-in user may read a job; anonymous
//! callers may not, and an unknown job is 404. Stack deploys and rollbacks from the dashboard
//! run as jobs too, and a server that stops interrupts its jobs: the revision, the job's page
//! and the ledger say so, and after a restart a job that is gone answers a page that says what
//! became of it.

mod support;

use std::time::Duration;

use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{
    greeting_of, greeting_stack, job_of, send, Answer, Call, HistoryOf, TestApp, TestService,
    TestStack, SLEEP,
};
use swarmkeeper_deploy::History;
use swarmkeeper_server::jobs::{ledger, Jobs};

/// The form's deploy of `compose`, confirmed with the confirmation the diff gives.
async fn form_deploy(app: &TestApp, stack: &str, compose: &str) -> Answer {
    let op = &app.operator;
    let diff = app
        .call(
            Call::post(&format!("/api/stacks/{stack}/diff"))
                .bearer(&op.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    diff.expect(200);
    let confirm = diff.json()["confirm"].as_str().unwrap().to_owned();
    app.call(Call::post("/stacks/deploy").session(op).form(&[
        ("stack", stack),
        ("compose", compose),
        ("action", "deploy"),
        ("confirm", &confirm),
    ]))
    .await
}

#[tokio::test]
async fn a_form_edit_runs_as_a_job_followed_live_and_readable_by_viewers_only_logged_in() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running(
        "jobedit",
        &[
            "--update-monitor",
            "10s",
            "--restart-delay",
            "1s",
            "--stop-grace-period",
            "1s",
        ],
        SLEEP,
    );
    let name = service.name.clone();
    // The edit's revision in the swarm goes whatever happens.
    let _history = HistoryOf(name.clone());
    service.wait_running(1);

    // The form's apply: a 303 to the job's page, while the deploy still runs.
    let posted = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", &name),
                    // Fails after a few seconds: the lines before it come while the job runs.
                    ("command", "/bin/busybox sh -c 'sleep 4; exit 1'"),
                    ("update_failure_action", "rollback"),
                    ("confirm", "yes"),
                ]),
        )
        .await;
    let (id, job) = job_of(&app, &posted);
    let page = posted.location().to_owned();
    assert_eq!(job.user, op.name);

    // Readers: anonymous callers get nothing, a viewer reads it.
    app.call(Call::get(&format!("/api/jobs/{id}")))
        .await
        .expect(401);
    let anonymous = app.open(Call::get(&format!("/api/jobs/{id}/events"))).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let read = app
        .call(Call::get(&format!("/api/jobs/{id}")).bearer(&app.viewer.token))
        .await;
    read.expect(200);
    assert_eq!(read.json()["running"], true, "{}", read.json());
    app.call(Call::get("/api/jobs/0-0").bearer(&app.viewer.token))
        .await
        .expect(404);

    // The event stream: lines while the job runs, then its end, then the stream closes.
    let stream = app
        .open(Call::get(&format!("/api/jobs/{id}/events")).bearer(&app.viewer.token))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = stream.into_body();
    let mut text = String::new();
    let mut lines_while_running = false;
    let read_all = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            let chunk = String::from_utf8(data.to_vec()).unwrap();
            if chunk.contains(&format!("data: {name}: ")) && job.seen(0).end.is_none() {
                lines_while_running = true;
            }
            text.push_str(&chunk);
        }
    };
    tokio::time::timeout(Duration::from_secs(180), read_all)
        .await
        .expect("the job ends within 3 minutes");
    assert!(
        lines_while_running,
        "no deploy line came before the end:\n{text}"
    );
    let end = text
        .split("event: end\ndata: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no end event:\n{text}"));
    let end: serde_json::Value = serde_json::from_str(end.lines().next().unwrap()).unwrap();
    assert_eq!(end["outcome"], "rolled back", "{end}");
    assert_eq!(end["succeeded"], false, "{end}");
    assert_eq!(end["links"][0]["href"], format!("/stacks/{name}"), "{end}");

    // A reconnecting reader gets only what came after its last id, then the end.
    let after = app
        .call(
            Call::get(&format!("/api/jobs/{id}/events"))
                .bearer(&app.viewer.token)
                .header("last-event-id", "1"),
        )
        .await;
    after.expect(200);
    let resumed = after.text();
    // Every line but the first, and the end's one data line.
    let data = resumed.lines().filter(|l| l.starts_with("data: ")).count();
    assert_eq!(data, job.seen(0).next, "{resumed}");
    assert!(resumed.contains("event: end"), "{resumed}");

    // The page at its end, and what was recorded.
    let shown = app.call(Call::get(&page).session(&app.viewer)).await;
    shown.expect(200);
    let html = shown.text();
    assert!(
        html.contains("id=\"outcome\"") && html.contains("rolled back"),
        "{html}"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished job reloads: {html}"
    );
    let history = app.state.history().revisions(&name).await.unwrap();
    assert_eq!(history[0].outcome.to_string(), "rolled back");
    assert_eq!(
        history[0].by_sentence(),
        format!("edited in the dashboard by {}", op.name)
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "edit-service" && e["target"] == name.as_str()),
        "{audit:?}"
    );
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Args"],
        json!(SLEEP)
    );
}

/// Stack deploys and rollbacks from the dashboard run as jobs like the service form's.
#[tokio::test]
async fn a_stack_deploy_and_rollback_from_the_dashboard_run_as_jobs() {
    let app = TestApp::new().await;
    let stack = TestStack::new("jobstack");
    let st = stack.name.as_str();

    // A deploy: 303 to the job at once, the lines while it runs, the outcome and revision.
    let posted = form_deploy(&app, st, &greeting_stack("one", "3s")).await;
    let (id, job) = job_of(&app, &posted);
    assert_eq!(job.title, format!("Deploy of stack {st}"));
    assert_eq!(job.user, app.operator.name);
    assert!(
        job.seen(0).end.is_none(),
        "the form answered before the deploy ended"
    );
    let (_, end) = support::followed_job(&app, &posted).await;
    assert_eq!(end.outcome, "succeeded", "{end:?}");
    assert!(end.succeeded);
    let history = app.state.history().revisions(st).await.unwrap();
    let first = history[0].revision;
    assert_eq!(end.links[0].text, format!("revision {first} of {st}"));
    assert_eq!(end.links[0].href, format!("/stacks/{st}"));
    assert!(
        end.links
            .iter()
            .any(|l| l.href == format!("/services/{st}_web")),
        "{end:?}"
    );
    let lines = job.seen(0).lines;
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{st}_web: "))),
        "{lines:?}"
    );
    assert!(greeting_of(st).contains("GREETING=one"));
    let page = app
        .call(Call::get(&format!("/jobs/{id}")).session(&app.viewer))
        .await;
    page.expect(200);
    assert!(page.text().contains("id=\"outcome\""), "{}", page.text());

    // A file the deploy cannot take is refused on the form, before any job starts.
    let op = &app.operator;
    let broken = app
        .call(Call::post("/stacks/deploy").session(op).form(&[
            ("stack", "-bad"),
            ("compose", &greeting_stack("x", "1s")),
            ("action", "deploy"),
            ("confirm", "x"),
        ]))
        .await;
    assert_eq!(broken.status.as_u16(), 400, "{}", broken.text());

    // A second revision, then the form's rollback: a job too, back to the first revision.
    let second = form_deploy(&app, st, &greeting_stack("two", "1s")).await;
    assert_eq!(
        support::followed_job(&app, &second).await.1.outcome,
        "succeeded"
    );
    assert!(greeting_of(st).contains("GREETING=two"));
    let posted = app
        .call(
            Call::post(&format!("/stacks/{st}/rollback"))
                .session(op)
                .form(&[("to", "")]),
        )
        .await;
    let (rollback, end) = support::followed_job(&app, &posted).await;
    assert!(rollback
        .title
        .starts_with(&format!("Rollback of stack {st}")));
    assert_eq!(end.outcome, "succeeded", "{end:?}");
    let history = app.state.history().revisions(st).await.unwrap();
    assert_eq!(history[0].kind.to_string(), "rollback");
    assert_eq!(
        end.links[0].text,
        format!("revision {} of {st}", history[0].revision)
    );
    assert!(greeting_of(st).contains("GREETING=one"));

    // The JSON twin starts a job too with `?wait=false` (202, `Location` its JSON) ...
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{st}/rollback?wait=false"))
                .bearer(&op.token)
                .json(&json!({"to": history[1].revision})),
        )
        .await;
    let (_, end) = support::followed_job(&app, &answer).await;
    assert_eq!(end.outcome, "succeeded", "{end:?}");
    assert!(greeting_of(st).contains("GREETING=two"));
    // ... and by default answers the outcome at its end.
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{st}/rollback"))
                .bearer(&op.token)
                .json(&json!({"to": history[0].revision})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["outcome"], "succeeded", "{}", answer.json());
    assert!(greeting_of(st).contains("GREETING=one"));

    // The audit log has each run's end, as from the API.
    let audit = app.audit().await;
    let ends: Vec<&str> = audit
        .iter()
        .filter(|e| e["target"] == st)
        .filter_map(|e| e["detail"].as_str())
        .filter(|d| !d.ends_with("started"))
        .collect();
    assert_eq!(ends.len(), 5, "{audit:?}");
}

/// A server that stops interrupts its jobs: the revision, the job's page and the ledger say
/// so, and after a restart a job that is gone answers a page that says what became of it.
#[tokio::test]
async fn a_shutdown_interrupts_a_running_job_and_a_restart_says_what_became_of_it() {
    let app = TestApp::new().await;
    let stack = TestStack::new("jobstop");
    let st = stack.name.as_str();
    // The server serving, as `swarmkeeper server` does, until its shutdown.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(swarmkeeper_server::serve_on(
        app.state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    // A deploy that follows its new service for a minute (the monitor window).
    let posted = form_deploy(&app, st, &greeting_stack("one", "60s")).await;
    let (id, job) = job_of(&app, &posted);
    let mut changed = job.subscribe();
    while !job
        .seen(0)
        .lines
        .iter()
        .any(|l| l.starts_with(&format!("{st}_web: ")))
    {
        tokio::time::timeout(Duration::from_secs(60), changed.changed())
            .await
            .expect("the deploy starts within a minute")
            .unwrap();
    }
    // A job of a server that died without ending it (as SIGKILL leaves it): in the ledger,
    // running.
    let killed = Jobs::default().start(
        format!("Edit of service {st}_web"),
        "operator",
        vec![swarmkeeper_server::jobs::Link {
            text: format!("history of {st}"),
            href: format!("/stacks/{st}"),
        }],
    );
    ledger::started(&app.state.auth(), &killed).unwrap();

    // SIGTERM: the server stops its deploy at the next safe point, which records it.
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), served)
        .await
        .expect("the server stops within 30 s")
        .unwrap()
        .unwrap();
    let end = job.seen(0).end.expect("the job ended with the shutdown");
    assert_eq!(end.outcome, "interrupted", "{end:?}");
    assert!(!end.succeeded);
    let notes = end.notes.join("\n");
    assert!(
        notes.contains("interrupted by the server's shutdown"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("{st}_web: the update is Swarm's"))
            && notes.contains("Swarm rolls the service back by itself"),
        "{notes}"
    );
    let history = app.state.history().revisions(st).await.unwrap();
    assert_eq!(history[0].outcome.to_string(), "interrupted");
    assert!(
        history[0].summary.contains("the server's shutdown"),
        "{}",
        history[0].summary
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["target"] == st && e["detail"].as_str().unwrap().starts_with("interrupted")),
        "{audit:?}"
    );
    // The service itself is Swarm's: it still runs.
    support::wait_for("the stack's service runs", Duration::from_secs(60), || {
        support::docker(&["service", "ls", "-q", "--filter", &format!("name={st}_web")])
            .lines()
            .count()
            == 1
    });

    // Restarted on the same state directory.
    let restarted = support::open_state(app.dir.path(), None);
    let router = swarmkeeper_server::app(restarted);
    let viewer = &app.viewer;

    // The interrupted job: its page from the ledger, what Swarm does now, no lines.
    let page = send(&router, Call::get(&format!("/jobs/{id}")).session(viewer)).await;
    page.expect(200);
    let html = page.text();
    assert!(
        html.contains("id=\"gone\"") && html.contains("interrupted"),
        "{html}"
    );
    assert!(html.contains("rolls the service back by itself"), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
    let json: Value = send(
        &router,
        Call::get(&format!("/api/jobs/{id}")).bearer(&viewer.token),
    )
    .await
    .json();
    assert_eq!(json["gone"], "restart", "{json}");
    assert_eq!(json["end"]["outcome"], "interrupted", "{json}");

    // The job its server never ended: lost with the restart, linking to the history.
    let lost = send(
        &router,
        Call::get(&format!("/jobs/{}", killed.id)).session(viewer),
    )
    .await;
    lost.expect(410);
    let html = lost.text();
    assert!(html.contains("lost with the server restart"), "{html}");
    assert!(html.contains(&format!("href=\"/stacks/{st}\"")), "{html}");
    let events = send(
        &router,
        Call::get(&format!("/api/jobs/{}/events", killed.id)).bearer(&viewer.token),
    )
    .await;
    events.expect(404);

    // An id of an earlier run the ledger never had: said so too; a made-up one is 404.
    let unknown = send(
        &router,
        Call::get("/api/jobs/1700000000000-7").bearer(&viewer.token),
    )
    .await;
    unknown.expect(410);
    assert_eq!(unknown.json()["gone"], "restart");
    send(&router, Call::get("/api/jobs/0-0").bearer(&viewer.token))
        .await
        .expect(404);
}
