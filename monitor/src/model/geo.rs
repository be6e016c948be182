//! What geolocation found out about an address, as events carry it.

use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::address::AddressLabel;

/// Everything known about one address.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GeoInfo {
    pub label: AddressLabel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<Arc<str>>,
    /// This value as JSON, once it is sealed (see [`GeoInfo::sealed`]).
    #[serde(skip)]
    json: SealedJson,
}

/// The JSON of a sealed [`GeoInfo`]. A clone does not keep it: a clone may
/// be changed, and then its JSON would be stale.
#[derive(Debug, Default)]
struct SealedJson(Option<Box<RawValue>>);

impl Clone for SealedJson {
    fn clone(&self) -> Self {
        SealedJson(None)
    }
}

impl PartialEq for SealedJson {
    fn eq(&self, _: &Self) -> bool {
        true // a cache: never part of the value
    }
}

impl GeoInfo {
    /// The label and nothing else: what is known of an address no database
    /// answers for.
    pub fn only(label: AddressLabel) -> Self {
        GeoInfo {
            label,
            country_code: None,
            country: None,
            city: None,
            lat: None,
            lon: None,
            asn: None,
            as_org: None,
            json: SealedJson::default(),
        }
    }

    /// The value with its JSON written once, for one that is shared and
    /// serialized again and again: every event from an address carries the
    /// same `Arc<GeoInfo>`, and writing its names and coordinates per event
    /// was a visible part of the daemon's cost per event.
    pub fn sealed(mut self) -> Self {
        self.json = SealedJson(serde_json::value::to_raw_value(&self).ok());
        self
    }

    /// Serializes as the derived form would, from the sealed JSON if there is one.
    pub fn serialize_shared<S: Serializer>(geo: &Option<Arc<GeoInfo>>, s: S) -> Result<S::Ok, S::Error> {
        match geo.as_deref() {
            Some(GeoInfo { json: SealedJson(Some(json)), .. }) => json.serialize(s),
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AddressLabel;

    #[test]
    fn sealed_json_is_the_derived_json_and_clones_drop_it() {
        let mut geo = GeoInfo::only(AddressLabel::Public);
        geo.country_code = Some("DE".into());
        geo.city = Some("Zürich \"Nord\"".into());
        geo.lat = Some(47.37);
        geo.asn = Some(3320);
        geo.as_org = Some(Arc::from("Deutsche Telekom AG"));
        let derived = serde_json::to_string(&Some(Arc::new(geo.clone()))).expect("json");
        let sealed = Some(Arc::new(geo.clone().sealed()));
        let mut fast = Vec::new();
        GeoInfo::serialize_shared(&sealed, &mut serde_json::Serializer::new(&mut fast)).expect("json");
        assert_eq!(String::from_utf8(fast).expect("utf-8"), derived);
        let mut changed = sealed.as_deref().cloned().expect("some");
        changed.asn = Some(1);
        let mut out = Vec::new();
        GeoInfo::serialize_shared(&Some(Arc::new(changed)), &mut serde_json::Serializer::new(&mut out)).expect("json");
        assert!(String::from_utf8(out).expect("utf-8").contains(r#""asn":1"#));
    }
}
