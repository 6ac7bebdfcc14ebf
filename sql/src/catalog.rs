//! Sources and sinks known to a session, and planning statements against them.
//!
//! [`Catalog::plan`] is pure: it parses options, validates them with the
//! connector, compiles the SELECT, and returns a [`Plan`] without touching
//! anything outside the process. The engine applies plans and runs pipelines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, SchemaRef};
use quiver_connectors::api::options::{closest, expand_keys, is_secret};
use quiver_connectors::api::{
    BatchPolicy, ConnectorError, ErasedConnector, KafkaCluster, OptionKind, OptionSpec, Options, ValidatedConfig,
};

use sqlparser::ast::Spanned;

use crate::compile::{columns_to_schema, compile_query, sql_type_name};
use crate::error::{Location, Result, SqlError};
use crate::parser::{CreateSink, CreateSource, ObjectKind, OptionEntry, ParsedStatement, ShowKind, Statement};
use crate::stateless;
use crate::transform::CompiledTransform;

/// Options every source takes, besides its connector's.
pub const CONNECTOR: OptionSpec = OptionSpec::new(
    "connector",
    OptionKind::String,
    "Which connector reads or writes the data.",
)
.required();
pub const BATCH_SIZE: OptionSpec = OptionSpec::new(
    "batch.size",
    OptionKind::Integer,
    "Most rows a source puts in one batch.",
)
.default("8192");
pub const BATCH_BYTES: OptionSpec = OptionSpec::new(
    "batch.bytes",
    OptionKind::Bytes,
    "Most input bytes a source reads for one batch.",
)
.default("8MiB");
pub const BATCH_LINGER: OptionSpec = OptionSpec::new(
    "batch.linger",
    OptionKind::Duration,
    "How long a source waits to fill a batch before sending a partial one.",
)
.default("200ms");
pub const COMMON_SOURCE_OPTIONS: &[OptionSpec] = &[CONNECTOR, BATCH_SIZE, BATCH_BYTES, BATCH_LINGER];

/// Options every sink takes, besides its connector's (Kafka Connect's names).
pub const ERRORS_TOLERANCE: OptionSpec = OptionSpec::new(
    "errors.tolerance",
    OptionKind::Enum(&["none", "all"]),
    "'none' fails the pipeline on the first bad record; 'all' routes bad records to the dead-letter queue and continues.",
)
.default("none");
pub const ERRORS_DLQ_PATH: OptionSpec = OptionSpec::new(
    "errors.deadletterqueue.path",
    OptionKind::String,
    "Folder for dead-letter files (<sink>.jsonl: the record, source, partition, position, stage, error). Needs errors.tolerance = 'all'.",
);
pub const ERRORS_LOG_ENABLE: OptionSpec = OptionSpec::new(
    "errors.log.enable",
    OptionKind::Bool,
    "Log every bad record (with errors.tolerance = 'all').",
)
.default("false");
pub const ERRORS_LOG_MESSAGES: OptionSpec = OptionSpec::new(
    "errors.log.include.messages",
    OptionKind::Bool,
    "Include the failed record itself in each logged failure.",
)
.default("false");
pub const ERRORS_DLQ_TOPIC: OptionSpec = OptionSpec::new(
    "errors.deadletterqueue.topic.name",
    OptionKind::String,
    "Kafka topic for bad records (original key, value and headers). Needs errors.tolerance = 'all'.",
);
pub const ERRORS_DLQ_HEADERS: OptionSpec = OptionSpec::new(
    "errors.deadletterqueue.context.headers.enable",
    OptionKind::Bool,
    "Add Kafka Connect's __connect.errors.* headers (topic, partition, offset, stage, exception) to dead-letter records.",
)
.default("false");
pub const ERRORS_DLQ_BOOTSTRAP: OptionSpec = OptionSpec::new(
    "errors.deadletterqueue.bootstrap.servers",
    OptionKind::String,
    "Kafka cluster of the dead-letter topic. Default: the sink's bootstrap.servers if it is Kafka, else the source's.",
);
pub const ERRORS_RETRY_TIMEOUT: OptionSpec = OptionSpec::new(
    "errors.retry.timeout",
    OptionKind::Duration,
    "How long a retriable sink failure (broker or store unavailable) is retried before the pipeline fails; 0 = no retries.",
)
.default("30s");
pub const ERRORS_RETRY_DELAY_MAX: OptionSpec = OptionSpec::new(
    "errors.retry.delay.max.ms",
    OptionKind::Duration,
    "Longest wait between retries (the backoff doubles from 100ms up to this).",
)
.default("60000");
pub const TASKS_MAX: OptionSpec = OptionSpec::new(
    "tasks.max",
    OptionKind::Integer,
    "Parallel tasks of the pipeline, each with its own source reader, transform and sink writer: Kafka partitions are spread over them by the consumer group, a folder's files by path; a source that cannot split (one table, datagen) runs one.",
)
.default("1");
/// The most tasks one pipeline may run.
pub const MAX_TASKS: u64 = 64;
pub const COMMON_SINK_OPTIONS: &[OptionSpec] = &[
    CONNECTOR,
    TASKS_MAX,
    ERRORS_TOLERANCE,
    ERRORS_DLQ_PATH,
    ERRORS_DLQ_TOPIC,
    ERRORS_DLQ_HEADERS,
    ERRORS_DLQ_BOOTSTRAP,
    ERRORS_LOG_ENABLE,
    ERRORS_LOG_MESSAGES,
    ERRORS_RETRY_TIMEOUT,
    ERRORS_RETRY_DELAY_MAX,
];

