//! What every handler shares: the engine, the server's SQLite file (two connections: the
//! store's tables and the auth tables), the login limiter, the password checks, the audit
//! log's fold of repeated failures, the shutdown signal and the first-start setup token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use rusqlite::Connection;
use subtle::ConstantTimeEq;
use swarmkeeper_auth::store::{self as auth_store, AuditEntry};
use swarmkeeper_auth::{
    AuditFold, LimitPolicy, LoginLimiter, SealingKey, SessionPolicy, SetupToken, TokenHash,
    TrustedProxies,
};
use swarmkeeper_deploy::SwarmHistory;
use swarmkeeper_engine::Engine;
use swarmkeeper_registry::DockerConfig;
use swarmkeeper_store::Store;

use crate::alerting::Alerting;
use crate::autodeploy::AutoDeploy;
use crate::error::AppError;
use crate::limits::{Limits, PasswordChecks, Shutdown};
use crate::registries::Registries;

/// How the server was started.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub state_dir: PathBuf,
    /// The secret agents present as `Authorization: Bearer` on `/api/agent/report`; without
    /// one, reports are refused.
    pub report_secret: Option<String>,
    pub session_policy: SessionPolicy,
    /// A deploy from the dashboard gives up on a service after this long and rolls back.
    pub deploy_timeout: std::time::Duration,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the client.
    pub trusted_proxies: TrustedProxies,
    pub limits: Limits,
    /// When to pause a node whose disk is full and release it (`--disk-pressure-threshold`,
    /// `--disk-pressure-release`).
    pub disk_pressure: swarmkeeper_report::PressurePolicy,
    /// Seals the registry credentials added on the Registries page; without it none is stored.
    pub secret_key: Option<SealingKey>,
    /// Registry credentials as a docker `config.json` (`--docker-config`).
    pub docker_config: Option<DockerConfig>,
    /// Revisions of each stack the swarm's deploy history keeps when the dashboard appends one
    /// (the CLI's `--keep-revisions`).
    pub keep_revisions: usize,
    /// Where alerts go as the product's JSON webhook (`--alert-webhook`); none: no alerts.
    pub alert_webhooks: Vec<swarmkeeper_notify::Secret>,
    /// How a start restores the pending alerts' `for` clocks (`--alert-for-outage-tolerance`,
    /// `--alert-for-grace-period`).
    pub alert_for_restore: swarmkeeper_alerts::ForRestore,
}

/// Repeated login failures of one kind (user, source) are written once per this, with a count.
const AUDIT_FOLD_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);
/// Kinds of failure folded at once; past this the oldest is written early.
const AUDIT_FOLD_KINDS: usize = 1000;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub engine: Engine,
    pub config: ServerConfig,
    store: Mutex<Store>,
    auth: Mutex<Connection>,
    pub limiter: Mutex<LoginLimiter>,
    pub setup: Mutex<Option<SetupToken>>,
    pub passwords: PasswordChecks,
    /// Agent reports whose bodies are read at once.
    pub report_uploads: tokio::sync::Semaphore,
    pub shutdown: Shutdown,
    audit_fold: Mutex<AuditFold>,
    /// Registry credentials: the keychain every deploy, service change and check takes.
    pub registries: Registries,
    pub autodeploy: AutoDeploy,
    /// The registries' tags the service form offered lately.
    pub image_tags: crate::image_tags::TagCache,
    /// The alert rules, the ongoing alerts and their channels.
    pub alerting: Alerting,
    /// The dashboard's changes being applied, followed on their pages.
    pub jobs: crate::jobs::Jobs,
    /// The deploys running, stopped at shutdown.
    pub deploys: crate::deploys::Runs,
    /// What a form's POST hands to the page it redirects to.
    pub outcomes: crate::outcomes::Outcomes,
    /// A re-key of the sealing key is staged and waits for this server to restart on the new
    /// key: nothing new is sealed meanwhile (`crate::sealed::stage_rekey`).
    pub rekeying: std::sync::atomic::AtomicBool,
    /// The previous report secrets still accepted (their SHA-256): a start with another
    /// secret than the last start's puts that one here, until every node's agent has
    /// reported with the current one or an admin drops them.
    report_grace: Mutex<Vec<TokenHash>>,
    /// The re-keys this start found in effect (`crate::sealed::settle_rekeys`), whose
    /// revisions `crate::sealed::settle_rekey_revisions` settles in the swarm's history.
    pub(crate) settled_rekeys: Mutex<Vec<crate::sealed::SettledRekey>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// SQLite's page cache of the server's store: the pages 100 nodes' reports touch every 10 s
/// and a 30-day chart's index range stay in memory (`Store::set_page_cache`).
const SERVER_PAGE_CACHE_KIB: u32 = 8 * 1024;

