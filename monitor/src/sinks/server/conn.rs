//! Serving connections: hyper HTTP/1.1 under our own accept loop, so that
//! no client can hold the daemon's file descriptors.
//!
//! - A connection with no request in progress (still sending its headers,
//!   or idle between keep-alive requests) is closed after
//!   [`HEADER_READ_TIMEOUT`]; a TLS handshake gets [`HANDSHAKE_TIMEOUT`].
//! - At most `max_connections` are open (a fraction of RLIMIT_NOFILE, see
//!   [`connection_limit`]). At the cap a new connection takes the place of
//!   the oldest idle one; when none is idle (every connection is serving a
//!   request, a stream or a WebSocket) the newcomer gets a 503 and is closed.
//! - The errors hyper answers itself (malformed request 400, request target
//!   too long 414, headers too large 431) are rewritten into the API's JSON
//!   error shape on their way out ([`Conn`]).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode},
    Router,
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify},
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// From the moment a connection waits for a request until its headers are
/// complete: slow senders and idle keep-alive connections are closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line and headers together (hyper's read buffer), at most.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// After a request we refused while the client was still sending, its bytes
/// are read and dropped this long so that it gets to read the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;
/// Connections are kept under this share of the file limit (the rest is for
/// BPF maps, GeoIP files, syslog sockets, ...).
const MAX_CONNECTIONS: usize = 4096;
const MIN_CONNECTIONS: usize = 16;
/// How long shutdown waits for connections to finish their request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Reads RLIMIT_NOFILE, raises the soft limit to the hard one, logs both and
/// returns the connection cap: half the (raised) soft limit, at most 4096.
pub fn connection_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "cannot read the file descriptor limit; assuming 1024");
        return 512;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    let soft = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    let cap = (soft / 2).clamp(MIN_CONNECTIONS, MAX_CONNECTIONS);
    tracing::info!(
        soft_before = before,
        soft = limit.rlim_cur,
        hard = limit.rlim_max,
        max_connections = cap,
        "file descriptor limit (RLIMIT_NOFILE)"
    );
    cap
}

/// Accepts and serves connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry { max: max_connections, inner: Mutex::new(Inner::default()) });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut accept_errors = AcceptErrors::default();
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    accept_errors.report(&error);
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = registry.admit() else {
            tracing::debug!(%peer, "connection refused: every connection is busy");
            if tls.is_none() {
                let _ = stream.try_write(BUSY_RESPONSE.as_bytes());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, tls.clone(), router.clone(), guard, stop_rx.clone()));
    }
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while registry.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const BUSY_RESPONSE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
     content-length: 57\r\nconnection: close\r\n\r\n{\"error\":\"too many connections; try again in a moment.\"}\n";

#[derive(Default)]
struct AcceptErrors {
    last_log: Option<Instant>,
    since_log: u64,
}

impl AcceptErrors {
    /// One warning per 10 s at most, with the count of the others.
    fn report(&mut self, error: &io::Error) {
        self.since_log += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(%error, errors = self.since_log, "accepting dashboard connections failed");
            self.last_log = Some(Instant::now());
            self.since_log = 0;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    guard: SlotGuard,
    mut stop: watch::Receiver<bool>,
) {
    let slot = Arc::clone(&guard.slot);
    match tls {
        None => serve_io(stream, peer, router, guard, stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                },
                () = slot.close.notified() => return,
                _ = stop.changed() => return,
            };
            serve_io(tls, peer, router, guard, stop).await;
        }
    }
}

async fn serve_io<S>(io: S, peer: SocketAddr, router: Router, guard: SlotGuard, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = Arc::clone(&guard.slot);
    let service_slot = Arc::clone(&slot);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = Busy::new(Arc::clone(&service_slot));
        let slot = Arc::clone(&service_slot);
        let router = router.clone();
        async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                slot.upgraded.store(true, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(response.map(|body| Body::new(BusyBody { inner: body, _busy: busy })))
        }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(Conn::new(io, guard)), service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        }
        () = slot.close.notified() => tracing::debug!(%peer, "idle connection closed to make room"),
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

// ------------------------------------------------------------ the registry

struct Registry {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Open connections, oldest first.
    open: BTreeMap<u64, Arc<Slot>>,
}

#[derive(Default)]
struct Slot {
    /// Requests being answered (their response bodies not yet finished).
    in_flight: AtomicUsize,
    /// Became a WebSocket: busy for good.
    upgraded: AtomicBool,
    /// Told to close, to make room for a new connection.
    close: Notify,
}

