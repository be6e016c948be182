//! Agent mode end to end (docs/agent.md): two agents, each with XDP on its
//! own veth pair and a client namespace sending pings and HTTP requests;
//! agent A forwards through a real `rsyslogd` relay (imtcp → omfwd TCP),
//! agent B straight to the central over TLS with a client certificate
//! (a throwaway CA made with openssl); the central runs without XDP.
//! Per host, the central's per-class totals must equal that agent's kernel
//! counters exactly; then faults: the relay stopped for 10 s under traffic
//! (totals exact again, what was lost reported), and agent B restarted
//! (seen as a restart, not double-counted).
//!
//! Network safety: as every test here, only the namespaces and veth pairs
//! it creates, benchmark-range addresses, and loopback between the daemons.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::StreamExt as _;
use serde_json::Value;
use support::{free_tcp_port, must, poll, Daemon, TestNet};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(40);
const CLASSES: [&str; 8] = ["icmp", "icmpv6", "http", "https", "other_ipv4", "other_ipv6", "non_ip", "malformed"];

/// A scratch directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("monitor-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Dir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway CA, the central's server certificate (localhost) and a
/// client certificate for `agent-b`.
fn make_certs(dir: &Dir) {
    let p = |n: &str| dir.path(n);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
    ca.extend(["-subj", "/CN=monitor test CA", "-days", "1", "-keyout", &ca_key, "-out", &ca_pem]);
    must("openssl", &ca);
    for (name, ext) in [
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("agent-b", "subjectAltName=DNS:agent-b\nextendedKeyUsage=clientAuth\n"),
    ] {
        let (key, csr, pem, extfile) = (
            p(&format!("{name}.key")),
            p(&format!("{name}.csr")),
            p(&format!("{name}.pem")),
            p(&format!("{name}.ext")),
        );
        std::fs::write(&extfile, ext).expect("extfile");
        let subj = format!("/CN={name}");
        let mut req = vec!["req", "-new"];
        req.extend(ec);
        req.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
        must("openssl", &req);
        must(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &extfile,
                "-out",
                &pem,
            ],
        );
    }
}

/// rsyslogd in the foreground as the agent's relay: imtcp on `listen`,
/// omfwd over TCP (octet-counted, RFC 5424) to the central's `central`
/// port: the snippet docs/rsyslog/agent-relay.conf ships, on test ports.
struct Relay {
    child: Option<Child>,
    conf: String,
    pid: String,
}

impl Relay {
    fn start(dir: &Dir, listen: u16, central: u16) -> Relay {
        let conf = dir.path("relay.conf");
        let text = format!(
            "global(workDirectory=\"{work}\" processInternalMessages=\"on\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{listen}\" ruleset=\"monitor-relay\")\n\
             ruleset(name=\"monitor-relay\") {{\n\
             \x20   action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{central}\" protocol=\"tcp\"\n\
             \x20          TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\"\n\
             \x20          action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n\
             }}\n\
             if $programname == \"rsyslogd\" then {{\n\
             \x20   action(type=\"omfile\" file=\"{work}/rsyslogd.log\")\n\
             }}\n\
             stop\n",
            work = dir.0.display()
        );
        std::fs::write(&conf, text).expect("relay.conf");
        let check = Command::new("rsyslogd").args(["-N1", "-f", &conf]).output().expect("rsyslogd -N1");
        assert!(check.status.success(), "rsyslog rejects the config: {}", String::from_utf8_lossy(&check.stderr));
        let mut relay = Relay { child: None, conf, pid: dir.path("relay.pid") };
        relay.resume();
        relay
    }

