//! Shared by the server's integration tests: the whole app in-process on a temporary state
//! directory, against the host's single-node swarm, with a viewer, an operator and an admin who
//! each have an API token and a session (logged in through `POST /login`); a small request
//! builder; uniquely named swarm services built from a `FROM scratch` busybox image, removed
//! when dropped; and the fixtures several test files share (agent reports, the greeting stack
//! file, a form post's job, the service form's post).
//!
//! Each test file includes it with `mod support;` and uses what it needs; a fixture two files
//! need goes here, not into a copy.
#![allow(dead_code)]

pub mod engine_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_auth::{csrf_token, hash_password, NewApiToken, Role};
use swarmkeeper_engine::Engine;
use swarmkeeper_server::{AppState, ServerConfig};
use tower::ServiceExt;

/// The image every test service runs: busybox sleeping, `FROM scratch`, built once per host.
pub const IMAGE: &str = "skservertest:busybox";
/// The same image under a second tag: a spec change that pulls nothing.
pub const IMAGE_V2: &str = "skservertest:v2";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// The agent report secret of [`TestApp::new`].
pub const REPORT_SECRET: &str = "report-secret-for-tests";
/// Label on everything the tests create, to find leftovers by hand.
pub const TEST_LABEL: &str = "swarmkeeper.test=server";
/// A command for [`TestService::running`]: busybox sleeping an hour, without the image's
/// `echo started`.
pub const SLEEP: &[&str] = &["/bin/busybox", "sleep", "3600"];

/// `sk<pid><n><what>`: short (service names are at most 63 bytes, stack services get a
/// prefix), unique within the run and, through the pid, apart from a parallel run.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sk{}x{n}{what}", std::process::id())
}

/// Runs the docker CLI; its trimmed stdout, or its stderr as the error.
pub fn try_docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|e| format!("docker CLI: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Runs the docker CLI; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    try_docker(args).unwrap_or_else(|e| panic!("docker {args:?} failed: {e}"))
}

/// Builds [`IMAGE`] (and tags [`IMAGE_V2`]) unless the engine has them already. Needs Debian's
/// busybox-static at `/bin/busybox`.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if try_docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).is_err() {
            let dir = TempDir::new("image");
            std::fs::copy("/bin/busybox", dir.path().join("busybox"))
                .expect("/bin/busybox (Debian's busybox-static) is needed to build the test image");
            std::fs::write(
                dir.path().join("Dockerfile"),
                format!(
                    "FROM scratch\nCOPY busybox /bin/busybox\nLABEL {TEST_LABEL}\n\
                     CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo started; exec /bin/busybox sleep 3600\"]\n"
                ),
            )
            .unwrap();
            docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
        }
        docker(&["tag", IMAGE, IMAGE_V2]);
    });
    IMAGE
}

/// The swarm node ID of the host's engine.
pub fn node_id() -> String {
    docker(&["info", "--format", "{{.Swarm.NodeID}}"])
}

/// The host node's labels (`Spec.Labels`), a JSON object (or null when it has none).
pub fn node_labels(node: &str) -> Value {
    serde_json::from_str(&docker(&[
        "node",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        node,
    ]))
    .unwrap()
}

/// Labels as the node's label form takes them: `KEY=VALUE`, a line each.
pub fn labels_text(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// A label added to a node, removed when dropped.
pub struct NodeLabel {
    pub node: String,
    pub key: String,
}

impl NodeLabel {
    /// Adds `key=value` to `node`.
    pub fn add(node: &str, key: &str, value: &str) -> NodeLabel {
        docker(&[
            "node",
            "update",
            "--label-add",
            &format!("{key}={value}"),
            node,
        ]);
        NodeLabel {
            node: node.to_owned(),
            key: key.to_owned(),
        }
    }
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        let _ = try_docker(&["node", "update", "--label-rm", &self.key, &self.node]);
    }
}

