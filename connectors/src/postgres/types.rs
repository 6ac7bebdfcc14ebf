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

use arrow::datatypes::DataType;
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::jdbc::values::Cell;

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
        DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8) => {
            (Type::TEXT, "TEXT".into())
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            (Type::BYTEA, "BYTEA".into())
        }
        DataType::Date32 | DataType::Date64 => (Type::DATE, "DATE".into()),
        DataType::Time32(_) | DataType::Time64(_) => (Type::TIME, "TIME".into()),
        DataType::Timestamp(_, None) => (Type::TIMESTAMP, "TIMESTAMP".into()),
        DataType::Timestamp(_, Some(_)) => (Type::TIMESTAMPTZ, "TIMESTAMPTZ".into()),
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => {
            (Type::JSONB, "JSONB".into())
        }
        _ => return None,
    })
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
