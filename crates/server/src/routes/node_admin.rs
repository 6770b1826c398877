//! Changing a node, like `docker node update`, `promote`, `demote` and `rm`: its availability
//! (a drain shown first as the tasks it would move), its labels, its role, and removing a
//! node that is down. Each change is audited.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{NodeChange, Service, SwarmNode, Task};
use swarmkeeper_rollout::placement::NodeRoom;

use crate::access::Caller;
use crate::error::{AppError, Format};
use crate::page::url_encode;
use crate::respond::{Input, Reply};
use crate::routes::nodes::load_node;
use crate::state::AppState;
use crate::views::node_admin::{
    agent_off_note, agent_on_node, drain_effect, editable_labels, even_managers_note,
    label_change_effect, label_line, labels_text, labels_to_save, node_rooms, one_of,
    own_container_id, parse_labels, removal_refusal, role_refusal, DrainEffect, AVAILABILITIES,
    ROLES,
};
use crate::views::FieldError;
use swarmkeeper_report::PRESSURE_LABEL;

/// A node by id or hostname; a missing one is 404 naming it.
async fn inspect(state: &AppState, id: &str) -> Result<SwarmNode, AppError> {
    state.engine.inspect_node(id).await.map_err(|e| {
        if e.is_not_found() {
            AppError::NotFound(format!("no node {id}"))
        } else {
            e.into()
        }
    })
}

/// What a drain of the node would do, shown before it is confirmed.
#[derive(Serialize)]
pub struct DrainPreview {
    pub id: String,
    pub hostname: String,
    pub availability: String,
    #[serde(flatten)]
    pub effect: DrainEffect,
}

page!(DrainPreview, "drain.html", "nodes");

/// `GET /nodes/{id}/drain`, `GET /api/nodes/{id}/drain`: the tasks a drain would move and
/// where, those that would stay pending and why (Swarm's scheduler filters over the other
/// nodes' resources, reservations, host ports and labels), and those of global services,
/// which only stop.
pub async fn drain_preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let node = inspect(&state, &id).await?;
    Ok(Reply::page(DrainPreview {
        effect: effect_of_drain(&state, &node).await?,
        id: node.id,
        hostname: node.hostname,
        availability: node.availability,
    }))
}

/// What draining `node` would do to its tasks ([`drain_effect`]).
async fn effect_of_drain(state: &AppState, node: &SwarmNode) -> Result<DrainEffect, AppError> {
    let Around {
        tasks,
        services,
        rooms,
    } = around(state, node).await?;
    Ok(drain_effect(
        &tasks,
        &services,
        &rooms,
        own_container().as_deref(),
    ))
}

/// The swarm as a change to one node weighs it: the node's tasks (old ones included), every
/// service, and the other nodes' room by the scheduler's filters ([`node_rooms`]).
struct Around {
    tasks: Vec<Task>,
    services: Vec<Service>,
    rooms: Vec<NodeRoom>,
}

/// [`Around`] `node`: three engine requests.
async fn around(state: &AppState, node: &SwarmNode) -> Result<Around, AppError> {
    let (all_tasks, services, nodes) = tokio::try_join!(
        state.engine.list_all_tasks(),
        state.engine.list_services(None),
        state.engine.list_nodes()
    )?;
    let others: Vec<_> = nodes
        .iter()
        .filter(|n| n.id != node.id)
        .map(swarmkeeper_deploy::node_facts)
        .collect();
    let rooms = node_rooms(others, &all_tasks, &services);
    let tasks = all_tasks
        .into_iter()
        .filter(|t| t.node_id == node.id)
        .collect();
    Ok(Around {
        tasks,
        services,
        rooms,
    })
}

/// The server's own container, when it runs in one.
fn own_container() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    own_container_id(&mountinfo)
}

/// What a node change did.
#[derive(Serialize)]
pub struct NodeChanged {
    pub id: String,
    pub hostname: String,
    /// `availability`, `labels` or `role`.
    pub changed: &'static str,
    pub before: Value,
    pub after: Value,
    /// After a promote or demote that leaves an even number of managers, why that is weak
    /// (`even_managers_note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn node_page(id: &str) -> String {
    format!("/nodes/{}", url_encode(id))
}