/// A service's `Version.Index`: it moves with every change the engine takes, so an equal
/// one before and after says nothing was applied.
pub fn service_version(name: &str) -> String {
    docker(&["service", "inspect", "--format", "{{.Version.Index}}", name])
}

/// Whether the engine has a `kind` (`service`, `network`, `secret`, `config`, …) of `name`.
pub fn exists(kind: &str, name: &str) -> bool {
    try_docker(&[kind, "inspect", "--format", "{{.ID}}", name]).is_ok()
}

/// The names of the services of `stack` (by `com.docker.stack.namespace`).
pub fn stack_services(stack: &str) -> Vec<String> {
    docker(&[
        "service",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// A stack file of one busybox service, `web`, whose environment says `greeting`: lint-clean
/// (no errors), with local logging, rolled back on failure, watched for `monitor` (`1s`
/// converges quickly) after an update and for one second after a rollback.
pub fn greeting_stack(greeting: &str, monitor: &str) -> String {
    format!(
        "services:
  web:
    image: {IMAGE}
    environment:
      GREETING: \"{greeting}\"
    logging:
      driver: local
      options:
        max-size: 1m
    deploy:
      replicas: 1
      update_config:
        monitor: {monitor}
        failure_action: rollback
      rollback_config:
        monitor: 1s
"
    )
}

/// The environment of the `web` service of a [`greeting_stack`] deployed as `stack`, as JSON
/// (`["GREETING=one"]`).
pub fn greeting_of(stack: &str) -> String {
    docker(&[
        "service",
        "inspect",
        &format!("{stack}_web"),
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
    ])
}

/// Polls `check` every 100 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A directory under the system's temp directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(what));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A swarm service made with the docker CLI (`--detach`: the call does not wait for tasks),
/// removed when dropped, passed or not.
pub struct TestService {
    pub name: String,
}

impl TestService {
    /// A replicated service of one busybox task. `extra` goes before the image (`--env`,
    /// `--label`, `--mode global`, …).
    pub fn create(what: &str, extra: &[&str]) -> TestService {
        TestService::running(what, extra, &[])
    }

    /// The same, running `command` instead of the image's (e.g. `["/bin/busybox", "sh", "-c",
    /// SCRIPT]`).
    pub fn running(what: &str, extra: &[&str], command: &[&str]) -> TestService {
        let image = test_image();
        let name = unique(what);
        let service = TestService { name };
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            &service.name,
            "--label",
            TEST_LABEL,
        ];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(command);
        docker(&args);
        service
    }

    /// A service of one busybox task running [`SLEEP`], once its task runs.
    pub fn sleeping(what: &str) -> TestService {
        let service = TestService::running(what, &[], SLEEP);
        service.wait_running(1);
        service
    }

    /// Waits until `n` of its tasks run.
    pub fn wait_running(&self, n: usize) {
        wait_for(
            &format!("{n} running tasks of {}", self.name),
            Duration::from_secs(60),
            || {
                self.tasks("{{.CurrentState}}")
                    .iter()
                    .filter(|state| state.starts_with("Running"))
                    .count()
                    >= n
            },
        );
    }

    /// `docker service ps` of the tasks Swarm means to run, one Go template each.
    pub fn tasks(&self, format: &str) -> Vec<String> {
        docker(&[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            format,
            &self.name,
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// `docker service inspect` of one Go template expression, e.g.
    /// `{{.Spec.Mode.Replicated.Replicas}}`.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["service", "inspect", "--format", format, &self.name])
    }

    /// The service's spec as JSON.
    pub fn spec(&self) -> Value {
        serde_json::from_str(&self.inspect("{{json .Spec}}")).unwrap()
    }

    pub fn replicas(&self) -> u64 {
        self.inspect("{{.Spec.Mode.Replicated.Replicas}}")
            .parse()
            .unwrap()
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        let _ = try_docker(&["service", "rm", &self.name]);
    }
}

/// A stack the test deploys through the API: when dropped, `docker stack rm` and the stack's
/// deploy history and lock in the swarm (which `docker stack rm` leaves on purpose).
pub struct TestStack {
    pub name: String,
}

impl TestStack {
    pub fn new(what: &str) -> TestStack {
        test_image();
        TestStack { name: unique(what) }
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        let _ = try_docker(&["stack", "rm", &self.name]);
        remove_history(&self.name);
    }
}

/// A stack's (or a lone service's) deploy history in the swarm, removed when dropped, for a
/// test whose services go by themselves.
pub struct HistoryOf(pub String);

impl Drop for HistoryOf {
    fn drop(&mut self) {
        remove_history(&self.0);
    }
}

/// A stack's (or a lone service's) deploy history and lock in the swarm, removed.
pub fn remove_history(stack: &str) {
    let label = format!("label=swarmkeeper.revision.stack={stack}");
    let listed = try_docker(&["config", "ls", "-q", "--filter", &label]).unwrap_or_default();
    let lock = format!("swarmkeeper-lock-{stack}");
    let mut remove = vec!["config", "rm", &lock];
    remove.extend(listed.split_whitespace());
    let _ = try_docker(&remove);
}

/// One of the test users, with a personal API token and a logged-in session.
#[derive(Clone, Debug)]
pub struct Identity {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// `skt_…`, for `Authorization: Bearer`.
    pub token: String,
    pub token_id: String,
    /// The session cookie's value (`sks_…`).
    pub session: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// A request to send to the app.
pub struct Call {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    pub fn new(method: Method, uri: &str) -> Call {
        Call {
            method,
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(uri: &str) -> Call {
        Call::new(Method::GET, uri)
    }

    pub fn post(uri: &str) -> Call {
        Call::new(Method::POST, uri)
    }

    pub fn patch(uri: &str) -> Call {
        Call::new(Method::PATCH, uri)
    }

    pub fn put(uri: &str) -> Call {
        Call::new(Method::PUT, uri)
    }

    pub fn delete(uri: &str) -> Call {
        Call::new(Method::DELETE, uri)
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The session cookie alone: no CSRF token.
    pub fn cookie(self, session: &str) -> Call {
        self.header(
            "cookie",
            &format!("{}={session}", swarmkeeper_auth::SESSION_COOKIE_NAME),
        )
    }

    /// The session cookie and the session's CSRF token in the `x-csrf-token` header, as the
    /// dashboard's scripts send them.
    pub fn session(self, who: &Identity) -> Call {
        self.cookie(&who.session)
            .header(swarmkeeper_auth::CSRF_HEADER, &who.csrf)
    }

    pub fn json(mut self, value: &Value) -> Call {
        self.body = serde_json::to_vec(value).unwrap();
        self.header("content-type", "application/json")
    }

    /// An urlencoded form, as a browser posts it.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Call {
        self.body = serde_urlencoded::to_string(fields).unwrap().into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// A raw body with its content type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Call {
        self.body = body;
        self.header("content-type", content_type)
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn into_request(self) -> Request<Body> {
        let mut request = Request::builder().method(self.method).uri(self.uri);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.body(Body::from(self.body)).unwrap()
    }
}

/// What the app answered, body read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type")
    }

    /// Panics with the body unless the status is `want`.
    #[track_caller]
    pub fn expect(&self, want: u16) -> &Answer {
        assert_eq!(self.status.as_u16(), want, "answer: {}", self.text());
        self
    }

    /// The JSON error shape of `/api`: `{"error": "...", "status": N}` with N the status.
    #[track_caller]
    pub fn expect_json_error(&self, want: u16) -> String {
        self.expect(want);
        assert!(
            self.content_type().starts_with("application/json"),
            "content-type {:?}",
            self.content_type()
        );
        let body = self.json();
        assert_eq!(body["status"], want, "{body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {body}"));
        assert!(!message.is_empty());
        message.to_owned()
    }
}

/// The app on a fresh state directory, with three users.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub viewer: Identity,
    pub operator: Identity,
    pub admin: Identity,
    pub dir: TempDir,
}

/// [`PASSWORD`]'s argon2 hash, computed once per test binary (each hash takes a good part of a
/// second in a debug build).
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).unwrap())
}

/// The key the tests seal registry and alert-channel credentials with: always the same, so a
/// state reopened with it reads what an earlier one sealed.
pub fn sealing_key() -> swarmkeeper_auth::SealingKey {
    swarmkeeper_auth::SealingKey::from_secret(b"test key: thirty-two bytes or more, surely")
        .unwrap()
}

/// A test app sealing with [`sealing_key`].
pub async fn sealing_app() -> TestApp {
    TestApp::with_key(Some(sealing_key())).await
}

/// A state for the app on `dir`.
pub fn open_state(dir: &Path, report_secret: Option<&str>) -> AppState {
    open_state_with_key(dir, report_secret, None)
}

/// A state for the app on `dir`, sealing registry credentials with `secret_key`.
pub fn open_state_with_key(
    dir: &Path,
    report_secret: Option<&str>,
    secret_key: Option<swarmkeeper_auth::SealingKey>,
) -> AppState {
    open_state_with_config(ServerConfig {
        secret_key,
        ..config(dir, report_secret)
    })
}

/// The configuration the tests' states use: the defaults, on `dir`.
pub fn config(dir: &Path, report_secret: Option<&str>) -> ServerConfig {
    ServerConfig {
        state_dir: dir.to_owned(),
        report_secret: report_secret.map(str::to_owned),
        session_policy: Default::default(),
        deploy_timeout: Duration::from_secs(60),
        trusted_proxies: Default::default(),
        limits: Default::default(),
        disk_pressure: Default::default(),
        secret_key: None,
        docker_config: None,
        keep_revisions: swarmkeeper_rollout::revisions::DEFAULT_KEEP_REVISIONS,
        alert_webhooks: Vec::new(),
        alert_for_restore: Default::default(),
    }
}

/// A state for the app with `config`, on the engine of `DOCKER_HOST`.
pub fn open_state_with_config(config: ServerConfig) -> AppState {
    AppState::open(
        Engine::from_env().expect("DOCKER_HOST or the default socket"),
        config,
    )
    .expect("the state directory opens")
}

impl TestApp {
    /// Users `viewer`, `operator` and `admin`, each logged in.
    pub async fn new() -> TestApp {
        TestApp::with_key(None).await
    }

    /// The same, sealing registry credentials with `secret_key`.
    pub async fn with_key(secret_key: Option<swarmkeeper_auth::SealingKey>) -> TestApp {
        let dir = TempDir::new("state");
        let state = open_state_with_key(dir.path(), Some(REPORT_SECRET), secret_key);
        let router = swarmkeeper_server::app(state.clone());
        let (viewer, operator, admin) = tokio::join!(
            add_user(&state, &router, "viewer", Role::Viewer),
            add_user(&state, &router, "operator", Role::Operator),
            add_user(&state, &router, "admin", Role::Admin),
        );
        TestApp {
            state,
            router,
            viewer,
            operator,
            admin,
            dir,
        }
    }

    pub fn as_role(&self, role: Role) -> &Identity {
        match role {
            Role::Viewer => &self.viewer,
            Role::Operator => &self.operator,
            Role::Admin => &self.admin,
        }
    }

    pub fn users(&self) -> [&Identity; 3] {
        [&self.viewer, &self.operator, &self.admin]
    }

    /// Sends a request through the whole router (middleware included); fails the test after 90 s.
    pub async fn call(&self, call: Call) -> Answer {
        send(&self.router, call).await
    }

    /// Sends a request and hands back the answer with its body unread, for a stream.
    pub async fn open(&self, call: Call) -> axum::response::Response {
        self.router
            .clone()
            .oneshot(call.into_request())
            .await
            .unwrap()
    }

    /// Creates a user (with [`PASSWORD`]) and an API token, then logs in through `POST /login`.
    pub async fn add_user(&self, name: &str, role: Role) -> Identity {
        add_user(&self.state, &self.router, name, role).await
    }

    /// `POST /login` with a form, as the login page sends it.
    pub async fn login(&self, username: &str, password: &str, next: &str) -> Answer {
        login(&self.router, username, password, next).await
    }

    /// The text of `service`'s "edit as compose" page, as `user` reads it; expects 200.
    pub async fn service_compose(&self, service: &str, user: &Identity) -> String {
        let page = self
            .call(Call::get(&format!("/services/{service}/compose")).session(user))
            .await;
        page.expect(200);
        compose_text_of(&page.text())
    }

    /// `POST /api/services/{service}/compose` of `text`, with `user`'s API token.
    pub async fn post_compose(&self, service: &str, user: &Identity, text: &str) -> Answer {
        self.call(
            Call::post(&format!("/api/services/{service}/compose"))
                .bearer(&user.token)
                .json(&serde_json::json!({ "compose": text })),
        )
        .await
    }

    /// Posts `report` as its node's agent would, with [`REPORT_SECRET`]; expects 204.
    pub async fn post_report(&self, report: &swarmkeeper_report::NodeReport) {
        post_report(&self.router, report).await
    }

    /// The row of node `id` (a Swarm node id, or `hostname:NAME`) in `/api/nodes`' list, as
    /// the viewer reads it.
    pub async fn node_row(&self, id: &str) -> Value {
        let nodes = self
            .call(Call::get("/api/nodes").bearer(&self.viewer.token))
            .await
            .json();
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {nodes}"))
            .clone()
    }

    /// The audit log, newest first, as the admin reads it from `/api/audit`.
    pub async fn audit(&self) -> Vec<Value> {
        let answer = self
            .call(Call::get("/api/audit").bearer(&self.admin.token))
            .await;
        answer.expect(200);
        answer.json()["entries"].as_array().unwrap().clone()
    }
}

pub async fn send(router: &Router, call: Call) -> Answer {
    let what = format!("{} {}", call.method, call.uri);
    let work = async {
        let response = router.clone().oneshot(call.into_request()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .expect("the body is read")
            .to_bytes()
            .to_vec();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(Duration::from_secs(90), work)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than 90 s"))
}

pub async fn login(router: &Router, username: &str, password: &str, next: &str) -> Answer {
    send(
        router,
        Call::post("/login").form(&[
            ("username", username),
            ("password", password),
            ("next", next),
        ]),
    )
    .await
}

/// Posts `report` to `router` as its node's agent would, with [`REPORT_SECRET`]; expects 204.
pub async fn post_report(router: &Router, report: &swarmkeeper_report::NodeReport) {
    let call = Call::post(swarmkeeper_report::REPORT_PATH)
        .bearer(REPORT_SECRET)
        .body("application/json", serde_json::to_vec(report).unwrap());
    send(router, call).await.expect(204);
}

/// The session token of a login answer's `Set-Cookie`.
pub fn session_from(answer: &Answer) -> String {
    let cookie = answer.header("set-cookie");
    let prefix = format!("{}=", swarmkeeper_auth::SESSION_COOKIE_NAME);
    cookie
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split(';').next())
        .filter(|token| !token.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "no session in Set-Cookie {cookie:?} (status {})",
                answer.status
            )
        })
        .to_owned()
}

