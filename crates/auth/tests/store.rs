//! The auth tables on in-memory databases. Password hashes here are placeholders: the store
//! keeps them without looking inside, and real argon2 runs are tested in `password.rs`.

use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use swarmkeeper_auth::store::{self, AuditEntry, StoreError};
use swarmkeeper_auth::{NewApiToken, Role, SessionPolicy, TokenRejection};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$placeholder$placeholder";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn now() -> Timestamp {
    t("2026-11-26T12:00:00Z")
}

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    store::create_tables(&conn).unwrap();
    conn
}

#[test]
fn creating_the_tables_twice_is_harmless() {
    let conn = db();
    store::create_user(&conn, "admin", Role::Admin, HASH, now()).unwrap();
    store::create_tables(&conn).unwrap();
    assert!(store::any_users(&conn).unwrap());
}

#[test]
fn users_are_created_found_and_listed() {
    let conn = db();
    assert!(!store::any_users(&conn).unwrap());
    let admin = store::create_user(&conn, "admin", Role::Admin, HASH, now()).unwrap();
    store::create_user(&conn, "ci-bot", Role::Operator, HASH, now()).unwrap();
    assert_eq!(
        store::user_by_name(&conn, "admin").unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store::user_by_id(&conn, admin.id).unwrap(), Some(admin));
    assert_eq!(store::user_by_name(&conn, "nobody").unwrap(), None);
    let names: Vec<String> = store::list_users(&conn)
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["admin", "ci-bot"]);
}

#[test]
fn duplicate_and_malformed_usernames_are_refused() {
    let conn = db();
    store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let err = store::create_user(&conn, "alice", Role::Admin, HASH, now()).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateUser(ref name) if name == "alice"));
    assert_eq!(err.to_string(), "a user named \"alice\" already exists");
    for bad in ["", "Alice", "-alice", "al ice", "alicé", &"a".repeat(65)] {
        assert!(
            matches!(
                store::create_user(&conn, bad, Role::Viewer, HASH, now()),
                Err(StoreError::InvalidUsername(_))
            ),
            "{bad:?}"
        );
    }
    assert!(store::validate_username("a.b_c-9").is_ok());
}

#[test]
fn the_debug_form_of_a_user_leaves_the_hash_out() {
    let conn = db();
    let user = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let printed = format!("{user:?}");
    assert!(
        printed.contains("alice") && !printed.contains("argon2"),
        "{printed}"
    );
}

#[test]
fn the_last_enabled_admin_can_be_neither_demoted_nor_disabled() {
    let conn = db();
    let first = store::create_user(&conn, "first", Role::Admin, HASH, now()).unwrap();
    assert!(matches!(
        store::set_user_role(&conn, first.id, Role::Operator),
        Err(StoreError::LastAdmin)
    ));
    assert!(matches!(
        store::set_user_disabled(&conn, first.id, true),
        Err(StoreError::LastAdmin)
    ));
    let second = store::create_user(&conn, "second", Role::Admin, HASH, now()).unwrap();
    store::set_user_disabled(&conn, second.id, true).unwrap();
    assert!(matches!(
        store::set_user_role(&conn, first.id, Role::Viewer),
        Err(StoreError::LastAdmin)
    ));
    store::set_user_disabled(&conn, second.id, false).unwrap();
    store::set_user_role(&conn, first.id, Role::Viewer).unwrap();
    assert_eq!(
        store::user_by_id(&conn, first.id).unwrap().unwrap().role,
        Role::Viewer
    );
    assert!(matches!(
        store::set_user_role(&conn, 999, Role::Admin),
        Err(StoreError::UnknownUser(999))
    ));
}

