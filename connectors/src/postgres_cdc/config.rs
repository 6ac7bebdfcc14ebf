//! The CDC source's options, named as Debezium's PostgreSQL connector names them.

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::api::{ConnectorError, OptionKind, OptionSpec, Options, Result};
use crate::jdbc::{SslMode, Tls};
use crate::postgres::PgConnection;

pub(crate) const HOST: OptionSpec = OptionSpec::new(
    "database.hostname",
    OptionKind::String,
    "PostgreSQL host name or address.",
)
.required();
pub(crate) const PORT: OptionSpec =
    OptionSpec::new("database.port", OptionKind::Integer, "PostgreSQL port.").default("5432");
pub(crate) const USER: OptionSpec = OptionSpec::new(
    "database.user",
    OptionKind::String,
    "User with the REPLICATION attribute (or a superuser).",
)
.default("postgres");
pub(crate) const PASSWORD: OptionSpec =
    OptionSpec::new("database.password", OptionKind::String, "The user's password.");
pub(crate) const DBNAME: OptionSpec =
    OptionSpec::new("database.dbname", OptionKind::String, "The database to capture.").required();
pub(crate) const SSLMODE: OptionSpec = OptionSpec::new(
    "database.sslmode",
    OptionKind::Enum(&["disable", "prefer", "require", "verify-ca", "verify-full"]),
    "TLS for both connections (the replication stream and the snapshot's).",
)
.default("prefer");
pub(crate) const SSLROOTCERT: OptionSpec = OptionSpec::new(
    "database.sslrootcert",
    OptionKind::String,
    "PEM file of the CA that signed the server's certificate (verify-ca, verify-full).",
);
pub(crate) const SLOT: OptionSpec = OptionSpec::new(
    "slot.name",
    OptionKind::String,
    "Logical replication slot (created if missing); default quiver_{pipeline}.",
);
pub(crate) const PUBLICATION: OptionSpec = OptionSpec::new(
    "publication.name",
    OptionKind::String,
    "Publication the slot streams; default the slot's name.",
);
pub(crate) const AUTOCREATE: OptionSpec = OptionSpec::new(
    "publication.autocreate.mode",
    OptionKind::Enum(&["all_tables", "filtered", "disabled"]),
    "Create a missing publication for all tables, for the included tables only (kept in step at every start), or never.",
)
.default("all_tables");
pub(crate) const INCLUDE: OptionSpec = OptionSpec::new(
    "table.include.list",
    OptionKind::List,
    "Regular expressions matched against schema.table: only these tables are captured.",
);
pub(crate) const EXCLUDE: OptionSpec = OptionSpec::new(
    "table.exclude.list",
    OptionKind::List,
    "Regular expressions matched against schema.table: these tables are not captured.",
);
pub(crate) const SNAPSHOT: OptionSpec = OptionSpec::new(
    "snapshot.mode",
    OptionKind::Enum(&["initial", "no_data", "never", "initial_only", "always"]),
    "Read the tables' current rows before streaming: at first start (initial), never (no_data, never), and stop after it (initial_only), or at every start (always).",
)
.default("initial");
pub(crate) const DROP_ON_STOP: OptionSpec = OptionSpec::new(
    "slot.drop.on.stop",
    OptionKind::Bool,
    "Drop the slot when the pipeline stops (its position is lost: the next start takes a new snapshot).",
)
.default("false");
pub(crate) const HEARTBEAT: OptionSpec = OptionSpec::new(
    "heartbeat.interval.ms",
    OptionKind::Duration,
    "Write a logical message to the WAL this often, so a slot whose tables are idle still advances (0 = off).",
)
.default("0");
pub(crate) const SKIPPED: OptionSpec = OptionSpec::new(
    "skipped.operations",
    OptionKind::List,
    "Operations not emitted: c (insert), u (update), d (delete), t (truncate), or none.",
)
.default("t");
pub(crate) const WAL_WARN: OptionSpec = OptionSpec::new(
    "slot.retained.wal.warn",
    OptionKind::Bytes,
    "Warn in the log when the slot holds back more WAL than this.",
)
.default("1GiB");

