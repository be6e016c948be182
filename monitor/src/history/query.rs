//! Reads: a range of the chart, the top lists of a range, the last hour
//! for a restart, the origins seen lately. Plain functions of a
//! connection, so the writer (at start) and the reader thread share them.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
    sync::Arc,
};

use rusqlite::{params, Connection};

use super::{
    error::{HistoryError, SqlContext as _},
    schema::{self, dim},
    store::{HOUR_MS, MINUTE_MS, MINUTE_TIER_DAYS},
};
use crate::{
    model::{label, GeoInfo, SCHEMA_VERSION},
    state::{
        documents::{HistoryDoc, PacketsBytes, RangeDoc, TopDoc, TopSource, TopTotals},
        AsnCount, CountryCount, KeyCount, MinuteSource, MinuteSummary, Restored, SourceSummary, SERIES,
    },
};

/// Most steps one `/api/history` answer has.
pub const MAX_POINTS: u64 = 10_000;
/// Steps tried when none is asked for, finest first.
const NICE_STEPS: [u64; 7] =
    [MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS];
/// Steps an answer aims at when none is asked for.
const TARGET_POINTS: u64 = 720;

/// A range of the chart as asked: ms since the epoch, the step optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRange {
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: Option<u64>,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    v.max(0) as u64
}

/// The tier the range is read from, given when the minutes start at `now_ms`.
fn tier(from_ms: u64, now_ms: u64) -> u64 {
    let minutes_from = now_ms.saturating_sub(u64::from(MINUTE_TIER_DAYS) * 24 * HOUR_MS);
    if from_ms >= minutes_from {
        MINUTE_MS
    } else {
        HOUR_MS
    }
}

/// The (tier, step) of a range: the step asked for (a multiple of a
/// minute, or of an hour where only hours are kept), or the finest one
/// that gives at most `TARGET_POINTS` steps.
pub fn choose_step(range: HistoryRange, now_ms: u64) -> Result<(u64, u64), String> {
    if range.to_ms <= range.from_ms {
        return Err("to must be after from (ms since the epoch)".into());
    }
    let span = range.to_ms - range.from_ms;
    let tier = tier(range.from_ms, now_ms);
    let step = match range.step_ms {
        Some(step) => {
            if step == 0 || step % tier != 0 {
                return Err(if tier == MINUTE_MS {
                    "step must be a multiple of 60000 ms (a minute)".into()
                } else {
                    format!("minutes are kept for {MINUTE_TIER_DAYS} days: before that, step must be a multiple of 3600000 ms (an hour)")
                });
            }
            step
        }
        None => NICE_STEPS
            .into_iter()
            .filter(|s| s % tier == 0)
            .find(|s| span.div_ceil(*s) <= TARGET_POINTS)
            .unwrap_or(NICE_STEPS[NICE_STEPS.len() - 1]),
    };
    if span.div_ceil(step) > MAX_POINTS {
        return Err(format!("too many steps: at most {MAX_POINTS} per answer; ask for a larger step"));
    }
    Ok((tier, step))
}

/// The chart over a range: packets per step and series; null for a step
/// no minute was written in.
pub fn history(conn: &Connection, range: HistoryRange, now_ms: u64) -> Result<HistoryDoc, HistoryError> {
    let (tier, step) = choose_step(range, now_ms).map_err(HistoryError::Range)?;
    let from = range.from_ms - range.from_ms % step;
    let steps = (range.to_ms - from).div_ceil(step) as usize;
    let mut series: BTreeMap<&'static str, Vec<Option<u64>>> = SERIES.iter().map(|s| (*s, vec![None; steps])).collect();
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts - ts % ?1, key, sum(packets) FROM traffic
             WHERE step = ?2 AND dim = ?3 AND ts >= ?4 AND ts < ?5 GROUP BY 1, 2",
        )
        .what("reading a range")?;
    let rows = stmt
        .query_map(params![int(step), int(tier), dim::SERIES, int(from), int(range.to_ms)], |r| {
            Ok((uint(r.get(0)?), r.get::<_, String>(1)?, uint(r.get(2)?)))
        })
        .what("reading a range")?;
    for row in rows {
        let (at, key, packets) = row.what("reading a range")?;
        let i = ((at.saturating_sub(from)) / step) as usize;
        if let Some(slot) = series.get_mut(key.as_str()).and_then(|v| v.get_mut(i)) {
            *slot = Some(packets);
        }
    }
    Ok(HistoryDoc { schema: SCHEMA_VERSION, step_ms: step, end_ms: from + steps as u64 * step, series })
}

