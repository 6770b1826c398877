//! `/secrets` and `/configs`: each listed with the services that use it, created (a value is
//! never shown back), removed while nothing uses it, and rotated: a new version created, every
//! service that uses the old one moved to it through the deploy engine (followed, rolled back
//! on failure, recorded as an `edit` revision of its stack), the old one removed once unused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::{Deserialize, Serialize};
use serde_json::json;
use swarmkeeper_auth::AuditStep;
use swarmkeeper_deploy::{base64, Request, LABEL_DATA_SHA256};
use swarmkeeper_engine::{
    swap_file_ref, Created, Engine, EngineError, FileKind, Service, ServiceMode, Task, TaskState,
    UpdateState,
};
use swarmkeeper_rollout::preflight::ROTATED_FROM_LABEL;

use super::stacks::DeployFailure;
use crate::access::Caller;
use crate::deploys::run_deploy_followed;
use crate::error::AppError;
use crate::jobs::{Job, JobEnd, Link};
use crate::page::url_encode;
use crate::respond::{refused_fields, Format, Input, Reply};
use crate::state::AppState;
use crate::views::message_of;
use crate::views::objects::{
    check_data, check_labels, check_name, history_refusal, history_stack, in_use, next_version,
    object_rows, old_key_retirable, posted_value, refs, rotation_blocked, rotation_cleanup,
    rotation_summary, FieldError, ObjectRow, Unmovable,
};
use crate::views::own::{own_part, rotation_refusal, OwnPart, OwnUser};

/// The secrets or configs page: every object with its users, and the create form's state.
/// Each object's rotate and remove forms are on its own page ([`ObjectView`]), so the list
/// stays small at hundreds of objects.
#[derive(Serialize)]
pub struct ObjectsView {
    /// `secret` or `config`.
    pub kind: &'static str,
    /// The operator's objects: swarmkeeper's own deploy-history configs are not among them.
    pub objects: Vec<ObjectRow>,
    /// Swarmkeeper's deploy-history configs (revisions and locks) left out of `objects`, by
    /// stack: how many each stack has. Their history is on the stack's page.
    pub deploy_history: BTreeMap<String, usize>,
    /// A form as posted, when it was refused: its name (never its value) and what is wrong,
    /// shown next to the field.
    #[serde(skip)]
    pub form: FormState,
}

/// One secret's or config's page: its users, and its rotate and remove forms.
#[derive(Serialize)]
pub struct ObjectView {
    /// `secret` or `config`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub object: ObjectRow,
    /// Why it is not rotated here when swarmkeeper's own server or agent uses it
    /// (`views::own::rotation_refusal`): the page shows this instead of the rotate form.
    pub not_rotatable: Option<String>,
    /// When it is the server's sealing key: what a re-key does (`POST
    /// /api/secrets/{name}/rekey`), the confirmation the page's re-key form asks for.
    pub rekey: Option<String>,
    /// When the server reads it as the agents' report secret: whether a previous secret is
    /// still accepted, and from which nodes' agents.
    pub report_secret: Option<ReportSecretView>,
    /// The rotate form as posted, when it was refused.
    #[serde(skip)]
    pub form: FormState,
}

/// A refused form: the create form, or the rotate form of one object.
#[derive(Default)]
pub struct FormState {
    /// The create form's name field as posted.
    pub name: String,
    /// The object whose rotate form was refused; `None`: the create form.
    pub rotating: Option<String>,
    /// Every field refused, each once (a form marks all that are wrong in one answer).
    pub errors: Vec<FieldError>,
}

impl FormState {
    /// The create form's message for `field`, if it is the one refused.
    pub fn create_error(&self, field: &str) -> Option<&str> {
        self.error_of(None, field)
    }

    /// The rotate form of `object`'s message for `field`.
    pub fn rotate_error(&self, object: &str, field: &str) -> Option<&str> {
        self.error_of(Some(object), field)
    }

    fn error_of(&self, rotating: Option<&str>, field: &str) -> Option<&str> {
        if self.rotating.as_deref() != rotating {
            return None;
        }
        message_of(&self.errors, field)
    }
}

page!(ObjectsView, "objects.html", "secrets");
page!(ObjectView, "object.html", "secrets");

