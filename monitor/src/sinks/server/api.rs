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
use tokio::sync::broadcast::error::RecvError;

use super::{frames::ErrorDoc, Authorized, ServerState};
use crate::{
    history::{HistoryError, HistoryRange, HistoryReader},
    model::{now_ms, sample, EventFilter, WallClock, SCHEMA_VERSION},
    state::{
        documents::{
            EventsDoc, HistoryDoc, KernelSourceDoc, LookupDoc, MetaDoc, StatsDoc, TopDoc, TOP_WINDOWS_MINUTES,
        },
        HttpDoc, HTTP_TOP_MAX, TOP_MAX,
    },
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
        (self.0, Json(ErrorDoc { error: sample(&self.1, MAX_ERROR_CHARS) })).into_response()
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;
type Shared = State<Arc<ServerState>>;

fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn alerts(State(state): Shared) -> Json<Arc<crate::alerts::AlertsDoc>> {
    Json(state.alerts.doc())
}

pub(super) async fn meta() -> Json<MetaDoc> {
    Json(MetaDoc::current())
}

pub(super) async fn stats(State(state): Shared, Authorized(viewer_ok): Authorized) -> Json<StatsDoc> {
    Json(state.pipeline.snapshot().stats(viewer_ok))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopQuery {
    n: Option<usize>,
    window: Option<u32>,
    /// A range of the history store, ms since the epoch (instead of a window).
    from: Option<u64>,
    to: Option<u64>,
}

/// A top-list window from the query: one of TOP_WINDOWS_MINUTES, or none (since start).
pub(super) fn window(minutes: Option<u32>) -> Result<Option<u32>, String> {
    match minutes {
        Some(m) if !TOP_WINDOWS_MINUTES.contains(&m) => {
            Err(format!("window must be one of {TOP_WINDOWS_MINUTES:?} (minutes), or absent for since start"))
        }
        m => Ok(m),
    }
}

pub(super) async fn top(State(state): Shared, q: QueryResult<TopQuery>) -> Result<Json<TopDoc>, ApiError> {
    let q = query(q)?;
    let n = q.n.unwrap_or(20);
    if !(1..=TOP_MAX).contains(&n) {
        return Err(ApiError::bad_request(format!("n must be 1..={TOP_MAX}")));
    }
    let window = window(q.window).map_err(ApiError::bad_request)?;
    if q.from.is_some() || q.to.is_some() {
        if window.is_some() {
            return Err(ApiError::bad_request("window and from/to exclude each other"));
        }
        let now = now_ms();
        let (from, to) = range_bounds(q.from, q.to, now);
        let mut doc = history_reader(&state)?.top(from, to, n, now).await.map_err(history_error)?;
        // The store keeps a source's country and network; where it is on the map comes from today's GeoIP data.
        for source in &mut doc.sources {
            if let Some((geo, _)) = state.pipeline.source(source.ip).await {
                source.summary.geo = Some(geo);
            }
        }
        return Ok(Json(doc));
    }
    Ok(Json(state.pipeline.snapshot().top(window, n)))
}

/// `from` and `to` as asked: `to` defaults to now, `from` to an hour before `to`.
fn range_bounds(from: Option<u64>, to: Option<u64>, now: u64) -> (u64, u64) {
    let to = to.unwrap_or(now);
    (from.unwrap_or(to.saturating_sub(3_600_000)), to)
}

/// The history store's reader, or why there is none.
fn history_reader(state: &ServerState) -> Result<&HistoryReader, ApiError> {
    state.history.as_ref().ok_or_else(|| {
        let why = state.pipeline.snapshot().stats.history.error.clone().unwrap_or_else(|| "off".into());
        ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("history is not available: {why}"))
    })
}

fn history_error(error: HistoryError) -> ApiError {
    match error {
        HistoryError::Range(message) => ApiError::bad_request(message),
        HistoryError::Busy | HistoryError::Stopped => ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        error => {
            let message = crate::history::error_chain(&error);
            tracing::warn!(error = %message, "history query failed");
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    minutes: Option<usize>,
    /// A range of the history store, ms since the epoch; step in ms.
    from: Option<u64>,
    to: Option<u64>,
    step: Option<u64>,
}

pub(super) async fn history(State(state): Shared, q: QueryResult<HistoryQuery>) -> Result<Json<HistoryDoc>, ApiError> {
    let q = query(q)?;
    if q.from.is_some() || q.to.is_some() {
        if q.minutes.is_some() {
            return Err(ApiError::bad_request("minutes and from/to exclude each other"));
        }
        let now = now_ms();
        let (from_ms, to_ms) = range_bounds(q.from, q.to, now);
        let range = HistoryRange { from_ms, to_ms, step_ms: q.step };
        return Ok(Json(history_reader(&state)?.history(range, now).await.map_err(history_error)?));
    }
    if q.step.is_some() {
        return Err(ApiError::bad_request("step applies to a range (from, to)"));
    }
    let minutes = q.minutes.unwrap_or(60);
    if !(1..=60).contains(&minutes) {
        return Err(ApiError::bad_request("minutes must be 1..=60"));
    }
    Ok(Json(state.pipeline.snapshot().history(minutes)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpQuery {
    n: Option<usize>,
}

pub(super) async fn http(State(state): Shared, q: QueryResult<HttpQuery>) -> Result<Json<HttpDoc>, ApiError> {
    let n = query(q)?.n.unwrap_or(10);
    if !(1..=HTTP_TOP_MAX).contains(&n) {
        return Err(ApiError::bad_request(format!("n must be 1..={HTTP_TOP_MAX}")));
    }
    Ok(Json(state.pipeline.snapshot().http.truncated(n)))
}

pub(super) async fn lookup(
    State(state): Shared,
    ip: Result<Path<String>, PathRejection>,
) -> Result<Json<LookupDoc>, ApiError> {
    let Path(ip) = ip.map_err(|e| ApiError::bad_request(format!("bad address in the path: {}", e.body_text())))?;
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{:?} is not an IPv4 or IPv6 address", sample(&ip, 60))))?;
    let (geo, seen) = state.pipeline.source(addr).await.ok_or_else(stopping)?;
    let kernel = match &state.kernel {
        Some(kernel) => kernel.source(addr).await,
        None => None,
    };
    let kernel = kernel.map(|s| {
        let clock = WallClock::new();
        monitor_common::Class::ALL
            .iter()
            .take(monitor_common::class::TRACKED_CLASS_COUNT)
            .enumerate()
            .filter(|(i, _)| s.packets[*i] > 0)
            .map(|(i, c)| {
                let doc = KernelSourceDoc {
                    packets: s.packets[i],
                    bytes: s.bytes[i],
                    first_seen_ms: clock.wall_ms(s.first_seen_ns[i]),
                    last_seen_ms: clock.wall_ms(s.last_seen_ns[i]),
                };
                (c.name(), doc)
            })
            .collect()
    });
    Ok(Json(LookupDoc { schema: SCHEMA_VERSION, ip: addr, geo, seen, kernel }))
}

/// The daemon is shutting down: its state no longer answers.
fn stopping() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    limit: Option<usize>,
    class: Option<String>,
    country: Option<String>,
    cidr: Option<String>,
    q: Option<String>,
    host: Option<String>,
}

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        EventFilter::parse(self.class.as_deref(), self.country.as_deref(), self.cidr.as_deref(), self.q.as_deref())
            .and_then(|f| f.with_hosts(self.host.as_deref()))
            .map_err(ApiError::bad_request)
    }
}

const MAX_EVENTS_PER_REQUEST: usize = 2_000;

pub(super) async fn events(State(state): Shared, q: QueryResult<EventsQuery>) -> Result<Json<EventsDoc>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_EVENTS_PER_REQUEST}")));
    }
    let events = state.pipeline.recent(q.filter()?, limit).await;
    Ok(Json(EventsDoc { schema: SCHEMA_VERSION, events }))
}

