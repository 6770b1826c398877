//! Users, API tokens, sessions and the audit log in SQLite. Every function takes the server's
//! connection, so these tables live in the same file as everything else the server keeps; the
//! tables are prefixed `auth_` to stay out of other crates' way.
//!
//! Users are disabled, never deleted, so the audit log's names keep meaning something; the audit
//! log itself refuses UPDATE and DELETE in the database, not just in this API.

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::role::Role;
use crate::token::{
    api_token_id, hex, later, ApiToken, NewApiToken, NewDevice, NewSession, SessionPolicy,
    TokenHash, TokenRejection, DEVICE_LIFETIME,
};

pub const MAX_USERNAME_LEN: usize = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS auth_users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES auth_users(id),
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER,
    last_used_ms INTEGER,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS auth_api_tokens_by_user ON auth_api_tokens(user_id);
CREATE TABLE IF NOT EXISTS auth_sessions (
    hash         BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES auth_users(id),
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_sessions_by_user ON auth_sessions(user_id);
CREATE TABLE IF NOT EXISTS auth_audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    who    TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_devices (
    hash          BLOB PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES auth_users(id),
    last_login_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_devices_by_user ON auth_devices(user_id);
CREATE TRIGGER IF NOT EXISTS auth_audit_no_update BEFORE UPDATE ON auth_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS auth_audit_no_delete BEFORE DELETE ON auth_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid username {0:?}: use 1 to {MAX_USERNAME_LEN} lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidUsername(String),
    #[error("a user named {0:?} already exists")]
    DuplicateUser(String),
    #[error("no user with id {0}")]
    UnknownUser(i64),
    #[error("that would leave no enabled admin")]
    LastAdmin,
    #[error("auth database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// PHC string from [`crate::hash_password`].
    pub password_hash: String,
    pub created: Timestamp,
    pub disabled: bool,
}

/// Leaves the password hash out, so a user logged with `{:?}` does not put it in a log file.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created", &self.created)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A session that is still good, with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub user: User,
    /// For the cookie's Max-Age: see [`SessionPolicy::cookie_max_age`].
    pub created: Timestamp,
}

/// One line of the audit log: who did what to which target, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// A username, or `setup` for the first admin created through the setup token.
    pub who: String,
    /// An [`crate::Action`] name, or an event such as `login` or `revoke-token`.
    pub action: String,
    /// What was acted on: a stack, a service, a user, a token id.
    pub target: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increases with every entry; pass the smallest seen as `before` for the next page.
    pub id: i64,
    pub entry: AuditEntry,
}

pub fn create_tables(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    crate::hook::create_tables(conn)?;
    Ok(())
}

/// Usernames are plain ASCII so that two names never look alike on screen and the rate
/// limiter's case folding covers them.
pub fn validate_username(name: &str) -> Result<(), StoreError> {
    let valid = (1..=MAX_USERNAME_LEN).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidUsername(name.to_owned()))
    }
}

pub fn create_user(
    conn: &Connection,
    name: &str,
    role: Role,
    password_hash: &str,
    now: Timestamp,
) -> Result<User, StoreError> {
    validate_username(name)?;
    let inserted = conn.execute(
        "INSERT INTO auth_users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        params![name, role.as_str(), password_hash, millis(now)],
    )?;
    if inserted == 0 {
        return Err(StoreError::DuplicateUser(name.to_owned()));
    }
    Ok(User {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        role,
        password_hash: password_hash.to_owned(),
        created: now,
        disabled: false,
    })
}

pub fn any_users(conn: &Connection) -> Result<bool, StoreError> {
    Ok(
        conn.query_row("SELECT EXISTS (SELECT 1 FROM auth_users)", [], |row| {
            row.get(0)
        })?,
    )
}

const USER_COLUMNS: &str = "id, name, role, password_hash, created_ms, disabled";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(2)?;
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        role: role.parse().map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(err))
        })?,
        password_hash: row.get(3)?,
        created: from_millis(row.get(4)?),
        disabled: row.get(5)?,
    })
}

pub fn user_by_name(conn: &Connection, name: &str) -> Result<Option<User>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM auth_users WHERE name = ?1"),
            [name],
            user_from_row,
        )
        .optional()?)
}

pub fn user_by_id(conn: &Connection, id: i64) -> Result<Option<User>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1"),
            [id],
            user_from_row,
        )
        .optional()?)
}

