//! What the end-to-end tests share, on top of the one test kit
//! (`monitor-testkit`: namespaces, veth pairs, the daemon, polling): the
//! tests' own network layout ([`TestNet`]), the daemon the way they run it
//! ([`Daemon`]: this build's binary, debug logs), and panicking forms of the
//! kit's calls, since a test fails by panicking.
//!
//! Network safety: traffic only flows between a namespace the test creates
//! and the root-side end of its own veth pair, on benchmark-range addresses
//! (198.18.0.0/15, RFC 2544) and a ULA prefix; nothing is attached to or
//! sent on any other interface.
#![allow(dead_code, reason = "each test binary uses a different part of the support module")]

use std::{
    net::IpAddr,
    ops::{Deref, DerefMut},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use monitor_testkit::{cmd, netns, process::OnDrop, Netns, Veth, VethEnd};

/// The kit's error as a test failure.
trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for anyhow::Result<T> {
    fn or_panic(self) -> T {
        self.unwrap_or_else(|e| panic!("{e:#}"))
    }
}

pub(crate) fn require_root() {
    cmd::require_root().or_panic();
}

pub(crate) fn sh(program: &str, args: &[&str]) -> Output {
    cmd::output(program, args).or_panic()
}

/// Runs a command and panics with its output if it fails.
pub(crate) fn must(program: &str, args: &[&str]) -> String {
    cmd::run(program, args).or_panic()
}

/// Polls `check` every 100 ms until it returns Some, or panics after `limit`
/// with `what`.
pub(crate) fn poll<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    monitor_testkit::poll_until(limit, what, check).or_panic()
}

