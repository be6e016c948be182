//! The classic syslog path with the real parts: an iptables LOG rule in a
//! namespace the test creates, the kernel log, a real `rsyslogd` started in
//! the foreground with the test's own configuration, UDP into the daemon.
//! Also `logger` (RFC 3164 and RFC 5424, UDP and TCP) as a second real
//! sender, and bad input that must be counted, never fatal.

mod support;

use std::{
    net::UdpSocket,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use support::{free_tcp_port, free_udp_port, must, poll, try_poll, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);

/// A documentation address (RFC 5737): only ever text inside a log line.
const LOGGED_SRC: &str = "203.0.113.7";

fn syslog_events<'a>(events: &'a [Value], src: &str, icmp_id: u64) -> Vec<&'a Value> {
    let mut found: Vec<&Value> = events
        .iter()
        .filter(|e| e["origin"]["kind"] == "syslog" && e["src"] == src && e["icmp"]["id"] == icmp_id)
        .collect();
    found.sort_by_key(|e| e["icmp"]["seq"].as_u64());
    found
}

fn seqs(events: &[&Value]) -> Vec<u64> {
    events.iter().filter_map(|e| e["icmp"]["seq"].as_u64()).collect()
}

/// An ICMP id that earlier runs' kernel log lines will not share.
fn fresh_icmp_id() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos());
    (nanos % 60_000) as u16 + 1_000
}

/// Sets a sysctl for the life of the guard, then puts the old value back.
struct Sysctl {
    key: &'static str,
    old: String,
}

