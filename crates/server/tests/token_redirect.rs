//! The token forms (the registry hook's, a service's hook, an account's API token) answer
//! POST → 303 → GET: the
//! page they go on to shows the new token to its maker once, and a reload shows the plain
//! page rather than posting the form again, which would make a second token and stop the one
//! just shown from working. The JSON API answers 201 with the token, as before.

mod support;

use support::{Answer, Call, TestApp, TestService};
use swarmkeeper_auth::Role;

/// The token a hook token page shows.
fn token_on(page: &Answer) -> String {
    let text = page.text();
    let shown = text
        .split("id=\"new-hook-token\"")
        .nth(1)
        .and_then(|rest| rest.split("<code>").nth(1))
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no token on {text}"));
    shown.to_owned()
}

#[tokio::test]
async fn the_registry_hook_token_form_redirects_and_shows_the_token_once() {
    let app = TestApp::new().await;
    let posted = app
        .call(
            Call::post("/registries/hook-token")
                .session(&app.admin)
                .form(&[]),
        )
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(
        location.starts_with("/registries?hook_token="),
        "{location}"
    );

    // Another admin following the address sees the plain page, and takes nothing.
    let other = app.add_user("prg-hook-admin", Role::Admin).await;
    let page = app.call(Call::get(&location).session(&other)).await;
    page.expect(200);
    assert!(!page.text().contains("new-hook-token"));

    let page = app.call(Call::get(&location).session(&app.admin)).await;
    page.expect(200);
    let token = token_on(&page);
    // The token shown is the one in force: a body the hook cannot read is refused as such
    // (400), not as an unknown token (401).
    app.call(
        Call::post("/api/hooks/registry")
            .bearer(&token)
            .body("application/json", b"{\"events\": 3}".to_vec()),
    )
    .await
    .expect_json_error(400);

    // A reload: the page as it is, without the token, and no new token made.
    let page = app.call(Call::get(&location).session(&app.admin)).await;
    page.expect(200);
    assert!(!page.text().contains(&token));
    assert!(!page.text().contains("new-hook-token"));
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
    let posted = app
        .call(
            Call::post(&format!("/services/{}/hook-token", service.name))
                .session(&app.operator)
                .form(&[]),
        )
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(
        location.starts_with(&format!("/services/{}?hook_token=", service.name)),
        "{location}"
    );
    let page = app.call(Call::get(&location).session(&app.operator)).await;
    page.expect(200);
    let token = token_on(&page);
    assert!(token.starts_with("skh_"), "{token}");
    let page = app.call(Call::get(&location).session(&app.operator)).await;
    page.expect(200);
    assert!(!page.text().contains(&token), "shown once");
}

#[tokio::test]
async fn the_api_token_form_redirects_and_shows_the_token_once() {
    let app = TestApp::new().await;
    let v = &app.viewer;
    let posted = app
        .call(
            Call::post("/account/tokens")
                .session(v)
                .form(&[("name", "ci deploys"), ("expires_in_days", "")]),
        )
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    assert!(location.starts_with("/account?new_token="), "{location}");

    let page = app.call(Call::get(&location).session(v)).await;
    page.expect(200);
    let text = page.text();
    let token = text
        .split("id=\"new-token\"")
        .nth(1)
        .and_then(|rest| rest.split("<code>").nth(1))
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no token on {text}"))
        .to_owned();
    assert!(token.starts_with("skt_"), "{token}");
    // The token shown is the one made, and it works.
    app.call(Call::get("/api/tokens").bearer(&token))
        .await
        .expect(200);

    // A reload: the page without the token, and no second token made.
    let page = app.call(Call::get(&location).session(v)).await;
    page.expect(200);
    assert!(!page.text().contains(&token));
    assert!(!page.text().contains("id=\"new-token\""));
    let tokens = app
        .call(Call::get("/api/tokens").bearer(&token))
        .await
        .json();
    let named = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "ci deploys")
        .count();
    assert_eq!(named, 1, "{tokens}");
}
