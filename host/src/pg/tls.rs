//! TLS for Postgres (`sslmode=prefer|require`): rustls with the system's
//! roots plus any CA root the guest set. As in Spin, the chain and host
//! name are always verified, even with `require`.

use super::pool::CaRoot;
use anyhow::{Context, Result};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

pub fn connector(ca_root: Option<&CaRoot>) -> Result<MakeRustlsConnect> {
    let mut roots = RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(certificate);
    }
    if let Some(ca_root) = ca_root {
        for certificate in CertificateDer::pem_slice_iter(ca_root.pem.as_bytes()) {
            roots
                .add(certificate.context("invalid root certificate")?)
                .context("invalid root certificate")?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Checks a PEM root certificate without using it yet.
pub fn validate_ca_root(pem: &str) -> Result<()> {
    let mut found = false;
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certificate.context("invalid root certificate")?;
        found = true;
    }
    anyhow::ensure!(found, "no certificate in PEM text");
    Ok(())
}
