//! Removing a service and a whole stack from the dashboard, against the host's single-node
//! swarm: who may (operator and admin, never a viewer), CSRF on the form, the confirmation
//! naming what goes, the engine's state afterwards, and the audit log. Removing swarmkeeper's
//! own server says that the dashboard stops, and the API needs a confirmation for it.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{
    docker, exists, is_html, report, try_docker, wait_for, Call, TestApp, TestService, TestStack,
    IMAGE,
};
use swarmkeeper_report::ReportedVolume;

#[tokio::test]
async fn a_service_is_removed_by_an_operator_only_with_csrf_and_audited() {
    let app = TestApp::new().await;
    let by_form = TestService::create("rmf", &[]);
    let by_api = TestService::create("rma", &[]);
    let (v, op) = (&app.viewer, &app.operator);

    // The service's page offers the removal, with a confirmation naming the service, to an
    // operator; a viewer sees no button.
    let page = app
        .call(Call::get(&format!("/services/{}", by_form.name)).cookie(&op.session))
        .await;
    page.expect(200);
    // Asked on the page itself, so that it holds without JavaScript (tryout 14 finding 18).
    let confirm = format!("<p class=\"notice\">Remove service {}?", by_form.name);
    assert!(page.text().contains(&confirm), "{}", page.text());
    let page = app
        .call(Call::get(&format!("/services/{}", by_form.name)).cookie(&v.session))
        .await;
    assert!(
        !page.text().contains("/remove\""),
        "a viewer sees no remove button"
    );

    // Refused: a viewer by token and by form, an operator's form without the CSRF token.
    app.call(Call::delete(&format!("/api/services/{}", by_api.name)).bearer(&v.token))
        .await
        .expect_json_error(403);
    let form = format!("/services/{}/remove", by_form.name);
    app.call(
        Call::post(&form)
            .cookie(&v.session)
            .form(&[("csrf_token", &v.csrf)]),
    )
    .await
    .expect(403);
    app.call(Call::post(&form).cookie(&op.session).form(&[]))
        .await
        .expect(403);
    assert!(exists("service", &by_form.name) && exists("service", &by_api.name));

    // The form goes back to the services page; the API answers what went.
    let answer = app.call(Call::post(&form).session(op).form(&[])).await;
    answer.expect(303);
    assert_eq!(answer.header("location"), "/services");
    assert!(!exists("service", &by_form.name), "removed by the form");
    let answer = app
        .call(Call::delete(&format!("/api/services/{}", by_api.name)).bearer(&app.admin.token))
        .await;
    answer.expect(200);
    assert_eq!(
        answer.json(),
        json!({"service": by_api.name, "stack": null})
    );
    assert!(!exists("service", &by_api.name), "removed through the API");
    // Gone is 404, naming it.
    let message = app
        .call(Call::delete(&format!("/api/services/{}", by_api.name)).bearer(&op.token))
        .await
        .expect_json_error(404);
    assert!(message.contains(&by_api.name), "{message}");

    let audit = app.audit().await;
    for (who, target) in [("operator", &by_form.name), ("admin", &by_api.name)] {
        assert!(
            audit.iter().any(|e| e["who"] == who
                && e["action"] == "remove"
                && e["target"] == target.as_str()),
            "{who} {target}: {audit:?}"
        );
    }
}

