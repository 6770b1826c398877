//! `GET /api/alerts` and `GET /api/registries` carry `no_key` (what to do without a secret key)
//! only when the server has no key, as their pages show it (tryout9 finding 13): with a key it
//! is `null`, beside `"can_store_secrets": true`.

mod support;

use support::{Call, TestApp};
use swarmkeeper_auth::SealingKey;

async fn no_key_of(app: &TestApp, path: &str) -> (serde_json::Value, serde_json::Value) {
    let answer = app.call(Call::get(path).bearer(&app.admin.token)).await;
    answer.expect(200);
    let view = answer.json();
    (view["can_store_secrets"].clone(), view["no_key"].clone())
}

#[tokio::test]
async fn no_key_is_said_only_without_a_key() {
    let key = SealingKey::from_secret(b"no key json test key: thirty-two bytes or more").unwrap();
    let keyed = TestApp::with_key(Some(key)).await;
    let bare = TestApp::new().await;
    for path in ["/api/alerts", "/api/registries"] {
        let (can, no_key) = no_key_of(&keyed, path).await;
        assert_eq!(can, true, "{path}");
        assert!(no_key.is_null(), "{path}: {no_key}");
        let (can, no_key) = no_key_of(&bare, path).await;
        assert_eq!(can, false, "{path}");
        assert!(
            no_key.as_str().is_some_and(|s| s.contains("key")),
            "{path}: {no_key}"
        );
    }
    // The pages decide the same way.
    for (app, shown) in [(&keyed, false), (&bare, true)] {
        for path in ["/alerts", "/registries"] {
            let page = app.call(Call::get(path).session(&app.admin)).await;
            page.expect(200);
            let (_, no_key) = no_key_of(&bare, &format!("/api{path}")).await;
            // Up to the first character the page escapes.
            let sentence = no_key.as_str().unwrap();
            let plain = sentence.split(|c| "'\"&<>`".contains(c)).next().unwrap();
            assert!(plain.len() > 20, "{sentence}");
            assert_eq!(page.text().contains(plain), shown, "{path}");
        }
    }
}
