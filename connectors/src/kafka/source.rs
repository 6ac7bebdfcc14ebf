//! The Kafka source: `tasks.max` consumer threads decoding into one pipeline.
//!
//! ```text
//! task 0: poll ─▶ buffer ─▶ decode ─┐
//! task 1: poll ─▶ buffer ─▶ decode ─┼─▶ channel ─▶ KafkaSource::next_batch ─▶ engine
//!   …                               ┘
//! engine commit ─▶ GroupCommitter ─▶ consumer.commit(owned partitions)
//! ```
//! Unbounded, the tasks subscribe as members of one consumer group and the
//! rebalance callback places each assigned partition at the pipeline's durable
//! position (else `scan.startup.mode`). Bounded (`--until-caught-up`), one task per
//! topic assigns its partitions itself and stops each partition at its end as of
//! the start: the high watermark its first fetch reported (librdkafka statistics),
//! or earlier if librdkafka reports the partition's EOF first.
//!
//! Consumer lag (`records-lag` in `/metrics`) is each owned partition's latest
//! high watermark (last stable offset under `read_committed`), from librdkafka's
//! statistics every second, less the position the pipeline has read to: fetch
//! responses carry the watermark for free, where asking the broker at scrape time
//! would cost a round trip per partition.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::client::{client_config, is_fatal, kafka_error};
use super::config::{KafkaSourceConfig, Startup, Topics};
use super::metadata::{self, Meta, MetaBuilder};
use crate::api::{
    BatchPolicy, ConnectorError, LagProbe, OffsetCommitter, Offsets, PartitionLag, PartitionProbe, Progress, RawRecord,
    RejectedRecord, Result, RowOrigins, SharedOffsets, Source, SourceBatch, SourceContext, Stage,
};
use crate::formats::avro::SchemaRegistry;
use crate::formats::record::RecordDecoder;

/// How long metadata and offset look-ups may take before a start fails.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a task losing partitions waits for the sink to make its records durable.
const REVOKE_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

type Partition = (String, i32);

fn partition_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

fn parse_key(key: &str) -> Option<Partition> {
    let (t, p) = key.rsplit_once('/')?;
    Some((t.to_string(), p.parse().ok()?))
}

/// State shared by the tasks, their rebalance callbacks and the committer.
struct Shared {
    /// Positions the engine has committed (durable), starting with the resume point;
    /// shared with the pipeline's other tasks, so a partition moving between them
    /// starts where its last owner stopped.
    durable: SharedOffsets,
    /// Positions after the last record each partition handed to the pipeline.
    emitted: Mutex<Offsets>,
    /// Set by a task that is losing partitions: asks the engine to flush the sink now.
    flush_requested: AtomicBool,
    /// The source is shutting down: revocations do not wait for the sink.
    closing: AtomicBool,
    /// Partition → the task that owns it.
    owners: Mutex<HashMap<Partition, usize>>,
    consumers: Mutex<Vec<Arc<BaseConsumer<TaskContext>>>>,
    startup: Startup,
    /// Bounded mode: each partition's end as of the start, the high watermark its
    /// first fetch reported (from librdkafka's statistics; brokers such as Tansu
    /// answer ListOffsets with stale watermarks, fetch responses are right).
    ends: Mutex<HashMap<Partition, i64>>,
    /// Bounded mode: records waiting at start, over the partitions whose end is known.
    backlog: AtomicU64,
    backlog_known: AtomicBool,
    /// Each partition's latest high watermark (or last stable offset), from statistics.
    highs: Mutex<HashMap<Partition, i64>>,
    /// Whether the consumers read committed records only (lag counts to the last stable offset).
    read_committed: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn offset_of(offsets: &Offsets, topic: &str, partition: i32) -> Option<i64> {
    offsets
        .get(&partition_key(topic, partition))
        .and_then(serde_json::Value::as_i64)
}

/// Rebalance callbacks of one task.
struct TaskContext {
    /// The consumer's index in this source (into `Shared::consumers`).
    task: usize,
    /// The task's number in logs: the pipeline task's when the pipeline runs several.
    label: usize,
    shared: Arc<Shared>,
    /// Partitions revoked since the task loop last looked (their buffered records are dropped).
    revoked: Mutex<Vec<Partition>>,
}

impl ClientContext for TaskContext {
    /// Records each partition's latest watermark (for lag) and, bounded, its high
    /// watermark from its first fetch response as the end to read to.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut ends = lock(&self.shared.ends);
        let mut highs = lock(&self.shared.highs);
        for (topic, t) in &statistics.topics {
            for (p, part) in &t.partitions {
                let fetched = part.rxmsgs > 0 || part.eof_offset >= 0;
                if *p >= 0 && fetched && part.hi_offset >= 0 {
                    ends.entry((topic.clone(), *p)).or_insert(part.hi_offset);
                }
                let high = if self.shared.read_committed {
                    part.ls_offset
                } else {
                    part.hi_offset
                };
                if *p >= 0 && part.desired && high >= 0 {
                    highs.insert((topic.clone(), *p), high);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            // Reaching a partition's end is how a bounded run knows it is done.
            e if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) => {}
            // librdkafka reconnects by itself; the task loop reports lasting trouble.
            e if !is_fatal(&e) => {
                warn!(task = self.label, error = %e, reason, "Kafka client error; librdkafka retries")
            }
            e => tracing::error!(task = self.label, error = %e, reason, "Kafka client error"),
        }
    }
}

impl ConsumerContext for TaskContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = place(consumer, &self.shared, tpl) {
                    warn!(task = self.label, error = %e, "could not look up start positions; using the group's offsets");
                }
                let mut owners = lock(&self.shared.owners);
                for e in tpl.elements() {
                    owners.insert((e.topic().to_string(), e.partition()), self.task);
                }
                drop(owners);
                info!(task = self.label, partitions = %describe(tpl), "partitions assigned");
                if let Err(e) = consumer.assign(tpl) {
                    warn!(task = self.label, error = %e, "assigning partitions failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts: Vec<Partition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.hand_over(consumer, &parts);
                if let Err(e) = consumer.unassign() {
                    warn!(task = self.label, error = %e, "unassigning partitions failed");
                }
            }
            other => {
                warn!(task = self.label, error = ?other, "rebalance failed; giving up all partitions");
                let owned: Vec<Partition> = lock(&self.shared.owners)
                    .iter()
                    .filter(|(_, t)| **t == self.task)
                    .map(|(p, _)| p.clone())
                    .collect();
                self.hand_over(consumer, &owned);
                let _ = consumer.unassign();
            }
        }
    }
}

