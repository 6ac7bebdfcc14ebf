//! Arrow → MySQL/MariaDB: column types for `CREATE TABLE` / `ALTER TABLE`, and
//! values as SQL literals for multi-row statements.
//!
//! | Arrow | MySQL / MariaDB |
//! |---|---|
//! | Boolean | BOOLEAN (TINYINT(1)) |
//! | Int8, Int16, UInt8 | SMALLINT |
//! | Int32, UInt16 | INT |
//! | Int64, UInt32, UInt64 (values above 2^63-1 are row errors) | BIGINT |
//! | Float16, Float32 | FLOAT |
//! | Float64 | DOUBLE (NaN and infinities are row errors) |
//! | Decimal128(p, s) | DECIMAL(p, s) |
//! | Utf8, LargeUtf8, Utf8View, Dictionary of strings | TEXT; VARCHAR(255) in a primary key |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | BLOB; VARBINARY(255) in a primary key |
//! | Date32, Date64 | DATE |
//! | Time32, Time64 | TIME(6) |
//! | Timestamp, with or without zone | DATETIME(6) (UTC) |
//! | Struct, List, LargeList, Map | JSON |
//!
//! Literals: strings are quoted with `'` doubled (sessions run with
//! `NO_BACKSLASH_ESCAPES`, so nothing else is special), bytes are `X'…'` hex.

use std::fmt::Write;

use arrow::datatypes::DataType;

use crate::jdbc::values::Cell;

/// The DDL type for an Arrow type; `key` columns get indexable types.
pub(crate) fn mysql_type(dt: &DataType, key: bool) -> Option<String> {
    Some(match dt {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => if key { "VARCHAR(255)" } else { "TEXT" }.into(),
        DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8) => {
            if key { "VARCHAR(255)" } else { "TEXT" }.into()
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            if key { "VARBINARY(255)" } else { "BLOB" }.into()
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME(6)".into(),
        DataType::Timestamp(..) => "DATETIME(6)".into(),
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => "JSON".into(),
        _ => return None,
    })
}

/// `` `ident` `` with embedded backticks doubled: no table or column name can inject SQL.
pub(crate) fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// A string literal (sessions use NO_BACKSLASH_ESCAPES: only `'` is special).
pub(crate) fn push_str_literal(out: &mut String, s: &str) {
    out.push('\'');
    for (i, part) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// Appends a value as a SQL literal, or says why it cannot be written.
pub(crate) fn push_literal(out: &mut String, cell: &Cell<'_>) -> std::result::Result<(), String> {
    match cell {
        Cell::Null => out.push_str("NULL"),
        Cell::Bool(v) => out.push_str(if *v { "TRUE" } else { "FALSE" }),
        Cell::I16(v) => write!(out, "{v}").unwrap_or_default(),
        Cell::I32(v) => write!(out, "{v}").unwrap_or_default(),
        Cell::I64(v) => write!(out, "{v}").unwrap_or_default(),
        Cell::F32(v) if v.is_finite() => write!(out, "{v:e}").unwrap_or_default(),
        Cell::F64(v) if v.is_finite() => write!(out, "{v:e}").unwrap_or_default(),
        Cell::F32(v) => return Err(format!("{v} cannot be stored: MySQL has no NaN or infinity")),
        Cell::F64(v) => return Err(format!("{v} cannot be stored: MySQL has no NaN or infinity")),
        Cell::Numeric(v, s) => push_decimal(out, *v, *s),
        Cell::Text(v) => push_str_literal(out, v),
        Cell::Bytes(v) => {
            if v.is_empty() {
                out.push_str("''");
            } else {
                out.push_str("X'");
                for b in *v {
                    write!(out, "{b:02X}").unwrap_or_default();
                }
                out.push('\'');
            }
        }
        Cell::Date(d) => write!(out, "'{}'", d.format("%Y-%m-%d")).unwrap_or_default(),
        Cell::Time(t) => write!(out, "'{}'", t.format("%H:%M:%S%.6f")).unwrap_or_default(),
        Cell::Timestamp(t) => write!(out, "'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")).unwrap_or_default(),
        Cell::TimestampTz(t) => write!(out, "'{}'", t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f")).unwrap_or_default(),
        Cell::Json(v) => push_str_literal(out, &v.to_string()),
    }
    Ok(())
}

/// Appends a value as a `LOAD DATA` field (escape character `\\`): `\\N` for
/// NULL; backslash, tab, newline, carriage return and NUL escaped; everything else
/// as its text, bytes raw. Says why a value cannot be written (NaN, infinity).
pub(crate) fn push_field(out: &mut Vec<u8>, cell: &Cell<'_>) -> std::result::Result<(), String> {
    fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0 => out.extend_from_slice(b"\\0"),
                _ => out.push(b),
            }
        }
    }
    match cell {
        Cell::Null => out.extend_from_slice(b"\\N"),
        Cell::Bool(v) => out.push(if *v { b'1' } else { b'0' }),
        Cell::Text(v) => escaped(out, v.as_bytes()),
        Cell::Bytes(v) => escaped(out, v),
        Cell::Json(v) => escaped(out, v.to_string().as_bytes()),
        other => {
            // Numbers, decimals, dates and times: the literal without its quotes.
            let mut text = String::new();
            push_literal(&mut text, other)?;
            out.extend_from_slice(text.trim_matches('\'').as_bytes());
        }
    }
    Ok(())
}

