use std::sync::OnceLock;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

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

/// argon2's working memory for one password check or hash: 19 MiB with the default parameters
/// (one [`Block`] per KiB). The server keeps one per check it runs at a time and reuses them, so
/// memory stays at that many checks whatever the login rate: freed argon2 memory tends to stay
/// in the allocator's per-thread arenas, and every thread of the blocking pool would keep its
/// own 19 MiB.
#[derive(Default)]
pub struct Argon2Memory(Vec<Block>);

impl Argon2Memory {
    /// Empty until the first check: the memory is allocated then, once.
    pub fn new() -> Argon2Memory {
        Argon2Memory(Vec::new())
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.len() * Block::SIZE
    }

    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// Hashes a password that meets the policy into a PHC string (`$argon2id$v=19$m=…`), with a
/// fresh random salt and argon2's defaults (argon2id, 19 MiB, 2 passes: OWASP's recommendation).
/// The parameters travel inside the string, so raising them later keeps old hashes verifiable.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_in(&mut Argon2Memory::new(), password)
}

/// [`hash_password`] in memory the caller keeps.
pub fn hash_password_in(
    memory: &mut Argon2Memory,
    password: &str,
) -> Result<String, PasswordError> {
    check_password_policy(password)?;
    let hashing = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
    let params = Params::default();
    let salt = crate::token::random_bytes::<{ Salt::RECOMMENDED_LENGTH }>();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::default()
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(|e| hashing(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| hashing(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| hashing(&e))?),
        hash: Some(Output::new(&out).map_err(|e| hashing(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed stored hash verifies nothing.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    verify_password_in(&mut Argon2Memory::new(), password, stored_hash)
}

/// [`verify_password`] in memory the caller keeps. The hash is recomputed with the stored
/// algorithm, version and parameters and compared in constant time.
pub fn verify_password_in(memory: &mut Argon2Memory, password: &str, stored_hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(stored) = PasswordHash::new(stored_hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(stored.algorithm.as_str()),
        Params::try_from(&stored),
    ) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.blocks(&params))
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Checks a login attempt. When the user does not exist (`stored_hash` is `None`) a password is
/// still verified, against a throwaway hash, so that the answer takes as long as for a real
/// user and response times do not reveal which usernames exist.
pub fn verify_login(password: &str, stored_hash: Option<&str>) -> bool {
    verify_login_in(&mut Argon2Memory::new(), password, stored_hash)
}

/// [`verify_login`] in memory the caller keeps.
pub fn verify_login_in(
    memory: &mut Argon2Memory,
    password: &str,
    stored_hash: Option<&str>,
) -> bool {
    match stored_hash {
        Some(hash) => verify_password_in(memory, password, hash),
        None => {
            let dummy = unknown_user_hash(memory);
            verify_password_in(memory, password, dummy);
            false
        }
    }
}

/// Made once, in the caller's memory (no extra 19 MiB).
fn unknown_user_hash(memory: &mut Argon2Memory) -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let unguessable = crate::token::random_hex::<32>();
        // A hash that fails would make unknown users answer faster; argon2 with its default
        // parameters and a random salt cannot fail short of memory exhaustion.
        hash_password_in(memory, &unguessable).unwrap_or_default()
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
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::{PasswordHasher, PasswordVerifier};
        // Hashes stored before the server kept its own argon2 memory still verify, and the
        // other way round.
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        let mut memory = Argon2Memory::new();
        assert!(verify_password_in(
            &mut memory,
            "correct horse battery",
            &theirs
        ));
        assert!(!verify_password_in(
            &mut memory,
            "correct horse batterx",
            &theirs
        ));
        let ours = hash_password_in(&mut memory, "correct horse battery").unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", ours.as_str())
            .is_ok());
        // Other parameters travel in the string: a cheaper hash verifies with the same memory.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(verify_password_in(
            &mut memory,
            "correct horse battery",
            &cheap
        ));
    }

    #[test]
    fn the_memory_is_allocated_once_and_reused() {
        let mut memory = Argon2Memory::new();
        assert_eq!(memory.bytes(), 0);
        let hash = hash_password_in(&mut memory, "correct horse battery").unwrap();
        assert_eq!(memory.bytes(), 19 * 1024 * 1024);
        assert!(verify_login_in(
            &mut memory,
            "correct horse battery",
            Some(&hash)
        ));
        assert!(!verify_login_in(&mut memory, "correct horse battery", None));
        assert_eq!(memory.bytes(), 19 * 1024 * 1024);
    }

    #[test]
    fn garbage_stored_hashes_and_unknown_users_verify_nothing() {
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert!(!verify_password("correct horse battery", ""));
        assert!(!verify_login("correct horse battery", None));
        assert!(unknown_user_hash(&mut Argon2Memory::new()).starts_with("$argon2id$"));
    }
}
