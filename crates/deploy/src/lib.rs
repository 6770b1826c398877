//! Stack deploys through the Engine API, all or nothing.
//!
//! [`deploy`] turns a compose [`StackSpec`] into engine objects the way `docker stack deploy`
//! does (same names, same `com.docker.stack.namespace` labels), adds the safe defaults of
//! [`swarmkeeper_rollout::apply_safe_defaults`], pins images to registry digests when it can,
//! leaves untouched every service whose spec would not change, follows every changed service
//! until it converges, and when one fails puts every service it changed back as it was. Every
//! run is a revision in a [`History`]; [`rollback`] re-applies an older one the same way.
//!
//! One step per module: `objects` (secrets, configs, networks), `apply`
//! (the typed spec made JSON once, then created or updated), `follow` (events and polls fed to
//! `rollout`), `restore` (the stack-wide rollback), `record` (the revision). The decisions
//! are in the pure `rollout` crate; this is the shell that observes the engine and carries
//! them out. It reads no file: the loader hands over the content of secret and config files
//! ([`Stack::files`]). Progress goes to a callback, so the CLI and the web server can show it
//! their own way.

mod apply;
mod cluster;
mod digest;
mod follow;
mod history;
mod image;
mod objects;
mod preflight;
mod preview;
mod record;
mod remove;
mod restore;
mod revive;
mod stop;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_compose::StackSpec;
use swarmkeeper_engine::{inherit_replicas, Engine, EngineError, RegistryAuth, Service};
use swarmkeeper_rollout::{
    apply_safe_defaults, drop_unsupported, stack_rollback, Change, ServiceState, Verdict,
    DEFAULT_MAX_FAILED_TASKS,
};
use swarmkeeper_store::StoreError;

pub use cluster::{
    HistoryListing, Imported, RolledBackRevision, SwarmHistory,
    LABEL_LOCK_STACK as LOCK_STACK_LABEL, LABEL_STACK as REVISION_STACK_LABEL,
};
pub use digest::{base64, sha256_hex};
pub use history::{settled_summary, History, Locking, RevisionEnd, RevisionStart, Settlement};
pub use image::{history_stack, ImageUpdate};
pub use objects::{StackObject, LABEL_DATA_SHA256};
pub use preflight::facts as node_facts;
pub use preflight::{placement, port_in_use, replicas_pending, PortClash, ReplicasPending};
pub use preview::Preview;
pub use record::{runs_now, service_images, unfit_target, ServiceImages};
pub use remove::{remove_stack, stack_objects, StackObjects};
pub use restore::Restored;
pub use stop::{Interrupted, Stop};
pub use swarmkeeper_rollout::revisions::Unfit;
pub use swarmkeeper_store::{
    DeployKind, DeployOutcome, DeployRecord, FileDigest, LockHolder, ServiceRevision, StackLock,
};

use apply::Target;

/// How a deploy behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Give up on a service that has not converged after this long, and roll back. Also how
    /// long to wait for another deploy of the same stack to finish.
    pub timeout: Duration,
    /// Wait while another deploy of the stack runs; `false`: fail at once
    /// ([`DeployError::Busy`]).
    pub wait: bool,
    /// Add swarmkeeper's safe defaults where the file says nothing.
    pub safe_defaults: bool,
    /// Ask the registry for each image's digest and pin it.
    pub resolve_digests: bool,
    /// How often to look at the services besides the event stream.
    pub poll: Duration,
    pub max_failed_tasks: usize,
    /// Remove the stack's services that the files no longer name, as `docker stack deploy
    /// --prune` does.
    pub prune: bool,
    /// Asked to stop (a signal): the run stops at its next safe point and records itself as
    /// interrupted ([`Outcome::interrupted`]). Never requested by default.
    pub stop: Stop,
    /// The OOM kills the agents counted, for a SIGKILLed task whose container the engine
    /// cannot inspect (it ran on another node): the server's reports. `None` (the CLI): such
    /// a kill is worded as possibly an OOM kill, saying where the answer is.
    pub agent_oom_kills: Option<AgentOomKills>,
}

/// What the agents counted of the kernel's OOM killer in task containers, as whoever holds
/// their reports (the server's store) answers: `counted(service, task, since)` is
/// `Some(limit)` when a report from `since` on counted a kill in the task's container (with
/// the memory limit in bytes it reported, if any), `None` otherwise. Keeps this crate free of
/// the server's types.
#[derive(Clone)]
pub struct AgentOomKills(Arc<OomKillsCounted>);

