//! Connector classes → a Quiver source and sink.
//!
//! A Kafka Connect *sink* connector reads `topics` from Kafka: it becomes a Kafka
//! `CREATE SOURCE` (consumer group `connect-<name>`, so the pipeline resumes where
//! Kafka Connect's committed offsets are) and a sink of its kind. A *source*
//! connector becomes its own source and a Kafka sink to its topic.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use super::converters::{self, Converter};
use super::record::{Context, Expr, Record};
use super::smt::DEBEZIUM_UNWRAP;
use super::{ConnectorConfig, Notes, Result, TranslateError, TranslateOptions, bare_name, ident, lit};
use crate::parser::Statement;

/// The connector classes Quiver translates: full name, and what it becomes.
const CLASSES: [(&str, Kind); 7] = [
    (
        "org.apache.kafka.connect.mirror.MirrorSourceConnector",
        Kind::MirrorSource,
    ),
    (
        "org.apache.kafka.connect.file.FileStreamSourceConnector",
        Kind::FileStreamSource,
    ),
    (
        "org.apache.kafka.connect.file.FileStreamSinkConnector",
        Kind::FileStreamSink,
    ),
    ("io.confluent.connect.s3.S3SinkConnector", Kind::S3Sink),
    ("io.confluent.connect.jdbc.JdbcSinkConnector", Kind::JdbcSink),
    ("io.confluent.connect.jdbc.JdbcSourceConnector", Kind::JdbcSource),
    (
        "io.debezium.connector.postgresql.PostgresConnector",
        Kind::DebeziumPostgres,
    ),
];