#[test]
fn an_api_token_authenticates_its_user_until_revoked() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Operator, HASH, now()).unwrap();
    let issued = NewApiToken::generate();
    store::insert_api_token(&conn, alice.id, "ci", &issued, None, now()).unwrap();

    let later = now() + SignedDuration::from_hours(1);
    let user = store::authenticate_api_token(&conn, &issued.token, later).unwrap();
    assert_eq!(user.map(|u| u.name), Ok("alice".to_owned()));
    let listed = store::list_api_tokens(&conn, alice.id).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used, Some(later));
    assert_eq!(listed[0].name, "ci");

    // Right id, wrong secret; unknown id; not a token at all.
    let (head, last) = issued.token.split_at(issued.token.len() - 1);
    let forged = format!("{head}{}", if last == "0" { "1" } else { "0" });
    assert_eq!(
        store::authenticate_api_token(&conn, &forged, later).unwrap(),
        Err(TokenRejection::Wrong)
    );
    let stranger = NewApiToken::generate();
    assert_eq!(
        store::authenticate_api_token(&conn, &stranger.token, later).unwrap(),
        Err(TokenRejection::Wrong)
    );
    assert_eq!(
        store::authenticate_api_token(&conn, "password", later).unwrap(),
        Err(TokenRejection::Malformed)
    );

    let bob = store::create_user(&conn, "bob", Role::Admin, HASH, now()).unwrap();
    assert!(
        !store::revoke_api_token(&conn, bob.id, &issued.id).unwrap(),
        "not bob's"
    );
    assert!(store::revoke_api_token(&conn, alice.id, &issued.id).unwrap());
    assert!(
        !store::revoke_api_token(&conn, alice.id, &issued.id).unwrap(),
        "already"
    );
    assert_eq!(
        store::authenticate_api_token(&conn, &issued.token, later).unwrap(),
        Err(TokenRejection::Revoked)
    );
    assert!(store::list_api_tokens(&conn, alice.id).unwrap()[0].revoked);
}

#[test]
fn an_api_token_expires_and_is_refused_for_a_disabled_user() {
    let conn = db();
    store::create_user(&conn, "admin", Role::Admin, HASH, now()).unwrap();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let issued = NewApiToken::generate();
    let expires = now() + SignedDuration::from_hours(24);
    store::insert_api_token(&conn, alice.id, "ci", &issued, Some(expires), now()).unwrap();
    assert!(store::authenticate_api_token(&conn, &issued.token, now())
        .unwrap()
        .is_ok());
    assert_eq!(
        store::authenticate_api_token(&conn, &issued.token, expires).unwrap(),
        Err(TokenRejection::Expired)
    );
    store::set_user_disabled(&conn, alice.id, true).unwrap();
    assert_eq!(
        store::authenticate_api_token(&conn, &issued.token, now()).unwrap(),
        Err(TokenRejection::UserDisabled)
    );
}

#[test]
fn tokens_are_stored_only_as_hashes() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let issued = NewApiToken::generate();
    store::insert_api_token(&conn, alice.id, "ci", &issued, None, now()).unwrap();
    let session = store::create_session(&conn, alice.id, now()).unwrap();
    let dump: String = conn
        .query_row(
            "SELECT group_concat(quote(hash) || id) FROM auth_api_tokens",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let secret = issued.token.rsplit('_').next().unwrap();
    assert!(!dump.contains(secret));
    let stored: Vec<u8> = conn
        .query_row("SELECT hash FROM auth_sessions", [], |row| row.get(0))
        .unwrap();
    assert_ne!(stored, session.token.as_bytes());
    assert_eq!(stored.len(), 32);
}

