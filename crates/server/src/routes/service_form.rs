//! Creating and editing a service in a form (`/services/new`, `/services/{name}/edit`) and
//! their JSON twins (`POST /api/services`, `PUT /api/services/{name}`). The form becomes a
//! spec in `views::service_form` (pure); here it is laid over the running spec, shown as a
//! diff with the lint findings of the result (the page's confirm step), then applied through
//! the deploy engine (`deploy::edit`: followed, rolled back on failure, recorded in the
//! stack's history as "edited in the dashboard by NAME") and written to the audit log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::AuditStep;
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_compose::{ComposeError, Location};
use swarmkeeper_deploy::{
    complete_specs, history_stack, DeployError, DeployOutcome, Options, Request,
};
use swarmkeeper_engine::{overlay_compose, overlay_form_fields, ImageRef, Service, ServiceView};
use swarmkeeper_lint::{lint_running, RunningFinding};
use swarmkeeper_rollout::{changes, describe_changes};

use super::objects::{history_link, move_group, Maker, MovedGroup};
use super::services::inspect;
use super::stacks::DeployFailure;
use crate::access::Caller;
use crate::deploys::{run_deploy, swarm_carries_on};
use crate::error::AppError;
use crate::jobs::{Job, JobEnd, Link};
use crate::page::url_encode;
use crate::respond::{Format, Input, Reply};
use crate::state::AppState;
use crate::views::own::{check_edit, own_part};
use crate::views::service_form::{
    build, compose_of_running, field_rows, placement_error, read_compose_edit, refused_place,
    Context, FieldRow, Refused, ServiceForm,
};
use crate::views::FieldError;

/// The form page: empty for a new service, the service's values for an edit; after a
/// preview, the changes and lint findings and the button that applies them.
#[derive(Serialize)]
pub struct ServiceFormView {
    /// `None`: a new service.
    pub editing: Option<String>,
    pub fields: Vec<FieldRow>,
    pub errors: Vec<FieldError>,
    pub preview: Option<FormPreview>,
}

page!(ServiceFormView, "service_form.html", "services");

/// What saving the form would do.
#[derive(Serialize)]
pub struct FormPreview {
    /// One line per changed field (`image app:1 → app:2`); for a new service, its creation.
    pub changes: Vec<String>,
    /// What the deploy engine added where the operator wrote nothing, as the CLI prints it
    /// (`safe default: web: update_config.order = start-first (…)`), and its warnings.
    pub notes: Vec<String>,
    /// The lint findings of the spec as it would be.
    pub findings: Vec<RunningFinding>,
    /// The form as the compose service it was read as.
    pub compose: String,
}

/// What a create or edit did.
#[derive(Serialize)]
pub struct ServiceChange {
    /// The service, or the stack edited as compose.
    pub service: String,
    /// What became of the change ([`Change::answered`]): `created`, `edited`, `edited as
    /// compose`; `not created`, `not edited`, `not edited as compose` when the deploy failed
    /// (the service is as it was: a failed create removed again, a failed edit rolled back or
    /// never applied; `outcome` says which); `interrupted` when the deploy stopped part way; or
    /// `no change` (nothing applied, no revision).
    pub action: &'static str,
    pub changes: Vec<String>,
    /// As [`FormPreview::notes`].
    pub notes: Vec<String>,
    pub findings: Vec<RunningFinding>,
    #[serde(flatten)]
    pub deploy: MovedGroup,
}

page!(ServiceChange, "service_changed.html", "services");

/// What a form or a compose text asked of the deploy engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Create,
    Edit,
    EditAsCompose,
}

impl Change {
    /// The answer's `action` once the deploy engine is done with the change: the change when
    /// it succeeded; `not …` when it failed, since the deploy engine then leaves the service as
    /// it was (a failed create removed again, a failed edit rolled back or never applied);
    /// `interrupted` when the deploy stopped part way, since Swarm goes on with what was
    /// applied and the change may yet take effect.
    fn answered(self, deploy: &MovedGroup) -> &'static str {
        if !deploy.succeeded && deploy.outcome == DeployOutcome::Interrupted.to_string() {
            return "interrupted";
        }
        match (self, deploy.succeeded) {
            (change, true) => change.done(),
            (Change::Create, false) => "not created",
            (Change::Edit, false) => "not edited",
            (Change::EditAsCompose, false) => "not edited as compose",
        }
    }

    /// The change, done.
    fn done(self) -> &'static str {
        match self {
            Change::Create => "created",
            Change::Edit => "edited",
            Change::EditAsCompose => "edited as compose",
        }
    }
}

