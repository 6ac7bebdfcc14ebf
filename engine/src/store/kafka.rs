//! A [`Store`] in three compacted Kafka topics: the distributed worker's state,
//! laid out as Kafka Connect lays out `config.storage.topic`,
//! `offset.storage.topic` and `status.storage.topic`.
//!
//! Records (keys and values are JSON, as Kafka Connect's internal converter writes):
//! - config topic (one partition, so every worker sees every change in one order):
//!   `connector-{name}` → `{"properties": {…}}`, `target-state-{name}` →
//!   `{"state": "STARTED"|"PAUSED", "state.v2": "STARTED"|"PAUSED"|"STOPPED"}`
//!   (Kafka Connect's shapes), and Quiver's own `quiver-connector-{name}` →
//!   `{"order", "columns"}` and `quiver-definition-{name}` → a console statement.
//!   A deleted connector leaves tombstones. Keys Quiver does not write (a Kafka
//!   Connect cluster's `task-…`, `commit-…`, `session-key`) are skipped.
//! - offsets topic: `["{connector}", {"partition": "{source partition}"}]` →
//!   the position, `null` when forgotten; partitioned by murmur2 of the key bytes as
//!   Kafka's Java clients do, so one source partition's history stays in order.
//! - status topic: `status-connector-{name}` and `status-task-{name}-{id}` →
//!   `{"state", "trace", "worker_id", "generation"}`.
//!
//! Design notes:
//! - Every worker keeps a copy of all three topics in memory: at open it reads
//!   each to the end (the high watermarks it saw first) before it answers anything,
//!   and a reader thread then follows them, so what another worker writes shows up
//!   here within a poll.
//! - A write is produced (idempotent, `acks=all`) and then waited for until the
//!   reader has read past it: a worker reads its own writes, in the topic's order,
//!   never ahead of what every other worker will read.
//! - Reads answer from memory and never block on Kafka; [`Store::check`] asks the
//!   cluster for the config topic's metadata, so `/health` says when Kafka is gone.
//!   Writes while Kafka is unreachable fail after [`WRITE_TIMEOUT`] with an error
//!   naming the broker; nothing is half-applied (the copy changes only when the
//!   record comes back through the topic).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use quiver_connectors::api::Offsets;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::{ConnectorRecord, Definition, FoundColumns, OffsetChanges, Store, TargetState, TaskElsewhere};
use crate::error::{EngineError, Result};

/// How long a write may wait for Kafka before it fails.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening waits to read the topics to their ends.
const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the state lives: Kafka Connect's distributed worker properties.
#[derive(Clone, PartialEq)]
pub struct KafkaTopics {
    pub bootstrap_servers: String,
    pub config_topic: String,
    pub config_replication: i32,
    pub offsets_topic: String,
    pub offsets_partitions: i32,
    pub offsets_replication: i32,
    pub status_topic: String,
    pub status_partitions: i32,
    pub status_replication: i32,
    /// Client settings every internal client gets (`security.protocol`, `sasl.*`).
    pub client: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaTopics {
    /// The client settings by key only: they hold SASL passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTopics")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("config_topic", &self.config_topic)
            .field("offsets_topic", &self.offsets_topic)
            .field("status_topic", &self.status_topic)
            .field("client", &self.client.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One task's or connector's status as the status topic holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    pub state: String,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i64,
    /// Quiver's own: the REST URL of the worker (on the active-worker record).
    pub url: Option<String>,
}

#[derive(Debug, Default)]
struct Copy {
    connectors: BTreeMap<String, BTreeMap<String, String>>,
    targets: BTreeMap<String, TargetState>,
    extras: BTreeMap<String, (u64, Option<FoundColumns>)>,
    definitions: BTreeMap<String, Definition>,
    offsets: BTreeMap<String, Offsets>,
    statuses: BTreeMap<String, StatusRecord>,
    /// Config records applied so far.
    config_changes: u64,
    /// The next offset to read, per topic and partition.
    positions: HashMap<(String, i32), i64>,
}

/// The three topics, read into memory and followed.
pub struct KafkaStore {
    topics: KafkaTopics,
    producer: FutureProducer,
    /// While this worker holds the work: a transactional producer whose id the
    /// next holder takes over, which fences this one (see [`KafkaStore::claim`]).
    claimed: tokio::sync::Mutex<Option<FutureProducer>>,
    copy: Arc<Mutex<Copy>>,
    /// Woken whenever the reader has applied records.
    progressed: Arc<tokio::sync::Notify>,
    stop: Arc<AtomicBool>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Read to the end once: until then nothing is answered from the copy.
    loaded: AtomicBool,
    /// Set when this worker lost its membership: every later write fails.
    fenced: AtomicBool,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStore").field("topics", &self.topics).finish()
    }
}

fn lock(m: &Mutex<Copy>) -> std::sync::MutexGuard<'_, Copy> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KafkaTopics {
    /// A client config with the brokers and the worker's security settings.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> EngineError {
        EngineError::State {
            path: format!("kafka://{}", self.bootstrap_servers),
            message: format!("{what}: {e}"),
        }
    }
}