pub(crate) const OPTIONS: &[OptionSpec] = &[
    HOST,
    PORT,
    USER,
    PASSWORD,
    DBNAME,
    SSLMODE,
    SSLROOTCERT,
    SLOT,
    PUBLICATION,
    AUTOCREATE,
    INCLUDE,
    EXCLUDE,
    SNAPSHOT,
    DROP_ON_STOP,
    HEARTBEAT,
    SKIPPED,
    WAL_WARN,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    Never,
    InitialOnly,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autocreate {
    AllTables,
    Filtered,
    Disabled,
}

/// A parsed CDC source.
#[derive(Debug, Clone)]
pub struct CdcConfig {
    /// The SQL connection (snapshot, slot and publication management).
    pub conn: PgConnection,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
    pub tls: Tls,
    pub root_cert_path: Option<PathBuf>,
    /// `None`: derived from the pipeline's name at start.
    pub slot: Option<String>,
    pub publication: Option<String>,
    pub autocreate: Autocreate,
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
    pub snapshot: SnapshotMode,
    pub drop_on_stop: bool,
    pub heartbeat: Option<Duration>,
    /// Operations left out (`c`, `u`, `d`, `t`).
    pub skipped: Vec<u8>,
    pub wal_warn: u64,
}

impl CdcConfig {
    /// Whether `schema.table` is captured.
    pub fn captures(&self, qualified: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(qualified)))
            && !self.exclude.iter().any(|r| r.is_match(qualified))
    }

    /// The slot this pipeline's source uses: `slot.name`, or `quiver_{pipeline}`
    /// folded to what a slot name may hold (lower-case letters, digits, `_`; 63 bytes).
    pub fn slot_for(&self, pipeline: &str) -> String {
        self.slot.clone().unwrap_or_else(|| {
            let mut s: String = format!("quiver_{pipeline}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            s.truncate(63);
            s
        })
    }

    pub fn publication_for(&self, pipeline: &str) -> String {
        self.publication.clone().unwrap_or_else(|| self.slot_for(pipeline))
    }
}

/// Debezium matches its include and exclude lists against the whole identifier.
fn patterns(opts: &mut Options, spec: &OptionSpec) -> Result<Vec<Regex>> {
    opts.pull_list(spec)?
        .unwrap_or_default()
        .iter()
        .map(|p| Regex::new(&format!("^(?:{p})$")).map_err(|e| ConnectorError::option(spec.key, format!("'{p}': {e}"))))
        .collect()
}

