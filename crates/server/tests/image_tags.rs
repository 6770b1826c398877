//! The service form's image field offers the registry's tags: `GET /api/image-tags` against
//! Debian's `docker-registry` with htpasswd on loopback, with the credentials stored on the
//! Registries page (sealed; never in the answer), and an answer that says why when the
//! registry refuses.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use registry_support::{repository, DockerCli, Registry};
use serde_json::json;
use support::Call;

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-tags-pw-0815";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_offers_a_private_registrys_tags_with_the_stored_credentials() {
    let (Some(registry), Some(cli)) = (Registry::htpasswd(USER, PASSWORD), DockerCli::new()) else {
        return;
    };
    let host = registry.addr.as_str();
    let repo = format!("{host}/{}", repository("tags"));
    cli.login(host, USER, PASSWORD);
    cli.push(&format!("{repo}:1.0"), "one");
    cli.push(&format!("{repo}:1.1"), "two");

    let app = support::sealing_app().await;
    let ask = |who: &str, image: &str| {
        Call::get(&format!(
            "/api/image-tags?image={}",
            swarmkeeper_server::page::url_encode(image)
        ))
        .bearer(who)
    };

    // A viewer may not ask.
    app.call(ask(&app.viewer.token, &repo))
        .await
        .expect_json_error(403);
    // Without credentials the registry refuses: no tags, and why.
    let refused = app.call(ask(&app.operator.token, &repo)).await;
    refused.expect(200);
    let answer = refused.json();
    assert_eq!(answer["tags"], json!([]), "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );

    // With the registry's credentials stored (the refusal kept a minute is not reused once
    // they change), its tags, whatever tag of the repository the field holds.
    app.call(
        Call::post("/api/registries").bearer(&app.admin.token).json(
            &json!({"host": host, "kind": "password", "username": USER, "password": PASSWORD}),
        ),
    )
    .await
    .expect(201);
    let listed = app
        .call(ask(&app.operator.token, &format!("{repo}:whatever")))
        .await;
    listed.expect(200);
    assert!(!listed.text().contains(PASSWORD), "{}", listed.text());
    let answer = listed.json();
    assert_eq!(answer["repository"], repo.as_str(), "{answer}");
    // In the registry's order, which is not the tags' order.
    let mut tags: Vec<&str> = answer["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1.0", "1.1"], "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(answer["truncated"], false);

    // A reference docker would not take is bad input.
    let bad = app
        .call(ask(&app.operator.token, "Nginx:UPPER"))
        .await
        .expect_json_error(400);
    assert!(bad.contains("Nginx:UPPER"), "{bad}");

    // The form's image field asks for them.
    let form = app
        .call(Call::get("/services/new").session(&app.operator))
        .await;
    assert!(
        form.text()
            .contains("list=\"image-tags\" data-tags=\"image-tags\""),
        "{}",
        form.text()
    );
}