/// Where bad records go when they go to a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTopicSpec {
    pub topic: String,
    /// The cluster, with the client properties (security) of the connector it came from.
    pub cluster: KafkaCluster,
    pub context_headers: bool,
}

/// What to do with records that fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// `errors.tolerance = all`.
    pub tolerate: bool,
    pub dlq_path: Option<String>,
    pub dlq_topic: Option<DeadLetterTopicSpec>,
    pub log: bool,
    pub log_messages: bool,
    /// How long retriable sink failures are retried, and the longest backoff step.
    pub retry_timeout: Duration,
    pub retry_delay_max: Duration,
}

/// A declared source.
#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    pub connector: &'static dyn ErasedConnector,
    pub config: ValidatedConfig,
    /// The declared columns followed by the connector's metadata columns.
    pub schema: SchemaRef,
    /// How many leading columns of `schema` were declared (what `SELECT *` means).
    pub declared: usize,
    pub batch: BatchPolicy,
    /// Options as written (secrets masked), for DESCRIBE.
    pub options: Vec<(String, String)>,
    pub sql: String,
}

/// A sink with everything needed to run its pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub name: String,
    pub source: Arc<SourceDef>,
    pub connector: &'static dyn ErasedConnector,
    pub config: ValidatedConfig,
    pub transform: Arc<CompiledTransform>,
    pub errors: ErrorPolicy,
    /// `tasks.max`: how many parallel tasks the pipeline asks for (its source
    /// decides how many it can keep busy, see `source_tasks`).
    pub tasks: u32,
    pub options: Vec<(String, String)>,
    pub sql: String,
}

/// A console preview: `SELECT … [FROM source] [WHERE …] [LIMIT n]`.
#[derive(Debug, Clone)]
pub struct Preview {
    pub source: Option<Arc<SourceDef>>,
    pub transform: Arc<CompiledTransform>,
    pub limit: Option<u64>,
}

/// A result table (SHOW, DESCRIBE, EXPLAIN).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What a statement asks for, validated.
#[derive(Debug, Clone)]
pub enum Plan {
    CreateSource(Arc<SourceDef>),
    CreateSink(Arc<PipelineSpec>),
    Drop {
        kind: ObjectKind,
        name: String,
        if_exists: bool,
    },
    Show(ShowKind),
    Describe(Table),
    Explain(Table),
    Preview(Preview),
}