impl AppState {
    /// Opens the state directory's database and creates the auth tables in it.
    pub fn open(engine: Engine, config: ServerConfig) -> Result<AppState, AppError> {
        let mut store = Store::open(&config.state_dir).map_err(AppError::internal)?;
        let promoted = crate::sealed::adopt(&mut store, config.secret_key.as_ref())
            .map_err(AppError::internal)?;
        if promoted > 0 {
            tracing::info!(promoted, "a re-key's sealed values now open with this key");
        }
        store
            .set_page_cache(SERVER_PAGE_CACHE_KIB)
            .map_err(AppError::internal)?;
        let report_grace = match &config.report_secret {
            Some(secret) => store
                .start_with_report_secret(TokenHash::of(secret).as_bytes(), Timestamp::now())
                .map_err(AppError::internal)?
                .iter()
                .filter_map(|hash| TokenHash::from_slice(hash))
                .collect(),
            None => Vec::new(),
        };
        if !report_grace.is_empty() {
            tracing::info!(
                previous = report_grace.len(),
                "the agents' previous report secret is still accepted until every node's \
                 agent reports with the current one"
            );
        }
        let auth = open_auth(store.path())?;
        let settled = crate::sealed::settle_rekeys(&auth, config.secret_key.as_ref())
            .map_err(AppError::internal)?;
        if !settled.is_empty() {
            let jobs: Vec<&str> = settled.iter().map(|s| s.job.as_str()).collect();
            tracing::info!(jobs = %jobs.join(", "), "re-keys this server now runs the key of");
        }
        let registries = Registries::new(config.secret_key.clone(), config.docker_config.clone());
        registries.reload(&store.registries().map_err(AppError::internal)?);
        let alerting = Alerting::load(
            &config.alert_webhooks,
            config.secret_key.clone(),
            &config.alert_for_restore,
            &store,
        );
        Ok(AppState(Arc::new(Inner {
            engine,
            store: Mutex::new(store),
            auth: Mutex::new(auth),
            limiter: Mutex::new(LoginLimiter::new(LimitPolicy::default())),
            setup: Mutex::new(None),
            passwords: PasswordChecks::new(&config.limits),
            report_uploads: tokio::sync::Semaphore::new(config.limits.report_uploads.max(1)),
            shutdown: Shutdown::default(),
            audit_fold: Mutex::new(AuditFold::new(AUDIT_FOLD_WINDOW, AUDIT_FOLD_KINDS)),
            registries,
            autodeploy: AutoDeploy::default(),
            image_tags: Default::default(),
            alerting,
            jobs: Default::default(),
            deploys: Default::default(),
            outcomes: Default::default(),
            rekeying: Default::default(),
            report_grace: Mutex::new(report_grace),
            settled_rekeys: Mutex::new(settled),
            config,
        })))
    }

    /// The deploy history kept in the swarm, the one the CLI and CI read and append through
    /// any manager. Cheap to make: one per request or deploy.
    pub fn history(&self) -> SwarmHistory {
        SwarmHistory::new(self.engine.clone()).keep_revisions(self.config.keep_revisions)
    }

    /// The options of the server's deploys, previews and rollbacks (see
    /// [`crate::deploys::Runs::options`]), with the OOM kills the agents reported: a task
    /// SIGKILLed on another node than the server's engine is worded `killed: out of memory`
    /// from them, as its task page is.
    pub fn deploy_options(&self) -> swarmkeeper_deploy::Options {
        // Weak: the options may outlive nothing of the state, and must not keep it alive.
        let state = Arc::downgrade(&self.0);
        swarmkeeper_deploy::Options {
            agent_oom_kills: Some(swarmkeeper_deploy::AgentOomKills::new(
                move |service, task, since| {
                    let state = AppState(state.upgrade()?);
                    let counted = state.store().task_oom_kills(service, task, since);
                    // A store that cannot be read leaves the kill unknown: the failure line
                    // then says where the answer is.
                    counted.ok().flatten().map(|(_, limit)| limit)
                },
            )),
            ..self.deploys.options(self.config.deploy_timeout)
        }
    }

    /// The store's connection. Held only for a query or two, never across an `.await`.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.0.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The auth tables' connection, same rule as [`AppState::store`].
    pub fn auth(&self) -> MutexGuard<'_, Connection> {
        self.0.auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends to the audit log. A change the log cannot record is still reported to the
    /// caller as an error, so nothing changes unaudited without someone hearing of it.
    pub fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AppError> {
        let entry = AuditEntry {
            at: Timestamp::now(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        };
        auth_store::append_audit(&self.auth(), &entry).map_err(AppError::internal)?;
        Ok(())
    }

    /// Appends an event anyone can cause (a failed or refused login) through the fold: the
    /// first of its kind in a window is written now, the rest as one row with a count.
    pub fn audit_folded(&self, entry: AuditEntry) -> Result<(), AppError> {
        let rows = self
            .audit_fold
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(entry);
        let conn = self.auth();
        for row in &rows {
            auth_store::append_audit(&conn, row).map_err(AppError::internal)?;
        }
        Ok(())
    }

    /// Writes the folded rows whose window closed by `now`; all of them with `None` (at
    /// shutdown). Failures are logged: there is nobody to tell.
    pub fn write_folded_audit(&self, now: Option<Timestamp>) {
        let rows = {
            let mut fold = self.audit_fold.lock().unwrap_or_else(|e| e.into_inner());
            match now {
                Some(now) => fold.due(now),
                None => fold.drain(),
            }
        };
        let conn = self.auth();
        for row in &rows {
            if let Err(e) = auth_store::append_audit(&conn, row) {
                tracing::warn!(error = %e, "could not write a folded audit row");
            }
        }
    }
}

/// Which of the server's report secrets an agent presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportSecret {
    /// The one the server was started with.
    Current,
    /// A previous one still on the grace list.
    Previous,
}

