//! SIP over TLS (RFC 3261 §26, RFC 5630): [`TlsConfig`], the `[tls]` settings, and
//! [`TlsContext`], the rustls server and client configurations built from them and shared by
//! every worker.
//!
//! - Server side: one certificate chain and key by default, more picked by SNI
//!   ([`SniCert`]); client certificates not asked, asked, or required per listener
//!   ([`ClientAuth`]), verified against `ca_list`; TLS 1.2 and 1.3 (or 1.3 only).
//! - Client side (outgoing connections): the server's certificate is verified against
//!   `ca_list` when set, else the system roots; the name checked is the one a `[tls.client]`
//!   profile gives for the destination, else its IP address. Our default certificate is offered
//!   to servers that ask for one.
//! - [`TlsContext::reload`] re-reads every file: connections accepted or opened afterwards use
//!   the new certificates; established ones are not touched.
//!
//! The bytes inside a TLS session are framed exactly as on TCP
//! ([`super::stream::StreamFramer`]); the worker runs the same reader and writer on them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Default time a TLS handshake may take before the connection is closed.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a listener asks its clients for a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; a client without one is accepted, one with an invalid one
    /// is refused.
    Optional,
    /// A valid client certificate is required.
    Required,
}

impl ClientAuth {
    /// Parse `none`, `optional` or `required`.
    pub fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "none" => Some(ClientAuth::None),
            "optional" => Some(ClientAuth::Optional),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// The oldest TLS version accepted (both directions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A certificate served to clients that ask for `server_name` by SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniCert {
    /// The name (compared without case).
    pub server_name: String,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
}

/// The `[tls]` settings, paths resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first), served by default and offered as client certificate.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `certificate`.
    pub private_key: PathBuf,
    /// PEM CA certificates verifying client certificates and, when set, outgoing servers
    /// (instead of the system roots).
    pub ca_list: Option<PathBuf>,
    /// The oldest version accepted.
    pub min_version: MinVersion,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    /// Client certificates on listeners without their own setting.
    pub verify_client: ClientAuth,
    /// Per-listener client certificate setting, by configured listen address.
    pub listeners: Vec<(SocketAddr, ClientAuth)>,
    /// More certificates, chosen by SNI.
    pub sni: Vec<SniCert>,
    /// The name to verify (and send as SNI) per outgoing destination.
    pub clients: Vec<(SocketAddr, String)>,
}

/// Why the TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not fit the certificate, or rustls refused the settings.
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: String,
        /// rustls' error.
        source: rustls::Error,
    },
    /// Client certificates are to be verified but there is no `ca_list`.
    #[error("verify_client needs tls.ca_list (the CAs client certificates are checked against)")]
    NoCaForClients,
    /// A `[tls.client]` server name is neither a DNS name nor an IP address.
    #[error("server_name `{0}` is not a valid DNS name or IP address")]
    ServerName(String),
}

/// Read every certificate of the PEM file at `path` (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Read the private key of the PEM file at `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        pem_error(
            path,
            format!("no usable private key (PKCS#8, RSA or EC PEM block): {e}"),
        )
    })
}

/// Read the CA certificates of the PEM file at `path` into a root store.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, message: String) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message,
    }
}

/// The *ring* provider: it builds with a C compiler alone (aws-lc-rs would need more of a C
/// toolchain). rustls 0.23.48 deprecates it because it offers no post-quantum key exchange.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 alone.
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn versions(min: MinVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        MinVersion::Tls12 => rustls::ALL_VERSIONS,
        MinVersion::Tls13 => &TLS13_ONLY,
    }
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    CertifiedKey::from_der(chain, key_der, provider)
        .map(Arc::new)
        .map_err(|source| TlsError::Rustls {
            context: format!("{} with {}", cert.display(), key.display()),
            source,
        })
}

/// The default certificate and the SNI ones.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|n| self.by_name.get(&n.to_ascii_lowercase()));
        Some(Arc::clone(named.unwrap_or(&self.default)))
    }
}

/// The rustls configurations of one generation of the files.
#[derive(Debug)]
struct Built {
    /// One server configuration per [`ClientAuth`] in use: none, optional, required.
    servers: [Option<Arc<ServerConfig>>; 3],
    client: Arc<ClientConfig>,
}

fn auth_index(a: ClientAuth) -> usize {
    match a {
        ClientAuth::None => 0,
        ClientAuth::Optional => 1,
        ClientAuth::Required => 2,
    }
}

