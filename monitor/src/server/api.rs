//! JSON API handlers.

use std::{net::IpAddr, sync::Arc};

use axum::{
    body::Body,
    extract::{rejection::PathRejection, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{filter::EventFilter, hosts::sample, stats, Authorized};
use crate::{
    app::{lock, AppState},
    event::{wall_ms_from_monotonic_ns, SCHEMA_VERSION},
};

/// A client error with a message the client can act on.
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
}

/// Error messages are short, whatever client input they quote.
const MAX_ERROR_CHARS: usize = 300;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": sample(&self.1, MAX_ERROR_CHARS) }))).into_response()
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn stats(State(state): State<Arc<AppState>>, Authorized(viewer_ok): Authorized) -> Json<Value> {
    Json(stats::stats(&state, viewer_ok))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    n: Option<usize>,
}

pub async fn top(State(state): State<Arc<AppState>>, q: QueryResult<TopQuery>) -> Result<Json<Value>, ApiError> {
    let n = query(q)?.n.unwrap_or(20);
    if !(1..=500).contains(&n) {
        return Err(ApiError::bad_request("n must be 1..=500"));
    }
    Ok(Json(stats::top(&state, n)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    minutes: Option<usize>,
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    q: QueryResult<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let minutes = query(q)?.minutes.unwrap_or(60);
    if !(1..=60).contains(&minutes) {
        return Err(ApiError::bad_request("minutes must be 1..=60"));
    }
    Ok(Json(stats::history(&state, minutes)))
}

pub async fn http(State(state): State<Arc<AppState>>, q: QueryResult<TopQuery>) -> Result<Json<Value>, ApiError> {
    let n = query(q)?.n.unwrap_or(10);
    if !(1..=100).contains(&n) {
        return Err(ApiError::bad_request("n must be 1..=100"));
    }
    Ok(Json(stats::http(&state, n)))
}

pub async fn lookup(
    State(state): State<Arc<AppState>>,
    ip: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(ip) = ip.map_err(|e| ApiError::bad_request(format!("bad address in the path: {}", e.body_text())))?;
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{:?} is not an IPv4 or IPv6 address", sample(&ip, 60))))?;
    let geo = state.geo.lookup(addr);
    let seen = lock(&state.aggregate).source(&addr).cloned();
    let kernel = state.kernel.as_ref().and_then(|k| lock(k).source(addr).ok().flatten()).map(|s| {
        let classes: serde_json::Map<_, _> = monitor_common::Class::ALL
            .iter()
            .take(monitor_common::class::TRACKED_CLASS_COUNT)
            .enumerate()
            .filter(|(i, _)| s.packets[*i] > 0)
            .map(|(i, c)| {
                (
                    c.name().to_owned(),
                    json!({
                        "packets": s.packets[i],
                        "bytes": s.bytes[i],
                        "first_seen_ms": wall_ms_from_monotonic_ns(s.first_seen_ns[i]),
                        "last_seen_ms": wall_ms_from_monotonic_ns(s.last_seen_ns[i]),
                    }),
                )
            })
            .collect();
        json!(classes)
    });
    Ok(Json(json!({
        "schema": SCHEMA_VERSION,
        "ip": addr,
        "geo": geo,
        "seen": seen,
        "kernel": kernel,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    limit: Option<usize>,
    class: Option<String>,
    country: Option<String>,
    cidr: Option<String>,
    q: Option<String>,
}

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        EventFilter::parse(self.class.as_deref(), self.country.as_deref(), self.cidr.as_deref(), self.q.as_deref())
            .map_err(ApiError::bad_request)
    }
}

const MAX_EVENTS_PER_REQUEST: usize = 2_000;

pub async fn events(State(state): State<Arc<AppState>>, q: QueryResult<EventsQuery>) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_EVENTS_PER_REQUEST}")));
    }
    let filter = q.filter()?;
    let recent = lock(&state.aggregate).recent(usize::MAX);
    let mut events: Vec<_> = recent.into_iter().rev().filter(|e| filter.matches(e)).take(limit).collect();
    events.reverse();
    Ok(Json(json!({ "schema": SCHEMA_VERSION, "events": events })))
}

/// NDJSON: one event per line as they arrive; a `{"skipped": N}` line when
/// this reader fell behind and missed N events.
pub async fn event_stream(
    State(state): State<Arc<AppState>>,
    q: QueryResult<EventsQuery>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if q.limit.is_some() {
        return Err(ApiError::bad_request("limit does not apply to the stream"));
    }
    let filter = q.filter()?;
    let rx = state.fanout.subscribe();
    let stream = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            let line = match rx.recv().await {
                Ok(p) if filter.matches(&p.event) => p.json.get().to_owned(),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => json!({ "skipped": n }).to_string(),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(line + "\n"), (rx, filter)));
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such endpoint; see docs/API.md".into())
}

/// Middleware, outermost: every error response is `{"error": ...}` JSON,
/// also those the framework makes itself (405 with an empty body, a path
/// or query it cannot decode, a missing WebSocket upgrade, ...).
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // hyper's own limit is on its read buffer, which one large read can
    // pass whole: the request line and headers are measured here too.
    let head_bytes = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len())
        + request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if head_bytes > super::conn::MAX_HEAD_BYTES {
        let limit = super::conn::MAX_HEAD_BYTES >> 10;
        return ApiError(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request line and headers too large (at most {limit} KiB)"),
        )
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" if status == StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("GET");
            format!("method not allowed: this endpoint answers {allow}")
        }
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        text => text.to_owned(),
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut fixed = ApiError(status, message).into_response();
    for (name, value) in parts.headers.drain().filter_map(|(n, v)| Some((n?, v))) {
        fixed.headers_mut().entry(name).or_insert(value);
    }
    fixed
}