impl KafkaStore {
    /// A store over the topics; nothing is read until [`KafkaStore::load`].
    pub fn new(topics: KafkaTopics) -> Result<Self> {
        let producer: FutureProducer = topics
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", WRITE_TIMEOUT.as_millis().to_string())
            .create()
            .map_err(|e| topics.failed("cannot create the state producer", e))?;
        Ok(Self {
            topics,
            producer,
            claimed: tokio::sync::Mutex::new(None),
            copy: Arc::new(Mutex::new(Copy::default())),
            progressed: Arc::new(tokio::sync::Notify::new()),
            stop: Arc::new(AtomicBool::new(false)),
            reader: Mutex::new(None),
            loaded: AtomicBool::new(false),
            fenced: AtomicBool::new(false),
        })
    }

    /// A store read to the end (tests and tools; the worker calls [`KafkaStore::load`]
    /// and retries).
    pub async fn open(topics: KafkaTopics) -> Result<Self> {
        let store = Self::new(topics)?;
        store.load().await?;
        Ok(store)
    }

    pub fn topics(&self) -> &KafkaTopics {
        &self.topics
    }

    /// Whether [`KafkaStore::load`] has finished.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Makes every later write fail: the worker lost its place in the group, and
    /// another may already own what it wrote (see `crate::cluster`). Writes still
    /// queued in the producer are dropped.
    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
        rdkafka::producer::Producer::purge(
            &self.producer,
            rdkafka::producer::PurgeConfig::default().queue().inflight(),
        );
    }

    /// Lets writes through again (the worker holds its place again).
    pub fn unfence(&self) {
        self.fenced.store(false, Ordering::Release);
    }

    /// Creates the topics that are missing, reads all three to their ends and
    /// starts following them. Fails (to be retried) while Kafka is unreachable.
    pub async fn load(&self) -> Result<()> {
        if self.is_loaded() {
            return Ok(());
        }
        let topics = &self.topics;
        create_topics(topics).await?;
        let consumer: BaseConsumer = topics
            .client_config()
            // librdkafka wants a group for assign(); it is never joined or committed to.
            .set("group.id", format!("{}-reader", topics.config_topic))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .map_err(|e| topics.failed("cannot create the state reader", e))?;
        // Every partition of the three topics from its start, and where each ends
        // now (blocking metadata calls, off the async workers).
        let (consumer, assignment, ends) = {
            let topics = topics.clone();
            tokio::task::spawn_blocking(move || {
                let mut assignment = TopicPartitionList::new();
                let mut ends = HashMap::new();
                for topic in [&topics.config_topic, &topics.offsets_topic, &topics.status_topic] {
                    let md = consumer
                        .fetch_metadata(Some(topic), Duration::from_secs(10))
                        .map_err(|e| topics.failed(&format!("cannot read topic {topic}'s metadata"), e))?;
                    let partitions: Vec<i32> = md
                        .topics()
                        .iter()
                        .flat_map(|mt| mt.partitions().iter().map(|p| p.id()))
                        .collect();
                    if partitions.is_empty() {
                        return Err(topics.failed(&format!("topic {topic}"), "has no partitions"));
                    }
                    for p in partitions {
                        assignment
                            .add_partition_offset(topic, p, Offset::Beginning)
                            .map_err(|e| topics.failed("cannot assign the state topics", e))?;
                        let (_, high) = consumer
                            .fetch_watermarks(topic, p, Duration::from_secs(10))
                            .map_err(|e| topics.failed(&format!("cannot read {topic}[{p}]'s end"), e))?;
                        ends.insert((topic.clone(), p), high);
                    }
                }
                Ok((consumer, assignment, ends))
            })
            .await
            .map_err(|e| self.topics.failed("reading the topics' ends ended abnormally", e))??
        };
        // A retry after a slow first read keeps the reader that already follows.
        self.follow_with(consumer, &assignment)?;
        let started = Instant::now();
        self.wait_until(READ_TO_END_TIMEOUT, |copy| {
            ends.iter()
                .all(|(tp, end)| copy.positions.get(tp).copied().unwrap_or(0) >= *end)
        })
        .await
        .map_err(|()| {
            topics.failed(
                "cannot read the state topics to their end",
                format!("not done after {}s", READ_TO_END_TIMEOUT.as_secs()),
            )
        })?;
        self.loaded.store(true, Ordering::Release);
        info!(
            config = %topics.config_topic,
            offsets = %topics.offsets_topic,
            status = %topics.status_topic,
            connectors = lock(&self.copy).connectors.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "read the state topics to their end"
        );
        Ok(())
    }

    /// Starts the reader thread on `consumer`, unless one already follows.
    fn follow_with(&self, consumer: BaseConsumer, assignment: &TopicPartitionList) -> Result<()> {
        let topics = &self.topics;
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if reader.is_some() {
            return Ok(());
        }
        consumer
            .assign(assignment)
            .map_err(|e| topics.failed("cannot assign the state topics", e))?;
        let (copy, progressed, stop, followed) = (
            Arc::clone(&self.copy),
            Arc::clone(&self.progressed),
            Arc::clone(&self.stop),
            topics.clone(),
        );
        *reader = Some(
            std::thread::Builder::new()
                .name("quiver-state-reader".into())
                .spawn(move || follow(&consumer, &followed, &copy, &progressed, &stop))
                .map_err(|e| topics.failed("cannot start the state reader", e))?,
        );
        Ok(())
    }

    /// Waits until `done` holds for the copy, or `limit` passes.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&Copy) -> bool) -> std::result::Result<(), ()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let woken = self.progressed.notified();
            if done(&lock(&self.copy)) {
                return Ok(());
            }
            // The reader notifies after every poll that applied records; a short
            // timeout covers a notification that raced the check above.
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            if wait.is_zero() {
                return Err(());
            }
            let _ = tokio::time::timeout(wait.min(Duration::from_millis(200)), woken).await;
        }
    }

    /// Writes one record and waits until the reader has read past it.
    async fn write(&self, topic: &str, key: &[u8], value: Option<&Value>) -> Result<()> {
        self.write_all(topic, vec![(key.to_vec(), value.cloned())]).await
    }

    /// Writes records (in one transaction while the work is claimed) and waits
    /// until the reader has read past every one of them.
    async fn write_all(&self, topic: &str, records: Vec<(Vec<u8>, Option<Value>)>) -> Result<()> {
        let claimed = self.claimed.lock().await;
        let written = self.produce(claimed.as_ref(), None, topic, &records).await?;
        drop(claimed);
        self.read_back(topic, written).await
    }

    /// Sends records through `producer` (transactional) or the plain producer,
    /// unless this worker (or `own_fence`, a task's) is fenced; returns the last
    /// offset written per partition.
    async fn produce(
        &self,
        producer: Option<&FutureProducer>,
        own_fence: Option<&AtomicBool>,
        topic: &str,
        records: &[(Vec<u8>, Option<Value>)],
    ) -> Result<HashMap<(String, i32), i64>> {
        if records.is_empty() {
            return Ok(HashMap::new());
        }
        if self.fenced.load(Ordering::Acquire) || own_fence.is_some_and(|f| f.load(Ordering::Acquire)) {
            return Err(self.topics.failed(
                &format!("refused to write to topic {topic}"),
                "this worker lost its place in the group; another worker owns the work now",
            ));
        }
        self.ready()?;
        match producer {
            Some(p) => {
                self.send_in_transaction(p, own_fence.unwrap_or(&self.fenced), topic, records)
                    .await
            }
            None => self.send(&self.producer, topic, records).await,
        }
    }

    /// Waits until the reader has read past what was written.
    async fn read_back(&self, topic: &str, written: HashMap<(String, i32), i64>) -> Result<()> {
        self.wait_until(WRITE_TIMEOUT, |copy| {
            written
                .iter()
                .all(|(tp, offset)| copy.positions.get(tp).copied().unwrap_or(0) > *offset)
        })
        .await
        .map_err(|()| {
            self.topics.failed(
                &format!("wrote to topic {topic}"),
                format!("but did not read it back within {}s", WRITE_TIMEOUT.as_secs()),
            )
        })
    }

    /// Sends records, all queued before any delivery is awaited (one round trip
    /// for a commit of many partitions, not one per partition; the producer keeps
    /// their order); returns the last offset written per partition.
    async fn send(
        &self,
        producer: &FutureProducer,
        topic: &str,
        records: &[(Vec<u8>, Option<Value>)],
    ) -> Result<HashMap<(String, i32), i64>> {
        let payloads: Vec<Option<String>> = records.iter().map(|(_, v)| v.as_ref().map(Value::to_string)).collect();
        // join_all polls in order, and a send is queued on its first poll.
        let deliveries = futures::future::join_all(records.iter().zip(&payloads).map(|((key, _), payload)| {
            let mut record = FutureRecord::to(topic).key(key);
            if let Some(p) = payload {
                record = record.payload(p.as_bytes());
            }
            producer.send(record, WRITE_TIMEOUT)
        }))
        .await;
        let mut written = HashMap::new();
        for delivery in deliveries {
            let delivery =
                delivery.map_err(|(e, _)| self.topics.failed(&format!("cannot write to topic {topic}"), e))?;
            let last = written
                .entry((topic.to_string(), delivery.partition))
                .or_insert(delivery.offset);
            *last = (*last).max(delivery.offset);
        }
        Ok(written)
    }

    /// [`KafkaStore::send`] inside a transaction of the claimed producer; a
    /// producer fenced by a newer holder fences the store for good.
    async fn send_in_transaction(
        &self,
        producer: &FutureProducer,
        fence: &AtomicBool,
        topic: &str,
        records: &[(Vec<u8>, Option<Value>)],
    ) -> Result<HashMap<(String, i32), i64>> {
        let outcome = async {
            transaction_call(producer, |p| p.begin_transaction()).await?;
            let written = match self.send(producer, topic, records).await {
                Ok(w) => w,
                Err(e) => {
                    let _ = transaction_call(producer, |p| p.abort_transaction(WRITE_TIMEOUT)).await;
                    return Ok(Err(e));
                }
            };
            transaction_call(producer, |p| p.commit_transaction(WRITE_TIMEOUT)).await?;
            Ok::<_, rdkafka::error::KafkaError>(Ok(written))
        }
        .await;
        match outcome {
            Ok(result) => result,
            Err(e) => {
                let fenced = matches!(&e, rdkafka::error::KafkaError::Transaction(t) if t.is_fatal());
                if fenced {
                    fence.store(true, Ordering::Release);
                    warn!(error = %e, "writes under this transactional id were fenced: another worker holds the work");
                    return Err(self.topics.failed(
                        &format!("refused to write to topic {topic}"),
                        format!("this worker was fenced by the worker that holds the work now ({e})"),
                    ));
                }
                let _ = transaction_call(producer, |p| p.abort_transaction(WRITE_TIMEOUT)).await;
                Err(self
                    .topics
                    .failed(&format!("cannot write to topic {topic} in a transaction"), e))
            }
        }
    }

    /// Makes this worker the one writer of the cluster's state: later writes go
    /// in transactions of `transactional_id`, and taking that id fences whichever
    /// worker used it before (a zombie that still thinks it holds the work: its
    /// next write fails, at the broker).
    pub async fn claim(&self, transactional_id: &str) -> Result<()> {
        let producer = self.transactional(transactional_id).await?;
        *self.claimed.lock().await = Some(producer);
        self.fenced.store(false, Ordering::Release);
        info!(%transactional_id, "this worker writes the cluster's state in transactions now");
        Ok(())
    }

    /// A producer that owns `transactional_id` now: `InitProducerId` bumps the
    /// id's epoch, so the broker refuses every later write of its previous owner.
    async fn transactional(&self, transactional_id: &str) -> Result<FutureProducer> {
        let producer: FutureProducer = self
            .topics
            .client_config()
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "60000")
            .set("message.timeout.ms", WRITE_TIMEOUT.as_millis().to_string())
            .set("partitioner", "murmur2_random")
            .create()
            .map_err(|e| self.topics.failed("cannot create a transactional state producer", e))?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || rdkafka::producer::Producer::init_transactions(&init, WRITE_TIMEOUT))
            .await
            .map_err(|e| self.topics.failed("claiming a transactional id ended abnormally", e))?
            .map_err(|e| {
                self.topics
                    .failed(&format!("cannot claim transactional id {transactional_id}"), e)
            })?;
        Ok(producer)
    }

    /// A store for one task that this worker was given: it reads what the worker's
    /// store reads, and commits the task's offsets in transactions under
    /// `transactional_id` (one per connector task), so that the worker the task
    /// ran on before cannot commit for it any more (see `crate::cluster`).
    pub async fn task_writer(self: &Arc<Self>, transactional_id: &str) -> Result<TaskWriter> {
        let producer = self.transactional(transactional_id).await?;
        Ok(TaskWriter {
            store: Arc::clone(self),
            producer,
            fenced: AtomicBool::new(false),
            id: transactional_id.to_string(),
        })
    }

    /// How many config records the reader has applied: it grows when any worker
    /// changes a connector.
    pub fn config_changes(&self) -> u64 {
        lock(&self.copy).config_changes
    }

    /// Stops writing as the holder of the work (after handing it over).
    pub async fn release(&self) {
        self.claimed.lock().await.take();
    }

    /// Fails until the topics have been read to their end.
    fn ready(&self) -> Result<()> {
        if self.is_loaded() {
            Ok(())
        } else {
            Err(self
                .topics
                .failed("the state topics", "have not been read yet (Kafka unreachable?)"))
        }
    }

    /// Every status record, by key (`status-connector-…`, `status-task-…`).
    pub fn statuses(&self) -> BTreeMap<String, StatusRecord> {
        lock(&self.copy).statuses.clone()
    }

    /// Records a connector's or task's status for every worker to read.
    pub async fn put_status(&self, key: &str, status: &StatusRecord) -> Result<()> {
        let value = json!({
            "state": status.state,
            "trace": status.trace,
            "worker_id": status.worker_id,
            "generation": status.generation,
            "url": status.url,
        });
        self.write(&self.topics.status_topic, key.as_bytes(), Some(&value))
            .await
    }

    /// Forgets a status (a deleted connector's): a tombstone, as Kafka Connect writes.
    pub async fn remove_status(&self, key: &str) -> Result<()> {
        self.write(&self.topics.status_topic, key.as_bytes(), None).await
    }

    fn offset_key(connector: &str, partition: &str) -> Vec<u8> {
        json!([connector, {"partition": partition}]).to_string().into_bytes()
    }
}

