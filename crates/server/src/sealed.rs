//! Settings whose secrets are sealed, as the admin pages add and remove them: the registries
//! (`/registries`) and the alert channels (`/alerts`). One path for both:
//!
//! - a change is written to the store and what the server holds in memory (the keychain, the
//!   opened channels) is rebuilt from the store under the same hold of it, so two changes at
//!   once never leave memory behind the store;
//! - a name that is taken is a conflict naming the form field; an id that is not there, 404;
//! - the audit log records who added or removed which one by its name, never a secret.

use swarmkeeper_auth::Action;
use swarmkeeper_store::{Store, StoreError, StoredChannel, StoredRegistry};

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
