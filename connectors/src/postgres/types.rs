//! Arrow → PostgreSQL: column types for `CREATE TABLE` / `ALTER TABLE`, and
//! values for binary `COPY`.
//!
//! | Arrow | PostgreSQL |
//! |---|---|
//! | Boolean | BOOLEAN |
//! | Int8, Int16, UInt8 | SMALLINT |
//! | Int32, UInt16 | INTEGER |
//! | Int64, UInt32, UInt64 (values above 2^63-1 are row errors) | BIGINT |
//! | Float16, Float32 | REAL |
//! | Float64 | DOUBLE PRECISION |
//! | Decimal128(p, s) | NUMERIC(p, s) |
//! | Utf8, LargeUtf8, Utf8View, Dictionary of strings | TEXT |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | BYTEA |
//! | Date32, Date64 | DATE |
//! | Time32, Time64 | TIME |
//! | Timestamp without zone | TIMESTAMP |
//! | Timestamp with zone | TIMESTAMPTZ |
//! | Struct, List, LargeList, Map | JSONB |

use std::error::Error;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType};
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// The PostgreSQL type a column of this Arrow type is written as: (COPY type, DDL).
pub(crate) fn pg_type(dt: &DataType) -> Option<(Type, String)> {
    Some(match dt {
        DataType::Boolean => (Type::BOOL, "BOOLEAN".into()),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Type::INT2, "SMALLINT".into()),
        DataType::Int32 | DataType::UInt16 => (Type::INT4, "INTEGER".into()),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (Type::INT8, "BIGINT".into()),
        DataType::Float16 | DataType::Float32 => (Type::FLOAT4, "REAL".into()),
        DataType::Float64 => (Type::FLOAT8, "DOUBLE PRECISION".into()),
        DataType::Decimal128(p, s) => (Type::NUMERIC, format!("NUMERIC({p}, {s})")),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (Type::TEXT, "TEXT".into()),
        DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8) => (Type::TEXT, "TEXT".into()),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => (Type::BYTEA, "BYTEA".into()),
        DataType::Date32 | DataType::Date64 => (Type::DATE, "DATE".into()),
        DataType::Time32(_) | DataType::Time64(_) => (Type::TIME, "TIME".into()),
        DataType::Timestamp(_, None) => (Type::TIMESTAMP, "TIMESTAMP".into()),
        DataType::Timestamp(_, Some(_)) => (Type::TIMESTAMPTZ, "TIMESTAMPTZ".into()),
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => (Type::JSONB, "JSONB".into()),
        _ => return None,
    })
}

/// One column, converted once per batch into a shape whose rows are cheap to read.
pub(crate) enum Column {
    Bool(ArrayRef),
    I16(ArrayRef),
    I32(ArrayRef),
    I64(ArrayRef),
    U64(ArrayRef),
    F32(ArrayRef),
    F64(ArrayRef),
    Numeric(ArrayRef, i8),
    Text(ArrayRef),
    Bytes(ArrayRef),
    Date(ArrayRef),
    Time(ArrayRef),
    Timestamp(ArrayRef),
    TimestampTz(ArrayRef),
    /// Nested values, pre-rendered as JSON text per row.
    Json(Vec<Option<serde_json::Value>>),
}

type Conv = std::result::Result<ArrayRef, arrow::error::ArrowError>;