/// Changes one field of the node's spec ([`apply_change`]); a form goes back to the node.
async fn change(
    state: &AppState,
    caller: &Caller,
    node: &SwarmNode,
    field: &'static str,
    value: Value,
) -> Result<Reply, AppError> {
    let changed = apply_change(state, caller, node, field, value).await?;
    let page = node_page(&changed.id);
    Ok(Reply::changed(StatusCode::OK, changed, page))
}

/// Changes one field of `node`'s spec (through [`swarmkeeper_engine::Engine::update_node`],
/// at the version `node` was read at: the node as the caller inspected it, not asked again)
/// and audits it.
async fn apply_change(
    state: &AppState,
    caller: &Caller,
    node: &SwarmNode,
    field: &'static str,
    value: Value,
) -> Result<NodeChanged, AppError> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let (key, change) = match field {
        "availability" => (
            "Availability",
            NodeChange {
                availability: text(&value),
                ..NodeChange::default()
            },
        ),
        "role" => (
            "Role",
            NodeChange {
                role: text(&value),
                ..NodeChange::default()
            },
        ),
        _ => (
            "Labels",
            NodeChange {
                labels: Some(serde_json::from_value(value.clone()).map_err(AppError::internal)?),
                ..NodeChange::default()
            },
        ),
    };
    state.engine.update_node(node, &change).await?;
    let was = node.spec.get(key).cloned().unwrap_or(Value::Null);
    state.audit(
        &caller.user.name,
        Action::ManageNodes.as_str(),
        &node.hostname,
        &format!("{field}: {was} → {value}"),
    )?;
    Ok(NodeChanged {
        id: node.id.clone(),
        hostname: node.hostname.clone(),
        changed: field,
        before: was,
        after: value,
        note: None,
    })
}

#[derive(Deserialize)]
pub struct AvailabilityRequest {
    pub availability: String,
    /// Drain even though it stops the dashboard: the drain preview's form sends it.
    #[serde(default)]
    pub confirm: bool,
}

/// `POST /nodes/{id}/availability`, `POST /api/nodes/{id}/availability`: `active`, `pause`
/// or `drain`; Swarm moves the tasks of a drained node (see the preview). A drain that stops
/// the dashboard (its own server's task would stay pending) is refused (409, saying so)
/// without `confirm`. A pause while swarmkeeper's agent does not run on the node (after a
/// drain) is done, and its `note` says GC stays off there and to set it active instead
/// ([`agent_off_note`]; a form shows it on the node's page).
pub async fn set_availability(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    uri: Uri,
    Input(request): Input<AvailabilityRequest>,
) -> Result<Reply, AppError> {
    let wanted = request.availability;
    one_of("availability", &wanted, &AVAILABILITIES).map_err(bad)?;
    let node = inspect(&state, &id).await?;
    if wanted == "drain"
        && !request.confirm
        && effect_of_drain(&state, &node).await?.stops_dashboard
    {
        return Err(AppError::Conflict(format!(
            "Draining {} stops this dashboard: swarmkeeper's own server runs there and no \
                 other node can take it, and only `docker node update --availability active \
                 {}` on a manager brings it back. See what else stops on /nodes/{}/drain; to \
                 drain anyway, send `\"confirm\": true` (the preview's button does).",
            node.hostname, node.hostname, node.id
        )));
    }
    // Pausing a node whose agent does not run there keeps the agent off (Swarm starts no new
    // task on a paused node): the answer says so, before the change is asked of Swarm.
    let agent_note = if wanted == "pause" {
        let (tasks, services) = tokio::try_join!(
            state.engine.list_node_tasks(&node.id),
            state.engine.list_services(None)
        )?;
        agent_off_note(&node.hostname, &wanted, agent_on_node(&services, &tasks))
    } else {
        None
    };
    let mut changed =
        apply_change(&state, &caller, &node, "availability", Value::from(wanted)).await?;
    changed.note = agent_note;
    noted(&state, &uri, changed).await
}

/// A change's answer: a form goes back to the node's page, which shows the change's note
/// on top when it has one.
async fn noted(state: &AppState, uri: &Uri, changed: NodeChanged) -> Result<Reply, AppError> {
    let page = node_page(&changed.id);
    let shown = match (&changed.note, Format::of(uri.path())) {
        (Some(note), Format::Html) => {
            let mut view = load_node(state, &changed.id).await?;
            view.notice = Some(note.clone());
            Some(view)
        }
        _ => None,
    };
    let reply = Reply::changed(StatusCode::OK, changed, page);
    Ok(match shown {
        Some(view) => reply.showing(view),
        None => reply,
    })
}

