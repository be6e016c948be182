//! GeoIP enrichment against real database files: fixtures in both city
//! layouts (GeoIP2 City, DB-IP Lite as ip-location-db publishes it) and both
//! ASN sources (GeoLite2-ASN mmdb, ip-location-db CSV), written to a temp dir
//! by a small MMDB writer; broken files; reload; the bounded cache; and the
//! real DB-IP files when they are installed. No root needed.

#[path = "support/mmdb.rs"]
mod mmdb;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use mmdb::{map, Value, Writer};
use monitor::enrich::geo::{label, AddressLabel, Geo, GeoConfig, GeoInfo};
use serde::Deserialize;

// ---------------------------------------------------------------- helpers

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("monitor-geo-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("{s}: not an address"))
}

fn loaded(city: &[&Path], asn: &[&Path], cache_entries: usize) -> Geo {
    let geo = Geo::new(GeoConfig {
        city: city.iter().map(|p| p.to_path_buf()).collect(),
        asn: asn.iter().map(|p| p.to_path_buf()).collect(),
        cache_entries,
    });
    geo.reload();
    geo
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-4)
}

/// A GeoIP2/GeoLite2 City record, with the fields the real files carry.
fn geoip2_city(iso: &str, country: &str, city: Option<&str>, lat: f64, lon: f64) -> Value {
    let country = map([
        ("geoname_id", 2_635_167u32.into()),
        ("is_in_european_union", Value::Bool(false)),
        ("iso_code", iso.into()),
        ("names", map([("de", format!("{country} (de)").as_str().into()), ("en", country.into())])),
    ]);
    let mut entries = vec![
        ("continent".to_owned(), map([("code", "EU".into()), ("geoname_id", 6_255_148u32.into())])),
        ("country".to_owned(), country.clone()),
        (
            "location".to_owned(),
            map([
                ("accuracy_radius", Value::U16(100)),
                ("latitude", lat.into()),
                ("longitude", lon.into()),
                ("time_zone", "Europe/London".into()),
            ]),
        ),
        ("registered_country".to_owned(), country),
        ("subdivisions".to_owned(), Value::Array(vec![map([("iso_code", "ENG".into())])])),
    ];
    if let Some(city) = city {
        let names = map([("en", city.into()), ("ja", format!("{city} (ja)").as_str().into())]);
        entries.insert(0, ("city".to_owned(), map([("geoname_id", 2_643_743u32.into()), ("names", names)])));
    }
    Value::Map(entries)
}

/// A DB-IP Lite record as ip-location-db's dbip-city-mmdb stores it: flat,
/// coordinates as 32-bit floats.
fn dbip_city(cc: &str, state1: &str, city: &str, lat: f32, lon: f32) -> Value {
    map([
        ("city", city.into()),
        ("country_code", cc.into()),
        ("latitude", Value::Float(lat)),
        ("longitude", Value::Float(lon)),
        ("postcode", "".into()),
        ("state1", state1.into()),
        ("state2", "".into()),
        ("timezone", "Europe/London".into()),
    ])
}

fn geolite2_asn(asn: u32, org: &str) -> Value {
    map([("autonomous_system_number", asn.into()), ("autonomous_system_organization", org.into())])
}

/// The GeoIP2 City fixture: an IPv6 tree holding IPv4 and IPv6 networks.
fn write_geoip2_city(path: &Path) {
    let mut w = Writer::new("GeoIP2-City", 6);
    w.insert("81.2.69.0/24", geoip2_city("GB", "United Kingdom", Some("London"), 51.5142, -0.0931));
    w.insert("2001:218::/32", geoip2_city("JP", "Japan", None, 35.69, 139.69));
    w.insert("2a02:8800::/21", geoip2_city("DE", "Germany", Some("Berlin"), 52.52, 13.405));
    w.write(path);
}

/// DB-IP as the real package ships it: an ip_version 4 file and an
/// ip_version 6 file holding IPv6 networks only.
fn write_dbip_pair(v4: &Path, v6: &Path) {
    let mut w = Writer::new("city ipv4", 4);
    w.languages.clear();
    w.description.clear();
    w.insert("81.2.69.0/24", dbip_city("GB", "England", "London", 51.5085, -0.12574));
    w.insert("8.8.8.0/24", dbip_city("US", "California", "Mountain View", 37.4056, -122.0775));
    w.write(v4);
    let mut w = Writer::new("city ipv6", 6);
    w.languages.clear();
    w.description.clear();
    w.insert("2001:218::/32", dbip_city("JP", "Tokyo", "Chiyoda", 35.694, 139.754));
    w.insert("2001:4860::/32", dbip_city("US", "California", "Mountain View", 37.4056, -122.0775));
    w.write(v6);
}

fn write_asn_mmdb(path: &Path) {
    let mut w = Writer::new("GeoLite2-ASN", 6).record_size(24);
    w.insert("1.0.0.0/24", geolite2_asn(13335, "CLOUDFLARENET"));
    w.insert("81.2.69.0/24", geolite2_asn(20712, "Andrews & Arnold Ltd"));
    w.insert("2001:218::/32", geolite2_asn(2914, "NTT-LTD-2914"));
    w.write(path);
}

/// A fixture whose every address maps somewhere: any answer for a special
/// address would mean it was looked up.
fn write_everything(city: &Path, asn_mmdb: &Path, asn_csv: &Path) {
    let mut w = Writer::new("GeoIP2-City", 6);
    w.insert("::/1", geoip2_city("ZZ", "Everywhere", Some("Anywhere"), 1.0, 2.0));
    w.insert("8000::/1", geoip2_city("ZZ", "Everywhere", Some("Anywhere"), 1.0, 2.0));
    w.write(city);
    let mut w = Writer::new("GeoLite2-ASN", 6);
    w.insert("::/0", geolite2_asn(64496, "Everything"));
    w.write(asn_mmdb);
    std::fs::write(
        asn_csv,
        "0.0.0.0,255.255.255.255,64497,Everything v4\n\
         ::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,64498,Everything v6\n",
    )
    .expect("write the ASN CSV");
}

fn country(geo: &Geo, addr: &str) -> Option<String> {
    geo.lookup(ip(addr)).country_code.clone()
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Sets a file's modification time (the reload check compares them).
fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options().write(true).open(path).and_then(|f| f.set_modified(time)).expect("set mtime");
}

/// Replaces a file the way setup.sh does: write a new one, rename over.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).expect("write the new file");
    std::fs::rename(&tmp, path).expect("rename over the old one");
}

// ------------------------------------------------- the writer, checked

/// Every data type, with strings around each size-encoding boundary.
#[derive(Debug, Deserialize, PartialEq)]
struct Everything<'a> {
    short: String,
    sizes: Vec<String>,
    double: f64,
    float: f32,
    #[serde(borrow)]
    bytes: &'a [u8],
    u16: u16,
    u32: u32,
    i32s: Vec<i32>,
    u64: u64,
    u128: u128,
    t: bool,
    f: bool,
    empty_map: std::collections::BTreeMap<String, u32>,
    nested: Nested,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Nested {
    names: std::collections::BTreeMap<String, String>,
    list: Vec<Vec<u32>>,
}

