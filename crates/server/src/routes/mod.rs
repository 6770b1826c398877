//! The route table: every route of the app, who may call it, and the handler that serves it.
//! A page `/x` and its JSON twin `/api/x` are served by one handler (forms post to the page's
//! path, scripts and tools post JSON to the `/api` path); the guard of each row that is not
//! public finds the caller, checks the row's [`Action`] and renders the handler's
//! [`Reply`](crate::respond::Reply) as the page or as JSON. The role tests read this table
//! through [`table`].

mod admin;
mod alerts;
mod hooks;
mod jobs;
mod logs;
mod networks;
mod node_admin;
mod nodes;
pub(crate) mod objects;
mod overview;
mod registries;
mod service_form;
pub(crate) mod services;
mod stacks;
mod tasks;
pub(crate) mod usage;
mod volumes;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_auth::Action;
use swarmkeeper_report::{RetentionPolicy, MAX_CLOCK_AHEAD};
use tower_http::timeout::TimeoutLayer;

use crate::access;
use crate::respond::{self, Format};
use crate::state::AppState;
use crate::{assets, limits, login};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the route carries no cluster data, or checks a secret of its own.
    Public,
    /// Any logged-in user.
    LoggedIn,
    /// A logged-in user whose role may take the action.
    Requires(Action),
}

/// A row of the route table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// axum's path syntax: `/services/{name}`.
    pub path: &'static str,
    pub access: Access,
}

/// Every route the app serves, in the table's order.
pub fn table() -> Vec<Route> {
    rows().0.into_iter().map(|row| row.route).collect()
}

