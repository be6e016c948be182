//! Streams records from the kernel's ring buffers into the daemon's pipeline.

use std::{sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use monitor_common::{timing::HttpResponseEvent, PacketEvent};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use tokio_util::sync::CancellationToken;

use super::decode::KernelEventContext;
use crate::{
    model::Event,
    sources::{EventSink, MAX_BATCH},
};

/// What one ring buffer carries, and how its records become events.
#[derive(Clone, Copy, Debug)]
pub enum RingKind {
    /// `PacketEvent`s from the XDP observer.
    Packets,
    /// `HttpResponseEvent`s from the TC egress program.
    HttpResponses,
}

impl RingKind {
    fn decode(self, context: &KernelEventContext, record: &[u8]) -> Option<Event> {
        match self {
            RingKind::Packets => PacketEvent::from_bytes(record).map(|raw| context.event_from_kernel(&raw)),
            RingKind::HttpResponses => {
                HttpResponseEvent::from_bytes(record).map(|raw| context.event_from_response(&raw))
            }
        }
    }
}

/// How often the reader drains the ring without being woken: the kernel
/// wakes it only once a batch is waiting (see `SamplingConfig::wakeup_bytes`).
const DRAIN_EVERY: Duration = Duration::from_millis(25);

/// Reads until `stop` is cancelled or the ring buffer's fd fails; every
/// record becomes an event offered to `sink` in batches (which counts what it
/// cannot take, and malformed records).
pub fn spawn_ring_reader(
    ring: RingBuf<MapData>,
    kind: RingKind,
    context: Arc<KernelEventContext>,
    sink: EventSink,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    // SAFETY: the RingBuf owns its map fd and keeps it open and unchanged
    // for as long as the AsyncFd owns the RingBuf.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    Ok(tokio::spawn(async move {
        let mut drain_tick = tokio::time::interval(DRAIN_EVERY);
        drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                readable = fd.readable_mut() => {
                    let mut guard = match readable {
                        Ok(guard) => guard,
                        Err(error) => {
                            tracing::error!(%error, ?kind, "kernel ring buffer failed; its events stop");
                            return;
                        }
                    };
                    drain(guard.get_inner_mut(), kind, &context, &sink);
                    guard.clear_ready();
                }
                _ = drain_tick.tick() => drain(fd.get_mut(), kind, &context, &sink),
            }
        }
    }))
}

fn drain(ring: &mut RingBuf<MapData>, kind: RingKind, context: &KernelEventContext, sink: &EventSink) {
    let mut batch = Vec::new();
    while let Some(record) = ring.next() {
        match kind.decode(context, &record) {
            Some(event) => batch.push(event),
            None => sink.count_malformed_record(),
        }
        if batch.len() == MAX_BATCH {
            sink.offer(std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH)));
        }
    }
    sink.offer(batch);
}
