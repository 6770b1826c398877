//! Re-keying the server's sealing key against real parts: a stand-in for swarmkeeper's server
//! on the host's swarm (a service labelled `swarmkeeper.server=true` reading the key as
//! `swarmkeeper_secret_key`), an alert channel whose webhook is a receiver started here, and
//! a registry credential for Debian's `docker-registry` with htpasswd. The re-key stages every
//! sealed value for the new key, creates the new version, moves the service to it through the
//! deploy engine; a server started on the old key (Swarm rolled it back) and then on the new
//! key opens both: the channel's send test reaches the receiver, the registry accepts the
//! credential. A server on a key that opens neither shows the channels unusable in a banner
//! on the Alerts page and the overview.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use std::time::Duration;

use axum::Router;
use registry_support::Registry;
use serde_json::{json, Value};
use support::*;
use swarmkeeper_auth::SealingKey;
use tokio::sync::mpsc;

const OLD_KEY: &str = "the old seal key: 0123456789abcdef0123456789abcdef";
const NEW_KEY: &str = "the new seal key: fedcba9876543210fedcba9876543210";
const USER: &str = "ci";
const PASSWORD: &str = "rekey-registry-pw-0815";

fn key(text: &str) -> SealingKey {
    SealingKey::from_secret(text.as_bytes()).unwrap()
}

/// The channel's send test and the registry's test on `router`, both accepted, the test
/// message received.
async fn both_open(
    router: &Router,
    admin: &str,
    channel: i64,
    registry: Option<i64>,
    rx: &mut mpsc::UnboundedReceiver<Value>,
) {
    let page = send(router, Call::get("/api/alerts").bearer(admin))
        .await
        .json();
    assert!(page["channels"][0]["problem"].is_null(), "{page}");
    let tested = send(
        router,
        Call::post(&format!("/api/alerts/channels/{channel}/test")).bearer(admin),
    )
    .await;
    tested.expect(200);
    assert_eq!(tested.json()["ok"], true, "{}", tested.text());
    let message = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the test message arrives")
        .unwrap();
    assert_eq!(message["rule"], "test");
    if let Some(id) = registry {
        let tested = send(
            router,
            Call::post(&format!("/api/registries/{id}/test")).bearer(admin),
        )
        .await;
        tested.expect(200);
        assert_eq!(tested.json()["ok"], true, "{}", tested.text());
    }
}

/// A stand-in for swarmkeeper's server: a service labelled as one that reads `secret` as
/// `swarmkeeper_secret_key`.
fn stand_in_server(name: &str, secret: &str) -> TestService {
    TestService::create(
        name,
        &[
            "--label",
            "swarmkeeper.server=true",
            "--secret",
            &format!("source={secret},target=swarmkeeper_secret_key"),
        ],
    )
}

/// Another server on `app`'s state directory, started with `key_text` as its sealing key.
fn start_on(app: &TestApp, key_text: &str) -> axum::Router {
    swarmkeeper_server::app(open_state_with_key(
        app.dir.path(),
        Some(REPORT_SECRET),
        Some(key(key_text)),
    ))
}

/// The newest revision of `history` (a stack, or a service outside one) as its page's JSON
/// twin shows it.
async fn newest_revision(router: &Router, admin: &str, history: &str) -> Value {
    let call = Call::get(&format!("/api/stacks/{history}")).bearer(admin);
    send(router, call).await.json()["deploys"][0].clone()
}

