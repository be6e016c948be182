//! Alerts end to end: the daemon attached (inside a namespace it does not
//! route out of) sees a ping flood and a ping sweep from the root side of
//! the test's veth pair, fires the rules of a test rules file, and a real
//! Alertmanager on loopback (Debian's `prometheus-alertmanager`, started
//! by the test with its own config and storage) holds them with the
//! right labels, as `amtool alert query` shows; when the traffic stops they
//! resolve. A bad rules file is refused naming its line.
//!
//! Network safety: the flood goes to the namespace end of the test's veth;
//! the sweep goes to 198.19.N.0/24 (RFC 2544), routed in the root
//! namespace via that veth only (the route goes with it); the namespace has
//! no route for them (no default route), so it drops them.

mod support;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use monitor_testkit::{process::Log, Process};
use serde_json::Value;
use support::{must, poll, run_daemon_to_exit, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(60);

/// Short `for` and windows so the test is quick.
const RULES: &str = r#"groups:
  - name: test
    rules:
      - alert: TestIcmpFlood
        kind: icmp_flood
        params: { packets_per_s: 50, scope: per_source, window: 2s }
        for: 2s
        labels: { severity: page, team: net }
        annotations: { summary: "flood from {{ $labels.source }} at {{ $value }}/s" }
      - alert: TestPingSweep
        kind: ping_sweep
        params: { destinations: 20, window: 5s }
        labels: { severity: warning }
"#;

struct Alertmanager {
    url: String,
    _process: Process,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("monitor-{name}-{}-{}", std::process::id(), support::free_tcp_port()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    TempDir(dir)
}

impl Alertmanager {
    /// Alertmanager on a free loopback port, without clustering.
    fn start() -> Alertmanager {
        let dir = temp_dir("alertmanager");
        let config = dir.0.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .expect("config written");
        let port = support::free_tcp_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        let process = Process::spawn("alertmanager", &mut cmd, Log::Create(dir.0.join("alertmanager.log")))
            .expect("prometheus-alertmanager starts (setup.sh --tests installs it)");
        poll("Alertmanager to be ready", WAIT, || {
            monitor_testkit::http::is_ok(&format!("{url}/-/ready")).then_some(())
        });
        Alertmanager { url, _process: process, _dir: dir }
    }

    /// The active alerts as `amtool alert query` lists them.
    fn query(&self) -> Vec<Value> {
        let out = must("amtool", &["alert", "query", "--alertmanager.url", &self.url, "-o", "json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap_or_else(|e| panic!("amtool output {out:?}: {e}"))
    }

    fn find(&self, alertname: &str, source: &str) -> Option<Value> {
        self.query().into_iter().find(|a| a["labels"]["alertname"] == alertname && a["labels"]["source"] == source)
    }
}

#[test]
fn flood_and_sweep_fire_into_alertmanager_and_resolve() {
    let am = Alertmanager::start();
    let net = TestNet::new();
    let dir = temp_dir("rules");
    let rules = dir.0.join("rules.yaml");
    std::fs::write(&rules, RULES).expect("rules written");
    let daemon = Daemon::start(&[
        "--netns",
        &net.ns,
        "--iface",
        &net.ns_if,
        "--events-per-source",
        "0",
        "--alert-rules",
        &rules.display().to_string(),
        "--alertmanager",
        &am.url,
    ]);
    // The sweep's destinations: routed into the namespace, which drops them.
    let subnet = net.host_v4.split('.').nth(2).expect("198.18.N.1");
    let sweep_net = format!("198.19.{subnet}.0/24");
    must("ip", &["route", "add", &sweep_net, "via", &net.ns_v4, "dev", &net.host_if]);

    // A flood: about 200 echo requests a second for 8 seconds.
    let flood = std::thread::spawn({
        let target = net.ns_v4.clone();
        move || must("ping", &["-q", "-i", "0.005", "-c", "1600", "-W", "1", &target])
    });
    let firing = poll("the flood alert in Alertmanager", WAIT, || am.find("TestIcmpFlood", &net.host_v4));
    let labels = &firing["labels"];
    assert_eq!(labels["severity"], "page", "{firing}");
    assert_eq!(labels["team"], "net", "{firing}");
    let summary = firing["annotations"]["summary"].as_str().unwrap_or("");
    assert!(summary.starts_with(&format!("flood from {} at ", net.host_v4)), "{firing}");
    let doc = daemon.get_json("/api/alerts");
    assert!(
        doc["alerts"].as_array().is_some_and(|a| a.iter().any(|a| a["alertname"] == "TestIcmpFlood"
            && a["state"] == "firing"
            && a["labels"]["source"] == net.host_v4.as_str())),
        "{doc}"
    );
    let metrics = ureq::get(&format!("{}/metrics", daemon.api)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains("monitor_alerts{alertname=\"TestIcmpFlood\",state=\"firing\"} 1"), "{metrics}");
    flood.join().expect("flood thread");

    // A sweep: one echo request to each of 40 addresses.
    let first = format!("198.19.{subnet}.1");
    let last = format!("198.19.{subnet}.40");
    let _ = Command::new("fping").args(["-q", "-c", "1", "-t", "200", "-i", "10", "-g", &first, &last]).output();
    let sweep = poll("the sweep alert in Alertmanager", WAIT, || am.find("TestPingSweep", &net.host_v4));
    assert_eq!(sweep["labels"]["severity"], "warning", "{sweep}");

    // Quiet: both resolve (endsAt now), and Alertmanager stops listing them.
    let quiet = Instant::now();
    poll("both alerts to resolve in Alertmanager", WAIT, || {
        let active = am.query();
        (!active.iter().any(|a| a["labels"]["source"] == net.host_v4.as_str())).then_some(())
    });
    assert!(quiet.elapsed() < WAIT);
    let doc = daemon.get_json("/api/alerts");
    let recent = doc["recent"].as_array().cloned().unwrap_or_default();
    for name in ["TestIcmpFlood", "TestPingSweep"] {
        assert!(recent.iter().any(|e| e["alertname"] == name && e["state"] == "resolved"), "{name}: {doc}");
    }
    // Two firings and two resolutions (some may have shared a post).
    let doc = poll("every notification to be delivered", WAIT, || {
        let doc = daemon.get_json("/api/alerts");
        (doc["targets"][0]["sent"].as_u64().unwrap_or(0) >= 3).then_some(doc)
    });
    assert_eq!(doc["targets"][0]["failed"], 0, "{doc}");
}

#[test]
fn a_bad_rules_file_is_refused_naming_its_line() {
    let dir = temp_dir("bad-rules");
    let bad = dir.0.join("bad.yaml");
    std::fs::write(&bad, RULES.replace("packets_per_s: 50", "packets_per_sec: 50")).expect("written");
    let out = run_daemon_to_exit(&["--no-xdp", "--alert-rules", &bad.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 4") && err.contains("TestIcmpFlood") && err.contains("packets_per_sec"), "{err}");

    std::fs::write(&bad, "groups:\n  - name: x\n    rules:\n      - alert: A\n        kind: nope\n").expect("written");
    let out = run_daemon_to_exit(&["--no-xdp", "--alert-rules", &bad.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 5") && err.contains("nope"), "{err}");

    let out = run_daemon_to_exit(&["--no-xdp", "--alertmanager", "ftp://example.invalid"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--alertmanager ftp://example.invalid"), "{err}");
    assert!(Path::new(&dir.0).exists());
}
