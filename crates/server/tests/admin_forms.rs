//! The users, API-token and password forms refuse bad input next to the field: the page comes
//! back (422, 409 for a name taken) with what was typed kept — never a password — and nothing
//! created or changed; their JSON twins answer the error naming the field. JSON number fields
//! are refused in words a user reads, not by Rust type.

mod support;

use serde_json::{json, Value};
use support::{Answer, Call, TestApp, PASSWORD};

/// A form's fields as posted.
type Form<'a> = &'a [(&'a str, &'a str)];

/// The page's message shown next to a field (the forms' `error-message` paragraph).
fn field_message(page: &Answer, message: &str) {
    let text = page.text();
    let shown = format!("<p class=\"error-message\" role=\"alert\">{message}");
    assert!(text.contains(&shown), "{shown:?} not in {text}");
}

async fn user_names(app: &TestApp) -> Vec<String> {
    let answer = app
        .call(Call::get("/api/users").bearer(&app.admin.token))
        .await;
    answer.expect(200);
    answer.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn token_rows(app: &TestApp) -> Vec<Value> {
    let answer = app
        .call(Call::get("/api/tokens").bearer(&app.viewer.token))
        .await;
    answer.expect(200);
    answer.json()["tokens"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_add_user_form_comes_back_with_the_message_next_to_the_field() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let before = user_names(&app).await;
    let cases: [(Form, u16, &str, &str); 4] = [
        (
            &[
                ("username", "newbie"),
                ("role", "viewer"),
                ("password", "short"),
            ],
            422,
            "the password has 5 characters; it needs at least 12",
            "value=\"newbie\"",
        ),
        (
            &[
                ("username", "newbie"),
                ("role", "god"),
                ("password", "a long enough password"),
            ],
            422,
            "unknown role",
            "value=\"newbie\"",
        ),
        (
            &[
                ("username", "bo b<"),
                ("role", "operator"),
                ("password", "a long enough password"),
            ],
            422,
            "invalid username",
            "value=\"bo b&#60;\"",
        ),
        (
            &[
                ("username", "operator"),
                ("role", "admin"),
                ("password", "a long enough password"),
            ],
            409,
            "a user named &#34;operator&#34; already exists",
            "value=\"operator\"",
        ),
    ];
    for (form, status, message, kept) in cases {
        let page = app
            .call(Call::post("/users").session(admin).form(form))
            .await;
        page.expect(status);
        assert!(page.content_type().starts_with("text/html"), "{form:?}");
        field_message(&page, message);
        assert!(page.text().contains(kept), "{kept} kept: {}", page.text());
        // The password typed is never sent back.
        assert!(!page.text().contains("a long enough password"));
        assert!(!page.text().contains("value=\"short\""));
    }
    // The role chosen is kept selected.
    let page = app
        .call(Call::post("/users").session(admin).form(&[
            ("username", "newbie"),
            ("role", "operator"),
            ("password", "short"),
        ]))
        .await;
    page.expect(422);
    assert!(
        page.text().contains("<option value=\"operator\" selected>"),
        "{}",
        page.text()
    );
    assert_eq!(user_names(&app).await, before, "nothing created");
    let role = app
        .call(Call::get("/api/users").bearer(&admin.token))
        .await
        .json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "operator")
        .unwrap()["role"]
        .clone();
    assert_eq!(role, "operator", "the existing user is unchanged");

    // The JSON twin answers the error naming the field.
    let refused = |body: Value| Call::post("/api/users").bearer(&admin.token).json(&body);
    let message = app
        .call(refused(
            json!({"username": "newbie", "role": "god", "password": "a long enough password"}),
        ))
        .await
        .expect_json_error(400);
    assert!(message.starts_with("role: "), "{message}");
    let message = app
        .call(refused(
            json!({"username": "newbie", "role": "viewer", "password": "short"}),
        ))
        .await
        .expect_json_error(400);
    assert!(
        message.starts_with("password: the password has 5 characters"),
        "{message}"
    );
    let message = app
        .call(refused(
            json!({"username": "operator", "role": "viewer", "password": "a long enough password"}),
        ))
        .await
        .expect_json_error(409);
    assert!(message.starts_with("username: a user named"), "{message}");
    assert_eq!(user_names(&app).await, before, "nothing created");

    // Tryout 13 finding 5: every wrong field in one answer, each next to its field.
    let page = app
        .call(Call::post("/users").session(admin).form(&[
            ("username", "Bad User"),
            ("role", "god"),
            ("password", "short"),
        ]))
        .await;
    page.expect(422);
    field_message(&page, "invalid username");
    field_message(&page, "unknown role");
    field_message(&page, "the password has 5 characters");
    let message = app
        .call(refused(
            json!({"username": "Bad User", "role": "viewer", "password": "short"}),
        ))
        .await
        .expect_json_error(400);
    assert!(
        message.starts_with("username: ") && message.contains("; password: "),
        "{message}"
    );
    assert_eq!(user_names(&app).await, before, "nothing created");

    // Good input still goes through.
    app.call(Call::post("/users").session(admin).form(&[
        ("username", "newbie"),
        ("role", "viewer"),
        ("password", "a long enough password"),
    ]))
    .await
    .expect(303);
    assert!(user_names(&app).await.contains(&"newbie".to_owned()));
}

#[tokio::test]
async fn the_new_token_form_refuses_a_bad_expiry_by_its_label() {
    let app = TestApp::new().await;
    let v = &app.viewer;
    let before = token_rows(&app).await.len();
    for days in ["-3", "abc", "1.5"] {
        let page = app
            .call(
                Call::post("/account/tokens")
                    .session(v)
                    .form(&[("name", "ci deploys"), ("expires_in_days", days)]),
            )
            .await;
        page.expect(422);
        field_message(
            &page,
            &format!(
                "Expires in days: &#34;{days}&#34; is not a number of days: give 1 or more, or \
                 0 or nothing for a token that never expires"
            ),
        );
        assert!(
            !page.text().contains("expires_in_days:"),
            "the JSON name is not shown"
        );
        assert!(
            page.text().contains(&format!("value=\"{days}\"")),
            "{}",
            page.text()
        );
        assert!(page.text().contains("value=\"ci deploys\""));
        assert!(!page.text().contains("id=\"new-token\""), "no token shown");
    }
    let page = app
        .call(
            Call::post("/account/tokens")
                .session(v)
                .form(&[("name", "  "), ("expires_in_days", "7")]),
        )
        .await;
    page.expect(422);
    field_message(&page, "Name: give the token a name of 1 to 100 bytes");
    assert!(page.text().contains("value=\"7\""));
    assert_eq!(token_rows(&app).await.len(), before, "no token made");

    // Both wrong: both named in one answer, as one line and field by field.
    let answer = app
        .call(
            Call::post("/api/tokens")
                .bearer(&v.token)
                .json(&json!({"name": "", "expires_in_days": "abc"})),
        )
        .await;
    let message = answer.expect_json_error(400);
    assert!(
        message.starts_with("name: ") && message.contains("; expires_in_days: "),
        "{message}"
    );
    let body = answer.json();
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "expires_in_days"]);
    let page = app
        .call(
            Call::post("/account/tokens")
                .session(v)
                .form(&[("name", ""), ("expires_in_days", "-2")]),
        )
        .await;
    page.expect(422);
    field_message(&page, "Name: give the token a name of 1 to 100 bytes");
    field_message(&page, "Expires in days: ");
    assert!(page.text().contains("is not a number of days"));
    for days in [json!(-3), json!("abc"), json!(1.5)] {
        let message = app
            .call(
                Call::post("/api/tokens")
                    .bearer(&v.token)
                    .json(&json!({"name": "ci", "expires_in_days": days})),
            )
            .await
            .expect_json_error(400);
        assert!(message.starts_with("expires_in_days: "), "{message}");
        assert!(message.contains("is not a number of days"), "{message}");
    }
    assert_eq!(token_rows(&app).await.len(), before, "no token made");

    // An empty field is no expiry; 7 is seven days.
    for days in ["", "7"] {
        let page = app
            .call(
                Call::post("/account/tokens")
                    .session(v)
                    .form(&[("name", "ci"), ("expires_in_days", days)]),
            )
            .await;
        page.expect(303);
        assert!(page.location().starts_with("/account?new_token="));
    }
    let rows = token_rows(&app).await;
    assert_eq!(rows.len(), before + 2);
    assert_eq!(
        rows.iter().filter(|t| t["expires"].is_null()).count(),
        before + 1
    );
}

