//! Every route of the server with every role, CSRF, logins, tokens, agent reports and the
//! actions' effects, through the whole router in-process, against the host's single-node swarm.
//! Each test has its own state directory and its own uniquely named services and stacks, removed
//! when it ends.

mod support;

use std::time::Duration;

use axum::http::Method;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::{
    docker, greeting_stack, is_html, node_id, open_state, report, send, session_from,
    stack_services, test_image, try_docker, wait_for, Answer, Call, Identity, TempDir, TestApp,
    TestService, TestStack, IMAGE, IMAGE_V2, PASSWORD, REPORT_SECRET,
};
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_auth::{allowed, Action, LimitPolicy, LoginLimiter, NewApiToken};
use swarmkeeper_server::routes::{table, Access, Route};

/// The things a route's path names, to fill its `{name}` and `{id}` in.
struct Names<'a> {
    service: &'a str,
    stack: &'a str,
    node: &'a str,
    user: i64,
    token: &'a str,
    task: &'a str,
    /// A secret and a config of this name.
    object: &'a str,
}

impl Names<'static> {
    /// Names of nothing that exists: for answers given before a handler looks.
    const MADE_UP: Names<'static> = Names {
        service: "web",
        stack: "shop",
        node: "n1",
        user: 1,
        token: "00ff",
        task: "t0",
        object: "pw",
    };
}

/// The route's path with real names: `{name}` is a service or a stack and `{id}` a node, a
/// user or a token, as the path's first words say.
fn fill(route: &Route, names: &Names<'_>) -> String {
    let path = route.path;
    let under =
        |prefix: &str| path.starts_with(prefix) || path.starts_with(&format!("/api{prefix}"));
    let name = if under("/stacks") {
        names.stack
    } else if under("/secrets") || under("/configs") {
        names.object
    } else {
        names.service
    };
    let user = names.user.to_string();
    let id = if under("/nodes") {
        names.node
    } else if under("/users") {
        &user
    } else if under("/tasks") {
        names.task
    } else {
        names.token
    };
    path.replace("{name}", name)
        .replace("{id}", id)
        .replace("{file}", "app.css")
}

fn call(route: &Route, uri: &str) -> Call {
    Call::new(route.method.clone(), uri)
}

/// The routes behind the login, with the action each requires (`None`: any logged-in user).
fn protected() -> Vec<(Route, Option<Action>)> {
    table()
        .into_iter()
        .filter_map(|route| match route.access {
            Access::Public => None,
            Access::LoggedIn => Some((route, None)),
            Access::Requires(action) => Some((route, Some(action))),
        })
        .collect()
}

fn audited(entries: &[Value], who: &str, action: &str, target: &str) -> bool {
    entries
        .iter()
        .any(|e| e["who"] == who && e["action"] == action && e["target"] == target)
}

