//! MySQL/MariaDB connection options: native and JDBC URLs, user and password, TLS.

use mysql_async::{Opts, OptsBuilder, SslOpts};
use tracing::warn;

use crate::api::{ConnectorError, Options, Result};
use crate::jdbc::{PASSWORD, SslMode, Tls, USER};

/// Where and how to connect.
#[derive(Clone)]
pub struct MysqlConnection {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub database: Option<String>,
    pub tls: Tls,
    /// Host and database, for messages.
    pub target: String,
}

impl std::fmt::Debug for MysqlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlConnection")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("tls", &self.tls.mode)
            .finish()
    }
}

/// Query parameters of a JDBC URL that set the connection; the rest tune the Java
/// driver and are ignored (with a warning).
const URL_PARAMS: [&str; 5] = ["user", "password", "sslMode", "useSSL", "requireSSL"];

/// Accepts `mysql://`, `mariadb://`, `jdbc:mysql://` and `jdbc:mariadb://` URLs:
/// `scheme://[user[:password]@]host[:port][/database][?user=…&password=…&sslMode=…]`.
pub(crate) fn connection(url: &str) -> std::result::Result<MysqlConnection, String> {
    let url = url.trim();
    let native = url.strip_prefix("jdbc:").unwrap_or(url);
    let Some((scheme, rest)) = native.split_once("://") else {
        return Err("expected mysql://host:port/database, mariadb://… or jdbc:mysql://…".into());
    };
    if !matches!(scheme, "mysql" | "mariadb") {
        return Err(format!(
            "'{scheme}://' is not a MySQL URL (expected mysql://, mariadb://, jdbc:mysql:// or jdbc:mariadb://)"
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let (mut user, mut password) = match credentials {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(decode(u)?), Some(decode(p)?)),
            None => (Some(decode(c)?), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_matches(['[', ']']),
            p.parse::<u16>().map_err(|_| format!("port '{p}' is not a number"))?,
        ),
        _ => (hostport, 3306),
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let mut mode = None;
    let mut ignored = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v)?;
        match k {
            "user" => user = Some(v),
            "password" => password = Some(v),
            "sslMode" | "sslmode" => {
                mode = Some(match v.to_ascii_uppercase().as_str() {
                    "DISABLED" | "DISABLE" => SslMode::Disable,
                    "PREFERRED" | "PREFER" => SslMode::Prefer,
                    "REQUIRED" | "REQUIRE" => SslMode::Require,
                    "VERIFY_CA" | "VERIFY-CA" => SslMode::VerifyCa,
                    "VERIFY_IDENTITY" | "VERIFY-FULL" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslMode '{other}' is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                        ));
                    }
                })
            }
            "useSSL" | "requireSSL" => {
                if v.eq_ignore_ascii_case("true") {
                    mode = Some(SslMode::Require);
                } else if mode.is_none() {
                    mode = Some(SslMode::Disable);
                }
            }
            _ => ignored.push(k.to_string()),
        }
    }
    if !ignored.is_empty() {
        warn!(params = %ignored.join(", "), understood = %URL_PARAMS.join(", "), "ignoring JDBC URL parameters that only tune the Java driver");
    }
    let database = (!database.is_empty()).then(|| decode(database)).transpose()?;
    let target = format!("mysql://{host}:{port}/{}", database.as_deref().unwrap_or(""));
    Ok(MysqlConnection {
        host: host.to_string(),
        port,
        user: user.unwrap_or_else(|| "root".into()),
        password,
        database,
        tls: Tls {
            mode: mode.unwrap_or_default(),
            root_cert: None,
        },
        target,
    })
}

/// Percent-decoding for URL parts (user names and passwords may hold '@' or ':').
fn decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("'{s}' has a broken %-escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("'{s}' has a broken %-escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once decoded"))
}

/// Reads `connection.url`, `connection.user`, `connection.password` and `connection.ssl.*`.
pub(crate) fn parse(opts: &mut Options) -> Result<MysqlConnection> {
    let url = opts.pull_required_str(&super::URL)?;
    let mut conn = connection(&url).map_err(|e| ConnectorError::option(super::URL.key, e))?;
    if let Some(u) = opts.pull_str(&USER)? {
        conn.user = u;
    }
    if let Some(p) = opts.pull_str(&PASSWORD)? {
        conn.password = Some(p);
    }
    conn.tls = Tls::parse(opts, conn.tls.mode)?;
    Ok(conn)
}

