//! The app in-process under the hostile inputs of issue 11 that need no network tricks: audit
//! log flooding, agent reports from the far future, the post-login redirect, cross-site login
//! posts, and what a password change does to the user's API tokens. (Floods of connections,
//! logins and uploads run against the real binary in `crates/cli/tests/server_hostile.rs`.)

mod support;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use support::{node_id, report_json, Call, TestApp, PASSWORD, REPORT_SECRET};

/// Issue 11, item 3: a failed login stored the raw user name, and a password over the length
/// cap skipped argon2, so each request was cheap: 40 requests with a 1.9 MB name grew the state
/// by 76 MB and the audit page to 74 MB.
#[tokio::test]
async fn a_flood_of_failed_logins_leaves_a_few_small_audit_rows() {
    let app = TestApp::new().await;
    let before = audit_bytes(&app).await;
    let huge = "x".repeat(1_900_000);
    for _ in 0..40 {
        let answer = app
            .call(Call::post("/login").form(&[
                ("username", huge.as_str()),
                ("password", &"p".repeat(2000)),
                ("next", "/"),
            ]))
            .await;
        answer.expect(413);
    }
    // Within the form limit: long names, malformed names, unknown names, and wrong passwords
    // for a real user (refused without a check after five).
    let long = "y".repeat(10_000);
    for i in 0..100 {
        for name in [
            long.clone(),
            format!("Not A Name {i}"),
            format!("nobody{i}"),
        ] {
            app.login(&name, "wrong password, long enough", "/")
                .await
                .expect(401);
        }
        let answer = app
            .login("operator", "wrong password, long enough", "/")
            .await;
        assert!([401, 429].contains(&answer.status.as_u16()), "{answer:?}");
    }
    app.state.write_folded_audit(None);
    let audit = app.audit().await;
    let failures: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("login-"))
        .collect();
    // Per kind (who, action, source): the first failure, then one row with the count.
    assert!(failures.len() <= 6, "{failures:#?}");
    for entry in &failures {
        assert!(entry["who"].as_str().unwrap().len() <= 128, "{entry}");
        assert!(entry.to_string().len() < 600, "{entry}");
    }
    assert!(
        failures.iter().any(|e| e["who"] == "(unknown user)"
            && e["detail"].as_str().unwrap().starts_with("299 more")),
        "{failures:#?}"
    );
    let grew = audit_bytes(&app).await - before;
    assert!(grew < 4_000, "the audit page grew by {grew} bytes");
}

async fn audit_bytes(app: &TestApp) -> usize {
    let answer = app
        .call(Call::get("/api/audit").bearer(&app.admin.token))
        .await;
    answer.expect(200);
    answer.body.len()
}

/// A report of `node` with one GC run that started at `started_at` and freed `bytes_freed`.
fn report_with(node: &str, started_at: Timestamp, bytes_freed: u64) -> Value {
    let mut report = report_json(node, "hostile-node");
    report["gc_runs"] = serde_json::json!([{
        "started_at": started_at, "trigger": "interval", "usage_percent_before": 90,
        "usage_percent_after": 60, "bytes_freed": bytes_freed, "deleted": [],
        "containers_removed": 0, "outcome": "ok"
    }]);
    report
}

/// Issue 11, item 5: a report with GC runs dated next century and `bytes_freed` near 2^63
/// made the overview and node pages answer 500 for good ("integer overflow" in a SUM), and the
/// purge never removed the future rows.
#[tokio::test]
async fn a_report_from_the_far_future_is_refused_and_pages_keep_working() {
    let app = TestApp::new().await;
    let node = node_id();
    let future: Timestamp = "2126-01-01T00:00:00Z".parse().unwrap();
    let post = |body: &Value| {
        Call::post("/api/agent/report")
            .bearer(REPORT_SECRET)
            .json(body)
    };
    for (at, bytes, field) in [
        (future, 1, "gc_runs[0].started_at"),
        (Timestamp::now(), (1 << 63) - 1, "gc_runs[0].bytes_freed"),
    ] {
        let answer = app.call(post(&report_with(&node, at, bytes))).await;
        let message = answer.expect_json_error(400);
        assert!(message.contains(field), "{message}");
    }
    let pages = [
        "/api/overview",
        "/api/nodes",
        &format!("/api/nodes/{node}"),
        "/",
        "/nodes",
    ];
    for page in pages {
        app.call(Call::get(page).bearer(&app.admin.token))
            .await
            .expect(200);
    }
    // Rows such as a server before these checks stored: they break nothing, and the purge
    // takes the future ones away.
    let today = Timestamp::now() - SignedDuration::from_mins(1);
    for (at, bytes) in [
        (future, (1 << 63) - 1),
        (future + SignedDuration::from_hours(1), (1 << 63) - 1),
        (today, 500),
    ] {
        let report: swarmkeeper_report::NodeReport =
            serde_json::from_value(report_with(&node, at, bytes)).unwrap();
        app.state
            .store()
            .record_node_report(&report, Timestamp::now())
            .unwrap();
    }
    for page in pages {
        app.call(Call::get(page).bearer(&app.admin.token))
            .await
            .expect(200);
    }
    let removed = app
        .state
        .store()
        .forget_gc_history_after(Timestamp::now() + swarmkeeper_report::MAX_CLOCK_AHEAD)
        .unwrap();
    assert_eq!(removed, 2);
    let view = app
        .call(Call::get(&format!("/api/nodes/{node}")).bearer(&app.admin.token))
        .await
        .json();
    assert_eq!(view["gc_runs"].as_array().map(Vec::len), Some(1), "{view}");
    // A good report is still taken.
    app.call(post(&report_with(&node, Timestamp::now(), 123)))
        .await
        .expect(204);
}

