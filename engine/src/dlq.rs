//! The dead-letter queue: bad records with their provenance, as JSON lines.
//!
//! `errors.deadletterqueue.path` names a folder; each sink appends to
//! `<sink>.jsonl` in it. The engine syncs the file to disk before it commits the
//! offsets that cover the records, so a dead-lettered record is never lost
//! either.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use quiver_connectors::api::RejectedRecord;
use serde_json::json;

use crate::error::Result;

pub struct DeadLetterQueue {
    path: PathBuf,
    out: BufWriter<File>,
    sink: String,
    dirty: bool,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue").field("path", &self.path).finish()
    }
}

impl DeadLetterQueue {
    pub fn open(dir: &str, sink: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = PathBuf::from(dir).join(format!("{sink}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            out: BufWriter::new(file),
            sink: sink.to_string(),
            dirty: false,
        })
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    pub fn write(&mut self, r: &RejectedRecord) -> Result<()> {
        let line = json!({
            "sink": self.sink,
            "source": r.source,
            "partition": r.partition,
            "position": r.position,
            "stage": r.stage,
            "error": r.error,
            "record": r.record,
            "time": chrono::Utc::now().to_rfc3339(),
        });
        serde_json::to_writer(&mut self.out, &line).map_err(std::io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.dirty = true;
        Ok(())
    }

    /// Makes every record written so far durable.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}