/// The connector classes, each with whether it is a source connector.
pub(crate) fn connector_classes() -> impl Iterator<Item = (&'static str, bool)> {
    CLASSES.iter().map(|(c, k)| {
        (
            *c,
            matches!(
                k,
                Kind::MirrorSource | Kind::FileStreamSource | Kind::JdbcSource | Kind::DebeziumPostgres
            ),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MirrorSource,
    FileStreamSource,
    FileStreamSink,
    S3Sink,
    JdbcSink,
    JdbcSource,
    DebeziumPostgres,
}

/// What the sink needs from the SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SinkShape {
    /// Kafka: routed by `_topic`, keyed by `_key` or `key.fields`, `_headers`.
    /// `mirror` copies every record's key, headers, partition and timestamp too.
    Kafka { mirror: bool },
    /// A database table: `_topic` names the table; `_key` under pk.mode = record_key.
    Table { record_key: bool },
    /// Files or stdout: the value only.
    Files,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub class: String,
    pub sink_name: String,
    source_name: String,
    pub(crate) columns: String,
    pub(crate) source_options: Vec<(String, String)>,
    pub(crate) sink_options: Vec<(String, String)>,
    pub(crate) shape: SinkShape,
    pub record: Record,
    pub context: Context,
    /// A source connector's one topic, written as the sink's `topic` option unless
    /// the chain changes it.
    static_topic: Option<String>,
}

pub(crate) fn o(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// Reads the connector class and builds the source, the sink and the starting record.
pub(crate) fn plan(cfg: &ConnectorConfig, options: &TranslateOptions, notes: &mut Notes) -> Result<Plan> {
    let class = cfg.require("connector.class", "the connector's class")?.to_string();
    let simple = class.rsplit('.').next().unwrap_or(&class);
    let found = CLASSES.iter().find(|(full, _)| {
        let s = full.rsplit('.').next().unwrap_or(full);
        class == *full || simple == s || Some(simple) == s.strip_suffix("Connector")
    });
    let Some((full, kind)) = found else {
        let known: Vec<&str> = CLASSES.iter().map(|(f, _)| *f).collect();
        let hint = if class.starts_with("io.debezium.connector.") {
            " (Debezium change events: read their topic with a Kafka source and format = 'debezium-json')"
        } else {
            ""
        };
        return Err(TranslateError::new(
            "connector.class",
            format!(
                "unsupported connector class '{class}'{hint}; Quiver translates {}",
                known.join(", ")
            ),
        ));
    };
    let name = bare_name(&cfg.name);
    let mut plan = Plan {
        class: full.to_string(),
        sink_name: name.clone(),
        source_name: format!("{name}_source"),
        columns: String::new(),
        source_options: Vec::new(),
        sink_options: Vec::new(),
        shape: SinkShape::Files,
        record: Record {
            fields: Vec::new(),
            key: None,
            topic: None,
            partition: None,
            offset: None,
            timestamp: None,
            headers: None,
            key_fields: None,
            keep: Vec::new(),
        },
        context: Context {
            from_kafka: false,
            tombstone: None,
            origin: String::new(),
            key_json: false,
            primitive: false,
            unwrapped: None,
        },
        static_topic: None,
    };
    let _ = cfg.get("tasks.max");
    match kind {
        Kind::MirrorSource => {
            mirror_source(cfg, &mut plan, notes)?;
            errors(cfg, &mut plan.sink_options);
        }
        Kind::FileStreamSink | Kind::S3Sink | Kind::JdbcSink => {
            kafka_source(cfg, options, &mut plan, notes)?;
            errors(cfg, &mut plan.sink_options);
            match kind {
                Kind::FileStreamSink => file_stream_sink(cfg, &mut plan, notes),
                Kind::S3Sink => s3_sink(cfg, &mut plan, notes)?,
                _ => jdbc_sink(cfg, &mut plan)?,
            }
        }
        Kind::DebeziumPostgres => {
            super::debezium::postgres(cfg, options, &mut plan, notes)?;
            errors(cfg, &mut plan.sink_options);
        }
        Kind::FileStreamSource | Kind::JdbcSource => {
            let topic = match kind {
                Kind::FileStreamSource => file_stream_source(cfg, &mut plan)?,
                _ => jdbc_source(cfg, options, &mut plan)?,
            };
            kafka_sink(cfg, options, &mut plan, &topic, notes)?;
            errors(cfg, &mut plan.sink_options);
        }
    }
    Ok(plan)
}

/// The value's columns: the caller's, the config's `quiver.columns`, or what the format fixes.
fn columns(cfg: &ConnectorConfig, options: &TranslateOptions, fixed: Option<&str>) -> Result<(String, SchemaRef)> {
    let given = options
        .columns
        .clone()
        .or_else(|| cfg.get("quiver.columns").map(str::to_string));
    let text = match (fixed, given) {
        (Some(f), _) => f.to_string(),
        (None, Some(g)) => g,
        (None, None) => {
            return Err(TranslateError::new(
                "quiver.columns",
                "connector JSON carries no column types: give the record's columns as SQL, with --columns 'id BIGINT, name TEXT' or a \"quiver.columns\" key in the config",
            ));
        }
    };
    let stmt =
        crate::parser::parse_one(&format!("CREATE SOURCE t ({text}) WITH (connector = 'datagen')")).map_err(|e| {
            TranslateError::new(
                "quiver.columns",
                format!("'{text}' is not a SQL column list: {}", e.message),
            )
        })?;
    let Statement::CreateSource(s) = stmt.statement else {
        return Err(TranslateError::new(
            "quiver.columns",
            format!("'{text}' is not a SQL column list"),
        ));
    };
    let schema = crate::compile::columns_to_schema(&s.columns, stmt.location)
        .map_err(|e| TranslateError::new("quiver.columns", e.message))?;
    Ok((text, schema))
}

fn fields_of(schema: &SchemaRef) -> Vec<(String, Expr)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), Expr::column(f.name(), f.data_type().clone())))
        .collect()
}

/// `bootstrap.servers`: an override in the config, the caller's, else an environment variable.
pub(crate) fn bootstrap(cfg: &ConnectorConfig, options: &TranslateOptions, override_key: &str) -> String {
    cfg.get(override_key)
        .map(str::to_string)
        .or_else(|| options.bootstrap_servers.clone())
        .unwrap_or_else(|| "${KAFKA_BOOTSTRAP}".to_string())
}

/// Kafka Connect's per-connector client overrides (`consumer.override.*`) → `properties.*`.
pub(crate) fn client_overrides(cfg: &ConnectorConfig, prefix: &str, out: &mut Vec<(String, String)>) {
    let keys: Vec<String> = cfg
        .keys_under(prefix)
        .filter(|k| *k != "bootstrap.servers")
        .map(str::to_string)
        .collect();
    for k in keys {
        if let Some(v) = cfg.get(&format!("{prefix}{k}")) {
            out.push(o(&format!("properties.{k}"), v));
        }
    }
}

