//! The store without root: minutes in and back, tiers, ranges, top lists,
//! retention by age and by size (with old timestamps written directly),
//! the origins and alerts the alert rules use.

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use super::{query, AlertRecord, HistoryError, HistoryRange, Retention, Store, HOUR_MS, MINUTE_MS};
use crate::state::{documents::PacketsBytes, KeyCount, MinuteSource, MinuteSummary};

const DAY_MS: u64 = 24 * HOUR_MS;
/// A fixed "now", on an hour boundary.
const NOW: u64 = 1_796_000_400_000 - 1_796_000_400_000 % HOUR_MS;

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("monitor-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("history.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ROOMY: Retention = Retention { days: 30, max_bytes: 1 << 30 };

fn source(ip: &str, packets: u64, country: &str, asn: u32) -> MinuteSource {
    MinuteSource {
        ip: ip.parse().expect("literal"),
        count: KeyCount { packets, bytes: packets * 100, sources: 1 },
        country_code: Some(country.into()),
        country: Some(format!("Country {country}")),
        asn: Some(asn),
        as_org: Some(Arc::from(format!("AS org {asn}").as_str())),
    }
}

/// A minute with ICMP traffic from one German and `extra` French sources.
fn minute(start_ms: u64, icmp: u64, extra: u64) -> MinuteSummary {
    let mut sources = vec![source("203.0.113.1", icmp, "DE", 64500)];
    sources.extend((0..extra).map(|i| source(&format!("198.51.{}.{}", i / 250, i % 250 + 1), 1, "FR", 64501)));
    let mut countries =
        vec![("DE".into(), Some("Country DE".into()), KeyCount { packets: icmp, bytes: icmp * 100, sources: 1 })];
    let mut asns =
        vec![(64500, Some(Arc::from("AS org 64500")), KeyCount { packets: icmp, bytes: icmp * 100, sources: 1 })];
    if extra > 0 {
        let count = KeyCount { packets: extra, bytes: extra * 100, sources: extra };
        countries.push(("FR".into(), Some("Country FR".into()), count.clone()));
        asns.push((64501, Some(Arc::from("AS org 64501")), count));
    }
    let mut classes = [PacketsBytes::default(); monitor_common::class::CLASS_COUNT];
    classes[0] = PacketsBytes { packets: icmp + extra, bytes: (icmp + extra) * 100 };
    MinuteSummary {
        start_ms,
        series: [icmp + extra, 0, 0, 0, 2],
        covered: (1 << 60) - 1,
        classes,
        countries,
        asns,
        sources,
    }
}

fn sorted(mut m: MinuteSummary) -> MinuteSummary {
    m.countries.sort_by(|a, b| a.0.cmp(&b.0));
    m.asns.sort_by_key(|a| a.0);
    m.sources.sort_by(|a, b| b.count.packets.cmp(&a.count.packets).then(a.ip.cmp(&b.ip)));
    m
}

#[test]
fn minutes_come_back_as_written_and_add_up_into_hours() {
    let dir = TempDir::new("roundtrip");
    let mut store = Store::open(&dir.db(), ROOMY).expect("opens");
    let (a, b) = (minute(NOW - 3 * MINUTE_MS, 10, 2), minute(NOW - MINUTE_MS, 5, 0));
    store.write_minute(&a).expect("written");
    store.write_minute(&b).expect("written");
    let restored = store.load_last_hour(NOW).expect("loads");
    let got: Vec<_> = restored.minutes.into_iter().map(sorted).collect();
    assert_eq!(got, [sorted(a.clone()), sorted(b)]);

    // Reopened, by another connection (the reader's).
    drop(store);
    let conn = super::schema::open_reader(&dir.db()).expect("opens read-only");
    let range = HistoryRange { from_ms: NOW - 4 * MINUTE_MS, to_ms: NOW, step_ms: None };
    let doc = query::history(&conn, range, NOW).expect("range");
    assert_eq!(doc.step_ms, MINUTE_MS);
    assert_eq!(doc.end_ms, NOW);
    assert_eq!(doc.series["icmp"], [None, Some(12), None, Some(5)], "a minute not written is unknown");
    assert_eq!(doc.series["syslog"], [None, Some(2), None, Some(2)]);

    let hour = HistoryRange { from_ms: NOW - HOUR_MS, to_ms: NOW, step_ms: Some(HOUR_MS) };
    assert_eq!(query::history(&conn, hour, NOW).expect("range").series["icmp"], [Some(17)], "the hour tier adds up");
    let five = HistoryRange { from_ms: NOW - 10 * MINUTE_MS, to_ms: NOW, step_ms: Some(5 * MINUTE_MS) };
    assert_eq!(query::history(&conn, five, NOW).expect("range").series["icmp"], [None, Some(17)]);
}

#[test]
fn a_minute_written_twice_adds_up() {
    let dir = TempDir::new("twice");
    let mut store = Store::open(&dir.db(), ROOMY).expect("opens");
    store.write_minute(&minute(NOW - MINUTE_MS, 4, 0)).expect("first half");
    store.write_minute(&minute(NOW - MINUTE_MS, 6, 0)).expect("second half");
    let restored = store.load_last_hour(NOW).expect("loads");
    assert_eq!(restored.minutes.len(), 1);
    assert_eq!(restored.minutes[0].series[0], 10);
}

#[test]
fn the_top_of_a_range_ranks_by_its_packets() {
    let dir = TempDir::new("top");
    let mut store = Store::open(&dir.db(), ROOMY).expect("opens");
    store.write_minute(&minute(NOW - 2 * MINUTE_MS, 3, 5)).expect("written");
    store.write_minute(&minute(NOW - MINUTE_MS, 4, 0)).expect("written");
    let doc = query::top(store.connection(), NOW - 10 * MINUTE_MS, NOW, 3, NOW).expect("top");
    assert_eq!(doc.range.map(|r| (r.from_ms, r.to_ms, r.step_ms)), Some((NOW - 10 * MINUTE_MS, NOW, MINUTE_MS)));
    let countries: Vec<_> = doc.countries.iter().map(|c| (c.country_code.as_str(), c.packets, c.sources)).collect();
    assert_eq!(countries, [("DE", 7, 1), ("FR", 5, 5)]);
    assert_eq!(doc.countries[0].country.as_deref(), Some("Country DE"));
    assert_eq!(doc.asns.iter().map(|a| (a.asn, a.packets)).collect::<Vec<_>>(), [(64500, 7), (64501, 5)]);
    assert_eq!(doc.sources.len(), 3, "n of each");
    let top = &doc.sources[0];
    assert_eq!((top.ip, top.window_packets), ("203.0.113.1".parse::<IpAddr>().expect("literal"), Some(7)));
    assert_eq!(top.summary.first_seen_ms, NOW - 2 * MINUTE_MS);
    let geo = top.summary.geo.as_ref().expect("placed");
    assert_eq!(
        (geo.country_code.as_deref(), geo.asn, geo.as_org.as_deref()),
        (Some("DE"), Some(64500), Some("AS org 64500"))
    );
    assert_eq!(doc.totals.counted_packets, Some(12));
}

#[test]
fn steps_follow_the_tiers() {
    let range = |from_ms, to_ms, step_ms| HistoryRange { from_ms, to_ms, step_ms };
    assert_eq!(query::choose_step(range(NOW - HOUR_MS, NOW, None), NOW), Ok((MINUTE_MS, MINUTE_MS)));
    assert_eq!(query::choose_step(range(NOW - DAY_MS, NOW, None), NOW), Ok((MINUTE_MS, 5 * MINUTE_MS)));
    assert_eq!(query::choose_step(range(NOW - 20 * DAY_MS, NOW, None), NOW), Ok((HOUR_MS, HOUR_MS)));
    assert!(query::choose_step(range(NOW - 20 * DAY_MS, NOW, Some(MINUTE_MS)), NOW).is_err(), "minutes are gone there");
    assert!(query::choose_step(range(NOW - HOUR_MS, NOW, Some(1_000)), NOW).is_err());
    assert!(query::choose_step(range(NOW, NOW - 1, None), NOW).is_err());
    assert!(query::choose_step(range(0, NOW, Some(MINUTE_MS)), NOW).is_err(), "too many steps");
}

#[test]
fn retention_by_days_deletes_old_data_and_minutes_past_their_tier() {
    let dir = TempDir::new("days");
    let mut store = Store::open(&dir.db(), Retention { days: 30, max_bytes: 1 << 30 }).expect("opens");
    for at in [NOW - 40 * DAY_MS, NOW - 3 * DAY_MS, NOW - HOUR_MS] {
        store.write_minute(&minute(at, 1, 0)).expect("written");
    }
    store
        .record_alert(&AlertRecord {
            name: "old".into(),
            labels: "{}".into(),
            state: "resolved".into(),
            starts_ms: NOW - 40 * DAY_MS,
            ends_ms: Some(NOW - 40 * DAY_MS + 1),
        })
        .expect("recorded");
    assert!(store.enforce_retention(NOW).expect("retention") > 0);
    let range = HistoryRange { from_ms: NOW - 50 * DAY_MS, to_ms: NOW, step_ms: Some(HOUR_MS) };
    let hours =
        query::history(store.connection(), range, NOW).expect("range").series["icmp"].iter().flatten().sum::<u64>();
    assert_eq!(hours, 2, "the 40-day-old hour went, the others stay");
    let minutes: Vec<i64> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT ts FROM traffic WHERE step = 60000 AND dim = 0 AND key = 'icmp'")
            .expect("prepares");
        stmt.query_map([], |r| r.get(0)).expect("reads").collect::<Result<_, _>>().expect("reads")
    };
    assert_eq!(minutes, [(NOW - HOUR_MS) as i64], "the 3-day-old minute went: hours only after 2 days");
    assert!(store.alerts().expect("alerts").is_empty());
}

