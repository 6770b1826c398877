use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Shorter passwords fall to offline guessing if the database leaks, argon2 or not.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Long enough for any passphrase or password manager; the bound keeps a login form from being
/// used to make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password has {chars} characters; it needs at least {MIN_PASSWORD_CHARS}")]
    TooShort { chars: usize },
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// The password policy: a length, nothing else. Composition rules push people towards
/// `Password1!`; length is what resists guessing.
pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort { chars });
    }
    Ok(())
}

/// Hashes a password that meets the policy into a PHC string (`$argon2id$v=19$m=…`), with a
/// fresh random salt and argon2's defaults (argon2id, 19 MiB, 2 passes: OWASP's recommendation).
/// The parameters travel inside the string, so raising them later keeps old hashes verifiable.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password_policy(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hashing(err.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed stored hash verifies nothing.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.as_bytes(), stored_hash)
            .is_ok()
}

/// Checks a login attempt. When the user does not exist (`stored_hash` is `None`) a password is
/// still verified, against a throwaway hash, so that the answer takes as long as for a real
/// user and response times do not reveal which usernames exist.
pub fn verify_login(password: &str, stored_hash: Option<&str>) -> bool {
    match stored_hash {
        Some(hash) => verify_password(password, hash),
        None => {
            verify_password(password, unknown_user_hash());
            false
        }
    }
}

fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let unguessable = crate::token::random_hex::<32>();
        Argon2::default()
            .hash_password(unguessable.as_bytes())
            .map(|hash| hash.to_string())
            // A hash that fails to parse would make unknown users answer faster; argon2 with
            // its default parameters and a random salt cannot fail short of memory exhaustion.
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery ", &hash));
        assert!(verify_login("correct horse battery", Some(&hash)));
        assert!(!verify_login("wrong horse battery!", Some(&hash)));
    }

    #[test]
    fn the_same_password_gets_a_different_salt_each_time() {
        let first = hash_password("twelve chars").unwrap();
        let second = hash_password("twelve chars").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn short_passwords_are_refused_with_a_clear_message() {
        let err = hash_password("elevenchars").unwrap_err();
        assert_eq!(err, PasswordError::TooShort { chars: 11 });
        assert_eq!(
            err.to_string(),
            "the password has 11 characters; it needs at least 12"
        );
        // Characters, not bytes: twelve accented letters pass although six would be 12 bytes.
        assert_eq!(
            check_password_policy("éééééé"),
            Err(PasswordError::TooShort { chars: 6 })
        );
        assert_eq!(check_password_policy("éééééééééééé"), Ok(()));
    }

    #[test]
    fn very_long_passwords_are_refused_before_hashing() {
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_password(&long), Err(PasswordError::TooLong));
        assert!(!verify_password(
            &long,
            "$argon2id$v=19$m=19456,t=2,p=1$x$y"
        ));
    }

    #[test]
    fn garbage_stored_hashes_and_unknown_users_verify_nothing() {
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert!(!verify_password("correct horse battery", ""));
        assert!(!verify_login("correct horse battery", None));
        assert!(unknown_user_hash().starts_with("$argon2id$"));
    }
}