impl Column {
    pub(crate) fn new(array: &ArrayRef) -> std::result::Result<Self, String> {
        let to = |t: DataType| -> Conv { cast(array, &t) };
        let c = match array.data_type() {
            DataType::Boolean => Column::Bool(array.clone()),
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => Column::I16(to(DataType::Int16).map_err(|e| e.to_string())?),
            DataType::Int32 | DataType::UInt16 => Column::I32(to(DataType::Int32).map_err(|e| e.to_string())?),
            DataType::Int64 | DataType::UInt32 => Column::I64(to(DataType::Int64).map_err(|e| e.to_string())?),
            DataType::UInt64 => Column::U64(array.clone()),
            DataType::Float16 | DataType::Float32 => Column::F32(to(DataType::Float32).map_err(|e| e.to_string())?),
            DataType::Float64 => Column::F64(array.clone()),
            DataType::Decimal128(_, s) => Column::Numeric(array.clone(), *s),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => Column::Text(to(DataType::Utf8).map_err(|e| e.to_string())?),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                Column::Bytes(to(DataType::Binary).map_err(|e| e.to_string())?)
            }
            DataType::Date32 | DataType::Date64 => Column::Date(to(DataType::Date32).map_err(|e| e.to_string())?),
            DataType::Time32(_) | DataType::Time64(_) => Column::Time(to(DataType::Time64(TimeUnit::Microsecond)).map_err(|e| e.to_string())?),
            DataType::Timestamp(_, None) => Column::Timestamp(to(DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(|e| e.to_string())?),
            DataType::Timestamp(_, Some(_)) => Column::TimestampTz(to(DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(|e| e.to_string())?),
            DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => Column::Json(json_values(array)?),
            other => return Err(format!("type {other} has no PostgreSQL mapping")),
        };
        Ok(c)
    }

    /// The value of `row`, or an error naming why it cannot be written.
    pub(crate) fn cell(&self, row: usize) -> std::result::Result<Cell<'_>, String> {
        let arr = match self {
            Column::Json(v) => return Ok(v[row].as_ref().map_or(Cell::Null, Cell::Json)),
            Column::Bool(a) | Column::I16(a) | Column::I32(a) | Column::I64(a) | Column::U64(a) | Column::F32(a) | Column::F64(a) => a,
            Column::Numeric(a, _) | Column::Text(a) | Column::Bytes(a) | Column::Date(a) | Column::Time(a) => a,
            Column::Timestamp(a) | Column::TimestampTz(a) => a,
        };
        if arr.is_null(row) {
            return Ok(Cell::Null);
        }
        Ok(match self {
            Column::Bool(a) => Cell::Bool(a.as_boolean().value(row)),
            Column::I16(a) => Cell::I16(a.as_primitive::<Int16Type>().value(row)),
            Column::I32(a) => Cell::I32(a.as_primitive::<Int32Type>().value(row)),
            Column::I64(a) => Cell::I64(a.as_primitive::<Int64Type>().value(row)),
            Column::U64(a) => {
                let v = a.as_primitive::<arrow::datatypes::UInt64Type>().value(row);
                Cell::I64(i64::try_from(v).map_err(|_| format!("{v} does not fit BIGINT"))?)
            }
            Column::F32(a) => Cell::F32(a.as_primitive::<Float32Type>().value(row)),
            Column::F64(a) => Cell::F64(a.as_primitive::<Float64Type>().value(row)),
            Column::Numeric(a, s) => Cell::Numeric(a.as_primitive::<Decimal128Type>().value(row), *s),
            Column::Text(a) => Cell::Text(a.as_string::<i32>().value(row)),
            Column::Bytes(a) => Cell::Bytes(a.as_binary::<i32>().value(row)),
            Column::Date(a) => {
                let days = a.as_primitive::<Date32Type>().value(row);
                Cell::Date(NaiveDate::from_num_days_from_ce_opt(days + 719_163).ok_or_else(|| format!("date {days} is out of range"))?)
            }
            Column::Time(a) => {
                let us = a.as_primitive::<Time64MicrosecondType>().value(row);
                let t = NaiveTime::from_num_seconds_from_midnight_opt((us / 1_000_000) as u32, ((us % 1_000_000) * 1000) as u32);
                Cell::Time(t.ok_or_else(|| format!("time {us}us is out of range"))?)
            }
            Column::Timestamp(a) | Column::TimestampTz(a) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                let t = DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(|| format!("timestamp {us}us is out of range"))?;
                if matches!(self, Column::TimestampTz(_)) { Cell::TimestampTz(t) } else { Cell::Timestamp(t.naive_utc()) }
            }
            Column::Json(_) => Cell::Null,
        })
    }
}

/// Nested values as JSON, through arrow's JSON writer (one object per row).
fn json_values(array: &ArrayRef) -> std::result::Result<Vec<Option<serde_json::Value>>, String> {
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new("v", array.data_type().clone(), true)]));
    let batch = RecordBatch::try_new(schema, vec![array.clone()]).map_err(|e| e.to_string())?;
    let mut w = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow::json::writer::LineDelimited>(Vec::new());
    w.write(&batch).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    let out = w.into_inner();
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            if array.is_null(i) {
                return Ok(None);
            }
            let mut v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            Ok(v.get_mut("v").map(serde_json::Value::take))
        })
        .collect()
}

/// One value for binary COPY.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// Unscaled value and scale.
    Numeric(i128, i8),
    Text(&'a str),
    Bytes(&'a [u8]),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(chrono::NaiveDateTime),
    TimestampTz(DateTime<Utc>),
    Json(&'a serde_json::Value),
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::I16(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::F32(v) => v.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Numeric(v, s) => {
                numeric(*v, *s, out);
                Ok(IsNull::No)
            }
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Time(v) => v.to_sql(ty, out),
            Cell::Timestamp(v) => v.to_sql(ty, out),
            Cell::TimestampTz(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
        }
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// PostgreSQL's binary NUMERIC: base-10000 digits with a weight, sign and display scale.
fn numeric(unscaled: i128, scale: i8, out: &mut BytesMut) {
    let negative = unscaled < 0;
    let mut magnitude = unscaled.unsigned_abs();
    let scale = scale.max(0) as u32;
    // Pad the fraction to a multiple of 4 digits so groups align on the decimal point.
    let pad = (4 - scale % 4) % 4;
    magnitude *= 10u128.pow(pad);
    let frac_groups = ((scale + pad) / 4) as i32;
    let mut groups = Vec::new();
    while magnitude > 0 {
        groups.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    let weight = groups.len() as i32 - 1 - frac_groups;
    groups.reverse();
    // Trailing zero groups carry nothing.
    while groups.last() == Some(&0) {
        groups.pop();
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(if groups.is_empty() { 0 } else { weight as i16 });
    out.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    out.put_u16(scale as u16);
    for g in groups {
        out.put_i16(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: i128, s: i8) -> Vec<i16> {
        let mut b = BytesMut::new();
        numeric(v, s, &mut b);
        b.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numeric_encoding_matches_postgres() {
        // 12345.678 -> digits [1, 2345, 6780], weight 1, dscale 3.
        assert_eq!(enc(12_345_678, 3), vec![3, 1, 0, 3, 1, 2345, 6780]);
        // -0.05 -> digits [500], weight -1, negative, dscale 2.
        assert_eq!(enc(-5, 2), vec![1, -1, 0x4000, 2, 500]);
        // 0 -> no digits.
        assert_eq!(enc(0, 2), vec![0, 0, 0, 2]);
        // 10000 -> digits [1], weight 1.
        assert_eq!(enc(10_000, 0), vec![1, 1, 0, 0, 1]);
    }
}
