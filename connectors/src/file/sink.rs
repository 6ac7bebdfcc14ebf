//! The `file` sink: appends one line per record to one file, as Kafka Connect's
//! FileStreamSink does, so a reader that follows that file keeps working.
//!
//! Lines are JSON objects (`format = 'json'`) or the one text or bytes column as
//! it is (`format = 'text'`, FileStreamSink with StringConverter). Appends are
//! made durable with `fsync` at most every [`SYNC_INTERVAL`] and on flush; only
//! then are the batches they hold reported durable, so offsets are committed
//! behind data that survives a crash (at-least-once: a crash replays what was
//! appended after the last sync). A line cut short by a crash is removed when the
//! sink starts again, so the file holds only whole lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow::array::{Array, BinaryArray, LargeStringArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use async_trait::async_trait;

use super::config::{AppendFormat, FileSinkConfig};
use crate::api::{ConnectorError, Result, Sink, SinkContext, SinkReport};

/// How often appended lines are synced to disk while data flows.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct FileSink {
    path: PathBuf,
    file: File,
    format: AppendFormat,
    /// The last batch appended, and the last one synced.
    written: Option<u64>,
    synced: Option<u64>,
    last_sync: Instant,
    report: SinkReport,
}

impl FileSink {
    pub(crate) fn open(config: &FileSinkConfig, ctx: &SinkContext) -> Result<Self> {
        let path = PathBuf::from(&config.path);
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectorError::io(format!("creating the folder of {shown}"), e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| ConnectorError::io(format!("opening {shown} to append to"), e))?;
        let cut = drop_partial_line(&mut file).map_err(|e| ConnectorError::io(format!("repairing {shown}"), e))?;
        if cut > 0 {
            tracing::warn!(sink = %ctx.name, file = %shown, bytes = cut, "removed a line cut short by an earlier crash");
        }
        Ok(Self {
            path,
            file,
            format: config.format,
            written: None,
            synced: None,
            last_sync: Instant::now(),
            report: SinkReport {
                location: shown,
                ..Default::default()
            },
        })
    }

    fn lines(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self.format {
            AppendFormat::Json => {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut out);
                w.write(batch)
                    .map_err(|e| ConnectorError::arrow("writing JSON lines", e))?;
                w.finish().map_err(|e| ConnectorError::arrow("writing JSON lines", e))?;
            }
            AppendFormat::Text => {
                let column = batch.column(0);
                let value = |i: usize| -> Option<&[u8]> {
                    if column.is_null(i) {
                        return None;
                    }
                    match column.data_type() {
                        DataType::Utf8 => column
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .map(|a| a.value(i).as_bytes()),
                        DataType::LargeUtf8 => column
                            .as_any()
                            .downcast_ref::<LargeStringArray>()
                            .map(|a| a.value(i).as_bytes()),
                        DataType::Binary => column.as_any().downcast_ref::<BinaryArray>().map(|a| a.value(i)),
                        _ => None,
                    }
                };
                for i in 0..batch.num_rows() {
                    // Kafka Connect writes a null value as the word null.
                    out.extend_from_slice(value(i).unwrap_or(b"null"));
                    out.push(b'\n');
                }
            }
        }
        Ok(out)
    }

    async fn sync(&mut self) -> Result<()> {
        if self.synced == self.written {
            return Ok(());
        }
        let file = self
            .file
            .try_clone()
            .map_err(|e| ConnectorError::io(format!("syncing {}", self.path.display()), e))?;
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| ConnectorError::Internal(format!("syncing a file: {e}")))?
            .map_err(|e| ConnectorError::io(format!("syncing {}", self.path.display()), e))?;
        self.synced = self.written;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// Truncates bytes after the last newline (a line a crash cut short); returns how
/// many were removed.
fn drop_partial_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // Look back in chunks for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
                file.sync_data()?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    // No newline at all: the whole file is one cut line.
    file.set_len(0)?;
    file.sync_data()?;
    Ok(len)
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        let bytes = self.lines(&batch)?;
        // One append per batch: O_APPEND keeps it at the end even if a reader or
        // another writer moved things, and a crash can cut at most this batch.
        self.file
            .write_all(&bytes)
            .map_err(|e| ConnectorError::io(format!("appending to {}", self.path.display()), e))?;
        self.report.rows += batch.num_rows() as u64;
        self.report.bytes += bytes.len() as u64;
        self.written = Some(seq);
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync().await?;
        }
        Ok(())
    }

    fn durable_seq(&self) -> Option<u64> {
        self.synced
    }

    async fn tick(&mut self) -> Result<()> {
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.sync().await
    }

    fn report(&self) -> SinkReport {
        self.report.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_short_is_removed_and_whole_lines_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        for (content, kept) in [
            ("a\nb\nhalf", "a\nb\n"),
            ("a\nb\n", "a\nb\n"),
            ("no newline at all", ""),
            ("", ""),
        ] {
            std::fs::write(&path, content).unwrap();
            let mut f = OpenOptions::new().read(true).append(true).open(&path).unwrap();
            let cut = drop_partial_line(&mut f).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
            assert_eq!(cut as usize, content.len() - kept.len());
        }
    }
}
