//! Per-second packet rates per class: a fixed ring of an hour. After a
//! restart, the seconds of the hour before come back from the history
//! store's minutes as a coarser shape (each second of a minute at its
//! average); the seconds nobody counted are unknown (null), not zero.

use std::collections::VecDeque;

use super::documents::HistoryDoc;
use crate::model::SCHEMA_VERSION;

/// The series the dashboard charts, in this order.
pub const SERIES: [&str; 5] = ["icmp", "icmpv6", "http", "https", "syslog"];
pub(super) const HISTORY_SECONDS: usize = 3600;

#[derive(Clone, Debug)]
pub struct History {
    /// Oldest first; each entry is one second of [`SERIES`] counts, None
    /// for a second before the start that no restored minute covers.
    seconds: VecDeque<Option<[u64; SERIES.len()]>>,
    /// Wall-clock end of the newest second, in ms.
    end_ms: u64,
}

impl Default for History {
    fn default() -> Self {
        History { seconds: VecDeque::with_capacity(HISTORY_SECONDS), end_ms: 0 }
    }
}

impl History {
    /// Appends one completed second.
    pub fn push(&mut self, counts: [u64; SERIES.len()], end_ms: u64) {
        if self.seconds.len() == HISTORY_SECONDS {
            self.seconds.pop_front();
        }
        self.seconds.push_back(Some(counts));
        self.end_ms = end_ms;
    }

    /// Fills the hour before `end_ms` from restored minutes
    /// ((start_ms, packets per series, covered seconds), oldest first), each
    /// second it covered at its average; the rest stays unknown.
    pub fn restore(&mut self, minutes: &[(u64, [u64; SERIES.len()], u64)], end_ms: u64) {
        self.seconds.clear();
        // Up to the end of the current second: a daemon restarted within a
        // second of its last one finds that second too.
        let end_s = end_ms / 1000 + 1;
        let mut minutes = minutes.iter().peekable();
        for s in end_s.saturating_sub(HISTORY_SECONDS as u64)..end_s {
            let minute_start = s / 60 * 60_000;
            while minutes.peek().is_some_and(|(start, _, _)| *start < minute_start) {
                minutes.next();
            }
            let counts =
                minutes.peek().filter(|(start, _, _)| *start == minute_start).and_then(|(_, counts, covered)| {
                    // Spread over the seconds counted, the remainder in the first ones: the sum stays exact.
                    let covered = if *covered == 0 { (1 << 60) - 1 } else { *covered };
                    let k = s % 60;
                    if covered & (1 << k) == 0 {
                        return None;
                    }
                    let (n_seconds, rank) =
                        (u64::from(covered.count_ones()), u64::from((covered & ((1 << k) - 1)).count_ones()));
                    Some(counts.map(|n| n / n_seconds + u64::from(rank < n % n_seconds)))
                });
            self.seconds.push_back(counts);
        }
        self.end_ms = end_s * 1000;
    }

    /// The most recent complete second.
    pub fn latest(&self) -> [u64; SERIES.len()] {
        self.seconds.back().copied().flatten().unwrap_or_default()
    }

    /// The last `minutes` (or as much as there is), per series.
    pub fn doc(&self, minutes: usize) -> HistoryDoc {
        let n = (minutes * 60).min(self.seconds.len());
        let skip = self.seconds.len() - n;
        let series = SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, self.seconds.iter().skip(skip).map(|s| s.map(|s| s[i])).collect()))
            .collect();
        HistoryDoc { schema: SCHEMA_VERSION, step_ms: 1000, end_ms: self.end_ms, series }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_to_an_hour() {
        let mut h = History::default();
        for i in 0..(HISTORY_SECONDS as u64 + 10) {
            h.push([i, 0, 0, 0, 0], i * 1000);
        }
        let v = h.doc(60);
        let icmp = &v.series["icmp"];
        assert_eq!(icmp.len(), HISTORY_SECONDS);
        assert_eq!(icmp[0], Some(10));
        assert_eq!(h.doc(1).series["icmp"].len(), 60);
        assert_eq!(h.latest()[0], HISTORY_SECONDS as u64 + 9);
    }

    #[test]
    fn restored_minutes_spread_over_their_seconds_and_the_rest_is_unknown() {
        let mut h = History::default();
        let end = 1_000 * 60_000;
        h.restore(
            &[
                (end - 60_000 * 59, [1, 0, 0, 0, 0], 0),
                (end - 120_000, [61, 0, 0, 0, 0], 0),
                (end - 60_000, [9, 0, 0, 0, 0], 0b111),
            ],
            end - 1, // in the last second: it is restored too
        );
        let icmp = &h.doc(60).series["icmp"];
        assert_eq!(icmp.len(), HISTORY_SECONDS);
        assert_eq!(icmp[0], None, "minute -60 is not restored");
        assert_eq!((icmp[60], icmp[61]), (Some(1), Some(0)), "minute -59 held one packet");
        let minute = &icmp[HISTORY_SECONDS - 120..HISTORY_SECONDS - 60];
        assert_eq!(minute.iter().flatten().sum::<u64>(), 61);
        assert_eq!((minute[0], minute[1]), (Some(2), Some(1)));
        let last = &icmp[HISTORY_SECONDS - 60..];
        assert_eq!(&last[..4], [Some(3), Some(3), Some(3), None], "only the seconds counted");
        assert_eq!(icmp[HISTORY_SECONDS - 1], None);
        assert_eq!(h.end_ms, end);
        h.push([5, 0, 0, 0, 0], end + 1_000);
        assert_eq!(h.doc(60).series["icmp"].last(), Some(&Some(5)));
    }
}