fn env_of(spec: &Value) -> Vec<String> {
    spec.pointer("/TaskTemplate/ContainerSpec/Env")
        .and_then(Value::as_array)
        .map(|env| env.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The route table is what the app serves: each row answers its method (never 404 or 405),
/// each path refuses the methods it has no row for, and a page and its `/api` twin require the
/// same action.
#[tokio::test]
async fn the_route_table_is_what_the_app_serves() {
    let dir = TempDir::new("state");
    let app = swarmkeeper_server::app(open_state(dir.path(), Some(REPORT_SECRET)));
    let names = Names::MADE_UP;
    let rows = table();
    assert!(rows.len() >= 45, "{rows:?}");
    for route in &rows {
        let uri = fill(route, &names);
        let answer = send(&app, call(route, &uri)).await;
        assert!(
            ![404, 405].contains(&answer.status.as_u16()) || route.path.starts_with("/static"),
            "{} {uri} is in the table but answered {}",
            route.method,
            answer.status
        );
    }
    for route in &rows {
        let served: Vec<&Method> = rows
            .iter()
            .filter(|r| r.path == route.path)
            .map(|r| &r.method)
            .collect();
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if !served.contains(&&method) {
                let uri = fill(route, &names);
                let answer = send(&app, Call::new(method.clone(), &uri)).await;
                assert_eq!(
                    answer.status.as_u16(),
                    405,
                    "{method} {uri}: {}",
                    answer.text()
                );
            }
        }
    }
    let twins = [
        ("/services", "/api/services"),
        ("/nodes/{id}", "/api/nodes/{id}"),
        ("/account", "/api/tokens"),
        ("/users/{id}", "/api/users/{id}"),
    ];
    for (page, api) in twins {
        let access = |path: &str| rows.iter().find(|r| r.path == path).map(|r| r.access);
        assert_eq!(access(page), access(api), "{page} and {api}");
    }
}

#[tokio::test]
async fn public_routes_answer_without_a_login() {
    let dir = TempDir::new("state");
    let app = swarmkeeper_server::app(open_state(dir.path(), Some(REPORT_SECRET)));
    for path in [
        "/login",
        "/healthz",
        "/static/app.css",
        "/static/app.js",
        "/static/logs.js",
    ] {
        send(&app, Call::get(path)).await.expect(200);
    }
    let login = send(&app, Call::get("/login")).await;
    assert!(is_html(&login.headers) && login.text().contains("name=\"password\""));
    let openapi = send(&app, Call::get("/api/openapi.json")).await;
    openapi.expect(200);
    assert!(openapi.content_type().starts_with("application/json"));
    assert_eq!(openapi.json()["openapi"], "3.1.0");
    send(&app, Call::get("/static/nope.js")).await.expect(404);
    let favicon = send(&app, Call::get("/favicon.ico")).await;
    favicon.expect(200);
    assert_eq!(favicon.content_type(), "image/svg+xml");
    assert_eq!(favicon.headers["cache-control"], "max-age=86400");
    assert!(favicon.text().starts_with("<svg") && favicon.text().len() < 1024);
    // No setup is pending once users exist (or before a token was armed).
    let setup = send(&app, Call::get("/setup")).await;
    setup.expect(303);
    assert_eq!(setup.location(), "/login");
    assert_eq!(send(&app, Call::get("/healthz")).await.text(), "ok\n");
}

#[tokio::test]
async fn strangers_get_401_from_the_api_and_the_login_page_in_a_browser() {
    let dir = TempDir::new("state");
    let app = swarmkeeper_server::app(open_state(dir.path(), Some(REPORT_SECRET)));
    let names = Names::MADE_UP;
    for (route, _) in protected() {
        let uri = fill(&route, &names);
        for attempt in [
            call(&route, &uri),
            call(&route, &uri).cookie("sks_0000000000000000000000000000000000000000000000000000000000000000"),
            call(&route, &uri).bearer("skt_00000000000000000000000000000000_0000000000000000000000000000000000000000000000000000000000000000"),
            call(&route, &uri).header("authorization", "Basic YWRtaW46YWRtaW4="),
        ] {
            let answer = send(&app, attempt).await;
            if uri.starts_with("/api/") {
                answer.expect_json_error(401);
            } else if route.method == Method::GET {
                answer.expect(303);
                let location = answer.location();
                let query = location
                    .strip_prefix("/login?")
                    .unwrap_or_else(|| panic!("{uri} redirected to {location:?}"));
                let fields: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
                assert_eq!(fields, [("next".to_owned(), uri.clone())], "{uri}");
            } else {
                answer.expect(401);
                assert!(is_html(&answer.headers), "{} {uri}: an error page", route.method);
            }
        }
    }
    // The query comes back too.
    let answer = send(&app, Call::get("/logs/web?grep=a%20b&tail=5")).await;
    let location = answer.location().to_owned();
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_str(location.strip_prefix("/login?").unwrap()).unwrap();
    assert_eq!(fields[0].1, "/logs/web?grep=a%20b&tail=5");
}

/// Every GET route with every role: 200 where `Action::minimum_role` allows, 403 elsewhere; the
/// API by bearer token, pages by session cookie.
#[tokio::test]
async fn every_read_route_answers_each_role_as_its_action_says() {
    let app = TestApp::new().await;
    let stack = support::unique("st");
    let service = TestService::create(
        "read",
        &["--label", &format!("com.docker.stack.namespace={stack}")],
    );
    let node = node_id();
    let mut task = String::new();
    wait_for("a task of the service", Duration::from_secs(30), || {
        task = docker(&["service", "ps", "-q", "--no-trunc", &service.name]);
        !task.trim().is_empty()
    });
    let object = support::unique("obj");
    for kind in ["secret", "config"] {
        let created = std::process::Command::new("sh")
            .args(["-c", &format!("printf x | docker {kind} create {object} -")])
            .status()
            .unwrap();
        assert!(created.success(), "docker {kind} create");
    }
    let names = Names {
        service: &service.name,
        stack: &stack,
        node: &node,
        user: app.viewer.id,
        token: "unused",
        task: task.lines().next().unwrap(),
        object: &object,
    };
    for who in app.users() {
        for (route, action) in protected().iter().filter(|(r, _)| r.method == Method::GET) {
            let action = action.unwrap();
            let mut uri = fill(route, &names);
            if uri.ends_with("/logs") {
                uri.push_str("?follow=false&tail=5");
            }
            if uri == "/api/image-tags" {
                // A registry that refuses at once: the answer says so, with no tags.
                uri.push_str("?image=127.0.0.1:1/nothing");
            }
            // No agent reported a volume of that name, and no change runs as a job (those are
            // followed in tests/jobs.rs): the page is not found, once allowed.
            let found = !uri.starts_with("/volumes/") && !uri.contains("/jobs/");
            let request = if uri.starts_with("/api/") {
                call(route, &uri).bearer(&who.token)
            } else {
                call(route, &uri).cookie(&who.session)
            };
            let answer = app.call(request).await;
            let want = match (allowed(who.role, action), found) {
                (false, _) => 403,
                (true, true) => 200,
                (true, false) => 404,
            };
            assert_eq!(
                answer.status.as_u16(),
                want,
                "{} {uri} as {}: {}",
                route.method,
                who.role,
                answer.text()
            );
            if want == 403 && uri.starts_with("/api/") {
                let message = answer.expect_json_error(403);
                assert!(message.contains(action.described()), "{message}");
            } else if !uri.starts_with("/api/") {
                assert!(is_html(&answer.headers), "{uri}: {}", answer.content_type());
            } else if uri.contains("/logs?") {
                assert!(
                    answer.content_type().starts_with("text/event-stream"),
                    "{uri}"
                );
                assert!(answer.text().contains("event: end"), "{}", answer.text());
            } else if uri.contains("/logs/download") {
                assert!(answer.content_type().starts_with("text/plain"), "{uri}");
                assert!(answer
                    .header("content-disposition")
                    .starts_with("attachment"));
            } else {
                assert!(
                    answer.content_type().starts_with("application/json"),
                    "{uri}"
                );
            }
        }
    }
    for kind in ["secret", "config"] {
        docker(&[kind, "rm", &object]);
    }
    // The fake stack (a label) is listed, with the service.
    let stacks = app
        .call(Call::get("/api/stacks").bearer(&app.viewer.token))
        .await
        .json();
    let row = stacks["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stack.as_str());
    assert_eq!(row.expect("the stack is listed")["services"], 1);
    let view = app
        .call(Call::get(&format!("/api/stacks/{stack}")).bearer(&app.viewer.token))
        .await
        .json();
    assert_eq!(view["services"][0]["name"], service.name.as_str());
    // Unknown things are 404 for whoever may look.
    for uri in [
        "/api/services/skservertest-none",
        "/api/nodes/none",
        "/api/stacks/skservertest-none",
    ] {
        app.call(Call::get(uri).bearer(&app.viewer.token))
            .await
            .expect_json_error(404);
    }
    let page = app
        .call(Call::get("/services/skservertest-none").cookie(&app.viewer.session))
        .await;
    page.expect(404);
    assert!(is_html(&page.headers));
}

/// A viewer (and an operator, for admin business) is refused every change, by API and by form,
/// and nothing changes: not the service, not the stack, not the users.
#[tokio::test]
async fn a_viewer_cannot_change_anything() {
    let app = TestApp::new().await;
    let service = TestService::create("viewer", &["--env", "A=1"]);
    let stack = TestStack::new("vs");
    let before = service.spec();
    let s = &service.name;
    let st = &stack.name;
    let v = &app.viewer;
    let admin_only = [
        Call::post("/api/users")
            .json(&json!({"username": "mallory", "role": "admin", "password": PASSWORD})),
        Call::patch(&format!("/api/users/{}", v.id)).json(&json!({"role": "admin"})),
        Call::patch(&format!("/api/users/{}", app.admin.id)).json(&json!({"disabled": true})),
    ];
    let operator_only = [
        Call::post(&format!("/api/services/{s}/scale")).json(&json!({"replicas": 3})),
        Call::post(&format!("/api/services/{s}/redeploy")),
        Call::post(&format!("/api/services/{s}/rollback")),
        Call::post(&format!("/api/stacks/{st}/deploy"))
            .json(&json!({"compose": greeting_stack("x", "1s")})),
        Call::post("/api/lint").json(&json!({"compose": greeting_stack("x", "1s")})),
        Call::post(&format!("/api/stacks/{st}/rollback")).json(&json!({})),
        Call::post("/api/secrets").json(&json!({"name": st, "data": "x"})),
        Call::post("/api/configs").json(&json!({"name": st, "data": "x"})),
        Call::delete(&format!("/api/secrets/{st}")),
        Call::post(&format!("/api/configs/{st}/rotate")).json(&json!({"data": "x"})),
    ];
    for request in operator_only.into_iter().chain(admin_only) {
        let what = format!("{} {}", request.method(), request.uri());
        let message = app
            .call(request.bearer(&v.token))
            .await
            .expect_json_error(403);
        assert!(
            message.starts_with("your role may not"),
            "{what}: {message}"
        );
        // In words, with who may: not the audit log's action id (tryout 11 finding 11).
        assert!(
            message.ends_with(": an operator or an admin may")
                || message.ends_with(": only an admin may"),
            "{what}: {message}"
        );
        assert!(
            !message.contains("manage-") && !message.contains("view-"),
            "{what}: {message}"
        );
    }
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/services/{s}/scale"), vec![("replicas", "3")]),
        (format!("/services/{s}/redeploy"), vec![]),
        (format!("/services/{s}/rollback"), vec![]),
        (
            "/stacks/deploy".to_owned(),
            vec![
                ("stack", st),
                ("compose", "services: {}"),
                ("action", "deploy"),
            ],
        ),
        (format!("/stacks/{st}/rollback"), vec![]),
        ("/secrets".to_owned(), vec![("name", st), ("data", "x")]),
        (format!("/configs/{st}/remove"), vec![]),
        (format!("/secrets/{st}/rotate"), vec![("data", "x")]),
        (
            "/users".to_owned(),
            vec![
                ("username", "mallory"),
                ("role", "admin"),
                ("password", PASSWORD),
            ],
        ),
        (format!("/users/{}", v.id), vec![("role", "admin")]),
    ];
    for (uri, mut fields) in forms {
        fields.push(("csrf_token", v.csrf.as_str()));
        let answer = app
            .call(Call::post(&uri).cookie(&v.session).form(&fields))
            .await;
        answer.expect(403);
        assert!(is_html(&answer.headers), "{uri}");
    }
    // The operator may not do admin business either.
    let o = &app.operator;
    for request in [
        Call::post("/api/users")
            .json(&json!({"username": "mallory", "role": "admin", "password": PASSWORD})),
        Call::patch(&format!("/api/users/{}", o.id)).json(&json!({"role": "admin"})),
    ] {
        app.call(request.bearer(&o.token))
            .await
            .expect_json_error(403);
    }
    app.call(Call::post("/users").session(o).form(&[
        ("username", "mallory"),
        ("role", "admin"),
        ("password", PASSWORD),
    ]))
    .await
    .expect(403);

    // Nothing changed.
    assert_eq!(service.spec(), before, "the service's spec");
    assert_eq!(
        service.inspect("{{.PreviousSpec}}"),
        "<nil>",
        "no update happened"
    );
    assert!(stack_services(st).is_empty(), "no stack was deployed");
    assert!(
        try_docker(&["secret", "inspect", st]).is_err(),
        "no secret was created"
    );
    let users = app
        .call(Call::get("/api/users").bearer(&app.admin.token))
        .await
        .json();
    let mut roles: Vec<(&str, &str, bool)> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["role"].as_str().unwrap(),
                u["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("admin", "admin", false),
            ("operator", "operator", false),
            ("viewer", "viewer", false)
        ]
    );
    let audit = app.audit().await;
    assert!(
        audit.iter().all(|e| e["action"] == "login"),
        "only the logins are in the audit log: {audit:?}"
    );
}

