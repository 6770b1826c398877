//! Settings whose secrets are sealed, as the admin pages add and remove them: the registries
//! (`/registries`) and the alert channels (`/alerts`). One path for both:
//!
//! - a change is written to the store and what the server holds in memory (the keychain, the
//!   opened channels) is rebuilt from the store under the same hold of it, so two changes at
//!   once never leave memory behind the store;
//! - a name that is taken is a conflict naming the form field; an id that is not there, 404;
//! - the audit log records who added or removed which one by its name, never a secret.
//!
//! And the re-key of the server's sealing key (`swarmkeeper_secret_key`): every sealed value
//! is opened with the current key and sealed with the new one, staged beside the current
//! sealing in one transaction ([`stage_rekey`]); a server that starts opens each value with
//! whichever sealing its key opens and promotes the staged ones it opened ([`adopt`]), so
//! a re-key cut short at any point leaves every value open to the key the server runs with.
//! While a re-key waits for the server to restart on the new key, nothing new is sealed (an
//! add is refused): it would be sealed with the old key only.

use std::sync::atomic::Ordering;

use swarmkeeper_auth::{Action, AuditStep, SealingKey};
use swarmkeeper_store::{
    SealedTable, SealedValue, Store, StoreError, StoredChannel, StoredRegistry,
};

use crate::access::Caller;
use crate::error::AppError;
use crate::state::AppState;

/// One kind of sealed settings: how the store keeps it, what in memory follows the store and
/// how messages and the audit log name it.
pub trait SealedKind {
    /// One as stored: the name in the clear, the secrets sealed.
    type Stored;
    /// The name of the form field that names one (`host`, `name`).
    const FIELD: &'static str;
    /// What one is called in messages (`registry`, `alert channel`).
    const NOUN: &'static str;
    /// The audit log's action.
    const ACTION: Action;
    /// Its name: unique among its kind.
    fn name(stored: &Self::Stored) -> &str;
    /// The audit log's target for the one named `name`.
    fn target(name: &str) -> String;
    /// What the audit log adds to "added": never a secret.
    fn added_detail(stored: &Self::Stored) -> String;
    /// Stores it; `None` when the name is taken.
    fn insert(store: &Store, stored: &Self::Stored) -> Result<Option<i64>, StoreError>;
    /// Removes it; its name, `None` when there is none with this id.
    fn delete(store: &Store, id: i64) -> Result<Option<String>, StoreError>;
    /// Rebuilds what the server holds in memory from the store.
    fn reload(state: &AppState, store: &Store) -> Result<(), StoreError>;
}

/// Stores `stored`, reloads, writes the audit log; the new id.
pub fn add<K: SealedKind>(
    state: &AppState,
    caller: &Caller,
    stored: &K::Stored,
) -> Result<i64, AppError> {
    let name = K::name(stored);
    let id = {
        let store = state.store();
        if state.rekeying.load(Ordering::SeqCst) {
            return Err(AppError::Conflict(format!(
                "the server's secret key is being re-keyed: it restarts on the new key in a \
                 moment; add the {} then",
                K::NOUN
            )));
        }
        let Some(id) = K::insert(&store, stored).map_err(AppError::internal)? else {
            return Err(AppError::Conflict(format!(
                "{field}: {name} is taken here: remove the {noun} of that {field} first to \
                 change it",
                field = K::FIELD,
                noun = K::NOUN
            )));
        };
        K::reload(state, &store).map_err(AppError::internal)?;
        id
    };
    state.audit(
        &caller.user.name,
        K::ACTION.as_str(),
        &K::target(name),
        &format!("added ({})", K::added_detail(stored)),
    )?;
    Ok(id)
}

/// Removes the one with `id`, reloads, writes the audit log.
pub fn remove<K: SealedKind>(state: &AppState, caller: &Caller, id: i64) -> Result<(), AppError> {
    let removed = {
        let store = state.store();
        let removed = K::delete(&store, id).map_err(AppError::internal)?;
        K::reload(state, &store).map_err(AppError::internal)?;
        removed
    };
    let Some(name) = removed else {
        return Err(AppError::NotFound(format!("no {} with id {id}", K::NOUN)));
    };
    state.audit(
        &caller.user.name,
        K::ACTION.as_str(),
        &K::target(&name),
        "removed",
    )
}

/// The Registries page's registries: named by their host.
pub struct Registry;

