//! `openapi.json` against the app: the document lists every `/api` route and no other, and the
//! JSON the app answers (successes and errors) validates against the schema the document gives
//! for that operation and status. Objects the document describes in full forbid other fields,
//! so a field added to a `Serialize` struct fails here until the document has it too.

mod support;

use std::collections::{BTreeSet, HashSet};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use support::{
    node_id, report, Answer, Call, TestApp, TestService, TestStack, IMAGE, PASSWORD, REPORT_SECRET,
};

const DOCUMENT: &str = include_str!("../openapi.json");

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Validates instances against the document's schemas.
struct Spec {
    doc: Value,
}

impl Spec {
    fn new() -> Spec {
        Spec { doc: document() }
    }

    /// The response object of an operation for a status, `$ref` resolved.
    fn response(&self, path: &str, method: &str, status: u16) -> &Value {
        let operation = self
            .doc
            .pointer(&format!("/paths/{}/{method}", pointer_escape(path)))
            .unwrap_or_else(|| panic!("{method} {path} is not in openapi.json"));
        let response = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{method} {path}: no response {status} in openapi.json"));
        match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => self
                .doc
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{reference} does not resolve")),
            None => response,
        }
    }

    /// The errors of `instance` against `schema`, whose `$ref`s point into this document's
    /// components.
    fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut root = schema.as_object().expect("a schema object").clone();
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {}, schema {})", e.instance_path(), e.schema_path()))
            .collect()
    }

    fn schema(&self, name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// Panics unless `answer` is JSON without duplicate keys and valid against the schema the
    /// document gives for `method path` and the answer's status.
    #[track_caller]
    fn check(&self, answer: &Answer, method: &str, path: &str) -> Value {
        let status = answer.status.as_u16();
        let response = self.response(path, method, status);
        let schema = response
            .pointer("/content/application~1json/schema")
            .unwrap_or_else(|| {
                panic!(
                    "{method} {path} {status}: no JSON schema; answer {}",
                    answer.text()
                )
            });
        assert!(
            answer.content_type().starts_with("application/json"),
            "{method} {path} {status}: content-type {:?}",
            answer.content_type()
        );
        let duplicates = duplicate_keys(&answer.body);
        assert!(
            duplicates.is_empty(),
            "{method} {path}: duplicate keys {duplicates:?} in {}",
            answer.text()
        );
        let instance = answer.json();
        let errors = self.errors(schema, &instance);
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match openapi.json:\n  {}\nanswer: {instance:#}",
            errors.join("\n  ")
        );
        instance
    }
}

fn pointer_escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Every key that appears twice in one object of a JSON text, as paths. (`serde_json::Value`
/// keeps only the last, so validation alone would not see them.)
fn duplicate_keys(json: &[u8]) -> Vec<String> {
    struct Walk<'a> {
        found: &'a mut Vec<String>,
        path: String,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0;
            while seq
                .next_element_seed(Walk {
                    found: &mut *self.found,
                    path: format!("{}/{index}", self.path),
                })?
                .is_some()
            {
                index += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = format!("{}/{key}", self.path);
                if !seen.insert(key) {
                    self.found.push(path.clone());
                }
                map.next_value_seed(Walk {
                    found: &mut *self.found,
                    path,
                })?;
            }
            Ok(())
        }
    }
    let mut found = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    Walk {
        found: &mut found,
        path: String::new(),
    }
    .deserialize(&mut deserializer)
    .expect("JSON");
    found
}

#[test]
fn the_document_lists_every_api_route_and_nothing_else() {
    let doc = document();
    let in_app: BTreeSet<(String, String)> = swarmkeeper_server::routes::table()
        .into_iter()
        .filter(|route| route.path.starts_with("/api/"))
        .map(|route| {
            (
                route.method.as_str().to_ascii_lowercase(),
                route.path.to_owned(),
            )
        })
        .collect();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            assert!(
                METHODS.contains(&method.as_str()),
                "{path}: {method} is not a method"
            );
            documented.insert((method.clone(), path.clone()));
        }
    }
    let missing: Vec<_> = in_app.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&in_app).collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "openapi.json lists routes the app does not serve: {extra:?}"
    );
    assert!(in_app.len() >= 25, "{in_app:?}");
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["cookieAuth"]["in"], "cookie");
    assert_eq!(
        schemes["cookieAuth"]["name"],
        swarmkeeper_auth::SESSION_COOKIE_NAME
    );
    assert!(schemes["cookieAuth"]["description"]
        .as_str()
        .unwrap()
        .contains(swarmkeeper_auth::CSRF_HEADER));
    // Every reference resolves, every operation has an id (unique), responses and, unless it
    // is public, error answers for a missing login.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for reference in all {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a remote $ref {reference}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    let mut ids = HashSet::new();
    let parameter = regex::Regex::new(r"\{([^}]+)\}").unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = operation["responses"].as_object().unwrap();
            let public = operation.get("security").is_some_and(|s| s == &json!([]));
            if !public {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
            for name in parameter.captures_iter(path).map(|c| c[1].to_owned()) {
                let declared = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} not declared"
                );
            }
        }
    }
    // Every schema compiles.
    let spec = Spec::new();
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        spec.errors(&spec.schema(name), &Value::Null);
    }
}

