//! The dashboard's service form and "edit as compose" complete a spec as `swarmkeeper deploy`
//! does, against the host's swarm and Debian's `docker-registry` on loopback: a service
//! created with only an image runs pinned to the registry's digest with the safe defaults, an
//! operator's explicit value is kept, and a stack deployed by the deploy engine, opened as
//! compose and applied unchanged, is not touched.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use std::collections::HashMap;
use std::path::Path;

use registry_support::{repository, Registry};
use serde_json::{json, Value};
use support::{
    docker, service_version, test_image, try_docker, unique, Call, TestApp, TestService, TestStack,
};
use swarmkeeper_compose::{load, stack_spec, Environment, SourceFile};
use swarmkeeper_deploy::{Options, Request, Stack};

/// The test image pushed to `registry` as `reference`; returns its digest there.
fn push(reference: &str) -> String {
    docker(&["tag", test_image(), reference]);
    let pushed = docker(&["push", reference]);
    pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in docker push's output: {pushed}"))
        .to_owned()
}

/// The local tag goes when the test ends; the registry's folder goes with the registry.
struct LocalTag(String);

impl Drop for LocalTag {
    fn drop(&mut self) {
        let _ = try_docker(&["image", "rm", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_service_gets_the_pin_and_safe_defaults_and_keeps_what_was_typed() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let reference = format!("{}/{}:1", registry.addr, repository("formpin"));
    let _tag = LocalTag(reference.clone());
    let digest = push(&reference);
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("formpin");
    let service = TestService { name: name.clone() };

    // The preview says what the deploy engine adds, as the CLI prints it.
    let preview = app
        .call(
            Call::post("/services/new")
                .session(op)
                .form(&[("name", &name), ("image", &reference)]),
        )
        .await;
    preview.expect(200);
    let text = preview.text();
    assert!(
        text.contains(&format!(
            "safe default: {name}: update_config.failure_action = rollback"
        )) && text.contains("update_config.order = start-first")
            && text.contains("logging = local, max-size 20m"),
        "{text}"
    );
    assert!(try_docker(&["service", "inspect", &name]).is_err());

    // Only a name and an image.
    let created = app
        .call(
            Call::post("/api/services")
                .bearer(&op.token)
                .json(&json!({"name": name, "image": reference})),
        )
        .await;
    support::remove_history(&name);
    created.expect(201);
    let answer = created.json();
    assert!(
        answer["notes"]
            .to_string()
            .contains("rollback_config.failure_action = pause"),
        "{answer}"
    );
    let spec = service.spec();
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        format!("{reference}@{digest}"),
        "{spec}"
    );
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback", "{spec}");
    assert_eq!(spec["UpdateConfig"]["Order"], "start-first", "{spec}");
    assert_eq!(spec["RollbackConfig"]["FailureAction"], "pause", "{spec}");
    assert_eq!(spec["RollbackConfig"]["Order"], "start-first", "{spec}");
    assert_eq!(
        spec["TaskTemplate"]["LogDriver"],
        json!({"Name": "local", "Options": {"max-size": "20m"}}),
        "{spec}"
    );
    service.wait_running(1);

    // An explicit stop-first is the operator's: kept, and no default is added again.
    let edited = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"update_order": "stop-first"})),
        )
        .await;
    support::remove_history(&name);
    edited.expect(200);
    assert_eq!(edited.json()["notes"], json!([]), "{}", edited.json());
    let spec = service.spec();
    assert_eq!(spec["UpdateConfig"]["Order"], "stop-first", "{spec}");
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback", "{spec}");
    assert_eq!(spec["RollbackConfig"]["Order"], "start-first", "{spec}");
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        format!("{reference}@{digest}")
    );

    // The form shows the pinned image; an operator who edits its tag means that tag, not the
    // old digest under a new name (tryout 14 finding 14).
    let (repo, _) = reference.rsplit_once(':').unwrap();
    let other = format!("{repo}:2");
    let _other_tag = LocalTag(other.clone());
    let mut build = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &other, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut build.stdin.take().unwrap(),
        format!("FROM {}\nLABEL skretag=2\n", test_image()).as_bytes(),
    )
    .unwrap();
    assert!(build.wait().unwrap().success());
    let other_digest = docker(&["push", &other])
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap()
        .to_owned();
    assert_ne!(other_digest, digest);
    let retagged = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"image": format!("{other}@{digest}")})),
        )
        .await;
    support::remove_history(&name);
    retagged.expect(200);
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Image"],
        format!("{other}@{other_digest}"),
        "{}",
        retagged.json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_stack_text_previews_no_change_and_applies_nothing() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    // Untagged in the file: the deploy pins it as `…:latest@sha256:…`.
    let repo = format!("{}/{}", registry.addr, repository("composenoop"));
    let _tag = LocalTag(format!("{repo}:latest"));
    let digest = push(&format!("{repo}:latest"));
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = TestStack::new("composenoop");
    let file = format!(
        "services:\n  web:\n    image: {repo}\n    command: [/bin/busybox, sleep, \"3600\"]\n    \
         labels: [\"{}\"]\n",
        support::TEST_LABEL
    );
    deploy_as_the_cli(&app, &stack.name, &file).await;
    let web = format!("{}_web", stack.name);
    let deployed: Value = serde_json::from_str(&docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec}}",
        &web,
    ]))
    .unwrap();
    assert_eq!(
        deployed["TaskTemplate"]["ContainerSpec"]["Image"],
        format!("{repo}:latest@{digest}")
    );
    assert_eq!(deployed["Labels"]["com.docker.stack.image"], repo.as_str());

    // The revision that runs is marked current, and no rollback to it is offered.
    let shown = app
        .call(Call::get(&format!("/api/stacks/{}", stack.name)).bearer(&op.token))
        .await;
    shown.expect(200);
    assert_eq!(
        shown.json()["deploys"][0]["current"],
        true,
        "{}",
        shown.json()
    );
    let page = app
        .call(Call::get(&format!("/stacks/{}", stack.name)).session(op))
        .await;
    page.expect(200);
    assert!(page.text().contains(">current</span>"), "{}", page.text());
    assert!(
        !page.text().contains("Roll back to this"),
        "{}",
        page.text()
    );

    let page = app
        .call(Call::get(&format!("/stacks/{}/compose", stack.name)).session(op))
        .await;
    page.expect(200);
    let compose = support::compose_text_of(&page.text());
    assert!(!compose.contains("sha256"), "{compose}");
    let before = service_version(&web);
    let preview = app
        .call(
            Call::post(&format!("/stacks/{}/compose", stack.name))
                .session(op)
                .form(&[("compose", &compose)]),
        )
        .await;
    preview.expect(200);
    let text = preview.text();
    assert!(
        text.contains("<li class=\"muted\">No change.</li>"),
        "{text}"
    );
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{}/compose", stack.name))
                .bearer(&op.token)
                .json(&json!({ "compose": compose })),
        )
        .await;
    answer.expect(200);
    let edited: Value = answer.json();
    assert_eq!(edited["changes"], json!([]), "{edited}");
    assert_eq!(
        service_version(&web),
        before,
        "nothing was applied: {edited}"
    );
}

