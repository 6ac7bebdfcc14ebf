//! `connector = 'kafka'`: topics as a source and as a sink, through librdkafka.
//!
//! **Source.** Each of the pipeline's tasks (`tasks.max`, on the source or the
//! sink) is one consumer in the pipeline's consumer group, so the group spreads
//! the topics' partitions over the tasks; each task polls and decodes on its own
//! thread and feeds its own transform and sink writer. (A bounded run, which
//! runs one task, reads with one consumer thread per topic.) Every row
//! carries the metadata columns `_key`, `_topic`, `_partition`, `_offset`,
//! `_timestamp` and `_headers`. Positions are `"topic/partition" → next offset`;
//! the engine commits them to its state store and then, through
//! [`source::GroupCommitter`], to the consumer group — never ahead of the sink.
//! On assignment a partition resumes at the pipeline's committed offset, else
//! where `scan.startup.mode` says. On revocation a task drops the records of the
//! partitions it loses (their new owner reads them) and commits what is durable.
//!
//! **Sink.** One idempotent producer; each row becomes one message whose payload
//! is the non-underscore columns, routed by the `_topic`, `_key`, `_headers`,
//! `_partition` and `_timestamp` columns when the SELECT has them. A batch is
//! durable when librdkafka has reported every one of its messages delivered. A
//! record the producer refuses outright (too large, invalid topic) is handed back
//! to the engine's error policy instead of failing the batch.
//!
//! **Formats** come from [`crate::formats::record`]; Avro reads writer schemas from
//! a Schema Registry ([`crate::formats::avro`]).
//!
//! **Dead-letter topic.** [`dlq::DeadLetterTopic`] forwards failed records with
//! their original key and value and Kafka Connect's `__connect.errors.*` headers.

mod client;
mod config;
pub mod dev;
mod discover;
pub mod dlq;
mod evolve;
mod metadata;
pub mod sample;
mod sink;
mod source;

use arrow::datatypes::{FieldRef, SchemaRef};
use async_trait::async_trait;

use crate::api::{
    Connector, Discovery, KafkaCluster, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Source,
    SourceContext,
};

pub use client::kafka_error;
pub use config::{KafkaSinkConfig, KafkaSourceConfig};