pub fn list_users(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM auth_users ORDER BY name"
    ))?;
    let users = stmt
        .query_map([], user_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

/// Changes a user's role; refuses to demote the last enabled admin, since nobody could then
/// manage users again short of editing the database.
pub fn set_user_role(conn: &Connection, user_id: i64, role: Role) -> Result<(), StoreError> {
    let user = user_by_id(conn, user_id)?.ok_or(StoreError::UnknownUser(user_id))?;
    if role != Role::Admin && is_last_enabled_admin(conn, &user)? {
        return Err(StoreError::LastAdmin);
    }
    conn.execute(
        "UPDATE auth_users SET role = ?2 WHERE id = ?1",
        params![user_id, role.as_str()],
    )?;
    Ok(())
}

/// Disables or re-enables a user. Disabling ends their sessions at once; their API tokens stay
/// on record but are refused while the user is disabled. The last enabled admin cannot be
/// disabled.
pub fn set_user_disabled(
    conn: &Connection,
    user_id: i64,
    disabled: bool,
) -> Result<(), StoreError> {
    let user = user_by_id(conn, user_id)?.ok_or(StoreError::UnknownUser(user_id))?;
    if disabled && is_last_enabled_admin(conn, &user)? {
        return Err(StoreError::LastAdmin);
    }
    conn.execute(
        "UPDATE auth_users SET disabled = ?2 WHERE id = ?1",
        params![user_id, disabled],
    )?;
    if disabled {
        end_user_sessions(conn, user_id)?;
    }
    Ok(())
}

fn is_last_enabled_admin(conn: &Connection, user: &User) -> Result<bool, StoreError> {
    if user.role != Role::Admin || user.disabled {
        return Ok(false);
    }
    let enabled_admins: i64 = conn.query_row(
        "SELECT COUNT(*) FROM auth_users WHERE role = 'admin' AND disabled = 0",
        [],
        |row| row.get(0),
    )?;
    Ok(enabled_admins <= 1)
}

/// Stores a new password hash, ends all the user's sessions, revokes all their API tokens and
/// forgets their known browsers: whoever knew the old password is signed out and keeps nothing
/// they could have made with it. The owner logs in again and makes new tokens.
pub fn set_password_hash(
    conn: &Connection,
    user_id: i64,
    password_hash: &str,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE auth_users SET password_hash = ?2 WHERE id = ?1",
        params![user_id, password_hash],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownUser(user_id));
    }
    conn.execute(
        "UPDATE auth_api_tokens SET revoked = 1 WHERE user_id = ?1",
        [user_id],
    )?;
    conn.execute("DELETE FROM auth_devices WHERE user_id = ?1", [user_id])?;
    end_user_sessions(conn, user_id)
}

/// Known browsers kept per user; the one that logged in least recently goes first.
pub const MAX_DEVICES_PER_USER: usize = 20;

/// Remembers the browser that just logged in as `user_id`: the token of its device cookie,
/// renewed (the same token when it presented a valid one for this user, else a new one).
pub fn remember_device(
    conn: &Connection,
    user_id: i64,
    presented: Option<&str>,
    now: Timestamp,
) -> Result<String, StoreError> {
    let known = match presented {
        Some(token) => device_owner(conn, token, now)? == Some(user_id),
        None => false,
    };
    let token = match presented.filter(|_| known) {
        Some(token) => token.to_owned(),
        None => NewDevice::generate().token,
    };
    conn.execute(
        "INSERT INTO auth_devices (hash, user_id, last_login_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (hash) DO UPDATE SET last_login_ms = excluded.last_login_ms",
        params![
            TokenHash::of(&token).as_bytes().as_slice(),
            user_id,
            millis(now)
        ],
    )?;
    let keep = i64::try_from(MAX_DEVICES_PER_USER).unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM auth_devices WHERE user_id = ?1 AND (last_login_ms < ?2 OR hash NOT IN
             (SELECT hash FROM auth_devices WHERE user_id = ?1
              ORDER BY last_login_ms DESC LIMIT ?3))",
        params![user_id, millis(now) - device_lifetime_ms(), keep],
    )?;
    Ok(token)
}

/// The id (a prefix of its hash, in hex) under which a browser's device token counts for
/// `username`, when the token is known, recent and belongs to that user.
pub fn device_for_login(
    conn: &Connection,
    presented: &str,
    username: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let Some(owner) = device_owner(conn, presented, now)? else {
        return Ok(None);
    };
    let matches = user_by_id(conn, owner)?.is_some_and(|user| user.name == username);
    Ok(matches.then(|| hex(&TokenHash::of(presented).as_bytes()[..8])))
}