#[test]
fn a_session_lives_while_used_and_ends_at_idle_absolute_logout_or_password_change() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let policy = SessionPolicy::default();
    let session = store::create_session(&conn, alice.id, now()).unwrap();

    // Used every 50 minutes it survives idle expiry, until the 12-hour absolute limit.
    let mut at = now();
    for _ in 0..14 {
        at += SignedDuration::from_mins(50);
        let active = store::authenticate_session(&conn, &session.token, &policy, at).unwrap();
        assert_eq!(
            active.map(|s| (s.user.name, s.created)),
            Some(("alice".to_owned(), now()))
        );
    }
    at = now() + SignedDuration::from_hours(12);
    assert_eq!(
        store::authenticate_session(&conn, &session.token, &policy, at).unwrap(),
        None
    );

    // Idle: one hour without a request.
    let idle = store::create_session(&conn, alice.id, now()).unwrap();
    let after_idle = now() + SignedDuration::from_hours(1);
    assert_eq!(
        store::authenticate_session(&conn, &idle.token, &policy, after_idle).unwrap(),
        None
    );

    let logout = store::create_session(&conn, alice.id, now()).unwrap();
    store::end_session(&conn, &logout.token).unwrap();
    assert_eq!(
        store::authenticate_session(&conn, &logout.token, &policy, now()).unwrap(),
        None
    );

    let other_browser = store::create_session(&conn, alice.id, now()).unwrap();
    store::set_password_hash(&conn, alice.id, "$argon2id$new").unwrap();
    assert_eq!(
        store::authenticate_session(&conn, &other_browser.token, &policy, now()).unwrap(),
        None
    );
    assert_eq!(
        store::user_by_id(&conn, alice.id)
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    assert_eq!(
        store::authenticate_session(&conn, "sks_forged", &policy, now()).unwrap(),
        None
    );
}

#[test]
fn disabling_a_user_ends_their_sessions() {
    let conn = db();
    store::create_user(&conn, "admin", Role::Admin, HASH, now()).unwrap();
    let alice = store::create_user(&conn, "alice", Role::Operator, HASH, now()).unwrap();
    let policy = SessionPolicy::default();
    let session = store::create_session(&conn, alice.id, now()).unwrap();
    store::set_user_disabled(&conn, alice.id, true).unwrap();
    assert_eq!(
        store::authenticate_session(&conn, &session.token, &policy, now()).unwrap(),
        None
    );
    store::set_user_disabled(&conn, alice.id, false).unwrap();
    assert_eq!(
        store::authenticate_session(&conn, &session.token, &policy, now()).unwrap(),
        None
    );
}

#[test]
fn purging_removes_exactly_the_sessions_that_can_no_longer_open() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let policy = SessionPolicy::default();
    let old = store::create_session(&conn, alice.id, now()).unwrap();
    let fresh_at = now() + SignedDuration::from_mins(30);
    let fresh = store::create_session(&conn, alice.id, fresh_at).unwrap();
    let purge_at = now() + SignedDuration::from_hours(1);
    assert_eq!(
        store::purge_expired_sessions(&conn, &policy, purge_at).unwrap(),
        1
    );
    assert_eq!(
        store::authenticate_session(&conn, &old.token, &policy, purge_at).unwrap(),
        None
    );
    assert!(
        store::authenticate_session(&conn, &fresh.token, &policy, purge_at)
            .unwrap()
            .is_some()
    );
}

fn entry(minute: i64, action: &str) -> AuditEntry {
    AuditEntry {
        at: now() + SignedDuration::from_mins(minute),
        who: "alice".into(),
        action: action.into(),
        target: "stack/web".into(),
        detail: format!("minute {minute}"),
    }
}