pub(crate) const BOOTSTRAP: OptionSpec = OptionSpec::new(
    "bootstrap.servers",
    OptionKind::String,
    "Comma list of host:port brokers to bootstrap from.",
)
.required();
pub(crate) const TOPIC: OptionSpec = OptionSpec::new(
    "topic",
    OptionKind::List,
    "Source: one topic or a comma list. Sink: the topic to write (or give each row a _topic column).",
);
pub(crate) const TOPIC_PATTERN: OptionSpec = OptionSpec::new(
    "topic.pattern",
    OptionKind::String,
    "Source: a regular expression; every matching topic is read (instead of topic).",
);
pub(crate) const GROUP_ID: OptionSpec = OptionSpec::new(
    "group.id",
    OptionKind::String,
    "Consumer group; offsets are committed to it after the sink has made them durable. Default quiver-<sink name>.",
);
pub(crate) const STARTUP_MODE: OptionSpec = OptionSpec::new(
    "scan.startup.mode",
    OptionKind::Enum(&["group-offsets", "earliest", "latest", "timestamp"]),
    "Where a partition without a committed position starts: the group's offset, the earliest or latest record, or scan.startup.timestamp.millis.",
)
.default("group-offsets");
pub(crate) const STARTUP_FALLBACK: OptionSpec = OptionSpec::new(
    "scan.startup.fallback",
    OptionKind::Enum(&["earliest", "latest"]),
    "With group-offsets: where a partition starts when the group has no offset for it.",
)
.default("earliest");
pub(crate) const STARTUP_TIMESTAMP: OptionSpec = OptionSpec::new(
    "scan.startup.timestamp.millis",
    OptionKind::Integer,
    "With scan.startup.mode = 'timestamp': start at the first record at or after this time (ms since the epoch).",
);
pub(crate) const TASKS_MAX: OptionSpec = OptionSpec::new(
    "tasks.max",
    OptionKind::Integer,
    "Parallel tasks reading the topics: each a consumer in the group with its own thread, transform and sink writer; the group spreads the partitions over them.",
)
.default("1");
pub(crate) const FORMAT: OptionSpec = OptionSpec::new(
    "format",
    OptionKind::Enum(&["json", "csv", "raw", "debezium-json", "avro"]),
    "Value format: a JSON object, a CSV line, the raw bytes (one column 'value'), a Debezium change event, or Avro in Confluent's wire format.",
)
.default("json");
pub(crate) const REGISTRY_URL: OptionSpec = OptionSpec::new(
    "schema.registry.url",
    OptionKind::String,
    "format = 'avro': the Confluent-compatible Schema Registry (writer schemas are fetched by id and cached; the sink registers its schema).",
);
pub(crate) const REGISTRY_AUTH: OptionSpec = OptionSpec::new(
    "schema.registry.basic.auth.user.info",
    OptionKind::String,
    "format = 'avro': user:password for the registry (HTTP basic auth).",
);
pub(crate) const VALUE_SUBJECT: OptionSpec = OptionSpec::new(
    "value.subject.name",
    OptionKind::String,
    "Sink, format = 'avro': the subject the value schema is registered under. Default <topic>-value (Confluent's TopicNameStrategy).",
);
pub(crate) const JSON_SCHEMAS: OptionSpec = OptionSpec::new(
    "json.schemas.enable",
    OptionKind::Bool,
    "JSON values use Kafka Connect's {\"schema\": …, \"payload\": …} envelope.",
)
.default("false");
pub(crate) const JSON_SCHEMAS_EVOLVE: OptionSpec = OptionSpec::new(
    "json.schemas.evolve",
    OptionKind::Bool,
    "Source, with json.schemas.enable: a record whose Connect schema has a field that is no declared column stops the task, naming the field, rather than dropping it. The server sets it for connector JSON whose columns it found, and then adds the column and restarts from the last commit.",
)
.default("false");
pub(crate) const KEY_FORMAT: OptionSpec = OptionSpec::new(
    "key.format",
    OptionKind::Enum(&["bytes", "string", "json"]),
    "Source: the type of _key (BYTEA, or TEXT for string/json). Sink: how key.fields are encoded (one field's bytes or text, or a JSON object).",
)
.default("bytes");
pub(crate) const CSV_DELIMITER: OptionSpec = OptionSpec::new(
    "csv.delimiter",
    OptionKind::String,
    "CSV field delimiter (one character).",
)
.default(",");
pub(crate) const CSV_QUOTE: OptionSpec =
    OptionSpec::new("csv.quote", OptionKind::String, "CSV quote character (one character).").default("\"");
pub(crate) const PROPERTIES: OptionSpec = OptionSpec::new(
    "properties.<key>",
    OptionKind::String,
    "Passed to librdkafka as <key> (security.protocol, sasl.*, ssl.*, fetch and batching tuning).",
);
pub(crate) const KEY_FIELDS: OptionSpec = OptionSpec::new(
    "key.fields",
    OptionKind::List,
    "Sink: output columns that make the message key (instead of a _key column).",
);
pub(crate) const COMPRESSION: OptionSpec = OptionSpec::new(
    "compression.type",
    OptionKind::Enum(&["none", "gzip", "snappy", "lz4", "zstd"]),
    "Sink: producer compression.",
)
.default("none");
pub(crate) const DELIVERY: OptionSpec = OptionSpec::new(
    "sink.delivery.guarantee",
    OptionKind::Enum(&["at-least-once", "exactly-once"]),
    "Sink: at-least-once (idempotent producer) or exactly-once (transactions; with a Kafka source, consumed offsets commit in the same transaction).",
)
.default("at-least-once");
pub(crate) const TRANSACTIONAL_ID: OptionSpec = OptionSpec::new(
    "transactional.id.prefix",
    OptionKind::String,
    "Sink, exactly-once: prefix of the stable transactional id (a restarted pipeline fences its predecessor). Default quiver-<sink name>.",
);