impl Sysctl {
    fn set(key: &'static str, value: &str) -> Sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let old = std::fs::read_to_string(&path).expect("read sysctl").trim().to_owned();
        std::fs::write(&path, value).expect("write sysctl");
        Sysctl { key, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(format!("/proc/sys/{}", self.key.replace('.', "/")), &self.old);
    }
}

/// rsyslogd in the foreground with its own configuration, pid file and work
/// directory, so it neither needs nor disturbs a system rsyslog.
struct Rsyslogd {
    child: Child,
    dir: PathBuf,
}

impl Rsyslogd {
    fn forwarding_to(port: u16) -> Rsyslogd {
        let dir = std::env::temp_dir().join(format!("monitor-rsyslog-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("rsyslog dir");
        // imkmsg reads /dev/kmsg, where every reader gets every line (imklog's
        // /proc/kmsg would race a system rsyslog). The rule is the one
        // `setup.sh syslog-forwarding` installs.
        let conf = format!(
            "global(workDirectory=\"{dir}\" processInternalMessages=\"on\")\n\
             module(load=\"imkmsg\")\n\
             if ($programname == \"kernel\" and ($msg contains \"IPT_ICMP \" or $msg contains \"IPT_ICMP6 \")) then {{\n\
             \x20   action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"udp\")\n\
             \x20   stop\n\
             }}\n\
             if $programname == \"rsyslogd\" then {{\n\
             \x20   action(type=\"omfile\" file=\"{dir}/rsyslogd.log\")\n\
             }}\n\
             stop\n",
            dir = dir.display()
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("rsyslog.conf");
        let check = Command::new("rsyslogd").args(["-N1", "-f"]).arg(&conf_path).output().expect("rsyslogd -N1");
        assert!(check.status.success(), "rsyslog rejects the config: {}", String::from_utf8_lossy(&check.stderr));
        // imkmsg gives up on /dev/kmsg ("cannot open kernel log: Broken
        // pipe") when the kernel's ring wraps while it reads the backlog, as
        // a small ring does under other logging: start again then.
        for attempt in 1..=3 {
            let mut child = Command::new("rsyslogd")
                .arg("-n")
                .arg("-f")
                .arg(&conf_path)
                .arg("-i")
                .arg(dir.join("rsyslogd.pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start rsyslogd (apt-get install rsyslog; setup.sh does)");
            let started = poll("rsyslogd to log its start", Duration::from_secs(10), || {
                let log = own_log(&dir);
                log.contains("] start").then_some(log)
            });
            if !started.contains("imkmsg:") || attempt == 3 {
                return Rsyslogd { child, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(dir.join("rsyslogd.log"));
        }
        unreachable!("the last attempt returns")
    }

    /// Running, or how it ended and what it said.
    fn state(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => format!("running; its own log: {}", self.own_log()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                format!("exited ({status}): {err}; its own log: {}", self.own_log())
            }
            Err(e) => format!("unknown: {e}"),
        }
    }

    fn own_log(&self) -> String {
        own_log(&self.dir)
    }
}

/// What rsyslogd logged about itself (start, errors, suspended actions).
fn own_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("rsyslogd.log")).unwrap_or_else(|e| format!("(none: {e})"))
}

/// Kernel log records (all of /dev/kmsg that is still buffered) containing
/// any of `needles`: tells a line the kernel never logged from one that
/// rsyslog or the daemon lost.
fn kernel_log_lines(needles: &[&str]) -> Vec<String> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let Ok(mut kmsg) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg") else {
        return vec!["(cannot open /dev/kmsg)".to_owned()];
    };
    let mut found = Vec::new();
    let mut record = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let line = String::from_utf8_lossy(&record[..n]);
                if needles.iter().any(|needle| line.contains(needle)) {
                    found.push(line.trim_end().to_owned());
                }
            }
            // EPIPE: a record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    found
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn iptables_log_through_rsyslog_becomes_events_next_to_the_xdp_counts() {
    let net = TestNet::new();
    let _log_in_netns = Sysctl::set("net.netfilter.nf_log_all_netns", "1");
    for (tool, proto, kind, prefix) in
        [("iptables", "icmp", "echo-request", "IPT_ICMP "), ("ip6tables", "ipv6-icmp", "echo-request", "IPT_ICMP6 ")]
    {
        let (type_flag, log_prefix) =
            if tool == "iptables" { ("--icmp-type", prefix) } else { ("--icmpv6-type", prefix) };
        net.exec_ok(&[tool, "-I", "INPUT", "1", "-p", proto, type_flag, kind, "-j", "LOG", "--log-prefix", log_prefix]);
    }
    // The XDP observer on the same interface, for "XDP saw N, iptables logged M".
    let daemon = Daemon::start(&["--netns", &net.ns, "--iface", &net.ns_if, "--events-per-source", "0"]);
    let mut rsyslogd = Rsyslogd::forwarding_to(daemon.syslog_port);

    let id = fresh_icmp_id();
    let (id4, id6) = (id.to_string(), (id + 1).to_string());
    must("ping", &["-c", "3", "-i", "0.2", "-W", "1", "-e", &id4, &net.ns_v4]);
    must("ping", &["-6", "-c", "2", "-i", "0.2", "-W", "1", "-e", &id6, &net.ns_v6]);

    let events = try_poll(WAIT, || {
        let events = daemon.events();
        (syslog_events(&events, &net.host_v4, u64::from(id)).len() >= 3
            && syslog_events(&events, &net.host_v6, u64::from(id) + 1).len() >= 2)
            .then_some(events)
    })
    .unwrap_or_else(|| {
        let events = daemon.events();
        panic!(
            "timed out waiting for the logged pings to arrive through rsyslog.\n\
             kernel log lines with ID={id}/{}: {:#?}\nrsyslogd: {}\nsyslog events seen: v4 {:?}, v6 {:?}\ndaemon syslog stats: {}",
            id + 1,
            kernel_log_lines(&[&format!("ID={id} SEQ="), &format!("ID={} SEQ=", id + 1)]),
            rsyslogd.state(),
            seqs(&syslog_events(&events, &net.host_v4, u64::from(id))),
            seqs(&syslog_events(&events, &net.host_v6, u64::from(id) + 1)),
            daemon.stats()["syslog"],
        )
    });
    let v4 = syslog_events(&events, &net.host_v4, u64::from(id));
    let v6 = syslog_events(&events, &net.host_v6, u64::from(id) + 1);
    assert_eq!(seqs(&v4), [1, 2, 3]);
    assert_eq!(seqs(&v6), [1, 2]);
    let e = v4[0];
    assert_eq!(e["class"], "icmp");
    assert_eq!(e["dst"], net.ns_v4.as_str());
    assert_eq!(e["icmp"]["type"], 8);
    assert_eq!(e["len"], 84, "LEN= of a default ping");
    assert_eq!(e["origin"]["prefix"], "IPT_ICMP");
    assert_eq!(e["origin"]["sender"], "127.0.0.1");
    assert!(e["origin"]["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
    assert!(e["detail"].as_str().unwrap_or("").contains("echo request"), "{e}");
    assert_eq!(v6[0]["class"], "icmpv6");
    assert_eq!(v6[0]["icmp"]["type"], 128);
    assert_eq!(v6[0]["origin"]["prefix"], "IPT_ICMP6");

    // Both paths saw the same three echo requests from this source.
    let lookup = poll("per-source counts from both paths", WAIT, || {
        let l = daemon.get_json(&format!("/api/lookup/{}", net.host_v4));
        (l["kernel"]["icmp"]["packets"] == 3 && l["seen"]["syslog_packets"].as_u64() >= Some(3)).then_some(l)
    });
    assert_eq!(lookup["kernel"]["icmp"]["packets"], 3, "{lookup}");
    // The counters are in the next once-a-second snapshot.
    poll("the syslog counters in /api/stats", WAIT, || {
        let syslog = daemon.stats()["syslog"].clone();
        (syslog["accepted_by_sender"]["127.0.0.1"].as_u64() >= Some(5)).then_some(())
    });
}

fn iptables_line(seq: u32, id: u16) -> String {
    format!(
        "IPT_ICMP IN=ens3 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={LOGGED_SRC} \
         DST=192.0.2.1 LEN=84 TOS=0x00 PREC=0x00 TTL=57 ID=4242 DF PROTO=ICMP TYPE=8 CODE=0 ID={id} SEQ={seq}"
    )
}

#[test]
fn logger_rfc3164_and_rfc5424_over_udp_and_tcp() {
    let tcp_port = free_tcp_port();
    let daemon = Daemon::start(&["--no-xdp", "--syslog-tcp", &format!("127.0.0.1:{tcp_port}")]);
    let (udp, tcp) = (daemon.syslog_port.to_string(), tcp_port.to_string());
    let id = fresh_icmp_id();
    let sends: [(&[&str], u32); 5] = [
        (&["--udp", "--port", &udp, "--rfc3164"], 1),
        (&["--udp", "--port", &udp, "--rfc5424"], 2),
        (&["--tcp", "--port", &tcp, "--rfc3164"], 3),
        (&["--tcp", "--port", &tcp, "--rfc5424", "--octet-count"], 4),
        (&["--tcp", "--port", &tcp, "--rfc5424"], 5),
    ];
    for (how, seq) in sends {
        let line = iptables_line(seq, id);
        let mut args = vec!["--server", "127.0.0.1", "-t", "kernel", "-p", "kern.warning"];
        args.extend_from_slice(how);
        args.push(&line);
        must("logger", &args);
    }
    let events = poll("every logger line as an event", WAIT, || {
        let events = daemon.events();
        (syslog_events(&events, LOGGED_SRC, u64::from(id)).len() == 5).then_some(events)
    });
    let found = syslog_events(&events, LOGGED_SRC, u64::from(id));
    assert_eq!(seqs(&found), [1, 2, 3, 4, 5]);
    for e in &found {
        assert_eq!(e["class"], "icmp");
        assert_eq!(e["dst"], "192.0.2.1");
        assert_eq!(e["geo"]["label"], "documentation");
        assert_eq!(e["origin"]["sender"], "127.0.0.1");
    }
}

#[test]
fn bad_input_is_counted_and_never_fatal() {
    let outside_port = free_udp_port();
    let net = TestNet::new();
    // Trust only loopback; the namespace's address is outside the allowlist.
    let daemon = Daemon::start(&[
        "--no-xdp",
        "--syslog-udp",
        &format!("0.0.0.0:{outside_port}"),
        "--syslog-allow",
        "127.0.0.0/8",
    ]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let target = format!("127.0.0.1:{}", daemon.syslog_port);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..200 {
        // xorshift: reproducible noise, invalid UTF-8 most of the time.
        let len = (state % 300) as usize + 1;
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        socket.send_to(&noise, &target).expect("send noise");
    }
    let huge = vec![b'A'; 65_507];
    socket.send_to(&huge, &target).expect("send 64 KiB");
    let id = fresh_icmp_id();
    let full = format!("<4>Nov 24 12:00:00 host kernel: {}", iptables_line(1, id));
    for cut in [10, 25, 40, 60, 90] {
        socket.send_to(&full.as_bytes()[..cut], &target).expect("send truncated");
    }
    socket.send_to(b"<4>Nov 24 12:00:00 host kernel: IPT_DROP IN=ens3 SRC=1.2.3.4", &target).expect("other prefix");
    socket.send_to(b"", &target).expect("empty");
    // From the namespace: a sender the allowlist does not trust.
    let outside = format!("<4>Nov 24 12:00:00 spoofed kernel: {}", iptables_line(9, id));
    net.exec_ok(&[
        "python3",
        "-c",
        &format!(
            "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(sys.argv[1].encode(),('{}',{outside_port}))",
            net.host_v4
        ),
        &outside,
    ]);
    // A good line last: the daemon is still parsing.
    socket.send_to(full.as_bytes(), &target).expect("send good line");

    let syslog = poll("every datagram to be counted", WAIT, || {
        let s = daemon.stats()["syslog"].clone();
        (s["received"].as_u64() >= Some(210) && s["rejected_senders"][net.ns_v4.as_str()] == 1).then_some(s)
    });
    let rejected = |reason: &str| syslog["rejected"][reason].as_u64().unwrap_or(0);
    assert_eq!(rejected("oversized"), 1, "{syslog}");
    assert_eq!(rejected("sender_not_allowed"), 1, "{syslog}");
    assert!(rejected("invalid_utf8") > 100, "{syslog}");
    assert!(rejected("no_prefix") >= 1, "{syslog}");
    let total_rejected: u64 = syslog["rejected"].as_object().expect("map").values().filter_map(Value::as_u64).sum();
    assert_eq!(syslog["accepted"].as_u64().unwrap_or(0) + total_rejected, syslog["received"].as_u64().unwrap_or(0));
    assert!(syslog["last_rejected"].as_array().is_some_and(|l| !l.is_empty() && l.len() <= 20), "{syslog}");

    let events = daemon.events();
    let good = syslog_events(&events, LOGGED_SRC, u64::from(id));
    assert_eq!(seqs(&good), [1], "only the good line became an event, never the spoofed one");
    assert_eq!(ureq::get(&format!("{}/healthz", daemon.api)).call().expect("alive").status(), 200);
}

#[test]
fn datagrams_the_kernel_drops_are_counted() {
    // The smallest receive buffer, and a daemon that cannot read (SIGSTOP):
    // the burst overflows the socket, and every datagram must still show up
    // as either received or dropped by the kernel.
    let daemon = Daemon::start(&["--no-xdp", "--syslog-rcvbuf", "65536"]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let target = format!("127.0.0.1:{}", daemon.syslog_port);
    let id = fresh_icmp_id();
    const SENT: u64 = 3_000;
    daemon.signal(libc::SIGSTOP);
    for seq in 0..SENT {
        let line = format!("<4>Nov 24 12:00:00 host kernel: {}", iptables_line(seq as u32, id));
        socket.send_to(line.as_bytes(), &target).expect("send");
    }
    daemon.signal(libc::SIGCONT);
    let syslog = poll("every datagram received or counted as dropped", WAIT, || {
        let s = daemon.stats()["syslog"].clone();
        let seen = s["received"].as_u64().unwrap_or(0) + s["socket_drops"].as_u64().unwrap_or(0);
        (seen >= SENT).then_some(s)
    });
    let (received, dropped) = (syslog["received"].as_u64().unwrap_or(0), syslog["socket_drops"].as_u64().unwrap_or(0));
    assert_eq!(received + dropped, SENT, "{syslog}");
    assert!(dropped > 0 && received > 0, "a 64 KiB buffer holds some of the burst, not all: {syslog}");
    let metrics = ureq::get(&format!("{}/metrics", daemon.api)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains(&format!("monitor_syslog_socket_drops_total {dropped}")), "{metrics}");
}
