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

pub(crate) const ENVELOPE: OptionSpec = OptionSpec::new(
    "envelope",
    OptionKind::Enum(&["none", "debezium", "debezium-unwrapped"]),
    "none: one row per change with the declared columns; debezium: each change as Debezium's change event (key and value JSON in _key and _value, routed by _topic); debezium-unwrapped: the new row only, as Debezium's ExtractNewRecordState gives it.",
)
.default("none");
pub(crate) const TOPIC_PREFIX: OptionSpec = OptionSpec::new(
    "topic.prefix",
    OptionKind::String,
    "Debezium envelopes: the logical server name; each table's events go to {topic.prefix}.{schema}.{table}.",
);
pub(crate) const KEY_CONVERTER: OptionSpec = OptionSpec::new(
    "key.converter",
    OptionKind::Enum(&["json", "string", "avro"]),
    "Debezium envelopes: the key as JsonConverter writes it, as StringConverter does (Struct{id=1}), or as AvroConverter does (Confluent's wire format, schema registered under {topic}-key).",
)
.default("json");
pub(crate) const VALUE_CONVERTER: OptionSpec = OptionSpec::new(
    "value.converter",
    OptionKind::Enum(&["json", "avro"]),
    "Debezium envelopes: the event as JsonConverter writes it, or as AvroConverter does (schema registered under {topic}-value).",
)
.default("json");
pub(crate) const REGISTRY: OptionSpec = OptionSpec::new(
    "schema.registry.url",
    OptionKind::String,
    "Debezium envelopes in Avro: the Schema Registry each table's schemas are registered with.",
);
pub(crate) const REGISTRY_AUTH: OptionSpec = OptionSpec::new(
    "schema.registry.basic.auth.user.info",
    OptionKind::String,
    "Debezium envelopes in Avro: user:password for the Schema Registry.",
);
pub(crate) const KEY_SCHEMAS: OptionSpec = OptionSpec::new(
    "key.converter.schemas.enable",
    OptionKind::Bool,
    "Debezium envelopes: JSON keys carry their Connect schema ({\"schema\", \"payload\"}).",
)
.default("true");
pub(crate) const VALUE_SCHEMAS: OptionSpec = OptionSpec::new(
    "value.converter.schemas.enable",
    OptionKind::Bool,
    "Debezium envelopes: JSON values carry their Connect schema ({\"schema\", \"payload\"}).",
)
.default("true");
pub(crate) const TOMBSTONES: OptionSpec = OptionSpec::new(
    "tombstones.on.delete",
    OptionKind::Bool,
    "Debezium envelopes: a record with the key and a null value follows each delete, so compaction can remove the row.",
)
.default("true");
pub(crate) const DECIMAL_MODE: OptionSpec = OptionSpec::new(
    "decimal.handling.mode",
    OptionKind::Enum(&["precise", "string", "double"]),
    "Debezium envelopes: NUMERIC as Connect Decimal bytes (precise), as text, or as a double.",
)
.default("precise");
pub(crate) const TIME_MODE: OptionSpec = OptionSpec::new(
    "time.precision.mode",
    OptionKind::Enum(&["adaptive", "adaptive_time_microseconds", "connect"]),
    "Debezium envelopes: TIME and TIMESTAMP as Debezium's types at the column's precision (adaptive), TIME always in microseconds, or Kafka Connect's millisecond types.",
)
.default("adaptive");
pub(crate) const BINARY_MODE: OptionSpec = OptionSpec::new(
    "binary.handling.mode",
    OptionKind::Enum(&["bytes", "base64", "base64-url-safe", "hex"]),
    "Debezium envelopes: BYTEA as Connect bytes (base64 in JSON) or as a base64, URL-safe base64 or hex string.",
)
.default("bytes");
pub(crate) const UNWRAP_DELETES: OptionSpec = OptionSpec::new(
    "unwrap.delete.tombstone.handling.mode",
    OptionKind::Enum(&["drop", "tombstone", "rewrite", "rewrite-with-tombstone"]),
    "debezium-unwrapped: what a delete becomes (ExtractNewRecordState's option): nothing, only its tombstone, the old row with __deleted = 'true', or both.",
)
.default("tombstone");
pub(crate) const UNWRAP_ADD_FIELDS: OptionSpec = OptionSpec::new(
    "unwrap.add.fields",
    OptionKind::List,
    "debezium-unwrapped: envelope or source fields added to the row (op, table, lsn, source.ts_ms, …), named with unwrap.add.fields.prefix.",
);
pub(crate) const UNWRAP_PREFIX: OptionSpec = OptionSpec::new(
    "unwrap.add.fields.prefix",
    OptionKind::String,
    "debezium-unwrapped: the prefix of added fields.",
)
.default("__");

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
    ENVELOPE,
    TOPIC_PREFIX,
    KEY_CONVERTER,
    VALUE_CONVERTER,
    REGISTRY,
    REGISTRY_AUTH,
    KEY_SCHEMAS,
    VALUE_SCHEMAS,
    TOMBSTONES,
    DECIMAL_MODE,
    TIME_MODE,
    BINARY_MODE,
    UNWRAP_DELETES,
    UNWRAP_ADD_FIELDS,
    UNWRAP_PREFIX,
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
    /// `envelope = 'debezium'` or `'debezium-unwrapped'`: changes as Debezium's events.
    pub events: Option<EventConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalMode {
    Precise,
    String,
    Double,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    Adaptive,
    AdaptiveTimeMicros,
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryMode {
    Bytes,
    Base64,
    Base64UrlSafe,
    Hex,
}

/// What `ExtractNewRecordState` does with a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrap {
    /// The delete becomes the old row with `{prefix}deleted = "true"` (and other
    /// rows carry `"false"`); otherwise it is dropped.
    pub rewrite: bool,
    /// The tombstone after a delete is kept.
    pub tombstones: bool,
    /// Envelope or source fields added to each row (`op`, `source.ts_ms`, …).
    pub add_fields: Vec<String>,
    pub prefix: String,
}

