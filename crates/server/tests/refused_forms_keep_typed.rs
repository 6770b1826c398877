//! A refused admin form comes back with what was typed (issue 14): the alert-channel, registry,
//! silence, user and rules forms each show their fields again as posted, through the whole
//! router; a secret (a token, a password, a URL that carries a token) comes back empty with
//! "enter again" next to its field, and is nowhere in the page. The channel form says a taken
//! name and an out-of-range SMTP port at the field, like its other errors (tryout9 finding 9):
//! 422, "Nothing was added" and the message next to Name or Port; the JSON API still answers
//! 409 and 400.

mod support;

use serde_json::json;
use support::{sealing_app, Answer, Call, Identity, TestApp};

/// Every secret posted below starts with this: the page must never carry it.
const SECRET: &str = "SEKRET";

/// The HTML of the form `id` in `page`.
fn form<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no form {id} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</form>").expect("the form ends")]
}

/// The value the form shows in its field `name`: an input's `value`, a select's selected
/// option, a textarea's text; empty when it shows none.
fn shown(form: &str, name: &str) -> String {
    let at = form
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in {form}"));
    let tag_start = form[..at].rfind('<').unwrap();
    let field = &form[tag_start..];
    let tag = &field[..field.find('>').unwrap()];
    if tag.starts_with("<select") {
        let options = &field[..field.find("</select>").unwrap()];
        return options
            .split("<option")
            .find(|o| o.contains(" selected"))
            .and_then(|o| o.split("value=\"").nth(1))
            .map(|v| v[..v.find('"').unwrap()].to_owned())
            .unwrap_or_default();
    }
    if tag.starts_with("<textarea") {
        let text = &field[tag.len() + 1..];
        return text[..text.find("</textarea>").unwrap()].to_owned();
    }
    tag.split(" value=\"")
        .nth(1)
        .map(|v| v[..v.find('"').unwrap()].to_owned())
        .unwrap_or_default()
}

/// Posts `fields` to the form at `path` as `user`; expects `status` and answers the page,
/// which never carries a secret.
async fn refused(
    app: &TestApp,
    user: &Identity,
    path: &str,
    fields: &[(&str, &str)],
    status: u16,
) -> String {
    let answer: Answer = app.call(Call::post(path).session(user).form(fields)).await;
    answer.expect(status);
    let page = answer.text();
    assert!(!page.contains(SECRET), "a secret is shown again: {page}");
    page
}

/// The message the page shows next to `field`.
fn at_field(page: &str, field: &str) -> String {
    let marker = format!("data-field=\"{field}\">");
    page.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no message at {field}: {page}"))
        .to_owned()
}

/// Whether the form says "enter again" next to `field`.
fn asks_again(form: &str, field: &str) -> bool {
    form.contains(&format!("data-retype=\"{field}\">Enter again"))
}

#[tokio::test]
async fn a_refused_channel_form_keeps_all_but_its_secrets() {
    let app = sealing_app().await;
    let admin = &app.admin;
    let hook = json!({"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/x"});
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(&admin.token)
            .json(&hook),
    )
    .await
    .expect(201);

    // A taken name: a Slack URL is a token; its host is said, never the URL.
    let page = refused(
        &app,
        admin,
        "/alerts/channels",
        &[
            ("name", "hook"),
            ("type", "slack"),
            ("url", "https://hooks.slack.com/services/T0/B0/SEKRETslack"),
        ],
        422,
    )
    .await;
    assert!(page.contains("id=\"channel-errors\""), "{page}");
    let taken = "hook is taken here: remove the alert channel of that name first to change it";
    assert_eq!(at_field(&page, "name"), taken);
    let message = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(&admin.token)
                .json(&hook),
        )
        .await
        .expect_json_error(409);
    assert_eq!(message, format!("name: {taken}"));
    let channel = form(&page, "add-channel");
    assert_eq!(shown(channel, "name"), "hook");
    assert_eq!(shown(channel, "type"), "slack");
    assert_eq!(shown(channel, "url"), "");
    assert!(asks_again(channel, "url"), "{channel}");
    assert!(channel.contains("the URL of hooks.slack.com"), "{channel}");
    assert!(!asks_again(channel, "token"), "{channel}");

    // A port out of range: every email field as typed, the password to enter again.
    let email = [
        ("name", "mail"),
        ("type", "email"),
        ("host", "smtp.example.com"),
        ("port", "99999"),
        ("tls", "tls"),
        ("username", "alerts-user"),
        ("password", "SEKRETpassword"),
        ("from", "alerts@b.example"),
        ("to", "a@b.example, c@b.example"),
        ("ca_pem", "-----BEGIN CERTIFICATE-----"),
    ];
    let page = refused(&app, admin, "/alerts/channels", &email, 422).await;
    let channel = form(&page, "add-channel");
    for (field, typed) in email.iter().filter(|(f, _)| *f != "password") {
        assert_eq!(shown(channel, field), *typed, "{field}: {channel}");
    }
    assert_eq!(shown(channel, "password"), "");
    assert!(asks_again(channel, "password"), "{channel}");
    assert_eq!(at_field(&page, "port"), "99999 is out of range");
    // The JSON API: 400 naming the field, for a number or a text; nothing added, and a good
    // port goes through.
    let mail = json!({"name": "mail", "type": "email", "host": "smtp.example.com",
                      "port": 99999, "from": "alerts@b.example", "to": "a@b.example"});
    for (port, said) in [
        (json!(99999), "port: 99999 is out of range"),
        (json!("smtp"), "port: \"smtp\""),
    ] {
        let mut body = mail.clone();
        body["port"] = port;
        let message = app
            .call(
                Call::post("/api/alerts/channels")
                    .bearer(&admin.token)
                    .json(&body),
            )
            .await
            .expect_json_error(400);
        assert!(message.starts_with(said), "{message}");
    }
    let listed = app
        .call(Call::get("/api/alerts").bearer(&admin.token))
        .await;
    listed.expect(200);
    assert_eq!(
        listed.json()["channels"].as_array().unwrap().len(),
        1,
        "only hook"
    );
    let mut good = mail.clone();
    good["port"] = json!("2525");
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(&admin.token)
            .json(&good),
    )
    .await
    .expect(201);

    // Alertmanager's base URL is no secret: it is shown again; its bearer token is not.
    let page = refused(
        &app,
        admin,
        "/alerts/channels",
        &[
            ("name", "hook"),
            ("type", "alertmanager"),
            ("url", "http://am.example:9093"),
            ("token", "SEKRETbearer"),
        ],
        422,
    )
    .await;
    let channel = form(&page, "add-channel");
    assert_eq!(shown(channel, "type"), "alertmanager");
    assert_eq!(shown(channel, "url"), "http://am.example:9093");
    assert!(!asks_again(channel, "url") && asks_again(channel, "token"));
}

