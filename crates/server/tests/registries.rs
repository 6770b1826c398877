//! Registries and auto-deploy against real parts: Debian's `docker-registry` with htpasswd on
//! loopback, images pushed with the docker CLI, services on the host's swarm. The Registries
//! API keeps secrets sealed and never answers them; auto-deploy rolls a push out when the
//! registry hook says so, remembers a digest that failed, and writes no spec when nothing moved.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use registry_support::{repository, DockerCli, Registry};
use serde_json::{json, Value};
use support::{docker, unique, wait_for, Call, TestApp, TestService};

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-registry-pw-4711";

fn password_registry(host: &str, password: &str) -> Value {
    json!({"host": host, "kind": "password", "username": USER, "password": password})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_are_added_tested_and_removed_and_secrets_never_come_back() {
    let Some(registry) = Registry::htpasswd(USER, PASSWORD) else {
        return;
    };
    let app = support::sealing_app().await;
    let admin = &app.admin.token;
    let host = registry.addr.as_str();

    // An operator may not touch registries.
    app.call(
        Call::post("/api/registries")
            .bearer(&app.operator.token)
            .json(&password_registry(host, PASSWORD)),
    )
    .await
    .expect(403);

    // Tried before they are stored: refused credentials are 400 with the registry's word.
    let wrong = app
        .call(
            Call::post("/api/registries/test")
                .bearer(admin)
                .json(&password_registry(host, "wrong")),
        )
        .await
        .expect_json_error(400);
    assert!(!wrong.contains("wrong\""), "{wrong}");
    let ok = app
        .call(
            Call::post("/api/registries/test")
                .bearer(admin)
                .json(&password_registry(host, PASSWORD)),
        )
        .await;
    ok.expect(200);
    assert_eq!(ok.json()["ok"], true);
    // Nothing was stored by the tests.
    let listed = app.call(Call::get("/api/registries").bearer(admin)).await;
    assert_eq!(listed.json()["registries"], json!([]));

    // Added: the answer, the list and the page never carry the password.
    let added = app
        .call(
            Call::post("/api/registries")
                .bearer(admin)
                .json(&password_registry(host, PASSWORD)),
        )
        .await;
    added.expect(201);
    assert!(!added.text().contains(PASSWORD));
    let id = added.json()["id"].as_i64().unwrap();
    app.call(
        Call::post("/api/registries")
            .bearer(admin)
            .json(&password_registry(host, PASSWORD)),
    )
    .await
    .expect_json_error(409);
    let listed = app.call(Call::get("/api/registries").bearer(admin)).await;
    assert_eq!(listed.json()["registries"][0]["host"], host);
    assert_eq!(listed.json()["registries"][0]["username"], USER);
    let page = app.call(Call::get("/registries").session(&app.admin)).await;
    page.expect(200);
    for shown in [listed.text(), page.text()] {
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    // Stored sealed: the state directory's files never hold it in the clear.
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in the state directory in the clear"
        );
    }
    // A stored registry tests with the credentials every deploy takes.
    let tested = app
        .call(Call::post(&format!("/api/registries/{id}/test")).bearer(admin))
        .await;
    tested.expect(200);
    assert_eq!(tested.json()["ok"], true);

    app.call(Call::delete(&format!("/api/registries/{id}")).bearer(admin))
        .await
        .expect(204);
    app.call(Call::delete(&format!("/api/registries/{id}")).bearer(admin))
        .await
        .expect_json_error(404);

    // The audit log says who changed which registry, never the secret.
    let audit = app.audit().await;
    let registry_entries: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "manage-registries")
        .collect();
    let details: Vec<&str> = registry_entries
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, ["removed", "tested: accepted", "added (password)"]);
    assert!(registry_entries
        .iter()
        .all(|e| e["who"] == "admin" && e["target"] == host));
    assert!(!serde_json::to_string(&audit).unwrap().contains(PASSWORD));

    // A registry that is not there: 502 naming it.
    let down = app
        .call(
            Call::post("/api/registries/test")
                .bearer(admin)
                .json(&password_registry("127.0.0.1:1", PASSWORD)),
        )
        .await
        .expect_json_error(502);
    assert!(down.contains("127.0.0.1:1"), "{down}");
    // Bad fields are named.
    let bad = app
        .call(
            Call::post("/api/registries")
                .bearer(admin)
                .json(&json!({"host": "https://r.example/v2", "kind": "password", "username": "u", "password": "p"})),
        )
        .await
        .expect_json_error(400);
    assert!(bad.starts_with("host:"), "{bad}");

    // Without a secret key no secret is stored, and the answer says what to do.
    let keyless = TestApp::new().await;
    let refused = keyless
        .call(
            Call::post("/api/registries")
                .bearer(&keyless.admin.token)
                .json(&password_registry(host, PASSWORD)),
        )
        .await
        .expect_json_error(409);
    assert!(refused.contains("--secret-key-file"), "{refused}");
}

