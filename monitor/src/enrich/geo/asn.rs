//! ASN databases: GeoLite2-ASN mmdb, or the ip-location-db CSV ranges
//! (`start,end,asn,organisation`) that setup.sh installs, loaded into sorted
//! tables for binary search.

use std::{collections::HashMap, fs, net::IpAddr, path::Path, sync::Arc};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use super::{mmdb, DatabaseStatus, GeoError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsnInfo {
    pub asn: u32,
    pub org: Option<Arc<str>>,
}

pub enum AsnDb {
    Mmdb {
        reader: Reader<Mmap>,
        status: DatabaseStatus,
    },
    /// CSV ranges; several files (ip-location-db ships one per address
    /// family) are merged into one table, and each is listed in `files`.
    Ranges {
        table: RangeTable,
        files: Vec<DatabaseStatus>,
    },
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
}

impl AsnDb {
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            let text = fs::read_to_string(path).map_err(|e| GeoError::open(path, e))?;
            let table = RangeTable::parse(&text).map_err(|line| GeoError::Csv { path: path.to_owned(), line })?;
            let mut status = DatabaseStatus::from_file(path, "ip-location-db ASN (CSV)");
            status.ranges = Some(table.len());
            return Ok(AsnDb::Ranges { table, files: vec![status] });
        }
        let reader = mmdb::open(path)?;
        let status = DatabaseStatus::from_mmdb(path, &reader.metadata);
        Ok(AsnDb::Mmdb { reader, status })
    }

    /// The file this database was read from; every file for merged CSV ranges.
    pub fn statuses(&self) -> &[DatabaseStatus] {
        match self {
            AsnDb::Mmdb { status, .. } => std::slice::from_ref(status),
            AsnDb::Ranges { files, .. } => files,
        }
    }

    pub fn lookup(&self, ip: IpAddr) -> Result<Option<AsnInfo>, GeoError> {
        match self {
            AsnDb::Ranges { table, .. } => Ok(table.lookup(ip)),
            AsnDb::Mmdb { reader, .. } => {
                if ip.is_ipv6() && reader.metadata.ip_version == 4 {
                    return Ok(None);
                }
                let record: Option<AsnRecord> = mmdb::lookup(reader, ip.to_canonical())?;
                Ok(record.and_then(|r| {
                    Some(AsnInfo {
                        asn: r.autonomous_system_number?,
                        org: r.autonomous_system_organization.map(Arc::from),
                    })
                }))
            }
        }
    }
}

/// Sorted, non-overlapping address ranges with their ASN.
#[derive(Default)]
pub struct RangeTable {
    v4: Vec<(u32, u32, u32, u32)>,
    v6: Vec<(u128, u128, u32, u32)>,
    orgs: Vec<Arc<str>>,
}

impl RangeTable {
    /// Parses CSV text; on error returns the 1-based number of the bad line.
    pub fn parse(text: &str) -> Result<RangeTable, usize> {
        let mut table = RangeTable::default();
        let mut interned: HashMap<String, u32> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut cols = line.splitn(4, ',');
            let (Some(start), Some(end), Some(asn)) = (cols.next(), cols.next(), cols.next()) else {
                return Err(n + 1);
            };
            let org = unquote(cols.next().unwrap_or(""));
            let asn: u32 = asn.trim().parse().map_err(|_| n + 1)?;
            let org_index = match interned.get(org.as_str()) {
                Some(&i) => i,
                None => {
                    let i = table.orgs.len() as u32;
                    table.orgs.push(Arc::from(org.as_str()));
                    interned.insert(org, i);
                    i
                }
            };
            match (start.trim().parse::<IpAddr>(), end.trim().parse::<IpAddr>()) {
                (Ok(IpAddr::V4(s)), Ok(IpAddr::V4(e))) => table.v4.push((s.into(), e.into(), asn, org_index)),
                (Ok(IpAddr::V6(s)), Ok(IpAddr::V6(e))) => table.v6.push((s.into(), e.into(), asn, org_index)),
                _ => return Err(n + 1),
            }
        }
        table.v4.sort_unstable();
        table.v6.sort_unstable();
        Ok(table)
    }

    /// Merges another table (e.g. the IPv6 file into the IPv4 one).
    pub fn merge(&mut self, other: RangeTable) {
        let offset = self.orgs.len() as u32;
        self.orgs.extend(other.orgs);
        self.v4.extend(other.v4.into_iter().map(|(s, e, a, o)| (s, e, a, o + offset)));
        self.v6.extend(other.v6.into_iter().map(|(s, e, a, o)| (s, e, a, o + offset)));
        self.v4.sort_unstable();
        self.v6.sort_unstable();
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<AsnInfo> {
        let (asn, org) = match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4))?,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4))?,
                None => find(&self.v6, u128::from(v6))?,
            },
        };
        Some(AsnInfo { asn, org: self.orgs.get(org as usize).filter(|o| !o.is_empty()).cloned() })
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn find<T: Ord + Copy>(ranges: &[(T, T, u32, u32)], ip: T) -> Option<(u32, u32)> {
    let i = ranges.partition_point(|r| r.0 <= ip).checked_sub(1)?;
    let (_, end, asn, org) = ranges[i];
    (ip <= end).then_some((asn, org))
}

fn unquote(field: &str) -> String {
    let field = field.trim();
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_ranges() {
        let table = RangeTable::parse(
            "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
             8.8.8.0,8.8.8.255,15169,Google LLC\n\
             2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n",
        )
        .expect("valid");
        let hit = table.lookup("1.0.0.7".parse().unwrap()).expect("hit");
        assert_eq!((hit.asn, hit.org.as_deref()), (13335, Some("Cloudflare, Inc.")));
        assert_eq!(table.lookup("8.8.8.8".parse().unwrap()).map(|a| a.asn), Some(15169));
        assert_eq!(table.lookup("2001:4860::8888".parse().unwrap()).map(|a| a.asn), Some(15169));
        assert_eq!(table.lookup("9.9.9.9".parse().unwrap()), None);
        assert_eq!(table.lookup("0.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn bad_csv_names_the_line() {
        assert_eq!(RangeTable::parse("1.0.0.0,1.0.0.255,13335,x\nnot,a,row\n").err(), Some(2));
    }
}