impl MysqlConnection {
    fn opts(&self, tls: bool) -> Opts {
        let ssl = tls.then(|| {
            let mut ssl = SslOpts::default();
            match self.tls.mode {
                SslMode::VerifyFull => {}
                SslMode::VerifyCa => ssl = ssl.with_danger_skip_domain_validation(true),
                _ => ssl = ssl.with_danger_accept_invalid_certs(true),
            }
            if let Some(pem) = &self.tls.root_cert {
                ssl = ssl.with_root_certs(vec![pem.clone().into()]);
            }
            ssl
        });
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(self.database.clone())
            .prefer_socket(false)
            .ssl_opts(ssl)
            // Strict values (no silent truncation), backslashes taken literally in
            // string literals (the sink doubles quotes only), timestamps in UTC.
            .init(vec![
                "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES', 'NO_BACKSLASH_ESCAPES')",
                "SET time_zone = '+00:00'",
            ])
            .into()
    }

    /// Opens a connection, with TLS as configured (`prefer` falls back to plain
    /// when the server has no TLS).
    pub(crate) async fn connect(&self) -> Result<mysql_async::Conn> {
        let fail = |e: mysql_async::Error| error(&format!("connecting to {}", self.target), &e);
        match self.tls.mode {
            SslMode::Disable => mysql_async::Conn::new(self.opts(false)).await.map_err(fail),
            SslMode::Prefer => match mysql_async::Conn::new(self.opts(true)).await {
                Ok(c) => Ok(c),
                Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {
                    mysql_async::Conn::new(self.opts(false)).await.map_err(fail)
                }
                Err(e) => Err(fail(e)),
            },
            _ => mysql_async::Conn::new(self.opts(true)).await.map_err(fail),
        }
    }
}

/// The connection is gone or the server is going away (shutdown, connection
/// killed): a retry after reconnecting may succeed. Anything else the server
/// answered (access denied, unknown table, a constraint) will not pass.
pub(crate) fn is_lost(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // Server shutdown, connection killed, lost connection, gone away.
        mysql_async::Error::Server(s) => matches!(s.code, 1053 | 1927 | 2006 | 2013),
        _ => false,
    }
}

/// A database error with its context, retriable (`Unavailable`) when the
/// connection is lost, a configuration problem otherwise.
pub(crate) fn error(context: &str, e: &mysql_async::Error) -> ConnectorError {
    let message = format!("{context}: {}", reason(e));
    if is_lost(e) {
        ConnectorError::Unavailable(message)
    } else {
        ConnectorError::Config(message)
    }
}

/// The error with its cause chain.
pub(crate) fn reason(e: &mysql_async::Error) -> String {
    if let mysql_async::Error::Server(s) = e {
        return format!("{} ({}, SQLSTATE {})", s.message, s.code, s.state);
    }
    crate::api::error::with_causes(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_and_native_urls_parse_and_others_are_refused() {
        let c =
            connection("jdbc:mysql://db.example:3307/shop?user=etl&password=s%40cret&rewriteBatchedStatements=true")
                .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.database.as_deref()),
            ("db.example", 3307, "etl", Some("shop"))
        );
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert!(
            !format!("{c:?}").contains("s@cret"),
            "the password is not in Debug output"
        );
        let c = connection("mariadb://root:pw@127.0.0.1/test?sslMode=REQUIRED").unwrap();
        assert_eq!((c.port, c.tls.mode), (3306, SslMode::Require));
        let c = connection("jdbc:mariadb://localhost/test?useSSL=false").unwrap();
        assert_eq!(c.tls.mode, SslMode::Disable);
        assert!(
            connection("jdbc:postgresql://h/db")
                .unwrap_err()
                .contains("'postgresql://' is not a MySQL URL")
        );
        assert!(connection("mysql://h:x/db").unwrap_err().contains("port 'x'"));
        assert!(connection("mysql://h/db?sslMode=MAYBE").unwrap_err().contains("MAYBE"));
    }
}
