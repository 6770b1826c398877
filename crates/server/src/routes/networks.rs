//! `/networks`: every network with driver, scope, subnets and what is attached; an overlay
//! network created; an unused one removed. Each change is audited.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use swarmkeeper_auth::Action;

use crate::access::Caller;
use crate::error::AppError;
use crate::respond::{refused_fields, Input, Reply};
use crate::state::AppState;
use crate::views::networks::{
    check_subnet, network_rows, overlap_refusal, removal_refusal, NetworkRow,
};
use crate::views::objects::{check_labels, check_name};
use crate::views::{message_of, FieldError};

#[derive(Serialize)]
pub struct NetworksView {
    pub networks: Vec<NetworkRow>,
    /// The create form as posted when it was refused, and why.
    #[serde(skip)]
    pub form: NetworkForm,
}

/// The create form's fields as posted, for showing it again.
#[derive(Default)]
pub struct NetworkForm {
    pub name: String,
    pub subnet: String,
    /// Every field refused, each once (a form marks all that are wrong in one answer).
    pub errors: Vec<FieldError>,
}

impl NetworkForm {
    /// The message for `field`, if it was refused.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        message_of(&self.errors, field)
    }
}

page!(NetworksView, "networks.html", "networks");

async fn load(state: &AppState) -> Result<Vec<NetworkRow>, AppError> {
    let (networks, services, tasks) = tokio::try_join!(
        state.engine.networks(),
        state.engine.list_services(None),
        state.engine.list_all_tasks()
    )?;
    Ok(network_rows(&networks, &services, &tasks))
}

/// `GET /networks`, `GET /api/networks`: three engine requests whatever the numbers.
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(NetworksView {
        networks: load(&state).await?,
        form: NetworkForm::default(),
    }))
}

/// An overlay network to create.
#[derive(Deserialize)]
pub struct CreateNetwork {
    pub name: String,
    /// Standalone containers may attach too (`docker network create --attachable`).
    #[serde(default, deserialize_with = "flag")]
    pub attachable: bool,
    /// No route out (`--internal`).
    #[serde(default, deserialize_with = "flag")]
    pub internal: bool,
    /// Traffic between nodes encrypted with IPsec (`--opt encrypted`): for networks that
    /// cross untrusted links; it costs CPU on every node.
    #[serde(default, deserialize_with = "flag")]
    pub encrypted: bool,
    /// CIDR; empty: Swarm picks one from its default pool.
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A JSON boolean, or a form's checkbox (`on`, `true`, `1` when ticked; absent when not).
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => b,
        Flag::Text(t) => matches!(t.as_str(), "on" | "true" | "1"),
    })
}

#[derive(Serialize)]
pub struct CreatedNetwork {
    pub id: String,
    pub name: String,
    pub warnings: Vec<String>,
}

/// How often, and how many times, a create looks for the allocation of the new network: the
/// manager's allocator runs after the create is answered (at once when idle, later under
/// load); one that failed stays unallocated.
const ALLOCATION_POLL: std::time::Duration = std::time::Duration::from_millis(250);
const ALLOCATION_POLLS: usize = 20;

/// `POST /networks` (the form), `POST /api/networks`: an overlay network, swarm-scoped.
/// Bad input names its field (the form comes back with the message next to it).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(request): Input<CreateNetwork>,
) -> Result<Reply, AppError> {
    let subnet = request.subnet.trim().to_owned();
    let form = |errors: Vec<FieldError>| NetworkForm {
        name: request.name.clone(),
        subnet: subnet.clone(),
        errors,
    };
    // Both fields checked, so one answer names all that are wrong.
    let errors: Vec<FieldError> = [
        check_name("name", &request.name).err(),
        (!subnet.is_empty())
            .then(|| check_subnet(&subnet).err())
            .flatten(),
        check_labels(&request.labels).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return refuse(&state, &uri, form(errors), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let existing = state.engine.networks().await?;
    if existing.iter().any(|n| n.name == request.name) {
        let error = FieldError::new(
            "name",
            format!("a network named {} already exists", request.name),
        );
        return refuse(&state, &uri, form(vec![error]), StatusCode::CONFLICT).await;
    }
    if let Some(error) = overlap_refusal(&subnet, &existing) {
        return refuse(
            &state,
            &uri,
            form(vec![error]),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let ipam = match subnet.is_empty() {
        true => json!({"Driver": "default", "Config": []}),
        false => json!({"Driver": "default", "Config": [{"Subnet": subnet}]}),
    };
    let spec = json!({
        "Name": request.name,
        "Driver": "overlay",
        "Scope": "swarm",
        "Attachable": request.attachable,
        "Internal": request.internal,
        "Options": if request.encrypted { json!({"encrypted": ""}) } else { json!({}) },
        "CheckDuplicate": true,
        "Labels": request.labels,
        "IPAM": ipam,
    });
    let created = state.engine.create_network(&spec).await?;
    // Swarm answers the create before its allocator runs; a network it could not allocate
    // (an overlapping subnet the check above could not see) is left with no driver and no
    // subnet, and would break every service put on it.
    let mut allocated = false;
    for _ in 0..ALLOCATION_POLLS {
        let networks = state.engine.networks().await?;
        allocated = networks
            .iter()
            .any(|n| n.id == created.id && !n.driver.is_empty());
        if allocated {
            break;
        }
        tokio::time::sleep(ALLOCATION_POLL).await;
    }
    if !allocated {
        let removed = state.engine.remove_network(&created.id).await;
        return Err(AppError::Conflict(format!(
            "the swarm created network {} but could not allocate it (no driver, no subnet; \
             the manager's log says why, most often a subnet in use){}",
            request.name,
            match removed {
                Ok(()) => ": it was removed".to_owned(),
                Err(e) => format!("; removing it failed too: {e}"),
            }
        )));
    }
    state.audit(
        &caller.user.name,
        Action::ManageNetworks.as_str(),
        &request.name,
        &format!(
            "created overlay{}{}{}{}",
            if request.attachable {
                ", attachable"
            } else {
                ""
            },
            if request.internal { ", internal" } else { "" },
            if request.encrypted { ", encrypted" } else { "" },
            if subnet.is_empty() {
                String::new()
            } else {
                format!(", subnet {subnet}")
            }
        ),
    )?;
    Ok(Reply::changed(
        StatusCode::CREATED,
        CreatedNetwork {
            id: created.id,
            name: request.name,
            warnings: created.warnings,
        },
        "/networks",
    ))
}

/// A refused create: the page again with the message next to the field; JSON gets the error.
async fn refuse(
    state: &AppState,
    uri: &Uri,
    form: NetworkForm,
    status: StatusCode,
) -> Result<Reply, AppError> {
    let errors = form.errors.clone();
    refused_fields(uri.path(), &errors, status, async {
        Ok(NetworksView {
            networks: load(state).await?,
            form,
        })
    })
    .await
}

/// `POST /networks/{name}/remove`, `DELETE /api/networks/{name}`: 409 naming the services
/// while any uses it, or for a network the engine makes itself.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let rows = load(&state).await?;
    let row = rows
        .iter()
        .find(|r| r.name == name || r.id == name)
        .ok_or_else(|| AppError::NotFound(format!("no network named {name}")))?;
    if let Some(why) = removal_refusal(row) {
        return Err(AppError::Conflict(why));
    }
    state.engine.remove_network(&row.id).await?;
    state.audit(
        &caller.user.name,
        Action::ManageNetworks.as_str(),
        &row.name,
        "removed",
    )?;
    Ok(Reply::done("/networks"))
}
