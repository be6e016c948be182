//! The live WebSocket: a snapshot on connect, then batched updates every
//! 200 ms. Each client reads the fan-out channel on its own; one that falls
//! behind skips events (and is told how many), never slowing the pipeline or
//! the other clients, and is disconnected if it stays behind.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{
        rejection::QueryRejection,
        ws::rejection::WebSocketUpgradeRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        ConnectInfo, Query, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::TryRecvError;

use super::{filter::EventFilter, hosts::sample, stats, ApiError, Authorized};
use crate::{
    app::{lock, AppState, Viewer},
    event::{now_ms, Event, Published, SCHEMA_VERSION},
};

const UPDATE_EVERY: Duration = Duration::from_millis(200);
const STATS_EVERY: Duration = Duration::from_secs(1);
const PING_EVERY: Duration = Duration::from_secs(15);
/// A send that takes longer means the client is not reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Events per update frame; more are skipped and counted.
const MAX_EVENTS_PER_FRAME: usize = 2_000;
/// Consecutive update frames with skipped events before we give up on a client.
const MAX_LAGGING_FRAMES: u32 = 50;
const SNAPSHOT_EVENTS: usize = 500;
/// Largest message a client may send (its pings and filters are tiny); a
/// larger one closes the connection (1009, message too big).
pub const MAX_MESSAGE_BYTES: usize = 16 << 10;
/// Client input quoted in an error frame, at most (characters).
const ERROR_SAMPLE: usize = 80;

/// An update frame; the events are the shared, already serialized JSON.
#[derive(serde::Serialize)]
struct Update<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    seq: u64,
    ts_ms: u64,
    events: Vec<&'a serde_json::value::RawValue>,
    rates: &'a Value,
    skipped: u64,
}

#[derive(Deserialize)]
pub struct WsQuery {
    class: Option<String>,
    country: Option<String>,
    cidr: Option<String>,
}

pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authorized(may_see_viewers): Authorized,
    headers: HeaderMap,
    q: Result<Query<WsQuery>, QueryRejection>,
) -> Response {
    // Browsers always send Origin on WebSocket requests: it must name this
    // dashboard (the Host allowlist) or be listed with --allow-origin, so
    // another site cannot read the stream. Non-browser clients send none
    // and are governed by the Host check and the token.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !state.hosts.allows_origin(&origin) {
            return ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "WebSocket Origin {:?} is not this dashboard; an operator can allow it with --allow-origin",
                    sample(&origin, 64)
                ),
            )
            .into_response();
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError(rejection.status(), format!("{} (this endpoint is a WebSocket)", rejection.body_text()))
                .into_response()
        }
    };
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let filter = match EventFilter::parse(q.class.as_deref(), q.country.as_deref(), q.cidr.as_deref(), None) {
        Ok(f) => f,
        Err(e) => return ApiError::bad_request(e).into_response(),
    };
    ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES).on_upgrade(move |socket| async move {
        let id = state.register_viewer(Viewer { addr: peer.ip(), since_ms: now_ms() });
        Client { state: state.clone(), filter, may_see_viewers }.run(socket).await;
        lock(&state.viewers).remove(&id);
    })
}

