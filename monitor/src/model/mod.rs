//! The bottom layer: what an event is, how it reads, what time it is.
//! Everything above (sources, enrichment, state, sinks) speaks these types.

mod address;
mod address_map;
pub mod clock;
mod describe;
mod event;
mod filter;
pub mod forward;
mod geo;

pub use address::{label, AddressLabel};
pub use address_map::{address_map, AddressHasher, AddressMap};
pub use clock::{now_ms, rfc3339, WallClock};
pub use describe::{describe, describe_payload};
pub use event::{Event, HttpInfo, IcmpInfo, Origin, ResponseInfo, TlsInfo, SCHEMA_VERSION, STATUS_CLASS_NAMES};
pub use filter::{sample, EventFilter};
pub use geo::GeoInfo;
