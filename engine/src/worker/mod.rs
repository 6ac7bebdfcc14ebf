//! The engine API: execute statements, run pipelines, and control their lifecycle.
//!
//! The CLI (`quiver run`), the console (`quiver sql`) and the REST server all
//! drive pipelines through [`Engine`]: [`Engine::execute`] for statements;
//! [`Engine::pause`], [`Engine::resume`], [`Engine::stop`], [`Engine::restart`],
//! [`Engine::offsets`] and [`Engine::reset_offsets`] for lifecycle; and the
//! connector methods in [`connectors`] for what the REST API submits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use futures::FutureExt;
use quiver_connectors::api::{Offsets, Progress, SharedOffsets, SinkReport, TaskSlot};
use quiver_sql::parser::{ObjectKind, ShowKind};
use quiver_sql::{Catalog, ParsedStatement, PipelineSpec, Plan, Table};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

mod connectors;
pub mod failure;
pub mod task;

pub use connectors::{ConnectorInfo, ConnectorStatus, RestartRequest, StateInfo, task_state};

use self::task::{self as pipeline, Control, State, Stats};
use crate::error::{EngineError, Result};
use crate::preview;
use crate::store::{Definition, LocalStore, Store};

/// How an engine runs its pipelines.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Sources stop at the end that existed when they started (`--until-caught-up`).
    pub bounded: bool,
    /// Persist CREATE statements so a restarted console or server restores them.
    pub persist_definitions: bool,
}

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    /// A confirmation.
    Message(String),
    Table(Table),
    /// Preview rows, plus notes (rows that failed, why the preview stopped).
    Rows {
        batches: Vec<RecordBatch>,
        notes: Vec<String>,
    },
}

/// One task of a pipeline, as its status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub id: u32,
    pub state: State,
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<failure::TaskFailure>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_errored: u64,
    pub batches: u64,
    pub dead_lettered: u64,
    pub commits: u64,
    pub commit_failures: u64,
    pub sink: SinkReport,
    /// The source partitions the task reads now (Kafka partitions, files).
    pub partitions: Vec<String>,
    /// Consumer lag of each partition the task reads (Kafka sources), for metrics.
    #[serde(skip)]
    pub lag: Vec<quiver_connectors::api::PartitionLag>,
}

impl TaskStatus {
    /// Rows the filter dropped.
    pub fn rows_filtered(&self) -> u64 {
        self.rows_in.saturating_sub(self.rows_out + self.rows_errored)
    }
}

/// A snapshot of one pipeline's status: its tasks summed up, and each task.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub source: String,
    /// The source's connector.
    pub source_connector: String,
    pub connector: String,
    pub state: State,
    pub error: Option<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_errored: u64,
    pub batches: u64,
    pub dead_lettered: u64,
    pub commits: u64,
    pub commit_failures: u64,
    /// Why the task failed, typed (the message is `error`).
    #[serde(skip)]
    pub failure: Option<failure::TaskFailure>,
    pub sink: SinkReport,
    pub progress_done: u64,
    pub progress_total: Option<u64>,
    pub elapsed_ms: u64,
    pub resumed_from: Option<Offsets>,
    /// Records read before the last stop but never committed, read again.
    pub reread: u64,
    pub dead_letter_path: Option<String>,
    pub dead_letter_topic: Option<String>,
    /// Every task, by id.
    pub tasks: Vec<TaskStatus>,
}

impl PipelineStatus {
    /// Rows the filter dropped.
    pub fn rows_filtered(&self) -> u64 {
        self.rows_in.saturating_sub(self.rows_out + self.rows_errored)
    }
}

/// A running pipeline: its tasks, and the durable positions they share.
struct Running {
    spec: Arc<PipelineSpec>,
    tasks: Vec<TaskRun>,
    durable: SharedOffsets,
}

/// One task of a running pipeline.
struct TaskRun {
    stats: Arc<Stats>,
    control: watch::Sender<Control>,
    task: Option<JoinHandle<()>>,
    /// Run by another worker of the cluster (distributed mode): this slot only
    /// keeps the task's place and the state it should be in.
    elsewhere: bool,
}

impl TaskRun {
    fn live(&self) -> bool {
        !self.elsewhere && matches!(self.stats.state(), State::Running | State::Paused)
    }

