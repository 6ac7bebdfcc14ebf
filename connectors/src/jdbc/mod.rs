//! What the relational connectors (`postgres`, `mysql`) share: Kafka Connect JDBC
//! semantics that do not depend on the database.
//!
//! - `sink.rs`: the JDBC sink options (`insert.mode`, `pk.mode`, `delete.enabled`, …)
//!   parsed against the output columns into a [`sink::TableSinkConfig`];
//! - `batch.rs`: one batch prepared for writing (rows grouped by table, rows that
//!   cannot be converted set aside, deletes, extra key values);
//! - `table_sink.rs`: the sink both databases run (retries, exactly-once
//!   bookkeeping), over a [`table_sink::Database`] each implements;
//! - `values.rs`: Arrow columns as per-row [`values::Cell`]s;
//! - `source.rs`: the polling source's options (`mode`, `table.whitelist` or
//!   `query`, the incrementing and timestamp columns) and its position.
//!
//! Each database's folder holds its connection options, its type mapping and its
//! statements.

pub(crate) mod batch;
pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod table_sink;
pub(crate) mod values;

use crate::api::{OptionKind, OptionSpec};

pub(crate) const USER: OptionSpec = OptionSpec::new(
    "connection.user",
    OptionKind::String,
    "User name (overrides the URL's).",
);
pub(crate) const PASSWORD: OptionSpec = OptionSpec::new(
    "connection.password",
    OptionKind::String,
    "Password (secret; overrides the URL's).",
);
pub(crate) const SSL_MODE: OptionSpec = OptionSpec::new(
    "connection.ssl.mode",
    OptionKind::Enum(&["disable", "prefer", "require", "verify-ca", "verify-full"]),
    "TLS: disable; prefer (TLS if the server offers it; the default unless the URL says otherwise); require (TLS, certificate not checked); verify-ca (certificate checked); verify-full (certificate and host name checked).",
);
pub(crate) const SSL_ROOT_CERT: OptionSpec = OptionSpec::new(
    "connection.ssl.root.cert",
    OptionKind::String,
    "PEM file of the certificate authority for verify-ca / verify-full (default: the system's roots).",
);

/// TLS settings, as both databases take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub mode: SslMode,
    /// The root certificate's PEM bytes (read at parse time so a bad path is a CREATE error).
    pub root_cert: Option<Vec<u8>>,
}

impl Tls {
    /// Reads `connection.ssl.*`; `default` applies when the mode is not given.
    pub(crate) fn parse(opts: &mut crate::api::Options, default: SslMode) -> crate::api::Result<Self> {
        let mode = match opts.pull_enum(&SSL_MODE)? {
            Some("disable") => SslMode::Disable,
            Some("prefer") => SslMode::Prefer,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            _ => default,
        };
        let root_cert = match opts.pull_str(&SSL_ROOT_CERT)? {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                crate::api::ConnectorError::option(SSL_ROOT_CERT.key, format!("cannot read {path}: {e}"))
            })?),
            None => None,
        };
        if root_cert.is_some() && !matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(crate::api::ConnectorError::option(
                SSL_ROOT_CERT.key,
                "only applies with connection.ssl.mode = 'verify-ca' or 'verify-full'",
            ));
        }
        Ok(Self { mode, root_cert })
    }

    /// A native-tls connector for these settings.
    pub(crate) fn connector(&self) -> std::result::Result<native_tls::TlsConnector, String> {
        let mut b = native_tls::TlsConnector::builder();
        match self.mode {
            SslMode::VerifyFull => {}
            SslMode::VerifyCa => {
                b.danger_accept_invalid_hostnames(true);
            }
            _ => {
                b.danger_accept_invalid_certs(true);
            }
        }
        if let Some(pem) = &self.root_cert {
            let cert = native_tls::Certificate::from_pem(pem)
                .map_err(|e| format!("connection.ssl.root.cert is not a PEM certificate: {e}"))?;
            b.add_root_certificate(cert);
        }
        b.build().map_err(|e| format!("setting up TLS: {e}"))
    }
}