#[test]
fn retention_by_bytes_deletes_the_oldest_first_and_the_file_shrinks() {
    let dir = TempDir::new("bytes");
    let mut store = Store::open(&dir.db(), Retention { days: 3650, max_bytes: 1 << 30 }).expect("opens");
    // Two days of busy minutes, the oldest first.
    let start = NOW - 2 * DAY_MS;
    for k in 0..(2 * 24 * 60 / 4) {
        store.write_minute(&minute(start + k * 4 * MINUTE_MS, 10, 40)).expect("written");
    }
    store.enforce_retention(start).expect("nothing to delete yet");
    let before = store.file_bytes();
    assert!(store.used_bytes().expect("size") > 1 << 20, "a busy two days is more than 1 MB");

    let mut small = Store::open(&dir.db(), Retention { days: 3650, max_bytes: 256 << 10 }).expect("reopens");
    drop(store);
    assert!(small.enforce_retention(NOW).expect("retention") > 0);
    assert!(small.used_bytes().expect("size") <= 256 << 10);
    let after = small.file_bytes();
    assert!(after <= (256 << 10) + (64 << 10) && after < before / 2, "the file shrank: {before} -> {after}");
    let restored = small.load_last_hour(NOW).expect("loads");
    assert_eq!(restored.minutes.len(), 15, "the newest minutes stay");
    let range = HistoryRange { from_ms: start, to_ms: start + HOUR_MS, step_ms: Some(HOUR_MS) };
    assert_eq!(
        query::history(small.connection(), range, NOW).expect("range").series["icmp"],
        [None],
        "the oldest went"
    );
    let check: String = small.connection().query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("checks");
    assert_eq!(check, "ok");
}