fn device_owner(
    conn: &Connection,
    presented: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let found: Option<(i64, i64)> = conn
        .query_row(
            "SELECT user_id, last_login_ms FROM auth_devices WHERE hash = ?1",
            [TokenHash::of(presented).as_bytes().as_slice()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    Ok(found
        .filter(|&(_, last)| now < later(from_millis(last), DEVICE_LIFETIME))
        .map(|(user, _)| user))
}

fn device_lifetime_ms() -> i64 {
    i64::try_from(DEVICE_LIFETIME.as_millis()).unwrap_or(i64::MAX)
}

pub fn insert_api_token(
    conn: &Connection,
    user_id: i64,
    name: &str,
    issued: &NewApiToken,
    expires: Option<Timestamp>,
    now: Timestamp,
) -> Result<ApiToken, StoreError> {
    conn.execute(
        "INSERT INTO auth_api_tokens (id, user_id, name, hash, created_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            issued.id,
            user_id,
            name,
            issued.hash.as_bytes().as_slice(),
            millis(now),
            expires.map(millis)
        ],
    )?;
    Ok(ApiToken {
        id: issued.id.clone(),
        user_id,
        name: name.to_owned(),
        hash: issued.hash,
        created: now,
        expires,
        last_used: None,
        revoked: false,
    })
}

const TOKEN_COLUMNS: &str =
    "id, user_id, name, hash, created_ms, expires_ms, last_used_ms, revoked";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let hash: Vec<u8> = row.get(3)?;
    Ok(ApiToken {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        hash: TokenHash::from_slice(&hash).ok_or(rusqlite::Error::InvalidColumnType(
            3,
            "hash".to_owned(),
            rusqlite::types::Type::Blob,
        ))?,
        created: from_millis(row.get(4)?),
        expires: row.get::<_, Option<i64>>(5)?.map(from_millis),
        last_used: row.get::<_, Option<i64>>(6)?.map(from_millis),
        revoked: row.get(7)?,
    })
}

/// A user's tokens, newest first, revoked ones included so the list shows what happened.
pub fn list_api_tokens(conn: &Connection, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM auth_api_tokens WHERE user_id = ?1 ORDER BY created_ms DESC, id"
    ))?;
    let tokens = stmt
        .query_map([user_id], token_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(tokens)
}

/// Revokes one of `owner`'s tokens. False when `owner` has no such token (or it was revoked
/// already), so nobody can revoke another user's token by guessing its id.
pub fn revoke_api_token(conn: &Connection, owner: i64, token_id: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE auth_api_tokens SET revoked = 1 WHERE id = ?1 AND user_id = ?2 AND revoked = 0",
        params![token_id, owner],
    )?;
    Ok(changed == 1)
}

/// Who presents `presented` as a bearer token at `now`. The outer error is the database's; the
/// inner one says why the token was refused. A token that is accepted has its last use
/// recorded.
pub fn authenticate_api_token(
    conn: &Connection,
    presented: &str,
    now: Timestamp,
) -> Result<Result<User, TokenRejection>, StoreError> {
    let Some(id) = api_token_id(presented) else {
        return Ok(Err(TokenRejection::Malformed));
    };
    let token = conn
        .query_row(
            &format!("SELECT {TOKEN_COLUMNS} FROM auth_api_tokens WHERE id = ?1"),
            [id],
            token_from_row,
        )
        .optional()?;
    let Some(token) = token else {
        return Ok(Err(TokenRejection::Wrong));
    };
    if let Err(rejection) = token.check(presented, now) {
        return Ok(Err(rejection));
    }
    let user = user_by_id(conn, token.user_id)?.ok_or(StoreError::UnknownUser(token.user_id))?;
    if user.disabled {
        return Ok(Err(TokenRejection::UserDisabled));
    }
    conn.execute(
        "UPDATE auth_api_tokens SET last_used_ms = ?2 WHERE id = ?1",
        params![token.id, millis(now)],
    )?;
    Ok(Ok(user))
}

/// Opens a session and returns its token for the cookie; only its hash is stored.
pub fn create_session(
    conn: &Connection,
    user_id: i64,
    now: Timestamp,
) -> Result<NewSession, StoreError> {
    let session = NewSession::generate();
    conn.execute(
        "INSERT INTO auth_sessions (hash, user_id, created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)",
        params![session.hash.as_bytes().as_slice(), user_id, millis(now)],
    )?;
    Ok(session)
}

