//! The SNI of ClientHellos too large for an event's own capture: real
//! `openssl s_client` hellos from a namespace to `openssl s_server` on the
//! root side of the test's veth pair (XDP attached there), spanning two TCP
//! segments, with the SNI past the event's first 256 payload bytes: in the
//! first segment of a ~1.8 kB hello, or in the second segment of a small
//! hello over a 240-byte MSS. The daemon's event must carry the SNI, and
//! the capture counters must show both segments. And a real browser's:
//! headless Chromium's hello (a post-quantum key share makes it ~1.8 kB,
//! and it permutes its extensions, so the SNI lands anywhere in it).

mod support;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use support::{free_tcp_port, must, poll, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);

/// `openssl s_server` with a throwaway self-signed certificate, listening
/// on the root side of the test's veth pair only.
struct TlsServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl TlsServer {
    fn start(addr: &str) -> TlsServer {
        let port = free_tcp_port();
        let dir = std::env::temp_dir().join(format!("monitor-tls-sni-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let (key, cert) = (key.to_str().expect("utf-8 path"), cert.to_str().expect("utf-8 path"));
        must(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=sni.test",
                "-days",
                "1",
                "-keyout",
                key,
                "-out",
                cert,
            ],
        );
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &format!("{addr}:{port}"), "-key", key, "-cert", cert])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer { child, dir, port };
        poll("openssl s_server to listen", WAIT, || std::net::TcpStream::connect((addr, port)).ok().map(|_| ()));
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An ALPN list that makes OpenSSL's hello about 1.8 kB.
fn long_alpn() -> String {
    (0..28).map(|i| format!("proto-{i:03}-{}", "x".repeat(40))).collect::<Vec<_>>().join(",")
}

/// Runs `openssl s_client` in the namespace: every cipher (which puts the
/// SNI 265 bytes into the hello) and `extra` options.
fn client_hello(net: &TestNet, server: &TlsServer, sni: &str, extra: &[&str]) {
    let connect = format!("{}:{}", net.host_v4, server.port);
    let mut args = vec![
        "timeout",
        "10",
        "openssl",
        "s_client",
        "-connect",
        &connect,
        "-servername",
        sni,
        "-cipher",
        "ALL:@SECLEVEL=0",
    ];
    args.extend_from_slice(extra);
    // The handshake's outcome does not matter: the hello is what is watched.
    let _ = net.exec(&args);
}

fn hello_counts(stats: &Value) -> Value {
    stats["kernel"]["pipeline"]["tls_hello"].clone()
}

fn count(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or(0)
}

/// The event of `src`'s ClientHello that names `sni`.
fn sni_event(daemon: &Daemon, src: &str, sni: &str) -> Option<Value> {
    daemon.events().into_iter().find(|e| e["src"] == src && e["class"] == "https" && e["tls"]["sni"] == sni)
}

fn check(daemon: &Daemon, net: &TestNet, sni: &str) {
    let event = poll(&format!("an event with SNI {sni}"), WAIT, || sni_event(daemon, &net.ns_v4, sni));
    assert_eq!(event["detail"], format!("TLS {sni}"));
    assert_eq!(event["tls"]["version"], "TLS 1.3", "supported_versions, also past the first 256 bytes");
    let counts = poll("the hello counters", WAIT, || {
        let c = hello_counts(&daemon.stats());
        (count(&c, "events_joined") >= 1).then_some(c)
    });
    assert!(count(&counts, "first_captured") >= 1, "{counts}");
    assert!(count(&counts, "next_captured") >= 1, "the hello's second segment: {counts}");
    assert!(count(&counts, "hellos_complete") >= 1, "{counts}");
    for lost in ["output_failed", "flow_insert_failed", "perf_lost", "queue_full", "malformed_samples"] {
        assert_eq!(count(&counts, lost), 0, "{lost}: {counts}");
    }
}

#[test]
fn sni_past_the_event_capture_in_a_two_segment_hello() {
    let net = TestNet::new();
    let server = TlsServer::start(&net.host_v4);
    let port = server.port.to_string();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--https-ports", &port, "--events-per-source", "0"]);
    let alpn = long_alpn();
    for i in 0..5 {
        client_hello(&net, &server, &format!("big-hello-{i}.sni.test"), &["-alpn", &alpn]);
    }
    for i in 0..5 {
        check(&daemon, &net, &format!("big-hello-{i}.sni.test"));
    }
    let counts = poll("every hello joined", WAIT, || {
        let c = hello_counts(&daemon.stats());
        (count(&c, "events_joined") >= 5).then_some(c)
    });
    assert_eq!(count(&counts, "first_captured"), 5, "{counts}");
    assert_eq!(count(&counts, "next_captured"), 5, "{counts}");
    assert_eq!(count(&counts, "hellos_complete"), 5, "{counts}");
    for none in ["hellos_incomplete", "events_without_hello", "out_of_order", "flow_expired", "segment_limit"] {
        assert_eq!(count(&counts, none), 0, "{none}: {counts}");
    }
}

#[test]
fn sni_in_the_second_segment() {
    let net = TestNet::new();
    // A 240-byte MSS: the 437-byte hello's SNI (at 265) is in its second segment.
    net.exec_ok(&["ip", "route", "replace", &format!("{}/32", net.host_v4), "dev", &net.ns_if, "mtu", "lock", "280"]);
    let server = TlsServer::start(&net.host_v4);
    let port = server.port.to_string();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--https-ports", &port, "--events-per-source", "0"]);
    client_hello(&net, &server, "second-segment.sni.test", &[]);
    check(&daemon, &net, "second-segment.sni.test");
}

#[test]
fn sni_of_a_headless_chromium_hello() {
    let net = TestNet::new();
    let server = TlsServer::start(&net.host_v4);
    let port = server.port.to_string();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--https-ports", &port, "--events-per-source", "0"]);
    let profile = server.dir.join("chromium-profile");
    let sni = "chromium.sni.test";
    // The namespace has no default route: nothing Chromium tries leaves it.
    let out = net.exec(&[
        "timeout",
        "60",
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--ignore-certificate-errors",
        &format!("--user-data-dir={}", profile.display()),
        &format!("--host-resolver-rules=MAP {sni} {}", net.host_v4),
        "--dump-dom",
        &format!("https://{sni}:{port}/"),
    ]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("s_server"), "Chromium fetched the page: {page}\n{}", String::from_utf8_lossy(&out.stderr));
    let event = poll("Chromium's hello event", WAIT, || sni_event(&daemon, &net.ns_v4, sni));
    assert_eq!(event["tls"]["version"], "TLS 1.3");
    // The counters in /api/stats are refreshed once a second.
    let counts = support::try_poll(WAIT, || {
        let c = hello_counts(&daemon.stats());
        (count(&c, "next_captured") >= 1 && count(&c, "hellos_complete") >= 1).then_some(c)
    });
    assert!(counts.is_some(), "a two-segment hello, reassembled: {}", hello_counts(&daemon.stats()));
}