impl AppState {
    /// Which report secret `presented` is, each compared in constant time; `None`: neither
    /// (or the server has none).
    pub fn report_secret(&self, presented: &str) -> Option<ReportSecret> {
        let current = self.config.report_secret.as_deref()?;
        if bool::from(presented.as_bytes().ct_eq(current.as_bytes())) {
            return Some(ReportSecret::Current);
        }
        let grace = self.report_grace.lock().unwrap_or_else(|e| e.into_inner());
        let previous = grace
            .iter()
            .fold(false, |found, hash| hash.matches(presented) | found);
        previous.then_some(ReportSecret::Previous)
    }

    /// Whether previous report secrets are still accepted.
    pub fn report_grace_open(&self) -> bool {
        !self
            .report_grace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// After a stored report: records which secret the node's agent used, and ends the grace
    /// once no node's agent last reported with a previous secret ([`grace_over`]).
    pub fn note_report_secret(
        &self,
        node_key: &str,
        hostname: &str,
        presented: &str,
        used: ReportSecret,
    ) -> Result<(), AppError> {
        let hash = TokenHash::of(presented);
        let store = self.store();
        store
            .record_report_secret_use(node_key, hostname, hash.as_bytes(), Timestamp::now())
            .map_err(AppError::internal)?;
        if used == ReportSecret::Previous || !self.report_grace_open() {
            return Ok(());
        }
        let uses = store.report_secret_uses().map_err(AppError::internal)?;
        let mut grace = self.report_grace.lock().unwrap_or_else(|e| e.into_inner());
        let grace_hashes: Vec<&[u8]> = grace.iter().map(|h| h.as_bytes().as_slice()).collect();
        if grace_over(uses.iter().map(|u| u.hash.as_slice()), &grace_hashes) {
            store
                .drop_report_secret_grace()
                .map_err(AppError::internal)?;
            grace.clear();
            drop(grace);
            drop(store);
            self.audit(
                "swarmkeeper",
                "report-secret",
                "previous report secret",
                "no longer accepted: every node's agent reports with the current one",
            )?;
        }
        Ok(())
    }

    /// Drops the previous report secrets (an admin's action): only the current one is
    /// accepted from now on; how many were dropped.
    pub fn drop_report_grace(&self) -> Result<usize, AppError> {
        let store = self.store();
        let dropped = store
            .drop_report_secret_grace()
            .map_err(AppError::internal)?;
        self.report_grace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(dropped)
    }

    /// The hostnames whose agents last reported with a previous report secret, while any is
    /// accepted.
    pub fn nodes_on_previous_report_secret(&self) -> Result<Vec<String>, AppError> {
        let grace: Vec<TokenHash> = self
            .report_grace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let uses = self
            .store()
            .report_secret_uses()
            .map_err(AppError::internal)?;
        Ok(uses
            .into_iter()
            .filter(|u| grace.iter().any(|g| g.as_bytes().as_slice() == u.hash))
            .map(|u| u.hostname)
            .collect())
    }
}

/// Whether a rotation's grace is over: no node's agent last reported with one of the `grace`
/// secrets (`uses`: the secret each node's agent last reported with). A node that never
/// reported does not hold it up; a paused or drained node whose agent Swarm left on the old
/// secret does, for as long as its agent reports with it.
pub fn grace_over<'a>(mut uses: impl Iterator<Item = &'a [u8]>, grace: &[&[u8]]) -> bool {
    !uses.any(|used| grace.contains(&used))
}

fn open_auth(path: &Path) -> Result<Connection, AppError> {
    let conn = if path == Path::new(":memory:") {
        Connection::open_in_memory()
    } else {
        Connection::open(path)
    }
    .map_err(AppError::internal)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(AppError::internal)?;
    auth_store::create_tables(&conn).map_err(AppError::internal)?;
    crate::jobs::ledger::create(&conn).map_err(AppError::internal)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::grace_over;

    #[test]
    fn the_grace_lasts_while_any_node_last_reported_with_a_previous_secret() {
        const OLD: &[u8] = &[1; 32];
        const NEW: &[u8] = &[2; 32];
        let grace = [OLD];
        assert!(
            !grace_over([NEW, OLD].into_iter(), &grace),
            "a paused node's agent holds it"
        );
        assert!(grace_over([NEW, NEW].into_iter(), &grace));
        assert!(
            grace_over(std::iter::empty(), &grace),
            "no node tracked: nothing to wait for"
        );
    }
}
