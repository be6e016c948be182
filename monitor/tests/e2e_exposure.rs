//! The dashboard closed by default, tried from the outside with real
//! clients: DNS rebinding (a foreign Host or Origin), connection exhaustion
//! under a small file limit, oversized WebSocket messages, the JSON error
//! contract for every kind of bad request, and log lines fit for journald.
//! Everything stays on loopback (or a veth pair the test creates).

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use support::{get_with_host, poll, raw_request, Daemon, Launch, RawResponse, TestNet};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A JSON error with a non-empty message and the given status.
fn assert_json_error(what: &str, response: &RawResponse, status: u16) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{what}: content-type {content_type:?}");
    let body = response.json();
    assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

/// Opens a WebSocket with the given Host and Origin headers (None: the
/// client's default Host, no Origin); Err is the refusal's text.
async fn ws_with(daemon: &Daemon, host: Option<&str>, origin: Option<&str>) -> Result<(), String> {
    let mut request = format!("ws://{}/ws", daemon.addr()).into_client_request().expect("request");
    if let Some(host) = host {
        request.headers_mut().insert("Host", host.parse().expect("header"));
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().expect("header"));
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| e.to_string())?;
    let first = tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time");
    match first {
        Some(Ok(Message::Text(t))) => {
            let v: Value = serde_json::from_str(&t).expect("JSON");
            assert_eq!(v["type"], "snapshot");
            Ok(())
        }
        other => panic!("expected the snapshot, got {other:?}"),
    }
}

#[test]
fn foreign_host_and_origin_are_refused_allowed_names_accepted() {
    let daemon = Daemon::start(&[
        "--no-xdp",
        "--public-name",
        "monitor.example.test",
        "--allow-origin",
        "https://proxy.example.test:8443",
    ]);
    let addr = daemon.addr();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let evil = format!("rebind.evil.example.com:{port}");

    // DNS rebinding: the browser sends the attacker's name as Host.
    for path in ["/api/stats", "/healthz", "/", "/metrics", "/api/events"] {
        assert_json_error(&format!("{path} with Host {evil}"), &get_with_host(&addr, path, &evil, ""), 421);
    }
    let missing = raw_request(&addr, b"GET /api/stats HTTP/1.0\r\n\r\n");
    assert_json_error("no Host at all", &missing, 400);

    // The names it does answer to.
    for host in [
        addr.clone(),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        format!("[::1]:{port}"),
        "monitor.example.test".to_owned(),
        "monitor.example.test:443".to_owned(),
    ] {
        let response = get_with_host(&addr, "/api/stats", &host, "");
        assert_eq!(response.status, 200, "Host {host}: {response:?}");
        assert_eq!(response.json()["schema"], 1);
    }

    runtime().block_on(async {
        // A rebinding page's WebSocket: Host and Origin both the attacker's.
        let err = ws_with(&daemon, Some(&evil), Some(&format!("http://{evil}"))).await.expect_err("refused");
        assert!(err.contains("421"), "{err}");
        // Our Host, but another site's page: the Origin is not on the list.
        for origin in [format!("http://{evil}"), "null".to_owned(), "https://proxy.example.test".to_owned()] {
            let err = ws_with(&daemon, None, Some(&origin)).await.expect_err("foreign origin refused");
            assert!(err.contains("403"), "{origin}: {err}");
        }
        // Origin matching Host no longer suffices: both foreign is refused at the Host.
        let err = ws_with(&daemon, Some("evil.example:1"), Some("http://evil.example:1")).await.expect_err("refused");
        assert!(err.contains("421"), "{err}");
        // Allowed: the dashboard's own page, a configured name, --allow-origin, no Origin (not a browser).
        for origin in [
            Some(format!("http://{addr}")),
            Some(format!("http://localhost:{port}")),
            Some("https://monitor.example.test".to_owned()),
            Some("https://proxy.example.test:8443".to_owned()),
            None,
        ] {
            ws_with(&daemon, None, origin.as_deref()).await.unwrap_or_else(|e| panic!("{origin:?}: {e}"));
        }
        ws_with(&daemon, Some("monitor.example.test"), Some("https://monitor.example.test"))
            .await
            .expect("behind a proxy that forwards the public name");
    });
}

/// Listening on a non-loopback address (with a token): the listen address
/// itself is an allowed Host, other names are not.
#[test]
fn non_loopback_listener_accepts_its_own_address() {
    let net = TestNet::new();
    let launch = Launch { listen_ip: Some(net.host_v4.clone()), ..Launch::default() };
    let daemon = Daemon::start_with(&launch, &["--no-xdp", "--auth-token", "s3cret"]);
    let addr = daemon.addr();
    let auth = "Authorization: Bearer s3cret\r\n";
    let ok = get_with_host(&addr, "/api/stats", &addr, auth);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_json_error("no token", &get_with_host(&addr, "/api/stats", &addr, ""), 401);
    assert_json_error("foreign Host", &get_with_host(&addr, "/api/stats", "evil.example", auth), 421);
}

