//! HTTP interface: dashboard, JSON API, NDJSON stream, WebSocket, metrics.

mod api;
mod assets;
mod auth;
pub mod conn;
mod filter;
pub mod hosts;
mod metrics;
mod stats;
pub mod tls;
mod ws;

use std::sync::Arc;

use axum::{middleware, routing::get, Router};

pub use api::ApiError;
pub use auth::{AuthConfig, Authorized};
pub use filter::EventFilter;
pub use hosts::HostAllowlist;

use crate::app::AppState;

/// The top lists document (as /api/top?n=20), for the once-a-second cache.
pub fn top_json(state: &AppState) -> serde_json::Value {
    stats::top(state, 20)
}

pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/api/stats", get(api::stats))
        .route("/api/top", get(api::top))
        .route("/api/history", get(api::history))
        .route("/api/http", get(api::http))
        .route("/api/lookup/{ip}", get(api::lookup))
        .route("/api/events", get(api::events))
        .route("/api/events/stream", get(api::event_stream))
        .route("/metrics", get(metrics::metrics))
        .route("/ws", get(ws::upgrade))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .merge(protected)
        .fallback(api::not_found)
        // Outermost last: the Host check comes before any handler or
        // upgrade, and every error leaves as JSON.
        .layer(middleware::from_fn_with_state(state.clone(), hosts::require))
        .layer(middleware::from_fn(api::json_errors))
        .with_state(state)
}