/// A stack with a service, a secret, a config and a network, removed from its page: the
/// confirmation names each, and afterwards none is left.
#[tokio::test]
async fn a_stack_is_removed_with_its_secrets_configs_and_networks() {
    let app = TestApp::new().await;
    let stack = TestStack::new("rms");
    let st = &stack.name;
    let op = &app.operator;
    // The dashboard reads no file from the server's disk: the secret and config are made
    // with the docker CLI, labelled as the stack's, and the file names them as external.
    let secret = format!("{st}_token");
    let config = format!("{st}_settings");
    let label = format!("com.docker.stack.namespace={st}");
    docker(&[
        "secret",
        "create",
        "--label",
        &label,
        &secret,
        "/etc/hostname",
    ]);
    docker(&[
        "config",
        "create",
        "--label",
        &label,
        &config,
        "/etc/hostname",
    ]);
    let compose = format!(
        "services:
  web:
    image: {IMAGE}
    networks: [back]
    secrets: [token]
    configs: [settings]
    logging:
      driver: local
      options:
        max-size: 1m
    deploy:
      update_config:
        monitor: 1s
networks:
  back: {{}}
secrets:
  token:
    external: true
    name: {secret}
configs:
  settings:
    external: true
    name: {config}
"
    );
    let deploy = app
        .call(
            Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
                .bearer(&op.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    deploy.expect(200);
    assert_eq!(deploy.json()["succeeded"], true, "{}", deploy.text());
    let network = format!("{st}_back");
    assert!(exists("network", &network));

    // The page's confirmation names everything that goes, and the volumes an agent reports
    // for the stack, which stay.
    let mut reported = report("rmnode1aaaaaaaaaaaaaaaaaa", "node-9");
    reported.volumes = Some(vec![ReportedVolume {
        name: format!("{st}_data"),
        driver: "local".into(),
        labels: [("com.docker.stack.namespace".to_owned(), st.to_string())].into(),
        ..Default::default()
    }]);
    app.post_report(&reported).await;
    let page = app
        .call(Call::get(&format!("/stacks/{st}")).cookie(&op.session))
        .await;
    page.expect(200);
    assert!(is_html(&page.headers));
    let text = page.text();
    let confirm = format!(
        "Remove stack {st}? This removes services: {st}_web; secrets: {secret}; configs: {config}; networks: {network}. Kept: the deploy history, and its volumes {st}_data on node-9 (remove them on the Volumes page)."
    );
    assert!(text.contains(&confirm), "{text}");
    let view = app
        .call(Call::get(&format!("/api/stacks/{st}")).bearer(&app.viewer.token))
        .await
        .json();
    assert!(
        view.get("removes").is_none(),
        "a viewer is not offered removal: {view}"
    );

    // Refused to a viewer; then removed by the operator's form.
    app.call(Call::delete(&format!("/api/stacks/{st}")).bearer(&app.viewer.token))
        .await
        .expect_json_error(403);
    assert!(exists("service", &format!("{st}_web")));
    let answer = app
        .call(
            Call::post(&format!("/stacks/{st}/remove"))
                .session(op)
                .form(&[]),
        )
        .await;
    answer.expect(303);
    assert_eq!(answer.header("location"), "/stacks");
    assert!(!exists("service", &format!("{st}_web")));
    assert!(!exists("secret", &secret));
    assert!(!exists("config", &config));
    wait_for("the stack's network to go", Duration::from_secs(30), || {
        !exists("network", &network)
    });

    let audit = app.audit().await;
    let entry = audit
        .iter()
        .find(|e| e["action"] == "remove" && e["target"] == st.as_str())
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(entry["who"], "operator");
    assert_eq!(
        entry["detail"],
        format!("stack; services {st}_web; secrets {secret}; configs {config}; networks {network}")
    );
    // Nothing left: 404, and a name no stack may have is refused before the engine is asked.
    app.call(Call::delete(&format!("/api/stacks/{st}")).bearer(&op.token))
        .await
        .expect_json_error(404);
    app.call(Call::delete("/api/stacks/-bad").bearer(&op.token))
        .await
        .expect_json_error(400);
}

/// Removing swarmkeeper's own server (a service, or the stack holding it) says that the
/// dashboard stops, and the JSON API takes it only with `confirm` naming what goes. (The
/// agent's label is left alone here: volume removals on this engine look for it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_swarmkeeper_itself_says_so_and_needs_a_confirmation() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = support::TestStack::new("skself");
    let namespace = format!("com.docker.stack.namespace={}", stack.name);
    let server = TestService::create(
        "skserver",
        &["--label", "swarmkeeper.server=true", "--label", &namespace],
    );
    let other = TestService::create("skother", &["--label", &namespace]);

    // The service: its page's confirmation says it, the API refuses without `confirm`.
    let page = app
        .call(Call::get(&format!("/services/{}", server.name)).session(op))
        .await
        .text();
    assert!(
        page.contains(&format!(
            r#"action="/services/{0}/remove?confirm={0}""#,
            server.name
        )),
        "{page}"
    );
    assert!(
        page.contains("<p class=\"notice\">This removes swarmkeeper")
            && page.contains("own server: this dashboard stops. Remove service"),
        "{page}"
    );
    let json: Value = app
        .call(Call::get(&format!("/api/services/{}", server.name)).bearer(&op.token))
        .await
        .json();
    assert!(
        json["removal_warning"]
            .as_str()
            .is_some_and(|w| w.contains("this dashboard stops")),
        "{json}"
    );
    let refused = app
        .call(Call::delete(&format!("/api/services/{}", server.name)).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("this dashboard stops"), "{refused}");
    assert!(
        refused.contains(&format!("?confirm={}", server.name)),
        "{refused}"
    );
    app.call(
        Call::delete(&format!("/api/services/{}?confirm=nope", server.name)).bearer(&op.token),
    )
    .await
    .expect_json_error(409);
    assert!(try_docker(&["service", "inspect", &server.name]).is_ok());
    // Any other service goes as before, without a word.
    let plain: Value = app
        .call(Call::get(&format!("/api/services/{}", other.name)).bearer(&op.token))
        .await
        .json();
    assert_eq!(plain.get("removal_warning"), None, "{plain}");

    // The stack holding it: the same.
    let page = app
        .call(Call::get(&format!("/stacks/{}", stack.name)).session(op))
        .await
        .text();
    assert!(
        page.contains(&format!(
            r#"action="/stacks/{0}/remove?confirm={0}""#,
            stack.name
        )),
        "{page}"
    );
    assert!(page.contains("this dashboard stops."), "{page}");
    let refused = app
        .call(Call::delete(&format!("/api/stacks/{}", stack.name)).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("this dashboard stops"), "{refused}");
    assert!(try_docker(&["service", "inspect", &other.name]).is_ok());
    let removed: Value = app
        .call(Call::delete(&format!("/api/stacks/{0}?confirm={0}", stack.name)).bearer(&op.token))
        .await
        .json();
    let services = removed["removed"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{removed}");
}
