//! Section 4: GeoIP lookups per second through `monitor::enrich::geo::Geo`, the
//! daemon's own enrichment (city + ASN databases, bounded cache).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use monitor::enrich::geo::{Geo, GeoConfig};
use serde_json::json;

pub(crate) struct Args {
    pub city: Vec<PathBuf>,
    pub asn: Vec<PathBuf>,
    /// Distinct addresses looked up once each (cache misses).
    pub cold: u64,
    /// Lookups of a working set that fits the cache.
    pub cached: u64,
    pub threads: Vec<usize>,
}

fn addr(i: u64) -> IpAddr {
    IpAddr::V4(crate::syslog_send::source(i, u64::MAX, true))
}

fn v6(i: u64) -> IpAddr {
    // 2a00::/12 (RIPE), spread by an odd multiplier.
    let low = u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    IpAddr::V6(std::net::Ipv6Addr::from((0x2a00u128 << 112) | (low << 40)))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let missing: Vec<_> = args.city.iter().chain(&args.asn).filter(|p| !p.exists()).collect();
    if !missing.is_empty() {
        println!("{}", json!({"skipped": format!("missing: {missing:?}")}));
        return Ok(());
    }
    let t = Instant::now();
    let geo = Arc::new(Geo::new(GeoConfig { city: args.city.clone(), asn: args.asn.clone(), cache_entries: 100_000 }));
    geo.reload();
    let load_s = t.elapsed().as_secs_f64();
    let status = geo.status();
    if !status.errors.is_empty() {
        println!("{}", json!({"skipped": format!("database errors: {:?}", status.errors)}));
        return Ok(());
    }
    // Sanity: a well-known public address resolves to a country.
    let sample = geo.lookup(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)));
    let mut found = 0u64;

    // Cold: every address new (a database lookup and a cache insert each).
    let t = Instant::now();
    for i in 0..args.cold {
        let ip = if i % 8 == 7 { v6(i) } else { addr(1_000_000 + i) };
        if geo.lookup(ip).country_code.is_some() {
            found += 1;
        }
    }
    let cold_s = t.elapsed().as_secs_f64();

    // Cached: 10k addresses (well under the cache size), looked up again and again.
    let working: Vec<IpAddr> = (0..10_000).map(addr).collect();
    for ip in &working {
        geo.lookup(*ip);
    }
    let mut cached = Vec::new();
    for &threads in &args.threads {
        let per_thread = args.cached / threads as u64;
        let t = Instant::now();
        std::thread::scope(|s| {
            for k in 0..threads {
                let (geo, working) = (&geo, &working);
                s.spawn(move || {
                    let mut hits = 0u64;
                    for i in 0..per_thread {
                        let ip = working[((i + k as u64 * 7919) % working.len() as u64) as usize];
                        hits += u64::from(geo.lookup(ip).asn.is_some());
                    }
                    std::hint::black_box(hits);
                });
            }
        });
        let secs = t.elapsed().as_secs_f64();
        cached.push(json!({"threads": threads, "lookups": per_thread * threads as u64, "seconds": secs,
                           "per_sec": (per_thread * threads as u64) as f64 / secs}));
    }
    println!(
        "{}",
        json!({
            "load_s": load_s,
            "city_db": status.city_db.iter().map(|d| d.kind.clone()).collect::<Vec<_>>(),
            "asn_db": status.asn_db.iter().map(|d| d.kind.clone()).collect::<Vec<_>>(),
            "sample": format!("81.2.69.142 -> {:?} {:?} AS{:?}", sample.country_code, sample.city, sample.asn),
            "cold": {"lookups": args.cold, "seconds": cold_s, "per_sec": args.cold as f64 / cold_s,
                     "with_country": found},
            "cached": cached,
        })
    );
    Ok(())
}
