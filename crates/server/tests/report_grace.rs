//! The agents' report secret across a rotation, against the host's swarm: a server started
//! with another report secret than at its last start accepts the previous one too, so an
//! agent Swarm left on a paused node keeps reporting; the secret's page names the nodes still
//! on it; the grace ends once every node's agent reported with the new one, or when an admin
//! ends it, and the previous secret is refused from then on.

mod support;

use serde_json::json;
use support::*;

const OLD: &str = "old report secret 0123456789abcdef0123456789abcdef";
const NEW: &str = "new report secret fedcba9876543210fedcba9876543210";
const NEWER: &str = "newer report secret 00112233445566778899aabbccddeeff";

/// Posts `host`'s report with `secret`; the status.
async fn report_with(router: &axum::Router, secret: &str, host: &str) -> u16 {
    let call = Call::post(swarmkeeper_report::REPORT_PATH)
        .bearer(secret)
        .body(
            "application/json",
            serde_json::to_vec(&report("", host)).unwrap(),
        );
    send(router, call).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_the_previous_report_secret_keeps_reporting_until_every_node_moved() {
    let app = TestApp::new().await;
    let admin = app.admin.token.clone();
    let secret = unique("skreport");
    let _made = MadeSecrets(vec![secret.clone()]);
    create_secret(&secret, NEW);
    let _server = TestService::create(
        "skreportserver",
        &[
            "--label",
            "swarmkeeper.server=true",
            "--secret",
            &format!("source={secret},target=swarmkeeper_report_secret"),
        ],
    );
    let (paused, active) = (unique("paused-node"), unique("active-node"));
    let start = |secret: &str| {
        app.state.shutdown.begin();
        swarmkeeper_server::app(open_state(app.dir.path(), Some(secret)))
    };

    // Before the rotation: both agents report with the old secret.
    let before = start(OLD);
    assert_eq!(report_with(&before, OLD, &paused).await, 204);
    assert_eq!(report_with(&before, OLD, &active).await, 204);
    assert_eq!(report_with(&before, NEW, &active).await, 401);

    // The server restarts on the new secret; Swarm moved the active node's agent, not the
    // paused node's: both are taken.
    let after = start(NEW);
    assert_eq!(report_with(&after, NEW, &active).await, 204);
    assert_eq!(report_with(&after, OLD, &paused).await, 204);
    assert_eq!(report_with(&after, "anything else", &paused).await, 401);
    let page = send(
        &after,
        Call::get(&format!("/api/secrets/{secret}")).bearer(&admin),
    )
    .await;
    page.expect(200);
    assert_eq!(
        page.json()["report_secret"],
        json!({"previous_accepted": true, "nodes_on_previous": [paused.clone()]})
    );
    let html = send(
        &after,
        Call::get(&format!("/secrets/{secret}")).session(&app.admin),
    )
    .await;
    assert!(html.text().contains(&paused), "{}", html.text());
    assert!(html.text().contains("forget-previous"), "{}", html.text());
    // Still during the grace after another restart on the same secret.
    let again = start(NEW);
    assert_eq!(report_with(&again, OLD, &paused).await, 204);

    // The paused node's agent moves too: the grace ends, the old secret is refused.
    assert_eq!(report_with(&again, NEW, &paused).await, 204);
    assert_eq!(report_with(&again, NEW, &active).await, 204);
    assert_eq!(report_with(&again, OLD, &paused).await, 401);
    let page = send(
        &again,
        Call::get(&format!("/api/secrets/{secret}")).bearer(&admin),
    )
    .await;
    assert_eq!(
        page.json()["report_secret"],
        json!({"previous_accepted": false, "nodes_on_previous": []})
    );

    // Rotated again; an admin ends the grace before the paused node's agent moved.
    let newer = start(NEWER);
    assert_eq!(report_with(&newer, NEW, &paused).await, 204);
    send(
        &newer,
        Call::post(&format!("/api/secrets/{secret}/forget-previous")).bearer(&app.operator.token),
    )
    .await
    .expect(403);
    send(
        &newer,
        Call::post(&format!("/api/secrets/{secret}/forget-previous")).bearer(&admin),
    )
    .await
    .expect(204);
    assert_eq!(report_with(&newer, NEW, &paused).await, 401);
    assert_eq!(report_with(&newer, NEWER, &paused).await, 204);
    let audit = serde_json::to_string(&app.audit().await).unwrap();
    assert!(audit.contains("report-secret"), "{audit}");
    for secret in [OLD, NEW, NEWER] {
        assert!(!audit.contains(secret), "{audit}");
    }
}
