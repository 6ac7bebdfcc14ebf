//! Where a worker keeps what must outlive it, behind one interface, [`Store`]:
//! - connector configs and their target states (RUNNING, PAUSED, STOPPED),
//! - the console's persisted `CREATE` statements,
//! - committed source offsets, keyed by connector *and* source partition, so
//!   parallel tasks that commit different partitions never overwrite each other.
//!
//! [`local::LocalStore`] keeps them in one crash-safe redb file per state folder
//! (standalone mode, the console and `quiver run` share it); [`memory::MemoryStore`]
//! keeps them in memory (tests, throwaway workers); [`kafka::KafkaStore`] keeps
//! them in three compacted Kafka topics (distributed mode).
//!
//! Design note: the trait is async and the redb store runs every call on tokio's
//! blocking pool, so an fsync never stalls the async workers that move data.
//! Offsets are committed by *merging* partitions into what is stored, never by
//! replacing the connector's whole map.

pub mod kafka;
pub mod local;
pub mod memory;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use quiver_connectors::api::Offsets;
use serde::{Deserialize, Serialize};

use crate::error::Result;

pub use local::LocalStore;
pub use memory::MemoryStore;

/// A persisted console `CREATE` statement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Definition {
    pub name: String,
    /// "source" or "sink"
    pub kind: String,
    pub sql: String,
    /// Order of creation, so sources are restored before their sinks.
    pub order: u64,
}

/// What a user asked a connector to be doing (Kafka Connect's target state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetState {
    #[default]
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for TargetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetState::Running => "RUNNING",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        })
    }
}

/// A connector as submitted over REST (or from a worker's command line): its config
/// exactly as the user sent it, placeholders and all, and its target state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorRecord {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub target: TargetState,
    /// Order of creation, for listing and restoring in a stable order.
    pub order: u64,
    /// Columns found for a config that declares none (see `crate::discover`); kept
    /// beside the config, never in it, so the config reads back as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<FoundColumns>,
}

/// Columns found for a connector: the SQL column list, where it came from, and
/// whether to look again at every start (a database catalog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundColumns {
    pub ddl: String,
    pub from: String,
    pub refresh: bool,
}

/// One partition's offset change for [`Store::alter_offsets`]: a new position, or
/// `None` to forget the partition (it is then read from its start).
pub type OffsetChanges = BTreeMap<String, Option<serde_json::Value>>;

/// The worker's state: configs, target states, offsets.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the state lives, for messages (`/var/lib/quiver/quiver.redb`, `memory`).
    fn location(&self) -> String;

    /// Whether the store answers now (the worker's `/health`): an error says why not.
    async fn check(&self) -> Result<()> {
        self.connectors().await.map(drop)
    }

    /// The committed offsets of a connector (all its partitions), if any.
    async fn offsets(&self, connector: &str) -> Result<Option<Offsets>>;
    /// Durably records the given partitions' offsets; other partitions keep theirs.
    async fn commit_offsets(&self, connector: &str, offsets: &Offsets) -> Result<()>;
    /// Sets or forgets single partitions (the REST offsets API).
    async fn alter_offsets(&self, connector: &str, changes: &OffsetChanges) -> Result<()>;
    /// Forgets every offset of a connector.
    async fn reset_offsets(&self, connector: &str) -> Result<()>;

    /// Every connector, in creation order.
    async fn connectors(&self) -> Result<Vec<ConnectorRecord>>;
    async fn put_connector(&self, record: &ConnectorRecord) -> Result<()>;
    async fn remove_connector(&self, name: &str) -> Result<()>;

    /// The console's statements, in creation order.
    async fn definitions(&self) -> Result<Vec<Definition>>;
    async fn save_definition(&self, def: &Definition) -> Result<()>;
    async fn remove_definition(&self, name: &str) -> Result<()>;

    /// Records how far a task has read beyond what it committed. Best effort, not
    /// synced, called after every batch: it only serves to count re-reads after a
    /// kill, so a store may keep it anywhere cheap, or nowhere.
    fn write_read_mark(&self, _connector: &str, _read: &Offsets) {}
    /// The last read mark, if the store keeps them.
    fn read_mark(&self, _connector: &str) -> Option<Offsets> {
        None
    }

    /// What the store knows of a task another worker runs (a distributed
    /// worker's status topic); `None` where every task runs here.
    fn task_status(&self, _connector: &str, _task: u32) -> Option<TaskElsewhere> {
        None
    }
}