/// The service's `ContainerSpec.Image` and `Version.Index`.
fn image_and_version(name: &str) -> (String, u64) {
    let out = docker(&[
        "service",
        "inspect",
        name,
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.Version.Index}}",
    ]);
    let (image, version) = out.trim().rsplit_once(' ').unwrap();
    (image.to_string(), version.parse().unwrap())
}

/// An image with no `/bin/busybox`: the service's command cannot start (version 7 of the seed).
fn push_broken(cli: &DockerCli, reference: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "nothing to run here\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY README /README\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("docker")
            .env("DOCKER_CONFIG", cli.config_dir.path())
            .env("DOCKER_BUILDKIT", "0")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["build", "-q", "-t", reference, dir.path().to_str().unwrap()]);
    let pushed = run(&["push", reference]);
    let _ = run(&["image", "rm", "-f", reference]);
    pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap()
        .to_string()
}

fn envelope(host: &str, repository: &str, tag: &str, digest: &str) -> Value {
    json!({"events": [{
        "id": unique("event"),
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": digest,
            "repository": repository,
            "tag": tag,
        },
        "request": {"host": host, "method": "PUT"},
    }]})
}

/// `GET /api/services/{name}` as the operator reads it.
async fn service_page(app: &TestApp, name: &str) -> Value {
    app.call(Call::get(&format!("/api/services/{name}")).bearer(&app.operator.token))
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_rolled_out_through_the_hook_and_a_failed_digest_is_remembered() {
    let (Some(registry), Some(cli)) = (Registry::htpasswd(USER, PASSWORD), DockerCli::new()) else {
        return;
    };
    let host = registry.addr.clone();
    cli.login(&host, USER, PASSWORD);
    let repo = repository("autodeploy");
    let tag = format!("{host}/{repo}:stable");
    let d1 = cli.push(&tag, "v1");

    let app = support::sealing_app().await;
    swarmkeeper_server::autodeploy::spawn(app.state.clone());
    let admin = &app.admin.token;
    app.call(
        Call::post("/api/registries")
            .bearer(admin)
            .json(&password_registry(&host, PASSWORD)),
    )
    .await
    .expect(201);
    let hook_token = app
        .call(Call::post("/api/registries/hook-token").bearer(admin))
        .await;
    hook_token.expect(201);
    let hook_token = hook_token.json()["token"].as_str().unwrap().to_string();

    // A service following the tag, polled hourly: only the hook brings its checks forward.
    let name = unique("autodeploy");
    let _service = TestService { name: name.clone() };
    let out = Command::new("docker")
        .env("DOCKER_CONFIG", cli.config_dir.path())
        .args([
            "service",
            "create",
            "--detach",
            "--quiet",
            "--with-registry-auth",
            "--name",
            &name,
            "--label",
            "swarmkeeper.autodeploy=true",
            "--label",
            "swarmkeeper.autodeploy.interval=1h",
            "--update-monitor",
            "3s",
            // busybox sleep ignores SIGTERM: without this each replacement waits 10 s.
            "--stop-grace-period",
            "1s",
            "--restart-max-attempts",
            "0",
            &tag,
            "/bin/busybox",
            "sleep",
            "3600",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let running = |digest: &str| {
        let digest = digest.to_string();
        let name = name.clone();
        move || {
            image_and_version(&name).0.ends_with(&digest)
                && docker(&[
                    "service",
                    "ps",
                    "--no-trunc",
                    &name,
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.CurrentState}} {{.Image}}",
                ])
                .lines()
                .any(|l| l.starts_with("Running") && l.ends_with(&digest))
        }
    };
    wait_for(
        "the first version runs",
        Duration::from_secs(60),
        running(&d1),
    );
    // The loop lists services every 15 s: ask until it follows this one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while service_page(&app, &name).await["autodeploy"]["enabled"] != true {
        assert!(
            Instant::now() < deadline,
            "auto-deploy does not follow {name}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let hook = |body: Value| {
        Call::post("/api/hooks/registry")
            .bearer(&hook_token)
            .json(&body)
    };
    // A wrong token and a malformed body are refused; nothing is checked.
    app.call(
        Call::post("/api/hooks/registry")
            .bearer("skh_wrong")
            .json(&envelope(&host, &repo, "stable", &d1)),
    )
    .await
    .expect_json_error(401);
    let malformed = app
        .call(
            Call::post("/api/hooks/registry")
                .bearer(&hook_token)
                .body("application/json", b"{\"events\": 3}".to_vec()),
        )
        .await
        .expect_json_error(400);
    assert!(malformed.contains("body:"), "{malformed}");

    // A hook with nothing moved: a check, and no spec written.
    let (_, version_before) = image_and_version(&name);
    let answer = app.call(hook(envelope(&host, &repo, "stable", &d1))).await;
    answer.expect(202);
    assert_eq!(answer.json()["checking"], json!([name]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = service_page(&app, &name).await;
        if page["autodeploy"]["recent_checks"][0]["outcome"] == "up to date" {
            assert_eq!(page["image_digest"]["freshness"], "current");
            break;
        }
        assert!(Instant::now() < deadline, "no check after the hook: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        image_and_version(&name).1,
        version_before,
        "a spec was written with nothing moved"
    );

    // Version 2: pushed, the hook, running through the deploy engine.
    let d2 = cli.push(&tag, "v2");
    let pushed = Instant::now();
    app.call(hook(envelope(&host, &repo, "stable", &d2)))
        .await
        .expect(202);
    wait_for("version 2 runs", Duration::from_secs(60), running(&d2));
    eprintln!(
        "push -> running via the registry hook: {:.1} s",
        pushed.elapsed().as_secs_f64()
    );
    // The rollout is followed to its end, then written down.
    let converged = format!("moved to {d2}: converged");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audit = app.audit().await;
        if audit.iter().any(|e| {
            e["who"] == "auto-deploy"
                && e["target"] == name.as_str()
                && e["detail"].as_str().unwrap().contains(&converged)
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "{audit:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Version 3 cannot start: rolled back to version 2 and remembered.
    let d3 = push_broken(&cli, &tag);
    app.call(hook(envelope(&host, &repo, "stable", &d3)))
        .await
        .expect(202);
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        let page = service_page(&app, &name).await;
        if page["autodeploy"]["failed"][0]["digest"] == d3.as_str() {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "version 3 not remembered as failed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        page["autodeploy"]["status"]
            .as_str()
            .unwrap()
            .contains("waiting for a newer push"),
        "{page}"
    );
    wait_for(
        "version 2 runs again",
        Duration::from_secs(60),
        running(&d2),
    );
    assert_eq!(page["image_digest"]["freshness"], "outdated");

    // The same digest again: checked, not tried, no spec written.
    let (_, version_before) = image_and_version(&name);
    let checks_before = page["autodeploy"]["recent_checks"]
        .as_array()
        .unwrap()
        .len();
    app.call(hook(envelope(&host, &repo, "stable", &d3)))
        .await
        .expect(202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = service_page(&app, &name).await;
        let checks = page["autodeploy"]["recent_checks"].as_array().unwrap();
        if checks.len() > checks_before
            || (checks.len() == 10
                && checks[0]["at"] != page["autodeploy"]["recent_checks"][0]["at"])
        {
            assert_eq!(
                checks[0]["outcome"], "failed before; waiting for a newer push",
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no check after the hook: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        image_and_version(&name).1,
        version_before,
        "a known-bad digest was tried again"
    );

    // Version 4 deploys.
    let d4 = cli.push(&tag, "v4");
    app.call(hook(envelope(&host, &repo, "stable", &d4)))
        .await
        .expect(202);
    wait_for("version 4 runs", Duration::from_secs(60), running(&d4));
}
