//! What a run leaves in the history, and what a rollback reads back from it. Pure but for
//! [`finish`], which writes.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use swarmkeeper_store::{DeployOutcome, DeployRecord, ObjectRevision, ServiceRevision};

use swarmkeeper_engine::{inherit_replicas, ImageRef, Service, ServiceView};
use swarmkeeper_rollout::revisions::{rollback_target, unfit_target as unfit, Unfit};
use swarmkeeper_rollout::{spec_matches, ServiceState};

use crate::apply::Applied;
use crate::history::{History, RevisionEnd};
use crate::{Action, DeployError, FailureReport, Outcome, Restored, ServiceOutcome};

impl Outcome {
    /// How the revision ended, as the history records it.
    pub fn label(&self) -> DeployOutcome {
        if self.interrupted.is_some() {
            DeployOutcome::Interrupted
        } else if self.succeeded {
            if self.services.iter().all(|s| s.action == Action::Unchanged) {
                DeployOutcome::Unchanged
            } else {
                DeployOutcome::Succeeded
            }
        } else if self.rolled_back.is_empty() {
            DeployOutcome::Failed
        } else {
            DeployOutcome::RolledBack
        }
    }
}

/// The revision a rollback without `--to` goes back to: the newest succeeded revision whose
/// specs are not what the stack runs now (`current`, its services by name), by
/// [`rollback_target`] ([`unfit_target`]'s rule). Re-applying what runs would change nothing: after a deploy that
/// changed nothing, or one that deployed the same specs again, the revision before is the
/// one wanted; after an interrupted deploy, what runs is half of it and the newest succeeded
/// revision is restored. `revisions` come newest first.
pub(crate) fn previous_good(
    stack: &str,
    revisions: Vec<DeployRecord>,
    current: &HashMap<String, Service>,
) -> Result<DeployRecord, DeployError> {
    rollback_target(
        revisions,
        |r| r.outcome == DeployOutcome::Succeeded,
        |r| runs_now(r, current),
    )
    .ok_or_else(|| {
        DeployError::Input(format!(
            "stack {stack} has no earlier succeeded revision to roll back to; see `swarmkeeper history {stack}`"
        ))
    })
}

/// Why `record` cannot be the target of a rollback of a stack whose services are `current`
/// (by name), by the one rule the stack page, the API and the CLI share
/// ([`swarmkeeper_rollout::revisions::unfit_target`]): it must have succeeded, and its specs
/// must not be what runs now. `None`: a rollback may re-apply it.
pub fn unfit_target(record: &DeployRecord, current: &HashMap<String, Service>) -> Option<Unfit> {
    unfit(record.outcome == DeployOutcome::Succeeded, || {
        runs_now(record, current)
    })
}