impl TaskContext {
    /// Before giving partitions up: wait until what was emitted from them is durable,
    /// commit it to the group, and tell the task loop to drop their buffered records.
    fn hand_over(&self, consumer: &BaseConsumer<Self>, parts: &[Partition]) {
        let caught_up = || {
            let durable = self.shared.durable.get();
            let emitted = lock(&self.shared.emitted);
            parts
                .iter()
                .all(|(t, p)| offset_of(&emitted, t, *p) <= offset_of(&durable, t, *p))
        };
        let deadline = Instant::now() + REVOKE_FLUSH_TIMEOUT;
        let closing = || self.shared.closing.load(Ordering::Acquire);
        if !caught_up() && !closing() {
            self.shared.flush_requested.store(true, Ordering::Release);
            while !caught_up() && Instant::now() < deadline && !closing() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !caught_up() && !closing() {
                warn!(
                    task = self.label,
                    "sink did not make revoked partitions durable in time; their new owner re-reads the rest"
                );
            }
        }
        let mut tpl = TopicPartitionList::new();
        {
            let durable = self.shared.durable.get();
            for (t, p) in parts {
                if let Some(o) = offset_of(&durable, t, *p) {
                    let _ = tpl.add_partition_offset(t, *p, Offset::Offset(o));
                }
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Sync)
        {
            warn!(task = self.label, error = %e, "committing revoked partitions failed; their new owner re-reads from the previous commit");
        }
        let mut owners = lock(&self.shared.owners);
        for p in parts {
            owners.remove(p);
        }
        drop(owners);
        lock(&self.revoked).extend(parts.iter().cloned());
        info!(task = self.label, partitions = %describe(&tpl), "partitions revoked");
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| partition_key(e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Sets each partition's start: the durable position, else the startup mode.
fn place<C: ConsumerContext>(consumer: &BaseConsumer<C>, shared: &Shared, tpl: &mut TopicPartitionList) -> Result<()> {
    let durable = shared.durable.get();
    let mut by_time = TopicPartitionList::new();
    let parts: Vec<Partition> = tpl
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect();
    for (t, p) in parts {
        let offset = match (offset_of(&durable, &t, p), shared.startup) {
            (Some(o), _) => Offset::Offset(o),
            (None, Startup::Earliest) => Offset::Beginning,
            (None, Startup::Latest) => Offset::End,
            (None, Startup::GroupOffsets { .. }) => Offset::Stored,
            (None, Startup::Timestamp(ts)) => {
                let _ = by_time.add_partition_offset(&t, p, Offset::Offset(ts));
                continue;
            }
        };
        let _ = tpl.set_partition_offset(&t, p, offset);
    }
    if by_time.count() > 0 {
        let found = consumer
            .offsets_for_times(by_time, LOOKUP_TIMEOUT)
            .map_err(|e| kafka_error("looking up offsets for scan.startup.timestamp.millis", e))?;
        for e in found.elements() {
            // No record at or after the time: start at the end.
            let o = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::End,
            };
            let _ = tpl.set_partition_offset(e.topic(), e.partition(), o);
        }
    }
    Ok(())
}

/// Commits the engine's durable positions to the consumer group.
pub(crate) struct GroupCommitter {
    shared: Arc<Shared>,
}

impl OffsetCommitter for GroupCommitter {
    fn commit(&self, offsets: &Offsets, sync: bool) {
        self.shared.durable.merge(offsets);
        let consumers = lock(&self.shared.consumers).clone();
        let owners = lock(&self.shared.owners).clone();
        let mut per_task: BTreeMap<usize, TopicPartitionList> = BTreeMap::new();
        for (key, v) in &offsets.0 {
            let (Some((t, p)), Some(o)) = (parse_key(key), v.as_i64()) else {
                continue;
            };
            // Partitions no task owns now were committed when they were revoked.
            let Some(task) = owners.get(&(t.clone(), p)) else {
                continue;
            };
            let _ = per_task
                .entry(*task)
                .or_default()
                .add_partition_offset(&t, p, Offset::Offset(o));
        }
        for (task, tpl) in per_task {
            if let Some(c) = consumers.get(task)
                && let Err(e) = c.commit(&tpl, if sync { CommitMode::Sync } else { CommitMode::Async })
            {
                warn!(task, error = %e, "committing offsets to the consumer group failed; the next commit retries");
            }
        }
    }

    fn flush_requested(&self) -> bool {
        self.shared.flush_requested.swap(false, Ordering::AcqRel)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// The consumers and their rebalance contexts hold each other through `Shared`;
    /// taking them out breaks that cycle, so the last task thread to let go drops
    /// its consumer, which leaves the group (on a thread of its own: leaving waits
    /// for the broker).
    fn close(&self) {
        let consumers = std::mem::take(&mut *lock(&self.shared.consumers));
        if !consumers.is_empty() {
            let _ = std::thread::Builder::new()
                .name("quiver-kafka-close".into())
                .spawn(move || drop(consumers));
        }
    }
}

impl GroupCommitter {
    /// The consumer group's identity, for offsets sent inside a producer transaction.
    pub(crate) fn group_metadata(&self) -> Result<rdkafka::consumer::ConsumerGroupMetadata> {
        let consumers = lock(&self.shared.consumers);
        if consumers.len() != 1 {
            return Err(ConnectorError::Config(format!(
                "exactly-once needs a Kafka source with tasks.max = 1 (it has {}): one transaction carries one consumer's offsets",
                consumers.len()
            )));
        }
        consumers[0]
            .group_metadata()
            .ok_or_else(|| ConnectorError::Internal("the Kafka consumer has no group metadata".into()))
    }
}

pub(crate) struct KafkaSource {
    rx: mpsc::Receiver<Result<SourceBatch>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    read: Arc<AtomicU64>,
}

/// The consumer group a pipeline's source commits to: `group.id`, else `quiver-<pipeline>`.
fn group_of(config: &KafkaSourceConfig, pipeline: &str) -> String {
    config.group_id.clone().unwrap_or_else(|| format!("quiver-{pipeline}"))
}

/// Deletes the pipeline's consumer group, and with it the offsets it committed, so
/// the next start falls back to where `group-offsets` starts without commits (an
/// offsets reset). Other startup modes never read the group: nothing to do. A group that
/// does not exist is already reset; one with active members is refused by the broker,
/// and that refusal is the error.
pub(crate) async fn delete_group(config: &KafkaSourceConfig, pipeline: &str) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    if !matches!(config.startup, Startup::GroupOffsets { .. }) {
        // Only scan.startup.mode = 'group-offsets' reads the group's commits.
        return Ok(());
    }
    let group = group_of(config, pipeline);
    let admin: AdminClient<DefaultClientContext> = super::client::client_config(
        &config.bootstrap,
        &format!("quiver-{pipeline}-reset"),
        &config.properties,
    )
    .create()
    .map_err(|e| kafka_error(format!("creating a Kafka admin client for {}", config.bootstrap), e))?;
    let options = AdminOptions::new().request_timeout(Some(LOOKUP_TIMEOUT));
    let results = admin
        .delete_groups(&[group.as_str()], &options)
        .await
        .map_err(|e| kafka_error(format!("deleting consumer group '{group}'"), e))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((g, code)) => {
                return Err(kafka_error(
                    format!("deleting consumer group '{g}' to reset its offsets"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}

impl KafkaSource {
    pub(crate) fn start(config: KafkaSourceConfig, ctx: SourceContext) -> Result<Self> {
        let group = group_of(&config, &ctx.pipeline);
        let durable = ctx.task.durable.clone();
        durable.seed(&ctx.start.clone().unwrap_or_default());
        let shared = Arc::new(Shared {
            durable,
            emitted: Mutex::new(Offsets::default()),
            flush_requested: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            owners: Mutex::new(HashMap::new()),
            consumers: Mutex::new(Vec::new()),
            startup: config.startup,
            ends: Mutex::new(HashMap::new()),
            backlog: AtomicU64::new(0),
            backlog_known: AtomicBool::new(false),
            highs: Mutex::new(HashMap::new()),
            read_committed: config
                .properties
                .iter()
                .any(|(k, v)| k == "isolation.level" && v == "read_committed"),
        });
        // Bounded: one task per topic, each assigning its topic's partitions itself, so a
        // partition-EOF event (which names only the partition number) is unambiguous.
        let bounded_topics = if ctx.bounded {
            Some(resolve_topics(&config)?)
        } else {
            None
        };
        // One consumer per pipeline task when the pipeline runs several (each task is
        // a member of the group); else `tasks.max` consumer threads in this one source.
        let threads = if ctx.task.count > 1 { 1 } else { config.tasks };
        let tasks = bounded_topics.as_ref().map_or(threads, Vec::len);
        let slot = ctx.task.index;
        // One registry client (and schema cache) for all tasks.
        let registry = config
            .registry
            .as_ref()
            .map(|r| Arc::new(SchemaRegistry::new(&r.url, r.basic_auth.as_deref())));
        let (tx, rx) = mpsc::channel(2 * tasks.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(tasks);
        for task in 0..tasks {
            let tctx = TaskContext {
                task,
                label: if ctx.task.count > 1 { slot as usize } else { task },
                shared: Arc::clone(&shared),
                revoked: Mutex::new(Vec::new()),
            };
            let client_id = if ctx.task.count > 1 {
                format!("quiver-{}-{slot}", ctx.pipeline)
            } else {
                format!("quiver-{}-{task}", ctx.pipeline)
            };
            let mut cc = client_config(&config.bootstrap, &client_id, &[]);
            // librdkafka waits a full second before fetching again once its local queue
            // has been over its thresholds; a consumer that decodes in batches trips that
            // all the time, so wait 10 ms instead (the user's properties still win).
            cc.set("fetch.queue.backoff.ms", "10");
            // Some brokers (Tansu among them) hold a fetch for the full fetch.wait.max.ms
            // (500 ms by default) in cases where data is there; 100 ms bounds that stall
            // while keeping an idle consumer's fetch rate low.
            cc.set("fetch.wait.max.ms", "100");
            for (k, v) in &config.properties {
                cc.set(k, v);
            }
            cc.set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", if ctx.bounded { "true" } else { "false" })
                .set("statistics.interval.ms", if ctx.bounded { "100" } else { "1000" })
                .set(
                    "auto.offset.reset",
                    match config.startup {
                        Startup::GroupOffsets { fallback_latest: true } | Startup::Latest => "latest",
                        _ => "earliest",
                    },
                );
            let consumer: BaseConsumer<TaskContext> = cc
                .create_with_context(tctx)
                .map_err(|e| kafka_error(format!("creating Kafka consumer for {}", config.bootstrap), e))?;
            let consumer = Arc::new(consumer);
            let end = match &bounded_topics {
                Some(topics) => {
                    assign_topic(&consumer, task, &topics[task], &shared)?;
                    Some(Bounded::new(&topics[task].0, topics[task].1))
                }
                None => {
                    let topics: Vec<String> = match &config.topics {
                        Topics::Names(n) => n.clone(),
                        Topics::Pattern(p) => vec![if p.starts_with('^') { p.clone() } else { format!("^{p}") }],
                    };
                    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                    consumer
                        .subscribe(&refs)
                        .map_err(|e| kafka_error(format!("subscribing to {}", topics.join(",")), e))?;
                    None
                }
            };
            lock(&shared.consumers).push(Arc::clone(&consumer));
            let meta_start = ctx.schema.fields().len().saturating_sub(metadata::COUNT);
            let mut decoder = RecordDecoder::new(
                config.format,
                Arc::clone(&config.value_schema),
                ctx.batch.max_rows,
                registry.clone(),
            )?;
            decoder.skip_unused(&ctx.used[..ctx.used.len().min(config.value_schema.fields().len())]);
            let emitter = Emitter {
                wanted: std::array::from_fn(|j| ctx.is_used(meta_start + j)),
                keep_raw: ctx.keep_raw,
                decoder,
                schema: Arc::clone(&ctx.schema),
                config: config.clone(),
                source: ctx.name.clone(),
                read: Arc::clone(&read),
                shared: Arc::clone(&shared),
                watch: config
                    .evolve
                    .then(|| super::evolve::SchemaWatch::new(&config.value_schema)),
            };
            let worker = Task {
                task,
                consumer,
                emitter: Some(emitter),
                source: ctx.name.clone(),
                policy: ctx.batch,
                tx: tx.clone(),
                stop: Arc::clone(&stop),
                end,
            };
            let handle = std::thread::Builder::new()
                .name(format!("kafka-{}-{}", ctx.name, task.max(slot as usize)))
                .spawn(move || worker.run())
                .map_err(|e| ConnectorError::io("starting a Kafka consumer thread", e))?;
            threads.push(handle);
        }
        info!(source = %ctx.name, group = %group, tasks, bounded = ctx.bounded, "Kafka source started");
        Ok(Self {
            rx,
            stop,
            threads,
            shared,
            read,
        })
    }
}

/// Bounded mode: the topics to read, with their partition counts.
fn resolve_topics(config: &KafkaSourceConfig) -> Result<Vec<(String, i32)>> {
    let probe: BaseConsumer = client_config(&config.bootstrap, "quiver-metadata", &config.properties)
        .create()
        .map_err(|e| kafka_error(format!("creating Kafka client for {}", config.bootstrap), e))?;
    let metadata = probe
        .fetch_metadata(None, LOOKUP_TIMEOUT)
        .map_err(|e| kafka_error(format!("reading topic metadata from {}", config.bootstrap), e))?;
    let found: Vec<(String, i32)> = metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect();
    match &config.topics {
        Topics::Names(names) => names
            .iter()
            .map(|n| match found.iter().find(|(t, p)| t == n && *p > 0) {
                Some(t) => Ok(t.clone()),
                None => Err(ConnectorError::Config(format!(
                    "topic '{n}' does not exist on {}",
                    config.bootstrap
                ))),
            })
            .collect(),
        Topics::Pattern(p) => {
            let re = regex::Regex::new(&format!("^(?:{})$", p.trim_start_matches('^').trim_end_matches('$')))
                .map_err(|e| ConnectorError::option(super::TOPIC_PATTERN.key, e.to_string()))?;
            Ok(found.into_iter().filter(|(t, n)| *n > 0 && re.is_match(t)).collect())
        }
    }
}

/// Bounded mode: assigns every partition of one topic at its start position.
fn assign_topic(
    consumer: &BaseConsumer<TaskContext>,
    task: usize,
    (topic, partitions): &(String, i32),
    shared: &Shared,
) -> Result<()> {
    // Knowing the topic's leaders before assigning saves librdkafka ~1 s of metadata
    // retries (100 ms apart) before its first fetch.
    consumer
        .fetch_metadata(Some(topic), LOOKUP_TIMEOUT)
        .map_err(|e| kafka_error(format!("reading the metadata of {topic}"), e))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, partitions - 1);
    place(consumer, shared, &mut tpl)?;
    // Stored offsets must be resolved here: there is no group assignment to do it.
    let stored: Vec<i32> = tpl
        .elements()
        .iter()
        .filter(|e| e.offset() == Offset::Stored)
        .map(|e| e.partition())
        .collect();
    if !stored.is_empty() {
        let committed = consumer.committed(LOOKUP_TIMEOUT).ok();
        let fallback = if matches!(shared.startup, Startup::GroupOffsets { fallback_latest: true }) {
            Offset::End
        } else {
            Offset::Beginning
        };
        for p in stored {
            let o = committed
                .as_ref()
                .and_then(|c| c.find_partition(topic, p))
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(_)))
                .unwrap_or(fallback);
            let _ = tpl.set_partition_offset(topic, p, o);
        }
    }
    let mut owners = lock(&shared.owners);
    for p in 0..*partitions {
        owners.insert((topic.clone(), p), task);
    }
    drop(owners);
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(format!("assigning the partitions of {topic}"), e))?;
    Ok(())
}

#[async_trait]
impl Source for KafkaSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        // Cancel-safe: receiving from a channel loses nothing when dropped.
        match self.rx.recv().await {
            Some(r) => r.map(Some),
            None => Ok(None),
        }
    }

    fn progress(&self) -> Progress {
        // Bounded runs know how many records were waiting at start once the first
        // fetches have reported each partition's end.
        let total = self
            .shared
            .backlog_known
            .load(Ordering::Relaxed)
            .then(|| self.shared.backlog.load(Ordering::Relaxed));
        Progress {
            done: self.read.load(Ordering::Relaxed),
            total,
        }
    }

    fn committer(&self) -> Option<Arc<dyn OffsetCommitter>> {
        Some(Arc::new(GroupCommitter {
            shared: Arc::clone(&self.shared),
        }))
    }

    fn partitions(&self) -> Option<PartitionProbe> {
        let shared = Arc::clone(&self.shared);
        Some(Arc::new(move || {
            let mut owned: Vec<String> = lock(&shared.owners).keys().map(|(t, p)| partition_key(t, *p)).collect();
            owned.sort();
            owned
        }))
    }

    fn lag(&self) -> Option<LagProbe> {
        let shared = Arc::clone(&self.shared);
        Some(Arc::new(move || {
            let owned: Vec<Partition> = lock(&shared.owners).keys().cloned().collect();
            let highs = lock(&shared.highs).clone();
            let emitted = lock(&shared.emitted).clone();
            let durable = shared.durable.get();
            let mut lags: Vec<PartitionLag> = owned
                .into_iter()
                .filter_map(|(topic, partition)| {
                    let high = *highs.get(&(topic.clone(), partition))?;
                    let position =
                        offset_of(&emitted, &topic, partition).or_else(|| offset_of(&durable, &topic, partition))?;
                    Some(PartitionLag {
                        records: (high - position).max(0),
                        topic,
                        partition,
                    })
                })
                .collect();
            lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            lags
        }))
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.shared.closing.store(true, Ordering::Release);
        self.rx.close();
        for t in self.threads.drain(..) {
            // The threads notice `stop` within one poll interval (100 ms).
            let _ = t.join();
        }
        // The consumers stay open while the engine holds the committer, so the final
        // commit after the sink's last flush still reaches the group.
    }
}

/// One message as buffered by a task.
struct Buffered {
    partition: usize,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
    headers: Vec<(String, Option<Bytes>)>,
}

/// One consumer thread.
/// One consumer: a thread that polls and buffers, and a thread that decodes what
/// it buffered (so fetching and decoding overlap on a multi-core machine).
struct Task {
    task: usize,
    consumer: Arc<BaseConsumer<TaskContext>>,
    /// Moved to the decoding thread when the task starts.
    emitter: Option<Emitter>,
    source: String,
    policy: BatchPolicy,
    tx: mpsc::Sender<Result<SourceBatch>>,
    stop: Arc<AtomicBool>,
    /// Bounded mode: how far each partition of this task's topic is read.
    end: Option<Bounded>,
}

/// Bounded mode: one task's topic, read up to each partition's end as of the start.
/// `admit` runs for every message, so the state is a Vec indexed by partition number
/// (no hashing per message).
struct Bounded {
    topic: String,
    parts: Vec<PartitionEnd>,
    /// Partitions not yet read to their end.
    open: usize,
}

/// How far one partition of a bounded task is read.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionEnd {
    /// Not yet read to its end.
    open: bool,
    /// Its end, once learned (from [`Shared::ends`], or where reading stopped).
    end: Option<i64>,
    /// The first offset read, for the backlog at start.
    first: Option<i64>,
    /// The last offset read.
    last: Option<i64>,
    /// Whether its backlog is counted.
    counted: bool,
}

impl PartitionEnd {
    fn close(&mut self, open: &mut usize) {
        if self.open {
            self.open = false;
            *open -= 1;
        }
    }
}

/// What a bounded task does with a message.
enum Admit {
    Take,
    /// The partition's last record before its end: take it and stop the partition.
    TakeLast,
    /// Past the end (or the partition is done): leave it for the next run.
    Skip,
}

impl Bounded {
    fn new(topic: &str, partitions: i32) -> Self {
        let parts = vec![
            PartitionEnd {
                open: true,
                ..PartitionEnd::default()
            };
            usize::try_from(partitions).unwrap_or(0)
        ];
        Self {
            topic: topic.to_string(),
            open: parts.len(),
            parts,
        }
    }