/// A task run by another worker of the cluster, as its status record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskElsewhere {
    pub state: String,
    pub worker_id: String,
    pub trace: Option<String>,
}

/// Applies offset changes to a stored map (shared by the stores).
pub(crate) fn apply_changes(stored: Option<Offsets>, changes: &OffsetChanges) -> Option<Offsets> {
    let mut offsets = stored.unwrap_or_default();
    for (partition, change) in changes {
        match change {
            Some(v) => {
                offsets.0.insert(partition.clone(), v.clone());
            }
            None => {
                offsets.0.remove(partition);
            }
        }
    }
    (!offsets.is_empty()).then_some(offsets)
}

/// What every store must honour: run against each implementation (the Kafka
/// store's run is an integration test against a broker, so this is public).
#[doc(hidden)]
pub async fn check_contract(store: &dyn Store) {
    use serde_json::json;
    let offsets = |pairs: &[(&str, i64)]| Offsets(pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect());
    assert_eq!(store.offsets("c").await.unwrap(), None);
    // Two tasks commit different partitions: neither overwrites the other.
    store.commit_offsets("c", &offsets(&[("t/0", 5)])).await.unwrap();
    store.commit_offsets("c", &offsets(&[("t/1", 7)])).await.unwrap();
    store.commit_offsets("c", &offsets(&[("t/0", 9)])).await.unwrap();
    assert_eq!(
        store.offsets("c").await.unwrap(),
        Some(offsets(&[("t/0", 9), ("t/1", 7)]))
    );
    // Another connector's offsets are its own.
    assert_eq!(store.offsets("other").await.unwrap(), None);
    let mut changes = OffsetChanges::new();
    changes.insert("t/0".into(), None);
    changes.insert("t/2".into(), Some(json!(3)));
    store.alter_offsets("c", &changes).await.unwrap();
    assert_eq!(
        store.offsets("c").await.unwrap(),
        Some(offsets(&[("t/1", 7), ("t/2", 3)]))
    );
    store.reset_offsets("c").await.unwrap();
    assert_eq!(store.offsets("c").await.unwrap(), None);

    for (i, name) in ["b", "a"].iter().enumerate() {
        let record = ConnectorRecord {
            name: name.to_string(),
            config: BTreeMap::from([("connector.class".to_string(), "quiver".to_string())]),
            target: TargetState::Paused,
            order: i as u64,
            columns: (i == 1).then(|| FoundColumns {
                ddl: "id BIGINT".into(),
                from: "a sample".into(),
                refresh: false,
            }),
        };
        store.put_connector(&record).await.unwrap();
    }
    let names: Vec<String> = store.connectors().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["b", "a"], "creation order");
    store.remove_connector("b").await.unwrap();
    let left = store.connectors().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].target, TargetState::Paused);
    assert_eq!(left[0].columns.as_ref().map(|c| c.ddl.as_str()), Some("id BIGINT"));

    let def = Definition {
        name: "s".into(),
        kind: "source".into(),
        sql: "CREATE SOURCE s …".into(),
        order: 0,
    };
    store.save_definition(&def).await.unwrap();
    assert_eq!(store.definitions().await.unwrap(), vec![def]);
    store.remove_definition("s").await.unwrap();
    assert!(store.definitions().await.unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offsets(pairs: &[(&str, i64)]) -> Offsets {
        Offsets(pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
    }

    async fn compliance(store: &dyn Store) {
        check_contract(store).await;
    }

    #[tokio::test]
    async fn the_memory_store_honours_the_contract() {
        compliance(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_local_store_honours_the_contract_and_keeps_it_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        compliance(&store).await;
        store.commit_offsets("kept", &offsets(&[("rows", 12)])).await.unwrap();
        drop(store);
        let again = LocalStore::open(dir.path()).unwrap();
        assert_eq!(again.offsets("kept").await.unwrap(), Some(offsets(&[("rows", 12)])));
        assert_eq!(again.connectors().await.unwrap().len(), 1);
    }
}
