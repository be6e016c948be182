//! `new_origin`: traffic from a country or an ASN not seen in the last
//! `lookback`, once the warm-up after start is over. What was seen before
//! comes from the [`OriginHistory`](super::history::OriginHistory) (the
//! history store, or memory since start), asked once; after that the rule
//! keeps its own record. An alert stays for `hold`, since the next second
//! the origin is no longer new.

use std::collections::HashMap;

use serde::Deserialize;

use super::{
    condition::{Condition, Context, Hit},
    duration::Duration,
    history::Origins,
};
use crate::state::Snapshot;

/// Origins this rule remembers at most (each kind); new ones it is holding at most.
const KNOWN_MAX: usize = 200_000;
const HELD_MAX: usize = 1_000;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Country,
    Asn,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginParams {
    pub by: By,
    /// Not seen within this long before: new (1m to 366d).
    #[serde(default = "thirty_days")]
    pub lookback: Duration,
    /// No alerts this long after start, while the history fills.
    #[serde(default = "one_hour")]
    pub warmup: Duration,
    /// How long an alert for a new origin lasts.
    #[serde(default = "ten_minutes")]
    pub hold: Duration,
}

fn thirty_days() -> Duration {
    Duration::secs(30 * 86_400)
}

fn one_hour() -> Duration {
    Duration::secs(3_600)
}

fn ten_minutes() -> Duration {
    Duration::secs(600)
}

impl OriginParams {
    pub(super) fn validated(self) -> Result<Self, String> {
        if !(Duration::secs(60)..=Duration::secs(366 * 86_400)).contains(&self.lookback) {
            return Err("params: lookback must be 1m to 366d".into());
        }
        if self.warmup > Duration::secs(30 * 86_400) {
            return Err("params: warmup must be at most 30d".into());
        }
        if !(Duration::secs(1)..=Duration::secs(86_400)).contains(&self.hold) {
            return Err("params: hold must be 1s to 1d".into());
        }
        Ok(self)
    }
}

pub struct NewOrigin {
    params: OriginParams,
    /// Each origin and when it was last seen; None until the history is read.
    known: Option<HashMap<String, u64>>,
    /// New origins and when they appeared.
    held: HashMap<String, (u64, f64)>,
    last_second: u64,
}

impl NewOrigin {
    pub fn new(params: OriginParams) -> Self {
        NewOrigin { params, known: None, held: HashMap::new(), last_second: 0 }
    }

    fn label(&self) -> &'static str {
        match self.params.by {
            By::Country => "country",
            By::Asn => "asn",
        }
    }
}

/// This second's origins of the rule's kind, with their packets.
fn this_second(snapshot: &Snapshot, by: By) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for s in snapshot.activity.sources.values() {
        let key = match by {
            By::Country => s.country_code().map(str::to_owned),
            By::Asn => s.asn().map(|a| a.to_string()),
        };
        if let Some(key) = key {
            *out.entry(key).or_default() += s.packets;
        }
    }
    out
}

impl Condition for NewOrigin {
    fn evaluate(&mut self, snapshot: &Snapshot, cx: &mut Context<'_>) -> Vec<Hit> {
        let now = cx.now_ms;
        let lookback = self.params.lookback.ms();
        let known = self.known.get_or_insert_with(|| {
            let Origins { countries, asns } = cx.origins.seen_since(now.saturating_sub(lookback));
            match self.params.by {
                By::Country => countries.into_iter().map(|c| (c, now)).collect(),
                By::Asn => asns.into_iter().map(|a| (a.to_string(), now)).collect(),
            }
        });
        if snapshot.activity.end_ms != self.last_second {
            self.last_second = snapshot.activity.end_ms;
            let warm = now >= cx.started_ms + self.params.warmup.ms();
            for (origin, packets) in this_second(snapshot, self.params.by) {
                let new = known.get(&origin).is_none_or(|at| at + lookback < now);
                if new && warm && self.held.len() < HELD_MAX {
                    self.held.insert(origin.clone(), (now, packets as f64));
                }
                if known.len() >= KNOWN_MAX && !known.contains_key(&origin) {
                    known.retain(|_, at| *at + lookback >= now);
                }
                if known.len() < KNOWN_MAX {
                    known.insert(origin, now);
                }
            }
        }
        let hold = self.params.hold.ms();
        self.held.retain(|_, (since, _)| *since + hold > now);
        let label = self.label();
        self.held.iter().map(|(origin, (_, packets))| Hit::new(label, origin.clone(), *packets)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{
        history::{MemoryOriginHistory, OriginHistory as _},
        testing::{activity_geo, snapshot_with},
    };

    #[test]
    fn an_unseen_country_after_the_warmup_is_held() {
        let params = OriginParams {
            by: By::Country,
            lookback: Duration::secs(86_400),
            warmup: Duration::secs(10),
            hold: Duration::secs(5),
        };
        let mut rule = NewOrigin::new(params);
        let mut history = MemoryOriginHistory::default();
        history.record(500, &Origins { countries: ["DE".to_owned()].into(), asns: Default::default() });
        let mut at = |now: u64, country: &str, rule: &mut NewOrigin| {
            let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut history };
            rule.evaluate(&snapshot_with(activity_geo(now, "192.0.2.1", country, 64_500)), &mut cx)
        };
        assert!(at(1_000, "FR", &mut rule).is_empty(), "warming up: FR becomes known");
        assert!(at(11_000, "DE", &mut rule).is_empty(), "known from the history");
        assert!(at(12_000, "FR", &mut rule).is_empty(), "seen during the warm-up");
        assert_eq!(at(13_000, "JP", &mut rule), vec![Hit::new("country", "JP", 3.0)]);
        assert_eq!(at(14_000, "JP", &mut rule).len(), 1, "held");
        assert!(at(18_000, "JP", &mut rule).is_empty(), "the hold is over");
    }
}
