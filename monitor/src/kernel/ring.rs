//! Streams events from the kernel ring buffer into the daemon's pipeline.

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use monitor_common::{timing::HttpResponseEvent, PacketEvent};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use crate::event::{EventSink, KernelEventContext};

/// Reads until the ring buffer's fd fails; every record becomes an event
/// offered to `sink` (which counts what it cannot take).
pub fn spawn_ring_reader(
    ring: RingBuf<MapData>,
    context: Arc<KernelEventContext>,
    sink: EventSink,
) -> std::io::Result<JoinHandle<()>> {
    // SAFETY: the RingBuf owns its map fd and keeps it open and unchanged
    // for as long as the AsyncFd owns the RingBuf.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    Ok(tokio::spawn(async move {
        loop {
            let mut guard = match fd.readable_mut().await {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(%error, "event ring buffer failed; kernel events stop");
                    return;
                }
            };
            let ring = guard.get_inner_mut();
            while let Some(record) = ring.next() {
                match PacketEvent::from_bytes(&record) {
                    Some(raw) => sink.offer(context.event_from_kernel(&raw)),
                    None => sink.count_malformed_record(),
                }
            }
            guard.clear_ready();
        }
    }))
}

/// Like [`spawn_ring_reader`], for the HTTP response ring buffer.
pub fn spawn_http_ring_reader(
    ring: RingBuf<MapData>,
    context: Arc<KernelEventContext>,
    sink: EventSink,
) -> std::io::Result<JoinHandle<()>> {
    // SAFETY: as in spawn_ring_reader.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    Ok(tokio::spawn(async move {
        loop {
            let mut guard = match fd.readable_mut().await {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(%error, "HTTP response ring buffer failed; response events stop");
                    return;
                }
            };
            let ring = guard.get_inner_mut();
            while let Some(record) = ring.next() {
                match HttpResponseEvent::from_bytes(&record) {
                    Some(raw) => sink.offer(context.event_from_response(&raw)),
                    None => sink.count_malformed_record(),
                }
            }
            guard.clear_ready();
        }
    }))
}
