//! The source contract: batches of records tagged with the positions they cover.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
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
    /// Takes `later`'s positions; returns whether any position changed.
    pub fn merge(&mut self, later: &Offsets) -> bool {
        let mut changed = false;
        for (k, v) in &later.0 {
            if self.0.get(k) != Some(v) {
                self.0.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        changed
    }
    pub fn get(&self, partition: &str) -> Option<&serde_json::Value> {
        self.0.get(partition)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records between `self` and a later position `to`, summed over partitions,
    /// where positions are counts (Kafka offsets, datagen rows, file lines).
    pub fn distance(&self, to: &Offsets) -> u64 {
        fn count(v: &serde_json::Value) -> Option<i64> {
            v.as_i64().or_else(|| v.get("line").and_then(serde_json::Value::as_i64))
        }
        to.0.iter()
            .filter_map(|(k, v)| {
                let later = count(v)?;
                // A partition with nothing committed is read again from its start.
                let earlier = self.0.get(k).and_then(count).unwrap_or(0);
                Some(later.saturating_sub(earlier).max(0) as u64)
            })
            .sum()
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
        Self {
            partitions: Vec::new(),
            positions: Vec::with_capacity(rows),
        }
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
    /// The origins of `rows` (indices into this batch), in that order.
    pub fn select(&self, rows: &[usize]) -> RowOrigins {
        let mut out = RowOrigins::with_capacity(rows.len());
        for &row in rows {
            if let (Some(p), Some(pos)) = (self.partition_of(row), self.position_of(row)) {
                out.push(p, pos);
            }
        }
        out
    }
    /// The partition of `row`, shared (cheap to keep per row).
    pub fn partition_of(&self, row: usize) -> Option<&Arc<str>> {
        let idx = self.partitions.partition_point(|(start, _)| *start <= row);
        self.partitions.get(idx.checked_sub(1)?).map(|(_, p)| p)
    }
    /// The position of `row`.
    pub fn position_of(&self, row: usize) -> Option<i64> {
        self.positions.get(row).copied()
    }
    /// The partition and position of `row`.
    pub fn get(&self, row: usize) -> Option<(&str, i64)> {
        Some((self.partition_of(row)?, self.position_of(row)?))
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

/// A record's original bytes, kept by sources that read messages so a dead-letter
/// topic can forward a failed record untouched.
#[derive(Debug, Clone, Default)]
pub struct RawRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
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
    /// The original message, when the source keeps it (Kafka).
    #[serde(skip)]
    pub raw: Option<RawRecord>,
}

/// What a source hands the engine: decoded rows, their origins, the positions the
/// batch covers, and the records that failed to decode.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub batch: RecordBatch,
    pub origins: RowOrigins,
    pub offsets: Offsets,
    pub rejected: Vec<RejectedRecord>,
    /// The original message of every row, aligned with `batch`; empty when the
    /// source does not keep them.
    pub raw: Vec<RawRecord>,
    /// `Some(n)` when the source applied [`SourceContext::filter`] to every record of
    /// this batch and dropped the `n` that failed it (read, not delivered); `None`
    /// when it did not apply it, and every decoded row is in `batch`.
    pub filtered: Option<usize>,
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
        Self {
            max_rows: 8192,
            max_bytes: 8 * 1024 * 1024,
            linger: Duration::from_millis(200),
        }
    }
}

/// Everything a source needs to start.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The source's name in SQL.
    pub name: String,
    /// The pipeline (sink) reading it; consumer groups and client ids derive from it.
    pub pipeline: String,
    /// The declared columns.
    pub schema: SchemaRef,
    /// Positions to resume after; `None` starts from the beginning.
    pub start: Option<Offsets>,
    /// Stop at the end that existed at start (`--until-caught-up`, console preview).
    pub bounded: bool,
    pub batch: BatchPolicy,
    /// Per column of `schema`: whether the pipeline reads it. A source may leave an
    /// unread column NULL instead of building it (a nullable declared column, or a
    /// metadata column). The engine marks every declared column read when rows that
    /// fail the transform go to a dead-letter queue, which shows the whole row.
    pub used: Vec<bool>,
    /// Whether to keep each record's original bytes ([`SourceBatch::raw`]): only a
    /// dead-letter topic needs them.
    pub keep_raw: bool,
    /// The simple part of the pipeline's `WHERE` clause, which the source may apply
    /// while decoding (see [`super::filter`]); `None` when there is none.
    pub filter: Option<super::RowFilter>,
    /// Which of the pipeline's parallel tasks this source instance serves.
    pub task: TaskSlot,
}

/// One of a pipeline's parallel tasks (`tasks.max`), as its source sees it. A
/// source splits its work by the slot the way Kafka Connect's `taskConfigs` does:
/// Kafka partitions through the consumer group the tasks share, files by a
/// stable hash of their path.
#[derive(Debug, Clone)]
pub struct TaskSlot {
    /// This task's index, `0..count`.
    pub index: u32,
    /// How many tasks the pipeline runs.
    pub count: u32,
    /// The positions every task of the pipeline has made durable, shared by the
    /// tasks in this process: a partition that moves from one task to another
    /// resumes exactly where its last owner's sink made it durable, not where the
    /// new owner's own start snapshot says.
    pub durable: SharedOffsets,
}

impl Default for TaskSlot {
    fn default() -> Self {
        Self {
            index: 0,
            count: 1,
            durable: SharedOffsets::default(),
        }
    }
}

impl TaskSlot {
    /// Whether this task owns `key` (a file path, say) when work is split by key:
    /// a stable FNV-1a hash, so a key belongs to the same task across restarts.
    pub fn owns(&self, key: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % u64::from(self.count) == u64::from(self.index)
    }
}

/// Durable positions shared by a pipeline's tasks (see [`TaskSlot::durable`]).
#[derive(Debug, Clone, Default)]
pub struct SharedOffsets(Arc<Mutex<Offsets>>);

impl SharedOffsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Offsets> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A copy of the positions.
    pub fn get(&self) -> Offsets {
        self.lock().clone()
    }
    /// Takes `later`'s positions (a task's commits: only partitions it read).
    pub fn merge(&self, later: &Offsets) {
        self.lock().merge(later);
    }
    /// Adds the positions of partitions not known yet: a task's start snapshot
    /// never overwrites what a running sibling has made durable since.
    pub fn seed(&self, start: &Offsets) {
        let mut map = self.lock();
        for (k, v) in &start.0 {
            map.0.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    /// The position of one partition.
    pub fn position(&self, partition: &str) -> Option<serde_json::Value> {
        self.lock().get(partition).cloned()
    }
}

impl SourceContext {
    /// Whether column `i` of the schema is read by the pipeline (true when unknown).
    pub fn is_used(&self, i: usize) -> bool {
        self.used.get(i).copied().unwrap_or(true)
    }
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

    /// A handle the engine calls after offsets are committed to its state store,
    /// for sources that also record progress upstream (Kafka consumer groups).
    fn committer(&self) -> Option<Arc<dyn OffsetCommitter>> {
        None
    }

    /// A handle that lists the source partitions this task reads at the moment it
    /// is called (Kafka `topic/partition`s its consumer is assigned, files), for
    /// status; `None` when the source has no such notion.
    fn partitions(&self) -> Option<PartitionProbe> {
        None
    }

    /// A handle that tells, when called, how many records each partition this task
    /// reads has beyond its position (Kafka consumer lag), for metrics; `None` when
    /// the source has no such notion.
    fn lag(&self) -> Option<LagProbe> {
        None
    }
}

/// Lists the source partitions a task reads now (see [`Source::partitions`]).
pub type PartitionProbe = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Tells the lag of each partition a task reads now (see [`Source::lag`]).
pub type LagProbe = Arc<dyn Fn() -> Vec<PartitionLag> + Send + Sync>;

/// Records a partition holds beyond the task's position: the partition's high
/// watermark (its last stable offset under `read_committed`) less the offset of the
/// next record the task hands on, as Kafka's consumer reports `records-lag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub records: i64,
}

/// Records committed offsets in the upstream system. Called from the engine's
/// sink loop, never concurrently with itself.
pub trait OffsetCommitter: Send + Sync + std::any::Any {
    /// `offsets` is every position this task committed so far (the partitions it
    /// read, not a delta and not its siblings').
    /// `sync` (the last commit of a run) waits for the upstream system to confirm.
    fn commit(&self, offsets: &Offsets, sync: bool);

    /// Whether the source asks the engine to flush the sink and commit now
    /// (a Kafka task about to give partitions up). Reading it clears it.
    fn flush_requested(&self) -> bool {
        false
    }

    /// For sinks that need the concrete committer (Kafka exactly-once).
    fn as_any(&self) -> &dyn std::any::Any;

    /// The run is over and its last commit made: release what the source kept open
    /// for commits (a Kafka consumer leaves its group, so a restarted task is
    /// assigned its partitions at once instead of after the session timeout).
    fn close(&self) {}
}
