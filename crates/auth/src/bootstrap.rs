//! First start: how the first admin comes to exist. There is no default password; either the
//! operator supplies one, or the server prints a one-time setup token to its log, which only
//! someone with access to the manager's logs can read.

use crate::token::{random_hex, TokenHash};

/// The first admin's name when the password comes from the environment or a secret.
pub const INITIAL_ADMIN_NAME: &str = "admin";
pub const ADMIN_PASSWORD_ENV: &str = "SWARMKEEPER_ADMIN_PASSWORD";
/// Where Swarm mounts a secret named `swarmkeeper_admin_password`.
pub const ADMIN_PASSWORD_SECRET_FILE: &str = "/run/secrets/swarmkeeper_admin_password";

const SETUP_TOKEN_PREFIX: &str = "skst_";

/// The first admin's password from a Swarm secret's contents or the environment variable. The
/// secret wins: unlike an environment variable it does not show in `docker service inspect`.
/// One trailing newline is dropped, since `echo pw | docker secret create` adds one.
pub fn initial_admin_password(secret_file: Option<&str>, env: Option<&str>) -> Option<String> {
    [secret_file, env]
        .into_iter()
        .flatten()
        .map(|value| {
            let value = value.strip_suffix('\n').unwrap_or(value);
            value.strip_suffix('\r').unwrap_or(value)
        })
        .find(|value| !value.is_empty())
        .map(str::to_owned)
}

#[derive(Debug)]
pub enum Bootstrap {
    /// Create [`INITIAL_ADMIN_NAME`] with the configured password (which must still pass the
    /// password policy).
    CreateAdminFromPassword,
    /// Print `token` to the log and offer the setup page, which takes it once.
    PrintSetupToken { token: String, setup: SetupToken },
    /// Users exist: a configured password is ignored rather than allowed to reset anyone's.
    Nothing,
}

/// What to do at start, from whether a password was configured and whether any user exists.
pub fn bootstrap(password_configured: bool, users_exist: bool) -> Bootstrap {
    match (users_exist, password_configured) {
        (true, _) => Bootstrap::Nothing,
        (false, true) => Bootstrap::CreateAdminFromPassword,
        (false, false) => {
            let (token, setup) = SetupToken::generate();
            Bootstrap::PrintSetupToken { token, setup }
        }
    }
}

/// The server's memory of the printed setup token: its hash until it is used, then nothing.
/// It lives in memory only; a restart with still no users prints a new one.
#[derive(Debug)]
pub struct SetupToken {
    unused: Option<TokenHash>,
}

impl SetupToken {
    fn generate() -> (String, SetupToken) {
        let token = format!("{SETUP_TOKEN_PREFIX}{}", random_hex::<32>());
        let setup = SetupToken {
            unused: Some(TokenHash::of(&token)),
        };
        (token, setup)
    }

    /// Whether `presented` is the token, using it up if so. Call this once the rest of the setup
    /// form (name, password policy) is known to be acceptable, so a typo does not burn it.
    pub fn redeem(&mut self, presented: &str) -> bool {
        let matched = self.unused.is_some_and(|hash| hash.matches(presented));
        if matched {
            self.unused = None;
        }
        matched
    }

    pub fn is_used(&self) -> bool {
        self.unused.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        assert!(matches!(bootstrap(true, true), Bootstrap::Nothing));
        assert!(matches!(bootstrap(false, true), Bootstrap::Nothing));
        assert!(matches!(
            bootstrap(true, false),
            Bootstrap::CreateAdminFromPassword
        ));
        let Bootstrap::PrintSetupToken { token, setup } = bootstrap(false, false) else {
            panic!("no users and no password must print a setup token");
        };
        assert!(
            token.starts_with("skst_") && token.len() == 5 + 64,
            "{token}"
        );
        assert!(!setup.is_used());
    }

    #[test]
    fn the_setup_token_works_once() {
        let Bootstrap::PrintSetupToken { token, mut setup } = bootstrap(false, false) else {
            panic!("expected a setup token");
        };
        assert!(!setup.redeem("skst_wrong"));
        assert!(!setup.is_used(), "a wrong guess does not use it up");
        assert!(setup.redeem(&token));
        assert!(setup.is_used());
        assert!(!setup.redeem(&token));
    }

    #[test]
    fn each_start_prints_a_different_token() {
        let token = |b| match b {
            Bootstrap::PrintSetupToken { token, .. } => token,
            other => panic!("expected a setup token, got {other:?}"),
        };
        assert_ne!(
            token(bootstrap(false, false)),
            token(bootstrap(false, false))
        );
    }

    #[test]
    fn the_secret_wins_over_the_environment_and_one_newline_is_dropped() {
        assert_eq!(
            initial_admin_password(Some("from secret\n"), Some("from env")),
            Some("from secret".to_owned())
        );
        assert_eq!(
            initial_admin_password(None, Some("from env\r\n")),
            Some("from env".to_owned())
        );
        assert_eq!(
            initial_admin_password(Some("\n"), Some("from env")),
            Some("from env".to_owned())
        );
        assert_eq!(
            initial_admin_password(Some(" spaces kept \n\n"), None),
            Some(" spaces kept \n".to_owned())
        );
        assert_eq!(initial_admin_password(None, Some("")), None);
        assert_eq!(initial_admin_password(None, None), None);
    }
}