impl Drop for KafkaStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = reader.join();
        }
    }
}

/// A (blocking) transaction call of librdkafka, off the async workers.
async fn transaction_call(
    producer: &FutureProducer,
    call: impl FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<()> + Send + 'static,
) -> rdkafka::error::KafkaResult<()> {
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || call(&producer))
        .await
        .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
}

/// Creates the state topics that do not exist, compacted, with the configured
/// partitions and replication; an existing topic is used as it is.
async fn create_topics(t: &KafkaTopics) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = t
        .client_config()
        .create()
        .map_err(|e| t.failed("cannot create an admin client", e))?;
    let wanted = [
        (&t.config_topic, 1, t.config_replication),
        (&t.offsets_topic, t.offsets_partitions, t.offsets_replication),
        (&t.status_topic, t.status_partitions, t.status_replication),
    ];
    // Only the missing ones: a cluster where the worker may not create topics (or
    // a broker without the admin API) works with topics an operator created.
    let existing = existing_topics(t).await?;
    let new: Vec<NewTopic> = wanted
        .iter()
        .filter(|(name, _, _)| !existing.contains(name.as_str()))
        .map(|(name, partitions, replication)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(*replication)).set("cleanup.policy", "compact")
        })
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &options)
        .await
        .map_err(|e| t.failed("cannot create the state topics", e))?;
    for result in results {
        match result {
            Ok(topic) => info!(%topic, "created state topic (cleanup.policy=compact)"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, e)) => return Err(t.failed(&format!("cannot create topic {topic}"), e)),
        }
    }
    Ok(())
}

