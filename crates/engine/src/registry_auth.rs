//! Registry credentials for the engine's pulls: the hook a deploy gives the engine calls.

use std::future::Future;
use std::pin::Pin;

/// What a [`RegistryAuth`] answers, in time.
pub type RegistryAuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>>;

/// Gives the `X-Registry-Auth` value (base64url of the registry's auth config JSON, as the
/// docker CLI sends with `--with-registry-auth`) for pulling an image reference, or `None` to
/// send none. [`crate::Engine::create_service`], [`crate::Engine::update_service`] and
/// [`crate::Engine::distribution_digest`] take the value it gives.
///
/// Where the credentials come from (a docker `config.json`, credential helpers, ECR) is the
/// implementor's business; an `Err` says why they could not be had, in words for the
/// operator. Any `Fn(&str) -> Result<Option<String>, String>` is one.
pub trait RegistryAuth: Send + Sync {
    fn for_image<'a>(&'a self, image: &'a str) -> RegistryAuthFuture<'a>;
}

impl<F> RegistryAuth for F
where
    F: Fn(&str) -> Result<Option<String>, String> + Send + Sync,
{
    fn for_image<'a>(&'a self, image: &'a str) -> RegistryAuthFuture<'a> {
        let answer = self(image);
        Box::pin(std::future::ready(answer))
    }
}