#[test]
fn an_agents_report_matches_the_documented_request_body() {
    let spec = Spec::new();
    let body = serde_json::to_value(report("lkuqb6oz64hfgcogow5xr6sgp", "node-1")).unwrap();
    let schema = spec
        .doc
        .pointer("/paths/~1api~1agent~1report/post/requestBody/content/application~1json/schema")
        .unwrap();
    let errors = spec.errors(schema, &body);
    assert!(errors.is_empty(), "{errors:?}");
    // The optional fields may be left out, unknown ones are ignored.
    let mut old = body.clone();
    old.as_object_mut().unwrap().remove("truncated");
    old.as_object_mut().unwrap().remove("disk_breakdown_at");
    old.as_object_mut().unwrap().remove("usage");
    old["from_a_newer_agent"] = json!(1);
    assert!(spec.errors(schema, &old).is_empty());
    assert!(body["usage"][0]["tasks"][0]["cpu_ns"].is_u64(), "{body}");
    let mut broken = body;
    broken.as_object_mut().unwrap().remove("disk");
    assert!(!spec.errors(schema, &broken).is_empty(), "disk is required");
}

/// Every JSON route with real data (a deployed stack, a plain service updated once, agent
/// reports from the swarm node and from an engine outside it), and a few changes and errors.
#[tokio::test]
async fn json_answers_match_the_document() {
    let spec = Spec::new();
    let app = TestApp::new().await;
    let stack = TestStack::new("oas");
    let service = TestService::create("oas", &["--env", "A=1"]);
    let global = TestService::create("oasg", &["--mode", "global"]);
    let (v, op, admin) = (&app.viewer, &app.operator, &app.admin);
    let st = stack.name.as_str();
    let s = service.name.as_str();
    let node = node_id();

    // Data to show.
    for (id, hostname) in [(node.as_str(), "swarm-node"), ("", "laptop")] {
        let body = serde_json::to_vec(&report(id, hostname)).unwrap();
        app.call(
            Call::post("/api/agent/report")
                .bearer(REPORT_SECRET)
                .body("application/json", body),
        )
        .await
        .expect(204);
    }
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n    logging:\n      driver: local\n      options:\n        max-size: 1m\n    deploy:\n      update_config:\n        monitor: 1s\n"
    );
    let diff = app
        .call(
            Call::post(&format!("/api/stacks/{st}/diff"))
                .bearer(&op.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    let diffed = spec.check(&diff, "post", "/api/stacks/{name}/diff");
    assert_eq!(diffed["services"][0]["action"], "create", "{diffed}");
    let deploy = app
        .call(
            Call::post(&format!("/api/stacks/{st}/deploy?wait=true"))
                .bearer(&op.token)
                .json(&json!({"compose": compose})),
        )
        .await;
    let deployed = spec.check(&deploy, "post", "/api/stacks/{name}/deploy");
    assert_eq!(deployed["succeeded"], true, "{deployed}");
    // With `?wait=false`: 202 with the job, whose JSON ends with the outcome.
    let deploy = app
        .call(
            Call::post(&format!("/api/stacks/{st}/deploy?wait=false"))
                .bearer(&op.token)
                .json(&json!({"compose": compose.replace("1s", "2s")})),
        )
        .await;
    let started = spec.check(&deploy, "post", "/api/stacks/{name}/deploy");
    assert_eq!(deploy.status.as_u16(), 202, "{started}");
    assert_eq!(deploy.location(), started["url"].as_str().unwrap());
    support::followed_job(&app, &deploy).await;
    let job = app
        .call(Call::get(deploy.location()).bearer(&v.token))
        .await;
    let job = spec.check(&job, "get", "/api/jobs/{id}");
    assert_eq!(job["end"]["outcome"], "succeeded", "{job}");
    let rollback = app
        .call(
            Call::post(&format!("/api/stacks/{st}/rollback?wait=false"))
                .bearer(&op.token)
                .json(&json!({})),
        )
        .await;
    spec.check(&rollback, "post", "/api/stacks/{name}/rollback");
    assert_eq!(rollback.status.as_u16(), 202, "{}", rollback.text());
    support::followed_job(&app, &rollback).await;
    let refused = app
        .call(
            Call::post(&format!("/api/stacks/{st}/rollback?wait=true"))
                .bearer(&op.token)
                .json(&json!({"to": 99})),
        )
        .await;
    spec.check(&refused, "post", "/api/stacks/{name}/rollback");
    assert_eq!(refused.status.as_u16(), 400, "{}", refused.text());
    let lint = app
        .call(
            Call::post("/api/lint")
                .bearer(&op.token)
                .json(&json!({"compose": compose.replace("local", "none")})),
        )
        .await;
    assert_eq!(spec.check(&lint, "post", "/api/lint")["errors"], 1);

    // Changes.
    let scaled = app
        .call(
            Call::post(&format!("/api/services/{s}/scale"))
                .bearer(&op.token)
                .json(&json!({"replicas": 2})),
        )
        .await;
    spec.check(&scaled, "post", "/api/services/{name}/scale");
    let redeployed = app
        .call(Call::post(&format!("/api/services/{s}/redeploy")).bearer(&op.token))
        .await;
    spec.check(&redeployed, "post", "/api/services/{name}/redeploy");
    let rolled = app
        .call(Call::post(&format!("/api/services/{s}/rollback")).bearer(&op.token))
        .await;
    spec.check(&rolled, "post", "/api/services/{name}/rollback");
    let created = app
        .call(
            Call::post("/api/users")
                .bearer(&admin.token)
                .json(&json!({"username": "dave", "role": "viewer", "password": PASSWORD})),
        )
        .await;
    let dave = spec.check(&created, "post", "/api/users");
    let changed = app
        .call(
            Call::patch(&format!("/api/users/{}", dave["id"]))
                .bearer(&admin.token)
                .json(&json!({"role": "operator", "disabled": true})),
        )
        .await;
    spec.check(&changed, "patch", "/api/users/{id}");
    for expires_in_days in [json!(null), json!(7)] {
        let token = app
            .call(
                Call::post("/api/tokens")
                    .bearer(&v.token)
                    .json(&json!({"name": "ci", "expires_in_days": expires_in_days})),
            )
            .await;
        spec.check(&token, "post", "/api/tokens");
    }

    // Every JSON read.
    let reads = [
        ("/api/overview", "/api/overview".to_owned()),
        ("/api/events", "/api/events".to_owned()),
        ("/api/nodes", "/api/nodes".to_owned()),
        ("/api/nodes/{id}", format!("/api/nodes/{node}")),
        ("/api/nodes/{id}", "/api/nodes/hostname:laptop".to_owned()),
        ("/api/services", "/api/services".to_owned()),
        ("/api/services/{name}", format!("/api/services/{s}")),
        ("/api/services/{name}", format!("/api/services/{st}_web")),
        (
            "/api/services/{name}",
            format!("/api/services/{}", global.name),
        ),
        ("/api/stacks", "/api/stacks".to_owned()),
        ("/api/stacks/{name}", format!("/api/stacks/{st}")),
        ("/api/users", "/api/users".to_owned()),
        ("/api/audit", "/api/audit".to_owned()),
        ("/api/tokens", "/api/tokens".to_owned()),
        ("/api/volumes", "/api/volumes".to_owned()),
        ("/api/nodes/{id}/usage", format!("/api/nodes/{node}/usage")),
        (
            "/api/services/{name}/usage",
            format!("/api/services/{s}/usage?range=30d"),
        ),
    ];
    for (template, uri) in &reads {
        let answer = app.call(Call::get(uri).bearer(&admin.token)).await;
        assert_eq!(answer.status.as_u16(), 200, "{uri}: {}", answer.text());
        let body = spec.check(&answer, "get", template);
        if *template == "/api/nodes/{id}" && uri.contains("laptop") {
            assert_eq!(body["swarm"], Value::Null, "{body}");
        }
    }
    let tokens = app.call(Call::get("/api/tokens").bearer(&v.token)).await;
    assert!(
        spec.check(&tokens, "get", "/api/tokens")["tokens"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    // The stack's history is in the service and the stack views.
    let web = app
        .call(Call::get(&format!("/api/services/{st}_web")).bearer(&v.token))
        .await
        .json();
    // Newest first: the rollback after the two deploys.
    assert_eq!(web["deploys"][0]["revision"], 3, "{web}");
    assert_eq!(web["deploys"][0]["kind"], "rollback", "{web}");
    let stacks = app
        .call(Call::get("/api/stacks").bearer(&v.token))
        .await
        .json();
    assert!(stacks["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|row| row["name"] == st && row["last_deploy"]["by"] == "operator"));

    // Removals: a service of its own and the whole stack.
    let doomed = TestService::create("oasr", &[]);
    let removed = app
        .call(Call::delete(&format!("/api/services/{}", doomed.name)).bearer(&op.token))
        .await;
    spec.check(&removed, "delete", "/api/services/{name}");
    let removed = app
        .call(Call::delete(&format!("/api/stacks/{st}")).bearer(&op.token))
        .await;
    let removed = spec.check(&removed, "delete", "/api/stacks/{name}");
    assert_eq!(removed["removed"]["services"][0], format!("{st}_web"));

    // Errors, each as documented.
    let errors = [
        (Call::get("/api/overview"), "get", "/api/overview", 401),
        (
            Call::get("/api/users").bearer(&v.token),
            "get",
            "/api/users",
            403,
        ),
        (
            Call::post("/api/tokens")
                .cookie(&v.session)
                .json(&json!({"name": "x"})),
            "post",
            "/api/tokens",
            403,
        ),
        (
            Call::get("/api/services/skservertest-none").bearer(&v.token),
            "get",
            "/api/services/{name}",
            404,
        ),
        (
            Call::get("/api/nodes/none").bearer(&v.token),
            "get",
            "/api/nodes/{id}",
            404,
        ),
        (
            Call::get("/api/stacks/skservertest-none").bearer(&v.token),
            "get",
            "/api/stacks/{name}",
            404,
        ),
        (
            Call::delete("/api/tokens/none").bearer(&v.token),
            "delete",
            "/api/tokens/{id}",
            404,
        ),
        (
            Call::patch("/api/users/999999")
                .bearer(&admin.token)
                .json(&json!({"role": "viewer"})),
            "patch",
            "/api/users/{id}",
            404,
        ),
        (
            Call::post(&format!("/api/services/{}/scale", global.name))
                .bearer(&op.token)
                .json(&json!({"replicas": 2})),
            "post",
            "/api/services/{name}/scale",
            409,
        ),
        (
            Call::post("/api/users")
                .bearer(&admin.token)
                .json(&json!({"username": "dave", "role": "viewer", "password": PASSWORD})),
            "post",
            "/api/users",
            409,
        ),
        (
            Call::post(&format!("/api/services/{s}/scale"))
                .bearer(&op.token)
                .json(&json!({"replicas": 501})),
            "post",
            "/api/services/{name}/scale",
            400,
        ),
        (
            Call::post(&format!("/api/stacks/{st}/deploy"))
                .bearer(&op.token)
                .json(&json!({"compose": "services: ["})),
            "post",
            "/api/stacks/{name}/deploy",
            400,
        ),
        (
            Call::post("/api/account/password")
                .bearer(&v.token)
                .json(&json!({"current": "wrong password!", "new": "a long new password"})),
            "post",
            "/api/account/password",
            400,
        ),
        (
            Call::post("/api/agent/report")
                .bearer("wrong")
                .json(&json!({})),
            "post",
            "/api/agent/report",
            401,
        ),
        (
            Call::post("/api/agent/report")
                .bearer(REPORT_SECRET)
                .json(&json!({})),
            "post",
            "/api/agent/report",
            400,
        ),
    ];
    for (request, method, template, status) in errors {
        let answer = app.call(request).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {template}: {}",
            answer.text()
        );
        let body = spec.check(&answer, method, template);
        assert_eq!(body["status"], status);
    }
    // The document itself is served as it is in the source tree.
    let served = app.call(Call::get("/api/openapi.json")).await;
    served.expect(200);
    assert_eq!(served.json(), spec.doc);
}
