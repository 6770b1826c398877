//! Cross-site request forgery protection, synchronizer-token style without a table: a session's
//! CSRF token is derived from its session token. A page on another site can make the browser
//! send the session cookie but cannot read it, so it cannot compute the CSRF token; and the CSRF
//! token, which does appear in pages, does not reveal the session token (SHA-256 is one-way).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::token::hex;

/// Separates this use of SHA-256 from the hashing of tokens at rest, so a CSRF token is never
/// equal to a stored session hash.
const CSRF_DOMAIN: &[u8] = b"swarmkeeper csrf v1\0";

/// The form field and the header (for `fetch` calls) that carry the token.
pub const CSRF_FORM_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token to put in the session's forms and pages.
pub fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(CSRF_DOMAIN);
    hasher.update(session_token.as_bytes());
    hex(&hasher.finalize())
}

/// Whether `presented` is the CSRF token of `session_token`, compared in constant time.
pub fn verify_csrf(session_token: &str, presented: &str) -> bool {
    csrf_token(session_token)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

/// How a request proved who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    SessionCookie,
    /// `Authorization: Bearer`: browsers never add this header on their own, so another site
    /// cannot make a request carry it.
    BearerToken,
}

/// Whether a request must present the CSRF token. Every method except the safe ones changes
/// something or may (the server must keep GET, HEAD and OPTIONS free of side effects); method
/// names are case-sensitive, so `get` is not GET and needs the token.
pub fn needs_csrf(method: &str, credential: Credential) -> bool {
    credential == Credential::SessionCookie && !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{NewSession, TokenHash};

    #[test]
    fn the_sessions_own_token_verifies_and_nothing_else_does() {
        let session = NewSession::generate();
        let other = NewSession::generate();
        let token = csrf_token(&session.token);
        assert_eq!(token, csrf_token(&session.token), "stable for the session");
        assert!(verify_csrf(&session.token, &token));
        assert!(!verify_csrf(&other.token, &token));
        assert!(!verify_csrf(&session.token, &csrf_token(&other.token)));
        assert!(!verify_csrf(&session.token, ""));
        assert!(!verify_csrf(&session.token, &token[..63]));
        assert!(!verify_csrf(&session.token, &session.token));
    }

    #[test]
    fn the_csrf_token_is_neither_the_session_token_nor_its_stored_hash() {
        let session = NewSession::generate();
        let token = csrf_token(&session.token);
        assert_ne!(token, session.token);
        assert_ne!(
            token,
            crate::token::hex(TokenHash::of(&session.token).as_bytes())
        );
    }

    #[test]
    fn only_safe_methods_with_a_cookie_skip_the_check() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            assert!(!needs_csrf(method, Credential::SessionCookie), "{method}");
        }
        for method in [
            "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "get", "PROPFIND",
        ] {
            assert!(needs_csrf(method, Credential::SessionCookie), "{method}");
            assert!(!needs_csrf(method, Credential::BearerToken), "{method}");
        }
    }
}