#[derive(Deserialize)]
pub struct RoleRequest {
    pub role: String,
}

/// `POST /nodes/{id}/role`, `POST /api/nodes/{id}/role`: `manager` (promote) or `worker`
/// (demote). The engine refuses to demote the last manager, and says so. A demote right
/// after a promote, while the node is still joining the managers' raft, is 409 (the node's
/// page says so). When the swarm is left with an even number of managers, the answer notes
/// it ([`even_managers_note`]; the form shows the node's page with the note).
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    uri: Uri,
    Input(request): Input<RoleRequest>,
) -> Result<Reply, AppError> {
    one_of("role", &request.role, &ROLES).map_err(bad)?;
    let nodes = state.engine.list_nodes().await?;
    let managers = nodes.iter().filter(|n| n.role == "manager").count();
    let node = inspect(&state, &id).await?;
    let refusal = role_refusal(
        &node.hostname,
        &node.state,
        &node.role,
        &request.role,
        managers,
    );
    if let Some(message) = refusal {
        return role_conflict(&state, &id, &uri, message).await;
    }
    let demote = request.role == "worker";
    let mut changed = match apply_change(&state, &caller, &node, "role", request.role.into()).await
    {
        // Until a promoted node is in the raft member list, the engine answers a demote with
        // 404 "can't find manager in raft memberlist": the node exists, it is not ready yet.
        Err(AppError::Engine(e)) if demote && e.is_not_found() => {
            let message = format!(
                "{} is still joining the managers' raft: demote it again in a few seconds",
                node.hostname
            );
            return role_conflict(&state, &id, &uri, message).await;
        }
        other => other?,
    };
    // The managers after the change (none when the node had the role already).
    let managers = match (node.role == "manager", demote) {
        (true, true) => managers - 1,
        (false, false) => managers + 1,
        _ => managers,
    };
    changed.note = even_managers_note(managers);
    noted(&state, &uri, changed).await
}

/// A role change refused for the node's state: 409, on the node's page for a form.
async fn role_conflict(
    state: &AppState,
    id: &str,
    uri: &Uri,
    message: String,
) -> Result<Reply, AppError> {
    match Format::of(uri.path()) {
        Format::Json => Err(AppError::Conflict(message)),
        Format::Html => {
            let mut view = load_node(state, id).await?;
            view.notice = Some(message);
            Ok(Reply::page(view).with_status(StatusCode::CONFLICT))
        }
    }
}

fn bad(error: FieldError) -> AppError {
    AppError::BadInput(error.to_string())
}

/// The labels form: the node's labels as lines, what was wrong with the last post, and
/// what saving them would do to the tasks the node runs, to be confirmed.
#[derive(Serialize)]
pub struct LabelsForm {
    pub id: String,
    pub hostname: String,
    pub labels: String,
    /// Why swarmkeeper paused the node for disk pressure (its [`PRESSURE_LABEL`]): the form
    /// shows it apart and every save keeps it ([`labels_to_save`]).
    pub disk_pressure: Option<String>,
    pub error: Option<FieldError>,
    /// The tasks the posted labels would move or stop (`label_change_effect`); the form
    /// then asks to save them again with `confirm`.
    pub effect: Option<DrainEffect>,
}

page!(LabelsForm, "node_labels.html", "nodes");

/// `GET /nodes/{id}/labels`: the labels as `KEY=VALUE` lines, to edit.
pub async fn labels_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let node = inspect(&state, &id).await?;
    Ok(Reply::page(LabelsForm {
        labels: labels_text(&editable_labels(&node.labels)),
        disk_pressure: node.labels.get(PRESSURE_LABEL).cloned(),
        id: node.id,
        hostname: node.hostname,
        error: None,
        effect: None,
    }))
}

/// What replacing the labels of `node` with `labels` would do to the tasks it runs: the
/// drain preview's placement over the swarm's other nodes, for the tasks whose constraints
/// the new labels break.
async fn label_effect(
    state: &AppState,
    node: &SwarmNode,
    labels: &BTreeMap<String, String>,
) -> Result<DrainEffect, AppError> {
    let Around {
        tasks,
        services,
        rooms,
    } = around(state, node).await?;
    Ok(label_change_effect(
        &swarmkeeper_deploy::node_facts(node),
        labels,
        &tasks,
        &services,
        &rooms,
        own_container().as_deref(),
    ))
}