impl SealedKind for Registry {
    type Stored = StoredRegistry;
    const FIELD: &'static str = "host";
    const NOUN: &'static str = "registry";
    const ACTION: Action = Action::ManageRegistries;

    fn name(stored: &StoredRegistry) -> &str {
        &stored.host
    }

    fn target(name: &str) -> String {
        name.to_string()
    }

    fn added_detail(stored: &StoredRegistry) -> String {
        stored.kind.clone()
    }

    fn insert(store: &Store, stored: &StoredRegistry) -> Result<Option<i64>, StoreError> {
        store.add_registry(stored)
    }

    fn delete(store: &Store, id: i64) -> Result<Option<String>, StoreError> {
        Ok(store.remove_registry(id)?.map(|r| r.host))
    }

    fn reload(state: &AppState, store: &Store) -> Result<(), StoreError> {
        state.registries.reload(&store.registries()?);
        Ok(())
    }
}

/// The Alerts page's channels: named by their name.
pub struct AlertChannel;

impl SealedKind for AlertChannel {
    type Stored = StoredChannel;
    const FIELD: &'static str = "name";
    const NOUN: &'static str = "alert channel";
    const ACTION: Action = Action::ManageSettings;

    fn name(stored: &StoredChannel) -> &str {
        &stored.name
    }

    fn target(name: &str) -> String {
        format!("alert channel {name}")
    }

    fn added_detail(stored: &StoredChannel) -> String {
        stored.describe.clone()
    }

    fn insert(store: &Store, stored: &StoredChannel) -> Result<Option<i64>, StoreError> {
        store.add_alert_channel(stored)
    }

    fn delete(store: &Store, id: i64) -> Result<Option<String>, StoreError> {
        store.remove_alert_channel(id)
    }

    fn reload(state: &AppState, store: &Store) -> Result<(), StoreError> {
        state.alerting.reload_channels(&store.alert_channels()?);
        Ok(())
    }
}

/// The associated data a value of `table` named `name` is sealed for.
pub fn purpose(table: SealedTable, name: &str) -> String {
    match table {
        SealedTable::Registry => crate::registries::purpose(name),
        SealedTable::AlertChannel => crate::alerting::channel_purpose(name),
    }
}

/// Which sealing of a stored value a key opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opens {
    /// The one it was stored (or last promoted) with.
    Sealed,
    /// Only the one a re-key staged: the key is the re-key's new one.
    Staged,
    Neither,
}

/// Which of `value`'s sealings `key` opens (the stored one first), and what it holds.
fn open_either(key: &SealingKey, value: &SealedValue) -> (Opens, Option<Vec<u8>>) {
    let purpose = purpose(value.table, &value.name);
    if let Ok(open) = key.open(&purpose, &value.sealed) {
        return (Opens::Sealed, Some(open));
    }
    match value
        .staged
        .as_deref()
        .map(|staged| key.open(&purpose, staged))
    {
        Some(Ok(open)) => (Opens::Staged, Some(open)),
        _ => (Opens::Neither, None),
    }
}

/// Which sealing of `value` `key` opens.
pub fn opens(key: &SealingKey, value: &SealedValue) -> Opens {
    open_either(key, value).0
}

/// What a server starting with a key does to the stored values: promote those only their
/// staged sealing opens, and name those it opens in neither (they show as unusable).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adoption {
    pub promote: Vec<(SealedTable, i64)>,
    /// Each as the page names it: `registry ghcr.io`, `alert channel hook`.
    pub unopenable: Vec<String>,
}

/// How a value is named in messages: its kind and name, never a secret.
fn named(value: &SealedValue) -> String {
    match value.table {
        SealedTable::Registry => format!("registry {}", value.name),
        SealedTable::AlertChannel => format!("alert channel {}", value.name),
    }
}

/// What a server starting with `key` does to `values` (pure).
pub fn adoption(key: &SealingKey, values: &[SealedValue]) -> Adoption {
    let mut adoption = Adoption::default();
    for value in values {
        match opens(key, value) {
            Opens::Sealed => {}
            Opens::Staged => adoption.promote.push((value.table, value.id)),
            Opens::Neither => adoption.unopenable.push(named(value)),
        }
    }
    adoption
}

/// A value sealed for a re-key's new key: its table, its id, the sealed bytes.
pub type Staged = (SealedTable, i64, Vec<u8>);