/// An unscaled decimal with its scale, as text (`-12.345`).
fn push_decimal(out: &mut String, unscaled: i128, scale: i8) {
    if scale <= 0 {
        write!(out, "{unscaled}{}", "0".repeat(scale.unsigned_abs() as usize)).unwrap_or_default();
        return;
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int, frac) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("", digits.as_str())
    };
    if unscaled < 0 {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    out.push('.');
    out.push_str(&"0".repeat(scale - frac.len()));
    out.push_str(frac);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(c: Cell<'_>) -> String {
        let mut s = String::new();
        push_literal(&mut s, &c).unwrap();
        s
    }

    #[test]
    fn literals_cannot_break_out_of_their_quotes() {
        assert_eq!(
            lit(Cell::Text("it's \\' ; DROP TABLE t; --")),
            "'it''s \\'' ; DROP TABLE t; --'"
        );
        assert_eq!(lit(Cell::Bytes(&[0, 0x27, 0xff])), "X'0027FF'");
        assert_eq!(quote("a`b"), "`a``b`");
    }

    #[test]
    fn load_data_fields_escape_their_separators() {
        let field = |c: Cell<'_>| {
            let mut out = Vec::new();
            push_field(&mut out, &c).unwrap();
            String::from_utf8_lossy(&out).into_owned()
        };
        assert_eq!(field(Cell::Text("a\tb\nc\\d'e")), "a\\tb\\nc\\\\d'e");
        assert_eq!(field(Cell::Null), "\\N");
        assert_eq!(field(Cell::Text("\\N")), "\\\\N", "the text \\N is not NULL");
        assert_eq!(field(Cell::Numeric(-5, 2)), "-0.05");
        assert_eq!(
            field(Cell::Date(chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap())),
            "2026-11-22"
        );
        assert!(push_field(&mut Vec::new(), &Cell::F64(f64::INFINITY)).is_err());
    }

    #[test]
    fn decimals_and_floats_render_exactly() {
        assert_eq!(lit(Cell::Numeric(-12345, 3)), "-12.345");
        assert_eq!(lit(Cell::Numeric(5, 2)), "0.05");
        assert_eq!(lit(Cell::Numeric(-5, 2)), "-0.05");
        assert_eq!(lit(Cell::Numeric(7, -2)), "700");
        assert_eq!(lit(Cell::F64(0.1)), "1e-1");
        assert_eq!(
            "1.7976931348623157e308".parse::<f64>().unwrap(),
            lit(Cell::F64(f64::MAX)).parse::<f64>().unwrap()
        );
        assert!(push_literal(&mut String::new(), &Cell::F64(f64::NAN)).is_err());
    }
}
