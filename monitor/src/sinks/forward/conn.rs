//! The agent's connection to its target: connect (TCP or TLS), write the
//! queue's messages octet-counted (RFC 6587), and on any failure reconnect
//! with exponential backoff. A connection the target closes is noticed by
//! reading from it, not only at the next write.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::{
    rustls::{pki_types::ServerName, ClientConfig},
    TlsConnector,
};

use super::queue::{Item, Queue};
use crate::{
    config::{ForwardScheme, ForwardTarget},
    model::forward::octet_counted,
};

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that takes longer means the target stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages written with one system call at most.
const WRITE_BATCH: usize = 256;

/// Writes the queue's messages to `target` until the queue is closed and
/// drained.
pub(super) async fn run(target: ForwardTarget, tls: Option<Arc<ClientConfig>>, queue: Arc<Queue>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match connect(&target, tls.as_ref()).await {
            Ok(Stream::Tcp(s)) => {
                tracing::info!(%target, "forwarding");
                backoff = BACKOFF_MIN;
                if write(s, &queue).await {
                    return;
                }
            }
            Ok(Stream::Tls(s)) => {
                tracing::info!(%target, "forwarding over TLS");
                backoff = BACKOFF_MIN;
                if write(*s, &queue).await {
                    return;
                }
            }
            Err(error) => tracing::warn!(%target, %error, retry_in = ?backoff, "cannot connect to the forward target"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect(target: &ForwardTarget, tls: Option<&Arc<ClientConfig>>) -> std::io::Result<Stream> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.authority()))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    match (target.scheme, tls) {
        (ForwardScheme::Tls, Some(config)) => {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let connector = TlsConnector::from(Arc::clone(config));
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            Ok(Stream::Tls(Box::new(stream)))
        }
        _ => Ok(Stream::Tcp(tcp)),
    }
}

/// Writes until the connection fails (false: reconnect) or the queue is
/// closed and drained (true).
async fn write<S: AsyncRead + AsyncWrite + Unpin>(stream: S, queue: &Queue) -> bool {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut scratch = [0u8; 512];
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let items = tokio::select! {
            items = queue.next(WRITE_BATCH) => match items {
                Some(items) => items,
                None => {
                    let _ = writer.shutdown().await;
                    return true;
                }
            },
            // Syslog receivers never answer: a read returns only when the
            // target closed the connection or it failed.
            read = reader.read(&mut scratch) => {
                tracing::warn!(result = ?read.map(|n| n > 0), "forward target closed the connection");
                return false;
            }
        };
        buf.clear();
        for item in &items {
            let (Item::Event(m) | Item::Counters(m)) = item;
            buf.extend_from_slice(octet_counted(m).as_bytes());
        }
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            writer.write_all(&buf).await?;
            writer.flush().await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            queue.lost(&items);
            tracing::warn!(messages = items.len(), "forward write failed; reconnecting");
            return false;
        }
    }
}
