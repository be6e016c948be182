//! Events as the live streams send them.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::model::Event;

/// An event serialized once, shared by every WebSocket client and NDJSON
/// reader, however many there are.
#[derive(Debug)]
pub struct Published {
    pub event: Arc<Event>,
    pub json: Box<RawValue>,
}

impl Published {
    pub fn new(event: Arc<Event>) -> Option<Self> {
        let json = serde_json::value::to_raw_value(&*event).ok()?;
        Some(Published { event, json })
    }
}