#[test]
fn origins_seen_since_covers_both_tiers() {
    let dir = TempDir::new("origins");
    let mut store = Store::open(&dir.db(), ROOMY).expect("opens");
    store.write_minute(&minute(NOW - 10 * DAY_MS, 1, 1)).expect("written");
    let mut late = minute(NOW - MINUTE_MS, 1, 0);
    late.countries.retain(|c| c.0 == "DE");
    late.asns = vec![(64999, None, KeyCount { packets: 1, bytes: 1, sources: 1 })];
    store.write_minute(&late).expect("written");
    store.enforce_retention(NOW).expect("retention");
    let (countries, asns) = store.origins_seen_since(NOW - 20 * DAY_MS).expect("origins");
    assert_eq!((countries.len(), asns.len()), (2, 3), "{countries:?} {asns:?}");
    let (countries, asns) = store.origins_seen_since(NOW - DAY_MS).expect("origins");
    assert_eq!(countries.into_iter().collect::<Vec<_>>(), ["DE"]);
    assert_eq!(asns.into_iter().collect::<Vec<_>>(), [64999]);
}

#[test]
fn alerts_are_recorded() {
    let dir = TempDir::new("alerts");
    let store = Store::open(&dir.db(), ROOMY).expect("opens");
    let alert = AlertRecord {
        name: "new_origin".into(),
        labels: r#"{"country":"DE"}"#.into(),
        state: "firing".into(),
        starts_ms: NOW,
        ends_ms: None,
    };
    let id = store.record_alert(&alert).expect("recorded");
    assert!(id > 0);
    assert_eq!(store.alerts().expect("alerts"), [alert]);
}