pub(crate) fn parse(opts: &mut Options) -> Result<CdcConfig> {
    let host = opts.pull_required_str(&HOST)?;
    let port = opts.pull_u64(&PORT)?.unwrap_or(5432);
    let port = u16::try_from(port).map_err(|_| ConnectorError::option(PORT.key, format!("{port} is not a port")))?;
    let user = opts.pull_str(&USER)?.unwrap_or_else(|| "postgres".into());
    let password = opts.pull_str(&PASSWORD)?.unwrap_or_default();
    let dbname = opts.pull_required_str(&DBNAME)?;
    let mode = match opts.pull_enum(&SSLMODE)?.unwrap_or("prefer") {
        "disable" => SslMode::Disable,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        _ => SslMode::Prefer,
    };
    let root_cert_path = opts.pull_str(&SSLROOTCERT)?.map(PathBuf::from);
    let root_cert = match &root_cert_path {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| ConnectorError::option(SSLROOTCERT.key, format!("cannot read {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let tls = Tls { mode, root_cert };
    let mut pg = tokio_postgres::Config::new();
    pg.host(&host).port(port).user(&user).dbname(&dbname);
    if !password.is_empty() {
        pg.password(&password);
    }
    pg.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    pg.application_name("quiver-cdc");
    let conn = PgConnection {
        pg,
        tls: tls.clone(),
        target: format!("postgres://{host}:{port}/{dbname}"),
    };
    let slot = opts.pull_str(&SLOT)?;
    if let Some(s) = &slot
        && (s.is_empty()
            || s.len() > 63
            || !s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        return Err(ConnectorError::option(
            SLOT.key,
            format!("'{s}': a slot name is 1 to 63 lower-case letters, digits and underscores"),
        ));
    }
    let publication = opts.pull_str(&PUBLICATION)?;
    let autocreate = match opts.pull_enum(&AUTOCREATE)?.unwrap_or("all_tables") {
        "filtered" => Autocreate::Filtered,
        "disabled" => Autocreate::Disabled,
        _ => Autocreate::AllTables,
    };
    let include = patterns(opts, &INCLUDE)?;
    let exclude = patterns(opts, &EXCLUDE)?;
    let snapshot = match opts.pull_enum(&SNAPSHOT)?.unwrap_or("initial") {
        "no_data" | "never" => SnapshotMode::Never,
        "initial_only" => SnapshotMode::InitialOnly,
        "always" => SnapshotMode::Always,
        _ => SnapshotMode::Initial,
    };
    let drop_on_stop = opts.pull_bool(&DROP_ON_STOP)?.unwrap_or(false);
    let heartbeat = opts.pull_duration(&HEARTBEAT)?.filter(|d| !d.is_zero());
    let mut skipped = Vec::new();
    for op in opts.pull_list(&SKIPPED)?.unwrap_or_else(|| vec!["t".into()]) {
        match op.as_str() {
            "none" => skipped.clear(),
            "c" | "u" | "d" | "t" => skipped.push(op.as_bytes()[0]),
            other => {
                return Err(ConnectorError::option(
                    SKIPPED.key,
                    format!("'{other}' is not an operation (c, u, d, t or none)"),
                ));
            }
        }
    }
    let wal_warn = opts.pull_bytes(&WAL_WARN)?.unwrap_or(1 << 30);
    Ok(CdcConfig {
        conn,
        host,
        port,
        user,
        password,
        dbname,
        tls,
        root_cert_path,
        slot,
        publication,
        autocreate,
        include,
        exclude,
        snapshot,
        drop_on_stop,
        heartbeat,
        skipped,
        wal_warn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn debezium_options_parse_and_bad_ones_name_the_option() {
        let mut o = opts(&[
            ("database.hostname", "db"),
            ("database.dbname", "shop"),
            ("table.include.list", "public\\.orders, inventory\\..*"),
            ("table.exclude.list", "inventory\\.secret"),
            ("skipped.operations", "none"),
        ]);
        let c = parse(&mut o).unwrap();
        assert!(o.is_empty());
        assert!(c.captures("public.orders"));
        assert!(!c.captures("public.orders_archive"), "patterns match the whole name");
        assert!(c.captures("inventory.stock"));
        assert!(!c.captures("inventory.secret"));
        assert!(c.skipped.is_empty());
        assert_eq!(c.slot_for("My-Pipe"), "quiver_my_pipe");
        assert_eq!(c.publication_for("My-Pipe"), "quiver_my_pipe");
        assert_eq!(c.snapshot, SnapshotMode::Initial);

        let bad = |pairs: &[(&str, &str)]| {
            let mut all = vec![("database.hostname", "db"), ("database.dbname", "shop")];
            all.extend_from_slice(pairs);
            parse(&mut opts(&all)).unwrap_err().to_string()
        };
        assert!(bad(&[("slot.name", "Bad-Slot")]).contains("slot.name"));
        assert!(bad(&[("table.include.list", "(")]).contains("table.include.list"));
        assert!(bad(&[("skipped.operations", "x")]).contains("skipped.operations"));
        assert!(bad(&[("snapshot.mode", "sometimes")]).contains("snapshot.mode"));
        let missing = parse(&mut opts(&[("database.hostname", "db")]))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("database.dbname"), "{missing}");
    }
}
