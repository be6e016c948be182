//! The daemon's HTTP API and WebSocket, observed by real clients while real
//! traffic flows: snapshot then batched updates, filters, the NDJSON stream,
//! lookups, metrics, auth, a slow client that must not hold back the others,
//! and bad requests that must get 4xx, never 5xx.

mod support;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use support::{poll, run_daemon_to_exit, Daemon, TestNet};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};

const WAIT: Duration = Duration::from_secs(30);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(daemon: &Daemon, query: &str) -> Ws {
    let url = format!("{}/ws{query}", daemon.api.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.expect("WebSocket connects").0
}

/// Next JSON text frame, skipping pings.
async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time");
        match msg.expect("stream open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON frame"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn websocket_snapshot_then_batched_updates_with_real_pings() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--events-per-source", "0"]);
    runtime().block_on(async {
        let mut ws = connect(&daemon, "?class=icmp").await;
        let snapshot = next_frame(&mut ws).await;
        assert_eq!(snapshot["type"], "snapshot");
        assert_eq!(snapshot["schema"], 1);
        assert!(snapshot["stats"]["kernel"].is_object());
        assert!(snapshot["history"]["series"]["icmp"].is_array());
        assert!(snapshot["top"].is_object() && snapshot["recent"].is_array());

        net.exec_ok(&["ping", "-c", "3", "-i", "0.2", &net.host_v4]);
        net.exec_ok(&["ping", "-6", "-c", "1", &net.host_v6]);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let frame = next_frame(&mut ws).await;
            if frame["type"] != "update" {
                continue;
            }
            assert!(frame["seq"].as_u64().is_some() && frame["rates"].is_object());
            for e in frame["events"].as_array().expect("events") {
                assert_eq!(e["class"], "icmp", "the class filter keeps ICMPv6 out: {e}");
                if e["src"] == net.ns_v4.as_str() && e["icmp"]["type"] == 8 {
                    assert_eq!(e["geo"]["label"], "benchmarking");
                    assert!(e["id"].as_u64().is_some_and(|id| id > 0));
                    seen.push(e["icmp"]["seq"].as_u64().expect("seq"));
                }
            }
        }
        assert_eq!(seen, [1, 2, 3]);

        ws.send(Message::text(json!({"type": "ping", "t": 42}).to_string())).await.expect("send");
        loop {
            let frame = next_frame(&mut ws).await;
            if frame["type"] == "pong" {
                assert_eq!(frame["t"], 42);
                break;
            }
        }
        // Viewers are listed to a loopback-only dashboard's viewers, from
        // the next once-a-second snapshot on.
        poll("this viewer in /api/stats", Duration::from_secs(5), || {
            (daemon.stats()["viewers"].as_array().map(Vec::len) == Some(1)).then_some(())
        });
    });
}

#[test]
fn a_slow_client_never_holds_back_the_others() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--events-per-source", "0", "--events-per-sec", "0"]);
    let before = daemon.stats()["events"]["received"].as_u64().expect("events.received");
    runtime().block_on(async {
        // The slow client connects and then never reads again.
        let slow = connect(&daemon, "").await;
        let mut fast = connect(&daemon, "").await;
        assert_eq!(next_frame(&mut fast).await["type"], "snapshot");
        let flood = {
            let ns = net.ns.clone();
            let target = net.host_v4.clone();
            tokio::task::spawn_blocking(move || {
                support::must("ip", &["netns", "exec", &ns, "ping", "-f", "-c", "20000", "-s", "1000", "-q", &target])
            })
        };
        let tally = |frame: &Value| -> u64 {
            if frame["type"] != "update" {
                return 0;
            }
            frame["events"].as_array().map_or(0, |e| e.len() as u64) + frame["skipped"].as_u64().unwrap_or(0)
        };
        let mut received = 0u64;
        while !flood.is_finished() {
            received += tally(&next_frame(&mut fast).await);
        }
        flood.await.expect("flood finished");
        // Every event the daemon published reaches the fast client, either in
        // a frame or counted as skipped; the stalled client holds nothing back.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let published = daemon.stats()["events"]["received"].as_u64().expect("events.received") - before;
            received += tally(&next_frame(&mut fast).await);
            if received == published && published >= 10_000 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "fast client saw {received} of {published} events");
        }
        drop(slow);
    });
    let health = ureq::get(&format!("{}/healthz", daemon.api)).call().expect("daemon responsive");
    assert_eq!(health.status(), 200);
}