/// Issue 11, item 9: `/\t/evil.example` after login took the browser to another site.
#[tokio::test]
async fn after_login_only_local_paths_are_followed() {
    let app = TestApp::new().await;
    for hostile in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\\/evil.example",
        "//evil.example",
        "/ /evil.example",
        "/\u{0}/evil.example",
        "https://evil.example",
    ] {
        let answer = app.login("viewer", PASSWORD, hostile).await;
        answer.expect(303);
        assert_eq!(answer.location(), "/", "next={hostile:?}");
        let page = app
            .call(Call::get(&format!(
                "/login?next={}",
                hostile
                    .replace('\t', "%09")
                    .replace('\n', "%0A")
                    .replace('\u{0}', "%00")
                    .replace(' ', "%20")
            )))
            .await;
        assert!(!page.text().contains("evil.example"), "{hostile:?}");
    }
    let answer = app.login("viewer", PASSWORD, "/services?x=1").await;
    assert_eq!(answer.location(), "/services?x=1");
}

/// Issue 11, item 9: the login form accepted a post from another site (login CSRF: the victim's
/// browser ends up logged in as the attacker).
#[tokio::test]
async fn login_and_setup_refuse_posts_from_other_sites() {
    let app = TestApp::new().await;
    let form = [
        ("username", "viewer"),
        ("password", PASSWORD),
        ("next", "/"),
    ];
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let answer = app
            .call(
                Call::post("/login")
                    .header("host", "dash.example")
                    .header(name, value)
                    .form(&form),
            )
            .await;
        answer.expect(403);
        assert!(answer.header("set-cookie").is_empty());
        let setup = app
            .call(
                Call::post("/setup")
                    .header("host", "dash.example")
                    .header(name, value)
                    .form(&[("token", "x"), ("username", "evil"), ("password", PASSWORD)]),
            )
            .await;
        setup.expect(403);
    }
    // The server's own page, as current and older browsers say it, and a script.
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("origin", "https://dash.example"), ("host", "dash.example")],
        vec![],
    ] {
        let mut call = Call::post("/login");
        for (name, value) in &headers {
            call = call.header(name, value);
        }
        app.call(call.form(&form)).await.expect(303);
    }
}

/// Issue 11, item 9, decided: a password change revokes the user's API tokens (and ends their
/// sessions), since whoever knew the old password could have made tokens with it.
#[tokio::test]
async fn a_password_change_revokes_the_users_api_tokens() {
    let app = TestApp::new().await;
    let operator = &app.operator;
    app.call(Call::get("/api/services").bearer(&operator.token))
        .await
        .expect(200);
    let new = "a brand new passphrase here";
    app.call(
        Call::post("/api/account/password")
            .session(operator)
            .json(&serde_json::json!({"current": PASSWORD, "new": new})),
    )
    .await
    .expect(204);
    app.call(Call::get("/api/services").bearer(&operator.token))
        .await
        .expect_json_error(401);
    app.call(Call::get("/api/services").session(operator))
        .await
        .expect_json_error(401);
    let tokens = app
        .call(Call::get("/api/tokens").bearer(&app.admin.token))
        .await;
    tokens.expect(200);
    // Others keep theirs; the new password logs in.
    app.call(Call::get("/api/services").bearer(&app.viewer.token))
        .await
        .expect(200);
    app.login("operator", new, "/").await.expect(303);
}