#[tokio::test]
async fn the_password_form_comes_back_with_the_message_next_to_the_field() {
    let app = TestApp::new().await;
    let who = &app.operator;
    let page = app
        .call(Call::post("/account/password").session(who).form(&[
            ("current", "not the password at all"),
            ("new", "a new password for the tests"),
        ]))
        .await;
    page.expect(422);
    field_message(&page, "the current password is wrong");
    let page = app
        .call(
            Call::post("/account/password")
                .session(who)
                .form(&[("current", PASSWORD), ("new", "short")]),
        )
        .await;
    page.expect(422);
    field_message(&page, "the password has 5 characters; it needs at least 12");
    for typed in [
        "not the password at all",
        "a new password for the tests",
        PASSWORD,
    ] {
        assert!(!page.text().contains(typed));
    }
    // Nothing changed: the session still works and the old password still logs in.
    app.call(Call::get("/account").session(who))
        .await
        .expect(200);
    app.login("operator", PASSWORD, "/").await.expect(303);
    let message = app
        .call(
            Call::post("/api/account/password").bearer(&who.token).json(
                &json!({"current": "not the password", "new": "a new password for the tests"}),
            ),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("current: "), "{message}");
}

#[tokio::test]
async fn a_number_field_is_refused_in_words_not_by_rust_type() {
    let app = TestApp::new().await;
    let message = app
        .call(
            Call::post("/api/services/no-such-service/scale")
                .bearer(&app.operator.token)
                .json(&json!({"replicas": -1})),
        )
        .await
        .expect_json_error(400);
    assert_eq!(message, "replicas: a whole number, 0 or more");
}