fn kafka_source(cfg: &ConnectorConfig, options: &TranslateOptions, plan: &mut Plan, notes: &mut Notes) -> Result<()> {
    let topics = cfg.get("topics").map(str::to_string);
    let regex = cfg.get("topics.regex").map(str::to_string);
    let mut opts = vec![
        o("connector", "kafka"),
        o(
            "bootstrap.servers",
            bootstrap(cfg, options, "consumer.override.bootstrap.servers"),
        ),
    ];
    match (topics, regex) {
        (Some(t), None) => opts.push(o("topic", t)),
        (None, Some(r)) => {
            quiver_udf::connect::check_regex(&r).map_err(|e| TranslateError::new("topics.regex", e))?;
            opts.push(o("topic.pattern", r));
        }
        (Some(_), Some(_)) => {
            return Err(TranslateError::new(
                "topics.regex",
                "set either topics or topics.regex, not both (as Kafka Connect requires)",
            ));
        }
        (None, None) => {
            return Err(TranslateError::new(
                "topics",
                "missing: a sink connector reads topics or topics.regex",
            ));
        }
    }
    opts.push(o("group.id", format!("connect-{}", cfg.name)));
    notes.note(format!(
        "consumer group connect-{}: the pipeline resumes from the offsets Kafka Connect committed",
        cfg.name
    ));
    if let Some(t) = cfg.get("tasks.max") {
        opts.push(o("tasks.max", t));
    }
    let value = converters::read(cfg, "value", notes)?;
    let key = converters::read(cfg, "key", notes)?;
    // Debezium's unwrap SMT first in the chain: the debezium-json format does it.
    let first = cfg.list("transforms").into_iter().next();
    let unwrap = first.filter(|a| {
        cfg.get(&format!("transforms.{a}.type")) == Some(DEBEZIUM_UNWRAP) && matches!(value, Converter::Json { .. })
    });
    let mut value_opts = value.value_options();
    if unwrap.is_some() {
        value_opts = vec![o("format", "debezium-json")];
        if value == (Converter::Json { schemas: true }) {
            value_opts.push(o("json.schemas.enable", "true"));
        }
    }
    opts.extend(value_opts);
    if options.evolve && value == (Converter::Json { schemas: true }) && unwrap.is_none() {
        opts.push(o("json.schemas.evolve", "true"));
    }
    opts.push(o("key.format", key.key_format(notes)));
    client_overrides(cfg, "consumer.override.", &mut opts);
    let (text, schema) = columns(cfg, options, value.fixed_columns())?;
    let key_type = if matches!(key, Converter::Bytes | Converter::Avro { .. }) {
        DataType::Binary
    } else {
        DataType::Utf8
    };
    plan.columns = text;
    plan.source_options = opts;
    kafka_record(plan, &schema, key_type, value.fixed_columns().is_some(), unwrap);
    plan.context.key_json = matches!(key, Converter::Json { .. });
    Ok(())
}

/// The record a Kafka source gives: the value's columns and every metadata column.
fn kafka_record(plan: &mut Plan, schema: &SchemaRef, key_type: DataType, primitive: bool, unwrapped: Option<String>) {
    plan.record.fields = fields_of(schema);
    plan.record.key = Some(Expr::new("_key", key_type));
    plan.record.topic = Some(Expr::new("_topic", DataType::Utf8));
    plan.record.partition = Some(Expr::new("_partition", DataType::Int32));
    plan.record.offset = Some(Expr::new("_offset", DataType::Int64));
    plan.record.timestamp = Some(Expr::new(
        "_timestamp",
        DataType::Timestamp(TimeUnit::Millisecond, None),
    ));
    plan.record.headers = Some(Expr::new("_headers", quiver_udf::connect::headers_type()));
    let nulls: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} IS NULL", ident(f.name())))
        .collect();
    let tombstone = (!nulls.is_empty()).then(|| format!("({})", nulls.join(" AND ")));
    plan.context = Context {
        from_kafka: true,
        tombstone,
        origin: "a Kafka topic".into(),
        key_json: false,
        primitive,
        unwrapped,
    };
}