/// The refusal of a rollback to `record` ([`unfit_target`] said `why`): what the revision
/// was, and which revisions can be the target instead (`targets`, newest first) or that none
/// can, so that the caller knows what to ask for.
pub(crate) fn unfit_refusal(record: &DeployRecord, why: Unfit, targets: &[u64]) -> String {
    let reason = match (why, &record.outcome) {
        (Unfit::RunsNow, _) => {
            "the stack runs its specs now, so re-applying them would change nothing"
        }
        (_, DeployOutcome::RolledBack) => {
            "it was rolled back (a service failed and the stack was put back as it was), so its \
             specs never ran to the end"
        }
        (_, DeployOutcome::Failed) => "it failed, so its specs never ran to the end",
        (_, DeployOutcome::Interrupted) => {
            "it was interrupted half-way, so the stack never ran all of its specs"
        }
        (_, DeployOutcome::Running) => "it is still being deployed",
        (_, DeployOutcome::Unchanged) => {
            "it changed nothing: its specs are those of the succeeded revision before it, which \
             is the one to name"
        }
        // An outcome a newer version wrote (a succeeded revision is unfit only while it runs).
        (Unfit::NotSucceeded, _) => "it did not succeed",
    };
    let instead = match targets {
        [] => format!(
            "no revision of {} can be the target now (each did not succeed or runs now): \
             deploy the files wanted instead",
            record.stack
        ),
        _ => format!(
            "the revisions that can be the target now: {}",
            targets
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "revision {} of {} ({}) cannot be rolled back to: {reason}; {instead}",
        record.revision, record.stack, record.outcome
    )
}

/// The revisions of `revisions` a rollback may re-apply now ([`unfit_target`]), in their
/// order.
pub(crate) fn fit_targets(
    revisions: &[DeployRecord],
    current: &HashMap<String, Service>,
) -> Vec<u64> {
    revisions
        .iter()
        .filter(|r| unfit_target(r, current).is_none())
        .map(|r| r.revision)
        .collect()
}

/// Whether the stack runs exactly the services of `record`, each with its spec (the current
/// scale kept, as a rollback keeps it), `current` being the stack's services by name. A spec
/// that cannot be read counts as not running: the rollback to it then says why. No rollback
/// re-applies a revision that runs now ([`unfit_target`]).
pub fn runs_now(record: &DeployRecord, current: &HashMap<String, Service>) -> bool {
    let Ok(specs) = deployed_specs(record) else {
        return false;
    };
    specs.len() == current.len()
        && specs.into_iter().all(|(name, mut spec)| {
            current.get(&name).is_some_and(|service| {
                inherit_replicas(&mut spec, &service.view.mode);
                spec_matches(&spec, &service.spec)
            })
        })
}

/// The spec each service had after a revision: those it deployed, and those it left unchanged
/// (recorded with theirs); services it removed are left out.
pub(crate) fn deployed_specs(record: &DeployRecord) -> Result<Vec<(String, Value)>, DeployError> {
    record
        .services
        .iter()
        .filter_map(|service| Some((service, service.after.as_ref()?)))
        .map(|(service, after)| {
            let spec = serde_json::from_str(after).map_err(|e| {
                DeployError::Input(format!(
                    "revision {} of {}: the spec of {} cannot be read: {e}",
                    record.revision, record.stack, service.service
                ))
            })?;
            Ok((service.service.clone(), spec))
        })
        .collect()
}

/// One service of a revision as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImages {
    pub service: String,
    /// How it ended (`converged`, `unchanged`, `rolled back`, …).
    pub outcome: String,
    /// The image the revision deployed (for a service it removed, the one it had).
    pub image: Option<ImageRef>,
    /// The image it ran before, when the revision changed it.
    pub previous: Option<ImageRef>,
}

/// Each service of a revision with its images, read from the recorded specs. A spec that
/// cannot be read shows no image rather than hiding the revision.
pub fn service_images(record: &DeployRecord) -> Vec<ServiceImages> {
    let image = |spec: Option<&str>| ServiceView::read_json(spec?).ok().map(|view| view.image);
    record
        .services
        .iter()
        .map(|s| {
            let after = image(s.after.as_deref());
            // A spec left as it was is read once.
            let before = if s.before == s.after {
                None
            } else {
                image(s.before.as_deref())
            };
            ServiceImages {
                service: s.service.clone(),
                outcome: s.outcome.clone(),
                previous: before
                    .clone()
                    .filter(|b| after.as_ref().is_some_and(|a| a != b)),
                image: after.or(before),
            }
        })
        .collect()
}