/// Scale, redeploy and roll back through the API and the forms, as operator and admin, and
/// what the engine says afterwards; every change is audited with who and what.
#[tokio::test]
async fn service_actions_change_the_engine_and_are_audited() {
    let app = TestApp::new().await;
    let service = TestService::create("act", &["--env", "A=1"]);
    let s = &service.name;
    let (op, admin) = (&app.operator, &app.admin);

    // Swarm keeps no previous spec yet: nothing to roll back to.
    let message = app
        .call(Call::post(&format!("/api/services/{s}/rollback")).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(message.contains("no previous spec"), "{message}");
    let page = app
        .call(Call::get(&format!("/api/services/{s}")).bearer(&op.token))
        .await
        .json();
    assert_eq!(page["can_roll_back"], false);

    // Scale 1 → 2 by the operator's token.
    assert_eq!(service.replicas(), 1);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{s}/scale"))
                .bearer(&op.token)
                .json(&json!({"replicas": 2})),
        )
        .await;
    answer.expect(200);
    assert_eq!(
        answer.json(),
        json!({"service": s, "action": "scale", "warnings": []})
    );
    assert_eq!(service.replicas(), 2, "the engine says 2");
    // Too many replicas is refused before the engine is asked.
    app.call(
        Call::post(&format!("/api/services/{s}/scale"))
            .bearer(&op.token)
            .json(&json!({"replicas": 501})),
    )
    .await
    .expect_json_error(400);
    assert_eq!(service.replicas(), 2);

    // Redeploy by the admin's session (header CSRF): ForceUpdate goes up by one.
    let force = |spec: &Value| {
        spec.pointer("/TaskTemplate/ForceUpdate")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let before = force(&service.spec());
    let answer = app
        .call(Call::post(&format!("/api/services/{s}/redeploy")).session(admin))
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["action"], "redeploy");
    assert_eq!(force(&service.spec()), before + 1);

    // An update outside swarmkeeper, then a rollback by the operator: the image and the
    // environment come back.
    docker(&[
        "service",
        "update",
        "--detach",
        "--quiet",
        "--env-add",
        "A=2",
        "--image",
        IMAGE_V2,
        s,
    ]);
    assert!(env_of(&service.spec()).contains(&"A=2".to_owned()));
    let answer = app
        .call(Call::post(&format!("/api/services/{s}/rollback")).bearer(&op.token))
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["action"], "rollback");
    let spec = service.spec();
    assert_eq!(env_of(&spec), ["A=1"]);
    let image = spec
        .pointer("/TaskTemplate/ContainerSpec/Image")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(image.starts_with(IMAGE), "{image}");

    // The forms, with the CSRF token as a form field: scale back to 1 and redirect to the page.
    let answer = app
        .call(
            Call::post(&format!("/services/{s}/scale"))
                .cookie(&admin.session)
                .form(&[("replicas", "1"), ("csrf_token", &admin.csrf)]),
        )
        .await;
    answer.expect(303);
    assert_eq!(answer.location(), format!("/services/{s}"));
    assert_eq!(service.replicas(), 1);
    let answer = app
        .call(
            Call::post(&format!("/services/{s}/redeploy"))
                .cookie(&op.session)
                .form(&[("csrf_token", &op.csrf)]),
        )
        .await;
    answer.expect(303);
    assert_eq!(force(&service.spec()), before + 2);
    let answer = app
        .call(
            Call::post(&format!("/services/{s}/rollback"))
                .cookie(&op.session)
                .form(&[("csrf_token", &op.csrf)]),
        )
        .await;
    answer.expect(303);
    // Admin rolls back through the API too (Swarm swapped the specs: there is one again).
    app.call(Call::post(&format!("/api/services/{s}/rollback")).bearer(&admin.token))
        .await
        .expect(200);

    let audit = app.audit().await;
    assert!(audited(&audit, "operator", "scale", s), "{audit:?}");
    assert!(audit
        .iter()
        .any(|e| e["action"] == "scale" && e["detail"] == "replicas=2"));
    assert!(audited(&audit, "admin", "scale", s));
    assert!(audited(&audit, "admin", "redeploy", s));
    assert!(audited(&audit, "operator", "redeploy", s));
    assert!(audited(&audit, "operator", "rollback", s));
    assert!(audited(&audit, "admin", "rollback", s));
    // The overview lists the changes as events.
    let overview = app
        .call(Call::get("/api/overview").bearer(&app.viewer.token))
        .await
        .json();
    let events = overview["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "scale" && e["link"] == format!("/services/{s}")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_global_or_unknown_service_cannot_be_scaled() {
    let app = TestApp::new().await;
    let global = TestService::create("glob", &["--mode", "global"]);
    let op = &app.operator;
    let message = app
        .call(
            Call::post(&format!("/api/services/{}/scale", global.name))
                .bearer(&op.token)
                .json(&json!({"replicas": 2})),
        )
        .await
        .expect_json_error(409);
    assert!(message.contains(&global.name), "{message}");
    // swarmkeeper's refusal in its own words, not as the engine's (tryout 11 finding 13).
    assert!(
        message.starts_with(&format!("service {} is global: ", global.name))
            && !message.contains("Docker Engine"),
        "{message}"
    );
    for action in ["scale", "redeploy", "rollback"] {
        let answer = app
            .call(
                Call::post(&format!("/api/services/skservertest-none/{action}"))
                    .bearer(&op.token)
                    .json(&json!({"replicas": 1})),
            )
            .await;
        let message = answer.expect_json_error(404);
        assert!(message.contains("skservertest-none"), "{message}");
    }
    // A body of the wrong shape is refused by the framework, before any handler runs.
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/scale", global.name))
                .bearer(&op.token)
                .json(&json!({"replicas": "two"})),
        )
        .await;
    answer.expect(400);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/scale", global.name))
                .bearer(&op.token)
                .body("text/plain", b"2".to_vec()),
        )
        .await;
    answer.expect(415);
}