    fn done(&self) -> bool {
        self.open == 0
    }

    /// The state of `partition` and the count of open partitions, borrowed together.
    fn part_mut(&mut self, partition: i32) -> Option<(&mut PartitionEnd, &mut usize)> {
        let p = usize::try_from(partition).ok().and_then(|i| self.parts.get_mut(i))?;
        Some((p, &mut self.open))
    }

    fn admit(&mut self, partition: i32, offset: i64) -> Admit {
        let Some((p, open)) = self.part_mut(partition) else {
            return Admit::Skip;
        };
        if !p.open {
            return Admit::Skip;
        }
        p.first.get_or_insert(offset);
        p.last = Some(offset);
        match p.end {
            Some(end) if offset >= end => {
                p.close(open);
                Admit::Skip
            }
            Some(end) if offset + 1 >= end => {
                p.close(open);
                Admit::TakeLast
            }
            _ => Admit::Take,
        }
    }

    /// librdkafka reports the partition's end before the statistics did: its end is
    /// where reading stopped.
    fn eof(&mut self, partition: i32) {
        if let Some((p, open)) = self.part_mut(partition) {
            p.close(open);
            let at = p.last.map_or(0, |l| l + 1);
            p.end.get_or_insert(at);
        }
    }

    /// Picks up ends the statistics callback recorded and counts their backlog.
    fn learn(&mut self, shared: &Shared) {
        if self.parts.iter().any(|p| p.open && p.end.is_none()) {
            let ends = lock(&shared.ends);
            for (i, p) in self.parts.iter_mut().enumerate() {
                if p.open && p.end.is_none() {
                    p.end = ends.get(&(self.topic.clone(), i as i32)).copied();
                }
            }
        }
        for p in self.parts.iter_mut().filter(|p| !p.counted) {
            let Some(end) = p.end else { continue };
            // A partition with nothing read yet starts at its end (nothing waiting) or
            // is counted once its first record arrives.
            let start = match p.first {
                Some(f) => f,
                None if !p.open => end,
                None => continue,
            };
            shared
                .backlog
                .fetch_add(end.saturating_sub(start).max(0) as u64, Ordering::Relaxed);
            shared.backlog_known.store(true, Ordering::Relaxed);
            p.counted = true;
        }
    }
}

/// Turns a task's buffered messages into source batches.
struct Emitter {
    decoder: RecordDecoder,
    schema: SchemaRef,
    config: KafkaSourceConfig,
    source: String,
    read: Arc<AtomicU64>,
    shared: Arc<Shared>,
    /// Which metadata columns the pipeline reads.
    wanted: [bool; metadata::COUNT],
    /// Keep each row's original bytes (for a dead-letter topic).
    keep_raw: bool,
    /// `json.schemas.evolve`: watches the records' Connect schemas for new fields.
    watch: Option<super::evolve::SchemaWatch>,
}

/// Where a task's polling thread spent its time (logged at debug when it ends).
#[derive(Debug, Default)]
struct PollStats {
    polls: u64,
    empty: u64,
    /// Time spent in polls that returned nothing (measured when the buffer was
    /// empty; otherwise counted as the full wait, an upper bound).
    broker: Duration,
    /// Time spent handing full buffers to the decoding thread.
    decoder: Duration,
}

#[derive(Default)]
struct Pending {
    names: Vec<(Partition, Arc<str>)>,
    keys: Vec<u8>,
    values: Vec<u8>,
    messages: Vec<Buffered>,
    first: Option<Instant>,
}

impl Pending {
    /// An empty buffer for the same partitions, with room for as much as this one
    /// holds: batches are alike, and growing ~4 MiB of payloads from empty costs a
    /// copy of everything at each doubling (and fresh pages).
    fn sized_like(&self) -> Self {
        Self {
            names: self.names.clone(),
            keys: Vec::with_capacity(self.keys.len()),
            values: Vec::with_capacity(self.values.len()),
            messages: Vec::with_capacity(self.messages.len()),
            first: None,
        }
    }
}

impl Task {
    fn run(mut self) {
        let Some(mut emitter) = self.emitter.take() else { return };
        // One buffer in flight to the decoder while the next one fills.
        let (to_decoder, from_poller) = std::sync::mpsc::sync_channel::<Pending>(1);
        let tx = self.tx.clone();
        let decoding = std::thread::Builder::new()
            .name(format!("kafka-decode-{}-{}", self.source, self.task))
            .spawn(move || {
                while let Ok(p) = from_poller.recv() {
                    if tx.blocking_send(emitter.emit(p)).is_err() {
                        return;
                    }
                }
            });
        let Ok(decoding) = decoding else {
            let _ = self.tx.blocking_send(Err(ConnectorError::Internal(
                "cannot start a Kafka decoding thread".into(),
            )));
            return;
        };
        let stats = self.poll_loop(&to_decoder);
        debug!(
            task = self.task,
            polls = stats.polls,
            empty_polls = stats.empty,
            waited_for_broker_ms = stats.broker.as_millis() as u64,
            waited_for_decoder_ms = stats.decoder.as_millis() as u64,
            "Kafka task finished polling"
        );
        // Let the decoder finish what it was given before the task ends.
        drop(to_decoder);
        let _ = decoding.join();
    }

