//! `/connectors/…`: create, read, configure, delete and drive connectors.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiResult, AppState, json_body};
use crate::ctl::encode;
use crate::store::TargetState;
use crate::worker::{ConnectorInfo, ConnectorStatus, RestartRequest, StateInfo};

/// `POST /connectors`'s body (Kafka Connect's `CreateConnectorRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRequest {
    name: Option<String>,
    config: Option<Map<String, Value>>,
    initial_state: Option<String>,
}

/// One config value as Kafka Connect takes it: a string, number or boolean as
/// text; `null` as `None` (absent, or removed by a PATCH). Nested values are a 400
/// naming the key.
pub(crate) fn config_text(key: &str, value: Value) -> ApiResult<Option<String>> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        Value::Array(_) | Value::Object(_) => Err(ApiError::bad_request(format!(
            "config key '{key}' must be a string, number, boolean or null: Kafka Connect configs are flat"
        ))),
    }
}

/// A config object's values as strings; `null` leaves the key out.
pub(crate) fn flat_config(config: Map<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in config {
        if let Some(text) = config_text(&k, v)? {
            out.insert(k, text);
        }
    }
    Ok(out)
}

/// Kafka Connect checks a `name` inside the config against the one in the URL or
/// body, and adds it when absent.
fn with_name(name: &str, mut config: BTreeMap<String, String>) -> ApiResult<BTreeMap<String, String>> {
    match config.get("name") {
        Some(included) if included != name => Err(ApiError::bad_request(format!(
            "Connector name configuration ({included}) doesn't match connector name in the URL ({name})"
        ))),
        Some(_) => Ok(config),
        None => {
            config.insert("name".into(), name.to_string());
            Ok(config)
        }
    }
}

pub(crate) fn info_json(info: &ConnectorInfo) -> Value {
    json!({
        "name": info.name,
        "config": info.config,
        "tasks": info.tasks.iter().map(|t| json!({"connector": info.name, "task": t})).collect::<Vec<_>>(),
        "type": info.kind,
    })
}

fn state_json(s: &StateInfo) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("state".into(), json!(s.state));
    m.insert("worker_id".into(), json!(s.worker_id));
    if let Some(t) = &s.trace {
        m.insert("trace".into(), json!(t));
    }
    // Quiver's own: automatic restarts of a failed task (absent until there is one).
    if s.restarts > 0 {
        m.insert("restarts".into(), json!(s.restarts));
    }
    if let Some(at) = &s.next_restart {
        m.insert("next_restart".into(), json!(at));
    }
    // Quiver's own: the source partitions a task reads (absent when it has none).
    if !s.partitions.is_empty() {
        m.insert("partitions".into(), json!(s.partitions));
    }
    m
}

pub(crate) fn status_json(s: &ConnectorStatus) -> Value {
    let tasks: Vec<Value> = s
        .tasks
        .iter()
        .map(|(id, t)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            m.extend(state_json(t));
            Value::Object(m)
        })
        .collect();
    json!({"name": s.name, "connector": state_json(&s.connector), "tasks": tasks, "type": s.kind})
}

fn created(name: &str, body: Value) -> Response {
    let location = format!("/connectors/{name}");
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response()
}

/// `GET /connectors[?expand=status&expand=info]`.
pub(crate) async fn list(State(app): State<AppState>, Query(query): Query<Vec<(String, String)>>) -> Json<Value> {
    let names = app.engine.connector_names();
    let expand: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    if expand.is_empty() {
        return Json(json!(names));
    }
    let mut out = Map::new();
    for name in names {
        let mut entry = Map::new();
        for e in &expand {
            match *e {
                "status" => {
                    if let Ok(s) = app.engine.connector_status(&name) {
                        entry.insert("status".into(), status_json(&s));
                    }
                }
                "info" => {
                    if let Ok(i) = app.engine.connector_info(&name) {
                        entry.insert("info".into(), info_json(&i));
                    }
                }
                _ => {}
            }
        }
        out.insert(name, Value::Object(entry));
    }
    Json(Value::Object(out))
}

/// `POST /connectors`: 201 with the connector's info; 409 if the name is taken.
pub(crate) async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: CreateRequest = json_body(&headers, body)?;
    let name = req.name.unwrap_or_default().trim().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Connector name must be given as \"name\" and may not be empty",
        ));
    }
    let config = req
        .config
        .ok_or_else(|| ApiError::bad_request("Connector config must be given as \"config\": {…}"))?;
    let config = with_name(&name, flat_config(config)?)?;
    let initial = match req.initial_state.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("RUNNING") => Some(TargetState::Running),
        Some("PAUSED") => Some(TargetState::Paused),
        Some("STOPPED") => Some(TargetState::Stopped),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "initial_state '{other}' is not one of RUNNING, PAUSED, STOPPED"
            )));
        }
    };
    let (_, info) = app.engine.put_connector(&name, config, true, initial).await?;
    Ok(created(&name, info_json(&info)))
}

pub(crate) async fn info(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(info_json(&app.engine.connector_info(&name)?)))
}

pub(crate) async fn config(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(app.engine.connector_info(&name)?.config)))
}