/// A create, from the form or as JSON.
#[derive(Deserialize)]
pub struct CreateRequest {
    pub name: String,
    /// The content: text, or base64 when `encoding` is `base64` (binary content).
    pub data: String,
    /// `text` (the default) or `base64`.
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A rotation: the new content, and optionally the new version's name (by default the next
/// `.vN` of the name).
#[derive(Deserialize)]
pub struct RotateRequest {
    /// As [`CreateRequest::data`].
    pub data: String,
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub new_name: Option<String>,
}

/// What a create answers: never the value.
#[derive(Serialize)]
pub struct CreatedObject {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
}

/// One stack's (or lone service's) part of a rotation: one deploy-engine revision.
#[derive(Serialize)]
pub struct MovedGroup {
    /// The history the revision is in: the services' stack, or the service's own name.
    pub stack: String,
    pub services: Vec<String>,
    pub revision: Option<u64>,
    /// `succeeded`, `rolled back`, `failed`, …
    pub outcome: String,
    pub succeeded: bool,
    pub progress: Vec<String>,
    /// Why each failing service failed, with its task's last log lines, as a stack deploy
    /// answers them.
    pub failures: Vec<DeployFailure>,
}

/// What a rotation did.
#[derive(Serialize)]
pub struct RotateView {
    pub kind: &'static str,
    pub name: String,
    pub new_name: String,
    pub new_id: String,
    pub groups: Vec<MovedGroup>,
    /// The services on the new version once the moves ended, as the engine says, whatever
    /// their outcomes: a failed or interrupted move may have applied some.
    pub moved: Vec<String>,
    /// The services still on the old version.
    pub still_on_old: Vec<String>,
    /// Whether the old version was removed; it stays while a service still uses it, and after
    /// a move that did not succeed.
    pub removed_old: bool,
    /// Whether the new version was removed: only when no service uses it.
    pub removed_new: bool,
    pub succeeded: bool,
    /// What the rotation left, in one sentence (`views::objects::rotation_summary`), with what
    /// a clean-up the engine refused said.
    pub summary: String,
}

page!(RotateView, "rotated.html", "secrets");

async fn list_objects(
    engine: &Engine,
    kind: FileKind,
) -> Result<Vec<swarmkeeper_engine::SwarmObject>, EngineError> {
    match kind {
        FileKind::Secret => engine.list_secrets(None).await,
        FileKind::Config => engine.list_configs(None).await,
    }
}

async fn create_object(
    engine: &Engine,
    kind: FileKind,
    name: &str,
    data: &[u8],
    labels: &BTreeMap<String, String>,
) -> Result<Created, EngineError> {
    let spec = json!({"Name": name, "Labels": labels, "Data": base64(data)});
    match kind {
        FileKind::Secret => engine.create_secret(&spec).await,
        FileKind::Config => engine.create_config(&spec).await,
    }
}

async fn remove_object(engine: &Engine, kind: FileKind, id: &str) -> Result<(), EngineError> {
    match kind {
        FileKind::Secret => engine.remove_secret(id).await,
        FileKind::Config => engine.remove_config(id).await,
    }
}

/// Everything a list of objects with their users reads, one request each: the objects of
/// the kind, the services, every task (a task may still run with an object its service no
/// longer names: `swarmkeeper_swarm::file_users`) and the nodes (to name a task's).
struct Around {
    objects: Vec<swarmkeeper_engine::SwarmObject>,
    services: Vec<Service>,
    tasks: Vec<Task>,
    hostnames: HashMap<String, String>,
}

impl Around {
    /// The objects named `name` (all of them for `None`) with their users.
    fn rows(&self, kind: FileKind, name: Option<&str>) -> Vec<ObjectRow> {
        let named: Vec<_>;
        let objects = match name {
            Some(name) => {
                named = self
                    .objects
                    .iter()
                    .filter(|o| o.name == name)
                    .cloned()
                    .collect();
                &named
            }
            None => &self.objects,
        };
        object_rows(objects, &self.services, &self.tasks, &self.hostnames, kind)
    }
}

/// [`Around`] the objects of `kind`: four engine requests at once.
async fn around(state: &AppState, kind: FileKind) -> Result<Around, AppError> {
    let (objects, services, tasks, nodes) = tokio::try_join!(
        list_objects(&state.engine, kind),
        state.engine.list_services(None),
        state.engine.list_all_tasks(),
        state.engine.list_nodes()
    )?;
    Ok(Around {
        objects,
        services,
        tasks,
        hostnames: nodes.into_iter().map(|n| (n.id, n.hostname)).collect(),
    })
}

/// The page's data: the operator's objects with their users ([`around`]), and the count of
/// deploy-history configs per stack.
async fn load(
    state: &AppState,
    kind: FileKind,
) -> Result<(Vec<ObjectRow>, BTreeMap<String, usize>), AppError> {
    let mut history = BTreeMap::new();
    let mut rows = around(state, kind).await?.rows(kind, None);
    rows.retain(|row| match &row.history_of {
        Some(stack) => {
            *history.entry(stack.clone()).or_default() += 1;
            false
        }
        None => true,
    });
    Ok((rows, history))
}

fn page_of(kind: FileKind) -> String {
    format!("/{}s", kind.as_str())
}

/// What the secret and config pages do, apart from a re-key.
#[derive(Clone, Copy)]
enum FileStep {
    Create,
    Rotate,
    Remove,
}

/// The audit log's step for `step` on an object of `kind`.
fn audit_step(kind: FileKind, step: FileStep) -> AuditStep {
    match (kind, step) {
        (FileKind::Secret, FileStep::Create) => AuditStep::CreateSecret,
        (FileKind::Secret, FileStep::Rotate) => AuditStep::RotateSecret,
        (FileKind::Secret, FileStep::Remove) => AuditStep::RemoveSecret,
        (FileKind::Config, FileStep::Create) => AuditStep::CreateConfig,
        (FileKind::Config, FileStep::Rotate) => AuditStep::RotateConfig,
        (FileKind::Config, FileStep::Remove) => AuditStep::RemoveConfig,
    }
}

async fn list(state: &AppState, kind: FileKind) -> Result<Reply, AppError> {
    let (objects, deploy_history) = load(state, kind).await?;
    Ok(Reply::page(ObjectsView {
        kind: kind.as_str(),
        objects,
        deploy_history,
        form: FormState::default(),
    }))
}

/// A refused form: the page again with the message next to the field (422); JSON gets the
/// error.
async fn refuse(
    state: &AppState,
    uri: &Uri,
    kind: FileKind,
    form: FormState,
    status: StatusCode,
) -> Result<Reply, AppError> {
    let errors = form.errors.clone();
    match form.rotating.clone() {
        None => {
            refused_fields(uri.path(), &errors, status, async {
                let (objects, deploy_history) = load(state, kind).await?;
                Ok(ObjectsView {
                    kind: kind.as_str(),
                    objects,
                    deploy_history,
                    form,
                })
            })
            .await
        }
        Some(name) => {
            refused_fields(uri.path(), &errors, status, async {
                load_one(state, kind, &name, form).await
            })
            .await
        }
    }
}

/// One object's page: the object and its users, and why it is not rotated here if it is
/// swarmkeeper's own; 404 when the kind has none of that name.
async fn load_one(
    state: &AppState,
    kind: FileKind,
    name: &str,
    form: FormState,
) -> Result<ObjectView, AppError> {
    let around = around(state, kind).await?;
    let services = &around.services;
    let object = around
        .rows(kind, Some(name))
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("no {} named {name}", kind.as_str())))?;
    Ok(ObjectView {
        kind: kind.as_str(),
        not_rotatable: own_refusal(services, kind, &object.id, name),
        rekey: (kind == FileKind::Secret && seal_key_users(services, &object.id).is_ok())
            .then(|| rekey_consequences(name)),
        report_secret: if kind == FileKind::Secret
            && server_reads_as(services, &object.id, REPORT_SECRET_FILE)
        {
            Some(ReportSecretView {
                previous_accepted: state.report_grace_open(),
                nodes_on_previous: state.nodes_on_previous_report_secret()?,
            })
        } else {
            None
        },
        object,
        form,
    })
}

