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
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::TryRecvError;

use super::{
    api::window,
    frames::{ErrorFrame, PongFrame, SnapshotFrame, StatsFrame, UpdateFrame},
    ApiError, Authorized, ServerState,
};
use crate::{
    model::{now_ms, sample, EventFilter, SCHEMA_VERSION},
    state::Published,
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
/// Entries of each top list in frames.
const TOP_IN_FRAMES: usize = 20;
/// Largest message a client may send (its pings and filters are tiny); a
/// larger one closes the connection (1009, message too big).
pub(super) const MAX_MESSAGE_BYTES: usize = 16 << 10;
/// Client input quoted in an error frame, at most (characters).
const ERROR_SAMPLE: usize = 80;

#[derive(Deserialize)]
pub(super) struct WsQuery {
    class: Option<String>,
    country: Option<String>,
    cidr: Option<String>,
    window: Option<u32>,
    host: Option<String>,
}

pub(super) async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(state): State<Arc<ServerState>>,
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
    let filter = match EventFilter::parse(q.class.as_deref(), q.country.as_deref(), q.cidr.as_deref(), None)
        .and_then(|f| f.with_hosts(q.host.as_deref()))
    {
        Ok(f) => f,
        Err(e) => return ApiError::bad_request(e).into_response(),
    };
    let window = match window(q.window) {
        Ok(w) => w,
        Err(e) => return ApiError::bad_request(e).into_response(),
    };
    ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES).on_upgrade(move |socket| async move {
        let _viewer = state.pipeline.viewer(peer.ip());
        Client { state, filter, window, may_see_viewers }.run(socket).await;
    })
}

struct Client {
    state: Arc<ServerState>,
    filter: EventFilter,
    /// The top lists' window in minutes; None: since start.
    window: Option<u32>,
    may_see_viewers: bool,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Incoming {
    Ping {
        t: Value,
    },
    Filter {
        class: Option<Vec<String>>,
        country: Option<Vec<String>>,
        cidr: Option<String>,
        /// The hosts ("rooms") to watch; absent or empty: every host.
        host: Option<Vec<String>>,
        /// Absent: unchanged; null: since start; else minutes.
        #[serde(default, deserialize_with = "present")]
        window: Option<Option<u32>>,
    },
}

/// A key that is present (even as null) becomes Some.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

impl Client {
    async fn run(mut self, socket: WebSocket) {
        let (mut tx, mut rx_ws) = socket.split();
        // Subscribe before asking for the recent events, so nothing falls
        // between the two; what both have is skipped from the stream.
        let mut events = self.state.pipeline.subscribe();
        let recent = self.state.pipeline.recent(self.filter.clone(), SNAPSHOT_EVENTS).await;
        let mut seen_up_to = recent.last().map_or(0, |e| e.id);
        let snapshot = self.state.pipeline.snapshot();
        let frame = SnapshotFrame::new(
            snapshot.stats(self.may_see_viewers),
            snapshot.history(60),
            snapshot.top(self.window, TOP_IN_FRAMES),
            recent,
        );
        if send(&mut tx, &frame).await.is_err() {
            return;
        }
        drop((frame, snapshot));
        let mut update = tokio::time::interval(UPDATE_EVERY);
        let mut stats_tick = tokio::time::interval(STATS_EVERY);
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut seq = 0u64;
        let mut lagging_frames = 0u32;
        let mut last_pong = Instant::now();
        loop {
            tokio::select! {
                _ = update.tick() => {
                    let (batch, skipped) = self.drain(&mut events, &mut seen_up_to);
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
                        let snapshot = self.state.pipeline.snapshot();
                        // The events' JSON is most of the frame: its size is known.
                        let size = batch.iter().map(|p| p.json.get().len() + 1).sum::<usize>() + FRAME_OVERHEAD;
                        let frame = UpdateFrame {
                            kind: "update", schema: SCHEMA_VERSION, seq, ts_ms: now_ms(),
                            events: batch.iter().map(|p| &*p.json).collect(), rates: &snapshot.rates, skipped,
                        };
                        if send_sized(&mut tx, &frame, size).await.is_err() {
                            return;
                        }
                    }
                    if closed {
                        return;
                    }
                }
                _ = stats_tick.tick() => {
                    let snapshot = self.state.pipeline.snapshot();
                    let frame = StatsFrame::new(
                        snapshot.stats(self.may_see_viewers),
                        snapshot.top(self.window, TOP_IN_FRAMES),
                        &snapshot.rates,
                    );
                    if send(&mut tx, &frame).await.is_err() {
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
                        let sent = match self.handle(&text) {
                            Some(Reply::Pong(frame)) => send(&mut tx, &frame).await,
                            Some(Reply::Error(frame)) => send(&mut tx, &frame).await,
                            None => Ok(()),
                        };
                        if sent.is_err() {
                            return;
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

    /// Takes what arrived since the last frame, filtered and capped.
    /// Events up to `seen_up_to` were in the snapshot already.
    fn drain(
        &self,
        events: &mut tokio::sync::broadcast::Receiver<Arc<Published>>,
        seen_up_to: &mut u64,
    ) -> (Vec<Arc<Published>>, Drained) {
        let mut batch = Vec::new();
        let mut skipped = 0u64;
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if event.event.id <= *seen_up_to || !self.filter.matches(&event.event) {
                        continue;
                    }
                    *seen_up_to = 0;
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

    fn handle(&mut self, text: &str) -> Option<Reply> {
        match serde_json::from_str::<Incoming>(text) {
            Ok(Incoming::Ping { t }) => Some(Reply::Pong(PongFrame { kind: "pong", schema: SCHEMA_VERSION, t })),
            Ok(Incoming::Filter { class, country, cidr, host, window: new_window }) => {
                let class = class.map(|c| c.join(","));
                let country = country.map(|c| c.join(","));
                let host = host.map(|h| h.join(","));
                let filter = match EventFilter::parse(class.as_deref(), country.as_deref(), cidr.as_deref(), None)
                    .and_then(|f| f.with_hosts(host.as_deref()))
                {
                    Ok(filter) => filter,
                    Err(e) => return Some(error_frame(&e)),
                };
                if let Some(w) = new_window {
                    match window(w) {
                        Ok(w) => self.window = w,
                        Err(e) => return Some(error_frame(&e)),
                    }
                }
                self.filter = filter;
                None
            }
            Err(e) => Some(error_frame(&format!("bad message: {e}"))),
        }
    }
}

enum Reply {
    Pong(PongFrame),
    Error(ErrorFrame),
}

/// An error frame: the message, cut to a short sample of whatever client
/// input it quotes.
fn error_frame(message: &str) -> Reply {
    Reply::Error(ErrorFrame { kind: "error", schema: SCHEMA_VERSION, error: sample(message, ERROR_SAMPLE * 2) })
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

async fn send(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, frame: &impl Serialize) -> Result<(), ()> {
    send_sized(tx, frame, 0).await
}

/// Bytes of an update frame besides its events (header, rates), about.
const FRAME_OVERHEAD: usize = 1024;

/// As [`send`], writing into a buffer of `size` bytes up front: a large
/// frame is not copied again at every doubling of its buffer.
async fn send_sized(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    frame: &impl Serialize,
    size: usize,
) -> Result<(), ()> {
    let mut text = Vec::with_capacity(size);
    serde_json::to_writer(&mut text, frame).map_err(|_| ())?;
    let text = String::from_utf8(text).map_err(|_| ())?;
    send_text(tx, text).await
}

async fn send_text(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, text: String) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(Utf8Bytes::from(text)))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
