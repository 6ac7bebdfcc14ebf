//! HTTPS for the REST API, configured with Kafka Connect's keys: a
//! `listeners=https://host:port` entry, and the `listeners.https.ssl.*` keys,
//! falling back to the plain `ssl.*` keys as Kafka Connect does. Keystores and
//! truststores are PEM as KIP-651 defines them:
//!
//! - `ssl.keystore.type=PEM` with `ssl.keystore.location` naming one PEM file that
//!   holds the private key and its certificate chain, or `ssl.keystore.key` and
//!   `ssl.keystore.certificate.chain` inline;
//! - `ssl.truststore.type=PEM` with `ssl.truststore.location` (a PEM file of CA
//!   certificates) or `ssl.truststore.certificates` inline;
//! - `ssl.client.authentication=required|requested|none` (default none).
//!
//! Design notes:
//! - Served with rustls (ring), through axum's `Listener` seam: a background task
//!   accepts TCP connections and runs each TLS handshake in a task of its own (10 s
//!   limit), so a client that never finishes its handshake holds up nobody; the
//!   established streams go to axum as any connection does, with the same router,
//!   limits and graceful shutdown as the HTTP listener.
//! - JKS and PKCS12 keystores are refused with an error naming the key: there is no
//!   JVM here to read them; `openssl` converts them to PEM.
//! - An encrypted private key (`ssl.key.password`) is refused the same way.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The TLS settings of the HTTPS listener, read from the worker properties.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ServerConfig>,
    /// What the keys said, for the start-up log.
    pub summary: String,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// A key's value: `listeners.https.<key>` first, then `<key>`.
fn key<'a>(props: &'a BTreeMap<String, String>, name: &str) -> Option<(String, &'a str)> {
    let scoped = format!("listeners.https.{name}");
    props
        .get(&scoped)
        .map(|v| (scoped, v.trim()))
        .or_else(|| props.get(name).map(|v| (name.to_string(), v.trim())))
        .filter(|(_, v)| !v.is_empty())
}

/// Whether a worker key is one this module reads.
pub fn is_tls_key(k: &str) -> bool {
    let k = k.strip_prefix("listeners.https.").unwrap_or(k);
    k.starts_with("ssl.")
}

impl TlsSettings {
    /// Reads the HTTPS listener's keystore, truststore and client authentication.
    pub fn from_worker(props: &BTreeMap<String, String>) -> Result<Self, String> {
        for name in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some((k, v)) = key(props, name)
                && !v.eq_ignore_ascii_case("PEM")
            {
                return Err(format!(
                    "{k}: '{v}' keystores cannot be read here; convert it to PEM (openssl pkcs12 -in store.p12 -nodes) and set {name}=PEM"
                ));
            }
        }
        if let Some((k, _)) = key(props, "ssl.key.password") {
            return Err(format!(
                "{k}: encrypted private keys are not supported; give the key unencrypted (openssl pkey -in key.pem -out plain.pem)"
            ));
        }
        let (pem, from) = match (
            key(props, "ssl.keystore.location"),
            key(props, "ssl.keystore.key"),
            key(props, "ssl.keystore.certificate.chain"),
        ) {
            (Some((k, path)), None, None) => (
                std::fs::read(path).map_err(|e| format!("{k}: cannot read {path}: {e}"))?,
                format!("keystore {path}"),
            ),
            (None, Some((_, private)), Some((_, chain))) => (
                format!("{private}\n{chain}\n").into_bytes(),
                "the inline keystore".to_string(),
            ),
            (None, None, None) => {
                return Err(
                    "listeners has an https:// listener but no keystore: set ssl.keystore.type=PEM and ssl.keystore.location (one PEM file with the private key and its certificate chain)".into(),
                );
            }
            _ => {
                return Err(
                    "give either ssl.keystore.location or both ssl.keystore.key and ssl.keystore.certificate.chain"
                        .into(),
                );
            }
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{from}: a certificate cannot be read: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{from} holds no certificate"));
        }
        let private = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| format!("{from} holds no readable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"))?;

        let auth = key(props, "ssl.client.authentication").map_or("none".to_string(), |(_, v)| v.to_ascii_lowercase());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match auth.as_str() {
            "none" => builder.with_no_client_auth(),
            "required" | "requested" => {
                let mut roots = rustls::RootCertStore::empty();
                let trusted: Vec<CertificateDer<'static>> = match (
                    key(props, "ssl.truststore.location"),
                    key(props, "ssl.truststore.certificates"),
                ) {
                    (Some((k, path)), _) => {
                        let pem = std::fs::read(path).map_err(|e| format!("{k}: cannot read {path}: {e}"))?;
                        CertificateDer::pem_slice_iter(&pem)
                            .collect::<Result<_, _>>()
                            .map_err(|e| format!("{k}: {e}"))?
                    }
                    (None, Some((k, inline))) => CertificateDer::pem_slice_iter(inline.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{k}: {e}"))?,
                    (None, None) => {
                        return Err(format!(
                            "ssl.client.authentication={auth} needs the CAs that sign client certificates: set ssl.truststore.type=PEM and ssl.truststore.location"
                        ));
                    }
                };
                for c in trusted {
                    roots
                        .add(c)
                        .map_err(|e| format!("truststore: a certificate is not usable as a CA: {e}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == "required" {
                    verifier.build()
                } else {
                    verifier.allow_unauthenticated().build()
                }
                .map_err(|e| format!("truststore: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            other => {
                return Err(format!(
                    "ssl.client.authentication: '{other}' is not one of required, requested, none"
                ));
            }
        };
        let mut config = builder
            .with_single_cert(certs, private)
            .map_err(|e| format!("{from}: the private key does not fit the certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            summary: format!("{from}, client certificates {auth}"),
        })
    }

    /// Starts accepting TLS connections on `listener`.
    pub fn listen(&self, listener: TcpListener) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(Arc::clone(&self.config));
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake took too long"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

/// An HTTPS listener for `axum::serve`: yields connections whose TLS handshake
/// succeeded.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accepting task never ends on its own; if it is gone, wait forever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
