//! Credentials at rest: what the server stores for registries and alert channels (passwords,
//! tokens, webhook URLs) is sealed with a key that never sits in its SQLite file.
//!
//! The key comes from a Swarm secret (`swarmkeeper_secret_key`, any text of 32 bytes or
//! more, e.g. `openssl rand -hex 32`), so a copy of the state volume or of a backup reveals
//! no credential. The cipher is XChaCha20-Poly1305: its 24-byte nonce is drawn at random for
//! every value, so no counter has to survive restarts, and the tag refuses a value that was
//! altered or moved to another row (the caller's `purpose` is bound as associated data).
//!
//! A sealed value is `[VERSION] ++ nonce (24 bytes) ++ ciphertext ++ tag (16 bytes)`.

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The first byte of every sealed value; another byte is refused, so the format can change.
const VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// A secret shorter than this is refused: it would be guessable offline from a stolen file.
pub const MIN_SECRET_KEY_BYTES: usize = 32;
/// Where `deploy/swarmkeeper.yml` mounts the server's key.
pub const SECRET_KEY_SECRET_FILE: &str = "/run/secrets/swarmkeeper_secret_key";

/// The key that seals credentials. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SealingKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

/// Why a key or a sealed value was refused. Never carries key or plaintext bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the secret key has {0} bytes; it needs {MIN_SECRET_KEY_BYTES} or more (e.g. `openssl rand -hex 32`)")]
    KeyTooShort(usize),
    #[error("the stored value is not in a format this version reads")]
    Format,
    /// A wrong key, or a value altered or copied from elsewhere.
    #[error(
        "the stored value cannot be opened with this key (another key, or the value was altered)"
    )]
    Open,
}

/// A new secret key's text, 64 random hex digits (as `openssl rand -hex 32` makes): what a
/// re-key writes into the new secret when the admin gives none.
pub fn random_key_text() -> String {
    crate::token::random_hex::<32>()
}

impl SealingKey {
    /// Derives the key from a secret's text: SHA-256 over a domain label and the text with
    /// surrounding white space removed (a secret file often ends with a newline), so any
    /// random text of [`MIN_SECRET_KEY_BYTES`] or more works.
    pub fn from_secret(secret: &[u8]) -> Result<SealingKey, SealError> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_KEY_BYTES {
            return Err(SealError::KeyTooShort(secret.len()));
        }
        let mut hasher = Sha256::new();
        hasher.update(b"swarmkeeper sealing key v1\0");
        hasher.update(secret);
        let key = Key::from(<[u8; 32]>::from(hasher.finalize()));
        Ok(SealingKey {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// A key drawn at random, for values that never outlive the process (credentials tried
    /// before they are stored).
    pub fn ephemeral() -> SealingKey {
        SealingKey::from_secret(crate::token::random_hex::<32>().as_bytes())
            .expect("64 hex digits are long enough")
    }

    /// Seals `plaintext` for `purpose` (for example `registry:3:password`): the same purpose
    /// must be given to [`SealingKey::open`].
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by [`SealingKey::seal`] with the same key and purpose.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Format)?;
        if version != VERSION || rest.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::Format);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Format)?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SealingKey {
        SealingKey::from_secret(text.as_bytes()).unwrap()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef\n";

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_purpose_only() {
        let k = key(SECRET);
        let sealed = k.seal("registry:1:password", b"hunter2");
        assert_eq!(k.open("registry:1:password", &sealed).unwrap(), b"hunter2");
        assert_eq!(
            k.open("registry:2:password", &sealed),
            Err(SealError::Open),
            "moved to another row"
        );
        let other = key("another secret of thirty-two bytes or more, surely");
        assert_eq!(
            other.open("registry:1:password", &sealed),
            Err(SealError::Open)
        );
    }

    #[test]
    fn sealed_values_hide_the_plaintext_and_differ_every_time() {
        let k = key(SECRET);
        let a = k.seal("p", b"the same password");
        let b = k.seal("p", b"the same password");
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.windows(b"password".len()).any(|w| w == b"password"));
        assert_eq!(
            a.len(),
            1 + NONCE_BYTES + b"the same password".len() + TAG_BYTES
        );
    }

    #[test]
    fn altered_or_truncated_values_are_refused() {
        let k = key(SECRET);
        let mut sealed = k.seal("p", b"x");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(k.open("p", &sealed), Err(SealError::Open));
        assert_eq!(k.open("p", &[]), Err(SealError::Format));
        assert_eq!(k.open("p", &[VERSION; 10]), Err(SealError::Format));
        let mut other_version = k.seal("p", b"x");
        other_version[0] = 2;
        assert_eq!(k.open("p", &other_version), Err(SealError::Format));
    }

    #[test]
    fn short_secrets_are_refused_and_white_space_does_not_count() {
        assert_eq!(
            SealingKey::from_secret(b"   short   \n").unwrap_err(),
            SealError::KeyTooShort(5)
        );
        let sealed = key(SECRET).seal("p", b"x");
        assert_eq!(key(SECRET.trim()).open("p", &sealed).unwrap(), b"x");
        assert_eq!(format!("{:?}", key(SECRET)), "SealingKey(***)");
    }
}
