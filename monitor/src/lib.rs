//! Monitor daemon library. Read it top-down as the data flows, each layer
//! using only those below it:
//!
//! - [`config`] and [`model`]: what the operator asked for; what an event is;
//! - [`sources`]: the kernel's ring buffers and syslog senders make events;
//! - [`enrich`]: geolocation adds where a source is;
//! - [`state`]: one pipeline task owns aggregation and publishes snapshots;
//! - [`alerts`]: one engine task evaluates rules over those snapshots and
//!   publishes an alerts document;
//! - [`history`]: the embedded store commits each minute and answers ranges;
//! - [`sinks`]: the HTTP server reads those snapshots; an agent forwards
//!   its events and counters to a central monitor;
//! - [`daemon`]: wires them together and shuts them down in that order.
//!
//! Public so the integration tests can drive the real XDP program and the
//! real parsers.

pub mod alerts;
pub mod config;
pub mod daemon;
pub mod enrich;
pub mod history;
pub mod lock;
pub mod model;
pub mod sinks;
pub mod sources;
pub mod state;

pub use sources::kernel::{baseline_object, ebpf_object};
