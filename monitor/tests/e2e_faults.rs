//! Faults, from the outside: the daemon killed with SIGKILL while traffic
//! flows leaves nothing attached in the kernel (checked with the kernel's
//! own listings: `ip link`, `tc filter`, the BPF link table) and starts
//! again at once; a GeoIP file replaced by garbage while it runs is
//! reported and the data loaded before stays in use.

#[path = "support/mmdb.rs"]
mod mmdb;
mod support;

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    time::Duration,
};

use mmdb::{map, Value, Writer};
use serde_json::Value as Json;
use support::{must, poll, Daemon, TestNet};

const WAIT: Duration = Duration::from_secs(30);

/// The BPF links a process holds, from its fds' fdinfo: (link_type, link_id).
fn bpf_links_of(pid: u32) -> BTreeSet<(String, u32)> {
    let mut links = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return links };
    for entry in dir.flatten() {
        let Ok(info) = std::fs::read_to_string(entry.path()) else { continue };
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
        };
        if let (Some(kind), Some(id)) = (field("link_type"), field("link_id").and_then(|id| id.parse().ok())) {
            links.insert((kind, id));
        }
    }
    links
}

/// The ids of every BPF link the kernel has (BPF_LINK_GET_NEXT_ID).
fn kernel_link_ids() -> BTreeSet<u32> {
    aya::programs::loaded_links().filter_map(Result::ok).map(|l| l.id()).collect()
}

/// A ping flood from the namespace, bounded by a deadline; killed on drop.
struct Flood(Child);

impl Flood {
    fn start(net: &TestNet, seconds: u32) -> Flood {
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns, "ping", "-f", "-q", "-w", &seconds.to_string(), &net.host_v4])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping flood");
        Flood(child)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn icmp_packets(daemon: &Daemon) -> u64 {
    daemon.stats()["kernel"]["classes"]["icmp"]["packets"].as_u64().unwrap_or(0)
}

#[test]
fn sigkill_under_traffic_leaves_nothing_attached_and_a_restart_works_at_once() {
    let net = TestNet::new();
    let args = ["--iface", net.host_if.as_str(), "--events-per-source", "0"];
    let mut daemon = Daemon::start(&args);
    let _flood = Flood::start(&net, 60);
    poll("packets counted under the flood", WAIT, || (icmp_packets(&daemon) > 200).then_some(()));

    let stats = daemon.stats();
    assert_eq!(stats["http"]["enabled"], true, "HTTP timing (TC egress) attached: {}", stats["http"]);
    let links = bpf_links_of(daemon.pid());
    println!("the daemon's BPF links: {links:?}");
    let kinds: BTreeSet<&str> = links.iter().map(|(kind, _)| kind.as_str()).collect();
    assert!(kinds.contains("xdp"), "the daemon holds an XDP link: {links:?}");
    let tc_listed = must("tc", &["filter", "show", "dev", &net.host_if, "egress"]);
    assert!(kinds.contains("tcx") || !tc_listed.trim().is_empty(), "TC egress attached: {links:?} / {tc_listed}");
    assert!(net.host_if_has_xdp());
    let ids: BTreeSet<u32> = links.iter().map(|(_, id)| *id).collect();
    assert!(ids.is_subset(&kernel_link_ids()), "the kernel lists the daemon's links");

    daemon.kill(); // SIGKILL, then reaped: no chance to clean up
    poll("the kernel to drop every program the daemon attached", WAIT, || {
        let link = must("ip", &["link", "show", "dev", &net.host_if]);
        let tc = must("tc", &["filter", "show", "dev", &net.host_if, "egress"]);
        let left: Vec<u32> = kernel_link_ids().intersection(&ids).copied().collect();
        (!link.contains("xdp") && tc.trim().is_empty() && left.is_empty()).then_some(())
    });

    // At once, on the same interface, traffic still flowing.
    let restarted = Daemon::start(&args);
    assert!(net.host_if_has_xdp(), "XDP attached again");
    let http = restarted.stats()["http"].clone();
    assert_eq!(http["enabled"], true, "TC egress attached again: {http}");
    assert_eq!(http["errors"].as_array().map(Vec::len), Some(0), "{http}");
    let first = icmp_packets(&restarted);
    poll("the restarted daemon to count packets", WAIT, || (icmp_packets(&restarted) > first + 100).then_some(()));
}

fn dbip_city(cc: &str, city: &str) -> Value {
    map([
        ("city", city.into()),
        ("country_code", cc.into()),
        ("latitude", Value::Float(51.5)),
        ("longitude", Value::Float(-0.1)),
        ("state1", "".into()),
    ])
}

#[test]
fn geoip_file_replaced_by_garbage_is_reported_and_the_old_data_stays() {
    let dir = std::env::temp_dir().join(format!("monitor-faults-geo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let city = dir.join("dbip-city-ipv4.mmdb");
    let mut w = Writer::new("city ipv4", 4);
    w.insert("81.2.69.0/24", dbip_city("GB", "London"));
    w.write(&city);
    let city_arg = city.to_string_lossy().into_owned();
    let daemon = Daemon::start(&["--no-xdp", "--geo-city", &city_arg, "--geo-asn", "none"]);
    let country = || daemon.get_json("/api/lookup/81.2.69.160")["geo"]["country_code"].clone();
    poll("the database to load", WAIT, || (country() == "GB").then_some(()));

    // Replaced the way an update does it (new file, rename), but garbage.
    let tmp = dir.join("dbip-city-ipv4.mmdb.new");
    std::fs::write(&tmp, vec![0x5au8; 64 << 10]).expect("write garbage");
    std::fs::rename(&tmp, &city).expect("rename over");
    daemon.signal(libc::SIGHUP);
    let errors = poll("the broken file to be reported", WAIT, || {
        let geo = daemon.stats()["geo"].clone();
        let errors: Vec<String> =
            geo["errors"].as_array()?.iter().filter_map(Json::as_str).map(str::to_owned).collect();
        errors.iter().any(|e| e.contains(&city_arg)).then_some(errors)
    });
    assert!(errors.iter().any(|e| e.contains("stays in use")), "{errors:?}");
    assert_eq!(country(), "GB", "the data loaded before still answers");
    assert_eq!(daemon.stats()["geo"]["city_db"].as_array().map(Vec::len), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
