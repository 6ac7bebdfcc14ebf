//! Columns for a Kafka source that declares none, found where Kafka Connect's
//! converters find a schema:
//!
//! - **Avro** (AvroConverter): the latest schema of the Schema Registry subject
//!   `<topic>-value`, through arrow-avro's own Avro → Arrow mapping.
//! - **JSON with `schemas.enable`** (JsonConverter): the Connect schema each record
//!   carries in its envelope; the fields of every sampled record, in order of first
//!   appearance, so a field added later is a column too.
//! - **Schemaless JSON**: the types a sample of records implies (as `--infer-columns`).
//!
//! A topic with no records yet (or a subject with no schema yet) is not an error:
//! the caller waits and asks again, and says so in the connector's status.
//!
//! Connect's logical `Timestamp` (epoch milliseconds in JSON) becomes BIGINT and
//! `Decimal` (base64 bytes in JSON) TEXT, so their values arrive unchanged rather than
//! misread; `Date` becomes DATE.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Fields, Schema};
use serde_json::Value;

use super::config::{KafkaSourceConfig, Topics};
use super::sample::{self, infer_json_columns, sample_values};
use crate::api::{ConnectorError, Discovery, Result};
use crate::formats::avro::SchemaRegistry;
use crate::formats::record::RecordFormat;

/// How long a sample may take; an empty topic answers within it.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Records sampled at most.
const SAMPLE_MAX: usize = 200;

pub(crate) async fn columns(config: &KafkaSourceConfig) -> Result<Discovery> {
    let topics_text = match &config.topics {
        Topics::Names(n) => n.join(", "),
        Topics::Pattern(p) => format!("/{p}/"),
    };
    match config.format {
        RecordFormat::Avro => {
            let Some(registry) = &config.registry else {
                return Ok(Discovery::Unsupported);
            };
            let Topics::Names(names) = &config.topics else {
                return Ok(Discovery::Unsupported);
            };
            let Some(topic) = names.first() else {
                return Ok(Discovery::Unsupported);
            };
            let subject = format!("{topic}-value");
            let registry = SchemaRegistry::new(&registry.url, registry.basic_auth.as_deref());
            let found = tokio::task::spawn_blocking(move || registry.latest(&subject).map(|s| (s, subject)))
                .await
                .map_err(|e| ConnectorError::Internal(format!("the registry look-up panicked: {e}")))?
                .map_err(ConnectorError::Config)?;
            match found {
                (Some(schema), subject) => Ok(Discovery::Columns {
                    schema: crate::formats::avro::arrow_schema(&schema)?,
                    from: format!("the latest schema of Schema Registry subject '{subject}'"),
                }),
                (None, subject) => Ok(Discovery::Waiting(format!(
                    "waiting for a schema under Schema Registry subject '{subject}' (none registered yet) to learn the columns"
                ))),
            }
        }
        RecordFormat::Json { schemas } => {
            let (bootstrap, properties, topics) = (
                config.bootstrap.clone(),
                config.properties.clone(),
                config.topics.clone(),
            );
            let values = tokio::task::spawn_blocking(move || {
                sample_values(&bootstrap, &properties, &to_sample(&topics), SAMPLE_MAX, SAMPLE_TIMEOUT)
            })
            .await
            .map_err(|e| ConnectorError::Internal(format!("sampling panicked: {e}")))??;
            if values.is_empty() {
                return Ok(Discovery::Waiting(format!(
                    "waiting for the first records on {topics_text} to learn the columns (JsonConverter{})",
                    if schemas {
                        ""
                    } else {
                        " without schemas: typed from a sample"
                    }
                )));
            }
            let schema = if schemas {
                connect_columns(&values)?
            } else {
                infer_json_columns(&values, false)?
            };
            Ok(Discovery::Columns {
                schema,
                from: format!(
                    "{} of {} records on {topics_text}",
                    if schemas { "the Connect schemas" } else { "a sample" },
                    values.len()
                ),
            })
        }
        _ => Ok(Discovery::Unsupported),
    }
}

fn to_sample(topics: &Topics) -> sample::Topics {
    match topics {
        Topics::Names(n) => sample::Topics::Names(n.clone()),
        Topics::Pattern(p) => sample::Topics::Pattern(p.clone()),
    }
}

