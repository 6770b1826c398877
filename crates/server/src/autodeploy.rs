//! Auto-deploy in the server: services labelled `swarmkeeper.autodeploy=true` follow their
//! image's tag. The decisions are the `autodeploy` crate's ([`Tracker`]); this is the shell
//! that feeds it:
//!
//! - every [`LIST_EVERY`] one `GET /services` finds the followed services (new ones get a
//!   tracker, or the one the store remembers; labels changed take effect; removed ones are
//!   forgotten);
//! - a service whose check is due gets one manifest `HEAD` of its tag (at most
//!   [`CONCURRENT_CHECKS`] at once), with the server's registry credentials;
//! - when the registry's digest is not the one the listing says the service runs, the service
//!   is read again before deciding (someone may have deployed meanwhile): a tag that did not
//!   move costs no engine call and writes no spec;
//! - a new digest is rolled out through the deploy engine ([`swarmkeeper_deploy::update_image`]:
//!   the stack's lock, following, stack-wide rollback, a revision "auto-deploy: tag X moved to
//!   sha256:…", the same credentials as every deploy), at most [`CONCURRENT_ROLLOUTS`] at once
//!   and never two for one service; its outcome goes back to the tracker, into the audit log
//!   and the service's events;
//! - the tracker is saved whenever what it remembers changes (a rollout starts or ends, a
//!   check fails), so failed digests and backoffs survive a restart;
//! - hooks ([`AutoDeploy::pushed`], [`AutoDeploy::check_now`]) only bring checks forward;
//! - a service labelled for auto-deploy that cannot be followed (a bad interval, an image
//!   pinned to a digest: lint's SK050 at deploy time) is logged as a warning once, when the
//!   problem is first seen or changes, not at every listing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use swarmkeeper_auth::AuditStep;
use swarmkeeper_autodeploy::{
    followed, settings, CheckResult, Decision, Failure, Followed, PushedTag, RolloutOutcome,
    Tracker,
};
use swarmkeeper_deploy::{history_stack, ImageUpdate, Request};
use swarmkeeper_engine::Service;
use swarmkeeper_reference::Digest;
use swarmkeeper_registry::RegistryError;
use swarmkeeper_store::AutoDeployEvent;
use tokio::sync::{Notify, Semaphore};

use crate::deploys::run_deploy;
use crate::state::AppState;

/// How often the services are listed to find the followed ones.
pub const LIST_EVERY: Duration = Duration::from_secs(15);
/// Registry checks in flight at once.
pub const CONCURRENT_CHECKS: usize = 16;
/// Rollouts in flight at once (each on a thread of its own).
pub const CONCURRENT_ROLLOUTS: usize = 4;
/// Checks each service keeps in memory for its page.
pub const RECENT_CHECKS: usize = 10;
/// Who auto-deploy is, in the history and the audit log: also the audit step it takes.
pub const BY: &str = AuditStep::AutoDeploy.as_str();
/// A service page's registry lookup (for a service auto-deploy does not follow) is reused
/// this long: the page refreshes every few seconds, the registry is asked once a minute.
pub const LOOKUP_TTL: Duration = Duration::from_secs(60);
/// A service page waits this long for the registry at most.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Registry lookups of service pages remembered at most (then forgotten all at once).
const LOOKUPS_KEPT: usize = 1000;

/// The auto-deploy state of the server: one per process, shared by the loop and the routes.
pub struct AutoDeploy {
    followers: Mutex<Followers>,
    /// Service pages' registry lookups by tag: when asked, and the answer.
    lookups: Mutex<HashMap<String, Lookup>>,
    wake: Notify,
    checks: Semaphore,
    rollouts: Semaphore,
}

/// A service page's registry lookup: when it was asked (monotonic, and as shown), the answer.
type Lookup = (Instant, Timestamp, Result<Digest, String>);

