//! Syslog over TCP: RFC 6587 octet counting or newline framing, with a
//! bounded number of connections and a bounded buffer per connection.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{
    ingest::{HostCheck, MAX_LINE},
    Ingest,
};

use crate::sources::{Batch, EventSink, MAX_BATCH};

const MAX_TCP_CONNECTIONS: usize = 256;

/// Binds `addr` and accepts syslog connections until `stop` is cancelled;
/// open connections end then too.
pub async fn spawn_tcp_listener(
    addr: SocketAddr,
    ingest: Arc<Ingest>,
    sink: EventSink,
    stop: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "syslog TCP listening");
    let admitted = Arc::clone(&ingest);
    Ok(spawn_accept_loop(
        listener,
        "TCP",
        move |peer| admitted.allowlist().allows(peer.ip()),
        ingest,
        stop,
        move |stream, peer, ingest| {
            let sink = sink.clone();
            async move { read_frames(stream, peer, &ingest, &sink, None).await }
        },
    ))
}

/// Accepts connections until `stop` is cancelled, at most
/// MAX_TCP_CONNECTIONS at once (more are refused), and runs `serve` for
/// each, which `stop` ends too. A peer `admit` refuses is counted like any
/// line from a sender outside the allowlist.
pub(super) fn spawn_accept_loop<Serve, Served>(
    listener: TcpListener,
    kind: &'static str,
    admit: impl Fn(SocketAddr) -> bool + Send + 'static,
    ingest: Arc<Ingest>,
    stop: CancellationToken,
    serve: Serve,
) -> JoinHandle<()>
where
    Serve: Fn(TcpStream, SocketAddr, Arc<Ingest>) -> Served + Send + 'static,
    Served: Future<Output = io::Result<()>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, kind, "syslog accept failed");
                    continue;
                }
            };
            if !admit(peer) {
                ingest.handle(peer.ip(), b"");
                continue;
            }
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!(%peer, kind, "too many syslog connections; refusing");
                continue;
            };
            let served = serve(stream, peer, Arc::clone(&ingest));
            let stop = stop.clone();
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    () = stop.cancelled() => {}
                    ended = served => if let Err(error) = ended {
                        tracing::debug!(%peer, %error, kind, "syslog connection ended");
                    },
                }
            });
        }
    })
}

/// Reads frames until EOF. Octet counting ("LEN SP MSG") when a frame starts
/// with a digit, else one message per line. The buffer never exceeds
/// MAX_LINE plus a read's worth: longer frames are skipped and counted.
/// With `check` (TLS with client certificates), each line's HOSTNAME must pass it.
pub(super) async fn read_frames<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    ingest: &Ingest,
    sink: &EventSink,
    check: Option<HostCheck<'_>>,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut framer = Framer::default();
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            if !buf.is_empty() && !framer.skipping() {
                let batch: Batch = ingest.handle_checked(peer.ip(), check, &buf).into_iter().collect();
                sink.send(batch).await;
            }
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        // The frames of one read go on as one batch. Waiting while the
        // pipeline is full lets TCP's own flow control slow the sender
        // (rsyslog queues), rather than the daemon dropping lines.
        let mut batch = Batch::new();
        while let Some(frame) = framer.next(&mut buf) {
            match frame {
                Frame::Message(msg) => batch.extend(ingest.handle_checked(peer.ip(), check, &msg)),
                Frame::Oversized => ingest.handle_oversized(peer.ip(), b""),
            }
            if batch.len() == MAX_BATCH && !sink.send(std::mem::take(&mut batch)).await {
                return Ok(());
            }
        }
        if !batch.is_empty() && !sink.send(batch).await {
            return Ok(());
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Message(Vec<u8>),
    Oversized,
}

/// Splits a TCP byte stream into syslog frames (RFC 6587).
#[derive(Debug, Default)]
struct Framer {
    /// Bytes still to discard from an oversized octet-counted frame, or
    /// `usize::MAX` while discarding an oversized line up to its newline.
    skip: usize,
}

impl Framer {
    fn skipping(&self) -> bool {
        self.skip > 0
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Option<Frame> {
        if !self.discard(buf) {
            return None;
        }
        let blank = buf.iter().take_while(|b| matches!(b, b'\n' | b'\r' | 0)).count();
        buf.drain(..blank);
        if !buf.first()?.is_ascii_digit() {
            return self.line(buf);
        }
        let Some(space) = buf.iter().take(8).position(|&b| b == b' ') else {
            // Eight bytes without a space: not a length after all.
            return if buf.len() >= 8 { self.line(buf) } else { None };
        };
        let Some(len) = octet_count(&buf[..space]) else {
            return self.line(buf);
        };
        if len > MAX_LINE {
            buf.drain(..=space);
            self.skip = len;
            return Some(Frame::Oversized);
        }
        if buf.len() < space + 1 + len {
            return None;
        }
        let msg = buf[space + 1..space + 1 + len].to_vec();
        buf.drain(..space + 1 + len);
        Some(Frame::Message(msg))
    }

    /// Drops what is left of an oversized frame; true when done.
    fn discard(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.skip == usize::MAX {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    buf.drain(..=i);
                    self.skip = 0;
                }
                None => buf.clear(),
            }
        } else if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.drain(..n);
            self.skip -= n;
        }
        self.skip == 0
    }

    fn line(&mut self, buf: &mut Vec<u8>) -> Option<Frame> {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i <= MAX_LINE => {
                let msg = buf[..i].to_vec();
                buf.drain(..=i);
                Some(Frame::Message(msg))
            }
            Some(_) => {
                self.skip = usize::MAX;
                Some(Frame::Oversized)
            }
            None if buf.len() > MAX_LINE => {
                self.skip = usize::MAX;
                buf.clear();
                Some(Frame::Oversized)
            }
            None => None,
        }
    }
}

/// The MSG-LEN of an octet-counted frame: digits only.
fn octet_count(digits: &[u8]) -> Option<usize> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]]) -> Vec<Frame> {
        let mut framer = Framer::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for part in input {
            buf.extend_from_slice(part);
            while let Some(f) = framer.next(&mut buf) {
                out.push(f);
            }
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn newline_framing_across_reads() {
        assert_eq!(frames(&[b"<13>a b\n<13>c", b" d\n"]), [msg("<13>a b"), msg("<13>c d")]);
    }

    #[test]
    fn octet_counting_across_reads() {
        assert_eq!(frames(&[b"5 <13>a", b"3 <1>"]), [msg("<13>a"), msg("<1>")]);
    }

    #[test]
    fn oversized_frames_are_skipped_and_reported() {
        let big = vec![b'x'; MAX_LINE + 10];
        let mut line = big.clone();
        line.push(b'\n');
        line.extend_from_slice(b"<13>ok\n");
        assert_eq!(frames(&[&line]), [Frame::Oversized, msg("<13>ok")]);
        let counted = format!("{} ", MAX_LINE + 10);
        assert_eq!(frames(&[counted.as_bytes(), &big, b"4 <1>x"]), [Frame::Oversized, msg("<1>x")]);
    }
}