impl Built {
    fn new(cfg: &TlsConfig) -> Result<Built, TlsError> {
        let provider = provider();
        let versions = versions(cfg.min_version);
        let default = certified_key(&cfg.certificate, &cfg.private_key, &provider)?;
        let mut by_name = HashMap::new();
        for s in &cfg.sni {
            let key = certified_key(&s.certificate, &s.private_key, &provider)?;
            by_name.insert(s.server_name.to_ascii_lowercase(), key);
        }
        let resolver = Arc::new(SniResolver {
            default: Arc::clone(&default),
            by_name,
        });
        let roots = cfg.ca_list.as_deref().map(load_roots).transpose()?;
        let rustls_err = |context: &str| {
            let context = context.to_string();
            move |source| TlsError::Rustls { context, source }
        };
        let mut servers: [Option<Arc<ServerConfig>>; 3] = [None, None, None];
        let in_use = std::iter::once(cfg.verify_client).chain(cfg.listeners.iter().map(|l| l.1));
        for auth in in_use {
            let slot = match servers.get_mut(auth_index(auth)) {
                Some(s) if s.is_none() => s,
                _ => continue,
            };
            let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(versions)
                .map_err(rustls_err("TLS versions"))?;
            let builder = match auth {
                ClientAuth::None => builder.with_no_client_auth(),
                ClientAuth::Optional | ClientAuth::Required => {
                    let roots = roots.clone().ok_or(TlsError::NoCaForClients)?;
                    let v = WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        Arc::clone(&provider),
                    );
                    let v = if auth == ClientAuth::Optional {
                        v.allow_unauthenticated()
                    } else {
                        v
                    };
                    let v = v.build().map_err(|e| TlsError::Pem {
                        path: cfg.ca_list.clone().unwrap_or_default(),
                        message: format!("cannot verify client certificates with it: {e}"),
                    })?;
                    builder.with_client_cert_verifier(v)
                }
            };
            *slot = Some(Arc::new(
                builder.with_cert_resolver(Arc::clone(&resolver) as _),
            ));
        }
        let client_roots = match roots {
            Some(r) => r,
            None => system_roots(),
        };
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(client_roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| TlsError::Pem {
            path: cfg
                .ca_list
                .clone()
                .unwrap_or_else(|| PathBuf::from("system roots")),
            message: format!("cannot verify servers with it: {e}"),
        })?;
        let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(rustls_err("TLS versions"))?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(default.cert.clone(), load_key(&cfg.private_key)?)
            .map_err(rustls_err("client certificate"))?;
        Ok(Built {
            servers,
            client: Arc::new(client),
        })
    }
}

/// The system's CA certificates (what `rustls-native-certs` finds); an empty store, logged,
/// when there are none.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("reading the system CA certificates: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            ignored,
            "no system CA certificate found: outgoing TLS connections will fail verification unless tls.ca_list is set"
        );
    }
    roots
}

/// Live TLS counters.
#[derive(Debug, Default)]
pub struct TlsStats {
    open: AtomicI64,
    handshakes: AtomicU64,
    failures: AtomicU64,
}

impl TlsStats {
    /// Open TLS connections (handshake done, not yet closed).
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Handshakes completed, both directions.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Handshakes failed or timed out, both directions.
    pub fn handshake_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Count a failed handshake.
    pub fn handshake_failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a completed handshake; the connection counts as open until the guard drops.
    pub fn opened(self: &Arc<Self>) -> OpenGuard {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(self))
    }
}

/// Counts one open TLS connection while it lives.
#[derive(Debug)]
pub struct OpenGuard(Arc<TlsStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The TLS configurations shared by the workers, reloadable.
#[derive(Debug)]
pub struct TlsContext {
    config: TlsConfig,
    built: RwLock<Arc<Built>>,
    stats: Arc<TlsStats>,
}

impl TlsContext {
    /// Read the files of `config` and build the rustls configurations.
    pub fn new(config: TlsConfig) -> Result<TlsContext, TlsError> {
        for (_, name) in &config.clients {
            ServerName::try_from(name.as_str()).map_err(|_| TlsError::ServerName(name.clone()))?;
        }
        let built = Built::new(&config)?;
        Ok(TlsContext {
            config,
            built: RwLock::new(Arc::new(built)),
            stats: Arc::new(TlsStats::default()),
        })
    }

    /// Re-read every file; on success new handshakes use the new certificates, established
    /// connections go on; on error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let built = Arc::new(Built::new(&self.config)?);
        if let Ok(mut b) = self.built.write() {
            *b = built;
        }
        Ok(())
    }

    fn current(&self) -> Option<Arc<Built>> {
        self.built.read().ok().map(|b| Arc::clone(&b))
    }

    /// The acceptor for the listener configured as `listen`.
    pub fn acceptor(&self, listen: SocketAddr) -> Option<tokio_rustls::TlsAcceptor> {
        let auth = self
            .config
            .listeners
            .iter()
            .find(|(a, _)| *a == listen)
            .map_or(self.config.verify_client, |l| l.1);
        let built = self.current()?;
        let server = built.servers.get(auth_index(auth))?.clone()?;
        Some(tokio_rustls::TlsAcceptor::from(server))
    }

    /// The connector for outgoing connections.
    pub fn connector(&self) -> Option<tokio_rustls::TlsConnector> {
        Some(tokio_rustls::TlsConnector::from(Arc::clone(
            &self.current()?.client,
        )))
    }

    /// The name an outgoing connection to `dst` verifies: its `[tls.client]` profile's, else
    /// the IP address.
    pub fn server_name(&self, dst: SocketAddr) -> ServerName<'static> {
        self.config
            .clients
            .iter()
            .find(|(a, _)| *a == dst)
            .and_then(|(_, n)| ServerName::try_from(n.clone()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(dst.ip().into()))
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.config.handshake_timeout
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }
}

impl crate::metrics::prom::GaugeSource for TlsContext {
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        vec![
            (
                "tls_connections_open",
                "Open TLS connections",
                self.stats.open(),
            ),
            (
                "tls_handshakes",
                "TLS handshakes completed since start",
                n(self.stats.handshakes()),
            ),
            (
                "tls_handshake_failures",
                "TLS handshakes failed or timed out since start",
                n(self.stats.handshake_failures()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_certs(&dir.path().join("none.pem")).unwrap_err();
        assert!(e.to_string().contains("none.pem: cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let e = load_certs(&empty).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
        let e = load_key(&empty).unwrap_err();
        assert!(e.to_string().contains("no usable private key"), "{e}");
    }

    #[test]
    fn client_auth_names() {
        assert_eq!(ClientAuth::parse("required"), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("yes"), None);
    }
}
