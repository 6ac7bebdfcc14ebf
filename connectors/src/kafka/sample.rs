//! A few records read off a topic, and the columns their JSON implies: how `quiver
//! translate --infer-columns` types a Kafka Connect connector whose JSON has no
//! column types. Reads every partition from its earliest offset by assignment (no
//! consumer group is joined) and commits nothing.

use std::time::{Duration, Instant};

use arrow::datatypes::Schema;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::client::client_config;
use crate::api::{ConnectorError, Result};

/// Which topics to read: a list, or a regular expression.
#[derive(Debug, Clone)]
pub enum Topics {
    Names(Vec<String>),
    Pattern(String),
}

/// Up to `max` non-null values from the start of the topics: reading ends at `max`,
/// at `timeout`, or after a second with nothing new once records have come.
pub fn sample_values(
    bootstrap: &str,
    properties: &[(String, String)],
    topics: &Topics,
    max: usize,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut config = client_config(bootstrap, "quiver-sample", properties);
    config
        .set("group.id", format!("quiver-sample-{nanos}"))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| super::kafka_error("creating a consumer to sample records", e))?;
    let deadline = Instant::now() + timeout;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| super::kafka_error(format!("reading topics from {bootstrap}"), e))?;
    let wanted: Box<dyn Fn(&str) -> bool> = match topics {
        Topics::Names(names) => {
            let names = names.clone();
            Box::new(move |t| names.iter().any(|n| n == t))
        }
        Topics::Pattern(p) => {
            let re = regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| ConnectorError::option("topics.regex", e.to_string()))?;
            Box::new(move |t| re.is_match(t))
        }
    };
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| wanted(t.name())) {
        for p in t.partitions() {
            assignment
                .add_partition_offset(t.name(), p.id(), Offset::Beginning)
                .map_err(|e| super::kafka_error("assigning partitions to sample", e))?;
        }
    }
    if assignment.count() == 0 {
        return Err(ConnectorError::Config(format!(
            "no topic on {bootstrap} matches the connector's topics"
        )));
    }
    consumer
        .assign(&assignment)
        .map_err(|e| super::kafka_error("assigning partitions to sample", e))?;
    let mut values = Vec::new();
    // Until `max` records, the timeout, or a second with nothing new once records came.
    let mut last = None;
    while values.len() < max
        && Instant::now() < deadline
        && last.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(1))
    {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                values.extend(m.payload().map(<[u8]>::to_vec));
                last = Some(Instant::now());
            }
            Some(Err(e)) => return Err(super::kafka_error("sampling records", e)),
            None => {}
        }
    }
    Ok(values)
}

/// The columns JSON values imply (numbers, text, booleans, nested objects as
/// structs, arrays as lists), with `envelope` taking each value's `payload`
/// (JsonConverter with `schemas.enable`). Values that are not JSON objects are
/// skipped; none at all is an error.
pub fn infer_json_columns(values: &[Vec<u8>], envelope: bool) -> Result<Schema> {
    let mut objects = Vec::new();
    for v in values {
        let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(v) else {
            continue;
        };
        if envelope {
            json = json.get("payload").cloned().unwrap_or(serde_json::Value::Null);
        }
        if json.is_object() {
            objects.push(json);
        }
    }
    if objects.is_empty() {
        return Err(ConnectorError::Config(format!(
            "none of the {} records read is a JSON object, so no columns can be inferred",
            values.len()
        )));
    }
    arrow::json::reader::infer_json_schema_from_iterator(objects.iter().map(Ok))
        .map_err(|e| ConnectorError::arrow("inferring columns from JSON records", e))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;

    #[test]
    fn columns_come_from_json_objects_and_envelopes() {
        let values = vec![
            br#"{"id":1,"name":"a","address":{"city":"Lyon"}}"#.to_vec(),
            br#"{"id":2,"score":1.5}"#.to_vec(),
            b"not json".to_vec(),
        ];
        let s = infer_json_columns(&values, false).unwrap();
        assert_eq!(s.field_with_name("id").unwrap().data_type(), &DataType::Int64);
        assert_eq!(s.field_with_name("score").unwrap().data_type(), &DataType::Float64);
        assert!(
            matches!(s.field_with_name("address").unwrap().data_type(), DataType::Struct(f) if f[0].name() == "city")
        );
        let enveloped = vec![br#"{"schema":{"type":"struct"},"payload":{"ok":true}}"#.to_vec()];
        assert_eq!(
            infer_json_columns(&enveloped, true).unwrap().field(0).data_type(),
            &DataType::Boolean
        );
        assert!(
            infer_json_columns(&[b"42".to_vec()], false)
                .unwrap_err()
                .to_string()
                .contains("no columns")
        );
    }
}
