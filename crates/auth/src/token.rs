use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Personal API tokens start with this, so secret scanners and people recognise them.
pub const API_TOKEN_PREFIX: &str = "skt_";
/// Session cookies carry `sks_…`, API tokens `skt_…`: one is never mistaken for the other.
pub const SESSION_TOKEN_PREFIX: &str = "sks_";

/// Device cookies carry `skd_…`: a browser that has logged in as its user before.
pub const DEVICE_TOKEN_PREFIX: &str = "skd_";

/// Bytes of the public id in `skt_<id>_<secret>`: enough to be unique among one server's tokens.
const API_TOKEN_ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// Fills an array from the operating system's random source.
///
/// Panics when the operating system cannot give randomness: there is no safe way to go on
/// issuing credentials, and on Linux `getrandom(2)` only blocks before the pool is seeded.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

pub(crate) fn random_hex<const N: usize>() -> String {
    hex(&random_bytes::<N>())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// SHA-256 of a token: what is stored instead of the token. A plain hash is enough because
/// tokens carry 256 random bits; there is nothing to guess, so no need for a slow hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` hashes to this, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        TokenHash::of(presented).0.ct_eq(&self.0).into()
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_slice(bytes: &[u8]) -> Option<TokenHash> {
        bytes.try_into().ok().map(TokenHash)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({})", hex(&self.0))
    }
}

/// A freshly generated personal API token. `token` is shown to its owner once and then
/// dropped; only `id` and `hash` are stored.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: String,
    pub token: String,
    pub hash: TokenHash,
}

impl NewApiToken {
    pub fn generate() -> NewApiToken {
        let id = random_hex::<API_TOKEN_ID_BYTES>();
        let token = format!("{API_TOKEN_PREFIX}{id}_{}", random_hex::<SECRET_BYTES>());
        let hash = TokenHash::of(&token);
        NewApiToken { id, token, hash }
    }
}

/// The public id of a presented `skt_<id>_<secret>` token, used to find its record without
/// comparing against every stored hash. `None` when the text does not have the token's shape.
pub fn api_token_id(presented: &str) -> Option<&str> {
    let (id, secret) = presented.strip_prefix(API_TOKEN_PREFIX)?.split_once('_')?;
    let well_formed = |part: &str, bytes: usize| {
        part.len() == bytes * 2 && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (well_formed(id, API_TOKEN_ID_BYTES) && well_formed(secret, SECRET_BYTES)).then_some(id)
}

/// The credential of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A stored personal API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_id: i64,
    /// What its owner called it ("CI deploys"), to recognise it when revoking.
    pub name: String,
    pub hash: TokenHash,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    pub revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("not a swarmkeeper API token")]
    Malformed,
    #[error("unknown or wrong API token")]
    Wrong,
    #[error("the API token was revoked")]
    Revoked,
    #[error("the API token has expired")]
    Expired,
    #[error("the API token's user is disabled")]
    UserDisabled,
}

impl ApiToken {
    /// Whether `presented` is this token and it may still be used at `now`. The hash is checked
    /// first so that revocation and expiry are only told to someone holding the token.
    pub fn check(&self, presented: &str, now: Timestamp) -> Result<(), TokenRejection> {
        if !self.hash.matches(presented) {
            return Err(TokenRejection::Wrong);
        }
        if self.revoked {
            return Err(TokenRejection::Revoked);
        }
        if self.expires.is_some_and(|expires| now >= expires) {
            return Err(TokenRejection::Expired);
        }
        Ok(())
    }
}

/// A freshly generated session token: `token` goes into the cookie, `hash` into the database,
/// so a copy of the database opens no sessions.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub hash: TokenHash,
}

impl NewSession {
    pub fn generate() -> NewSession {
        let token = format!("{SESSION_TOKEN_PREFIX}{}", random_hex::<SECRET_BYTES>());
        let hash = TokenHash::of(&token);
        NewSession { token, hash }
    }
}

/// A freshly generated device token, for a browser that just logged in: `token` goes into the
/// device cookie, `hash` into the database. A login from a known device is exempt from the
/// per-user brake that slows guessing from strangers (see [`crate::LoginLimiter`]).
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub token: String,
    pub hash: TokenHash,
}

impl NewDevice {
    pub fn generate() -> NewDevice {
        let token = format!("{DEVICE_TOKEN_PREFIX}{}", random_hex::<SECRET_BYTES>());
        let hash = TokenHash::of(&token);
        NewDevice { token, hash }
    }
}

/// How long a browser stays known after its last login.
pub const DEVICE_LIFETIME: SignedDuration = SignedDuration::from_hours(90 * 24);

/// How long a browser session lasts: it ends after `idle` without a request, and after
/// `absolute` in any case, so a stolen cookie does not stay good forever by being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: SignedDuration,
    pub absolute: SignedDuration,
}

impl Default for SessionPolicy {
    /// One hour idle covers a dashboard left open during a long rollout (its polling keeps the
    /// session alive); twelve hours is one working day.
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: SignedDuration::from_hours(1),
            absolute: SignedDuration::from_hours(12),
        }
    }
}

impl SessionPolicy {
    /// When a session created at `created` and last used at `last_seen` ends.
    pub fn expires_at(&self, created: Timestamp, last_seen: Timestamp) -> Timestamp {
        later(last_seen, self.idle).min(later(created, self.absolute))
    }