/// MirrorMaker 2's source connector: topics copied byte for byte to another cluster,
/// renamed by the replication policy, with keys, headers, partitions and timestamps.
fn mirror_source(cfg: &ConnectorConfig, plan: &mut Plan, notes: &mut Notes) -> Result<()> {
    let from = cfg
        .require("source.cluster.bootstrap.servers", "the cluster to copy from")?
        .to_string();
    let to = cfg
        .require("target.cluster.bootstrap.servers", "the cluster to copy to")?
        .to_string();
    let alias = cfg.get("source.cluster.alias").unwrap_or("source").to_string();
    let _ = cfg.get("target.cluster.alias");
    let patterns = cfg
        .get("topics")
        .map(super::split_list)
        .unwrap_or_else(|| vec![".*".to_string()]);
    for p in &patterns {
        quiver_udf::connect::check_regex(p).map_err(|e| TranslateError::new("topics", e))?;
    }
    let pattern = match patterns.as_slice() {
        [one] => one.clone(),
        many => many.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|"),
    };
    // MirrorMaker's default exclusions: internal and replica topics.
    let exclude = cfg
        .get("topics.exclude")
        .map(super::split_list)
        .unwrap_or_else(|| vec![r".*[\-\.]internal".into(), r".*\.replica".into(), "__.*".into()]);
    for p in &exclude {
        quiver_udf::connect::check_regex(p).map_err(|e| TranslateError::new("topics.exclude", e))?;
    }
    for k in ["value.converter", "key.converter"] {
        if let Some(c) = cfg.get(k).filter(|c| !c.ends_with("ByteArrayConverter")) {
            return Err(TranslateError::new(
                k,
                format!("MirrorSourceConnector copies bytes (ByteArrayConverter), not {c}"),
            ));
        }
    }
    plan.source_options = vec![
        o("connector", "kafka"),
        o("bootstrap.servers", from),
        o("topic.pattern", pattern),
        o("group.id", format!("connect-{}", cfg.name)),
        o("format", "raw"),
        o("key.format", "bytes"),
    ];
    if let Some(t) = cfg.get("tasks.max") {
        plan.source_options.push(o("tasks.max", t));
    }
    plan.columns = "value BYTEA".into();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "value",
        DataType::Binary,
        true,
    )]));
    kafka_record(plan, &schema, DataType::Binary, true, None);
    plan.record.keep = exclude
        .iter()
        .map(|p| format!("NOT regex_matches(_topic, {})", lit(p)))
        .collect();
    let topic = match cfg.get("replication.policy.class") {
        Some(p) if p.ends_with("IdentityReplicationPolicy") => "_topic".to_string(),
        Some(p) if !p.ends_with("DefaultReplicationPolicy") => {
            return Err(TranslateError::new(
                "replication.policy.class",
                format!("{p}: Quiver translates DefaultReplicationPolicy and IdentityReplicationPolicy"),
            ));
        }
        _ => format!(
            "{} || _topic",
            lit(&format!(
                "{alias}{}",
                cfg.get("replication.policy.separator").unwrap_or(".")
            ))
        ),
    };
    plan.record.topic = Some(Expr::new(topic, DataType::Utf8));
    notes.note("MirrorSourceConnector: records are copied with their keys, headers, partitions and timestamps; topic configs, ACLs and consumer offsets are not synced");
    plan.sink_options = vec![
        o("connector", "kafka"),
        o("bootstrap.servers", to),
        o("format", "raw"),
        o("key.format", "bytes"),
    ];
    plan.shape = SinkShape::Kafka { mirror: true };
    Ok(())
}

/// Settings Quiver takes under Kafka Connect's own names, copied when set.
pub(crate) fn pass_through<'k>(
    cfg: &ConnectorConfig,
    keys: impl IntoIterator<Item = &'k &'k str>,
    out: &mut Vec<(String, String)>,
) {
    for k in keys {
        if let Some(v) = cfg.get(k) {
            out.push(o(k, v));
        }
    }
}

/// `errors.*`: the same names in Quiver, on the sink.
fn errors(cfg: &ConnectorConfig, out: &mut Vec<(String, String)>) {
    let keys = [
        "errors.tolerance",
        "errors.deadletterqueue.topic.name",
        "errors.deadletterqueue.context.headers.enable",
        "errors.log.enable",
        "errors.log.include.messages",
        "errors.retry.delay.max.ms",
    ];
    pass_through(cfg, &keys, out);
    // Kafka Connect's -1 is "retry forever"; Quiver takes a duration.
    if let Some(v) = cfg.get("errors.retry.timeout") {
        out.push(o("errors.retry.timeout", if v == "-1" { "365d" } else { v }));
    }
}