/// Polls `check` every 100 ms until it returns Some, or None after `limit`
/// (for callers that explain the failure themselves).
pub(crate) fn try_poll<T>(limit: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    monitor_testkit::try_poll(limit, check)
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace joined to the root namespace by a veth pair:
/// root side `host_if` has .1 / ::1, the namespace side has .2 / ::2.
pub(crate) struct TestNet {
    pub ns: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_v4: String,
    pub ns_v4: String,
    pub host_v6: String,
    pub ns_v6: String,
    // Drop order: the namespace (and with it the pair), then the pair's
    // explicit removal, which finds it gone.
    netns: Netns,
    veth: Veth,
}

impl TestNet {
    pub(crate) fn new() -> Self {
        require_root();
        static CLEANUP: std::sync::Once = std::sync::Once::new();
        CLEANUP.call_once(remove_stale_namespaces);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Distinct per process and per test, short enough for IFNAMSIZ.
        let tag = format!("{}{}", pid % 100_000, n);
        // Held until the addresses are assigned, so parallel tests in this
        // process never pick the same free subnet.
        static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        let subnet = free_subnet(pid.wrapping_mul(7).wrapping_add(n));
        let ns = format!("montest-{pid}-{n}");
        let (host_if, ns_if) = (format!("mh{tag}"), format!("mn{tag}"));
        let netns = Netns::create(&ns).or_panic();
        let veth = Veth::create(VethEnd::root(&host_if), VethEnd::inside(&netns, &ns_if)).or_panic();
        let net = TestNet {
            ns,
            host_if,
            ns_if,
            host_v4: format!("198.18.{subnet}.1"),
            ns_v4: format!("198.18.{subnet}.2"),
            host_v6: ula(subnet, 1),
            ns_v6: ula(subnet, 2),
            netns,
            veth,
        };
        let (host, inside) = (&net.veth.a, &net.veth.b);
        host.add_addr(&format!("{}/24", net.host_v4)).or_panic();
        host.add_addr(&format!("{}/64", net.host_v6)).or_panic();
        host.up().or_panic();
        inside.add_addr(&format!("{}/24", net.ns_v4)).or_panic();
        inside.add_addr(&format!("{}/64", net.ns_v6)).or_panic();
        inside.up().or_panic();
        net
    }

    /// Runs a command inside the namespace.
    pub(crate) fn exec(&self, args: &[&str]) -> Output {
        self.netns.output(args).or_panic()
    }

    pub(crate) fn exec_ok(&self, args: &[&str]) -> String {
        self.netns.exec(args).or_panic()
    }

    /// True if an XDP program is attached to the root-side interface.
    pub(crate) fn host_if_has_xdp(&self) -> bool {
        self.veth.a.has_xdp().or_panic()
    }
}

/// Removes the namespaces (and with them the veth pairs) of test processes
/// that were killed before their TestNet was dropped: a leftover pair would
/// hold a 198.18.x.0/24 route a later test may want.
fn remove_stale_namespaces() {
    // montest-<pid>-<n>; a name without the dash is from an older layout.
    netns::remove_orphans("montest-", |rest| {
        Some(rest.split_once('-').and_then(|(pid, _)| pid.parse().ok()).unwrap_or(0))
    });
}

/// fd6d:6f6e:<subnet>::<host> written the way the daemon writes it
/// (canonical: subnet 0 is `fd6d:6f6e::1`, not `fd6d:6f6e:0::1`).
fn ula(subnet: u32, host: u16) -> String {
    std::net::Ipv6Addr::new(0xfd6d, 0x6f6e, subnet as u16, 0, 0, 0, 0, host).to_string()
}

/// A 198.18.x.0/24 no interface holds yet, starting from `seed`.
fn free_subnet(seed: u32) -> u32 {
    let in_use = sh("ip", &["-4", "-o", "addr", "show"]);
    let in_use = String::from_utf8_lossy(&in_use.stdout);
    (0..250).map(|i| (seed + i) % 250).find(|x| !in_use.contains(&format!(" 198.18.{x}."))).unwrap_or(seed % 250)
}

pub(crate) fn free_tcp_port() -> u16 {
    monitor_testkit::ports::free_tcp_port().or_panic()
}

pub(crate) fn free_udp_port() -> u16 {
    monitor_testkit::ports::free_udp_port().or_panic()
}

/// How to run the daemon beyond its arguments.
#[derive(Clone, Debug, Default)]
pub(crate) struct Launch {
    /// RLIMIT_NOFILE (soft and hard) of the daemon, as `ulimit -n` would set it.
    pub nofile: Option<u64>,
    /// Address to listen on instead of 127.0.0.1 (a port is picked).
    pub listen_ip: Option<String>,
}

/// The kit's daemon, run the tests' way: this build's binary, debug logs,
/// killed (not stopped) when dropped. Everything else (`api`,
/// `syslog_port`, `log`, `log_text()`, `kill()`, `pid()`) is the kit's.
pub(crate) struct Daemon(monitor_testkit::Daemon);

impl Deref for Daemon {
    type Target = monitor_testkit::Daemon;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Daemon {
    /// Starts the daemon with `args` (plus --listen and --syslog-udp on free
    /// loopback ports) and waits until it answers /healthz.
    pub(crate) fn start(args: &[&str]) -> Daemon {
        Self::start_with(&Launch::default(), args)
    }

    pub(crate) fn spawn(args: &[&str]) -> Daemon {
        Self::spawn_with(&Launch::default(), args)
    }

    /// Starts the daemon as `launch` says, then waits for /healthz.
    pub(crate) fn start_with(launch: &Launch, args: &[&str]) -> Daemon {
        Daemon(builder(launch, args).start().or_panic())
    }

    /// Its log (stdout and stderr, a file: not a terminal) is `log_text()`.
    pub(crate) fn spawn_with(launch: &Launch, args: &[&str]) -> Daemon {
        Daemon(builder(launch, args).spawn().or_panic())
    }

    /// The dashboard's address (host:port).
    pub(crate) fn addr(&self) -> String {
        self.0.addr_string()
    }

    pub(crate) fn get_json(&self, path: &str) -> serde_json::Value {
        self.0.get_json(path).or_panic()
    }

    pub(crate) fn stats(&self) -> serde_json::Value {
        self.get_json("/api/stats")
    }

    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.get_json("/api/events?limit=2000")["events"].as_array().cloned().unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        self.0.stop_within(Duration::from_secs(20)).or_panic()
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the running daemon.
    pub(crate) fn signal(&self, signal: i32) {
        self.0.signal(signal).or_panic();
    }
}

fn builder(launch: &Launch, args: &[&str]) -> monitor_testkit::DaemonBuilder {
    let mut b = monitor_testkit::Daemon::builder(env!("CARGO_BIN_EXE_monitor"))
        .args(["--log", "info,monitor=debug"])
        .args(args)
        .on_drop(OnDrop::Kill);
    if let Some(ip) = &launch.listen_ip {
        b = b.listen_ip(ip.parse::<IpAddr>().unwrap_or_else(|e| panic!("listen_ip {ip}: {e}")));
    }
    if let Some(limit) = launch.nofile {
        b = b.nofile(limit);
    }
    b
}

/// GET `path` of the API at `api` as JSON, or panic saying what failed.
pub(crate) fn get_json(api: &str, path: &str) -> serde_json::Value {
    monitor_testkit::http::get_json(&format!("{api}{path}")).or_panic()
}

/// A response read off a raw socket: for requests no HTTP client library
/// would send (a foreign Host, a malformed request line, 1 MB of query).
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or panic saying what it was.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {:?}", self.status, String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `request` (bytes, as is) to `addr` on a new connection and reads
/// one response (the server closes, or Content-Length says where it ends).
/// Writing happens on its own thread, so a server that answers before it
/// has read everything is seen answering.
pub(crate) fn raw_request(addr: &str, request: &[u8]) -> RawResponse {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let request = request.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut data = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let parsed = loop {
        let read = stream.read(&mut buf);
        let eof = !matches!(read, Ok(n) if n > 0);
        if let Ok(n) = read {
            data.extend_from_slice(&buf[..n]);
        }
        if let Some(response) = parse_response(&data, eof) {
            break Some(response);
        }
        if eof {
            break None;
        }
    };
    drop(stream);
    let _ = sender.join();
    parsed.unwrap_or_else(|| panic!("no complete response from {addr}: {:?}", String::from_utf8_lossy(&data)))
}

/// One response from the start of `data`: complete when Content-Length
/// bytes of body are there, or at the end of the stream.
fn parse_response(data: &[u8], eof: bool) -> Option<RawResponse> {
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: Option<usize> = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok());
    let body = &data[head_end + 4..];
    match length {
        Some(n) if body.len() >= n => Some(RawResponse { status, headers, body: body[..n].to_vec() }),
        _ if eof => Some(RawResponse { status, headers, body: body.to_vec() }),
        _ => None,
    }
}

/// GET `path` with the given Host header (and extra header lines) over a raw socket.
pub(crate) fn get_with_host(addr: &str, path: &str, host: &str, extra: &str) -> RawResponse {
    raw_request(addr, format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").as_bytes())
}

/// Runs a daemon to completion (for start-up errors) and returns its output.
/// Its listeners get free ports, so a daemon running elsewhere on the
/// defaults cannot make it fail for the wrong reason.
pub(crate) fn run_daemon_to_exit(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor"));
    if !args.contains(&"--listen") {
        cmd.args(["--listen", &format!("127.0.0.1:{}", free_tcp_port())]);
    }
    if !args.contains(&"--syslog-udp") {
        cmd.args(["--syslog-udp", &format!("127.0.0.1:{}", free_udp_port())]);
    }
    if !args.contains(&"--history-path") && !args.contains(&"--no-history") {
        cmd.arg("--no-history");
    }
    cmd.args(args).output().expect("run monitor")
}