/// A line of the NDJSON stream when this reader fell behind.
#[derive(serde::Serialize)]
struct Skipped {
    skipped: u64,
}

/// NDJSON: one event per line as they arrive; a `{"skipped": N}` line when
/// this reader fell behind and missed N events.
pub(super) async fn event_stream(State(state): Shared, q: QueryResult<EventsQuery>) -> Result<Response, ApiError> {
    let q = query(q)?;
    if q.limit.is_some() {
        return Err(ApiError::bad_request("limit does not apply to the stream"));
    }
    let filter = q.filter()?;
    let rx = state.pipeline.subscribe();
    let stream = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            let line = match rx.recv().await {
                Ok(p) if filter.matches(&p.event) => p.json.get().to_owned(),
                Ok(_) => continue,
                Err(RecvError::Lagged(skipped)) => serde_json::to_string(&Skipped { skipped }).unwrap_or_default(),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(line + "\n"), (rx, filter)));
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

/// `/api/hosts`: every reporting host (docs/agent.md).
pub(super) async fn hosts(State(state): Shared) -> Json<Arc<crate::state::HostsDoc>> {
    Json(Arc::clone(&state.pipeline.snapshot().hosts))
}

pub(super) async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such endpoint; see docs/API.md".into())
}

/// Middleware, outermost: every error response is `{"error": ...}` JSON,
/// also those the framework makes itself (405 with an empty body, a path
/// or query it cannot decode, a missing WebSocket upgrade, ...).
pub(super) async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
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