/// The form as posted: its fields, and `confirm=yes` once the preview was seen (a page
/// only: the JSON twin applies at once).
#[derive(Deserialize)]
pub struct FormPost {
    #[serde(flatten)]
    pub form: ServiceForm,
    #[serde(default)]
    pub confirm: String,
}

/// The image field's question: `?image=REF`.
#[derive(Deserialize)]
pub struct TagsQuery {
    pub image: String,
}

/// `GET /api/image-tags?image=REF`: the tags of the image's repository, for the form's
/// suggestions (see [`crate::image_tags`]).
pub async fn image_tags(
    State(state): State<AppState>,
    Query(query): Query<TagsQuery>,
) -> Result<Json<crate::image_tags::ImageTags>, AppError> {
    let tags = crate::image_tags::image_tags(&state, &query.image).await?;
    Ok(Json((*tags).clone()))
}

/// `GET /services/new`.
pub async fn new_form() -> Result<Reply, AppError> {
    // The update and rollback configs and the log driver are left empty: the deploy engine's
    // safe defaults fill them in, and the preview says so.
    let form = ServiceForm {
        mode: "replicated".into(),
        replicas: "1".into(),
        ..ServiceForm::default()
    };
    Ok(Reply::page(ServiceFormView {
        editing: None,
        fields: field_rows(&form, &[]),
        errors: Vec::new(),
        preview: None,
    }))
}

/// `GET /services/{name}/edit`: the form with the service's values.
pub async fn edit_form(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    let form = ServiceForm::of_view(&service.view);
    Ok(Reply::page(ServiceFormView {
        editing: Some(name),
        fields: field_rows(&form, &[]),
        errors: Vec::new(),
        preview: None,
    }))
}

/// `POST /services/new` (the form), `POST /api/services`: 201 when the new service
/// converged, 409 when it failed (and was removed again), 400 naming the field.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(body): Input<serde_json::Value>,
) -> Result<Reply, AppError> {
    let post = read_post(&uri, body)?;
    if inspect(&state, post.form.name.trim()).await.is_ok() {
        let error = FieldError::new(
            "name",
            format!("a service named {} already exists", post.form.name.trim()),
        );
        return refuse(&uri, None, &post.form, vec![error], StatusCode::CONFLICT);
    }
    save(&state, &caller, &uri, None, post, false).await
}