/// 1,100 idle connections against a daemon under `ulimit -n 1024`: it
/// stays within its file limit and /healthz keeps answering within a
/// second; idle connections are closed by the server.
#[test]
fn idle_connections_cannot_exhaust_the_daemon() {
    support::require_root();
    raise_own_file_limit(4096);
    let launch = Launch { nofile: Some(1024), ..Launch::default() };
    let daemon = Daemon::start_with(&launch, &["--no-xdp"]);
    let addr = daemon.addr();
    poll("the connection cap in the log", WAIT, || daemon.log_text().contains("max_connections=512").then_some(()));

    let healthz_within_a_second = |what: &str| {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(1)).build();
        let response = agent.get(&format!("{}/healthz", daemon.api)).call();
        assert!(matches!(&response, Ok(r) if r.status() == 200), "{what}: /healthz {response:?}");
    };
    let mut idle = Vec::new();
    for i in 0..1_100 {
        let stream = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        if i % 3 == 0 {
            // A third of them start a request and never finish the headers.
            (&stream).write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").expect("partial");
        }
        idle.push(stream);
        if i % 100 == 99 {
            healthz_within_a_second(&format!("after {} idle connections", i + 1));
        }
    }
    for round in 0..5 {
        healthz_within_a_second(&format!("with 1,100 idle connections open, round {round}"));
    }
    let log = daemon.log_text();
    assert!(!log.contains("Too many open files"), "the daemon ran out of descriptors:\n{log}");

    // Each idle connection is closed by the server: by the header read
    // timeout, or earlier to make room.
    for stream in &idle {
        stream.set_nonblocking(true).expect("nonblocking");
    }
    let mut open: Vec<usize> = (0..idle.len()).collect();
    poll("the daemon to close every idle connection", Duration::from_secs(60), || {
        open.retain(|&i| {
            let mut buf = [0u8; 512];
            match (&idle[i]).read(&mut buf) {
                Ok(0) => false,
                Ok(_) => true, // an answer would be a bug; it shows up below as never closing
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Err(_) => false,
            }
        });
        open.is_empty().then_some(())
    });
    healthz_within_a_second("after the idle connections were closed");
}

/// Without any pressure: a connection that sends nothing, one that never
/// finishes its headers, and one idle after a keep-alive request are all
/// closed by the daemon (header read and idle timeout).
#[test]
fn idle_and_slow_connections_are_closed() {
    let daemon = Daemon::start(&["--no-xdp"]);
    let addr = daemon.addr();
    let silent = TcpStream::connect(&addr).expect("connect");
    let slow = TcpStream::connect(&addr).expect("connect");
    (&slow).write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("partial headers");
    let kept_alive = TcpStream::connect(&addr).expect("connect");
    (&kept_alive).write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).expect("request");
    let mut answered = Vec::new();
    let mut buf = [0u8; 1024];
    kept_alive.set_read_timeout(Some(WAIT)).expect("timeout");
    while !answered.ends_with(b"ok\n") {
        let n = (&kept_alive).read(&mut buf).expect("the answer");
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&answered));
        answered.extend_from_slice(&buf[..n]);
    }
    assert!(answered.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answered));
    let streams = [("silent", &silent), ("slow headers", &slow), ("idle keep-alive", &kept_alive)];
    for (_, stream) in streams {
        stream.set_nonblocking(true).expect("nonblocking");
    }
    let mut open: Vec<&str> = streams.iter().map(|(name, _)| *name).collect();
    let mut unexpected = Vec::new();
    let limit = Duration::from_secs(60);
    support::try_poll(limit, || {
        for (name, stream) in streams {
            if !open.contains(&name) {
                continue;
            }
            match { stream }.read(&mut buf) {
                Ok(0) => open.retain(|n| *n != name),
                Ok(n) => unexpected.push(format!("{name}: {:?}", String::from_utf8_lossy(&buf[..n]))),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => open.retain(|n| *n != name),
            }
        }
        open.is_empty().then_some(())
    });
    assert!(open.is_empty(), "still open after {limit:?}: {open:?}");
    assert!(unexpected.is_empty(), "answers on idle connections: {unexpected:?}");
}

fn raise_own_file_limit(at_least: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < at_least {
            limit.rlim_cur = at_least.min(limit.rlim_max).max(limit.rlim_cur);
            limit.rlim_max = limit.rlim_max.max(limit.rlim_cur);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0, "raise the test's own file limit");
        }
    }
}

