//! Kafka Connect connector JSON → Quiver SQL: `quiver translate`, `quiver run
//! connector.json`, and (later) the REST API's `POST /connectors`.
//!
//! A connector config is read the way Kafka Connect reads it. The connector class
//! ([`classes`]) decides which side is Kafka: a *sink* connector (S3, JDBC sink,
//! FileStreamSink) becomes a Kafka `CREATE SOURCE` plus a sink of that kind; a
//! *source* connector (JDBC source, FileStreamSource) becomes its own source plus a
//! Kafka sink. The converters ([`converters`]) pick the Kafka formats.
//!
//! The transform chain (`transforms`, `predicates`) is applied symbolically
//! ([`smt`], [`predicate`]) to a [`record::Record`]: one SQL expression per value
//! field plus the key, topic, headers and timestamp. Each SMT rewrites those
//! expressions, so the whole chain becomes the one `SELECT` of the sink, compiled
//! once like any hand-written one. Connector JSON carries no column types, so the
//! value's columns come from the caller ([`TranslateOptions::columns`]) or a
//! `quiver.columns` key in the config.
//!
//! Anything with no Quiver equivalent is either an error naming the key (a bad
//! value, an unknown SMT type) or, when the config is valid Kafka Connect but
//! cannot be expressed (a custom SMT class), an entry in
//! [`Translation::untranslated`], printed as a comment; such a translation is not
//! run.

mod classes;
mod converters;
mod debezium;
mod infer;
mod predicate;
mod record;
mod smt;