/// Why the object `id` named `name` is not rotated from the dashboard, when swarmkeeper's
/// own server or agent uses it.
fn own_refusal(services: &[Service], kind: FileKind, id: &str, name: &str) -> Option<String> {
    let own: Vec<OwnUser<'_>> = services
        .iter()
        .filter_map(|service| {
            let part = own_part(&service.view)?;
            let reference = refs(service, kind).iter().find(|r| r.id == id)?;
            Some(OwnUser {
                service: &service.name,
                part,
                target: &reference.target,
            })
        })
        .collect();
    rotation_refusal(kind.as_str(), name, &own)
}

async fn show(state: &AppState, kind: FileKind, name: &str) -> Result<Reply, AppError> {
    Ok(Reply::page(
        load_one(state, kind, name, FormState::default()).await?,
    ))
}

/// The create form refused with `errors`.
fn create_refused(name: String, errors: Vec<FieldError>) -> FormState {
    FormState {
        name,
        rotating: None,
        errors,
    }
}

/// The rotate form of `object` refused with `error`.
fn rotate_refused(object: &str, error: FieldError) -> FormState {
    FormState {
        name: String::new(),
        rotating: Some(object.to_owned()),
        errors: vec![error],
    }
}

const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

async fn create(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    kind: FileKind,
    request: CreateRequest,
) -> Result<Reply, AppError> {
    // Every field checked, so one answer names all that are wrong.
    let from_form = Format::of(uri.path()) == Format::Html;
    let value = posted_value(&request.data, &request.encoding, from_form);
    let errors: Vec<FieldError> = [
        check_name("name", &request.name).err(),
        value.as_ref().err().cloned(),
        value.as_ref().ok().and_then(|v| check_data(kind, v).err()),
        check_labels(&request.labels).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return refuse(
            state,
            uri,
            kind,
            create_refused(request.name, errors),
            INVALID,
        )
        .await;
    }
    let value = value.unwrap_or_default();
    let created =
        match create_object(&state.engine, kind, &request.name, &value, &request.labels).await {
            Ok(created) => created,
            Err(e) if e.is_conflict() => {
                let error = FieldError {
                    field: "name",
                    message: format!("a {} named {} already exists", kind.as_str(), request.name),
                };
                let form = create_refused(request.name, vec![error]);
                return refuse(state, uri, kind, form, StatusCode::CONFLICT).await;
            }
            Err(e) => return Err(e.into()),
        };
    state.audit(
        &caller.user.name,
        audit_step(kind, FileStep::Create).as_str(),
        &request.name,
        // A secret's length is worth hiding (a password's); the events page shows this line.
        &match kind {
            FileKind::Secret => "value not shown".to_owned(),
            FileKind::Config => format!("{} bytes", value.len()),
        },
    )?;
    Ok(Reply::changed(
        StatusCode::CREATED,
        CreatedObject {
            kind: kind.as_str(),
            id: created.id,
            name: request.name,
        },
        page_of(kind),
    ))
}

/// Every object of the kind and every service, in one request each.
async fn find(
    state: &AppState,
    kind: FileKind,
) -> Result<(Vec<swarmkeeper_engine::SwarmObject>, Vec<Service>), AppError> {
    Ok(tokio::try_join!(
        list_objects(&state.engine, kind),
        state.engine.list_services(None)
    )?)
}

async fn remove(
    state: &AppState,
    caller: &Caller,
    kind: FileKind,
    name: &str,
) -> Result<Reply, AppError> {
    remove_unused(state, kind, name).await?;
    let step = audit_step(kind, FileStep::Remove);
    state.audit(&caller.user.name, step.as_str(), name, "")?;
    Ok(Reply::done(page_of(kind)))
}

/// Removes the secret or config `name` unless something uses it: a service, a task still
/// running with it, or a stack's history that needs it for a rollback (409 naming it); 404
/// when there is none of that name.
async fn remove_unused(state: &AppState, kind: FileKind, name: &str) -> Result<(), AppError> {
    let rows = around(state, kind).await?.rows(kind, Some(name));
    let row = rows
        .first()
        .ok_or_else(|| AppError::NotFound(format!("no {} named {name}", kind.as_str())))?;
    if let Some(stack) = &row.history_of {
        return Err(AppError::Conflict(history_refusal(kind, name, stack)));
    }
    if let Some(why) = in_use(kind, name, &row.users, &row.tasks) {
        return Err(AppError::Conflict(why));
    }
    Ok(remove_object(&state.engine, kind, &row.id).await?)
}