#[cfg(test)]
mod tests {
    use super::substitute_env;

    #[test]
    fn environment_references() {
        let env = |n: &str| (n == "HOST").then(|| "k1:9092".to_string());
        assert_eq!(substitute_env("${HOST}", env).unwrap(), "k1:9092");
        assert_eq!(substitute_env("a-${MISSING:-b}-c", env).unwrap(), "a-b-c");
        assert!(
            substitute_env("${MISSING}", env)
                .unwrap_err()
                .contains("MISSING is not set")
        );
        assert!(substitute_env("${bad name}", env).is_err());
        assert_eq!(substitute_env("plain $ text", env).unwrap(), "plain $ text");
        // Kafka Connect record placeholders stay for the connector.
        assert_eq!(
            substitute_env("kafka_${topic}_${HOST}", env).unwrap(),
            "kafka_${topic}_k1:9092"
        );
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub sources: BTreeMap<String, Arc<SourceDef>>,
    pub sinks: BTreeMap<String, Arc<PipelineSpec>>,
}

fn masked(options: &[OptionEntry]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|o| {
            (
                o.key.clone(),
                if is_secret(&o.key) {
                    "********".into()
                } else {
                    o.value.clone()
                },
            )
        })
        .collect()
}

/// Column names usable in per-column option templates (nested as `parent.child`).
fn column_paths(schema: &SchemaRef) -> Vec<String> {
    fn walk(prefix: &str, f: &arrow::datatypes::Field, out: &mut Vec<String>) {
        let p = if prefix.is_empty() {
            f.name().clone()
        } else {
            format!("{prefix}.{}", f.name())
        };
        out.push(p.clone());
        if let DataType::Struct(children) = f.data_type() {
            for c in children {
                walk(&p, c, out);
            }
        }
    }
    let mut out = Vec::new();
    for f in schema.fields() {
        walk("", f, &mut out);
    }
    out
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans one statement against this catalog. Pure: no I/O.
    pub fn plan(&self, stmt: &ParsedStatement) -> Result<Plan> {
        let at = stmt.location;
        match &stmt.statement {
            Statement::CreateSource(s) => self.plan_source(s, stmt).map(|d| Plan::CreateSource(Arc::new(d))),
            Statement::CreateSink(s) => self.plan_sink(s, stmt).map(|p| Plan::CreateSink(Arc::new(p))),
            Statement::Drop { kind, name, if_exists } => {
                let name = name.value.clone();
                match kind {
                    ObjectKind::Source => {
                        if !self.sources.contains_key(&name) && !if_exists {
                            return Err(SqlError::invalid(format!("there is no source '{name}'"), Some(at)));
                        }
                        if let Some(sink) = self.sinks.values().find(|s| s.source.name == name) {
                            return Err(SqlError::invalid(
                                format!("source '{name}' is read by sink '{}'; drop the sink first", sink.name),
                                Some(at),
                            ));
                        }
                    }
                    ObjectKind::Sink => {
                        if !self.sinks.contains_key(&name) && !if_exists {
                            return Err(SqlError::invalid(format!("there is no sink '{name}'"), Some(at)));
                        }
                    }
                }
                Ok(Plan::Drop {
                    kind: *kind,
                    name,
                    if_exists: *if_exists,
                })
            }
            Statement::Show(kind) => Ok(Plan::Show(*kind)),
            Statement::Describe(name) => self.describe(&name.value, at).map(Plan::Describe),
            Statement::Explain(s) => {
                let spec = self.plan_sink(s, stmt)?;
                Ok(Plan::Explain(explain(&spec)))
            }
            Statement::Query(q) => {
                let shape = stateless::check(q, true)?;
                let mut q = q.clone();
                q.limit_clause = None;
                let source = match &shape.source {
                    None => None,
                    Some((name, loc)) => Some(self.source(name, *loc)?),
                };
                let transform = compile_query(
                    &q,
                    source.as_ref().map(|s| (s.name.as_str(), &s.schema, s.declared)),
                    at,
                )?;
                Ok(Plan::Preview(Preview {
                    source,
                    transform: Arc::new(transform),
                    limit: shape.limit,
                }))
            }
        }
    }

    /// Records the effect of a plan (the engine calls this once the plan is carried out).
    pub fn apply(&mut self, plan: &Plan) {
        match plan {
            Plan::CreateSource(s) => {
                self.sources.insert(s.name.clone(), Arc::clone(s));
            }
            Plan::CreateSink(p) => {
                self.sinks.insert(p.name.clone(), Arc::clone(p));
            }
            Plan::Drop {
                kind: ObjectKind::Source,
                name,
                ..
            } => {
                self.sources.remove(name);
            }
            Plan::Drop {
                kind: ObjectKind::Sink,
                name,
                ..
            } => {
                self.sinks.remove(name);
            }
            _ => {}
        }
    }

    fn source(&self, name: &str, loc: Location) -> Result<Arc<SourceDef>> {
        self.sources.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            let hint = match closest(name, known.iter().copied()) {
                Some(c) => format!("; did you mean '{c}'?"),
                None if known.is_empty() => "; no sources are declared yet (CREATE SOURCE first)".to_string(),
                None => format!("; declared sources: {}", known.join(", ")),
            };
            SqlError::invalid(format!("unknown source '{name}'{hint}"), Some(loc))
        })
    }

    fn check_name_free(&self, name: &str, loc: Location) -> Result<()> {
        if self.sources.contains_key(name) {
            return Err(SqlError::invalid(
                format!("a source named '{name}' already exists (DROP SOURCE {name} first)"),
                Some(loc),
            ));
        }
        if self.sinks.contains_key(name) {
            return Err(SqlError::invalid(
                format!("a sink named '{name}' already exists (DROP SINK {name} first)"),
                Some(loc),
            ));
        }
        Ok(())
    }

    fn plan_source(&self, s: &CreateSource, stmt: &ParsedStatement) -> Result<SourceDef> {
        let at = stmt.location;
        let name = s.name.value.clone();
        self.check_name_free(&name, s.name.span.start.into())?;
        let schema = columns_to_schema(&s.columns, at)?;
        let (connector, mut opts) = connector_and_options(&s.options, at, "source")?;
        let locate = |e: ConnectorError| option_error(e, &s.options, at);
        let batch = BatchPolicy {
            max_rows: opts.pull_u64(&BATCH_SIZE).map_err(locate)?.unwrap_or(8192).max(1) as usize,
            max_bytes: opts.pull_bytes(&BATCH_BYTES).map_err(locate)?.unwrap_or(8 << 20).max(1) as usize,
            linger: opts
                .pull_duration(&BATCH_LINGER)
                .map_err(locate)?
                .unwrap_or(Duration::from_millis(200)),
        };
        let Some(specs) = connector.source_options() else {
            return Err(role_error(connector, "source", &s.options, at));
        };
        let config = connector.parse_source(&mut opts, &schema).map_err(locate)?;
        let mut valid = expand_keys(specs, &column_paths(&schema));
        valid.extend(COMMON_SOURCE_OPTIONS.iter().map(|s| s.key.to_string()));
        opts.finish(connector.name(), "source", &valid).map_err(locate)?;
        let declared = schema.fields().len();
        if declared == 0 && !connector.declares_no_columns(&config) {
            return Err(SqlError::invalid(
                format!("source {name} declares no columns: CREATE SOURCE {name} (name TYPE, …) WITH (…)"),
                Some(s.name.span.start.into()),
            ));
        }
        let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
        fields.extend(connector.metadata_columns(&config));
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        Ok(SourceDef {
            name,
            connector,
            config,
            schema,
            declared,
            batch,
            options: masked(&s.options),
            sql: stmt.text.clone(),
        })
    }

    fn plan_sink(&self, s: &CreateSink, stmt: &ParsedStatement) -> Result<PipelineSpec> {
        let at = stmt.location;
        let name = s.name.value.clone();
        self.check_name_free(&name, s.name.span.start.into())?;
        let (source, transform) = match (&s.query, &s.from) {
            (Some(q), _) => {
                let shape = stateless::check(q, false)?;
                let Some((src, loc)) = shape.source else {
                    return Err(SqlError::invalid(
                        format!("sink '{name}' must read FROM a source"),
                        Some(at),
                    ));
                };
                let source = self.source(&src, loc)?;
                let t = compile_query(q, Some((source.name.as_str(), &source.schema, source.declared)), at)?;
                (source, t)
            }
            (None, Some(from)) => {
                let source = self.source(&from.to_string(), from.span().start.into())?;
                let t = CompiledTransform::identity(Arc::clone(&source.schema), source.declared);
                (source, t)
            }
            (None, None) => {
                return Err(SqlError::invalid(
                    format!("sink '{name}' needs AS SELECT … or FROM source"),
                    Some(at),
                ));
            }
        };
        let (connector, mut opts) = connector_and_options(&s.options, at, "sink")?;
        let locate = |e: ConnectorError| option_error(e, &s.options, at);
        let tolerate = opts.pull_enum(&ERRORS_TOLERANCE).map_err(locate)?.unwrap_or("none") == "all";
        let dlq_path = opts.pull_str(&ERRORS_DLQ_PATH).map_err(locate)?;
        let log = opts.pull_bool(&ERRORS_LOG_ENABLE).map_err(locate)?.unwrap_or(false);
        let log_messages = opts.pull_bool(&ERRORS_LOG_MESSAGES).map_err(locate)?.unwrap_or(false);
        let retry_timeout = opts
            .pull_duration(&ERRORS_RETRY_TIMEOUT)
            .map_err(locate)?
            .unwrap_or(Duration::from_secs(30));
        let retry_delay_max = opts
            .pull_duration(&ERRORS_RETRY_DELAY_MAX)
            .map_err(locate)?
            .unwrap_or(Duration::from_secs(60));
        let dlq_topic_name = opts.pull_str(&ERRORS_DLQ_TOPIC).map_err(locate)?;
        let context_headers = opts.pull_bool(&ERRORS_DLQ_HEADERS).map_err(locate)?.unwrap_or(false);
        let dlq_bootstrap = opts.pull_str(&ERRORS_DLQ_BOOTSTRAP).map_err(locate)?;
        let tasks = opts.pull_u64(&TASKS_MAX).map_err(locate)?.unwrap_or(1);
        if !(1..=MAX_TASKS).contains(&tasks) {
            return Err(locate(ConnectorError::option(
                TASKS_MAX.key,
                format!("must be between 1 and {MAX_TASKS} (got {tasks})"),
            )));
        }
        for (key, set) in [
            (ERRORS_DLQ_PATH.key, dlq_path.is_some()),
            (ERRORS_DLQ_TOPIC.key, dlq_topic_name.is_some()),
        ] {
            if set && !tolerate {
                return Err(option_error(
                    ConnectorError::option(
                        key,
                        "needs errors.tolerance = 'all' (with 'none' the first bad record stops the pipeline)",
                    ),
                    &s.options,
                    at,
                ));
            }
        }
        let Some(specs) = connector.sink_options() else {
            return Err(role_error(connector, "sink", &s.options, at));
        };
        let output = Arc::clone(transform.output_schema());
        let config = connector.parse_sink(&mut opts, &output).map_err(locate)?;
        connector
            .check_sink_source(&config, source.connector.name())
            .map_err(locate)?;
        // The dead-letter topic lives on the sink's Kafka cluster, else the source's,
        // with that connector's client properties (SASL/SSL), unless told otherwise.
        let dlq_topic = match dlq_topic_name {
            None => None,
            Some(topic) => {
                let cluster = match dlq_bootstrap {
                    Some(bootstrap) => KafkaCluster {
                        bootstrap,
                        properties: Vec::new(),
                    },
                    None => match connector
                        .sink_cluster(&config)
                        .or_else(|| source.connector.source_cluster(&source.config))
                    {
                        Some(c) => c,
                        None => {
                            return Err(option_error(
                                ConnectorError::option(
                                    ERRORS_DLQ_TOPIC.key,
                                    "needs a Kafka cluster: set errors.deadletterqueue.bootstrap.servers (neither the source nor the sink is Kafka)",
                                ),
                                &s.options,
                                at,
                            ));
                        }
                    },
                };
                Some(DeadLetterTopicSpec {
                    topic,
                    cluster,
                    context_headers,
                })
            }
        };
        let mut valid = expand_keys(specs, &column_paths(&output));
        valid.extend(COMMON_SINK_OPTIONS.iter().map(|s| s.key.to_string()));
        opts.finish(connector.name(), "sink", &valid).map_err(locate)?;
        Ok(PipelineSpec {
            name,
            source,
            connector,
            config,
            transform: Arc::new(transform),
            errors: ErrorPolicy {
                tolerate,
                dlq_path,
                dlq_topic,
                log,
                log_messages,
                retry_timeout,
                retry_delay_max,
            },
            tasks: tasks as u32,
            options: masked(&s.options),
            sql: stmt.text.clone(),
        })
    }

    fn describe(&self, name: &str, at: Location) -> Result<Table> {
        let columns = vec!["column".to_string(), "type".to_string(), "nullable".to_string()];
        let schema_rows = |schema: &SchemaRef| -> Vec<Vec<String>> {
            schema
                .fields()
                .iter()
                .map(|f| {
                    vec![
                        f.name().clone(),
                        sql_type_name(f.data_type()),
                        f.is_nullable().to_string(),
                    ]
                })
                .collect()
        };
        if let Some(s) = self.sources.get(name) {
            let mut rows = schema_rows(&s.schema);
            for r in rows.iter_mut().skip(s.declared) {
                r[2] = format!("{} (metadata)", r[2]);
            }
            rows.extend(
                s.options
                    .iter()
                    .map(|(k, v)| vec![format!("option {k}"), v.clone(), String::new()]),
            );
            return Ok(Table { columns, rows });
        }
        if let Some(p) = self.sinks.get(name) {
            let mut rows = schema_rows(p.transform.output_schema());
            rows.push(vec!["source".into(), p.source.name.clone(), String::new()]);
            rows.extend(
                p.options
                    .iter()
                    .map(|(k, v)| vec![format!("option {k}"), v.clone(), String::new()]),
            );
            return Ok(Table { columns, rows });
        }
        Err(SqlError::invalid(
            format!("there is no source or sink named '{name}'"),
            Some(at),
        ))
    }
}

