//! The daemon's state, owned by one task (the pipeline): aggregation, the
//! per-second history, HTTP timing; published as immutable snapshots made of
//! the API's typed documents.

pub mod activity;
mod aggregate;
pub mod documents;
mod evict;
mod headline;
mod history;
mod hosts;
mod http_timing;
mod minute;
mod pipeline;
mod publish;
mod snapshot;

pub use activity::{Activity, SourceSecond};
pub use aggregate::{AsnCount, CountryCount, Limits, SourceSummary};
pub use headline::Headline;
pub use history::SERIES;
pub use hosts::{HostDoc, HostInterfaceDoc, HostsDoc};
pub use http_timing::{HttpDoc, Summary as HttpSummary, NOT_TIMED};
pub use minute::{KeyCount, MinuteSource, MinuteSummary, Restored, MINUTE_TOP_SOURCES};
#[cfg(test)]
pub(crate) use pipeline::fixture;
pub use pipeline::{Pipeline, PipelineConfig, PipelineEnds, PipelineHandle, ViewerGuard};
pub use publish::Published;
pub use snapshot::{Snapshot, HTTP_TOP_MAX, TOP_MAX};
