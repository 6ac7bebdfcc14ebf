//! Row changes (and snapshot rows) into Arrow batches.
//!
//! Values arrive as PostgreSQL's text output (pgoutput's text mode, and the
//! snapshot's `col::text`), so both paths share one decoder: each column's text is
//! gathered into a string array and cast once per batch to the declared type
//! (arrow's casts parse integers, decimals, booleans `t`/`f`, dates and ISO
//! timestamps); `bytea`'s `\x…` hex is decoded as it is read. A value the cast
//! cannot read rejects its row, with the table, the LSN and the text values as
//! provenance, and the rest of the batch goes on.
//!
//! Columns are matched to the declared ones by name, so one source can read
//! several tables: a declared column a table lacks is NULL in its rows, a table
//! column nobody declared is left out, and `_table` tells the rows apart.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanArray, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondBuilder, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef, TimeUnit};

use super::pgoutput::{Relation, Value};
use crate::api::{RejectedRecord, RowOrigins, Stage};

/// What an update leaves out: an unchanged TOASTed value (a large text or bytea
/// the WAL does not repeat). Debezium emits the same placeholder.
pub(crate) const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// The metadata columns every row carries, after the declared ones.
pub(crate) fn metadata_fields() -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new("_op", DataType::Utf8, true)),
        Arc::new(Field::new("_lsn", DataType::Int64, true)),
        Arc::new(Field::new("_txid", DataType::Int64, true)),
        Arc::new(Field::new(
            "_commit_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        )),
        Arc::new(Field::new("_schema", DataType::Utf8, true)),
        Arc::new(Field::new("_table", DataType::Utf8, true)),
        Arc::new(Field::new("_before", DataType::Utf8, true)),
    ]
}

/// How many columns [`metadata_fields`] returns.
pub(crate) const META: usize = 7;

