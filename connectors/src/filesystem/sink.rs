//! The filesystem sink: open files grouped into roll units, rolling, memory bound,
//! durability tracking.
//!
//! Files are kept in *groups*, the unit that rolls and becomes durable together:
//!
//! - **at-least-once**: one group per output partition (`col=value/` folder),
//!   holding one file. A batch is durable once no open file holds its rows.
//! - **exactly-once**: one group per *source partition* (Kafka topic-partition),
//!   holding one file per output partition its rows reached. Every file of a
//!   group is named `<topic>+<partition>+<offset of its first row>` and the whole
//!   group closes at once, after which the source partition's next position is
//!   durable. So a committed position is always a group boundary, and a replay
//!   from it reproduces the names of the files that held the uncommitted rows.
//!   Before writing a source partition again, the sink deletes objects of that
//!   partition at or after its resume position (left by a run that crashed
//!   before committing); replay then rewrites them, and a reader never sees a
//!   record in two objects.
//!
//! Rolling is by rows, bytes, wall-clock age, wall-clock inactivity, a schema
//! change, and memory: when all open files together hold more than
//! `sink.memory.max`, the largest groups are closed early.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use super::config::FilesystemSinkConfig;
use crate::api::{ConnectorError, Offsets, Result, RowOrigins, SharedOffsets, Sink, SinkContext, SinkReport};
use crate::formats::encode::Encoder;

/// Hive's name for a NULL partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// The smallest slice written when sizing slices by bytes (bounds per-call overhead).
const MIN_SLICE_ROWS: u64 = 256;
/// How many completed file names the report keeps.
const RECENT_FILES: usize = 32;
/// Upload part size: a file is buffered up to this size, then sent as a multipart
/// upload in parts of this size (S3 needs at least 5 MiB per part).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one file in flight at once.
const PART_CONCURRENCY: usize = 2;
/// Zero-padding of offsets in exactly-once file names, so names sort by offset.
const OFFSET_WIDTH: usize = 20;

struct OpenFile {
    path: Path,
    encoder: Encoder,
    upload: BufWriter,
    rows: u64,
    uploaded: u64,
}

impl OpenFile {
    fn bytes(&self) -> u64 {
        self.uploaded + self.encoder.buffered_bytes() as u64
    }
    /// Memory held: the encoder's buffers plus what the upload has not sent yet
    /// (everything below one part, about one part after that).
    fn memory(&self) -> u64 {
        self.encoder.memory_bytes() as u64 + self.uploaded.min(PART_SIZE as u64)
    }
}

/// Files that roll and become durable together.
struct Group {
    /// Output partition folder → its open file.
    files: BTreeMap<String, OpenFile>,
    rows: u64,
    opened: Instant,
    last_write: Instant,
    /// The first batch number with rows in this group.
    first_seq: u64,
}

impl Group {
    fn new(seq: u64) -> Self {
        let now = Instant::now();
        Self {
            files: BTreeMap::new(),
            rows: 0,
            opened: now,
            last_write: now,
            first_seq: seq,
        }
    }
    fn bytes(&self) -> u64 {
        self.files.values().map(OpenFile::bytes).sum()
    }
    fn memory(&self) -> u64 {
        self.files.values().map(OpenFile::memory).sum()
    }
}

/// Why a group was closed (logged, and counted in tests through the file listing).
#[derive(Debug, Clone, Copy)]
enum Roll {
    Rows,
    Bytes,
    Interval,
    Inactivity,
    Memory,
    Schema,
    Flush,
}

pub(crate) struct FilesystemSink {
    cfg: FilesystemSinkConfig,
    store: Arc<dyn ObjectStore>,
    schema: SchemaRef,
    /// Schema of what goes inside files (output minus partition columns).
    file_schema: SchemaRef,
    data_columns: Vec<usize>,
    partition_names: Vec<String>,
    groups: HashMap<Arc<str>, Group>,
    /// Names this run's at-least-once files: the start time, and the task index
    /// for a pipeline's second and later tasks (siblings may start the same millisecond).
    run_id: String,
    counter: u64,
    last_seq: Option<u64>,
    report: SinkReport,
    /// Exactly-once: positions every source partition is durable up to.
    durable: Offsets,
    /// Exactly-once: the latest position seen per source partition.
    latest: Offsets,
    /// Exactly-once: where the pipeline resumed, per source partition.
    start: Offsets,
    /// Exactly-once: the positions every task of the pipeline has made durable. A
    /// partition this task takes over from a sibling mid-run resumes there, not at
    /// this task's (older) start.
    shared: SharedOffsets,
    /// Exactly-once: objects left by earlier runs, per source partition (name → first offset),
    /// until the partition is first written in this run.
    leftovers: HashMap<String, Vec<(Path, i64)>>,
}