#[derive(Default)]
struct Followers {
    by_id: HashMap<String, Follower>,
    /// Services labelled for auto-deploy that cannot be followed, by id: why.
    problems: HashMap<String, String>,
    /// Trackers read from the store at start, by service id, until their service is seen.
    remembered: HashMap<String, Tracker>,
    listed: Option<Instant>,
}

struct Follower {
    name: String,
    /// `ContainerSpec.Image` as the service has it.
    image: String,
    followed: Followed,
    tracker: Tracker,
    checking: bool,
    /// A hook came while a check was under way: that check may have asked the registry
    /// before the push, so another one is due as soon as it ends.
    hook_again: bool,
    recent: VecDeque<CheckRecord>,
}

/// One check as a service page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRecord {
    pub at: Timestamp,
    pub registry_digest: Option<String>,
    /// `up to date`, `rolling out`, `in flight`, `known bad`, or the error.
    pub outcome: String,
}

/// A service's auto-deploy state, as its page and `GET /api/services/{name}` show it.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceAutoDeploy {
    /// The label says `swarmkeeper.autodeploy=true` and the image can be followed.
    pub enabled: bool,
    /// Why a service labelled for auto-deploy is not followed.
    pub problem: Option<String>,
    /// The followed tag, e.g. `registry.example:5000/app:1`.
    pub tag: Option<String>,
    pub interval_seconds: Option<u64>,
    /// One line: "sha256:… failed at 14:02, rolled back; waiting for a newer push".
    pub status: Option<String>,
    pub next_check: Option<Timestamp>,
    /// Digests that failed and are not tried again, newest first.
    pub failed: Vec<Failure>,
    pub recent_checks: Vec<CheckRecord>,
}

impl Default for AutoDeploy {
    fn default() -> AutoDeploy {
        AutoDeploy {
            followers: Mutex::new(Followers::default()),
            lookups: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            checks: Semaphore::new(CONCURRENT_CHECKS),
            rollouts: Semaphore::new(CONCURRENT_ROLLOUTS),
        }
    }
}

impl AutoDeploy {
    fn lock(&self) -> std::sync::MutexGuard<'_, Followers> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A registry said these tags moved: each service following one is checked now. Returns
    /// the names of those services.
    pub fn pushed(&self, tags: &[PushedTag]) -> Vec<String> {
        let now = Timestamp::now();
        let mut followers = self.lock();
        let mut names: Vec<String> = followers
            .by_id
            .values_mut()
            .filter_map(|f| {
                let push = tags.iter().rev().find(|t| f.followed.moved_by(t))?;
                f.tracker.pushed(now, push.digest.as_ref());
                f.hook_again |= f.checking;
                Some(f.name.clone())
            })
            .collect();
        drop(followers);
        names.sort();
        if !names.is_empty() {
            self.wake.notify_one();
        }
        names
    }

    /// Checks a followed service now (or when a backoff the registry asked for ends): the
    /// time of the check, `None` when the service is not followed.
    pub fn check_now(&self, service_name: &str) -> Option<Timestamp> {
        let now = Timestamp::now();
        let at = self
            .lock()
            .by_id
            .values_mut()
            .find(|f| f.name == service_name)
            .map(|f| {
                f.hook_again |= f.checking;
                f.tracker.hook(now)
            })?;
        self.wake.notify_one();
        Some(at)
    }

    /// The services are to be listed again at once (a label was changed).
    pub fn relist(&self) {
        self.lock().listed = None;
        self.wake.notify_one();
    }

    /// Forgets that `digest` failed for a service, so that auto-deploy may try it again.
    pub fn forget_failure(&self, state: &AppState, service_id: &str, digest: &Digest) -> bool {
        let mut followers = self.lock();
        let Some(follower) = followers.by_id.get_mut(service_id) else {
            return false;
        };
        let forgot = follower.tracker.forget_failure(digest);
        if forgot {
            save(state, service_id, follower);
            self.wake.notify_one();
        }
        forgot
    }

