//! PostgreSQL sink options, with Kafka Connect JDBC sink names and semantics.

use arrow::datatypes::{DataType, SchemaRef};

use super::{AUTO_CREATE, AUTO_EVOLVE, BATCH_SIZE, DELETE_ENABLED, DELIVERY, FIELDS_WHITELIST, INSERT_MODE, MAX_RETRIES, PASSWORD, PK_FIELDS, PK_MODE, RETRY_BACKOFF, TABLE, URL, USER};
use crate::api::{ConnectorError, Options, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkMode {
    None,
    /// `__connect_topic`, `__connect_partition`, `__connect_offset` from each row's source position.
    Kafka,
    /// The `_key` output column, stored under this column name.
    RecordKey(String),
    /// These output columns.
    RecordValue(Vec<String>),
}

/// The key columns a Kafka-mode table gets.
pub(crate) const KAFKA_PK: [&str; 3] = ["__connect_topic", "__connect_partition", "__connect_offset"];

#[derive(Debug, Clone)]
pub struct PostgresSinkConfig {
    /// Connection settings (its Debug output hides the password).
    pub pg: tokio_postgres::Config,
    /// Host and database, for messages.
    pub target: String,
    /// Table name, possibly with `${topic}`.
    pub table: Option<String>,
    pub insert_mode: InsertMode,
    pub pk: PkMode,
    /// Indices of the output columns written as table columns (not `_key`, `_op`).
    pub columns: Vec<usize>,
    /// Index of the `_op` column when `delete.enabled`: rows with 'd' delete their key.
    pub delete_op: Option<usize>,
    /// Source positions are committed in the batch's transaction (`quiver_offsets`).
    pub exactly_once: bool,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub batch_size: usize,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
}

/// Accepts `postgres://`, `postgresql://`, `jdbc:postgresql://` and key=value strings.
pub(crate) fn connection(url: &str) -> std::result::Result<tokio_postgres::Config, String> {
    let url = url.trim();
    let native = url.strip_prefix("jdbc:").unwrap_or(url);
    if let Some(scheme) = native.split_once("://").map(|(s, _)| s)
        && !matches!(scheme, "postgres" | "postgresql")
    {
        return Err(format!("'{scheme}://' is not a PostgreSQL URL (expected postgres://, postgresql:// or jdbc:postgresql://)"));
    }
    native.parse::<tokio_postgres::Config>().map_err(|e| format!("not a valid PostgreSQL connection string: {e}"))
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef) -> Result<PostgresSinkConfig> {
    let url = opts.pull_required_str(&URL)?;
    let mut pg = connection(&url).map_err(|e| ConnectorError::option(URL.key, e))?;
    if let Some(u) = opts.pull_str(&USER)? {
        pg.user(&u);
    }
    if let Some(p) = opts.pull_str(&PASSWORD)? {
        pg.password(p);
    }
    if pg.get_user().is_none() {
        pg.user(std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
    }
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let target = format!("postgres://{host}:{}/{}", pg.get_ports().first().copied().unwrap_or(5432), pg.get_dbname().unwrap_or(""));
    let table = opts.pull_str(&TABLE)?.filter(|t| !t.trim().is_empty());
    let insert_mode = match opts.pull_enum(&INSERT_MODE)?.unwrap_or("insert") {
        "upsert" => InsertMode::Upsert,
        "update" => InsertMode::Update,
        _ => InsertMode::Insert,
    };
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let pk_fields = opts.pull_list(&PK_FIELDS)?.unwrap_or_default();
    let pk = match opts.pull_enum(&PK_MODE)?.unwrap_or("none") {
        "kafka" => PkMode::Kafka,
        "record_key" => {
            let Ok(i) = schema.index_of("_key") else {
                return Err(ConnectorError::option(PK_MODE.key, "record_key needs a _key output column (select _key from a Kafka source)"));
            };
            if matches!(schema.field(i).data_type(), DataType::Struct(_) | DataType::List(_) | DataType::Map(..)) {
                return Err(ConnectorError::option(PK_MODE.key, "record_key supports a scalar _key; select the key's fields as columns and use record_value"));
            }
            match pk_fields.as_slice() {
                [] => PkMode::RecordKey("__connect_key".into()),
                [one] => PkMode::RecordKey(one.clone()),
                _ => return Err(ConnectorError::option(PK_FIELDS.key, "record_key with a scalar _key takes one column name")),
            }
        }
        "record_value" => {
            let fields: Vec<String> = if pk_fields.is_empty() {
                names.iter().filter(|n| !n.starts_with('_')).map(|n| n.to_string()).collect()
            } else {
                pk_fields.clone()
            };
            for f in &fields {
                if !names.contains(&f.as_str()) {
                    return Err(ConnectorError::option(PK_FIELDS.key, format!("'{f}' is not an output column (output columns: {})", names.join(", "))));
                }
            }
            PkMode::RecordValue(fields)
        }
        _ => PkMode::None,
    };
    if !pk_fields.is_empty() && matches!(pk, PkMode::None | PkMode::Kafka) {
        return Err(ConnectorError::option(PK_FIELDS.key, "only applies with pk.mode = 'record_key' or 'record_value'"));
    }
    if insert_mode != InsertMode::Insert && pk == PkMode::None {
        return Err(ConnectorError::option(INSERT_MODE.key, "upsert and update need a primary key: set pk.mode (record_value, record_key or kafka)"));
    }
    let whitelist = opts.pull_list(&FIELDS_WHITELIST)?;
    let mut columns = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let listed = whitelist.as_ref().is_none_or(|w| w.iter().any(|c| c == n));
        if listed && *n != "_key" && *n != "_op" {
            columns.push(i);
        }
    }
    if let Some(w) = &whitelist {
        for c in w {
            if !names.contains(&c.as_str()) {
                return Err(ConnectorError::option(FIELDS_WHITELIST.key, format!("'{c}' is not an output column (output columns: {})", names.join(", "))));
            }
        }
    }
    if let PkMode::RecordValue(fields) = &pk {
        for f in fields {
            let i = schema.index_of(f).map_err(|e| ConnectorError::Internal(e.to_string()))?;
            if !columns.contains(&i) {
                return Err(ConnectorError::option(PK_FIELDS.key, format!("key column '{f}' is left out by fields.whitelist")));
            }
        }
    }
    for i in &columns {
        let f = schema.field(*i);
        if super::types::pg_type(f.data_type()).is_none() {
            return Err(ConnectorError::option(
                "connector",
                format!("output column '{}' has type {}, which has no PostgreSQL mapping here; CAST it in the SELECT", f.name(), f.data_type()),
            ));
        }
    }
    if columns.is_empty() {
        return Err(ConnectorError::option(FIELDS_WHITELIST.key, "leaves no column to write"));
    }
    let delete_op = if opts.pull_bool(&DELETE_ENABLED)?.unwrap_or(false) {
        if !matches!(pk, PkMode::RecordKey(_) | PkMode::RecordValue(_)) {
            return Err(ConnectorError::option(DELETE_ENABLED.key, "needs pk.mode = 'record_key' or 'record_value' (a delete names its key)"));
        }
        let Ok(i) = schema.index_of("_op") else {
            return Err(ConnectorError::option(DELETE_ENABLED.key, "needs an _op output column (a Debezium source: SELECT *, _op)"));
        };
        Some(i)
    } else {
        None
    };
    let batch_size = opts.pull_u64(&BATCH_SIZE)?.unwrap_or(10_000).max(1) as usize;
    let max_retries = opts.pull_u64(&MAX_RETRIES)?.unwrap_or(10) as u32;
    let retry_backoff_ms = opts.pull_u64(&RETRY_BACKOFF)?.unwrap_or(3000);
    Ok(PostgresSinkConfig {
        pg,
        target,
        table,
        insert_mode,
        pk,
        columns,
        delete_op,
        exactly_once: opts.pull_enum(&DELIVERY)?.unwrap_or("at-least-once") == "exactly-once",
        auto_create: opts.pull_bool(&AUTO_CREATE)?.unwrap_or(false),
        auto_evolve: opts.pull_bool(&AUTO_EVOLVE)?.unwrap_or(false),
        batch_size,
        max_retries,
        retry_backoff_ms,
    })
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
        assert!(!format!("{c:?}").contains("s3cret"), "the password is not in Debug output");
        assert!(connection("postgres://127.0.0.1/test").is_ok());
        let e = connection("jdbc:mysql://h/db").unwrap_err();
        assert!(e.contains("'mysql://' is not a PostgreSQL URL"), "{e}");
    }
}
