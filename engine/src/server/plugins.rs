//! `/connector-plugins`: the classes Quiver runs, their settings, and validation
//! in Kafka Connect's `ConfigInfos` shape (`name`, `error_count`, `groups`,
//! `configs[].definition`, `configs[].value.errors`).
//!
//! Validation runs the same submission code as a create ([`crate::submit`]), so a
//! config that validates with no errors is one that `POST /connectors` accepts.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiResult, AppState, json_body};
use crate::error::EngineError;
use crate::submit::{SQL_CLASS, SQL_KEY};

/// A setting every connector takes: key, type, required, documentation.
type Setting = (&'static str, &'static str, bool, &'static str);

const NAME: Setting = (
    "name",
    "STRING",
    true,
    "Globally unique name to use for this connector.",
);
const TASKS_MAX: Setting = (
    "tasks.max",
    "INT",
    false,
    "Maximum number of tasks to use for this connector.",
);

/// Kafka Connect's common connector settings that Quiver reads.
const COMMON: [Setting; 9] = [
    NAME,
    (
        "connector.class",
        "STRING",
        true,
        "Name or alias of the class for this connector.",
    ),
    TASKS_MAX,
    (
        "key.converter",
        "CLASS",
        false,
        "Converter class for the key (default: the worker's).",
    ),
    (
        "value.converter",
        "CLASS",
        false,
        "Converter class for the value (default: the worker's).",
    ),
    (
        "transforms",
        "LIST",
        false,
        "Aliases for the transformations to be applied to records.",
    ),
    (
        "predicates",
        "LIST",
        false,
        "Aliases for the predicates used by transformations.",
    ),
    (
        "errors.tolerance",
        "STRING",
        false,
        "none: fail on the first bad record; all: skip or dead-letter bad records.",
    ),
    (
        "errors.deadletterqueue.topic.name",
        "STRING",
        false,
        "Topic for records that failed (sink connectors).",
    ),
];

/// A Quiver SQL connector's settings.
const SQL: [Setting; 4] = [
    NAME,
    (
        "connector.class",
        "STRING",
        true,
        "'quiver': a connector written in Quiver SQL.",
    ),
    TASKS_MAX,
    (
        SQL_KEY,
        "STRING",
        true,
        "The statements: CREATE SOURCE …; CREATE SINK … AS SELECT … (one sink).",
    ),
];

/// The plugins: Quiver SQL first, then every Kafka Connect class the translation knows.
fn all() -> Vec<(String, &'static str)> {
    let mut out = vec![(SQL_CLASS.to_string(), "source")];
    out.extend(quiver_sql::connect::plugins().into_iter().map(|p| (p.class, p.kind)));
    out
}

/// Finds a plugin by full class name or simple name (with or without `Connector`).
fn find(plugin: &str) -> Option<(String, &'static str)> {
    let simple = |c: &str| c.rsplit('.').next().unwrap_or(c).to_string();
    all().into_iter().find(|(class, _)| {
        class == plugin || simple(class) == plugin || simple(class).strip_suffix("Connector") == Some(plugin)
    })
}

fn settings(class: &str) -> &'static [Setting] {
    if class == SQL_CLASS { &SQL } else { &COMMON }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    connectors_only: Option<bool>,
}

/// `GET /connector-plugins[?connectorsOnly=false]`.
pub(crate) async fn list(Query(q): Query<ListQuery>) -> Json<Value> {
    let only = q.connectors_only.unwrap_or(true);
    let version = env!("CARGO_PKG_VERSION");
    let plugins: Vec<Value> = all()
        .into_iter()
        .filter(|(_, kind)| !only || matches!(*kind, "source" | "sink"))
        .map(|(class, kind)| json!({"class": class, "type": kind, "version": version}))
        .collect();
    Json(json!(plugins))
}

fn definition(s: &Setting, order: usize) -> Value {
    json!({
        "name": s.0,
        "type": s.1,
        "required": s.2,
        "default_value": Value::Null,
        "importance": if s.2 { "HIGH" } else { "MEDIUM" },
        "documentation": s.3,
        "group": "Common",
        "width": "NONE",
        "display_name": s.0,
        "dependents": [],
        "order": order,
    })
}

/// `GET /connector-plugins/{plugin}/config`: the plugin's settings.
pub(crate) async fn config(Path(plugin): Path<String>) -> ApiResult<Json<Value>> {
    let (class, _) = find(&plugin).ok_or_else(|| unknown(&plugin))?;
    let defs: Vec<Value> = settings(&class)
        .iter()
        .enumerate()
        .map(|(i, s)| definition(s, i + 1))
        .collect();
    Ok(Json(json!(defs)))
}

fn unknown(plugin: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Failed to find any class that implements Connector and which name matches {plugin}; GET /connector-plugins lists them"
        ),
    )
}

/// `PUT /connector-plugins/{plugin}/config/validate`: every key with its errors.
pub(crate) async fn validate(
    State(app): State<AppState>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let (class, _) = find(&plugin).ok_or_else(|| unknown(&plugin))?;
    let raw: Map<String, Value> = json_body(&headers, body)?;
    let mut config = super::connectors::flat_config(raw)?;
    if config
        .get("connector.class")
        .is_some_and(|c| find(c).map(|(f, _)| f) != Some(class.clone()))
    {
        return Err(ApiError::bad_request(format!(
            "connector.class '{}' does not match the plugin in the URL ({plugin})",
            config["connector.class"]
        )));
    }
    config.entry("connector.class".into()).or_insert_with(|| class.clone());
    let name = config.get("name").cloned().unwrap_or_else(|| "validate".into());
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match app.engine.check_connector(&name, &config).await {
        Ok(_) => {}
        Err(EngineError::InvalidConfig(invalid)) => {
            for p in invalid.problems {
                let key = if p.key.is_empty() {
                    "connector.class".to_string()
                } else {
                    p.key
                };
                errors.entry(key).or_default().push(p.message);
            }
        }
        Err(e) => return Err(e.into()),
    }
    let known = settings(&class);
    let mut keys: Vec<String> = known.iter().map(|s| s.0.to_string()).collect();
    for k in config.keys().chain(errors.keys()) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let configs: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let setting = known.iter().find(|s| s.0 == key.as_str()).copied().unwrap_or((
                // A key Quiver reads per connector class (or refuses with an error).
                "", "STRING", false, "",
            ));
            let mut def = definition(&setting, i + 1);
            def["name"] = json!(key);
            def["display_name"] = json!(key);
            let value = config.get(key).map(|v| {
                if quiver_connectors::api::is_secret(key) {
                    "[hidden]".to_string()
                } else {
                    v.clone()
                }
            });
            json!({
                "definition": def,
                "value": {
                    "name": key,
                    "value": value,
                    "recommended_values": [],
                    "errors": errors.get(key).cloned().unwrap_or_default(),
                    "visible": true,
                },
            })
        })
        .collect();
    let error_count: usize = errors.values().map(Vec::len).sum();
    Ok(Json(json!({
        "name": class,
        "error_count": error_count,
        "groups": ["Common"],
        "configs": configs,
    })))
}
