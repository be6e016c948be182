//! The daemon with the real XDP program attached to a veth the test creates:
//! real `ping` (IPv4 and IPv6) and a real HTTP request (curl) from a
//! namespace reach the daemon's API with exact counts.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    time::Duration,
};

use serde_json::Value;
use support::{poll, run_daemon_to_exit, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);

fn kernel_packets(stats: &Value, class: &str) -> u64 {
    stats["kernel"]["classes"][class]["packets"].as_u64().unwrap_or(0)
}

fn echo_requests(events: &[Value], src: &str, icmp_type: u64) -> Vec<u64> {
    let mut seqs: Vec<u64> = events
        .iter()
        .filter(|e| e["src"] == src && e["icmp"]["type"] == icmp_type)
        .filter_map(|e| e["icmp"]["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs
}

#[test]
fn ping_v4_and_v6_are_counted_exactly_and_streamed() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--events-per-source", "0"]);
    assert!(net.host_if_has_xdp());

    net.exec_ok(&["ping", "-c", "5", "-i", "0.2", "-W", "1", &net.host_v4]);
    net.exec_ok(&["ping", "-6", "-c", "4", "-i", "0.2", "-W", "1", &net.host_v6]);

    let events = poll("all echo requests to arrive as events", WAIT, || {
        let events = daemon.events();
        (echo_requests(&events, &net.ns_v4, 8).len() == 5 && echo_requests(&events, &net.ns_v6, 128).len() == 4)
            .then_some(events)
    });
    assert_eq!(echo_requests(&events, &net.ns_v4, 8), [1, 2, 3, 4, 5]);
    assert_eq!(echo_requests(&events, &net.ns_v6, 128), [1, 2, 3, 4]);
    let first = events.iter().find(|e| e["src"] == net.ns_v4.as_str()).expect("v4 event");
    assert_eq!(first["class"], "icmp");
    assert_eq!(first["dst"], net.host_v4.as_str());
    assert_eq!(first["origin"]["kind"], "xdp");
    assert_eq!(first["origin"]["iface"], net.host_if.as_str());
    assert!(first["detail"].as_str().unwrap_or("").contains("echo request"), "{first}");

    // IPv4 ICMP on this link is only our pings: the kernel count is exact.
    let stats = poll("the counters to refresh", WAIT, || {
        let s = daemon.stats();
        (kernel_packets(&s, "icmp") >= 5 && kernel_packets(&s, "icmpv6") >= 4).then_some(s)
    });
    assert_eq!(kernel_packets(&stats, "icmp"), 5);
    assert!(kernel_packets(&stats, "icmpv6") >= 4, "echo requests plus neighbour discovery");
}

#[test]
fn http_request_is_seen_with_its_request_line() {
    let net = TestNet::new();
    let listener = TcpListener::bind((net.host_v4.as_str(), 0)).expect("bind on the test veth");
    let port = listener.local_addr().expect("addr").port().to_string();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let daemon = Daemon::start(&["--iface", &net.host_if, "--http-ports", &port, "--events-per-source", "0"]);

    let url = format!("http://{}:{port}/hello/world?x=1", net.host_v4);
    let body = net.exec_ok(&["curl", "-s", "-m", "10", &url]);
    assert_eq!(body, "ok");
    server.join().expect("server thread");

    // The request as XDP saw it (the timed response, from the TC ring, may
    // arrive first and carries the same method).
    let is_request = |e: &&Value| e["http"]["method"] == "GET" && e.get("response").is_none();
    let events = poll("the GET event", WAIT, || {
        let events = daemon.events();
        events.iter().any(|e| is_request(&e)).then_some(events)
    });
    let get = events.iter().find(is_request).expect("GET");
    assert_eq!(get["class"], "http");
    assert_eq!(get["http"]["target"], "/hello/world?x=1");
    assert_eq!(get["src"], net.ns_v4.as_str());
    assert_eq!(get["detail"], format!("GET /hello/world?x=1 (host {}:{port})", net.host_v4));
    let syns = events
        .iter()
        .filter(|e| e["class"] == "http" && e["tcp_flags"].as_u64().is_some_and(|f| f & 0x02 != 0))
        .count();
    assert_eq!(syns, 1, "one connection, one SYN event");
    poll("the HTTP packets to be counted", WAIT, || (kernel_packets(&daemon.stats(), "http") >= 4).then_some(()));
}

#[test]
fn sampling_accounting_adds_up_under_a_flood() {
    let net = TestNet::new();
    let daemon = Daemon::start(&["--iface", &net.host_if, "--events-per-source", "50"]);
    net.exec_ok(&["ping", "-f", "-c", "3000", "-q", &net.host_v4]);

    let stats = poll("the kernel to have counted the flood", WAIT, || {
        let s = daemon.stats();
        (kernel_packets(&s, "icmp") == 3000).then_some(s)
    });
    let p = &stats["kernel"]["pipeline"];
    let n = |k: &str| p[k].as_u64().unwrap_or(0);
    // Eligible: the 3000 echo requests plus any IPv6 neighbour discovery.
    assert!(n("event_eligible") >= 3000, "every echo request is eligible: {p}");
    assert_eq!(
        n("event_submitted") + n("suppressed_source") + n("suppressed_global") + n("ring_full"),
        n("event_eligible"),
        "every eligible packet is submitted, suppressed or dropped: {p}"
    );
    assert!(n("suppressed_source") > 0, "a 3000-packet flood exceeds 50 events/s: {p}");
    // Every submitted event reaches the daemon, and the weights it carries
    // never claim more packets than were counted.
    // Compared within one snapshot: neighbour discovery may still add events.
    let received = poll("the daemon to receive every submitted event", WAIT, || {
        let s = daemon.stats();
        let got = s["events"]["received"].as_u64().unwrap_or(0);
        (got == s["kernel"]["pipeline"]["event_submitted"].as_u64().unwrap_or(0)).then_some(s)
    });
    let weighted = received["events"]["xdp_packets_by_class"]["icmp"].as_u64().unwrap_or(0);
    assert!((50..=3000).contains(&weighted), "weights {weighted} claim more than was counted");
}

#[test]
fn detaches_on_sigterm_and_when_killed() {
    let net = TestNet::new();
    let mut daemon = Daemon::start(&["--iface", &net.host_if]);
    assert!(net.host_if_has_xdp());
    assert!(daemon.stop().success(), "clean exit:\n{}", daemon.log_text());
    assert!(!net.host_if_has_xdp(), "SIGTERM must detach");

    let mut daemon = Daemon::start(&["--iface", &net.host_if]);
    assert!(net.host_if_has_xdp());
    daemon.kill();
    poll("the kernel to release the bpf_link of a killed daemon", WAIT, || (!net.host_if_has_xdp()).then_some(()));
}

#[test]
fn startup_errors_are_clear() {
    let out = run_daemon_to_exit(&["--iface", "no-such-if0", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown interface \"no-such-if0\""), "{err}");

    let net = TestNet::new();
    let _first = Daemon::start(&["--iface", &net.host_if]);
    let out = run_daemon_to_exit(&["--iface", &net.host_if, "--listen", "127.0.0.1:0", "--syslog-udp", "none"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already carries another XDP program"), "{err}");

    let out = run_daemon_to_exit(&["--ring-bytes", "1000", "--iface", &net.host_if, "--listen", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--ring-bytes 1000 must be a power of two"), "{err}");

    let out = run_daemon_to_exit(&["--http-ports", "80,99999"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("invalid port list"), "{err}");
}

#[test]
fn attaches_inside_another_network_namespace() {
    let net = TestNet::new();
    // The namespace end of the veth; the pings go the other way, into it.
    let daemon = Daemon::start(&["--netns", &net.ns, "--iface", &net.ns_if, "--events-per-source", "0"]);
    let xdp = support::must("ip", &["-n", &net.ns, "-d", "link", "show", &net.ns_if]);
    assert!(xdp.contains("prog/xdp"), "{xdp}");
    support::must("ping", &["-c", "3", "-i", "0.2", "-W", "1", &net.ns_v4]);
    let events = poll("the pings into the namespace", WAIT, || {
        let events = daemon.events();
        (echo_requests(&events, &net.host_v4, 8).len() == 3).then_some(events)
    });
    let first = events.iter().find(|e| e["src"] == net.host_v4.as_str()).expect("event");
    assert_eq!(first["origin"]["iface"], net.ns_if.as_str());

    let out = run_daemon_to_exit(&["--netns", "montest-does-not-exist", "--iface", "lo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot enter network namespace"), "{err}");
}