#[test]
fn the_audit_log_pages_newest_first() {
    let conn = db();
    let ids: Vec<i64> = (0..5)
        .map(|minute| store::append_audit(&conn, &entry(minute, "deploy")).unwrap())
        .collect();
    let first = store::audit_page(&conn, 2, None).unwrap();
    assert_eq!(
        first.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    assert_eq!(first[0].entry, entry(4, "deploy"));
    let next = store::audit_page(&conn, 10, Some(first[1].id)).unwrap();
    assert_eq!(
        next.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
}

#[test]
fn the_audit_log_refuses_updates_and_deletes_in_the_database() {
    let conn = db();
    store::append_audit(&conn, &entry(0, "rollback")).unwrap();
    let update = conn.execute("UPDATE auth_audit SET who = 'mallory'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM auth_audit", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(
        store::audit_page(&conn, 10, None).unwrap()[0].entry.who,
        "alice"
    );
}

#[test]
fn a_password_change_revokes_the_users_api_tokens_and_forgets_their_browsers() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Operator, HASH, now()).unwrap();
    let bob = store::create_user(&conn, "bob", Role::Operator, HASH, now()).unwrap();
    let issue = |user: i64| {
        let issued = NewApiToken::generate();
        store::insert_api_token(&conn, user, "ci", &issued, None, now()).unwrap();
        issued.token
    };
    let (alices, bobs) = (issue(alice.id), issue(bob.id));
    let device = store::remember_device(&conn, alice.id, None, now()).unwrap();
    store::set_password_hash(&conn, alice.id, "$argon2id$new").unwrap();
    assert!(matches!(
        store::authenticate_api_token(&conn, &alices, now()).unwrap(),
        Err(TokenRejection::Revoked)
    ));
    assert!(store::authenticate_api_token(&conn, &bobs, now())
        .unwrap()
        .is_ok());
    assert_eq!(
        store::device_for_login(&conn, &device, "alice", now()).unwrap(),
        None
    );
}

#[test]
fn a_device_counts_for_its_own_user_while_it_is_recent() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    store::create_user(&conn, "bob", Role::Viewer, HASH, now()).unwrap();
    let token = store::remember_device(&conn, alice.id, None, now()).unwrap();
    assert!(token.starts_with("skd_"));
    let id = store::device_for_login(&conn, &token, "alice", now())
        .unwrap()
        .expect("a known device");
    assert_eq!(id.len(), 16);
    assert_eq!(
        store::device_for_login(&conn, &token, "bob", now()).unwrap(),
        None
    );
    assert_eq!(
        store::device_for_login(&conn, "skd_forged", "alice", now()).unwrap(),
        None
    );
    // Logging in again from the same browser keeps its token and renews it.
    let later = now() + SignedDuration::from_hours(80 * 24);
    assert_eq!(
        store::remember_device(&conn, alice.id, Some(&token), later).unwrap(),
        token
    );
    let much_later = later + SignedDuration::from_hours(89 * 24);
    assert!(store::device_for_login(&conn, &token, "alice", much_later)
        .unwrap()
        .is_some());
    let expired = much_later + SignedDuration::from_hours(2 * 24);
    assert_eq!(
        store::device_for_login(&conn, &token, "alice", expired).unwrap(),
        None
    );
    // Another user's token is not taken over: a new one is issued.
    let bob = store::user_by_name(&conn, "bob").unwrap().unwrap();
    assert_ne!(
        store::remember_device(&conn, bob.id, Some(&token), later).unwrap(),
        token
    );
}

#[test]
fn each_user_keeps_a_bounded_number_of_devices() {
    let conn = db();
    let alice = store::create_user(&conn, "alice", Role::Viewer, HASH, now()).unwrap();
    let tokens: Vec<String> = (0..30)
        .map(|minute| {
            let at = now() + SignedDuration::from_mins(minute);
            store::remember_device(&conn, alice.id, None, at).unwrap()
        })
        .collect();
    let at = now() + SignedDuration::from_hours(1);
    let known = tokens
        .iter()
        .filter(|t| {
            store::device_for_login(&conn, t, "alice", at)
                .unwrap()
                .is_some()
        })
        .count();
    assert_eq!(known, store::MAX_DEVICES_PER_USER);
    assert!(store::device_for_login(&conn, &tokens[29], "alice", at)
        .unwrap()
        .is_some());
}

#[test]
fn audit_fields_are_stored_bounded() {
    let conn = db();
    let huge = "é".repeat(1_000_000);
    store::append_audit(
        &conn,
        &AuditEntry {
            at: now(),
            who: huge.clone(),
            action: "login-failed".into(),
            target: huge.clone(),
            detail: huge,
        },
    )
    .unwrap();
    let page = store::audit_page(&conn, 10, None).unwrap();
    let entry = &page[0].entry;
    assert!(
        entry.who.len() <= store::MAX_AUDIT_NAME_BYTES,
        "{}",
        entry.who.len()
    );
    assert!(entry.who.ends_with("é…"));
    assert!(entry.target.len() <= store::MAX_AUDIT_TARGET_BYTES);
    assert!(entry.detail.len() <= store::MAX_AUDIT_DETAIL_BYTES);
    assert_eq!(store::bounded("short", 10), "short");
    assert_eq!(store::bounded("abcdef", 5), "ab…");
}