fn file_stream_sink(cfg: &ConnectorConfig, plan: &mut Plan, notes: &mut Notes) {
    match cfg.get("file") {
        None => plan.sink_options = [vec![o("connector", "stdout")], std::mem::take(&mut plan.sink_options)].concat(),
        Some(file) => {
            // As FileStreamSink: one line per record appended to the one file; a
            // primitive value (StringConverter) is written as it is.
            let format = if plan.context.primitive { "text" } else { "json" };
            notes.note(format!(
                "FileStreamSink: one line per record ({format}) appended to the file {file}"
            ));
            plan.sink_options = [
                vec![o("connector", "file"), o("path", file), o("format", format)],
                std::mem::take(&mut plan.sink_options),
            ]
            .concat();
        }
    }
    plan.shape = SinkShape::Files;
}

fn s3_sink(cfg: &ConnectorConfig, plan: &mut Plan, notes: &mut Notes) -> Result<()> {
    let bucket = cfg.require("s3.bucket.name", "the bucket to write to")?;
    let dir = cfg.get("topics.dir").unwrap_or("topics");
    let format = match cfg.require("format.class", "the file format class")? {
        f if f.ends_with("ParquetFormat") => "parquet",
        f if f.ends_with("JsonFormat") => "json",
        other => {
            return Err(TranslateError::new(
                "format.class",
                format!("unsupported format '{other}'; Quiver writes ParquetFormat and JsonFormat"),
            ));
        }
    };
    let mut opts = vec![
        o("connector", "filesystem"),
        o("path", format!("s3://{bucket}/{dir}")),
        o("format", format),
    ];
    for (from, to) in [
        ("s3.region", "s3.region"),
        ("store.url", "s3.endpoint"),
        ("aws.access.key.id", "s3.access.key.id"),
        ("aws.secret.access.key", "s3.secret.access.key"),
    ] {
        if let Some(v) = cfg.get(from) {
            opts.push(o(to, v));
            if from == "store.url" && v.starts_with("http://") {
                opts.push(o("s3.allow.http", "true"));
            }
        }
    }
    if let Some(n) = cfg.get("flush.size") {
        opts.push(o("rollover.rows", n));
    }
    if let Some(ms) = cfg
        .get("rotate.interval.ms")
        .or_else(|| cfg.get("rotate.schedule.interval.ms"))
    {
        opts.push(o("rollover.interval", format!("{ms}ms")));
    }
    if let Some(codec) = cfg.get("parquet.codec") {
        opts.push(o("parquet.compression", codec));
    }
    match cfg.get("partitioner.class") {
        Some(p) if p.ends_with("FieldPartitioner") => {
            opts.push(o(
                "partition.by",
                cfg.require("partition.field.name", "FieldPartitioner partitions by these fields")?,
            ));
        }
        Some(p) if !p.ends_with("DefaultPartitioner") => {
            notes.untranslated("partitioner.class", format!("{p}: Quiver partitions by output columns (partition.by); compute the partition column in the SELECT"));
        }
        _ => notes.note("DefaultPartitioner: Quiver writes one folder per sink, not topic/partition=N/ folders"),
    }
    plan.sink_options = [opts, std::mem::take(&mut plan.sink_options)].concat();
    plan.shape = SinkShape::Files;
    Ok(())
}

/// `postgres` or `mysql`, from a JDBC URL.
fn database(url: &str) -> Result<&'static str> {
    let u = url.strip_prefix("jdbc:").unwrap_or(url);
    if u.starts_with("postgresql:") || u.starts_with("postgres:") {
        Ok("postgres")
    } else if u.starts_with("mysql:") || u.starts_with("mariadb:") {
        Ok("mysql")
    } else {
        Err(TranslateError::new(
            "connection.url",
            format!(
                "'{url}': Quiver connects to PostgreSQL (jdbc:postgresql://) and MySQL/MariaDB (jdbc:mysql://, jdbc:mariadb://)"
            ),
        ))
    }
}

const JDBC_CONNECTION: [&str; 5] = [
    "connection.url",
    "connection.user",
    "connection.password",
    "connection.ssl.mode",
    "connection.ssl.root.cert",
];

fn jdbc_sink(cfg: &ConnectorConfig, plan: &mut Plan) -> Result<()> {
    let url = cfg.require("connection.url", "the database's JDBC URL")?;
    let mut opts = vec![o("connector", database(url)?)];
    let keys = JDBC_CONNECTION.iter().chain(&[
        "table.name.format",
        "insert.mode",
        "pk.mode",
        "pk.fields",
        "fields.whitelist",
        "auto.create",
        "auto.evolve",
        "delete.enabled",
        "batch.size",
        "max.retries",
        "retry.backoff.ms",
    ]);
    pass_through(cfg, keys, &mut opts);
    let record_key = cfg.get("pk.mode") == Some("record_key");
    plan.sink_options = [opts, std::mem::take(&mut plan.sink_options)].concat();
    plan.shape = SinkShape::Table { record_key };
    Ok(())
}