#[test]
fn oversized_websocket_message_is_refused_without_echo() {
    let daemon = Daemon::start(&["--no-xdp"]);
    runtime().block_on(async {
        let url = format!("ws://{}/ws", daemon.addr());
        // A bad filter within the size limit: the error frame quotes a short sample.
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connects");
        let long = "y".repeat(8_000);
        ws.send(Message::text(format!(r#"{{"type":"filter","class":["{long}"]}}"#))).await.expect("send");
        let error = loop {
            let frame = tokio::time::timeout(WAIT, ws.next()).await.expect("a frame").expect("open").expect("frame");
            if let Message::Text(t) = frame {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "error" {
                    break t.to_string();
                }
            }
        };
        assert!(error.len() < 400, "error frame of {} bytes: {error}", error.len());
        assert!(!error.contains(&"y".repeat(100)), "{error}");

        // 1 MB: refused (the connection closes), never echoed back.
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connects");
        let huge = "x".repeat(1 << 20);
        let sent = ws.send(Message::text(format!(r#"{{"type":"filter","class":["{huge}"]}}"#))).await;
        let needle = "x".repeat(100);
        let deadline = Instant::now() + WAIT;
        let mut close_code = None;
        loop {
            assert!(Instant::now() < deadline, "the connection stayed open after a 1 MB message");
            match tokio::time::timeout(WAIT, ws.next()).await.expect("the daemon answers or closes") {
                Some(Ok(Message::Text(t))) => assert!(!t.contains(&needle), "echoed: {} bytes", t.len()),
                Some(Ok(Message::Close(frame))) => {
                    close_code = frame.map(|f| u16::from(f.code));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        // When the send itself went through, the daemon said why it closed.
        if sent.is_ok() {
            assert!(close_code.is_none() || close_code == Some(1009), "close code {close_code:?}");
        }
    });
    assert_eq!(ureq::get(&format!("{}/healthz", daemon.api)).call().expect("alive").status(), 200);
}

#[test]
fn every_bad_request_gets_a_json_error() {
    let daemon = Daemon::start(&["--no-xdp", "--auth-token", "T"]);
    let addr = daemon.addr();
    let auth = "Authorization: Bearer T\r\n";
    let request = |method: &str, path: &str, extra: &str| -> RawResponse {
        raw_request(
            &addr,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/api/stats", "/healthz", "/metrics", "/api/events", "/"] {
            assert_json_error(&format!("{method} {path}"), &request(method, path, auth), 405);
        }
    }
    assert_json_error("plain GET /ws", &request("GET", "/ws", auth), 400);
    assert_json_error("bad UTF-8 in the path", &request("GET", "/api/lookup/%FF%FE", auth), 400);
    assert_json_error("no such path", &request("GET", "/no/such/path", auth), 404);
    assert_json_error("no such asset", &request("GET", "/assets/nope.js", ""), 404);
    assert_json_error("bad query", &request("GET", "/api/events?limit=abc", auth), 400);
    assert_json_error("no token", &request("GET", "/api/events", ""), 401);
    let query = "x".repeat(1 << 20);
    assert_json_error("1 MB query string", &request("GET", &format!("/api/events?q={query}"), auth), 431);
    let header = format!("X-Big: {}\r\n", "h".repeat(100 << 10));
    assert_json_error("100 KB header", &request("GET", "/api/stats", &format!("{auth}{header}")), 431);
    assert_json_error("malformed request line", &raw_request(&addr, b"GARBAGE\r\n\r\n"), 400);
    assert_json_error(
        "bad header",
        &raw_request(&addr, format!("GET / HTTP/1.1\r\nHost: {addr}\r\nBad Header\r\n\r\n").as_bytes()),
        400,
    );
    let long_target = format!("/api/events?q={}", "z".repeat(70_000));
    let response = request("GET", &long_target, auth);
    assert!([414, 431].contains(&response.status), "{response:?}");
    assert_json_error("long target", &response, response.status);

    // ?token= works on every authenticated route, not only some.
    for path in
        ["/api/stats", "/api/events", "/api/events?limit=1", "/api/top", "/api/history", "/api/http", "/metrics"]
    {
        let sep = if path.contains('?') { '&' } else { '?' };
        let response = request("GET", &format!("{path}{sep}token=T"), "");
        assert_eq!(response.status, 200, "{path}?token=T: {response:?}");
        assert_json_error(&format!("{path}?token=wrong"), &request("GET", &format!("{path}{sep}token=wrong"), ""), 401);
    }
    assert_eq!(ureq::get(&format!("{}/healthz", daemon.api)).call().expect("alive").status(), 200);
}

#[test]
fn logs_have_no_escape_codes_when_piped_and_json_on_request() {
    let mut daemon = Daemon::start(&["--no-xdp"]);
    let _ = get_with_host(&daemon.addr(), "/api/stats", "evil.example", "");
    daemon.stop();
    let log = daemon.log_text();
    assert!(log.contains("dashboard and API listening"), "{log}");
    assert!(!log.contains('\x1b'), "escape codes in a piped log:\n{log:?}");

    let mut daemon = Daemon::start(&["--no-xdp", "--log-format", "json"]);
    daemon.stop();
    let log = daemon.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "dashboard and API listening"), "{log}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}
