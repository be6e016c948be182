//! Synthetic snapshots for the rules' unit tests: the state's fixture
//! snapshot with the parts a rule reads replaced.

use std::{net::IpAddr, sync::Arc};

use super::history::MemoryOriginHistory;
use crate::{
    model::{AddressLabel, GeoInfo},
    state::{fixture, Activity, HttpDoc, Snapshot, SourceSecond},
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// A second ending at `end_ms`: (source, ICMP echo packets, echo destinations).
pub(crate) fn activity(end_ms: u64, sources: &[(&str, u64, &[&str])]) -> Activity {
    let mut a = Activity { end_ms, ..Activity::default() };
    for (src, packets, dsts) in sources {
        let dsts: Vec<IpAddr> = dsts.iter().map(|d| ip(d)).collect();
        a.sources.insert(
            ip(src),
            SourceSecond {
                icmp_packets: *packets,
                packets: *packets,
                echo_destinations: dsts.clone(),
                destinations: dsts,
                ..SourceSecond::default()
            },
        );
    }
    a
}

/// A second with one source of 3 packets from `country` and `asn`.
pub(crate) fn activity_geo(end_ms: u64, src: &str, country: &str, asn: u32) -> Activity {
    let mut a = activity(end_ms, &[(src, 3, &[])]);
    if let Some(s) = a.sources.get_mut(&ip(src)) {
        let mut geo = GeoInfo::only(AddressLabel::Public);
        geo.country_code = Some(country.to_owned());
        geo.asn = Some(asn);
        s.geo = Some(Arc::new(geo));
    }
    a
}

pub(crate) fn snapshot_with(activity: Activity) -> Snapshot {
    let (mut snapshot, _) = fixture::snapshot();
    snapshot.activity = Arc::new(activity);
    snapshot
}

/// A snapshot whose HTTP window holds `responses`, `errors` of them 5xx, at `p99_ms`.
pub(crate) fn http_window(responses: u64, errors: u64, p99_ms: f64) -> Snapshot {
    let mut snapshot = snapshot_with(Activity::default());
    let mut http: HttpDoc = (*snapshot.http).clone();
    http.window = Some(crate::state::HttpSummary {
        responses,
        p50_ms: Some(p99_ms / 2.0),
        p90_ms: Some(p99_ms),
        p99_ms: Some(p99_ms),
        status: [("2xx", responses - errors), ("5xx", errors)].into_iter().collect(),
    });
    snapshot.http = Arc::new(http);
    snapshot
}

pub(crate) fn context_parts() -> (MemoryOriginHistory, u64) {
    (MemoryOriginHistory::default(), 1_000)
}

/// The alerts document docs/api/alerts.json shows: one rule firing for a
/// source, one alert resolved before, and an Alertmanager target.
pub(crate) fn golden_doc() -> super::AlertsDoc {
    use super::{delivery::Delivery, engine::AlertEngine, rules, EngineConfig, MemoryAlertLog};
    let text = "groups:\n- name: monitor\n  rules:\n  - alert: IcmpFlood\n    kind: icmp_flood\n    for: 2s\n    params: {packets_per_s: 100, window: 1s}\n    labels: {severity: warning}\n    annotations: {summary: 'ICMP flood from {{ $labels.source }}: {{ $value }} packets/s'}\n  - alert: PingSweep\n    kind: ping_sweep\n    params: {destinations: 2, window: 1s}\n    labels: {severity: warning}\n";
    let mut engine = AlertEngine::new(
        EngineConfig {
            rules: rules::parse(text, "alert-rules.yaml").expect("valid rules"),
            rules_source: "/etc/monitor/alert-rules.yaml".into(),
            origins: Box::new(MemoryOriginHistory::default()),
            log: Box::new(MemoryAlertLog::new(10)),
            delivery: Delivery::none(),
        },
        fixture::END_MS - 60_000,
    );
    let sweep = ("198.51.100.3", 2, &["192.0.2.1", "192.0.2.2"][..]);
    let flood = ("192.0.2.7", 250, &[][..]);
    for (i, sources) in [vec![sweep], vec![flood], vec![flood], vec![flood]].iter().enumerate() {
        let end = fixture::END_MS - 3_000 + i as u64 * 1_000;
        engine.evaluate(&snapshot_with(activity(end, sources)), end);
    }
    let mut doc = engine.doc();
    doc.targets.push(super::doc::TargetDoc {
        name: "alertmanager-1".into(),
        kind: "alertmanager",
        url: "http://127.0.0.1:9093/api/v2/alerts".into(),
        sent: 2,
        failed: 0,
        retries: 1,
        dropped: 0,
        last_error: None,
    });
    doc
}