/// Exactly-once files are named by Kafka positions, so they need a Kafka source
/// (checked when the sink is planned).
pub(crate) fn check_source(cfg: &FilesystemSinkConfig, source_connector: &str) -> Result<()> {
    if cfg.exactly_once && source_connector != "kafka" {
        return Err(ConnectorError::option(
            "sink.delivery.guarantee",
            format!(
                "exactly-once files need a Kafka source (file names carry topic, partition and offset); this sink reads a '{source_connector}' source"
            ),
        ));
    }
    Ok(())
}

impl FilesystemSink {
    pub(crate) async fn start(cfg: FilesystemSinkConfig, ctx: SinkContext) -> Result<Self> {
        let store = cfg.store.build().map_err(|e| cfg.store.scrub(e))?;
        cfg.store.check(&store).await.map_err(|e| cfg.store.scrub(e))?;
        let mut sink = Self {
            report: SinkReport {
                location: cfg.store.location(),
                ..Default::default()
            },
            store,
            schema: Arc::clone(&ctx.schema),
            file_schema: Arc::clone(&ctx.schema),
            data_columns: Vec::new(),
            partition_names: cfg
                .partition_by
                .iter()
                .map(|i| ctx.schema.field(*i).name().clone())
                .collect(),
            cfg,
            groups: HashMap::new(),
            run_id: {
                let millis = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                match ctx.task.index {
                    0 => millis.to_string(),
                    i => format!("{millis}-{i}"),
                }
            },
            counter: 0,
            last_seq: None,
            durable: Offsets::default(),
            latest: Offsets::default(),
            start: ctx.start.clone().unwrap_or_default(),
            shared: ctx.task.durable.clone(),
            leftovers: HashMap::new(),
        };
        sink.set_schema(Arc::clone(&ctx.schema))?;
        if sink.cfg.exactly_once {
            let ext = format!(".{}", sink.cfg.format.extension());
            sink.leftovers = list_exactly_once_objects(Arc::clone(&sink.store), &ext, &sink.report.location).await?;
        }
        info!(sink = %ctx.name, location = %sink.report.location, exactly_once = sink.cfg.exactly_once, "filesystem sink started");
        Ok(sink)
    }

    /// Derives the file schema and column split from the output schema.
    fn set_schema(&mut self, schema: SchemaRef) -> Result<()> {
        let partition_by: Vec<usize> = self
            .partition_names
            .iter()
            .map(|n| {
                schema.index_of(n).map_err(|_| {
                    ConnectorError::Internal(format!("partition column '{n}' disappeared from the output"))
                })
            })
            .collect::<Result<_>>()?;
        self.data_columns = (0..schema.fields().len())
            .filter(|i| !partition_by.contains(i))
            .collect();
        self.file_schema = Arc::new(
            schema
                .project(&self.data_columns)
                .map_err(|e| ConnectorError::arrow("projecting file schema", e))?,
        );
        self.cfg.partition_by = partition_by;
        self.schema = schema;
        Ok(())
    }

    /// Exactly-once: before a source partition's first row of this run, deletes its
    /// objects at or after the position the run resumed from (or first read).
    async fn clear_leftovers(&mut self, split: &str, first_position: i64) -> Result<()> {
        let Some(objects) = self.leftovers.remove(split) else {
            return Ok(());
        };
        let from = self
            .shared
            .position(split)
            .as_ref()
            .or(self.start.get(split))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(first_position);
        for (path, offset) in objects.into_iter().filter(|(_, o)| *o >= from) {
            info!(object = %path, split, offset, resume = from, "deleting an object written after the last commit; the replay rewrites it");
            self.store
                .delete(&path)
                .await
                .map_err(|e| ConnectorError::store(format!("deleting uncommitted object {path}"), e))?;
        }
        Ok(())
    }

