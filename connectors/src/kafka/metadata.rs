//! The metadata columns every Kafka source row carries, built per batch.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};

use super::config::KeyFormat;

/// `_key`, `_topic`, `_partition`, `_offset`, `_timestamp`, `_headers`.
pub(crate) fn fields(key_format: KeyFormat) -> Vec<FieldRef> {
    let key_type = match key_format {
        KeyFormat::Bytes => DataType::Binary,
        KeyFormat::String | KeyFormat::Json => DataType::Utf8,
    };
    // Nullable, so a column the pipeline never reads can be left NULL instead of built.
    vec![
        Arc::new(Field::new("_key", key_type, true)),
        Arc::new(Field::new("_topic", DataType::Utf8, true)),
        Arc::new(Field::new("_partition", DataType::Int32, true)),
        Arc::new(Field::new("_offset", DataType::Int64, true)),
        Arc::new(Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )),
        Arc::new(Field::new("_headers", headers_type(), true)),
    ]
}

fn headers_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new())
        .finish()
        .data_type()
        .clone()
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

/// How many metadata columns [`fields`] returns.
pub(crate) const COUNT: usize = 6;

/// Builds the metadata columns for the rows of a batch; columns the pipeline does
/// not read come out as NULL arrays, which cost nothing to build.
pub(crate) struct MetaBuilder {
    wanted: [bool; COUNT],
    rows: usize,
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
    pub(crate) fn new(key_format: KeyFormat, rows: usize, wanted: [bool; COUNT]) -> Self {
        Self {
            wanted,
            rows: 0,
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
            Some(k) if self.key_text => std::str::from_utf8(k)
                .map(|_| ())
                .map_err(|e| format!("key is not valid UTF-8 text: {e}")),
            _ => Ok(()),
        }
    }

    pub(crate) fn push(&mut self, m: &Meta<'_>) {
        self.rows += 1;
        let w = self.wanted;
        if w[0] {
            if self.key_text {
                self.key_str.append_option(m.key.map(|k| String::from_utf8_lossy(k)));
            } else {
                self.key_bytes.append_option(m.key);
            }
        }
        if w[1] {
            self.topic.append_value(m.topic);
        }
        if w[2] {
            self.partition.append_value(m.partition);
        }
        if w[3] {
            self.offset.append_value(m.offset);
        }
        if w[4] {
            self.timestamp.append_option(m.timestamp);
        }
        if w[5] {
            for (k, v) in m.headers {
                self.headers.keys().append_value(k);
                self.headers.values().append_option(v.as_deref());
            }
            // Appending a map entry never fails when keys and values were pushed in pairs.
            let _ = self.headers.append(true);
        }
    }

    /// The columns, in [`fields`] order, typed as `fields` says.
    pub(crate) fn finish(mut self, fields: &[arrow::datatypes::FieldRef]) -> Vec<ArrayRef> {
        let key: ArrayRef = if self.key_text {
            Arc::new(self.key_str.finish())
        } else {
            Arc::new(self.key_bytes.finish())
        };
        let built: [ArrayRef; COUNT] = [
            key,
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.headers.finish()),
        ];
        built
            .into_iter()
            .zip(fields)
            .enumerate()
            .map(|(i, (a, f))| {
                if self.wanted[i] {
                    a
                } else {
                    arrow::array::new_null_array(f.data_type(), self.rows)
                }
            })
            .collect()
    }
}
