//! Syslog ingestion parsers: lines per second per core for the real line
//! formats (the golden captures of monitor-common), header parse alone and
//! header + netfilter parse (what the daemon does per datagram).
//!
//! `cargo bench -p monitor-bench --bench syslog_parse`; `cargo xtask bench`
//! reads the estimates criterion writes.

use std::{hint::black_box, path::Path};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monitor_common::{netfilter, syslog};

const PREFIXES: [&str; 4] = ["IPT_ICMP ", "IPT_ICMP6 ", "IPT_HTTP ", "IPT_DROP "];

/// Every non-empty line of the golden captures, by file stem.
fn golden() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitor-common/tests/golden");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return out };
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        // The TCP capture is a byte stream (octet counting), not lines.
        if path.extension().is_none_or(|e| e != "txt") || stem.contains("tcp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
        if !lines.is_empty() {
            out.push((stem.to_owned(), lines));
        }
    }
    out
}

/// A fallback when the captures are missing: the rsyslog forward format.
fn synthetic() -> Vec<(String, Vec<String>)> {
    let line = "<4>Nov 24 20:22:40 vm kernel: IPT_ICMP IN=gold0 OUT= MAC=06:22:6b:ae:25:23:56:b4:2e:be:47:46:08:00 \
                SRC=10.213.0.2 DST=10.213.0.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=56089 DF PROTO=ICMP TYPE=8 CODE=0 ID=11809 SEQ=1 ";
    vec![("synthetic_3164".to_owned(), vec![line.to_owned()])]
}

#[allow(clippy::significant_drop_tightening, reason = "the benchmark group lives until its finish()")]
fn parsers(c: &mut Criterion) {
    let mut sets = golden();
    if sets.is_empty() {
        sets = synthetic();
    }
    let all: Vec<String> = sets.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    sets.push(("all".to_owned(), all));
    let mut group = c.benchmark_group("syslog+netfilter");
    for (name, lines) in &sets {
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for line in lines {
                    if let Ok(msg) = syslog::parse(black_box(line)) {
                        if let Ok(l) = netfilter::parse(msg.msg, &PREFIXES) {
                            ok += usize::from(l.src.is_some());
                        }
                    }
                }
                black_box(ok)
            })
        });
    }
    group.finish();
    let all = &sets.last().map(|s| s.1.clone()).unwrap_or_default();
    let mut group = c.benchmark_group("syslog_header");
    group.throughput(Throughput::Elements(all.len() as u64));
    group.bench_function("all", |b| b.iter(|| all.iter().filter(|l| syslog::parse(black_box(l)).is_ok()).count()));
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
