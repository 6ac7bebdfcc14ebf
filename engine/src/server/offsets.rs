//! `/connectors/{name}/offsets` (KIP-875): read, alter and reset a connector's
//! offsets in Kafka Connect's body shape, `{"offsets": [{"partition": {…},
//! "offset": {…}}]}`.
//!
//! Quiver keeps offsets as source partition → position; they are shown as:
//! - Kafka (`topic/partition` → next offset): `{"kafka_topic", "kafka_partition"}`
//!   → `{"kafka_offset"}`, Kafka Connect's sink-connector shape;
//! - files (path → `{"line", "byte"}`): `{"filename"}` → `{"line", "byte"}`, with
//!   FileStreamSource's partition key;
//! - every other source (datagen's `rows`, a polling table's cursor):
//!   `{"partition"}` → the position object, or `{"position": n}` for a number.
//!
//! A PATCH names partitions in any of these shapes; a `null` offset forgets the
//! partition, so it is read from its start.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiResult, AppState, json_body};
use crate::store::OffsetChanges;

/// One stored partition and position in Kafka Connect's shape.
pub(crate) fn to_connect(source: &str, partition: &str, position: &Value) -> Value {
    if source == "kafka"
        && let Some((topic, p)) = partition.rsplit_once('/')
        && let Ok(p) = p.parse::<i64>()
    {
        return json!({"partition": {"kafka_topic": topic, "kafka_partition": p}, "offset": {"kafka_offset": position}});
    }
    let key = if source == "file" { "filename" } else { "partition" };
    let offset = match position {
        Value::Object(_) => position.clone(),
        other => json!({"position": other}),
    };
    let mut p = Map::new();
    p.insert(key.to_string(), json!(partition));
    json!({"partition": p, "offset": offset})
}

/// One `{"partition", "offset"}` entry back to a stored partition and position.
fn from_connect(entry: &Value) -> Result<(String, Option<Value>), String> {
    let partition = entry
        .get("partition")
        .and_then(Value::as_object)
        .ok_or("each entry needs a \"partition\" object")?;
    let offset = entry
        .get("offset")
        .ok_or("each entry needs an \"offset\" (an object, or null to reset)")?;
    if let (Some(topic), Some(p)) = (partition.get("kafka_topic"), partition.get("kafka_partition")) {
        let topic = topic.as_str().ok_or("kafka_topic must be a string")?;
        let p = p.as_i64().ok_or("kafka_partition must be an integer")?;
        let position = match offset {
            Value::Null => None,
            Value::Object(o) => Some(json!(
                o.get("kafka_offset")
                    .and_then(Value::as_i64)
                    .filter(|n| *n >= 0)
                    .ok_or("a Kafka offset is {\"kafka_offset\": n} with n ≥ 0")?
            )),
            _ => return Err("a Kafka offset is {\"kafka_offset\": n}, or null".into()),
        };
        return Ok((format!("{topic}/{p}"), position));
    }
    let key = partition
        .get("filename")
        .or_else(|| partition.get("partition"))
        .and_then(Value::as_str)
        .ok_or("a partition is {\"kafka_topic\", \"kafka_partition\"}, {\"filename\"} or {\"partition\"}, as GET …/offsets shows")?;
    let position = match offset {
        Value::Null => None,
        Value::Object(o) if o.len() == 1 && o.contains_key("position") => o.get("position").cloned(),
        Value::Object(_) => Some(offset.clone()),
        _ => return Err("an offset is an object, as GET …/offsets shows, or null".into()),
    };
    Ok((key.to_string(), position))
}

/// The source connector of a connector's pipeline ("kafka", "file", …).
fn source_kind(app: &AppState, name: &str) -> ApiResult<String> {
    Ok(match app.engine.connector_plan(name)? {
        Ok(p) => p.spec.source.connector.name().to_string(),
        Err(_) => String::new(),
    })
}

pub(crate) async fn get(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let source = source_kind(&app, &name)?;
    let (_, offsets) = app.engine.connector_offsets(&name).await?;
    let entries: Vec<Value> = offsets
        .map(|o| o.0.iter().map(|(p, v)| to_connect(&source, p, v)).collect())
        .unwrap_or_default();
    Ok(Json(json!({ "offsets": entries })))
}

pub(crate) async fn alter(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body: Value = json_body(&headers, body)?;
    let entries = body
        .get("offsets")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Partitions / offsets need to be provided for an alter offsets request")
        })?;
    let mut changes = OffsetChanges::new();
    for (i, e) in entries.iter().enumerate() {
        let (partition, position) = from_connect(e).map_err(|m| ApiError::bad_request(format!("offsets[{i}]: {m}")))?;
        changes.insert(partition, position);
    }
    app.engine.alter_connector_offsets(&name, &changes).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been altered successfully"}),
    ))
}

pub(crate) async fn reset(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    app.engine.reset_connector_offsets(&name).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been reset successfully"}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_reads_back_as_it_was_stored() {
        for (source, partition, position) in [
            ("kafka", "orders/3", json!(42)),
            ("file", "/data/in.jsonl", json!({"line": 3, "byte": 27})),
            ("datagen", "rows", json!(1000)),
            ("postgres", "public.orders", json!({"incrementing": 7})),
        ] {
            let shown = to_connect(source, partition, &position);
            assert_eq!(
                from_connect(&shown).unwrap(),
                (partition.to_string(), Some(position)),
                "{shown}"
            );
        }
        let kafka = to_connect("kafka", "a/b/0", &json!(5));
        assert_eq!(kafka["partition"]["kafka_topic"], "a/b");
        let reset = json!({"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": null});
        assert_eq!(from_connect(&reset).unwrap(), ("t/0".to_string(), None));
        assert!(
            from_connect(
                &json!({"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": -1}})
            )
            .is_err()
        );
        assert!(from_connect(&json!({"partition": {"colour": "red"}, "offset": {}})).is_err());
    }
}