fn file_stream_source(cfg: &ConnectorConfig, plan: &mut Plan) -> Result<String> {
    let file = cfg.require("file", "the file to read (Quiver does not read standard input)")?;
    let topic = cfg.require("topic", "the topic to write the lines to")?.to_string();
    let _ = cfg.get("batch.size");
    plan.columns = "value TEXT".into();
    plan.source_options = vec![o("connector", "file"), o("path", file), o("format", "text")];
    plan.record.fields = vec![("value".into(), Expr::column("value", DataType::Utf8))];
    plan.context = Context {
        from_kafka: false,
        tombstone: None,
        origin: "a file".into(),
        key_json: false,
        primitive: true,
        unwrapped: None,
    };
    Ok(topic)
}

fn jdbc_source(cfg: &ConnectorConfig, options: &TranslateOptions, plan: &mut Plan) -> Result<String> {
    let url = cfg.require("connection.url", "the database's JDBC URL")?;
    let mut opts = vec![o("connector", database(url)?)];
    let tables = cfg.list("table.whitelist");
    let query = cfg.get("query");
    if tables.len() > 1 {
        return Err(TranslateError::new(
            "table.whitelist",
            "lists several tables; their columns differ, so translate one connector per table",
        ));
    }
    let keys = JDBC_CONNECTION.iter().chain(&[
        "mode",
        "table.whitelist",
        "query",
        "incrementing.column.name",
        "timestamp.column.name",
        "poll.interval.ms",
        "batch.max.rows",
        "timestamp.delay.interval.ms",
        "connection.attempts",
        "connection.backoff.ms",
    ]);
    pass_through(cfg, keys, &mut opts);
    // Columns read from the catalog follow the table, as Kafka Connect's do.
    if options.evolve && query.is_none() {
        opts.push(o("schema.evolve", "true"));
    }
    let prefix = cfg.get("topic.prefix").unwrap_or("");
    let topic = match (tables.first(), query) {
        (Some(t), None) => format!("{prefix}{t}"),
        (None, Some(_)) if !prefix.is_empty() => prefix.to_string(),
        (None, Some(_)) => {
            return Err(TranslateError::new(
                "topic.prefix",
                "missing: with query it is the whole topic name",
            ));
        }
        _ => {
            return Err(TranslateError::new(
                "table.whitelist",
                "set table.whitelist (one table) or query",
            ));
        }
    };
    let (text, schema) = columns(cfg, options, None)?;
    plan.columns = text;
    plan.source_options = opts;
    plan.record.fields = fields_of(&schema);
    plan.context = Context {
        from_kafka: false,
        tombstone: None,
        origin: "a JDBC source".into(),
        key_json: false,
        primitive: false,
        unwrapped: None,
    };
    Ok(topic)
}

fn kafka_sink(
    cfg: &ConnectorConfig,
    options: &TranslateOptions,
    plan: &mut Plan,
    topic: &str,
    notes: &mut Notes,
) -> Result<()> {
    let value = converters::read(cfg, "value", notes)?;
    let key = converters::read(cfg, "key", notes)?;
    let mut opts = vec![
        o("connector", "kafka"),
        o(
            "bootstrap.servers",
            bootstrap(cfg, options, "producer.override.bootstrap.servers"),
        ),
    ];
    opts.extend(value.value_options());
    opts.push(o("key.format", key.key_format(notes)));
    client_overrides(cfg, "producer.override.", &mut opts);
    plan.record.topic = Some(Expr::new(lit(topic), DataType::Utf8));
    plan.static_topic = Some(topic.to_string());
    plan.sink_options = opts;
    plan.shape = SinkShape::Kafka { mirror: false };
    Ok(())
}

