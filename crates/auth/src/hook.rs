//! Hook tokens: what a registry's push notifications and a CI job present on the auto-deploy
//! hooks (`POST /api/hooks/registry`, `POST /api/hooks/services/{name}`).
//!
//! One token per [`HookScope`]: the registry hook's, or one per service. A token is
//! `skh_<64 hex digits>` (256 random bits), shown once when it is made, stored as its SHA-256
//! and compared in constant time; making a new one replaces the old. A hook token grants one
//! thing only, a registry check of the services it names: a hook never deploys on its own
//! word, so a leaked token can make the server ask the registry sooner, nothing more.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::StoreError;
use crate::token::{random_hex, TokenHash};

/// Hook tokens start with this, so secret scanners and people recognise them.
pub const HOOK_TOKEN_PREFIX: &str = "skh_";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS auth_hook_tokens (
    scope       TEXT PRIMARY KEY,
    hash        BLOB NOT NULL,
    created_by  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
";

/// What a hook token opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookScope {
    /// `POST /api/hooks/registry`: a distribution registry's notification endpoint.
    Registry,
    /// `POST /api/hooks/services/{name}`: one service (by name).
    Service(String),
}

impl HookScope {
    /// The key the token is stored under: `registry`, `service:NAME`.
    pub fn key(&self) -> String {
        match self {
            HookScope::Registry => "registry".to_owned(),
            HookScope::Service(name) => format!("service:{name}"),
        }
    }
}

/// A new hook token: `token` is shown once and dropped; `hash` is stored.
#[derive(Debug, Clone)]
pub struct NewHookToken {
    pub token: String,
    pub hash: TokenHash,
}

impl NewHookToken {
    pub fn generate() -> NewHookToken {
        let token = format!("{HOOK_TOKEN_PREFIX}{}", random_hex::<32>());
        NewHookToken {
            hash: TokenHash::of(&token),
            token,
        }
    }
}

/// When a scope's token was made and by whom (the page shows it, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTokenInfo {
    pub created_by: String,
    pub created: Timestamp,
}

pub(crate) fn create_tables(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// Stores a scope's token, replacing the one it had.
pub fn set_hook_token(
    conn: &Connection,
    scope: &HookScope,
    token: &NewHookToken,
    by: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO auth_hook_tokens (scope, hash, created_by, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scope) DO UPDATE SET hash = excluded.hash,
            created_by = excluded.created_by, created_ms = excluded.created_ms",
        params![
            scope.key(),
            token.hash.as_bytes().as_slice(),
            by,
            now.as_millisecond()
        ],
    )?;
    Ok(())
}

/// Whether `presented` is the scope's token (constant-time); false when the scope has none.
pub fn check_hook_token(
    conn: &Connection,
    scope: &HookScope,
    presented: &str,
) -> Result<bool, StoreError> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM auth_hook_tokens WHERE scope = ?1",
            [scope.key()],
            |row| row.get(0),
        )
        .optional()?;
    // A missing scope still costs one hash, so timing does not tell which scopes have tokens.
    let hash = stored
        .as_deref()
        .and_then(TokenHash::from_slice)
        .unwrap_or(TokenHash::of(""));
    Ok(hash.matches(presented) && stored.is_some() && !presented.is_empty())
}

/// The scope's token's creation, if it has one.
pub fn hook_token_info(
    conn: &Connection,
    scope: &HookScope,
) -> Result<Option<HookTokenInfo>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT created_by, created_ms FROM auth_hook_tokens WHERE scope = ?1",
            [scope.key()],
            |row| {
                Ok(HookTokenInfo {
                    created_by: row.get(0)?,
                    created: Timestamp::from_millisecond(row.get(1)?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                })
            },
        )
        .optional()?)
}

/// Removes a scope's token; returns whether it had one.
pub fn revoke_hook_token(conn: &Connection, scope: &HookScope) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM auth_hook_tokens WHERE scope = ?1",
        [scope.key()],
    )? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::create_tables(&conn).unwrap();
        conn
    }

    #[test]
    fn a_token_opens_its_scope_only_and_a_new_one_replaces_it() {
        let conn = conn();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let web = HookScope::Service("shop_web".into());
        let first = NewHookToken::generate();
        assert!(first.token.starts_with(HOOK_TOKEN_PREFIX) && first.token.len() == 68);
        assert!(!check_hook_token(&conn, &web, &first.token).unwrap());
        set_hook_token(&conn, &web, &first, "alice", now).unwrap();
        assert!(check_hook_token(&conn, &web, &first.token).unwrap());
        assert!(!check_hook_token(&conn, &HookScope::Registry, &first.token).unwrap());
        assert!(!check_hook_token(&conn, &web, "skh_wrong").unwrap());
        assert!(!check_hook_token(&conn, &web, "").unwrap());
        let second = NewHookToken::generate();
        set_hook_token(&conn, &web, &second, "bob", now).unwrap();
        assert!(!check_hook_token(&conn, &web, &first.token).unwrap());
        assert!(check_hook_token(&conn, &web, &second.token).unwrap());
        assert_eq!(
            hook_token_info(&conn, &web).unwrap().unwrap().created_by,
            "bob"
        );
        assert!(revoke_hook_token(&conn, &web).unwrap());
        assert!(!check_hook_token(&conn, &web, &second.token).unwrap());
        assert_eq!(hook_token_info(&conn, &web).unwrap(), None);
    }
}