/// Every value of `values` opened with `current` (either sealing) and sealed with `new` for
/// the same purpose; or, when `current` cannot open some, their names: a re-key would lose
/// them (pure, but for the random nonces).
pub fn reseal(
    current: &SealingKey,
    new: &SealingKey,
    values: &[SealedValue],
) -> Result<Vec<Staged>, Vec<String>> {
    let mut staged = Vec::with_capacity(values.len());
    let mut lost = Vec::new();
    for value in values {
        match open_either(current, value) {
            (_, Some(open)) => staged.push((
                value.table,
                value.id,
                new.seal(&purpose(value.table, &value.name), &open),
            )),
            (_, None) => lost.push(named(value)),
        }
    }
    if lost.is_empty() {
        Ok(staged)
    } else {
        Err(lost)
    }
}

/// At start, before the keychain and the channels are loaded: promotes the values a re-key
/// staged for `key` (the server now runs with the re-key's new key), in one transaction, and
/// returns how many; the values `key` opens in neither sealing are logged by name.
pub fn adopt(store: &mut Store, key: Option<&SealingKey>) -> Result<usize, StoreError> {
    let Some(key) = key else { return Ok(0) };
    let adoption = adoption(key, &store.sealed_values()?);
    if !adoption.unopenable.is_empty() {
        tracing::error!(
            values = %adoption.unopenable.join(", "),
            "sealed settings this server's secret key cannot open"
        );
    }
    store.promote_staged(&adoption.promote)?;
    Ok(adoption.promote.len())
}

/// Stages every sealed value for `new` under one hold of the store and marks a re-key as
/// under way (adds are refused until the server restarts or [`abandon_rekey`]); how many.
/// A conflict when the server has no key, a re-key is under way, or a value cannot be opened
/// (named: remove it or add it again first).
pub fn stage_rekey(state: &AppState, new: &SealingKey) -> Result<usize, AppError> {
    let current = state.config.secret_key.as_ref().ok_or_else(|| {
        AppError::Conflict(
            "the server runs without a secret key, so nothing is sealed with it: rotate the \
             secret and give the server --secret-key-file"
                .to_owned(),
        )
    })?;
    let mut store = state.store();
    if state.rekeying.load(Ordering::SeqCst) {
        return Err(AppError::Conflict(
            "a re-key is already under way: the server restarts on its new key".to_owned(),
        ));
    }
    let values = store.sealed_values().map_err(AppError::internal)?;
    let staged = reseal(current, new, &values).map_err(|lost| {
        AppError::Conflict(format!(
            "the server's key cannot open {}: a re-key would lose them; remove them (or add \
             them again) first",
            lost.join(", ")
        ))
    })?;
    store.stage_sealed(&staged).map_err(AppError::internal)?;
    state.rekeying.store(true, Ordering::SeqCst);
    Ok(staged.len())
}

/// Whether a re-key's move is known to have left the server on the old key, so that what was
/// staged may be forgotten: the engine listed services still on the old version (`on_old`)
/// and none on the new one (`on_new`), and this server is not stopping. An empty listing (it
/// failed) or a stopping server (Swarm is moving it to the new key) keeps what was staged:
/// forgetting it then would leave the values sealed with the old key only.
pub fn rekey_given_up(on_new: &[String], on_old: &[String], stopping: bool) -> bool {
    !stopping && on_new.is_empty() && !on_old.is_empty()
}

/// Gives a staged re-key up (its new secret could not be created, or the server was not
/// moved): the staged values are forgotten, and so is how its job would end after a restart
/// ([`rekey_ends_at_restart`]); adds are taken again.
pub fn abandon_rekey(state: &AppState) -> Result<(), AppError> {
    state.store().clear_staged().map_err(AppError::internal)?;
    crate::jobs::ledger::forget_restart_decisions(&state.auth()).map_err(AppError::internal)?;
    state.rekeying.store(false, Ordering::SeqCst);
    Ok(())
}

/// The purpose a re-key's proof is sealed for ([`rekey_ends_at_restart`]).
const REKEY_PROOF: &str = "re-key job";

/// Records that re-key job `job`, sealed with the re-key's `new` key, ends as `then` once a
/// server starts on `new` ([`settle_rekeys`]). The re-key moves this server, whose restart
/// stops the job following the move (it ends `interrupted`, or is lost with a SIGKILL): only
/// the next start knows it went as planned. Tryout 11 finding 6: a re-key that worked read
/// "failed" on its page.
pub fn rekey_ends_at_restart(
    state: &AppState,
    job: &str,
    new: &SealingKey,
    then: &crate::jobs::JobEnd,
) -> Result<(), AppError> {
    let proof = new.seal(REKEY_PROOF, job.as_bytes());
    crate::jobs::ledger::decided_at_restart(&state.auth(), job, &proof, then)
        .map_err(AppError::internal)
}