    pub fn is_active(&self, created: Timestamp, last_seen: Timestamp, now: Timestamp) -> bool {
        now < self.expires_at(created, last_seen)
    }

    /// The cookie's `Max-Age` for a session created at `created`: its absolute lifetime left.
    /// The idle limit is enforced by the server, not the browser.
    pub fn cookie_max_age(&self, created: Timestamp, now: Timestamp) -> SignedDuration {
        later(created, self.absolute)
            .duration_since(now)
            .max(SignedDuration::ZERO)
    }
}

pub(crate) fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn api_tokens_have_the_documented_shape_and_are_unique() {
        let first = NewApiToken::generate();
        let second = NewApiToken::generate();
        assert_ne!(first.token, second.token);
        assert_ne!(first.id, second.id);
        assert_eq!(first.token.len(), 4 + 16 + 1 + 64);
        assert!(first.token.starts_with(&format!("skt_{}_", first.id)));
        assert_eq!(api_token_id(&first.token), Some(first.id.as_str()));
        assert!(first.hash.matches(&first.token));
        assert!(!first.hash.matches(&second.token));
    }

    #[test]
    fn text_that_is_not_a_token_has_no_id() {
        let token = NewApiToken::generate().token;
        for bad in [
            "",
            "skt_",
            "skt_0123456789abcdef",
            &token[..token.len() - 1],
            &format!("{token}0"),
            &token.replace("skt_", "sks_"),
            &token.to_uppercase().replace("SKT_", "skt_"),
            "skt_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef012345678é",
        ] {
            assert_eq!(api_token_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bearer_header_values_are_parsed() {
        assert_eq!(bearer_token("Bearer skt_x"), Some("skt_x"));
        assert_eq!(bearer_token("bearer   skt_x "), Some("skt_x"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    fn stored(issued: &NewApiToken) -> ApiToken {
        ApiToken {
            id: issued.id.clone(),
            user_id: 1,
            name: "ci".into(),
            hash: issued.hash,
            created: t("2026-11-26T12:00:00Z"),
            expires: Some(t("2026-12-26T12:00:00Z")),
            last_used: None,
            revoked: false,
        }
    }

    #[test]
    fn an_api_token_is_refused_when_wrong_revoked_or_expired() {
        let issued = NewApiToken::generate();
        let other = NewApiToken::generate();
        let mut token = stored(&issued);
        let before = t("2026-12-26T11:59:59Z");
        assert_eq!(token.check(&issued.token, before), Ok(()));
        assert_eq!(
            token.check(&other.token, before),
            Err(TokenRejection::Wrong)
        );
        assert_eq!(
            token.check(&issued.token, t("2026-12-26T12:00:00Z")),
            Err(TokenRejection::Expired)
        );
        token.revoked = true;
        assert_eq!(
            token.check(&issued.token, before),
            Err(TokenRejection::Revoked)
        );
        assert_eq!(
            token.check(&other.token, before),
            Err(TokenRejection::Wrong)
        );
        token.revoked = false;
        token.expires = None;
        assert_eq!(
            token.check(&issued.token, t("2100-01-01T00:00:00Z")),
            Ok(())
        );
    }

    #[test]
    fn session_tokens_are_random_and_only_their_hash_matches() {
        let session = NewSession::generate();
        assert!(session.token.starts_with("sks_"));
        assert_eq!(session.token.len(), 4 + 64);
        assert!(session.hash.matches(&session.token));
        assert_ne!(session.token, NewSession::generate().token);
        assert_eq!(
            TokenHash::from_slice(session.hash.as_bytes()),
            Some(session.hash)
        );
        assert_eq!(TokenHash::from_slice(&[0; 31]), None);
    }

    #[test]
    fn sessions_end_at_the_idle_or_the_absolute_limit_whichever_comes_first() {
        let policy = SessionPolicy::default();
        let created = t("2026-11-26T08:00:00Z");
        // Idle: last request at 08:10, so it ends at 09:10.
        let seen = t("2026-11-26T08:10:00Z");
        assert!(policy.is_active(created, seen, t("2026-11-26T09:09:59Z")));
        assert!(!policy.is_active(created, seen, t("2026-11-26T09:10:00Z")));
        // Absolute: kept busy all day, it still ends at 20:00.
        let busy = t("2026-11-26T19:59:00Z");
        assert_eq!(policy.expires_at(created, busy), t("2026-11-26T20:00:00Z"));
        assert!(!policy.is_active(created, busy, t("2026-11-26T20:00:00Z")));
    }

    #[test]
    fn the_cookie_lives_for_the_absolute_lifetime_left_and_never_negative() {
        let policy = SessionPolicy::default();
        let created = t("2026-11-26T08:00:00Z");
        assert_eq!(
            policy.cookie_max_age(created, created),
            SignedDuration::from_hours(12)
        );
        assert_eq!(
            policy.cookie_max_age(created, t("2026-11-26T19:00:00Z")),
            SignedDuration::from_hours(1)
        );
        assert_eq!(
            policy.cookie_max_age(created, t("2026-11-27T08:00:00Z")),
            SignedDuration::ZERO
        );
    }

    #[test]
    fn hex_encodes_every_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(random_hex::<8>().len(), 16);
    }
}