    /// The slot of a task another worker runs.
    fn elsewhere(initial: Control) -> Self {
        Self {
            stats: Arc::new(Stats::new()),
            control: watch::channel(initial).0,
            task: None,
            elsewhere: true,
        }
    }
}

/// A connector task as the cluster hands it out: connector, task index, and the
/// task count it was planned with (a new `tasks.max` makes new tasks).
pub type TaskKey = (String, u32, u32);

pub struct Engine {
    /// Held across plan, persist and start of every statement or connector call
    /// that changes what exists, so concurrent callers (REST clients, the console)
    /// are served one at a time: two `CREATE SINK x` cannot both pass planning.
    mutations: tokio::sync::Mutex<()>,
    catalog: Mutex<Catalog>,
    state: Arc<dyn Store>,
    pipelines: Mutex<BTreeMap<String, Running>>,
    /// Connectors submitted over REST or from connector files, by name.
    connectors: Mutex<BTreeMap<String, connectors::Deployed>>,
    /// What connectors inherit from the worker, and the worker's id in statuses.
    worker: Mutex<(crate::submit::WorkerDefaults, String)>,
    options: EngineOptions,
    order: AtomicU64,
    /// The runtime pipeline tasks run on: the one the engine was opened in. The
    /// server answers its API from a runtime of its own (see `server::run`), and a
    /// task started by a REST call must not land there.
    runtime: Option<tokio::runtime::Handle>,
    /// Distributed mode: the connector tasks the cluster gave this worker, each
    /// with the store it commits through (see `crate::cluster`). `None`: every
    /// task runs here (standalone).
    placement: Mutex<Option<BTreeMap<TaskKey, Arc<dyn Store>>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("state", &self.state)
            .field("options", &self.options)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// Opens the local store in `state_dir`.
    pub fn open(state_dir: &Path, options: EngineOptions) -> Result<Self> {
        let local = LocalStore::open(state_dir)?;
        let order = local
            .state()
            .definitions()?
            .iter()
            .map(|d| d.order + 1)
            .max()
            .unwrap_or(0);
        let connectors = local
            .state()
            .connectors()?
            .iter()
            .map(|c| c.order + 1)
            .max()
            .unwrap_or(0);
        Ok(Self::new(Arc::new(local), options, order.max(connectors)))
    }

    /// An engine over any store (in memory for tests, Kafka topics when distributed).
    pub async fn with_store(store: Arc<dyn Store>, options: EngineOptions) -> Result<Self> {
        let order = store
            .definitions()
            .await?
            .iter()
            .map(|d| d.order + 1)
            .max()
            .unwrap_or(0);
        let connectors = store.connectors().await?.iter().map(|c| c.order + 1).max().unwrap_or(0);
        Ok(Self::new(store, options, order.max(connectors)))
    }

    /// An engine over a store that is not read yet (a distributed worker's Kafka
    /// topics): nothing is restored until [`Engine::take_over`].
    pub fn over_store(store: Arc<dyn Store>, options: EngineOptions) -> Self {
        Self::new(store, options, 0)
    }

    /// Starts what the leader of a distributed cluster runs: the console's
    /// definitions, and every connector as the store holds it (whose tasks run
    /// where the cluster places them). Returns how many connectors there are.
    pub async fn take_over(&self) -> Result<usize> {
        let definitions = self.state.definitions().await?;
        let connectors = self.state.connectors().await?;
        let next = definitions
            .iter()
            .map(|d| d.order + 1)
            .chain(connectors.iter().map(|c| c.order.saturating_add(1)))
            .max()
            .unwrap_or(0);
        self.order.fetch_max(next, Ordering::Relaxed);
        let (_, errors) = self.restore().await?;
        for e in errors {
            tracing::warn!(error = %e, "a console definition could not be restored");
        }
        self.sync_connectors().await?;
        Ok(self.connector_names().len())
    }

    /// Runs connector tasks only where the cluster places them (see
    /// [`Engine::hold_task`]): a distributed worker.
    pub fn place_tasks(&self) {
        lock(&self.placement).get_or_insert_with(BTreeMap::new);
    }