/// How long a re-key's old key waits for Swarm to be done moving the server onto the new
/// one: the stack file watches the server 45 s after its update (`monitor`) and rolls back to
/// the spec that names the old key if it fails.
const RETIRE_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// After a re-key in effect (`crate::sealed::settle_rekeys`): removes the old key `old` once
/// Swarm has completed the update of every server on its new version and nothing uses it, as
/// a rotation removes an old version (audited as `user`'s). A stack file that still names the
/// old key then fails to deploy ("secret not found") instead of moving the server back onto a
/// key that opens none of the values sealed since (tryout 14 finding 5). Kept, with the
/// reason logged, when Swarm rolled a server back, when something else uses it, or after
/// [`RETIRE_WAIT`].
pub(crate) async fn retire_old_key(state: AppState, old: String, user: String) {
    let kind = FileKind::Secret;
    let deadline = tokio::time::Instant::now() + RETIRE_WAIT;
    loop {
        let settled = async {
            let (objects, services) = find(&state, kind).await?;
            let new_ids: Vec<&str> = objects
                .iter()
                .filter(|o| o.labels.get(ROTATED_FROM_LABEL) == Some(&old))
                .map(|o| o.id.as_str())
                .collect();
            let servers: Vec<&Service> = services
                .iter()
                .filter(|s| own_part(&s.view) == Some(OwnPart::Server))
                .filter(|s| {
                    refs(s, kind)
                        .iter()
                        .any(|r| new_ids.contains(&r.id.as_str()))
                })
                .collect();
            let states: Vec<Option<&UpdateState>> = servers
                .iter()
                .map(|s| s.update_status.as_ref().map(|u| &u.state))
                .collect();
            Ok::<_, AppError>(old_key_retirable(&states))
        };
        let why_kept = match settled.await {
            Ok(Ok(true)) => match remove_unused(&state, kind, &old).await {
                Ok(()) => {
                    let detail = "the old key, once every server ran on its re-key's new version";
                    let step = audit_step(kind, FileStep::Remove);
                    if let Err(e) = state.audit(&user, step.as_str(), &old, detail) {
                        tracing::warn!(error = %e, "could not audit the old key's removal");
                    }
                    return tracing::info!(secret = %old, "the re-keyed old key is removed");
                }
                Err(e) => e.to_string(),
            },
            Ok(Ok(false)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                continue;
            }
            Ok(Ok(false)) => "the server's update did not complete in 10 minutes".to_owned(),
            Ok(Err(why)) => why.to_owned(),
            Err(e) => e.to_string(),
        };
        return tracing::warn!(
            secret = %old,
            why = %why_kept,
            "the re-keyed old key is kept: remove it on its page once nothing uses it, and \
             point the stack file at the new version"
        );
    }
}

async fn rotate(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    kind: FileKind,
    name: &str,
    request: RotateRequest,
) -> Result<Reply, AppError> {
    let (objects, services) = find(state, kind).await?;
    let old = objects
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no {} named {name}", kind.as_str())))?;
    if let Some(stack) = history_stack(&old.name, &old.labels) {
        return Err(AppError::Conflict(history_refusal(kind, name, &stack)));
    }
    if let Some(why) = own_refusal(&services, kind, &old.id, name) {
        return Err(AppError::Conflict(why));
    }
    let from_form = Format::of(uri.path()) == Format::Html;
    let value = match posted_value(&request.data, &request.encoding, from_form)
        .and_then(|value| check_data(kind, &value).map(|()| value))
    {
        Ok(value) => value,
        Err(error) => {
            return refuse(state, uri, kind, rotate_refused(name, error), INVALID).await;
        }
    };
    if let Some(why) = global_tasks_held(state, &services, kind, &old.id, name).await? {
        return Err(AppError::Conflict(why));
    }
    let taken: HashSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    let new_name = match request.new_name.filter(|n| !n.is_empty()) {
        Some(new_name) => {
            let (checked, status) = match check_name("new_name", &new_name) {
                Err(error) => (Err(error), INVALID),
                Ok(()) if taken.contains(new_name.as_str()) => (
                    Err(FieldError {
                        field: "new_name",
                        message: format!("a {} named {new_name} already exists", kind.as_str()),
                    }),
                    StatusCode::CONFLICT,
                ),
                Ok(()) => (Ok(()), StatusCode::OK),
            };
            if let Err(error) = checked {
                return refuse(state, uri, kind, rotate_refused(name, error), status).await;
            }
            new_name
        }
        None => next_version(name, &taken),
    };
    let labels = new_version_labels(old);
    let created = create_object(&state.engine, kind, &new_name, &value, &labels).await?;
    state.audit(
        &caller.user.name,
        audit_step(kind, FileStep::Rotate).as_str(),
        name,
        &format!("to {new_name}: started"),
    )?;
    let users = services
        .iter()
        .filter(|s| refs(s, kind).iter().any(|r| r.id == old.id));
    let groups = moves(users, kind, &old.id, &created, &new_name);
    let rotation = Rotation {
        user: caller.user.name.clone(),
        verb: "rotated",
        kind,
        name: name.to_owned(),
        old_id: old.id.clone(),
        new_name,
        created,
        groups,
    };
    // A form follows the rotation on its job's page; the JSON API waits for its end.
    if Format::of(uri.path()) == Format::Html {
        let about = rotation.about();
        let follower = state.clone();
        return Ok(super::jobs::follow(
            state,
            format!("Rotation of {} {name}", kind.as_str()),
            &caller.user.name,
            about,
            move |job| async move { Ok(rotation.finish(follower, Some(job)).await?.end()) },
        ));
    }
    let view = rotation.finish(state.clone(), None).await?;
    let status = if view.succeeded {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(Reply::page(view).with_status(status))
}

/// Why the rotation of `kind` `name` (id `id`) would leave a global user's task on the old
/// version ([`rotation_blocked`]): its running tasks on nodes that are not active. Asked
/// before anything is created.
async fn global_tasks_held(
    state: &AppState,
    services: &[Service],
    kind: FileKind,
    id: &str,
    name: &str,
) -> Result<Option<String>, AppError> {
    let global: Vec<&Service> = services
        .iter()
        .filter(|s| s.view.mode == ServiceMode::Global && refs(s, kind).iter().any(|r| r.id == id))
        .collect();
    if global.is_empty() {
        return Ok(None);
    }
    // One task listing for every global user, not one per service.
    let ids: Vec<String> = global.iter().map(|s| s.id.clone()).collect();
    let (nodes, tasks) =
        tokio::try_join!(state.engine.list_nodes(), state.engine.list_tasks_of(&ids))?;
    let mut stuck = Vec::new();
    for service in &global {
        for task in tasks.iter().filter(|t| t.service_id == service.id) {
            let node = nodes.iter().find(|n| n.id == task.node_id);
            if let (TaskState::Running, Some(node)) = (&task.desired_state, node) {
                if node.availability != "active" {
                    stuck.push((
                        service.name.clone(),
                        node.hostname.clone(),
                        node.availability.clone(),
                    ));
                }
            }
        }
    }
    let stuck: Vec<Unmovable<'_>> = stuck
        .iter()
        .map(|(service, hostname, availability)| Unmovable {
            service,
            hostname,
            availability,
        })
        .collect();
    Ok(rotation_blocked(kind, name, &stuck))
}

/// The labels of a new version of `old`: its own, but the digest label a stack deploy wrote
/// (it describes the old content), and the label by which a deploy of a stack file that still
/// names the old version finds the new one.
fn new_version_labels(old: &swarmkeeper_engine::SwarmObject) -> BTreeMap<String, String> {
    let mut labels = old.labels.clone();
    labels.remove(LABEL_DATA_SHA256);
    labels.insert(ROTATED_FROM_LABEL.to_owned(), old.name.clone());
    labels
}

/// What a rotation moves: each of `users` with its reference to `old_id` swapped for the
/// new version, grouped by history — each stack's users move in one revision of that stack;
/// a service outside any stack is its own history.
fn moves<'a>(
    users: impl Iterator<Item = &'a Service>,
    kind: FileKind,
    old_id: &str,
    created: &Created,
    new_name: &str,
) -> BTreeMap<String, Vec<(String, serde_json::Value)>> {
    let mut groups: BTreeMap<String, Vec<(String, serde_json::Value)>> = BTreeMap::new();
    for service in users {
        let mut spec = service.spec.clone();
        swap_file_ref(&mut spec, kind, old_id, (&created.id, new_name));
        let history = service.view.stack().unwrap_or(&service.name).to_owned();
        groups
            .entry(history)
            .or_default()
            .push((service.name.clone(), spec));
    }
    groups
}