#[derive(Deserialize)]
pub struct LabelsText {
    pub labels: String,
    /// Save even though tasks move or stop: the form sends it once it has shown which.
    #[serde(default)]
    pub confirm: bool,
}

/// `POST /nodes/{id}/labels`: the form's lines replace the node's labels, but for
/// swarmkeeper's [`PRESSURE_LABEL`], kept as it is ([`labels_to_save`]; typed, it is refused
/// at its line); a bad line is
/// shown next to the field (422) and nothing changes. Labels that would move or stop tasks
/// (a service's placement constraint no longer met here: the dashboard's own server, whose
/// `swarmkeeper.state=true` placement stops it) are shown with those tasks and saved only
/// when posted again with `confirm`.
pub async fn set_labels_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Input(form): Input<LabelsText>,
) -> Result<Reply, AppError> {
    let node = inspect(&state, &id).await?;
    let disk_pressure = node.labels.get(PRESSURE_LABEL).cloned();
    let saved = parse_labels(&form.labels).and_then(|labels| {
        labels_to_save(&node.labels, labels).map_err(|why| {
            let line = label_line(&form.labels, PRESSURE_LABEL).unwrap_or(1);
            FieldError::new("labels", format!("line {line}: {why}"))
        })
    });
    let labels = match saved {
        Ok(labels) => labels,
        Err(error) => {
            return Ok(Reply::page(LabelsForm {
                id: node.id,
                hostname: node.hostname,
                labels: form.labels,
                disk_pressure,
                error: Some(error),
                effect: None,
            })
            .with_status(StatusCode::UNPROCESSABLE_ENTITY));
        }
    };
    if !form.confirm {
        let effect = label_effect(&state, &node, &labels).await?;
        if !effect.is_empty() {
            return Ok(Reply::page(LabelsForm {
                id: node.id,
                hostname: node.hostname,
                labels: form.labels,
                disk_pressure,
                error: None,
                effect: Some(effect),
            })
            .with_status(StatusCode::CONFLICT));
        }
    }
    change(&state, &caller, &node, "labels", labels_value(labels)).await
}

#[derive(Deserialize)]
pub struct LabelsRequest {
    pub labels: BTreeMap<String, String>,
    /// Save even though tasks move or stop (409 names them without it).
    #[serde(default)]
    pub confirm: bool,
}

/// `PUT /api/nodes/{id}/labels`: `{"labels": {...}}` replaces the node's labels, but for
/// swarmkeeper's [`PRESSURE_LABEL`], kept as it is ([`labels_to_save`]; another value is 400).
/// Labels that would
/// move or stop tasks are refused (409, naming each task, its fate, and whether the
/// dashboard stops) unless `"confirm": true`.
pub async fn put_labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Input(request): Input<LabelsRequest>,
) -> Result<Reply, AppError> {
    if let Some(key) = request
        .labels
        .keys()
        .find(|k| k.is_empty() || k.chars().any(char::is_whitespace))
    {
        return Err(AppError::BadInput(format!(
            "labels: the key {key:?} is empty or has a space in it"
        )));
    }
    let node = inspect(&state, &id).await?;
    let labels = labels_to_save(&node.labels, request.labels)
        .map_err(|why| AppError::BadInput(format!("labels: {why}")))?;
    if !request.confirm {
        let effect = label_effect(&state, &node, &labels).await?;
        if !effect.is_empty() {
            return Err(AppError::Conflict(format!(
                "saving these labels on node {}: {}. Send \"confirm\": true to save them anyway",
                node.hostname,
                effect.summary()
            )));
        }
    }
    change(&state, &caller, &node, "labels", labels_value(labels)).await
}

fn labels_value(labels: BTreeMap<String, String>) -> Value {
    Value::Object(
        labels
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
    )
}

/// `POST /nodes/{id}/remove`, `DELETE /api/nodes/{id}`: a worker that is down leaves the
/// swarm's list; anything else is refused (409) saying what to do first.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let node = inspect(&state, &id).await?;
    if let Some(why) = removal_refusal(&node) {
        return Err(AppError::Conflict(why));
    }
    state.engine.remove_node(&node.id, false).await?;
    state.audit(
        &caller.user.name,
        Action::ManageNodes.as_str(),
        &node.hostname,
        "removed",
    )?;
    Ok(Reply::done("/nodes"))
}
