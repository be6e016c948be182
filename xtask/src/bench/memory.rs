//! Section 6: daemon memory. Resident set idle without and with the
//! databases, then while distinct sources flood in through both paths (the
//! kernel's per-source LRU map, the daemon's source table and geo cache are
//! all bounded: RSS must level off).

use std::{process::Command, time::Duration};

use super::{
    guarded, needs_root,
    net::{self, Daemon, GenSpec, XdpNet},
    report::{fix, int, si, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

/// Each flood comes in PARTS parts of `part_size` distinct sources.
const PARTS: u64 = 4;
/// Growth allowed over the last part of a flood: the bounded structures
/// (geo cache, pipeline queue, source table) are full after the earlier ones.
const LAST_PART_BUDGET_MIB: f64 = 16.0;

fn mib_kb(kb: u64) -> String {
    fix(kb as f64 / 1024.0, 1)
}

/// Kernel memory of the BPF maps a process holds (memlock of each map fd).
fn bpf_map_bytes(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return 0 };
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    for e in dir.filter_map(Result::ok) {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned());
        if let (Some(id), Some(mem)) = (field("map_id:"), field("memlock:")) {
            if seen.insert(id) {
                total += mem.parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

struct Snap {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
    maps: u64,
}

fn snap(pid: u32) -> Snap {
    Snap {
        rss: sys::proc_status_kb(pid, "VmRSS"),
        anon: sys::proc_status_kb(pid, "RssAnon"),
        file: sys::proc_status_kb(pid, "RssFile"),
        hwm: sys::proc_status_kb(pid, "VmHWM"),
        maps: bpf_map_bytes(pid),
    }
}

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(6, "Daemon memory", ctx.command_for("memory"));
    guarded(section, |s| {
        if !needs_root(ctx, s) {
            return Ok(());
        }
        let part_size: u64 = if ctx.quick { 10_000 } else { 500_000 };
        let mut t = Table::new(
            &format!("Daemon memory (MiB; BPF maps are kernel memory, from the memlock of the daemon's map fds); floods of {} distinct sources, in {PARTS} parts",
                     int((PARTS * part_size) as f64)),
            &["state", "VmRSS", "RssAnon", "RssFile (mapped DBs, binary)", "VmHWM (peak)", "BPF maps", "kernel sources inserted / capacity",
              "daemon sources tracked / evicted"],
        );
        let row = |t: &mut Table, what: &str, sn: &Snap, stats: Option<&serde_json::Value>| {
            t.row(vec![
                what.into(),
                mib_kb(sn.rss),
                mib_kb(sn.anon),
                mib_kb(sn.file),
                mib_kb(sn.hwm),
                fix(sn.maps as f64 / 1048576.0, 1),
                stats.map_or("-".into(), |v| {
                    if v["kernel"].is_null() {
                        "-".into()
                    } else {
                        format!(
                            "{} / {}",
                            int(num(v, "kernel/pipeline/source_inserted")),
                            int(num(v, "kernel/sources_capacity"))
                        )
                    }
                }),
                stats.map_or("-".into(), |v| {
                    format!("{} / {}", int(num(v, "sources/tracked")), int(num(v, "sources/evicted")))
                }),
            ]);
        };

        // Without databases, syslog only: the floor.
        {
            let args: &[&str] =
                if ctx.quick { &["--no-xdp"] } else { &["--no-xdp", "--geo-city", "none", "--geo-asn", "none"] };
            let d = Daemon::start(ctx, "mem-bare", args)?;
            sys::sleep(1.0);
            let st = d.stats()?;
            row(&mut t, "idle, `--no-xdp`, no geo databases", &snap(d.pid()), Some(&st));
        }

        let net = XdpNet::new(ctx, 2)?;
        let d = Daemon::start(ctx, "mem", &net.daemon_args().iter().map(String::as_str).collect::<Vec<_>>())?;
        if !ctx.quick {
            d.wait_geo(Duration::from_secs(60));
        }
        sys::sleep(1.0);
        let st = d.stats()?;
        let idle = snap(d.pid());
        let dbs = if ctx.quick { "no databases (smoke run)" } else { "DB-IP city v4+v6 mapped, ASN tables loaded" };
        row(&mut t, &format!("idle, XDP attached, {dbs}"), &idle, Some(&st));

        // XDP flood: distinct IPv6 sources (a ULA /64), each sent once.
        let mut parts = Vec::new();
        for part in 0..PARTS {
            let g = net::generate(
                ctx,
                &GenSpec {
                    ns: &net.gen,
                    iface: &net.gen_if,
                    dst_mac: net::OTHER_MAC,
                    src: &offset_v6(net::SRC_V6, part * part_size),
                    dst: net::DST_V6,
                    sources: part_size,
                    rate: 0,
                    seconds: 60.0,
                    count: part_size,
                },
            )?;
            let st = d.settle(|v| num(v, "events/received"), Duration::from_millis(1500), Duration::from_secs(30))?;
            let sn = snap(d.pid());
            row(
                &mut t,
                &format!("after XDP flood, {} sources ({} pps)", int(((part + 1) * part_size) as f64), si(g.pps)),
                &sn,
                Some(&st),
            );
            parts.push(sn.anon);
        }
        let xdp_growth = last_part_growth_mib(&parts);

        // Syslog flood: distinct public addresses, each geolocated (cache-bounded).
        let mut parts = Vec::new();
        for part in 0..PARTS {
            let mut cmd = Command::new(&ctx.bin_bench);
            cmd.args(["syslog-send", "--target", &format!("127.0.0.1:{}", d.syslog_port), "--public"])
                .args(["--sources", &(PARTS * part_size).to_string(), "--count", &(part_size).to_string()])
                .args(["--first", &(part * part_size).to_string()])
                .args(["--rate", if ctx.quick { "20000" } else { "150000" }, "--seconds", "60"]);
            let out = Proc::spawn("monitor-bench syslog-send", &mut cmd, Some(&ctx.out_dir.join("syslog-send.log")))?
                .wait_output()?;
            let g = sys::last_json(&out)?;
            let st = d.settle(|v| num(v, "syslog/received"), Duration::from_millis(1500), Duration::from_secs(30))?;
            let sn = snap(d.pid());
            row(
                &mut t,
                &format!(
                    "after syslog flood, {} public sources ({} lines/s)",
                    int(((part + 1) * part_size) as f64),
                    si(num(&g, "pps"))
                ),
                &sn,
                Some(&st),
            );
            parts.push(sn.anon);
        }
        let syslog_growth = last_part_growth_mib(&parts);
        s.tables.push(t);
        let growth = xdp_growth.max(syslog_growth);
        s.target(
            format!("RSS bounded under a flood of distinct sources: anonymous memory grew {} MiB (XDP) and {} MiB (syslog) over the last of {PARTS} parts (budget {LAST_PART_BUDGET_MIB:.0} MiB)",
                    fix(xdp_growth, 1), fix(syslog_growth, 1)),
            if ctx.quick { None } else { Some(growth <= LAST_PART_BUDGET_MIB) },
        );
        s.note(
            "Bounds: kernel per-source LRU map `--sources-max` (default 65,536 entries, kernel memory); the daemon's source \
             table (10,000) and recent events (2,000); the geo cache `--geo-cache` (default 100,000 addresses); the \
             pipeline queue (16,384 events), which the syslog flood fills when geolocating new sources falls behind: \
             the UDP receiver then waits, and the backlog stays in its socket buffer (kernel memory). The city \
             databases are memory-mapped: they count in RssFile only as far as lookups touched their pages (and the kernel \
             may drop those pages under pressure).",
        );
        s.note(
            "The XDP flood's events are limited by `--events-per-sec` (20,000/s), so the daemon's source table sees a \
             sample of the XDP sources; the syslog flood makes one event per line, every one geolocated.",
        );
        Ok(())
    })
}

/// Anonymous memory added by the last part, in MiB.
fn last_part_growth_mib(parts: &[u64]) -> f64 {
    match parts {
        [.., before, last] => (*last as f64 - *before as f64) / 1024.0,
        _ => 0.0,
    }
}

/// `base` + n as an IPv6 address.
fn offset_v6(base: &str, n: u64) -> String {
    let a: std::net::Ipv6Addr = base.parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED);
    std::net::Ipv6Addr::from(u128::from(a) + u128::from(n)).to_string()
}