    fn poll_loop(&mut self, to_decoder: &std::sync::mpsc::SyncSender<Pending>) -> PollStats {
        let mut stats = PollStats::default();
        let mut pending = Pending::default();
        let mut last_warning: Option<Instant> = None;
        let consumer = Arc::clone(&self.consumer);
        // Reading the clock per message costs more than buffering it: the linger
        // deadline is checked every 1024 messages and whenever a poll comes back empty.
        let mut idle = true;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return stats;
            }
            let wait = match pending.first {
                Some(t) if idle => self
                    .policy
                    .linger
                    .saturating_sub(t.elapsed())
                    .min(Duration::from_millis(100)),
                Some(_) => Duration::from_millis(10),
                None => Duration::from_millis(100),
            };
            idle = false;
            stats.polls += 1;
            let polled = pending.messages.is_empty().then(Instant::now);
            match consumer.poll(wait) {
                None => {
                    idle = true;
                    stats.empty += 1;
                    stats.broker += polled.map_or(wait, |t| t.elapsed());
                }
                Some(Ok(m)) => match self.end.as_mut().map(|b| b.admit(m.partition(), m.offset())) {
                    None | Some(Admit::Take) => self.buffer(&mut pending, &m),
                    Some(Admit::TakeLast) => {
                        self.buffer(&mut pending, &m);
                        self.pause(m.topic(), m.partition());
                    }
                    Some(Admit::Skip) => self.pause(m.topic(), m.partition()),
                },
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    // The fetch reached the partition's high watermark: read to its end.
                    if let Some(end) = self.end.as_mut() {
                        end.eof(p);
                    }
                }
                Some(Err(e)) if is_fatal(&e) => {
                    let _ = self
                        .tx
                        .blocking_send(Err(kafka_error(format!("Kafka consumer (task {})", self.task), e)));
                    return stats;
                }
                // Transient: librdkafka reconnects and retries by itself.
                Some(Err(e)) if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) => {
                    warn!(source = %self.source, task = self.task, error = %e, "Kafka consumer error; retrying");
                    last_warning = Some(Instant::now());
                }
                Some(Err(_)) => {}
            }
            self.drop_revoked(&mut pending);
            let full = pending.messages.len() >= self.policy.max_rows || pending.values.len() >= self.policy.max_bytes;
            let check_clock = idle || pending.messages.len() % 1024 == 0;
            let lingered = check_clock && pending.first.is_some_and(|t| t.elapsed() >= self.policy.linger);
            let done = self.end.as_ref().is_some_and(Bounded::done);
            if (check_clock || done)
                && let Some(b) = self.end.as_mut()
            {
                b.learn(&self.consumer.context().shared);
            }
            if (full || lingered || done) && !pending.messages.is_empty() {
                let next = pending.sized_like();
                let sent = Instant::now();
                if to_decoder.send(std::mem::replace(&mut pending, next)).is_err() {
                    return stats;
                }
                stats.decoder += sent.elapsed();
            }
            if done {
                return stats;
            }
        }
    }

    /// Stops fetching a partition that a bounded run has read to its end.
    fn pause(&self, topic: &str, partition: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            debug!(task = self.task, topic, partition, error = %e, "could not pause a finished partition");
        }
    }

    fn buffer(&mut self, pending: &mut Pending, m: &rdkafka::message::BorrowedMessage<'_>) {
        // A handful of partitions per task: a linear scan beats hashing, and allocates nothing.
        let partition = match pending
            .names
            .iter()
            .position(|((t, p), _)| *p == m.partition() && t == m.topic())
        {
            Some(i) => i,
            None => {
                let name: Arc<str> = Arc::from(partition_key(m.topic(), m.partition()));
                pending.names.push(((m.topic().to_string(), m.partition()), name));
                pending.names.len() - 1
            }
        };
        let range = |buf: &mut Vec<u8>, bytes: Option<&[u8]>| {
            bytes.map(|b| {
                let start = buf.len();
                buf.extend_from_slice(b);
                start..buf.len()
            })
        };
        // Values are newline-terminated as they are copied in, so the text decoders can
        // take the whole buffer as their input without joining the records again.
        let value = range(&mut pending.values, m.payload());
        if value.is_some() {
            pending.values.push(b'\n');
        }
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(Bytes::copy_from_slice)))
                    .collect()
            })
            .unwrap_or_default();
        let b = Buffered {
            partition,
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: range(&mut pending.keys, m.key()),
            value,
            headers,
        };
        if pending.messages.is_empty() {
            pending.first = Some(Instant::now());
        }
        pending.messages.push(b);
    }

    fn drop_revoked(&self, pending: &mut Pending) {
        let revoked = std::mem::take(&mut *lock(&self.consumer.context().revoked));
        if revoked.is_empty() {
            return;
        }
        let gone: BTreeSet<usize> = pending
            .names
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| revoked.contains(k))
            .map(|(i, _)| i)
            .collect();
        if !gone.is_empty() {
            let before = pending.messages.len();
            pending.messages.retain(|m| !gone.contains(&m.partition));
            debug!(
                task = self.task,
                dropped = before - pending.messages.len(),
                "dropped buffered records of revoked partitions"
            );
            if pending.messages.is_empty() {
                pending.first = None;
            }
        }
    }
}

