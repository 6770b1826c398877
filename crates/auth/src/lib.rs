//! The security decisions of `swarmkeeper server`, kept apart from HTTP so each can be tested on
//! its own and read in one place:
//!
//! - [`Role`], [`Action`] and [`allowed`]: who may do what, as one table.
//! - [`hash_password`], [`verify_login`]: argon2id PHC strings and a length policy; the `_in`
//!   variants run in an [`Argon2Memory`] the caller keeps and reuses.
//! - [`NewApiToken`], [`ApiToken`]: personal tokens `skt_<id>_<secret>`, shown once, stored as
//!   SHA-256, compared in constant time, revocable, with an optional expiry.
//! - [`NewSession`], [`SessionPolicy`]: session tokens hashed at rest, idle and absolute expiry.
//! - [`csrf_token`], [`verify_csrf`], [`needs_csrf`]: CSRF tokens derived from the session.
//! - [`LoginLimiter`]: login attempts slowed per user and source (a growing delay, never a
//!   ban), with a per-user brake on many addresses that known browsers ([`NewDevice`]) skip.
//! - [`AuditFold`]: repeated login failures folded into one audit row per window.
//! - [`TrustedProxies`]: the client's address behind a reverse proxy named with
//!   `--trusted-proxy`, from `X-Forwarded-For` or `Forwarded`.
//! - [`bootstrap`]: the first admin from a secret, the environment or a one-time setup token.
//! - [`session_cookie`]: the exact `Set-Cookie` value.
//! - [`hook`]: tokens of the auto-deploy hooks, one per scope, shown once, stored hashed.
//! - [`SealingKey`]: credentials (registries, alert channels) sealed at rest with a key from a
//!   Swarm secret.
//! - [`store`]: the tables for all of it in the server's SQLite file, with an append-only audit log.
//!
//! Nothing here reads a clock: every function that depends on time takes `now`.

mod bootstrap;
mod cookie;
mod csrf;
mod fold;
mod forwarded;
pub mod hook;
mod password;
mod ratelimit;
mod role;
mod seal;
mod secret;
pub mod store;
mod token;

pub use bootstrap::{
    bootstrap, initial_admin_password, Bootstrap, SetupToken, ADMIN_PASSWORD_ENV,
    ADMIN_PASSWORD_SECRET_FILE, INITIAL_ADMIN_NAME,
};
pub use cookie::{
    clear_session_cookie, device_cookie, device_token_from_cookie_header, secure_cookie_kept,
    session_cookie, session_token_from_cookie_header, DEVICE_COOKIE_NAME, SESSION_COOKIE_NAME,
};
pub use csrf::{csrf_token, needs_csrf, verify_csrf, Credential, CSRF_FORM_FIELD, CSRF_HEADER};
pub use fold::AuditFold;
pub use forwarded::TrustedProxies;
pub use password::{
    check_password_policy, hash_password, hash_password_in, verify_login, verify_login_in,
    verify_password, verify_password_in, Argon2Memory, PasswordError, MAX_PASSWORD_BYTES,
    MIN_PASSWORD_CHARS,
};
pub use ratelimit::{LimitPolicy, LoginDecision, LoginKey, LoginLimiter};
pub use role::{allowed, Action, AuditStep, Role, UnknownRole};
pub use seal::{
    random_key_text, SealError, SealingKey, MIN_SECRET_KEY_BYTES, SECRET_KEY_SECRET_FILE,
};
pub use secret::Secret;
pub use token::{
    api_token_id, bearer_token, ApiToken, NewApiToken, NewDevice, NewSession, SessionPolicy,
    TokenHash, TokenRejection, API_TOKEN_PREFIX, DEVICE_LIFETIME, DEVICE_TOKEN_PREFIX,
    SESSION_TOKEN_PREFIX,
};