fn everything_value() -> Value {
    let sizes = [0usize, 1, 28, 29, 30, 284, 285, 286, 65_820, 65_821, 70_000];
    map([
        ("short", "GB".into()),
        ("sizes", Value::Array(sizes.iter().map(|&n| "x".repeat(n).as_str().into()).collect())),
        ("double", (-0.0931f64).into()),
        ("float", Value::Float(51.5)),
        ("bytes", Value::Bytes(vec![0, 1, 2, 0xff])),
        ("u16", Value::U16(0xfffe)),
        ("u32", 0u32.into()),
        ("i32s", Value::Array([0, 1, -1, i32::MIN, i32::MAX].into_iter().map(Value::I32).collect())),
        ("u64", Value::U64(u64::MAX - 1)),
        ("u128", Value::U128(u128::MAX - 7)),
        ("t", Value::Bool(true)),
        ("f", Value::Bool(false)),
        ("empty_map", Value::Map(vec![])),
        (
            "nested",
            map([
                ("names", map([("en", "London".into()), ("ru", "Лондон".into())])),
                ("list", Value::Array(vec![Value::Array(vec![]), Value::Array(vec![7u32.into(), 300_000u32.into()])])),
            ]),
        ),
    ])
}

#[test]
fn mmdb_writer_round_trips_every_data_type() {
    for (ip_version, record_size, addr) in [(4, 24, "81.2.69.160"), (6, 28, "81.2.69.160"), (6, 32, "2001:218::1")] {
        let mut w = Writer::new("Everything", ip_version).record_size(record_size);
        let net = if addr.contains(':') { "2001:218::/32" } else { "81.2.69.0/24" };
        w.insert(net, everything_value());
        let reader = maxminddb::Reader::from_source(w.to_bytes()).expect("valid database");
        let (got, prefix) = reader.lookup_prefix::<Everything>(ip(addr)).expect("decodes");
        let got = got.expect("found");
        assert_eq!(prefix, if addr.contains(':') { 32 } else { 24 });
        assert_eq!(got.short, "GB");
        let lens: Vec<usize> = got.sizes.iter().map(String::len).collect();
        assert_eq!(lens, [0, 1, 28, 29, 30, 284, 285, 286, 65_820, 65_821, 70_000]);
        assert_eq!((got.double, got.float, got.bytes), (-0.0931, 51.5, &[0u8, 1, 2, 0xff][..]));
        assert_eq!((got.u16, got.u32, got.u64, got.u128), (0xfffe, 0, u64::MAX - 1, u128::MAX - 7));
        assert_eq!(got.i32s, [0, 1, -1, i32::MIN, i32::MAX]);
        assert!(got.t && !got.f && got.empty_map.is_empty());
        assert_eq!(got.nested.names["ru"], "Лондон");
        assert_eq!(got.nested.list, [vec![], vec![7, 300_000]]);
        let meta = &reader.metadata;
        assert_eq!((meta.ip_version, meta.record_size), (ip_version, record_size));
        assert_eq!((meta.binary_format_major_version, meta.binary_format_minor_version), (2, 0));
        assert_eq!((meta.database_type.as_str(), meta.build_epoch), ("Everything", 1_700_000_000));
        assert_eq!(meta.languages, ["en"]);
        assert_eq!(meta.description["en"], "Everything test fixture");
    }
}