/// The top lists of a range, `n` of each, in /api/top's shape.
pub fn top(conn: &Connection, from_ms: u64, to_ms: u64, n: usize, now_ms: u64) -> Result<TopDoc, HistoryError> {
    if to_ms <= from_ms {
        return Err(HistoryError::Range("to must be after from (ms since the epoch)".into()));
    }
    let tier = tier(from_ms, now_ms);
    let from = from_ms - from_ms % tier;
    let span_s = ((to_ms - from) / 1000).max(1) as f64;
    let names = names(conn)?;
    let grouped = |d: i64| -> Result<Vec<Grouped>, HistoryError> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, sum(packets), sum(bytes), max(sources), min(ts), max(ts) FROM traffic
                 WHERE step = ?1 AND dim = ?2 AND ts >= ?3 AND ts < ?4 GROUP BY key ORDER BY 2 DESC, key LIMIT ?5",
            )
            .what("reading the top of a range")?;
        let rows = stmt
            .query_map(params![int(tier), d, int(from), int(to_ms), n as i64], |r| {
                Ok((r.get(0)?, uint(r.get(1)?), uint(r.get(2)?), uint(r.get(3)?), uint(r.get(4)?), uint(r.get(5)?)))
            })
            .what("reading the top of a range")?;
        rows.collect::<Result<_, _>>().what("reading the top of a range")
    };
    let countries = grouped(dim::COUNTRY)?
        .into_iter()
        .map(|(code, packets, _, sources, _, _)| CountryCount {
            country: names.get(&(dim::COUNTRY, code.clone())).and_then(|n| n.name.clone()),
            country_code: code,
            packets,
            sources,
        })
        .collect();
    let asns = grouped(dim::ASN)?
        .into_iter()
        .filter_map(|(key, packets, _, sources, _, _)| {
            let asn = key.parse().ok()?;
            let as_org = names.get(&(dim::ASN, key)).and_then(|n| n.name.as_deref()).map(Arc::from);
            Some(AsnCount { asn, as_org, packets, sources })
        })
        .collect();
    let sources = grouped(dim::SOURCE)?
        .into_iter()
        .filter_map(|(key, packets, bytes, _, first, last)| {
            let ip: IpAddr = key.parse().ok()?;
            let geo = geo_of(ip, names.get(&(dim::SOURCE, key)), &names);
            Some(TopSource {
                ip,
                summary: SourceSummary::from_history(packets, bytes, first, last + tier - 1, Some(Arc::new(geo))),
                packets_per_s: (packets as f64 / span_s * 100.0).round() / 100.0,
                window_packets: Some(packets),
            })
        })
        .collect();
    let totals = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT dim, key, sum(packets) FROM traffic WHERE step = ?1 AND dim IN (?2, ?3) AND ts >= ?4 AND ts < ?5
                 GROUP BY 1, 2",
            )
            .what("reading the totals of a range")?;
        let rows = stmt
            .query_map(params![int(tier), dim::SERIES, dim::CLASS, int(from), int(to_ms)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, uint(r.get(2)?)))
            })
            .what("reading the totals of a range")?;
        let (mut series, mut counted) = (0, 0);
        for row in rows {
            let (d, key, packets) = row.what("reading the totals of a range")?;
            if d == dim::SERIES {
                series += packets;
            } else if monitor_common::Class::ALL[..4].iter().any(|c| c.name() == key) {
                counted += packets;
            }
        }
        TopTotals { events: 0, weighted_packets: series, counted_packets: Some(counted) }
    };
    Ok(TopDoc {
        schema: SCHEMA_VERSION,
        window_minutes: None,
        sources,
        countries,
        asns,
        icmp_types: Vec::new(),
        totals,
        range: Some(RangeDoc { from_ms: from, to_ms, step_ms: tier }),
    })
}

/// One key's (key, packets, bytes, sources, first step, last step) over a range.
type Grouped = (String, u64, u64, u64, u64, u64);

/// A row of `names`.
struct Name {
    name: Option<String>,
    country: Option<String>,
    asn: Option<u32>,
}

/// Every name (a few thousand rows at most: countries, networks and the
/// sources of the retention period's top lists).
fn names(conn: &Connection) -> Result<HashMap<(i64, String), Name>, HistoryError> {
    let mut stmt = conn.prepare_cached("SELECT dim, key, name, country, asn FROM names").what("reading names")?;
    let rows = stmt
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), Name { name: r.get(2)?, country: r.get(3)?, asn: r.get(4)? })))
        .what("reading names")?;
    rows.collect::<Result<_, _>>().what("reading names")
}

