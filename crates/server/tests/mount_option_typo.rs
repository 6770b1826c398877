//! Tryout 8 finding 4 (issue #14): a short-syntax mount with an option swarmkeeper does not
//! know (`vol:/data:rx`, meant `ro`) is refused at the Mounts field, and in "edit as
//! compose" at its file, line and column, naming the options there are, instead of mounting
//! the volume writable. Nothing is applied. Against the host's single-node swarm.

mod support;

use serde_json::json;
use support::{
    after_image_line, service_form, service_version, test_image, Call, TestApp, TestService,
};

const SAYS: &str = "unknown option `rx`; the options are ro, rw, nocopy, z, Z, a propagation";

#[tokio::test]
async fn an_unknown_mount_option_is_refused_at_the_field_with_nothing_applied() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let image = test_image();
    let service = TestService::sleeping("mounttypo");
    let name = service.name.clone();
    let before = service_version(&name);
    let fields = |mounts: &'static str| {
        vec![
            ("name", name.clone()),
            ("image", image.to_owned()),
            ("mounts", mounts.to_owned()),
        ]
    };
    let post = |mounts| {
        let fields = fields(mounts);
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        service_form(op, &name, &pairs)
    };

    let page = app.call(post("vol:/data:rx")).await;
    page.expect(422);
    let text = page.text().replace("&#96;", "`");
    assert!(text.contains("data-field=\"mounts\""), "{text}");
    assert!(text.contains(SAYS), "{text}");
    let refused = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"mounts": "vol:/data:rx"})),
        )
        .await
        .expect_json_error(400);
    assert!(refused.contains("mounts: "), "{refused}");
    assert!(refused.contains(SAYS), "{refused}");
    // The options there are still preview.
    app.call(post("vol:/data:ro,z")).await.expect(200);

    // Edit as compose: the file's line and column.
    let compose = app.service_compose(&name, op).await;
    let text = after_image_line(&compose, "    volumes: [\"vol:/data:rx\"]");
    let refused = app
        .post_compose(&name, op, &text)
        .await
        .expect_json_error(400);
    assert!(refused.contains(&format!("{name}.yml:")), "{refused}");
    assert!(refused.contains(SAYS), "{refused}");

    assert_eq!(service_version(&name), before, "nothing was applied");
}
