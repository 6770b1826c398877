//! The route table. Each page `/x` has its JSON twin `/api/x`; forms post to the page's path,
//! scripts and tools post JSON to the `/api` path. Both run the same function.

mod admin;
mod logs;
mod nodes;
mod overview;
mod services;
mod stacks;

use std::time::Duration;

use axum::routing::{delete, get, patch, post};
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_report::{RetentionPolicy, MAX_CLOCK_AHEAD};

use crate::state::AppState;

/// Routes behind [`crate::access::authenticate`].
pub fn protected() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview_page))
        .route("/api/overview", get(overview::overview_api))
        .route("/nodes", get(nodes::nodes_page))
        .route("/api/nodes", get(nodes::nodes_api))
        .route("/nodes/{id}", get(nodes::node_page))
        .route("/api/nodes/{id}", get(nodes::node_api))
        .route("/services", get(services::services_page))
        .route("/api/services", get(services::services_api))
        .route("/services/{name}", get(services::service_page))
        .route("/api/services/{name}", get(services::service_api))
        .route("/services/{name}/scale", post(services::scale_form))
        .route("/api/services/{name}/scale", post(services::scale_api))
        .route("/services/{name}/redeploy", post(services::redeploy_form))
        .route(
            "/api/services/{name}/redeploy",
            post(services::redeploy_api),
        )
        .route("/services/{name}/rollback", post(services::rollback_form))
        .route(
            "/api/services/{name}/rollback",
            post(services::rollback_api),
        )
        .route("/logs/{name}", get(logs::logs_page))
        .route("/api/services/{name}/logs", get(logs::logs_api))
        .route(
            "/api/services/{name}/logs/download",
            get(logs::logs_download),
        )
        .route("/stacks", get(stacks::stacks_page))
        .route("/api/stacks", get(stacks::stacks_api))
        .route(
            "/stacks/deploy",
            get(stacks::deploy_form_page).post(stacks::deploy_form),
        )
        .route("/stacks/{name}", get(stacks::stack_page))
        .route("/api/stacks/{name}", get(stacks::stack_api))
        .route("/api/stacks/{name}/deploy", post(stacks::deploy_api))
        .route("/api/lint", post(stacks::lint_api))
        .route("/stacks/{name}/rollback", post(stacks::rollback_form))
        .route("/api/stacks/{name}/rollback", post(stacks::rollback_api))
        .route(
            "/users",
            get(admin::users_page).post(admin::create_user_form),
        )
        .route(
            "/api/users",
            get(admin::users_api).post(admin::create_user_api),
        )
        .route("/users/{id}", post(admin::change_user_form))
        .route("/api/users/{id}", patch(admin::change_user_api))
        .route("/audit", get(admin::audit_page))
        .route("/api/audit", get(admin::audit_api))
        .route("/account", get(admin::account_page))
        .route("/account/tokens", post(admin::create_token_form))
        .route(
            "/api/tokens",
            get(admin::tokens_api).post(admin::create_token_api),
        )
        .route(
            "/account/tokens/{id}/revoke",
            post(admin::revoke_token_form),
        )
        .route("/api/tokens/{id}", delete(admin::revoke_token_api))
        .route("/account/password", post(admin::change_password_form))
        .route("/api/account/password", post(admin::change_password_api))
}

/// Routes that authenticate themselves (agent reports read their body only after that).
pub fn public() -> Router<AppState> {
    Router::new().route(swarmkeeper_report::REPORT_PATH, post(nodes::agent_report))
}

/// GC runs are kept this long; disk samples as `RetentionPolicy::default()` says.
const GC_HISTORY_KEPT: SignedDuration = SignedDuration::from_hours(24 * 30);

/// Every few minutes until shutdown: forget expired sessions, thin the disk history to its
/// retention, drop old GC runs, write folded audit rows. Each step runs alone so that one
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
