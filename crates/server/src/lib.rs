//! `swarmkeeper server`: the web dashboard and its JSON twin. Pages are rendered on the server
//! (askama templates, compile-checked and auto-escaped); every page under `/x` has its data
//! under `/api/x`, described in `openapi.json`.
//!
//! - [`routes`]: the route table (every route, who may call it, its handler) and the handlers,
//!   thin: fetch, call a view, return a [`respond::Reply`].
//! - [`respond`]: one reply for both formats, rendered as a page or as JSON; input as a form or
//!   as JSON.
//! - [`access`]: who is calling (session cookie or API token), CSRF, roles.
//! - [`views`]: pure functions from engine data to what a page shows.
//! - [`page`]: the header of every page and the templates' filters.
//! - [`error`]: one error type, answered as JSON or as a page.
//!
//! Modules depend on each other in that order, never back: `page` and `error` know no caller.

pub mod access;
pub mod alerting;
mod assets;
pub mod autodeploy;
mod deploys;
pub mod error;
mod image_tags;
pub mod jobs;
pub mod limits;
mod login;
pub mod outcomes;
pub mod page;
pub mod pressure;
pub mod registries;
#[macro_use]
pub mod respond;
pub mod routes;
mod sealed;
mod serve;
pub mod state;
pub mod tls;
pub mod views;

use std::future::Future;
use std::net::SocketAddr;

use axum::middleware::from_fn;
use axum::Router;
use jiff::Timestamp;
use swarmkeeper_auth::store::{self as auth_store};
use swarmkeeper_auth::{bootstrap, Bootstrap, Role, INITIAL_ADMIN_NAME};
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use error::AppError;
pub use limits::Limits;
pub use sealed::settle_rekey_revisions;
pub use serve::{serve_listeners, serve_on, serve_tls_on, OverTls};
pub use state::{AppState, ServerConfig};
pub use swarmkeeper_alerts::ForRestore;
pub use swarmkeeper_auth::TrustedProxies;

/// The whole app: the route table ([`routes::table`]) with each route's guard and limits, a
/// deadline between two pieces of any body, error answers in the route's format, and the
/// security headers on every answer.
pub fn app(state: AppState) -> Router {
    with_layers(routes::router(&state), state)
}

/// [`app`] with only the routes agents call ([`routes::agents_router`]), for the plain report
/// listener.
pub fn agents_app(state: AppState) -> Router {
    with_layers(routes::agents_router(&state), state)
}

fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    router
        .layer(RequestBodyTimeoutLayer::new(
            state.config.limits.body_idle_timeout,
        ))
        .layer(from_fn(error::error_answers))
        .layer(from_fn(assets::security_headers))
        .with_state(state)
}

/// Creates the first admin, or arms the one-time setup token and prints it, when no user
/// exists yet. `admin_password` comes from the Swarm secret or the environment.
pub async fn bootstrap_users(
    state: &AppState,
    admin_password: Option<String>,
) -> Result<(), AppError> {
    let users_exist = auth_store::any_users(&state.auth()).map_err(AppError::internal)?;
    match bootstrap(admin_password.is_some(), users_exist) {
        Bootstrap::Nothing => {
            if admin_password.is_some() {
                tracing::info!("users exist: the configured admin password is ignored");
            }
        }
        Bootstrap::CreateAdminFromPassword => {
            let hash = state
                .passwords
                .admit(limits::Asker::Known)?
                .hash(admin_password.unwrap_or_default())
                .await?
                .map_err(|e| AppError::BadInput(format!("the configured admin password: {e}")))?;
            auth_store::create_user(
                &state.auth(),
                INITIAL_ADMIN_NAME,
                Role::Admin,
                &hash,
                Timestamp::now(),
            )
            .map_err(AppError::internal)?;
            state.audit(
                "setup",
                "create-user",
                INITIAL_ADMIN_NAME,
                "first admin, from the configured password",
            )?;
            tracing::info!(user = INITIAL_ADMIN_NAME, "created the first admin");
        }
        Bootstrap::PrintSetupToken { token, setup } => {
            *state.setup.lock().unwrap_or_else(|e| e.into_inner()) = Some(setup);
            tracing::warn!(
                "no users yet: open /setup and enter this one-time setup token to create the first admin: {token}"
            );
        }
    }
    Ok(())
}

/// Writes the deploy history earlier versions kept in the server's SQLite file into the
/// swarm's, once per swarm (see `SwarmHistory::import`): a stack the swarm already has a
/// history of keeps it, a deploy left `running` becomes `interrupted`, and the file is no
/// longer written. What it did goes to the log and the audit log; a failure is a warning (the
/// next start tries again). Call it before serving.
pub async fn import_deploy_history(state: &AppState) {
    let store = match swarmkeeper_store::Store::open_existing(&state.config.state_dir) {
        Ok(Some(store)) => store,
        Ok(None) => return,
        Err(e) => return tracing::warn!(error = %e, "cannot read the local deploy history"),
    };
    let done = match state.history().import(&store).await {
        Ok(done) => done,
        Err(e) => {
            return tracing::warn!(
                error = %e,
                "the local deploy history could not be imported into the swarm's; trying again \
                 at the next start"
            )
        }
    };
    for (stack, count) in done.imported {
        tracing::info!(%stack, count, "imported the local deploy history into the swarm's");
        let detail = format!("{count} revision(s) from the server's SQLite file");
        if let Err(e) = state.audit("server", "import-deploy-history", &stack, &detail) {
            tracing::warn!(error = %e, "could not audit a history import");
        }
    }
    for (stack, count) in done.skipped {
        tracing::info!(
            %stack,
            count,
            "the swarm already has a deploy history of this stack: the local one is not imported"
        );
    }
}

/// Serves on `listen` until `shutdown` completes, over TLS when `tls` is given, and the
/// agents' routes alone over plain HTTP on `agents_listen` when given; see [`serve_on`].
///
/// # Errors
/// Binding either address: the error names which flag (`--listen` or `--report-listen`).
pub async fn serve(
    state: AppState,
    listen: SocketAddr,
    tls: Option<tls::TlsConfig>,
    agents_listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let named = |flag: &'static str, addr: SocketAddr| {
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{flag} {addr}: {e}"))
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(named("--listen", listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %listener.local_addr()?, scheme, "server listening");
    let agents = match agents_listen {
        Some(addr) => {
            let agents = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(named("--report-listen", addr))?;
            tracing::info!(listen = %agents.local_addr()?, "agents' reports listening (plain http)");
            Some(agents)
        }
        None => None,
    };
    serve::serve_listeners(state, listener, tls, agents, shutdown).await
}
