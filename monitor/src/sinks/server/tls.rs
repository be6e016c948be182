//! HTTPS for the dashboard, API and WebSocket (`--tls-cert`, `--tls-key`):
//! the rustls configuration. Handshakes run in each connection's own task
//! (`conn`), so a client that stalls mid-handshake never holds up the
//! others, and is dropped after a timeout.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use tokio_rustls::rustls::{
    pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer},
    ServerConfig,
};

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