/// What axum refuses before a handler runs (a body that is not JSON, a field of the wrong type,
/// another content type, a path or query parameter of the wrong type, an unknown route or
/// method) answers in the route's shape: `{"error": ..., "status": N}` under `/api`, naming the
/// field; an error page elsewhere.
#[tokio::test]
async fn refusals_before_the_handler_answer_in_the_routes_shape() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let scale = "/api/services/skservertest-none/scale";
    let cases = [
        (
            Call::post(scale)
                .bearer(&op.token)
                .body("application/json", b"{".to_vec()),
            400,
            "EOF",
        ),
        (
            Call::post(scale)
                .bearer(&op.token)
                .json(&json!({"replicas": "many"})),
            400,
            "replicas: a whole number, 0 or more",
        ),
        (
            Call::post(scale).bearer(&op.token).json(&json!({})),
            400,
            "missing field `replicas`",
        ),
        (
            Call::post(scale)
                .bearer(&op.token)
                .body("text/plain", b"replicas=2".to_vec()),
            415,
            "application/json",
        ),
        (
            Call::patch("/api/users/abc")
                .bearer(&app.admin.token)
                .json(&json!({"role": "viewer"})),
            400,
            "abc",
        ),
        (
            Call::get("/api/audit?before=yesterday").bearer(&app.admin.token),
            400,
            "before",
        ),
        (
            Call::get("/api/no-such-thing").bearer(&op.token),
            404,
            "Not Found",
        ),
        (
            Call::delete("/api/services").bearer(&op.token),
            405,
            "Method Not Allowed",
        ),
    ];
    for (request, status, says) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = app.call(request).await;
        let message = answer.expect_json_error(status);
        assert!(message.contains(says), "{what}: {message}");
    }
    // A form names its field too, on an error page.
    let page = app
        .call(
            Call::post("/services/skservertest-none/scale")
                .cookie(&op.session)
                .form(&[("csrf_token", &op.csrf), ("replicas", "many")]),
        )
        .await;
    page.expect(400);
    assert!(is_html(&page.headers), "{}", page.content_type());
    assert!(
        page.text().contains("replicas: invalid digit"),
        "{}",
        page.text()
    );
}

/// A cookie-authenticated change needs the session's CSRF token, in the header or the form; a
/// bearer token needs none.
#[tokio::test]
async fn csrf_is_required_with_a_cookie_and_not_with_a_token() {
    let app = TestApp::new().await;
    let service = TestService::create("csrf", &[]);
    let (op, v) = (&app.operator, &app.viewer);
    let new_token = json!({"name": "csrf"});

    // No token, a wrong one, another session's: 403, JSON for the API, a page for forms.
    for request in [
        Call::post("/api/tokens")
            .cookie(&v.session)
            .json(&new_token),
        Call::post("/api/tokens")
            .cookie(&v.session)
            .header("x-csrf-token", "0".repeat(64).as_str())
            .json(&new_token),
        Call::post("/api/tokens")
            .cookie(&v.session)
            .header("x-csrf-token", &op.csrf)
            .json(&new_token),
        Call::post("/api/tokens")
            .cookie(&v.session)
            .header("x-csrf-token", &v.session)
            .json(&new_token),
        Call::delete(&format!("/api/tokens/{}", v.token_id)).cookie(&v.session),
        Call::patch(&format!("/api/users/{}", app.admin.id))
            .cookie(&app.admin.session)
            .json(&json!({"role": "viewer"})),
        Call::post("/logout").cookie(&v.session),
    ] {
        let message = app.call(request).await.expect_json_error_or_page(403);
        assert!(message.contains("CSRF"), "{message}");
    }
    for fields in [
        vec![("name", "csrf")],
        vec![("name", "csrf"), ("csrf_token", "nope")],
        vec![("name", "csrf"), ("csrf_token", op.csrf.as_str())],
    ] {
        let answer = app
            .call(
                Call::post("/account/tokens")
                    .cookie(&v.session)
                    .form(&fields),
            )
            .await;
        answer.expect(403);
        assert!(is_html(&answer.headers));
    }
    // The engine was not touched by a forged scale.
    app.call(
        Call::post(&format!("/api/services/{}/scale", service.name))
            .cookie(&op.session)
            .json(&json!({"replicas": 3})),
    )
    .await
    .expect_json_error(403);
    assert_eq!(service.replicas(), 1);
    let tokens = app
        .call(Call::get("/api/tokens").bearer(&v.token))
        .await
        .json();
    assert_eq!(
        tokens["tokens"].as_array().unwrap().len(),
        1,
        "no token was made: {tokens}"
    );
    assert!(!app
        .audit()
        .await
        .iter()
        .any(|e| e["action"] == "create-token"));

    // The header, the form field, a bearer token: accepted.
    app.call(Call::post("/api/tokens").session(v).json(&new_token))
        .await
        .expect(201);
    let page = app
        .call(
            Call::post("/account/tokens")
                .cookie(&v.session)
                .form(&[("name", "form"), ("csrf_token", &v.csrf)]),
        )
        .await;
    page.expect(303);
    let shown = app
        .call(Call::get(page.location()).cookie(&v.session))
        .await;
    assert!(shown.text().contains("skt_"), "the new token is shown once");
    app.call(Call::post("/api/tokens").bearer(&v.token).json(&new_token))
        .await
        .expect(201);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{}/scale", service.name))
                .session(op)
                .json(&json!({"replicas": 2})),
        )
        .await;
    answer.expect(200);
    assert_eq!(service.replicas(), 2);
    // A GET needs none, even with a cookie.
    app.call(Call::get("/api/tokens").cookie(&v.session))
        .await
        .expect(200);
}