    /// Runs a connector task the cluster gave this worker, committing through
    /// `store`: at once if the connector is deployed here with that task count,
    /// else as soon as it is.
    pub fn hold_task(&self, key: TaskKey, store: Arc<dyn Store>) {
        let (name, index, count) = key.clone();
        lock(&self.placement)
            .get_or_insert_with(BTreeMap::new)
            .insert(key, Arc::clone(&store));
        let initial = match lock(&self.connectors).get(&name).map(|d| d.record.target) {
            Some(crate::store::TargetState::Paused) => Control::Pause,
            Some(crate::store::TargetState::Running) => Control::Run,
            _ => return,
        };
        let mut pipelines = lock(&self.pipelines);
        let Some(r) = pipelines.get_mut(&name) else { return };
        if r.tasks.len() as u32 != count {
            return;
        }
        if let Some(t) = r.tasks.get_mut(index as usize).filter(|t| t.elsewhere) {
            let slot = TaskSlot {
                index,
                count,
                durable: r.durable.clone(),
            };
            *t = self.spawn_task(&r.spec, slot, initial, store);
            info!(connector = %name, task = index, "task assigned to this worker started");
        }
    }

    /// Gives up a connector task the cluster moved elsewhere: `graceful`, it flushes
    /// and commits first; otherwise (the worker lost its membership, another may run
    /// it already) it is aborted without a commit.
    pub async fn release_task(&self, key: &TaskKey, graceful: bool) {
        let (name, index, count) = key;
        if let Some(p) = lock(&self.placement).as_mut() {
            p.remove(key);
        }
        let join = {
            let mut pipelines = lock(&self.pipelines);
            let Some(r) = pipelines.get_mut(name) else { return };
            if r.tasks.len() as u32 != *count {
                return;
            }
            let Some(t) = r.tasks.get_mut(*index as usize).filter(|t| !t.elsewhere) else {
                return;
            };
            let initial = *t.control.borrow();
            let initial = if initial == Control::Stop {
                Control::Run
            } else {
                initial
            };
            t.control.send_replace(Control::Stop);
            let old = std::mem::replace(t, TaskRun::elsewhere(initial));
            old.task
        };
        if let Some(j) = join {
            if graceful {
                let _ = j.await;
            } else {
                j.abort();
            }
        }
        info!(connector = %name, task = index, graceful, "task given up: the cluster moved it to another worker");
    }

    /// Stops the console's pipelines (a distributed worker that no longer leads the
    /// cluster; connectors' tasks are placed one by one), as
    /// [`Engine::stand_down`] does.
    pub async fn drop_definitions(&self, graceful: bool) {
        let _guard = self.mutations.lock().await;
        let names: Vec<String> = {
            let connectors = lock(&self.connectors);
            lock(&self.pipelines)
                .keys()
                .filter(|n| !connectors.contains_key(*n))
                .cloned()
                .collect()
        };
        for name in names {
            if graceful {
                let _ = self.stop(&name).await;
            }
            if let Some(r) = lock(&self.pipelines).remove(&name) {
                for mut t in r.tasks {
                    if let Some(task) = t.task.take() {
                        task.abort();
                    }
                }
            }
        }
        *lock(&self.catalog) = Catalog::new();
    }

    /// Gives up every pipeline and connector (a distributed worker that leaves):
    /// `graceful`, tasks flush and commit first; otherwise (the worker lost its
    /// membership, another may run them already) they are aborted without a commit.
    pub async fn stand_down(&self, graceful: bool) {
        let _guard = self.mutations.lock().await;
        if graceful {
            self.shutdown().await;
        } else {
            for r in lock(&self.pipelines).values_mut() {
                for t in &mut r.tasks {
                    t.control.send_replace(Control::Stop);
                    if let Some(task) = t.task.take() {
                        task.abort();
                    }
                }
            }
        }
        lock(&self.pipelines).clear();
        lock(&self.connectors).clear();
        if let Some(p) = lock(&self.placement).as_mut() {
            p.clear();
        }
        *lock(&self.catalog) = Catalog::new();
    }

    fn new(state: Arc<dyn Store>, options: EngineOptions, order: u64) -> Self {
        Self {
            mutations: tokio::sync::Mutex::new(()),
            catalog: Mutex::new(Catalog::new()),
            state,
            pipelines: Mutex::new(BTreeMap::new()),
            connectors: Mutex::new(BTreeMap::new()),
            worker: Mutex::new(Default::default()),
            options,
            order: AtomicU64::new(order),
            runtime: tokio::runtime::Handle::try_current().ok(),
            placement: Mutex::new(None),
        }
    }

