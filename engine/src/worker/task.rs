//! One running pipeline: a source task feeding a bounded channel, and a
//! transform + sink loop that commits offsets only behind durable data.
//!
//! ```text
//! source task ──(channel, 4 batches)──▶ transform ─▶ sink.write(seq) ─▶ durable_seq ─▶ commit offsets
//!                                            └─ failed rows ─▶ error policy (fail | dead-letter queue)
//! ```
//! The bounded channel is the backpressure: a slow sink stops the source from
//! reading ahead. Decoding (source task) and encoding (sink loop) run on
//! different tokio workers, so a two-core machine uses both.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use quiver_connectors::api::{
    ConnectorError, LagProbe, OffsetCommitter, Offsets, PartitionLag, PartitionProbe, Progress, RejectedRecord,
    RowFilter, Sink, SinkContext, SinkReport, SourceBatch, SourceContext, Stage, TaskSlot,
};
use quiver_connectors::kafka::dlq::DeadLetterTopic;
use quiver_sql::PipelineSpec;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::failure::{FailureStage, TaskFailure};
use crate::dlq::DeadLetterQueue;
use crate::store::Store;

/// What the engine asks of a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    Pause,
    Stop,
}

/// A pipeline's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Running,
    Paused,
    /// Stopped on request; resumable.
    Stopped,
    /// The source reached its end and everything was flushed and committed.
    Finished,
    Failed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Finished => "FINISHED",
            State::Failed => "FAILED",
        })
    }
}

