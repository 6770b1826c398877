//! Bad input in the Alerts page's small forms is refused next to its field, by the field's
//! own name, with nothing added: a silence without a usable duration, a Slack channel whose
//! URL is not one (the form's field is `url`, whatever the channel calls it).

mod support;

use serde_json::json;
use support::{Call, TestApp};

#[tokio::test]
async fn a_silence_refused_names_its_field_next_to_it() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let page = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", "web"),
            ("duration", "5 parsecs"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains("data-field=\"duration\"") && text.contains("id=\"silence-errors\""),
        "{text}"
    );
    assert!(
        text.contains("id=\"add-silence\""),
        "the page, not an error page: {text}"
    );
    // Neither a rule nor a subject: it would silence everything.
    let page = app
        .call(Call::post("/alerts/silences").session(admin).form(&[
            ("rule", ""),
            ("subject", ""),
            ("duration", "2h"),
        ]))
        .await;
    page.expect(422);
    assert!(
        page.text().contains("data-field=\"subject\""),
        "{}",
        page.text()
    );
    let message = app
        .call(
            Call::post("/api/alerts/silences")
                .bearer(&admin.token)
                .json(&json!({"subject": "web", "duration": "5 parsecs"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("duration:"), "{message}");
    let listed = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await;
    listed.expect(200);
    assert_eq!(listed.json()["silences"], json!([]), "nothing was added");
}

#[tokio::test]
async fn a_channel_refused_names_the_forms_url_field() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    for kind in ["slack", "discord", "ntfy", "webhook"] {
        let message = app
            .call(
                Call::post("/api/alerts/channels")
                    .bearer(&admin.token)
                    .json(&json!({"name": "ops", "type": kind, "url": "not a url"})),
            )
            .await
            .expect_json_error(400);
        assert!(message.starts_with("url:"), "{kind}: {message}");
    }
    let page = app
        .call(Call::post("/alerts/channels").session(admin).form(&[
            ("name", "ops"),
            ("type", "slack"),
            ("url", "ftp://example.com/hook"),
        ]))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains("data-field=\"url\"") && text.contains("id=\"add-channel\""),
        "{text}"
    );
    assert!(!text.contains("webhook_url"), "{text}");
}