/// What `swarmkeeper deploy -c FILE STACK` runs: the file loaded by `compose`, made specs, and
/// deployed by the deploy engine with its defaults (safe defaults, digests pinned).
async fn deploy_as_the_cli(app: &TestApp, stack: &str, text: &str) {
    let variables = HashMap::new();
    let no_files = |path: &str| -> std::io::Result<String> {
        Err(std::io::Error::other(format!("{path}: not read")))
    };
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/"),
        read_file: &no_files,
    };
    let loaded = load(
        &[SourceFile {
            name: "stack.yml",
            text,
        }],
        &environment,
    )
    .unwrap();
    let spec = stack_spec(stack, &loaded).unwrap();
    let request = Request {
        stack: stack.to_owned(),
        by: "the test".to_owned(),
        action: None,
        files: Vec::new(),
        registry_auth: None,
    };
    let outcome = swarmkeeper_deploy::deploy(
        &app.state.engine,
        &app.state.history(),
        &request,
        Stack::new(spec),
        &Options::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(outcome.succeeded, "{outcome:?}");
}

/// A stack's "edit as compose" preview names each service of the stack the text leaves out:
/// the save leaves it running as it is, which a deleted block does not say by itself.
#[tokio::test]
async fn a_stack_text_without_a_service_says_the_service_is_left_as_it_is() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = TestStack::new("leftout");
    let namespace = format!("com.docker.stack.namespace={}", stack.name);
    let kept = TestService::create("leftkept", &["--label", &namespace]);
    let text = format!(
        "services:\n  side:\n    image: {}\n    command: [/bin/busybox, sleep, \"3600\"]\n",
        support::IMAGE
    );
    let preview = app
        .call(
            Call::post(&format!("/stacks/{}/compose", stack.name))
                .session(op)
                .form(&[("compose", &text)]),
        )
        .await;
    preview.expect(200);
    let said = format!(
        "{}: not in the text, left running as it is (remove it from its page)",
        kept.name
    );
    assert!(preview.text().contains(&said), "{}", preview.text());
    assert!(preview
        .text()
        .contains(&format!("create service {}_side", stack.name)));
}
