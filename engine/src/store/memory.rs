//! A [`Store`] in memory: for tests and workers whose state may die with them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use quiver_connectors::api::Offsets;

use super::{ConnectorRecord, Definition, OffsetChanges, Store, apply_changes};
use crate::error::Result;

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    offsets: BTreeMap<String, Offsets>,
    connectors: BTreeMap<String, ConnectorRecord>,
    definitions: BTreeMap<String, Definition>,
    read_marks: BTreeMap<String, Offsets>,
}

impl MemoryStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    async fn offsets(&self, connector: &str) -> Result<Option<Offsets>> {
        Ok(self.inner().offsets.get(connector).cloned())
    }

    async fn commit_offsets(&self, connector: &str, offsets: &Offsets) -> Result<()> {
        self.inner()
            .offsets
            .entry(connector.to_string())
            .or_default()
            .merge(offsets);
        Ok(())
    }

    async fn alter_offsets(&self, connector: &str, changes: &OffsetChanges) -> Result<()> {
        let mut inner = self.inner();
        match apply_changes(inner.offsets.remove(connector), changes) {
            Some(o) => inner.offsets.insert(connector.to_string(), o),
            None => None,
        };
        Ok(())
    }

    async fn reset_offsets(&self, connector: &str) -> Result<()> {
        let mut inner = self.inner();
        inner.offsets.remove(connector);
        inner.read_marks.remove(connector);
        Ok(())
    }

    async fn connectors(&self) -> Result<Vec<ConnectorRecord>> {
        let mut all: Vec<ConnectorRecord> = self.inner().connectors.values().cloned().collect();
        all.sort_by_key(|c| c.order);
        Ok(all)
    }

    async fn put_connector(&self, record: &ConnectorRecord) -> Result<()> {
        self.inner().connectors.insert(record.name.clone(), record.clone());
        Ok(())
    }

    async fn remove_connector(&self, name: &str) -> Result<()> {
        self.inner().connectors.remove(name);
        Ok(())
    }

    async fn definitions(&self) -> Result<Vec<Definition>> {
        let mut all: Vec<Definition> = self.inner().definitions.values().cloned().collect();
        all.sort_by_key(|d| d.order);
        Ok(all)
    }

    async fn save_definition(&self, def: &Definition) -> Result<()> {
        self.inner().definitions.insert(def.name.clone(), def.clone());
        Ok(())
    }

    async fn remove_definition(&self, name: &str) -> Result<()> {
        self.inner().definitions.remove(name);
        Ok(())
    }

    fn write_read_mark(&self, connector: &str, read: &Offsets) {
        self.inner().read_marks.insert(connector.to_string(), read.clone());
    }

    fn read_mark(&self, connector: &str) -> Option<Offsets> {
        self.inner().read_marks.get(connector).cloned()
    }
}
