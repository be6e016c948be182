//! City databases in either layout: GeoIP2/GeoLite2 City (nested records
//! with localised names) or DB-IP Lite as ip-location-db publishes it (flat).

use std::{collections::BTreeMap, net::IpAddr, path::Path};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use super::{mmdb, DatabaseStatus, GeoError};

/// The fields of both layouts; each record fills one set or the other.
#[derive(Deserialize)]
struct CityRecord {
    // DB-IP Lite, flat.
    country_code: Option<String>,
    city: Option<CityField>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    // GeoIP2.
    country: Option<Named>,
    location: Option<Location>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CityField {
    Flat(String),
    Named(Named),
}

#[derive(Deserialize)]
struct Named {
    iso_code: Option<String>,
    names: Option<BTreeMap<String, String>>,
}

impl Named {
    fn english(self) -> Option<String> {
        self.names.and_then(|mut n| n.remove("en"))
    }
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CityInfo {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

pub struct CityDb {
    reader: Reader<Mmap>,
    pub status: DatabaseStatus,
}

impl CityDb {
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let reader = mmdb::open(path)?;
        let status = DatabaseStatus::from_mmdb(path, &reader.metadata);
        // Reject a database that decodes to nothing we understand early,
        // with a clear message, instead of returning empty results forever.
        if let Some(fields) = foreign_fields(&reader) {
            return Err(GeoError::open(
                path,
                format!(
                    "not a city database (type {:?}, records have {fields}); \
                     expected GeoIP2/GeoLite2 City or DB-IP city",
                    reader.metadata.database_type
                ),
            ));
        }
        Ok(CityDb { reader, status })
    }

    /// True if this database can answer for `ip` (IPv4-only files cannot
    /// answer IPv6 queries).
    pub fn covers(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() || self.reader.metadata.ip_version == 6
    }

    pub fn lookup(&self, ip: IpAddr) -> Result<Option<CityInfo>, GeoError> {
        let record: Option<CityRecord> = mmdb::lookup(&self.reader, ip.to_canonical())?;
        Ok(record.map(|r| {
            let mut info =
                CityInfo { country_code: r.country_code, lat: r.latitude, lon: r.longitude, ..CityInfo::default() };
            if let Some(country) = r.country {
                info.country_code = info.country_code.or(country.iso_code.clone());
                info.country = country.english();
            }
            // DB-IP has codes only: name the country after ISO 3166-1.
            info.country = info.country.or_else(|| info.country_code.as_deref().and_then(iso_country_name));
            info.city = match r.city {
                Some(CityField::Flat(name)) => Some(name),
                Some(CityField::Named(named)) => named.english(),
                None => None,
            }
            .filter(|c| !c.is_empty());
            if let Some(loc) = r.location {
                info.lat = info.lat.or(loc.latitude);
                info.lon = info.lon.or(loc.longitude);
            }
            info
        }))
    }
}

/// The ISO 3166-1 English short name of an alpha-2 code ("DE": "Germany"),
/// if ISO assigns the code.
fn iso_country_name(code: &str) -> Option<String> {
    rust_iso3166::from_alpha2(&code.to_ascii_uppercase()).map(|country| country.name.to_owned())
}

/// Addresses likely to be in any real or fixture database.
const PROBES: [&str; 6] = ["1.0.0.1", "8.8.8.8", "81.2.69.160", "9.9.9.9", "2001:4860::8888", "2001:218::1"];
const CITY_FIELDS: [&str; 6] = ["country_code", "city", "latitude", "country", "location", "continent"];

/// The field names of a sampled record when none of them is a city field;
/// `None` when the records look right or no probe address is in the file.
fn foreign_fields(reader: &Reader<Mmap>) -> Option<String> {
    if reader.metadata.database_type.to_ascii_lowercase().contains("asn") {
        return Some("ASN data".into());
    }
    for probe in PROBES {
        let Ok(ip) = probe.parse::<IpAddr>() else { continue };
        if ip.is_ipv6() && reader.metadata.ip_version == 4 {
            continue;
        }
        let Ok(Some(record)) = mmdb::lookup::<BTreeMap<String, serde::de::IgnoredAny>>(reader, ip) else {
            continue;
        };
        if record.keys().any(|k| CITY_FIELDS.contains(&k.as_str())) {
            return None;
        }
        return Some(record.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::iso_country_name;

    #[test]
    fn country_names_from_iso_codes() {
        assert_eq!(iso_country_name("DE").as_deref(), Some("Germany"));
        assert_eq!(iso_country_name("de").as_deref(), Some("Germany"), "case does not matter");
        assert_eq!(iso_country_name("JP").as_deref(), Some("Japan"));
        assert_eq!(iso_country_name("US").as_deref(), Some("United States of America"));
        for unassigned in ["ZZ", "EU", "", "D", "DEU", "é"] {
            assert_eq!(iso_country_name(unassigned), None, "{unassigned:?}");
        }
    }
}