const SOURCE_OPTIONS: &[OptionSpec] = &[
    BOOTSTRAP,
    TOPIC,
    TOPIC_PATTERN,
    GROUP_ID,
    STARTUP_MODE,
    STARTUP_FALLBACK,
    STARTUP_TIMESTAMP,
    TASKS_MAX,
    FORMAT,
    JSON_SCHEMAS,
    JSON_SCHEMAS_EVOLVE,
    KEY_FORMAT,
    CSV_DELIMITER,
    CSV_QUOTE,
    REGISTRY_URL,
    REGISTRY_AUTH,
    PROPERTIES,
];

const SINK_OPTIONS: &[OptionSpec] = &[
    BOOTSTRAP,
    TOPIC,
    KEY_FIELDS,
    FORMAT,
    JSON_SCHEMAS,
    KEY_FORMAT,
    CSV_DELIMITER,
    CSV_QUOTE,
    REGISTRY_URL,
    REGISTRY_AUTH,
    VALUE_SUBJECT,
    COMPRESSION,
    DELIVERY,
    TRANSACTIONAL_ID,
    PROPERTIES,
];

#[derive(Debug, Clone, Copy)]
pub struct KafkaConnector;

#[async_trait]
impl Connector for KafkaConnector {
    type SourceConfig = KafkaSourceConfig;
    type SinkConfig = KafkaSinkConfig;

    fn name(&self) -> &'static str {
        "kafka"
    }
    fn description(&self) -> &'static str {
        "Reads and writes Kafka topics (JSON, CSV, raw, Debezium JSON, Avro with a schema registry); offsets commit to the group only behind durable data."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SOURCE_OPTIONS)
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<KafkaSourceConfig> {
        config::parse_source(opts, schema)
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<KafkaSinkConfig> {
        config::parse_sink(opts, schema)
    }
    fn source_cluster(&self, config: &KafkaSourceConfig) -> Option<KafkaCluster> {
        Some(KafkaCluster {
            bootstrap: config.bootstrap.clone(),
            properties: config.properties.clone(),
        })
    }
    fn sink_cluster(&self, config: &KafkaSinkConfig) -> Option<KafkaCluster> {
        Some(KafkaCluster {
            bootstrap: config.bootstrap.clone(),
            properties: config.properties.clone(),
        })
    }
    fn metadata_columns(&self, config: &KafkaSourceConfig) -> Vec<FieldRef> {
        let mut fields = config.format.extra_columns();
        fields.extend(metadata::fields(config.key_format));
        fields
    }
    /// As Kafka Connect's sink connectors: every task joins the group, which
    /// spreads the partitions over them (a task with none idles until a
    /// rebalance). The source's own `tasks.max` asks for as many.
    fn source_tasks(&self, config: &KafkaSourceConfig, requested: u32) -> u32 {
        requested.max(config.tasks as u32)
    }
    /// The registry subject's schema (Avro), the records' Connect schemas (JSON with
    /// schemas) or a sample's types (schemaless JSON); see [`discover`].
    async fn discover_columns(&self, config: &KafkaSourceConfig) -> Result<Discovery> {
        discover::columns(config).await
    }
    async fn reset_source_offsets(&self, config: &KafkaSourceConfig, pipeline: &str) -> Result<()> {
        source::delete_group(config, pipeline).await
    }
    async fn build_source(&self, config: &KafkaSourceConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::KafkaSource::start(config.clone(), ctx)?))
    }
    async fn build_sink(&self, config: &KafkaSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::KafkaSink::start(config.clone(), ctx).await?))
    }
}
