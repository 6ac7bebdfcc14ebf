//! The crash-safe local store: connector configs and target states, console
//! definitions and committed offsets, in one redb database per state folder.
//!
//! [`StateStore`] is the synchronous redb layer; [`LocalStore`] is the [`Store`]
//! over it, running each call on tokio's blocking pool. Every commit is a durable redb write
//! transaction, so after a crash the store holds exactly the offsets that were
//! committed, and those were only committed after the sink made the data durable.
//! redb locks the file, so two processes cannot share a state folder by accident.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use quiver_connectors::api::Offsets;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{ConnectorRecord, Definition, OffsetChanges, Store, apply_changes};
use crate::error::{EngineError, Result};

const OFFSETS: TableDefinition<&str, &str> = TableDefinition::new("offsets");
const DEFINITIONS: TableDefinition<&str, &str> = TableDefinition::new("definitions");
const CONNECTORS: TableDefinition<&str, &str> = TableDefinition::new("connectors");

/// The largest read mark overwritten in place: one page of the page cache.
const READ_MARK_IN_PLACE: usize = 4096;

pub struct StateStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("path", &self.path).finish()
    }
}

impl StateStore {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::State {
            path: dir.display().to_string(),
            message: format!("cannot create folder: {e}"),
        })?;
        let path = dir.join("quiver.redb");
        let err = |m: String| EngineError::State {
            path: path.display().to_string(),
            message: m,
        };
        let db = Database::create(&path).map_err(|e| {
            let m = e.to_string();
            if m.contains("lock") || m.contains("in use") || m.contains("already open") {
                err(format!(
                    "{m}; is another quiver process using this state folder? Pass --state-dir to use another"
                ))
            } else {
                err(m)
            }
        })?;
        let store = Self { db, path };
        // Create the tables so that readers never see "table does not exist".
        let tx = store.db.begin_write().map_err(|e| store.err(e))?;
        tx.open_table(OFFSETS).map_err(|e| store.err(e))?;
        tx.open_table(DEFINITIONS).map_err(|e| store.err(e))?;
        tx.open_table(CONNECTORS).map_err(|e| store.err(e))?;
        tx.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn get(&self, table: TableDefinition<&str, &str>, key: &str) -> Result<Option<String>> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(table).map_err(|e| self.err(e))?;
        Ok(t.get(key).map_err(|e| self.err(e))?.map(|v| v.value().to_string()))
    }

    fn put(&self, table: TableDefinition<&str, &str>, key: &str, value: Option<&str>) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(table).map_err(|e| self.err(e))?;
            match value {
                Some(v) => {
                    t.insert(key, v).map_err(|e| self.err(e))?;
                }
                None => {
                    t.remove(key).map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The committed offsets of a pipeline.
    pub fn offsets(&self, pipeline: &str) -> Result<Option<Offsets>> {
        match self.get(OFFSETS, pipeline)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| self.err(format!("offsets of '{pipeline}' are unreadable: {e}"))),
        }
    }

    /// Durably records the given partitions' offsets, merged into the stored ones in
    /// one write transaction: partitions not named keep their offsets.
    pub fn commit_offsets(&self, pipeline: &str, offsets: &Offsets) -> Result<()> {
        self.update_offsets(pipeline, |stored| {
            let mut merged = stored.unwrap_or_default();
            merged.merge(offsets);
            (!merged.is_empty()).then_some(merged)
        })
    }

    /// Sets or forgets single partitions.
    pub fn alter_offsets(&self, pipeline: &str, changes: &OffsetChanges) -> Result<()> {
        self.update_offsets(pipeline, |stored| apply_changes(stored, changes))
    }

    /// Read, change and write a connector's offsets in one write transaction.
    fn update_offsets(&self, pipeline: &str, change: impl FnOnce(Option<Offsets>) -> Option<Offsets>) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(OFFSETS).map_err(|e| self.err(e))?;
            let stored = match t.get(pipeline).map_err(|e| self.err(e))? {
                None => None,
                Some(v) => Some(
                    serde_json::from_str::<Offsets>(v.value())
                        .map_err(|e| self.err(format!("offsets of '{pipeline}' are unreadable: {e}")))?,
                ),
            };
            match change(stored) {
                Some(o) => {
                    let json = serde_json::to_string(&o).map_err(|e| self.err(e))?;
                    t.insert(pipeline, json.as_str()).map_err(|e| self.err(e))?;
                }
                None => {
                    t.remove(pipeline).map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records how far a pipeline has read (beyond what it committed), in a plain
    /// file beside the store: written after every batch without syncing, it
    /// survives a killed process and lets the next run count its re-reads.
    ///
    /// A mark that fits in one page is overwritten in place by a single write at
    /// offset 0, padded with spaces over the previous mark's length (JSON ignores
    /// them): a kill cannot split a one-page write of the page cache, and replacing
    /// the file by rename would make ext4 start writeback of the new file on every
    /// batch (2.5% of a JSON → Parquet run in `perf`, waiting on the disk). A larger
    /// mark (many partitions) is written beside it and renamed over it.
    pub fn write_read_mark(&self, pipeline: &str, read: &Offsets) {
        use std::os::unix::fs::FileExt;
        let Ok(mut json) = serde_json::to_vec(read) else { return };
        let path = self.read_mark_path(pipeline);
        if json.len() <= READ_MARK_IN_PLACE
            && let Ok(file) = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        {
            let previous = file.metadata().map_or(0, |m| m.len()) as usize;
            if previous <= READ_MARK_IN_PLACE {
                json.resize(previous.max(json.len()), b' ');
                let _ = file.write_all_at(&json, 0);
                return;
            }
        }
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// How far the pipeline had read when it last stopped, if known.
    pub fn read_mark(&self, pipeline: &str) -> Option<Offsets> {
        let bytes = std::fs::read(self.read_mark_path(pipeline)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn read_mark_path(&self, pipeline: &str) -> PathBuf {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        dir.join(format!("{pipeline}.read.json"))
    }

    pub fn reset_offsets(&self, pipeline: &str) -> Result<()> {
        let _ = std::fs::remove_file(self.read_mark_path(pipeline));
        // The marks of a parallel pipeline's other tasks (`<pipeline>#task<i>`).
        let tasks = format!("{pipeline}#task");
        if let Some(Ok(entries)) = self.path.parent().map(std::fs::read_dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(&tasks) && name.ends_with(".read.json") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        self.put(OFFSETS, pipeline, None)
    }

    pub fn save_definition(&self, def: &Definition) -> Result<()> {
        let json = serde_json::to_string(def).map_err(|e| self.err(e))?;
        self.put(DEFINITIONS, &def.name, Some(&json))
    }

    pub fn remove_definition(&self, name: &str) -> Result<()> {
        self.put(DEFINITIONS, name, None)
    }

    /// Every persisted definition, in creation order.
    pub fn definitions(&self) -> Result<Vec<Definition>> {
        let mut out: Vec<Definition> = self.all(DEFINITIONS)?;
        out.sort_by_key(|d| d.order);
        Ok(out)
    }

    pub fn put_connector(&self, record: &ConnectorRecord) -> Result<()> {
        let json = serde_json::to_string(record).map_err(|e| self.err(e))?;
        self.put(CONNECTORS, &record.name, Some(&json))
    }

    pub fn remove_connector(&self, name: &str) -> Result<()> {
        self.put(CONNECTORS, name, None)
    }

    /// Every connector, in creation order.
    pub fn connectors(&self) -> Result<Vec<ConnectorRecord>> {
        let mut out: Vec<ConnectorRecord> = self.all(CONNECTORS)?;
        out.sort_by_key(|c| c.order);
        Ok(out)
    }

    fn all<T: serde::de::DeserializeOwned>(&self, table: TableDefinition<&str, &str>) -> Result<Vec<T>> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(table).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let item = serde_json::from_str(v.value())
                .map_err(|e| self.err(format!("entry '{}' is unreadable: {e}", k.value())))?;
            out.push(item);
        }
        Ok(out)
    }
}

/// The [`Store`] of one state folder: a [`StateStore`] whose calls run on tokio's
/// blocking pool.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<StateStore>,
}

impl LocalStore {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(StateStore::open(dir)?),
        })
    }

    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The synchronous layer, for start-up reads before the runtime serves anyone.
    pub fn state(&self) -> &StateStore {
        &self.inner
    }

    /// Runs a store call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&StateStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || call(&inner))
            .await
            .map_err(|e| EngineError::State {
                path: self.inner.path.display().to_string(),
                message: format!("a store call did not complete: {e}"),
            })?
    }
}

