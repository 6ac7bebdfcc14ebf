//! Kafka Connect JDBC sink options shared by the `postgres` and `mysql` sinks:
//! `table.name.format`, `insert.mode`, `pk.mode`, `pk.fields`, `fields.whitelist`,
//! `delete.enabled`, `auto.create`, `auto.evolve`, `batch.size`, `max.retries`,
//! `retry.backoff.ms` and `sink.delivery.guarantee`, parsed against the sink's
//! output columns. Connection options are each database's own.

use arrow::datatypes::{DataType, SchemaRef};

use crate::api::{ConnectorError, OptionKind, OptionSpec, Options, Result};

pub(crate) const TABLE: OptionSpec = OptionSpec::new(
    "table.name.format",
    OptionKind::String,
    "Target table; ${topic} is replaced by each row's source topic (Kafka sources). Default: the sink's name.",
);
pub(crate) const INSERT_MODE: OptionSpec = OptionSpec::new(
    "insert.mode",
    OptionKind::Enum(&["insert", "upsert", "update"]),
    "insert, upsert (insert or update by key) or update (update by key; unknown keys are skipped).",
)
.default("insert");
pub(crate) const PK_MODE: OptionSpec = OptionSpec::new(
    "pk.mode",
    OptionKind::Enum(&["none", "kafka", "record_key", "record_value"]),
    "Primary key: none; kafka (__connect_topic, __connect_partition, __connect_offset); record_key (the _key column); record_value (pk.fields of the row).",
)
.default("none");
pub(crate) const PK_FIELDS: OptionSpec = OptionSpec::new(
    "pk.fields",
    OptionKind::List,
    "record_value: the key columns (default: all); record_key: the key column's name in the table (default __connect_key).",
);
pub(crate) const FIELDS_WHITELIST: OptionSpec = OptionSpec::new(
    "fields.whitelist",
    OptionKind::List,
    "Output columns written to the table (default: all, except _key/_op).",
);
pub(crate) const AUTO_CREATE: OptionSpec = OptionSpec::new(
    "auto.create",
    OptionKind::Bool,
    "CREATE TABLE IF NOT EXISTS from the output columns, with the primary key from pk.*.",
)
.default("false");
pub(crate) const AUTO_EVOLVE: OptionSpec = OptionSpec::new(
    "auto.evolve",
    OptionKind::Bool,
    "ALTER TABLE ADD COLUMN for output columns the table lacks (nullable); never drops or retypes.",
)
.default("false");
pub(crate) const DELETE_ENABLED: OptionSpec = OptionSpec::new(
    "delete.enabled",
    OptionKind::Bool,
    "Deletes by key instead of writing: rows whose _op column is 'd' (a Debezium source) and, with pk.mode record_key, tombstones (every written column NULL). Needs pk.mode record_key or record_value.",
)
.default("false");
pub(crate) const DELIVERY: OptionSpec = OptionSpec::new(
    "sink.delivery.guarantee",
    OptionKind::Enum(&["at-least-once", "exactly-once"]),
    "exactly-once: each batch's source positions are written to a quiver_offsets table in the batch's transaction, and a restart resumes from there.",
)
.default("at-least-once");
pub(crate) const BATCH_SIZE: OptionSpec = OptionSpec::new(
    "batch.size",
    OptionKind::Integer,
    "Rows per statement inside a batch's transaction.",
)
.default("10000");
pub(crate) const MAX_RETRIES: OptionSpec = OptionSpec::new(
    "max.retries",
    OptionKind::Integer,
    "Reconnect-and-retry attempts when the database is unreachable or drops the connection.",
)
.default("10");
pub(crate) const RETRY_BACKOFF: OptionSpec = OptionSpec::new(
    "retry.backoff.ms",
    OptionKind::Integer,
    "Wait between those attempts, in milliseconds.",
)
.default("3000");

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

impl PkMode {
    /// The table's primary-key column names.
    pub(crate) fn key_columns(&self) -> Vec<String> {
        match self {
            PkMode::None => Vec::new(),
            PkMode::Kafka => KAFKA_PK.iter().map(|s| s.to_string()).collect(),
            PkMode::RecordKey(col) => vec![col.clone()],
            PkMode::RecordValue(fields) => fields.clone(),
        }
    }
}

/// A table name as written (`schema.table` or `table`): (schema, table, the name
/// with each part quoted by `quote`).
pub(crate) fn qualified(name: &str, quote: fn(&str) -> String) -> (Option<String>, String, String) {
    match name.split_once('.') {
        Some((s, t)) => (Some(s.to_string()), t.to_string(), format!("{}.{}", quote(s), quote(t))),
        None => (None, name.to_string(), quote(name)),
    }
}

/// Which rows are deletes under `delete.enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletes {
    /// Index of the `_op` output column: rows with 'd' delete their key.
    pub op: Option<usize>,
    /// A row whose written columns are all NULL is a tombstone (record_key mode:
    /// a Kafka record with a null value decodes to such a row) and deletes its key.
    pub tombstones: bool,
}

/// What a JDBC-style sink writes and how; the same for every database.
#[derive(Debug, Clone)]
pub struct TableSinkConfig {
    /// Table name, possibly with `${topic}`.
    pub table: Option<String>,
    pub insert_mode: InsertMode,
    pub pk: PkMode,
    /// Indices of the output columns written as table columns (not `_key`, `_op`).
    pub columns: Vec<usize>,
    /// `delete.enabled`: which rows delete their key instead of being written.
    pub deletes: Option<Deletes>,
    /// Source positions are committed in the batch's transaction (`quiver_offsets`).
    pub exactly_once: bool,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub batch_size: usize,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
}