/// `POST /services/{name}/edit` (the form), `PUT /api/services/{name}`: 200 when the
/// service converged on its new spec, 409 when it failed and was rolled back, 400 naming the
/// field.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(body): Input<serde_json::Value>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    // The JSON twin confirms a change that moves swarmkeeper's own server with
    // `"confirm": true`; a page confirms by its preview's Apply.
    let confirmed = body.get("confirm") == Some(&serde_json::Value::Bool(true));
    // A field the body leaves out keeps the service's value; the name is the path's.
    let post = read_post(
        &uri,
        overlay_body(&ServiceForm::of_view(&service.view), body)?,
    )?;
    let name = service.name.clone();
    if post.form.name.trim() != name {
        let error = FieldError::new(
            "name",
            "Swarm cannot rename a service: create a new one instead".to_owned(),
        );
        return refuse(
            &uri,
            Some(&name),
            &post.form,
            vec![error],
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let move_confirmed = confirmed || post.confirm == "yes";
    save(&state, &caller, &uri, Some(service), post, move_confirmed).await
}

/// A create's or an edit's body. The JSON twin is read field for field as the form, so a
/// key no field takes (`replicass`) is refused by name as every API body's is (through
/// [`FormPost`]'s flatten it would be dropped unseen); `confirm` is a page's and means nothing
/// there. The page's form keeps its other fields (the CSRF token) and is read as it was.
fn read_post(uri: &Uri, body: serde_json::Value) -> Result<FormPost, AppError> {
    match Format::of(uri.path()) {
        Format::Json => {
            let mut body = body;
            if let Some(fields) = body.as_object_mut() {
                fields.remove("confirm");
            }
            Ok(FormPost {
                form: crate::respond::from_json_value(body)?,
                confirm: String::new(),
            })
        }
        Format::Html => serde_json::from_value(body).map_err(|e| AppError::BadInput(e.to_string())),
    }
}

/// An edit's body laid over the form of the service as it is: the fields the body gives
/// replace the current values (`null` or `""` empties a field), the others are kept.
fn overlay_body(
    current: &ServiceForm,
    body: serde_json::Value,
) -> Result<serde_json::Value, AppError> {
    let serde_json::Value::Object(given) = body else {
        return Err(AppError::BadInput(
            "the body is an object of the form's fields".to_owned(),
        ));
    };
    let mut merged = serde_json::to_value(current).map_err(AppError::internal)?;
    if let Some(fields) = merged.as_object_mut() {
        fields.extend(given);
    }
    Ok(merged)
}

/// The form refused: the page again with each message next to its field, or the JSON error.
fn refuse(
    uri: &Uri,
    editing: Option<&str>,
    form: &ServiceForm,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Reply, AppError> {
    match Format::of(uri.path()) {
        Format::Json => Err(AppError::Fields {
            status: match status {
                StatusCode::CONFLICT => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            },
            errors,
        }),
        Format::Html => Ok(Reply::page(ServiceFormView {
            editing: editing.map(str::to_owned),
            fields: field_rows(form, &errors),
            errors,
            preview: None,
        })
        .with_status(status)),
    }
}

/// Specs completed by the deploy engine, and what it said.
type Completed = (Vec<(String, serde_json::Value)>, Vec<String>);

/// Typed specs completed by the deploy engine as a stack file's are (safe defaults, images
/// pinned to their digests with the server's registry credentials), with what it said; the
/// inner `Err` is why it refused the input (an image the registry does not have). The specs
/// named in `edits` are of running services: their safe defaults are suggested, not applied.
async fn complete(
    state: &AppState,
    history: &str,
    specs: Vec<ServiceSpec>,
    edits: Vec<String>,
) -> Result<Result<Completed, String>, AppError> {
    let request = Request {
        stack: history.to_owned(),
        by: String::new(),
        action: None,
        files: Vec::new(),
        registry_auth: Some(state.registries.registry_auth()),
    };
    let engine = state.engine.clone();
    let (completed, notes) = run_deploy(state, move |_, progress| {
        Box::pin(async move {
            let edits: Vec<&str> = edits.iter().map(String::as_str).collect();
            let options = Options::default();
            complete_specs(&engine, &request, specs, &edits, &options, progress).await
        })
    })
    .await?;
    match completed {
        Ok(completed) => Ok(Ok((completed, notes))),
        Err(DeployError::Engine(e)) => Err(e.into()),
        Err(DeployError::Store(e)) => Err(AppError::internal(e)),
        Err(refused) => Ok(Err(refused.to_string())),
    }
}

/// Drops the digest of each spec's image that keeps the pin of the running service of its
/// name under another name (`ImageRef::keeps_an_old_pin`): the form and the compose text show
/// a form-made service's image pinned, and an operator who edits the tag means that tag, which
/// the deploy engine then resolves.
fn unpin_retagged(specs: &mut [ServiceSpec], running: &[Service]) {
    for spec in specs {
        let Some(current) = running.iter().find(|s| s.name == spec.name) else {
            continue;
        };
        let image = &mut spec.task_template.container_spec.image;
        let edited = ImageRef::parse(image.trim());
        if edited.keeps_an_old_pin(&current.view.image) {
            *image = edited.name;
        }
    }
}

/// The field and message when no node of the swarm could run the service of `spec` (its
/// constraints, reservations, log driver): the deploy preflight's rule, asked before the
/// preview so that nothing is applied.
async fn unplaceable(
    state: &AppState,
    spec: &serde_json::Value,
) -> Result<Option<FieldError>, AppError> {
    let Ok(view) = ServiceView::read(spec) else {
        return Ok(None);
    };
    let unplaceable = swarmkeeper_deploy::placement(&state.engine, &view).await?;
    Ok(unplaceable.as_ref().map(placement_error))
}

/// The Ports field's error when the service `name` of `spec` would publish a port another
/// service already has: the deploy preflight's rule, asked before the preview, since the
/// engine refuses it only when applied (or, against a host-mode port, takes that port away).
async fn port_in_use(
    state: &AppState,
    name: &str,
    spec: &serde_json::Value,
) -> Result<Option<FieldError>, AppError> {
    let Ok(view) = ServiceView::read(spec) else {
        return Ok(None);
    };
    let clash = swarmkeeper_deploy::port_in_use(&state.engine, &[(name, &view)]).await?;
    Ok(clash.map(|c| FieldError::new("ports", format!("this service would publish {}", c.why))))
}

/// The field and message when Swarm would leave some of the replicas of service `name`
/// (`spec`) pending for ever: a port it publishes in host mode is free on fewer nodes that can
/// run it than it has replicas, or its replicas per node run out (the deploy preflight's rule,
/// `swarmkeeper_deploy::replicas_pending`). The Ports field, Replicas when no host port is the
/// cause, or the update order when `start-first` is.
async fn replicas_pending(
    state: &AppState,
    name: &str,
    spec: &serde_json::Value,
    updated: bool,
) -> Result<Option<FieldError>, AppError> {
    let Ok(view) = ServiceView::read(spec) else {
        return Ok(None);
    };
    let updated: &[&str] = if updated { &[name] } else { &[] };
    let pending =
        swarmkeeper_deploy::replicas_pending(&state.engine, &[(name, &view)], updated).await?;
    Ok(pending.map(|p| {
        let field = match (p.start_first, &p.port) {
            (true, _) => "update_order",
            (false, Some(_)) => "ports",
            (false, None) => "replicas",
        };
        FieldError::new(field, format!("this service cannot be placed: {}", p.why))
    }))
}

/// What a form or compose text of `stack` may name: the swarm's secrets, configs and networks
/// by name;
/// and the modes of the `running` services it edits, which Swarm cannot change, and their
/// environments, whose hidden credentials a save keeps.
async fn context(
    state: &AppState,
    stack: Option<String>,
    running: &[Service],
) -> Result<Context, AppError> {
    let (secrets, configs, networks) = tokio::try_join!(
        state.engine.list_secrets(None),
        state.engine.list_configs(None),
        state.engine.list_networks(None)
    )?;
    let ids = |objects: Vec<swarmkeeper_engine::SwarmObject>| -> HashMap<String, String> {
        objects.into_iter().map(|o| (o.name, o.id)).collect()
    };
    Ok(Context {
        stack,
        secrets: ids(secrets),
        configs: ids(configs),
        networks: ids(networks),
        modes: running
            .iter()
            .map(|s| (s.name.clone(), s.view.mode.clone()))
            .collect(),
        env: running
            .iter()
            .map(|s| (s.name.clone(), s.view.env.clone()))
            .collect(),
    })
}

async fn save(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    current: Option<Service>,
    post: FormPost,
    move_confirmed: bool,
) -> Result<Reply, AppError> {
    let editing = current.as_ref().map(|s| s.name.clone());
    let stack = current
        .as_ref()
        .and_then(|s| s.view.stack())
        .map(str::to_owned);
    let context = context(state, stack, current.as_slice()).await?;
    let built = match build(&post.form, &context) {
        Ok(built) => built,
        Err(errors) => {
            return refuse(
                uri,
                editing.as_deref(),
                &post.form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    let name = post.form.name.trim().to_owned();
    let edits = editing.iter().cloned().collect();
    let mut specs = vec![built.spec];
    unpin_retagged(&mut specs, current.as_slice());
    let (completed, notes) = match complete(state, &name, specs, edits).await? {
        Ok(completed) => completed,
        Err(why) => {
            let error = FieldError::new("image", why);
            return refuse(
                uri,
                editing.as_deref(),
                &post.form,
                vec![error],
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let empty = serde_json::json!({});
    let before = current.as_ref().map_or(&empty, |s| &s.spec);
    let spec = completed
        .first()
        .map(|(_, spec)| overlay_form_fields(before, spec))
        .expect("one spec in, one out");
    let change_lines = match &current {
        Some(_) => describe_changes(&changes(&spec, before)),
        None => vec![format!("create service {name}")],
    };
    let findings = ServiceView::read(&spec)
        .map(|view| lint_running(&view))
        .unwrap_or_default();
    if let Some(error) = unplaceable(state, &spec).await? {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse(uri, editing.as_deref(), &post.form, vec![error], status);
    }
    if let Some(error) = port_in_use(state, &name, &spec).await? {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse(uri, editing.as_deref(), &post.form, vec![error], status);
    }
    let updated = current.is_some() && !changes(&spec, before).is_empty();
    if let Some(error) = replicas_pending(state, &name, &spec, updated).await? {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse(uri, editing.as_deref(), &post.form, vec![error], status);
    }
    // Moving swarmkeeper's own server away from the node that holds its state, or scaling it
    // to 0.
    let mut notes = notes;
    if let (Some(current), Ok(after)) = (&current, ServiceView::read(&spec)) {
        let part = own_part(&current.view);
        if let Err(why) = check_edit(&current.name, part, &current.view, &after, move_confirmed) {
            if Format::of(uri.path()) == Format::Json {
                return Err(AppError::Conflict(why));
            }
            // The page's preview says it before its Apply confirms.
            notes.push(format!("warning: {why}"));
        }
    }
    if Format::of(uri.path()) == Format::Html && post.confirm != "yes" {
        return Ok(Reply::page(ServiceFormView {
            editing,
            fields: field_rows(&post.form, &[]),
            errors: Vec::new(),
            preview: Some(FormPreview {
                changes: change_lines,
                notes,
                findings,
                compose: built.compose,
            }),
        }));
    }
    if let (Some(current), true) = (&current, change_lines.is_empty()) {
        // Nothing to apply: no update, and no revision that says "unchanged".
        return Ok(Reply::page(ServiceChange {
            service: name.clone(),
            action: "no change",
            changes: change_lines,
            notes,
            findings,
            deploy: MovedGroup {
                stack: history_stack(current).to_owned(),
                services: vec![name],
                revision: None,
                outcome: "unchanged".to_owned(),
                succeeded: true,
                progress: Vec::new(),
                failures: Vec::new(),
            },
        }));
    }
    let (change, step) = match &current {
        Some(_) => (Change::Edit, AuditStep::EditService),
        None => (Change::Create, AuditStep::CreateService),
    };
    let stack = current
        .as_ref()
        .map_or(name.clone(), |s| history_stack(s).to_owned());
    let title = match &current {
        Some(_) => format!("Edit of service {name}"),
        None => format!("Creation of service {name}"),
    };
    let apply = Apply {
        user: caller.user.name.clone(),
        step,
        target: name.clone(),
        action: format!("{} in the dashboard", change.done()),
        stack,
        specs: vec![(name.clone(), spec)],
    };
    let deploy = match apply.follow_or_run(state, uri, title).await? {
        Applied::Followed(redirect) => return Ok(redirect),
        Applied::Done(deploy) => deploy,
    };
    let status = match (deploy.succeeded, &current) {
        (false, _) => StatusCode::CONFLICT,
        (true, None) => StatusCode::CREATED,
        (true, Some(_)) => StatusCode::OK,
    };
    let action = change.answered(&deploy);
    Ok(Reply::page(ServiceChange {
        service: name,
        action,
        changes: change_lines,
        notes,
        findings,
        deploy,
    })
    .with_status(status))
}

/// A change of services ready to go through the deploy engine as one revision, audited as
/// `step` on `target` by `user`.
struct Apply {
    user: String,
    step: AuditStep,
    target: String,
    /// What the revision does, recorded beside `user` (`edited in the dashboard`).
    action: String,
    /// The history the revision goes to.
    stack: String,
    specs: Vec<(String, serde_json::Value)>,
}

/// A form's change goes on as a job; the JSON API's is done when it answers.
enum Applied {
    /// 303 to the job's page.
    Followed(Reply),
    Done(MovedGroup),
}

impl Apply {
    async fn run(
        self,
        state: AppState,
        follower: Option<Arc<Job>>,
    ) -> Result<MovedGroup, AppError> {
        let by = Maker {
            who: self.user.clone(),
            what: Some(self.action),
        };
        let deploy = move_group(&state, by, self.stack, self.specs, follower).await?;
        state.audit(
            &self.user,
            self.step.as_str(),
            &self.target,
            &deploy.outcome,
        )?;
        Ok(deploy)
    }

    /// From a form (a page's path), starts the change as a job titled `title` and answers
    /// with its page (the deploy engine's first lines are the changes it makes); from the
    /// API, applies it and answers when the deploy engine is done.
    async fn follow_or_run(
        self,
        state: &AppState,
        uri: &Uri,
        title: String,
    ) -> Result<Applied, AppError> {
        if Format::of(uri.path()) == Format::Json {
            return Ok(Applied::Done(self.run(state.clone(), None).await?));
        }
        let mut about = vec![history_link(&self.stack, None)];
        about.extend(self.specs.iter().map(|(name, _)| Link {
            text: name.clone(),
            href: format!("/services/{}", url_encode(name)),
        }));
        let follower = state.clone();
        let user = self.user.clone();
        Ok(Applied::Followed(super::jobs::follow(
            state,
            title,
            &user,
            about,
            move |job| async move {
                let deploy = self.run(follower.clone(), Some(job.clone())).await?;
                let mut notes = DeployFailure::to_job(&deploy.failures, &job);
                if deploy.outcome == DeployOutcome::Interrupted.to_string() {
                    notes.extend(swarm_carries_on(&follower, &deploy.services).await);
                }
                Ok(JobEnd {
                    succeeded: deploy.succeeded,
                    outcome: deploy.outcome.clone(),
                    links: deploy.links(),
                    notes,
                })
            },
        )))
    }
}

/// "Edit as compose": a service, or every service of a stack, as the compose text that would
/// produce it; after a preview, the changes and the lint findings of each changed service.
#[derive(Serialize)]
pub struct ComposeEditView {
    /// `service` or `stack`.
    pub kind: &'static str,
    pub name: String,
    pub compose: String,
    /// Why the text was refused: the compose file's line and column, or what is missing.
    pub error: Option<String>,
    pub preview: Option<FormPreview>,
}

page!(ComposeEditView, "compose_edit.html", "services");

/// An "edit as compose" post: the text, and `confirm` — a page's `yes` once the preview was
/// seen (the JSON twin applies at once), the JSON twin's `true` to apply a change that moves
/// swarmkeeper's own server or scales it to 0 (`views::own::check_edit`).
#[derive(Deserialize)]
pub struct ComposePost {
    pub compose: String,
    #[serde(default, deserialize_with = "yes_or_true")]
    pub confirm: bool,
}

/// `confirm` as a page posts it (`yes`) or as the JSON twin does (`true`); anything else is
/// no confirmation.
fn yes_or_true<'de, D: serde::Deserializer<'de>>(input: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Confirm {
        Flag(bool),
        Word(String),
    }
    Ok(match Confirm::deserialize(input)? {
        Confirm::Flag(flag) => flag,
        Confirm::Word(word) => word == "yes",
    })
}

/// What a compose edit is about: one service, or a stack's services.
struct ComposeTarget {
    kind: &'static str,
    /// What the audit log calls its edit.
    step: AuditStep,
    name: String,
    /// The history the revision goes to.
    history: String,
    context_stack: Option<String>,
    services: Vec<Service>,
}

async fn service_target(state: &AppState, name: &str) -> Result<ComposeTarget, AppError> {
    let service = inspect(state, name).await?;
    Ok(ComposeTarget {
        kind: "service",
        step: AuditStep::EditServiceAsCompose,
        name: name.to_owned(),
        history: history_stack(&service).to_owned(),
        context_stack: service.view.stack().map(str::to_owned),
        services: vec![service],
    })
}

async fn stack_target(state: &AppState, name: &str) -> Result<ComposeTarget, AppError> {
    let services = state.engine.list_services(Some(name)).await?;
    if services.is_empty() {
        return Err(AppError::NotFound(format!("no stack named {name}")));
    }
    Ok(ComposeTarget {
        kind: "stack",
        step: AuditStep::EditStackAsCompose,
        name: name.to_owned(),
        history: name.to_owned(),
        context_stack: Some(name.to_owned()),
        services,
    })
}

fn compose_text(target: &ComposeTarget) -> String {
    let views: Vec<&ServiceView> = target.services.iter().map(|s| &s.view).collect();
    compose_of_running(
        &views,
        &Context {
            stack: target.context_stack.clone(),
            ..Context::default()
        },
    )
}

/// `GET /services/{name}/compose`.
pub async fn service_compose(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let target = service_target(&state, &name).await?;
    Ok(compose_page(&target, compose_text(&target), None, None))
}

/// `GET /stacks/{name}/compose`.
pub async fn stack_compose(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let target = stack_target(&state, &name).await?;
    Ok(compose_page(&target, compose_text(&target), None, None))
}

fn compose_page(
    target: &ComposeTarget,
    compose: String,
    error: Option<String>,
    preview: Option<FormPreview>,
) -> Reply {
    Reply::page(ComposeEditView {
        kind: target.kind,
        name: target.name.clone(),
        compose,
        error,
        preview,
    })
}

/// `POST /services/{name}/compose`, `POST /api/services/{name}/compose`: the service
/// brought to the text's spec through the deploy engine. The text holds this service only.
pub async fn apply_service_compose(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(post): Input<ComposePost>,
) -> Result<Reply, AppError> {
    let target = service_target(&state, &name).await?;
    apply_compose(&state, &caller, &uri, target, post).await
}

/// `POST /stacks/{name}/compose`, `POST /api/stacks/{name}/compose`: the stack's services
/// brought to the text's specs as one revision (a service the text adds is created; one it
/// leaves out is left as it is).
pub async fn apply_stack_compose(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(post): Input<ComposePost>,
) -> Result<Reply, AppError> {
    let target = stack_target(&state, &name).await?;
    apply_compose(&state, &caller, &uri, target, post).await
}

/// A compose text of `target` previewed or applied: read (`read_compose_edit`), completed by
/// the deploy engine, laid over each running service with `engine::overlay_compose` (every key
/// a stack deploy applies that the text writes; what the shown text does not hold and the text
/// leaves out stays), refused at its line:column when no node could run it or a port is taken,
/// linted as it will run, and applied as one revision.
async fn apply_compose(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    target: ComposeTarget,
    post: ComposePost,
) -> Result<Reply, AppError> {
    let context = context(state, target.context_stack.clone(), &target.services).await?;
    let file_name = format!("{}.yml", target.name);
    let read = read_compose_edit(&post.compose, &file_name, &context).map_err(|e| e.to_string());
    let read = read.and_then(|read| {
        let services = &read.services;
        if target.kind == "service" && (services.len() != 1 || services[0].0.name != target.name) {
            Err(format!(
                "{file_name}: the text must hold service {} and nothing else",
                target.name
            ))
        } else {
            Ok(read)
        }
    });
    // The keys each service's text writes besides the form's, and the keys nothing applies.
    let (keys, ignored): (HashMap<String, Vec<&str>>, Vec<String>) = match &read {
        Ok(read) => (
            read.services
                .iter()
                .map(|(spec, keys)| (spec.name.clone(), keys.clone()))
                .collect(),
            read.ignored.clone(),
        ),
        Err(_) => Default::default(),
    };
    let refused = |message: String, compose: String| match Format::of(uri.path()) {
        Format::Json => Err(AppError::Rejected {
            status: StatusCode::BAD_REQUEST,
            message,
        }),
        Format::Html => Ok(compose_page(&target, compose, Some(message), None)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)),
    };
    let read = match read {
        Ok(read) => {
            let edits = target.services.iter().map(|s| s.name.clone()).collect();
            let mut specs: Vec<ServiceSpec> =
                read.services.into_iter().map(|(spec, _)| spec).collect();
            unpin_retagged(&mut specs, &target.services);
            complete(state, &target.history, specs, edits).await?
        }
        Err(message) => Err(message),
    };
    let (specs, notes) = match read {
        Ok(completed) => completed,
        Err(message) => return refused(message, post.compose),
    };
    // The key the text gives a service of the swarm, and a refusal at its place in the text.
    let compose_key = |name: &str| -> String {
        match &target.context_stack {
            Some(stack) => name.strip_prefix(&format!("{stack}_")).unwrap_or(name),
            None => name,
        }
        .to_owned()
    };
    let located = |at: Option<Location>, message: String| match at {
        Some(at) => {
            ComposeError::at(&file_name, &post.compose, at.line, at.column, message).to_string()
        }
        None => format!("{file_name}: {message}"),
    };
    let empty = serde_json::json!({});
    let mut change_lines = Vec::new();
    let mut findings = Vec::new();
    let mut desired = Vec::with_capacity(specs.len());
    let mut notes = notes;
    notes.extend(ignored);
    for (name, written) in specs {
        let current = target.services.iter().find(|s| s.name == name);
        let written_keys = keys.get(&name).map_or(&[][..], Vec::as_slice);
        let spec = overlay_compose(current.map_or(&empty, |s| &s.spec), &written, written_keys);
        // Moving swarmkeeper's own server or scaling it to 0, as the form's edit guards it.
        if let (Some(current), Ok(after)) = (current, ServiceView::read(&spec)) {
            let part = own_part(&current.view);
            if let Err(why) = check_edit(&name, part, &current.view, &after, post.confirm) {
                if Format::of(uri.path()) == Format::Json {
                    return Err(AppError::Conflict(why));
                }
                // The page's preview says it before its Apply confirms.
                notes.push(format!("warning: {why}"));
            }
        }
        match current {
            Some(current) => change_lines.extend(
                describe_changes(&changes(&spec, &current.spec))
                    .into_iter()
                    .map(|line| format!("{name}: {line}")),
            ),
            None => change_lines.push(format!("create service {name}")),
        }
        if let Ok(view) = ServiceView::read(&spec) {
            findings.extend(lint_running(&view).into_iter().map(|mut f| {
                f.message = format!("{name}: {}", f.message);
                f
            }));
            if let Some(why) = swarmkeeper_deploy::placement(&state.engine, &view).await? {
                let key = compose_key(&name);
                let at = refused_place(&post.compose, &key, Refused::Unplaceable(&why));
                let message = located(at, format!("{key}: cannot be placed: {why}"));
                return refused(message, post.compose);
            }
        }
        desired.push((name, spec));
    }
    // A stack's service the text leaves out is left as it is (as `swarmkeeper diff` lists
    // `left alone`): say so, or a deleted service reads as one the save removes.
    notes.extend(
        target
            .services
            .iter()
            .filter(|s| !desired.iter().any(|(name, _)| *name == s.name))
            .map(|s| {
                format!(
                    "{}: not in the text, left running as it is (remove it from its page)",
                    s.name
                )
            }),
    );
    let views: Vec<(&str, ServiceView)> = desired
        .iter()
        .filter_map(|(name, spec)| Some((name.as_str(), ServiceView::read(spec).ok()?)))
        .collect();
    let views: Vec<(&str, &ServiceView)> = views.iter().map(|(n, v)| (*n, v)).collect();
    if let Some(clash) = swarmkeeper_deploy::port_in_use(&state.engine, &views).await? {
        let key = compose_key(&clash.service);
        let port = Refused::Port {
            published: clash.published,
            protocol: &clash.protocol,
        };
        let at = refused_place(&post.compose, &key, port);
        let message = located(at, format!("{key}: would publish {}", clash.why));
        return refused(message, post.compose);
    }
    // The running services the text changes: only they start new tasks.
    let updated: Vec<&str> = desired
        .iter()
        .filter(|(name, spec)| {
            target
                .services
                .iter()
                .any(|s| s.name == *name && !changes(spec, &s.spec).is_empty())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if let Some(pending) =
        swarmkeeper_deploy::replicas_pending(&state.engine, &views, &updated).await?
    {
        let key = compose_key(&pending.service);
        let place = match &pending.port {
            Some((protocol, published)) => Refused::Port {
                published: *published,
                protocol,
            },
            None => Refused::Replicas,
        };
        let at = refused_place(&post.compose, &key, place);
        let message = located(at, format!("{key}: cannot be placed: {}", pending.why));
        return refused(message, post.compose);
    }
    // Nothing to apply: the page says "No change." with no apply button, and an apply (a
    // stale page's, or the API's) records no revision.
    let unchanged = change_lines.is_empty();
    if Format::of(uri.path()) == Format::Html && (!post.confirm || unchanged) {
        return Ok(compose_page(
            &target,
            post.compose.clone(),
            None,
            Some(FormPreview {
                changes: change_lines,
                notes,
                findings,
                compose: post.compose,
            }),
        ));
    }
    if unchanged {
        return Ok(Reply::page(ServiceChange {
            service: target.name,
            action: Change::EditAsCompose.done(),
            changes: change_lines,
            notes,
            findings,
            deploy: MovedGroup {
                stack: target.history,
                services: desired.into_iter().map(|(name, _)| name).collect(),
                revision: None,
                outcome: DeployOutcome::Unchanged.to_string(),
                succeeded: true,
                progress: Vec::new(),
                failures: Vec::new(),
            },
        }));
    }
    let apply = Apply {
        user: caller.user.name.clone(),
        step: target.step,
        target: target.name.clone(),
        action: format!("{} in the dashboard", Change::Edit.done()),
        stack: target.history.clone(),
        specs: desired,
    };
    let title = format!("Edit of {} {} as compose", target.kind, target.name);
    let deploy = match apply.follow_or_run(state, uri, title).await? {
        Applied::Followed(redirect) => return Ok(redirect),
        Applied::Done(deploy) => deploy,
    };
    let status = if deploy.succeeded {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(Reply::page(ServiceChange {
        service: target.name,
        action: Change::EditAsCompose.answered(&deploy),
        changes: change_lines,
        notes,
        findings,
        deploy,
    })
    .with_status(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_partial_body_keeps_what_it_leaves_out() {
        let current = ServiceForm {
            name: "web".into(),
            image: "nginx:1".into(),
            env: "A=1".into(),
            labels: "team=shop".into(),
            limit_memory: "32M".into(),
            update_failure_action: "rollback".into(),
            replicas: "2".into(),
            ..ServiceForm::default()
        };
        let body = json!({"image": "nginx:2", "env": null});
        let post: FormPost = serde_json::from_value(overlay_body(&current, body).unwrap()).unwrap();
        let wanted = ServiceForm {
            image: "nginx:2".into(),
            env: String::new(),
            ..current
        };
        assert_eq!(post.form, wanted);
        assert!(overlay_body(&wanted, json!(["image"])).is_err());
    }

    #[test]
    fn a_change_is_answered_by_what_became_of_it() {
        let deploy = |outcome: DeployOutcome| MovedGroup {
            stack: "web".into(),
            services: vec!["web".into()],
            revision: Some(2),
            succeeded: outcome == DeployOutcome::Succeeded,
            outcome: outcome.to_string(),
            progress: Vec::new(),
            failures: Vec::new(),
        };
        let answers = |change: Change| {
            [
                DeployOutcome::Succeeded,
                DeployOutcome::RolledBack,
                DeployOutcome::Failed,
                DeployOutcome::Interrupted,
            ]
            .map(|outcome| change.answered(&deploy(outcome)))
        };
        assert_eq!(
            answers(Change::Edit),
            ["edited", "not edited", "not edited", "interrupted"]
        );
        assert_eq!(
            answers(Change::Create),
            ["created", "not created", "not created", "interrupted"]
        );
        assert_eq!(
            answers(Change::EditAsCompose),
            [
                "edited as compose",
                "not edited as compose",
                "not edited as compose",
                "interrupted"
            ]
        );
    }
}
