//! `json.schemas.evolve`: noticing that records' Connect schemas gained a field.
//!
//! A Kafka Connect JSON record carries its schema ahead of its payload
//! (`{"schema": {…}, "payload": {…}}`, in that order as JsonConverter writes it),
//! and records of one schema carry the same schema bytes. So the watch compares
//! each record's schema bytes with the last ones it found harmless (a `memcmp` of a
//! few hundred bytes) and parses a record only when they differ: the data path
//! pays next to nothing while the schema stays the same.
//!
//! A field that is no declared column is reported, typed as discovery types it
//! ([`super::discover`]), always nullable (earlier records lack it). A field that
//! disappears is not a change: its column reads NULL, as an optional field does.

use std::collections::HashSet;

use arrow::datatypes::{Field, Schema};
use memchr::memmem;
use serde_json::Value;

use super::discover::connect_type;

pub(super) struct SchemaWatch {
    columns: HashSet<String>,
    /// The schema bytes of the last record checked without finding a new field.
    last: Vec<u8>,
}

impl SchemaWatch {
    pub(super) fn new(declared: &Schema) -> Self {
        Self {
            columns: declared.fields().iter().map(|f| f.name().clone()).collect(),
            last: Vec::new(),
        }
    }

    /// The fields of this record's Connect schema that are no declared column, in
    /// schema order; empty when there are none (or the record carries no schema,
    /// which decoding reports).
    pub(super) fn added(&mut self, record: &[u8]) -> Vec<Field> {
        let head = schema_bytes(record);
        if head == self.last.as_slice() {
            return Vec::new();
        }
        let added = self.parse(record);
        if added.is_empty() {
            self.last.clear();
            self.last.extend_from_slice(head);
        }
        added
    }

    fn parse(&self, record: &[u8]) -> Vec<Field> {
        let Ok(json) = serde_json::from_slice::<Value>(record) else {
            return Vec::new();
        };
        json["schema"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let name = f["field"].as_str()?;
                (!self.columns.contains(name)).then(|| Field::new(name, connect_type(f), true))
            })
            .collect()
    }
}

/// The bytes of a record up to its `"payload"` key, when its schema comes first;
/// otherwise the whole record (then every record is parsed: still right, slower).
fn schema_bytes(record: &[u8]) -> &[u8] {
    match memmem::find(record, b"\"payload\"") {
        Some(at) if memmem::find(&record[..at], b"\"schema\"").is_some() => &record[..at],
        _ => record,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;

    fn record(fields: &str, payload: &str) -> Vec<u8> {
        format!(r#"{{"schema":{{"type":"struct","fields":[{fields}],"optional":false}},"payload":{payload}}}"#)
            .into_bytes()
    }

    #[test]
    fn reports_fields_that_are_no_columns_once_the_schema_changes() {
        let declared = Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        let mut watch = SchemaWatch::new(&declared);
        let v1 = r#"{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}"#;
        assert!(watch.added(&record(v1, r#"{"id":1,"name":"a"}"#)).is_empty());
        // Same schema, other payload: no parse, nothing new.
        assert!(watch.added(&record(v1, r#"{"id":2,"name":"b"}"#)).is_empty());
        assert!(
            watch.last.ends_with(br#""optional":false},"#),
            "{:?}",
            String::from_utf8_lossy(&watch.last)
        );
        // A field dropped is not a change.
        let fewer = r#"{"type":"int32","optional":false,"field":"id"}"#;
        assert!(watch.added(&record(fewer, r#"{"id":3}"#)).is_empty());
        let grown = format!(
            r#"{v1},{{"type":"float64","optional":false,"field":"score"}},{{"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","field":"at"}}"#
        );
        let added = watch.added(&record(&grown, r#"{"id":4,"name":"c","score":1.5,"at":0}"#));
        assert_eq!(
            added,
            vec![
                Field::new("score", DataType::Float64, true),
                Field::new("at", DataType::Int64, true)
            ]
        );
        // Reported again until the columns include it: the task stops on it.
        assert_eq!(
            watch
                .added(&record(&grown, r#"{"id":5,"name":"d","score":2,"at":0}"#))
                .len(),
            2
        );
    }

    #[test]
    fn a_record_without_schema_first_is_parsed_whole() {
        let declared = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
        let mut watch = SchemaWatch::new(&declared);
        let late = br#"{"payload":{"id":1,"x":true},"schema":{"type":"struct","fields":[{"type":"int32","field":"id"},{"type":"boolean","field":"x"}]}}"#;
        assert_eq!(watch.added(late), vec![Field::new("x", DataType::Boolean, true)]);
        assert!(watch.added(br#"{"id":1}"#).is_empty(), "no schema: nothing to say");
    }
}
