//! Arrow columns as per-row values for the relational sinks: each column is
//! converted once per batch into a shape whose rows are cheap to read, and each
//! row's value is a borrowed [`Cell`] that PostgreSQL's binary COPY and MySQL's
//! SQL literals both write from.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

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
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
                Column::I16(to(DataType::Int16).map_err(|e| e.to_string())?)
            }
            DataType::Int32 | DataType::UInt16 => Column::I32(to(DataType::Int32).map_err(|e| e.to_string())?),
            DataType::Int64 | DataType::UInt32 => Column::I64(to(DataType::Int64).map_err(|e| e.to_string())?),
            DataType::UInt64 => Column::U64(array.clone()),
            DataType::Float16 | DataType::Float32 => Column::F32(to(DataType::Float32).map_err(|e| e.to_string())?),
            DataType::Float64 => Column::F64(array.clone()),
            DataType::Decimal128(_, s) => Column::Numeric(array.clone(), *s),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
                Column::Text(to(DataType::Utf8).map_err(|e| e.to_string())?)
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                Column::Bytes(to(DataType::Binary).map_err(|e| e.to_string())?)
            }
            DataType::Date32 | DataType::Date64 => Column::Date(to(DataType::Date32).map_err(|e| e.to_string())?),
            DataType::Time32(_) | DataType::Time64(_) => {
                Column::Time(to(DataType::Time64(TimeUnit::Microsecond)).map_err(|e| e.to_string())?)
            }
            DataType::Timestamp(_, None) => {
                Column::Timestamp(to(DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(|e| e.to_string())?)
            }
            DataType::Timestamp(_, Some(_)) => {
                Column::TimestampTz(to(DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(|e| e.to_string())?)
            }
            DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => {
                Column::Json(json_values(array)?)
            }
            other => return Err(format!("type {other} has no database column mapping")),
        };
        Ok(c)
    }

    /// The value of `row`, or an error naming why it cannot be written.
    pub(crate) fn cell(&self, row: usize) -> std::result::Result<Cell<'_>, String> {
        let arr = match self {
            Column::Json(v) => return Ok(v[row].as_ref().map_or(Cell::Null, Cell::Json)),
            Column::Bool(a)
            | Column::I16(a)
            | Column::I32(a)
            | Column::I64(a)
            | Column::U64(a)
            | Column::F32(a)
            | Column::F64(a) => a,
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
                Cell::Date(
                    NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                        .ok_or_else(|| format!("date {days} is out of range"))?,
                )
            }
            Column::Time(a) => {
                let us = a.as_primitive::<Time64MicrosecondType>().value(row);
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    (us / 1_000_000) as u32,
                    ((us % 1_000_000) * 1000) as u32,
                );
                Cell::Time(t.ok_or_else(|| format!("time {us}us is out of range"))?)
            }
            Column::Timestamp(a) | Column::TimestampTz(a) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                let t = DateTime::<Utc>::from_timestamp_micros(us)
                    .ok_or_else(|| format!("timestamp {us}us is out of range"))?;
                if matches!(self, Column::TimestampTz(_)) {
                    Cell::TimestampTz(t)
                } else {
                    Cell::Timestamp(t.naive_utc())
                }
            }
            Column::Json(_) => Cell::Null,
        })
    }
}

/// Nested values as JSON, through arrow's JSON writer (one object per row).
fn json_values(array: &ArrayRef) -> std::result::Result<Vec<Option<serde_json::Value>>, String> {
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "v",
        array.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![array.clone()]).map_err(|e| e.to_string())?;
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
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
