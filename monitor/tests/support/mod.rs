//! Shared by the end-to-end tests: network namespaces and veth pairs the
//! test creates (and removes), the real daemon as a child process, polling.
//!
//! Network safety: traffic only flows between a namespace the test creates
//! and the root-side end of its own veth pair, on benchmark-range addresses
//! (198.18.0.0/15, RFC 2544) and a ULA prefix; nothing is attached to or
//! sent on any other interface.
#![allow(dead_code)]

use std::{
    net::{TcpListener, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "end-to-end tests need root: run `cargo xtask test`");
}

pub fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command and panics with its output if it fails.
pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = sh(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 100 ms until it returns Some, or panics after `limit`
/// with `what`.
pub fn poll<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    try_poll(limit, check).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `check` every 100 ms until it returns Some, or None after `limit`
/// (for callers that explain the failure themselves).
pub fn try_poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace joined to the root namespace by a veth pair:
/// root side `host_if` has .1 / ::1, the namespace side has .2 / ::2.
pub struct TestNet {
    pub ns: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_v4: String,
    pub ns_v4: String,
    pub host_v6: String,
    pub ns_v6: String,
}

impl TestNet {
    pub fn new() -> Self {
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
        let net = TestNet {
            ns: format!("montest-{pid}-{n}"),
            host_if: format!("mh{tag}"),
            ns_if: format!("mn{tag}"),
            host_v4: format!("198.18.{subnet}.1"),
            ns_v4: format!("198.18.{subnet}.2"),
            host_v6: ula(subnet, 1),
            ns_v6: ula(subnet, 2),
        };
        net.create();
        net
    }

    fn create(&self) {
        must("ip", &["netns", "add", &self.ns]);
        must("ip", &["link", "add", &self.host_if, "type", "veth", "peer", "name", &self.ns_if]);
        must("ip", &["link", "set", &self.ns_if, "netns", &self.ns]);
        must("ip", &["addr", "add", &format!("{}/24", self.host_v4), "dev", &self.host_if]);
        must("ip", &["-6", "addr", "add", &format!("{}/64", self.host_v6), "dev", &self.host_if, "nodad"]);
        must("ip", &["link", "set", &self.host_if, "up"]);
        self.exec_ok(&["ip", "addr", "add", &format!("{}/24", self.ns_v4), "dev", &self.ns_if]);
        self.exec_ok(&["ip", "-6", "addr", "add", &format!("{}/64", self.ns_v6), "dev", &self.ns_if, "nodad"]);
        self.exec_ok(&["ip", "link", "set", &self.ns_if, "up"]);
        self.exec_ok(&["ip", "link", "set", "lo", "up"]);
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.ns];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.ns];
        full.extend_from_slice(args);
        must("ip", &full)
    }

    /// True if an XDP program is attached to the root-side interface.
    pub fn host_if_has_xdp(&self) -> bool {
        must("ip", &["link", "show", "dev", &self.host_if]).contains("xdp")
    }
}

/// Removes the namespaces (and with them the veth pairs) of test processes
/// that were killed before their TestNet was dropped: a leftover pair would
/// hold a 198.18.x.0/24 route a later test may want.
fn remove_stale_namespaces() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("montest-") else { continue };
        // montest-<pid>-<n>; a name without the dash is from an older layout.
        let owner_alive = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !owner_alive {
            let _ = sh("ip", &["netns", "del", &name]);
        }
    }
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

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the namespace destroys its end of the pair and so the pair.
        let _ = sh("ip", &["netns", "del", &self.ns]);
        let _ = sh("ip", &["link", "del", &self.host_if]);
    }
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free port").port()
}

/// How to run the daemon beyond its arguments.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// RLIMIT_NOFILE (soft and hard) of the daemon, as `ulimit -n` would set it.
    pub nofile: Option<u64>,
    /// Address to listen on instead of 127.0.0.1 (a port is picked).
    pub listen_ip: Option<String>,
}

