//! The Kafka sink: one producer, one message per row, durability from delivery reports.
//!
//! Every message carries its batch number as the delivery opaque; a batch is
//! durable once librdkafka has reported all of its messages delivered (with
//! `acks=all` and the idempotent producer, retried by librdkafka until
//! `delivery.timeout.ms`). A message that still fails stops the pipeline before
//! its batch's offsets can be committed, so a restart re-sends it.
//!
//! With `sink.delivery.guarantee = 'exactly-once'` the producer is transactional
//! (a stable `transactional.id` per sink, so a restarted pipeline fences its
//! predecessor). Batches are grouped into transactions of about a second; when the
//! source is Kafka, the consumed offsets are sent to the same transaction, and a
//! batch counts as durable only when its transaction has committed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use async_trait::async_trait;
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{info, warn};

use super::client::{client_config, kafka_error};
use super::config::{KafkaSinkConfig, KeyFormat};
use crate::api::{ConnectorError, OffsetCommitter, Offsets, Result, Sink, SinkContext, SinkReport};
use crate::formats::avro::SchemaRegistry;
use crate::formats::record::{Payloads, RecordEncoder, RecordFormat};

/// How long a flush or a transaction commit may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an exactly-once transaction stays open before it is committed.
const TRANSACTION_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Tracker {
    /// Batch number → messages not yet acknowledged.
    outstanding: BTreeMap<u64, usize>,
    /// Highest batch number handed to the producer.
    written: Option<u64>,
    /// The first delivery failure, with where it was going.
    failure: Option<String>,
    delivered: u64,
    bytes: u64,
    topics: BTreeMap<String, u64>,
}

