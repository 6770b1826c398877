//! Talking to image registries, for the CLI and the server alike.
//!
//! - [`credentials`]: registry credentials found exactly as the docker CLI finds them
//!   (`config.json`, `credsStore`, `credHelpers`, `docker-credential-*` helpers), and the
//!   `X-Registry-Auth` value the engine wants ([`AuthConfig::x_registry_auth`]).
//! - [`Client`]: the distribution API: a tag's manifest digest (`HEAD`, the digest docker would
//!   pin, never empty) and tag lists, anonymously, with basic auth or with the bearer-token
//!   challenge Docker Hub, GHCR and GitLab use; throttling and registry errors as typed
//!   [`RegistryError`]s with `Retry-After`.
//! - [`ecr`]: AWS ECR's `GetAuthorizationToken`, SigV4-signed, from an access key or the AWS
//!   default credential chain, its 12-hour token cached and refreshed before it expires.
//! - [`Keychain`]: every place credentials come from (registries added one by one, ECR, a
//!   docker `config.json`) behind one lookup by host; it is the `engine::RegistryAuth` a
//!   deploy takes.
//!
//! Credentials are [`Secret`]s: never in `Debug`, logs or error messages.

mod challenge;
mod client;
pub mod credentials;
pub mod ecr;
mod error;
pub mod host;
mod keychain;

pub use client::{Client, ClientBuilder, MANIFEST_ACCEPT};
pub use credentials::{AuthConfig, ConfigEntry, CredentialsError, DockerConfig};
pub use error::RegistryError;
pub use keychain::{Keychain, Source};
pub use swarmkeeper_auth::Secret;
pub use swarmkeeper_reference::{Digest, Reference, ReferenceError};
