//! The Alerts page's "Add channel" form refuses a taken name and an out-of-range SMTP port at
//! the field, like its other errors (tryout9 finding 9): 422, the form again with "Nothing was
//! added" and the message next to Name or Port; the JSON API still answers 409 and 400.

mod support;

use serde_json::json;
use support::{Call, TestApp};
use swarmkeeper_auth::SealingKey;

/// The message the page shows next to `field`.
fn at_field(page: &str, field: &str) -> String {
    let marker = format!("data-field=\"{field}\">");
    page.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no message at {field}: {page}"))
        .to_owned()
}

#[tokio::test]
async fn a_taken_name_and_a_bad_port_are_said_at_their_fields() {
    let key =
        SealingKey::from_secret(b"channel form errors key: thirty-two bytes or more").unwrap();
    let app = TestApp::with_key(Some(key)).await;
    let admin = &app.admin;
    let hook = json!({"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/x"});
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(&admin.token)
            .json(&hook),
    )
    .await
    .expect(201);

    // A taken name: the form again, the message at Name.
    let page = app
        .call(Call::post("/alerts/channels").session(admin).form(&[
            ("name", "hook"),
            ("type", "webhook"),
            ("url", "http://127.0.0.1:9/y"),
        ]))
        .await;
    page.expect(422);
    let html = page.text();
    assert!(html.contains("id=\"channel-errors\""), "{html}");
    assert!(html.contains("id=\"add-channel\""), "{html}");
    assert_eq!(
        at_field(&html, "name"),
        "hook is taken here: remove the alert channel of that name first to change it"
    );
    let message = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin.token)
                .json(&hook),
        )
        .await
        .expect_json_error(409);
    assert_eq!(
        message,
        "name: hook is taken here: remove the alert channel of that name first to change it"
    );

    // A port out of range: the form again, the message at Port; nothing added.
    let page = app
        .call(Call::post("/alerts/channels").session(admin).form(&[
            ("name", "mail"),
            ("type", "email"),
            ("host", "smtp.example.com"),
            ("port", "99999"),
            ("to", "a@b.example"),
        ]))
        .await;
    page.expect(422);
    let html = page.text();
    assert!(html.contains("id=\"channel-errors\""), "{html}");
    assert_eq!(at_field(&html, "port"), "99999 is out of range");
    let mail = json!({"name": "mail", "type": "email", "host": "smtp.example.com",
                      "port": 99999, "from": "alerts@b.example", "to": "a@b.example"});
    let message = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin.token)
                .json(&mail),
        )
        .await
        .expect_json_error(400);
    assert_eq!(message, "port: 99999 is out of range");
    let mut words = mail.clone();
    words["port"] = json!("smtp");
    let message = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin.token)
                .json(&words),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("port: \"smtp\""), "{message}");
    let listed = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await;
    listed.expect(200);
    let names: Vec<String> = listed.json()["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["hook"]);
    // A good port still goes through.
    let mut good = mail.clone();
    good["port"] = json!("2525");
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(&admin.token)
            .json(&good),
    )
    .await
    .expect(201);
}
