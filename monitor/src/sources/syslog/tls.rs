//! Syslog over TLS (RFC 5425) for agents sending straight to the central:
//! the same framing as plain TCP inside a rustls session. With a client CA,
//! every sender must present a certificate it issued, and each message's
//! HOSTNAME must be a name of that certificate, so a host cannot speak for
//! another. Handshakes run in each connection's task with a timeout.

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer, ServerName},
        server::WebPkiClientVerifier,
        RootCertStore, ServerConfig,
    },
    TlsAcceptor,
};
use tokio_util::sync::CancellationToken;

use super::{
    tcp::{read_frames, spawn_accept_loop},
    Ingest,
};
use crate::sources::EventSink;

/// A sender that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum SyslogTlsError {
    #[error("cannot read PEM file {path}")]
    Pem {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
    #[error("client CA")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// The server side: certificate chain and key, and optionally the CA whose
/// client certificates are required.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerConfig, SyslogTlsError> {
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|source| SyslogTlsError::Pem { path: key.display().to_string(), source })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(SyslogTlsError::Config)?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(SyslogTlsError::Config)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(SyslogTlsError::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(certs, key).map_err(SyslogTlsError::Config)
}

pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, SyslogTlsError> {
    let pem = |source| SyslogTlsError::Pem { path: path.display().to_string(), source };
    let certs = CertificateDer::pem_file_iter(path).map_err(pem)?.collect::<Result<Vec<_>, _>>().map_err(pem)?;
    if certs.is_empty() {
        return Err(SyslogTlsError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

/// Binds `addr` and accepts TLS syslog connections until `stop` is
/// cancelled. With client certificates required (`check_hosts`), a
/// message's HOSTNAME must be a name its sender's certificate is valid for.
pub async fn spawn_tls_listener(
    addr: SocketAddr,
    config: ServerConfig,
    check_hosts: bool,
    ingest: Arc<Ingest>,
    sink: EventSink,
    stop: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tracing::info!(%addr, client_certificates = check_hosts, "syslog TLS listening");
    // Without client certificates, the sender allowlist applies as for
    // plain TCP; with them, the certificate is the credential.
    let admitted = Arc::clone(&ingest);
    let admit = move |peer: SocketAddr| check_hosts || admitted.allowlist().allows(peer.ip());
    Ok(spawn_accept_loop(listener, "TLS", admit, ingest, stop, move |stream, peer, ingest| {
        let (acceptor, sink) = (acceptor.clone(), sink.clone());
        async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "syslog TLS handshake failed");
                    return Ok(());
                }
                Err(_) => {
                    tracing::info!(%peer, "syslog TLS handshake timed out");
                    return Ok(());
                }
            };
            let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
            let check = move |name: &str| cert.as_ref().is_some_and(|c| certificate_names(c, name));
            let check: Option<&(dyn Fn(&str) -> bool + Sync)> = if check_hosts { Some(&check) } else { None };
            read_frames(stream, peer, &ingest, &sink, check).await
        }
    }))
}

/// True when `cert` (already verified against the client CA) is valid for
/// the DNS name `name`.
fn certificate_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name) else { return false };
    webpki::EndEntityCert::try_from(cert).is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
}
