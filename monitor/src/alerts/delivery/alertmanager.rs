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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rfc3339;

    #[test]
    fn endpoint_under_the_base_url() {
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