/// The names of the topics the cluster has (a metadata request for every topic,
/// which never creates one), asked off the async workers.
pub(crate) async fn existing_topics(t: &KafkaTopics) -> Result<std::collections::HashSet<String>> {
    let topics = t.clone();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = topics
            .client_config()
            .create()
            .map_err(|e| topics.failed("cannot create a metadata client", e))?;
        let md = client
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|e| topics.failed("cannot list the cluster's topics", e))?;
        Ok(md.topics().iter().map(|m| m.name().to_string()).collect())
    })
    .await
    .map_err(|e| t.failed("listing the topics ended abnormally", e))?
}

/// The reader thread: applies every record of the three topics to the copy.
fn follow(
    consumer: &BaseConsumer,
    topics: &KafkaTopics,
    copy: &Mutex<Copy>,
    progressed: &tokio::sync::Notify,
    stop: &AtomicBool,
) {
    let mut last_error: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut next = consumer.poll(Duration::from_millis(100));
        let mut copy = lock(copy);
        while let Some(result) = next.take() {
            match result {
                Ok(m) => {
                    let topic = m.topic();
                    apply(&mut copy, topics, topic, m.key(), m.payload());
                    copy.positions
                        .insert((topic.to_string(), m.partition()), m.offset() + 1);
                }
                Err(e) => {
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                        warn!(error = %e, brokers = %topics.bootstrap_servers, "reading the state topics failed; retrying");
                        last_error = Some(Instant::now());
                    }
                }
            }
            next = consumer.poll(Duration::ZERO);
        }
        // The consumer's own positions also move past transaction markers, which
        // carry no record: the end of a topic written in transactions is reached.
        if let Ok(positions) = consumer.position() {
            for e in positions.elements() {
                if let Offset::Offset(n) = e.offset() {
                    let at = copy
                        .positions
                        .entry((e.topic().to_string(), e.partition()))
                        .or_insert(0);
                    *at = (*at).max(n);
                }
            }
        }
        drop(copy);
        progressed.notify_waiters();
    }
}