    fn resume(&mut self) {
        let child = Command::new("rsyslogd")
            .args(["-n", "-f", &self.conf, "-i", &self.pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd (apt-get install rsyslog; setup.sh does)");
        self.child = Some(child);
    }

    /// SIGKILL: what it held is lost, as in a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.pid);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP server on the root side of a test veth, answering every request.
/// The central's TLS listener on `port`: the server certificate of `dir`,
/// and client certificates from its CA required.
fn tls_listener_args(dir: &Dir, port: u16) -> Vec<String> {
    vec![
        "--syslog-tls".into(),
        format!("127.0.0.1:{port}"),
        "--syslog-tls-cert".into(),
        dir.path("server.pem"),
        "--syslog-tls-key".into(),
        dir.path("server.key"),
        "--syslog-tls-client-ca".into(),
        dir.path("ca.pem"),
    ]
}

fn http_server(addr: &str) -> u16 {
    let listener = TcpListener::bind((addr, 0)).expect("bind on the test veth");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    port
}

fn traffic(net: &TestNet, port: u16, pings: &str) {
    net.exec_ok(&["ping", "-c", pings, "-i", "0.05", "-W", "1", &net.host_v4]);
    for path in ["/a", "/b?x=1"] {
        let url = format!("http://{}:{port}{path}", net.host_v4);
        net.exec_ok(&["curl", "-s", "-o", "/dev/null", "--max-time", "5", &url]);
    }
}

fn agent_classes(agent: &Daemon) -> Vec<u64> {
    let stats = agent.stats();
    CLASSES.iter().map(|c| stats["kernel"]["classes"][c]["packets"].as_u64().unwrap_or(u64::MAX)).collect()
}

fn host<'a>(hosts: &'a Value, name: &str) -> Option<&'a Value> {
    hosts["hosts"].as_array()?.iter().find(|h| h["host"] == name)
}

fn central_classes(central: &Daemon, name: &str) -> Option<Vec<u64>> {
    let hosts = central.get_json("/api/hosts");
    let h = host(&hosts, name)?;
    Some(CLASSES.iter().map(|c| h["classes"][c]["packets"].as_u64().unwrap_or(u64::MAX)).collect())
}

/// Waits until the central's totals for `name` equal `expected()`.
fn exact(central: &Daemon, name: &str, what: &str, expected: impl Fn() -> Vec<u64>) -> Vec<u64> {
    poll(what, WAIT, || {
        let want = expected();
        (central_classes(central, name).as_ref() == Some(&want)).then_some(want)
    })
}

fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

#[test]
fn two_agents_report_exact_totals_through_a_relay_and_over_tls() {
    let (net_a, net_b) = (TestNet::new(), TestNet::new());
    let dir = Dir::new("e2e");
    make_certs(&dir);
    let (central_tcp, central_tls, relay_port) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let tcp = format!("127.0.0.1:{central_tcp}");
    let tls = tls_listener_args(&dir, central_tls);
    let mut args = vec!["--no-xdp", "--hostname", "central", "--syslog-tcp", &tcp];
    args.extend(tls.iter().map(String::as_str));
    let central = Daemon::start(&args);
    let mut relay = Relay::start(&dir, relay_port, central_tcp);
    let (port_a, port_b) = (http_server(&net_a.host_v4), http_server(&net_b.host_v4));
    let agent_a = Daemon::start(&[
        "--iface",
        &net_a.host_if,
        "--hostname",
        "agent-a",
        "--http-ports",
        &port_a.to_string(),
        "--events-per-source",
        "0",
        "--forward",
        &format!("tcp://127.0.0.1:{relay_port}"),
        "--forward-interval",
        "1s",
        // Small, so the relay's outage overflows it and drops are counted.
        "--forward-queue",
        "16",
    ]);
    let tls_target = format!("tls://localhost:{central_tls}");
    let (ca, cert, key) = (dir.path("ca.pem"), dir.path("agent-b.pem"), dir.path("agent-b.key"));
    let port_b_text = port_b.to_string();
    let args_b = [
        "--iface",
        net_b.host_if.as_str(),
        "--hostname",
        "agent-b",
        "--http-ports",
        &port_b_text,
        "--events-per-source",
        "0",
        "--forward",
        &tls_target,
        "--forward-interval",
        "1s",
        "--forward-ca",
        &ca,
        "--forward-cert",
        &cert,
        "--forward-key",
        &key,
    ];
    let mut agent_b = Daemon::start(&args_b);

    traffic(&net_a, port_a, "5");
    traffic(&net_b, port_b, "7");

    // The agents' own counters first (refreshed once a second), then the
    // central's: exact per host, whatever was sampled.
    for (agent, pings) in [(&agent_a, 5), (&agent_b, 7)] {
        poll("the agent to count its traffic", WAIT, || {
            let c = agent_classes(agent);
            (c[0] >= pings && c[2] >= 4 && c[0] != u64::MAX).then_some(())
        });
    }
    let a = exact(&central, "agent-a", "agent A's totals at the central", || agent_classes(&agent_a));
    let b = exact(&central, "agent-b", "agent B's totals at the central", || agent_classes(&agent_b));
    assert!(a[0] >= 5 && a[2] >= 4, "pings and HTTP counted on A: {a:?}");
    assert!(b[0] >= 7 && b[2] >= 4, "pings and HTTP counted on B: {b:?}");

    // Events carry their host, their origin and geo.
    let events = poll("both agents' pings as events at the central", WAIT, || {
        let events = central.events();
        let pings = |host: &str, src: &str| {
            events.iter().filter(|e| e["host"] == host && e["src"] == src && e["class"] == "icmp").count()
        };
        (pings("agent-a", &net_a.ns_v4) > 0 && pings("agent-b", &net_b.ns_v4) > 0).then_some(events)
    });
    let ping = events.iter().find(|e| e["host"] == "agent-b" && e["class"] == "icmp").expect("an event of B");
    assert_eq!(ping["origin"]["kind"], "agent", "{ping}");
    assert_eq!(ping["origin"]["iface"], net_b.host_if.as_str(), "{ping}");
    assert!(ping["geo"]["label"].is_string(), "geo on agent events: {ping}");
    assert!(
        events.iter().any(|e| e["host"] == "agent-a" && e["http"]["target"] == "/b?x=1"),
        "the request line travels"
    );

    // The host filter: API, NDJSON-compatible query, WebSocket.
    let only_b =
        central.get_json("/api/events?limit=2000&host=agent-b")["events"].as_array().cloned().unwrap_or_default();
    assert!(!only_b.is_empty() && only_b.iter().all(|e| e["host"] == "agent-b"));
    let ws_url = format!("{}/ws?host=agent-a", central.api.replace("http://", "ws://"));
    let recent = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("WebSocket connects");
        loop {
            let msg = tokio::time::timeout(WAIT, ws.next()).await.expect("a frame").expect("open").expect("frame");
            if let Message::Text(t) = msg {
                let frame: Value = serde_json::from_str(&t).expect("JSON");
                if frame["type"] == "snapshot" {
                    return frame["recent"].as_array().cloned().unwrap_or_default();
                }
            }
        }
    });
    assert!(!recent.is_empty() && recent.iter().all(|e| e["host"] == "agent-a"), "WebSocket room agent-a");
    let metrics = ureq::get(&format!("{}/metrics", central.api)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains("monitor_host_packets_total{host=\"agent-a\",class=\"icmp\"}"), "host labels");

    // Fault 1: the relay is down for 10 s under traffic.
    relay.kill();
    let flood = Command::new("ip")
        .args(["netns", "exec", &net_a.ns, "ping", "-q", "-c", "200", "-i", "0.05", "-W", "1", &net_a.host_v4])
        .stdout(Stdio::null())
        .spawn()
        .expect("ping flood");
    std::thread::sleep(Duration::from_secs(10));
    relay.resume();
    let _ = flood.wait_with_output();
    poll("the flood counted by agent A", WAIT, || (agent_classes(&agent_a)[0] >= a[0] + 200).then_some(()));
    exact(&central, "agent-a", "agent A's totals exact again after the relay's outage", || agent_classes(&agent_a));
    let hosts = poll("the outage's losses to be accounted", WAIT, || {
        let hosts = central.get_json("/api/hosts");
        let h = host(&hosts, "agent-a")?;
        let n = |k: &str| h[k].as_u64().unwrap_or(0);
        (n("dropped") + n("lost") > 0 && n("events") + n("dropped") + n("lost") == n("agent_events")).then_some(hosts)
    });
    let h = host(&hosts, "agent-a").expect("agent-a");
    assert_eq!(h["restarts"], 0, "{h}");
    assert!(h["dropped"].as_u64() > Some(0), "the overflow of the agent's queue is reported: {h}");

    // Fault 2: agent B restarts; the central counts its first run once.
    agent_b.stop();
    let before = poll("B's last counters", WAIT, || {
        std::thread::sleep(Duration::from_secs(2));
        let first = central_classes(&central, "agent-b")?;
        (central_classes(&central, "agent-b")? == first).then_some(first)
    });
    let agent_b = Daemon::start(&args_b);
    traffic(&net_b, port_b, "3");
    poll("the new agent to count its traffic", WAIT, || (agent_classes(&agent_b)[0] >= 3).then_some(()));
    exact(&central, "agent-b", "B's first run plus its second", || add(&before, &agent_classes(&agent_b)));
    let hosts = central.get_json("/api/hosts");
    let h = host(&hosts, "agent-b").expect("agent-b");
    assert_eq!(h["restarts"], 1, "{h}");
    assert_eq!(h["interfaces"][0]["name"], net_b.host_if.as_str(), "{h}");
    assert!(host(&hosts, "central").is_none(), "a central without XDP observes nothing itself");
}

