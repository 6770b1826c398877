//! The deploy history kept in the swarm itself ([`SwarmHistory`]): each revision a pair of
//! Swarm config objects (see `codec`), each stack's deploy lock a config object named after it.
//! Swarm replicates them across managers with raft, so the CLI on any machine, CI and the
//! dashboard read and append one history through any manager (`DOCKER_HOST`).
//!
//! The lock: creating `swarmkeeper-lock-STACK` succeeds for one deploy only (config names are
//! unique; the engine answers 409 to the others). Its holder renews it six times per
//! [`LOCK_EXPIRY`] by raising a label, which moves the config's `UpdatedAt`; a lock not
//! renewed for [`LOCK_EXPIRY`] by the managers' clock belongs to a deploy that was killed, and
//! the next deploy removes it and takes the stack.

mod codec;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_engine::{ConfigObject, Engine, EngineError};
use swarmkeeper_rollout::revisions::{
    lock_expired, lock_heartbeat, revisions_to_forget, LockSeen, DEFAULT_KEEP_REVISIONS,
    LOCK_EXPIRY,
};
use swarmkeeper_store::{DeployOutcome, DeployRecord, StackLock, Store};
use tokio::task::AbortHandle;

use crate::history::{History, Locking, RevisionEnd, RevisionStart, Settlement};
use crate::DeployError;

pub use codec::{RolledBackRevision, LABEL_LOCK_STACK, LABEL_STACK};

/// How often a writer tries the next number when the one it chose was taken meanwhile (only a
/// writer that does not hold the stack's lock, such as an import, can meet one).
const NUMBER_ATTEMPTS: u32 = 20;

/// The history's objects of every stack as one listing returned them
/// ([`SwarmHistory::listing`]).
pub struct HistoryListing(Vec<ConfigObject>);

/// A stack's history in the swarm. Cheap to make; holds the heartbeats of the locks it took.
pub struct SwarmHistory {
    engine: Engine,
    keep: usize,
    lock_expiry: Duration,
    heartbeats: Mutex<HashMap<String, AbortHandle>>,
}

/// What [`SwarmHistory::import`] did with a local history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Stacks whose revisions were written into the swarm, with how many.
    pub imported: Vec<(String, usize)>,
    /// Stacks left out because the swarm already has a history of them, with how many
    /// revisions stay only in the local file.
    pub skipped: Vec<(String, usize)>,
    /// The swarm runs no service of these stacks: their local revisions (how many) belong to
    /// another cluster, or to stacks removed since.
    pub elsewhere: Vec<(String, usize)>,
}

