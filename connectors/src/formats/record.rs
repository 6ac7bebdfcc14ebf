//! One message, one record: payload formats for message brokers (Kafka and the like).
//!
//! [`RecordDecoder`] turns a batch of message payloads into rows of the declared
//! columns, isolating the payloads that fail; [`RecordEncoder`] turns rows into one
//! payload each. JSON and CSV go through arrow-json / arrow-csv (via
//! [`LineDecoder`]); Kafka Connect's `{"schema", "payload"}` envelope and
//! Debezium's `{"before", "after", "op"}` envelope are decoded by giving arrow-json
//! a wrapper schema and unwrapping the struct columns it returns.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, RecordBatch, StringBuilder, StructArray};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{is_null, nullif};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use super::LineFormat;
use super::avro::{AvroDecoder, AvroEncoder, SchemaRegistry};
use super::decode::{CsvOptions, Decoded, LineDecoder};
use crate::api::{ConnectorError, Result};

/// How a message's bytes map to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// A JSON object; with `schemas`, Kafka Connect's `{"schema":…,"payload":…}` envelope.
    Json {
        schemas: bool,
    },
    Csv(CsvOptions),
    /// The bytes as they are, in the one declared column `value`.
    Raw,
    /// Debezium's change event: `after` (or `before` for deletes) plus `_op`.
    DebeziumJson {
        schemas: bool,
    },
    /// Avro in Confluent's wire format, schemas from a Schema Registry.
    Avro,
}