#[async_trait]
impl Store for LocalStore {
    fn location(&self) -> String {
        self.inner.path.display().to_string()
    }

    async fn offsets(&self, connector: &str) -> Result<Option<Offsets>> {
        let c = connector.to_string();
        self.blocking(move |s| s.offsets(&c)).await
    }

    async fn commit_offsets(&self, connector: &str, offsets: &Offsets) -> Result<()> {
        let (c, o) = (connector.to_string(), offsets.clone());
        self.blocking(move |s| s.commit_offsets(&c, &o)).await
    }

    async fn alter_offsets(&self, connector: &str, changes: &OffsetChanges) -> Result<()> {
        let (c, ch) = (connector.to_string(), changes.clone());
        self.blocking(move |s| s.alter_offsets(&c, &ch)).await
    }

    async fn reset_offsets(&self, connector: &str) -> Result<()> {
        let c = connector.to_string();
        self.blocking(move |s| s.reset_offsets(&c)).await
    }

    async fn connectors(&self) -> Result<Vec<ConnectorRecord>> {
        self.blocking(|s| s.connectors()).await
    }

    async fn put_connector(&self, record: &ConnectorRecord) -> Result<()> {
        let r = record.clone();
        self.blocking(move |s| s.put_connector(&r)).await
    }

    async fn remove_connector(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.blocking(move |s| s.remove_connector(&n)).await
    }

