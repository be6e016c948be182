//! The Alertmanager v2 API's alert (`POST /api/v2/alerts`, a JSON array),
//! which the generic webhook receives too.

use std::collections::BTreeMap;

use serde::Serialize;

/// One alert as Alertmanager takes it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// While firing: a little beyond the next re-send, so Alertmanager
    /// resolves it by itself if this daemon stops; on resolve: the time.
    pub ends_at: String,
}

/// The API endpoint under an Alertmanager's base URL.
pub fn endpoint(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        ms % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_endpoint() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_000_000_123), "2026-11-30T00:53:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(endpoint("http://127.0.0.1:9093/"), "http://127.0.0.1:9093/api/v2/alerts");
    }

    #[test]
    fn serializes_as_alertmanager_expects() {
        let alert = PostableAlert {
            labels: [("alertname".to_owned(), "X".to_owned())].into(),
            annotations: BTreeMap::new(),
            starts_at: rfc3339(0),
            ends_at: rfc3339(1_000),
        };
        let json = serde_json::to_value(&alert).expect("serializes");
        assert_eq!(json["startsAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["endsAt"], "1970-01-01T00:00:01.000Z");
    }
}