/// Kafka Connect's per-record placeholders (`table.name.format = 'kafka_${topic}'`,
/// TimestampRouter's `${timestamp}`): left in place for the connector to fill.
const RECORD_PLACEHOLDERS: [&str; 2] = ["topic", "timestamp"];

/// Replaces `${NAME}` and `${NAME:-default}` in an option value with environment
/// variables, so one pipeline file runs against different clusters and secrets stay
/// out of it. `${topic}` and `${timestamp}` are record placeholders, not variables.
pub fn substitute_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("'${{' without a closing '}}' in '{value}'"));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if default.is_none() && RECORD_PLACEHOLDERS.contains(&name) {
            out.push_str(&rest[start..start + 2 + end + 1]);
            rest = &after[end + 1..];
            continue;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "'${{{inner}}}' is not an environment variable reference (use ${{NAME}} or ${{NAME:-default}})"
            ));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (or give a default: ${{{name}:-value}})"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn connector_and_options(
    entries: &[OptionEntry],
    at: Location,
    role: &'static str,
) -> Result<(&'static dyn ErasedConnector, Options)> {
    let mut values = Vec::with_capacity(entries.len());
    for o in entries {
        let v = substitute_env(&o.value, |n| std::env::var(n).ok())
            .map_err(|e| SqlError::invalid(format!("option '{}': {e}", o.key), Some(o.location)))?;
        values.push((o.key.clone(), v));
    }
    let mut opts = Options::new(values);
    let Some(name) = opts.take(CONNECTOR.key) else {
        return Err(SqlError::invalid(
            format!("missing option 'connector' (known connectors: {})", known_connectors()),
            Some(at),
        ));
    };
    let loc = entries
        .iter()
        .find(|o| o.key == CONNECTOR.key)
        .map_or(at, |o| o.location);
    match quiver_connectors::find(&name) {
        Some(c) => Ok((c, opts)),
        None => {
            let hint = closest(&name, quiver_connectors::registry().iter().map(|c| c.name()))
                .map(|c| format!("did you mean '{c}'? "))
                .unwrap_or_default();
            Err(SqlError::invalid(
                format!(
                    "unknown connector '{name}' for a {role}; {hint}known connectors: {}",
                    known_connectors()
                ),
                Some(loc),
            ))
        }
    }
}

