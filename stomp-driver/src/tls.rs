//! TLS settings for `stomp+ssl://` and `wss://` hosts, built on rustls.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::Error;

/// How a TLS connection checks the broker and presents itself: the roots it
/// trusts (the system's by default, or a CA you give), an optional client
/// certificate, and the name checked against the broker's certificate (the
/// URL's host by default; it is also sent as SNI).
///
/// Every adapter re-exports it and takes it in its `Config::tls`.
///
/// ```
/// use stomp_driver::Tls;
///
/// let ca = std::fs::read("/nonexistent/ca.pem").unwrap_or_default();
/// let tls = Tls::default()
///     .with_ca_pem(ca)
///     .with_server_name("broker.internal");
/// # let _ = tls;
/// ```
#[derive(Clone, Default)]
pub struct Tls {
    ca_pem: Option<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
    rustls: Option<Arc<ClientConfig>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca_pem.as_ref().map(|_| "given"))
            .field("client_cert", &self.client_cert.is_some())
            .field("server_name", &self.server_name)
            .field("rustls", &self.rustls.is_some())
            .finish()
    }
}

impl Tls {
    /// Trust only the CA certificates in `pem` (instead of the system's roots).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Tls {
        self.ca_pem = Some(pem.into());
        self
    }

    /// [`with_ca_pem`](Tls::with_ca_pem) with the contents of a file.
    pub fn with_ca_file(self, path: impl AsRef<Path>) -> Result<Tls, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::Tls(format!("reading {}: {e}", path.display())))?;
        Ok(self.with_ca_pem(pem))
    }

    /// Presents a client certificate: the chain and its private key, in PEM.
    pub fn with_client_cert_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Tls {
        self.client_cert = Some((chain.into(), key.into()));
        self
    }

    /// Checks the broker's certificate against `name` (and sends it as SNI)
    /// instead of the URL's host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Tls {
        self.server_name = Some(name.into());
        self
    }

    /// Uses a rustls configuration of your own as it is (the CA and client
    /// certificate settings are then ignored; the server name still applies).
    pub fn from_rustls(config: Arc<ClientConfig>) -> Tls {
        Tls {
            rustls: Some(config),
            ..Tls::default()
        }
    }

    /// The name to check, if not the URL's host.
    pub(crate) fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration these settings describe.
    pub(crate) fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(config) = &self.rustls {
            return Ok(config.clone());
        }
        let mut roots = RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| Error::Tls(format!("CA certificate: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| Error::Tls(format!("CA certificate: {e}")))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        if roots.is_empty() {
            return Err(Error::Tls("no trusted CA certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &self.client_cert {
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::Tls(format!("client certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| Error::Tls(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}