/// A re-key job [`settle_rekeys`] found in effect at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledRekey {
    /// The job's id.
    pub job: String,
    /// The secret re-keyed (its old version's name).
    pub secret: String,
    /// The histories (stacks, or services outside one) whose revisions moved the server.
    pub histories: Vec<String>,
    /// Who started it.
    pub user: String,
}

/// At start: ends each re-key job whose proof `key` opens as [`rekey_ends_at_restart`]
/// recorded — this server runs on that re-key's new key, so its move took effect. A proof
/// `key` does not open is kept: a server on the old key (Swarm rolled the move back) leaves
/// the job's own end standing. Each job ended is also audited (`rekey-secret`, by the admin
/// who started it). Returns the jobs ended; [`settle_rekey_revisions`] then settles their
/// revisions.
pub fn settle_rekeys(
    conn: &rusqlite::Connection,
    key: Option<&SealingKey>,
) -> Result<Vec<SettledRekey>, swarmkeeper_auth::store::StoreError> {
    let Some(key) = key else {
        return Ok(Vec::new());
    };
    let mut settled = Vec::new();
    for (job, proof, end) in crate::jobs::ledger::restart_decisions(conn)? {
        if key
            .open(REKEY_PROOF, &proof)
            .is_ok_and(|open| open == job.as_bytes())
        {
            crate::jobs::ledger::decide(conn, &job, &end)?;
            let mut rekey = SettledRekey {
                job,
                secret: String::new(),
                histories: Vec::new(),
                user: String::new(),
            };
            // The audit log (and the overview's events) learn it too: they last heard the
            // move "cut off".
            if let Some(recorded) = crate::jobs::ledger::recorded(conn, &rekey.job)? {
                rekey.secret = recorded
                    .about
                    .first()
                    .and_then(|link| link.text.strip_prefix("secret "))
                    .unwrap_or_default()
                    .to_owned();
                rekey.histories = recorded
                    .about
                    .iter()
                    .filter_map(crate::routes::objects::linked_history)
                    .map(str::to_owned)
                    .collect();
                rekey.user = recorded.user.clone();
                let entry = swarmkeeper_auth::store::AuditEntry {
                    at: jiff::Timestamp::now(),
                    who: recorded.user,
                    action: AuditStep::RekeySecret.as_str().to_owned(),
                    target: rekey.secret.clone(),
                    detail: end.outcome.clone(),
                };
                swarmkeeper_auth::store::append_audit(conn, &entry)?;
            }
            settled.push(rekey);
        }
    }
    Ok(settled)
}

/// What a re-key's revision reads once settled ([`settle_rekey_revisions`]).
pub const REKEY_SETTLED: &str = "the server started on the new key: Swarm completed this \
     move, and the server's own restart, which the move makes, stopped the deploy following it";