/// A rotation once its new version exists: the users moved, a revision per stack.
struct Rotation {
    user: String,
    /// How the history names the move: `rotated`, or `re-keyed` for the server's sealing key.
    verb: &'static str,
    kind: FileKind,
    name: String,
    old_id: String,
    new_name: String,
    created: Created,
    groups: BTreeMap<String, Vec<(String, serde_json::Value)>>,
}

impl Rotation {
    /// Where a rotation is recorded: the object's page and each stack's history it moves.
    fn about(&self) -> Vec<Link> {
        let mut about = vec![Link {
            text: format!("{} {}", self.kind.as_str(), self.name),
            href: format!("/{}s/{}", self.kind.as_str(), url_encode(&self.name)),
        }];
        about.extend(self.groups.keys().map(|stack| history_link(stack, None)));
        about
    }
    /// Moves every group, then removes the old version once every move succeeded and nothing
    /// uses it, or the new one when nothing uses it (`views::objects::rotation_cleanup`), and
    /// audits the end. A clean-up the engine refuses is said in the answer, not its error.
    async fn finish(
        self,
        state: AppState,
        follower: Option<Arc<Job>>,
    ) -> Result<RotateView, AppError> {
        let Rotation {
            user,
            verb,
            kind,
            name,
            old_id,
            new_name,
            created,
            groups,
        } = self;
        // Said as the form's edits are ("edited in the dashboard"), naming the change: the
        // revision moves no image, so its line would otherwise read like nothing happened.
        let action = rotated(verb, kind, &name, &new_name);
        let mut moved = Vec::with_capacity(groups.len());
        for (stack, specs) in groups {
            let by = Maker {
                who: user.clone(),
                what: Some(action.clone()),
            };
            moved.push(move_group(&state, by, stack, specs, follower.clone()).await?);
        }
        let succeeded = moved.iter().all(|g| g.succeeded);
        let (users, mut summary) = match state.engine.list_services(None).await {
            Ok(services) => (Some(services), String::new()),
            Err(e) => (
                None,
                format!("; nothing removed: the services could not be listed: {e}"),
            ),
        };
        let on = |id: &str| -> Vec<String> {
            users
                .iter()
                .flatten()
                .filter(|s| refs(s, kind).iter().any(|r| r.id == id))
                .map(|s| s.name.clone())
                .collect()
        };
        let (on_new, on_old) = (on(&created.id), on(&old_id));
        let mut cleanup = rotation_cleanup(succeeded, !on_old.is_empty(), !on_new.is_empty());
        if users.is_none() {
            cleanup.remove_old = false;
            cleanup.remove_new = false;
        }
        for (remove, id, version) in [
            (&mut cleanup.remove_old, &old_id, &name),
            (&mut cleanup.remove_new, &created.id, &new_name),
        ] {
            if *remove {
                if let Err(e) = remove_object(&state.engine, kind, id).await {
                    *remove = false;
                    summary.push_str(&format!("; {version} could not be removed: {e}"));
                }
            }
        }
        let summary = rotation_summary(&name, &new_name, &on_new, &on_old, cleanup) + &summary;
        // A re-key's move is cut off by the server's own restart: the next start, on the new
        // key, records how it went (`sealed::settle_rekeys`; tryout 12 finding 4).
        let (step, ended) = match (verb, succeeded) {
            (REKEYED, true) => (AuditStep::RekeySecret, "succeeded"),
            (REKEYED, false) if state.shutdown.has_begun() => (
                AuditStep::RekeySecret,
                "cut off by the server's restart onto the new key (its next start records how \
                 it went)",
            ),
            (REKEYED, false) => (AuditStep::RekeySecret, "failed"),
            (_, true) => (audit_step(kind, FileStep::Rotate), "succeeded"),
            (_, false) => (audit_step(kind, FileStep::Rotate), "failed"),
        };
        state.audit(
            &user,
            step.as_str(),
            &name,
            &format!("to {new_name}: {ended}: {summary}"),
        )?;
        Ok(RotateView {
            kind: kind.as_str(),
            name,
            new_name,
            new_id: created.id,
            groups: moved,
            moved: on_new,
            still_on_old: on_old,
            removed_old: cleanup.remove_old,
            removed_new: cleanup.remove_new,
            succeeded,
            summary,
        })
    }
}

