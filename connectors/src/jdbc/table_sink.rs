//! The sink both relational connectors run: batch preparation, the reconnect and
//! retry when the database goes away, exactly-once bookkeeping and the [`Sink`]
//! contract. Each database implements [`Database`]: its tables and statements.

use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use tracing::{info, warn};

use super::batch::BatchRows;
use super::sink::{PkMode, TableSinkConfig};
use crate::api::{Offsets, Result, RowOrigins, Sink, SinkReport};

/// One database's side of a table sink.
#[async_trait]
pub(crate) trait Database: Send + 'static {
    /// What the database needs computed from a batch before its transaction.
    type Prepared: Send + Sync;
    /// The database's name, for messages ("PostgreSQL").
    const NAME: &'static str;

    /// Converts rows ahead of the transaction. Rows the database could never hold
    /// come back with the reason; they are removed from `rows.by_table`.
    fn prepare(&self, rows: &mut BatchRows<'_>) -> (Self::Prepared, Vec<(usize, String)>);

    /// Writes every table's rows in one transaction (creating or widening tables as
    /// allowed) and, when given, the pipeline's positions in the same transaction.
    /// Returns (row, database error) for each row the database refused. A lost
    /// connection is an `Unavailable` error, after which the next call reconnects.
    async fn write(
        &mut self,
        rows: &BatchRows<'_>,
        prepared: &Self::Prepared,
        offsets: Option<(&str, &Offsets)>,
    ) -> Result<Vec<(usize, String)>>;

    /// The positions `quiver_offsets` holds for this pipeline.
    async fn stored_offsets(&mut self, pipeline: &str) -> Result<Option<Offsets>>;
}

pub(crate) struct TableSink<D> {
    db: D,
    cfg: TableSinkConfig,
    name: String,
    last_seq: Option<u64>,
    rejected: Vec<(usize, String)>,
    report: SinkReport,
    /// The source positions the batch being written ends at.
    pending: Offsets,
}

impl<D: Database> TableSink<D> {
    pub(crate) fn new(db: D, cfg: TableSinkConfig, name: String, location: String) -> Self {
        Self {
            db,
            cfg,
            name,
            last_seq: None,
            rejected: Vec::new(),
            report: SinkReport {
                location,
                ..Default::default()
            },
            pending: Offsets::default(),
        }
    }

    /// Exactly-once: whether the database already holds this batch's positions (its
    /// commit went through but the acknowledgement was lost with the connection).
    async fn already_committed(&mut self) -> Result<bool> {
        if !self.cfg.exactly_once || self.pending.is_empty() {
            return Ok(false);
        }
        let stored = self.db.stored_offsets(&self.name).await?.unwrap_or_default();
        Ok(self.pending.0.iter().all(|(k, v)| stored.get(k) == Some(v)))
    }
}

#[async_trait]
impl<D: Database> Sink for TableSink<D> {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        self.write_with_origins(batch, seq, None).await
    }

    fn wants_origins(&self) -> bool {
        self.cfg.pk == PkMode::Kafka || self.cfg.table.as_deref().is_some_and(|t| t.contains("${topic}"))
    }

    async fn write_with_origins(&mut self, batch: RecordBatch, seq: u64, origins: Option<&RowOrigins>) -> Result<()> {
        self.rejected.clear();
        if batch.num_rows() == 0 {
            self.last_seq = Some(seq);
            return Ok(());
        }
        let (cfg, name) = (&self.cfg, &self.name);
        let mut rows = BatchRows::new(cfg, &batch, origins, |topic| match &cfg.table {
            Some(t) => t.replace("${topic}", topic.unwrap_or("")),
            None => name.clone(),
        })?;
        let (prepared, unwritable) = self.db.prepare(&mut rows);
        self.rejected = std::mem::take(&mut rows.rejected);
        self.rejected.extend(unwritable);
        let mut attempt = 0;
        loop {
            // After a lost connection, the check itself may fail while the database is
            // still away: that is one more failed attempt, not the end.
            let committed = if attempt > 0 {
                self.already_committed().await
            } else {
                Ok(false)
            };
            let outcome = match committed {
                Ok(true) => {
                    info!(sink = %self.name, "the batch was committed before the connection dropped; not writing it again");
                    Ok(Vec::new())
                }
                Ok(false) => {
                    let offsets = self.cfg.exactly_once.then_some((self.name.as_str(), &self.pending));
                    self.db.write(&rows, &prepared, offsets).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(bad) => {
                    self.report.rows += (rows.rows() - bad.len()) as u64;
                    self.rejected.extend(bad);
                    break;
                }
                Err(e) if e.is_retriable() && attempt < self.cfg.max_retries => {
                    attempt += 1;
                    warn!(sink = %self.name, attempt, error = %e, backoff_ms = self.cfg.retry_backoff_ms, "{} unreachable; retrying", D::NAME);
                    tokio::time::sleep(Duration::from_millis(self.cfg.retry_backoff_ms)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.rejected.sort_by_key(|(r, _)| *r);
        self.last_seq = Some(seq);
        Ok(())
    }

    fn durable_seq(&self) -> Option<u64> {
        // Every write commits its transaction before returning.
        self.last_seq
    }

    fn source_offsets(&mut self, _seq: u64, offsets: &Offsets) {
        self.pending = offsets.clone();
    }

    async fn resume_offsets(&mut self) -> Result<Option<Offsets>> {
        if !self.cfg.exactly_once {
            return Ok(None);
        }
        self.db.stored_offsets(&self.name).await
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn take_rejected(&mut self) -> Vec<(usize, String)> {
        std::mem::take(&mut self.rejected)
    }

    fn report(&self) -> SinkReport {
        self.report.clone()
    }
}