/// Applies one record to the copy; a record that does not parse is skipped with
/// a warning (another tool may share the topic).
fn apply(copy: &mut Copy, topics: &KafkaTopics, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) {
    let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
        return;
    };
    let value: Option<Value> = match value.map(serde_json::from_slice::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v).filter(|v| !v.is_null()),
        Some(Err(e)) => {
            warn!(%topic, %key, error = %e, "state record is not JSON; skipped");
            return;
        }
    };
    if topic == topics.config_topic {
        apply_config(copy, key, value);
        copy.config_changes += 1;
    } else if topic == topics.offsets_topic {
        let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(key) else {
            debug!(%key, "offsets record with a key Quiver does not write; skipped");
            return;
        };
        let (Some(connector), Some(partition)) = (
            parts.first().and_then(Value::as_str),
            parts.get(1).and_then(|p| p["partition"].as_str()),
        ) else {
            return;
        };
        let offsets = copy.offsets.entry(connector.to_string()).or_default();
        match value {
            Some(v) => {
                offsets.0.insert(partition.to_string(), v);
            }
            None => {
                offsets.0.remove(partition);
                if offsets.is_empty() {
                    copy.offsets.remove(connector);
                }
            }
        }
    } else if topic == topics.status_topic {
        match value {
            Some(v) => {
                let status = StatusRecord {
                    state: v["state"].as_str().unwrap_or("UNASSIGNED").to_string(),
                    trace: v["trace"].as_str().map(str::to_string),
                    worker_id: v["worker_id"].as_str().unwrap_or_default().to_string(),
                    generation: v["generation"].as_i64().unwrap_or(0),
                    url: v["url"].as_str().map(str::to_string),
                };
                copy.statuses.insert(key.to_string(), status);
            }
            None => {
                copy.statuses.remove(key);
            }
        }
    }
}

