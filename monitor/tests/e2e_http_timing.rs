//! HTTP response timing end to end: a real HTTP server on the root side of
//! a veth the test creates, real curl requests from the namespace, the XDP
//! program on its ingress and the TC classifier on its egress. The daemon
//! must report every matched response with its status class, a latency no
//! lower than the server's known delay, and a per-path breakdown.
//!
//! Timing assertions are lower bounds only (the server sleeps); never upper.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    time::Duration,
};

use serde_json::Value;
use support::{poll, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);
const SLOW_MS: u64 = 50;

/// Answers /slow after SLOW_MS with 200, anything else at once with 404.
fn spawn_server(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let reply: &[u8] = if path.starts_with("/slow") {
                    std::thread::sleep(Duration::from_millis(SLOW_MS));
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow"
                } else {
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = conn.write_all(reply);
            });
        }
    });
}

fn slowest<'a>(http: &'a Value, list: &str, key: &str, name: &str) -> Option<&'a Value> {
    http[list].as_array()?.iter().find(|p| p[key] == name)
}

#[test]
fn responses_are_timed_with_status_classes_and_per_path_breakdown() {
    let net = TestNet::new();
    let listener = TcpListener::bind((net.host_v4.as_str(), 0)).expect("bind on the test veth");
    let port = listener.local_addr().expect("addr").port().to_string();
    spawn_server(listener);
    let daemon = Daemon::start(&["--iface", &net.host_if, "--http-ports", &port, "--events-per-source", "0"]);
    let stats = daemon.stats();
    assert_eq!(stats["http"]["enabled"], true, "{}\n{}", stats["http"], daemon.log_text());
    assert_eq!(stats["http"]["interfaces"][0], net.host_if.as_str());

    for _ in 0..3 {
        let body = net.exec_ok(&["curl", "-s", "-m", "10", &format!("http://{}:{port}/slow?n=1", net.host_v4)]);
        assert_eq!(body, "slow");
    }
    for _ in 0..2 {
        let code = net.exec_ok(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "10",
            &format!("http://{}:{port}/missing", net.host_v4),
        ]);
        assert_eq!(code, "404");
    }

    let http = poll("five timed responses and their breakdown", WAIT, || {
        let http = daemon.get_json("/api/http");
        let matched = http["kernel"]["responses_matched"].as_u64().unwrap_or(0);
        let slow = slowest(&http, "slowest_paths", "path", "/slow").and_then(|p| p["events"].as_u64());
        let missing = slowest(&http, "slowest_paths", "path", "/missing").and_then(|p| p["events"].as_u64());
        (matched >= 5 && slow == Some(3) && missing == Some(2)).then_some(http)
    });
    let k = &http["kernel"];
    assert_eq!(k["responses_matched"], 5, "{http}");
    assert_eq!(k["requests_recorded"], 5, "{http}");
    assert_eq!(k["responses_unmatched"], 0, "{http}");
    let since = &http["since_start"];
    assert_eq!(since["responses"], 5);
    assert_eq!(since["status"]["2xx"], 3);
    assert_eq!(since["status"]["4xx"], 2);
    assert_eq!(since["status"]["5xx"], 0);
    // Three of five took at least SLOW_MS: the median and above are slow
    // (percentiles are bucket middles, within 1/64 of the true value).
    for p in ["p50_ms", "p90_ms", "p99_ms"] {
        assert!(since[p].as_f64().unwrap_or(0.0) >= SLOW_MS as f64 * 63.0 / 64.0, "{p}: {since}");
    }
    assert!(since["mean_ms"].as_f64().unwrap_or(0.0) >= (3 * SLOW_MS) as f64 / 5.0, "{since}");

    let slow = slowest(&http, "slowest_paths", "path", "/slow").expect("/slow");
    assert!(slow["mean_ms"].as_f64().unwrap_or(0.0) >= SLOW_MS as f64, "{slow}");
    assert_eq!(slow["status"]["2xx"], 3);
    let missing = slowest(&http, "slowest_paths", "path", "/missing").expect("/missing");
    assert_eq!(missing["status"]["4xx"], 2);
    assert_eq!(http["slowest_paths"][0]["path"], "/slow", "slowest first: {http}");
    let host = format!("{}:{port}", net.host_v4);
    let by_host = slowest(&http, "slowest_hosts", "host", &host).expect("host breakdown");
    assert_eq!(by_host["responses"], 5);

    // The response events in the feed.
    let events = daemon.events();
    let responses: Vec<&Value> = events.iter().filter(|e| e["response"].is_object()).collect();
    assert_eq!(responses.len(), 5, "{responses:?}");
    let slow_events: Vec<&&Value> = responses.iter().filter(|e| e["http"]["target"] == "/slow?n=1").collect();
    assert_eq!(slow_events.len(), 3);
    for e in &slow_events {
        assert_eq!(e["class"], "http");
        assert_eq!(e["src"], net.ns_v4.as_str(), "src is the client");
        assert_eq!(e["dst"], net.host_v4.as_str());
        assert_eq!(e["response"]["status"], 200);
        assert!(e["response"]["latency_ms"].as_f64().unwrap_or(0.0) >= SLOW_MS as f64, "{e}");
        let detail = e["detail"].as_str().unwrap_or("");
        assert!(detail.starts_with("200 OK in ") && detail.ends_with(" ms (GET /slow?n=1)"), "{detail}");
    }
    // Response events do not count as packets a second time.
    let stats = daemon.stats();
    let weighted_http = stats["events"]["xdp_packets_by_class"]["http"].as_u64().unwrap_or(0);
    let counted_http = stats["kernel"]["classes"]["http"]["packets"].as_u64().unwrap_or(0);
    assert!(weighted_http <= counted_http, "{weighted_http} > {counted_http}");
    assert_eq!(stats["http"]["kernel"]["responses_matched"], 5, "the same document in /api/stats");

    let metrics = ureq::get(&format!("{}/metrics", daemon.api)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains("monitor_http_responses_total{class=\"2xx\"} 3"), "{metrics}");
    assert!(metrics.contains("monitor_http_responses_total{class=\"4xx\"} 2"), "{metrics}");
    assert!(metrics.contains("monitor_http_response_seconds_count 5"), "{metrics}");
    assert!(metrics.contains("monitor_http_response_seconds_bucket{le=\"+Inf\"} 5"), "{metrics}");
}

#[test]
fn no_http_timing_flag_and_namespaces() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--no-http-timing"]);
    let http = daemon.get_json("/api/http");
    assert_eq!(http["enabled"], false);
    assert!(http["errors"][0].as_str().unwrap_or("").contains("--no-http-timing"), "{http}");
    assert!(net.host_if_has_xdp(), "the XDP path is unaffected");
    drop(daemon);

    // Attached from inside the namespace, like XDP.
    let daemon = Daemon::start(&["--netns", &net.ns, "--iface", &net.ns_if]);
    let http = daemon.get_json("/api/http");
    assert_eq!(http["enabled"], true, "{http}\n{}", daemon.log_text());
    assert_eq!(http["interfaces"][0], net.ns_if.as_str());

    let out = support::run_daemon_to_exit(&["--no-xdp", "--syslog-udp", "none", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--no-http-timing"));
}