impl RotateView {
    /// How the rotation's job ends: the outcome, each revision, the new version's page.
    fn end(&self) -> JobEnd {
        let mut links: Vec<Link> = self.groups.iter().flat_map(MovedGroup::links).collect();
        links.push(Link {
            text: format!("{} {}", self.kind, self.new_name),
            href: format!("/{}s/{}", self.kind, url_encode(&self.new_name)),
        });
        let outcome = match (self.succeeded, self.removed_old) {
            (true, true) => format!("rotated to {}; {} removed", self.new_name, self.name),
            (true, false) => format!("rotated to {}", self.new_name),
            (false, _) => format!("failed: {}", self.summary),
        };
        JobEnd {
            succeeded: self.succeeded,
            outcome,
            links,
            notes: Vec::new(),
        }
    }
}

impl MovedGroup {
    /// Where a followed change's page points at its end: the revision in the stack's history,
    /// and the services.
    pub(super) fn links(&self) -> Vec<Link> {
        let mut links = vec![history_link(&self.stack, self.revision)];
        links.extend(self.services.iter().map(|s| Link {
            text: s.clone(),
            href: format!("/services/{}", url_encode(s)),
        }));
        links
    }
}

/// The link to a stack's history (a service's own, for one outside a stack), naming the
/// revision when there is one.
pub(super) fn history_link(stack: &str, revision: Option<u64>) -> Link {
    Link {
        text: match revision {
            Some(r) => format!("revision {r} of {stack}"),
            None => format!("history of {stack}"),
        },
        href: format!("/stacks/{}", url_encode(stack)),
    }
}

/// The history a link made by [`history_link`] points at (`history of STACK`, `revision N
/// of STACK`).
pub(crate) fn linked_history(link: &Link) -> Option<&str> {
    link.text.strip_prefix("history of ").or_else(|| {
        let rest = link.text.strip_prefix("revision ")?;
        let (number, stack) = rest.split_once(" of ")?;
        number.parse::<u64>().ok().map(|_| stack)
    })
}

/// What a rotation's revisions did: `rotated secret db_pw → db_pw.v2 in the dashboard`.
fn rotated(verb: &str, kind: FileKind, old: &str, new: &str) -> String {
    format!("{} {new} in the dashboard", rotated_from(verb, kind, old))
}

/// The start of what [`rotated`] says, before the new version's name.
fn rotated_from(verb: &str, kind: FileKind, old: &str) -> String {
    format!("{verb} {} {old} →", kind.as_str())
}

/// How the revisions of a re-key of secret `old` begin their action: what finds them again
/// at the next start (`crate::sealed::settle_rekey_revisions`).
pub(crate) fn rekey_action_prefix(old: &str) -> String {
    rotated_from(REKEYED, FileKind::Secret, old)
}

/// What the operator must change once a re-key of `old` to `new` is done: the stack file
/// still names `old`, whose next `docker stack deploy` would move the server back onto a key
/// that opens none of the values sealed since (tryout 14 finding 5).
pub(crate) fn stack_file_after_rekey(old: &str, new: &str) -> String {
    let file = swarmkeeper_auth::SECRET_KEY_SECRET_FILE;
    let key = file.rsplit('/').next().unwrap_or_default();
    format!(
        "Now point the stack file at the new key: in deploy/swarmkeeper.yml's top-level \
         `secrets:`, `{key}: {{external: true, name: {new}}}` (the server goes on reading it \
         as {file}). {old} is removed once Swarm has completed the server's update and nothing \
         uses it, so a stack file that still names it fails to deploy instead of moving the \
         server back onto a key that opens none of the values sealed since."
    )
}

/// The verb of a re-key's revisions.
const REKEYED: &str = "re-keyed";

/// Who makes a revision, and what they do when it is more than a deploy or rollback of files
/// (`edited in the dashboard`): recorded apart in the history.
pub(super) struct Maker {
    pub who: String,
    pub what: Option<String>,
}

/// One revision through the deploy engine: the services of `stack` brought to their new specs
/// (created when they do not exist), recorded as made `by`.
pub(super) async fn move_group(
    state: &AppState,
    by: Maker,
    stack: String,
    specs: Vec<(String, serde_json::Value)>,
    follower: Option<Arc<Job>>,
) -> Result<MovedGroup, AppError> {
    let services: Vec<String> = specs.iter().map(|(name, _)| name.clone()).collect();
    let request = Request {
        stack: stack.clone(),
        by: by.who,
        action: by.what,
        files: Vec::new(),
        registry_auth: Some(state.registries.registry_auth()),
    };
    let options = state.deploy_options();
    let engine = state.engine.clone();
    let (result, progress) = run_deploy_followed(state, follower, move |store, progress| {
        Box::pin(async move {
            swarmkeeper_deploy::edit(&engine, store, &request, specs, &options, progress).await
        })
    })
    .await?;
    Ok(match result {
        Ok(outcome) => MovedGroup {
            stack,
            services,
            revision: outcome.revision,
            outcome: outcome.label().to_string(),
            succeeded: outcome.succeeded,
            progress,
            failures: outcome.failures.iter().map(DeployFailure::from).collect(),
        },
        Err(e) => MovedGroup {
            stack,
            services,
            revision: None,
            outcome: format!("failed: {e}"),
            succeeded: false,
            progress,
            failures: Vec::new(),
        },
    })
}

/// `GET /secrets`, `GET /api/secrets`.
pub async fn secrets(State(state): State<AppState>) -> Result<Reply, AppError> {
    list(&state, FileKind::Secret).await
}

/// `GET /configs`, `GET /api/configs`.
pub async fn configs(State(state): State<AppState>) -> Result<Reply, AppError> {
    list(&state, FileKind::Config).await
}

/// `GET /secrets/{name}`, `GET /api/secrets/{name}`: one secret, its users and its forms.
pub async fn secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    show(&state, FileKind::Secret, &name).await
}