/// Deploy a pasted stack file, see it and its history, deploy it unchanged and changed, roll it
/// back; each role as `minimum_role` says.
#[tokio::test]
async fn a_stack_is_deployed_listed_and_rolled_back() {
    let app = TestApp::new().await;
    let stack = TestStack::new("dep");
    let st = &stack.name;
    let (v, op, admin) = (&app.viewer, &app.operator, &app.admin);
    let web = format!("{st}_web");
    let deploy = |who: &Identity, greeting: &str| {
        Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
            .bearer(&who.token)
            .json(&json!({"compose": greeting_stack(greeting, "1s")}))
    };

    app.call(deploy(v, "one")).await.expect_json_error(403);
    let answer = app.call(deploy(op, "one")).await;
    answer.expect(200);
    let view = answer.json();
    assert_eq!(view["succeeded"], true, "{view}");
    assert_eq!(view["outcome"], "succeeded");
    assert_eq!(view["stack"], st.as_str());
    assert_eq!(view["revision"], 1);
    assert_eq!(view["services"][0]["service"], web.as_str());
    assert_eq!(view["lint"]["errors"], 0);
    assert_eq!(stack_services(st), std::slice::from_ref(&web));
    let first = TestService { name: web.clone() };
    assert_eq!(env_of(&first.spec()), ["GREETING=one"]);

    // The same file again, by the admin: nothing to change.
    let answer = app.call(deploy(admin, "one")).await;
    answer.expect(200);
    assert_eq!(answer.json()["outcome"], "unchanged", "{}", answer.text());

    // Changed, then rolled back to the last good revision before it.
    let answer = app.call(deploy(op, "two")).await;
    answer.expect(200);
    assert_eq!(answer.json()["outcome"], "succeeded", "{}", answer.text());
    assert_eq!(env_of(&first.spec()), ["GREETING=two"]);
    let rollback = Call::post(&format!("/api/stacks/{st}/rollback")).json(&json!({}));
    app.call(rollback.bearer(&v.token))
        .await
        .expect_json_error(403);
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{st}/rollback?wait=true"))
                .bearer(&op.token)
                .json(&json!({})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["succeeded"], true, "{}", answer.text());
    assert_eq!(env_of(&first.spec()), ["GREETING=one"]);

    // The history, newest first, for every role that may see it.
    for who in [v, op, admin] {
        let view = app
            .call(Call::get(&format!("/api/stacks/{st}")).bearer(&who.token))
            .await;
        view.expect(200);
        let view = view.json();
        let deploys = view["deploys"].as_array().unwrap();
        let kinds: Vec<(&str, &str)> = deploys
            .iter()
            .map(|d| (d["kind"].as_str().unwrap(), d["by"].as_str().unwrap()))
            .collect();
        assert_eq!(kinds.first(), Some(&("rollback", "operator")), "{view}");
        assert!(kinds.contains(&("deploy", "operator")), "{kinds:?}");
        assert_eq!(view["services"][0]["name"], web.as_str());
    }
    // Revision 1 by number has the specs that run now: refused, naming the one that can be
    // the target (3, "two"), which the admin then rolls back to.
    let to = |revision: u64| {
        Call::post(&format!("/api/stacks/{st}/rollback?wait=true"))
            .bearer(&admin.token)
            .json(&json!({"to": revision}))
    };
    let refused = app.call(to(1)).await.expect_json_error(409);
    assert!(
        refused.contains("the stack runs its specs now")
            && refused.ends_with("the revisions that can be the target now: 3"),
        "{refused}"
    );
    let answer = app.call(to(3)).await;
    answer.expect(200);
    assert_eq!(answer.json()["succeeded"], true, "{}", answer.text());
    assert_eq!(env_of(&first.spec()), ["GREETING=two"]);
    let service = app
        .call(Call::get(&format!("/api/services/{web}")).bearer(&v.token))
        .await
        .json();
    assert_eq!(service["stack"], st.as_str());
    assert!(
        !service["deploys"].as_array().unwrap().is_empty(),
        "{service}"
    );
    // The deploy page: operator and admin, not the viewer.
    app.call(Call::get(&format!("/stacks/deploy?stack={st}")).cookie(&op.session))
        .await
        .expect(200);
    app.call(Call::get("/stacks/deploy").cookie(&v.session))
        .await
        .expect(403);

    let audit = app.audit().await;
    assert!(audited(&audit, "operator", "deploy", st), "{audit:?}");
    assert!(audited(&audit, "admin", "deploy", st));
    assert!(audited(&audit, "operator", "rollback", st));
    assert!(audited(&audit, "admin", "rollback", st));
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "deploy" && e["detail"] == "succeeded (revision 1)"),
        "{audit:?}"
    );
}

