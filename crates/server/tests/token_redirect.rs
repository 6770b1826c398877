//! The token forms (the registry hook's, a service's hook, an account's API token) answer
//! POST → 303 → GET: the
//! page they go on to shows the new token to its maker once, and a reload shows the plain
//! page rather than posting the form again, which would make a second token and stop the one
//! just shown from working. The JSON API answers 201 with the token, as before.

mod support;

use support::{Call, Identity, TestApp, TestService};
use swarmkeeper_auth::Role;

/// Posts the token form at `path` (with `fields`) as `user`: 303 to an address that starts
/// with `to`, which it answers.
async fn posted(
    app: &TestApp,
    user: &Identity,
    path: &str,
    fields: &[(&str, &str)],
    to: &str,
) -> String {
    let posted = app.call(Call::post(path).session(user).form(fields)).await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(location.starts_with(to), "{location}");
    location
}

/// The page at `location` shows `user` the new token once, in the element of id `marker`: its
/// first GET shows it, a reload shows the plain page (neither the token nor the element).
/// Answers the token.
async fn shown_once(app: &TestApp, user: &Identity, location: &str, marker: &str) -> String {
    let page = app.call(Call::get(location).session(user)).await;
    page.expect(200);
    let text = page.text();
    let token = text
        .split(&format!("id=\"{marker}\""))
        .nth(1)
        .and_then(|rest| rest.split("<code>").nth(1))
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no token on {text}"))
        .to_owned();
    let page = app.call(Call::get(location).session(user)).await;
    page.expect(200);
    assert!(!page.text().contains(&token), "shown once");
    assert!(!page.text().contains(&format!("id=\"{marker}\"")));
    token
}

#[tokio::test]
async fn the_registry_hook_token_form_redirects_and_shows_the_token_once() {
    let app = TestApp::new().await;
    let path = "/registries/hook-token";
    let location = posted(&app, &app.admin, path, &[], "/registries?hook_token=").await;

    // Another admin following the address sees the plain page, and takes nothing.
    let other = app.add_user("prg-hook-admin", Role::Admin).await;
    let page = app.call(Call::get(&location).session(&other)).await;
    page.expect(200);
    assert!(!page.text().contains("new-hook-token"));

    let token = shown_once(&app, &app.admin, &location, "new-hook-token").await;
    // The token shown is the one in force, and the reload made no new one: a body the hook
    // cannot read is refused as such (400), not as an unknown token (401).
    app.call(
        Call::post("/api/hooks/registry")
            .bearer(&token)
            .body("application/json", b"{\"events\": 3}".to_vec()),
    )
    .await
    .expect_json_error(400);

    // The JSON API answers with the token itself.
    let made = app
        .call(Call::post("/api/registries/hook-token").bearer(&app.admin.token))
        .await;
    made.expect(201);
    assert!(made.json()["token"].as_str().unwrap().starts_with("skh_"));
}

#[tokio::test]
async fn a_service_hook_token_form_goes_back_to_the_service_page() {
    let app = TestApp::new().await;
    let service = TestService::create("hooktoken", &[]);
    let path = format!("/services/{}/hook-token", service.name);
    let to = format!("/services/{}?hook_token=", service.name);
    let location = posted(&app, &app.operator, &path, &[], &to).await;
    let token = shown_once(&app, &app.operator, &location, "new-hook-token").await;
    assert!(token.starts_with("skh_"), "{token}");
}

#[tokio::test]
async fn the_api_token_form_redirects_and_shows_the_token_once() {
    let app = TestApp::new().await;
    let v = &app.viewer;
    let fields = [("name", "ci deploys"), ("expires_in_days", "")];
    let location = posted(&app, v, "/account/tokens", &fields, "/account?new_token=").await;
    let token = shown_once(&app, v, &location, "new-token").await;
    assert!(token.starts_with("skt_"), "{token}");

    // The token shown is the one made, it works, and the reload made no second one.
    let listed = app.call(Call::get("/api/tokens").bearer(&token)).await;
    listed.expect(200);
    let tokens = listed.json();
    let named = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "ci deploys")
        .count();
    assert_eq!(named, 1, "{tokens}");
}