/// Why the stack is being rolled back, in one line: each failed service and why.
pub(crate) fn failure_reasons(applied: &[Applied], failures: &[FailureReport]) -> String {
    applied
        .iter()
        .filter(|a| a.state.is_failure())
        .map(|a| format!("{}: {}", a.name, a.state.why().unwrap_or_default()))
        .chain(failures.iter().map(|f| format!("{}: {}", f.service, f.why)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// From the failure that triggered the rollback (the engine's time of the failed task, when
/// known, else when it was seen) to the rollback request.
pub(crate) fn reaction(applied: &[Applied], requested_at: Timestamp) -> Option<Duration> {
    applied
        .iter()
        .filter_map(|a| a.failure_at)
        .max()
        .and_then(|at| (requested_at - at).try_into().ok())
        .or(Some(Duration::ZERO))
}

/// What happened to each service: the changed ones with their state, then the unchanged ones.
pub(crate) fn service_outcomes(
    applied: &[Applied],
    unchanged: &[(String, Value)],
) -> Vec<ServiceOutcome> {
    applied
        .iter()
        .map(|a| ServiceOutcome {
            service: a.name.clone(),
            action: a.action,
            state: Some(a.state.clone()),
        })
        .chain(unchanged.iter().map(|(name, _)| ServiceOutcome {
            service: name.clone(),
            action: Action::Unchanged,
            state: None,
        }))
        .collect()
}

/// Each service of the revision: its spec before and after, and how it ended in the end: a
/// service put back after a failed deploy is recorded as put back, not as the state it was in
/// when the rollback began.
pub(crate) fn service_revisions(
    applied: &[Applied],
    unchanged: &[(String, Value)],
    put_back: &[(String, Restored)],
) -> Vec<ServiceRevision> {
    applied
        .iter()
        .map(|a| ServiceRevision {
            service: a.name.clone(),
            before: a.before.as_ref().map(Value::to_string),
            // A removed service has no spec after.
            after: (!a.after.is_null()).then(|| a.after.to_string()),
            outcome: if a.action == Action::Remove {
                "removed".to_string()
            } else {
                final_outcome(
                    &a.state,
                    put_back.iter().find(|(s, _)| *s == a.name).map(|(_, r)| r),
                )
            },
        })
        .chain(unchanged.iter().map(|(name, spec)| ServiceRevision {
            service: name.clone(),
            before: Some(spec.to_string()),
            after: Some(spec.to_string()),
            outcome: Action::Unchanged.to_string(),
        }))
        .collect()
}

/// How a service ended: its own state, or, when the stack was rolled back, how it was put
/// back (`rolled back`, `removed`, `rollback failed`, `rollback timed out`, …). Why the stack
/// was rolled back is the revision's summary.
fn final_outcome(state: &ServiceState, put_back: Option<&Restored>) -> String {
    match put_back {
        None => state.label().to_owned(),
        Some(Restored::Restored | Restored::RolledBackBySwarm) => "rolled back".to_owned(),
        Some(Restored::Removed) => "removed".to_owned(),
        Some(Restored::Failed { state, .. }) => format!("rollback {state}"),
    }
}

/// How the history shows a service a stopped run did not get to.
pub(crate) const NOT_APPLIED: &str = "not applied";

/// Each failure in one line, for the history.
pub(crate) fn summary(failures: &[FailureReport]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.service, f.why))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a run did, as [`finish`] records it: the services it changed and those it left, and the
/// networks, secrets and configs they use.
#[derive(Clone, Copy)]
pub(crate) struct Ran<'a> {
    pub applied: &'a [Applied],
    pub unchanged: &'a [(String, Value)],
    /// Services a stopped run did not get to, with the spec they keep (none: not created).
    pub not_applied: &'a [(String, Option<Value>)],
    pub objects: &'a [ObjectRevision],
}

/// Records how the run ended; `note` (why it ran) leads the summary.
pub(crate) async fn finish<H: History>(
    history: &H,
    stack: &str,
    revision: u64,
    note: Option<&str>,
    outcome: &Outcome,
    ran: Ran<'_>,
) -> Result<(), DeployError> {
    let Ran {
        applied,
        unchanged,
        not_applied,
        objects,
    } = ran;
    let mut services = service_revisions(applied, unchanged, &outcome.rolled_back);
    services.extend(not_applied.iter().map(|(name, spec)| {
        let spec = spec.as_ref().map(Value::to_string);
        ServiceRevision {
            service: name.clone(),
            before: spec.clone(),
            after: spec,
            outcome: NOT_APPLIED.to_owned(),
        }
    }));
    let interrupted = outcome.interrupted.as_ref().map(|i| i.summary());
    let summary = note
        .map(str::to_owned)
        .into_iter()
        .chain([summary(&outcome.failures)])
        .chain(interrupted)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let end = RevisionEnd {
        outcome: &outcome.label(),
        summary: &summary,
        services: &services,
        objects,
        at: Timestamp::now(),
    };
    history
        .finish(stack, revision, &end)
        .await
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use swarmkeeper_store::DeployKind;

    fn record(revision: u64, outcome: DeployOutcome) -> DeployRecord {
        DeployRecord {
            stack: "shop".into(),
            revision,
            started_at: Timestamp::from_second(1_700_000_000).unwrap(),
            finished_at: None,
            by: "me".into(),
            action: None,
            kind: DeployKind::Deploy,
            files: Vec::new(),
            outcome,
            summary: String::new(),
            services: Vec::new(),
            objects: Vec::new(),
        }
    }

    fn applied(name: &str, state: ServiceState) -> Applied {
        let mut applied = Applied::started(
            name.into(),
            Action::Update,
            Some(json!({"Name": name, "v": 1})),
            json!({"Name": name, "v": 2}),
            format!("id-{name}"),
            None,
        );
        applied.state = state;
        applied
    }

    fn outcome(succeeded: bool, actions: &[Action], rolled_back: usize) -> Outcome {
        Outcome {
            revision: Some(1),
            succeeded,
            services: actions
                .iter()
                .map(|&action| ServiceOutcome {
                    service: "s".into(),
                    action,
                    state: None,
                })
                .collect(),
            failures: Vec::new(),
            rollback_reaction: None,
            rolled_back: (0..rolled_back)
                .map(|_| ("s".to_string(), Restored::Restored))
                .collect(),
            interrupted: None,
        }
    }

    #[test]
    fn the_outcome_label_says_what_the_history_shows() {
        use DeployOutcome::*;
        assert_eq!(outcome(true, &[Action::Unchanged], 0).label(), Unchanged);
        assert_eq!(outcome(true, &[], 0).label(), Unchanged);
        assert_eq!(
            outcome(true, &[Action::Unchanged, Action::Create], 0).label(),
            Succeeded
        );
        assert_eq!(outcome(false, &[Action::Update], 0).label(), Failed);
        assert_eq!(outcome(false, &[Action::Update], 1).label(), RolledBack);
        let mut stopped = outcome(false, &[Action::Update], 0);
        stopped.interrupted = Some(crate::Interrupted {
            why: "SIGTERM".into(),
            applied: vec!["s".into()],
            not_applied: Vec::new(),
        });
        assert_eq!(stopped.label(), Interrupted);
    }

    /// A revision of stack `shop` whose one service `shop_web` ran image `v`.
    fn web(revision: u64, outcome: DeployOutcome, v: &str) -> DeployRecord {
        let spec = web_spec(v).to_string();
        DeployRecord {
            services: vec![ServiceRevision {
                service: "shop_web".into(),
                outcome: "converged".into(),
                before: None,
                after: Some(spec),
            }],
            ..record(revision, outcome)
        }
    }

    fn web_spec(v: &str) -> serde_json::Value {
        json!({
            "Name": "shop_web",
            "TaskTemplate": {"ContainerSpec": {"Image": format!("app:{v}")}},
            "Mode": {"Replicated": {"Replicas": 1}},
        })
    }

    /// The stack as the engine runs it: `shop_web` on image `v`.
    fn running(v: &str) -> HashMap<String, Service> {
        let spec = web_spec(v);
        let service = Service {
            id: "id-web".into(),
            version: 1,
            name: "shop_web".into(),
            view: ServiceView::read_json(&spec.to_string()).unwrap(),
            spec,
            previous_spec: None,
            update_status: None,
            created_at: None,
            updated_at: None,
        };
        HashMap::from([("shop_web".to_string(), service)])
    }

    #[test]
    fn a_rollback_goes_to_the_newest_good_revision_that_is_not_what_runs() {
        use DeployOutcome::*;
        let target = |history: Vec<DeployRecord>, now: &str| {
            previous_good("shop", history, &running(now))
                .ok()
                .map(|r| r.revision)
        };
        let history = vec![
            web(5, RolledBack, "5"),
            web(4, Succeeded, "4"),
            web(3, Unchanged, "4"),
            web(2, Succeeded, "2"),
            web(1, Succeeded, "1"),
        ];
        assert_eq!(target(history, "4"), Some(2));
        // A no-op deploy over a redeploy of the same specs: past both, to what differs.
        let history = vec![
            web(4, Unchanged, "2"),
            web(3, Succeeded, "2"),
            web(2, Succeeded, "2"),
            web(1, Succeeded, "1"),
        ];
        assert_eq!(target(history, "2"), Some(1));
        // Interrupted halfway: what runs is no revision's, the newest good one is restored.
        let history = vec![web(3, Interrupted, "3"), web(2, Succeeded, "2")];
        assert_eq!(target(history.clone(), "3"), Some(2));
        // Interrupted before it changed anything: 2 runs, back to 1.
        let history = [history, vec![web(1, Succeeded, "1")]].concat();
        assert_eq!(target(history, "2"), Some(1));
        // A revision with more services than run now is not what runs.
        let mut two = web(2, Succeeded, "2");
        let mut other = two.services[0].clone();
        other.service = "shop_db".into();
        two.services.push(other);
        assert_eq!(target(vec![two, web(1, Succeeded, "2")], "2"), Some(2));
        let error = previous_good("shop", vec![web(1, Succeeded, "1")], &running("1")).unwrap_err();
        assert!(error.to_string().contains("no earlier succeeded revision"));
    }

    #[test]
    fn a_refused_target_says_why_and_which_revisions_can_be_one() {
        use DeployOutcome::*;
        let history = vec![
            web(5, RolledBack, "5"),
            web(4, Succeeded, "4"),
            web(3, Unchanged, "4"),
            web(2, Succeeded, "2"),
            web(1, Succeeded, "1"),
        ];
        let now = running("4");
        let unfit: Vec<Option<Unfit>> = history.iter().map(|r| unfit_target(r, &now)).collect();
        assert_eq!(
            unfit,
            [
                Some(Unfit::NotSucceeded),
                Some(Unfit::RunsNow),
                Some(Unfit::NotSucceeded),
                None,
                None
            ]
        );
        let targets = fit_targets(&history, &now);
        assert_eq!(targets, [2, 1]);
        let refusal = |r: &DeployRecord| unfit_refusal(r, unfit_target(r, &now).unwrap(), &targets);
        assert_eq!(
            refusal(&history[0]),
            "revision 5 of shop (rolled back) cannot be rolled back to: it was rolled back (a \
             service failed and the stack was put back as it was), so its specs never ran to \
             the end; the revisions that can be the target now: 2, 1"
        );
        assert_eq!(
            refusal(&history[1]),
            "revision 4 of shop (succeeded) cannot be rolled back to: the stack runs its specs \
             now, so re-applying them would change nothing; the revisions that can be the \
             target now: 2, 1"
        );
        assert!(refusal(&history[2]).contains(
            "it changed nothing: its specs are those of the succeeded revision before it"
        ));
        for (outcome, why) in [
            (Failed, "it failed, so its specs never ran to the end"),
            (Interrupted, "it was interrupted half-way"),
            (Running, "it is still being deployed"),
        ] {
            let r = web(6, outcome, "6");
            assert!(refusal(&r).contains(why), "{}", refusal(&r));
        }
        // The default target is the newest of those listed.
        assert_eq!(
            previous_good("shop", history.clone(), &now)
                .unwrap()
                .revision,
            targets[0]
        );
        let none = unfit_refusal(&history[1], Unfit::RunsNow, &[]);
        assert!(
            none.ends_with(
                "no revision of shop can be the target now (each did not succeed or runs now): \
                 deploy the files wanted instead"
            ),
            "{none}"
        );
    }

    #[test]
    fn a_revision_gives_back_each_spec_it_left_in_place() {
        let mut r = record(2, DeployOutcome::Succeeded);
        r.services = vec![
            ServiceRevision {
                service: "shop_web".into(),
                before: None,
                after: Some(r#"{"Name":"shop_web"}"#.into()),
                outcome: "converged".into(),
            },
            ServiceRevision {
                service: "shop_gone".into(),
                before: Some("{}".into()),
                after: None,
                outcome: "removed".into(),
            },
        ];
        assert_eq!(
            deployed_specs(&r).unwrap(),
            vec![("shop_web".to_string(), json!({"Name": "shop_web"}))]
        );
        r.services[0].after = Some("{not json".into());
        assert!(deployed_specs(&r)
            .unwrap_err()
            .to_string()
            .contains("revision 2 of shop: the spec of shop_web cannot be read"));
    }

    #[test]
    fn each_service_is_recorded_with_its_specs_and_end() {
        let changed = [
            applied("a", ServiceState::Converged),
            applied("b", ServiceState::Failed { why: "boom".into() }),
        ];
        let unchanged = [("c".to_string(), json!({"Name": "c"}))];
        let records = service_revisions(&changed, &unchanged, &[]);
        let ends: Vec<(&str, &str)> = records
            .iter()
            .map(|r| (r.service.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            ends,
            [("a", "converged"), ("b", "failed"), ("c", "unchanged")]
        );
        assert_eq!(records[0].before.as_deref(), Some(r#"{"Name":"a","v":1}"#));
        assert_eq!(records[2].before, records[2].after);
        assert_eq!(failure_reasons(&changed, &[]), "b: boom");
        let outcomes = service_outcomes(&changed, &unchanged);
        assert_eq!(outcomes[2].action, Action::Unchanged);
        assert!(outcomes[2].state.is_none());
    }

    #[test]
    fn a_service_put_back_is_recorded_as_it_ended_not_as_it_was_when_the_rollback_began() {
        let changed = [
            applied("web", ServiceState::RollingBack { why: "boom".into() }),
            applied("api", ServiceState::Converged),
            applied("new", ServiceState::Converged),
            applied("stuck", ServiceState::Converged),
        ];
        let put_back = [
            ("web".to_string(), Restored::RolledBackBySwarm),
            ("api".to_string(), Restored::Restored),
            ("new".to_string(), Restored::Removed),
            (
                "stuck".to_string(),
                Restored::Failed {
                    state: "timed out",
                    why: "0/1 running".into(),
                },
            ),
        ];
        let ends: Vec<String> = service_revisions(&changed, &[], &put_back)
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(
            ends,
            [
                "rolled back",
                "rolled back",
                "removed",
                "rollback timed out"
            ]
        );
    }

    #[test]
    fn a_revision_shows_each_service_s_image_and_the_one_it_replaced() {
        let spec = |image: &str| {
            Some(json!({"TaskTemplate": {"ContainerSpec": {"Image": image}}}).to_string())
        };
        let mut r = record(3, DeployOutcome::Succeeded);
        let revision = |service: &str, before, after, outcome: &str| ServiceRevision {
            service: service.into(),
            before,
            after,
            outcome: outcome.into(),
        };
        r.services = vec![
            revision("web", spec("app:1"), spec("app:2@sha256:ab"), "converged"),
            revision("db", spec("pg:16"), spec("pg:16"), "unchanged"),
            revision("new", None, spec("cache:7"), "converged"),
            revision("gone", spec("old:1"), None, "removed"),
            revision("odd", Some("{not json".into()), spec("x:1"), "converged"),
        ];
        let shown: Vec<(String, Option<String>, Option<String>)> = service_images(&r)
            .into_iter()
            .map(|s| {
                (
                    s.service,
                    s.image.map(|i| i.to_string()),
                    s.previous.map(|i| i.to_string()),
                )
            })
            .collect();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            shown,
            [
                ("web".into(), some("app:2@sha256:ab"), some("app:1")),
                ("db".into(), some("pg:16"), None),
                ("new".into(), some("cache:7"), None),
                ("gone".into(), some("old:1"), None),
                ("odd".into(), some("x:1"), None),
            ]
        );
    }

    #[test]
    fn the_reaction_runs_from_the_engine_s_failure_time() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let mut failed = applied("a", ServiceState::Failed { why: "x".into() });
        failed.failure_at = Some(t(100));
        assert_eq!(reaction(&[failed], t(103)), Some(Duration::from_secs(3)));
        assert_eq!(reaction(&[], t(103)), Some(Duration::ZERO));
    }
}