#[tokio::test]
async fn the_registry_silence_user_and_rules_forms_keep_what_was_typed() {
    let app = sealing_app().await;
    let admin = &app.admin;

    // Registries: a host with a scheme (422), then a host taken (409).
    let typed = [
        ("host", "https://r.example/v2"),
        ("kind", "password"),
        ("username", "ci"),
        ("password", "SEKRETregistry"),
        ("region", "eu-west-1"),
        ("profile", "ci-profile"),
    ];
    let page = refused(&app, admin, "/registries", &typed, 422).await;
    let registry = form(&page, "add-registry");
    for (field, value) in typed.iter().filter(|(f, _)| *f != "password") {
        assert_eq!(shown(registry, field), *value, "{field}: {registry}");
    }
    assert!(page.contains("data-field=\"host\""), "{page}");
    assert!(asks_again(registry, "password") && !asks_again(registry, "token"));
    app.call(
        Call::post("/api/registries")
            .bearer(&admin.token)
            .json(&json!({"host": "r.example", "kind": "token", "token": "t0ken-of-the-api"})),
    )
    .await
    .expect(201);
    let page = refused(
        &app,
        admin,
        "/registries",
        &[
            ("host", "r.example"),
            ("kind", "token"),
            ("token", "SEKRETtoken"),
        ],
        409,
    )
    .await;
    let registry = form(&page, "add-registry");
    assert_eq!(shown(registry, "host"), "r.example");
    assert_eq!(shown(registry, "kind"), "token");
    assert!(asks_again(registry, "token"), "{registry}");
    assert!(page.contains("r.example is taken here"), "{page}");
    // Its JSON twin still names the field.
    let message = app
        .call(
            Call::post("/api/registries")
                .bearer(&admin.token)
                .json(&json!({"host": "https://r.example/v2", "kind": "token", "token": "t"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("host: "), "{message}");

    // Silences: a duration that is not one.
    let typed = [
        ("rule", "node-down"),
        ("subject", "worker-7"),
        ("duration", "a while"),
        ("comment", "kernel upgrade"),
    ];
    let page = refused(&app, admin, "/alerts/silences", &typed, 422).await;
    let silence = form(&page, "add-silence");
    for (field, value) in typed {
        assert_eq!(shown(silence, field), value, "{field}: {silence}");
    }

    // Users: a name that is not one; the password is to be entered again.
    let page = refused(
        &app,
        admin,
        "/users",
        &[
            ("username", "Not A Name"),
            ("role", "operator"),
            ("password", "SEKRETuser-password"),
        ],
        422,
    )
    .await;
    let user = form(&page, "add-user");
    assert_eq!(shown(user, "username"), "Not A Name");
    assert_eq!(shown(user, "role"), "operator");
    assert_eq!(shown(user, "password"), "");
    assert!(asks_again(user, "password"), "{user}");

    // Rules: a duration that is not one is shown as typed.
    let page = refused(
        &app,
        admin,
        "/alerts/rules",
        &[("node_down.enabled", "on"), ("node_down.for", "soonish")],
        422,
    )
    .await;
    assert_eq!(shown(form(&page, "rules-form"), "node_down.for"), "soonish");
}
