//! A channel's "Send test" form answers POST → 303 → GET: the page it goes on to shows what
//! the receiver answered, a reload shows it again without sending a second message, and only
//! the user who sent the test sees it. The JSON API still answers with the outcome itself.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use support::{Call, TestApp};
use swarmkeeper_auth::{Role, SealingKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A webhook receiver that answers every request 200 and counts them.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                // One request per connection: read its head and its body, then answer.
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_test_from_the_form_redirects_and_a_reload_sends_nothing() {
    let key = SealingKey::from_secret(b"outcome redirect key: thirty-two bytes or more").unwrap();
    let app = TestApp::with_key(Some(key)).await;
    let (url, received) = receiver().await;
    let added = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&app.admin.token)
                .json(&json!({"name": "prg-hook", "type": "webhook", "url": url})),
        )
        .await;
    added.expect(201);
    let id = added.json()["id"].as_i64().unwrap();

    let posted = app
        .call(
            Call::post(&format!("/alerts/channels/{id}/test"))
                .session(&app.admin)
                .form(&[]),
        )
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(location.starts_with("/alerts?tested="), "{location}");
    assert_eq!(received.load(Ordering::SeqCst), 1);

    for _ in 0..2 {
        let page = app.call(Call::get(&location).session(&app.admin)).await;
        page.expect(200);
        let page = page.text();
        let tested = page
            .split("id=\"tested\"")
            .nth(1)
            .unwrap_or_else(|| panic!("no outcome on {page}"));
        assert!(tested.contains("delivered"), "{page}");
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "showing the outcome again sends nothing"
    );

    // Another admin following the same address sees the page without the outcome.
    let other = app.add_user("prg-other-admin", Role::Admin).await;
    let page = app.call(Call::get(&location).session(&other)).await;
    page.expect(200);
    assert!(!page.text().contains("id=\"tested\""));

    // The JSON API answers with the outcome itself.
    let tested = app
        .call(
            Call::post(&format!("/api/alerts/channels/{id}/test"))
                .bearer(&app.admin.token)
                .json(&json!({})),
        )
        .await;
    tested.expect(200);
    assert_eq!(tested.json()["ok"], true, "{}", tested.text());
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_test_from_the_form_redirects_and_a_reload_runs_nothing() {
    let key = SealingKey::from_secret(b"outcome redirect key: thirty-two bytes or more").unwrap();
    let app = TestApp::with_key(Some(key)).await;
    // A registry on loopback (plain HTTP) that takes any login: `GET /v2/` answers 200.
    let (url, asked) = receiver().await;
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_owned();
    let added = app
        .call(
            Call::post("/api/registries")
                .bearer(&app.admin.token)
                .json(&json!({
                    "host": host, "kind": "password", "username": "prg", "password": "prg-secret"
                })),
        )
        .await;
    added.expect(201);
    let id = added.json()["id"].as_i64().unwrap();

    let posted = app
        .call(
            Call::post(&format!("/registries/{id}/test"))
                .session(&app.admin)
                .form(&[]),
        )
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(location.starts_with("/registries?tested="), "{location}");
    let tried = asked.load(Ordering::SeqCst);
    assert!(tried >= 1, "the registry was asked");

    for _ in 0..2 {
        let page = app.call(Call::get(&location).session(&app.admin)).await;
        page.expect(200);
        let page = page.text();
        assert!(page.contains("id=\"tested\""), "no outcome on {page}");
        assert!(!page.contains("prg-secret"));
    }
    assert_eq!(asked.load(Ordering::SeqCst), tried, "a reload runs no test");
}