#[tokio::test]
async fn a_refused_change_to_a_user_comes_back_next_to_its_row() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let row = format!("/users/{}", app.operator.id);
    let page = app
        .call(Call::post(&row).session(admin).form(&[("role", "god")]))
        .await;
    page.expect(422);
    field_message(
        &page,
        "unknown role &#34;god&#34;: expected viewer, operator or admin",
    );
    // The only enabled admin cannot be disabled or demoted.
    let own = format!("/users/{}", admin.id);
    for form in [[("disabled", "true")], [("role", "viewer")]] {
        let page = app.call(Call::post(&own).session(admin).form(&form)).await;
        page.expect(409);
        field_message(&page, "that would leave no enabled admin");
    }
    let users = app
        .call(Call::get("/api/users").bearer(&admin.token))
        .await
        .json();
    let of = |name: &str| {
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of("operator")["role"], "operator", "nothing changed");
    assert_eq!(of("admin")["role"], "admin");
    assert_eq!(of("admin")["disabled"], false);

    let patch = |id: i64, body: Value| {
        Call::patch(&format!("/api/users/{id}"))
            .bearer(&admin.token)
            .json(&body)
    };
    let message = app
        .call(patch(app.operator.id, json!({"role": "god"})))
        .await
        .expect_json_error(400);
    assert!(message.starts_with("role: unknown role"), "{message}");
    let message = app
        .call(patch(admin.id, json!({"disabled": true})))
        .await
        .expect_json_error(409);
    assert_eq!(message, "disabled: that would leave no enabled admin");
}