/// Parses the shared options. `mapped` says whether the database has a column type
/// for an Arrow type; `db` names the database in messages.
pub(crate) fn parse(
    opts: &mut Options,
    schema: &SchemaRef,
    db: &str,
    mapped: fn(&DataType) -> bool,
) -> Result<TableSinkConfig> {
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
                return Err(ConnectorError::option(
                    PK_MODE.key,
                    "record_key needs a _key output column (select _key from a Kafka source)",
                ));
            };
            if matches!(
                schema.field(i).data_type(),
                DataType::Struct(_) | DataType::List(_) | DataType::Map(..)
            ) {
                return Err(ConnectorError::option(
                    PK_MODE.key,
                    "record_key supports a scalar _key; select the key's fields as columns and use record_value",
                ));
            }
            match pk_fields.as_slice() {
                [] => PkMode::RecordKey("__connect_key".into()),
                [one] => PkMode::RecordKey(one.clone()),
                _ => {
                    return Err(ConnectorError::option(
                        PK_FIELDS.key,
                        "record_key with a scalar _key takes one column name",
                    ));
                }
            }
        }
        "record_value" => {
            let fields: Vec<String> = if pk_fields.is_empty() {
                names
                    .iter()
                    .filter(|n| !n.starts_with('_'))
                    .map(|n| n.to_string())
                    .collect()
            } else {
                pk_fields.clone()
            };
            for f in &fields {
                if !names.contains(&f.as_str()) {
                    return Err(ConnectorError::option(
                        PK_FIELDS.key,
                        format!("'{f}' is not an output column (output columns: {})", names.join(", ")),
                    ));
                }
            }
            PkMode::RecordValue(fields)
        }
        _ => PkMode::None,
    };
    if !pk_fields.is_empty() && matches!(pk, PkMode::None | PkMode::Kafka) {
        return Err(ConnectorError::option(
            PK_FIELDS.key,
            "only applies with pk.mode = 'record_key' or 'record_value'",
        ));
    }
    if insert_mode != InsertMode::Insert && pk == PkMode::None {
        return Err(ConnectorError::option(
            INSERT_MODE.key,
            "upsert and update need a primary key: set pk.mode (record_value, record_key or kafka)",
        ));
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
                return Err(ConnectorError::option(
                    FIELDS_WHITELIST.key,
                    format!("'{c}' is not an output column (output columns: {})", names.join(", ")),
                ));
            }
        }
    }
    if let PkMode::RecordValue(fields) = &pk {
        for f in fields {
            let i = schema
                .index_of(f)
                .map_err(|e| ConnectorError::Internal(e.to_string()))?;
            if !columns.contains(&i) {
                return Err(ConnectorError::option(
                    PK_FIELDS.key,
                    format!("key column '{f}' is left out by fields.whitelist"),
                ));
            }
        }
    }
    for i in &columns {
        let f = schema.field(*i);
        if !mapped(f.data_type()) {
            return Err(ConnectorError::option(
                "connector",
                format!(
                    "output column '{}' has type {}, which has no {db} mapping here; CAST it in the SELECT",
                    f.name(),
                    f.data_type()
                ),
            ));
        }
    }
    if columns.is_empty() {
        return Err(ConnectorError::option(
            FIELDS_WHITELIST.key,
            "leaves no column to write",
        ));
    }
    let deletes = if opts.pull_bool(&DELETE_ENABLED)?.unwrap_or(false) {
        if !matches!(pk, PkMode::RecordKey(_) | PkMode::RecordValue(_)) {
            return Err(ConnectorError::option(
                DELETE_ENABLED.key,
                "needs pk.mode = 'record_key' or 'record_value' (a delete names its key)",
            ));
        }
        let op = schema.index_of("_op").ok();
        let tombstones = matches!(pk, PkMode::RecordKey(_));
        if op.is_none() && !tombstones {
            return Err(ConnectorError::option(
                DELETE_ENABLED.key,
                "with pk.mode = 'record_value' a delete is an _op = 'd' row: select _op from a Debezium source (tombstones carry no value to key on; use pk.mode = 'record_key')",
            ));
        }
        Some(Deletes { op, tombstones })
    } else {
        None
    };
    let batch_size = opts.pull_u64(&BATCH_SIZE)?.unwrap_or(10_000).max(1) as usize;
    let max_retries = opts.pull_u64(&MAX_RETRIES)?.unwrap_or(10) as u32;
    let retry_backoff_ms = opts.pull_u64(&RETRY_BACKOFF)?.unwrap_or(3000);
    Ok(TableSinkConfig {
        table,
        insert_mode,
        pk,
        columns,
        deletes,
        exactly_once: opts.pull_enum(&DELIVERY)?.unwrap_or("at-least-once") == "exactly-once",
        auto_create: opts.pull_bool(&AUTO_CREATE)?.unwrap_or(false),
        auto_evolve: opts.pull_bool(&AUTO_EVOLVE)?.unwrap_or(false),
        batch_size,
        max_retries,
        retry_backoff_ms,
    })
}