#[test]
fn stream_lookup_and_metrics() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--events-per-source", "0"]);
    let stream_url = format!("{}/api/events/stream?class=icmp&cidr={}/32", daemon.api, net.ns_v4);
    let reader = std::thread::spawn(move || {
        let body = ureq::get(&stream_url).call().expect("stream").into_reader();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(body));
        let first = lines.next().expect("a line").expect("read");
        serde_json::from_str::<Value>(&first).expect("NDJSON line")
    });
    // The stream subscribes when the request arrives; keep pinging until it has a line.
    poll("an NDJSON event", WAIT, || {
        net.exec_ok(&["ping", "-c", "1", &net.host_v4]);
        reader.is_finished().then_some(())
    });
    let line = reader.join().expect("reader");
    assert_eq!(line["src"], net.ns_v4.as_str());
    assert_eq!(line["class"], "icmp");

    let pings = poll("the kernel's per-source counters", WAIT, || {
        let l = daemon.get_json(&format!("/api/lookup/{}", net.ns_v4));
        l["kernel"]["icmp"]["packets"].as_u64().filter(|n| *n >= 1).map(|n| (n, l))
    });
    let (packets, lookup) = pings;
    assert_eq!(lookup["geo"]["label"], "benchmarking");
    assert!(lookup["kernel"]["icmp"]["last_seen_ms"].as_u64() >= lookup["kernel"]["icmp"]["first_seen_ms"].as_u64());
    assert!(lookup["seen"]["xdp_packets"].as_u64().unwrap_or(0) <= packets);

    let metrics = ureq::get(&format!("{}/metrics", daemon.api)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains("# TYPE monitor_xdp_packets_total counter"));
    assert!(metrics.lines().any(|l| l.starts_with("monitor_xdp_packets_total{class=\"icmp\"} ")));
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().expect("stdin").write_all(metrics.as_bytes())?;
            child.wait_with_output()
        })
    {
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_requests_get_4xx_with_a_message() {
    let daemon = Daemon::start(&["--no-xdp"]);
    for (path, status) in [
        ("/api/lookup/not-an-ip", 400),
        ("/api/lookup/999.1.1.1", 400),
        ("/api/events?limit=0", 400),
        ("/api/events?limit=abc", 400),
        ("/api/events?class=bogus", 400),
        ("/api/events?cidr=10.0.0.0/99", 400),
        ("/api/events?country=Germany", 400),
        ("/api/events?unknown=1", 400),
        ("/api/top?n=0", 400),
        ("/api/history?minutes=61", 400),
        ("/api/events/stream?limit=5", 400),
        ("/ws?class=nope", 400),
        ("/no/such/path", 404),
        ("/assets/../../etc/passwd", 404),
    ] {
        let url = format!("{}{path}", daemon.api);
        match ureq::get(&url).call() {
            Err(ureq::Error::Status(code, resp)) => {
                assert_eq!(code, status, "{path}");
                if path.starts_with("/api") {
                    let body: Value = resp.into_json().expect("JSON error");
                    assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
                }
            }
            other => panic!("{path}: expected {status}, got {other:?}"),
        }
    }
    // A browser page from another site may not open the stream.
    runtime().block_on(async {
        let mut request =
            format!("{}/ws", daemon.api.replace("http://", "ws://")).into_client_request().expect("request");
        request.headers_mut().insert("Origin", "https://evil.example".parse().expect("header"));
        let err = tokio_tungstenite::connect_async(request).await.expect_err("cross-origin refused");
        assert!(err.to_string().contains("403"), "{err}");
    });
    assert_eq!(ureq::get(&format!("{}/healthz", daemon.api)).call().expect("alive").status(), 200);
}

#[test]
fn auth_token_guards_api_and_stream() {
    let daemon = Daemon::start(&["--no-xdp", "--auth-token", "s3cret"]);
    let stats = format!("{}/api/stats", daemon.api);
    assert!(matches!(ureq::get(&stats).call(), Err(ureq::Error::Status(401, _))));
    assert!(matches!(ureq::get(&stats).set("Authorization", "Bearer wrong").call(), Err(ureq::Error::Status(401, _))));
    let ok: Value =
        ureq::get(&stats).set("Authorization", "Bearer s3cret").call().expect("authorised").into_json().expect("json");
    assert!(ok["viewers"].is_array(), "authorised viewers see the viewer list");
    assert_eq!(ureq::get(&format!("{}/healthz", daemon.api)).call().expect("open").status(), 200);
    assert_eq!(ureq::get(&format!("{}/", daemon.api)).call().expect("page is static").status(), 200);
    runtime().block_on(async {
        let ws = daemon.api.replace("http://", "ws://");
        let err = tokio_tungstenite::connect_async(format!("{ws}/ws")).await.expect_err("no token");
        assert!(err.to_string().contains("401"), "{err}");
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws}/ws?token=s3cret")).await.expect("token");
        assert_eq!(next_frame(&mut ws).await["type"], "snapshot");
    });

    let out = run_daemon_to_exit(&["--no-xdp", "--listen", "0.0.0.0:0", "--syslog-udp", "none"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--auth-token"), "{err}");
}

#[test]
fn tls_serves_the_api_over_https() {
    let dir = std::env::temp_dir().join(format!("monitor-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (cert_s, key_s) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    support::must(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key_s,
            "-out",
            &cert_s,
        ],
    );
    let mut daemon = Daemon::spawn(&["--no-xdp", "--tls-cert", &cert_s, "--tls-key", &key_s]);
    let https = daemon.api.replace("http://", "https://");
    let body = poll("the daemon to answer over HTTPS", WAIT, || {
        let out = std::process::Command::new("curl")
            .args(["-sf", "--cacert", &cert_s, &format!("{https}/api/stats")])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let stats: Value = serde_json::from_str(&body).expect("JSON over HTTPS");
    assert_eq!(stats["schema"], 1);
    // Plain HTTP to the TLS port gets no answer, and the daemon stays up.
    assert!(ureq::get(&format!("{}/healthz", daemon.api)).call().is_err());
    let out = std::process::Command::new("curl")
        .args(["-sf", "--cacert", &cert_s, &format!("{https}/healthz")])
        .output()
        .expect("curl");
    assert!(out.status.success());
    daemon.stop();

    // A key that does not match the certificate is a clear start-up error.
    let other = dir.join("other.pem");
    support::must(
        "openssl",
        &["genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", &other.to_string_lossy()],
    );
    let out = run_daemon_to_exit(&["--no-xdp", "--tls-cert", &cert_s, "--tls-key", &other.to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate and key do not go together"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