/// `PUT /connectors/{name}/config`: 201 when created, 200 when updated.
pub(crate) async fn put_config(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let config: Map<String, Value> = json_body(&headers, body)?;
    let config = with_name(&name, flat_config(config)?)?;
    let (was_created, info) = app.engine.put_connector(&name, config, false, None).await?;
    Ok(if was_created {
        created(&name, info_json(&info))
    } else {
        Json(info_json(&info)).into_response()
    })
}

/// `PATCH /connectors/{name}/config` (KIP-477): merges; a `null` value removes the key.
pub(crate) async fn patch_config(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let patch: Map<String, Value> = json_body(&headers, body)?;
    let mut changes = BTreeMap::new();
    for (k, v) in patch {
        let value = config_text(&k, v)?;
        if k == "name" && value.as_deref() != Some(name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Connector name configuration ({}) doesn't match connector name in the URL ({name})",
                value.unwrap_or_default()
            )));
        }
        changes.insert(k, value);
    }
    Ok(Json(info_json(&app.engine.patch_connector(&name, changes).await?)))
}

pub(crate) async fn delete(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    app.engine.delete_connector(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn status(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(status_json(&app.engine.connector_status(&name)?)))
}

/// `GET /connectors/{name}/tasks`: each task's id and config.
pub(crate) async fn tasks(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let info = app.engine.connector_info(&name)?;
    let tasks: Vec<Value> = info
        .tasks
        .iter()
        .map(|t| {
            let mut config = info.config.clone();
            config.insert("task.id".into(), t.to_string());
            json!({"id": {"connector": info.name, "task": t}, "config": config})
        })
        .collect();
    Ok(Json(json!(tasks)))
}

fn task_id(name: &str, task: &str) -> ApiResult<u32> {
    task.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Task {task} of connector {name} not found"),
        )
    })
}

pub(crate) async fn task_status(
    State(app): State<AppState>,
    Path((name, task)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = task_id(&name, &task)?;
    let s = app.engine.task_status(&name, id)?;
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.extend(state_json(&s));
    Ok(Json(Value::Object(m)))
}

/// `POST /connectors/{name}/tasks/{id}/restart`: a task another worker runs is
/// restarted there (the leader relays the request, as Kafka Connect's does).
pub(crate) async fn restart_task(
    State(app): State<AppState>,
    Path((name, task)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let id = task_id(&name, &task)?;
    if let Some(cluster) = &app.cluster
        && let Some(elsewhere) = app.engine.task_elsewhere(&name, id)
    {
        let path = format!("/connectors/{}/tasks/{id}/restart", encode(&name));
        return Ok(super::forward::to_task_worker(cluster, &elsewhere.worker_id, "POST", &path, &headers).await);
    }
    app.engine.restart_connector_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestartQuery {
    #[serde(default)]
    include_tasks: bool,
    #[serde(default)]
    only_failed: bool,
}

/// `POST /connectors/{name}/restart` (KIP-745): 204 for the connector alone, 202
/// with the status when tasks are included.
pub(crate) async fn restart(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RestartQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let mut status = app
        .engine
        .restart_connector(
            &name,
            RestartRequest {
                include_tasks: q.include_tasks,
                only_failed: q.only_failed,
            },
        )
        .await?;
    // Tasks other workers run are restarted there, each through its worker.
    if let Some(cluster) = app.cluster.as_ref().filter(|_| q.include_tasks) {
        for (id, task) in &mut status.tasks {
            let Some(elsewhere) = app.engine.task_elsewhere(&name, *id) else {
                continue;
            };
            if q.only_failed && elsewhere.state != "FAILED" {
                continue;
            }
            let path = format!("/connectors/{}/tasks/{id}/restart", encode(&name));
            let answer = super::forward::to_task_worker(cluster, &elsewhere.worker_id, "POST", &path, &headers).await;
            if answer.status().is_success() {
                task.state = "RESTARTING";
            } else {
                tracing::warn!(connector = %name, task = id, worker = %elsewhere.worker_id, status = %answer.status(),
                    "the worker running the task did not restart it; its status stays as it was");
            }
        }
    }
    Ok(if q.include_tasks {
        (StatusCode::ACCEPTED, Json(status_json(&status))).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

pub(crate) async fn pause(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    app.engine.pause_connector(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(crate) async fn resume(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    app.engine.resume_connector(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(crate) async fn stop(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    app.engine.stop_connector(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /connectors/{name}/topics` (KIP-558): the Kafka topics the connector uses.
pub(crate) async fn topics(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let topics = match app.engine.connector_plan(&name)? {
        Ok(p) => p.topics.clone(),
        Err(_) => Vec::new(),
    };
    let mut out = Map::new();
    out.insert(name, json!({ "topics": topics }));
    Ok(Json(Value::Object(out)))
}

/// `PUT /connectors/{name}/topics/reset`: the topics are read from the plan, so
/// there is no history to forget; 202 as in Kafka Connect.
pub(crate) async fn reset_topics(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    app.engine.connector_info(&name)?;
    Ok(StatusCode::ACCEPTED)
}