/// The real daemon binary running as a child process.
pub struct Daemon {
    child: Option<Child>,
    pub api: String,
    pub syslog_port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts the daemon with `args` (plus --listen and --syslog-udp on free
    /// loopback ports) and waits until it answers /healthz.
    pub fn start(args: &[&str]) -> Daemon {
        Self::start_with(&Launch::default(), args)
    }

    pub fn spawn(args: &[&str]) -> Daemon {
        Self::spawn_with(&Launch::default(), args)
    }

    /// Starts the daemon as `launch` says, then waits for /healthz.
    pub fn start_with(launch: &Launch, args: &[&str]) -> Daemon {
        let mut d = Self::spawn_with(launch, args);
        let health = format!("{}/healthz", d.api);
        poll("the daemon to answer /healthz", Duration::from_secs(60), || {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("daemon exited early ({status}):\n{}", d.log_text());
            }
            ureq::get(&health).call().ok().map(|_| ())
        });
        d
    }

    /// Its log (stdout and stderr, a file: not a terminal) is [`Daemon::log_text`].
    pub fn spawn_with(launch: &Launch, args: &[&str]) -> Daemon {
        let port = free_tcp_port();
        let syslog_port = free_udp_port();
        let ip = launch.listen_ip.as_deref().unwrap_or("127.0.0.1");
        let log = std::env::temp_dir().join(format!("monitor-test-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("log file");
        let stdout = file.try_clone().expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor"));
        cmd.args(["--listen", &format!("{ip}:{port}")])
            .args(["--syslog-udp", &format!("127.0.0.1:{syslog_port}")])
            .args(["--log", "info,monitor=debug"])
            .args(args)
            .stdout(stdout)
            .stderr(file);
        if let Some(limit) = launch.nofile {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rlim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd.spawn().expect("spawn monitor");
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
        Daemon { child: Some(child), api: format!("http://{host}:{port}"), syslog_port, log }
    }

    /// The dashboard's address (host:port).
    pub fn addr(&self) -> String {
        self.api.trim_start_matches("http://").to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running daemon").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        get_json(&self.api, path)
    }

    pub fn stats(&self) -> serde_json::Value {
        self.get_json("/api/stats")
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.get_json("/api/events?limit=2000")["events"].as_array().cloned().unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running daemon");
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        poll("the daemon to exit after SIGTERM", Duration::from_secs(20), || child.try_wait().ok().flatten())
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the running daemon.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running daemon");
        // SAFETY: kill with a valid pid and signal.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0, "signal {signal}");
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `path` of the API at `api` as JSON, or panic saying what failed.
pub fn get_json(api: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{api}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .into_json()
        .expect("JSON body")
}

/// A response read off a raw socket: for requests no HTTP client library
/// would send (a foreign Host, a malformed request line, 1 MB of query).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or panic saying what it was.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {:?}", self.status, String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `request` (bytes, as is) to `addr` on a new connection and reads
/// one response (the server closes, or Content-Length says where it ends).
/// Writing happens on its own thread, so a server that answers before it
/// has read everything is seen answering.
pub fn raw_request(addr: &str, request: &[u8]) -> RawResponse {
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
pub fn get_with_host(addr: &str, path: &str, host: &str, extra: &str) -> RawResponse {
    raw_request(addr, format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").as_bytes())
}

/// Runs a daemon to completion (for start-up errors) and returns its output.
/// Its listeners get free ports, so a daemon running elsewhere on the
/// defaults cannot make it fail for the wrong reason.
pub fn run_daemon_to_exit(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor"));
    if !args.contains(&"--listen") {
        cmd.args(["--listen", &format!("127.0.0.1:{}", free_tcp_port())]);
    }
    if !args.contains(&"--syslog-udp") {
        cmd.args(["--syslog-udp", &format!("127.0.0.1:{}", free_udp_port())]);
    }
    cmd.args(args).output().expect("run monitor")
}