/// The union of the struct fields the records' Connect schemas declare, in order
/// of first appearance.
pub(crate) fn connect_columns(values: &[Vec<u8>]) -> Result<Schema> {
    let mut fields: Vec<Field> = Vec::new();
    let mut seen_schema = false;
    for v in values {
        let Ok(json) = serde_json::from_slice::<Value>(v) else {
            continue;
        };
        let Some(schema) = json.get("schema").filter(|s| s.is_object()) else {
            continue;
        };
        seen_schema = true;
        if schema["type"] != "struct" {
            return Err(ConnectorError::Config(format!(
                "the records' Connect schema is a {} , not a struct: declare the column with quiver.columns",
                schema["type"]
            )));
        }
        for f in schema["fields"].as_array().into_iter().flatten() {
            let Some(name) = f["field"].as_str() else { continue };
            if fields.iter().any(|x| x.name() == name) {
                continue;
            }
            let nullable = f["optional"].as_bool().unwrap_or(true);
            fields.push(Field::new(name, connect_type(f), nullable));
        }
    }
    if !seen_schema {
        return Err(ConnectorError::Config(format!(
            "none of the {} records read carries a Connect schema (JsonConverter schemas.enable=true expects {{\"schema\": …, \"payload\": …}})",
            values.len()
        )));
    }
    Ok(Schema::new(fields))
}

/// The Arrow type of one Connect schema.
pub(super) fn connect_type(s: &Value) -> DataType {
    let logical = s["name"].as_str().unwrap_or("");
    match (s["type"].as_str().unwrap_or(""), logical) {
        ("int32", "org.apache.kafka.connect.data.Date") => DataType::Date32,
        ("bytes", "org.apache.kafka.connect.data.Decimal") => DataType::Utf8,
        ("int8", _) => DataType::Int8,
        ("int16", _) => DataType::Int16,
        ("int32", _) => DataType::Int32,
        ("int64", _) => DataType::Int64,
        ("float32", _) => DataType::Float32,
        ("float64", _) => DataType::Float64,
        ("boolean", _) => DataType::Boolean,
        ("bytes", _) => DataType::Binary,
        ("array", _) => DataType::List(Arc::new(Field::new("item", connect_type(&s["items"]), true))),
        ("struct", _) => DataType::Struct(Fields::from(
            s["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    let name = f["field"].as_str()?;
                    Some(Field::new(
                        name,
                        connect_type(f),
                        f["optional"].as_bool().unwrap_or(true),
                    ))
                })
                .collect::<Vec<_>>(),
        )),
        _ => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_schemas_become_columns_and_a_new_field_adds_one() {
        let first = br#"{"schema":{"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"id"},
            {"type":"string","optional":true,"field":"name"},
            {"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"ts"},
            {"type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date","version":1,"field":"day"},
            {"type":"array","items":{"type":"string"},"optional":true,"field":"tags"},
            {"type":"struct","fields":[{"type":"string","optional":true,"field":"city"}],"optional":true,"field":"address"}
        ]},"payload":{"id":1,"name":"a","ts":0,"day":1,"tags":[],"address":{"city":"x"}}}"#;
        let later = br#"{"schema":{"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"id"},
            {"type":"double","optional":true,"field":"score"},
            {"type":"float64","optional":true,"field":"amount"}
        ]},"payload":{"id":2,"amount":1.5}}"#;
        let schema = connect_columns(&[first.to_vec(), later.to_vec()]).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "name", "ts", "day", "tags", "address", "score", "amount"]);
        assert_eq!(schema.field(0).data_type(), &DataType::Int32);
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field(2).data_type(), &DataType::Int64);
        assert_eq!(schema.field(3).data_type(), &DataType::Date32);
        assert!(matches!(schema.field(5).data_type(), DataType::Struct(f) if f.len() == 1));
        assert_eq!(schema.field(7).data_type(), &DataType::Float64);
        let e = connect_columns(&[br#"{"id":1}"#.to_vec()]).unwrap_err().to_string();
        assert!(e.contains("carries a Connect schema"), "{e}");
    }
}