/// A relation as this source reads it: where each of its columns goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) rel: Relation,
    /// `schema.table`.
    pub(crate) qualified: Arc<str>,
    /// Per relation column, the declared column it fills.
    pub(crate) slots: Vec<Option<usize>>,
    /// Per declared column, the relation column that fills it (the inverse of
    /// `slots`), so a row is built without a scratch vector.
    column_of: Vec<Option<usize>>,
    /// Tells this shape of the relation from earlier ones (Debezium events
    /// cache their schemas by it).
    pub(crate) generation: u64,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Target {
    pub(crate) fn new(rel: Relation, declared: &[FieldRef]) -> Self {
        let slots: Vec<Option<usize>> = rel
            .columns
            .iter()
            .map(|c| declared.iter().position(|f| f.name() == &c.name))
            .collect();
        let column_of = (0..declared.len())
            .map(|slot| slots.iter().position(|s| *s == Some(slot)))
            .collect();
        Self {
            qualified: format!("{}.{}", rel.schema, rel.table).into(),
            rel,
            slots,
            column_of,
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Where a row change comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    /// `c`, `u`, `d`, `r` (snapshot read) or `t`.
    pub(crate) op: u8,
    pub(crate) lsn: u64,
    pub(crate) xid: Option<u32>,
    /// Microseconds since the Unix epoch.
    pub(crate) commit_micros: Option<i64>,
    /// The end of the last transaction delivered before this one (Debezium's
    /// `source.sequence`).
    pub(crate) last_commit: u64,
}

enum Column {
    Text(StringBuilder),
    Bytes(BinaryBuilder),
}

/// The metadata columns of a batch ([`metadata_fields`]), shared by flattened
/// rows and Debezium events.
pub(crate) struct Meta {
    op: StringBuilder,
    lsn: Int64Builder,
    txid: Int64Builder,
    commit_ts: TimestampMicrosecondBuilder,
    table_schema: StringBuilder,
    table: StringBuilder,
    before: StringBuilder,
    /// `_before` is selected: worth building.
    with_before: bool,
}

impl Meta {
    pub(crate) fn new(with_before: bool) -> Self {
        Self {
            op: StringBuilder::new(),
            lsn: Int64Builder::new(),
            txid: Int64Builder::new(),
            commit_ts: TimestampMicrosecondBuilder::new().with_timezone("+00:00"),
            table_schema: StringBuilder::new(),
            table: StringBuilder::new(),
            before: StringBuilder::new(),
            with_before,
        }
    }

    pub(crate) fn push(&mut self, target: &Target, old: Option<&[Value<'_>]>, at: Origin) {
        self.op.append_value(op_str(at.op));
        self.lsn.append_value(at.lsn as i64);
        self.txid.append_option(at.xid.map(i64::from));
        self.commit_ts.append_option(at.commit_micros);
        self.table_schema.append_value(&target.rel.schema);
        self.table.append_value(&target.rel.table);
        match old.filter(|_| self.with_before) {
            Some(old) => self.before.append_value(values_json(target, old).to_string()),
            None => self.before.append_null(),
        }
    }

    pub(crate) fn finish(&mut self) -> [ArrayRef; META] {
        [
            Arc::new(self.op.finish()),
            Arc::new(self.lsn.finish()),
            Arc::new(self.txid.finish()),
            Arc::new(self.commit_ts.finish()),
            Arc::new(self.table_schema.finish()),
            Arc::new(self.table.finish()),
            Arc::new(self.before.finish()),
        ]
    }
}

/// Gathers the rows of one batch.
pub(crate) struct Rows {
    schema: SchemaRef,
    declared: usize,
    used: Vec<bool>,
    columns: Vec<Column>,
    meta: Meta,
    origins: RowOrigins,
    /// Rows that cannot be delivered: index and why.
    bad: Vec<(usize, String)>,
    source: String,
}

impl Rows {
    pub(crate) fn new(schema: SchemaRef, used: &[bool], source: &str) -> Self {
        let declared = schema.fields().len().saturating_sub(META);
        let columns = schema.fields()[..declared]
            .iter()
            .map(|f| match f.data_type() {
                DataType::Binary | DataType::LargeBinary => Column::Bytes(BinaryBuilder::new()),
                _ => Column::Text(StringBuilder::new()),
            })
            .collect();
        let used: Vec<bool> = (0..schema.fields().len())
            .map(|i| used.get(i).copied().unwrap_or(true))
            .collect();
        Self {
            meta: Meta::new(used[declared + META - 1]),
            used,
            schema,
            declared,
            columns,
            origins: RowOrigins::default(),
            bad: Vec::new(),
            source: source.to_string(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.origins.len()
    }

    /// The declared columns (without the metadata ones).
    pub(crate) fn declared(&self) -> &[FieldRef] {
        &self.schema.fields()[..self.declared]
    }

    /// Appends a row: the values of `target`'s columns (`values`), the old key or
    /// row (`old`) for `_before` and for unchanged TOASTed values, and where it
    /// came from.
    pub(crate) fn push(
        &mut self,
        target: &Target,
        values: Option<&[Value<'_>]>,
        old: Option<&[Value<'_>]>,
        at: Origin,
    ) {
        let row = self.len();
        let mut problem: Option<String> = None;
        let source = values.or(old);
        for slot in 0..self.declared {
            let field = self.schema.field(slot);
            let i = target.column_of.get(slot).copied().flatten();
            let mut v = match (source, i) {
                (Some(row), Some(i)) => row.get(i).copied().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            if v == Value::Unchanged {
                // The old row (REPLICA IDENTITY FULL) still has it.
                v = match old.zip(i).and_then(|(o, i)| o.get(i)) {
                    Some(o @ Value::Text(_)) => *o,
                    _ => match &self.columns[slot] {
                        Column::Text(_) if field.data_type() == &DataType::Utf8 => Value::Text(UNAVAILABLE.as_bytes()),
                        Column::Bytes(_) => Value::Text(b"\\x"),
                        Column::Text(_) => {
                            problem.get_or_insert_with(|| {
                                format!(
                                    "column {}: the update left its TOASTed value out of the WAL; set REPLICA IDENTITY FULL on {} to receive it",
                                    field.name(),
                                    target.qualified
                                )
                            });
                            Value::Null
                        }
                    },
                };
            }
            let v = &v;
            if !field.is_nullable() && *v == Value::Null && problem.is_none() {
                problem = Some(if at.op == b't' {
                    format!(
                        "column {} is NOT NULL, and a truncate row carries no column values: declare it nullable, or leave truncates out (skipped.operations, 't' by default)",
                        field.name()
                    )
                } else {
                    format!(
                        "column {} is NOT NULL, and this {} carries no value for it (a delete carries only the key unless REPLICA IDENTITY FULL): declare it nullable",
                        field.name(),
                        op_name(at.op)
                    )
                });
            }
            match (&mut self.columns[slot], v) {
                (Column::Text(b), Value::Text(t)) => match std::str::from_utf8(t) {
                    Ok(s) => b.append_value(normalize(field.data_type(), s)),
                    Err(_) => {
                        b.append_null();
                        problem.get_or_insert_with(|| format!("column {}: the value is not UTF-8", field.name()));
                    }
                },
                (Column::Bytes(b), Value::Text(t)) => match unhex(t) {
                    Some(bytes) => b.append_value(bytes),
                    None => {
                        b.append_null();
                        problem.get_or_insert_with(|| format!("column {}: not a bytea hex value (\\x…)", field.name()));
                    }
                },
                (Column::Text(b), _) => b.append_null(),
                (Column::Bytes(b), _) => b.append_null(),
            }
        }
        self.meta.push(target, old, at);
        self.origins.push(&target.qualified, at.lsn as i64);
        if let Some(p) = problem {
            self.bad.push((row, p));
        }
    }

    /// The batch so far, with the rows that cannot be delivered taken out and
    /// returned as rejected records; starts a new one.
    pub(crate) fn finish(
        &mut self,
    ) -> Result<(RecordBatch, RowOrigins, Vec<RejectedRecord>), arrow::error::ArrowError> {
        let rows = self.len();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let mut texts: Vec<Option<StringArray>> = Vec::with_capacity(self.declared);
        let lenient = CastOptions {
            safe: true,
            ..Default::default()
        };
        for (slot, column) in self.columns.iter_mut().enumerate() {
            let field = &self.schema.fields()[slot];
            let built: ArrayRef = match column {
                Column::Bytes(b) => Arc::new(b.finish()),
                Column::Text(b) => {
                    let text = b.finish();
                    if field.data_type() == &DataType::Utf8 {
                        texts.push(Some(text.clone()));
                        Arc::new(text)
                    } else {
                        let cast = cast_with_options(&text, field.data_type(), &lenient)?;
                        // A value the cast could not read came out NULL.
                        for row in 0..rows {
                            if text.is_valid(row) && cast.is_null(row) {
                                self.bad.push((
                                    row,
                                    format!(
                                        "column {}: '{}' is not a valid {}",
                                        field.name(),
                                        text.value(row),
                                        field.data_type()
                                    ),
                                ));
                            }
                        }
                        texts.push(Some(text));
                        cast
                    }
                }
            };
            if !self.used[slot] && field.is_nullable() {
                arrays.push(new_null_array(field.data_type(), rows));
            } else {
                arrays.push(built);
            }
            if texts.len() < slot + 1 {
                texts.push(None);
            }
        }
        arrays.extend(self.meta.finish());
        // Nulls in NOT NULL columns were recorded as bad rows; build the batch from
        // a nullable schema, then restore the declared one once they are out.
        let relaxed = Arc::new(arrow::datatypes::Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let mut batch = RecordBatch::try_new(relaxed, arrays)?;
        let origins = std::mem::take(&mut self.origins);
        let mut bad = std::mem::take(&mut self.bad);
        if bad.is_empty() {
            return Ok((
                RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?,
                origins,
                Vec::new(),
            ));
        }
        bad.sort_by_key(|(row, _)| *row);
        bad.dedup_by_key(|(row, _)| *row);
        let mut keep = vec![true; rows];
        let mut rejected = Vec::with_capacity(bad.len());
        for (row, why) in bad {
            keep[row] = false;
            let mut record = serde_json::Map::new();
            for (slot, field) in self.schema.fields()[..self.declared].iter().enumerate() {
                let value = match texts.get(slot).and_then(Option::as_ref) {
                    Some(t) if t.is_valid(row) => serde_json::Value::from(t.value(row)),
                    _ => serde_json::Value::Null,
                };
                record.insert(field.name().clone(), value);
            }
            let (partition, position) = origins.get(row).unwrap_or(("", 0));
            rejected.push(RejectedRecord {
                source: self.source.clone(),
                partition: partition.to_string(),
                position,
                stage: Stage::Decode,
                error: why,
                record: serde_json::Value::Object(record),
                raw: None,
            });
        }
        let keep_rows: Vec<usize> = (0..rows).filter(|r| keep[*r]).collect();
        batch = filter_record_batch(&batch, &BooleanArray::from(keep))?;
        Ok((
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?,
            origins.select(&keep_rows),
            rejected,
        ))
    }
}

pub(crate) fn op_str(op: u8) -> &'static str {
    match op {
        b'c' => "c",
        b'u' => "u",
        b'd' => "d",
        b't' => "t",
        _ => "r",
    }
}

fn op_name(op: u8) -> &'static str {
    match op {
        b'c' => "insert",
        b'u' => "update",
        b'd' => "delete",
        b't' => "truncate",
        _ => "snapshot row",
    }
}

/// Text as a declared timestamp-with-zone column's cast reads it.
fn normalize<'a>(ty: &DataType, s: &'a str) -> std::borrow::Cow<'a, str> {
    match ty {
        DataType::Timestamp(_, Some(_)) => zone_with_minutes(s),
        _ => s.into(),
    }
}

/// PostgreSQL writes a whole-hour zone as `+00`; arrow's timestamp parser and
/// chrono's `%:z` want `+00:00`.
pub(crate) fn zone_with_minutes(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    if b.len() > 3 && matches!(b[b.len() - 3], b'+' | b'-') && b[b.len() - 2..].iter().all(u8::is_ascii_digit) {
        return format!("{s}:00").into();
    }
    s.into()
}

/// `\x0a1b…` (bytea's hex output) to bytes.
pub(crate) fn unhex(t: &[u8]) -> Option<Vec<u8>> {
    let hex = t.strip_prefix(b"\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

/// The old key or row as a JSON object of text values (`_before`).
pub(crate) fn values_json(target: &Target, values: &[Value<'_>]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (c, v) in target.rel.columns.iter().zip(values) {
        match v {
            Value::Text(t) => {
                out.insert(c.name.clone(), String::from_utf8_lossy(t).into_owned().into());
            }
            // A key-only old tuple sends NULL for every column outside the key.
            Value::Null if c.key || target.rel.replica_identity == b'f' => {
                out.insert(c.name.clone(), serde_json::Value::Null);
            }
            _ => {}
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, BinaryArray};
    use arrow::datatypes::{Int32Type, Schema, TimestampMicrosecondType};

    use super::super::pgoutput::RelColumn;
    use super::*;

    fn schema(declared: Vec<Field>) -> SchemaRef {
        let mut fields: Vec<FieldRef> = declared.into_iter().map(Arc::new).collect();
        fields.extend(metadata_fields());
        Arc::new(Schema::new(fields))
    }

    fn target(columns: &[(&str, bool)]) -> Target {
        let rel = Relation {
            id: 1,
            schema: "public".into(),
            table: "t".into(),
            replica_identity: b'd',
            columns: columns
                .iter()
                .map(|(n, k)| RelColumn {
                    name: n.to_string(),
                    key: *k,
                    type_oid: 25,
                    type_mod: -1,
                    primary: *k,
                    not_null: *k,
                })
                .collect(),
        };
        Target::new(rel, &[])
    }

    #[test]
    fn text_values_become_typed_columns_and_bad_ones_are_rejected_alone() {
        let schema = schema(vec![
            Field::new("id", DataType::Int32, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("data", DataType::Binary, true),
            Field::new("note", DataType::Utf8, true),
        ]);
        let mut rows = Rows::new(schema.clone(), &[], "cdc");
        let mut t = target(&[
            ("id", true),
            ("at", false),
            ("extra", false),
            ("data", false),
            ("note", false),
        ]);
        t = Target::new(t.rel, &schema.fields()[..4]);
        let at = Origin {
            op: b'c',
            lsn: 100,
            xid: Some(7),
            commit_micros: Some(1),
            last_commit: 0,
        };
        rows.push(
            &t,
            Some(&[
                Value::Text(b"1"),
                Value::Text(b"2024-01-02 03:04:05.5+00"),
                Value::Text(b"ignored"),
                Value::Text(b"\\x0aff"),
                Value::Unchanged,
            ]),
            None,
            at,
        );
        rows.push(
            &t,
            Some(&[Value::Text(b"x"), Value::Null, Value::Null, Value::Null, Value::Null]),
            None,
            at,
        );
        // A delete without the key's value in a NOT NULL column.
        rows.push(&t, None, Some(&[Value::Null; 5]), Origin { op: b'd', ..at });
        let (batch, origins, rejected) = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(origins.len(), 1);
        assert_eq!(batch.column(0).as_primitive::<Int32Type>().value(0), 1);
        assert_eq!(
            batch.column(1).as_primitive::<TimestampMicrosecondType>().value(0),
            1_704_164_645_500_000
        );
        let data = batch.column(2).as_any().downcast_ref::<BinaryArray>().unwrap();
        assert_eq!(data.value(0), &[0x0a, 0xff]);
        assert_eq!(batch.column(3).as_string::<i32>().value(0), UNAVAILABLE);
        assert_eq!(batch.column(4).as_string::<i32>().value(0), "c");
        assert_eq!(rejected.len(), 2);
        assert!(
            rejected[0].error.contains("'x' is not a valid Int32"),
            "{}",
            rejected[0].error
        );
        assert_eq!(rejected[0].partition, "public.t");
        assert_eq!(rejected[0].record["id"], "x");
        assert!(rejected[1].error.contains("NOT NULL"), "{}", rejected[1].error);
        // The builder starts over.
        assert_eq!(rows.len(), 0);
    }

    #[test]
    fn unchanged_toast_takes_the_old_rows_value_or_fails_for_typed_columns() {
        let schema = schema(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let mut rows = Rows::new(schema.clone(), &[], "cdc");
        let t = Target::new(target(&[("id", true), ("n", false)]).rel, &schema.fields()[..2]);
        let at = Origin {
            op: b'u',
            lsn: 1,
            xid: None,
            commit_micros: None,
            last_commit: 0,
        };
        rows.push(
            &t,
            Some(&[Value::Text(b"1"), Value::Unchanged]),
            Some(&[Value::Text(b"1"), Value::Text(b"42")]),
            at,
        );
        rows.push(&t, Some(&[Value::Text(b"2"), Value::Unchanged]), None, at);
        let (batch, _, rejected) = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            batch.column(1).as_primitive::<arrow::datatypes::Int64Type>().value(0),
            42
        );
        assert!(
            rejected[0].error.contains("REPLICA IDENTITY FULL"),
            "{}",
            rejected[0].error
        );
        assert_eq!(
            batch.column(8).as_string::<i32>().value(0),
            r#"{"id":"1","n":"42"}"#,
            "_before holds the old row"
        );
    }

    #[test]
    fn bytea_hex_is_checked() {
        assert_eq!(unhex(b"\\x00ff"), Some(vec![0, 255]));
        assert_eq!(unhex(b"\\x0"), None);
        assert_eq!(unhex(b"00"), None);
        assert_eq!(unhex(b"\\xzz"), None);
    }
}