fn apply_config(copy: &mut Copy, key: &str, value: Option<Value>) {
    if let Some(name) = key.strip_prefix("connector-") {
        match value.as_ref().and_then(|v| v["properties"].as_object()) {
            Some(props) => {
                let config = props
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect();
                copy.connectors.insert(name.to_string(), config);
            }
            None => {
                copy.connectors.remove(name);
            }
        }
    } else if let Some(name) = key.strip_prefix("target-state-") {
        let state = value
            .as_ref()
            .and_then(|v| v["state.v2"].as_str().or_else(|| v["state"].as_str()));
        match state {
            Some("PAUSED") => copy.targets.insert(name.to_string(), TargetState::Paused),
            Some("STOPPED") => copy.targets.insert(name.to_string(), TargetState::Stopped),
            Some(_) => copy.targets.insert(name.to_string(), TargetState::Running),
            None => copy.targets.remove(name),
        };
    } else if let Some(name) = key.strip_prefix("quiver-connector-") {
        match value {
            Some(v) => {
                let columns = serde_json::from_value(v["columns"].clone()).ok();
                copy.extras
                    .insert(name.to_string(), (v["order"].as_u64().unwrap_or(0), columns));
            }
            None => {
                copy.extras.remove(name);
            }
        }
    } else if let Some(name) = key.strip_prefix("quiver-definition-") {
        match value.map(serde_json::from_value::<Definition>) {
            Some(Ok(d)) => {
                copy.definitions.insert(name.to_string(), d);
            }
            Some(Err(e)) => warn!(%key, error = %e, "console statement record does not parse; skipped"),
            None => {
                copy.definitions.remove(name);
            }
        }
    }
}