/// The rows. A new page is a row here (or a `twin` row, page and JSON), a view function in
/// `views/` and a template.
#[rustfmt::skip]
fn rows() -> Table {
    use Action::*;
    use Method as M;
    let mut t = Table(Vec::new());
    // Public: no cluster data, or a secret of their own. Those that read what anyone may send
    // take small forms and answer within a deadline (issue 11); the agent report checks its
    // secret before it reads its body.
    t.public(M::GET, "/login", login::login_page).open_form();
    t.public(M::POST, "/login", login::login).open_form();
    t.public(M::GET, "/setup", login::setup_page).open_form();
    t.public(M::POST, "/setup", login::setup).open_form();
    t.public(M::GET, "/healthz", || async { "ok\n" });
    t.public(M::GET, "/api/openapi.json", assets::openapi);
    t.public(M::GET, "/static/{file}", assets::static_file);
    t.public(M::GET, "/favicon.ico", assets::favicon);
    t.public(M::POST, swarmkeeper_report::REPORT_PATH, nodes::agent_report).within_deadline();
    t.logged_in(M::POST, "/logout", login::logout);
    // Auto-deploy's hooks check a hook token of their own; they only bring a check forward.
    t.public(M::POST, "/api/hooks/registry", hooks::registry).within_deadline();
    t.public(M::POST, "/api/hooks/services/{name}", hooks::service).within_deadline();

    t.twin(M::GET, "/", "/api/overview", ViewCluster, overview::show);
    t.twin(M::GET, "/events", "/api/events", ViewCluster, overview::all);
    t.twin(M::GET, "/nodes", "/api/nodes", ViewCluster, nodes::list);
    t.twin(M::GET, "/nodes/{id}", "/api/nodes/{id}", ViewCluster, nodes::show);
    t.twin(M::GET, "/nodes/{id}/drain", "/api/nodes/{id}/drain", ViewCluster, node_admin::drain_preview);
    t.twin(M::POST, "/nodes/{id}/availability", "/api/nodes/{id}/availability", ManageNodes, node_admin::set_availability);
    t.route(M::GET, "/nodes/{id}/labels", ManageNodes, node_admin::labels_form);
    t.route(M::POST, "/nodes/{id}/labels", ManageNodes, node_admin::set_labels_form);
    t.route(M::PUT, "/api/nodes/{id}/labels", ManageNodes, node_admin::put_labels);
    t.twin(M::POST, "/nodes/{id}/role", "/api/nodes/{id}/role", ManageNodes, node_admin::set_role);
    t.route(M::POST, "/nodes/{id}/remove", ManageNodes, node_admin::remove);
    t.route(M::DELETE, "/api/nodes/{id}", ManageNodes, node_admin::remove);
    t.twin(M::POST, "/nodes/{id}/forget", "/api/nodes/{id}/forget", ManageSettings, nodes::forget);
    t.twin(M::GET, "/services", "/api/services", ViewCluster, services::list);
    t.route(M::GET, "/services/new", Deploy, service_form::new_form);
    t.route(M::GET, "/api/image-tags", Deploy, service_form::image_tags);
    t.twin(M::POST, "/services/new", "/api/services", Deploy, service_form::create);
    t.twin(M::GET, "/services/{name}", "/api/services/{name}", ViewCluster, services::show);
    t.route(M::GET, "/services/{name}/edit", Deploy, service_form::edit_form);
    t.route(M::POST, "/services/{name}/edit", Deploy, service_form::edit);
    t.route(M::PUT, "/api/services/{name}", Deploy, service_form::edit);
    t.route(M::GET, "/services/{name}/compose", Deploy, service_form::service_compose);
    t.twin(M::POST, "/services/{name}/compose", "/api/services/{name}/compose", Deploy, service_form::apply_service_compose);
    t.twin(M::POST, "/services/{name}/scale", "/api/services/{name}/scale", Scale, services::scale);
    t.twin(M::POST, "/services/{name}/redeploy", "/api/services/{name}/redeploy", Redeploy, services::redeploy);
    t.twin(M::POST, "/services/{name}/rollback", "/api/services/{name}/rollback", Rollback, services::rollback);
    t.twin(M::POST, "/services/{name}/autodeploy", "/api/services/{name}/autodeploy", ManageAutoDeploy, hooks::set_autodeploy);
    t.twin(M::POST, "/services/{name}/autodeploy/check", "/api/services/{name}/autodeploy/check", ManageAutoDeploy, hooks::check_now);
    t.twin(M::POST, "/services/{name}/autodeploy/forget", "/api/services/{name}/autodeploy/forget", ManageAutoDeploy, hooks::forget_failure);
    t.twin(M::POST, "/services/{name}/hook-token", "/api/services/{name}/hook-token", ManageAutoDeploy, hooks::service_hook_token);
    t.twin(M::GET, "/tasks/{id}", "/api/tasks/{id}", ViewCluster, tasks::show);
    t.twin(M::GET, "/jobs/{id}", "/api/jobs/{id}", ViewCluster, jobs::show);
    t.route(M::GET, "/api/jobs/{id}/events", ViewCluster, jobs::events);
    t.twin(M::GET, "/nodes/{id}/usage", "/api/nodes/{id}/usage", ViewCluster, usage::node);
    t.twin(M::GET, "/services/{name}/usage", "/api/services/{name}/usage", ViewCluster, usage::service);
    t.twin(M::GET, "/tasks/{id}/usage", "/api/tasks/{id}/usage", ViewCluster, usage::task);
    t.route(M::POST, "/services/{name}/remove", Remove, services::remove);
    t.route(M::DELETE, "/api/services/{name}", Remove, services::remove);
    t.route(M::GET, "/logs/{name}", ViewLogs, logs::page);
    t.route(M::GET, "/api/services/{name}/logs", ViewLogs, logs::stream);
    t.route(M::GET, "/api/services/{name}/logs/download", ViewLogs, logs::download);
    t.twin(M::GET, "/stacks", "/api/stacks", ViewCluster, stacks::list);
    t.route(M::GET, "/stacks/deploy", Deploy, stacks::deploy_form);
    t.route(M::POST, "/stacks/deploy", Deploy, stacks::deploy_from_form);
    t.twin(M::GET, "/stacks/{name}", "/api/stacks/{name}", ViewCluster, stacks::show);
    t.route(M::GET, "/stacks/{name}/compose", Deploy, service_form::stack_compose);
    t.twin(M::POST, "/stacks/{name}/compose", "/api/stacks/{name}/compose", Deploy, service_form::apply_stack_compose);
    t.route(M::POST, "/api/stacks/{name}/deploy", Deploy, stacks::deploy);
    t.route(M::POST, "/api/stacks/{name}/diff", Deploy, stacks::diff);
    t.route(M::POST, "/api/lint", Deploy, stacks::lint);
    t.twin(M::POST, "/stacks/{name}/rollback", "/api/stacks/{name}/rollback", Rollback, stacks::rollback);
    t.twin(M::GET, "/networks", "/api/networks", ViewCluster, networks::list);
    t.twin(M::POST, "/networks", "/api/networks", ManageNetworks, networks::create);
    t.route(M::POST, "/networks/{name}/remove", ManageNetworks, networks::remove);
    t.route(M::DELETE, "/api/networks/{name}", ManageNetworks, networks::remove);
    t.twin(M::GET, "/volumes", "/api/volumes", ViewCluster, volumes::list);
    t.route(M::GET, "/volumes/{name}/remove", RemoveVolumes, volumes::confirm);
    t.route(M::POST, "/volumes/{name}/remove", RemoveVolumes, volumes::remove);
    t.route(M::DELETE, "/api/volumes/{name}", RemoveVolumes, volumes::remove);
    t.twin(M::GET, "/secrets", "/api/secrets", ViewCluster, objects::secrets);
    t.twin(M::POST, "/secrets", "/api/secrets", ManageSecrets, objects::create_secret);
    t.twin(M::GET, "/secrets/{name}", "/api/secrets/{name}", ViewCluster, objects::secret);
    t.route(M::POST, "/secrets/{name}/remove", ManageSecrets, objects::remove_secret);
    t.route(M::DELETE, "/api/secrets/{name}", ManageSecrets, objects::remove_secret);
    t.twin(M::POST, "/secrets/{name}/rotate", "/api/secrets/{name}/rotate", ManageSecrets, objects::rotate_secret);
    t.twin(M::POST, "/secrets/{name}/rekey", "/api/secrets/{name}/rekey", ManageSettings, objects::rekey_secret);
    t.twin(M::POST, "/secrets/{name}/forget-previous", "/api/secrets/{name}/forget-previous", ManageSettings, objects::forget_previous_report_secret);
    t.twin(M::GET, "/configs", "/api/configs", ViewCluster, objects::configs);
    t.twin(M::POST, "/configs", "/api/configs", ManageSecrets, objects::create_config);
    t.twin(M::GET, "/configs/{name}", "/api/configs/{name}", ViewCluster, objects::config);
    t.route(M::POST, "/configs/{name}/remove", ManageSecrets, objects::remove_config);
    t.route(M::DELETE, "/api/configs/{name}", ManageSecrets, objects::remove_config);
    t.twin(M::POST, "/configs/{name}/rotate", "/api/configs/{name}/rotate", ManageSecrets, objects::rotate_config);
    t.route(M::POST, "/stacks/{name}/remove", Remove, stacks::remove);
    t.route(M::DELETE, "/api/stacks/{name}", Remove, stacks::remove);
    t.twin(M::GET, "/users", "/api/users", ManageUsers, admin::users);
    t.twin(M::POST, "/users", "/api/users", ManageUsers, admin::create_user);
    t.route(M::POST, "/users/{id}", ManageUsers, admin::change_user);
    t.route(M::PATCH, "/api/users/{id}", ManageUsers, admin::change_user);
    t.twin(M::GET, "/registries", "/api/registries", ManageRegistries, registries::list);
    t.twin(M::POST, "/registries", "/api/registries", ManageRegistries, registries::add);
    t.route(M::POST, "/api/registries/test", ManageRegistries, registries::test_new);
    t.twin(M::POST, "/registries/hook-token", "/api/registries/hook-token", ManageRegistries, hooks::registry_hook_token);
    t.twin(M::POST, "/registries/{id}/test", "/api/registries/{id}/test", ManageRegistries, registries::test);
    t.route(M::POST, "/registries/{id}/remove", ManageRegistries, registries::remove);
    t.route(M::DELETE, "/api/registries/{id}", ManageRegistries, registries::remove);
    t.twin(M::GET, "/alerts", "/api/alerts", ManageSettings, alerts::show);
    t.twin(M::GET, "/alerts/history", "/api/alerts/history", ViewCluster, alerts::history);
    t.twin(M::POST, "/alerts/channels", "/api/alerts/channels", ManageSettings, alerts::add_channel);
    t.twin(M::POST, "/alerts/channels/{id}/test", "/api/alerts/channels/{id}/test", ManageSettings, alerts::test_channel);
    t.route(M::POST, "/alerts/channels/{id}/remove", ManageSettings, alerts::remove_channel);
    t.route(M::DELETE, "/api/alerts/channels/{id}", ManageSettings, alerts::remove_channel);
    t.route(M::GET, "/api/alerts/rules", ManageSettings, alerts::rules);
    t.route(M::POST, "/alerts/rules", ManageSettings, alerts::set_rules_form);
    t.route(M::PUT, "/api/alerts/rules", ManageSettings, alerts::put_rules);
    t.twin(M::POST, "/alerts/silences", "/api/alerts/silences", ManageSettings, alerts::add_silence);
    t.route(M::POST, "/alerts/silences/{id}/expire", ManageSettings, alerts::expire_silence);
    t.route(M::DELETE, "/api/alerts/silences/{id}", ManageSettings, alerts::expire_silence);
    t.twin(M::GET, "/audit", "/api/audit", ViewAudit, admin::audit);
    t.twin(M::GET, "/account", "/api/tokens", ManageOwnTokens, admin::tokens);
    t.twin(M::POST, "/account/tokens", "/api/tokens", ManageOwnTokens, admin::create_token);
    t.route(M::POST, "/account/tokens/{id}/revoke", ManageOwnTokens, admin::revoke_token);
    t.route(M::DELETE, "/api/tokens/{id}", ManageOwnTokens, admin::revoke_token);
    t.twin(M::POST, "/account/password", "/api/account/password", ChangeOwnPassword, admin::change_password);
    t
}

