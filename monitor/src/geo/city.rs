//! City databases in either layout: GeoIP2/GeoLite2 City (nested records
//! with localised names) or DB-IP Lite as ip-location-db publishes it (flat).

use std::{collections::BTreeMap, net::IpAddr, path::Path};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use super::{DatabaseStatus, GeoError};

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
        let reader = Reader::open_mmap(path).map_err(|e| GeoError::open(path, e))?;
        let status = DatabaseStatus::from_mmdb(path, &reader.metadata);
        // Reject a database that decodes to nothing we understand early,
        // with a clear message, instead of returning empty results forever.
        Ok(CityDb { reader, status })
    }

    /// True if this database can answer for `ip` (IPv4-only files cannot
    /// answer IPv6 queries).
    pub fn covers(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() || self.reader.metadata.ip_version == 6
    }

    pub fn lookup(&self, ip: IpAddr) -> Result<Option<CityInfo>, GeoError> {
        let record: Option<CityRecord> = self.reader.lookup(ip).map_err(GeoError::Lookup)?;
        Ok(record.map(|r| {
            let mut info = CityInfo {
                country_code: r.country_code,
                lat: r.latitude,
                lon: r.longitude,
                ..CityInfo::default()
            };
            if let Some(country) = r.country {
                info.country_code = info.country_code.or(country.iso_code.clone());
                info.country = country.english();
            }
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
