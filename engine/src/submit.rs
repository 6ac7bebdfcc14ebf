//! Submission: the one place where a connector's config is translated, validated
//! and planned. The REST handlers, `quiver server`'s connector files and
//! `quiver run CONNECTOR.json` all call it, so a config is accepted or refused the
//! same way everywhere.
//!
//! A connector is submitted in one of two forms:
//! 1. Kafka Connect connector JSON: `connector.class` names a class `quiver
//!    translate` knows; the config is translated to SQL ([`quiver_sql::connect`]).
//! 2. Quiver SQL: `connector.class` = [`SQL_CLASS`] and the statements
//!    (`CREATE SOURCE …; CREATE SINK … AS SELECT …`) under [`SQL_KEY`].
//!
//! Either way the statements are planned in a catalog of the connector's own, so
//! two connectors may both declare a source `orders` without colliding, and the
//! sink is renamed after the connector: its offsets, status and dead letters are
//! the connector's.
//!
//! Design note: every problem is collected with the key it belongs to
//! ([`Invalid`]), because Kafka Connect's 400 lists every bad key at once and its
//! validate endpoint attaches each error to its key.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_sql::connect::{ConnectorConfig, TranslateOptions, Translation};
use quiver_sql::{Catalog, PipelineSpec, Plan, Statement};
use serde::Serialize;

/// `connector.class` of a connector written in Quiver SQL.
pub const SQL_CLASS: &str = "quiver";
/// The key holding a Quiver SQL connector's statements.
pub const SQL_KEY: &str = "quiver.sql";
/// The keys a Quiver SQL connector takes besides [`SQL_KEY`].
const SQL_CONNECTOR_KEYS: [&str; 6] = [
    "name",
    "connector.class",
    "tasks.max",
    SQL_KEY,
    RESTART_ENABLED,
    RESTART_MAX,
];
/// Whether a failed task is restarted automatically (per connector, else the worker's).
pub const RESTART_ENABLED: &str = "auto.restart.enabled";
/// How many automatic restarts before a failing task stays FAILED.
pub const RESTART_MAX: &str = "auto.restart.max.restarts";

/// Automatic restarts of failed tasks (the Strimzi operator's `autoRestart`, but on
/// by default): after a failure the task is restarted after 1 s, then 2 s, 4 s, …
/// up to [`RestartPolicy::max_delay`], at most `max_restarts` times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub enabled: bool,
    pub max_restarts: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            max_restarts: 10,
        }
    }
}

impl RestartPolicy {
    /// The longest wait between two restarts.
    pub const fn max_delay() -> std::time::Duration {
        std::time::Duration::from_secs(300)
    }

    /// The wait before restart number `n + 1` (after `n` restarts).
    pub fn delay(n: u32) -> std::time::Duration {
        std::time::Duration::from_secs(1u64 << n.min(16)).min(Self::max_delay())
    }

    /// Reads the two keys from a config (a connector's or the worker's), over `base`.
    pub fn read(config: &BTreeMap<String, String>, base: RestartPolicy) -> Result<RestartPolicy, Invalid> {
        let mut policy = base;
        if let Some(v) = config.get(RESTART_ENABLED).map(|v| v.trim()) {
            policy.enabled = match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(Invalid::one(
                        RESTART_ENABLED,
                        format!("expected true or false, got '{v}'"),
                    ));
                }
            };
        }
        if let Some(v) = config.get(RESTART_MAX).map(|v| v.trim()) {
            policy.max_restarts = v
                .parse()
                .map_err(|_| Invalid::one(RESTART_MAX, format!("expected a number of restarts, got '{v}'")))?;
        }
        Ok(policy)
    }
}

/// What the worker supplies to every connector that does not say it itself, as a
/// Kafka Connect worker's properties do.
#[derive(Debug, Clone, Default)]
pub struct WorkerDefaults {
    /// The worker's `bootstrap.servers`, for connectors that read or write Kafka.
    pub bootstrap_servers: Option<String>,
    /// Connector settings inherited unless the connector sets them:
    /// `key.converter`, `value.converter` and their `.schemas.enable` and co.
    pub connector_defaults: BTreeMap<String, String>,
    /// `${file:…}`, `${env:…}`, `${dir:…}` placeholders, resolved when planning.
    pub providers: crate::providers::ConfigProviders,
    /// Automatic restarts of failed tasks, unless a connector says otherwise.
    pub restart: RestartPolicy,
}

/// Kafka Connect's connector type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    /// Reads from elsewhere into Kafka.
    Source,
    /// Reads from Kafka into elsewhere.
    Sink,
    /// Neither side is Kafka (a Quiver SQL pipeline from a file to a database, say).
    Unknown,
}

