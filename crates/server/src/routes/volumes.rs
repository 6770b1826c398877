//! `/volumes`: where each volume lives and how big it is, from the agents' latest reports
//! (the server asks no engine: volumes are node-local, and only each node's agent sees them).

use axum::extract::State;

use crate::error::AppError;
use crate::respond::Reply;
use crate::state::AppState;
use crate::views::volumes::{volumes_view, VolumesView};

page!(VolumesView, "volumes.html", "volumes");

/// `GET /volumes`, `GET /api/volumes`: one store query.
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    let reports = state
        .store()
        .latest_node_reports()
        .map_err(AppError::internal)?;
    let reports: Vec<_> = reports.into_iter().map(|(report, _)| report).collect();
    Ok(Reply::page(volumes_view(&reports)))
}
