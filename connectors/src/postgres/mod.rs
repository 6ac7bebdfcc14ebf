//! `connector = 'postgres'`: a polling source and a table sink with Kafka Connect
//! JDBC semantics.
//!
//! - `config.rs`: the connection options (`connection.*`), including JDBC URLs
//!   (`jdbc:postgresql://host:port/db`) and TLS; the JDBC sink options themselves
//!   (`insert.mode`, `pk.mode`, …) are shared with MySQL in `crate::jdbc`;
//! - `types.rs`: the Arrow → PostgreSQL type mapping (DDL and binary COPY values);
//! - `source.rs`: the polling source's reads (binary `COPY (SELECT …) TO STDOUT`,
//!   each column cast to the wire type of its declared type);
//! - `sink.rs`: one transaction per batch; appends by binary `COPY`, upserts and
//!   updates through a temporary staging table; a batch the database refuses is
//!   split until the offending rows are found, the rest commits.

mod config;
mod discover;
mod sink;
mod source;
mod types;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{
    Connector, Discovery, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Source, SourceContext,
};
use crate::jdbc::sink::{
    AUTO_CREATE, AUTO_EVOLVE, BATCH_SIZE, DELETE_ENABLED, DELIVERY, FIELDS_WHITELIST, INSERT_MODE, MAX_RETRIES,
    PK_FIELDS, PK_MODE, RETRY_BACKOFF, TABLE, TableSinkConfig,
};
use crate::jdbc::source::{
    ATTEMPTS, BACKOFF, BATCH_MAX_ROWS, INCREMENTING, MODE, POLL_INTERVAL, PollConfig, PollingSource, QUERY,
    SCHEMA_EVOLVE, TABLES, TIMESTAMP, TIMESTAMP_DELAY,
};
use crate::jdbc::{PASSWORD, SSL_MODE, SSL_ROOT_CERT, USER};

pub use config::PgConnection;
pub(crate) use config::error as pg_error;
pub(crate) use sink::quote;

pub(crate) const URL: OptionSpec = OptionSpec::new(
    "connection.url",
    OptionKind::String,
    "postgres://user@host:port/db or Kafka Connect's jdbc:postgresql://host:port/db?user=…",
)
.required();
const SINK_OPTIONS: &[OptionSpec] = &[
    URL,
    USER,
    PASSWORD,
    SSL_MODE,
    SSL_ROOT_CERT,
    TABLE,
    INSERT_MODE,
    PK_MODE,
    PK_FIELDS,
    FIELDS_WHITELIST,
    DELETE_ENABLED,
    DELIVERY,
    AUTO_CREATE,
    AUTO_EVOLVE,
    BATCH_SIZE,
    MAX_RETRIES,
    RETRY_BACKOFF,
];

const SOURCE_OPTIONS: &[OptionSpec] = &[
    URL,
    USER,
    PASSWORD,
    SSL_MODE,
    SSL_ROOT_CERT,
    MODE,
    TABLES,
    QUERY,
    INCREMENTING,
    TIMESTAMP,
    POLL_INTERVAL,
    BATCH_MAX_ROWS,
    TIMESTAMP_DELAY,
    ATTEMPTS,
    BACKOFF,
    SCHEMA_EVOLVE,
];

/// A parsed polling source: where to connect and what to read.
#[derive(Debug, Clone)]
pub struct PostgresSourceConfig {
    pub conn: PgConnection,
    pub poll: PollConfig,
}

/// A parsed sink: where to connect and what to write.
#[derive(Debug, Clone)]
pub struct PostgresSinkConfig {
    pub conn: PgConnection,
    pub table: TableSinkConfig,
}

#[derive(Debug, Clone, Copy)]
pub struct PostgresConnector;

#[async_trait]
impl Connector for PostgresConnector {
    type SourceConfig = PostgresSourceConfig;
    type SinkConfig = PostgresSinkConfig;

    fn name(&self) -> &'static str {
        "postgres"
    }
    fn description(&self) -> &'static str {
        "Reads PostgreSQL tables by polling (bulk, incrementing, timestamp) and writes rows (binary COPY, upsert, update), with Kafka Connect JDBC semantics."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SOURCE_OPTIONS)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<PostgresSourceConfig> {
        let conn = config::parse(opts)?;
        let poll = crate::jdbc::source::parse(opts, schema, source::supported)?;
        Ok(PostgresSourceConfig { conn, poll })
    }
    /// The table's columns from the catalog, or the query's result columns.
    async fn discover_columns(&self, config: &PostgresSourceConfig) -> Result<Discovery> {
        discover::columns(&config.conn, &config.poll.targets).await
    }
    async fn build_source(&self, config: &PostgresSourceConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        let tracked = (!config.poll.timestamp.is_empty(), config.poll.incrementing.is_some());
        let reader = source::PgReader::connect(config.conn.clone(), &ctx.schema, tracked).await?;
        let columns = source::columns(&ctx.schema);
        Ok(Box::new(PollingSource::start(
            config.poll.clone(),
            &source::DIALECT,
            columns,
            Box::new(reader),
            &ctx,
        )))
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS)
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<PostgresSinkConfig> {
        let conn = config::parse(opts)?;
        let table = crate::jdbc::sink::parse(opts, schema, "PostgreSQL", |t| types::pg_type(t).is_some())?;
        Ok(PostgresSinkConfig { conn, table })
    }
    async fn build_sink(&self, config: &PostgresSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::start(config.clone(), ctx).await?))
    }
    async fn reset_sink_offsets(
        &self,
        config: &PostgresSinkConfig,
        pipeline: &str,
        to: Option<&crate::api::Offsets>,
    ) -> Result<()> {
        if !config.table.exactly_once {
            return Ok(());
        }
        sink::overwrite_offsets(config, pipeline, to).await
    }
}
