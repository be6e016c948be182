//! The history store's cost at the demo's shape (`cargo xtask demo`: 360
//! located sources across some 40 countries and 150 networks, all of them
//! active each minute): bytes on disk per day, and the time one minute's
//! commit takes (the writer's work once a minute, retention included).
//! Minutes are written back to back with their real timestamps' spacing.

use std::{sync::Arc, time::Instant};

use monitor::{
    history::{Retention, Store, MINUTE_MS},
    state::{KeyCount, MinuteSource, MinuteSummary, MINUTE_TOP_SOURCES},
};
use serde_json::json;

pub(crate) struct Args {
    pub minutes: u64,
    pub sources: u32,
}

/// One demo-like minute: every source a few packets, the busiest first.
fn minute(start_ms: u64, sources: u32, k: u64) -> MinuteSummary {
    let count = |packets: u64, sources: u64| KeyCount { packets, bytes: packets * 120, sources };
    let all: Vec<MinuteSource> = (0..sources)
        .map(|i| {
            let packets = 1 + u64::from((i * 7 + k as u32) % 97);
            MinuteSource {
                ip: format!("{}.{}.{}.{}", 20 + i % 180, (i * 13) % 250, (i * 31) % 250, 1 + i % 250)
                    .parse()
                    .expect("literal"),
                count: count(packets, 1),
                country_code: Some(format!("C{}", i % 40)),
                country: Some(format!("Country {}", i % 40)),
                asn: Some(64_512 + i % 150),
                as_org: Some(Arc::from(format!("Network {}", i % 150).as_str())),
            }
        })
        .collect();
    let total: u64 = all.iter().map(|s| s.count.packets).sum();
    let mut countries = std::collections::BTreeMap::new();
    let mut asns = std::collections::BTreeMap::new();
    for s in &all {
        let c = countries.entry(s.country_code.clone().unwrap_or_default()).or_insert((s.country.clone(), count(0, 0)));
        c.1.packets += s.count.packets;
        c.1.sources += 1;
        let a = asns.entry(s.asn.unwrap_or_default()).or_insert((s.as_org.clone(), count(0, 0)));
        a.1.packets += s.count.packets;
        a.1.sources += 1;
    }
    let mut top = all;
    top.sort_by_key(|s| std::cmp::Reverse(s.count.packets));
    top.truncate(MINUTE_TOP_SOURCES);
    let mut classes = <[monitor::state::documents::PacketsBytes; monitor_common::class::CLASS_COUNT]>::default();
    classes[0].packets = total;
    classes[0].bytes = total * 98;
    MinuteSummary {
        start_ms,
        series: [total * 6 / 10, total / 10, total / 10, total / 10, total / 10],
        covered: (1 << 60) - 1,
        classes,
        countries: countries.into_iter().map(|(k, (n, c))| (k, n, c)).collect(),
        asns: asns.into_iter().map(|(k, (n, c))| (k, n, c)).collect(),
        sources: top,
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("monitor-bench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("history.db");
    let mut store = Store::open(&path, Retention { days: 30, max_bytes: 1 << 40 })?;
    // Back in time so that retention keeps everything written.
    let start = 1_796_000_000_000 - 1_796_000_000_000 % MINUTE_MS;
    let mut micros = Vec::with_capacity(args.minutes as usize);
    for k in 0..args.minutes {
        let m = minute(start + k * MINUTE_MS, args.sources, k);
        let t = Instant::now();
        store.write_minute(&m)?;
        store.enforce_retention(m.start_ms + MINUTE_MS)?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let used = store.used_bytes()?;
    drop(store); // checkpoints the WAL into the file
    let file = std::fs::metadata(&path)?.len();
    micros.sort_by(f64::total_cmp);
    let q = |p: f64| micros[((micros.len() - 1) as f64 * p) as usize];
    let per_day = |bytes: u64| bytes as f64 * 1440.0 / args.minutes as f64;
    println!(
        "{}",
        json!({
            "minutes": args.minutes, "sources": args.sources, "top_sources": MINUTE_TOP_SOURCES,
            "used_bytes": used, "file_bytes": file,
            "bytes_per_day": per_day(file), "used_bytes_per_day": per_day(used),
            "write_us": {"p50": q(0.5), "p99": q(0.99), "max": q(1.0), "mean": micros.iter().sum::<f64>() / micros.len() as f64},
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
