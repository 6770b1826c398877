//! Bringing each service to its spec: the typed spec completed with what only the engine knows
//! and made JSON once ([`target`]), images pinned to digests, then each service created,
//! updated, or left alone when nothing would change.

use std::collections::HashMap;
use std::time::Instant;

use jiff::Timestamp;
use serde_json::Value;
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_engine::{Engine, EngineError, Service, ServiceView, UpdateStatus};
use swarmkeeper_rollout::{changes, describe_changes, spec_matches, FieldChange, ServiceState};

use crate::follow::change_time;
use crate::objects::Ids;
use crate::{Action, DeployError, Progress, Request, Stop};

/// One service to bring to a spec.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub name: String,
    /// The whole spec, as the engine is to hold it.
    pub desired: Value,
    /// `X-Registry-Auth` for the service's image.
    pub registry_auth: Option<String>,
}

/// Completes a service's typed spec with the ids of the objects it names (the credential spec's
/// config included), the image pinned to
/// its digest, and the current replica count when the file gives none (as `docker stack
/// deploy` keeps a scale set by hand); then makes it JSON, once. Pure.
pub(crate) fn target(
    mut spec: ServiceSpec,
    ids: &Ids,
    pinned: Option<&str>,
    current: Option<&ServiceView>,
    registry_auth: Option<String>,
) -> Result<Target, DeployError> {
    let container = &mut spec.task_template.container_spec;
    for secret in &mut container.secrets {
        secret.secret_id = lookup(&ids.secrets, &secret.secret_name, "secret")?;
    }
    for config in &mut container.configs {
        config.config_id = lookup(&ids.configs, &config.config_name, "config")?;
    }
    container.link_credential_spec();
    if let Some(pinned) = pinned {
        container.image = pinned.to_string();
    }
    // The engine stores a network attachment by id.
    for attachment in &mut spec.task_template.networks {
        if let Some(id) = ids.networks.get(&attachment.target) {
            attachment.target = id.clone();
        }
    }
    if let (Some(replicated), Some(current)) = (spec.mode.replicated.as_mut(), current) {
        if replicated.replicas.is_none() {
            replicated.replicas = current.mode.replicas();
        }
    }
    Ok(Target {
        desired: serde_json::to_value(&spec).expect("a service spec serialises"),
        name: spec.name,
        registry_auth,
    })
}

fn lookup(
    ids: &std::collections::BTreeMap<String, String>,
    name: &str,
    word: &str,
) -> Result<String, DeployError> {
    ids.get(name)
        .cloned()
        .ok_or_else(|| DeployError::Input(format!("{word} {name} does not exist")))
}

/// The image a raw spec (a recorded one) runs.
pub(crate) fn image_of(spec: &Value) -> Result<String, DeployError> {
    ServiceView::read(spec)
        .map(|view| view.image.to_string())
        .map_err(|e| DeployError::Input(format!("a recorded spec: {e}")))
}

