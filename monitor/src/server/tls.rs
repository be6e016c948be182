//! HTTPS for the dashboard, API and WebSocket (`--tls-cert`, `--tls-key`):
//! rustls behind an axum `Listener`. Handshakes run in their own tasks, so a
//! client that stalls mid-handshake never holds up the others.

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    extract::{connect_info::Connected, ConnectInfo, Request},
    serve::IncomingStream,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_rustls::{
    rustls::{
        pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer},
        ServerConfig,
    },
    server::TlsStream,
    TlsAcceptor,
};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections that finished their handshake and wait for axum.
const READY_QUEUE: usize = 128;

pub fn load_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate chain in {} (--tls-cert, PEM)", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate (--tls-cert)", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key in {} (--tls-key, PEM)", key.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: ServerConfig) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The peer of a TLS connection. axum only knows how to hand a plain
/// `SocketAddr` to handlers for its own TCP listener, so [`connect_info`]
/// copies this into the `ConnectInfo<SocketAddr>` the handlers expect.
#[derive(Clone, Copy, Debug)]
pub struct TlsPeer(SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        TlsPeer(*stream.remote_addr())
    }
}

/// Middleware (`map_request`) for routers served by [`TlsListener`].
pub async fn connect_info(mut request: Request) -> Request {
    if let Some(ConnectInfo(TlsPeer(addr))) = request.extensions().get::<ConnectInfo<TlsPeer>>().copied() {
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    request
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with the listener itself.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