/// The end of job `job` (`/jobs/ID`) once it has one, within 120 s; `null` if it has none.
async fn job_end(app: &TestApp, admin: &str, job: &str) -> Value {
    for _ in 0..600 {
        let end = app
            .call(Call::get(&format!("/api{job}")).bearer(admin))
            .await
            .json()["end"]
            .clone();
        if !end.is_null() {
            return end;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Value::Null
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekey_keeps_every_channel_and_registry_credential_open_on_either_key() {
    let registry = Registry::htpasswd(USER, PASSWORD);
    let app = TestApp::with_key(Some(key(OLD_KEY))).await;
    let admin = app.admin.token.clone();
    let secret = unique("skrekey");
    let _made = MadeSecrets(vec![secret.clone(), format!("{secret}.v2")]);
    create_secret(&secret, OLD_KEY);
    let server = stand_in_server("skrekeyserver", &secret);
    let (addr, mut rx) = webhook_receiver().await;
    let added = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin)
                .json(&json!({
                    "name": "rekey-hook", "type": "webhook",
                    "url": format!("http://{addr}/hook?token=never-shown")
                })),
        )
        .await;
    added.expect(201);
    let channel = added.json()["id"].as_i64().unwrap();
    let registry_id = match &registry {
        Some(registry) => {
            let added = app
                .call(Call::post("/api/registries").bearer(&admin).json(&json!({
                    "host": registry.addr, "kind": "password", "username": USER,
                    "password": PASSWORD
                })))
                .await;
            added.expect(201);
            Some(added.json()["id"].as_i64().unwrap())
        }
        None => None,
    };

    // Only admins, only with the name as confirmation, only the server's key.
    app.call(
        Call::post(&format!("/api/secrets/{secret}/rekey"))
            .bearer(&app.operator.token)
            .json(&json!({"confirm": secret})),
    )
    .await
    .expect(403);
    let unconfirmed = app
        .call(
            Call::post(&format!("/api/secrets/{secret}/rekey"))
                .bearer(&admin)
                .json(&json!({"data": NEW_KEY})),
        )
        .await
        .expect_json_error(409);
    assert!(unconfirmed.contains("the server restarts"), "{unconfirmed}");
    let short = app
        .call(
            Call::post(&format!("/api/secrets/{secret}/rekey"))
                .bearer(&admin)
                .json(&json!({"data": "short", "confirm": secret})),
        )
        .await
        .expect_json_error(400);
    assert!(short.contains("32"), "{short}");
    // The page's form: refused next to its field, nothing made.
    let form = app
        .call(
            Call::post(&format!("/secrets/{secret}/rekey"))
                .session(&app.admin)
                .form(&[("confirm", secret.as_str()), ("data", "short")]),
        )
        .await;
    form.expect(422);
    assert!(
        form.text().contains("it needs 32 or more"),
        "{}",
        form.text()
    );
    assert!(form.text().contains("id=\"rekey\""), "{}", form.text());
    assert!(
        !exists("secret", &format!("{secret}.v2")),
        "nothing made yet"
    );
    let page = app
        .call(Call::get(&format!("/secrets/{secret}")).session(&app.admin))
        .await;
    page.expect(200);
    assert!(page.text().contains("id=\"rekey\""), "{}", page.text());

    let started = app
        .call(
            Call::post(&format!("/api/secrets/{secret}/rekey"))
                .bearer(&admin)
                .json(&json!({"data": NEW_KEY, "confirm": secret})),
        )
        .await;
    started.expect(202);
    let started = started.json();
    assert_eq!(started["resealed"], if registry.is_some() { 2 } else { 1 });
    assert!(!started.to_string().contains(NEW_KEY));
    // Nothing new is sealed with the old key alone while the server waits to move.
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(&admin)
            .json(&json!({
                "name": "late", "type": "webhook", "url": format!("http://{addr}/late")
            })),
    )
    .await
    .expect_json_error(409);
    let job = started["job"].as_str().unwrap().to_owned();
    let end = job_end(&app, &admin, &job).await;
    assert_eq!(end["succeeded"], true, "{end}");
    let secrets: Vec<String> = server
        .spec()
        .pointer("/TaskTemplate/ContainerSpec/Secrets")
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["SecretName"].as_str().unwrap(),
                r["File"]["Name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(secrets, [format!("{secret}.v2:swarmkeeper_secret_key")]);
    // Its revision says what it was (tryout 12: "rotated secret").
    let history = app
        .call(Call::get(&format!("/api/services/{}", server.name)).bearer(&admin))
        .await
        .json();
    let by = history["deploys"][0]["by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with(&format!("re-keyed secret {secret} → {secret}.v2")),
        "{history}"
    );
    let audit = serde_json::to_string(&app.audit().await).unwrap();
    assert!(audit.contains("rekey-secret"), "{audit}");
    for hidden in [NEW_KEY, PASSWORD, "never-shown"] {
        assert!(!audit.contains(hidden), "{audit}");
    }

    // Swarm rolled the server back: it starts on the old key, which still opens everything.
    app.state.shutdown.begin();
    let on_old = start_on(&app, OLD_KEY);
    both_open(&on_old, &admin, channel, registry_id, &mut rx).await;
    // The server runs on the new key: the staged values are promoted and open.
    let on_new = start_on(&app, NEW_KEY);
    both_open(&on_new, &admin, channel, registry_id, &mut rx).await;
    // New channels are taken again, sealed with the new key.
    send(
        &on_new,
        Call::post("/api/alerts/channels")
            .bearer(&admin)
            .json(&json!({
                "name": "late", "type": "webhook", "url": format!("http://{addr}/late")
            })),
    )
    .await
    .expect(201);
    // Promoted for good: a server on the old key no longer opens them.
    let again_old = start_on(&app, OLD_KEY);
    let page = send(&again_old, Call::get("/api/alerts").bearer(&admin))
        .await
        .json();
    let channels = page["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{page}");
    assert!(channels.iter().all(|c| c["problem"].is_string()), "{page}");
    // Said where it is seen: a banner on the Alerts page and the overview, and its JSON.
    let html = send(&again_old, Call::get("/alerts").session(&app.admin)).await;
    html.expect(200);
    assert!(
        html.text().contains("id=\"unusable-channels\""),
        "{}",
        html.text()
    );
    let overview = send(&again_old, Call::get("/api/overview").bearer(&admin))
        .await
        .json();
    let unusable = overview["unusable_channels"].as_array().unwrap();
    assert_eq!(unusable.len(), 2, "{overview}");
    assert!(
        unusable[1].as_str().unwrap().starts_with("rekey-hook: "),
        "{overview}"
    );
    let html = send(&again_old, Call::get("/").session(&app.admin)).await;
    assert!(
        html.text().contains("id=\"unusable-channels\""),
        "{}",
        html.text()
    );
    let fine = send(&on_new, Call::get("/api/overview").bearer(&admin))
        .await
        .json();
    assert_eq!(fine["unusable_channels"], json!([]), "{fine}");
    let html = send(&on_new, Call::get("/alerts").session(&app.admin)).await;
    assert!(!html.text().contains("id=\"unusable-channels\""));
}

/// Tryout 11 finding 6: the re-key moves the server itself, whose shutdown stops the job
/// following the move (`interrupted`, "failed" on its page) though Swarm completes it. The
/// server that then starts on the new key ends the job as the re-key planned; one that starts
/// on the old key (Swarm rolled the move back) leaves the job's own end standing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekey_cut_off_by_the_servers_restart_reads_succeeded_once_it_runs_on_the_new_key() {
    let app = TestApp::with_key(Some(key(OLD_KEY))).await;
    let admin = app.admin.token.clone();
    let secret = unique("skrekeycut");
    let _made = MadeSecrets(vec![secret.clone(), format!("{secret}.v2")]);
    create_secret(&secret, OLD_KEY);
    // Swarm watches the moved server 20 s before the update completes: the shutdown below
    // lands while the deploy follows it, as the real server's own restart does.
    let stand_in = TestService::create(
        "skrekeycutserver",
        &[
            "--label",
            "swarmkeeper.server=true",
            "--secret",
            &format!("source={secret},target=swarmkeeper_secret_key"),
            "--update-monitor",
            "20s",
        ],
    );
    let server = stand_in.name.clone();
    let started = app
        .call(
            Call::post(&format!("/api/secrets/{secret}/rekey"))
                .bearer(&admin)
                .json(&json!({"data": NEW_KEY, "confirm": secret})),
        )
        .await;
    started.expect(202);
    let job = started.json()["job"].as_str().unwrap().to_owned();
    // Once the move's revision is started, the server's restart comes.
    let mut moving = Value::Null;
    for _ in 0..300 {
        moving = newest_revision(&app.router, &admin, &server).await;
        if !moving.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(moving["outcome"], "running", "{moving}");
    // What the server's SIGTERM does first: every deploy stops at its next safe point.
    app.state.shutdown.begin();
    app.state
        .deploys
        .stop_all("the server's shutdown", Duration::from_secs(30))
        .await;
    let end = job_end(&app, &admin, &job).await;
    assert_eq!(end["succeeded"], false, "cut off: {end}");

    let on_old = start_on(&app, OLD_KEY);
    let page = send(&on_old, Call::get(&format!("/api{job}")).bearer(&admin))
        .await
        .json();
    assert_eq!(page["end"], end, "on the old key the job's own end stands");
    // The stack's history read "interrupted" for the move (tryout 13 finding 4).
    let cut = newest_revision(&on_old, &admin, &server).await;
    assert_eq!(cut["outcome"], "interrupted", "{cut}");
    let new_state = open_state_with_key(app.dir.path(), Some(REPORT_SECRET), Some(key(NEW_KEY)));
    swarmkeeper_server::settle_rekey_revisions(&new_state).await;
    let on_new = swarmkeeper_server::app(new_state);
    let settled = newest_revision(&on_new, &admin, &server).await;
    assert_eq!(settled["revision"], cut["revision"], "{settled}");
    assert_eq!(settled["outcome"], "succeeded", "{settled}");
    assert!(
        settled["summary"]
            .as_str()
            .unwrap()
            .starts_with("the server started on the new key: Swarm completed this move"),
        "{settled}"
    );
    let page = send(&on_new, Call::get(&format!("/api{job}")).bearer(&admin))
        .await
        .json();
    assert_eq!(page["end"]["succeeded"], true, "{page}");
    assert_eq!(
        page["end"]["outcome"],
        format!("re-keyed: the server restarted on {secret}.v2 as planned"),
        "{page}"
    );
    let html = send(&on_new, Call::get(&job).session(&app.admin)).await;
    html.expect(200);
    assert!(html.text().contains("as planned"), "{}", html.text());
    // The audit log, which the overview's events read, says it as the job does (tryout 12
    // finding 4: it kept "rotate-secret … failed").
    let audit = send(&on_new, Call::get("/api/audit").bearer(&admin))
        .await
        .text();
    assert!(
        audit.contains("cut off by the server's restart onto the new key")
            && audit.contains(&format!("the server restarted on {secret}.v2 as planned"))
            && !audit.contains("rotate-secret"),
        "{audit}"
    );
    // Once Swarm completed the server's update (its monitor, 20 s here), the old key goes, as
    // a rotation's old version does: a stack file that still names it fails to deploy rather
    // than moving the server back onto it (tryout 14 finding 5).
    assert!(exists("secret", &secret), "kept while Swarm may roll back");
    wait_for("the old key to be removed", Duration::from_secs(90), || {
        !exists("secret", &secret)
    });
    assert!(exists("secret", &format!("{secret}.v2")));
    let audit = send(&on_new, Call::get("/api/audit").bearer(&admin))
        .await
        .text();
    assert!(audit.contains("remove-secret"), "{audit}");
}