/// The app's routes, each behind its guard.
pub fn router(state: &AppState) -> Router<AppState> {
    router_of(state, |_| true)
}

/// The routes an agent calls: its report and `/healthz`. Served alone on the server's plain
/// report listener (`--report-listen`), so that agents on the stack's overlay keep reporting
/// over HTTP when the dashboard serves HTTPS, and nothing else of the app is reachable there.
pub fn agents_router(state: &AppState) -> Router<AppState> {
    router_of(state, |path| {
        path == swarmkeeper_report::REPORT_PATH || path == "/healthz"
    })
}

fn router_of(state: &AppState, keep: impl Fn(&str) -> bool) -> Router<AppState> {
    let mut router = Router::new();
    for Row {
        route,
        mut handler,
        deadline,
    } in rows().0
    {
        if !keep(route.path) {
            continue;
        }
        if deadline {
            handler = handler.layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                state.config.limits.public_request_timeout,
            ));
        }
        let handler = match route.access {
            Access::Public => handler,
            access => handler.route_layer(from_fn_with_state((state.clone(), access), guard)),
        };
        router = router.route(route.path, handler);
    }
    router
}

/// The guard of a route that is not public: who calls, whether they may, and the responder.
async fn guard(
    State((state, access)): State<(AppState, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let format = Format::of(request.uri().path());
    let (request, caller) = match access::authenticate(&state, request).await {
        Ok(authenticated) => authenticated,
        Err(e) => return e.into_response(),
    };
    if let Access::Requires(action) = access {
        if let Err(e) = caller.require(action) {
            return e.into_response();
        }
    }
    respond::render(next.run(request).await, &caller, format)
}

struct Table(Vec<Row>);

struct Row {
    route: Route,
    handler: MethodRouter<AppState>,
    /// The whole request within [`crate::Limits::public_request_timeout`], so that a silent
    /// or trickling client does not hold a connection (and its buffers) for good.
    deadline: bool,
}

impl Row {
    /// A form anyone may send: a small body ([`limits::PUBLIC_FORM_BYTES`]), within the
    /// deadline.
    fn open_form(&mut self) {
        self.handler = std::mem::take(&mut self.handler)
            .layer(DefaultBodyLimit::max(limits::PUBLIC_FORM_BYTES));
        self.within_deadline();
    }

    /// The whole request within [`crate::Limits::public_request_timeout`].
    fn within_deadline(&mut self) {
        self.deadline = true;
    }
}

impl Table {
    fn add<H, T>(
        &mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> &mut Row
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        self.0.push(Row {
            route: Route {
                method,
                path,
                access,
            },
            handler: on(filter, handler),
            deadline: false,
        });
        self.0.last_mut().expect("just pushed")
    }

    fn public<H: Handler<T, AppState>, T: 'static>(
        &mut self,
        method: Method,
        path: &'static str,
        handler: H,
    ) -> &mut Row {
        self.add(method, path, Access::Public, handler)
    }

    fn logged_in<H: Handler<T, AppState>, T: 'static>(
        &mut self,
        method: Method,
        path: &'static str,
        handler: H,
    ) {
        self.add(method, path, Access::LoggedIn, handler);
    }

    /// A page or an `/api` route, for callers whose role may take `action`.
    fn route<H: Handler<T, AppState>, T: 'static>(
        &mut self,
        method: Method,
        path: &'static str,
        action: Action,
        handler: H,
    ) {
        self.add(method, path, Access::Requires(action), handler);
    }

    /// A page and its JSON twin, one handler.
    fn twin<H: Handler<T, AppState>, T: 'static>(
        &mut self,
        method: Method,
        page: &'static str,
        api: &'static str,
        action: Action,
        handler: H,
    ) {
        self.route(method.clone(), page, action, handler.clone());
        self.route(method, api, action, handler);
    }
}