/// The session a cookie's token opens at `now`, marking it used. Expired sessions and sessions
/// of disabled users open nothing, and expired ones are deleted on the way.
///
/// The lookup is by hash, with SQL equality: its timing can only reveal how much of a SHA-256
/// output matched, which tells an attacker nothing about a token that would produce it.
pub fn authenticate_session(
    conn: &Connection,
    token: &str,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<Option<ActiveSession>, StoreError> {
    let hash = TokenHash::of(token);
    let hash = hash.as_bytes().as_slice();
    let found = conn
        .query_row(
            "SELECT user_id, created_ms, last_seen_ms FROM auth_sessions WHERE hash = ?1",
            [hash],
            |row| Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((user_id, created, last_seen)) = found else {
        return Ok(None);
    };
    let (created, last_seen) = (from_millis(created), from_millis(last_seen));
    if !policy.is_active(created, last_seen, now) {
        conn.execute("DELETE FROM auth_sessions WHERE hash = ?1", [hash])?;
        return Ok(None);
    }
    let Some(user) = user_by_id(conn, user_id)?.filter(|user| !user.disabled) else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE auth_sessions SET last_seen_ms = ?2 WHERE hash = ?1",
        params![hash, millis(now)],
    )?;
    Ok(Some(ActiveSession { user, created }))
}

/// Logout.
pub fn end_session(conn: &Connection, token: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM auth_sessions WHERE hash = ?1",
        [TokenHash::of(token).as_bytes().as_slice()],
    )?;
    Ok(())
}

pub fn end_user_sessions(conn: &Connection, user_id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM auth_sessions WHERE user_id = ?1", [user_id])?;
    Ok(())
}

/// Deletes sessions that can no longer open anything; returns how many. Run it now and then so
/// abandoned sessions do not pile up.
pub fn purge_expired_sessions(
    conn: &Connection,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let ms = |d: SignedDuration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Ok(conn.execute(
        "DELETE FROM auth_sessions WHERE last_seen_ms <= ?1 - ?2 OR created_ms <= ?1 - ?3",
        params![millis(now), ms(policy.idle), ms(policy.absolute)],
    )?)
}

/// Longest `who` and `action` stored in the audit log, in bytes; longer ones are cut and end in
/// `…`. A name can come from anyone (a failed login), so the log stores a bounded amount per row.
pub const MAX_AUDIT_NAME_BYTES: usize = 2 * MAX_USERNAME_LEN;
/// Longest `target` stored.
pub const MAX_AUDIT_TARGET_BYTES: usize = 256;
/// Longest `detail` stored.
pub const MAX_AUDIT_DETAIL_BYTES: usize = 1024;

/// Appends to the audit log, each field cut to its bound.
pub fn append_audit(conn: &Connection, entry: &AuditEntry) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO auth_audit (at_ms, who, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            millis(entry.at),
            bounded(&entry.who, MAX_AUDIT_NAME_BYTES),
            bounded(&entry.action, MAX_AUDIT_NAME_BYTES),
            bounded(&entry.target, MAX_AUDIT_TARGET_BYTES),
            bounded(&entry.detail, MAX_AUDIT_DETAIL_BYTES),
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Up to `limit` entries, newest first, older than the entry `before` when given.
pub fn audit_page(
    conn: &Connection,
    limit: usize,
    before: Option<i64>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, at_ms, who, action, target, detail FROM auth_audit
         WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let records = stmt
        .query_map(params![before.unwrap_or(i64::MAX), limit], |row| {
            Ok(AuditRecord {
                id: row.get(0)?,
                entry: AuditEntry {
                    at: from_millis(row.get(1)?),
                    who: row.get(2)?,
                    action: row.get(3)?,
                    target: row.get(4)?,
                    detail: row.get(5)?,
                },
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

/// The newest entry about `target` whose action is one of `actions`, if any.
pub fn latest_audit_of(
    conn: &Connection,
    target: &str,
    actions: &[&str],
) -> Result<Option<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, who, action, target, detail FROM auth_audit
         WHERE target = ?1 ORDER BY id DESC",
    )?;
    let mut rows = stmt.query(params![target])?;
    while let Some(row) = rows.next()? {
        let action: String = row.get(2)?;
        if actions.contains(&action.as_str()) {
            return Ok(Some(AuditEntry {
                at: from_millis(row.get(0)?),
                who: row.get(1)?,
                action,
                target: row.get(3)?,
                detail: row.get(4)?,
            }));
        }
    }
    Ok(None)
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}