/// The bytes the spec prescribes, for a few encodings.
#[test]
fn mmdb_writer_encodes_as_the_spec_says() {
    let enc = |v: &Value| {
        let mut out = Vec::new();
        mmdb::encode(v, &mut out, &mut |_, _| None);
        out
    };
    assert_eq!(enc(&"US".into()), [0x42, b'U', b'S']);
    assert_eq!(enc(&"x".repeat(29).as_str().into())[..2], [0x5d, 0]);
    assert_eq!(enc(&"x".repeat(285).as_str().into())[..3], [0x5e, 0, 0]);
    assert_eq!(enc(&"x".repeat(65_821).as_str().into())[..4], [0x5f, 0, 0, 0]);
    assert_eq!(enc(&Value::U16(0)), [0xa0]);
    assert_eq!(enc(&Value::U32(15169)), [0xc2, 0x3b, 0x41]);
    assert_eq!(enc(&Value::Double(1.0)), [0x68, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(enc(&Value::I32(-1)), [0x04, 0x01, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(enc(&Value::U64(1)), [0x01, 0x02, 0x01]);
    assert_eq!(enc(&Value::Array(vec![])), [0x00, 0x04]);
    assert_eq!(enc(&Value::Bool(true)), [0x01, 0x07]);
    assert_eq!(enc(&Value::Float(1.0)), [0x04, 0x08, 0x3f, 0x80, 0, 0]);
    assert_eq!(enc(&map([("a", Value::U16(1))])), [0xe1, 0x41, b'a', 0xa1, 0x01]);
    let ptr = |p: usize| {
        let mut out = Vec::new();
        mmdb::pointer(p, &mut out);
        out
    };
    assert_eq!(ptr(0), [0x20, 0x00]);
    assert_eq!(ptr(2047), [0x27, 0xff]);
    assert_eq!(ptr(2048), [0x28, 0x00, 0x00]);
    assert_eq!(ptr(526_335), [0x2f, 0xff, 0xff]);
    assert_eq!(ptr(526_336), [0x30, 0x00, 0x00, 0x00]);
    assert_eq!(ptr(134_744_064), [0x38, 0x08, 0x08, 0x08, 0x00]);
}

/// Nested and overlapping networks, IPv4 in IPv4 and IPv6 trees, every
/// record size: each address finds its most specific network.
#[test]
fn mmdb_writer_trees_answer_longest_prefix() {
    let v4 =
        [("0.0.0.0/1", 1u32), ("10.0.0.0/8", 2), ("10.1.0.0/16", 3), ("10.1.2.3/32", 4), ("255.255.255.255/32", 5)];
    let v6 = [("2000::/3", 6u32), ("2001:db8::/32", 7), ("2001:db8::1/128", 8), ("ffff::/16", 9)];
    let expect = [
        ("0.0.0.1", Some(1)),
        ("9.255.255.255", Some(1)),
        ("10.0.0.1", Some(2)),
        ("10.255.0.1", Some(2)),
        ("10.1.2.2", Some(3)),
        ("10.1.2.3", Some(4)),
        ("10.1.2.4", Some(3)),
        ("127.255.255.255", Some(1)),
        ("128.0.0.0", None),
        ("255.255.255.255", Some(5)),
        ("255.255.255.254", None),
    ];
    let expect6 = [
        ("2001:db8::1", Some(8)),
        ("2001:db8::2", Some(7)),
        ("2a00::1", Some(6)),
        ("3fff:ffff::1", Some(6)),
        ("ffff:1::", Some(9)),
        ("fe80::1", None),
        ("::ffff:10.1.2.3", None),
    ];
    for record_size in [24, 28, 32] {
        for ip_version in [4u16, 6] {
            let mut w = Writer::new("Tree", ip_version).record_size(record_size);
            for (net, n) in v4 {
                w.insert(net, n.into());
            }
            if ip_version == 6 {
                for (net, n) in v6 {
                    w.insert(net, n.into());
                }
            }
            let reader = maxminddb::Reader::from_source(w.to_bytes()).expect("valid database");
            let cases = expect.iter().chain(if ip_version == 6 { &expect6[..] } else { &[] });
            for &(addr, want) in cases {
                let value = reader.lookup::<u32>(ip(addr)).expect("lookup");
                assert_eq!(value, want, "{addr} in v{ip_version}/{record_size}");
            }
            // A host route is found at full depth (IPv4 depth counts from ::/96).
            assert_eq!(reader.lookup_prefix::<u32>(ip("10.1.2.3")).unwrap(), (Some(4), 32));
            assert_eq!(reader.lookup_prefix::<u32>(ip("255.255.255.255")).unwrap(), (Some(5), 32));
            if ip_version == 6 {
                assert_eq!(reader.lookup_prefix::<u32>(ip("2001:db8::1")).unwrap(), (Some(8), 128));
            }
        }
    }
    // A later, larger network replaces what was inserted under it.
    let mut w = Writer::new("Tree", 4);
    w.insert("10.1.0.0/16", 1u32.into()).insert("10.0.0.0/8", 2u32.into());
    let reader = maxminddb::Reader::from_source(w.to_bytes()).unwrap();
    assert_eq!(reader.lookup_prefix::<u32>(ip("10.1.0.1")).unwrap(), (Some(2), 8));
    assert_eq!(reader.metadata.node_count, 8, "replaced subtree not written");
}

/// The fixtures decode with the crate's own GeoIP2 models.
#[test]
fn mmdb_writer_fixtures_match_the_geoip2_models() {
    let dir = TempDir::new("models");
    write_geoip2_city(&dir.path("city.mmdb"));
    let reader = maxminddb::Reader::open_readfile(dir.path("city.mmdb")).unwrap();
    let city: maxminddb::geoip2::City = reader.lookup(ip("81.2.69.160")).unwrap().expect("found");
    assert_eq!(city.country.as_ref().and_then(|c| c.iso_code), Some("GB"));
    assert_eq!(city.city.and_then(|c| c.names).map(|n| n["en"]), Some("London"));
    assert_eq!(city.location.and_then(|l| l.latitude), Some(51.5142));
    assert_eq!(city.subdivisions.map(|s| s.len()), Some(1));
    write_asn_mmdb(&dir.path("asn.mmdb"));
    let reader = maxminddb::Reader::open_readfile(dir.path("asn.mmdb")).unwrap();
    let asn: maxminddb::geoip2::Asn = reader.lookup(ip("2001:218::1")).unwrap().expect("found");
    assert_eq!((asn.autonomous_system_number, asn.autonomous_system_organization), (Some(2914), Some("NTT-LTD-2914")));
}

/// Data past 16 MiB: records need more than 24 bits (28- and 32-bit trees
/// hold them, a 24-bit tree refuses), and repeated strings become 11-, 19-
/// and 27-bit pointers.
#[test]
fn mmdb_writer_large_data_section() {
    let build = |record_size| {
        let mut w = Writer::new("Big", 6).record_size(record_size);
        let pad = |c: &str, n: usize| Value::String(c.repeat(n));
        w.insert("1.0.0.0/24", map([("pad", pad("p", 3000)), ("org", "Org at 3k".into())]));
        w.insert(
            "1.0.1.0/24",
            map([("pad", pad("q", 600_000)), ("org2", "Org at 600k".into()), ("org", "Org at 3k".into())]),
        );
        w.insert(
            "1.0.2.0/24",
            map([("pad", pad("r", 16_300_000)), ("org2", "Org at 600k".into()), ("org", "Org at 3k".into())]),
        );
        w.insert(
            "2001:db8::/32",
            map([("org", "Org at 3k".into()), ("org2", "Org at 600k".into()), ("pad", pad("s", 1))]),
        );
        w.to_bytes()
    };
    #[derive(Deserialize)]
    struct Rec {
        org: String,
        org2: Option<String>,
        pad: String,
    }
    for record_size in [28, 32] {
        let bytes = build(record_size);
        assert!(bytes.len() > (1 << 24) + 100_000, "the last record lies past 2^24");
        let reader = maxminddb::Reader::from_source(bytes).expect("valid");
        let cases = [
            ("1.0.0.1", 3000, None),
            ("1.0.1.1", 600_000, Some("Org at 600k")),
            ("1.0.2.1", 16_300_000, Some("Org at 600k")),
            ("2001:db8::1", 1, Some("Org at 600k")),
        ];
        for (addr, pad, org2) in cases {
            let rec: Rec = reader.lookup(ip(addr)).unwrap().expect("found");
            assert_eq!(
                (rec.org.as_str(), rec.org2.as_deref(), rec.pad.len()),
                ("Org at 3k", org2, pad),
                "{addr} at {record_size} bits"
            );
        }
    }
    let refused = std::panic::catch_unwind(|| build(24));
    assert!(refused.is_err(), "a 24-bit tree cannot point past 16 MiB of data");
}

// ---------------------------------------------------------- city layouts

#[test]
fn geoip2_city_layout() {
    let dir = TempDir::new("geoip2");
    let path = dir.path("GeoLite2-City.mmdb");
    write_geoip2_city(&path);
    let geo = loaded(&[&path], &[], 1000);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);

    let london = geo.lookup(ip("81.2.69.160"));
    assert_eq!(london.label, AddressLabel::Public);
    assert_eq!(london.country_code.as_deref(), Some("GB"));
    assert_eq!(london.country.as_deref(), Some("United Kingdom"));
    assert_eq!(london.city.as_deref(), Some("London"));
    assert_eq!((london.lat, london.lon), (Some(51.5142), Some(-0.0931)));
    assert_eq!((london.asn, london.as_org.as_deref()), (None, None));

    let jp = geo.lookup(ip("2001:218:1::1"));
    assert_eq!(jp.label, AddressLabel::Public);
    assert_eq!((jp.country_code.as_deref(), jp.country.as_deref()), (Some("JP"), Some("Japan")));
    assert_eq!(jp.city, None, "a country-level record has no city");
    assert_eq!((jp.lat, jp.lon), (Some(35.69), Some(139.69)));

    let berlin = geo.lookup(ip("2a02:8800::1"));
    assert_eq!((berlin.country_code.as_deref(), berlin.city.as_deref()), (Some("DE"), Some("Berlin")));

    // Public but not in the database: a label and nothing else.
    let unknown = geo.lookup(ip("8.8.8.8"));
    assert_eq!(*unknown, GeoInfo::only(AddressLabel::Public));
    let json = serde_json::to_value(&*unknown).unwrap();
    assert_eq!(json, serde_json::json!({"label": "public"}));

    let status = geo.status();
    assert_eq!(status.city_db.len(), 1);
    assert_eq!(status.city_db[0].path, path);
    assert_eq!((status.city_db[0].kind.as_str(), status.city_db[0].build_epoch), ("GeoIP2-City", 1_700_000_000));
    assert!(status.city_db[0].age_days > 365);
}

#[test]
fn dbip_flat_layout_v4_and_v6_files() {
    let dir = TempDir::new("dbip");
    let (v4, v6) = (dir.path("dbip-city-ipv4.mmdb"), dir.path("dbip-city-ipv6.mmdb"));
    write_dbip_pair(&v4, &v6);
    let geo = loaded(&[&v4, &v6], &[], 1000);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
    assert_eq!(geo.status().city_db.iter().map(|d| d.kind.as_str()).collect::<Vec<_>>(), ["city ipv4", "city ipv6"]);

    let london = geo.lookup(ip("81.2.69.160"));
    assert_eq!(london.label, AddressLabel::Public);
    assert_eq!((london.country_code.as_deref(), london.city.as_deref()), (Some("GB"), Some("London")));
    assert_eq!(
        london.country.as_deref(),
        Some("United Kingdom of Great Britain and Northern Ireland"),
        "the flat layout has codes only: the name is ISO 3166-1's"
    );
    assert!(close(london.lat, 51.5085) && close(london.lon, -0.12574), "{london:?}");

    // IPv6: the ip_version 4 file is skipped, the IPv6 file answers.
    let jp = geo.lookup(ip("2001:218::7"));
    assert_eq!((jp.country_code.as_deref(), jp.city.as_deref()), (Some("JP"), Some("Chiyoda")));
    assert_eq!(jp.country.as_deref(), Some("Japan"));
    assert!(close(jp.lat, 35.694) && close(jp.lon, 139.754), "{jp:?}");
    let json = serde_json::to_value(&*jp).unwrap();
    assert_eq!((json["country_code"].as_str(), json["country"].as_str()), (Some("JP"), Some("Japan")));
    assert_eq!(country(&geo, "2001:4860:4860::8888").as_deref(), Some("US"));
    assert_eq!(country(&geo, "8.8.8.8").as_deref(), Some("US"));

    // The same answers with the IPv6 file listed first.
    let geo = loaded(&[&v6, &v4], &[], 1000);
    assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("GB"));
    assert_eq!(country(&geo, "2001:218::7").as_deref(), Some("JP"));
    // The IPv4 file alone cannot answer for IPv6.
    let geo = loaded(&[&v4], &[], 1000);
    assert_eq!(country(&geo, "2001:218::7"), None);
    assert_eq!(geo.lookup(ip("2001:218::7")).label, AddressLabel::Public);
}

/// An IPv4-mapped IPv6 address (how a dual-stack socket reports an IPv4
/// peer, or `/api/lookup/::ffff:8.8.8.8`) is labelled as its IPv4 address
/// and the ASN table answers for it; the city databases should too.
#[test]
fn ipv4_mapped_address_gets_the_ipv4_answer() {
    let dir = TempDir::new("mapped");
    let (v4, v6) = (dir.path("dbip-city-ipv4.mmdb"), dir.path("dbip-city-ipv6.mmdb"));
    write_dbip_pair(&v4, &v6);
    let csv = dir.path("asn-ipv4.csv");
    std::fs::write(&csv, "81.2.69.0,81.2.69.255,20712,Andrews & Arnold Ltd\n").unwrap();
    let geo = loaded(&[&v4, &v6], &[&csv], 1000);
    let plain = geo.lookup(ip("81.2.69.160"));
    let mapped = geo.lookup(ip("::ffff:81.2.69.160"));
    assert_eq!(mapped.label, AddressLabel::Public);
    assert_eq!(mapped.asn, Some(20712));
    assert_eq!(*mapped, *plain, "::ffff:81.2.69.160 should answer like 81.2.69.160");
}

/// CityDb::open says a database "that decodes to nothing we understand" is
/// rejected early with a clear message; an ASN database configured as a
/// city database is such a file.
#[test]
fn city_database_of_the_wrong_kind_is_reported() {
    let dir = TempDir::new("wrongkind");
    let asn = dir.path("GeoLite2-ASN.mmdb");
    write_asn_mmdb(&asn);
    let geo = loaded(&[&asn], &[], 100);
    let errors = geo.status().errors;
    assert!(
        errors.iter().any(|e| e.contains(&*asn.to_string_lossy())),
        "an ASN database used as the city database should be reported, errors: {errors:?}"
    );
}

// ------------------------------------------------------------------- ASN

const ASN_V4_CSV: &str = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
    8.8.4.0,8.8.4.255,15169,Google LLC\n\
    8.8.8.0,8.8.8.255,15169,Google LLC\n\
    81.2.69.0,81.2.69.255,64512,\"Example \"\"Quoted\"\", Networks, Ltd.\"\n\
    \n\
    9.9.9.0,9.9.9.255,19281,\n";
const ASN_V6_CSV: &str = "2001:218::,2001:218:ffff:ffff:ffff:ffff:ffff:ffff,2914,\"NTT America, Inc.\"\r\n\
    2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\r\n";

fn asn(geo: &Geo, addr: &str) -> (Option<u32>, Option<String>) {
    let info = geo.lookup(ip(addr));
    (info.asn, info.as_org.as_deref().map(str::to_owned))
}

fn some(asn: u32, org: &str) -> (Option<u32>, Option<String>) {
    (Some(asn), Some(org.to_owned()))
}

#[test]
fn asn_from_geolite2_mmdb() {
    let dir = TempDir::new("asnmmdb");
    let path = dir.path("GeoLite2-ASN.mmdb");
    write_asn_mmdb(&path);
    let geo = loaded(&[], &[&path], 1000);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
    assert_eq!(asn(&geo, "1.0.0.1"), some(13335, "CLOUDFLARENET"));
    assert_eq!(asn(&geo, "81.2.69.160"), some(20712, "Andrews & Arnold Ltd"));
    assert_eq!(asn(&geo, "2001:218::1"), some(2914, "NTT-LTD-2914"));
    assert_eq!(asn(&geo, "8.8.8.8"), (None, None));
    assert_eq!(geo.lookup(ip("1.0.0.1")).country_code, None, "no city database configured");
    let status = geo.status();
    assert_eq!(status.asn_db.len(), 1);
    assert_eq!(status.asn_db[0].kind, "GeoLite2-ASN");

    // An ip_version 4 ASN file answers IPv4 only.
    let mut w = Writer::new("GeoLite2-ASN", 4).record_size(32);
    w.insert("8.8.8.0/24", geolite2_asn(15169, "GOOGLE"));
    let v4 = dir.path("asn-v4.mmdb");
    w.write(&v4);
    let geo = loaded(&[], &[&v4], 1000);
    assert_eq!(asn(&geo, "8.8.8.8"), some(15169, "GOOGLE"));
    assert_eq!(asn(&geo, "2001:4860::1"), (None, None));
}

#[test]
fn asn_from_csv_ranges() {
    let dir = TempDir::new("asncsv");
    let (v4, v6) = (dir.path("asn-ipv4.csv"), dir.path("asn-ipv6.csv"));
    std::fs::write(&v4, ASN_V4_CSV).unwrap();
    std::fs::write(&v6, ASN_V6_CSV).unwrap();
    let geo = loaded(&[], &[&v4, &v6], 1000);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
    assert_eq!(asn(&geo, "1.0.0.0"), some(13335, "Cloudflare, Inc."));
    assert_eq!(asn(&geo, "1.0.0.255"), some(13335, "Cloudflare, Inc."));
    assert_eq!(asn(&geo, "1.0.1.0"), (None, None));
    assert_eq!(asn(&geo, "8.8.8.8"), some(15169, "Google LLC"));
    assert_eq!(asn(&geo, "8.8.5.1"), (None, None), "between two ranges");
    assert_eq!(asn(&geo, "81.2.69.160"), some(64512, "Example \"Quoted\", Networks, Ltd."));
    assert_eq!(asn(&geo, "9.9.9.9"), (Some(19281), None), "an empty organisation is none");
    assert_eq!(asn(&geo, "2001:218::1"), some(2914, "NTT America, Inc."));
    assert_eq!(asn(&geo, "2001:4860:4860::8888"), some(15169, "Google LLC"));
    assert_eq!(asn(&geo, "2001:4861::1"), (None, None));
    let status = geo.status();
    let listed: Vec<_> = status.asn_db.iter().map(|d| (d.path.clone(), d.kind.as_str(), d.ranges)).collect();
    assert_eq!(
        listed,
        [(v4.clone(), "ip-location-db ASN (CSV)", Some(5)), (v6.clone(), "ip-location-db ASN (CSV)", Some(2))],
        "merged into one table, each file listed with its ranges"
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["asn_db"][1]["ranges"], 2);
    assert!(json["city_db"].as_array().is_some_and(|a| a.is_empty()));
}

/// The default data: ip-location-db's asn-ipv4.csv and asn-ipv6.csv, as
/// the daemon's defaults list them. IPv6 sources get their ASN whichever
/// file comes first, /api/stats lists both, and a broken IPv6 file on
/// reload keeps the table loaded before (IPv6 ranges included).
#[test]
fn default_asn_csv_pair_answers_ipv6() {
    let dir = TempDir::new("asnpair");
    let (v4, v6) = (dir.path("asn-ipv4.csv"), dir.path("asn-ipv6.csv"));
    std::fs::write(&v4, ASN_V4_CSV).unwrap();
    std::fs::write(&v6, ASN_V6_CSV).unwrap();
    for order in [[&v4, &v6], [&v6, &v4]] {
        let geo = loaded(&[], &[order[0].as_path(), order[1].as_path()], 1000);
        assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
        assert_eq!(asn(&geo, "2001:218:1::1"), some(2914, "NTT America, Inc."));
        assert_eq!(asn(&geo, "2001:4860:4860::8888"), some(15169, "Google LLC"));
        assert_eq!(asn(&geo, "8.8.8.8"), some(15169, "Google LLC"));
        assert_eq!(asn(&geo, "::ffff:1.0.0.1"), some(13335, "Cloudflare, Inc."));
        let paths: Vec<_> = geo.status().asn_db.iter().map(|d| d.path.clone()).collect();
        assert_eq!(paths, [order[0].clone(), order[1].clone()]);
    }

    let geo = loaded(&[], &[&v4, &v6], 1000);
    replace(&v6, b"2001:218::,not an address,2914,x\n");
    geo.reload();
    let status = geo.status();
    assert_eq!(status.errors.len(), 1, "{:?}", status.errors);
    assert!(status.errors[0].contains("asn-ipv6.csv") && status.errors[0].contains("stays in use"));
    assert_eq!(status.asn_db.len(), 2, "the table loaded before, both files");
    assert_eq!(asn(&geo, "2001:4860::1"), some(15169, "Google LLC"));

    // Only the IPv6 file: it answers on its own.
    std::fs::write(&v6, ASN_V6_CSV).unwrap();
    let geo = loaded(&[], &[&v6], 1000);
    assert_eq!(asn(&geo, "2001:218::1"), some(2914, "NTT America, Inc."));
    assert_eq!(asn(&geo, "8.8.8.8"), (None, None));
}

/// Both sources configured: the first that knows the address answers, and
/// the other fills in what the first lacks.
#[test]
fn asn_mmdb_and_csv_together() {
    let dir = TempDir::new("asnboth");
    let (mmdb, csv) = (dir.path("GeoLite2-ASN.mmdb"), dir.path("asn-ipv4.csv"));
    write_asn_mmdb(&mmdb);
    std::fs::write(&csv, ASN_V4_CSV).unwrap();
    let geo = loaded(&[], &[&mmdb, &csv], 1000);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
    assert_eq!(asn(&geo, "1.0.0.1"), some(13335, "CLOUDFLARENET"), "in both: the mmdb (first) answers");
    assert_eq!(asn(&geo, "81.2.69.1"), some(20712, "Andrews & Arnold Ltd"));
    assert_eq!(asn(&geo, "8.8.8.8"), some(15169, "Google LLC"), "only in the CSV");
    assert_eq!(asn(&geo, "2001:218::1"), some(2914, "NTT-LTD-2914"));
    assert_eq!(geo.status().asn_db.len(), 2);
}

/// With the CSV listed first, "first hit wins" should make the CSV answer.
#[test]
fn asn_first_configured_source_wins() {
    let dir = TempDir::new("asnorder");
    let (mmdb, csv) = (dir.path("GeoLite2-ASN.mmdb"), dir.path("asn-ipv4.csv"));
    write_asn_mmdb(&mmdb);
    std::fs::write(&csv, ASN_V4_CSV).unwrap();
    let geo = loaded(&[], &[&csv, &mmdb], 1000);
    assert_eq!(asn(&geo, "1.0.0.1"), some(13335, "Cloudflare, Inc."), "CSV is configured first");
}

// -------------------------------------------------------- special ranges

#[test]
fn special_ranges_are_labelled_and_never_looked_up() {
    let dir = TempDir::new("special");
    let (city, asn_mmdb, asn_csv) = (dir.path("city.mmdb"), dir.path("asn.mmdb"), dir.path("asn.csv"));
    write_everything(&city, &asn_mmdb, &asn_csv);
    use AddressLabel::*;
    let cases = [
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.1", Private),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("::ffff:192.168.0.1", Private),
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("::1", Loopback),
        ("169.254.0.1", LinkLocal),
        ("169.254.255.255", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf:ffff::1", LinkLocal),
        ("100.64.0.0", Cgnat),
        ("100.127.255.255", Cgnat),
        ("224.0.0.251", Multicast),
        ("239.255.255.250", Multicast),
        ("ff02::1", Multicast),
        ("ff0e::1", Multicast),
        ("192.0.2.1", Documentation),
        ("198.51.100.7", Documentation),
        ("203.0.113.255", Documentation),
        ("2001:db8::1", Documentation),
        ("2001:db8:ffff::1", Documentation),
        ("3fff::1", Documentation),
        ("3fff:fff::1", Documentation),
        ("198.18.0.1", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("2001:2::1", Benchmarking),
        ("2001:2:0:ffff::1", Benchmarking),
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("0.1.2.3", Reserved),
        ("240.0.0.1", Reserved),
        ("255.255.255.255", Reserved),
        ("192.0.0.8", Reserved),
    ];
    // Neighbours of the special ranges are public and get the answer.
    let public = [
        "9.255.255.255",
        "11.0.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "223.255.255.255",
        "192.0.3.0",
        "198.17.255.255",
        "198.20.0.0",
        "203.0.114.0",
        "2001:db9::1",
        "3fff:1000::1",
        "2001:2:1::1",
        "2001:4860::1",
        "::ffff:8.8.8.8",
    ];
    for asn_db in [&asn_mmdb, &asn_csv] {
        let geo = loaded(&[&city], &[asn_db], 1000);
        assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
        for (addr, want) in cases {
            let info = geo.lookup(ip(addr));
            assert_eq!(label(ip(addr)), want, "{addr}");
            assert_eq!(info.label, want, "{addr}");
            assert_eq!(
                (&info.country_code, &info.city, info.lat, info.asn, &info.as_org),
                (&None, &None, None, None, &None),
                "{addr} ({want:?}) must not be looked up"
            );
        }
        for addr in public {
            let info = geo.lookup(ip(addr));
            assert_eq!(info.label, Public, "{addr}");
            assert!(info.asn.is_some(), "{addr} is public and in the ASN database: {info:?}");
            assert_eq!(info.country_code.as_deref(), Some("ZZ"), "{addr}");
        }
    }
}

// ------------------------------------------------------- broken databases

/// Every kind of unusable file is reported, by name, and the rest work.
#[test]
fn broken_databases_are_reported_and_the_rest_answer() {
    let dir = TempDir::new("broken");
    let good = dir.path("good-city.mmdb");
    write_geoip2_city(&good);
    let valid = std::fs::read(&good).unwrap();
    let missing = dir.path("missing.mmdb");
    let empty = dir.path("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    let half = dir.path("half.mmdb");
    std::fs::write(&half, &valid[..valid.len() / 2]).unwrap();
    let random = dir.path("random.mmdb");
    std::fs::write(&random, noise(64 << 10, 0x9e37_79b9_7f4a_7c15)).unwrap();
    let directory = dir.path("a-directory.mmdb");
    std::fs::create_dir(&directory).unwrap();
    let bad_csv = dir.path("asn-ipv4.csv");
    std::fs::write(&bad_csv, "1.0.0.0,1.0.0.255,13335,Cloudflare\n8.8.8.0,8.8.8.255,not-a-number,Google\n").unwrap();
    let good_csv = dir.path("asn-ipv6.csv");
    std::fs::write(&good_csv, ASN_V6_CSV).unwrap();
    let missing_csv = dir.path("missing.csv");
    let asn_mmdb = dir.path("asn.mmdb");
    write_asn_mmdb(&asn_mmdb);

    let geo = loaded(
        &[&missing, &empty, &half, &random, &directory, &good],
        &[&bad_csv, &missing_csv, &half, &good_csv, &asn_mmdb],
        1000,
    );
    let status = geo.status();
    let errors = &status.errors;
    println!("errors: {errors:#?}");
    let error_for = |path: &Path| -> String {
        let name = path.to_string_lossy();
        let hits: Vec<&String> = errors.iter().filter(|e| e.contains(&*name)).collect();
        assert!(!hits.is_empty(), "no error names {name}: {errors:?}");
        hits[0].clone()
    };
    assert!(error_for(&missing).contains("No such file"), "{}", error_for(&missing));
    error_for(&empty);
    assert!(error_for(&half).contains("metadata"), "{}", error_for(&half));
    assert!(error_for(&random).contains("metadata"), "{}", error_for(&random));
    error_for(&directory);
    assert!(error_for(&bad_csv).contains("line 2"), "{}", error_for(&bad_csv));
    assert!(error_for(&missing_csv).contains("No such file"), "{}", error_for(&missing_csv));
    assert_eq!(errors.len(), 8, "{errors:#?}");
    assert_eq!(status.city_db.len(), 1);
    assert_eq!(status.asn_db.len(), 2, "the mmdb and the good CSV");

    // The good databases still answer; labels still work.
    let london = geo.lookup(ip("81.2.69.160"));
    assert_eq!(london.country_code.as_deref(), Some("GB"));
    assert_eq!(london.asn, Some(20712), "asn.mmdb");
    assert_eq!(asn(&geo, "2001:4860::1"), some(15169, "Google LLC"), "the good CSV");
    assert_eq!(asn(&geo, "1.0.0.1"), some(13335, "CLOUDFLARENET"), "not from the rejected CSV");
    assert_eq!(geo.lookup(ip("10.0.0.1")).label, AddressLabel::Private);

    // Nothing usable at all: still no panic, labels only.
    let geo = loaded(&[&missing, &empty, &half, &random], &[&bad_csv], 10);
    assert_eq!(geo.status().errors.len(), 5);
    assert!(geo.status().city_db.is_empty() && geo.status().asn_db.is_empty());
    assert_eq!(geo.lookup(ip("127.0.0.1")).label, AddressLabel::Loopback);
    let public = geo.lookup(ip("81.2.69.160"));
    assert_eq!((public.label, public.country_code.as_deref(), public.asn), (AddressLabel::Public, None, None));
}

/// A file cut short a few bytes before its end keeps the metadata marker
/// but loses the end of the metadata.
#[test]
fn mmdb_truncated_inside_its_metadata_is_reported() {
    let dir = TempDir::new("cutmeta");
    let good = dir.path("good.mmdb");
    write_dbip_pair(&good, &dir.path("unused-v6.mmdb"));
    let valid = std::fs::read(&good).unwrap();
    let asn_mmdb = dir.path("asn.mmdb");
    write_asn_mmdb(&asn_mmdb);
    for cut in [1, 5, 20] {
        let bad = dir.path(&format!("cut-{cut}.mmdb"));
        std::fs::write(&bad, &valid[..valid.len() - cut]).unwrap();
        let geo = loaded(&[&bad, &good], &[&asn_mmdb], 100);
        let errors = geo.status().errors;
        assert!(errors.iter().any(|e| e.contains(&*bad.to_string_lossy())), "cut {cut}: {errors:?}");
        assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("GB"));
    }
}

/// Intact metadata, but the tree and data it describes are cut short (or
/// zeroed): an error, never a panic in reload or lookup.
#[test]
fn mmdb_with_intact_metadata_and_a_short_body_is_reported() {
    let dir = TempDir::new("shortbody");
    for ip_version in [4u16, 6] {
        let mut w = Writer::new("city", ip_version);
        w.insert("81.2.69.0/24", dbip_city("GB", "England", "London", 51.5, -0.1));
        w.insert("8.8.8.0/24", dbip_city("US", "California", "Mountain View", 37.4, -122.0));
        let valid = w.to_bytes();
        let marker = valid.windows(14).rposition(|m| m == b"\xAB\xCD\xEFMaxMind.com").unwrap();
        let mut short = valid[..8].to_vec();
        short.extend_from_slice(&valid[marker..]);
        let bad = dir.path(&format!("short-v{ip_version}.mmdb"));
        std::fs::write(&bad, &short).unwrap();
        let geo = loaded(&[&bad], &[], 100);
        let errors = geo.status().errors;
        // Either rejected on load, or loaded and every lookup fails cleanly.
        if errors.is_empty() {
            for addr in ["81.2.69.160", "8.8.8.8", "1.1.1.1", "2001:218::1"] {
                let info = geo.lookup(ip(addr));
                assert_eq!(info.country_code, None, "{addr}");
            }
        } else {
            assert!(errors[0].contains(&*bad.to_string_lossy()), "{errors:?}");
        }
    }
}

// ---------------------------------------------------------------- reload

#[test]
fn reload_swaps_databases_and_clears_the_cache() {
    let dir = TempDir::new("reload");
    let path = dir.path("dbip-city-ipv4.mmdb");
    let fixture = |cc: &str, city: &str| {
        let mut w = Writer::new("city ipv4", 4);
        w.insert("81.2.69.0/24", dbip_city(cc, "", city, 1.0, 2.0));
        w.insert("8.8.8.0/24", dbip_city(cc, "", city, 1.0, 2.0));
        w.to_bytes()
    };
    std::fs::write(&path, fixture("GB", "London")).unwrap();
    // An old database, so the new file's mtime surely differs.
    set_mtime(&path, SystemTime::now() - Duration::from_secs(86_400));
    let geo = loaded(&[&path], &[], 100);
    assert!(!geo.files_changed());
    assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("GB"));

    replace(&path, &fixture("FR", "Paris"));
    assert!(geo.files_changed(), "the file was replaced");
    // Until reloaded: the cached answer, and the old database for the rest.
    assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("GB"));
    assert_eq!(country(&geo, "8.8.8.8").as_deref(), Some("GB"));

    geo.reload();
    assert!(!geo.files_changed());
    assert!(geo.status().errors.is_empty());
    let info = geo.lookup(ip("81.2.69.160"));
    assert_eq!((info.country_code.as_deref(), info.city.as_deref()), (Some("FR"), Some("Paris")), "cache cleared");
    assert_eq!(country(&geo, "8.8.8.8").as_deref(), Some("FR"));

    // Removed: noticed, reported on reload, lookups go on without it.
    std::fs::remove_file(&path).unwrap();
    assert!(geo.files_changed());
    geo.reload();
    assert!(geo.status().errors[0].contains(&*path.to_string_lossy()));
    assert_eq!(country(&geo, "81.2.69.160"), None);
    // Back again.
    std::fs::write(&path, fixture("DE", "Berlin")).unwrap();
    assert!(geo.files_changed());
    geo.reload();
    assert!(geo.status().errors.is_empty());
    assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("DE"));
}

/// A database replaced by garbage while the daemon runs (a botched update):
/// the reload reports it by name, and the copy loaded before stays in use,
/// for the city and both kinds of ASN source, until a good file comes back.
#[test]
fn garbage_replacement_is_reported_and_the_old_data_stays() {
    let dir = TempDir::new("garbage");
    let city = dir.path("dbip-city-ipv4.mmdb");
    let asn_mmdb = dir.path("asn.mmdb");
    let asn_csv = dir.path("asn-ipv6.csv");
    let mut w = Writer::new("city ipv4", 4);
    w.insert("81.2.69.0/24", dbip_city("GB", "England", "London", 51.5, -0.1));
    std::fs::write(&city, w.to_bytes()).unwrap();
    write_asn_mmdb(&asn_mmdb);
    std::fs::write(&asn_csv, ASN_V6_CSV).unwrap();
    for path in [&city, &asn_mmdb, &asn_csv] {
        set_mtime(path, SystemTime::now() - Duration::from_secs(86_400));
    }
    let geo = loaded(&[&city], &[&asn_mmdb, &asn_csv], 100);
    assert!(geo.status().errors.is_empty(), "{:?}", geo.status().errors);
    let before = (country(&geo, "81.2.69.160"), geo.lookup(ip("81.2.69.160")).asn, asn(&geo, "2001:4860::1"));
    assert_eq!(before.0.as_deref(), Some("GB"));
    assert_eq!(before.1, Some(20712));
    assert_eq!(before.2, some(15169, "Google LLC"));

    replace(&city, &noise(48 << 10, 7));
    replace(&asn_mmdb, &noise(4 << 10, 11));
    replace(&asn_csv, b"this is not,a csv\n\x00\x01");
    assert!(geo.files_changed());
    geo.reload();
    let status = geo.status();
    for path in [&city, &asn_mmdb, &asn_csv] {
        let name = path.to_string_lossy();
        let error = status.errors.iter().find(|e| e.contains(&*name));
        assert!(error.is_some_and(|e| e.contains("stays in use")), "{name}: {:?}", status.errors);
    }
    assert_eq!(status.errors.len(), 3, "{:?}", status.errors);
    assert_eq!((status.city_db.len(), status.asn_db.len()), (1, 2), "the old databases are still listed");
    let after = (country(&geo, "81.2.69.160"), geo.lookup(ip("81.2.69.160")).asn, asn(&geo, "2001:4860::1"));
    assert_eq!(after, before, "the old data answers");
    assert!(!geo.files_changed(), "the broken files are not retried in a loop");

    // A good file again: used, and the error is gone.
    let mut w = Writer::new("city ipv4", 4);
    w.insert("81.2.69.0/24", dbip_city("FR", "Île-de-France", "Paris", 48.9, 2.3));
    replace(&city, &w.to_bytes());
    geo.reload();
    assert_eq!(country(&geo, "81.2.69.160").as_deref(), Some("FR"));
    assert_eq!(geo.status().errors.len(), 2, "{:?}", geo.status().errors);
}

/// A database replaced within the same second as the one loaded (same
/// whole-second mtime, different size and inode) goes unnoticed.
#[test]
fn replacement_within_the_same_second_is_noticed() {
    let dir = TempDir::new("samesecond");
    let path = dir.path("city.mmdb");
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let mut w = Writer::new("city ipv4", 4);
    w.insert("81.2.69.0/24", dbip_city("GB", "", "London", 1.0, 2.0));
    std::fs::write(&path, w.to_bytes()).unwrap();
    set_mtime(&path, base + Duration::from_millis(100));
    let geo = loaded(&[&path], &[], 100);
    let mut w = Writer::new("city ipv4", 4);
    w.insert("81.2.69.0/24", dbip_city("FR", "Île-de-France", "Paris", 1.0, 2.0));
    replace(&path, &w.to_bytes());
    set_mtime(&path, base + Duration::from_millis(700));
    assert!(geo.files_changed(), "a different file is at the path now");
}

/// Lookups racing a reload: after reload returns, every answer comes from
/// the new databases (no answer from the old set is left in the cache).
#[test]
fn no_stale_answers_after_a_concurrent_reload() {
    let dir = TempDir::new("race");
    let path = dir.path("city.mmdb");
    let fixture = |cc: &str| {
        let mut w = Writer::new("city ipv4", 4);
        w.insert("1.0.0.0/8", dbip_city(cc, "", "", 1.0, 2.0));
        w.to_bytes()
    };
    std::fs::write(&path, fixture("AA")).unwrap();
    let geo = Arc::new(loaded(&[&path], &[], 1_000_000));
    let mut stale = Vec::new();
    for round in 0..20u32 {
        let cc = if round % 2 == 0 { "BB" } else { "AA" };
        replace(&path, &fixture(cc));
        let stop = Arc::new(AtomicBool::new(false));
        let lookups = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2u32)
            .map(|t| {
                let (geo, stop, lookups) = (Arc::clone(&geo), Arc::clone(&stop), Arc::clone(&lookups));
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let addr = IpAddr::from([1, (t * 100 + round) as u8, (n >> 8) as u8, n as u8]);
                        geo.lookup(addr);
                        lookups.fetch_add(1, Ordering::Relaxed);
                        seen.push(addr);
                        n = (n + 1) % 65_536;
                    }
                    seen
                })
            })
            .collect();
        // The reload lands in the middle of the lookups: some before, some after.
        let lookups_reach = |n: usize| {
            while lookups.load(Ordering::Relaxed) < n {
                std::thread::yield_now();
            }
        };
        lookups_reach(1_000);
        geo.reload();
        lookups_reach(lookups.load(Ordering::Relaxed) + 1_000);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            for addr in w.join().expect("no panic") {
                if geo.lookup(addr).country_code.as_deref() != Some(cc) {
                    stale.push((round, addr));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale cached answers after reload, e.g. {:?}",
        stale.len(),
        &stale[..stale.len().min(3)]
    );
}

