//! Kafka source and sink options, parsed and checked without touching a broker.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};

use super::client::check_properties;
use super::{
    BOOTSTRAP, COMPRESSION, CSV_DELIMITER, CSV_QUOTE, DELIVERY, FORMAT, GROUP_ID, JSON_SCHEMAS, JSON_SCHEMAS_EVOLVE,
    KEY_FIELDS, KEY_FORMAT, REGISTRY_AUTH, REGISTRY_URL, STARTUP_FALLBACK, STARTUP_MODE, STARTUP_TIMESTAMP, TASKS_MAX,
    TOPIC, TOPIC_PATTERN, TRANSACTIONAL_ID, VALUE_SUBJECT,
};
use crate::api::{ConnectorError, Options, Result};
use crate::file::config::one_byte;
use crate::formats::decode::CsvOptions;
use crate::formats::record::RecordFormat;

/// What the source subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    Names(Vec<String>),
    /// A regular expression (librdkafka subscribes with a leading `^`).
    Pattern(String),
}

/// Where a partition without a committed position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    GroupOffsets { fallback_latest: bool },
    Earliest,
    Latest,
    Timestamp(i64),
}

/// How `_key` is typed (source) or how key fields are encoded (sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    Bytes,
    String,
    Json,
}

#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub bootstrap: String,
    pub topics: Topics,
    pub group_id: Option<String>,
    pub startup: Startup,
    pub tasks: usize,
    pub format: RecordFormat,
    pub key_format: KeyFormat,
    /// The declared columns: what the value decodes into.
    pub value_schema: SchemaRef,
    pub registry: Option<Registry>,
    pub properties: Vec<(String, String)>,
    /// `json.schemas.evolve`: a Connect schema field that is no column stops the task.
    pub evolve: bool,
}

/// Where Avro schemas live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub url: String,
    /// `user:password`.
    pub basic_auth: Option<String>,
}

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub bootstrap: String,
    pub topic: Option<String>,
    pub key_fields: Vec<String>,
    pub format: RecordFormat,
    pub key_format: KeyFormat,
    pub compression: &'static str,
    pub exactly_once: bool,
    pub transactional_prefix: Option<String>,
    pub registry: Option<Registry>,
    /// Avro: the subject of the value schema.
    pub value_subject: Option<String>,
    pub properties: Vec<(String, String)>,
}

/// Output columns the sink reads as message routing instead of payload.
pub(crate) const ROUTING_COLUMNS: &[&str] = &["_topic", "_key", "_headers", "_partition", "_timestamp", "_op"];

fn format_and_key(opts: &mut Options) -> Result<(RecordFormat, KeyFormat)> {
    let name = opts.pull_enum(&FORMAT)?.unwrap_or("json");
    let schemas = opts.pull_bool(&JSON_SCHEMAS)?.unwrap_or(false);
    let delimiter = one_byte(
        CSV_DELIMITER.key,
        &opts.pull_str(&CSV_DELIMITER)?.unwrap_or_else(|| ",".into()),
    )?;
    let quote = one_byte(
        CSV_QUOTE.key,
        &opts.pull_str(&CSV_QUOTE)?.unwrap_or_else(|| "\"".into()),
    )?;
    if schemas && !matches!(name, "json" | "debezium-json") {
        return Err(ConnectorError::option(
            JSON_SCHEMAS.key,
            format!("applies to the JSON formats, not '{name}'"),
        ));
    }
    let format = RecordFormat::parse(name, schemas, CsvOptions { delimiter, quote })
        .map_err(|e| ConnectorError::option(FORMAT.key, e))?;
    let key_format = match opts.pull_enum(&KEY_FORMAT)?.unwrap_or("bytes") {
        "string" => KeyFormat::String,
        "json" => KeyFormat::Json,
        _ => KeyFormat::Bytes,
    };
    Ok((format, key_format))
}