    /// The `col=value/` folder of every row, as (folder, rows) in first-seen order.
    fn partition_rows(&self, batch: &RecordBatch) -> Result<Vec<(String, Vec<u32>)>> {
        if self.cfg.partition_by.is_empty() {
            return Ok(vec![(String::new(), (0..batch.num_rows() as u32).collect())]);
        }
        let opts = FormatOptions::default().with_null(NULL_PARTITION);
        let formatters = self
            .cfg
            .partition_by
            .iter()
            .map(|i| ArrayFormatter::try_new(batch.column(*i).as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| ConnectorError::arrow("formatting partition values", e))?;
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        // Reused buffers: no allocation per row unless a row starts a new partition.
        let mut key = String::new();
        let mut segment = String::new();
        for row in 0..batch.num_rows() {
            key.clear();
            for (name, f) in self.partition_names.iter().zip(&formatters) {
                segment.clear();
                let _ = write!(segment, "{name}={}", f.value(row));
                // PathPart percent-encodes '/', '%', control characters and the like.
                key.push_str(PathPart::from(segment.as_str()).as_ref());
                key.push('/');
            }
            match index.get(&key) {
                Some(&g) => groups[g].1.push(row as u32),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key.clone(), vec![row as u32]));
                }
            }
        }
        Ok(groups)
    }

    fn take(batch: &RecordBatch, rows: Vec<u32>) -> Result<RecordBatch> {
        if rows.len() == batch.num_rows() && rows.iter().enumerate().all(|(i, r)| i == *r as usize) {
            return Ok(batch.clone());
        }
        take_record_batch(batch, &UInt32Array::from(rows)).map_err(|e| ConnectorError::arrow("splitting rows", e))
    }

    fn open_file(&mut self, folder: &str, name: String, first: &RecordBatch) -> Result<OpenFile> {
        let full = format!("{folder}{name}.{}", self.cfg.format.extension());
        let path = Path::parse(&full)
            .map_err(|e| ConnectorError::Internal(format!("file name {full} is not a valid object path: {e}")))?;
        let encoder = Encoder::new(self.cfg.format, &self.file_schema, &self.cfg.parquet, Some(first))?;
        let upload = BufWriter::with_capacity(Arc::clone(&self.store), path.clone(), PART_SIZE)
            .with_max_concurrency(PART_CONCURRENCY);
        Ok(OpenFile {
            path,
            encoder,
            upload,
            rows: 0,
            uploaded: 0,
        })
    }

    async fn upload(file: &mut OpenFile) -> Result<()> {
        for bytes in file.encoder.take_bytes() {
            file.uploaded += bytes.len() as u64;
            file.upload
                .put(bytes)
                .await
                .map_err(|e| ConnectorError::store(format!("writing {}", file.path), e))?;
        }
        Ok(())
    }

    /// Writes rows (full output schema) into the group's file for `folder`.
    async fn append(
        &mut self,
        key: &Arc<str>,
        folder: &str,
        part: RecordBatch,
        name: impl FnOnce(&mut Self) -> String,
    ) -> Result<()> {
        let data = part
            .project(&self.data_columns)
            .map_err(|e| ConnectorError::arrow("projecting partition columns away", e))?;
        let existing = self.groups.get_mut(key).and_then(|g| g.files.remove(folder));
        let mut file = match existing {
            Some(f) => f,
            None => {
                let n = name(self);
                self.open_file(folder, n, &data)?
            }
        };
        let written = async {
            file.encoder.write(&data)?;
            file.rows += data.num_rows() as u64;
            Self::upload(&mut file).await
        }
        .await;
        if let Some(g) = self.groups.get_mut(key) {
            g.rows += data.num_rows() as u64;
            g.last_write = Instant::now();
            g.files.insert(folder.to_string(), file);
        }
        written
    }

    async fn close_file(&mut self, mut file: OpenFile) -> Result<()> {
        file.encoder.finish()?;
        Self::upload(&mut file).await?;
        file.upload
            .shutdown()
            .await
            .map_err(|e| ConnectorError::io(format!("completing {}", file.path), e))?;
        debug!(file = %file.path, rows = file.rows, bytes = file.uploaded, "file complete");
        self.report.files += 1;
        self.report.bytes += file.uploaded;
        self.report
            .recent
            .push(format!("{}/{}", self.report.location.trim_end_matches('/'), file.path));
        if self.report.recent.len() > RECENT_FILES {
            self.report.recent.remove(0);
        }
        Ok(())
    }

    /// Closes every file of a group; in exactly-once mode its source partition is
    /// then durable up to `next` (the position of the first row not in it).
    async fn close_group(&mut self, key: &Arc<str>, why: Roll, next: Option<i64>) -> Result<()> {
        let Some(group) = self.groups.remove(key) else {
            return Ok(());
        };
        debug!(group = %key, rows = group.rows, reason = ?why, files = group.files.len(), "rolling");
        for (_, file) in group.files {
            self.close_file(file).await?;
        }
        if self.cfg.exactly_once {
            let position = match next {
                Some(p) => serde_json::Value::from(p),
                None => self.latest.get(key).cloned().unwrap_or(serde_json::Value::Null),
            };
            if !position.is_null() {
                self.durable.0.insert(key.to_string(), position);
            }
        }
        Ok(())
    }

    fn full(&self, key: &Arc<str>) -> Option<Roll> {
        let g = self.groups.get(key)?;
        if g.rows >= self.cfg.rollover_rows {
            Some(Roll::Rows)
        } else if g.bytes() >= self.cfg.rollover_bytes {
            Some(Roll::Bytes)
        } else {
            None
        }
    }

    /// How many of the next rows fit the group before it must roll.
    fn room(&self, key: &Arc<str>, rows: &RecordBatch) -> usize {
        let (done_rows, written) = self.groups.get(key).map_or((0, 0), |g| (g.rows, g.bytes()));
        let room_rows = self.cfg.rollover_rows.saturating_sub(done_rows);
        let row_bytes = if done_rows > 0 && written > 0 {
            written / done_rows
        } else {
            (rows.get_array_memory_size() / rows.num_rows().max(1)) as u64
        };
        let by_bytes = (self.cfg.rollover_bytes.saturating_sub(written) / row_bytes.max(1)).max(MIN_SLICE_ROWS);
        room_rows.min(by_bytes).max(1) as usize
    }

    /// At-least-once: rows go to the group of their output folder.
    async fn write_by_folder(&mut self, batch: &RecordBatch, seq: u64) -> Result<()> {
        for (folder, rows) in self.partition_rows(batch)? {
            let key: Arc<str> = Arc::from(folder.as_str());
            let mut part = Self::take(batch, rows)?;
            loop {
                let room = self.room(&key, &part);
                let (now, rest) = split_at(&part, room);
                self.groups.entry(Arc::clone(&key)).or_insert_with(|| Group::new(seq));
                self.append(&key, &folder, now, |s| {
                    s.counter += 1;
                    format!("part-{}-{:05}", s.run_id, s.counter)
                })
                .await?;
                if let Some(why) = self.full(&key) {
                    self.close_group(&key, why, None).await?;
                }
                match rest {
                    Some(r) => part = r,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Exactly-once: rows go to the group of their source partition, in order, and
    /// inside it to one file per output folder named by the folder's first offset.
    async fn write_by_source(&mut self, batch: &RecordBatch, seq: u64, origins: &RowOrigins) -> Result<()> {
        if origins.len() != batch.num_rows() {
            return Err(ConnectorError::Internal(format!(
                "{} rows but {} source positions",
                batch.num_rows(),
                origins.len()
            )));
        }
        let mut splits: Vec<(Arc<str>, Vec<u32>)> = Vec::new();
        for row in 0..batch.num_rows() {
            let Some(p) = origins.partition_of(row) else { continue };
            match splits.iter_mut().find(|(k, _)| Arc::ptr_eq(k, p) || **k == **p) {
                Some((_, rows)) => rows.push(row as u32),
                None => splits.push((Arc::clone(p), vec![row as u32])),
            }
        }
        for (split, rows) in splits {
            let (topic, partition) = split.rsplit_once('/').ok_or_else(|| {
                ConnectorError::Internal(format!(
                    "source partition '{split}' is not topic/partition; exactly-once files need a Kafka source"
                ))
            })?;
            let prefix = format!("{topic}+{partition}+");
            let positions: Vec<i64> = rows
                .iter()
                .map(|r| origins.position_of(*r as usize).unwrap_or(-1))
                .collect();
            if let Some(&first) = positions.first() {
                self.clear_leftovers(&split, first).await?;
            }
            let mut part = Self::take(batch, rows)?;
            let mut done = 0usize;
            loop {
                let room = self.room(&split, &part);
                let (now, rest) = split_at(&part, room);
                let n = now.num_rows();
                self.groups.entry(Arc::clone(&split)).or_insert_with(|| Group::new(seq));
                for (folder, folder_rows) in self.partition_rows(&now)? {
                    let first = positions[done + folder_rows[0] as usize];
                    let rows_of_folder = Self::take(&now, folder_rows)?;
                    let name = format!("{prefix}{first:0OFFSET_WIDTH$}");
                    self.append(&split, &folder, rows_of_folder, |_| name).await?;
                }
                done += n;
                if let Some(why) = self.full(&split) {
                    // The next row of this source partition starts the next group.
                    self.close_group(&split, why, positions.get(done).copied()).await?;
                }
                match rest {
                    Some(r) => part = r,
                    None => break,
                }
            }
        }
        Ok(())
    }

    async fn write_inner(&mut self, batch: RecordBatch, seq: u64, origins: Option<&RowOrigins>) -> Result<()> {
        self.last_seq = Some(seq);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema_ref() != &self.schema {
            // Files hold one schema: close them all and start new ones.
            info!(location = %self.report.location, "the output schema changed; closing open files");
            self.close_where(Roll::Schema, |_| true).await?;
            self.set_schema(batch.schema())?;
        }
        self.report.rows += batch.num_rows() as u64;
        match (self.cfg.exactly_once, origins) {
            (true, Some(o)) => self.write_by_source(&batch, seq, o).await?,
            (true, None) => {
                return Err(ConnectorError::Internal(
                    "exactly-once files need the source position of every row".into(),
                ));
            }
            (false, _) => self.write_by_folder(&batch, seq).await?,
        }
        self.enforce_memory().await
    }

    /// Closes the largest groups until all open files fit `sink.memory.max`.
    async fn enforce_memory(&mut self) -> Result<()> {
        loop {
            let sizes: Vec<(Arc<str>, u64)> = self.groups.iter().map(|(k, g)| (Arc::clone(k), g.memory())).collect();
            let total: u64 = sizes.iter().map(|(_, m)| m).sum();
            if total <= self.cfg.memory_max {
                return Ok(());
            }
            let Some((largest, size)) = sizes.into_iter().max_by_key(|(_, m)| *m) else {
                return Ok(());
            };
            debug!(group = %largest, memory = size, total, max = self.cfg.memory_max, "memory bound reached; closing the largest open files early");
            self.close_group(&largest, Roll::Memory, None).await?;
        }
    }

    async fn close_where(&mut self, why: Roll, pick: impl Fn(&Group) -> bool) -> Result<()> {
        let due: Vec<Arc<str>> = self
            .groups
            .iter()
            .filter(|(_, g)| pick(g))
            .map(|(k, _)| Arc::clone(k))
            .collect();
        for k in due {
            self.close_group(&k, why, None).await?;
        }
        Ok(())
    }
}

/// Every object named `<topic>+<partition>+<offset><ext>` under the store's root,
/// by source partition (`topic/partition`).
async fn list_exactly_once_objects(
    store: Arc<dyn ObjectStore>,
    ext: &str,
    location: &str,
) -> Result<HashMap<String, Vec<(Path, i64)>>> {
    let mut out: HashMap<String, Vec<(Path, i64)>> = HashMap::new();
    let mut listing = store.list(None);
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| ConnectorError::store(format!("listing {location}"), e))?
    {
        let Some(name) = meta.location.filename().and_then(|n| n.strip_suffix(ext)) else {
            continue;
        };
        let mut parts = name.rsplitn(3, '+');
        let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(offset), Ok(partition)) = (offset.parse::<i64>(), partition.parse::<i32>()) else {
            continue;
        };
        out.entry(format!("{topic}/{partition}"))
            .or_default()
            .push((meta.location.clone(), offset));
    }
    Ok(out)
}

/// The first `n` rows and the rest (if any).
fn split_at(batch: &RecordBatch, n: usize) -> (RecordBatch, Option<RecordBatch>) {
    if batch.num_rows() > n {
        (batch.slice(0, n), Some(batch.slice(n, batch.num_rows() - n)))
    } else {
        (batch.clone(), None)
    }
}

#[async_trait]
impl Sink for FilesystemSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        self.write_with_origins(batch, seq, None).await
    }

    fn wants_origins(&self) -> bool {
        self.cfg.exactly_once
    }

    async fn write_with_origins(&mut self, batch: RecordBatch, seq: u64, origins: Option<&RowOrigins>) -> Result<()> {
        let r = self.write_inner(batch, seq, origins).await;
        r.map_err(|e| self.cfg.store.scrub(e))
    }

    fn durable_seq(&self) -> Option<u64> {
        let last = self.last_seq?;
        match self.groups.values().map(|g| g.first_seq).min() {
            None => Some(last),
            Some(first) => first.checked_sub(1),
        }
    }

    fn durable_offsets(&self) -> Option<Offsets> {
        if !self.cfg.exactly_once {
            return None;
        }
        // A source partition with no open group is durable up to the latest
        // position read (its rows were all written, or all filtered out).
        let mut out = self.durable.clone();
        for (k, v) in &self.latest.0 {
            if !self.groups.contains_key(k.as_str()) {
                out.0.insert(k.clone(), v.clone());
            }
        }
        Some(out)
    }

    fn source_offsets(&mut self, _seq: u64, offsets: &Offsets) {
        if self.cfg.exactly_once {
            self.latest.merge(offsets);
        }
    }

    async fn tick(&mut self) -> Result<()> {
        let interval = self.cfg.rollover_interval;
        let mut r = self
            .close_where(Roll::Interval, |g| g.opened.elapsed() >= interval)
            .await;
        if let (Ok(()), Some(idle)) = (&r, self.cfg.rollover_inactivity) {
            r = self
                .close_where(Roll::Inactivity, |g| g.last_write.elapsed() >= idle)
                .await;
        }
        r.map_err(|e| self.cfg.store.scrub(e))
    }

    async fn flush(&mut self) -> Result<()> {
        let r = self.close_where(Roll::Flush, |_| true).await;
        r.map_err(|e| self.cfg.store.scrub(e))
    }

    fn report(&self) -> SinkReport {
        self.report.clone()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::api::Options;

    fn sink_config(dir: &std::path::Path, extra: &[(&str, &str)], schema: &SchemaRef) -> FilesystemSinkConfig {
        let mut entries = vec![("path".to_string(), dir.display().to_string())];
        entries.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut opts = Options::new(entries);
        super::super::config::parse(&mut opts, schema).unwrap()
    }

    fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        out.sort();
        out
    }

    #[tokio::test]
    async fn a_schema_change_closes_the_file_and_opens_one_with_the_new_schema() {
        let dir = tempfile::tempdir().unwrap();
        let a: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let b: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let cfg = sink_config(dir.path(), &[("parquet.bloom.filter.columns", "id")], &a);
        let ctx = SinkContext {
            name: "t".into(),
            schema: Arc::clone(&a),
            start: None,
            task: Default::default(),
        };
        let mut sink = FilesystemSink::start(cfg, ctx).await.unwrap();
        let first = RecordBatch::try_new(Arc::clone(&a), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let second = RecordBatch::try_new(
            Arc::clone(&b),
            vec![
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(StringArray::from(vec![Some("x")])),
            ],
        )
        .unwrap();
        sink.write(first, 1).await.unwrap();
        assert!(files(dir.path()).is_empty(), "the first file is still open");
        sink.write(second, 2).await.unwrap();
        assert_eq!(files(dir.path()).len(), 1, "the schema change closed the first file");
        assert_eq!(sink.durable_seq(), Some(1));
        sink.flush().await.unwrap();
        let found = files(dir.path());
        assert_eq!(found.len(), 2);
        let columns: Vec<usize> = found
            .iter()
            .map(|f| {
                let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
                let meta = r.metadata().clone();
                assert!(
                    meta.row_group(0).column(0).bloom_filter_offset().is_some(),
                    "bloom filter on id in {}",
                    f.display()
                );
                r.schema().fields().len()
            })
            .collect();
        assert_eq!(columns, vec![1, 2]);
    }
}