/// `counted(service, task, since)` of [`AgentOomKills`].
type OomKillsCounted = dyn Fn(&str, &str, Timestamp) -> Option<Option<u64>> + Send + Sync;

impl AgentOomKills {
    /// See [`AgentOomKills`].
    pub fn new(
        counted: impl Fn(&str, &str, Timestamp) -> Option<Option<u64>> + Send + Sync + 'static,
    ) -> AgentOomKills {
        AgentOomKills(Arc::new(counted))
    }

    /// Whether the agents counted a kill in `task` (of `service`) from `since` on, and the
    /// limit they reported.
    pub(crate) fn counted(
        &self,
        service: &str,
        task: &str,
        since: Timestamp,
    ) -> Option<Option<u64>> {
        (self.0)(service, task, since)
    }
}

impl fmt::Debug for AgentOomKills {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentOomKills(..)")
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(600),
            wait: true,
            safe_defaults: true,
            resolve_digests: true,
            poll: Duration::from_millis(200),
            max_failed_tasks: DEFAULT_MAX_FAILED_TASKS,
            prune: false,
            stop: Stop::default(),
            agent_oom_kills: None,
        }
    }
}

/// What a deploy did to a service or an object of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Its spec already was the one wanted: not touched.
    Unchanged,
    /// Put back to the spec it had before a failed deploy.
    Restore,
    /// Removed: a failed deploy had created it.
    Remove,
    /// Left to Swarm's own rollback, and followed.
    SwarmRollback,
    CreateNetwork,
    CreateSecret,
    CreateConfig,
}