fn registry(opts: &mut Options, format: RecordFormat) -> Result<Option<Registry>> {
    let url = opts.pull_str(&REGISTRY_URL)?;
    let basic_auth = opts.pull_str(&REGISTRY_AUTH)?;
    match (format, url) {
        (RecordFormat::Avro, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConnectorError::option(
                    REGISTRY_URL.key,
                    format!("'{url}' is not an http:// or https:// address"),
                ));
            }
            Ok(Some(Registry { url, basic_auth }))
        }
        (RecordFormat::Avro, None) => Err(ConnectorError::Missing {
            key: REGISTRY_URL.key.into(),
            doc: "format = 'avro' reads schemas from a Schema Registry".into(),
        }),
        (_, Some(_)) => Err(ConnectorError::option(
            REGISTRY_URL.key,
            "only applies with format = 'avro'",
        )),
        (_, None) => Ok(None),
    }
}

fn properties(opts: &mut Options) -> Result<Vec<(String, String)>> {
    let props = opts.take_prefixed("properties.");
    check_properties(&props)?;
    Ok(props)
}

fn bootstrap(opts: &mut Options) -> Result<String> {
    let b = opts.pull_required_str(&BOOTSTRAP)?;
    if b.split(',').any(|s| s.trim().is_empty()) {
        return Err(ConnectorError::option(
            BOOTSTRAP.key,
            format!("'{b}' has an empty entry; expected host:port[,host:port…]"),
        ));
    }
    Ok(b)
}

pub(crate) fn parse_source(opts: &mut Options, schema: &SchemaRef) -> Result<KafkaSourceConfig> {
    let bootstrap = bootstrap(opts)?;
    let topics = match (opts.pull_list(&TOPIC)?, opts.pull_str(&TOPIC_PATTERN)?) {
        (Some(_), Some(_)) => {
            return Err(ConnectorError::option(
                TOPIC_PATTERN.key,
                "give either topic or topic.pattern, not both",
            ));
        }
        (Some(t), None) if !t.is_empty() => Topics::Names(t),
        (None, Some(p)) => {
            regex::Regex::new(&p).map_err(|e| {
                ConnectorError::option(TOPIC_PATTERN.key, format!("not a valid regular expression: {e}"))
            })?;
            Topics::Pattern(p)
        }
        _ => {
            return Err(ConnectorError::Missing {
                key: TOPIC.key.into(),
                doc: TOPIC.doc.into(),
            });
        }
    };
    let group_id = opts.pull_str(&GROUP_ID)?.filter(|g| !g.trim().is_empty());
    let fallback_latest = opts.pull_enum(&STARTUP_FALLBACK)?.unwrap_or("earliest") == "latest";
    let timestamp = opts.pull_u64(&STARTUP_TIMESTAMP)?;
    let startup = match opts.pull_enum(&STARTUP_MODE)?.unwrap_or("group-offsets") {
        "earliest" => Startup::Earliest,
        "latest" => Startup::Latest,
        "timestamp" => match timestamp {
            Some(t) => Startup::Timestamp(t as i64),
            None => {
                return Err(ConnectorError::option(
                    STARTUP_MODE.key,
                    "'timestamp' needs scan.startup.timestamp.millis",
                ));
            }
        },
        _ => Startup::GroupOffsets { fallback_latest },
    };
    if timestamp.is_some() && !matches!(startup, Startup::Timestamp(_)) {
        return Err(ConnectorError::option(
            STARTUP_TIMESTAMP.key,
            "only applies with scan.startup.mode = 'timestamp'",
        ));
    }
    let tasks = opts.pull_u64(&TASKS_MAX)?.unwrap_or(1);
    if !(1..=64).contains(&tasks) {
        return Err(ConnectorError::option(
            TASKS_MAX.key,
            format!("must be between 1 and 64 (got {tasks})"),
        ));
    }
    let (format, key_format) = format_and_key(opts)?;
    format.check_schema(schema, FORMAT.key)?;
    let evolve = opts.pull_bool(&JSON_SCHEMAS_EVOLVE)?.unwrap_or(false);
    if evolve && format != (RecordFormat::Json { schemas: true }) {
        return Err(ConnectorError::option(
            JSON_SCHEMAS_EVOLVE.key,
            "applies to format = 'json' with json.schemas.enable = 'true' (records that carry their Connect schema)",
        ));
    }
    let registry = registry(opts, format)?;
    let properties = properties(opts)?;
    Ok(KafkaSourceConfig {
        evolve,
        registry,
        bootstrap,
        topics,
        group_id,
        startup,
        tasks: tasks as usize,
        format,
        key_format,
        value_schema: Arc::clone(schema),
        properties,
    })
}