async fn add_user(state: &AppState, router: &Router, name: &str, role: Role) -> Identity {
    let (id, issued) = {
        let conn = state.auth();
        let user = auth_store::create_user(&conn, name, role, password_hash(), Timestamp::now())
            .expect("the user is created");
        let issued = NewApiToken::generate();
        auth_store::insert_api_token(&conn, user.id, "tests", &issued, None, Timestamp::now())
            .expect("the token is stored");
        (user.id, issued)
    };
    let answer = login(router, name, PASSWORD, "/").await;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "login of {name}: {}",
        answer.text()
    );
    let session = session_from(&answer);
    Identity {
        id,
        name: name.to_owned(),
        role,
        token: issued.token,
        token_id: issued.id,
        csrf: csrf_token(&session),
        session,
    }
}

/// Whether a header map says the body is HTML.
pub fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// An agent's report of `node` (a Swarm node id, or empty for an engine outside the swarm):
/// 100 GiB at 60%, two images (one in use), one GC run that deleted an image.
pub fn report(node: &str, hostname: &str) -> swarmkeeper_report::NodeReport {
    use swarmkeeper_gc::{DiskReport, DiskUsageInput, Filesystem};
    let now = Timestamp::now();
    swarmkeeper_report::NodeReport {
        node_id: node.to_owned(),
        hostname: hostname.to_owned(),
        engine_version: "20.10.24+dfsg1".into(),
        reported_at: now,
        agent_version: "0.1.0".into(),
        interval_seconds: 30,
        disk: DiskReport::new(
            Filesystem {
                path: "/var/lib/docker".into(),
                capacity_bytes: 100 << 30,
                available_bytes: 40 << 30,
            },
            &DiskUsageInput {
                layers_bytes: 3 << 30,
                images: vec![(2 << 30, 1 << 30)],
                log_bytes: Some(1 << 20),
                ..DiskUsageInput::default()
            },
        ),
        disk_breakdown_at: Some(now),
        high_threshold_percent: 85,
        low_threshold_percent: 80,
        images: vec![
            swarmkeeper_report::ReportedImage {
                id: format!("sha256:{}", "ab".repeat(32)),
                repo_tags: vec!["app:1".into()],
                size_bytes: 2 << 30,
                shared_bytes: 1 << 30,
                first_seen: now - SignedDuration::from_hours(30),
                last_used: Some(now),
                in_use: true,
                keep_reason: Some("in-use".into()),
                ..Default::default()
            },
            swarmkeeper_report::ReportedImage {
                id: format!("sha256:{}", "ef".repeat(32)),
                repo_tags: vec![],
                size_bytes: 1 << 20,
                shared_bytes: 0,
                first_seen: now - SignedDuration::from_hours(300),
                last_used: None,
                in_use: false,
                keep_reason: None,
                ..Default::default()
            },
        ],
        gc_runs: vec![swarmkeeper_report::ReportedRun {
            started_at: now - SignedDuration::from_mins(5),
            trigger: "interval".into(),
            usage_percent_before: 86,
            usage_percent_after: 60,
            bytes_freed: 1 << 30,
            deleted: vec![swarmkeeper_report::ReportedDeletion {
                id: format!("sha256:{}", "cd".repeat(32)),
                repo_tags: vec!["app:0".into()],
                reason: "space".into(),
                bytes: 1 << 30,
                ..Default::default()
            }],
            containers_removed: 2,
            outcome: "ok".into(),
            ..Default::default()
        }],
        truncated: false,
        usage: vec![swarmkeeper_report::UsageSample {
            taken_at: now,
            node: Some(swarmkeeper_report::NodeUsage {
                cpu_busy_ms: 1_000,
                cpu_total_ms: 4_000,
                cpus: 2,
                memory_total_bytes: 4 << 30,
                memory_available_bytes: 3 << 30,
            }),
            tasks: vec![swarmkeeper_report::TaskUsage {
                task: "k2x9a1b2c3d4e5f6g7h8i9j0k".into(),
                service: "shop_web".into(),
                stack: "shop".into(),
                slot: "1".into(),
                cpu_ns: 1_500_000_000,
                memory_bytes: 12 << 20,
                memory_limit_bytes: Some(64 << 20),
                oom_kills: Some(0),
            }],
        }],
        volumes: Some(vec![
            swarmkeeper_report::ReportedVolume {
                name: "shop_db".into(),
                driver: "local".into(),
                mountpoint: "/var/lib/docker/volumes/shop_db/_data".into(),
                size_bytes: Some(3 << 30),
                labels: [("com.docker.stack.namespace".into(), "shop".into())].into(),
                containers: vec!["shop_db.1.k2x9a1b2c3d4e5f6g7h8i9j0k".into()],
            },
            swarmkeeper_report::ReportedVolume {
                name: "scratch".into(),
                driver: "local".into(),
                mountpoint: "/var/lib/docker/volumes/scratch/_data".into(),
                size_bytes: Some(1 << 20),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

/// An agent's report of `node` as JSON, written out field by field as the wire has it (for
/// tests that post what the typed [`report`] cannot say): 1000 bytes at 60 %, no images and no
/// GC run.
pub fn report_json(node: &str, hostname: &str) -> Value {
    serde_json::json!({
        "node_id": node,
        "hostname": hostname,
        "engine_version": "20.10.24+dfsg1",
        "reported_at": Timestamp::now(),
        "agent_version": "0.1.0",
        "interval_seconds": 30,
        "disk": {
            "filesystem": {"path": "/var/lib/docker", "capacity_bytes": 1000, "available_bytes": 400},
            "usage_percent": 60, "used_bytes": 600, "image_count": 0,
            "images_unique_bytes": 0, "images_shared_bytes": 0, "container_count": 0,
            "containers_bytes": 0, "logs_bytes": null, "volume_count": 0, "volumes_bytes": 0,
            "build_cache_bytes": 0, "other_bytes": 600
        },
        "high_threshold_percent": 85,
        "low_threshold_percent": 80,
        "images": [],
        "gc_runs": []
    })
}

/// The service form's post for service `name` with `fields`, as `who`'s browser sends it
/// (`POST /services/{name}/edit`).
pub fn service_form(who: &Identity, name: &str, fields: &[(&str, &str)]) -> Call {
    Call::post(&format!("/services/{name}/edit"))
        .session(who)
        .form(fields)
}

/// `compose` with `extra` on a line of its own after its first `image:` line (the lone
/// service's of an "edit as compose" page).
pub fn after_image_line(compose: &str, extra: &str) -> String {
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("image:"))
        .expect("an image line");
    compose.replacen(line, &format!("{line}\n{extra}"), 1)
}

/// Records a succeeded revision of `stack` by `by` at `at` in the app's deploy history (the
/// swarm's), as a deploy of `files` would: started, then finished. Its number. `by` is who,
/// or who and what as the dashboard says them (`edited in the dashboard by alice`), recorded
/// apart.
pub async fn record_revision(
    app: &TestApp,
    stack: &str,
    by: &str,
    kind: &swarmkeeper_deploy::DeployKind,
    files: &[swarmkeeper_deploy::FileDigest],
    at: Timestamp,
) -> u64 {
    use swarmkeeper_deploy::{DeployOutcome, History, RevisionEnd, RevisionStart};
    let history = app.state.history();
    let (who, what) = swarmkeeper_store::split_by_sentence(by);
    let start = RevisionStart {
        stack,
        by: &who,
        action: what.as_deref(),
        kind,
        files,
        at,
    };
    let number = history.append(&start).await.unwrap();
    let end = RevisionEnd {
        outcome: &DeployOutcome::Succeeded,
        summary: "",
        services: &[],
        objects: &[],
        at,
    };
    history.finish(stack, number, &end).await.unwrap();
    number
}

/// The compose text of an "edit as compose" page, unescaped as a browser posts it.
pub fn compose_text_of(page: &str) -> String {
    textarea_of(page, "compose")
}

/// The text of `page`'s textarea named `field`, unescaped as a browser posts it.
pub fn textarea_of(page: &str, field: &str) -> String {
    let start = page
        .find(&format!("<textarea name=\"{field}\""))
        .expect("the field's textarea");
    let start = start + page[start..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</textarea>").unwrap();
    page[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The job a form's post or an API call started, at once: its id (the form's 303 names
/// `/jobs/{id}`; the API's 202 has it as `job`, its `Location` `/api/jobs/{id}`) and the job.
pub fn job_of(
    app: &TestApp,
    posted: &Answer,
) -> (String, std::sync::Arc<swarmkeeper_server::jobs::Job>) {
    let id = if posted.status == StatusCode::ACCEPTED {
        let started = posted.json();
        let id = started["job"].as_str().expect("a job id").to_owned();
        assert_eq!(posted.location(), format!("/api/jobs/{id}"), "{started}");
        assert_eq!(started["url"], format!("/api/jobs/{id}"), "{started}");
        assert_eq!(started["page"], format!("/jobs/{id}"), "{started}");
        id
    } else {
        posted.expect(303);
        posted
            .location()
            .strip_prefix("/jobs/")
            .unwrap_or_else(|| panic!("not a job's page: {}", posted.location()))
            .to_owned()
    };
    let job = app.state.jobs.get(&id).expect("the job is kept");
    (id, job)
}

/// The job a form's post started (its 303 names `/jobs/{id}`), once it ended (at most 3
/// minutes), with its end.
pub async fn followed_job(
    app: &TestApp,
    posted: &Answer,
) -> (
    std::sync::Arc<swarmkeeper_server::jobs::Job>,
    swarmkeeper_server::jobs::JobEnd,
) {
    let (_, job) = job_of(app, posted);
    let mut changed = job.subscribe();
    loop {
        if let Some(end) = job.seen(0).end {
            return (job, end);
        }
        tokio::time::timeout(Duration::from_secs(180), changed.changed())
            .await
            .expect("the job ends within 3 minutes")
            .unwrap();
    }
}

/// Secrets a test made, removed when it ends, passed or not.
pub struct MadeSecrets(pub Vec<String>);

impl Drop for MadeSecrets {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = try_docker(&["secret", "rm", name]);
        }
    }
}

/// Creates secret `name` holding `value` with the docker CLI.
pub fn create_secret(name: &str, value: &str) {
    let file = std::env::temp_dir().join(format!("{name}.value"));
    std::fs::write(&file, value).unwrap();
    let made = try_docker(&["secret", "create", name, file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    made.unwrap();
}

/// A webhook receiver on a port of its own: every JSON body posted to `/hook`.
pub async fn webhook_receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    use axum::extract::State;
    use axum::routing::post;
    use axum::Json;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
    let (tx, rx) = unbounded_channel();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<UnboundedSender<Value>>, Json(body): Json<Value>| async move {
                    let _ = tx.send(body);
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// The service form, as JSON, of a service `name` of one busybox task sleeping an hour, which
/// the deploy engine watches 2 s after a change and whose logs stay readable (`local`).
pub fn sleeping_form(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "replicas": 1,
        "labels": [TEST_LABEL],
        "update_monitor": "2s",
        "restart_delay": "1s",
        "log_driver": "local",
    })
}

/// `PUT /api/services/{name}` of `form` with `command` instead of its own, as `user`: an edit
/// whose tasks fail, which the deploy engine rolls back. Expects 409; answers the JSON.
pub async fn failed_edit(app: &TestApp, user: &Identity, form: &Value, command: &str) -> Value {
    let mut broken = form.clone();
    broken["command"] = Value::from(command);
    let name = form["name"].as_str().expect("the form names its service");
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&user.token)
                .json(&broken),
        )
        .await;
    answer.expect(409);
    answer.json()
}