#[test]
fn a_directory_that_cannot_be_written_is_named_in_the_error() {
    let dir = TempDir::new("unwritable");
    let file = dir.0.join("a-file");
    std::fs::write(&file, "not a directory").expect("written");
    let error = Store::open(&file.join("history.db"), ROOMY).err().expect("fails");
    assert!(matches!(error, HistoryError::NotWritable { .. }));
    let text = super::error_chain(&error);
    assert!(text.contains("a-file") && text.contains("not writable") && text.contains("--no-history"), "{text}");
}

#[tokio::test]
async fn the_writer_commits_new_minutes_and_recorded_alerts() {
    use tokio::sync::watch;

    use crate::state::{documents::HistoryStatusDoc, fixture};

    let dir = TempDir::new("writer");
    let store = Store::open(&dir.db(), ROOMY).expect("opens");
    let (snapshots, watched) = watch::channel(Arc::new(fixture::snapshot().0));
    let (status, status_rx) = watch::channel(HistoryStatusDoc::default());
    let (task, alerts) = super::spawn_writer(store, watched, status);
    let alert = AlertRecord {
        name: "new_origin".into(),
        labels: r#"{"asn":"64500"}"#.into(),
        state: "firing".into(),
        starts_ms: NOW,
        ends_ms: None,
    };
    alerts.record(alert.clone()).expect("queued");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for start in [NOW - 2 * MINUTE_MS, NOW - 2 * MINUTE_MS, NOW - MINUTE_MS] {
        let mut next = fixture::snapshot().0;
        next.last_minute = Some(Arc::new(minute(start, 3, 0)));
        snapshots.send_replace(Arc::new(next));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(snapshots);
    task.await.expect("the writer ends with the pipeline");
    assert_eq!(status_rx.borrow().minutes_written, 2, "the same minute twice is written once");
    assert_eq!(status_rx.borrow().last_minute_ms, Some(NOW - MINUTE_MS));
    let store = Store::open(&dir.db(), ROOMY).expect("reopens");
    assert_eq!(store.alerts().expect("alerts"), [alert]);
    assert_eq!(store.load_last_hour(NOW).expect("loads").minutes.len(), 2);
}