    /// What a service's page shows.
    pub fn service(&self, service: &Service) -> ServiceAutoDeploy {
        let followers = self.lock();
        let problem = followers.problems.get(&service.id).cloned();
        match followers.by_id.get(&service.id) {
            Some(f) => {
                let tz = jiff::tz::TimeZone::UTC;
                let mut failed = f.tracker.failures().to_vec();
                failed.reverse();
                ServiceAutoDeploy {
                    enabled: true,
                    problem,
                    tag: Some(f.followed.tag.to_string()),
                    interval_seconds: settings(&service.view.labels)
                        .ok()
                        .flatten()
                        .map(|s| s.interval.as_secs()),
                    status: Some(f.tracker.status().describe(&tz)),
                    next_check: Some(f.tracker.next_check()),
                    failed,
                    recent_checks: f.recent.iter().rev().cloned().collect(),
                }
            }
            None => ServiceAutoDeploy {
                enabled: false,
                problem,
                tag: followed(&service.view.image.to_string())
                    .ok()
                    .map(|f| f.tag.to_string()),
                interval_seconds: None,
                status: None,
                next_check: None,
                failed: Vec::new(),
                recent_checks: Vec::new(),
            },
        }
    }

    /// The registry digest the last successful check of a followed service read, with when.
    pub fn last_registry_digest(&self, service_id: &str) -> Option<(Digest, Timestamp)> {
        let followers = self.lock();
        let f = followers.by_id.get(service_id)?;
        f.recent.iter().rev().find_map(|c| {
            let digest = Digest::parse(c.registry_digest.as_deref()?).ok()?;
            Some((digest, c.at))
        })
    }

    /// How many services are followed now.
    pub fn followed_count(&self) -> usize {
        self.lock().by_id.len()
    }
}

/// A service's image against its tag in the registry, as every service page shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TagDigest {
    /// The tag the image names, e.g. `registry.example:5000/app:1`.
    pub tag: Option<String>,
    /// The digest the service is pinned to; `None` when it is not pinned.
    pub running: Option<String>,
    /// The tag's digest in the registry, as the last check read it.
    pub registry: Option<String>,
    pub checked_at: Option<Timestamp>,
    /// `current`, `outdated` or `unpinned`; `None` when the registry could not say.
    pub freshness: Option<&'static str>,
    /// Why the registry could not say.
    pub error: Option<String>,
}

impl AutoDeploy {
    /// The service's image against its tag's digest: the last check's for a followed
    /// service, else one manifest `HEAD` (reused for [`LOOKUP_TTL`], at most
    /// [`LOOKUP_TIMEOUT`]).
    pub async fn tag_digest(&self, state: &AppState, service: &Service) -> TagDigest {
        let image = service.view.image.to_string();
        let f = match followed(&image) {
            Ok(f) => f,
            Err(e) => {
                return TagDigest {
                    error: Some(e.to_string()),
                    ..TagDigest::default()
                }
            }
        };
        let (result, at) = match self.last_registry_digest(&service.id) {
            Some((digest, at)) => (Ok(digest), at),
            None => self.lookup(state, &image, &f.tag).await,
        };
        let (registry, freshness, error) = match result {
            Ok(d) => (
                Some(d.to_string()),
                Some(swarmkeeper_autodeploy::freshness(f.running.as_ref(), &d).as_str()),
                None,
            ),
            Err(e) => (None, None, Some(e)),
        };
        TagDigest {
            tag: Some(f.tag.to_string()),
            running: f.running.map(|d| d.to_string()),
            registry,
            checked_at: Some(at),
            freshness,
            error,
        }
    }

    async fn lookup(
        &self,
        state: &AppState,
        image: &str,
        tag: &swarmkeeper_reference::Reference,
    ) -> (Result<Digest, String>, Timestamp) {
        let key = tag.to_string();
        if let Some((asked, at, result)) = self
            .lookups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if asked.elapsed() < LOOKUP_TTL {
                return (result.clone(), *at);
            }
        }
        let asked = tokio::time::timeout(LOOKUP_TIMEOUT, async {
            let client = state
                .registries
                .client(&state.engine)
                .await
                .map_err(|e| e.to_string())?;
            let auth = state
                .registries
                .keychain()
                .for_image(image)
                .await
                .map_err(|e| e.to_string())?;
            client
                .manifest_digest(tag, auth.as_ref())
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the registry did not answer within {}s",
                LOOKUP_TIMEOUT.as_secs()
            ))
        });
        let now = Timestamp::now();
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        if lookups.len() >= LOOKUPS_KEPT {
            lookups.clear();
        }
        lookups.insert(key, (Instant::now(), now, asked.clone()));
        (asked, now)
    }
}