/// How changes become Debezium's change events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConfig {
    pub topic_prefix: String,
    /// The key as StringConverter writes a Struct rather than as JSON.
    pub key_string: bool,
    /// Key and value in Avro (Confluent's wire format) rather than JSON.
    pub key_avro: bool,
    pub value_avro: bool,
    /// The Schema Registry (URL, `user:password`), for Avro.
    pub registry: Option<(String, Option<String>)>,
    pub key_schemas: bool,
    pub value_schemas: bool,
    pub tombstones: bool,
    pub decimal: DecimalMode,
    pub time: TimeMode,
    pub binary: BinaryMode,
    /// `debezium-unwrapped`: the new row alone.
    pub unwrap: Option<Unwrap>,
}

/// ExtractNewRecordState's `add.fields` Quiver fills, with their Connect types.
pub const ADDABLE_FIELDS: &[(&str, &str)] = &[
    ("op", "string"),
    ("ts_ms", "int64"),
    ("table", "string"),
    ("schema", "string"),
    ("db", "string"),
    ("lsn", "int64"),
    ("txId", "int64"),
    ("name", "string"),
    ("connector", "string"),
    ("version", "string"),
    ("snapshot", "string"),
    ("source.ts_ms", "int64"),
];

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
    let events = parse_events(opts)?;
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
        events,
    })
}

