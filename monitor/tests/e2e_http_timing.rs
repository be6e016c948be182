//! HTTP response timing end to end: a real HTTP server on the root side of
//! a veth the test creates, real curl requests from the namespace, the XDP
//! program on its ingress and the TC classifier on its egress. The daemon
//! must report every matched response with its status class, a latency no
//! lower than the server's known delay, and a per-path breakdown.
//!
//! Timing assertions are lower bounds only (the server sleeps); never upper.

mod support;

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use support::{poll, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);
const SLOW_MS: u64 = 50;

/// Answers /slow after SLOW_MS and /d/N after N ms with 200, anything else
/// at once with 404.
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
                let delay = if path.starts_with("/slow") {
                    Some(SLOW_MS)
                } else {
                    path.strip_prefix("/d/").and_then(|ms| ms.parse().ok())
                };
                let reply: &[u8] = if let Some(ms) = delay {
                    std::thread::sleep(Duration::from_millis(ms));
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

/// The percentiles the daemon reports are within the documented bound of
/// the latencies seen on the wire: tcpdump on the server's veth timestamps
/// each request arriving and its response leaving.
#[test]
fn percentiles_match_the_wire_within_the_stated_bound() {
    let net = TestNet::new();
    let listener = TcpListener::bind((net.host_v4.as_str(), 0)).expect("bind on the test veth");
    let port = listener.local_addr().expect("addr").port();
    spawn_server(listener);
    let capture = std::env::temp_dir().join(format!("monitor-wire-{}-{port}.pcap", std::process::id()));
    let mut tcpdump = start_capture(&net.host_if, port, &capture);
    let daemon =
        Daemon::start(&["--iface", &net.host_if, "--http-ports", &port.to_string(), "--events-per-source", "0"]);
    // Ten responses: p50 falls among the 10 ms ones, p90 at 50 ms, p99 at 200 ms.
    let delays = [10, 10, 10, 10, 10, 10, 50, 50, 50, 200];
    for ms in delays {
        net.exec_ok(&["curl", "-s", "-m", "10", &format!("http://{}:{port}/d/{ms}", net.host_v4)]);
    }
    let http = poll("ten timed responses", WAIT, || {
        let http = daemon.get_json("/api/http");
        (http["kernel"]["responses_matched"] == delays.len()).then_some(http)
    });
    // tcpdump writes each packet as it reads it (-U): wait for the last.
    let wire = poll("every request and response in the capture", WAIT, || {
        let wire = wire_latencies_ns(&std::fs::read(&capture).unwrap_or_default(), port);
        (wire.len() == delays.len()).then_some(wire)
    });
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    let _ = std::fs::remove_file(&capture);
    for (q, key) in [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")] {
        let truth = percentile(&wire, q) as f64 / 1e6;
        let reported = http["since_start"][key].as_f64().expect("percentile");
        assert!((reported - truth).abs() <= truth * 0.03, "{key}: reported {reported} ms, on the wire {truth} ms");
    }
}

/// tcpdump on `iface` (a veth the test made) for TCP port `port`, nanosecond
/// timestamps, running once it says it listens.
fn start_capture(iface: &str, port: u16, file: &std::path::Path) -> Child {
    let mut child = Command::new("tcpdump")
        .args(["-i", iface, "-n", "-U", "--time-stamp-precision=nano", "-w"])
        .arg(file)
        .args(["tcp", "port", &port.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump (./setup.sh --tests installs it)");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening on"));
    assert!(listening, "tcpdump did not start");
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Request-in to first-response-out times per connection, from a
/// nanosecond pcap of Ethernet frames carrying IPv4 TCP.
fn wire_latencies_ns(pcap: &[u8], port: u16) -> Vec<u64> {
    if pcap.len() < 24 || pcap[..4] != 0xa1b2_3c4d_u32.to_le_bytes() {
        return Vec::new(); // not (yet) a nanosecond pcap
    }
    let mut requests = HashMap::new();
    let mut latencies = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let word = |i: usize| u64::from(u32::from_le_bytes(pcap[at + i..at + i + 4].try_into().expect("4 bytes")));
        let ts = word(0) * 1_000_000_000 + word(4);
        let len = word(8) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + len) else { break }; // a record still being written
        at += 16 + len;
        let Some((src_port, dst_port, payload)) = tcp_payload(frame) else { continue };
        if dst_port == port && payload.starts_with(b"GET ") {
            requests.insert(src_port, ts);
        } else if src_port == port && payload.starts_with(b"HTTP/1.") {
            if let Some(start) = requests.remove(&dst_port) {
                latencies.push(ts - start);
            }
        }
    }
    latencies.sort_unstable();
    latencies
}

fn tcp_payload(frame: &[u8]) -> Option<(u16, u16, &[u8])> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 || *ip.get(9)? != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let tcp = ip.get(ihl..total)?;
    let data_offset = usize::from(tcp.get(12)? >> 4) * 4;
    Some((u16::from_be_bytes([tcp[0], tcp[1]]), u16::from_be_bytes([tcp[2], tcp[3]]), tcp.get(data_offset..)?))
}

/// The same rank rule as the daemon: the ceil(q * n)-th smallest.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