/// Starts the loop; it ends when the server shuts down.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let stopping = state.shutdown.started();
        tokio::select! {
            () = stopping => {}
            () = run(state.clone()) => {}
        }
    });
}

async fn run(state: AppState) {
    match state.store().autodeploy_trackers() {
        Ok(saved) => {
            let now = Timestamp::now();
            let mut followers = state.autodeploy.lock();
            for (id, name, json) in saved {
                match serde_json::from_str::<Tracker>(&json) {
                    Ok(mut tracker) => {
                        tracker.resume(now);
                        followers.remembered.insert(id, tracker);
                    }
                    Err(e) => {
                        tracing::warn!(service = name, error = %e, "a saved auto-deploy state cannot be read; starting afresh")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "the saved auto-deploy states cannot be read"),
    }
    loop {
        let list_due = state
            .autodeploy
            .lock()
            .listed
            .is_none_or(|at| at.elapsed() >= LIST_EVERY);
        if list_due {
            match state.engine.list_services(None).await {
                Ok(services) => sync(&state, &services),
                Err(e) => {
                    tracing::warn!(error = %e, "auto-deploy cannot list the services");
                    state.autodeploy.lock().listed = Some(Instant::now());
                }
            }
        }
        let now = Timestamp::now();
        let (due, next) = {
            let mut followers = state.autodeploy.lock();
            let mut due = Vec::new();
            let mut next = followers
                .listed
                .map_or(Instant::now(), |at| at + LIST_EVERY);
            for (id, f) in followers.by_id.iter_mut() {
                if f.checking {
                    continue;
                }
                if f.tracker.is_due(now) {
                    f.checking = true;
                    due.push(id.clone());
                } else if f.tracker.in_flight().is_none() {
                    let wait = (f.tracker.next_check() - now)
                        .try_into()
                        .unwrap_or(Duration::ZERO);
                    next = next.min(Instant::now() + wait);
                }
            }
            (due, next)
        };
        for id in due {
            tokio::spawn(check(state.clone(), id));
        }
        let sleep = tokio::time::sleep_until(next.into());
        tokio::select! {
            () = sleep => {}
            () = state.autodeploy.wake.notified() => {}
        }
    }
}

/// Brings the followers in line with the services listed.
fn sync(state: &AppState, services: &[Service]) {
    let now = Timestamp::now();
    let mut forgotten = Vec::new();
    let mut to_save = Vec::new();
    {
        let mut followers = state.autodeploy.lock();
        let followers = &mut *followers;
        followers.listed = Some(Instant::now());
        let known_problems = std::mem::take(&mut followers.problems);
        let mut seen = std::collections::HashSet::new();
        for service in services {
            seen.insert(service.id.as_str());
            let wanted = settings(&service.view.labels)
                .map_err(|e| e.to_string())
                .and_then(|s| match s {
                    None => Ok(None),
                    Some(s) => followed(&service.view.image.to_string())
                        .map(|f| Some((s, f)))
                        .map_err(|e| format!("image {}: {e}", service.view.image)),
                });
            let (settings, followed) = match wanted {
                Ok(Some(wanted)) => wanted,
                Ok(None) => {
                    followers.by_id.remove(&service.id);
                    continue;
                }
                Err(problem) => {
                    if is_new_problem(&known_problems, &service.id, &problem) {
                        tracing::warn!(
                            service = service.name,
                            problem,
                            "labelled swarmkeeper.autodeploy=true, but not followed"
                        );
                    }
                    followers.problems.insert(service.id.clone(), problem);
                    followers.by_id.remove(&service.id);
                    continue;
                }
            };
            let image = service.view.image.to_string();
            match followers.by_id.get_mut(&service.id) {
                Some(f) => {
                    f.name = service.name.clone();
                    f.image = image;
                    f.followed = followed;
                    f.tracker.set_settings(settings, now);
                }
                None => {
                    let tracker = match followers.remembered.remove(&service.id) {
                        Some(mut tracker) => {
                            tracker.set_settings(settings, now);
                            tracker
                        }
                        None => {
                            to_save.push(service.id.clone());
                            Tracker::new(&service.id, settings, now)
                        }
                    };
                    followers.by_id.insert(
                        service.id.clone(),
                        Follower {
                            name: service.name.clone(),
                            image,
                            followed,
                            tracker,
                            checking: false,
                            hook_again: false,
                            recent: VecDeque::new(),
                        },
                    );
                }
            }
        }
        followers.by_id.retain(|id, _| seen.contains(id.as_str()));
        // What the store remembers of services that no longer exist goes.
        forgotten.extend(
            followers
                .remembered
                .keys()
                .filter(|id| !seen.contains(id.as_str()))
                .cloned(),
        );
        followers
            .remembered
            .retain(|id, _| seen.contains(id.as_str()));
        for id in &to_save {
            if let Some(f) = followers.by_id.get(id) {
                save(state, id, f);
            }
        }
    }
    if !forgotten.is_empty() {
        if let Err(e) = state.store().forget_autodeploy(&forgotten) {
            tracing::warn!(error = %e, "cannot forget the auto-deploy state of removed services");
        }
    }
}

/// Whether `problem` of service `id` is to be logged: it was not known at the last listing, or
/// it was another one. A service that keeps its problem is logged once, not every
/// [`LIST_EVERY`].
fn is_new_problem(known: &HashMap<String, String>, id: &str, problem: &str) -> bool {
    known.get(id).map(String::as_str) != Some(problem)
}

/// Saves a follower's tracker; a failure is logged (the tracker in memory still holds).
fn save(state: &AppState, id: &str, f: &Follower) {
    let json = serde_json::to_string(&f.tracker).expect("a tracker serialises");
    if let Err(e) = state
        .store()
        .save_autodeploy_tracker(id, &f.name, &json, Timestamp::now())
    {
        tracing::warn!(service = f.name, error = %e, "cannot save the auto-deploy state");
    }
}

fn event(
    state: &AppState,
    id: &str,
    kind: &str,
    digest: Option<&Digest>,
    outcome: &str,
    message: &str,
) {
    let event = AutoDeployEvent {
        service_id: id.to_string(),
        at: Timestamp::now(),
        kind: kind.to_string(),
        digest: digest.map(ToString::to_string),
        outcome: outcome.to_string(),
        message: message.to_string(),
    };
    if let Err(e) = state.store().record_autodeploy_event(&event) {
        tracing::warn!(error = %e, "cannot record an auto-deploy event");
    }
}

/// One check of one service: a manifest `HEAD` of its tag, the service read again if the
/// digest differs from what it ran at the last listing, then the tracker's decision.
async fn check(state: AppState, id: String) {
    let Ok(_permit) = state.autodeploy.checks.acquire().await else {
        return;
    };
    let Some((image, tag, listed_running)) = state.autodeploy.lock().by_id.get(&id).map(|f| {
        (
            f.image.clone(),
            f.followed.tag.clone(),
            f.followed.running.clone(),
        )
    }) else {
        return;
    };
    let result = match state.registries.client(&state.engine).await {
        Ok(client) => {
            let asked: Result<Digest, RegistryError> = async {
                let auth = state.registries.keychain().for_image(&image).await?;
                client.manifest_digest(&tag, auth.as_ref()).await
            }
            .await;
            match asked {
                Ok(digest) => CheckResult::Digest(digest),
                Err(RegistryError::TooManyRequests { retry_after, .. }) => {
                    CheckResult::TooManyRequests { retry_after }
                }
                Err(e) => CheckResult::Failed {
                    retry_after: e.retry_after(),
                    message: e.to_string(),
                },
            }
        }
        Err(e) => CheckResult::Failed {
            message: e.to_string(),
            retry_after: None,
        },
    };
    // The listing may be older than the last deploy: read the service again before acting.
    let mut running = listed_running;
    let mut fresh_image = None;
    if let CheckResult::Digest(digest) = &result {
        if running.as_ref() != Some(digest) {
            match state.engine.inspect_service(&id).await {
                Ok(service) => {
                    let image = service.view.image.to_string();
                    match followed(&image) {
                        Ok(f) if f.tag == tag => {
                            running = f.running;
                            fresh_image = Some(image);
                        }
                        // Another image or tag now: the next listing follows it instead.
                        _ => {
                            finish_check(&state, &id);
                            state.autodeploy.relist();
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(service = id, error = %e, "re-reading a service failed");
                    finish_check(&state, &id);
                    state.autodeploy.relist();
                    return;
                }
            }
        }
    }
    let now = Timestamp::now();
    let (decision, name, line) = {
        let mut followers = state.autodeploy.lock();
        let Some(f) = followers.by_id.get_mut(&id) else {
            return;
        };
        if let Some(image) = fresh_image {
            if let Ok(followed) = followed(&image) {
                f.followed = followed;
            }
            f.image = image;
        }
        let registry_digest = match &result {
            CheckResult::Digest(d) => Some(d.to_string()),
            _ => None,
        };
        let error = match &result {
            CheckResult::Digest(_) => None,
            CheckResult::TooManyRequests { .. } => Some("429 Too Many Requests".to_string()),
            CheckResult::Failed { message, .. } => Some(message.clone()),
        };
        let decision = f.tracker.checked(now, running.as_ref(), result);
        let outcome = match &decision {
            Decision::UpToDate => "up to date".to_string(),
            Decision::RollOut(_) => "rolling out".to_string(),
            Decision::InFlight(_) => "a rollout is in flight".to_string(),
            Decision::KnownBad(_) => "failed before; waiting for a newer push".to_string(),
            Decision::BackOff { until } => {
                format!("{}; next check at {until}", error.unwrap_or_default())
            }
        };
        f.recent.push_back(CheckRecord {
            at: now,
            registry_digest,
            outcome: outcome.clone(),
        });
        if f.recent.len() > RECENT_CHECKS {
            f.recent.pop_front();
        }
        f.checking = false;
        if std::mem::take(&mut f.hook_again) && decision == Decision::UpToDate {
            f.tracker.hook(now);
        }
        // The loop skipped this service while it was being checked and sleeps until the next
        // listing: a check due before then (a quick re-check, a hook that came meanwhile)
        // needs it awake.
        let soon = now
            .checked_add(SignedDuration::try_from(LIST_EVERY).unwrap_or_default())
            .unwrap_or(Timestamp::MAX);
        if f.tracker.next_check() < soon {
            state.autodeploy.wake.notify_one();
        }
        if matches!(decision, Decision::RollOut(_) | Decision::BackOff { .. }) {
            save(&state, &id, f);
        }
        (decision, f.name.clone(), outcome)
    };
    match decision {
        Decision::RollOut(digest) => {
            tokio::spawn(roll_out(state.clone(), id, digest));
        }
        Decision::BackOff { until } => {
            tracing::info!(service = name, %until, "auto-deploy check failed: {line}");
            event(&state, &id, "check", None, "failed", &line);
        }
        _ => {}
    }
}

/// A check that ended without a decision (the service changed under it).
fn finish_check(state: &AppState, id: &str) {
    if let Some(f) = state.autodeploy.lock().by_id.get_mut(id) {
        f.checking = false;
        f.hook_again = false;
    }
}

/// Rolls a service out to `digest` through the deploy engine, then tells the tracker.
async fn roll_out(state: AppState, id: String, digest: Digest) {
    let Ok(_permit) = state.autodeploy.rollouts.acquire().await else {
        return;
    };
    let Some((name, image, tag)) = state
        .autodeploy
        .lock()
        .by_id
        .get(&id)
        .map(|f| (f.name.clone(), f.image.clone(), f.followed.tag.clone()))
    else {
        return;
    };
    let reason = format!("auto-deploy: tag {} moved to {digest}", tag.familiar());
    let outcome = match state.engine.inspect_service(&id).await {
        Err(e) => RolloutOutcome::NotStarted {
            reason: e.to_string(),
        },
        Ok(service) => {
            let pinned = format!("{}@{digest}", service.view.image.name);
            let request = Request {
                stack: history_stack(&service).to_string(),
                by: BY.to_string(),
                action: None,
                files: Vec::new(),
                registry_auth: Some(state.registries.registry_auth()),
            };
            let update = ImageUpdate {
                service: name.clone(),
                image: pinned,
                expected: image,
                reason: reason.clone(),
            };
            let options = state.deploy_options();
            let step = AuditStep::AutoDeploy.as_str();
            if let Err(e) = state.audit(BY, step, &name, &format!("{reason}: started")) {
                tracing::warn!(error = %e, "auto-deploy cannot write the audit log");
            }
            let engine = state.engine.clone();
            let ran = run_deploy(&state, move |history, progress| {
                Box::pin(async move {
                    swarmkeeper_deploy::update_image(
                        &engine, history, &request, update, &options, progress,
                    )
                    .await
                })
            })
            .await;
            match ran {
                Ok((Ok(outcome), _)) if outcome.succeeded => RolloutOutcome::Converged,
                Ok((Ok(outcome), _)) => {
                    let why = outcome
                        .failures
                        .iter()
                        .map(|f| format!("{}: {}", f.service, f.why))
                        .collect::<Vec<_>>()
                        .join("; ");
                    if outcome.rolled_back.is_empty() {
                        RolloutOutcome::Failed { reason: why }
                    } else {
                        RolloutOutcome::RolledBack { reason: why }
                    }
                }
                Ok((Err(e), _)) => RolloutOutcome::NotStarted {
                    reason: e.to_string(),
                },
                Err(e) => RolloutOutcome::NotStarted {
                    reason: e.to_string(),
                },
            }
        }
    };
    let (word, why) = match &outcome {
        RolloutOutcome::Converged => ("converged", String::new()),
        RolloutOutcome::RolledBack { reason } => ("rolled back", reason.clone()),
        RolloutOutcome::Failed { reason } => ("failed", reason.clone()),
        RolloutOutcome::NotStarted { reason } => ("not started", reason.clone()),
    };
    {
        let mut followers = state.autodeploy.lock();
        if let Some(f) = followers.by_id.get_mut(&id) {
            if let Err(e) = f.tracker.finished(Timestamp::now(), &digest, outcome) {
                tracing::warn!(service = name, error = %e, "auto-deploy outcome not expected");
            }
            save(&state, &id, f);
        }
    }
    let detail = if why.is_empty() {
        format!("{reason}: {word}")
    } else {
        format!("{reason}: {word}: {why}")
    };
    tracing::info!(service = name, "{detail}");
    event(&state, &id, "rollout", Some(&digest), word, &why);
    if let Err(e) = state.audit(BY, AuditStep::AutoDeploy.as_str(), &name, &detail) {
        tracing::warn!(error = %e, "auto-deploy cannot write the audit log");
    }
    state.autodeploy.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_logged_when_first_seen_or_changed_only() {
        let mut known = HashMap::new();
        assert!(is_new_problem(&known, "s1", "image pinned"));
        known.insert("s1".to_string(), "image pinned".to_string());
        assert!(!is_new_problem(&known, "s1", "image pinned"));
        assert!(is_new_problem(&known, "s1", "bad interval"));
        assert!(is_new_problem(&known, "s2", "image pinned"));
    }
}
