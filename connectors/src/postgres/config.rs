//! PostgreSQL connection options: native and JDBC URLs, user and password, TLS.

use crate::api::{ConnectorError, Options, Result};
use crate::jdbc::{PASSWORD, SslMode, Tls, USER};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct PgConnection {
    /// Connection settings (their Debug output hides the password).
    pub pg: tokio_postgres::Config,
    pub tls: Tls,
    /// Host and database, for messages.
    pub target: String,
}

/// Accepts `postgres://`, `postgresql://`, `jdbc:postgresql://` and key=value strings.
pub(crate) fn connection(url: &str) -> std::result::Result<tokio_postgres::Config, String> {
    let url = url.trim();
    let native = url.strip_prefix("jdbc:").unwrap_or(url);
    if let Some(scheme) = native.split_once("://").map(|(s, _)| s)
        && !matches!(scheme, "postgres" | "postgresql")
    {
        return Err(format!(
            "'{scheme}://' is not a PostgreSQL URL (expected postgres://, postgresql:// or jdbc:postgresql://)"
        ));
    }
    native
        .parse::<tokio_postgres::Config>()
        .map_err(|e| format!("not a valid PostgreSQL connection string: {e}"))
}

/// Reads `connection.url`, `connection.user`, `connection.password` and `connection.ssl.*`.
pub(crate) fn parse(opts: &mut Options) -> Result<PgConnection> {
    let url = opts.pull_required_str(&super::URL)?;
    let mut pg = connection(&url).map_err(|e| ConnectorError::option(super::URL.key, e))?;
    if let Some(u) = opts.pull_str(&USER)? {
        pg.user(&u);
    }
    if let Some(p) = opts.pull_str(&PASSWORD)? {
        pg.password(p);
    }
    if pg.get_user().is_none() {
        pg.user(std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
    }
    // The URL's sslmode (disable, prefer, require) is the default for connection.ssl.mode.
    let url_mode = match pg.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => SslMode::Disable,
        tokio_postgres::config::SslMode::Require => SslMode::Require,
        _ => SslMode::Prefer,
    };
    let tls = Tls::parse(opts, url_mode)?;
    pg.ssl_mode(match tls.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let target = format!(
        "postgres://{host}:{}/{}",
        pg.get_ports().first().copied().unwrap_or(5432),
        pg.get_dbname().unwrap_or("")
    );
    Ok(PgConnection { pg, tls, target })
}

impl PgConnection {
    /// Opens a connection (TLS as configured) and drives it on its own task. Every
    /// session works in UTC, so timestamps without a zone read and compare as UTC.
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client> {
        let fail = |e: &tokio_postgres::Error| error(&format!("connecting to {}", self.target), e);
        let client = if self.tls.mode == SslMode::Disable {
            let (client, connection) = self.pg.connect(tokio_postgres::NoTls).await.map_err(|e| fail(&e))?;
            self.drive(connection);
            client
        } else {
            let connector = self
                .tls
                .connector()
                .map_err(|e| ConnectorError::Config(format!("connecting to {}: {e}", self.target)))?;
            let (client, connection) = self
                .pg
                .connect(postgres_native_tls::MakeTlsConnector::new(connector))
                .await
                .map_err(|e| fail(&e))?;
            self.drive(connection);
            client
        };
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(|e| fail(&e))?;
        Ok(client)
    }

    fn drive<F>(&self, connection: F)
    where
        F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(target = %target, error = %e, "PostgreSQL connection ended");
            }
        });
    }
}

/// The connection is gone, or the server is starting or shutting down (SQLSTATE
/// classes 08 and 57): a retry after reconnecting may succeed. Anything the server
/// answered otherwise (bad password, no such table, a constraint) will not pass.
pub(crate) fn is_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || e.code().is_none_or(|c| matches!(&c.code()[..2], "08" | "57"))
}

/// A database error with its context, retriable (`Unavailable`) when the
/// connection is lost, a configuration problem otherwise.
pub(crate) fn error(context: &str, e: &tokio_postgres::Error) -> ConnectorError {
    let message = format!("{context}: {}", reason(e));
    if is_lost(e) {
        ConnectorError::Unavailable(message)
    } else {
        ConnectorError::Config(message)
    }
}

/// The error with its cause chain (a TLS handshake failure says why: expired,
/// self-signed, wrong host; a refused connection names the address).
pub(crate) fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} ({})", d.message(), d.code().code());
    }
    crate::api::error::with_causes(e)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_and_native_urls_parse_and_others_are_refused() {
        let c = connection("jdbc:postgresql://db.example:6543/shop?user=etl&password=s3cret").unwrap();
        assert_eq!(c.get_dbname(), Some("shop"));
        assert_eq!(c.get_user(), Some("etl"));
        assert_eq!(c.get_ports(), &[6543]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the password is not in Debug output"
        );
        assert!(connection("postgres://127.0.0.1/test").is_ok());
        let e = connection("jdbc:mysql://h/db").unwrap_err();
        assert!(e.contains("'mysql://' is not a PostgreSQL URL"), "{e}");
    }
}