/// A client certificate's names bind the HOSTNAME: a TLS sender without
/// one, or claiming another host, is refused or counted.
#[test]
fn tls_listener_requires_a_client_certificate() {
    support::require_root();
    let dir = Dir::new("tls");
    make_certs(&dir);
    let port = free_tcp_port();
    let tls = tls_listener_args(&dir, port);
    let mut args = vec!["--no-xdp"];
    args.extend(tls.iter().map(String::as_str));
    let central = Daemon::start(&args);
    let line = |host: &str| {
        format!(
            "<134>1 2026-11-30T23:00:00.000Z {host} monitor 1 counters - MONITOR_COUNTERS SEQ=1 START=1 TS=1 \
             {} SUPPRESSED=0 RING_FULL=0 EVENTS=0 DROPPED=0 IF=\n",
            CLASSES.iter().map(|c| format!("PKTS_{0}=1 BYTES_{0}=1", c.to_uppercase())).collect::<Vec<_>>().join(" ")
        )
    };
    let send = |args: &[&str], host: &str| {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{port}"), "-CAfile", &dir.path("ca.pem")])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(line(host).as_bytes());
        // s_client -quiet ignores the end of its input: it is stopped.
        std::thread::sleep(Duration::from_millis(1500));
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
    };
    let with_cert = ["-cert", &dir.path("agent-b.pem"), "-key", &dir.path("agent-b.key")];
    send(&[], "agent-b");
    send(&with_cert, "agent-x");
    send(&with_cert, "agent-b");
    let hosts = poll("agent-b's counters over TLS", WAIT, || {
        let hosts = central.get_json("/api/hosts");
        host(&hosts, "agent-b").is_some().then_some(hosts)
    });
    assert!(host(&hosts, "agent-x").is_none(), "a HOSTNAME outside the certificate: {hosts}");
    let stats = central.stats();
    assert_eq!(stats["syslog"]["rejected"]["host_not_in_certificate"], 1, "{}", stats["syslog"]);
}
