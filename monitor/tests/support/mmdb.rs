//! A small MaxMind DB (binary format 2.0) writer, for tests only: builds
//! fixture databases in the layouts the GeoIP code reads, so no real
//! database file is needed. Spec: https://maxmind.github.io/MaxMind-DB/
//!
//! File layout: the binary search tree (`node_count` nodes of two records of
//! `record_size` bits each), 16 zero bytes, the data section, then the
//! metadata marker `\xAB\xCD\xEFMaxMind.com` and the metadata map.
//!
//! Networks are inserted in order; a later network overrides an earlier one
//! where they overlap (a smaller network splits a larger one). IPv4 networks
//! in an `ip_version` 6 tree go under `::a.b.c.d/(96 + prefix)`, where readers
//! look for IPv4 addresses. Identical records are stored once, and strings
//! (map keys included) that repeat are written as pointers to the first copy.
#![allow(dead_code, reason = "each test binary uses a different part of the support module")]

use std::{collections::HashMap, net::IpAddr, path::Path};

/// A data-section value (the spec's types, less the internal ones).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    String(String),
    Double(f64),
    Bytes(Vec<u8>),
    U16(u16),
    U32(u32),
    Map(Vec<(String, Value)>),
    I32(i32),
    U64(u64),
    U128(u128),
    Array(Vec<Value>),
    Bool(bool),
    Float(f32),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}

/// `map([("key", value.into()), ...])`: a map in the given key order.
pub(crate) fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[derive(Clone, Copy, Debug)]
enum Record {
    Empty,
    Node(usize),
    /// Offset of the record in the data section.
    Data(usize),
}

pub(crate) struct Writer {
    pub ip_version: u16,
    /// 24, 28 or 32.
    pub record_size: u16,
    pub database_type: String,
    pub languages: Vec<String>,
    pub description: Vec<(String, String)>,
    pub build_epoch: u64,
    /// Node 0 is the root; replaced subtrees stay here but are not written.
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
    /// Encoded record -> its offset, so identical records are stored once.
    records: HashMap<Vec<u8>, usize>,
    /// String -> offset of its first copy, for pointers.
    strings: HashMap<String, usize>,
}

impl Writer {
    pub(crate) fn new(database_type: &str, ip_version: u16) -> Self {
        assert!(ip_version == 4 || ip_version == 6, "ip_version is 4 or 6");
        Writer {
            ip_version,
            record_size: 28,
            database_type: database_type.to_owned(),
            languages: vec!["en".to_owned()],
            description: vec![("en".to_owned(), format!("{database_type} test fixture"))],
            build_epoch: 1_700_000_000,
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
            records: HashMap::new(),
            strings: HashMap::new(),
        }
    }

    pub(crate) fn record_size(mut self, bits: u16) -> Self {
        assert!(matches!(bits, 24 | 28 | 32), "record_size is 24, 28 or 32");
        self.record_size = bits;
        self
    }

    /// Maps `network` ("81.2.69.0/24", "2001:218::/32") to `value`.
    pub(crate) fn insert(&mut self, network: &str, value: Value) -> &mut Self {
        let (addr, len) = network.split_once('/').unwrap_or_else(|| panic!("{network}: not addr/len"));
        let len: u32 = len.parse().unwrap_or_else(|_| panic!("{network}: bad prefix length"));
        let (bits, width, len) = match addr.parse::<IpAddr>().unwrap_or_else(|_| panic!("{network}: bad address")) {
            IpAddr::V4(a) if self.ip_version == 4 => (u128::from(u32::from(a)), 32, len),
            IpAddr::V4(a) => (u128::from(u32::from(a)), 128, 96 + len),
            IpAddr::V6(_) if self.ip_version == 4 => {
                panic!("{network}: IPv6 network in an IPv4 tree")
            }
            IpAddr::V6(a) => (u128::from(a), 128, len),
        };
        assert!(len <= width, "{network}: prefix longer than the address");
        let data = self.store(&value);
        if len == 0 {
            self.nodes[0] = [Record::Data(data); 2];
            return self;
        }
        let mut node = 0;
        for depth in 0..len {
            let bit = ((bits >> (width - 1 - depth)) & 1) as usize;
            if depth == len - 1 {
                self.nodes[node][bit] = Record::Data(data);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(child) => child,
                // Empty, or a larger network being split: both halves keep it.
                other => {
                    self.nodes.push([other; 2]);
                    let child = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(child);
                    child
                }
            };
        }
        self
    }