fn known_connectors() -> String {
    quiver_connectors::registry()
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_error(connector: &dyn ErasedConnector, role: &str, entries: &[OptionEntry], at: Location) -> SqlError {
    let able: Vec<&str> = quiver_connectors::registry()
        .iter()
        .filter(|c| {
            if role == "source" {
                c.source_options().is_some()
            } else {
                c.sink_options().is_some()
            }
        })
        .map(|c| c.name())
        .collect();
    let loc = entries
        .iter()
        .find(|o| o.key == CONNECTOR.key)
        .map_or(at, |o| o.location);
    SqlError::invalid(
        format!(
            "connector '{}' cannot be used as a {role}; {role} connectors: {}",
            connector.name(),
            able.join(", ")
        ),
        Some(loc),
    )
}

/// Locates a connector error at the option it is about.
fn option_error(e: ConnectorError, entries: &[OptionEntry], at: Location) -> SqlError {
    let loc = e
        .option_key()
        .and_then(|k| entries.iter().find(|o| o.key == k))
        .map_or(at, |o| o.location);
    SqlError::invalid(e.to_string(), Some(loc))
}

fn explain(spec: &PipelineSpec) -> Table {
    let t = &spec.transform;
    let mut rows = vec![
        vec![
            "sink".to_string(),
            format!("{} (connector {})", spec.name, spec.connector.name()),
        ],
        vec![
            "source".to_string(),
            format!("{} (connector {})", spec.source.name, spec.source.connector.name()),
        ],
        vec![
            "filter".to_string(),
            t.filter_text().unwrap_or_else(|| "none".to_string()),
        ],
    ];
    if let Some(pushed) = t.row_filter_text() {
        // Sources that decode record by record (JSON files) drop failing rows unbuilt.
        rows.push(vec!["filter at source".to_string(), pushed]);
    }
    for ((name, expr), f) in t.projection_texts().into_iter().zip(t.output_schema().fields()) {
        rows.push(vec![
            format!("column {name}"),
            format!("{expr} :: {}", sql_type_name(f.data_type())),
        ]);
    }
    rows.push(vec![
        "errors".to_string(),
        format!(
            "tolerance {}{}",
            if spec.errors.tolerate { "all" } else { "none" },
            spec.errors
                .dlq_path
                .as_ref()
                .map(|p| format!(", dead-letter queue {p}"))
                .unwrap_or_default()
                + &spec
                    .errors
                    .dlq_topic
                    .as_ref()
                    .map(|t| format!(", dead-letter topic {} on {}", t.topic, t.cluster.bootstrap))
                    .unwrap_or_default()
        ),
    ]);
    Table {
        columns: vec!["step".to_string(), "detail".to_string()],
        rows,
    }
}