impl Tracker {
    fn durable(&self) -> Option<u64> {
        match self.outstanding.keys().next() {
            Some(first) => first.checked_sub(1),
            None => self.written,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct DeliveryContext {
    tracker: Arc<Mutex<Tracker>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let mut t = lock(&self.tracker);
        match result {
            Ok(m) => {
                t.delivered += 1;
                t.bytes += m.payload_len() as u64;
                // Per delivered message: count without allocating the topic name.
                match t.topics.get_mut(m.topic()) {
                    Some(n) => *n += 1,
                    None => {
                        t.topics.insert(m.topic().to_string(), 1);
                    }
                }
                if let Some(n) = t.outstanding.get_mut(&(seq as u64)) {
                    *n -= 1;
                    if *n == 0 {
                        t.outstanding.remove(&(seq as u64));
                    }
                }
            }
            Err((e, m)) => {
                if t.failure.is_none() {
                    t.failure = Some(format!("delivering to {}/{} failed: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

/// Which column supplies what, found once from the output schema.
#[derive(Debug)]
struct Routing {
    topic: Option<usize>,
    key: Option<usize>,
    headers: Option<usize>,
    partition: Option<usize>,
    timestamp: Option<usize>,
    key_fields: Vec<usize>,
}

/// The state of an exactly-once sink.
struct Transactions {
    open: Option<Instant>,
    /// The last batch in the open transaction.
    last_seq: Option<u64>,
    committed_seq: Option<u64>,
    /// Source offsets of the batches in the open transaction.
    offsets: Offsets,
    /// The Kafka source's committer, asked for the group's identity at each commit.
    source: Option<Arc<dyn OffsetCommitter>>,
}

pub(crate) struct KafkaSink {
    name: String,
    config: KafkaSinkConfig,
    producer: ThreadedProducer<DeliveryContext>,
    tracker: Arc<Mutex<Tracker>>,
    encoder: RecordEncoder,
    key_encoder: Option<RecordEncoder>,
    routing: Routing,
    txn: Option<Transactions>,
    /// Rows of the last batch the broker can never accept.
    rejected: Vec<(usize, String)>,
}

impl KafkaSink {
    pub(crate) async fn start(config: KafkaSinkConfig, ctx: SinkContext) -> Result<Self> {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let mut cc = client_config(&config.bootstrap, &format!("quiver-{}", ctx.name), &config.properties);
        cc.set("compression.type", config.compression);
        if cc.get("enable.idempotence").is_none() {
            cc.set("enable.idempotence", "true");
        }
        if config.exactly_once {
            let prefix = config
                .transactional_prefix
                .clone()
                .unwrap_or_else(|| format!("quiver-{}", ctx.name));
            // One id per task: a pipeline's parallel tasks never fence each other, and
            // a restarted task fences its own predecessor.
            cc.set("transactional.id", format!("{prefix}-{}", ctx.task.index));
        }
        let producer: ThreadedProducer<DeliveryContext> = cc
            .create_with_context(DeliveryContext {
                tracker: Arc::clone(&tracker),
            })
            .map_err(|e| kafka_error(format!("creating Kafka producer for {}", config.bootstrap), e))?;
        let schema = &ctx.schema;
        let col = |n: &str| schema.index_of(n).ok();
        let routing = Routing {
            topic: col("_topic"),
            key: col("_key"),
            headers: col("_headers"),
            partition: col("_partition"),
            timestamp: col("_timestamp"),
            key_fields: config.key_fields.iter().filter_map(|k| col(k)).collect(),
        };
        let encoder = {
            // Avro registers its schema with the registry: HTTP, off the runtime's threads.
            let (format, schema) = (config.format, Arc::clone(schema));
            let registry = config.registry.clone();
            let subject = config
                .value_subject
                .clone()
                .or_else(|| config.topic.as_ref().map(|t| format!("{t}-value")))
                .unwrap_or_default();
            tokio::task::spawn_blocking(move || {
                let registry = registry.map(|r| SchemaRegistry::new(&r.url, r.basic_auth.as_deref()));
                RecordEncoder::new(
                    format,
                    &schema,
                    super::FORMAT.key,
                    registry.as_ref().map(|r| (r, subject.as_str())),
                )
            })
            .await
            .map_err(|e| ConnectorError::Internal(e.to_string()))??
        };
        let key_encoder = match (config.key_format, routing.key_fields.is_empty()) {
            (KeyFormat::Json, false) => {
                let key_schema = Arc::new(
                    schema
                        .project(&routing.key_fields)
                        .map_err(|e| ConnectorError::arrow("key.fields", e))?,
                );
                Some(RecordEncoder::new(
                    RecordFormat::Json { schemas: false },
                    &key_schema,
                    super::KEY_FIELDS.key,
                    None,
                )?)
            }
            _ => None,
        };
        let txn = if config.exactly_once {
            let p = producer.clone();
            tokio::task::spawn_blocking(move || p.init_transactions(FLUSH_TIMEOUT))
                .await
                .map_err(|e| ConnectorError::Internal(e.to_string()))?
                .map_err(|e| kafka_error(format!("initialising transactions on {}", config.bootstrap), e))?;
            Some(Transactions {
                open: None,
                last_seq: None,
                committed_seq: None,
                offsets: Offsets::default(),
                source: None,
            })
        } else {
            None
        };
        info!(sink = %ctx.name, bootstrap = %config.bootstrap, exactly_once = config.exactly_once, "Kafka sink started");
        Ok(Self {
            name: ctx.name,
            config,
            producer,
            tracker,
            encoder,
            key_encoder,
            routing,
            txn,
            rejected: Vec::new(),
        })
    }

    fn check_failure(&self) -> Result<()> {
        // A fatal error (fenced by a newer instance, idempotence broken) explains the
        // purged deliveries that follow it, so it is reported first.
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            let hint = if matches!(
                code,
                RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
            ) {
                " (another instance with the same transactional id took over)"
            } else {
                ""
            };
            return Err(ConnectorError::Config(format!(
                "Kafka sink '{}': fatal producer error: {reason}{hint}",
                self.name
            )));
        }
        match lock(&self.tracker).failure.clone() {
            Some(f) => Err(ConnectorError::Config(format!("Kafka sink '{}': {f}", self.name))),
            None => Ok(()),
        }
    }

    /// Sets a row of batch `seq` aside for the error policy: it will never be acknowledged.
    fn refuse(&mut self, row: usize, seq: u64, error: String) {
        self.rejected.push((row, error));
        let mut t = lock(&self.tracker);
        if let Some(n) = t.outstanding.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                t.outstanding.remove(&seq);
            }
        }
    }

    fn keys(&mut self, batch: &RecordBatch) -> Result<Option<Keys>> {
        if let Some(i) = self.routing.key {
            return Ok(Some(Keys::Column(batch.column(i).clone())));
        }
        if self.routing.key_fields.is_empty() {
            return Ok(None);
        }
        if let Some(enc) = self.key_encoder.as_mut() {
            let projected = batch
                .project(&self.routing.key_fields)
                .map_err(|e| ConnectorError::arrow("key.fields", e))?;
            return Ok(Some(Keys::Encoded(enc.encode(&projected)?)));
        }
        let column = batch.column(self.routing.key_fields[0]);
        let column = match (self.config.key_format, column.data_type()) {
            (KeyFormat::Bytes, DataType::Binary) => column.clone(),
            _ => cast(column, &DataType::Utf8).map_err(|e| ConnectorError::arrow("key.fields", e))?,
        };
        Ok(Some(Keys::Column(column)))
    }

    /// Commits the open transaction (exactly-once), sending the consumed offsets with it.
    async fn commit_transaction(&mut self) -> Result<()> {
        let Some(txn) = self.txn.as_mut() else { return Ok(()) };
        if txn.open.is_none() {
            return Ok(());
        }
        let producer = self.producer.clone();
        let offsets = std::mem::take(&mut txn.offsets);
        // Asked at every commit: the group's generation changes with each rebalance.
        let group = match txn
            .source
            .as_ref()
            .and_then(|c| c.as_any().downcast_ref::<super::source::GroupCommitter>())
        {
            Some(g) => Some(g.group_metadata()?),
            None => None,
        };
        let result = tokio::task::spawn_blocking(move || -> std::result::Result<(), rdkafka::error::KafkaError> {
            if let Some(group) = group {
                let tpl = offsets_tpl(&offsets);
                if tpl.count() > 0 {
                    producer.send_offsets_to_transaction(&tpl, &group, FLUSH_TIMEOUT)?;
                }
            }
            producer.commit_transaction(FLUSH_TIMEOUT)
        })
        .await
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        if let Err(e) = result {
            let p = self.producer.clone();
            let _ = tokio::task::spawn_blocking(move || p.abort_transaction(FLUSH_TIMEOUT)).await;
            return Err(kafka_error(
                format!("committing the transaction of Kafka sink '{}'", self.name),
                e,
            ));
        }
        txn.open = None;
        txn.committed_seq = txn.last_seq;
        Ok(())
    }
}

enum Keys {
    Column(ArrayRef),
    Encoded(Payloads),
}

impl Keys {
    fn get(&self, row: usize) -> Option<&[u8]> {
        match self {
            Keys::Encoded(p) => p.get(row),
            Keys::Column(c) if c.is_null(row) => None,
            Keys::Column(c) => match c.data_type() {
                DataType::Utf8 => Some(c.as_string::<i32>().value(row).as_bytes()),
                DataType::LargeUtf8 => Some(c.as_string::<i64>().value(row).as_bytes()),
                DataType::Binary => Some(c.as_binary::<i32>().value(row)),
                DataType::LargeBinary => Some(c.as_binary::<i64>().value(row)),
                _ => None,
            },
        }
    }
}

/// Produce errors that belong to one record rather than to the producer or broker.
fn is_record_error(e: &rdkafka::error::KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessageSize
        )
    )
}

fn offsets_tpl(offsets: &Offsets) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (k, v) in &offsets.0 {
        if let (Some((t, p)), Some(o)) = (k.rsplit_once('/'), v.as_i64())
            && let Ok(p) = p.parse::<i32>()
        {
            let _ = tpl.add_partition_offset(t, p, Offset::Offset(o));
        }
    }
    tpl
}

fn string_at(c: &ArrayRef, row: usize) -> Option<&str> {
    if c.is_null(row) {
        return None;
    }
    match c.data_type() {
        DataType::Utf8 => Some(c.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(c.as_string::<i64>().value(row)),
        _ => None,
    }
}

fn headers_at(c: &ArrayRef, row: usize) -> Option<OwnedHeaders> {
    let map = c.as_map_opt()?;
    if map.is_null(row) {
        return None;
    }
    let entries = map.value(row);
    let keys = entries.column(0);
    let values = entries.column(1);
    let mut h = OwnedHeaders::new_with_capacity(entries.len());
    for i in 0..entries.len() {
        let Some(k) = string_at(keys, i) else { continue };
        let v: Option<&[u8]> = if values.is_null(i) {
            None
        } else {
            match values.data_type() {
                DataType::Binary => Some(values.as_binary::<i32>().value(i)),
                DataType::Utf8 => Some(values.as_string::<i32>().value(i).as_bytes()),
                _ => None,
            }
        };
        h = h.insert(Header { key: k, value: v });
    }
    Some(h)
}

/// A `_timestamp` column as milliseconds since the epoch, converted once per batch.
fn timestamps_ms(c: &ArrayRef) -> Result<arrow::array::Int64Array> {
    let ms = match c.data_type() {
        DataType::Timestamp(_, _) => cast(c, &DataType::Timestamp(TimeUnit::Millisecond, None))
            .and_then(|t| cast(&t, &DataType::Int64))
            .map_err(|e| ConnectorError::arrow("converting _timestamp to milliseconds", e))?,
        _ => cast(c, &DataType::Int64).map_err(|e| ConnectorError::arrow("reading _timestamp", e))?,
    };
    Ok(ms.as_primitive::<arrow::datatypes::Int64Type>().clone())
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        self.check_failure()?;
        if let Some(txn) = self.txn.as_mut()
            && txn.open.is_none()
        {
            self.producer
                .begin_transaction()
                .map_err(|e| kafka_error(format!("beginning a transaction in Kafka sink '{}'", self.name), e))?;
            txn.open = Some(Instant::now());
        }
        let rows = batch.num_rows();
        let payloads = self.encoder.encode(&batch)?;
        let keys = self.keys(&batch)?;
        let r = &self.routing;
        let topics = r.topic.map(|i| batch.column(i).clone());
        let partitions = match r.partition {
            Some(i) => {
                Some(cast(batch.column(i), &DataType::Int32).map_err(|e| ConnectorError::arrow("_partition", e))?)
            }
            None => None,
        };
        let headers = r.headers.map(|i| batch.column(i).clone());
        let timestamps = r.timestamp.map(|i| timestamps_ms(batch.column(i))).transpose()?;
        {
            let mut t = lock(&self.tracker);
            if rows > 0 {
                t.outstanding.insert(seq, rows);
            }
            t.written = Some(seq);
        }
        let static_topic = self.config.topic.clone();
        for row in 0..rows {
            let topic = match topics
                .as_ref()
                .and_then(|c| string_at(c, row))
                .or(static_topic.as_deref())
            {
                Some(t) => t,
                None => {
                    self.refuse(
                        row,
                        seq,
                        "_topic is NULL and the sink has no topic option to fall back on".to_string(),
                    );
                    continue;
                }
            };
            let mut record = BaseRecord::with_opaque_to(topic, seq as usize);
            if let Some(p) = payloads.get(row) {
                record = record.payload(p);
            }
            if let Some(k) = keys.as_ref().and_then(|k| k.get(row)) {
                record = record.key(k);
            }
            if let Some(p) = partitions.as_ref().filter(|c| c.is_valid(row)) {
                record = record.partition(p.as_primitive::<arrow::datatypes::Int32Type>().value(row));
            }
            if let Some(h) = headers.as_ref().and_then(|c| headers_at(c, row)) {
                record = record.headers(h);
            }
            if let Some(ts) = timestamps.as_ref().filter(|t| t.is_valid(row)).map(|t| t.value(row)) {
                record = record.timestamp(ts);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        // The local queue is full: wait for deliveries to drain it.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) if is_record_error(&e) => {
                        // This record can never be written; the rest of the batch can.
                        self.refuse(row, seq, format!("Kafka refused the record for topic '{topic}': {e}"));
                        break;
                    }
                    Err((e, _)) => {
                        // librdkafka refuses new records once a delivery to the topic has
                        // failed for good; that earlier failure names the partition and is
                        // the cause, so it is reported first. Its delivery report comes
                        // from the producer's polling thread and may still be on its way.
                        for _ in 0..100 {
                            self.check_failure()?;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        return Err(kafka_error(
                            format!("sending to topic '{topic}' (Kafka sink '{}')", self.name),
                            e,
                        ));
                    }
                }
            }
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.last_seq = Some(seq);
        }
        Ok(())
    }

    fn durable_seq(&self) -> Option<u64> {
        match &self.txn {
            Some(t) => t.committed_seq,
            None => lock(&self.tracker).durable(),
        }
    }

    async fn tick(&mut self) -> Result<()> {
        self.check_failure()?;
        if self
            .txn
            .as_ref()
            .and_then(|t| t.open)
            .is_some_and(|o| o.elapsed() >= TRANSACTION_INTERVAL)
        {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let producer = self.producer.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || producer.flush(FLUSH_TIMEOUT))
            .await
            .map_err(|e| ConnectorError::Internal(e.to_string()))?
            .map_err(|e| kafka_error(format!("flushing Kafka sink '{name}'"), e))?;
        self.check_failure()?;
        self.commit_transaction().await
    }

    fn report(&self) -> SinkReport {
        let t = lock(&self.tracker);
        let location = match &self.config.topic {
            Some(topic) => format!("{topic} on {}", self.config.bootstrap),
            None => format!("{} topics on {}", t.topics.len(), self.config.bootstrap),
        };
        SinkReport {
            rows: t.delivered,
            bytes: t.bytes,
            files: 0,
            location,
            recent: t.topics.iter().map(|(k, v)| format!("{k}: {v} records")).collect(),
        }
    }

    fn take_rejected(&mut self) -> Vec<(usize, String)> {
        std::mem::take(&mut self.rejected)
    }

    fn source_offsets(&mut self, _seq: u64, offsets: &Offsets) {
        if let Some(txn) = self.txn.as_mut() {
            txn.offsets.merge(offsets);
        }
    }

    fn attach_source(&mut self, committer: &Arc<dyn OffsetCommitter>) -> Result<bool> {
        let Some(txn) = self.txn.as_mut() else { return Ok(false) };
        let Some(group) = committer.as_any().downcast_ref::<super::source::GroupCommitter>() else {
            warn!(sink = %self.name, "exactly-once: the source is not Kafka, so only the output is transactional");
            return Ok(false);
        };
        // Fails early when the source cannot give one consumer's identity (tasks.max > 1).
        group.group_metadata()?;
        txn.source = Some(Arc::clone(committer));
        Ok(true)
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // Undelivered messages are not lost: their batches were never reported
        // durable, so their source offsets were not committed.
        let in_flight = self.producer.in_flight_count();
        if in_flight > 0 {
            warn!(sink = %self.name, in_flight, "Kafka sink closed with messages in flight; they are re-sent after restart");
        }
    }
}
