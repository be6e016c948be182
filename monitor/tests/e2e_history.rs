//! The history store with the real daemon: a restart keeps the last hour
//! (chart, top lists, ranges); `kill -9` while writing leaves a sound
//! database with every committed minute; retention by days and by bytes
//! applies at start to data written with old timestamps; a directory that
//! cannot be written leaves the daemon running without history, saying so.
//! Traffic is syslog lines over loopback only (--no-xdp).

mod support;

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use monitor::{
    history::{Retention, Store, HOUR_MS, MINUTE_MS},
    state::{KeyCount, MinuteSource, MinuteSummary},
};
use serde_json::Value;
use support::{must, poll, require_root, Daemon};

const WAIT: Duration = Duration::from_secs(30);

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("monitor-e2e-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn db(&self) -> String {
        self.0.join("history.db").display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(db: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["--no-xdp", "--geo-city", "none", "--geo-asn", "none", "--history-path", db];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// `n` iptables LOG lines from `src` over UDP syslog.
fn send_lines(port: u16, src: &str, n: u32) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    for seq in 0..n {
        let line = format!(
            "<4>Nov 24 12:00:00 host kernel: IPT_ICMP IN=ens3 OUT= SRC={src} DST=192.0.2.1 LEN=84 TOS=0x00 \
             PREC=0x00 TTL=57 ID=4242 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ={seq}"
        );
        socket.send_to(line.as_bytes(), ("127.0.0.1", port)).expect("send");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as u64
}

/// The sum of the known values of a history document's series.
fn total(doc: &Value, series: &str) -> u64 {
    doc["series"][series].as_array().map_or(0, |v| v.iter().filter_map(Value::as_u64).sum())
}

#[test]
fn a_restart_keeps_the_last_hour() {
    let dir = TempDir::new("restart");
    let db = dir.db();
    let mut daemon = start(&db, &[]);
    assert_eq!(daemon.stats()["history"]["enabled"], true);
    send_lines(daemon.syslog_port, "192.0.2.50", 5);
    // Counted into a closed second, so into the minute's series too.
    poll("the lines in the per-second history", WAIT, || {
        (total(&daemon.get_json("/api/history"), "syslog") >= 5).then_some(())
    });
    let started = now_ms();
    assert!(daemon.stop().success());
    assert!(Path::new(&db).exists());

    let daemon = start(&db, &[]);
    let history = daemon.stats()["history"].clone();
    assert_eq!(history["enabled"], true, "{history}");
    assert!(history["restored_minutes"].as_u64() >= Some(1), "{history}");
    // The chart: the restored minute spread over its seconds.
    let chart = daemon.get_json("/api/history");
    assert_eq!(total(&chart, "syslog"), 5, "{history} {}", chart["series"]["syslog"]);
    // The windowed top lists.
    let top = daemon.get_json("/api/top?window=60");
    assert_eq!(top["sources"][0]["ip"], "192.0.2.50", "{top}");
    assert_eq!(top["sources"][0]["window_packets"], 5);
    // Ranges.
    let (from, to) = (started - 10 * MINUTE_MS, now_ms() + MINUTE_MS);
    let range = daemon.get_json(&format!("/api/history?from={from}&to={to}"));
    assert_eq!((range["step_ms"].as_u64(), total(&range, "syslog")), (Some(MINUTE_MS), 5), "{range}");
    let top = daemon.get_json(&format!("/api/top?from={from}&to={to}"));
    assert_eq!(top["sources"][0]["ip"], "192.0.2.50", "{top}");
    assert_eq!(top["range"]["step_ms"], MINUTE_MS);
}

#[test]
fn kill_9_while_writing_leaves_every_committed_minute() {
    let dir = TempDir::new("kill");
    let db = dir.db();
    let mut daemon = start(&db, &[]);
    let port = daemon.syslog_port;
    let sending = Arc::new(AtomicBool::new(true));
    let sender = {
        let sending = Arc::clone(&sending);
        std::thread::spawn(move || {
            while sending.load(Ordering::Relaxed) {
                send_lines(port, "192.0.2.60", 10);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // The first minute boundary, then a little more writing.
    let last = poll("a committed minute", Duration::from_secs(130), || {
        let h = daemon.stats()["history"].clone();
        (h["minutes_written"].as_u64() >= Some(1)).then(|| h["last_minute_ms"].as_u64()).flatten()
    });
    std::thread::sleep(Duration::from_millis(1_500));
    daemon.kill();
    sending.store(false, Ordering::Relaxed);
    sender.join().expect("sender");

    let conn = rusqlite::Connection::open(&db).expect("opens after the kill");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("checks");
    assert_eq!(check, "ok");
    let packets: i64 = conn
        .query_row(
            "SELECT packets FROM traffic WHERE step = 60000 AND dim = 0 AND key = 'syslog' AND ts = ?1",
            [last as i64],
            |r| r.get(0),
        )
        .expect("the last committed minute is there");
    assert!(packets > 0);
}

/// A minute of `packets` from `sources` distinct addresses.
fn busy_minute(start_ms: u64, sources: u32) -> MinuteSummary {
    let count = KeyCount { packets: 3, bytes: 300, sources: 1 };
    MinuteSummary {
        start_ms,
        series: [3 * u64::from(sources), 0, 0, 0, 0],
        countries: vec![("DE".into(), None, KeyCount { sources: u64::from(sources), ..count.clone() })],
        sources: (0..sources)
            .map(|i| MinuteSource {
                ip: format!("198.51.{}.{}", i / 250, i % 250 + 1).parse().expect("literal"),
                count: count.clone(),
                country_code: Some("DE".into()),
                country: None,
                asn: None,
                as_org: None,
            })
            .collect(),
        ..MinuteSummary::default()
    }
}

#[test]
fn retention_by_days_and_by_bytes_applies_at_start_and_the_file_shrinks() {
    let dir = TempDir::new("retention");
    let db = dir.db();
    let now = now_ms();
    let day = 24 * HOUR_MS;
    {
        let mut store = Store::open(Path::new(&db), Retention { days: 3650, max_bytes: 1 << 40 }).expect("opens");
        store.write_minute(&busy_minute(now - 40 * day, 1)).expect("an old minute");
        // A day and a half of busy minutes, every fourth one.
        let start = now - 36 * HOUR_MS;
        for k in 0..(36 * 15) {
            store.write_minute(&busy_minute(start + k * 4 * MINUTE_MS, 40)).expect("written");
        }
    }
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&db) + size(&format!("{db}-wal"));
    assert!(before > 3 << 18, "prefilled: {before} bytes");

    let daemon = start(&db, &["--history-days", "30", "--history-max-bytes", "256K"]);
    let status = daemon.stats()["history"].clone();
    assert_eq!(status["enabled"], true, "{status}");
    let after = status["file_bytes"].as_u64().expect("file_bytes");
    assert!(after <= (256 << 10) + (128 << 10) && after < before / 2, "the file shrank: {before} -> {after}");
    // The 40-day-old hour went by age, the oldest of the rest by size; the newest stay.
    let old = daemon.get_json(&format!("/api/history?from={}&to={}&step=3600000", now - 41 * day, now - 39 * day));
    assert_eq!(total(&old, "icmp"), 0, "{old}");
    let oldest =
        daemon.get_json(&format!("/api/history?from={}&to={}&step=3600000", now - 36 * HOUR_MS, now - 35 * HOUR_MS));
    assert_eq!(total(&oldest, "icmp"), 0, "the oldest hours go first: {oldest}");
    let newest = daemon.get_json(&format!("/api/history?from={}&to={now}", now - HOUR_MS));
    assert!(total(&newest, "icmp") > 0, "the newest stay: {newest}");
}

/// A read-only tmpfs over a directory of our own, unmounted when dropped.
struct ReadOnlyMount(PathBuf);

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_directory_leaves_the_daemon_running_without_history() {
    require_root();
    let dir = TempDir::new("readonly");
    let ro = dir.0.join("ro");
    std::fs::create_dir_all(&ro).expect("mount point");
    must("mount", &["-t", "tmpfs", "-o", "ro,size=64k", "monitor-test-ro", &ro.display().to_string()]);
    let _mount = ReadOnlyMount(ro.clone());
    let db = ro.join("history.db").display().to_string();

    let daemon = start(&db, &[]);
    let status = daemon.stats()["history"].clone();
    assert_eq!(status["enabled"], false, "{status}");
    let error = status["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("not writable") && error.contains(&ro.display().to_string()), "{error}");
    assert!(error.contains("Read-only file system"), "the OS's reason too: {error}");
    assert!(daemon.log_text().contains("history is off"), "said in the log");
    // The rest works; ranges say why they cannot be answered.
    send_lines(daemon.syslog_port, "192.0.2.70", 2);
    poll("events without history", WAIT, || (!daemon.events().is_empty()).then_some(()));
    let answer = support::get_with_host(&daemon.addr(), "/api/history?from=1&to=2", "localhost", "");
    assert_eq!(answer.status, 503);
    assert!(answer.json()["error"].as_str().unwrap_or_default().contains("not writable"));
}