/// GC runs are kept this long; disk samples as `RetentionPolicy::default()` says.
const GC_HISTORY_KEPT: SignedDuration = SignedDuration::from_hours(24 * 30);

/// Rows a step of the usage thinning deletes at most while it holds the store: on the one-day
/// database at 100 nodes × 100 containers a step took 6-14 ms at the median (a pass in one
/// hold: 2.4-5.0 s), so reports and pages wait about that long behind it (`docs/benchmarks.md`).
const USAGE_THINNING_ROWS_PER_STEP: usize = 500;

/// The usage thinning pass in short steps, the store released between them (a whole pass at
/// 100 nodes × 100 containers deletes 270,000 rows, 2.5 s in one hold).
async fn thin_usage(state: &AppState, now: Timestamp) {
    let mut pass = match state.store().start_usage_thinning(now) {
        Ok(pass) => pass,
        Err(e) => {
            tracing::warn!(error = %e, "could not thin the resource usage history");
            return;
        }
    };
    loop {
        let step = state
            .store()
            .thin_usage_step(&mut pass, USAGE_THINNING_ROWS_PER_STEP);
        match step {
            Ok(true) => return,
            // A pause, not a yield: a std mutex is not fair, and the reports and pages
            // waiting for the store must get it before the next step does.
            Ok(false) => tokio::time::sleep(Duration::from_millis(2)).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not thin the resource usage history");
                return;
            }
        }
    }
}

/// Every few minutes until shutdown: forget expired sessions, thin the usage history (in
/// short steps) and the disk history to their retention, drop old GC runs, write folded
/// audit rows. Each step runs alone so that one
/// failing does not stop the others.
pub fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        let stop = state.shutdown.started();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut stop => return,
            }
            let now = Timestamp::now();
            state.write_folded_audit(Some(now));
            if let Err(e) =
                auth_store::purge_expired_sessions(&state.auth(), &state.config.session_policy, now)
            {
                tracing::warn!(error = %e, "could not purge expired sessions");
            }
            thin_usage(&state, now).await;
            let mut store = state.store();
            if let Err(e) = store.thin_disk_samples(now, &RetentionPolicy::default()) {
                tracing::warn!(error = %e, "could not thin the disk history");
            }
            if let Err(e) = store.forget_gc_history_before(now - GC_HISTORY_KEPT) {
                tracing::warn!(error = %e, "could not drop old GC runs");
            }
            if let Err(e) = store.forget_gc_history_after(now + MAX_CLOCK_AHEAD) {
                tracing::warn!(error = %e, "could not drop GC runs dated in the future");
            }
        }
    });
}
