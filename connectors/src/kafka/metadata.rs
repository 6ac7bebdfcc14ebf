//! The metadata columns every Kafka source row carries, built per batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};

use super::config::KeyFormat;

/// `_key`, `_topic`, `_partition`, `_offset`, `_timestamp`, `_headers`.
pub(crate) fn fields(key_format: KeyFormat) -> Vec<FieldRef> {
    let key_type = match key_format {
        KeyFormat::Bytes => DataType::Binary,
        KeyFormat::String | KeyFormat::Json => DataType::Utf8,
    };
    vec![
        Arc::new(Field::new("_key", key_type, true)),
        Arc::new(Field::new("_topic", DataType::Utf8, false)),
        Arc::new(Field::new("_partition", DataType::Int32, false)),
        Arc::new(Field::new("_offset", DataType::Int64, false)),
        Arc::new(Field::new("_timestamp", DataType::Timestamp(TimeUnit::Millisecond, None), true)),
        Arc::new(Field::new("_headers", headers_type(), false)),
    ]
}

fn headers_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new()).finish().data_type().clone()
}

/// One message's metadata, as read.
#[derive(Debug, Clone)]
pub(crate) struct Meta<'a> {
    pub key: Option<&'a [u8]>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub headers: &'a [(String, Option<bytes::Bytes>)],
}

/// Builds the metadata columns for the rows of a batch.
pub(crate) struct MetaBuilder {
    key_text: bool,
    key_bytes: BinaryBuilder,
    key_str: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    headers: MapBuilder<StringBuilder, BinaryBuilder>,
}

impl MetaBuilder {
    pub(crate) fn new(key_format: KeyFormat, rows: usize) -> Self {
        Self {
            key_text: key_format != KeyFormat::Bytes,
            key_bytes: BinaryBuilder::with_capacity(rows, 0),
            key_str: StringBuilder::with_capacity(rows, 0),
            topic: StringBuilder::with_capacity(rows, rows * 8),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
            timestamp: TimestampMillisecondBuilder::with_capacity(rows),
            headers: MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new()),
        }
    }

    /// Appends one row. A text key that is not UTF-8 is an error for that record.
    pub(crate) fn check_key(&self, key: Option<&[u8]>) -> Result<(), String> {
        match key {
            Some(k) if self.key_text => std::str::from_utf8(k).map(|_| ()).map_err(|e| format!("key is not valid UTF-8 text: {e}")),
            _ => Ok(()),
        }
    }

    pub(crate) fn push(&mut self, m: &Meta<'_>) {
        if self.key_text {
            self.key_str.append_option(m.key.map(|k| String::from_utf8_lossy(k)));
        } else {
            self.key_bytes.append_option(m.key);
        }
        self.topic.append_value(m.topic);
        self.partition.append_value(m.partition);
        self.offset.append_value(m.offset);
        self.timestamp.append_option(m.timestamp);
        for (k, v) in m.headers {
            self.headers.keys().append_value(k);
            self.headers.values().append_option(v.as_deref());
        }
        // Appending a map entry never fails when keys and values were pushed in pairs.
        let _ = self.headers.append(true);
    }

    pub(crate) fn finish(mut self) -> Vec<ArrayRef> {
        let key: ArrayRef = if self.key_text { Arc::new(self.key_str.finish()) } else { Arc::new(self.key_bytes.finish()) };
        vec![
            key,
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.headers.finish()),
        ]
    }
}