fn parse_events(opts: &mut Options) -> Result<Option<EventConfig>> {
    let envelope = opts.pull_enum(&ENVELOPE)?.unwrap_or("none");
    let event_options = [
        &TOPIC_PREFIX,
        &KEY_CONVERTER,
        &VALUE_CONVERTER,
        &REGISTRY,
        &REGISTRY_AUTH,
        &KEY_SCHEMAS,
        &VALUE_SCHEMAS,
        &TOMBSTONES,
        &DECIMAL_MODE,
        &TIME_MODE,
        &BINARY_MODE,
        &UNWRAP_DELETES,
        &UNWRAP_ADD_FIELDS,
        &UNWRAP_PREFIX,
    ];
    if envelope == "none" {
        if let Some(spec) = event_options.iter().find(|s| opts.contains(s.key)) {
            return Err(ConnectorError::option(
                spec.key,
                "applies to Debezium change events only: set envelope = 'debezium' (or 'debezium-unwrapped')",
            ));
        }
        return Ok(None);
    }
    let unwrapped = envelope == "debezium-unwrapped";
    if !unwrapped
        && let Some(spec) = [&UNWRAP_DELETES, &UNWRAP_ADD_FIELDS, &UNWRAP_PREFIX]
            .iter()
            .find(|s| opts.contains(s.key))
    {
        return Err(ConnectorError::option(
            spec.key,
            "applies to envelope = 'debezium-unwrapped' only (ExtractNewRecordState)",
        ));
    }
    let topic_prefix = opts.pull_str(&TOPIC_PREFIX)?.ok_or_else(|| {
        ConnectorError::option(
            TOPIC_PREFIX.key,
            "missing: Debezium change events go to {topic.prefix}.{schema}.{table}",
        )
    })?;
    let unwrap = if unwrapped {
        let (rewrite, tombstones) = match opts.pull_enum(&UNWRAP_DELETES)?.unwrap_or("tombstone") {
            "drop" => (false, false),
            "rewrite" => (true, false),
            "rewrite-with-tombstone" => (true, true),
            _ => (false, true),
        };
        let add_fields = opts.pull_list(&UNWRAP_ADD_FIELDS)?.unwrap_or_default();
        if let Some(f) = add_fields.iter().find(|f| !ADDABLE_FIELDS.iter().any(|(n, _)| n == f)) {
            let known: Vec<&str> = ADDABLE_FIELDS.iter().map(|(n, _)| *n).collect();
            return Err(ConnectorError::option(
                UNWRAP_ADD_FIELDS.key,
                format!(
                    "'{f}' is not a field Quiver adds; expected some of {}",
                    known.join(", ")
                ),
            ));
        }
        Some(Unwrap {
            rewrite,
            tombstones,
            add_fields,
            prefix: opts.pull_str(&UNWRAP_PREFIX)?.unwrap_or_else(|| "__".into()),
        })
    } else {
        None
    };
    let key_converter = opts.pull_enum(&KEY_CONVERTER)?;
    let value_avro = opts.pull_enum(&VALUE_CONVERTER)? == Some("avro");
    let registry = match opts.pull_str(&REGISTRY)? {
        Some(url) => Some((url, opts.pull_str(&REGISTRY_AUTH)?)),
        None if value_avro || key_converter == Some("avro") => {
            return Err(ConnectorError::option(
                REGISTRY.key,
                "missing: Avro events register their schemas with a Schema Registry",
            ));
        }
        None => None,
    };
    Ok(Some(EventConfig {
        topic_prefix,
        key_string: key_converter == Some("string"),
        key_avro: key_converter == Some("avro"),
        value_avro,
        registry,
        key_schemas: opts.pull_bool(&KEY_SCHEMAS)?.unwrap_or(true),
        value_schemas: opts.pull_bool(&VALUE_SCHEMAS)?.unwrap_or(true),
        tombstones: opts.pull_bool(&TOMBSTONES)?.unwrap_or(true),
        decimal: match opts.pull_enum(&DECIMAL_MODE)? {
            Some("string") => DecimalMode::String,
            Some("double") => DecimalMode::Double,
            _ => DecimalMode::Precise,
        },
        time: match opts.pull_enum(&TIME_MODE)? {
            Some("adaptive_time_microseconds") => TimeMode::AdaptiveTimeMicros,
            Some("connect") => TimeMode::Connect,
            _ => TimeMode::Adaptive,
        },
        binary: match opts.pull_enum(&BINARY_MODE)? {
            Some("base64") => BinaryMode::Base64,
            Some("base64-url-safe") => BinaryMode::Base64UrlSafe,
            Some("hex") => BinaryMode::Hex,
            _ => BinaryMode::Bytes,
        },
        unwrap,
    }))
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