/// Live counters of one pipeline task, shared with status readers.
pub struct Stats {
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    pub rows_errored: AtomicU64,
    /// Batches the source delivered.
    pub batches: AtomicU64,
    /// Bad records written to a dead-letter queue or topic.
    pub dead_lettered: AtomicU64,
    /// Offset commits to the store, and those that failed.
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    state: Mutex<State>,
    error: Mutex<Option<TaskFailure>>,
    report: Mutex<SinkReport>,
    progress: Mutex<Progress>,
    resumed_from: Mutex<Option<Offsets>>,
    /// Records read before the last stop but not committed, read again now.
    reread: AtomicU64,
    /// Lists the source partitions the task reads now (Kafka partitions, files).
    partitions: Mutex<Option<PartitionProbe>>,
    /// Tells each partition's consumer lag (Kafka).
    lag: Mutex<Option<LagProbe>>,
    started: Instant,
    ended: Mutex<Option<Instant>>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            rows_errored: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            state: Mutex::new(State::Running),
            error: Mutex::new(None),
            report: Mutex::new(SinkReport::default()),
            progress: Mutex::new(Progress::default()),
            resumed_from: Mutex::new(None),
            reread: AtomicU64::new(0),
            partitions: Mutex::new(None),
            lag: Mutex::new(None),
            started: Instant::now(),
            ended: Mutex::new(None),
        }
    }

    pub fn state(&self) -> State {
        *lock(&self.state)
    }

    pub(crate) fn set_state(&self, s: State) {
        *lock(&self.state) = s;
        if matches!(s, State::Stopped | State::Finished | State::Failed) {
            lock(&self.ended).get_or_insert_with(Instant::now);
        }
    }

    /// Records a failure.
    pub(crate) fn fail(&self, error: TaskFailure) {
        *lock(&self.error) = Some(error);
        self.set_state(State::Failed);
    }

    /// The failure's message, for status traces.
    pub fn error(&self) -> Option<String> {
        lock(&self.error).as_ref().map(|f| f.message.clone())
    }

    /// The typed failure, if the task failed.
    pub fn failure(&self) -> Option<TaskFailure> {
        lock(&self.error).clone()
    }
    pub fn report(&self) -> SinkReport {
        lock(&self.report).clone()
    }
    pub fn progress(&self) -> Progress {
        *lock(&self.progress)
    }
    pub fn resumed_from(&self) -> Option<Offsets> {
        lock(&self.resumed_from).clone()
    }
    /// Records that were read before the last stop (at its last commit) but not committed.
    pub fn reread(&self) -> u64 {
        self.reread.load(Ordering::Relaxed)
    }
    /// The source partitions the task reads now.
    pub fn partitions(&self) -> Vec<String> {
        let probe = lock(&self.partitions).clone();
        probe.map(|p| p()).unwrap_or_default()
    }
    /// Each partition's consumer lag now (Kafka sources).
    pub fn lag(&self) -> Vec<PartitionLag> {
        let probe = lock(&self.lag).clone();
        probe.map(|p| p()).unwrap_or_default()
    }
    pub fn elapsed(&self) -> Duration {
        lock(&self.ended).map_or_else(|| self.started.elapsed(), |e| e - self.started)
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("state", &self.state())
            .field("rows_in", &self.rows_in)
            .field("rows_out", &self.rows_out)
            .finish_non_exhaustive()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often the sink is ticked (time-based rolling) and commits are attempted.
const TICK: Duration = Duration::from_millis(250);
/// Offsets are written to the state store at most this often while running.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// Runs one task of a pipeline to its end, recording the outcome in `stats`.
pub(crate) async fn run(
    spec: Arc<PipelineSpec>,
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    control: watch::Receiver<Control>,
    bounded: bool,
    slot: TaskSlot,
) {
    let mut runner = Runner {
        spec,
        slot,
        store,
        stats: Arc::clone(&stats),
        dlq: None,
        dlq_topic: None,
        committer: None,
        commit_upstream: true,
        pending: VecDeque::new(),
        committed: Offsets::default(),
        written: Offsets::default(),
        read: Offsets::default(),
        uncommitted: false,
        last_commit: Instant::now(),
    };
    match runner.run(control, bounded).await {
        Ok(state) => {
            info!(pipeline = %runner.spec.name, task = runner.slot.index, state = %state, rows_in = stats.rows_in.load(Ordering::Relaxed), rows_out = stats.rows_out.load(Ordering::Relaxed), "pipeline ended");
            stats.set_state(state);
        }
        Err(e) => {
            warn!(pipeline = %runner.spec.name, task = runner.slot.index, error = %e, "pipeline task failed");
            stats.fail(e);
        }
    }
}

struct Runner {
    spec: Arc<PipelineSpec>,
    /// Which of the pipeline's tasks this is.
    slot: TaskSlot,
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    dlq: Option<DeadLetterQueue>,
    dlq_topic: Option<DeadLetterTopic>,
    /// The source's upstream commit hook (Kafka consumer groups).
    committer: Option<Arc<dyn OffsetCommitter>>,
    /// False when the sink commits source offsets itself (Kafka exactly-once).
    commit_upstream: bool,
    /// Batches written but not yet durable: (seq, offsets after the batch).
    pending: VecDeque<(u64, Offsets)>,
    committed: Offsets,
    /// What this task last wrote to the store. A commit writes only the positions
    /// that moved since, so a task never writes back a sibling's partition (or one
    /// it gave up in a rebalance) at a stale position.
    written: Offsets,
    /// Positions after every batch received so far.
    read: Offsets,
    /// Offsets merged into `committed` but not yet written to the store.
    uncommitted: bool,
    last_commit: Instant,
}

impl Runner {
    /// Where this task's read mark is kept: the pipeline's name for its first task.
    fn mark_key(&self) -> String {
        match self.slot.index {
            0 => self.spec.name.clone(),
            i => format!("{}#task{i}", self.spec.name),
        }
    }

    async fn run(&mut self, control: watch::Receiver<Control>, bounded: bool) -> Result<State, TaskFailure> {
        let spec = Arc::clone(&self.spec);
        info!(pipeline = %spec.name, task = self.slot.index, tasks = self.slot.count, "pipeline task starting");
        let stored = self.store.offsets(&spec.name).await.map_err(TaskFailure::store)?;
        // The sink starts first: one that stores positions with its data (exactly-once
        // into a database) knows better than the state store where to resume.
        let sink_ctx = SinkContext {
            name: spec.name.clone(),
            schema: Arc::clone(spec.transform.output_schema()),
            start: stored.clone(),
            task: self.slot.clone(),
        };
        let mut sink = spec.connector.build_sink(&spec.config, sink_ctx).await.map_err(|e| {
            TaskFailure::connector(
                FailureStage::Start,
                format_args!("sink '{}' could not start", spec.name),
                &e,
            )
        })?;
        let start = match sink.resume_offsets().await.map_err(|e| {
            TaskFailure::connector(
                FailureStage::Start,
                format_args!("sink '{}' could not read its stored positions", spec.name),
                &e,
            )
        })? {
            Some(o) => {
                info!(pipeline = %spec.name, "resuming at the positions the sink committed with its data");
                Some(o)
            }
            None => stored,
        };
        if let Some(s) = &start {
            info!(pipeline = %spec.name, offsets = %serde_json::to_string(s).unwrap_or_default(), "resuming after committed offsets");
            self.committed = s.clone();
            self.written = s.clone();
            self.slot.durable.seed(s);
        }
        *lock(&self.stats.resumed_from) = start.clone();
        if let (Some(s), Some(mark)) = (&start, self.store.read_mark(&self.mark_key())) {
            let n = s.distance(&mark);
            self.stats.reread.store(n, Ordering::Relaxed);
            if n > 0 {
                info!(pipeline = %spec.name, records = n, "re-reading records read before the last stop but never committed");
            }
        }
        let ctx = SourceContext {
            name: spec.source.name.clone(),
            pipeline: spec.name.clone(),
            schema: Arc::clone(&spec.source.schema),
            start,
            bounded,
            batch: spec.source.batch,
            used: used_columns(&spec),
            keep_raw: spec.errors.dlq_topic.is_some(),
            filter: row_filter(&spec),
            task: self.slot.clone(),
        };
        let mut source = spec
            .source
            .connector
            .build_source(&spec.source.config, ctx)
            .await
            .map_err(|e| {
                TaskFailure::connector(
                    FailureStage::Start,
                    format_args!("source '{}' could not start", spec.source.name),
                    &e,
                )
            })?;
        self.committer = source.committer();
        *lock(&self.stats.partitions) = source.partitions();
        *lock(&self.stats.lag) = source.lag();
        if let Some(c) = &self.committer {
            let sink_commits = sink.attach_source(c).map_err(|e| {
                TaskFailure::connector(
                    FailureStage::Start,
                    format_args!("sink '{}' could not start", spec.name),
                    &e,
                )
            })?;
            // Offsets travel inside the sink's transactions: committing them again outside
            // could move the group ahead of an aborted transaction.
            self.commit_upstream = !sink_commits;
        }
        if let Some(dir) = &spec.errors.dlq_path {
            self.dlq =
                Some(DeadLetterQueue::open(dir, &spec.name).map_err(|e| {
                    TaskFailure::external(FailureStage::Start, format!("dead-letter queue {dir}: {e}"))
                })?);
        }
        if let Some(t) = &spec.errors.dlq_topic {
            let topic = DeadLetterTopic::new(
                &t.cluster.bootstrap,
                &t.topic,
                t.context_headers,
                &spec.name,
                &t.cluster.properties,
            )
            .map_err(|e| {
                TaskFailure::connector(FailureStage::Start, format_args!("dead-letter topic '{}'", t.topic), &e)
            })?;
            self.dlq_topic = Some(topic);
        }

        let (tx, mut rx) = mpsc::channel::<Result<SourceBatch, ConnectorError>>(4);
        let stats = Arc::clone(&self.stats);
        let mut src_control = control.clone();
        let reader = tokio::spawn(async move {
            loop {
                loop {
                    let c = *src_control.borrow_and_update();
                    match c {
                        Control::Stop => return,
                        Control::Run => break,
                        Control::Pause => {
                            if src_control.changed().await.is_err() {
                                return;
                            }
                        }
                    }
                }
                // Sources' next_batch is cancel-safe: they only await timers between batches.
                let next = tokio::select! {
                    b = source.next_batch() => b,
                    _ = src_control.changed() => continue,
                };
                *lock(&stats.progress) = source.progress();
                match next {
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });

        let mut ticker = tokio::time::interval(TICK);
        let mut seq = 0u64;
        let mut control = control;
        let outcome: Result<(), TaskFailure> = loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(TaskFailure::connector(FailureStage::Source, format_args!("source '{}' failed", spec.source.name), &e)),
                    Some(Ok(batch)) => {
                        seq += 1;
                        if let Err(e) = self.process(sink.as_mut(), batch, seq).await {
                            break Err(e);
                        }
                    }
                },
                _ = ticker.tick() => {
                    if let Err(e) = sink.tick().await {
                        break Err(TaskFailure::connector(FailureStage::Sink, format_args!("sink '{}' failed", spec.name), &e));
                    }
                    let force = self.committer.as_ref().is_some_and(|c| c.flush_requested());
                    if force {
                        // A source is about to give partitions up: make everything durable now.
                        if let Err(e) = self.flush_with_retry(sink.as_mut()).await {
                            break Err(e);
                        }
                    }
                    if let Err(e) = self.commit(sink.as_mut(), force).await {
                        break Err(e);
                    }
                    // Status readers see the sink's report refreshed every tick, not per batch.
                    *lock(&self.stats.report) = sink.report();
                    let paused = *control.borrow_and_update() == Control::Pause;
                    let s = self.stats.state();
                    if paused && s == State::Running { self.stats.set_state(State::Paused) }
                    if !paused && s == State::Paused { self.stats.set_state(State::Running) }
                }
            }
        };
        reader.abort();
        // Whatever happened, make durable what was written and commit it.
        let flushed = self.flush_with_retry(sink.as_mut()).await;
        *lock(&self.stats.report) = sink.report();
        let committed = self.commit(sink.as_mut(), true).await;
        if let Some(c) = &self.committer {
            c.close();
        }
        outcome?;
        flushed?;
        committed?;
        Ok(if *control.borrow() == Control::Stop {
            State::Stopped
        } else {
            State::Finished
        })
    }

    async fn process(&mut self, sink: &mut dyn Sink, batch: SourceBatch, seq: u64) -> Result<(), TaskFailure> {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let SourceBatch {
            batch,
            origins,
            offsets,
            rejected,
            raw,
            filtered,
        } = batch;
        // Rows the source dropped by the pipeline's filter were read all the same.
        self.stats.rows_in.fetch_add(
            (batch.num_rows() + rejected.len() + filtered.unwrap_or(0)) as u64,
            Ordering::Relaxed,
        );
        self.read.merge(&offsets);
        // Cheap and not synced: it only has to survive the process, to count re-reads after a kill.
        self.store.write_read_mark(&self.mark_key(), &self.read);
        for r in &rejected {
            self.reject(r)?;
        }
        let out = self.spec.transform.apply_with(&batch, filtered.is_some());
        for (row, error) in &out.failed {
            let (partition, position) = origins
                .get(*row)
                .map_or(("?".to_string(), -1), |(p, pos)| (p.to_string(), pos));
            let r = RejectedRecord {
                source: self.spec.source.name.clone(),
                partition,
                position,
                stage: Stage::Transform,
                error: error.clone(),
                record: row_json(&batch, *row),
                raw: raw.get(*row).cloned(),
            };
            self.reject(&r)?;
        }
        let rows = out.batch.num_rows() as u64;
        sink.source_offsets(seq, &offsets);
        self.pending.push_back((seq, offsets));
        let out_origins = sink.wants_origins().then(|| {
            origins.select(
                &self
                    .spec
                    .transform
                    .input_rows_with(&batch, &out.failed, filtered.is_some()),
            )
        });
        let mut retry = Retry::new(&self.spec.errors);
        loop {
            match sink
                .write_with_origins(out.batch.clone(), seq, out_origins.as_ref())
                .await
            {
                Ok(()) => break,
                Err(e) if e.is_retriable() => match retry.next() {
                    Some(backoff) => {
                        warn!(pipeline = %self.spec.name, attempt = retry.attempt, error = %e, backoff_ms = backoff.as_millis() as u64, "sink write failed; retrying");
                        tokio::time::sleep(backoff).await;
                    }
                    None => {
                        return Err(TaskFailure::connector(
                            FailureStage::Sink,
                            format_args!(
                                "sink '{}' failed after retrying for {:?}",
                                self.spec.name, self.spec.errors.retry_timeout
                            ),
                            &e,
                        ));
                    }
                },
                Err(e) => {
                    return Err(TaskFailure::connector(
                        FailureStage::Sink,
                        format_args!("sink '{}' failed", self.spec.name),
                        &e,
                    ));
                }
            }
        }
        let refused = sink.take_rejected();
        if !refused.is_empty() {
            let inputs = self
                .spec
                .transform
                .input_rows_with(&batch, &out.failed, filtered.is_some());
            for (row, error) in &refused {
                let input = inputs.get(*row).copied();
                let (partition, position) = input
                    .and_then(|i| origins.get(i))
                    .map_or(("?".to_string(), -1), |(p, pos)| (p.to_string(), pos));
                let r = RejectedRecord {
                    source: self.spec.source.name.clone(),
                    partition,
                    position,
                    stage: Stage::Sink,
                    error: error.clone(),
                    record: row_json(&out.batch, *row),
                    raw: input.and_then(|i| raw.get(i).cloned()),
                };
                self.reject(&r)?;
            }
        }
        self.stats
            .rows_out
            .fetch_add(rows - refused.len() as u64, Ordering::Relaxed);
        self.commit(sink, false).await
    }

    /// Applies the error policy to one bad record.
    fn reject(&mut self, r: &RejectedRecord) -> Result<(), TaskFailure> {
        if !self.spec.errors.tolerate {
            let stage = match r.stage {
                Stage::Decode => FailureStage::Source,
                Stage::Transform => FailureStage::Transform,
                Stage::Sink => FailureStage::Sink,
            };
            return Err(TaskFailure::record(
                stage,
                format!(
                    "record at {} position {} of source '{}' failed at {} stage: {} (set errors.tolerance = 'all' to route bad records to a dead-letter queue)",
                    r.partition, r.position, r.source, r.stage, r.error
                ),
            ));
        }
        self.stats.rows_errored.fetch_add(1, Ordering::Relaxed);
        let errors = &self.spec.errors;
        if errors.log || (self.dlq.is_none() && self.dlq_topic.is_none()) {
            if errors.log_messages {
                warn!(pipeline = %self.spec.name, partition = %r.partition, position = r.position, stage = %r.stage, error = %r.error, record = %r.record, "bad record skipped");
            } else {
                warn!(pipeline = %self.spec.name, partition = %r.partition, position = r.position, stage = %r.stage, error = %r.error, "bad record skipped");
            }
        }
        if let Some(dlq) = &mut self.dlq {
            dlq.write(r).map_err(|e| {
                TaskFailure::external(
                    FailureStage::DeadLetter,
                    format!("writing to dead-letter queue {}: {e}", dlq.path().display()),
                )
            })?;
        }
        if let Some(t) = &self.dlq_topic {
            t.send(r).map_err(|e| {
                TaskFailure::connector(
                    FailureStage::DeadLetter,
                    format_args!("writing to dead-letter topic '{}'", t.topic()),
                    &e,
                )
            })?;
        }
        if self.dlq.is_some() || self.dlq_topic.is_some() {
            self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn flush_with_retry(&mut self, sink: &mut dyn Sink) -> Result<(), TaskFailure> {
        let mut retry = Retry::new(&self.spec.errors);
        loop {
            let started = Instant::now();
            match sink.flush().await {
                Ok(()) => {
                    crate::telemetry::sink_flushed(&self.spec.name, self.slot.index, started.elapsed());
                    return Ok(());
                }
                Err(e) if e.is_retriable() => match retry.next() {
                    Some(backoff) => {
                        warn!(pipeline = %self.spec.name, attempt = retry.attempt, error = %e, "sink flush failed; retrying");
                        tokio::time::sleep(backoff).await;
                    }
                    None => {
                        return Err(TaskFailure::connector(
                            FailureStage::Sink,
                            format_args!(
                                "sink '{}' failed to flush after retrying for {:?}",
                                self.spec.name, self.spec.errors.retry_timeout
                            ),
                            &e,
                        ));
                    }
                },
                Err(e) => {
                    return Err(TaskFailure::connector(
                        FailureStage::Sink,
                        format_args!("sink '{}' failed to flush", self.spec.name),
                        &e,
                    ));
                }
            }
        }
    }

    /// Commits the offsets of every batch the sink reports durable.
    /// Takes the sink mutably only so the future stays `Send` (`Sink` is not `Sync`).
    async fn commit(&mut self, sink: &mut dyn Sink, force: bool) -> Result<(), TaskFailure> {
        let mut advanced = false;
        if let Some(durable) = sink.durable_offsets() {
            // The sink tracks durable positions per source partition itself.
            self.pending.clear();
            advanced = self.committed.merge(&durable);
        } else {
            let Some(durable) = sink.durable_seq() else {
                return Ok(());
            };
            while self.pending.front().is_some_and(|(s, _)| *s <= durable) {
                if let Some((_, o)) = self.pending.pop_front() {
                    self.committed.merge(&o);
                    advanced = true;
                }
            }
        }
        self.uncommitted |= advanced;
        if !self.uncommitted || (!force && self.last_commit.elapsed() < COMMIT_INTERVAL) {
            return Ok(());
        }
        if let Some(dlq) = &mut self.dlq {
            dlq.sync().map_err(|e| {
                TaskFailure::external(FailureStage::DeadLetter, format!("syncing dead-letter queue: {e}"))
            })?;
        }
        if let Some(t) = &self.dlq_topic {
            t.sync().map_err(|e| {
                TaskFailure::connector(
                    FailureStage::DeadLetter,
                    format_args!("dead-letter topic '{}'", t.topic()),
                    &e,
                )
            })?;
        }
        let moved = Offsets(
            self.committed
                .0
                .iter()
                .filter(|(k, v)| self.written.get(k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !moved.is_empty() {
            if let Err(e) = self.store.commit_offsets(&self.spec.name, &moved).await {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                return Err(TaskFailure::store(e));
            }
            self.written.merge(&moved);
            self.slot.durable.merge(&moved);
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = self.committer.as_ref().filter(|_| self.commit_upstream) {
                c.commit(&moved, force);
            }
        }
        self.last_commit = Instant::now();
        self.uncommitted = false;
        Ok(())
    }
}

/// Exponential backoff for retriable sink failures, bounded by `errors.retry.timeout`.
struct Retry {
    deadline: Instant,
    delay: Duration,
    max: Duration,
    attempt: u32,
}

impl Retry {
    fn new(policy: &quiver_sql::ErrorPolicy) -> Self {
        Self {
            deadline: Instant::now() + policy.retry_timeout,
            delay: Duration::from_millis(100),
            max: policy.retry_delay_max.max(Duration::from_millis(1)),
            attempt: 0,
        }
    }

    /// The wait before the next attempt, or `None` when the time is up.
    fn next(&mut self) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        self.attempt += 1;
        let wait = self.delay.min(self.max).min(left);
        self.delay = (self.delay * 2).min(self.max);
        Some(wait)
    }
}

/// The source columns the pipeline reads: what the SELECT reads and, when bad rows
/// are tolerated (and so may go whole to a dead-letter queue or the log), every
/// declared column. Metadata columns (`_key`, `_offset`, …) only when the SELECT reads them.
fn used_columns(spec: &PipelineSpec) -> Vec<bool> {
    let mut used = spec.transform.used_columns();
    if spec.errors.tolerate {
        // The declared columns come first; the connector's metadata columns follow.
        for u in used.iter_mut().take(spec.source.declared) {
            *u = true;
        }
    }
    used
}

/// The part of the `WHERE` clause the source may apply while decoding. When bad rows
/// are tolerated every column is read after it, for the reason [`used_columns`]
/// gives, so a source then builds the columns only the filter reads.
fn row_filter(spec: &PipelineSpec) -> Option<RowFilter> {
    let mut filter = spec.transform.row_filter().cloned()?;
    if spec.errors.tolerate {
        filter.read_after.clear();
    }
    Some(filter)
}

/// One row as a JSON object, for the dead-letter queue.
fn row_json(batch: &RecordBatch, row: usize) -> serde_json::Value {
    let one = batch.slice(row, 1);
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    if w.write(&one).is_err() || w.finish().is_err() {
        return serde_json::Value::Null;
    }
    let bytes = w.into_inner();
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(mut a)) if a.len() == 1 => a.remove(0),
        _ => serde_json::Value::Null,
    }
}
