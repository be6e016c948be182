//! What geolocation found out about an address, as events carry it.

use std::sync::Arc;

use serde::Serialize;

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
}

impl GeoInfo {
    /// The label and nothing else: what is known of an address no database
    /// answers for.
    pub fn only(label: AddressLabel) -> Self {
        GeoInfo { label, country_code: None, country: None, city: None, lat: None, lon: None, asn: None, as_org: None }
    }
}
