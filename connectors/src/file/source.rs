//! The file source: reads lines in chunks, decodes them, tracks line and byte positions.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::config::FileSourceConfig;
use crate::api::{
    ConnectorError, Offsets, PartitionProbe, Progress, RejectedRecord, Result, RowOrigins, Source, SourceBatch,
    SourceContext, Stage, TaskSlot,
};
use crate::formats::LineFormat;
use crate::formats::decode::LineDecoder;

/// Where reading of one file stands.
#[derive(Debug, Clone, Copy, Default)]
struct FilePos {
    /// Lines consumed (the next line's number is `line + 1`).
    line: u64,
    /// Bytes consumed.
    byte: u64,
}

struct OpenFile {
    path: Arc<str>,
    file: File,
    /// Bytes read but not yet consumed; `buf[0]` is at byte `pos.byte`.
    buf: Vec<u8>,
    pos: FilePos,
    /// Read no further than this (bounded runs: the size at start).
    limit: Option<u64>,
    eof: bool,
    /// Newlines in `buf` (counted as bytes arrive, so each byte is counted once).
    newlines: usize,
}

pub(crate) struct FileSource {
    cfg: FileSourceConfig,
    name: String,
    decoder: LineDecoder,
    bounded: bool,
    max_rows: usize,
    max_bytes: usize,
    positions: BTreeMap<String, FilePos>,
    /// Bounded runs: every file and its size at start.
    limits: Option<BTreeMap<String, u64>>,
    queue: VecDeque<String>,
    current: Option<OpenFile>,
    total_bytes: Option<u64>,
    done_bytes: u64,
    /// The pipeline task this source serves: it reads the files whose path hashes to it.
    task: TaskSlot,
    /// The files this task has seen, sorted (for status).
    files: Arc<std::sync::Mutex<Vec<String>>>,
}

/// The files a `path` option names right now, sorted.
fn list_files(pattern: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if pattern.contains(['*', '?', '[']) {
        let paths = glob::glob(pattern)
            .map_err(|e| ConnectorError::option("path", format!("invalid glob '{pattern}': {e}")))?;
        for p in paths.flatten() {
            if p.is_file() {
                out.push(p);
            }
        }
    } else {
        let p = Path::new(pattern);
        if p.is_dir() {
            let entries =
                std::fs::read_dir(p).map_err(|e| ConnectorError::io(format!("listing folder {pattern}"), e))?;
            for e in entries.flatten() {
                let path = e.path();
                let hidden = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_none_or(|n| n.starts_with('.'));
                if path.is_file() && !hidden {
                    out.push(path);
                }
            }
        } else if p.is_file() {
            out.push(p.to_path_buf());
        } else {
            return Err(ConnectorError::Config(format!(
                "path '{pattern}' is neither a file nor a folder (and not a glob)"
            )));
        }
    }
    out.sort();
    Ok(out)
}

impl FileSource {
    pub(crate) fn new(cfg: FileSourceConfig, ctx: SourceContext) -> Result<Self> {
        let mut positions = BTreeMap::new();
        if let Some(start) = &ctx.start {
            for (path, v) in &start.0 {
                let line = v.get("line").and_then(|l| l.as_u64()).unwrap_or(0);
                let byte = v.get("byte").and_then(|b| b.as_u64()).unwrap_or(0);
                positions.insert(path.clone(), FilePos { line, byte });
            }
        }
        let task = ctx.task.clone();
        let files: Vec<PathBuf> = list_files(&cfg.path)?
            .into_iter()
            .filter(|f| task.owns(&f.to_string_lossy()))
            .collect();
        let (limits, total_bytes) = if ctx.bounded {
            let mut limits = BTreeMap::new();
            let mut total = 0;
            for f in &files {
                let size = std::fs::metadata(f)
                    .map_err(|e| ConnectorError::io(format!("reading size of {}", f.display()), e))?
                    .len();
                total += size;
                limits.insert(f.to_string_lossy().into_owned(), size);
            }
            (Some(limits), Some(total))
        } else {
            (None, None)
        };
        let done_bytes = positions
            .iter()
            .filter(|(path, _)| task.owns(path))
            .map(|(_, p): (_, &FilePos)| p.byte)
            .sum();
        let mut decoder = LineDecoder::new(cfg.format, Arc::clone(&ctx.schema), cfg.csv, ctx.batch.max_rows);
        decoder.skip_unused(&ctx.used);
        if let Some(filter) = &ctx.filter {
            decoder.apply_filter(filter);
        }
        let mut s = Self {
            cfg,
            name: ctx.name,
            decoder,
            bounded: ctx.bounded,
            max_rows: ctx.batch.max_rows.max(1),
            max_bytes: ctx.batch.max_bytes.max(4096),
            positions,
            limits,
            queue: VecDeque::new(),
            current: None,
            total_bytes,
            done_bytes,
            task,
            files: Arc::default(),
        };
        s.enqueue(files);
        Ok(s)
    }

