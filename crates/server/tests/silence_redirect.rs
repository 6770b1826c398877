//! The silence form answers POST → 303 → GET, warning or not, so a browser's reload shows the
//! page again instead of posting the silence a second time. A silence whose subject matches
//! nothing goes to `/alerts?unmatched=ID`, whose page says so from the stored silence and the
//! swarm now; the JSON API still answers 201 with the warning in the silence.

mod support;

use serde_json::json;
use support::{unique, Call, TestApp};

#[tokio::test]
async fn a_silence_from_the_form_redirects_and_its_warning_survives_a_reload() {
    let app = TestApp::new().await;
    let nothing = unique("no-such-subject");
    let posted = app
        .call(Call::post("/alerts/silences").session(&app.admin).form(&[
            ("subject", &nothing),
            ("duration", "1h"),
            ("comment", "prg"),
        ]))
        .await;
    posted.expect(303);
    let location = posted.location().to_owned();
    let id: i64 = location
        .strip_prefix("/alerts?unmatched=")
        .unwrap_or_else(|| panic!("redirected to {location}"))
        .parse()
        .unwrap();

    // The page the browser goes on to, and reloads as often as it likes: one silence made.
    for _ in 0..2 {
        let page = app.call(Call::get(&location).session(&app.admin)).await;
        page.expect(200);
        let page = page.text();
        let warning = page
            .split("id=\"silence-warning\"")
            .nth(1)
            .unwrap_or_else(|| panic!("no warning on {page}"));
        assert!(warning.contains(&nothing), "{page}");
    }
    let listed = app
        .call(Call::get("/api/alerts").bearer(&app.admin.token))
        .await;
    listed.expect(200);
    let ours: Vec<_> = listed.json()["silences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["subject"] == nothing.as_str())
        .cloned()
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["id"], id);

    // An ended silence warns no more.
    app.call(Call::delete(&format!("/api/alerts/silences/{id}")).bearer(&app.admin.token))
        .await
        .expect(204);
    let page = app.call(Call::get(&location).session(&app.admin)).await;
    page.expect(200);
    assert!(!page.text().contains("id=\"silence-warning\""));
}

#[tokio::test]
async fn a_silence_that_matches_goes_back_to_the_page_and_the_api_keeps_its_warning() {
    let app = TestApp::new().await;
    // A rule alone matches whatever fires under it: no warning, the plain page.
    let posted = app
        .call(
            Call::post("/alerts/silences")
                .session(&app.admin)
                .form(&[("rule", "node-down"), ("duration", "10m")]),
        )
        .await;
    posted.expect(303);
    assert_eq!(posted.location(), "/alerts");

    let nothing = unique("no-such-subject");
    let made = app
        .call(
            Call::post("/api/alerts/silences")
                .bearer(&app.admin.token)
                .json(&json!({"subject": nothing, "duration": "1h"})),
        )
        .await;
    made.expect(201);
    let made = made.json();
    let warning = made["warning"].as_str().unwrap_or_else(|| panic!("{made}"));
    assert!(warning.contains(&nothing), "{warning}");

    // A refused form is shown again with its field's message, as before (422).
    let refused = app
        .call(
            Call::post("/alerts/silences")
                .session(&app.admin)
                .form(&[("subject", "x"), ("duration", "soon")]),
        )
        .await;
    refused.expect(422);
}