impl Slot {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && !self.upgraded.load(Ordering::Relaxed)
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// A slot for a new connection, closing the oldest idle one at the cap;
    /// None when every open connection is busy.
    fn admit(self: &Arc<Self>) -> Option<SlotGuard> {
        let mut inner = self.lock();
        if inner.open.len() >= self.max {
            let victim = inner.open.iter().find(|(_, slot)| slot.idle()).map(|(id, _)| *id)?;
            if let Some(slot) = inner.open.remove(&victim) {
                slot.close.notify_one();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(Slot::default());
        inner.open.insert(id, Arc::clone(&slot));
        drop(inner);
        Some(SlotGuard { registry: Arc::clone(self), id, slot })
    }
}

/// Holds a connection's place in the registry for as long as its socket
/// lives (it moves with the socket into a WebSocket).
struct SlotGuard {
    registry: Arc<Registry>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

/// A request in progress, until its response body is finished or dropped.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ------------------------------------------------------------ the socket

/// The socket as hyper sees it: holds the connection's slot, and rewrites
/// hyper's own error responses (an empty body) into JSON errors.
struct Conn<S: AsyncRead + Unpin + Send + 'static> {
    inner: Option<S>,
    _guard: SlotGuard,
    /// A rewritten response being written: bytes, written so far, and the
    /// length hyper handed us (reported once all of it is out).
    rewrite: Option<(Vec<u8>, usize, usize)>,
    /// Drain what the client still sends before closing (see [`LINGER`]).
    linger: bool,
}

impl<S: AsyncRead + Unpin + Send + 'static> Conn<S> {
    fn new(inner: S, guard: SlotGuard) -> Self {
        Conn { inner: Some(inner), _guard: guard, rewrite: None, linger: false }
    }

    fn io(&mut self) -> &mut S {
        self.inner.as_mut().expect("socket present until drop")
    }
}

impl<S: AsyncRead + Unpin + Send + 'static> Drop for Conn<S> {
    fn drop(&mut self) {
        if !self.linger {
            return;
        }
        if let (Some(stream), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(drain(stream));
        }
    }
}

async fn drain<S: AsyncRead + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; 16 << 10];
    let mut total = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for Conn<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for Conn<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none() {
            match framework_error(buf) {
                Some(code) => {
                    self.rewrite = Some((json_error_response(code), 0, buf.len()));
                    self.linger = true;
                }
                None => return Pin::new(self.io()).poll_write(cx, buf),
            }
        }
        let this = &mut *self;
        let (bytes, written, reported) = this.rewrite.as_mut().expect("set above");
        while *written < bytes.len() {
            let stream = this.inner.as_mut().expect("socket present until drop");
            match Pin::new(stream).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let reported = *reported;
        this.rewrite = None;
        Poll::Ready(Ok(reported))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_shutdown(cx)
    }
}

/// The status of a response head hyper wrote for a request it could not
/// parse: 4xx/5xx with `content-length: 0`. (Every error the router answers
/// has a JSON body, so this never matches one of ours.)
fn framework_error(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ").or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !(400..600).contains(&code) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut head = buf[..end].to_ascii_lowercase();
    head.extend_from_slice(b"\r\n");
    head.windows(21).any(|w| w == b"\r\ncontent-length: 0\r\n").then_some(code)
}

fn json_error_response(code: u16) -> Vec<u8> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let message = match code {
        400 => "malformed HTTP request".to_owned(),
        414 => "request target too long".to_owned(),
        431 => format!("request line and headers too large (at most {} KiB)", MAX_HEAD_BYTES >> 10),
        _ => status.canonical_reason().unwrap_or("bad request").to_lowercase(),
    };
    let body = serde_json::json!({ "error": message }).to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_errors_are_recognised() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(framework_error(head), Some(431));
        assert_eq!(framework_error(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), Some(400));
        assert_eq!(framework_error(b"HTTP/1.1 404 Not Found\r\ncontent-length: 23\r\n\r\n{}"), None);
        assert_eq!(framework_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(framework_error(b"{\"HTTP/1.1 400"), None);
        let rewritten = String::from_utf8(json_error_response(431)).expect("utf8");
        assert!(rewritten.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let (head, body) = rewritten.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).expect("json")["error"].is_string());
    }

    #[test]
    fn busy_response_is_well_formed() {
        let (head, body) = BUSY_RESPONSE.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{}", body.len());
        assert!(serde_json::from_str::<serde_json::Value>(body).expect("json")["error"].is_string());
    }

    #[test]
    fn admission_evicts_the_oldest_idle_connection() {
        let registry = Arc::new(Registry { max: 2, inner: Mutex::new(Inner::default()) });
        let a = registry.admit().expect("a");
        let b = registry.admit().expect("b");
        let _busy = Busy::new(Arc::clone(&a.slot));
        let c = registry.admit().expect("c takes b's place");
        assert_eq!(registry.open(), 2);
        assert!(!registry.lock().open.contains_key(&b.id));
        c.slot.upgraded.store(true, Ordering::Relaxed);
        assert!(registry.admit().is_none(), "everyone busy");
        drop(c);
        assert!(registry.admit().is_some());
    }
}