    /// Spawns work on the engine's runtime (see [`Engine::runtime`]).
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(handle) => handle.spawn(future),
            None => tokio::spawn(future),
        }
    }

    /// Runs `work` on the engine's runtime and waits for it: CPU-heavy calls from
    /// the API (previews) then leave the API's own threads free.
    pub async fn on_engine_runtime<F, T>(self: &Arc<Self>, work: impl FnOnce(Arc<Self>) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(work(Arc::clone(self)))
            .await
            .map_err(|e| EngineError::Io(std::io::Error::other(format!("engine call ended abnormally: {e}"))))?
    }

    /// The worker's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.state
    }

    /// Re-creates persisted sources and sinks (sinks start running). Returns how many
    /// definitions were restored and the errors of those that no longer plan.
    pub async fn restore(&self) -> Result<(usize, Vec<String>)> {
        let _guard = self.mutations.lock().await;
        let mut restored = 0;
        let mut errors = Vec::new();
        for def in self.state.definitions().await? {
            let stmt = match quiver_sql::parse_one(&def.sql) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(format!("{} '{}': {e}", def.kind, def.name));
                    continue;
                }
            };
            let plan = lock(&self.catalog).plan(&stmt);
            match plan {
                Ok(plan) => {
                    self.apply(&plan)?;
                    restored += 1;
                }
                Err(e) => errors.push(format!("{} '{}': {e}", def.kind, def.name)),
            }
        }
        Ok((restored, errors))
    }

    /// Plans and carries out one statement.
    pub async fn execute(&self, stmt: &ParsedStatement) -> Result<Output> {
        self.execute_live(stmt, None).await
    }

    /// [`Engine::execute`], with a preview's rows sent to `live` as they arrive
    /// (its [`Output::Rows`] then holds only the notes).
    pub async fn execute_live(&self, stmt: &ParsedStatement, live: Option<&preview::LiveRows>) -> Result<Output> {
        let guard = self.mutations.lock().await;
        let plan = lock(&self.catalog).plan(stmt)?;
        if matches!(
            plan,
            Plan::Show(_) | Plan::Describe(_) | Plan::Explain(_) | Plan::Preview(_)
        ) {
            // Reads and previews change nothing; a preview may wait for 10 s.
            drop(guard);
        }
        match &plan {
            Plan::CreateSource(s) => {
                self.persist(&s.name, "source", &s.sql).await?;
                self.apply(&plan)?;
                Ok(Output::Message(format!(
                    "source '{}' created ({} columns, connector {})",
                    s.name,
                    s.schema.fields().len(),
                    s.connector.name()
                )))
            }
            Plan::CreateSink(p) => {
                self.persist(&p.name, "sink", &p.sql).await?;
                self.apply(&plan)?;
                Ok(Output::Message(format!(
                    "sink '{}' created and running ({} → {})",
                    p.name,
                    p.source.name,
                    p.connector.name()
                )))
            }
            Plan::Drop { kind, name, .. } => {
                if *kind == ObjectKind::Sink {
                    self.stop(name).await.ok();
                    lock(&self.pipelines).remove(name);
                }
                if self.options.persist_definitions {
                    self.state.remove_definition(name).await?;
                }
                let existed = match kind {
                    ObjectKind::Source => lock(&self.catalog).sources.contains_key(name),
                    ObjectKind::Sink => lock(&self.catalog).sinks.contains_key(name),
                };
                lock(&self.catalog).apply(&plan);
                Ok(Output::Message(if existed {
                    format!("{} '{name}' dropped", kind.as_str())
                } else {
                    format!("{} '{name}' did not exist", kind.as_str())
                }))
            }
            Plan::Show(kind) => Ok(Output::Table(self.show(*kind))),
            Plan::Describe(t) | Plan::Explain(t) => Ok(Output::Table(t.clone())),
            Plan::Preview(p) => {
                let (batches, notes) = preview::run(p, Duration::from_secs(10), live).await?;
                Ok(Output::Rows { batches, notes })
            }
        }
    }

    async fn persist(&self, name: &str, kind: &str, sql: &str) -> Result<()> {
        if self.options.persist_definitions {
            let order = self.order.fetch_add(1, Ordering::Relaxed);
            self.state
                .save_definition(&Definition {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    sql: sql.to_string(),
                    order,
                })
                .await?;
        }
        Ok(())
    }

    fn apply(&self, plan: &Plan) -> Result<()> {
        lock(&self.catalog).apply(plan);
        if let Plan::CreateSink(spec) = plan {
            self.start(Arc::clone(spec));
        }
        Ok(())
    }

    /// Starts a console pipeline: every task here, whatever the mode.
    fn start(&self, spec: Arc<PipelineSpec>) {
        self.start_tasks(spec, Control::Run, false)
    }

    /// Starts a connector's tasks, running or paused: as many as its source can keep
    /// busy of the `tasks.max` it asks for (one in a bounded run); in distributed
    /// mode only those the cluster placed here.
    fn start_with(&self, spec: Arc<PipelineSpec>, initial: Control) {
        self.start_tasks(spec, initial, true)
    }

    fn start_tasks(&self, spec: Arc<PipelineSpec>, initial: Control, placed: bool) {
        let count = self.task_count(&spec);
        let durable = SharedOffsets::default();
        let placement = lock(&self.placement).clone().filter(|_| placed);
        let tasks = (0..count)
            .map(|index| {
                let slot = TaskSlot {
                    index,
                    count,
                    durable: durable.clone(),
                };
                let store = match &placement {
                    None => Arc::clone(&self.state),
                    Some(p) => match p.get(&(spec.name.clone(), index, count)) {
                        Some(store) => Arc::clone(store),
                        None => return TaskRun::elsewhere(initial),
                    },
                };
                self.spawn_task(&spec, slot, initial, store)
            })
            .collect();
        if count > 1 {
            info!(pipeline = %spec.name, tasks = count, "pipeline started with parallel tasks");
        }
        lock(&self.pipelines).insert(spec.name.clone(), Running { spec, tasks, durable });
    }

    /// How many tasks a pipeline runs: what its source can split of the `tasks.max`
    /// it asks for, as many as its sink allows writers; one in a bounded run.
    pub(crate) fn task_count(&self, spec: &PipelineSpec) -> u32 {
        if self.options.bounded {
            return 1;
        }
        let wanted = spec.source.connector.source_tasks(&spec.source.config, spec.tasks);
        spec.connector.sink_tasks(&spec.config, wanted)
    }

    /// Spawns one task of a pipeline.
    fn spawn_task(&self, spec: &Arc<PipelineSpec>, slot: TaskSlot, initial: Control, store: Arc<dyn Store>) -> TaskRun {
        let stats = Arc::new(Stats::new());
        let (control, rx) = watch::channel(initial);
        let run = pipeline::run(
            Arc::clone(spec),
            store,
            Arc::clone(&stats),
            rx,
            self.options.bounded,
            slot,
        );
        let supervised = Arc::clone(&stats);
        let task = self.spawn(async move {
            // A bug must not leave a pipeline RUNNING forever: report it as FAILED.
            if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                supervised.fail(failure::TaskFailure::internal(format!(
                    "internal error: the pipeline task panicked: {msg}"
                )));
            }
        });
        TaskRun {
            stats,
            control,
            task: Some(task),
            elsewhere: false,
        }
    }

    /// Stops one task of a pipeline (flush, commit) and starts it again from the
    /// committed offsets, running or paused; its siblings keep running.
    pub(crate) async fn restart_task(&self, name: &str, index: u32, initial: Control) -> Result<()> {
        let (spec, count, durable, join) = {
            let mut p = lock(&self.pipelines);
            let r = p.get_mut(name).ok_or_else(|| EngineError::NotFound(name.to_string()))?;
            let count = r.tasks.len() as u32;
            let t = r
                .tasks
                .get_mut(index as usize)
                .ok_or_else(|| EngineError::TaskNotFound {
                    connector: name.to_string(),
                    task: index,
                })?;
            if t.elsewhere {
                let on = self
                    .state
                    .task_status(name, index)
                    .map(|t| t.worker_id)
                    .unwrap_or_default();
                return Err(EngineError::InvalidState {
                    name: format!("{name} task {index}"),
                    status: format!("run by worker {on}"),
                    message: "restart it on that worker".into(),
                });
            }
            t.control.send_replace(Control::Stop);
            (Arc::clone(&r.spec), count, r.durable.clone(), t.task.take())
        };
        if let Some(j) = join {
            let _ = j.await;
        }
        // In a cluster the task may have been given to another worker while it
        // stopped: then it is not started here again (its slot keeps its place).
        let store = match lock(&self.placement).as_ref() {
            None => Some(Arc::clone(&self.state)),
            Some(p) => p.get(&(name.to_string(), index, count)).cloned(),
        };
        let mut pipelines = lock(&self.pipelines);
        let Some(r) = pipelines.get_mut(name) else {
            // Deleted or stopped meanwhile: nothing to start.
            return Ok(());
        };
        let slot = r.tasks.get_mut(index as usize).filter(|t| !t.elsewhere);
        match (slot, store) {
            (Some(t), Some(store)) => {
                *t = self.spawn_task(&spec, TaskSlot { index, count, durable }, initial, store);
                Ok(())
            }
            _ => Err(EngineError::InvalidState {
                name: format!("{name} task {index}"),
                status: "moved to another worker".into(),
                message: "the cluster gave the task to another worker while it restarted".into(),
            }),
        }
    }

    fn show(&self, kind: ShowKind) -> Table {
        match kind {
            ShowKind::Sources => {
                let catalog = lock(&self.catalog);
                Table {
                    columns: vec!["name".into(), "connector".into(), "columns".into()],
                    rows: catalog
                        .sources
                        .values()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.connector.name().to_string(),
                                s.schema
                                    .fields()
                                    .iter()
                                    .map(|f| f.name().as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            ]
                        })
                        .collect(),
                }
            }
            ShowKind::Sinks => Table {
                columns: [
                    "name",
                    "source",
                    "connector",
                    "status",
                    "rows_in",
                    "rows_out",
                    "rows_errored",
                    "files",
                ]
                .map(String::from)
                .to_vec(),
                rows: self
                    .statuses()
                    .into_iter()
                    .map(|s| {
                        let status = match &s.error {
                            Some(e) => format!("{} ({e})", s.state),
                            None => s.state.to_string(),
                        };
                        vec![
                            s.name,
                            s.source,
                            s.connector,
                            status,
                            s.rows_in.to_string(),
                            s.rows_out.to_string(),
                            s.rows_errored.to_string(),
                            s.sink.files.to_string(),
                        ]
                    })
                    .collect(),
            },
            ShowKind::Connectors => Table {
                columns: vec!["name".into(), "roles".into(), "description".into()],
                rows: quiver_connectors::registry()
                    .iter()
                    .map(|c| {
                        let roles = [c.source_options().map(|_| "source"), c.sink_options().map(|_| "sink")]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(", ");
                        vec![c.name().to_string(), roles, c.description().to_string()]
                    })
                    .collect(),
            },
        }
    }

    fn task_snapshot(id: usize, t: &TaskRun) -> TaskStatus {
        let st = &t.stats;
        TaskStatus {
            id: id as u32,
            state: st.state(),
            error: st.error(),
            failure: st.failure(),
            rows_in: st.rows_in.load(Ordering::Relaxed),
            rows_out: st.rows_out.load(Ordering::Relaxed),
            rows_errored: st.rows_errored.load(Ordering::Relaxed),
            batches: st.batches.load(Ordering::Relaxed),
            dead_lettered: st.dead_lettered.load(Ordering::Relaxed),
            commits: st.commits.load(Ordering::Relaxed),
            commit_failures: st.commit_failures.load(Ordering::Relaxed),
            sink: st.report(),
            partitions: st.partitions(),
            lag: st.lag(),
        }
    }

    /// A pipeline's status: its tasks' counters summed; FAILED if any task failed,
    /// else RUNNING if any runs, else PAUSED, STOPPED or FINISHED.
    fn snapshot(name: &str, r: &Running) -> PipelineStatus {
        let tasks: Vec<TaskStatus> = r
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.elsewhere)
            .map(|(i, t)| Self::task_snapshot(i, t))
            .collect();
        let state = [State::Failed, State::Running, State::Paused, State::Stopped]
            .into_iter()
            .find(|s| tasks.iter().any(|t| t.state == *s))
            .unwrap_or(match r.tasks.first() {
                // Every task runs on other workers: the state they were told to be in.
                Some(t) if tasks.is_empty() && *t.control.borrow() == Control::Pause => State::Paused,
                Some(_) if tasks.is_empty() => State::Running,
                _ => State::Finished,
            });
        let failed = tasks.iter().find(|t| t.state == State::Failed);
        let error = failed.and_then(|t| t.error.as_ref()).map(|e| {
            if tasks.len() > 1 {
                format!("task {}: {e}", failed.map_or(0, |t| t.id))
            } else {
                e.clone()
            }
        });
        let sum = |f: fn(&TaskStatus) -> u64| tasks.iter().map(f).sum::<u64>();
        let mut sink = SinkReport::default();
        for t in &tasks {
            sink.rows += t.sink.rows;
            sink.bytes += t.sink.bytes;
            sink.files += t.sink.files;
            if sink.location.is_empty() {
                sink.location = t.sink.location.clone();
            }
            sink.recent.extend(t.sink.recent.iter().cloned());
        }
        let mut progress = Progress::default();
        let mut resumed_from: Option<Offsets> = None;
        let mut reread = 0;
        let mut elapsed = std::time::Duration::ZERO;
        for t in r.tasks.iter().filter(|t| !t.elsewhere) {
            let p: Progress = t.stats.progress();
            progress.done += p.done;
            progress.total = match (progress.total, p.total) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            if let Some(o) = t.stats.resumed_from() {
                resumed_from.get_or_insert_with(Offsets::default).merge(&o);
            }
            reread += t.stats.reread();
            elapsed = elapsed.max(t.stats.elapsed());
        }
        PipelineStatus {
            name: name.to_string(),
            source: r.spec.source.name.clone(),
            source_connector: r.spec.source.connector.name().to_string(),
            connector: r.spec.connector.name().to_string(),
            state,
            error,
            rows_in: sum(|t| t.rows_in),
            rows_out: sum(|t| t.rows_out),
            rows_errored: sum(|t| t.rows_errored),
            batches: sum(|t| t.batches),
            dead_lettered: sum(|t| t.dead_lettered),
            commits: sum(|t| t.commits),
            commit_failures: sum(|t| t.commit_failures),
            failure: failed.and_then(|t| t.failure.clone()),
            sink,
            progress_done: progress.done,
            progress_total: progress.total,
            elapsed_ms: elapsed.as_millis() as u64,
            resumed_from,
            reread,
            dead_letter_path: r.spec.errors.dlq_path.clone(),
            dead_letter_topic: r.spec.errors.dlq_topic.as_ref().map(|t| t.topic.clone()),
            tasks,
        }
    }

    pub fn status(&self, name: &str) -> Result<PipelineStatus> {
        let p = lock(&self.pipelines);
        let r = p.get(name).ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        Ok(Self::snapshot(name, r))
    }

    pub fn statuses(&self) -> Vec<PipelineStatus> {
        lock(&self.pipelines)
            .iter()
            .map(|(n, r)| Self::snapshot(n, r))
            .collect()
    }

    /// Sends a control to every live task of a pipeline (a failed or finished task
    /// is left as it is: restart it instead).
    fn control(&self, name: &str, c: Control) -> Result<()> {
        let p = lock(&self.pipelines);
        let r = p.get(name).ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        if c == Control::Stop {
            for t in &r.tasks {
                t.control.send_replace(c);
            }
            return Ok(());
        }
        for t in r.tasks.iter().filter(|t| t.elsewhere) {
            t.control.send_replace(c);
        }
        if !r.tasks.iter().any(|t| t.live() || t.elsewhere) {
            return Err(EngineError::InvalidState {
                name: name.into(),
                status: Self::snapshot(name, r).state.to_string(),
                message: "restart it instead".into(),
            });
        }
        for t in r.tasks.iter().filter(|t| t.live()) {
            t.control.send_replace(c);
        }
        Ok(())
    }

    pub fn pause(&self, name: &str) -> Result<()> {
        self.control(name, Control::Pause)
    }

    pub fn resume(&self, name: &str) -> Result<()> {
        self.control(name, Control::Run)
    }

    /// Stops a pipeline gracefully (flush, commit) and waits for it.
    pub async fn stop(&self, name: &str) -> Result<PipelineStatus> {
        self.control(name, Control::Stop)?;
        let joins: Vec<JoinHandle<()>> = lock(&self.pipelines)
            .get_mut(name)
            .map(|r| r.tasks.iter_mut().filter_map(|t| t.task.take()).collect())
            .unwrap_or_default();
        futures::future::join_all(joins).await;
        self.status(name)
    }

    /// Stops (if running) and starts a pipeline again from its committed offsets.
    pub async fn restart(&self, name: &str) -> Result<PipelineStatus> {
        let spec = lock(&self.pipelines)
            .get(name)
            .map(|r| Arc::clone(&r.spec))
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let _ = self.stop(name).await;
        self.start(spec);
        self.status(name)
    }

    /// The committed offsets of a pipeline.
    pub async fn offsets(&self, name: &str) -> Result<Option<Offsets>> {
        self.state.offsets(name).await
    }

    /// Forgets every offset of a pipeline wherever it lives — the worker's store and
    /// what the source keeps upstream (a Kafka consumer group) — so its next start
    /// reads from the beginning. Offsets have one owner: this is the only reset.
    pub async fn reset_pipeline_offsets(&self, spec: &PipelineSpec) -> Result<()> {
        self.state.reset_offsets(&spec.name).await?;
        self.reset_upstream(spec).await?;
        self.align_sink_offsets(spec, None).await
    }

    /// Makes the positions a sink keeps with its data (exactly-once databases) say
    /// what the store says, so an offsets reset or alter is honoured at start.
    pub(crate) async fn align_sink_offsets(&self, spec: &PipelineSpec, to: Option<&Offsets>) -> Result<()> {
        spec.connector
            .reset_sink_offsets(&spec.config, &spec.name, to)
            .await
            .map_err(|e| {
                EngineError::BadRequest(format!(
                    "resetting the positions sink '{}' keeps with its data: {e}",
                    spec.name
                ))
            })
    }

    /// Forgets the offsets a pipeline's source keeps outside the store.
    pub(crate) async fn reset_upstream(&self, spec: &PipelineSpec) -> Result<()> {
        spec.source
            .connector
            .reset_source_offsets(&spec.source.config, &spec.name)
            .await
            .map_err(|e| {
                EngineError::BadRequest(format!("resetting the offsets of source '{}': {e}", spec.source.name))
            })
    }

    /// Forgets a pipeline's committed offsets in the store; it must not be running.
    pub async fn reset_offsets(&self, name: &str) -> Result<()> {
        if let Ok(s) = self.status(name)
            && matches!(s.state, State::Running | State::Paused)
        {
            return Err(EngineError::InvalidState {
                name: name.into(),
                status: s.state.to_string(),
                message: "stop it before resetting offsets".into(),
            });
        }
        // Through the one reset that reaches every place offsets live, when the
        // pipeline is known; a name with only stored offsets has nothing else.
        let spec = lock(&self.pipelines)
            .get(name)
            .map(|r| Arc::clone(&r.spec))
            .or_else(|| lock(&self.catalog).sinks.get(name).cloned());
        match spec {
            Some(spec) => self.reset_pipeline_offsets(&spec).await,
            None => self.state.reset_offsets(name).await,
        }
    }

    /// Waits until every pipeline has ended (bounded runs), or until `stop` is signalled.
    pub async fn wait_all(&self, mut stop: watch::Receiver<bool>) -> Vec<PipelineStatus> {
        loop {
            let tasks: Vec<(String, JoinHandle<()>)> = lock(&self.pipelines)
                .iter_mut()
                .flat_map(|(n, r)| r.tasks.iter_mut().filter_map(|t| t.task.take().map(|t| (n.clone(), t))))
                .collect();
            if tasks.is_empty() {
                break;
            }
            let names: Vec<String> = tasks.iter().map(|(n, _)| n.clone()).collect();
            let all = futures::future::join_all(tasks.into_iter().map(|(_, t)| t));
            tokio::pin!(all);
            tokio::select! {
                _ = &mut all => {}
                _ = stop.changed() => {
                    for n in &names {
                        if let Some(r) = lock(&self.pipelines).get(n) {
                            for t in &r.tasks {
                                t.control.send_replace(Control::Stop);
                            }
                        }
                    }
                    all.await;
                }
            }
        }
        self.statuses()
    }

    /// Stops every pipeline gracefully.
    pub async fn shutdown(&self) {
        let names: Vec<String> = lock(&self.pipelines).keys().cloned().collect();
        for n in names {
            let _ = self.stop(&n).await;
        }
    }
}