/// Kafka Connect's target-state value: `state` for workers that know only
/// STARTED and PAUSED, `state.v2` with STOPPED (KIP-875).
fn target_value(target: TargetState) -> Value {
    match target {
        TargetState::Running => json!({"state": "STARTED", "state.v2": "STARTED"}),
        TargetState::Paused => json!({"state": "PAUSED", "state.v2": "PAUSED"}),
        TargetState::Stopped => json!({"state": "PAUSED", "state.v2": "STOPPED"}),
    }
}

#[async_trait]
impl Store for KafkaStore {
    fn location(&self) -> String {
        format!(
            "Kafka topics {}, {} and {} at {}",
            self.topics.config_topic,
            self.topics.offsets_topic,
            self.topics.status_topic,
            self.topics.bootstrap_servers
        )
    }

    async fn check(&self) -> Result<()> {
        self.ready()?;
        let producer = self.producer.clone();
        let topics = self.topics.clone();
        tokio::task::spawn_blocking(move || {
            rdkafka::producer::Producer::client(&producer)
                .fetch_metadata(Some(&topics.config_topic), Duration::from_millis(1500))
                .map(drop)
                .map_err(|e| topics.failed("Kafka does not answer", e))
        })
        .await
        .map_err(|e| self.topics.failed("the health check ended abnormally", e))?
    }

    async fn offsets(&self, connector: &str) -> Result<Option<Offsets>> {
        self.ready()?;
        Ok(lock(&self.copy).offsets.get(connector).cloned())
    }

    fn task_status(&self, connector: &str, task: u32) -> Option<TaskElsewhere> {
        let copy = lock(&self.copy);
        let record = copy.statuses.get(&format!("status-task-{connector}-{task}"))?;
        Some(TaskElsewhere {
            state: record.state.clone(),
            worker_id: record.worker_id.clone(),
            trace: record.trace.clone(),
        })
    }

    async fn commit_offsets(&self, connector: &str, offsets: &Offsets) -> Result<()> {
        let records = offsets
            .0
            .iter()
            .map(|(p, v)| (Self::offset_key(connector, p), Some(v.clone())))
            .collect();
        self.write_all(&self.topics.offsets_topic, records).await
    }

    async fn alter_offsets(&self, connector: &str, changes: &OffsetChanges) -> Result<()> {
        let records = changes
            .iter()
            .map(|(p, v)| (Self::offset_key(connector, p), v.clone()))
            .collect();
        self.write_all(&self.topics.offsets_topic, records).await
    }

    async fn reset_offsets(&self, connector: &str) -> Result<()> {
        let partitions: Vec<String> = lock(&self.copy)
            .offsets
            .get(connector)
            .map(|o| o.0.keys().cloned().collect())
            .unwrap_or_default();
        let records = partitions
            .iter()
            .map(|p| (Self::offset_key(connector, p), None))
            .collect();
        self.write_all(&self.topics.offsets_topic, records).await
    }

    async fn connectors(&self) -> Result<Vec<ConnectorRecord>> {
        self.ready()?;
        let copy = lock(&self.copy);
        let mut all: Vec<ConnectorRecord> = copy
            .connectors
            .iter()
            .map(|(name, config)| {
                let (order, columns) = copy.extras.get(name).cloned().unwrap_or((u64::MAX, None));
                ConnectorRecord {
                    name: name.clone(),
                    config: config.clone(),
                    target: copy.targets.get(name).copied().unwrap_or_default(),
                    order,
                    columns,
                }
            })
            .collect();
        all.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        Ok(all)
    }