/// What a deploy refuses before touching the engine: lint errors (unless overridden), a file
/// that does not parse, a bad stack name, `file:` secrets. And `/api/lint` by role.
#[tokio::test]
async fn a_stack_file_with_errors_is_refused_with_its_position() {
    let app = TestApp::new().await;
    let stack = TestStack::new("lint");
    let st = &stack.name;
    let op = &app.operator;
    let silent = greeting_stack("quiet", "1s").replace(
        "driver: local\n      options:\n        max-size: 1m\n",
        "driver: none\n",
    );
    assert!(silent.contains("driver: none"), "{silent}");

    // Lint by role.
    for who in app.users() {
        let answer = app
            .call(
                Call::post("/api/lint")
                    .bearer(&who.token)
                    .json(&json!({"compose": silent})),
            )
            .await;
        if allowed(who.role, Action::Deploy) {
            answer.expect(200);
            let lint = answer.json();
            assert_eq!(lint["errors"], 1, "{lint}");
            let finding = lint["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["rule"] == "SK001")
                .unwrap();
            assert_eq!(finding["severity"], "error");
            assert_eq!(finding["file"], "stack.yml");
            assert_eq!(finding["service"], "web");
        } else {
            answer.expect_json_error(403);
        }
    }

    let deploy = |body: Value| {
        Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
            .bearer(&op.token)
            .json(&body)
    };
    let message = app
        .call(deploy(json!({"compose": silent})))
        .await
        .expect_json_error(400);
    assert!(
        message.contains("SK001") && message.contains("stack.yml:"),
        "{message}"
    );
    assert!(stack_services(st).is_empty());

    let broken = "services:\n  web:\n    image: [unclosed\n";
    let message = app
        .call(deploy(json!({"compose": broken})))
        .await
        .expect_json_error(400);
    assert!(message.starts_with("stack.yml:"), "{message}");
    let position: Vec<&str> = message.splitn(4, ':').collect();
    assert!(
        position[1].parse::<u32>().is_ok() && position[2].parse::<u32>().is_ok(),
        "stack.yml:LINE:COL in {message}"
    );
    app.call(
        Call::post("/api/lint")
            .bearer(&op.token)
            .json(&json!({"compose": broken})),
    )
    .await
    .expect_json_error(400);

    let secret = format!(
        "services:\n  web:\n    image: {IMAGE}\n    secrets: [db]\nsecrets:\n  db:\n    file: /etc/hostname\n"
    );
    let message = app
        .call(deploy(json!({"compose": secret})))
        .await
        .expect_json_error(400);
    assert!(message.contains("cannot read /etc/hostname"), "{message}");

    let message = app
        .call(
            Call::post("/api/stacks/-bad/deploy")
                .bearer(&op.token)
                .json(&json!({"compose": greeting_stack("x", "1s")})),
        )
        .await
        .expect_json_error(400);
    assert!(message.contains("invalid stack name \"-bad\""), "{message}");

    // The form's check: a page with the findings, 400 with the position for a broken file.
    let form = |text: &str, action: &str| {
        Call::post("/stacks/deploy").session(op).form(&[
            ("stack", st.as_str()),
            ("compose", text),
            ("action", action),
        ])
    };
    let page = app.call(form(&silent, "check")).await;
    page.expect(200);
    assert!(page.text().contains("SK001"));
    let page = app.call(form(broken, "check")).await;
    page.expect(400);
    assert!(page.text().contains("stack.yml:"));
    let page = app.call(form(&silent, "deploy")).await;
    page.expect(400);
    assert!(stack_services(st).is_empty());

    // Overridden: it deploys, and the running service's lint says so too.
    let answer = app
        .call(deploy(
            json!({"compose": silent, "ignore_lint_errors": true}),
        ))
        .await;
    answer.expect(200);
    let view = answer.json();
    assert_eq!(view["lint"]["errors"], 1, "{view}");
    assert_eq!(stack_services(st), [format!("{st}_web")]);
    let service = app
        .call(Call::get(&format!("/api/services/{st}_web")).bearer(&op.token))
        .await
        .json();
    assert_eq!(service["log_driver"], "none");
    assert!(
        service["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "SK001"),
        "{service}"
    );
}

#[tokio::test]
async fn logins_are_audited_limited_and_never_redirect_elsewhere() {
    let app = TestApp::new().await;
    // A wait of ten minutes after the free attempts, so that the sixth comes within it.
    *app.state.limiter.lock().unwrap() = LoginLimiter::new(LimitPolicy {
        first_delay: SignedDuration::from_mins(10),
        max_delay: SignedDuration::from_mins(10),
        ..LimitPolicy::default()
    });
    // Wrong password: the login page again with 401, audited.
    for attempt in 1..=5 {
        let answer = app
            .login("operator", "wrong password, long enough", "/")
            .await;
        answer.expect(401);
        assert!(is_html(&answer.headers));
        assert!(
            answer.text().contains("Wrong user name or password"),
            "attempt {attempt}"
        );
        assert!(answer.header("set-cookie").is_empty());
    }
    // The sixth attempt waits, without a look at the password, even the right one.
    let answer = app.login("operator", PASSWORD, "/").await;
    answer.expect(429);
    let wait: i64 = answer.header("retry-after").parse().unwrap();
    assert!((590..=600).contains(&wait), "Retry-After: {wait}");
    assert!(answer.header("set-cookie").is_empty());
    // Other users are not slowed.
    app.login("viewer", PASSWORD, "/").await.expect(303);
    // An unknown user is refused like a wrong password.
    app.login("nobody", PASSWORD, "/").await.expect(401);
    // The first failure of each kind is written at once; the repeats are folded into one row
    // with their count when the window closes.
    let audit = app.audit().await;
    let rows = |action: &str, who: &str| {
        audit
            .iter()
            .filter(|e| e["action"] == action && e["who"] == who)
            .count()
    };
    assert_eq!(rows("login-failed", "operator"), 1, "{audit:?}");
    assert_eq!(rows("login-refused", "operator"), 1, "{audit:?}");
    assert!(audit.iter().any(|e| e["action"] == "login-failed"
        && e["who"] == "(unknown user)"
        && e["detail"] == "tried \"nobody\""));
    app.state.write_folded_audit(None);
    let audit = app.audit().await;
    assert!(
        audit.iter().any(|e| e["action"] == "login-failed"
            && e["who"] == "operator"
            && e["detail"].as_str().unwrap().starts_with("4 more between")),
        "{audit:?}"
    );

    // After a login, only a path on this server is followed.
    for (next, want) in [
        ("/services/web?x=1", "/services/web?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
    ] {
        let answer = app.login("admin", PASSWORD, next).await;
        answer.expect(303);
        assert_eq!(answer.location(), want, "next={next:?}");
    }
    let page = app.call(Call::get("/login?next=//evil.example")).await;
    assert!(
        !page.text().contains("evil.example"),
        "the login page does not carry an outside next"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::new().await;
    let v = &app.viewer;
    app.call(Call::get("/api/overview").cookie(&v.session))
        .await
        .expect(200);
    // Without the CSRF token, nobody is logged out.
    app.call(Call::post("/logout").cookie(&v.session))
        .await
        .expect(403);
    app.call(Call::get("/api/overview").cookie(&v.session))
        .await
        .expect(200);
    let answer = app
        .call(
            Call::post("/logout")
                .cookie(&v.session)
                .form(&[("csrf_token", &v.csrf)]),
        )
        .await;
    answer.expect(303);
    assert_eq!(answer.location(), "/login");
    let cleared = answer.header("set-cookie");
    assert!(
        cleared.starts_with("__Host-swarmkeeper_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    app.call(Call::get("/api/overview").cookie(&v.session))
        .await
        .expect_json_error(401);
    let page = app.call(Call::get("/services").cookie(&v.session)).await;
    page.expect(303);
    assert_eq!(page.location(), "/login?next=/services");
    // The other sessions and the token live on.
    app.call(Call::get("/api/overview").bearer(&v.token))
        .await
        .expect(200);
    app.call(Call::get("/api/overview").cookie(&app.operator.session))
        .await
        .expect(200);
}

#[tokio::test]
async fn api_tokens_work_until_revoked_or_expired() {
    let app = TestApp::new().await;
    // Every role manages its own tokens (`ManageOwnTokens` is a viewer's action).
    for who in app.users() {
        assert!(allowed(who.role, Action::ManageOwnTokens));
        let made = app
            .call(
                Call::post("/api/tokens")
                    .session(who)
                    .json(&json!({"name": "mine"})),
            )
            .await;
        made.expect(201);
        let made = made.json();
        assert_eq!(made["expires"], Value::Null);
        let token = made["token"].as_str().unwrap();
        app.call(Call::get("/api/tokens").bearer(token))
            .await
            .expect(200);
        app.call(
            Call::delete(&format!("/api/tokens/{}", made["id"].as_str().unwrap()))
                .bearer(&who.token),
        )
        .await
        .expect(204);
        app.call(Call::get("/api/tokens").bearer(token))
            .await
            .expect_json_error(401);
    }
    let v = &app.viewer;
    let answer = app
        .call(
            Call::post("/api/tokens")
                .bearer(&v.token)
                .json(&json!({"name": "ci", "expires_in_days": 1})),
        )
        .await;
    answer.expect(201);
    let created = answer.json();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("skt_{id}_")), "{created}");
    let expires: Timestamp = created["expires"].as_str().unwrap().parse().unwrap();
    assert!(expires > Timestamp::now() + SignedDuration::from_hours(23));

    // It works, with its owner's role and no more.
    app.call(Call::get("/api/services").bearer(&token))
        .await
        .expect(200);
    app.call(Call::get("/api/audit").bearer(&token))
        .await
        .expect_json_error(403);
    let listed = app
        .call(Call::get("/api/tokens").bearer(&token))
        .await
        .json();
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["name"], "ci");
    assert_eq!(row["revoked"], false);
    assert!(row["last_used"].is_string(), "{row}");
    assert!(
        !listed.to_string().contains(&token),
        "the secret is never listed again"
    );

    // Nobody revokes someone else's token.
    app.call(Call::delete(&format!("/api/tokens/{id}")).bearer(&app.admin.token))
        .await
        .expect_json_error(404);
    app.call(Call::get("/api/services").bearer(&token))
        .await
        .expect(200);
    // Revoked: 401, and revoking again is 404.
    app.call(Call::delete(&format!("/api/tokens/{id}")).bearer(&v.token))
        .await
        .expect(204);
    for (call, status) in [
        (Call::get("/api/services").bearer(&token), 401),
        (
            Call::delete(&format!("/api/tokens/{id}")).bearer(&v.token),
            404,
        ),
    ] {
        app.call(call).await.expect_json_error(status);
    }
    // The form revokes too.
    let form_made = app
        .call(
            Call::post("/api/tokens")
                .bearer(&v.token)
                .json(&json!({"name": "form"})),
        )
        .await
        .json();
    let answer = app
        .call(
            Call::post(&format!(
                "/account/tokens/{}/revoke",
                form_made["id"].as_str().unwrap()
            ))
            .session(v),
        )
        .await;
    answer.expect(303);
    assert_eq!(answer.location(), "/account");
    app.call(Call::get("/api/services").bearer(form_made["token"].as_str().unwrap()))
        .await
        .expect_json_error(401);

    // Expired an hour ago.
    let expired = NewApiToken::generate();
    auth_store::insert_api_token(
        &app.state.auth(),
        v.id,
        "old",
        &expired,
        Some(Timestamp::now() - SignedDuration::from_hours(1)),
        Timestamp::now() - SignedDuration::from_hours(48),
    )
    .unwrap();
    app.call(Call::get("/api/services").bearer(&expired.token))
        .await
        .expect_json_error(401);

    // Names are checked.
    for (call, status) in [
        (
            Call::post("/api/tokens")
                .bearer(&v.token)
                .json(&json!({"name": " "})),
            400,
        ),
        (
            Call::post("/api/tokens")
                .bearer(&v.token)
                .json(&json!({"name": "x".repeat(101)})),
            400,
        ),
    ] {
        app.call(call).await.expect_json_error(status);
    }
    let audit = app.audit().await;
    assert!(audited(&audit, "viewer", "create-token", &id), "{audit:?}");
    assert!(audited(&audit, "viewer", "revoke-token", &id));
}

#[tokio::test]
async fn every_role_changes_its_own_password() {
    let app = TestApp::new().await;
    let new_password = "a new password for the tests";
    for who in app.users() {
        let answer = app
            .call(
                Call::post("/api/account/password")
                    .bearer(&who.token)
                    .json(&json!({"current": "not the password", "new": new_password})),
            )
            .await;
        assert!(answer.expect_json_error(400).contains("current password"));
        app.call(
            Call::post("/api/account/password")
                .bearer(&who.token)
                .json(&json!({"current": PASSWORD, "new": "short"})),
        )
        .await
        .expect_json_error(400);
        app.call(
            Call::post("/api/account/password")
                .bearer(&who.token)
                .json(&json!({"current": PASSWORD, "new": new_password})),
        )
        .await
        .expect(204);
        // Every session ended, and every API token was revoked.
        app.call(Call::get("/api/tokens").cookie(&who.session))
            .await
            .expect_json_error(401);
        app.call(Call::get("/api/tokens").bearer(&who.token))
            .await
            .expect_json_error(401);
    }
    app.login("viewer", PASSWORD, "/").await.expect(401);
    let answer = app.login("viewer", new_password, "/").await;
    answer.expect(303);
    // The form, with a fresh session: back to the login page.
    let session = session_from(&answer);
    let csrf = swarmkeeper_auth::csrf_token(&session);
    let answer = app
        .call(Call::post("/account/password").cookie(&session).form(&[
            ("current", new_password),
            ("new", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .await;
    answer.expect(303);
    assert_eq!(answer.location(), "/login");
    let admin = session_from(&app.login("admin", new_password, "/").await);
    let audit = app
        .call(Call::get("/api/audit").cookie(&admin))
        .await
        .json()["entries"]
        .as_array()
        .unwrap()
        .clone();
    for who in ["viewer", "operator", "admin"] {
        assert!(
            audited(&audit, who, "change-own-password", who),
            "{audit:?}"
        );
    }
}

#[tokio::test]
async fn admins_manage_users_and_every_change_is_audited() {
    let app = TestApp::new().await;
    let admin = &app.admin;
    let answer = app
        .call(
            Call::post("/api/users")
                .bearer(&admin.token)
                .json(&json!({"username": "dave", "role": "operator", "password": PASSWORD})),
        )
        .await;
    answer.expect(201);
    let dave = answer.json();
    assert_eq!(dave["name"], "dave");
    assert_eq!(dave["role"], "operator");
    assert_eq!(dave["disabled"], false);
    assert!(!answer.text().contains("argon2"), "never the hash");
    let dave_id = dave["id"].as_i64().unwrap();
    let dave_login = app.login("dave", PASSWORD, "/").await;
    dave_login.expect(303);
    let dave_session = session_from(&dave_login);

    for (body, status) in [
        (
            json!({"username": "dave", "role": "viewer", "password": PASSWORD}),
            409,
        ),
        (
            json!({"username": "Eve!", "role": "viewer", "password": PASSWORD}),
            400,
        ),
        (
            json!({"username": "eve", "role": "root", "password": PASSWORD}),
            400,
        ),
        (
            json!({"username": "eve", "role": "viewer", "password": "short"}),
            400,
        ),
    ] {
        app.call(Call::post("/api/users").bearer(&admin.token).json(&body))
            .await
            .expect_json_error(status);
    }
    // By form too.
    let answer = app
        .call(Call::post("/users").session(admin).form(&[
            ("username", "erin"),
            ("role", "viewer"),
            ("password", PASSWORD),
        ]))
        .await;
    answer.expect(303);
    assert_eq!(answer.location(), "/users");

    // Change the role, then disable: dave's session ends at once.
    let answer = app
        .call(
            Call::patch(&format!("/api/users/{dave_id}"))
                .bearer(&admin.token)
                .json(&json!({"role": "viewer"})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["role"], "viewer");
    app.call(Call::get("/api/tokens").cookie(&dave_session))
        .await
        .expect(200);
    let answer = app
        .call(
            Call::post(&format!("/users/{dave_id}"))
                .session(admin)
                .form(&[("disabled", "true")]),
        )
        .await;
    answer.expect(303);
    app.call(Call::get("/api/tokens").cookie(&dave_session))
        .await
        .expect_json_error(401);
    app.login("dave", PASSWORD, "/").await.expect(401);
    // A disabled user's token stops working too.
    let operator_id = app.operator.id;
    app.call(
        Call::patch(&format!("/api/users/{operator_id}"))
            .bearer(&admin.token)
            .json(&json!({"disabled": true})),
    )
    .await
    .expect(200);
    app.call(Call::get("/api/services").bearer(&app.operator.token))
        .await
        .expect_json_error(401);
    app.call(
        Call::patch(&format!("/api/users/{operator_id}"))
            .bearer(&admin.token)
            .json(&json!({"disabled": false})),
    )
    .await
    .expect(200);
    app.call(Call::get("/api/services").bearer(&app.operator.token))
        .await
        .expect(200);

    // The last admin stays an admin.
    for (call, status) in [
        (
            Call::patch(&format!("/api/users/{}", admin.id))
                .bearer(&admin.token)
                .json(&json!({"role": "viewer"})),
            409,
        ),
        (
            Call::patch(&format!("/api/users/{}", admin.id))
                .bearer(&admin.token)
                .json(&json!({"disabled": true})),
            409,
        ),
        (
            Call::patch("/api/users/999999")
                .bearer(&admin.token)
                .json(&json!({"role": "viewer"})),
            404,
        ),
        (
            Call::patch(&format!("/api/users/{dave_id}"))
                .bearer(&admin.token)
                .json(&json!({"role": "root"})),
            400,
        ),
    ] {
        app.call(call).await.expect_json_error(status);
    }

    let audit = app.audit().await;
    assert!(
        audit.iter().any(|e| e["who"] == "admin"
            && e["action"] == "create-user"
            && e["target"] == "dave"
            && e["detail"] == "role=operator"),
        "{audit:?}"
    );
    assert!(audited(&audit, "admin", "create-user", "erin"));
    assert!(audit.iter().any(|e| e["action"] == "change-user"
        && e["target"] == "dave"
        && e["detail"] == "role=viewer"));
    assert!(audit.iter().any(|e| e["action"] == "change-user"
        && e["target"] == "dave"
        && e["detail"] == "disabled=true"));
    // Paging: `before` lists older entries only.
    let newest = audit[0]["id"].as_i64().unwrap();
    let older = app
        .call(Call::get(&format!("/api/audit?before={newest}")).bearer(&admin.token))
        .await
        .json();
    assert!(older["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["id"].as_i64().unwrap() < newest));
    assert_eq!(older["next_before"], Value::Null);
}

#[tokio::test]
async fn agent_reports_need_the_secret_and_show_on_the_nodes_page() {
    let app = TestApp::new().await;
    let node = node_id();
    let body = serde_json::to_vec(&report(&node, "reporting-node")).unwrap();
    let post = |secret: Option<&str>, body: Vec<u8>| {
        let call = Call::post("/api/agent/report").body("application/json", body);
        match secret {
            Some(secret) => call.bearer(secret),
            None => call,
        }
    };
    for (call, status) in [
        (post(None, body.clone()), 401),
        (post(Some("wrong secret"), body.clone()), 401),
        (post(Some(&app.admin.token), body.clone()), 401),
    ] {
        app.call(call).await.expect_json_error(status);
    }
    let max = swarmkeeper_report::MAX_REPORT_BYTES;
    app.call(post(Some(REPORT_SECRET), vec![b' '; max + 1]))
        .await
        .expect_json_error(413);
    app.call(post(Some(REPORT_SECRET), vec![b' '; max + 64]))
        .await
        .expect(413);
    app.call(post(Some(REPORT_SECRET), b"{\"node_id\": 1}".to_vec()))
        .await
        .expect_json_error(400);
    // Nothing was stored by any of those.
    let row = app.node_row(&node).await;
    assert_eq!(row["agent"], json!({"state": "never"}));
    assert_eq!(row["disk"], Value::Null);

    let answer = app.call(post(Some(REPORT_SECRET), body)).await;
    answer.expect(204);
    assert!(answer.body.is_empty());
    let row = app.node_row(&node).await;
    assert_eq!(row["agent"], json!({"state": "reporting"}), "{row}");
    assert_eq!(row["agent_version"], "0.1.0");
    assert_eq!(row["disk"]["capacity_bytes"], 100u64 << 30);
    assert_eq!(row["disk"]["usage_percent"], 60);
    assert!(
        row["last_gc"].is_string() && row["freed_today_bytes"].is_u64(),
        "{row}"
    );
    let detail = app
        .call(Call::get(&format!("/api/nodes/{node}")).bearer(&app.viewer.token))
        .await
        .json();
    assert_eq!(
        detail["disk_report"]["filesystem"]["path"], "/var/lib/docker",
        "{detail}"
    );
    assert_eq!(detail["reported_images"][0]["keep_reason"], "in-use");
    assert_eq!(detail["gc_runs"][0]["deleted"][0]["reason"], "space");
    assert_eq!(detail["disk_history"].as_array().unwrap().len(), 1);
    assert!(detail["swarm"]["os"].is_string());

    // A server started without a secret takes no report at all.
    let dir = TempDir::new("state");
    let closed = swarmkeeper_server::app(open_state(dir.path(), None));
    send(
        &closed,
        post(
            Some(REPORT_SECRET),
            serde_json::to_vec(&report(&node, "reporting-node")).unwrap(),
        ),
    )
    .await
    .expect_json_error(401);
}

#[tokio::test]
async fn answers_carry_the_security_headers_and_the_cookie_its_attributes() {
    let app = TestApp::new().await;
    let answer = app.login("admin", PASSWORD, "/").await;
    let cookie = answer.header("set-cookie");
    assert!(
        cookie.starts_with("__Host-swarmkeeper_session=sks_"),
        "{cookie}"
    );
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(
            cookie.split("; ").any(|a| a.starts_with(attribute)),
            "{attribute} in {cookie}"
        );
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
    let v = &app.viewer;
    for request in [
        Call::get("/login"),
        Call::get("/").cookie(&v.session),
        Call::get("/services").cookie(&v.session),
        Call::get("/api/overview").bearer(&v.token),
        Call::get("/api/overview"),
        Call::get("/users").cookie(&v.session),
        Call::get("/static/app.css"),
        Call::get("/api/openapi.json"),
    ] {
        let uri = request.uri().to_owned();
        let answer = app.call(request).await;
        let csp = answer.header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{uri}: {directive} in {csp:?}");
        }
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(answer.header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(answer.header("referrer-policy"), "same-origin", "{uri}");
        let cache = answer.header("cache-control");
        if uri.starts_with("/static/") {
            assert_eq!(cache, "max-age=300");
        } else {
            assert_eq!(cache, "no-store", "{uri}");
        }
    }
}

/// The docker CLI can see what the tests left: nothing of theirs once they are done. (Runs
/// with the others; only checks that the helpers clean up their own.)
#[test]
fn a_test_service_is_removed_when_dropped() {
    test_image();
    let name = {
        let service = TestService::create("drop", &["--replicas", "0"]);
        assert_eq!(service.replicas(), 0);
        service.name.clone()
    };
    wait_for("the service to go", Duration::from_secs(10), || {
        try_docker(&["service", "inspect", &name]).is_err()
    });
}

trait ErrorShape {
    fn expect_json_error_or_page(&self, status: u16) -> String;
}

impl ErrorShape for Answer {
    /// `/api` answers JSON errors; pages answer an HTML page with the message.
    fn expect_json_error_or_page(&self, status: u16) -> String {
        if self.content_type().starts_with("application/json") {
            self.expect_json_error(status)
        } else {
            self.expect(status);
            self.text()
        }
    }
}
