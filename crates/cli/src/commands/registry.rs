//! Registry credentials for the commands that deploy or ask registries: found as the docker
//! CLI finds them (`DOCKER_CONFIG`, else `~/.docker/config.json`; `auths`, `credsStore`,
//! `credHelpers`), and sent by default.

use std::sync::Arc;

use clap::Args;
use swarmkeeper_engine::RegistryAuth;
use swarmkeeper_registry::{DockerConfig, Keychain};

use crate::exit::Failure;

#[derive(Args, Clone, Debug)]
pub struct RegistryArgs {
    /// Send no registry credentials: nodes pull private images only with what they have
    /// themselves (`docker stack deploy` without `--with-registry-auth`). By default each
    /// service create and update carries the credentials `docker pull` would use.
    #[arg(long)]
    pub no_registry_auth: bool,
}

impl RegistryArgs {
    /// The credentials to use, `None` with `--no-registry-auth`. A config file that cannot
    /// be read is bad input (exit 2), named with its line and column.
    pub fn keychain(&self) -> Result<Option<Keychain>, Failure> {
        if self.no_registry_auth {
            return Ok(None);
        }
        let config = DockerConfig::load_default().map_err(|e| Failure::Usage(e.to_string()))?;
        Ok(Some(Keychain::from_docker_config(config)))
    }

    /// The hook a deploy takes ([`swarmkeeper_deploy::Request::registry_auth`]).
    pub fn registry_auth(&self) -> Result<Option<Arc<dyn RegistryAuth>>, Failure> {
        Ok(self
            .keychain()?
            .map(|k| Arc::new(k) as Arc<dyn RegistryAuth>))
    }
}