pub use infer::{SampleSpec, columns_ddl, sample_spec};

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A Kafka Connect plugin class Quiver translates, for `GET /connector-plugins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    pub class: String,
    /// Kafka Connect's plugin type: `source`, `sink`, `transformation`,
    /// `predicate` or `converter`.
    pub kind: &'static str,
}

/// Every connector, transformation, predicate and converter class the translation
/// knows, connectors first.
pub fn plugins() -> Vec<Plugin> {
    let mut out: Vec<Plugin> = classes::connector_classes()
        .map(|(class, source)| Plugin {
            class: class.to_string(),
            kind: if source { "source" } else { "sink" },
        })
        .collect();
    for (name, sided, _) in smt::KINDS {
        let forms: Vec<String> = if sided {
            vec![format!("{name}$Key"), format!("{name}$Value")]
        } else {
            vec![name.to_string()]
        };
        out.extend(forms.into_iter().map(|f| Plugin {
            class: format!("org.apache.kafka.connect.transforms.{f}"),
            kind: "transformation",
        }));
    }
    for class in [smt::DEBEZIUM_UNWRAP, debezium::EVENT_ROUTER] {
        out.push(Plugin {
            class: class.to_string(),
            kind: "transformation",
        });
    }
    out.extend(predicate::KINDS.iter().map(|k| Plugin {
        class: format!("org.apache.kafka.connect.transforms.predicates.{k}"),
        kind: "predicate",
    }));
    out.extend(converters::classes().map(|c| Plugin {
        class: c.to_string(),
        kind: "converter",
    }));
    out
}

/// Where a translation went wrong: the config key (`transforms.mask.fields`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub key: String,
    pub message: String,
}

impl TranslateError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for TranslateError {}

pub(crate) type Result<T> = std::result::Result<T, TranslateError>;

/// A Kafka Connect connector: its name and its flat `config` map.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    values: BTreeMap<String, String>,
    /// Keys read by the translation; the rest are reported as not translated.
    used: RefCell<BTreeSet<String>>,
}

impl ConnectorConfig {
    /// Reads `{"name": …, "config": {…}}` or a bare config map. Values may be JSON
    /// strings, numbers or booleans (Kafka Connect's REST API takes all three).
    /// Without a `name` anywhere, `fallback_name` (the file's stem) is used.
    pub fn from_json(text: &str, fallback_name: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TranslateError::new("", format!("not valid JSON: {e}")))?;
        let serde_json::Value::Object(top) = value else {
            return Err(TranslateError::new(
                "",
                "expected a JSON object: {\"name\": …, \"config\": {…}} or the config map itself",
            ));
        };
        let (outer_name, config) = match top.get("config") {
            Some(serde_json::Value::Object(c)) => {
                (top.get("name").and_then(|n| n.as_str()).map(str::to_string), c.clone())
            }
            Some(_) => return Err(TranslateError::new("config", "must be a JSON object of string values")),
            None => (None, top),
        };
        let mut values = BTreeMap::new();
        for (k, v) in config {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(TranslateError::new(
                        k,
                        "must be a string, number or boolean (Kafka Connect configs are flat)",
                    ));
                }
            };
            values.insert(k, text);
        }
        let name = outer_name
            .or_else(|| values.get("name").cloned())
            .unwrap_or_else(|| fallback_name.to_string());
        if name.trim().is_empty() {
            return Err(TranslateError::new("name", "the connector needs a name"));
        }
        Ok(Self {
            name,
            values,
            used: RefCell::new(BTreeSet::from(["name".to_string()])),
        })
    }

    /// A config already read as a flat map (the REST API's `config` object).
    pub fn from_map(name: &str, values: BTreeMap<String, String>) -> Self {
        Self {
            name: name.to_string(),
            values,
            used: RefCell::new(BTreeSet::from(["name".to_string()])),
        }
    }

    /// The flat config map as read (what `GET …/config` returns).
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// A value, marking the key as read. Blank values count as absent, as Kafka
    /// Connect's optional settings do.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let v = self.values.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());
        if self.values.contains_key(key) {
            self.used.borrow_mut().insert(key.to_string());
        }
        v
    }

    pub(crate) fn require(&self, key: &str, what: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| TranslateError::new(key, format!("missing; {what}")))
    }

    /// A comma list (Kafka Connect's LIST type): items trimmed, empty items dropped.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(TranslateError::new(key, format!("expected true or false, got '{v}'"))),
        }
    }

    /// Every key under `prefix` (without the prefix).
    pub(crate) fn keys_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values.keys().filter_map(move |k| k.strip_prefix(prefix))
    }

    fn unused(&self) -> Vec<(String, String)> {
        let used = self.used.borrow();
        self.values
            .iter()
            .filter(|(k, _)| !used.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the caller knows that connector JSON does not.
#[derive(Debug, Clone, Default)]
pub struct TranslateOptions {
    /// The value's columns as a SQL column list (`id BIGINT, name TEXT`); else the
    /// config's `quiver.columns` key.
    pub columns: Option<String>,
    /// The Kafka cluster (a Kafka Connect worker setting, absent from connector
    /// JSON); else `${KAFKA_BOOTSTRAP}`, resolved when the SQL runs.
    pub bootstrap_servers: Option<String>,
    /// The columns were found from the records' own Connect schemas: the Kafka
    /// source watches those schemas for new fields (`json.schemas.evolve`).
    pub evolve: bool,
}

/// The translated pipeline.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The connector's name; also the sink's (as an identifier).
    pub name: String,
    /// A SQL script: comments, `CREATE SOURCE`, `CREATE SINK … AS SELECT`.
    pub sql: String,
    /// Settings that are valid Kafka Connect but have no Quiver equivalent, as
    /// `key: reason`. A translation with any is printed but not run.
    pub untranslated: Vec<String>,
}

/// Translates one connector config into Quiver SQL.
pub fn translate(config: &ConnectorConfig, options: &TranslateOptions) -> Result<Translation> {
    translate_inner(config, options, false)
}

/// `to_kafka` (tests) writes the result to a Kafka topic whatever the connector,
/// so the chain's topic, key and headers are visible.
fn translate_inner(config: &ConnectorConfig, options: &TranslateOptions, to_kafka: bool) -> Result<Translation> {
    let mut notes = Notes::default();
    let mut plan = classes::plan(config, options, &mut notes)?;
    #[cfg(test)]
    if to_kafka {
        plan.write_to_kafka();
    }
    #[cfg(not(test))]
    let _ = to_kafka;
    let chain = smt::chain(config, &plan.record, &plan.context, &mut notes)?;
    let select = plan.render_select(&chain, &mut notes)?;
    for (k, v) in config.unused() {
        notes.ignored(&k, &v);
    }
    let mut sql = String::new();
    sql.push_str(&format!(
        "-- Kafka Connect connector '{}' ({}), translated by quiver translate.\n",
        config.name, plan.class
    ));
    for line in &notes.comments {
        sql.push_str(&format!("-- {line}\n"));
    }
    for u in &notes.untranslated {
        sql.push_str(&format!("-- NOT TRANSLATED {u}\n"));
    }
    sql.push('\n');
    sql.push_str(&plan.source_sql());
    sql.push_str("\n\n");
    sql.push_str(&plan.sink_sql(&select));
    sql.push('\n');
    Ok(Translation {
        name: plan.sink_name.clone(),
        sql,
        untranslated: notes.untranslated,
    })
}

/// The `CREATE SOURCE` a connector reads, with `columns` standing in for the value's
/// columns: what a caller plans to find the real ones when the config declares none
/// (the source's connector knows where to look: a catalog, a registry, the records).
pub fn source_statement(config: &ConnectorConfig, options: &TranslateOptions, columns: &str) -> Result<String> {
    let mut with = options.clone();
    with.columns = Some(columns.to_string());
    let plan = classes::plan(config, &with, &mut Notes::default())?;
    Ok(plan.source_sql())
}

/// Plans the translated statements as `quiver validate` would (nothing is
/// contacted), so a translation that prints is one that runs, and returns the
/// sink's EXPLAIN: its compiled filter and expressions. The Kafka cluster
/// placeholder stands for any address here.
pub fn check(translation: &Translation) -> std::result::Result<crate::Table, crate::SqlError> {
    use crate::catalog::Plan;
    // A stand-in address while planning; the EXPLAIN shows the placeholder again.
    const STAND_IN: &str = "kafka-bootstrap.invalid:9092";
    let sql = translation.sql.replace("${KAFKA_BOOTSTRAP}", STAND_IN);
    let (statements, errors) = crate::parse(&sql);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let mut catalog = crate::Catalog::new();
    let mut explain = None;
    for s in &statements {
        if let crate::Statement::CreateSink(sink) = &s.statement {
            let e = crate::ParsedStatement {
                statement: crate::Statement::Explain(sink.clone()),
                location: s.location,
                text: s.text.clone(),
            };
            if let Plan::Explain(t) = catalog.plan(&e)? {
                explain = Some(t);
            }
        }
        let plan = catalog.plan(s)?;
        catalog.apply(&plan);
    }
    let mut explain = explain.ok_or_else(|| crate::SqlError::invalid("the translation has no sink", None))?;
    for cell in explain.rows.iter_mut().flatten() {
        *cell = cell.replace(STAND_IN, "${KAFKA_BOOTSTRAP}");
    }
    Ok(explain)
}

/// Comments that travel with the SQL.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// Explanations (`-- …`) at the top of the script.
    pub comments: Vec<String>,
    /// Valid Kafka Connect with no equivalent: blocks running.
    pub untranslated: Vec<String>,
}

impl Notes {
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }
    pub(crate) fn untranslated(&mut self, key: &str, why: impl Into<String>) {
        self.untranslated.push(format!("{key}: {}", why.into()));
    }
    /// A key nothing read: Kafka Connect plumbing with no Quiver meaning, said so.
    fn ignored(&mut self, key: &str, value: &str) {
        let shown = if quiver_connectors::api::is_secret(key) {
            "****"
        } else {
            value
        };
        self.comments
            .push(format!("ignored: {key} = {shown} (no Quiver equivalent)"));
    }
}

/// A double-quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted SQL string literal.
pub(crate) fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// An unquoted identifier made from a connector name: lower case, `[a-z0-9_]`.
pub(crate) fn bare_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit() || c == '_') {
        s.insert_str(0, "c_");
    }
    s
}

#[cfg(test)]
mod tests;
