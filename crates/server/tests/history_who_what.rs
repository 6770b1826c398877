//! Who made a revision and what they did are kept apart in the deploy history, and shown
//! apart: `who` and `what` in the stack's and the service's JSON (beside `by`, the phrase
//! that holds both), the stack page's Who and Summary columns. A revision an older
//! swarmkeeper wrote, whose `by` label held both in one sentence, reads the same way.

mod support;

use support::{docker, unique, Call, TempDir, TestApp, TestService, TestStack};
use swarmkeeper_deploy::{DeployKind, DeployOutcome, History, RevisionEnd, RevisionStart};

/// The start record of revision `number` of `stack` as swarmkeeper wrote it before who and
/// what were recorded apart: a `by` label with the whole sentence, no action label.
fn old_start(stack: &str, number: u64, by: &str) {
    let dir = TempDir::new("oldrev");
    let data = dir.path().join("start.json.gz");
    let gzip = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s' '{{\"format\":1,\"files\":[]}}' | gzip -c > '{}'",
            data.display()
        ))
        .status()
        .unwrap();
    assert!(gzip.success());
    let labels = [
        format!("swarmkeeper.revision.stack={stack}"),
        format!("swarmkeeper.revision.number={number}"),
        "swarmkeeper.revision.record=start".to_owned(),
        "swarmkeeper.revision.chunk=1/1".to_owned(),
        format!("swarmkeeper.revision.by={by}"),
        "swarmkeeper.revision.kind=edit".to_owned(),
        format!("swarmkeeper.revision.started={}", jiff::Timestamp::now()),
    ];
    let mut args = vec!["config".to_owned(), "create".to_owned()];
    for label in labels {
        args.extend(["--label".to_owned(), label]);
    }
    args.push(format!("swarmkeeper-rev-{stack}-{number}"));
    args.push(data.display().to_string());
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_and_what_are_shown_apart_also_for_an_old_revision() {
    let app = TestApp::new().await;
    let stack = unique("whowhat");
    let _history = TestStack {
        name: stack.clone(),
    };
    let namespace = format!("com.docker.stack.namespace={stack}");
    let _service = TestService::create("whowhatweb", &["--label", &namespace]);
    old_start(&stack, 1, "edited in the dashboard by alice");
    let history = app.state.history();
    let now = jiff::Timestamp::now();
    let start = RevisionStart {
        stack: &stack,
        by: "bob",
        action: Some("rotated secret db → db.v2 in the dashboard"),
        kind: &DeployKind::Edit,
        files: &[],
        at: now,
    };
    let number = history.append(&start).await.unwrap();
    assert_eq!(number, 2);
    let end = RevisionEnd {
        outcome: &DeployOutcome::Succeeded,
        summary: "",
        services: &[],
        objects: &[],
        at: now,
    };
    history.finish(&stack, number, &end).await.unwrap();

    let answer = app
        .call(Call::get(&format!("/api/stacks/{stack}")).bearer(&app.viewer.token))
        .await;
    answer.expect(200);
    let json = answer.json();
    let deploys = json["deploys"].as_array().unwrap();
    let apart: Vec<(&str, &str, &str)> = deploys
        .iter()
        .map(|d| {
            (
                d["who"].as_str().unwrap(),
                d["what"].as_str().unwrap(),
                d["by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        apart,
        [
            (
                "bob",
                "rotated secret db → db.v2 in the dashboard",
                "rotated secret db → db.v2 in the dashboard by bob"
            ),
            (
                "alice",
                "edited in the dashboard",
                "edited in the dashboard by alice"
            ),
        ],
        "{json}"
    );

    let page = app
        .call(Call::get(&format!("/stacks/{stack}")).session(&app.viewer))
        .await
        .text();
    for (who, what) in [
        ("bob", "rotated secret db → db.v2 in the dashboard"),
        ("alice", "edited in the dashboard"),
    ] {
        assert!(page.contains(&format!("<td>{who}</td>")), "{who} in {page}");
        assert!(page.contains(&format!("<td>{what}")), "{what} in {page}");
    }
    assert!(
        !page.contains("<td>edited in the dashboard by alice</td>"),
        "{page}"
    );
}
