//! HTTP interface: dashboard, JSON API, NDJSON stream, WebSocket, metrics.

mod api;
mod assets;
mod auth;
pub mod conn;
mod frames;
#[cfg(test)]
mod golden;
pub mod hosts;
mod metrics;
pub mod tls;
mod ws;

use std::sync::Arc;

use axum::{middleware, routing::get, Router};

pub use api::ApiError;
pub use auth::{AuthConfig, Authorized};
pub use frames::{ErrorDoc, SnapshotFrame, StatsFrame};
pub use hosts::HostAllowlist;

use crate::{alerts::AlertsHandle, history::HistoryReader, sources::kernel::KernelHandle, state::PipelineHandle};

/// What every handler reads: no locks, only handles.
pub struct ServerState {
    /// Snapshots, live events and questions to the state's owner.
    pub pipeline: PipelineHandle,
    /// Questions to the kernel maps' owner (None without XDP).
    pub kernel: Option<KernelHandle>,
    /// The alert engine's latest document.
    pub alerts: AlertsHandle,
    /// Ranges from the history store (None with history off).
    pub history: Option<HistoryReader>,
    pub auth: AuthConfig,
    /// Names this dashboard answers to (Host, WebSocket Origin).
    pub hosts: HostAllowlist,
}

pub fn router(state: Arc<ServerState>) -> Router {
    let protected = Router::new()
        .route("/api/meta", get(api::meta))
        .route("/api/stats", get(api::stats))
        .route("/api/top", get(api::top))
        .route("/api/history", get(api::history))
        .route("/api/http", get(api::http))
        .route("/api/lookup/{ip}", get(api::lookup))
        .route("/api/alerts", get(api::alerts))
        .route("/api/events", get(api::events))
        .route("/api/events/stream", get(api::event_stream))
        .route("/api/hosts", get(api::hosts))
        .route("/metrics", get(metrics::metrics))
        .route("/ws", get(ws::upgrade))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth::require));
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .merge(protected)
        .fallback(api::not_found)
        // Outermost last: the Host check comes before any handler or
        // upgrade, and every error leaves as JSON.
        .layer(middleware::from_fn_with_state(Arc::clone(&state), hosts::require))
        .layer(middleware::from_fn(api::json_errors))
        .with_state(state)
}
