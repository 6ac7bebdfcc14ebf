//! Connectors: what a Kafka Connect client submits, with a target state, run by
//! the worker. The REST API (`server/`) and `quiver server`'s connector files call
//! these methods; each one that changes something holds the engine's mutation lock
//! from planning through persisting to starting, so concurrent clients are served
//! one at a time.
//!
//! A connector's config is stored exactly as submitted (placeholders and all) with
//! its target state; on start the worker re-plans every stored config and brings it
//! back in its target state.
//!
//! Tasks: a connector's `tasks.max` becomes its pipeline's task count, capped by
//! what the source can split (Kafka Connect's `taskConfigs(maxTasks)`: every task
//! of a Kafka-reading connector joins its consumer group, a folder's files are
//! spread by path, one table or one generator is one task). Each task is a whole
//! pipeline instance — reader, transform, sink writer — with its own state,
//! offsets (it commits only the partitions it moved), automatic restarts and
//! `POST …/tasks/{id}/restart`; one task failing leaves its siblings running.
//!
//! Status follows Kafka Connect: the connector's own state is its target state
//! once planned (FAILED when its config no longer plans), and each task has its
//! own state, plus (Quiver's own) the source partitions it reads. A STOPPED
//! connector has no tasks (KIP-875). A task whose bounded source ended reports
//! STOPPED.
//!
//! Columns that grow: when the worker found a connector's columns in its records'
//! Connect schemas (JsonConverter with `schemas.enable`), its Kafka source watches
//! those schemas (`json.schemas.evolve`) and stops, before emitting the record,
//! on a field that is no column. The supervisor then adds the field as a nullable
//! column to the columns it stored, plans the connector again and starts it from
//! its last commit, so that record and everything after it are read with the new
//! column (a JDBC sink with `auto.evolve` alters its table on start). A JDBC
//! source whose columns came from the catalog checks its table before each poll
//! (`schema.evolve`); the supervisor then reads the catalog again rather than
//! adding the one field. A plan that fails with the new columns leaves the task
//! FAILED with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use quiver_connectors::api::Offsets;
use tracing::{info, warn};

use super::task::{Control, State};
use super::{Engine, lock};
use crate::discover::Found;
use crate::error::{EngineError, Result};
use crate::store::{ConnectorRecord, FoundColumns, OffsetChanges, TargetState};
use crate::submit::{self, ConnectorType, Submission, WorkerDefaults};

/// A connector known to the worker.
#[derive(Debug, Clone)]
pub(crate) struct Deployed {
    pub(crate) record: ConnectorRecord,
    /// The plan, or why the stored config no longer plans (restored connectors).
    pub(crate) plan: std::result::Result<Arc<Submission>, String>,
    /// Automatic restarts of its failed tasks so far, and the next ones, by task.
    pub(crate) restarts: BTreeMap<u32, Restarts>,
    /// Waiting to learn its columns (an empty topic): why, and when to look again.
    pub(crate) waiting: Option<(String, std::time::Instant)>,
}

/// How often a connector waiting to learn its columns looks again.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// What planning a config gives when its columns may have to be found.
enum Planned {
    /// Ready to run, with the columns found for it (if any were needed).
    Ready(Arc<Submission>, Option<FoundColumns>),
    /// Nothing to learn its columns from yet: why.
    Waiting(String),
}

/// Where a connector's automatic restarts stand. A user's restart, resume or new
/// config starts the count again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Restarts {
    pub(crate) count: u32,
    /// When the next restart is due, once a failure was seen.
    pub(crate) next: Option<(std::time::Instant, chrono::DateTime<chrono::Utc>)>,
    /// When the last automatic restart happened.
    pub(crate) last: Option<std::time::Instant>,
}

/// `GET /connectors/{name}`: the config as submitted, the type and the task ids.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub kind: ConnectorType,
    pub tasks: Vec<u32>,
    pub target: TargetState,
}

/// One state in a status: Kafka Connect's state name, the worker and a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInfo {
    pub state: &'static str,
    pub worker_id: String,
    pub trace: Option<String>,
    /// Automatic restarts so far (tasks only).
    pub restarts: u32,
    /// When the next automatic restart is due (RFC 3339), while one is scheduled.
    pub next_restart: Option<String>,
    /// The source partitions the task reads (tasks only; Kafka partitions, files).
    pub partitions: Vec<String>,
}

/// `GET /connectors/{name}/status`.
#[derive(Debug, Clone)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: StateInfo,
    pub tasks: Vec<(u32, StateInfo)>,
    pub kind: ConnectorType,
}