    async fn definitions(&self) -> Result<Vec<Definition>> {
        self.blocking(|s| s.definitions()).await
    }

    async fn save_definition(&self, def: &Definition) -> Result<()> {
        let d = def.clone();
        self.blocking(move |s| s.save_definition(&d)).await
    }

    async fn remove_definition(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.blocking(move |s| s.remove_definition(&n)).await
    }

    fn write_read_mark(&self, connector: &str, read: &Offsets) {
        self.inner.write_read_mark(connector, read);
    }

    fn read_mark(&self, connector: &str) -> Option<Offsets> {
        self.inner.read_mark(connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(partitions: usize, position: u64) -> Offsets {
        Offsets(
            (0..partitions)
                .map(|p| (format!("/data/events-{p:04}.jsonl"), serde_json::json!(position)))
                .collect(),
        )
    }

    /// Marks grow, shrink, outgrow a page and come back; each read gives the last one.
    #[test]
    fn the_read_mark_reads_back_the_last_one_written_whatever_its_size() {
        let dir = std::env::temp_dir().join(format!("quiver-read-mark-{}", std::process::id()));
        // A folder left by an earlier run with the same process id must not hold a mark.
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir).unwrap();
        assert_eq!(store.read_mark("p"), None);
        for (partitions, position) in [(3, 1_000_000), (1, 7), (200, 42), (2, 9), (1, 10)] {
            let written = mark(partitions, position);
            store.write_read_mark("p", &written);
            assert_eq!(store.read_mark("p"), Some(written), "{partitions} partitions");
        }
        // The last two marks were written in place: the shorter one is padded over the
        // longer one before it, and the file stays within a page.
        let on_disk = std::fs::read_to_string(store.read_mark_path("p")).unwrap();
        assert_eq!(on_disk.trim_end(), serde_json::to_string(&mark(1, 10)).unwrap());
        assert_eq!(
            on_disk.len(),
            serde_json::to_string(&mark(2, 9)).unwrap().len(),
            "padded over the previous mark"
        );
        store.reset_offsets("p").unwrap();
        assert_eq!(store.read_mark("p"), None);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
