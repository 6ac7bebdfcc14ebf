//! `connector = 'postgres'`: rows into a PostgreSQL table with Kafka Connect JDBC
//! sink semantics.
//!
//! - `config.rs`: the options (`connection.*`, `table.name.format`, `insert.mode`,
//!   `pk.mode`, `pk.fields`, `fields.whitelist`, `auto.create`, `auto.evolve`, …),
//!   including JDBC URLs (`jdbc:postgresql://host:port/db`);
//! - `types.rs`: the Arrow → PostgreSQL type mapping (DDL and binary COPY values);
//! - `sink.rs`: one transaction per batch; appends by binary `COPY`, upserts and
//!   updates through a temporary staging table; a batch the database refuses is
//!   split until the offending rows are found, the rest commits.

mod config;
mod sink;
mod types;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Unsupported};

pub use config::PostgresSinkConfig;

pub(crate) const URL: OptionSpec = OptionSpec::new(
    "connection.url",
    OptionKind::String,
    "postgres://user@host:port/db or Kafka Connect's jdbc:postgresql://host:port/db?user=…",
)
.required();
pub(crate) const USER: OptionSpec = OptionSpec::new("connection.user", OptionKind::String, "User name (overrides the URL's).");
pub(crate) const PASSWORD: OptionSpec = OptionSpec::new("connection.password", OptionKind::String, "Password (secret; overrides the URL's).");
pub(crate) const TABLE: OptionSpec = OptionSpec::new(
    "table.name.format",
    OptionKind::String,
    "Target table; ${topic} is replaced by each row's source topic (Kafka sources). Default: the sink's name.",
);
pub(crate) const INSERT_MODE: OptionSpec = OptionSpec::new(
    "insert.mode",
    OptionKind::Enum(&["insert", "upsert", "update"]),
    "insert (binary COPY), upsert (INSERT … ON CONFLICT DO UPDATE) or update (UPDATE by key).",
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
pub(crate) const FIELDS_WHITELIST: OptionSpec =
    OptionSpec::new("fields.whitelist", OptionKind::List, "Output columns written to the table (default: all, except _key/_op).");
pub(crate) const AUTO_CREATE: OptionSpec =
    OptionSpec::new("auto.create", OptionKind::Bool, "CREATE TABLE IF NOT EXISTS from the output columns, with the primary key from pk.*.").default("false");
pub(crate) const AUTO_EVOLVE: OptionSpec = OptionSpec::new(
    "auto.evolve",
    OptionKind::Bool,
    "ALTER TABLE ADD COLUMN for output columns the table lacks (nullable); never drops or retypes.",
)
.default("false");
pub(crate) const DELETE_ENABLED: OptionSpec = OptionSpec::new(
    "delete.enabled",
    OptionKind::Bool,
    "Rows whose _op column is 'd' (a Debezium source) delete their key instead of being written; needs pk.mode record_key or record_value.",
)
.default("false");
pub(crate) const DELIVERY: OptionSpec = OptionSpec::new(
    "sink.delivery.guarantee",
    OptionKind::Enum(&["at-least-once", "exactly-once"]),
    "exactly-once: each batch's source positions are written to a quiver_offsets table in the batch's transaction, and a restart resumes from there.",
)
.default("at-least-once");
pub(crate) const BATCH_SIZE: OptionSpec =
    OptionSpec::new("batch.size", OptionKind::Integer, "Rows per statement inside a batch's transaction.").default("10000");
pub(crate) const MAX_RETRIES: OptionSpec =
    OptionSpec::new("max.retries", OptionKind::Integer, "Reconnect-and-retry attempts when the database is unreachable or drops the connection.").default("10");
pub(crate) const RETRY_BACKOFF: OptionSpec =
    OptionSpec::new("retry.backoff.ms", OptionKind::Integer, "Wait between those attempts, in milliseconds.").default("3000");

const SINK_OPTIONS: &[OptionSpec] =
    &[URL, USER, PASSWORD, TABLE, INSERT_MODE, PK_MODE, PK_FIELDS, FIELDS_WHITELIST, DELETE_ENABLED, DELIVERY, AUTO_CREATE, AUTO_EVOLVE, BATCH_SIZE, MAX_RETRIES, RETRY_BACKOFF];

#[derive(Debug, Clone, Copy)]
pub struct PostgresConnector;

#[async_trait]
impl Connector for PostgresConnector {
    type SourceConfig = Unsupported;
    type SinkConfig = PostgresSinkConfig;

    fn name(&self) -> &'static str {
        "postgres"
    }
    fn description(&self) -> &'static str {
        "Writes rows into a PostgreSQL table (binary COPY, upsert, update) with Kafka Connect JDBC sink semantics; bad rows are isolated."
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS)
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<PostgresSinkConfig> {
        config::parse(opts, schema)
    }
    async fn build_sink(&self, config: &PostgresSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::PostgresSink::start(config.clone(), ctx).await?))
    }
}