/// Which tasks `POST …/restart` restarts (KIP-745).
#[derive(Debug, Clone, Copy, Default)]
pub struct RestartRequest {
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// Kafka Connect's name of a task state.
pub fn task_state(state: State) -> &'static str {
    match state {
        State::Running => "RUNNING",
        State::Paused => "PAUSED",
        State::Failed => "FAILED",
        State::Stopped | State::Finished => "STOPPED",
    }
}

impl Engine {
    /// Sets what every connector inherits from the worker (its properties) and the
    /// `worker_id` that statuses report.
    pub fn configure_worker(&self, defaults: WorkerDefaults, worker_id: String) {
        *lock(&self.worker) = (defaults, worker_id);
    }

    fn worker_id(&self) -> String {
        lock(&self.worker).1.clone()
    }

    /// Plans a config against the worker's defaults without running anything
    /// (`known`: columns found for it before).
    pub fn plan_connector(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
        known: Option<&FoundColumns>,
    ) -> Result<Submission> {
        let defaults = lock(&self.worker).0.clone();
        submit::connector_with(name, config, &defaults, known.map(|k| k.ddl.as_str()))
            .map_err(EngineError::InvalidConfig)
    }

    /// Checks a config as `PUT …/validate` does: what creating it would refuse. A
    /// config whose columns can only be learnt once records arrive is valid.
    pub async fn check_connector(&self, name: &str, config: &BTreeMap<String, String>) -> Result<()> {
        self.plan_finding_columns(name, config, None, true).await.map(|_| ())
    }

    /// Plans a config, finding its columns where Kafka Connect would when it
    /// declares none ([`crate::discover`]). `known` columns are used as they are,
    /// unless they come from a catalog and `look_again` asks to read it again; if
    /// that fails (the database is down) the known ones still serve.
    async fn plan_finding_columns(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
        known: Option<&FoundColumns>,
        look_again: bool,
    ) -> Result<Planned> {
        if let Some(k) = known.filter(|k| !(k.refresh && look_again)) {
            let plan = self.plan_connector(name, config, Some(k))?;
            return Ok(Planned::Ready(Arc::new(plan), Some(k.clone())));
        }
        let invalid = match self.plan_connector(name, config, None) {
            Ok(plan) => return Ok(Planned::Ready(Arc::new(plan), None)),
            Err(EngineError::InvalidConfig(invalid)) => invalid,
            Err(e) => return Err(e),
        };
        let defaults = lock(&self.worker).0.clone();
        match crate::discover::columns(name, config, &defaults).await {
            Ok(None) => Err(EngineError::InvalidConfig(invalid)),
            Ok(Some(Found::Waiting(why))) => Ok(Planned::Waiting(why)),
            Ok(Some(Found::Columns { ddl, from, refresh })) => {
                info!(connector = %name, columns = %ddl, from = %from, "found the connector's columns");
                let found = FoundColumns { ddl, from, refresh };
                let plan = self.plan_connector(name, config, Some(&found))?;
                Ok(Planned::Ready(Arc::new(plan), Some(found)))
            }
            Err(e) => match known {
                Some(k) => {
                    warn!(connector = %name, error = %e, "could not read the columns again; using those found before");
                    let plan = self.plan_connector(name, config, Some(k))?;
                    Ok(Planned::Ready(Arc::new(plan), Some(k.clone())))
                }
                None => Err(EngineError::InvalidConfig(e)),
            },
        }
    }

    /// Creates a connector (`create_only`: POST, refused when the name exists) or
    /// creates or replaces it (PUT …/config). Returns whether it was created.
    pub async fn put_connector(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        create_only: bool,
        initial: Option<TargetState>,
    ) -> Result<(bool, ConnectorInfo)> {
        let _guard = self.mutations.lock().await;
        let existing = lock(&self.connectors).get(name).map(|d| d.record.clone());
        if existing.is_some() && create_only {
            return Err(EngineError::AlreadyExists(format!("Connector {name} already exists")));
        }
        if existing.is_none() && lock(&self.pipelines).contains_key(name) {
            return Err(EngineError::AlreadyExists(format!(
                "a sink named '{name}' already runs in this worker (created from SQL); pick another connector name"
            )));
        }
        let planned = self.plan_finding_columns(name, &config, None, true).await?;
        let mut record = ConnectorRecord {
            name: name.to_string(),
            config,
            target: existing.as_ref().map_or(initial.unwrap_or_default(), |e| e.target),
            order: existing
                .as_ref()
                .map_or_else(|| self.order.fetch_add(1, Ordering::Relaxed), |e| e.order),
            columns: None,
        };
        if existing.is_some() {
            self.stop_task(name).await;
        }
        let (plan, waiting) = match planned {
            Planned::Ready(plan, columns) => {
                record.columns = columns;
                (Ok(plan), None)
            }
            Planned::Waiting(why) => (Err(why.clone()), Some(why)),
        };
        self.state.put_connector(&record).await?;
        info!(connector = %name, target = %record.target, created = existing.is_none(), waiting = waiting.is_some(), "connector configured");
        self.deploy(record, plan, waiting);
        Ok((existing.is_none(), self.connector_info(name)?))
    }