/// The `X-Registry-Auth` value of each image, asked of the request's provider before anything
/// changes: credentials that cannot be had stop the deploy there.
pub(crate) async fn registry_auths(
    request: &Request,
    images: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, Option<String>>, DeployError> {
    let mut auths = HashMap::new();
    for image in images {
        if auths.contains_key(&image) {
            continue;
        }
        let auth = match &request.registry_auth {
            Some(provider) => provider.for_image(&image).await.map_err(|why| {
                DeployError::Input(format!("image {image}: registry credentials: {why}"))
            })?,
            None => None,
        };
        auths.insert(image, auth);
    }
    Ok(auths)
}

/// Each image pinned as `image:tag@sha256:…` (see [`pin`]), asked with its credentials, or
/// anonymously where there are none (`--no-registry-auth`, or none configured for the
/// registry): a public image is pinned either way, so the spec does not change with the flag.
/// The images whose registry refuses an anonymous lookup are deployed by tag, said once.
pub(crate) async fn pin_images(
    engine: &Engine,
    auths: &HashMap<String, Option<String>>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<HashMap<String, Option<String>>, DeployError> {
    let mut images: Vec<(&String, &Option<String>)> = auths.iter().collect();
    images.sort();
    let mut pinned = HashMap::new();
    let mut refused = Vec::new();
    for (image, auth) in images {
        let digest = match pin(engine, image, auth.as_deref(), progress).await? {
            Pin::Digest(reference) => Some(reference),
            Pin::RefusedAnonymously => {
                refused.push(image.as_str());
                None
            }
            Pin::Unknown => None,
        };
        pinned.insert(image.clone(), digest);
    }
    if !refused.is_empty() {
        progress(Progress::Warning(&format!(
            "{} {}: the registry gives no digest without credentials, and none are sent \
             (--no-registry-auth, or none configured for it): deployed by tag, not pinned; \
             each node runs what it pulls, or has, under the tag",
            if refused.len() == 1 {
                "image"
            } else {
                "images"
            },
            refused.join(", ")
        )));
    }
    Ok(pinned)
}

/// What [`pin`] found.
enum Pin {
    /// `image:tag@sha256:…`.
    Digest(String),
    /// Asked without credentials, the registry refused (a private image).
    RefusedAnonymously,
    /// The registry could not say (unreachable, a local image); warned.
    Unknown,
}

/// Whether the engine's answer to an anonymous digest lookup is the registry refusing it (a
/// private image) rather than a registry that cannot be reached. Dockerd answers a refusal
/// with HTTP 401/403, or with 500 and the registry's words ("no basic auth credentials" from
/// a basic-auth registry, "unauthorized: authentication required" from a token one, "denied:
/// requested access to the resource is denied" from Docker Hub). Pure.
fn refused_anonymously(status: u16, message: &str) -> bool {
    const REFUSALS: [&str; 4] = [
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
        "access to the resource is denied",
    ];
    let message = message.to_ascii_lowercase();
    matches!(status, 401 | 403) || REFUSALS.iter().any(|r| message.contains(r))
}

/// `image:tag@sha256:…` from the registry, as the docker CLI pins it; `None` (with a warning)
/// when the registry cannot say — unreachable, or a private image asked without credentials
/// (it may be on the nodes already). A deploy that cannot work stops here, before anything
/// changes: the registry does not have the tag (HTTP 404), or it refused the credentials sent
/// (HTTP 401).
async fn pin(
    engine: &Engine,
    image: &str,
    registry_auth: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Pin, DeployError> {
    if image.contains('@') {
        return Ok(Pin::Digest(image.to_string()));
    }
    match engine.distribution_digest(image, registry_auth).await {
        Ok(digest) => Ok(Pin::Digest(pinned_reference(image, &digest))),
        Err(EngineError::Api {
            status: 404,
            message,
            ..
        }) => Err(DeployError::Input(format!(
            "image {image}: the registry does not have it ({message}); push it first (an image \
             the nodes already have is used as written when named by its digest, \
             IMAGE@sha256:…, or, from the CLI, with --no-resolve-image)"
        ))),
        Err(EngineError::Api {
            status: 401,
            message,
            ..
        }) if registry_auth.is_some() => Err(DeployError::Input(format!(
            "image {image}: the registry refused the credentials ({message}); `docker login` \
             to it again"
        ))),
        Err(EngineError::Api {
            status, message, ..
        }) if registry_auth.is_none() && refused_anonymously(status, &message) => {
            Ok(Pin::RefusedAnonymously)
        }
        Err(e) => {
            let why = match &e {
                EngineError::Api { message, .. } => message.clone(),
                other => other.to_string(),
            };
            progress(Progress::Warning(&format!(
                "image {image}: its digest could not be resolved ({why}); nodes may run different images under this tag"
            )));
            Ok(Pin::Unknown)
        }
    }
}

/// The docker CLI's pinned form: the tag (`latest` when none is written) and the digest.
fn pinned_reference(image: &str, digest: &str) -> String {
    // A tag follows the last `:` after the last `/`; a `:` before it belongs to a registry port.
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') {
        format!("{image}@{digest}")
    } else {
        format!("{image}:latest@{digest}")
    }
}

/// What an update changes, as progress shows it: the image as old → new, then the other
/// fields, at most [`BRIEF_CHANGES`] of them.
fn changes_in_brief(changes: &[FieldChange]) -> String {
    let mut lines = describe_changes(changes);
    if lines.len() > BRIEF_CHANGES {
        let more = lines.len() - BRIEF_CHANGES;
        lines.truncate(BRIEF_CHANGES);
        lines.push(format!("and {more} more (`swarmkeeper diff` lists them)"));
    }
    lines.join("; ")
}

/// How many changed fields a progress line names.
const BRIEF_CHANGES: usize = 4;

/// One service this run changes.
pub(crate) struct Applied {
    pub name: String,
    pub action: Action,
    pub before: Option<Value>,
    pub after: Value,
    pub id: String,
    pub applied_at: Instant,
    /// The update status before the change, so that a stale one is not taken for news.
    pub baseline: Option<UpdateStatus>,
    pub state: ServiceState,
    pub failure_at: Option<Timestamp>,
    /// The task whose failure the state reports, whose own logs a failure report shows.
    pub failing_task: Option<String>,
    /// When the change was made, by the manager's clock (the service's `CreatedAt` or
    /// `UpdatedAt` read right after it; else learned at the first look): a failed task made
    /// before it is an earlier attempt's ([`crate::follow::earlier_attempt`]).
    pub changed_at: Option<Timestamp>,
}

impl Applied {
    /// A service just changed (or put back, or left to Swarm) and not looked at yet.
    pub(crate) fn started(
        name: String,
        action: Action,
        before: Option<Value>,
        after: Value,
        id: String,
        baseline: Option<UpdateStatus>,
    ) -> Applied {
        Applied {
            name,
            action,
            before,
            after,
            id,
            applied_at: Instant::now(),
            baseline,
            state: ServiceState::started(),
            failure_at: None,
            failing_task: None,
            changed_at: None,
        }
    }
}

/// What [`apply_all`] did.
#[derive(Default)]
pub(crate) struct Applying {
    pub applied: Vec<Applied>,
    /// Services whose spec already was the one wanted, with that spec.
    pub unchanged: Vec<(String, Value)>,
    /// The service the engine refused, and what it said; nothing after it was tried.
    pub refused: Option<(String, EngineError)>,
    /// Services not tried because a stop was asked for ([`crate::Options::stop`]).
    pub not_applied: Vec<String>,
}

/// Creates or updates each target in order, leaving alone those whose spec would not change;
/// stops at the first change the engine refuses, or before the next change once `stop` is
/// asked for.
pub(crate) async fn apply_all(
    engine: &Engine,
    current: &HashMap<String, Service>,
    targets: Vec<Target>,
    stop: &Stop,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Applying {
    let mut applying = Applying::default();
    let mut targets = targets.into_iter();
    while let Some(target) = targets.next() {
        if stop.requested().is_some() {
            applying.not_applied.push(target.name);
            applying.not_applied.extend(targets.map(|t| t.name));
            break;
        }
        let result = match current.get(&target.name) {
            Some(service) if spec_matches(&target.desired, &service.spec) => {
                progress(Progress::Action {
                    service: &target.name,
                    action: Action::Unchanged,
                });
                applying.unchanged.push((target.name, target.desired));
                continue;
            }
            Some(service) => {
                let what = changes_in_brief(&changes(&target.desired, &service.spec));
                progress(Progress::Note(&format!("{}: {what}", target.name)));
                update_to(
                    engine,
                    service.clone(),
                    &target.desired,
                    target.registry_auth.as_deref(),
                    progress,
                )
                .await
                .map(|before| {
                    Applied::started(
                        target.name.clone(),
                        Action::Update,
                        Some(before.spec),
                        target.desired.clone(),
                        before.id,
                        before.update_status,
                    )
                })
            }
            None => engine
                .create_service(&target.desired, target.registry_auth.as_deref())
                .await
                .map(|created| {
                    for warning in &created.warnings {
                        progress(Progress::Warning(&format!("{}: {warning}", target.name)));
                    }
                    Applied::started(
                        target.name.clone(),
                        Action::Create,
                        None,
                        target.desired.clone(),
                        created.id,
                        None,
                    )
                }),
        };
        match result {
            Ok(mut change) => {
                // The manager's time of the change, read before Swarm's updater moves on.
                if let Ok(service) = engine.inspect_service(&change.id).await {
                    change.changed_at = change_time(&service, change.action);
                }
                progress(Progress::Action {
                    service: &change.name,
                    action: change.action,
                });
                applying.applied.push(change);
            }
            Err(error) => {
                applying.refused = Some((target.name, error));
                break;
            }
        }
    }
    applying
}

/// Removes each service of `remove` (a prune, or a rollback to a revision without it); each
/// is recorded as a change whose spec before is the one a stack rollback creates again. Stops
/// at the first removal the engine refuses, or before the next once `stop` is asked for.
pub(crate) async fn remove_all(
    engine: &Engine,
    current: &HashMap<String, Service>,
    remove: &[String],
    stop: &Stop,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Applying {
    let mut applying = Applying::default();
    for (done, name) in remove.iter().enumerate() {
        let Some(service) = current.get(name) else {
            continue;
        };
        if stop.requested().is_some() {
            applying.not_applied = remove[done..].to_vec();
            break;
        }
        if let Err(error) = engine.remove_service(&service.id).await {
            applying.refused = Some((name.clone(), error));
            break;
        }
        progress(Progress::Action {
            service: name,
            action: Action::Remove,
        });
        let mut removed = Applied::started(
            name.clone(),
            Action::Remove,
            Some(service.spec.clone()),
            Value::Null,
            service.id.clone(),
            None,
        );
        removed.state = ServiceState::Converged;
        applying.applied.push(removed);
    }
    applying
}

/// Updates a service to `desired` through [`Engine::change_service`] (which retries "update
/// out of sequence"). Returns the service as it was when the update went through: its spec is
/// the one replaced, which is what a rollback restores.
pub(crate) async fn update_to(
    engine: &Engine,
    service: Service,
    desired: &Value,
    registry_auth: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Service, EngineError> {
    let first_seen = service.spec.clone();
    let changed = engine
        .change_service(service, registry_auth, |_| Ok(desired.clone()))
        .await?;
    let before = changed.before;
    for warning in &changed.warnings {
        progress(Progress::Warning(&format!("{}: {warning}", before.name)));
    }
    if !spec_matches(&first_seen, &before.spec) {
        progress(Progress::Warning(&format!(
            "{}: changed by someone else while this deploy ran (now version {}); that change \
             is what this deploy replaces, and what a rollback restores",
            before.name, before.version
        )));
    }
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A service naming a secret, a config and the stack's default network, without replicas.
    fn spec() -> ServiceSpec {
        let stack = swarmkeeper_compose::load(
            &[swarmkeeper_compose::SourceFile {
                name: "s.yml",
                text: "services:\n  web:\n    image: app:1\n    secrets: [db]\n    configs: [conf]\n\
                       secrets:\n  db:\n    file: ./db.txt\nconfigs:\n  conf:\n    file: ./conf.txt\n",
            }],
            &swarmkeeper_compose::Environment {
                variables: &Default::default(),
                working_dir: std::path::Path::new("/"),
                read_file: &|_| Err(std::io::Error::other("no files")),
            },
        )
        .unwrap();
        swarmkeeper_compose::stack_spec("st", &stack)
            .unwrap()
            .services
            .remove("web")
            .unwrap()
    }

    fn ids() -> Ids {
        Ids {
            secrets: [("st_db".to_string(), "sec1".to_string())].into(),
            configs: [("st_conf".to_string(), "conf1".to_string())].into(),
            networks: [("st_default".to_string(), "net1".to_string())].into(),
        }
    }

    #[test]
    fn a_target_names_objects_by_id_and_keeps_the_scale() {
        let current = ServiceView::read(&json!({"Mode": {"Replicated": {"Replicas": 4}}})).unwrap();
        let target = target(
            spec(),
            &ids(),
            Some("app:1@sha256:abc"),
            Some(&current),
            Some("auth".into()),
        )
        .unwrap();
        let d = &target.desired;
        assert_eq!(target.name, "st_web");
        assert_eq!(
            d["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"],
            "sec1"
        );
        assert_eq!(
            d["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigID"],
            "conf1"
        );
        assert_eq!(d["TaskTemplate"]["Networks"][0]["Target"], "net1");
        assert_eq!(d["TaskTemplate"]["Networks"][0]["Aliases"][0], "web");
        assert_eq!(
            d["TaskTemplate"]["ContainerSpec"]["Image"],
            "app:1@sha256:abc"
        );
        assert_eq!(d["Mode"]["Replicated"]["Replicas"], 4);
        assert_eq!(target.registry_auth.as_deref(), Some("auth"));
        let fresh = super::target(spec(), &ids(), None, None, None).unwrap();
        assert_eq!(
            fresh.desired["TaskTemplate"]["ContainerSpec"]["Image"],
            "app:1"
        );
        assert_eq!(fresh.desired["Mode"]["Replicated"], json!({}));
    }

    #[test]
    fn a_missing_secret_is_bad_input() {
        let mut ids = ids();
        ids.secrets.clear();
        let error = target(spec(), &ids, None, None, None).unwrap_err();
        assert_eq!(error.to_string(), "secret st_db does not exist");
    }

    #[test]
    fn images_are_pinned_like_the_docker_cli() {
        assert_eq!(pinned_reference("app:1", "sha256:a"), "app:1@sha256:a");
        assert_eq!(pinned_reference("app", "sha256:a"), "app:latest@sha256:a");
        assert_eq!(
            pinned_reference("registry:5000/app", "sha256:a"),
            "registry:5000/app:latest@sha256:a"
        );
    }

    #[test]
    fn a_private_registry_s_refusal_is_told_from_a_registry_out_of_reach() {
        // As dockerd 20.10 answered an anonymous `/distribution` lookup on this machine.
        let basic =
            "Head \"http://127.0.0.1:45998/v2/skdw/app/manifests/1\": no basic auth credentials";
        assert!(refused_anonymously(500, basic));
        assert!(refused_anonymously(401, "whatever the registry said"));
        assert!(refused_anonymously(
            500,
            "errors:\ndenied: requested access to the resource is denied\n"
        ));
        assert!(refused_anonymously(
            500,
            "unauthorized: authentication required"
        ));
        let unreachable = "Get \"https://nosuchregistry.invalid/v2/\": dial tcp: lookup \
                           nosuchregistry.invalid on 10.255.255.53:53: no such host";
        assert!(!refused_anonymously(500, unreachable));
        assert!(!refused_anonymously(
            500,
            "manifest unknown: manifest unknown"
        ));
    }

    #[test]
    fn a_recorded_spec_names_its_image() {
        let spec = json!({"TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:a"}}});
        assert_eq!(image_of(&spec).unwrap(), "app:1@sha256:a");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn credentials_are_asked_once_per_image_before_anything_changes() {
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        let provider = move |image: &str| {
            seen.lock().unwrap().push(image.to_string());
            if image.starts_with("private/") {
                Ok(Some(format!("token-for-{image}")))
            } else if image.starts_with("broken/") {
                Err("docker-credential-ecr-login: not found".to_string())
            } else {
                Ok(None)
            }
        };
        let request = Request {
            stack: "s".into(),
            by: "me".into(),
            action: None,
            files: Vec::new(),
            registry_auth: Some(std::sync::Arc::new(provider)),
        };
        let images = ["private/a:1", "public:1", "private/a:1"].map(String::from);
        let auths = registry_auths(&request, images).await.unwrap();
        assert_eq!(
            auths["private/a:1"].as_deref(),
            Some("token-for-private/a:1")
        );
        assert_eq!(auths["public:1"], None);
        assert_eq!(asked.lock().unwrap().len(), 2);
        let error = registry_auths(&request, ["broken/b:1".to_string()])
            .await
            .unwrap_err();
        assert!(error
            .to_string()
            .contains("image broken/b:1: registry credentials"));
        let anonymous = Request {
            registry_auth: None,
            ..request
        };
        let auths = registry_auths(&anonymous, ["private/a:1".to_string()])
            .await
            .unwrap();
        assert_eq!(auths["private/a:1"], None);
    }
}