struct Client {
    state: Arc<AppState>,
    filter: EventFilter,
    may_see_viewers: bool,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Incoming {
    Ping { t: Value },
    Filter { class: Option<Vec<String>>, country: Option<Vec<String>>, cidr: Option<String> },
}

impl Client {
    async fn run(mut self, socket: WebSocket) {
        let (mut tx, mut rx_ws) = socket.split();
        // Subscribe before the snapshot so nothing falls between the two.
        let mut events = self.state.fanout.subscribe();
        let snapshot = self.snapshot();
        if send(&mut tx, snapshot).await.is_err() {
            return;
        }
        let mut update = tokio::time::interval(UPDATE_EVERY);
        let mut stats_tick = tokio::time::interval(STATS_EVERY);
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut seq = 0u64;
        let mut lagging_frames = 0u32;
        let mut last_pong = Instant::now();
        loop {
            tokio::select! {
                _ = update.tick() => {
                    let (batch, skipped) = self.drain(&mut events);
                    let closed = matches!(skipped, Drained::Closed);
                    let skipped = skipped.count();
                    lagging_frames = if skipped > 0 { lagging_frames + 1 } else { 0 };
                    if lagging_frames > MAX_LAGGING_FRAMES {
                        let _ = tx.send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: Utf8Bytes::from_static("client too slow: it kept falling behind the event stream"),
                        }))).await;
                        return;
                    }
                    if !batch.is_empty() || skipped > 0 {
                        seq += 1;
                        let rates = self.rates();
                        let frame = Update {
                            kind: "update", schema: SCHEMA_VERSION, seq, ts_ms: now_ms(),
                            events: batch.iter().map(|p| &*p.json).collect(), rates: &rates, skipped,
                        };
                        let Ok(text) = serde_json::to_string(&frame) else { return };
                        if send_text(&mut tx, text).await.is_err() {
                            return;
                        }
                    }
                    if closed {
                        return;
                    }
                }
                _ = stats_tick.tick() => {
                    let frame = self.stats_frame();
                    if send_text(&mut tx, frame.to_string()).await.is_err() {
                        return;
                    }
                }
                _ = ping.tick() => {
                    if last_pong.elapsed() > PING_EVERY * 3 {
                        return; // the peer stopped answering pings
                    }
                    if tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default()))).await.is_err() {
                        return;
                    }
                }
                incoming = rx_ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        last_pong = Instant::now();
                        if let Some(reply) = self.handle(&text) {
                            if send(&mut tx, reply).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "WebSocket read failed");
                        // Most likely a message over the limit; say so, briefly.
                        let close = Message::Close(Some(CloseFrame {
                            code: 1009,
                            reason: Utf8Bytes::from_static("message too big or malformed (limit 16 KiB)"),
                        }));
                        let _ = tokio::time::timeout(SEND_TIMEOUT, tx.send(close)).await;
                        return;
                    }
                    Some(Ok(_)) => last_pong = Instant::now(),
                },
            }
        }
    }

    fn snapshot(&self) -> Value {
        let recent: Vec<Arc<Event>> = {
            let recent = lock(&self.state.aggregate).recent(usize::MAX);
            let mut kept: Vec<_> =
                recent.into_iter().rev().filter(|e| self.filter.matches(e)).take(SNAPSHOT_EVENTS).collect();
            kept.reverse();
            kept
        };
        json!({
            "type": "snapshot", "schema": SCHEMA_VERSION,
            "stats": stats::stats(&self.state, self.may_see_viewers),
            "history": stats::history(&self.state, 60),
            "top": self.state.cached_top(),
            "recent": recent,
        })
    }

    /// The stats frame, built at most once per interval for all clients
    /// (one variant with the viewers list, one without).
    fn stats_frame(&self) -> Arc<str> {
        let variant = usize::from(self.may_see_viewers);
        let mut cache = lock(&self.state.stats_frames);
        if let Some((at, frames)) = &*cache {
            if at.elapsed() < STATS_EVERY.mul_f32(0.9) {
                return frames[variant].clone();
            }
        }
        let build = |viewers: bool| -> Arc<str> {
            json!({
                "type": "stats", "schema": SCHEMA_VERSION,
                "stats": stats::stats(&self.state, viewers),
                "top": self.state.cached_top(),
                "rates": self.rates(),
            })
            .to_string()
            .into()
        };
        let frames = [build(false), build(true)];
        let frame = frames[variant].clone();
        *cache = Some((Instant::now(), frames));
        frame
    }

    fn rates(&self) -> Value {
        let latest = lock(&self.state.aggregate).history.latest();
        let map: serde_json::Map<_, _> =
            crate::history::SERIES.iter().zip(latest).map(|(name, v)| (name.to_string(), json!(v))).collect();
        json!(map)
    }

    /// Takes what arrived since the last frame, filtered and capped.
    fn drain(&self, events: &mut tokio::sync::broadcast::Receiver<Arc<Published>>) -> (Vec<Arc<Published>>, Drained) {
        let mut batch = Vec::new();
        let mut skipped = 0u64;
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if !self.filter.matches(&event.event) {
                        continue;
                    }
                    if batch.len() < MAX_EVENTS_PER_FRAME {
                        batch.push(event);
                    } else {
                        skipped += 1;
                    }
                }
                Err(TryRecvError::Lagged(n)) => skipped += n,
                Err(TryRecvError::Empty) => return (batch, Drained::Open(skipped)),
                Err(TryRecvError::Closed) => return (batch, Drained::Closed),
            }
        }
    }

    fn handle(&mut self, text: &str) -> Option<Value> {
        match serde_json::from_str::<Incoming>(text) {
            Ok(Incoming::Ping { t }) => Some(json!({ "type": "pong", "schema": SCHEMA_VERSION, "t": t })),
            Ok(Incoming::Filter { class, country, cidr }) => {
                let class = class.map(|c| c.join(","));
                let country = country.map(|c| c.join(","));
                match EventFilter::parse(class.as_deref(), country.as_deref(), cidr.as_deref(), None) {
                    Ok(filter) => {
                        self.filter = filter;
                        None
                    }
                    Err(e) => Some(error_frame(&e)),
                }
            }
            Err(e) => Some(error_frame(&format!("bad message: {e}"))),
        }
    }
}

/// An error frame: the message, cut to a short sample of whatever client
/// input it quotes.
fn error_frame(message: &str) -> Value {
    json!({ "type": "error", "schema": SCHEMA_VERSION, "error": sample(message, ERROR_SAMPLE * 2) })
}

enum Drained {
    Open(u64),
    Closed,
}

impl Drained {
    fn count(&self) -> u64 {
        match self {
            Drained::Open(n) => *n,
            Drained::Closed => 0,
        }
    }
}

async fn send(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, frame: Value) -> Result<(), ()> {
    send_text(tx, frame.to_string()).await
}

async fn send_text(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, text: String) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(Utf8Bytes::from(text)))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
