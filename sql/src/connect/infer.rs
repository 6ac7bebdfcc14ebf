//! What `--infer-columns` needs: where a sink connector's records are (so the CLI
//! can sample them) and the column list the sampled schema becomes.

use arrow::datatypes::{DataType, Schema};
use quiver_connectors::kafka::sample::Topics;

use super::converters::{self, Converter};
use super::{ConnectorConfig, Notes, Result, ident};
use crate::compile::sql_type_name;

/// Where to sample a connector's records from.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub topics: Topics,
    /// `bootstrap.servers` from the config's `consumer.override.*`, if any.
    pub bootstrap: Option<String>,
    /// JsonConverter with `schemas.enable`: the columns are each value's `payload`.
    pub envelope: bool,
}

/// For a connector that reads JSON from Kafka, where its records are; `None` when
/// columns cannot be sampled (not a Kafka reader, not JSON, or columns given).
pub fn sample_spec(config: &ConnectorConfig) -> Result<Option<SampleSpec>> {
    let class = config.get("connector.class").unwrap_or_default();
    let reads_kafka = [
        "FileStreamSinkConnector",
        "FileStreamSink",
        "S3SinkConnector",
        "JdbcSinkConnector",
    ]
    .iter()
    .any(|c| class.ends_with(c));
    if !reads_kafka || config.get("quiver.columns").is_some() {
        return Ok(None);
    }
    let envelope = match converters::read(config, "value", &mut Notes::default())? {
        Converter::Json { schemas } => schemas,
        _ => return Ok(None),
    };
    let topics = match (config.get("topics"), config.get("topics.regex")) {
        (Some(t), _) => Topics::Names(super::split_list(t)),
        (None, Some(r)) => Topics::Pattern(r.to_string()),
        (None, None) => return Ok(None),
    };
    Ok(Some(SampleSpec {
        topics,
        bootstrap: config.get("consumer.override.bootstrap.servers").map(str::to_string),
        envelope,
    }))
}

/// A column list (`"id" BIGINT, "address" STRUCT<"city" TEXT>`) for `schema`,
/// names quoted so their case survives.
pub fn columns_ddl(schema: &Schema) -> String {
    fn ty(dt: &DataType) -> String {
        match dt {
            DataType::Struct(fields) => format!(
                "STRUCT<{}>",
                fields
                    .iter()
                    .map(|f| format!("{} {}", ident(f.name()), ty(f.data_type())))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DataType::List(f) | DataType::LargeList(f) => format!("{}[]", ty(f.data_type())),
            // A field only ever null types as Null: TEXT is the useful guess.
            DataType::Null => "TEXT".into(),
            // The planner reads this as a UTC timestamp, whatever the zone found.
            DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
            // Read as their text: the sources decode no time-of-day type.
            DataType::Time32(_) | DataType::Time64(_) => "TEXT".into(),
            other => sql_type_name(other),
        }
    }
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", ident(f.name()), ty(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}