impl Action {
    /// The words progress lines and the history show.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Restore => "restore",
            Action::Remove => "remove",
            Action::SwarmRollback => "swarm rollback",
            Action::CreateNetwork => "create network",
            Action::CreateSecret => "create secret",
            Action::CreateConfig => "create config",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the deploy reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    /// A safe default applied, or another remark.
    Note(&'a str),
    Warning(&'a str),
    /// What was done to a service (or a network, secret or config, by name).
    Action {
        service: &'a str,
        action: Action,
    },
    /// A changed service's state, each time it changes.
    State {
        service: &'a str,
        state: &'a ServiceState,
    },
    /// A service failed; every changed service is being put back.
    StackRollback {
        reason: &'a str,
    },
}

/// Who deploys, what is recorded, and how the engine's nodes get at private images.
#[derive(Clone)]
pub struct Request {
    pub stack: String,
    /// Who deploys: shown in the history and to a deploy that waits for this one.
    pub by: String,
    /// What they do, recorded apart from who when it is more than a deploy or rollback of
    /// files: `edited in the dashboard`, `rotated secret db → db.v2 in the dashboard`.
    pub action: Option<String>,
    pub files: Vec<FileDigest>,
    /// Registry credentials for each image, sent with every service create and update (and
    /// digest lookup) as `X-Registry-Auth`; `None`: nodes pull with what they have.
    pub registry_auth: Option<Arc<dyn RegistryAuth>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("stack", &self.stack)
            .field("by", &self.by)
            .field("action", &self.action)
            .field("files", &self.files)
            .field("registry_auth", &self.registry_auth.is_some())
            .finish()
    }
}

/// A stack to deploy: its Engine API specs, and the content of each secret and config that
/// comes from a file, by the path the spec names, as the loader read it.
#[derive(Clone, Debug)]
pub struct Stack {
    pub spec: StackSpec,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Stack {
    /// A stack whose secrets and configs come from no file.
    pub fn new(spec: StackSpec) -> Stack {
        Stack {
            spec,
            files: BTreeMap::new(),
        }
    }
}

/// What happened to one service.
#[derive(Clone, Debug)]
pub struct ServiceOutcome {
    pub service: String,
    /// [`Action::Create`], [`Action::Update`] or [`Action::Unchanged`].
    pub action: Action,
    pub state: Option<ServiceState>,
}

/// Why a service failed, with its failing task's last log lines when they can be read.
#[derive(Clone, Debug)]
pub struct FailureReport {
    pub service: String,
    pub why: String,
    pub logs: Vec<String>,
    /// Set when the logs could not be read, with what to do about it.
    pub logs_note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// The revision recorded.
    pub revision: Option<u64>,
    pub succeeded: bool,
    pub services: Vec<ServiceOutcome>,
    pub failures: Vec<FailureReport>,
    /// From the engine's report of the failure (the failed task's timestamp, else the moment
    /// swarmkeeper saw the state) to the first rollback request.
    pub rollback_reaction: Option<Duration>,
    /// Services put back after a failure and how they ended.
    pub rolled_back: Vec<(String, Restored)>,
    /// Set when the run was stopped ([`Options::stop`]) before it ended: what it applied and
    /// what it did not. It neither followed nor rolled back further; Swarm goes on with the
    /// rollouts it started.
    pub interrupted: Option<Interrupted>,
}

impl Outcome {
    /// A run stopped before it recorded a revision: nothing was changed.
    fn stopped_early(why: String) -> Outcome {
        Outcome {
            revision: None,
            succeeded: false,
            services: Vec::new(),
            failures: Vec::new(),
            rollback_reaction: None,
            rolled_back: Vec::new(),
            interrupted: Some(Interrupted {
                why,
                applied: Vec::new(),
                not_applied: Vec::new(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stack or revision asked for cannot be deployed (a file, an unknown revision,
    /// registry credentials that cannot be had).
    #[error("{0}")]
    Input(String),
    /// The revision a rollback was asked for cannot be its target (it did not succeed, or the
    /// stack runs it now: [`unfit_target`]); the sentence says why and which revisions can.
    /// The CLI exits 2, the API answers 409.
    #[error("{0}")]
    Refused(String),
    /// Another deploy of the stack holds it (and the caller would not wait, or waited as long
    /// as a deploy may take): who, since when.
    #[error(
        "stack {stack} is being deployed by {} since {}; {advice}",
        holder.holder,
        history::when(holder.since)
    )]
    Busy {
        stack: String,
        holder: LockHolder,
        advice: &'static str,
    },
}

/// Deploys `stack` as stack `request.stack`, recording the revision in `history`.
pub async fn deploy<H: History>(
    engine: &Engine,
    history: &H,
    request: &Request,
    stack: Stack,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    Run::new(engine, history, request, options)
        .locked(Job::Deploy(stack), progress)
        .await
}

/// The preflight [`deploy`] runs first, alone and changing nothing: every service of `spec`
/// has a ready, active node meeting its placement, reservations and log driver, the external
/// secrets and configs it names exist, and no port it publishes is another service's
/// (`options.prune`: the services of stack `stack` the files leave out are not counted).
/// For a front end that runs the deploy in the background, so that what cannot work is
/// refused at once ([`DeployError::Input`], naming the service and the reason).
pub async fn deploy_preflight(
    engine: &Engine,
    stack: &str,
    spec: &StackSpec,
    options: &Options,
) -> Result<(), DeployError> {
    preflight::check(engine, spec, options.prune.then_some(stack)).await
}

/// What [`deploy`] would do to `stack`, changing nothing: the same preflight, credentials,
/// digests, safe defaults and completed specs, compared field by field with the engine's
/// (`swarmkeeper diff`, `deploy --dry-run`). Takes no lock and records nothing.
pub async fn preview(
    engine: &Engine,
    request: &Request,
    stack: Stack,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Preview, DeployError> {
    let run = Run {
        engine,
        history: &(),
        request,
        options,
    };
    let prepared = run
        .prepare_deploy(stack, true, progress)
        .await?
        .ok_or_else(|| DeployError::Input("the preview was stopped".to_owned()))?;
    Ok(preview::compare(prepared, options.prune))
}

/// The stack's services that no target names, by name.
fn not_targeted(current: &HashMap<String, Service>, targets: &[Target]) -> Vec<String> {
    let mut names: Vec<String> = current
        .keys()
        .filter(|name| !targets.iter().any(|t| &t.name == *name))
        .cloned()
        .collect();
    names.sort();
    names
}

/// Re-applies revision `to` of a stack (one that succeeded and does not run now, see
/// [`unfit_target`]; default: the newest such, see `record::previous_good`) with the same
/// preflight, following and stack-wide safety as a deploy ([`rollback_preflight`]).
pub async fn rollback<H: History>(
    engine: &Engine,
    history: &H,
    request: &Request,
    to: Option<u64>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    Run::new(engine, history, request, options)
        .locked(Job::Rollback(to), progress)
        .await
}

/// What [`rollback`] checks before it takes the lock or changes anything, changing nothing:
/// revision `to` of `stack` exists and may be a rollback's target ([`unfit_target`]: it
/// succeeded and does not run now; by default: there is such an earlier one), every service it
/// has can be placed on a ready, active node (placement constraints, reserved CPUs and memory,
/// log driver) and no port it publishes is a service's outside the stack (the deploy's
/// preflight). Answers the revision a rollback would re-apply now; [`DeployError::Input`]
/// names the revision, or the service and the reason; [`DeployError::Refused`] why the
/// revision cannot be the target and which can.
/// A front end that runs the rollback in the background asks this first, so a rollback that
/// cannot work is refused at once; the rollback asks it again itself.
pub async fn rollback_preflight<H: History>(
    engine: &Engine,
    history: &H,
    stack: &str,
    to: Option<u64>,
) -> Result<u64, DeployError> {
    let current = current_services(engine, stack).await?;
    let (record, _) = rollback_specs(engine, history, stack, to, &current).await?;
    Ok(record.revision)
}

/// The revision a rollback re-applies and its specs (those it deployed; services it left
/// unchanged carry theirs too), each placeable and publishing no port a service outside the
/// stack has taken since, or refused: a spec no node can run would leave its service down,
/// and the stack pending, until the timeout; a port taken would fail the rollback half-way
/// with the engine's error. A revision asked for by number that
/// [`record::unfit_target`] rules out is refused ([`DeployError::Refused`]) naming the ones
/// that can be the target.
async fn rollback_specs<H: History>(
    engine: &Engine,
    history: &H,
    stack: &str,
    to: Option<u64>,
    current: &HashMap<String, Service>,
) -> Result<(DeployRecord, Vec<(String, serde_json::Value)>), DeployError> {
    let record = match to {
        Some(revision) => {
            let record = history
                .revision(stack, revision)
                .await
                .map_err(Into::into)?
                .ok_or_else(|| {
                    DeployError::Input(format!("stack {stack} has no revision {revision}"))
                })?;
            if let Some(why) = record::unfit_target(&record, current) {
                let revisions = history.revisions(stack).await.map_err(Into::into)?;
                let targets = record::fit_targets(&revisions, current);
                return Err(DeployError::Refused(record::unfit_refusal(
                    &record, why, &targets,
                )));
            }
            record
        }
        None => {
            let revisions = history.revisions(stack).await.map_err(Into::into)?;
            record::previous_good(stack, revisions, current)?
        }
    };
    let specs = record::deployed_specs(&record)?;
    preflight::check_revision(engine, stack, &specs)
        .await
        .map_err(|e| match e {
            DeployError::Input(why) => DeployError::Input(format!(
                "revision {} of {stack} cannot be rolled back to: {why}",
                record.revision
            )),
            other => other,
        })?;
    Ok((record, specs))
}

/// Rolls one service out to another image (auto-deploy: its tag moved) as a revision of its
/// stack (`request.stack`, see [`history_stack`]), with the same lock, following, stack-wide
/// rollback and history as a deploy. Nothing changes when the service no longer runs
/// `update.expected`.
pub async fn update_image<H: History>(
    engine: &Engine,
    history: &H,
    request: &Request,
    update: ImageUpdate,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    Run::new(engine, history, request, options)
        .locked(Job::Image(update), progress)
        .await
}

/// Brings services to the raw specs given (service name, spec), as one revision of kind
/// `edit` of stack `request.stack` (for a service outside any stack, its own name), with the
/// same following, stack-wide rollback and record as a deploy: a service that does not exist
/// is created (and removed again when it fails). The specs are sent as they are: no safe
/// defaults, no digest pinning (a typed spec gets them from [`complete_specs`] first), the
/// current scale kept where a spec gives none.
pub async fn edit<H: History>(
    engine: &Engine,
    history: &H,
    request: &Request,
    specs: Vec<(String, serde_json::Value)>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    Run::new(engine, history, request, options)
        .locked(Job::Edit(specs), progress)
        .await
}

/// Typed specs written outside a stack file (the dashboard's service form, "edit as compose")
/// completed as [`deploy`] completes a file's: the safe defaults a new service leaves unset
/// (when [`Options::safe_defaults`]; each said as a [`Progress::Note`] `safe default: …`, the
/// words the CLI prints) and each image pinned to its registry digest with the request's
/// credentials (when [`Options::resolve_digests`]; a digest that cannot be had is warned
/// about, a tag the registry does not have refused). A spec named in `edits` is an edit of a
/// running service: a field its operator did not give keeps the service's value (the API's
/// "a partial body changes only what it names"), so its safe defaults are only said, each as
/// `suggested: …`, and not applied. A value a spec sets is never changed. Returns each spec
/// made JSON, by name, for [`edit`]; changes nothing.
pub async fn complete_specs(
    engine: &Engine,
    request: &Request,
    specs: Vec<ServiceSpec>,
    edits: &[&str],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(String, serde_json::Value)>, DeployError> {
    let images = specs
        .iter()
        .map(|s| s.task_template.container_spec.image.clone());
    let (_, pinned) = auths_and_pins(engine, request, options, images, progress).await?;
    let mut completed = Vec::with_capacity(specs.len());
    for mut spec in specs {
        if edits.contains(&spec.name.as_str()) {
            suggest_safe_defaults(&spec, options, progress);
        } else {
            add_safe_defaults(&mut spec, options, progress);
        }
        let container = &mut spec.task_template.container_spec;
        if let Some(Some(pinned)) = pinned.get(&container.image) {
            container.image = pinned.clone();
        }
        let json = serde_json::to_value(&spec).expect("a service spec serialises");
        completed.push((spec.name, json));
    }
    Ok(completed)
}

/// Each image's registry credentials, and (when [`Options::resolve_digests`]) its pinned
/// reference, asked before anything changes.
type AuthsAndPins = (
    HashMap<String, Option<String>>,
    HashMap<String, Option<String>>,
);

async fn auths_and_pins(
    engine: &Engine,
    request: &Request,
    options: &Options,
    images: impl IntoIterator<Item = String>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<AuthsAndPins, DeployError> {
    let auths = apply::registry_auths(request, images).await?;
    let pinned = if options.resolve_digests {
        apply::pin_images(engine, &auths, progress).await?
    } else {
        HashMap::new()
    };
    Ok((auths, pinned))
}

/// The safe defaults a spec leaves unset, each said as the CLI prints it.
fn add_safe_defaults(
    spec: &mut ServiceSpec,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) {
    if options.safe_defaults {
        for note in apply_safe_defaults(spec) {
            progress(Progress::Note(&format!("safe default: {note}")));
        }
    }
}

/// The safe defaults an edited spec leaves unset, each said as a suggestion, none applied.
fn suggest_safe_defaults(
    spec: &ServiceSpec,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) {
    if options.safe_defaults {
        for note in apply_safe_defaults(&mut spec.clone()) {
            progress(Progress::Note(&format!(
                "suggested: {note}; not applied: an edit changes only what it names"
            )));
        }
    }
}

/// What a run applies: stack files, a recorded revision, one service's new image, or specs
/// edited in place.
enum Job {
    Deploy(Stack),
    Rollback(Option<u64>),
    Image(ImageUpdate),
    Edit(Vec<(String, serde_json::Value)>),
}

/// The services to bring to their specs, as they are now and as they are to be.
struct Prepared {
    kind: DeployKind,
    current: HashMap<String, Service>,
    targets: Vec<Target>,
    /// Leads the revision's summary (why the run happened, when it is not files).
    note: Option<String>,
    /// The stack's networks, secrets and configs, and which this run creates.
    objects: Vec<objects::StackObject>,
    /// Services of the stack to remove: not in the files of a `--prune` deploy, or added
    /// after the revision a rollback goes back to.
    remove: Vec<String>,
}

/// What one deploy or rollback works with from start to end.
struct Run<'a, H> {
    engine: &'a Engine,
    history: &'a H,
    request: &'a Request,
    options: &'a Options,
}

/// The stack's services by name.
async fn current_services(
    engine: &Engine,
    stack: &str,
) -> Result<HashMap<String, Service>, EngineError> {
    Ok(engine
        .list_services(Some(stack))
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect())
}

/// `H` is bound only where the history is used: a preview needs none.
impl<'a, H> Run<'a, H> {
    fn new(
        engine: &'a Engine,
        history: &'a H,
        request: &'a Request,
        options: &'a Options,
    ) -> Run<'a, H> {
        Run {
            engine,
            history,
            request,
            options,
        }
    }

    /// Runs a job holding the stack's lock, and gives the lock back however it ends.
    async fn locked(
        &self,
        job: Job,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Outcome, DeployError>
    where
        H: History,
    {
        let stop = &self.options.stop;
        let Some(lock) =
            history::acquire(self.history, self.request, self.options, progress).await?
        else {
            return Ok(Outcome::stopped_early(stop.requested().unwrap_or_default()));
        };
        let result = async {
            let prepared = match job {
                Job::Deploy(stack) => self.prepare_deploy(stack, false, progress).await?,
                Job::Rollback(to) => self.prepare_rollback(to, progress).await?,
                Job::Image(update) => {
                    let (current, targets) =
                        image::prepare(self.engine, self.request, &update).await?;
                    Some(Prepared {
                        kind: DeployKind::AutoDeploy,
                        current,
                        targets,
                        note: Some(update.reason),
                        objects: Vec::new(),
                        remove: Vec::new(),
                    })
                }
                Job::Edit(specs) => Some(self.prepare_edit(specs).await?),
            };
            match prepared {
                Some(prepared) => self.apply(prepared, progress).await,
                // Stopped while waiting for a network to go, before anything changed.
                None => Ok(Outcome::stopped_early(stop.requested().unwrap_or_default())),
            }
        }
        .await;
        history::release(self.history, &lock, result).await
    }

    /// The services' specs as the stack is to have them; `dry_run`: without creating the
    /// networks, secrets and configs they name. `None`: stopped ([`Options::stop`]) while it
    /// waited for a network being removed, before it changed anything.
    async fn prepare_deploy(
        &self,
        stack: Stack,
        dry_run: bool,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Option<Prepared>, DeployError> {
        let Run {
            engine,
            request,
            options,
            ..
        } = *self;
        let Stack { spec, files } = stack;
        // Everything that can be known to fail is checked before anything is changed.
        let pruned = options.prune.then_some(request.stack.as_str());
        preflight::check(engine, &spec, pruned).await?;
        // Credentials and digests first, then secrets and configs, before anything is
        // created: a credential that cannot be had, a tag the registry does not have or a
        // changed file stops the deploy before it changes anything.
        let images = spec
            .services
            .values()
            .map(|s| s.task_template.container_spec.image.clone());
        let (auths, pinned) = auths_and_pins(engine, request, options, images, progress).await?;
        if !dry_run {
            let names = spec
                .networks
                .iter()
                .map(|n| n.name.as_str())
                .chain(spec.external_networks.iter().map(String::as_str));
            let waited = objects::wait_for_network_removal(
                engine,
                names.collect(),
                options.timeout,
                &options.stop,
                progress,
            )
            .await?;
            if waited == objects::Waited::Stopped {
                return Ok(None);
            }
        }
        let survey = objects::survey(engine, &spec, &files).await?;
        let objects = survey.objects(&spec);
        let ids = if dry_run {
            survey.preview_ids()
        } else {
            survey.create(engine, progress).await?
        };
        let api = engine.api_version().await?;
        let current = current_services(engine, &request.stack).await?;
        let mut targets = Vec::with_capacity(spec.services.len());
        for mut service in spec.services.into_values() {
            add_safe_defaults(&mut service, options, progress);
            let image = service.task_template.container_spec.image.clone();
            let current = current.get(&service.name).map(|s| &s.view);
            let mut target = apply::target(
                service,
                &ids,
                pinned.get(&image).and_then(Option::as_deref),
                current,
                auths.get(&image).cloned().flatten(),
            )?;
            for key in drop_unsupported(&mut target.desired, api) {
                progress(Progress::Warning(&format!(
                    "{}: `{key}` is left out: this engine speaks Engine API {}.{}, which \
                     does not have it",
                    target.name, api.0, api.1
                )));
            }
            targets.push(target);
        }
        let remove = if options.prune {
            not_targeted(&current, &targets)
        } else {
            Vec::new()
        };
        Ok(Some(Prepared {
            kind: DeployKind::Deploy,
            current,
            targets,
            note: None,
            objects,
            remove,
        }))
    }

    async fn prepare_edit(
        &self,
        specs: Vec<(String, serde_json::Value)>,
    ) -> Result<Prepared, DeployError> {
        // A spec no node can run would leave its service down until the timeout.
        preflight::check_placements(self.engine, &specs).await?;
        let mut current = HashMap::with_capacity(specs.len());
        for (name, _) in &specs {
            // A service that does not exist yet is created (a form's new service); a failed
            // create is removed again, like a deploy's.
            match self.engine.inspect_service(name).await {
                Ok(service) => {
                    current.insert(name.clone(), service);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Prepared {
            kind: DeployKind::Edit,
            targets: self.targets(specs, &current).await?,
            current,
            note: None,
            objects: Vec::new(),
            remove: Vec::new(),
        })
    }

    /// The targets for raw specs: the current scale where a spec gives none, and each image's
    /// credentials asked before anything changes.
    async fn targets(
        &self,
        mut desired: Vec<(String, serde_json::Value)>,
        current: &HashMap<String, Service>,
    ) -> Result<Vec<Target>, DeployError> {
        for (name, spec) in &mut desired {
            // Specs are recorded raw: the one edit a recorded spec gets is the current scale.
            if let Some(service) = current.get(name) {
                inherit_replicas(spec, &service.view.mode);
            }
        }
        let images = desired
            .iter()
            .map(|(_, spec)| apply::image_of(spec))
            .collect::<Result<Vec<_>, _>>()?;
        let auths = apply::registry_auths(self.request, images.iter().cloned()).await?;
        Ok(desired
            .into_iter()
            .zip(images)
            .map(|((name, desired), image)| Target {
                name,
                desired,
                registry_auth: auths.get(&image).cloned().flatten(),
            })
            .collect())
    }

    /// `None`: stopped while it waited for a network being removed, before it changed
    /// anything.
    async fn prepare_rollback(
        &self,
        to: Option<u64>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Option<Prepared>, DeployError>
    where
        H: History,
    {
        let Run {
            engine,
            history,
            request,
            options,
        } = *self;
        let stack = request.stack.as_str();
        let current = current_services(engine, stack).await?;
        let (record, mut specs) = rollback_specs(engine, history, stack, to, &current).await?;
        // The networks, secrets and configs they name come back first (or the rollback is
        // refused, naming a secret that cannot), and the specs name them by their ids now.
        let Some((moved, objects)) = revive::revive(engine, &record, options, progress).await?
        else {
            return Ok(None);
        };
        for (_, spec) in &mut specs {
            revive::repoint(spec, &moved);
        }
        let targets = self.targets(specs, &current).await?;
        progress(Progress::Note(&format!(
            "re-applying revision {} of {stack} ({}, {} by {})",
            record.revision,
            record.outcome,
            record.started_at,
            record.by_sentence()
        )));
        // The stack goes back to what the revision had: services added after it go (their
        // removal is recorded, so rolling forward again brings them back).
        let remove = not_targeted(&current, &targets);
        Ok(Some(Prepared {
            kind: DeployKind::Rollback,
            current,
            targets,
            note: None,
            objects,
            remove,
        }))
    }

    /// Applies the targets, follows what changed, rolls the stack back when something fails, and
    /// records the revision.
    async fn apply(
        &self,
        prepared: Prepared,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Outcome, DeployError>
    where
        H: History,
    {
        let Run {
            engine,
            history,
            request,
            options,
        } = *self;
        let Prepared {
            kind,
            current,
            targets,
            note,
            remove,
            ..
        } = prepared;
        let note = note.as_deref();
        let stack = request.stack.as_str();
        let stop = &options.stop;
        if let Some(why) = stop.requested() {
            // Stopped while preparing: nothing changed yet, so no revision is begun.
            return Ok(Outcome::stopped_early(why));
        }
        let start = history::RevisionStart {
            stack,
            by: &request.by,
            action: request.action.as_deref(),
            kind: &kind,
            files: &request.files,
            at: Timestamp::now(),
        };
        let revision = history.append(&start).await.map_err(Into::into)?;
        // Removals first, as `docker stack deploy --prune` does: a port or a name they hold
        // may be the one a new service takes.
        let mut applying = apply::remove_all(engine, &current, &remove, stop, progress).await;
        if applying.refused.is_none() && applying.not_applied.is_empty() {
            let rest = apply::apply_all(engine, &current, targets, stop, progress).await;
            applying.applied.extend(rest.applied);
            applying.unchanged = rest.unchanged;
            applying.refused = rest.refused;
            applying.not_applied = rest.not_applied;
        } else {
            applying
                .not_applied
                .extend(targets.into_iter().map(|t| t.name));
        }
        let mut applied = applying.applied;
        let unchanged = applying.unchanged;
        // What the run did not get to runs as before: recorded with the spec it has.
        let not_applied: Vec<(String, Option<serde_json::Value>)> = applying
            .not_applied
            .into_iter()
            .map(|name| {
                let spec = current.get(&name).map(|s| s.spec.clone());
                (name, spec)
            })
            .collect();
        let mut outcome = Outcome {
            revision: Some(revision),
            succeeded: false,
            services: Vec::new(),
            failures: Vec::new(),
            rollback_reaction: None,
            rolled_back: Vec::new(),
            interrupted: None,
        };
        let mut stopped = None;
        let failed = match applying.refused {
            Some((name, error)) => {
                let why = format!("the engine refused the change: {error}");
                let state = ServiceState::Failed { why: why.clone() };
                outcome.failures.push(FailureReport {
                    service: name.clone(),
                    why,
                    logs: Vec::new(),
                    logs_note: None,
                });
                if applied.is_empty() {
                    // Nothing was changed: nothing to put back.
                    let objects = recorded_objects(engine, &applied, &unchanged, progress).await;
                    record::finish(
                        history,
                        stack,
                        revision,
                        note,
                        &outcome,
                        record::Ran {
                            applied: &applied,
                            unchanged: &unchanged,
                            not_applied: &not_applied,
                            objects: &objects,
                        },
                    )
                    .await?;
                    return Err(DeployError::Engine(error));
                }
                progress(Progress::State {
                    service: &name,
                    state: &state,
                });
                true
            }
            None => match stop.requested() {
                Some(why) => {
                    stopped = Some(why);
                    false
                }
                None => match follow::follow(engine, &mut applied, options, progress).await? {
                    Verdict::Failed => true,
                    // No verdict: stopped while following.
                    Verdict::Wait => {
                        stopped = stop.requested();
                        false
                    }
                    Verdict::Succeeded => false,
                },
            },
        };
        if failed {
            let requested_at = Timestamp::now();
            let reason = record::failure_reasons(&applied, &outcome.failures);
            progress(Progress::StackRollback { reason: &reason });
            let changes: Vec<Change> = applied
                .iter()
                .map(|a| Change {
                    service: a.name.clone(),
                    before: a.before.clone(),
                    state: a.state.clone(),
                })
                .collect();
            let actions = stack_rollback(&changes);
            outcome.rollback_reaction = record::reaction(&applied, requested_at);
            for change in applied.iter().filter(|a| a.state.is_failure()) {
                outcome
                    .failures
                    .push(follow::failure_report(engine, change).await);
            }
            let put_back =
                restore::put_back(engine, request, &applied, actions, options, progress).await?;
            outcome.rolled_back = put_back.ended;
            if put_back.stopped {
                stopped = stop.requested();
            }
        } else {
            outcome.succeeded = stopped.is_none();
        }
        outcome.interrupted = stopped.map(|why| Interrupted {
            why,
            applied: applied.iter().map(|a| a.name.clone()).collect(),
            not_applied: not_applied.iter().map(|(name, _)| name.clone()).collect(),
        });
        outcome.services = record::service_outcomes(&applied, &unchanged);
        let objects = recorded_objects(engine, &applied, &unchanged, progress).await;
        let ran = record::Ran {
            applied: &applied,
            unchanged: &unchanged,
            not_applied: &not_applied,
            objects: &objects,
        };
        record::finish(history, stack, revision, note, &outcome, ran).await?;
        Ok(outcome)
    }
}

/// The networks, secrets and configs the services use after the run, for its record. One that
/// cannot be read is a warning and leaves them out: the revision is recorded all the same.
async fn recorded_objects(
    engine: &Engine,
    applied: &[apply::Applied],
    unchanged: &[(String, serde_json::Value)],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<swarmkeeper_store::ObjectRevision> {
    let specs = applied
        .iter()
        .map(|a| &a.after)
        .chain(unchanged.iter().map(|(_, spec)| spec));
    revive::used(engine, specs).await.unwrap_or_else(|e| {
        progress(Progress::Warning(&format!(
            "the networks, secrets and configs the services use could not be read for the              history ({e}): a rollback to this revision cannot create them again"
        )));
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_before() {
        let words: Vec<String> = [
            Action::Create,
            Action::Unchanged,
            Action::SwarmRollback,
            Action::CreateNetwork,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            words,
            ["create", "unchanged", "swarm rollback", "create network"]
        );
    }

    #[test]
    fn a_request_does_not_print_credentials() {
        let auth: Arc<dyn RegistryAuth> = Arc::new(|_: &str| Ok(Some("c2VjcmV0".to_string())));
        let request = Request {
            stack: "shop".into(),
            by: "ci".into(),
            action: None,
            files: Vec::new(),
            registry_auth: Some(auth),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("registry_auth: true") && !shown.contains("c2VjcmV0"));
    }
}
