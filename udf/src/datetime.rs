//! `format_timestamp(ts, pattern)` and `parse_timestamp(text, pattern)`, with Java
//! `SimpleDateFormat` patterns (see [`crate::simple_date_format`]).
//!
//! Timestamps without a zone are treated as UTC, as Kafka Connect's
//! `TimestampConverter` does. `parse_timestamp` returns `TIMESTAMP` (microseconds,
//! no zone); text that does not match the pattern is an error for that row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::format::{Parsed, StrftimeItems, parse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use datafusion_common::{
    Result, ScalarValue,
    cast::{as_string_array, as_timestamp_microsecond_array},
    exec_err,
};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use crate::FunctionDoc;
use crate::simple_date_format::to_chrono;

pub const FORMAT_DOC: FunctionDoc = FunctionDoc {
    name: "format_timestamp",
    syntax: "format_timestamp(ts, 'yyyy-MM-dd HH:mm:ss')",
    description: "Formats a timestamp or date as text with a Java SimpleDateFormat pattern (UTC).",
};
pub const PARSE_DOC: FunctionDoc = FunctionDoc {
    name: "parse_timestamp",
    syntax: "parse_timestamp(text, 'yyyy-MM-dd HH:mm:ss')",
    description: "Parses text with a Java SimpleDateFormat pattern into a TIMESTAMP (UTC); text that does not match is a row error.",
};

fn constant_pattern(name: &str, arg: &ColumnarValue) -> Result<Option<String>> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(p) | ScalarValue::Utf8View(p) | ScalarValue::LargeUtf8(p)) => match p {
            None => Ok(None),
            Some(p) => match to_chrono(p) {
                Ok(f) => Ok(Some(f)),
                Err(e) => exec_err!("{name}: {e}"),
            },
        },
        ColumnarValue::Scalar(other) => exec_err!("{name}: the pattern must be text, got {}", other.data_type()),
        ColumnarValue::Array(_) => exec_err!("{name}: the pattern must be a constant"),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FormatTimestampFunc {
    signature: Signature,
}

impl FormatTimestampFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}
impl Default for FormatTimestampFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for FormatTimestampFunc {
    fn name(&self) -> &str {
        "format_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 | DataType::Null => Ok(DataType::Utf8),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Ok(DataType::Utf8),
            other => datafusion_common::plan_err!("format_timestamp: expected a timestamp or date, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(fmt) = constant_pattern("format_timestamp", &args.args[1])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let items: Vec<_> = StrftimeItems::new(&fmt).collect();
        let ts = args.args[0].clone().into_array(args.number_rows)?;
        let ts = cast(&ts, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let ts = as_timestamp_microsecond_array(&ts)?;
        let mut out = StringBuilder::with_capacity(ts.len(), ts.len() * fmt.len());
        for v in ts.iter() {
            match v.and_then(DateTime::from_timestamp_micros) {
                Some(dt) => out.append_value(dt.naive_utc().format_with_items(items.iter()).to_string()),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParseTimestampFunc {
    signature: Signature,
}

impl ParseTimestampFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}
impl Default for ParseTimestampFunc {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses with a chrono format, accepting patterns with only a date, only a time,
/// or an offset (converted to UTC).
fn parse_one(text: &str, items: &[chrono::format::Item<'_>]) -> std::result::Result<i64, String> {
    let mut parsed = Parsed::new();
    parse(&mut parsed, text, items.iter()).map_err(|e| e.to_string())?;
    if parsed.offset.is_some()
        && let Ok(dt) = parsed.to_datetime()
    {
        return Ok(dt.timestamp_micros());
    }
    let date = parsed.to_naive_date().or_else(|_| {
        if parsed.year.is_none() && parsed.month.is_none() && parsed.day.is_none() {
            Ok(NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch is a valid date"))
        } else {
            Err("the pattern does not give a full date")
        }
    });
    let date = date.map_err(|e| e.to_string())?;
    let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
    let dt = NaiveDateTime::new(date, time);
    let micros = dt.and_utc().timestamp_micros();
    if let Some(off) = parsed.offset {
        return Ok(micros - i64::from(off) * 1_000_000);
    }
    Ok(micros)
}

impl ScalarUDFImpl for ParseTimestampFunc {
    fn name(&self) -> &str {
        "parse_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(fmt) = constant_pattern("parse_timestamp", &args.args[1])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(None, None)));
        };
        let items: Vec<_> = StrftimeItems::new(&fmt).collect();
        let text = args.args[0].clone().into_array(args.number_rows)?;
        let text = cast(&text, &DataType::Utf8)?;
        let text = as_string_array(&text)?;
        let mut out = TimestampMicrosecondBuilder::with_capacity(text.len());
        for v in text.iter() {
            match v {
                None => out.append_null(),
                Some(t) => match parse_one(t, &items) {
                    Ok(v) => out.append_value(v),
                    Err(e) => return exec_err!("parse_timestamp: '{t}' does not match the pattern: {e}"),
                },
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_offsets() {
        let items: Vec<_> = StrftimeItems::new("%Y-%m-%d %H:%M:%S").collect();
        assert_eq!(parse_one("1970-01-01 00:00:01", &items).unwrap(), 1_000_000);
        let items: Vec<_> = StrftimeItems::new("%Y-%m-%d").collect();
        assert_eq!(parse_one("1970-01-02", &items).unwrap(), 86_400_000_000);
        let items: Vec<_> = StrftimeItems::new("%Y-%m-%dT%H:%M:%S%z").collect();
        assert_eq!(parse_one("1970-01-01T01:00:00+0100", &items).unwrap(), 0);
        assert!(parse_one("nope", &items).is_err());
    }
}

pub const NOW_DOC: FunctionDoc = FunctionDoc {
    name: "now",
    syntax: "now()",
    description: "The current time (UTC), read when each batch is processed, not once when the pipeline is planned.",
};

/// `now()` for a streaming engine: DataFusion's own `now()` is folded into a constant
/// when a query is planned, which for a pipeline that runs for days is wrong.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NowFunc {
    signature: Signature,
}

impl NowFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}
impl Default for NowFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for NowFunc {
    fn name(&self) -> &str {
        "now"
    }
    fn aliases(&self) -> &[String] {
        static ALIASES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["current_timestamp".to_string()]);
        &ALIASES
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())))
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let nanos = chrono::Utc::now().timestamp_nanos_opt();
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
            nanos,
            Some("+00:00".into()),
        )))
    }
}