pub(crate) fn parse_sink(opts: &mut Options, schema: &SchemaRef) -> Result<KafkaSinkConfig> {
    let bootstrap = bootstrap(opts)?;
    let topic = opts.pull_list(&TOPIC)?.map(|t| t.join(","));
    if topic.as_ref().is_some_and(|t| t.contains(',')) {
        return Err(ConnectorError::option(
            TOPIC.key,
            "a sink writes one topic; route rows to several with a _topic column",
        ));
    }
    check_routing(schema, topic.is_some())?;
    let key_fields = opts.pull_list(&KEY_FIELDS)?.unwrap_or_default();
    let (format, key_format) = format_and_key(opts)?;
    if !key_fields.is_empty() {
        if schema.index_of("_key").is_ok() {
            return Err(ConnectorError::option(
                KEY_FIELDS.key,
                "the SELECT already has a _key column; use one or the other",
            ));
        }
        for k in &key_fields {
            if schema.index_of(k).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(ConnectorError::option(
                    KEY_FIELDS.key,
                    format!("'{k}' is not an output column (columns: {})", names.join(", ")),
                ));
            }
        }
        if key_fields.len() > 1 && key_format != KeyFormat::Json {
            return Err(ConnectorError::option(
                KEY_FORMAT.key,
                "several key.fields need key.format = 'json'",
            ));
        }
    }
    let compression = opts.pull_enum(&COMPRESSION)?.unwrap_or("none");
    let exactly_once = opts.pull_enum(&DELIVERY)?.unwrap_or("at-least-once") == "exactly-once";
    let transactional_prefix = opts.pull_str(&TRANSACTIONAL_ID)?;
    if transactional_prefix.is_some() && !exactly_once {
        return Err(ConnectorError::option(
            TRANSACTIONAL_ID.key,
            "only applies with sink.delivery.guarantee = 'exactly-once'",
        ));
    }
    let registry = registry(opts, format)?;
    let value_subject = opts.pull_str(&VALUE_SUBJECT)?;
    if value_subject.is_some() && format != RecordFormat::Avro {
        return Err(ConnectorError::option(
            VALUE_SUBJECT.key,
            "only applies with format = 'avro'",
        ));
    }
    if format == RecordFormat::Avro && value_subject.is_none() && topic.is_none() {
        return Err(ConnectorError::Missing {
            key: VALUE_SUBJECT.key.into(),
            doc: "with rows routed by _topic, name the subject of the Avro value schema".into(),
        });
    }
    let properties = properties(opts)?;
    // Checks the payload columns suit the format (raw: one value column).
    let payload: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with('_'))
        .map(|(i, _)| i)
        .collect();
    let payload: Schema = schema
        .project(&payload)
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
    format.check_schema(&payload, FORMAT.key)?;
    Ok(KafkaSinkConfig {
        bootstrap,
        topic,
        key_fields,
        format,
        key_format,
        compression,
        exactly_once,
        transactional_prefix,
        registry,
        value_subject,
        properties,
    })
}

/// Checks the types of the routing columns and rejects other `_` columns.
fn check_routing(schema: &Schema, has_topic: bool) -> Result<()> {
    for f in schema.fields() {
        let name = f.name().as_str();
        if !name.starts_with('_') {
            continue;
        }
        let ok = match name {
            "_topic" | "_op" => matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8),
            "_key" => matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
            ),
            "_headers" => matches!(f.data_type(), DataType::Map(..)),
            "_partition" => f.data_type().is_integer(),
            "_timestamp" => matches!(f.data_type(), DataType::Timestamp(..) | DataType::Int64),
            _ => {
                return Err(ConnectorError::Config(format!(
                    "output column '{name}' starts with '_', which the Kafka sink reserves for routing ({}); alias it (… AS {}) to put it in the payload",
                    ROUTING_COLUMNS.join(", "),
                    name.trim_start_matches('_')
                )));
            }
        };
        if !ok {
            return Err(ConnectorError::Config(format!(
                "output column '{name}' has type {}, which the Kafka sink cannot use for routing",
                f.data_type()
            )));
        }
    }
    if !has_topic && schema.index_of("_topic").is_err() {
        return Err(ConnectorError::Missing {
            key: TOPIC.key.into(),
            doc: "the topic to write, or a _topic column in the SELECT".into(),
        });
    }
    Ok(())
}