/// Before serving: settles, in the swarm's history, the revision of each re-key
/// [`settle_rekeys`] found in effect — the newest revision of each moved history that re-keyed
/// that secret and reads `interrupted` or `running` — as `succeeded`
/// ([`swarmkeeper_deploy::Settlement`]), so that the stack's history says what the job page
/// says (tryout 13 finding 4). A history that cannot be read or written is a warning: the job
/// and the audit log say it already. Then, in the background, retires each re-key's old key
/// (`routes::objects::retire_old_key`).
pub async fn settle_rekey_revisions(state: &AppState) {
    use swarmkeeper_deploy::History;
    use swarmkeeper_store::DeployOutcome;
    let settled = std::mem::take(
        &mut *state
            .settled_rekeys
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let history = state.history();
    // A job whose record is gone names no secret: nothing to retire or settle.
    for rekey in settled.into_iter().filter(|r| !r.secret.is_empty()) {
        tokio::spawn(crate::routes::objects::retire_old_key(
            state.clone(),
            rekey.secret.clone(),
            rekey.user.clone(),
        ));
        let action = crate::routes::objects::rekey_action_prefix(&rekey.secret);
        for stack in &rekey.histories {
            let revisions = match history.revisions(stack).await {
                Ok(revisions) => revisions,
                Err(e) => {
                    tracing::warn!(%stack, error = %e, "cannot read the history to settle a re-key");
                    continue;
                }
            };
            let Some(cut_off) = revisions
                .iter()
                .find(|r| r.action.as_deref().is_some_and(|a| a.starts_with(&action)))
            else {
                continue;
            };
            if !matches!(
                cut_off.outcome,
                DeployOutcome::Interrupted | DeployOutcome::Running
            ) {
                continue;
            }
            let settlement = swarmkeeper_deploy::Settlement {
                outcome: &DeployOutcome::Succeeded,
                note: REKEY_SETTLED,
                at: jiff::Timestamp::now(),
            };
            match history.settle(stack, cut_off.revision, &settlement).await {
                Ok(()) => tracing::info!(
                    %stack,
                    revision = cut_off.revision,
                    job = %rekey.job,
                    "the re-key's revision is settled as succeeded"
                ),
                Err(e) => tracing::warn!(%stack, error = %e, "cannot settle a re-key's revision"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SealingKey {
        SealingKey::from_secret(text.as_bytes()).unwrap()
    }

    fn value(table: SealedTable, id: i64, name: &str, k: &SealingKey, plain: &[u8]) -> SealedValue {
        SealedValue {
            table,
            id,
            name: name.to_owned(),
            sealed: k.seal(&purpose(table, name), plain),
            staged: None,
        }
    }

    const OLD: &str = "the old key: thirty-two bytes or more, surely";
    const NEW: &str = "the new key: thirty-two bytes or more, surely";

    #[test]
    fn a_reseal_opens_each_value_with_the_old_key_and_seals_it_for_the_new_one() {
        let (old, new) = (key(OLD), key(NEW));
        let values = vec![
            value(
                SealedTable::Registry,
                1,
                "ghcr.io",
                &old,
                b"{\"password\":\"p\"}",
            ),
            value(
                SealedTable::AlertChannel,
                7,
                "hook",
                &old,
                b"{\"url\":\"u\"}",
            ),
        ];
        let staged = reseal(&old, &new, &values).unwrap();
        assert_eq!(staged.len(), 2);
        for ((table, id, sealed), v) in staged.iter().zip(&values) {
            assert_eq!((*table, *id), (v.table, v.id));
            let purpose = purpose(v.table, &v.name);
            assert_eq!(
                new.open(&purpose, sealed).unwrap(),
                old.open(&purpose, &v.sealed).unwrap()
            );
            assert!(
                old.open(&purpose, sealed).is_err(),
                "sealed for the new key only"
            );
        }
    }

    #[test]
    fn a_value_the_current_key_cannot_open_stops_the_reseal_and_is_named() {
        let (old, new, other) = (
            key(OLD),
            key(NEW),
            key("yet another key of thirty-two bytes"),
        );
        let values = vec![
            value(SealedTable::Registry, 1, "ghcr.io", &old, b"x"),
            value(SealedTable::AlertChannel, 2, "hook", &other, b"y"),
        ];
        assert_eq!(
            reseal(&old, &new, &values),
            Err(vec!["alert channel hook".to_owned()])
        );
    }

    #[test]
    fn a_start_on_either_key_opens_every_value_of_an_interrupted_rekey() {
        let (old, new) = (key(OLD), key(NEW));
        let mut values = vec![
            value(SealedTable::Registry, 1, "ghcr.io", &old, b"x"),
            value(SealedTable::AlertChannel, 2, "hook", &old, b"y"),
        ];
        for ((_, _, staged), v) in reseal(&old, &new, &values)
            .unwrap()
            .into_iter()
            .zip(&mut values)
        {
            v.staged = Some(staged);
        }
        // Swarm rolled the server back to the old key: nothing to do, all open.
        assert_eq!(adoption(&old, &values), Adoption::default());
        // The server restarted on the new key: both staged sealings are promoted.
        assert_eq!(
            adoption(&new, &values),
            Adoption {
                promote: vec![(SealedTable::Registry, 1), (SealedTable::AlertChannel, 2)],
                unopenable: Vec::new(),
            }
        );
        // A third key opens neither: named, never promoted.
        let third = key("a third key, thirty-two bytes or more");
        assert_eq!(
            adoption(&third, &values).unopenable,
            ["registry ghcr.io", "alert channel hook"]
        );
        // A re-key again before the restart reseals from whichever sealing opens.
        assert_eq!(opens(&new, &values[0]), Opens::Staged);
        assert!(reseal(&new, &third, &values).is_ok());
    }

    #[test]
    fn a_rekey_is_given_up_only_when_the_server_is_known_to_stay_on_the_old_key() {
        let server = vec!["swarmkeeper_server".to_owned()];
        assert!(rekey_given_up(&[], &server, false), "rolled back");
        assert!(!rekey_given_up(&server, &[], false), "moved");
        assert!(!rekey_given_up(&[], &[], false), "the listing failed");
        assert!(
            !rekey_given_up(&[], &server, true),
            "stopping: Swarm moves it"
        );
    }

    #[test]
    fn the_seal_of_a_value_is_bound_to_its_kind_and_name() {
        let k = key(OLD);
        let v = value(SealedTable::Registry, 1, "hook", &k, b"x");
        let moved = SealedValue {
            table: SealedTable::AlertChannel,
            ..v.clone()
        };
        assert_eq!(opens(&k, &v), Opens::Sealed);
        assert_eq!(opens(&k, &moved), Opens::Neither);
    }

    #[test]
    fn a_rekey_job_cut_off_by_the_restart_is_ended_by_a_start_on_the_new_key_only() {
        use crate::jobs::{ledger, JobEnd, Jobs};
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        ledger::create(&conn).unwrap();
        swarmkeeper_auth::store::create_tables(&conn).unwrap();
        let (old, new) = (
            key(OLD),
            key("the new key: fedcba9876543210fedcba9876543210"),
        );
        let jobs = Jobs::default();
        let end = |succeeded: bool, outcome: &str| JobEnd {
            succeeded,
            outcome: outcome.to_owned(),
            links: Vec::new(),
            notes: Vec::new(),
        };
        let planned = end(true, "re-keyed: the server restarted on key.v2 as planned");
        let cut_off = jobs.start("Re-key of secret key".into(), "admin", Vec::new());
        let lost = jobs.start("Re-key of secret key".into(), "admin", Vec::new());
        let done = jobs.start("Re-key of secret key".into(), "admin", Vec::new());
        for job in [&cut_off, &lost, &done] {
            ledger::started(&conn, job).unwrap();
            let proof = new.seal(REKEY_PROOF, job.id.as_bytes());
            ledger::decided_at_restart(&conn, &job.id, &proof, &planned).unwrap();
        }
        let interrupted = end(false, "interrupted by the server's shutdown");
        ledger::ended(&conn, &cut_off.id, &interrupted).unwrap();
        ledger::ended(&conn, &done.id, &end(true, "rotated to key.v2")).unwrap();
        let recorded = |id: &str| ledger::recorded(&conn, id).unwrap().unwrap().end;

        // Swarm rolled the server back: on the old key, every job keeps its own end.
        assert!(settle_rekeys(&conn, Some(&old)).unwrap().is_empty());
        assert!(settle_rekeys(&conn, None).unwrap().is_empty());
        assert_eq!(recorded(&cut_off.id), Some(interrupted));
        assert_eq!(recorded(&lost.id), None);
        // On the new key: the move took effect.
        let mut settled: Vec<String> = settle_rekeys(&conn, Some(&new))
            .unwrap()
            .into_iter()
            .map(|s| s.job)
            .collect();
        settled.sort();
        let mut all = vec![cut_off.id.clone(), lost.id.clone(), done.id.clone()];
        all.sort();
        assert_eq!(settled, all);
        assert_eq!(recorded(&cut_off.id), Some(planned.clone()));
        assert_eq!(recorded(&lost.id), Some(planned));
        assert_eq!(
            recorded(&done.id).unwrap().outcome,
            "rotated to key.v2",
            "a job that saw its end keeps it"
        );
        assert!(settle_rekeys(&conn, Some(&new)).unwrap().is_empty(), "once");
        let audited: i64 = conn
            .query_row(
                "SELECT count(*) FROM auth_audit WHERE action = 'rekey-secret' AND who = 'admin'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(audited, 3, "each job ended is audited once");
        // A proof is bound to its job: another job's id does not pass for it.
        let other = jobs.start("Re-key of secret key".into(), "admin", Vec::new());
        ledger::started(&conn, &other).unwrap();
        let borrowed = new.seal(REKEY_PROOF, cut_off.id.as_bytes());
        ledger::decided_at_restart(&conn, &other.id, &borrowed, &end(true, "no")).unwrap();
        assert!(settle_rekeys(&conn, Some(&new)).unwrap().is_empty());
    }
}