/// A planned connector, ready to run.
#[derive(Debug, Clone)]
pub struct Submission {
    pub name: String,
    /// `connector.class` as given.
    pub class: String,
    pub kind: ConnectorType,
    /// The statements that run (translated ones for Kafka Connect JSON).
    pub sql: String,
    /// The pipeline, named after the connector.
    pub spec: Arc<PipelineSpec>,
    /// `tasks.max` (default 1).
    pub tasks_max: u32,
    /// Kafka topics the pipeline reads or writes, for `GET …/topics`.
    pub topics: Vec<String>,
    /// Automatic restarts of its failed task.
    pub restart: RestartPolicy,
}

/// One problem with a config: the key it belongs to and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub problems: Vec<Problem>,
}

impl Invalid {
    pub(crate) fn one(key: &str, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                key: key.to_string(),
                message: message.into(),
            }],
        }
    }

    /// Each problem as `key: message`.
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                if p.key.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.key, p.message)
                }
            })
            .collect()
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Checks a connector name: Kafka Connect refuses empty names and control
/// characters; Quiver also refuses `/` and `\`, which would break REST paths and
/// the file names derived from it.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() {
        return Err(Invalid::one("name", "the connector needs a non-empty name"));
    }
    if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(Invalid::one(
            "name",
            format!(
                "'{}' may not contain control characters, '/' or '\\'",
                name.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Translates, validates and plans a connector. Pure: nothing is contacted.
pub fn connector(
    name: &str,
    config: &BTreeMap<String, String>,
    defaults: &WorkerDefaults,
) -> Result<Submission, Invalid> {
    connector_with(name, config, defaults, None)
}

/// [`connector`] with the value's columns found outside the config (see
/// [`crate::discover`]) for a Kafka Connect config that declares none.
pub fn connector_with(
    name: &str,
    config: &BTreeMap<String, String>,
    defaults: &WorkerDefaults,
    columns: Option<&str>,
) -> Result<Submission, Invalid> {
    check_name(name)?;
    let restart = RestartPolicy::read(config, defaults.restart)?;
    let resolved = resolved_for_translation(config, defaults)?;
    let config = &resolved;
    let Some(class) = config.get("connector.class").map(|c| c.trim().to_string()) else {
        return Err(Invalid::one(
            "connector.class",
            format!(
                "missing; name a Kafka Connect connector class, or '{SQL_CLASS}' with the statements under '{SQL_KEY}'"
            ),
        ));
    };
    let tasks_max = match config.get("tasks.max").map(|v| v.trim()) {
        None | Some("") => 1,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=quiver_sql::catalog::MAX_TASKS as u32).contains(&n) => n,
            _ => {
                return Err(Invalid::one(
                    "tasks.max",
                    format!(
                        "Invalid value {v} for configuration tasks.max: must be an integer between 1 and {}",
                        quiver_sql::catalog::MAX_TASKS
                    ),
                ));
            }
        },
    };
    let sql = if class == SQL_CLASS {
        match sql_statements(config) {
            Ok(sql) => sql,
            // Report the SQL's own problems beside the bad keys, all at once.
            Err(mut invalid) => {
                if let Some(sql) = config.get(SQL_KEY).filter(|s| !s.trim().is_empty())
                    && let Err(more) = plan(name, sql, Origin::Sql, defaults.bootstrap_servers.as_deref())
                {
                    invalid.problems.extend(more.problems);
                }
                return Err(invalid);
            }
        }
    } else {
        let cfg = connect_config(name, config.clone(), defaults);
        // Columns the worker found in the records' Connect schemas may grow: the
        // source watches for new fields and the worker adds them (worker/connectors.rs).
        let options = TranslateOptions {
            columns: columns.map(str::to_string),
            bootstrap_servers: defaults.bootstrap_servers.clone(),
            evolve: columns.is_some(),
        };
        translate_connect(&cfg, &options)?.sql
    };
    let origin = if class == SQL_CLASS {
        Origin::Sql
    } else {
        Origin::Translated
    };
    let mut spec = plan(name, &sql, origin, defaults.bootstrap_servers.as_deref())?;
    // The connector's tasks.max is its pipeline's, whatever the statements say.
    if config.contains_key("tasks.max") && spec.tasks != tasks_max {
        spec = Arc::new(PipelineSpec {
            tasks: tasks_max,
            ..(*spec).clone()
        });
    }
    let kind = match (spec.source.connector.name(), spec.connector.name()) {
        ("kafka", _) => ConnectorType::Sink,
        (_, "kafka") => ConnectorType::Source,
        _ => ConnectorType::Unknown,
    };
    let topics = topics_of(&spec);
    Ok(Submission {
        name: name.to_string(),
        class,
        kind,
        sql,
        spec,
        tasks_max,
        topics,
        restart,
    })
}

/// The stand-in column a source is planned with while its real columns are found.
const STAND_IN_COLUMNS: &str = "quiver_discover TEXT";

/// The source a Kafka Connect config reads, planned with a stand-in column, when the
/// config fails to translate only for want of columns (no `quiver.columns`, a
/// converter that fixes none); `None` for any other config. Pure.
pub fn discovery_source(
    name: &str,
    config: &BTreeMap<String, String>,
    defaults: &WorkerDefaults,
) -> Result<Option<Arc<quiver_sql::SourceDef>>, Invalid> {
    check_name(name)?;
    let resolved = resolved_for_translation(config, defaults)?;
    if resolved.get("connector.class").is_none_or(|c| c.trim() == SQL_CLASS) || resolved.contains_key("quiver.columns")
    {
        return Ok(None);
    }
    let cfg = connect_config(name, resolved, defaults);
    let options = TranslateOptions {
        columns: None,
        bootstrap_servers: defaults.bootstrap_servers.clone(),
        evolve: false,
    };
    match quiver_sql::connect::translate(&cfg, &options) {
        Err(e) if e.key == "quiver.columns" => {}
        _ => return Ok(None),
    }
    let Ok(sql) = quiver_sql::connect::source_statement(&cfg, &options, STAND_IN_COLUMNS) else {
        return Ok(None);
    };
    let (mut statements, errors) = quiver_sql::parse(&sql);
    if !errors.is_empty() {
        return Ok(None);
    }
    let Some(stmt) = statements.first_mut() else {
        return Ok(None);
    };
    if let Some(b) = defaults.bootstrap_servers.as_deref() {
        inherit_bootstrap(stmt, b);
    }
    match Catalog::new().plan(stmt) {
        Ok(Plan::CreateSource(source)) => Ok(Some(source)),
        Ok(_) => Ok(None),
        Err(e) => Err(Invalid::one("", e.message)),
    }
}

/// The config as the translation sees it: placeholders resolved, the keys the
/// worker reads itself (automatic restarts) left out.
fn resolved_for_translation(
    config: &BTreeMap<String, String>,
    defaults: &WorkerDefaults,
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut resolved = resolve(config, defaults)?;
    resolved.remove(RESTART_ENABLED);
    resolved.remove(RESTART_MAX);
    Ok(resolved)
}

/// A Kafka Connect config over the worker's connector defaults (converters), as
/// Kafka Connect merges worker and connector settings.
fn connect_config(name: &str, config: BTreeMap<String, String>, defaults: &WorkerDefaults) -> ConnectorConfig {
    let mut effective = defaults.connector_defaults.clone();
    effective.extend(config);
    ConnectorConfig::from_map(name, effective)
}

/// The config with the worker's config providers' placeholders resolved. The
/// result is only ever planned: it is never stored, returned or logged.
fn resolve(config: &BTreeMap<String, String>, defaults: &WorkerDefaults) -> Result<BTreeMap<String, String>, Invalid> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    for (k, v) in config {
        match defaults.providers.resolve(k, v) {
            Ok(r) => {
                out.insert(k.clone(), r);
            }
            Err(message) => problems.push(Problem {
                key: k.clone(),
                message: message.strip_prefix(&format!("{k}: ")).unwrap_or(&message).to_string(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Invalid { problems })
    }
}

/// A Quiver SQL connector's statements, refusing keys it does not take.
fn sql_statements(config: &BTreeMap<String, String>) -> Result<String, Invalid> {
    let mut problems: Vec<Problem> = config
        .keys()
        .filter(|k| !SQL_CONNECTOR_KEYS.contains(&k.as_str()))
        .map(|k| Problem {
            key: k.clone(),
            message: format!(
                "unknown key for a '{SQL_CLASS}' connector, which takes {}; connector options go in the WITH (…) of its statements",
                SQL_CONNECTOR_KEYS.join(", ")
            ),
        })
        .collect();
    let sql = config.get(SQL_KEY).map(|s| s.trim()).unwrap_or_default();
    if sql.is_empty() {
        problems.push(Problem {
            key: SQL_KEY.into(),
            message: "missing; give the connector's statements: CREATE SOURCE …; CREATE SINK … AS SELECT …".into(),
        });
    }
    if problems.is_empty() {
        Ok(sql.to_string())
    } else {
        Err(Invalid { problems })
    }
}

/// Translates Kafka Connect connector JSON, refusing anything with no Quiver
/// equivalent (each untranslated setting is a problem under its key).
pub fn translate_connect(config: &ConnectorConfig, options: &TranslateOptions) -> Result<Translation, Invalid> {
    let translation = quiver_sql::connect::translate(config, options).map_err(|e| Invalid::one(&e.key, e.message))?;
    if !translation.untranslated.is_empty() {
        return Err(Invalid {
            problems: translation
                .untranslated
                .iter()
                .map(|u| {
                    let (key, why) = u.split_once(": ").unwrap_or(("", u));
                    Problem {
                        key: key.to_string(),
                        message: format!("has no Quiver equivalent: {why}"),
                    }
                })
                .collect(),
        });
    }
    Ok(translation)
}

/// Where the statements came from, for attributing their problems to keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The user's own `quiver.sql`: problems name its line and column.
    Sql,
    /// Translated Kafka Connect JSON: the translated lines mean nothing to the user,
    /// so a problem goes under the option it names (most keep Kafka Connect's name).
    Translated,
}

/// One planning error as a problem under the right key.
fn problem(e: &quiver_sql::SqlError, origin: Origin) -> Problem {
    if e.message.contains("KAFKA_BOOTSTRAP is not set") {
        return Problem {
            key: "bootstrap.servers".into(),
            message: "the Kafka cluster is not known: set bootstrap.servers in the worker properties \
                      (--worker-config) or pass --bootstrap-servers"
                .into(),
        };
    }
    match origin {
        Origin::Sql => Problem {
            key: SQL_KEY.into(),
            message: match e.location {
                Some(l) => format!("line {}, column {}: {}", l.line, l.column, e.message),
                None => e.message.clone(),
            },
        },
        Origin::Translated => {
            let key = e
                .message
                .strip_prefix("option '")
                .and_then(|m| m.split_once('\''))
                .map_or("connector.class", |(k, _)| k);
            Problem {
                key: key.to_string(),
                message: e.message.clone(),
            }
        }
    }
}

/// A Kafka source or sink without `bootstrap.servers` of its own uses the worker's,
/// as every connector of a Kafka Connect worker does.
fn inherit_bootstrap(stmt: &mut quiver_sql::ParsedStatement, bootstrap: &str) {
    let location = stmt.location;
    let options = match &mut stmt.statement {
        Statement::CreateSource(c) => &mut c.options,
        Statement::CreateSink(c) => &mut c.options,
        _ => return,
    };
    let is_kafka = options
        .iter()
        .any(|o| o.key.eq_ignore_ascii_case("connector") && o.value.eq_ignore_ascii_case("kafka"));
    if is_kafka && !options.iter().any(|o| o.key == "bootstrap.servers") {
        options.push(quiver_sql::parser::OptionEntry {
            key: "bootstrap.servers".into(),
            value: bootstrap.to_string(),
            location,
        });
    }
}

/// Plans a connector's statements in a catalog of its own: only `CREATE SOURCE`
/// and exactly one `CREATE SINK`, which is renamed after the connector.
fn plan(name: &str, sql: &str, origin: Origin, bootstrap: Option<&str>) -> Result<Arc<PipelineSpec>, Invalid> {
    let (mut statements, errors) = quiver_sql::parse(sql);
    if let Some(b) = bootstrap {
        for stmt in &mut statements {
            inherit_bootstrap(stmt, b);
        }
    }
    if !errors.is_empty() {
        return Err(Invalid {
            problems: errors.iter().map(|e| problem(e, origin)).collect(),
        });
    }
    let mut catalog = Catalog::new();
    let mut sink = None;
    let mut problems = Vec::new();
    let mut failed_sources: Vec<String> = Vec::new();
    for stmt in &statements {
        match &stmt.statement {
            Statement::CreateSource(_) => {}
            Statement::CreateSink(s) => {
                if sink.is_some() {
                    problems.push(Problem {
                        key: SQL_KEY.into(),
                        message: format!(
                            "line {}: a connector runs one CREATE SINK; submit '{}' as a connector of its own",
                            stmt.location.line, s.name.value
                        ),
                    });
                    continue;
                }
            }
            _ => {
                problems.push(Problem {
                    key: SQL_KEY.into(),
                    message: format!(
                        "line {}: a connector holds only CREATE SOURCE and CREATE SINK statements",
                        stmt.location.line
                    ),
                });
                continue;
            }
        }
        match catalog.plan(stmt) {
            Ok(plan) => {
                if let Plan::CreateSink(spec) = &plan {
                    // The pipeline takes the connector's name: its offsets, status and
                    // dead letters are the connector's.
                    let mut renamed = PipelineSpec::clone(spec);
                    renamed.name = name.to_string();
                    sink = Some(Arc::new(renamed));
                }
                catalog.apply(&plan);
            }
            Err(e) => {
                if let Statement::CreateSource(c) = &stmt.statement {
                    failed_sources.push(c.name.value.clone());
                }
                // A sink on a source that already failed would only repeat that error.
                if failed_sources
                    .iter()
                    .any(|n| e.message.starts_with(&format!("unknown source '{n}'")))
                {
                    continue;
                }
                let p = problem(&e, origin);
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Invalid { problems });
    }
    sink.ok_or_else(|| Invalid::one(SQL_KEY, "no CREATE SINK: a connector needs one pipeline to run"))
}

/// The Kafka topics a pipeline names in its options.
fn topics_of(spec: &PipelineSpec) -> Vec<String> {
    let mut topics = Vec::new();
    for (connector, options) in [
        (spec.source.connector.name(), &spec.source.options),
        (spec.connector.name(), &spec.options),
    ] {
        if connector != "kafka" {
            continue;
        }
        for (k, v) in options {
            if k == "topic" || k == "topics" {
                topics.extend(v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()));
            }
        }
    }
    topics.sort();
    topics.dedup();
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const GEN: &str = "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.total' = '10', 'fields.id.kind' = 'sequence');
        CREATE SINK whatever WITH (connector = 'blackhole') AS SELECT id FROM gen;";

    #[test]
    fn a_sql_connector_is_planned_in_its_own_catalog_and_named_after_the_connector() {
        let s = connector(
            "orders",
            &config(&[("connector.class", "quiver"), ("quiver.sql", GEN)]),
            &WorkerDefaults::default(),
        )
        .unwrap();
        assert_eq!(s.spec.name, "orders");
        assert_eq!(s.kind, ConnectorType::Unknown);
        assert_eq!(s.tasks_max, 1);
        // A second connector declaring the same source name plans too.
        assert!(
            connector(
                "other",
                &config(&[("connector.class", "quiver"), ("quiver.sql", GEN)]),
                &WorkerDefaults::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let e = connector(
            "x",
            &config(&[("connector.class", "quiver"), ("topics", "a"), ("colour", "red")]),
            &WorkerDefaults::default(),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["colour", "topics", "quiver.sql"]);

        let e = connector(
            "x",
            &config(&[
                ("connector.class", "quiver"),
                (
                    "quiver.sql",
                    "CREATE SINK s WITH (connector = 'blackhole') AS SELECT 1 FROM nope;",
                ),
            ]),
            &WorkerDefaults::default(),
        )
        .unwrap_err();
        assert!(e.lines()[0].starts_with("quiver.sql: line 1, column "), "{e}");
        assert!(e.lines()[0].contains("nope"), "{e}");

        let two = format!("{GEN} CREATE SINK second WITH (connector = 'blackhole') AS SELECT id FROM gen;");
        let e = connector(
            "x",
            &config(&[("connector.class", "quiver"), ("quiver.sql", &two)]),
            &WorkerDefaults::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("a connector runs one CREATE SINK"), "{e}");

        let e = connector(
            "x",
            &config(&[
                ("connector.class", "quiver"),
                ("quiver.sql", GEN),
                ("tasks.max", "zero"),
            ]),
            &WorkerDefaults::default(),
        )
        .unwrap_err();
        assert_eq!(e.problems[0].key, "tasks.max");
        assert!(check_name("a/b").is_err());
        assert!(check_name(" ").is_err());
    }

    #[test]
    fn kafka_connect_json_takes_the_workers_bootstrap_and_converters() {
        let defaults = WorkerDefaults {
            bootstrap_servers: Some("broker:9092".into()),
            connector_defaults: config(&[
                ("value.converter", "org.apache.kafka.connect.storage.StringConverter"),
                ("key.converter", "org.apache.kafka.connect.storage.StringConverter"),
            ]),
            ..WorkerDefaults::default()
        };
        let s = connector(
            "lines",
            &config(&[
                (
                    "connector.class",
                    "org.apache.kafka.connect.file.FileStreamSinkConnector",
                ),
                ("topics", "events"),
                ("file", "/tmp/out.txt"),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!(s.kind, ConnectorType::Sink);
        assert_eq!(s.topics, ["events"]);
        assert!(s.sql.contains("broker:9092"), "{}", s.sql);
        let e = connector("c", &config(&[("connector.class", "com.example.Nope")]), &defaults).unwrap_err();
        assert_eq!(e.problems[0].key, "connector.class");
    }
}