/// `GET /configs/{name}`, `GET /api/configs/{name}`.
pub async fn config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    show(&state, FileKind::Config, &name).await
}

/// `POST /secrets` (the form), `POST /api/secrets`: 201 with the id; the value is not shown
/// again.
pub async fn create_secret(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(request): Input<CreateRequest>,
) -> Result<Reply, AppError> {
    create(&state, &caller, &uri, FileKind::Secret, request).await
}

/// `POST /configs`, `POST /api/configs`.
pub async fn create_config(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(request): Input<CreateRequest>,
) -> Result<Reply, AppError> {
    create(&state, &caller, &uri, FileKind::Config, request).await
}

/// `POST /secrets/{name}/remove`, `DELETE /api/secrets/{name}`: 409 naming the services
/// while any uses it, and the tasks (with their node and state) that still run with it
/// though their service no longer names it.
pub async fn remove_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    remove(&state, &caller, FileKind::Secret, &name).await
}

/// `POST /configs/{name}/remove`, `DELETE /api/configs/{name}`.
pub async fn remove_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    remove(&state, &caller, FileKind::Config, &name).await
}

/// `POST /secrets/{name}/rotate`, `POST /api/secrets/{name}/rotate`: 200 when every user
/// moved and the old version is gone, 409 when a move failed (and was rolled back).
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(request): Input<RotateRequest>,
) -> Result<Reply, AppError> {
    rotate(&state, &caller, &uri, FileKind::Secret, &name, request).await
}

/// `POST /configs/{name}/rotate`, `POST /api/configs/{name}/rotate`.
pub async fn rotate_config(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(request): Input<RotateRequest>,
) -> Result<Reply, AppError> {
    rotate(&state, &caller, &uri, FileKind::Config, &name, request).await
}

/// The file the server reads the agents' report secret from (`deploy/swarmkeeper.yml`).
const REPORT_SECRET_FILE: &str = "swarmkeeper_report_secret";

/// The agents' report secret across a rotation: the server accepts the previous one (a
/// start with another secret puts the last one on a grace list) until every node's agent
/// has reported with the current one, so the agent Swarm leaves on a paused or drained node
/// keeps reporting.
#[derive(Serialize)]
pub struct ReportSecretView {
    pub previous_accepted: bool,
    /// Hostnames whose agents last reported with the previous secret.
    pub nodes_on_previous: Vec<String>,
}

/// Whether a service running swarmkeeper's server reads secret `id` as `file`.
fn server_reads_as(services: &[Service], id: &str, file: &str) -> bool {
    services.iter().any(|s| {
        own_part(&s.view) == Some(crate::views::own::OwnPart::Server)
            && refs(s, FileKind::Secret)
                .iter()
                .any(|r| r.id == id && r.target.rsplit('/').next() == Some(file))
    })
}

/// `POST /secrets/{name}/forget-previous`, `POST /api/secrets/{name}/forget-previous` (admin):
/// the previous report secrets are no longer accepted (before every node's agent has
/// reported with the current one: a node whose agent still has the old one is then refused).
pub async fn forget_previous_report_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let (objects, services) = find(&state, FileKind::Secret).await?;
    let object = objects
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no secret named {name}")))?;
    if !server_reads_as(&services, &object.id, REPORT_SECRET_FILE) {
        return Err(AppError::Conflict(format!(
            "{name} is not the agents' report secret the server reads"
        )));
    }
    let still = state.nodes_on_previous_report_secret()?;
    let dropped = state.drop_report_grace()?;
    state.audit(
        &caller.user.name,
        "report-secret",
        &name,
        &format!(
            "previous secret(s) no longer accepted ({dropped}); nodes still on one: {}",
            if still.is_empty() {
                "none".to_owned()
            } else {
                still.join(", ")
            }
        ),
    )?;
    Ok(Reply::done(format!("/secrets/{}", url_encode(&name))))
}

/// A re-key of the server's sealing key: the new key's text (by default the server draws 64
/// random hex digits, shown to no one), and the secret's name as the confirmation that the
/// server restarts.
#[derive(Deserialize)]
pub struct RekeyRequest {
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub confirm: Option<String>,
}

/// What a re-key answers as it starts (202): never a key. The server's move goes on in the
/// job; the server restarts on the new key in its middle.
#[derive(Serialize)]
pub struct RekeyStarted {
    pub name: String,
    pub new_name: String,
    pub new_id: String,
    /// Sealed values (registry secrets, alert channels' settings) staged for the new key.
    pub resealed: usize,
    /// The job that moves the server, `/jobs/ID` (its page outlives the restart).
    pub job: String,
    pub summary: String,
}

/// What re-keying `name` does, said before it is done.
fn rekey_consequences(name: &str) -> String {
    format!(
        "Re-key {name}: every alert channel's settings and registry credential is opened with \
         the current key and sealed with a new one (both kept until the server runs on the new \
         key), a new version of the secret is created and the server is moved to it through \
         the deploy engine: the server restarts and this dashboard is away for a few seconds. \
         The new key is never shown."
    )
}

/// The services using secret `id` when it is the server's sealing key — a service running
/// swarmkeeper's server reads it as `swarmkeeper_secret_key` — and no agent uses it; else why
/// it is not re-keyed.
fn seal_key_users<'a>(services: &'a [Service], id: &str) -> Result<Vec<&'a Service>, String> {
    let key_file = swarmkeeper_auth::SECRET_KEY_SECRET_FILE
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let users: Vec<&Service> = services
        .iter()
        .filter(|s| refs(s, FileKind::Secret).iter().any(|r| r.id == id))
        .collect();
    if !server_reads_as(services, id, key_file) {
        return Err(
            "only the server's sealing key (the secret its server reads as \
                    swarmkeeper_secret_key) is re-keyed; rotate other secrets"
                .to_owned(),
        );
    }
    if let Some(agent) = users
        .iter()
        .find(|s| own_part(&s.view) == Some(crate::views::own::OwnPart::Agent))
    {
        return Err(format!(
            "{} (swarmkeeper's agent) uses it too: it is not re-keyed here",
            agent.name
        ));
    }
    Ok(users)
}

