//! `connector = 'postgres-cdc'`: change data capture from PostgreSQL's write-ahead
//! log through logical replication and the built-in `pgoutput` plugin (nothing to
//! install on the server), with Debezium's option names.
//!
//! - `config.rs`: the options (`database.*`, `slot.name`, `publication.*`,
//!   `table.include.list`, `snapshot.mode`, …);
//! - `pgoutput.rs`: the decoder of pgoutput's messages (Relation, Insert, Update,
//!   Delete, Truncate; Type and Origin are passed over);
//! - `rows.rs`: text values into typed Arrow columns, plus the metadata columns;
//! - `debezium.rs`: changes as Debezium's change events (`envelope = 'debezium'`),
//!   for Debezium's consumers and the translated `PostgresConnector` JSON;
//! - `source.rs`: publication and slot, snapshot, streaming, acknowledgements.
//!
//! Design notes:
//! - **Replication client.** `pgwire-replication` speaks the replication protocol
//!   (START_REPLICATION, standby status updates, keepalives, SCRAM, TLS through
//!   rustls). It is maintained, small (no libpq, no tokio-postgres fork), keeps
//!   feedback flowing while the consumer is slow, and lets the caller say which LSN
//!   is durable — the one thing exactly-once needs. `tokio-postgres` upstream has
//!   no replication mode, and `pg_walstream` would bring a decoder we do not need
//!   in exchange for less control over acknowledgements. pgoutput is decoded here:
//!   it is a page of the PostgreSQL manual, and owning it lets values go straight
//!   into Arrow builders without an intermediate row type.
//! - **One slot per pipeline, many tables per slot.** A source captures every
//!   table its include and exclude lists match, through one slot and one
//!   publication. Declared columns are matched to each table's columns by name:
//!   a pipeline can read one table (declare its columns) or several that share
//!   a shape (a sharded or partitioned table), and `_schema` / `_table` tell the
//!   rows apart; a `WHERE _table = '…'` narrows one pipeline to one table.
//!   The slot is named after the pipeline by default (`quiver_{pipeline}`), so
//!   two pipelines never share a slot's position.
//! - **Rows, flattened.** Each change is one row: the new row for inserts and
//!   updates, the old key (or the old row under `REPLICA IDENTITY FULL`) for
//!   deletes, with `_op` (`c`, `u`, `d`, `r` for snapshot reads, `t`), `_lsn`,
//!   `_txid`, `_commit_ts`, `_schema`, `_table` and `_before` (the old key or row
//!   as JSON text). This is what Debezium's `ExtractNewRecordState` gives, and
//!   the JDBC sinks' `delete.enabled` already reads `_op = 'd'` as a delete.
//! - **Unchanged TOASTed values.** An update that does not touch a large value
//!   leaves it out of the WAL. Under `REPLICA IDENTITY FULL` the old row carries
//!   it and it is emitted as it is. Otherwise a text column gets Debezium's
//!   placeholder `__debezium_unavailable_value` and a bytea column empty bytes,
//!   never NULL; a typed column (jsonb read as a number, say) cannot hold the
//!   placeholder, so the row is rejected with that reason (dead-lettered under
//!   `errors.tolerance = 'all'`).
//! - **Snapshot.** The slot is created on a replication connection with
//!   `EXPORT_SNAPSHOT`; the tables are read in a `REPEATABLE READ` transaction on
//!   that snapshot (cursor, `batch.size` rows per fetch), and streaming starts at
//!   the slot's consistent point: every change is either in the snapshot or in
//!   the stream, never both. A snapshot that is interrupted is taken again from
//!   the start (the exported snapshot died with its session), as Debezium does.
//! - **Positions and acknowledgement.** The offset is `{"lsn": end of the last
//!   delivered commit}`; a batch cut inside a large transaction adds
//!   `{"partial": {"commit_lsn", "changes"}}`, and a restart skips exactly those
//!   changes of that transaction when the server sends it again. The slot's
//!   confirmed flush LSN moves only when the engine reports the sink made a
//!   commit durable ([`crate::api::OffsetCommitter`]), so a crash replays from the
//!   last durable commit and the exactly-once sinks drop nothing and repeat
//!   nothing. When nothing is in flight, keepalives and logical messages move it
//!   to the server's position, and `heartbeat.interval.ms` writes such a message,
//!   so a slot whose tables are idle does not hold WAL back.
//! - **`--until-caught-up`** writes a non-transactional logical message at start
//!   and stops when the stream reaches it: the WAL as of the start, no more.
//! - **Failures.** `wal_level` other than logical, a user without REPLICATION, a
//!   missing publication under `disabled`, a slot of another plugin or database,
//!   a slot dropped while the pipeline has a position: each stops the pipeline
//!   with a message that says what to do. A lost connection or a slot still held
//!   by a previous instance is retried with backoff (0.5 s doubling to 30 s),
//!   logged at every attempt.

mod config;
mod debezium;
mod pgoutput;
mod rows;
mod source;

use arrow::datatypes::{FieldRef, SchemaRef};
use async_trait::async_trait;

use crate::api::{Connector, ConnectorError, OptionSpec, Options, Result, Source, SourceContext};

pub use config::{ADDABLE_FIELDS, Autocreate, CdcConfig, EventConfig, SnapshotMode};

#[derive(Debug, Clone, Copy)]
pub struct PostgresCdcConnector;

#[async_trait]
impl Connector for PostgresCdcConnector {
    type SourceConfig = CdcConfig;
    type SinkConfig = crate::api::connector::Unsupported;

    fn name(&self) -> &'static str {
        "postgres-cdc"
    }
    fn description(&self) -> &'static str {
        "Captures every insert, update, delete and truncate of PostgreSQL tables from the WAL (logical replication, pgoutput), after a consistent snapshot."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(config::OPTIONS)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<CdcConfig> {
        let config = config::parse(opts)?;
        if config.events.is_some() {
            if let Some(f) = schema.fields().first() {
                return Err(ConnectorError::Config(format!(
                    "column {}: with envelope = 'debezium' each change is a whole Debezium event in _key and _value, whatever the table's columns; declare no columns",
                    f.name()
                )));
            }
            return Ok(config);
        }
        if schema.fields().is_empty() {
            return Err(ConnectorError::Config(
                "declare the columns to capture, e.g. CREATE SOURCE orders (id INT, total DECIMAL(10,2)) WITH (connector = 'postgres-cdc', …): they are matched by name to the captured tables' columns".into(),
            ));
        }
        if let Some(f) = schema
            .fields()
            .iter()
            .find(|f| f.name().starts_with('_') && rows::metadata_fields().iter().any(|m| m.name() == f.name()))
        {
            return Err(ConnectorError::Config(format!(
                "column {} is a metadata column every change carries; do not declare it",
                f.name()
            )));
        }
        Ok(config)
    }
    fn metadata_columns(&self, config: &CdcConfig) -> Vec<FieldRef> {
        match config.events {
            Some(_) => debezium::event_fields(),
            None => rows::metadata_fields(),
        }
    }
    fn declares_no_columns(&self, config: &CdcConfig) -> bool {
        config.events.is_some()
    }
    async fn build_source(&self, config: &CdcConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::CdcSource::start(config.clone(), ctx)))
    }
}
