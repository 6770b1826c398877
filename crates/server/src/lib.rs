//! `swarmkeeper server`: the web dashboard and its JSON twin. Pages are rendered on the server
//! (askama templates, compile-checked and auto-escaped); every page under `/x` has its data
//! under `/api/x`, described in `openapi.json`.
//!
//! - [`access`]: who is calling (session cookie or API token), CSRF, roles.
//! - [`views`]: pure functions from engine data to what a page shows.
//! - `routes/`: the handlers, thin: fetch, call a view, render or serialise.

pub mod access;
mod assets;
pub mod error;
mod login;
mod page;
mod routes;
pub mod state;
pub mod views;

use std::future::Future;
use std::net::SocketAddr;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use jiff::Timestamp;
use swarmkeeper_auth::store::{self as auth_store};
use swarmkeeper_auth::{bootstrap, hash_password, Bootstrap, Role, INITIAL_ADMIN_NAME};

pub use error::AppError;
pub use state::{AppState, ServerConfig};

/// Every route. Public ones first: they carry no cluster data (login, setup, static files,
/// health) or authenticate themselves (agent reports, with the shared secret).
pub fn app(state: AppState) -> Router {
    let protected = routes::protected()
        .route("/logout", post(login::logout))
        .route_layer(from_fn_with_state(state.clone(), access::authenticate));
    Router::new()
        .route("/login", get(login::login_page).post(login::login))
        .route("/setup", get(login::setup_page).post(login::setup))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/openapi.json", get(assets::openapi))
        .route("/static/{file}", get(assets::static_file))
        .merge(routes::public())
        .merge(protected)
        .layer(from_fn(error::html_errors))
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
            let password = admin_password.unwrap_or_default();
            let hash = tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(AppError::internal)?
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

/// Serves until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "server listening");
    routes::spawn_housekeeping(state.clone());
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