/// `POST /secrets/{name}/rekey`, `POST /api/secrets/{name}/rekey` (admin): re-keys the
/// server's sealing key. Every sealed value is opened with the current key and sealed with
/// the new one, staged beside the current sealing in one SQLite transaction
/// (`crate::sealed::stage_rekey`); the new version of the secret is created; then every
/// service using it (the server) is moved to it through the deploy engine, as a rotation
/// does, in a job. The server restarts on the new key and promotes the staged values; a move
/// that fails or is rolled back leaves the server on the old key, whose sealing is kept, so
/// no credential is lost either way. 202 with the job; 409 without `confirm` set to the
/// name, for a secret that is not the server's key, or a value the key cannot open.
pub async fn rekey_secret(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(request): Input<RekeyRequest>,
) -> Result<Reply, AppError> {
    let kind = FileKind::Secret;
    let (objects, services) = find(&state, kind).await?;
    let old = objects
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no secret named {name}")))?;
    let users = seal_key_users(&services, &old.id).map_err(AppError::Conflict)?;
    if request.confirm.as_deref() != Some(name.as_str()) {
        return Err(AppError::Conflict(format!(
            "{} To go ahead, confirm it by name: `\"confirm\": \"{name}\"`.",
            rekey_consequences(&name)
        )));
    }
    let data = match request.data.filter(|d| !d.trim().is_empty()) {
        Some(data) => data,
        None => swarmkeeper_auth::random_key_text(),
    };
    let new_key = match check_data(kind, data.as_bytes()).and_then(|()| {
        swarmkeeper_auth::SealingKey::from_secret(data.as_bytes()).map_err(|e| FieldError {
            field: "data",
            message: e.to_string(),
        })
    }) {
        Ok(key) => key,
        Err(error) => {
            return refuse(&state, &uri, kind, rotate_refused(&name, error), INVALID).await
        }
    };
    let taken: HashSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    let new_name = next_version(&name, &taken);
    let resealed = crate::sealed::stage_rekey(&state, &new_key)?;
    let labels = new_version_labels(old);
    let created =
        match create_object(&state.engine, kind, &new_name, data.as_bytes(), &labels).await {
            Ok(created) => created,
            Err(e) => {
                crate::sealed::abandon_rekey(&state)?;
                return Err(e.into());
            }
        };
    drop(data);
    state.audit(
        &caller.user.name,
        AuditStep::RekeySecret.as_str(),
        &name,
        &format!("to {new_name}: {resealed} sealed value(s) staged for the new key; started"),
    )?;
    let groups = moves(users.into_iter(), kind, &old.id, &created, &new_name);
    let started = RekeyStarted {
        name: name.clone(),
        new_name: new_name.clone(),
        new_id: created.id.clone(),
        resealed,
        job: String::new(),
        summary: format!(
            "{resealed} sealed value(s) staged for the new key; moving the server to \
             {new_name}: it restarts on the new key"
        ),
    };
    let rotation = Rotation {
        user: caller.user.name.clone(),
        verb: REKEYED,
        kind,
        name: name.clone(),
        old_id: old.id.clone(),
        new_name,
        created,
        groups,
    };
    let about = rotation.about();
    // The server's own restart cuts the job off before it sees the move end: the next
    // start, on the new key, ends it so (`sealed::settle_rekeys`).
    let at_restart = JobEnd {
        succeeded: true,
        outcome: format!(
            "re-keyed: the server restarted on {} as planned",
            started.new_name
        ),
        links: about.clone(),
        notes: vec![
            format!(
                "The server's own restart, which the re-key makes, stopped it following the \
                 move before its end: Swarm completed the move and the server started on the \
                 new key ({}), which opens the {resealed} staged sealed value(s); a revision of \
                 the move that the restart left interrupted is settled as succeeded in the \
                 history.",
                started.new_name
            ),
            stack_file_after_rekey(&name, &started.new_name),
        ],
    };
    let follower = state.clone();
    let job = super::jobs::start_followed(
        &state,
        format!("Re-key of secret {name}"),
        &caller.user.name,
        about,
        |job| {
            // Recorded before the job runs, so that a move given up forgets it.
            let recorded =
                crate::sealed::rekey_ends_at_restart(&follower, &job.id, &new_key, &at_restart);
            async move {
                recorded?;
                let view = rotation.finish(follower.clone(), Some(job)).await?;
                // A move that left the server on the old key (refused, rolled back) forgets what
                // was staged for the new key; anything less certain keeps it for the restart.
                if crate::sealed::rekey_given_up(
                    &view.moved,
                    &view.still_on_old,
                    follower.shutdown.has_begun(),
                ) {
                    crate::sealed::abandon_rekey(&follower)?;
                }
                Ok(view.end())
            }
        },
    );
    let href = format!("/jobs/{}", url_encode(&job));
    Ok(Reply::changed(
        StatusCode::ACCEPTED,
        RekeyStarted {
            job: href.clone(),
            ..started
        },
        href,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rekey_s_revisions_are_found_again_by_their_links_and_action() {
        for revision in [None, Some(7)] {
            let link = history_link("swarmkeeper", revision);
            assert_eq!(linked_history(&link), Some("swarmkeeper"), "{link:?}");
        }
        let secret = Link {
            text: "secret k".into(),
            href: "/secrets/k".into(),
        };
        assert_eq!(linked_history(&secret), None);
        let action = rotated(REKEYED, FileKind::Secret, "k", "k.v2");
        assert_eq!(action, "re-keyed secret k → k.v2 in the dashboard");
        assert!(action.starts_with(&rekey_action_prefix("k")));
        assert!(!action.starts_with(&rekey_action_prefix("k.v")));
    }
}
