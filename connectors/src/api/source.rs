//! The source contract: batches of records tagged with the positions they cover.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::Result;

/// Source positions: partition → position value. For files the partition is the
/// file path and the value `{"line": n, "byte": b}` (lines consumed so far); for
/// datagen `"rows" → n`; for Kafka `"topic/partition" → next offset`.
/// A batch carries the positions *after* its last record; merging them into the
/// committed map gives the resume point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offsets(pub BTreeMap<String, serde_json::Value>);

impl Offsets {
    pub fn merge(&mut self, later: &Offsets) {
        for (k, v) in &later.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }
    pub fn get(&self, partition: &str) -> Option<&serde_json::Value> {
        self.0.get(partition)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where each row of a batch came from: a partition and a position within it.
#[derive(Debug, Clone, Default)]
pub struct RowOrigins {
    /// (first row index, partition) runs, in row order.
    partitions: Vec<(usize, Arc<str>)>,
    /// Position of every row (line number, offset, sequence number).
    positions: Vec<i64>,
}

impl RowOrigins {
    pub fn with_capacity(rows: usize) -> Self {
        Self { partitions: Vec::new(), positions: Vec::with_capacity(rows) }
    }
    /// Appends a row from `partition` at `position`.
    pub fn push(&mut self, partition: &Arc<str>, position: i64) {
        if self.partitions.last().is_none_or(|(_, p)| !Arc::ptr_eq(p, partition)) {
            self.partitions.push((self.positions.len(), Arc::clone(partition)));
        }
        self.positions.push(position);
    }
    /// A run of consecutive positions from one partition.
    pub fn push_range(&mut self, partition: &Arc<str>, first: i64, count: usize) {
        for i in 0..count {
            self.push(partition, first + i as i64);
        }
    }
    pub fn len(&self) -> usize {
        self.positions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
    /// The partition and position of `row`.
    pub fn get(&self, row: usize) -> Option<(&str, i64)> {
        let pos = *self.positions.get(row)?;
        let idx = self.partitions.partition_point(|(start, _)| *start <= row);
        let (_, p) = self.partitions.get(idx.checked_sub(1)?)?;
        Some((p, pos))
    }
}

/// The pipeline stage where a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Decode,
    Transform,
    Sink,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Decode => "decode",
            Stage::Transform => "transform",
            Stage::Sink => "sink",
        })
    }
}

/// A record that failed, with its provenance: routed to the dead-letter queue or
/// reported as the reason a pipeline failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedRecord {
    pub source: String,
    pub partition: String,
    pub position: i64,
    pub stage: Stage,
    pub error: String,
    /// The record as it was read (raw text), or as JSON of its column values.
    pub record: serde_json::Value,
}

/// What a source hands the engine: decoded rows, their origins, the positions the
/// batch covers, and the records that failed to decode.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub batch: RecordBatch,
    pub origins: RowOrigins,
    pub offsets: Offsets,
    pub rejected: Vec<RejectedRecord>,
}

/// How sources cut their output into batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// At most this many rows per batch.
    pub max_rows: usize,
    /// At most roughly this many input bytes per batch.
    pub max_bytes: usize,
    /// Emit a partial batch after this long without filling one.
    pub linger: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self { max_rows: 8192, max_bytes: 8 * 1024 * 1024, linger: Duration::from_millis(200) }
    }
}

/// Everything a source needs to start.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The source's name in SQL.
    pub name: String,
    /// The declared columns.
    pub schema: SchemaRef,
    /// Positions to resume after; `None` starts from the beginning.
    pub start: Option<Offsets>,
    /// Stop at the end that existed at start (`--until-caught-up`, console preview).
    pub bounded: bool,
    pub batch: BatchPolicy,
}

/// Progress through a bounded source.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

#[async_trait]
pub trait Source: Send {
    /// The next batch; `Ok(None)` when the source has reached its end.
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Records read so far and, when known, the total to read.
    fn progress(&self) -> Progress;
}