fn geo_of(ip: IpAddr, placed: Option<&Name>, names: &HashMap<(i64, String), Name>) -> GeoInfo {
    let mut geo = GeoInfo::only(label(ip));
    if let Some(p) = placed {
        geo.country_code.clone_from(&p.country);
        geo.asn = p.asn;
    }
    geo.country = geo.country_code.as_ref().and_then(|c| names.get(&(dim::COUNTRY, c.clone()))?.name.clone());
    geo.as_org = geo.asn.and_then(|a| names.get(&(dim::ASN, a.to_string()))?.name.as_deref().map(Arc::from));
    geo
}

/// The minutes of the hour before `now_ms`, oldest first.
pub(super) fn last_hour(conn: &Connection, now_ms: u64) -> Result<Restored, HistoryError> {
    let from = now_ms.saturating_sub(HOUR_MS);
    let names = names(conn)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT ts, dim, key, packets, bytes, sources FROM traffic
             WHERE step = ?1 AND dim IN {} AND ts >= ?2 AND ts <= ?3 ORDER BY ts, dim, packets DESC",
            schema::ALL_DIMS
        ))
        .what("loading the last hour")?;
    let rows = stmt
        .query_map(params![int(MINUTE_MS), int(from), int(now_ms)], |r| {
            Ok((
                uint(r.get(0)?),
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                uint(r.get(3)?),
                uint(r.get(4)?),
                uint(r.get(5)?),
            ))
        })
        .what("loading the last hour")?;
    let mut minutes: Vec<MinuteSummary> = Vec::new();
    for row in rows {
        let (ts, d, key, packets, bytes, sources) = row.what("loading the last hour")?;
        if minutes.last().is_none_or(|m| m.start_ms != ts) {
            minutes.push(MinuteSummary { start_ms: ts, ..Default::default() });
        }
        let Some(m) = minutes.last_mut() else { continue };
        let count = KeyCount { packets, bytes, sources };
        match d {
            dim::SERIES => {
                if let Some(i) = SERIES.iter().position(|s| *s == key) {
                    m.series[i] = packets;
                }
            }
            dim::COVERAGE => m.covered = packets,
            dim::CLASS => {
                if let Some(i) = monitor_common::Class::ALL.iter().position(|c| c.name() == key) {
                    m.classes[i] = PacketsBytes { packets, bytes };
                }
            }
            dim::COUNTRY => {
                let name = names.get(&(d, key.clone())).and_then(|n| n.name.clone());
                m.countries.push((key, name, count));
            }
            dim::ASN => {
                if let Ok(asn) = key.parse() {
                    let org = names.get(&(d, key)).and_then(|n| n.name.as_deref()).map(Arc::from);
                    m.asns.push((asn, org, count));
                }
            }
            dim::SOURCE => {
                if let Ok(ip) = key.parse() {
                    let geo = geo_of(ip, names.get(&(d, key)), &names);
                    m.sources.push(MinuteSource {
                        ip,
                        count,
                        country_code: geo.country_code,
                        country: geo.country,
                        asn: geo.asn,
                        as_org: geo.as_org,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(Restored { minutes })
}

/// Country codes and ASNs with traffic since `since_ms`, in either tier.
pub(super) fn origins_seen_since(
    conn: &Connection,
    since_ms: u64,
) -> Result<(HashSet<String>, HashSet<u32>), HistoryError> {
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT key FROM traffic WHERE step = ?1 AND dim = ?2 AND ts >= ?3")
        .what("reading the origins")?;
    let (mut countries, mut asns) = (HashSet::new(), HashSet::new());
    for (step, since) in [(MINUTE_MS, since_ms), (HOUR_MS, since_ms - since_ms % HOUR_MS)] {
        for d in [dim::COUNTRY, dim::ASN] {
            let keys = stmt
                .query_map(params![int(step), d, int(since)], |r| r.get::<_, String>(0))
                .what("reading the origins")?;
            for key in keys {
                let key = key.what("reading the origins")?;
                if d == dim::COUNTRY {
                    countries.insert(key);
                } else if let Ok(asn) = key.parse() {
                    asns.insert(asn);
                }
            }
        }
    }
    Ok((countries, asns))
}