impl Plan {
    /// The sink's SELECT after the chain, adding the sink options the chain implies.
    pub(crate) fn render_select(&mut self, rec: &Record, notes: &mut Notes) -> Result<String> {
        let start = &self.record;
        let mut items: Vec<String> = rec
            .fields
            .iter()
            .map(|(n, e)| {
                if e.sql == ident(n) {
                    e.sql.clone()
                } else {
                    format!("{} AS {}", e.sql, ident(n))
                }
            })
            .collect();
        let topic_changed = rec.topic != start.topic;
        match &self.shape {
            SinkShape::Kafka { mirror } => {
                let mirror = *mirror;
                match (&rec.topic, &self.static_topic) {
                    (Some(_), Some(t)) if !topic_changed => self.sink_options.push(o("topic", t.clone())),
                    (Some(t), _) => items.push(format!("{} AS _topic", t.sql)),
                    (None, _) => {}
                }
                if let Some(fields) = &rec.key_fields {
                    self.sink_options.push(o("key.fields", fields.join(",")));
                    self.sink_options.retain(|(k, _)| k != "key.format");
                    self.sink_options.push(o("key.format", "json"));
                } else if let Some(k) = rec.key.as_ref().filter(|_| mirror || rec.key != start.key) {
                    // A number or timestamp key is written as its text, as the converters do.
                    let text = matches!(k.ty, DataType::Utf8 | DataType::Binary);
                    items.push(if text {
                        format!("{} AS _key", k.sql)
                    } else {
                        format!("CAST({} AS TEXT) AS _key", k.sql)
                    });
                }
                if let Some(h) = rec.headers.as_ref().filter(|_| mirror || rec.headers != start.headers) {
                    items.push(format!("{} AS _headers", h.sql));
                }
                if mirror {
                    // The same partition and timestamp as the original record.
                    items.extend(rec.partition.iter().map(|p| format!("{} AS _partition", p.sql)));
                    items.extend(rec.timestamp.iter().map(|t| format!("{} AS _timestamp", t.sql)));
                }
            }
            SinkShape::Table { record_key } => {
                if topic_changed && let Some(t) = &rec.topic {
                    items.push(format!("{} AS _topic", t.sql));
                }
                match (&rec.key_fields, record_key) {
                    (Some(fields), true) => {
                        // ValueToKey then pk.mode = record_key: the key's fields are these value fields.
                        for (k, v) in self.sink_options.iter_mut() {
                            if k == "pk.mode" {
                                *v = "record_value".into();
                            }
                        }
                        if !self.sink_options.iter().any(|(k, _)| k == "pk.fields") {
                            self.sink_options.push(o("pk.fields", fields.join(",")));
                        }
                        notes.note(format!(
                            "ValueToKey + pk.mode = record_key: written as pk.mode = 'record_value' over {}",
                            fields.join(", ")
                        ));
                    }
                    (None, true) => {
                        if let Some(k) = &rec.key {
                            items.push(format!("{} AS _key", k.sql));
                        }
                    }
                    _ => {}
                }
            }
            SinkShape::Files => {
                if topic_changed {
                    notes.note("the topic the transforms compute does not place files: a file sink writes every record under its one path");
                }
                if rec.key_fields.is_some() || rec.key != start.key {
                    notes.note("the record key the transforms compute is not written by a file sink (values only)");
                }
            }
        }
        if items.is_empty() {
            return Err(TranslateError::new(
                "transforms",
                "the chain leaves the record with no fields",
            ));
        }
        let mut sql = format!("SELECT {}\nFROM {}", items.join(",\n       "), self.source_name);
        if !rec.keep.is_empty() {
            sql.push_str(&format!("\nWHERE {}", rec.keep.join("\n  AND ")));
        }
        Ok(sql)
    }

    /// Tests: write to a Kafka topic instead, so the chain's topic, key and headers show.
    #[cfg(test)]
    pub(crate) fn write_to_kafka(&mut self) {
        self.sink_options = vec![
            o("connector", "kafka"),
            o("bootstrap.servers", "localhost:9092"),
            o("key.format", "string"),
        ];
        self.shape = SinkShape::Kafka { mirror: false };
    }

    pub(crate) fn source_sql(&self) -> String {
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns)
        };
        format!(
            "CREATE SOURCE {}{columns}\nWITH ({});",
            self.source_name,
            with(&self.source_options)
        )
    }

    pub(crate) fn sink_sql(&self, select: &str) -> String {
        format!(
            "CREATE SINK {}\nWITH ({})\nAS {select};",
            self.sink_name,
            with(&self.sink_options)
        )
    }
}

fn with(options: &[(String, String)]) -> String {
    options
        .iter()
        .map(|(k, v)| format!("{} = {}", lit(k), lit(v)))
        .collect::<Vec<_>>()
        .join(",\n      ")
}