impl RecordFormat {
    pub const NAMES: &'static [&'static str] = &["json", "csv", "raw", "debezium-json", "avro"];

    pub fn parse(name: &str, schemas: bool, csv: CsvOptions) -> std::result::Result<Self, String> {
        match name {
            "json" => Ok(Self::Json { schemas }),
            "csv" => Ok(Self::Csv(csv)),
            "raw" => Ok(Self::Raw),
            "debezium-json" => Ok(Self::DebeziumJson { schemas }),
            "avro" => Ok(Self::Avro),
            other => Err(format!(
                "unknown format '{other}'; expected one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }

    /// Columns the format adds to the declared ones.
    pub fn extra_columns(&self) -> Vec<FieldRef> {
        match self {
            Self::DebeziumJson { .. } => vec![Arc::new(Field::new("_op", DataType::Utf8, true))],
            _ => Vec::new(),
        }
    }

    /// Checks the declared columns suit the format (raw needs exactly `value`).
    pub fn check_schema(&self, schema: &Schema, option: &str) -> Result<()> {
        if *self == Self::Raw {
            let ok = schema.fields().len() == 1
                && schema.field(0).name() == "value"
                && matches!(schema.field(0).data_type(), DataType::Binary | DataType::Utf8);
            if !ok {
                return Err(ConnectorError::option(
                    option,
                    "format 'raw' needs exactly one column: value BYTEA or value TEXT",
                ));
            }
        }
        Ok(())
    }
}

/// Decodes message payloads (None = a null value, a tombstone) into rows.
pub struct RecordDecoder {
    format: RecordFormat,
    declared: SchemaRef,
    output: SchemaRef,
    lines: Option<LineDecoder>,
    avro: Option<AvroDecoder>,
    joined: Vec<u8>,
}

impl std::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder").field("format", &self.format).finish()
    }
}

fn struct_of(schema: &Schema) -> DataType {
    DataType::Struct(schema.fields().clone())
}

impl RecordDecoder {
    /// `registry` is needed for Avro (and ignored otherwise).
    pub fn new(
        format: RecordFormat,
        declared: SchemaRef,
        max_rows: usize,
        registry: Option<Arc<SchemaRegistry>>,
    ) -> Result<Self> {
        let avro = match (format, registry) {
            (RecordFormat::Avro, Some(r)) => Some(AvroDecoder::new(r, Arc::clone(&declared), max_rows)?),
            (RecordFormat::Avro, None) => {
                return Err(ConnectorError::Config("format 'avro' needs schema.registry.url".into()));
            }
            _ => None,
        };
        Ok(Self {
            avro,
            ..Self::text(format, declared, max_rows)
        })
    }

    fn text(format: RecordFormat, declared: SchemaRef, max_rows: usize) -> Self {
        let mut fields: Vec<FieldRef> = declared.fields().iter().cloned().collect();
        fields.extend(format.extra_columns());
        let output = Arc::new(Schema::new(fields));
        let wrapper = |fields: Vec<Field>| Arc::new(Schema::new(fields));
        let lines = match format {
            RecordFormat::Json { schemas: false } => Some(LineDecoder::new(
                LineFormat::Json,
                Arc::clone(&declared),
                CsvOptions::default(),
                max_rows,
            )),
            RecordFormat::Json { schemas: true } => Some(LineDecoder::new(
                LineFormat::Json,
                wrapper(vec![Field::new("payload", struct_of(&declared), true)]),
                CsvOptions::default(),
                max_rows,
            )),
            RecordFormat::DebeziumJson { schemas } => {
                let envelope = vec![
                    Field::new("before", struct_of(&declared), true),
                    Field::new("after", struct_of(&declared), true),
                    Field::new("op", DataType::Utf8, true),
                ];
                let schema = if schemas {
                    wrapper(vec![Field::new(
                        "payload",
                        DataType::Struct(Fields::from(envelope)),
                        true,
                    )])
                } else {
                    wrapper(envelope)
                };
                Some(LineDecoder::new(
                    LineFormat::Json,
                    schema,
                    CsvOptions::default(),
                    max_rows,
                ))
            }
            RecordFormat::Csv(csv) => Some(LineDecoder::new(LineFormat::Csv, Arc::clone(&declared), csv, max_rows)),
            RecordFormat::Raw | RecordFormat::Avro => None,
        };
        Self {
            format,
            declared,
            output,
            lines,
            avro: None,
            joined: Vec::new(),
        }
    }

    /// See [`LineDecoder::skip_unused`]: `used` is per declared column. Plain JSON
    /// records only (the other formats build every column).
    pub fn skip_unused(&mut self, used: &[bool]) {
        if let (RecordFormat::Json { schemas: false }, Some(lines)) = (self.format, self.lines.as_mut()) {
            lines.skip_unused(used);
        }
    }

    /// The declared columns plus the format's extra ones, in that order.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// Decodes one batch of payloads. Rows come out in input order; `good` maps each
    /// row to its payload index. Debezium tombstones (null payloads) are skipped,
    /// appearing in neither `good` nor `bad`. Fails only when a service the format
    /// needs (the schema registry) cannot be reached.
    pub fn decode(&mut self, payloads: &[Option<&[u8]>]) -> Result<Decoded> {
        self.decode_with(payloads, None)
    }

    /// Like [`RecordDecoder::decode`], given the payloads already laid out as one
    /// buffer, each followed by a newline, so text formats need not copy them again.
    /// `joined` is ignored when it cannot be used (a tombstone among the payloads).
    pub fn decode_joined(&mut self, payloads: &[Option<&[u8]>], joined: &[u8]) -> Result<Decoded> {
        self.decode_with(payloads, Some(joined))
    }

    fn decode_with(&mut self, payloads: &[Option<&[u8]>], joined: Option<&[u8]>) -> Result<Decoded> {
        if let Some(avro) = self.avro.as_mut() {
            return avro.decode(payloads);
        }
        Ok(self.decode_text(payloads, joined))
    }

    fn decode_text(&mut self, payloads: &[Option<&[u8]>], joined: Option<&[u8]>) -> Decoded {
        if self.format == RecordFormat::Raw {
            return self.decode_raw(payloads);
        }
        let skip_nulls = matches!(self.format, RecordFormat::DebeziumJson { .. });
        let empty: &[u8] = if matches!(self.format, RecordFormat::Csv(_)) {
            b""
        } else {
            b"{}"
        };
        let mut index = Vec::with_capacity(payloads.len());
        let mut lines: Vec<&[u8]> = Vec::with_capacity(payloads.len());
        for (i, p) in payloads.iter().enumerate() {
            match p {
                None if skip_nulls => continue,
                None => lines.push(empty),
                Some(p) => lines.push(p),
            }
            index.push(i);
        }
        // The caller's buffer is the joined input when every payload is in it.
        let joined = match joined {
            Some(j) if lines.len() == payloads.len() && payloads.iter().all(Option::is_some) => j,
            _ => {
                self.joined.clear();
                for (i, l) in lines.iter().enumerate() {
                    if i > 0 {
                        self.joined.push(b'\n');
                    }
                    self.joined.extend_from_slice(l);
                }
                &self.joined
            }
        };
        let Some(decoder) = self.lines.as_mut() else {
            return Decoded {
                batch: RecordBatch::new_empty(Arc::clone(&self.output)),
                good: Vec::new(),
                bad: Vec::new(),
                filtered: None,
            };
        };
        let decoded = decoder.decode(joined, &lines);
        let good: Vec<usize> = decoded.good.iter().map(|&g| index[g]).collect();
        let mut bad: Vec<(usize, String)> = decoded.bad.into_iter().map(|(b, e)| (index[b], e)).collect();
        match self.unwrap(decoded.batch) {
            Ok(batch) if matches!(self.format, RecordFormat::DebeziumJson { .. }) => {
                // An event without `op` is not a change event at all.
                let op = batch.column(batch.num_columns() - 1);
                if op.null_count() == 0 {
                    return Decoded {
                        batch,
                        good,
                        bad,
                        filtered: None,
                    };
                }
                let keep: BooleanArray = (0..batch.num_rows()).map(|r| Some(op.is_valid(r))).collect();
                let mut kept = Vec::with_capacity(good.len());
                for (r, g) in good.into_iter().enumerate() {
                    if op.is_valid(r) {
                        kept.push(g);
                    } else {
                        bad.push((
                            g,
                            "not a Debezium change event: no 'op' field (is json.schemas.enable needed?)".to_string(),
                        ));
                    }
                }
                bad.sort_by_key(|b| b.0);
                match arrow::compute::filter_record_batch(&batch, &keep) {
                    Ok(batch) => Decoded {
                        batch,
                        good: kept,
                        bad,
                        filtered: None,
                    },
                    Err(e) => Decoded {
                        batch: RecordBatch::new_empty(Arc::clone(&self.output)),
                        good: Vec::new(),
                        bad: vec![(0, e.to_string())],
                        filtered: None,
                    },
                }
            }
            Ok(batch) => Decoded {
                batch,
                good,
                bad,
                filtered: None,
            },
            Err(e) => {
                // Unwrapping only fails on a shape mismatch: report every record.
                bad.extend(good.iter().map(|&g| (g, e.to_string())));
                bad.sort_by_key(|b| b.0);
                Decoded {
                    batch: RecordBatch::new_empty(Arc::clone(&self.output)),
                    good: Vec::new(),
                    bad,
                    filtered: None,
                }
            }
        }
    }

    /// Turns the wrapper schema's batch into the output schema.
    fn unwrap(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, ArrowError> {
        match self.format {
            RecordFormat::Json { schemas: false } | RecordFormat::Csv(_) => Ok(batch),
            RecordFormat::Json { schemas: true } => {
                let payload = batch.column(0).as_struct();
                let columns = struct_columns(payload)?;
                RecordBatch::try_new(Arc::clone(&self.output), columns)
            }
            RecordFormat::DebeziumJson { schemas } => {
                let (before, after, op) = if schemas {
                    let p = batch.column(0).as_struct();
                    let p = strip_struct_nulls(p)?;
                    (p.column(0).clone(), p.column(1).clone(), p.column(2).clone())
                } else {
                    (
                        batch.column(0).clone(),
                        batch.column(1).clone(),
                        batch.column(2).clone(),
                    )
                };
                let ops = op.as_string::<i32>();
                let deletes: BooleanArray = ops.iter().map(|o| Some(o == Some("d"))).collect();
                let before = struct_columns(before.as_struct())?;
                let after = struct_columns(after.as_struct())?;
                let mut columns = Vec::with_capacity(before.len() + 1);
                for (b, a) in before.iter().zip(&after) {
                    columns.push(zip(&deletes, b, a)?);
                }
                columns.push(op);
                RecordBatch::try_new(Arc::clone(&self.output), columns)
            }
            RecordFormat::Raw | RecordFormat::Avro => Ok(batch),
        }
    }

    fn decode_raw(&self, payloads: &[Option<&[u8]>]) -> Decoded {
        let text = self.declared.field(0).data_type() == &DataType::Utf8;
        let mut good = Vec::with_capacity(payloads.len());
        let mut bad = Vec::new();
        let column: ArrayRef = if text {
            let mut b =
                StringBuilder::with_capacity(payloads.len(), payloads.iter().map(|p| p.map_or(0, <[u8]>::len)).sum());
            for (i, p) in payloads.iter().enumerate() {
                match p.map(std::str::from_utf8) {
                    None => b.append_null(),
                    Some(Ok(s)) => b.append_value(s),
                    Some(Err(e)) => {
                        bad.push((i, format!("value is not valid UTF-8 text: {e}")));
                        continue;
                    }
                }
                good.push(i);
            }
            Arc::new(b.finish())
        } else {
            let mut b =
                BinaryBuilder::with_capacity(payloads.len(), payloads.iter().map(|p| p.map_or(0, <[u8]>::len)).sum());
            for (i, p) in payloads.iter().enumerate() {
                b.append_option(*p);
                good.push(i);
            }
            Arc::new(b.finish())
        };
        match RecordBatch::try_new(Arc::clone(&self.output), vec![column]) {
            Ok(batch) => Decoded {
                batch,
                good,
                bad,
                filtered: None,
            },
            Err(e) => {
                // A NOT NULL value column and a tombstone.
                let bad = (0..payloads.len()).map(|i| (i, e.to_string())).collect();
                Decoded {
                    batch: RecordBatch::new_empty(Arc::clone(&self.output)),
                    good: Vec::new(),
                    bad,
                    filtered: None,
                }
            }
        }
    }
}

/// A struct's children with the struct's own nulls pushed down into them.
fn struct_columns(s: &StructArray) -> std::result::Result<Vec<ArrayRef>, ArrowError> {
    Ok(strip_struct_nulls(s)?.columns().to_vec())
}

fn strip_struct_nulls(s: &StructArray) -> std::result::Result<StructArray, ArrowError> {
    if s.null_count() == 0 {
        return Ok(s.clone());
    }
    let mask = is_null(s)?;
    let columns = s
        .columns()
        .iter()
        .map(|c| nullif(c, &mask))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    StructArray::try_new(s.fields().clone(), columns, None)
}

/// Encodes rows into one payload each. Columns whose names start with `_` are
/// routing metadata (`_key`, `_topic`, `_headers`, …) and never part of the payload.
pub struct RecordEncoder {
    format: RecordFormat,
    /// Indices of the payload columns in the input batches.
    columns: Vec<usize>,
    payload_schema: SchemaRef,
    /// Kafka Connect schema JSON of the payload, for `json.schemas.enable`.
    connect_schema: Option<String>,
    /// Index of an `_op` column, for Debezium output.
    op_column: Option<usize>,
    avro: Option<AvroEncoder>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for RecordEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordEncoder").field("format", &self.format).finish()
    }
}

/// The payloads of one batch: one contiguous buffer and each row's range (None = null).
#[derive(Debug, Default)]
pub struct Payloads {
    pub bytes: Vec<u8>,
    pub ranges: Vec<Option<Range<usize>>>,
}

impl Payloads {
    pub fn get(&self, row: usize) -> Option<&[u8]> {
        self.ranges.get(row)?.as_ref().map(|r| &self.bytes[r.clone()])
    }
}

impl RecordEncoder {
    /// `option` names the format option, for errors. Avro needs the registry and the
    /// subject to register the payload schema under.
    pub fn new(
        format: RecordFormat,
        input: &SchemaRef,
        option: &str,
        avro: Option<(&SchemaRegistry, &str)>,
    ) -> Result<Self> {
        let columns: Vec<usize> = input
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.name().starts_with('_'))
            .map(|(i, _)| i)
            .collect();
        let payload_schema = Arc::new(
            input
                .project(&columns)
                .map_err(|e| ConnectorError::arrow("selecting payload columns", e))?,
        );
        format.check_schema(&payload_schema, option)?;
        if payload_schema.fields().is_empty() && format != RecordFormat::Raw {
            return Err(ConnectorError::option(
                option,
                "the SELECT has no payload columns (every column starts with '_')",
            ));
        }
        let connect_schema = match format {
            RecordFormat::Json { schemas: true } => Some(connect_schema(&payload_schema).to_string()),
            _ => None,
        };
        let op_column = input.index_of("_op").ok();
        let avro = match (format, avro) {
            (RecordFormat::Avro, Some((registry, subject))) => {
                Some(AvroEncoder::new(registry, subject, &payload_schema)?)
            }
            (RecordFormat::Avro, None) => {
                return Err(ConnectorError::option(
                    option,
                    "format 'avro' needs schema.registry.url",
                ));
            }
            _ => None,
        };
        Ok(Self {
            format,
            columns,
            payload_schema,
            connect_schema,
            op_column,
            avro,
            buf: Vec::new(),
        })
    }

    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Payloads> {
        let payload = batch
            .project(&self.columns)
            .map_err(|e| ConnectorError::arrow("selecting payload columns", e))?;
        let payload = RecordBatch::try_new(Arc::clone(&self.payload_schema), payload.columns().to_vec())
            .map_err(|e| ConnectorError::arrow("selecting payload columns", e))?;
        let rows = payload.num_rows();
        let mut out = Payloads {
            bytes: Vec::new(),
            ranges: Vec::with_capacity(rows),
        };
        match self.format {
            RecordFormat::Avro => {
                let Some(avro) = self.avro.as_mut() else {
                    return Err(ConnectorError::Internal("Avro encoder missing".into()));
                };
                for row in avro.encode(&payload)? {
                    let start = out.bytes.len();
                    out.bytes.extend_from_slice(&row);
                    out.ranges.push(Some(start..out.bytes.len()));
                }
            }
            RecordFormat::Raw => {
                let col = payload.column(0);
                for row in 0..rows {
                    if col.is_null(row) {
                        out.ranges.push(None);
                        continue;
                    }
                    let v: &[u8] = match col.data_type() {
                        DataType::Utf8 => col.as_string::<i32>().value(row).as_bytes(),
                        _ => col.as_binary::<i32>().value(row),
                    };
                    let start = out.bytes.len();
                    out.bytes.extend_from_slice(v);
                    out.ranges.push(Some(start..out.bytes.len()));
                }
            }
            RecordFormat::Csv(csv) => {
                for row in 0..rows {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(false)
                        .with_delimiter(csv.delimiter)
                        .with_quote(csv.quote)
                        .build(Vec::new());
                    w.write(&payload.slice(row, 1))
                        .map_err(|e| ConnectorError::arrow("encoding CSV", e))?;
                    let mut line = w.into_inner();
                    while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                        line.pop();
                    }
                    let start = out.bytes.len();
                    out.bytes.extend_from_slice(&line);
                    out.ranges.push(Some(start..out.bytes.len()));
                }
            }
            RecordFormat::Json { .. } | RecordFormat::DebeziumJson { .. } => {
                self.buf.clear();
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(std::mem::take(&mut self.buf));
                w.write(&payload)
                    .map_err(|e| ConnectorError::arrow("encoding JSON", e))?;
                w.finish().map_err(|e| ConnectorError::arrow("encoding JSON", e))?;
                self.buf = w.into_inner();
                // JSON escapes newlines inside strings, so every '\n' ends one row.
                let ops = self.op_column.map(|i| batch.column(i).clone());
                let mut start = 0;
                for (row, end) in memchr::memchr_iter(b'\n', &self.buf).enumerate() {
                    let json = &self.buf[start..end];
                    start = end + 1;
                    let first = out.bytes.len();
                    match (&self.format, &self.connect_schema) {
                        (RecordFormat::Json { .. }, Some(schema)) => {
                            out.bytes.extend_from_slice(b"{\"schema\":");
                            out.bytes.extend_from_slice(schema.as_bytes());
                            out.bytes.extend_from_slice(b",\"payload\":");
                            out.bytes.extend_from_slice(json);
                            out.bytes.push(b'}');
                        }
                        (RecordFormat::Json { .. }, None) => out.bytes.extend_from_slice(json),
                        _ => {
                            let op = ops
                                .as_ref()
                                .and_then(|o| {
                                    o.as_string_opt::<i32>()
                                        .filter(|s| s.is_valid(row))
                                        .map(|s| s.value(row).to_string())
                                })
                                .unwrap_or_else(|| "c".to_string());
                            let (before, after): (&[u8], &[u8]) =
                                if op == "d" { (json, b"null") } else { (b"null", json) };
                            out.bytes.extend_from_slice(b"{\"before\":");
                            out.bytes.extend_from_slice(before);
                            out.bytes.extend_from_slice(b",\"after\":");
                            out.bytes.extend_from_slice(after);
                            out.bytes.extend_from_slice(b",\"op\":");
                            out.bytes
                                .extend_from_slice(serde_json::Value::String(op).to_string().as_bytes());
                            out.bytes.push(b'}');
                        }
                    }
                    out.ranges.push(Some(first..out.bytes.len()));
                }
                if out.ranges.len() != rows {
                    return Err(ConnectorError::Internal(format!(
                        "JSON encoder produced {} lines for {rows} rows",
                        out.ranges.len()
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Kafka Connect's JSON schema for a set of columns (`{"type":"struct","fields":[…]}`).
pub fn connect_schema(schema: &Schema) -> serde_json::Value {
    fn field_type(dt: &DataType) -> serde_json::Value {
        use serde_json::json;
        match dt {
            DataType::Boolean => json!({"type": "boolean"}),
            DataType::Int8 => json!({"type": "int8"}),
            DataType::Int16 => json!({"type": "int16"}),
            DataType::Int32 | DataType::UInt16 => json!({"type": "int32"}),
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => json!({"type": "int64"}),
            DataType::Float32 => json!({"type": "float"}),
            DataType::Float64 => json!({"type": "double"}),
            DataType::Binary | DataType::LargeBinary => json!({"type": "bytes"}),
            DataType::Date32 => json!({"type": "string", "name": "date"}),
            DataType::Timestamp(TimeUnit::Millisecond, _) => json!({"type": "string", "name": "timestamp"}),
            DataType::Struct(fields) => {
                json!({"type": "struct", "fields": fields.iter().map(|f| field(f)).collect::<Vec<_>>()})
            }
            DataType::List(f) => json!({"type": "array", "items": field_type(f.data_type())}),
            _ => json!({"type": "string"}),
        }
    }
    fn field(f: &Field) -> serde_json::Value {
        let mut v = field_type(f.data_type());
        if let Some(o) = v.as_object_mut() {
            o.insert("field".into(), f.name().clone().into());
            o.insert("optional".into(), f.is_nullable().into());
        }
        v
    }
    serde_json::json!({"type": "struct", "optional": false, "fields": schema.fields().iter().map(|f| field(f)).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Int64Type;

    use super::*;

    fn declared() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn connect_envelope_unwraps_payload() {
        let mut d = RecordDecoder::new(RecordFormat::Json { schemas: true }, declared(), 16, None).unwrap();
        let a = br#"{"schema":{"type":"struct"},"payload":{"id":1,"name":"a"}}"#;
        let b = br#"{"schema":{"type":"struct"},"payload":{"id":"x"}}"#;
        let out = d.decode(&[Some(a), Some(b), Some(b"{}")]).unwrap();
        assert_eq!(out.good, vec![0, 2]);
        assert_eq!(out.bad.len(), 1);
        assert_eq!(
            out.batch.column(0).as_primitive::<Int64Type>(),
            &Int64Array::from(vec![Some(1), None])
        );
    }

    #[test]
    fn debezium_takes_before_for_deletes_and_skips_tombstones() {
        let mut d = RecordDecoder::new(RecordFormat::DebeziumJson { schemas: false }, declared(), 16, None).unwrap();
        let c = br#"{"before":null,"after":{"id":1,"name":"a"},"op":"c","source":{"db":"x"}}"#;
        let del = br#"{"before":{"id":1,"name":"a"},"after":null,"op":"d"}"#;
        let out = d.decode(&[Some(c), None, Some(del)]).unwrap();
        assert_eq!(out.good, vec![0, 2]);
        assert!(out.bad.is_empty());
        assert_eq!(
            out.batch.column(0).as_primitive::<Int64Type>(),
            &Int64Array::from(vec![1, 1])
        );
        assert_eq!(
            out.batch.column(2).as_string::<i32>(),
            &StringArray::from(vec!["c", "d"])
        );
        assert_eq!(out.batch.schema().field(2).name(), "_op");
    }

    #[test]
    fn raw_text_rejects_invalid_utf8() {
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let mut d = RecordDecoder::new(RecordFormat::Raw, schema, 16, None).unwrap();
        let out = d.decode(&[Some(b"ok"), Some(&[0xff, 0xfe]), None]).unwrap();
        assert_eq!(out.good, vec![0, 2]);
        assert_eq!(out.bad[0].0, 1);
    }

    #[test]
    fn json_round_trips_through_the_encoder() {
        let batch = RecordBatch::try_new(
            declared(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("line\nbreak"), None])),
            ],
        )
        .unwrap();
        for format in [
            RecordFormat::Json { schemas: false },
            RecordFormat::Json { schemas: true },
            RecordFormat::DebeziumJson { schemas: false },
        ] {
            let mut e = RecordEncoder::new(format, &declared(), "format", None).unwrap();
            let p = e.encode(&batch).unwrap();
            let payloads: Vec<Option<&[u8]>> = (0..2).map(|r| p.get(r)).collect();
            let out = RecordDecoder::new(format, declared(), 16, None)
                .unwrap()
                .decode(&payloads)
                .unwrap();
            assert_eq!(out.good, vec![0, 1], "{format:?}");
            assert_eq!(
                out.batch.column(1).as_string::<i32>(),
                &StringArray::from(vec![Some("line\nbreak"), None])
            );
        }
    }

    #[test]
    fn csv_round_trips_quoted_fields() {
        let batch = RecordBatch::try_new(
            declared(),
            vec![
                Arc::new(Int64Array::from(vec![7])),
                Arc::new(StringArray::from(vec!["a,b"])),
            ],
        )
        .unwrap();
        let format = RecordFormat::Csv(CsvOptions::default());
        let p = RecordEncoder::new(format, &declared(), "format", None)
            .unwrap()
            .encode(&batch)
            .unwrap();
        assert_eq!(p.get(0).unwrap(), b"7,\"a,b\"");
        let out = RecordDecoder::new(format, declared(), 4, None)
            .unwrap()
            .decode(&[p.get(0)])
            .unwrap();
        assert_eq!(out.batch.column(1).as_string::<i32>().value(0), "a,b");
    }
}