    /// Appends `value` to the data section (once) and returns its offset.
    fn store(&mut self, value: &Value) -> usize {
        let base = self.data.len();
        let mut bytes = Vec::new();
        let mut new_strings = Vec::new();
        encode(value, &mut bytes, &mut |s, at| match self.strings.get(s) {
            Some(&offset) => Some(offset),
            None => {
                new_strings.push((s.to_owned(), base + at));
                None
            }
        });
        if let Some(&offset) = self.records.get(&bytes) {
            return offset;
        }
        for (s, offset) in new_strings {
            self.strings.entry(s).or_insert(offset);
        }
        self.data.extend_from_slice(&bytes);
        self.records.insert(bytes, base);
        base
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Number the nodes reachable from the root, breadth first.
        let mut order = vec![0];
        let mut number = vec![None; self.nodes.len()];
        number[0] = Some(0);
        let mut i = 0;
        while i < order.len() {
            for record in self.nodes[order[i]] {
                if let Record::Node(child) = record {
                    if number[child].is_none() {
                        number[child] = Some(order.len());
                        order.push(child);
                    }
                }
            }
            i += 1;
        }
        let node_count = order.len() as u64;
        let value = |r: Record| -> u64 {
            let v = match r {
                Record::Empty => node_count,
                Record::Node(child) => number[child].expect("numbered") as u64,
                Record::Data(offset) => node_count + 16 + offset as u64,
            };
            assert!(v >> self.record_size == 0, "record {v} does not fit in {} bits", self.record_size);
            v
        };
        let mut out = Vec::new();
        for &n in &order {
            let (l, r) = (value(self.nodes[n][0]), value(self.nodes[n][1]));
            match self.record_size {
                24 => {
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                28 => {
                    // Left's low 24 bits, a byte of both high nibbles, right's low 24 bits.
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.push((((l >> 24) as u8) << 4) | (r >> 24) as u8);
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                _ => {
                    out.extend_from_slice(&l.to_be_bytes()[4..]);
                    out.extend_from_slice(&r.to_be_bytes()[4..]);
                }
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = map([
            ("node_count", Value::U32(node_count as u32)),
            ("record_size", Value::U16(self.record_size)),
            ("ip_version", Value::U16(self.ip_version)),
            ("database_type", self.database_type.as_str().into()),
            ("languages", Value::Array(self.languages.iter().map(|l| l.as_str().into()).collect())),
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(self.build_epoch)),
            ("description", Value::Map(self.description.iter().map(|(k, v)| (k.clone(), v.as_str().into())).collect())),
        ]);
        // No pointers in the metadata: it is decoded on its own.
        encode(&metadata, &mut out, &mut |_, _| None);
        out
    }

    pub(crate) fn write(&self, path: &Path) {
        std::fs::write(path, self.to_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

/// Type numbers of the data section (1 = pointer; 8 and up are "extended").
const POINTER: u8 = 1;

/// Encodes `value` onto `out`. `pointer_to(s, at)` gives the data-section
/// offset of an earlier copy of string `s`, if any (`at` is where this copy
/// would start, relative to the start of this value).
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>, pointer_to: &mut dyn FnMut(&str, usize) -> Option<usize>) {
    let start = out.len();
    encode_at(value, out, start, pointer_to);
}

fn encode_at(value: &Value, out: &mut Vec<u8>, start: usize, pointer_to: &mut dyn FnMut(&str, usize) -> Option<usize>) {
    match value {
        Value::String(s) => string(s, out, start, pointer_to),
        Value::Double(v) => payload(3, &v.to_be_bytes(), out),
        Value::Bytes(b) => payload(4, b, out),
        Value::U16(v) => payload(5, trim(&v.to_be_bytes()), out),
        Value::U32(v) => payload(6, trim(&v.to_be_bytes()), out),
        Value::Map(entries) => {
            control(7, entries.len(), out);
            for (k, v) in entries {
                string(k, out, start, pointer_to);
                encode_at(v, out, start, pointer_to);
            }
        }
        // Negative numbers need all four bytes (no sign extension on read).
        Value::I32(v) if *v < 0 => payload(8, &v.to_be_bytes(), out),
        Value::I32(v) => payload(8, trim(&v.to_be_bytes()), out),
        Value::U64(v) => payload(9, trim(&v.to_be_bytes()), out),
        Value::U128(v) => payload(10, trim(&v.to_be_bytes()), out),
        Value::Array(items) => {
            control(11, items.len(), out);
            for v in items {
                encode_at(v, out, start, pointer_to);
            }
        }
        Value::Bool(b) => control(14, usize::from(*b), out),
        Value::Float(v) => payload(15, &v.to_be_bytes(), out),
    }
}

fn string(s: &str, out: &mut Vec<u8>, start: usize, pointer_to: &mut dyn FnMut(&str, usize) -> Option<usize>) {
    // A pointer takes 2 to 5 bytes: only worth it for longer strings.
    match pointer_to(s, out.len() - start).filter(|_| s.len() >= 4) {
        Some(offset) => pointer(offset, out),
        None => payload(2, s.as_bytes(), out),
    }
}

fn payload(type_num: u8, bytes: &[u8], out: &mut Vec<u8>) {
    control(type_num, bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Big-endian bytes without leading zeros (zero is no bytes at all).
fn trim(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The control byte: type in the top 3 bits (0 = extended: type - 7 in the
/// next byte), size in the low 5 bits, with 1-3 more bytes past 28.
pub(crate) fn control(type_num: u8, size: usize, out: &mut Vec<u8>) {
    let (low, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        65_821..=16_843_036 => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
        _ => panic!("value of {size} bytes/entries is too large for MMDB"),
    };
    if type_num <= 7 {
        out.push((type_num << 5) | low);
    } else {
        out.push(low);
        out.push(type_num - 7);
    }
    out.extend_from_slice(&extra);
}

/// A pointer to a data-section offset: 11, 19, 27 or 32 bits of value
/// (the 19- and 27-bit forms are biased by 2048 and 526 336).
pub(crate) fn pointer(offset: usize, out: &mut Vec<u8>) {
    let p = offset as u64;
    let (size, value, bytes) = match p {
        0..=2047 => (0, p, 1),
        2048..=526_335 => (1, p - 2048, 2),
        526_336..=134_744_063 => (2, p - 526_336, 3),
        _ => (3, p, 4),
    };
    let high = if size == 3 { 0 } else { (value >> (8 * bytes)) as u8 };
    out.push((POINTER << 5) | (size << 3) | high);
    out.extend_from_slice(&value.to_be_bytes()[8 - bytes..]);
}
