//! The filesystem sink: per-partition open files, rolling, durability tracking.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::{Path, PathPart};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::config::FilesystemSinkConfig;
use crate::api::{ConnectorError, Result, Sink, SinkContext, SinkReport};
use crate::formats::encode::Encoder;

/// Hive's name for a NULL partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// The smallest slice written when sizing slices by bytes (bounds per-call overhead).
const MIN_SLICE_ROWS: u64 = 256;
/// How many completed file names the report keeps.
const RECENT_FILES: usize = 32;

struct OpenFile {
    path: Path,
    encoder: Encoder,
    upload: BufWriter,
    rows: u64,
    uploaded: u64,
    opened: Instant,
    /// The first batch number with rows in this file.
    first_seq: u64,
}

pub(crate) struct FilesystemSink {
    cfg: FilesystemSinkConfig,
    store: Arc<dyn ObjectStore>,
    /// Schema of what goes inside files (output minus partition columns).
    file_schema: SchemaRef,
    data_columns: Vec<usize>,
    partition_names: Vec<String>,
    open: HashMap<String, OpenFile>,
    run_id: u128,
    counter: u64,
    last_seq: Option<u64>,
    report: SinkReport,
}

impl FilesystemSink {
    pub(crate) fn new(cfg: FilesystemSinkConfig, ctx: SinkContext) -> Result<Self> {
        std::fs::create_dir_all(&cfg.path).map_err(|e| ConnectorError::io(format!("creating output folder {}", cfg.path), e))?;
        let root = std::fs::canonicalize(&cfg.path).map_err(|e| ConnectorError::io(format!("resolving output folder {}", cfg.path), e))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| ConnectorError::store(format!("opening output folder {}", root.display()), e))?
            .with_automatic_cleanup(true);
        let data_columns: Vec<usize> = (0..ctx.schema.fields().len()).filter(|i| !cfg.partition_by.contains(i)).collect();
        let file_schema = Arc::new(ctx.schema.project(&data_columns).map_err(|e| ConnectorError::arrow("projecting file schema", e))?);
        let partition_names = cfg.partition_by.iter().map(|i| ctx.schema.field(*i).name().clone()).collect();
        let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Ok(Self {
            report: SinkReport { location: root.display().to_string(), ..Default::default() },
            cfg,
            store: Arc::new(store),
            file_schema,
            data_columns,
            partition_names,
            open: HashMap::new(),
            run_id,
            counter: 0,
            last_seq: None,
        })
    }

    /// Splits a batch by partition folder, keeping row order inside each part.
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        let project = |b: &RecordBatch| b.project(&self.data_columns).map_err(|e| ConnectorError::arrow("projecting partition columns away", e));
        if self.cfg.partition_by.is_empty() {
            return Ok(vec![(String::new(), project(batch)?)]);
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
        groups
            .into_iter()
            .map(|(k, rows)| {
                let part = take_record_batch(batch, &UInt32Array::from(rows)).map_err(|e| ConnectorError::arrow("splitting partitions", e))?;
                Ok((k, project(&part)?))
            })
            .collect()
    }

    fn open_file(&mut self, partition: &str, seq: u64) -> Result<OpenFile> {
        self.counter += 1;
        let name = format!("{partition}part-{}-{:05}.{}", self.run_id, self.counter, self.cfg.format.extension());
        let path = Path::parse(&name).map_err(|e| ConnectorError::Internal(format!("file name {name} is not a valid object path: {e}")))?;
        let encoder = Encoder::new(self.cfg.format, &self.file_schema, &self.cfg.parquet)?;
        let upload = BufWriter::with_capacity(Arc::clone(&self.store), path.clone(), 8 * 1024 * 1024);
        Ok(OpenFile { path, encoder, upload, rows: 0, uploaded: 0, opened: Instant::now(), first_seq: seq })
    }

    async fn upload(file: &mut OpenFile) -> Result<()> {
        let bytes = file.encoder.take_bytes();
        if !bytes.is_empty() {
            file.uploaded += bytes.len() as u64;
            file.upload.put(Bytes::from(bytes)).await.map_err(|e| ConnectorError::store(format!("writing {}", file.path), e))?;
        }
        Ok(())
    }

    async fn close(&mut self, mut file: OpenFile) -> Result<()> {
        file.encoder.finish()?;
        Self::upload(&mut file).await?;
        file.upload.shutdown().await.map_err(|e| ConnectorError::io(format!("completing {}", file.path), e))?;
        debug!(file = %file.path, rows = file.rows, bytes = file.uploaded, "file complete");
        self.report.files += 1;
        self.report.bytes += file.uploaded;
        self.report.recent.push(format!("{}/{}", self.report.location, file.path));
        if self.report.recent.len() > RECENT_FILES {
            self.report.recent.remove(0);
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for FilesystemSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        self.last_seq = Some(seq);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.report.rows += batch.num_rows() as u64;
        for (partition, part) in self.split(&batch)? {
            let mut file = match self.open.remove(&partition) {
                Some(f) => f,
                None => self.open_file(&partition, seq)?,
            };
            // Write in slices that fit the open file, so files hold exactly `rollover.rows`
            // and close near `rollover.bytes` even when one batch is larger than a file.
            let mut part = part;
            loop {
                let room_rows = (self.cfg.rollover_rows - file.rows) as usize;
                let written = file.uploaded + file.encoder.buffered_bytes() as u64;
                let row_bytes = if file.rows > 0 && written > 0 {
                    written / file.rows
                } else {
                    (part.get_array_memory_size() / part.num_rows().max(1)) as u64
                };
                let room_bytes = self.cfg.rollover_bytes.saturating_sub(written);
                let by_bytes = (room_bytes / row_bytes.max(1)).max(MIN_SLICE_ROWS) as usize;
                let room = room_rows.min(by_bytes);
                let (now, rest) = if part.num_rows() > room {
                    (part.slice(0, room), Some(part.slice(room, part.num_rows() - room)))
                } else {
                    (part.clone(), None)
                };
                file.encoder.write(&now)?;
                file.rows += now.num_rows() as u64;
                Self::upload(&mut file).await?;
                let full = file.rows >= self.cfg.rollover_rows
                    || file.uploaded + file.encoder.buffered_bytes() as u64 >= self.cfg.rollover_bytes;
                if full {
                    self.close(file).await?;
                    file = self.open_file(&partition, seq)?;
                }
                match rest {
                    Some(r) => part = r,
                    None => break,
                }
            }
            if file.rows > 0 {
                self.open.insert(partition, file);
            }
        }
        Ok(())
    }

    fn durable_seq(&self) -> Option<u64> {
        let last = self.last_seq?;
        match self.open.values().map(|f| f.first_seq).min() {
            None => Some(last),
            Some(first) => first.checked_sub(1),
        }
    }

    async fn tick(&mut self) -> Result<()> {
        let due: Vec<String> = self.open.iter().filter(|(_, f)| f.opened.elapsed() >= self.cfg.rollover_interval).map(|(k, _)| k.clone()).collect();
        for k in due {
            if let Some(f) = self.open.remove(&k) {
                self.close(f).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for k in keys {
            if let Some(f) = self.open.remove(&k) {
                self.close(f).await?;
            }
        }
        Ok(())
    }

    fn report(&self) -> SinkReport {
        self.report.clone()
    }
}