    /// Queues the files that have unread bytes.
    fn enqueue(&mut self, files: Vec<PathBuf>) {
        for f in files {
            let key = f.to_string_lossy().into_owned();
            if !self.task.owns(&key) {
                continue;
            }
            if let Ok(mut seen) = self.files.lock()
                && let Err(at) = seen.binary_search(&key)
            {
                seen.insert(at, key.clone());
            }
            let consumed = self.positions.get(&key).map_or(0, |p| p.byte);
            let size = match &self.limits {
                Some(l) => l.get(&key).copied().unwrap_or(0),
                None => std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0),
            };
            if size > consumed && !self.queue.contains(&key) {
                self.queue.push_back(key);
            }
        }
    }

    fn open(&mut self, path: String) -> Result<OpenFile> {
        let pos = self.positions.get(&path).copied().unwrap_or_default();
        let mut file = File::open(&path).map_err(|e| ConnectorError::io(format!("opening {path}"), e))?;
        file.seek(SeekFrom::Start(pos.byte))
            .map_err(|e| ConnectorError::io(format!("seeking {path} to byte {}", pos.byte), e))?;
        let limit = self.limits.as_ref().and_then(|l| l.get(&path).copied());
        Ok(OpenFile {
            path: Arc::from(path.as_str()),
            file,
            buf: Vec::new(),
            pos,
            limit,
            eof: false,
            newlines: 0,
        })
    }

    /// Reads from `f` until the buffer holds `max_rows` lines, `max_bytes`, or the end.
    /// Reads land directly in the file's buffer, which keeps its capacity between
    /// batches: no per-read allocation, no zeroing and no second copy.
    fn fill(f: &mut OpenFile, max_rows: usize, max_bytes: usize) -> Result<()> {
        let chunk = (max_bytes / 4).clamp(64 * 1024, 4 * 1024 * 1024);
        while !f.eof && ((f.newlines < max_rows && f.buf.len() < max_bytes) || f.newlines == 0) {
            let mut want = chunk;
            if let Some(limit) = f.limit {
                let read_to = f.pos.byte + f.buf.len() as u64;
                want = want.min(limit.saturating_sub(read_to) as usize);
                if want == 0 {
                    f.eof = true;
                    break;
                }
            }
            let old = f.buf.len();
            f.buf.reserve(want);
            // `read_to_end` reads into the spare capacity without zeroing it first; a
            // short read of a regular file is its end (for now).
            let n = match (&mut f.file).take(want as u64).read_to_end(&mut f.buf) {
                Ok(n) => n,
                Err(e) => {
                    f.buf.truncate(old);
                    return Err(ConnectorError::io(format!("reading {}", f.path), e));
                }
            };
            f.newlines += memchr::memchr_iter(b'\n', &f.buf[old..]).count();
            if n < want {
                f.eof = true;
            }
        }
        Ok(())
    }

    /// Cuts the next batch out of the open file's buffer; `None` when nothing is left.
    fn cut(&mut self, f: &mut OpenFile) -> Option<SourceBatch> {
        let complete_final = f.eof && self.bounded;
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut line_numbers: Vec<u64> = Vec::new();
        let mut consumed = 0usize;
        let mut line_no = f.pos.line;
        let mut region_start: Option<usize> = None;
        let mut newlines = 0;
        let buf = &f.buf;
        while lines.len() < self.max_rows && consumed < buf.len() {
            let rest = &buf[consumed..];
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    newlines += 1;
                    (&rest[..i], consumed + i + 1)
                }
                None if complete_final => (rest, buf.len()),
                None => break,
            };
            line_no += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let is_header = self.cfg.format == LineFormat::Csv && self.cfg.csv_header && line_no == 1;
            if !is_header && !line.iter().all(|b| b.is_ascii_whitespace()) {
                region_start.get_or_insert(consumed);
                lines.push(line);
                line_numbers.push(line_no);
            }
            consumed = next;
        }
        if consumed == 0 {
            return None;
        }
        let region = &buf[region_start.unwrap_or(consumed)..consumed];
        let decoded = self.decoder.decode(region, &lines);
        let mut origins = RowOrigins::with_capacity(decoded.good.len());
        for &i in &decoded.good {
            origins.push(&f.path, line_numbers[i] as i64);
        }
        let rejected = decoded
            .bad
            .iter()
            .map(|(i, err)| RejectedRecord {
                source: self.name.clone(),
                partition: f.path.to_string(),
                position: line_numbers[*i] as i64,
                stage: Stage::Decode,
                error: err.clone(),
                record: serde_json::Value::String(String::from_utf8_lossy(lines[*i]).into_owned()),
                raw: None,
            })
            .collect();
        f.pos.line = line_no;
        f.pos.byte += consumed as u64;
        self.done_bytes += consumed as u64;
        f.buf.drain(..consumed);
        f.newlines -= newlines;
        self.positions.insert(f.path.to_string(), f.pos);
        let mut offsets = Offsets::default();
        offsets
            .0
            .insert(f.path.to_string(), json!({"line": f.pos.line, "byte": f.pos.byte}));
        Some(SourceBatch {
            batch: decoded.batch,
            origins,
            offsets,
            rejected,
            raw: Vec::new(),
            filtered: decoded.filtered,
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        loop {
            let mut f = match self.current.take() {
                Some(f) => f,
                None => match self.queue.pop_front() {
                    Some(path) => self.open(path)?,
                    None if self.bounded => return Ok(None),
                    None => {
                        tokio::time::sleep(self.cfg.scan_interval).await;
                        let files = list_files(&self.cfg.path)?;
                        self.enqueue(files);
                        continue;
                    }
                },
            };
            // Local reads of a few MiB: short enough to do inline on the runtime.
            Self::fill(&mut f, self.max_rows, self.max_bytes)?;
            match self.cut(&mut f) {
                Some(batch) => {
                    self.current = Some(f);
                    return Ok(Some(batch));
                }
                None if f.eof => continue,
                None => {
                    // A partial line at the end of a growing file: come back later.
                    f.eof = true;
                    continue;
                }
            }
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.done_bytes,
            total: self.total_bytes,
        }
    }

    fn partitions(&self) -> Option<PartitionProbe> {
        let files = Arc::clone(&self.files);
        Some(Arc::new(move || files.lock().map(|f| f.clone()).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;
    use crate::api::BatchPolicy;
    use crate::file::config::FileSourceConfig;
    use crate::formats::decode::CsvOptions;

    fn source(dir: &std::path::Path, bounded: bool, start: Option<Offsets>) -> FileSource {
        let cfg = FileSourceConfig {
            path: dir.display().to_string(),
            format: LineFormat::Json,
            csv_header: false,
            csv: CsvOptions::default(),
            scan_interval: std::time::Duration::from_millis(10),
        };
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let ctx = SourceContext {
            name: "s".into(),
            pipeline: "p".into(),
            schema,
            start,
            bounded,
            batch: BatchPolicy {
                max_rows: 2,
                ..Default::default()
            },
            used: Vec::new(),
            keep_raw: false,
            filter: None,
            task: Default::default(),
        };
        FileSource::new(cfg, ctx).unwrap()
    }

    async fn drain(s: &mut FileSource) -> (Vec<i64>, Offsets) {
        let mut ids = Vec::new();
        let mut offsets = Offsets::default();
        while let Some(b) = s.next_batch().await.unwrap() {
            ids.extend(b.batch.column(0).as_primitive::<Int64Type>().values().iter());
            offsets.merge(&b.offsets);
        }
        (ids, offsets)
    }

    fn append(path: &std::path::Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[tokio::test]
    async fn bounded_reads_what_existed_at_start_then_resumes_from_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        append(&a, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n");
        let mut s = source(dir.path(), true, None);
        // Data that arrives after the start is not part of this bounded run.
        append(&a, "{\"id\":4}\n");
        append(&dir.path().join("b.jsonl"), "{\"id\":5}\n");
        let (ids, offsets) = drain(&mut s).await;
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(
            offsets.get(&a.display().to_string()).unwrap(),
            &serde_json::json!({"line": 3, "byte": 27})
        );
        assert_eq!(s.progress().done, s.progress().total.unwrap());

        // The next bounded run starts after those offsets and sees the new data.
        let mut s = source(dir.path(), true, Some(offsets));
        assert_eq!(drain(&mut s).await.0, vec![4, 5]);
    }

    #[tokio::test]
    async fn unbounded_waits_for_a_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        append(&a, "{\"id\":1}\n{\"id\":");
        let mut s = source(dir.path(), false, None);
        let first = s.next_batch().await.unwrap().unwrap();
        assert_eq!(first.batch.num_rows(), 1);
        // The half-written record is not read until its newline arrives.
        let pending = tokio::time::timeout(std::time::Duration::from_millis(100), s.next_batch()).await;
        assert!(pending.is_err(), "a partial line must not be decoded");
        append(&a, "2}\n");
        let second = tokio::time::timeout(std::time::Duration::from_secs(2), s.next_batch())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            second.batch.column(0).as_primitive::<Int64Type>().values().to_vec(),
            vec![2]
        );
        assert!(second.rejected.is_empty());
    }
}
