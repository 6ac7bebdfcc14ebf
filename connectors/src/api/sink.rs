//! The sink contract: write batches, report what is durable, flush on demand.
//!
//! The engine numbers every batch it writes with an increasing sequence number.
//! A sink reports [`Sink::durable_seq`], the highest number whose rows are all
//! durable (a closed file, a committed transaction); the engine commits the
//! source offsets of those batches and no others. That is the at-least-once
//! guarantee: an offset is never committed ahead of its data.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use std::sync::Arc;

use super::error::Result;
use super::source::{OffsetCommitter, Offsets, RowOrigins};

/// Everything a sink needs to start.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The sink's name in SQL (also the pipeline's name).
    pub name: String,
    /// The schema of the batches it will receive (the SELECT's output).
    pub schema: SchemaRef,
    /// The offsets the pipeline resumes after, if it committed any before.
    pub start: Option<Offsets>,
    /// Which of the pipeline's parallel tasks this sink instance serves (a
    /// transactional producer's id carries its index, so siblings never fence each
    /// other), with the positions all of them have made durable.
    pub task: super::TaskSlot,
}

/// What a sink has written so far.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SinkReport {
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
    /// Where the data went (folder, table, topic) for summaries.
    pub location: String,
    /// The most recent completed files or objects (at most a few dozen).
    pub recent: Vec<String>,
}

#[async_trait]
pub trait Sink: Send {
    /// Buffers or writes one batch, numbered `seq` by the engine.
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()>;

    /// The highest batch number whose rows, and all before it, are durable.
    fn durable_seq(&self) -> Option<u64>;

    /// Called regularly even without data, so time-based rolling happens on idle streams.
    async fn tick(&mut self) -> Result<()> {
        Ok(())
    }

    /// Makes everything written so far durable.
    async fn flush(&mut self) -> Result<()>;

    fn report(&self) -> SinkReport;

    /// Rows of the last written batch that can never be written (a record too large
    /// for the broker, a route to an invalid topic), as (row, error). The engine
    /// applies the error policy to them; everything else in the batch was written.
    fn take_rejected(&mut self) -> Vec<(usize, String)> {
        Vec::new()
    }

    /// Whether the sink wants each output row's source position
    /// ([`Sink::write_with_origins`]); computing them costs a little per batch.
    fn wants_origins(&self) -> bool {
        false
    }

    /// [`Sink::write`], with the source partition and position of every row of
    /// `batch` when [`Sink::wants_origins`] is true.
    async fn write_with_origins(&mut self, batch: RecordBatch, seq: u64, origins: Option<&RowOrigins>) -> Result<()> {
        let _ = origins;
        self.write(batch, seq).await
    }

    /// Source positions that are durable, for sinks that track them per source
    /// partition rather than per batch (exactly-once files). When it returns
    /// `Some`, the engine commits these instead of the offsets of `durable_seq`.
    fn durable_offsets(&self) -> Option<Offsets> {
        None
    }

    /// Positions the sink stored with its data (exactly-once into a database). When
    /// `Some`, the pipeline resumes from them rather than from its state store.
    async fn resume_offsets(&mut self) -> Result<Option<Offsets>> {
        Ok(None)
    }

    /// The source positions batch `seq` covers, given just before it is written.
    /// Transactional sinks commit them with the data (Kafka exactly-once).
    fn source_offsets(&mut self, _seq: u64, _offsets: &Offsets) {}

    /// Called once before the first write with the source's upstream committer.
    /// Returns true when the sink commits the source's offsets itself (inside its
    /// transactions), so the engine must not commit them upstream separately.
    fn attach_source(&mut self, _committer: &Arc<dyn OffsetCommitter>) -> Result<bool> {
        Ok(false)
    }
}
