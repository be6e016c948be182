//! The daemon's state, owned by one task (the pipeline): aggregation, the
//! per-second history, HTTP timing; published as immutable snapshots made of
//! the API's typed documents.

mod aggregate;
pub mod documents;
mod evict;
mod headline;
mod history;
mod hosts;
mod http_timing;
mod pipeline;
mod publish;
mod snapshot;

pub use aggregate::{Limits, SourceSummary};
pub use headline::Headline;
pub use history::SERIES;
pub use hosts::{HostDoc, HostInterfaceDoc, HostsDoc};
pub use http_timing::{HttpDoc, NOT_TIMED};
#[cfg(test)]
pub(crate) use pipeline::fixture;
pub use pipeline::{Pipeline, PipelineConfig, PipelineEnds, PipelineHandle, ViewerGuard};
pub use publish::Published;
pub use snapshot::{Snapshot, HTTP_TOP_MAX, TOP_MAX};
