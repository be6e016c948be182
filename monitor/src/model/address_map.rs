//! The hash table every per-source record lives in.
//!
//! Each event visits several tables keyed by its source address (the
//! aggregate, the second's activity, the minute, the geo cache). std's
//! SipHash made those lookups a visible share of the daemon's CPU per event;
//! foldhash is several times cheaper on a 4- or 16-byte key. Its seed is
//! random per process, and every such table is bounded (evicted or capped),
//! so addresses chosen to collide cannot grow one without limit.

use std::{collections::HashMap, net::IpAddr};

/// The hasher of address-keyed tables.
pub type AddressHasher = foldhash::fast::RandomState;

/// A table keyed by address.
pub type AddressMap<V> = HashMap<IpAddr, V, AddressHasher>;

/// An empty table with room for `capacity` addresses.
pub fn address_map<V>(capacity: usize) -> AddressMap<V> {
    HashMap::with_capacity_and_hasher(capacity, AddressHasher::default())
}