    /// Applies a KIP-477 patch: a `None` value removes the key.
    pub async fn patch_connector(&self, name: &str, patch: BTreeMap<String, Option<String>>) -> Result<ConnectorInfo> {
        let mut config = self.connector_info(name)?.config;
        for (k, v) in patch {
            match v {
                Some(v) => config.insert(k, v),
                None => config.remove(&k),
            };
        }
        self.put_connector(name, config, false, None)
            .await
            .map(|(_, info)| info)
    }

    /// Starts what a record's target state asks for, and remembers the connector
    /// (`waiting`: it waits to learn its columns, and `plan` says why).
    fn deploy(
        &self,
        record: ConnectorRecord,
        plan: std::result::Result<Arc<Submission>, String>,
        waiting: Option<String>,
    ) {
        if let Some(why) = &waiting {
            info!(connector = %record.name, reason = %why, "connector waits to learn its columns");
        }
        if let Ok(p) = &plan {
            match record.target {
                TargetState::Running => self.start_with(Arc::clone(&p.spec), Control::Run),
                TargetState::Paused => self.start_with(Arc::clone(&p.spec), Control::Pause),
                TargetState::Stopped => {}
            }
        }
        lock(&self.connectors).insert(
            record.name.clone(),
            Deployed {
                record,
                plan,
                restarts: BTreeMap::new(),
                waiting: waiting.map(|w| (w, std::time::Instant::now() + LOOK_AGAIN)),
            },
        );
    }

    /// Stops a connector's task gracefully (flush, commit) and forgets it.
    async fn stop_task(&self, name: &str) {
        if lock(&self.pipelines).contains_key(name) {
            let _ = self.stop(name).await;
            lock(&self.pipelines).remove(name);
        }
    }

    /// Brings back every stored connector in its target state (at server start).
    /// A config that no longer plans stays listed, FAILED with the reason.
    pub async fn restore_connectors(&self) -> Result<usize> {
        let _guard = self.mutations.lock().await;
        let records = self.state.connectors().await?;
        let n = records.len();
        for mut record in records {
            let planned = self
                .plan_finding_columns(&record.name, &record.config, record.columns.as_ref(), true)
                .await;
            let (plan, waiting) = match planned {
                Ok(Planned::Ready(plan, columns)) => {
                    if columns != record.columns {
                        record.columns = columns;
                        self.state.put_connector(&record).await?;
                    }
                    (Ok(plan), None)
                }
                Ok(Planned::Waiting(why)) => (Err(why.clone()), Some(why)),
                Err(e) => {
                    warn!(connector = %record.name, error = %e, "stored connector config no longer plans");
                    (Err(e.to_string()), None)
                }
            };
            self.deploy(record, plan, waiting);
        }
        Ok(n)
    }

