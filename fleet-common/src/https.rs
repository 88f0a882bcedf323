//! HTTPS for the fleet's HTTP servers (fleet manager API, healthcheck, auditor dashboard): rustls
//! with a certificate and key from PEM files, reloaded when either file changes, so a renewed
//! certificate needs no restart. When TLS is configured, a plain-HTTP request gets a 400 that says
//! to use https (as nginx does) instead of a handshake failure nobody can read.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

/// How often the certificate and key files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} file {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: io::Error },
    #[error("{path}: no certificate in it (expected a PEM block `-----BEGIN CERTIFICATE-----`); give the server's certificate chain")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {detail}")]
    BadPem { path: PathBuf, detail: String },
    #[error("{path}: no private key in it (expected a PEM PKCS#8, PKCS#1 or SEC1 key)")]
    NoKey { path: PathBuf },
    #[error("{path}: the key cannot be used: {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("the key in {key} does not match the certificate in {cert}: give the key the certificate was issued for")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("{what}: give both a certificate file and a key file, or neither")]
    Half { what: String },
}

/// The server's certificate chain and private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// From a pair of optional settings (flags or config fields), refusing one without the other.
    /// `what` names them in the error, e.g. "--tls-cert and --tls-key".
    pub fn from_pair(cert: Option<PathBuf>, key: Option<PathBuf>, what: &str) -> Result<Option<Self>, TlsError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key })),
            (None, None) => Ok(None),
            _ => Err(TlsError::Half { what: what.to_string() }),
        }
    }

    /// Reads and checks both files: a chain, a key, and that the key is the certificate's.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let cert_pem = std::fs::read(&self.cert).map_err(|source| TlsError::Read { what: "certificate", path: self.cert.clone(), source })?;
        let key_pem = std::fs::read(&self.key).map_err(|source| TlsError::Read { what: "key", path: self.key.clone(), source })?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadPem { path: self.cert.clone(), detail: e.to_string() })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: self.cert.clone() });
        }
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(k) => k,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(TlsError::NoKey { path: self.key.clone() }),
            Err(e) => return Err(TlsError::BadPem { path: self.key.clone(), detail: e.to_string() }),
        };
        let signing = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadKey { path: self.key.clone(), detail: e.to_string() })?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => Ok(certified),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                Err(TlsError::Mismatch { cert: self.cert.clone(), key: self.key.clone() })
            }
            // A key type whose public half rustls cannot derive: nothing to compare.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
            Err(e) => Err(TlsError::BadPem { path: self.cert.clone(), detail: e.to_string() }),
        }
    }

    fn stamp(&self) -> Option<(SystemTime, u64, SystemTime, u64)> {
        let c = std::fs::metadata(&self.cert).ok()?;
        let k = std::fs::metadata(&self.key).ok()?;
        Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
    }
}

/// ring, named explicitly: the dependency tree enables both of rustls's providers, and rustls
/// refuses to guess between them.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The current certificate; a background task swaps in a new one when the files change and
/// still check out (a half-written renewal keeps the old one and is logged).
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// A TLS server configuration whose certificate follows its files. Fails now, naming the file,
/// when they do not check out: a server never starts half-configured.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let first = files.load()?;
    let resolver = Arc::new(ReloadingCert { files: files.clone(), current: RwLock::new(Arc::new(first)) });
    let watcher = Arc::downgrade(&resolver);
    let mut stamp = files.stamp();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_CHECK).await;
                let Some(resolver) = watcher.upgrade() else { return };
                let now = resolver.files.stamp();
                if now == stamp {
                    continue;
                }
                match resolver.files.load() {
                    Ok(key) => {
                        if let Ok(mut current) = resolver.current.write() {
                            *current = Arc::new(key);
                        }
                        stamp = now;
                        tracing::info!(cert = %resolver.files.cert.display(), "TLS certificate reloaded");
                    }
                    // Retried at the next check: the other file of a renewal may not be written yet.
                    Err(e) => tracing::warn!(error = %e, "TLS files changed but do not check out; keeping the current certificate"),
                }
            }
        });
    }
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadKey { path: files.key.clone(), detail: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `tcp`, over TLS when `tls` is given, within `limits`, until `shutdown`
/// resolves (then in-flight requests get a few seconds to finish).
pub async fn serve(
    tcp: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::serve::ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    crate::serve::serve(tcp, router, tls.map(tokio_rustls::TlsAcceptor::from), limits, shutdown).await
}

/// The scheme a server with or without TLS is reached by.
pub fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

/// Reads a CA bundle (PEM) that clients verify servers with, naming the file when it is not one.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read { what: "CA", path: path.to_path_buf(), source })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { path: path.to_path_buf(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(pem)
}

/// `tls:` in a service's YAML configuration.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl RawTls {
    /// The files, checked now (readable, a chain, a key, the key the certificate's).
    pub fn resolve(self) -> Result<TlsFiles, TlsError> {
        let files = TlsFiles { cert: self.cert_file, key: self.key_file };
        files.load()?;
        Ok(files)
    }
}