impl SwarmHistory {
    /// The history in the swarm `engine` manages, keeping the newest
    /// [`DEFAULT_KEEP_REVISIONS`] revisions of each stack.
    pub fn new(engine: Engine) -> SwarmHistory {
        SwarmHistory {
            engine,
            keep: DEFAULT_KEEP_REVISIONS,
            lock_expiry: LOCK_EXPIRY,
            heartbeats: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps the newest `keep` revisions of each stack (at least 1) when a deploy appends one.
    pub fn keep_revisions(mut self, keep: usize) -> SwarmHistory {
        self.keep = keep.max(1);
        self
    }

    /// Lets a lock not renewed for `expiry` be taken over ([`LOCK_EXPIRY`] by default). Every
    /// process that deploys to the swarm should use the same.
    pub fn lock_expiry(mut self, expiry: Duration) -> SwarmHistory {
        self.lock_expiry = expiry;
        self
    }

    async fn objects(&self, filters: &[String]) -> Result<Vec<ConfigObject>, DeployError> {
        Ok(self.engine.list_config_objects(filters).await?)
    }

    /// The managers' clock: the engine's `SystemTime`.
    async fn now(&self) -> Result<Timestamp, DeployError> {
        Ok(self
            .engine
            .info()
            .await?
            .system_time
            .unwrap_or_else(Timestamp::now))
    }

    async fn read(
        &self,
        stack: &str,
        number: Option<u64>,
    ) -> Result<Vec<DeployRecord>, DeployError> {
        let objects = self.objects(&codec::stack_filter(stack, number)).await?;
        let (lock, now) = if codec::has_unfinished(&objects) {
            let lock = match self.engine.inspect_config(&codec::lock_name(stack)).await {
                Ok(lock) => Some(LockSeen {
                    taken: lock.created_at,
                    renewed: lock.updated_at,
                }),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            (lock, self.now().await?)
        } else {
            (None, Timestamp::now())
        };
        Ok(codec::records(stack, &objects, lock, now, self.lock_expiry))
    }

    /// Every stack's history objects, in one listing: what [`SwarmHistory::newest_revisions`]
    /// reads. Apart so that a caller can ask for it while it asks for something else.
    pub async fn listing(&self) -> Result<HistoryListing, DeployError> {
        Ok(HistoryListing(
            self.objects(&[codec::LABEL_STACK.to_owned()]).await?,
        ))
    }

    /// The newest revision of each of `stacks`, from one [`listing`](Self::listing) of the
    /// history's objects (a stacks list asks once, not once per stack); stacks without a
    /// history are left out. The history also holds stacks removed long ago: only those
    /// asked for are unpacked. When some newest revisions have not ended, their locks are
    /// inspected at once and the managers' clock read once.
    pub async fn newest_revisions(
        &self,
        listing: &HistoryListing,
        stacks: &std::collections::BTreeSet<&str>,
    ) -> Result<std::collections::BTreeMap<String, DeployRecord>, DeployError> {
        let asked: Vec<(String, Vec<ConfigObject>)> = codec::newest_by_stack(&listing.0)
            .into_iter()
            .filter(|(stack, _)| stacks.contains(stack.as_str()))
            .map(|(stack, objects)| (stack, objects.into_iter().cloned().collect()))
            .collect();
        let unfinished: Vec<&str> = asked
            .iter()
            .filter(|(_, objects)| codec::has_unfinished(objects))
            .map(|(stack, _)| stack.as_str())
            .collect();
        let mut locks = std::collections::BTreeMap::new();
        let mut now = Timestamp::now();
        if !unfinished.is_empty() {
            let inspect =
                futures_util::future::try_join_all(unfinished.iter().map(|stack| async {
                    match self.engine.inspect_config(&codec::lock_name(stack)).await {
                        Ok(lock) => Ok((
                            *stack,
                            Some(LockSeen {
                                taken: lock.created_at,
                                renewed: lock.updated_at,
                            }),
                        )),
                        Err(e) if e.is_not_found() => Ok((*stack, None)),
                        Err(e) => Err(DeployError::from(e)),
                    }
                }));
            let (seen, clock) = tokio::try_join!(inspect, self.now())?;
            locks.extend(seen);
            now = clock;
        }
        let mut newest = std::collections::BTreeMap::new();
        for (stack, objects) in &asked {
            let lock = locks.get(stack.as_str()).cloned().flatten();
            if let Some(record) = codec::records(stack, objects, lock, now, self.lock_expiry)
                .into_iter()
                .next()
            {
                newest.insert(stack.clone(), record);
            }
        }
        Ok(newest)
    }

    /// Every revision of any stack that ended rolled back: one listing of the end objects
    /// that say so (and, for a record cut into chunks, one of its other chunks), so the
    /// server can ask it at each evaluation of its alerts.
    pub async fn rolled_back(&self) -> Result<Vec<RolledBackRevision>, DeployError> {
        let mut objects = self.objects(&codec::rolled_back_filter()).await?;
        let chunked: Vec<(String, u64)> = objects
            .iter()
            .filter(|o| codec::more_chunks(o))
            .filter_map(|o| {
                Some((
                    o.labels.get(LABEL_STACK)?.clone(),
                    o.labels.get(codec::LABEL_NUMBER)?.parse().ok()?,
                ))
            })
            .collect();
        for (stack, number) in chunked {
            let rest = self
                .objects(&codec::stack_filter(&stack, Some(number)))
                .await?;
            let listed: Vec<String> = objects.iter().map(|o| o.id.clone()).collect();
            objects.extend(rest.into_iter().filter(|o| !listed.contains(&o.id)));
        }
        Ok(codec::rolled_back_ends(&objects))
    }

    /// Creates a record's objects; `Ok(false)` when the first one's name is taken. Objects
    /// created before a failure are removed again.
    async fn create(&self, objects: &[codec::NewObject]) -> Result<bool, DeployError> {
        let mut created = Vec::with_capacity(objects.len());
        for object in objects {
            match self.engine.create_config(&object.spec()).await {
                Ok(answer) => created.push(answer.id),
                Err(e) => {
                    for id in &created {
                        let _ = self.engine.remove_config(id).await;
                    }
                    if e.is_conflict() && created.is_empty() {
                        return Ok(false);
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(true)
    }

    /// Creates a record that exists at most once; refused with `taken`'s words when it does.
    async fn create_once(
        &self,
        objects: &[codec::NewObject],
        taken: impl FnOnce() -> String,
    ) -> Result<(), DeployError> {
        match self.create(objects).await? {
            true => Ok(()),
            false => Err(DeployError::Input(taken())),
        }
    }

    /// Writes a revision's start under the next free number from `after` on.
    async fn claim(&self, start: &RevisionStart<'_>, after: u64) -> Result<u64, DeployError> {
        let mut number = after + 1;
        for _ in 0..NUMBER_ATTEMPTS {
            if self.create(&codec::start_objects(number, start)?).await? {
                return Ok(number);
            }
            number += 1;
        }
        Err(DeployError::Input(format!(
            "revision numbers {}..{number} of stack {} are all taken in the swarm; see \
             `docker config ls --filter label={LABEL_STACK}={}`",
            after + 1,
            start.stack,
            start.stack
        )))
    }

    /// Removes every object of revision `number` of `stack`.
    async fn forget(&self, stack: &str, number: u64) -> Result<(), EngineError> {
        let objects = self
            .engine
            .list_config_objects(&codec::stack_filter(stack, Some(number)))
            .await?;
        for object in codec::removal_order(&objects) {
            self.engine.remove_config(&object.id).await?;
        }
        Ok(())
    }

    /// Keeps the newest revisions of a stack; a failure is logged, never a failed deploy.
    async fn retain(&self, stack: &str, numbers: &[u64]) {
        for number in revisions_to_forget(numbers, self.keep) {
            if let Err(e) = self.forget(stack, number).await {
                tracing::warn!("cannot forget revision {number} of {stack}: {e}");
                return;
            }
        }
    }

    /// Writes the revisions of a local (SQLite) history into the swarm, once per swarm: each
    /// stack the swarm runs and has no history of yet gets its local revisions under the same
    /// numbers (the newest [`SwarmHistory::keep_revisions`]); a revision left `running` there
    /// is written as interrupted. Afterwards the file is marked as imported into this swarm
    /// (by cluster ID) and never written again. Does nothing on an engine that is not a
    /// swarm manager.
    pub async fn import(&self, store: &Store) -> Result<Imported, DeployError> {
        let mut imported = Imported::default();
        let Some(cluster) = self.engine.info().await?.cluster_id else {
            return Ok(imported);
        };
        if store.deploys_exported_to(&cluster)? {
            return Ok(imported);
        }
        for stack in store.deploy_stacks()? {
            let mut local = store.deploy_history(&stack)?;
            local.truncate(self.keep);
            local.reverse();
            if !self
                .objects(&codec::starts_filter(&stack))
                .await?
                .is_empty()
            {
                imported.skipped.push((stack, local.len()));
                continue;
            }
            if self.engine.list_services(Some(&stack)).await?.is_empty() {
                imported.elsewhere.push((stack, local.len()));
                continue;
            }
            let mut count = 0;
            for record in &local {
                if self.import_one(record).await? {
                    count += 1;
                }
            }
            imported.imported.push((stack, count));
        }
        store.mark_deploys_exported(&cluster, Timestamp::now())?;
        Ok(imported)
    }

    /// One revision of a local history, under its own number; `false` when the swarm has that
    /// number already (another machine imported it meanwhile).
    async fn import_one(&self, record: &DeployRecord) -> Result<bool, DeployError> {
        let start = RevisionStart {
            stack: &record.stack,
            by: &record.by,
            action: record.action.as_deref(),
            kind: &record.kind,
            files: &record.files,
            at: record.started_at,
        };
        if !self
            .create(&codec::start_objects(record.revision, &start)?)
            .await?
        {
            return Ok(false);
        }
        let (outcome, summary) = match record.outcome {
            DeployOutcome::Running => (DeployOutcome::Interrupted, codec::INTERRUPTED),
            ref outcome => (outcome.clone(), record.summary.as_str()),
        };
        let end = RevisionEnd {
            outcome: &outcome,
            summary,
            services: &record.services,
            objects: &record.objects,
            at: record.finished_at.unwrap_or(record.started_at),
        };
        self.create(&codec::end_objects(&record.stack, record.revision, &end)?)
            .await?;
        Ok(true)
    }

    /// Renews the lock `id` until it is released or gone.
    fn start_heartbeat(&self, id: &str) {
        let engine = self.engine.clone();
        let lock = id.to_owned();
        let expiry = self.lock_expiry;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lock_heartbeat(expiry)).await;
                let renewed = match engine.inspect_config(&lock).await {
                    Ok(current) => {
                        engine
                            .update_config_labels(&current, &codec::renewed_labels(&current))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match renewed {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {
                        tracing::warn!(
                            "the deploy lock was taken over: it was not renewed for {}s",
                            expiry.as_secs()
                        );
                        return;
                    }
                    Err(e) => tracing::warn!("cannot renew the deploy lock: {e}"),
                }
            }
        });
        self.beats().insert(id.to_owned(), task.abort_handle());
    }

    fn beats(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.heartbeats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SwarmHistory {
    fn drop(&mut self) {
        for (_, beat) in self.beats().drain() {
            beat.abort();
        }
    }
}

impl History for SwarmHistory {
    type Error = DeployError;

    async fn revisions(&self, stack: &str) -> Result<Vec<DeployRecord>, DeployError> {
        self.read(stack, None).await
    }

    async fn revision(
        &self,
        stack: &str,
        revision: u64,
    ) -> Result<Option<DeployRecord>, DeployError> {
        Ok(self.read(stack, Some(revision)).await?.into_iter().next())
    }

    async fn append(&self, start: &RevisionStart<'_>) -> Result<u64, DeployError> {
        let starts = self.objects(&codec::starts_filter(start.stack)).await?;
        let mut numbers = codec::numbers(&starts);
        let latest = numbers.last().copied().unwrap_or(0);
        let number = self.claim(start, latest).await?;
        numbers.push(number);
        self.retain(start.stack, &numbers).await;
        Ok(number)
    }

    async fn finish(
        &self,
        stack: &str,
        revision: u64,
        end: &RevisionEnd<'_>,
    ) -> Result<(), DeployError> {
        let objects = codec::end_objects(stack, revision, end)?;
        self.create_once(&objects, || {
            format!("revision {revision} of {stack} already has an end in the swarm")
        })
        .await
    }

    async fn settle(
        &self,
        stack: &str,
        revision: u64,
        settlement: &Settlement<'_>,
    ) -> Result<(), DeployError> {
        let object = codec::settled_object(stack, revision, settlement);
        self.create_once(std::slice::from_ref(&object), || {
            format!("revision {revision} of {stack} is already settled in the swarm")
        })
        .await
    }

    async fn lock(
        &self,
        stack: &str,
        holder: &str,
        _at: Timestamp,
    ) -> Result<Locking, DeployError> {
        let object = codec::lock_object(stack, holder);
        // Each pass either takes the lock, finds a live holder, or clears a dead one; a lock
        // that changes hands between the calls is tried again a few times.
        for _ in 0..4 {
            match self.engine.create_config(&object.spec()).await {
                Ok(created) => {
                    self.start_heartbeat(&created.id);
                    return Ok(Locking::Acquired(StackLock {
                        stack: stack.to_owned(),
                        token: created.id,
                    }));
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
            let current = match self.engine.inspect_config(&object.name).await {
                Ok(current) => current,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if lock_expired(current.updated_at, self.now().await?, self.lock_expiry) {
                tracing::info!(
                    "taking over the deploy lock of {stack}: {} stopped renewing it",
                    codec::lock_holder(&current).holder
                );
                self.engine.remove_config(&current.id).await?;
                continue;
            }
            return Ok(Locking::Held(codec::lock_holder(&current)));
        }
        Err(DeployError::Input(format!(
            "the deploy lock of stack {stack} ({}) keeps changing hands; try again",
            object.name
        )))
    }

    async fn unlock(&self, lock: &StackLock) -> Result<(), DeployError> {
        if let Some(beat) = self.beats().remove(&lock.token) {
            beat.abort();
        }
        Ok(self.engine.remove_config(&lock.token).await?)
    }
}