// ----------------------------------------------------------------- cache

#[test]
fn cache_is_bounded() {
    let dir = TempDir::new("cache");
    let path = dir.path("city.mmdb");
    let mut w = Writer::new("city ipv4", 4);
    w.insert("1.0.0.0/8", dbip_city("AU", "", "", 1.0, 2.0));
    w.write(&path);
    let geo = loaded(&[&path], &[], 100);
    for n in 0..10_000u32 {
        let addr = IpAddr::from(((1u32 << 24) | (n * 7)).to_be_bytes());
        assert_eq!(geo.lookup(addr).country_code.as_deref(), Some("AU"), "{addr}");
        assert!(geo.status().cache_entries <= 200, "after {n}: {}", geo.status().cache_entries);
    }
    assert!(geo.status().cache_entries >= 100, "recent lookups are kept");
    // A recent address is a hit (the same shared answer).
    let last = IpAddr::from(((1u32 << 24) | (9_999 * 7)).to_be_bytes());
    assert!(Arc::ptr_eq(&geo.lookup(last), &geo.lookup(last)));
    geo.reload();
    assert_eq!(geo.status().cache_entries, 0, "reload clears the cache");
}

// ------------------------------------------------- the real DB-IP files

#[test]
fn real_dbip_files() {
    let dir = Path::new("/var/lib/monitor/geo");
    let files = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb", "asn-ipv4.csv", "asn-ipv6.csv"].map(|f| dir.join(f));
    if let Some(absent) = files.iter().find(|f| !f.is_file()) {
        println!("skipped: {} is not installed (./setup.sh installs the DB-IP files)", absent.display());
        return;
    }
    let [v4, v6, asn4, asn6] = files.each_ref().map(|p| p.as_path());
    let geo = loaded(&[v4, v6], &[asn4, asn6], 1000);
    let status = geo.status();
    assert!(status.errors.is_empty(), "{:?}", status.errors);
    assert_eq!((status.city_db.len(), status.asn_db.len()), (2, 2));
    assert!(status.asn_db.iter().all(|d| d.ranges.is_some_and(|n| n > 1000)), "{:?}", status.asn_db);

    let google = geo.lookup(ip("8.8.8.8"));
    println!("8.8.8.8: {google:?}");
    assert_eq!(google.label, AddressLabel::Public);
    assert_eq!(google.country_code.as_deref(), Some("US"));
    assert_eq!(google.country.as_deref(), Some("United States of America"));
    assert!(google.lat.is_some() && google.lon.is_some());
    assert_eq!(google.asn, Some(15169));
    assert_eq!(google.as_org.as_deref(), Some("Google LLC"));

    // Whatever the installed DB-IP release says for Google's IPv6 DNS (the
    // 2026-06 release says CA, Montreal), Geo must give the IPv6 file's answer.
    let google6 = geo.lookup(ip("2001:4860:4860::8888"));
    println!("2001:4860:4860::8888: {google6:?}");
    #[derive(Deserialize)]
    struct Flat {
        country_code: Option<String>,
        city: Option<String>,
    }
    let raw = maxminddb::Reader::open_mmap(v6).expect("open the IPv6 file");
    let expected: Flat = raw.lookup(ip("2001:4860:4860::8888")).unwrap().expect("in the IPv6 file");
    assert!(expected.country_code.is_some());
    assert_eq!((&google6.country_code, &google6.city), (&expected.country_code, &expected.city));
    assert_eq!(google6.label, AddressLabel::Public);
    assert_eq!(google6.asn, Some(15169));
    let cloudflare = geo.lookup(ip("2606:4700:4700::1111"));
    println!("2606:4700:4700::1111: {cloudflare:?}");
    assert!(cloudflare.country_code.is_some() && cloudflare.asn.is_some());
    assert_eq!(geo.lookup(ip("192.168.1.1")).country_code, None);
}
