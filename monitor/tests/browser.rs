//! The dashboard in a real browser (Chromium driven by Playwright, the tests
//! in tests-browser/) against the real daemon with the real XDP program:
//! real pings from public addresses in a sealed test namespace pair show in
//! the feed and on the map, the daemon restarts under the page, a second
//! daemon with a token refuses a viewer without it, and a ping flood checks
//! that the page stays responsive. Screenshots and the TAP output go to
//! artifacts/browser/.
//!
//! Needs root, node, Chromium and tests-browser/node_modules (setup.sh --tests
//! installs them all); a missing one fails the test, it is never skipped.

mod support;

#[path = "browser/node_runner.rs"]
mod node_runner;
#[path = "browser/restartable_daemon.rs"]
mod restartable_daemon;
#[path = "browser/twin_netns.rs"]
mod twin_netns;

use std::{path::PathBuf, time::Duration};

use node_runner::BrowserTools;
use restartable_daemon::RestartableDaemon;
use support::{poll, require_root, Daemon};
use twin_netns::TwinNet;

/// Public addresses that DB-IP places on the map (London; Linköping). They
/// exist only inside the test's namespaces (see twin_netns.rs).
const TEST_SRC: &str = "81.2.69.142";
const FLOOD_SRC: &str = "89.160.20.112";
const TOKEN: &str = "browser-test-token";
/// An alert rule the test source's pings (5 a second) fire at once.
const ALERT: &str = "BrowserTestFlood";
const ALERT_RULES: &str = "groups:\n  - name: browser\n    rules:\n      - alert: BrowserTestFlood\n        kind: icmp_flood\n        params: { packets_per_s: 1, window: 2s }\n        labels: { severity: warning }\n        annotations: { summary: \"ICMP from {{ $labels.source }} at {{ $value }}/s\" }\n";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

#[test]
fn dashboard_in_a_real_browser() {
    require_root();
    let root = workspace();
    let tools = BrowserTools::find(&root);
    let artifacts = root.join("artifacts/browser");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    // The daemon's log and pid file go next to the screenshots: kept for a failed run.
    let _ = std::fs::remove_file(artifacts.join("daemon.log"));

    let rules = artifacts.join("alert-rules.yaml");
    std::fs::write(&rules, ALERT_RULES).expect("alert rules written");
    let rules = rules.display().to_string();
    // A history store with one minute from TEST_SRC, ten minutes ago: what
    // the range control shows (range.test.mjs).
    let history_db = artifacts.join("history.db");
    let history_minute_ms = prefill_history(&history_db);

    let net = TwinNet::new(&[TEST_SRC, FLOOD_SRC]);
    // events-per-source 0 lets one flooding source produce thousands of
    // events a second; the global budget keeps it at what a page can take.
    let history_path = history_db.display().to_string();
    let daemon = RestartableDaemon::start(
        &[
            "--netns",
            &net.rx_ns,
            "--iface",
            &net.rx_if,
            "--events-per-source",
            "0",
            "--events-per-sec",
            "5000",
            "--alert-rules",
            &rules,
            "--history-path",
            &history_path,
        ],
        &artifacts,
    );
    assert!(net.rx_has_xdp(), "XDP attached in the test namespace");
    // The GeoIP databases load in the background: the map needs them, so
    // wait, and fail with the remedy if there are none.
    poll("the GeoIP databases to load", Duration::from_secs(60), || {
        let geo = &daemon.get_json("/api/stats")["geo"];
        let loaded = geo["city_db"].as_array().is_some_and(|a| !a.is_empty());
        (loaded || !geo["errors"].as_array().is_none_or(|e| e.is_empty())).then_some(())
    });
    let _ping = net.spawn_in_sender(&["ping", "-n", "-q", "-i", "0.2", "-I", TEST_SRC, &net.rx_v4]);

    let geo = poll("an event from the test source", Duration::from_secs(30), || {
        let v = daemon.get_json(&format!("/api/lookup/{TEST_SRC}"));
        v["seen"].is_object().then_some(v)
    });
    assert!(
        geo["geo"]["lat"].is_f64(),
        "{TEST_SRC} has no location: the GeoIP city database is missing (run ./setup.sh): {geo}"
    );

    let auth = Daemon::start(&["--no-xdp", "--auth-token", TOKEN]);
    let env = |load: bool| {
        vec![
            ("MONITOR_URL", daemon.api.clone()),
            ("MONITOR_SYSLOG", daemon.syslog.clone()),
            ("MONITOR_TEST_SRC", TEST_SRC.to_owned()),
            ("MONITOR_RESTART_CMD", daemon.restart_command()),
            ("MONITOR_AUTH_URL", auth.api.clone()),
            ("MONITOR_TOKEN", TOKEN.to_owned()),
            ("MONITOR_ARTIFACTS", artifacts.display().to_string()),
            ("MONITOR_ALERT", ALERT.to_owned()),
            ("MONITOR_LOAD", if load { "1" } else { "0" }.to_owned()),
            ("MONITOR_HISTORY_MINUTE_MS", history_minute_ms.to_string()),
        ]
    };

    let passed = tools.run(
        "dashboard",
        &["dashboard.test.mjs", "filters.test.mjs", "format.test.mjs", "hostile.test.mjs", "range.test.mjs"],
        &env(false),
        &artifacts,
    );
    assert!(daemon.starts() >= 2, "the reconnect test restarted the daemon");
    daemon.wait_healthy();
    assert!(net.rx_has_xdp(), "the restarted daemon attached XDP again");

    let _flood = net.spawn_in_sender(&["ping", "-f", "-n", "-q", "-I", FLOOD_SRC, &net.rx_v4]);
    let passed_load = tools.run("load", &["load.test.mjs"], &env(true), &artifacts);
    println!("browser tests passed: {passed} + {passed_load}; screenshots in {}", artifacts.display());
    drop(daemon);
    drop(net);
}

/// A fresh history database at `path` holding one minute (ten minutes ago)
/// of 4,242 ICMP packets from `TEST_SRC`; returns the minute's start.
fn prefill_history(path: &std::path::Path) -> u64 {
    use monitor::{
        history::{Retention, Store, MINUTE_MS},
        state::{KeyCount, MinuteSource, MinuteSummary},
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as u64;
    let start = now - now % MINUTE_MS - 10 * MINUTE_MS;
    let count = KeyCount { packets: 4_242, bytes: 4_242 * 98, sources: 1 };
    let mut store = Store::open(path, Retention { days: 30, max_bytes: 1 << 30 }).expect("history store");
    store
        .write_minute(&MinuteSummary {
            start_ms: start,
            series: [4_242, 0, 0, 0, 0],
            countries: vec![("GB".into(), None, count.clone())],
            sources: vec![MinuteSource {
                ip: TEST_SRC.parse().expect("literal"),
                count,
                country_code: Some("GB".into()),
                country: None,
                asn: None,
                as_org: None,
            }],
            ..MinuteSummary::default()
        })
        .expect("a minute written");
    start
}