    /// Makes this worker's connectors what the store says (a distributed worker
    /// following the config topic, which any worker's REST calls change): new ones
    /// are planned and deployed, changed configs replanned, target states applied
    /// to the tasks here, deleted ones stopped. Returns the connectors deployed or
    /// changed.
    pub async fn sync_connectors(&self) -> Result<usize> {
        let _guard = self.mutations.lock().await;
        let records = self.state.connectors().await?;
        let mut changed = 0;
        let gone: Vec<String> = {
            let connectors = lock(&self.connectors);
            connectors
                .keys()
                .filter(|n| !records.iter().any(|r| &r.name == *n))
                .cloned()
                .collect()
        };
        for name in gone {
            self.stop_task(&name).await;
            lock(&self.connectors).remove(&name);
            info!(connector = %name, "connector deleted on another worker");
            changed += 1;
        }
        for record in records {
            let known = lock(&self.connectors).get(&record.name).cloned();
            match known {
                Some(d) if d.record == record => continue,
                Some(d) if d.record.config == record.config && d.record.columns == record.columns => {
                    if d.record.target != record.target {
                        info!(connector = %record.name, target = %record.target, "connector target state changed on another worker");
                        self.reset_restarts(&record.name, None);
                        let mut d = d;
                        d.record = record.clone();
                        self.apply_target(&d, record.target).await?;
                    }
                    if let Some(c) = lock(&self.connectors).get_mut(&record.name) {
                        c.record = record;
                    }
                }
                known => {
                    if known.is_some() {
                        self.stop_task(&record.name).await;
                    }
                    let planned = self
                        .plan_finding_columns(&record.name, &record.config, record.columns.as_ref(), false)
                        .await;
                    let (plan, waiting) = match planned {
                        Ok(Planned::Ready(plan, _)) => (Ok(plan), None),
                        Ok(Planned::Waiting(why)) => (Err(why.clone()), Some(why)),
                        Err(e) => {
                            warn!(connector = %record.name, error = %e, "stored connector config does not plan");
                            (Err(e.to_string()), None)
                        }
                    };
                    info!(connector = %record.name, target = %record.target, "connector configured (from the cluster's config topic)");
                    self.deploy(record, plan, waiting);
                }
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// The connectors whose tasks run somewhere now, with their task counts: what
    /// a distributed worker asks the cluster to place.
    pub fn placed_connectors(&self) -> Vec<(String, u32)> {
        lock(&self.connectors)
            .values()
            .filter(|d| d.record.target != TargetState::Stopped)
            .filter_map(|d| {
                let plan = d.plan.as_ref().ok()?;
                Some((d.record.name.clone(), self.task_count(&plan.spec)))
            })
            .collect()
    }

    /// Looks again for the columns of connectors waiting for them; one that finds
    /// them starts in its target state.
    async fn look_again(&self) {
        let now = std::time::Instant::now();
        let due: Vec<String> = lock(&self.connectors)
            .values()
            .filter(|d| d.record.target != TargetState::Stopped && d.waiting.as_ref().is_some_and(|(_, at)| now >= *at))
            .map(|d| d.record.name.clone())
            .collect();
        for name in due {
            let _guard = self.mutations.lock().await;
            let Ok(mut d) = self.deployed(&name) else { continue };
            if d.waiting.is_none() {
                continue;
            }
            let (plan, waiting) = match self.plan_finding_columns(&name, &d.record.config, None, true).await {
                Ok(Planned::Ready(plan, columns)) => {
                    d.record.columns = columns;
                    if let Err(e) = self.state.put_connector(&d.record).await {
                        warn!(connector = %name, error = %e, "could not store the columns found");
                        continue;
                    }
                    (Ok(plan), None)
                }
                Ok(Planned::Waiting(why)) => {
                    if let Some(c) = lock(&self.connectors).get_mut(&name) {
                        c.waiting = Some((why, std::time::Instant::now() + LOOK_AGAIN));
                    }
                    continue;
                }
                Err(e) => (Err(e.to_string()), None),
            };
            self.deploy(d.record, plan, waiting);
        }
    }

    /// Deletes a connector: its task stops (flush, commit); its offsets stay, so a
    /// connector created again under the name resumes, as in Kafka Connect.
    pub async fn delete_connector(&self, name: &str) -> Result<()> {
        let _guard = self.mutations.lock().await;
        self.deployed(name)?;
        self.stop_task(name).await;
        self.state.remove_connector(name).await?;
        lock(&self.connectors).remove(name);
        info!(connector = %name, "connector deleted");
        Ok(())
    }

    /// Every connector's name, in creation order.
    pub fn connector_names(&self) -> Vec<String> {
        let connectors = lock(&self.connectors);
        let mut all: Vec<(&u64, &String)> = connectors.values().map(|d| (&d.record.order, &d.record.name)).collect();
        all.sort();
        all.into_iter().map(|(_, n)| n.clone()).collect()
    }

    fn deployed(&self, name: &str) -> Result<Deployed> {
        lock(&self.connectors)
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::ConnectorNotFound(name.to_string()))
    }

    /// The plan of a connector, or why it has none.
    pub fn connector_plan(&self, name: &str) -> Result<std::result::Result<Arc<Submission>, String>> {
        Ok(self.deployed(name)?.plan)
    }

    pub fn connector_info(&self, name: &str) -> Result<ConnectorInfo> {
        let d = self.deployed(name)?;
        let tasks = match &d.plan {
            _ if d.record.target == TargetState::Stopped => Vec::new(),
            Err(_) if d.waiting.is_some() => vec![0],
            Ok(plan) => match lock(&self.pipelines).get(name) {
                Some(r) => (0..r.tasks.len() as u32).collect(),
                None => (0..self.task_count(&plan.spec)).collect(),
            },
            Err(_) => Vec::new(),
        };
        Ok(ConnectorInfo {
            name: d.record.name.clone(),
            kind: d.plan.as_ref().map_or(ConnectorType::Unknown, |p| p.kind),
            config: d.record.config,
            tasks,
            target: d.record.target,
        })
    }

    pub fn connector_status(&self, name: &str) -> Result<ConnectorStatus> {
        let d = self.deployed(name)?;
        let worker_id = self.worker_id();
        let (state, trace) = match &d.plan {
            Err(e) if d.waiting.is_none() => ("FAILED", Some(e.clone())),
            Err(_) => (
                if d.record.target == TargetState::Paused {
                    "PAUSED"
                } else {
                    "RUNNING"
                },
                None,
            ),
            Ok(_) => (
                match d.record.target {
                    TargetState::Running => "RUNNING",
                    TargetState::Paused => "PAUSED",
                    TargetState::Stopped => "STOPPED",
                },
                None,
            ),
        };
        let waiting = d.waiting.as_ref().filter(|_| d.record.target != TargetState::Stopped);
        let tasks = match self.status(name) {
            // Kafka Connect's state for a task that has no worker running it yet.
            _ if let Some((why, _)) = waiting => vec![(
                0,
                StateInfo {
                    state: "UNASSIGNED",
                    worker_id: worker_id.clone(),
                    trace: Some(why.clone()),
                    restarts: 0,
                    next_restart: None,
                    partitions: Vec::new(),
                },
            )],
            Ok(s) if d.record.target != TargetState::Stopped => s
                .tasks
                .into_iter()
                .map(|t| {
                    let restarts = d.restarts.get(&t.id).cloned().unwrap_or_default();
                    let failed = t.state == State::Failed;
                    (
                        t.id,
                        StateInfo {
                            state: task_state(t.state),
                            worker_id: worker_id.clone(),
                            trace: t.error.filter(|_| failed),
                            restarts: restarts.count,
                            next_restart: restarts
                                .next
                                .filter(|_| failed)
                                .map(|(_, at)| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                            partitions: t.partitions,
                        },
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let tasks = if d.record.target == TargetState::Stopped {
            tasks
        } else {
            self.with_tasks_elsewhere(name, tasks, &worker_id)
        };
        Ok(ConnectorStatus {
            name: name.to_string(),
            connector: StateInfo {
                state,
                worker_id,
                trace,
                restarts: 0,
                next_restart: None,
                partitions: Vec::new(),
            },
            tasks,
            kind: d.plan.as_ref().map_or(ConnectorType::Unknown, |p| p.kind),
        })
    }

    /// Adds the tasks other workers run (distributed mode) to this worker's, from
    /// the statuses those workers publish; one no worker reports yet is UNASSIGNED.
    fn with_tasks_elsewhere(
        &self,
        name: &str,
        mut tasks: Vec<(u32, StateInfo)>,
        worker_id: &str,
    ) -> Vec<(u32, StateInfo)> {
        let elsewhere: Vec<u32> = lock(&self.pipelines).get(name).map_or_else(Vec::new, |r| {
            r.tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.elsewhere)
                .map(|(i, _)| i as u32)
                .collect()
        });
        for id in elsewhere {
            let known = self.state.task_status(name, id);
            let state = match known.as_ref().map(|k| k.state.as_str()) {
                Some("RUNNING") => "RUNNING",
                Some("PAUSED") => "PAUSED",
                Some("FAILED") => "FAILED",
                Some("RESTARTING") => "RESTARTING",
                Some("STOPPED") => "STOPPED",
                _ => "UNASSIGNED",
            };
            tasks.push((
                id,
                StateInfo {
                    state,
                    worker_id: known
                        .as_ref()
                        .map_or_else(|| worker_id.to_string(), |k| k.worker_id.clone()),
                    trace: known.and_then(|k| k.trace),
                    restarts: 0,
                    next_restart: None,
                    partitions: Vec::new(),
                },
            ));
        }
        tasks.sort_by_key(|(id, _)| *id);
        tasks
    }

    /// The worker that runs a task, when another worker of the cluster runs it
    /// (and its status names it), with the task's state there.
    pub fn task_elsewhere(&self, name: &str, task: u32) -> Option<crate::store::TaskElsewhere> {
        let elsewhere = lock(&self.pipelines)
            .get(name)
            .and_then(|r| r.tasks.get(task as usize).map(|t| t.elsewhere))?;
        if !elsewhere {
            return None;
        }
        self.state.task_status(name, task).filter(|t| !t.worker_id.is_empty())
    }

    /// The status of one task.
    pub fn task_status(&self, name: &str, task: u32) -> Result<StateInfo> {
        self.connector_status(name)?
            .tasks
            .into_iter()
            .find(|(id, _)| *id == task)
            .map(|(_, s)| s)
            .ok_or_else(|| EngineError::TaskNotFound {
                connector: name.to_string(),
                task,
            })
    }

    /// Starts the automatic-restart counts of a connector's tasks again (a user
    /// acted on it), or of one task.
    fn reset_restarts(&self, name: &str, task: Option<u32>) {
        if let Some(c) = lock(&self.connectors).get_mut(name) {
            match task {
                Some(t) => {
                    c.restarts.remove(&t);
                }
                None => c.restarts.clear(),
            }
        }
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<Deployed> {
        self.reset_restarts(name, None);
        let mut d = self.deployed(name)?;
        if d.record.target != target {
            d.record.target = target;
            self.state.put_connector(&d.record).await?;
            if let Some(c) = lock(&self.connectors).get_mut(name) {
                c.record.target = target;
            }
        }
        Ok(d)
    }

    /// PUT …/pause: the task stops reading but keeps its place. A stopped
    /// connector's task starts paused.
    pub async fn pause_connector(&self, name: &str) -> Result<()> {
        self.move_to(name, TargetState::Paused).await
    }

    /// PUT …/resume.
    pub async fn resume_connector(&self, name: &str) -> Result<()> {
        self.move_to(name, TargetState::Running).await
    }

    /// PUT …/stop (KIP-875): the task flushes, commits and shuts down; the config stays.
    pub async fn stop_connector(&self, name: &str) -> Result<()> {
        self.move_to(name, TargetState::Stopped).await
    }

    async fn move_to(&self, name: &str, target: TargetState) -> Result<()> {
        let _guard = self.mutations.lock().await;
        let d = self.set_target(name, target).await?;
        info!(connector = %name, target = %target, "connector target state changed");
        self.apply_target(&d, target).await
    }

    /// Brings a connector's tasks here into `target`.
    async fn apply_target(&self, d: &Deployed, target: TargetState) -> Result<()> {
        let name = d.record.name.as_str();
        let Ok(plan) = &d.plan else { return Ok(()) };
        let live = self
            .status(name)
            .ok()
            .filter(|s| matches!(s.state, State::Running | State::Paused));
        match (target, live) {
            (TargetState::Stopped, _) => self.stop_task(name).await,
            (TargetState::Paused, Some(_)) => self.control(name, Control::Pause)?,
            (TargetState::Running, Some(_)) => self.control(name, Control::Run)?,
            (TargetState::Paused | TargetState::Running, None) => {
                // Nothing runs (stopped, finished or failed): start it in that state.
                self.stop_task(name).await;
                let initial = if target == TargetState::Paused {
                    Control::Pause
                } else {
                    Control::Run
                };
                self.start_with(Arc::clone(&plan.spec), initial);
            }
        }
        Ok(())
    }

    /// POST …/restart (KIP-745). The connector itself is planned again from its
    /// stored config (so a changed environment or secret takes effect); with
    /// `include_tasks` its tasks restart too, or only the failed ones.
    pub async fn restart_connector(&self, name: &str, request: RestartRequest) -> Result<ConnectorStatus> {
        let _guard = self.mutations.lock().await;
        let d = self.deployed(name)?;
        let plan = match self
            .plan_finding_columns(name, &d.record.config, d.record.columns.as_ref(), true)
            .await
        {
            Ok(Planned::Ready(plan, columns)) => {
                if columns != d.record.columns {
                    let mut record = d.record.clone();
                    record.columns = columns;
                    self.state.put_connector(&record).await?;
                    if let Some(c) = lock(&self.connectors).get_mut(name) {
                        c.record = record;
                    }
                }
                Ok(plan)
            }
            // Still waiting for its columns: the supervisor keeps looking.
            Ok(Planned::Waiting(_)) => return self.connector_status(name),
            Err(e) => Err(e.to_string()),
        };
        let failed: Vec<u32> = self
            .status(name)
            .map(|s| {
                s.tasks
                    .iter()
                    .filter(|t| t.state == State::Failed)
                    .map(|t| t.id)
                    .collect()
            })
            .unwrap_or_default();
        self.reset_restarts(name, None);
        let replanned = plan.is_ok() && d.plan.is_err();
        if let Some(c) = lock(&self.connectors).get_mut(name) {
            c.plan = plan.clone();
            c.waiting = None;
        }
        let initial = if d.record.target == TargetState::Paused {
            Control::Pause
        } else {
            Control::Run
        };
        if let Ok(p) = plan
            && d.record.target != TargetState::Stopped
        {
            if replanned || (request.include_tasks && !request.only_failed) {
                info!(connector = %name, "restarting the connector's tasks");
                self.stop_task(name).await;
                self.start_with(Arc::clone(&p.spec), initial);
            } else if request.include_tasks {
                for task in failed {
                    info!(connector = %name, task, "restarting a failed task");
                    self.restart_task(name, task, initial).await?;
                }
            }
        }
        self.connector_status(name)
    }

    /// POST …/tasks/{id}/restart: the task stops (flush, commit) and starts again
    /// from its committed offsets; its siblings keep running.
    pub async fn restart_connector_task(&self, name: &str, task: u32) -> Result<()> {
        let _guard = self.mutations.lock().await;
        let d = self.deployed(name)?;
        let not_found = || EngineError::TaskNotFound {
            connector: name.to_string(),
            task,
        };
        if d.plan.is_err() || d.record.target == TargetState::Stopped {
            return Err(not_found());
        }
        let exists = self.status(name).is_ok_and(|s| s.tasks.iter().any(|t| t.id == task));
        if !exists {
            return Err(not_found());
        }
        self.reset_restarts(name, Some(task));
        let initial = if d.record.target == TargetState::Paused {
            Control::Pause
        } else {
            Control::Run
        };
        self.restart_task(name, task, initial).await
    }

    /// Restarts failed tasks with exponential backoff, per each connector's
    /// [`RestartPolicy`](crate::submit::RestartPolicy); runs until the engine is dropped.
    pub fn supervise(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        self.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.supervise_once().await;
            }
        })
    }

    /// Adds the fields that tasks found in their records' Connect schemas to the
    /// columns of connectors whose columns the worker found, and starts them again
    /// (see the module notes).
    async fn grow_columns(&self) {
        let names: Vec<String> = lock(&self.connectors)
            .values()
            .filter(|d| d.record.columns.is_some() && d.plan.is_ok() && d.record.target != TargetState::Stopped)
            .map(|d| d.record.name.clone())
            .collect();
        for name in names {
            let grown = self.status(&name).ok().and_then(|s| {
                s.tasks
                    .into_iter()
                    .find_map(|t| t.failure.and_then(|f| f.grown).filter(|_| t.state == State::Failed))
            });
            let Some(added) = grown else { continue };
            let _guard = self.mutations.lock().await;
            let Ok(mut d) = self.deployed(&name) else { continue };
            let Some(known) = d.record.columns.clone() else {
                continue;
            };
            let more = quiver_sql::connect::columns_ddl(&arrow::datatypes::Schema::new(added));
            let (plan, found) = if known.refresh {
                // A catalog: read it again, which also sees types and dropped columns.
                match self
                    .plan_finding_columns(&name, &d.record.config, Some(&known), true)
                    .await
                {
                    Ok(Planned::Ready(plan, Some(found))) if found != known => (Ok(plan), found),
                    Ok(_) => (Err("the catalog reads as before".to_string()), known),
                    Err(e) => (Err(e.to_string()), known),
                }
            } else {
                let found = FoundColumns {
                    ddl: format!("{}, {more}", known.ddl),
                    ..known
                };
                let plan = self.plan_connector(&name, &d.record.config, Some(&found)).map(Arc::new);
                (plan.map_err(|e| e.to_string()), found)
            };
            let plan = match plan {
                Ok(plan) => plan,
                Err(e) => {
                    warn!(connector = %name, columns = %more, error = %e, "the source's schema grew, but the connector does not plan with the new columns");
                    continue;
                }
            };
            d.record.columns = Some(found);
            if let Err(e) = self.state.put_connector(&d.record).await {
                warn!(connector = %name, error = %e, "could not store the grown columns");
                continue;
            }
            info!(connector = %name, added = %more, "the records' Connect schema grew: columns added, restarting from the last commit");
            self.stop_task(&name).await;
            self.deploy(d.record, Ok(plan), None);
        }
    }

    async fn supervise_once(&self) {
        self.look_again().await;
        self.grow_columns().await;
        let now = std::time::Instant::now();
        let candidates: Vec<(String, Arc<Submission>, TargetState)> = lock(&self.connectors)
            .values()
            .filter(|d| d.record.target != TargetState::Stopped)
            .filter_map(|d| {
                Some((
                    d.record.name.clone(),
                    Arc::clone(d.plan.as_ref().ok()?),
                    d.record.target,
                ))
            })
            .collect();
        for (name, plan, target) in candidates {
            let Ok(status) = self.status(&name) else { continue };
            for task in status.tasks {
                let restarts = lock(&self.connectors)
                    .get(&name)
                    .and_then(|d| d.restarts.get(&task.id).cloned())
                    .unwrap_or_default();
                self.supervise_task(&name, &plan, target, task, restarts, now).await;
            }
        }
    }

    /// One task's automatic restart: schedule it once the task failed, carry it out
    /// when due.
    async fn supervise_task(
        &self,
        name: &str,
        plan: &Submission,
        target: TargetState,
        task: super::TaskStatus,
        restarts: Restarts,
        now: std::time::Instant,
    ) {
        let id = task.id;
        let failed = task.state == State::Failed;
        // A bad config or a bad record fails again on restart: leave it FAILED.
        let mendable = task.failure.as_ref().is_none_or(|f| f.restartable());
        let policy = plan.restart;
        let max_delay = crate::submit::RestartPolicy::max_delay();
        if !failed && restarts.count > 0 && restarts.last.is_some_and(|t| t.elapsed() > max_delay) {
            // Healthy for a while since its last restart: a new failure starts over.
            self.reset_restarts(name, Some(id));
            return;
        }
        if !failed || !mendable || !policy.enabled || restarts.count >= policy.max_restarts {
            return;
        }
        match restarts.next {
            None => {
                let delay = crate::submit::RestartPolicy::delay(restarts.count);
                let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                warn!(connector = %name, task = id, restarts = restarts.count, delay_ms = delay.as_millis() as u64, "task failed; restarting it automatically");
                if let Some(c) = lock(&self.connectors).get_mut(name) {
                    c.restarts.entry(id).or_default().next = Some((now + delay, at));
                }
            }
            Some((due, _)) if now >= due => {
                let _guard = self.mutations.lock().await;
                // A user may have acted meanwhile: only restart what is still due.
                let still = lock(&self.connectors).get(name).is_some_and(|d| {
                    d.record.target == target && d.restarts.get(&id).is_some_and(|r| r.next.is_some())
                });
                let still_failed = self
                    .status(name)
                    .is_ok_and(|s| s.tasks.iter().any(|t| t.id == id && t.state == State::Failed));
                if !still || !still_failed {
                    return;
                }
                if let Some(c) = lock(&self.connectors).get_mut(name) {
                    let r = c.restarts.entry(id).or_default();
                    r.count += 1;
                    r.next = None;
                    r.last = Some(std::time::Instant::now());
                }
                info!(connector = %name, task = id, restart = restarts.count + 1, "restarting the failed task");
                let initial = if target == TargetState::Paused {
                    Control::Pause
                } else {
                    Control::Run
                };
                if let Err(e) = self.restart_task(name, id, initial).await {
                    warn!(connector = %name, task = id, error = %e, "automatic restart failed");
                }
            }
            Some(_) => {}
        }
    }

    /// The connector's committed offsets.
    pub async fn connector_offsets(&self, name: &str) -> Result<(ConnectorType, Option<Offsets>)> {
        let d = self.deployed(name)?;
        let kind = d.plan.as_ref().map_or(ConnectorType::Unknown, |p| p.kind);
        Ok((kind, self.state.offsets(name).await?))
    }

    fn require_stopped(&self, name: &str) -> Result<Deployed> {
        let d = self.deployed(name)?;
        if d.record.target != TargetState::Stopped || self.status(name).is_ok() {
            return Err(EngineError::BadRequest(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        Ok(d)
    }

    /// PATCH …/offsets: only while STOPPED; the next start honours it exactly. A
    /// partition set to `None` is forgotten everywhere it lives (see
    /// [`Engine::reset_pipeline_offsets`]), so it is read from its start.
    pub async fn alter_connector_offsets(&self, name: &str, changes: &OffsetChanges) -> Result<()> {
        let _guard = self.mutations.lock().await;
        let d = self.require_stopped(name)?;
        self.state.alter_offsets(name, changes).await?;
        if let Ok(plan) = &d.plan {
            if changes.values().any(Option::is_none) {
                self.reset_upstream(&plan.spec).await?;
            }
            let now = self.state.offsets(name).await?;
            self.align_sink_offsets(&plan.spec, now.as_ref()).await?;
        }
        info!(connector = %name, partitions = changes.len(), "connector offsets altered");
        Ok(())
    }

    /// DELETE …/offsets: only while STOPPED; the next start reads from the beginning.
    pub async fn reset_connector_offsets(&self, name: &str) -> Result<()> {
        let _guard = self.mutations.lock().await;
        let d = self.require_stopped(name)?;
        match &d.plan {
            Ok(plan) => self.reset_pipeline_offsets(&plan.spec).await?,
            Err(_) => self.state.reset_offsets(name).await?,
        }
        info!(connector = %name, "connector offsets reset");
        Ok(())
    }
}