impl Emitter {
    /// Decodes a buffer into a batch.
    fn emit(&mut self, pending: Pending) -> Result<SourceBatch> {
        let Pending {
            names,
            keys,
            values,
            messages,
            ..
        } = pending;
        let keys = Bytes::from(keys);
        let values = Bytes::from(values);
        let slice = |buf: &Bytes, r: &Option<std::ops::Range<usize>>| r.as_ref().map(|r| buf.slice(r.clone()));
        let payloads: Vec<Option<&[u8]>> = messages
            .iter()
            .map(|m| m.value.as_ref().map(|r| &values[r.clone()]))
            .collect();
        if let Some(watch) = &mut self.watch {
            // Before anything of the buffer is emitted, so the record is read again
            // after its columns are added.
            for (m, payload) in messages.iter().zip(&payloads) {
                let added = payload.map(|p| watch.added(p)).unwrap_or_default();
                if !added.is_empty() {
                    return Err(ConnectorError::SchemaGrew {
                        context: format!(
                            "the Connect schema of the record at {}, offset {}",
                            names[m.partition].1, m.offset
                        ),
                        added,
                    });
                }
            }
        }
        let decoded = self.decoder.decode_joined(&payloads, &values)?;
        // The position after the last record of each partition in the batch.
        let mut next: Vec<Option<i64>> = vec![None; names.len()];
        for m in &messages {
            let n = &mut next[m.partition];
            *n = Some(n.map_or(m.offset + 1, |o| o.max(m.offset + 1)));
        }
        let mut offsets = Offsets::default();
        for (i, n) in next.iter().enumerate() {
            if let Some(n) = n {
                offsets.0.insert(names[i].1.to_string(), serde_json::Value::from(*n));
            }
        }
        lock(&self.shared.emitted).merge(&offsets);
        let raw_of = |m: &Buffered| RawRecord {
            key: slice(&keys, &m.key),
            value: slice(&values, &m.value),
            headers: m.headers.clone(),
            timestamp: m.timestamp,
        };
        let mut rejected: Vec<RejectedRecord> = Vec::new();
        let reject = |m: &Buffered, error: String| RejectedRecord {
            source: self.source.clone(),
            partition: names[m.partition].1.to_string(),
            position: m.offset,
            stage: Stage::Decode,
            error,
            record: serde_json::Value::String(
                m.value
                    .as_ref()
                    .map(|r| String::from_utf8_lossy(&values[r.clone()]).into_owned())
                    .unwrap_or_default(),
            ),
            raw: Some(raw_of(m)),
        };
        for (i, e) in &decoded.bad {
            rejected.push(reject(&messages[*i], e.clone()));
        }
        let mut meta = MetaBuilder::new(self.config.key_format, decoded.good.len(), self.wanted);
        let mut rows: Vec<u32> = Vec::with_capacity(decoded.good.len());
        let mut origins = RowOrigins::with_capacity(decoded.good.len());
        let mut raw = Vec::with_capacity(decoded.good.len());
        for (row, &i) in decoded.good.iter().enumerate() {
            let m = &messages[i];
            let key = m.key.as_ref().map(|r| &keys[r.clone()]);
            if let Err(e) = meta.check_key(key) {
                rejected.push(reject(m, e));
                continue;
            }
            meta.push(&Meta {
                key,
                topic: &names[m.partition].0.0,
                partition: names[m.partition].0.1,
                offset: m.offset,
                timestamp: m.timestamp,
                headers: &m.headers,
            });
            rows.push(row as u32);
            origins.push(&names[m.partition].1, m.offset);
            if self.keep_raw {
                raw.push(raw_of(m));
            }
        }
        self.read.fetch_add(messages.len() as u64, Ordering::Relaxed);
        let mut columns: Vec<ArrayRef> = decoded.batch.columns().to_vec();
        if rows.len() != decoded.batch.num_rows() {
            let idx = UInt32Array::from(rows);
            columns = match columns
                .iter()
                .map(|c| take(c, &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()
            {
                Ok(c) => c,
                Err(e) => return Err(ConnectorError::arrow("dropping records with bad keys", e)),
            };
        }
        let meta_fields = &self.schema.fields()[self.schema.fields().len().saturating_sub(metadata::COUNT)..];
        columns.extend(meta.finish(meta_fields));
        let batch = match RecordBatch::try_new(Arc::clone(&self.schema), columns) {
            Ok(b) => b,
            Err(e) => return Err(ConnectorError::arrow("assembling Kafka rows", e)),
        };
        rejected.sort_by_key(|r| r.position);
        Ok(SourceBatch {
            batch,
            origins,
            offsets,
            rejected,
            raw,
            filtered: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bounded task takes each partition up to the end it learned, then skips;
    /// a partition that reports its end before any end was learned ends there.
    #[test]
    fn bounded_runs_stop_each_partition_at_its_end() {
        let mut b = Bounded::new("t", 3);
        assert!(matches!(b.admit(0, 5), Admit::Take), "no end known yet");
        b.eof(1);
        assert_eq!(
            (b.parts[1].end, b.open),
            (Some(0), 2),
            "nothing read: the end is where reading stopped"
        );
        assert!(matches!(b.admit(1, 0), Admit::Skip));
        b.parts[0].end = Some(8);
        assert!(matches!(b.admit(0, 6), Admit::Take));
        assert!(matches!(b.admit(0, 7), Admit::TakeLast));
        assert!(matches!(b.admit(0, 8), Admit::Skip), "past the end");
        assert!(!b.done(), "partition 2 is still open");
        b.parts[2].end = Some(3);
        assert!(
            matches!(b.admit(2, 4), Admit::Skip),
            "a record past the end closes the partition"
        );
        assert!(b.done());
        assert_eq!(
            (b.parts[0].first, b.parts[0].last),
            (Some(5), Some(7)),
            "a closed partition records nothing more"
        );
        for unknown in [-1, 3, i32::MAX] {
            assert!(matches!(b.admit(unknown, 0), Admit::Skip), "partition {unknown}");
        }
        b.eof(0);
        assert_eq!(
            (b.parts[0].end, b.open),
            (Some(8), 0),
            "a learned end stays; closing twice counts once"
        );
    }
}