    async fn put_connector(&self, record: &ConnectorRecord) -> Result<()> {
        let name = &record.name;
        // Quiver's extras and the target state first: a reader that sees the config
        // sees the state it was submitted with.
        let extras = json!({"order": record.order, "columns": record.columns});
        let records = vec![
            (format!("quiver-connector-{name}").into_bytes(), Some(extras)),
            (
                format!("target-state-{name}").into_bytes(),
                Some(target_value(record.target)),
            ),
            (
                format!("connector-{name}").into_bytes(),
                Some(json!({"properties": record.config})),
            ),
        ];
        self.write_all(&self.topics.config_topic, records).await
    }

    async fn remove_connector(&self, name: &str) -> Result<()> {
        let records = ["connector-", "target-state-", "quiver-connector-"]
            .iter()
            .map(|p| (format!("{p}{name}").into_bytes(), None))
            .collect();
        self.write_all(&self.topics.config_topic, records).await
    }

    async fn definitions(&self) -> Result<Vec<Definition>> {
        self.ready()?;
        let mut all: Vec<Definition> = lock(&self.copy).definitions.values().cloned().collect();
        all.sort_by_key(|d| d.order);
        Ok(all)
    }

    async fn save_definition(&self, def: &Definition) -> Result<()> {
        let value = serde_json::to_value(def).map_err(|e| self.topics.failed("cannot encode a statement", e))?;
        self.write(
            &self.topics.config_topic,
            format!("quiver-definition-{}", def.name).as_bytes(),
            Some(&value),
        )
        .await
    }

    async fn remove_definition(&self, name: &str) -> Result<()> {
        self.write(
            &self.topics.config_topic,
            format!("quiver-definition-{name}").as_bytes(),
            None,
        )
        .await
    }
}

/// One task's view of the store on the worker that runs it (see
/// [`KafkaStore::task_writer`]): reads are the worker's; offset commits go in
/// transactions of the task's own transactional id.
pub struct TaskWriter {
    store: Arc<KafkaStore>,
    producer: FutureProducer,
    /// Set when a newer owner of the id fenced this one: every later commit fails.
    fenced: AtomicBool,
    id: String,
}

impl std::fmt::Debug for TaskWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWriter")
            .field("transactional_id", &self.id)
            .finish()
    }
}

#[async_trait]
impl Store for TaskWriter {
    fn location(&self) -> String {
        self.store.location()
    }
    async fn check(&self) -> Result<()> {
        self.store.check().await
    }
    async fn offsets(&self, connector: &str) -> Result<Option<Offsets>> {
        self.store.offsets(connector).await
    }
    async fn commit_offsets(&self, connector: &str, offsets: &Offsets) -> Result<()> {
        let records: Vec<_> = offsets
            .0
            .iter()
            .map(|(p, v)| (KafkaStore::offset_key(connector, p), Some(v.clone())))
            .collect();
        let topic = &self.store.topics.offsets_topic;
        let written = self
            .store
            .produce(Some(&self.producer), Some(&self.fenced), topic, &records)
            .await?;
        self.store.read_back(topic, written).await
    }
    async fn alter_offsets(&self, connector: &str, changes: &OffsetChanges) -> Result<()> {
        self.store.alter_offsets(connector, changes).await
    }
    async fn reset_offsets(&self, connector: &str) -> Result<()> {
        self.store.reset_offsets(connector).await
    }
    async fn connectors(&self) -> Result<Vec<ConnectorRecord>> {
        self.store.connectors().await
    }
    async fn put_connector(&self, record: &ConnectorRecord) -> Result<()> {
        self.store.put_connector(record).await
    }
    async fn remove_connector(&self, name: &str) -> Result<()> {
        self.store.remove_connector(name).await
    }
    async fn definitions(&self) -> Result<Vec<Definition>> {
        self.store.definitions().await
    }
    async fn save_definition(&self, def: &Definition) -> Result<()> {
        self.store.save_definition(def).await
    }
    async fn remove_definition(&self, name: &str) -> Result<()> {
        self.store.remove_definition(name).await
    }
    fn task_status(&self, connector: &str, task: u32) -> Option<TaskElsewhere> {
        self.store.task_status(connector, task)
    }
}
