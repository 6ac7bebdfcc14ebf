//! `json_get_str|int|float|bool(json_text, path)`: read one value out of JSON text.
//!
//! `path` is a constant in JSONPath's dotted subset: `$.a.b[0].c`, or the same
//! without the leading `$.` (`a.b[0].c`). A missing key, an out-of-range index or a
//! value of another JSON type gives NULL (`json_get_int` reads integral numbers
//! only; `json_get_float` reads any number; `json_get_str` reads strings, and
//! gives other scalars and nested values as their JSON text). Text that is not
//! valid JSON is an error for that row, so it reaches the dead-letter queue
//! instead of silently becoming NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue, cast::as_string_array, exec_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use serde_json::Value;

use crate::FunctionDoc;

/// Which JSON type a `json_get_*` function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonKind {
    Str,
    Int,
    Float,
    Bool,
}

impl JsonKind {
    fn name(self) -> &'static str {
        match self {
            JsonKind::Str => "json_get_str",
            JsonKind::Int => "json_get_int",
            JsonKind::Float => "json_get_float",
            JsonKind::Bool => "json_get_bool",
        }
    }
    fn data_type(self) -> DataType {
        match self {
            JsonKind::Str => DataType::Utf8,
            JsonKind::Int => DataType::Int64,
            JsonKind::Float => DataType::Float64,
            JsonKind::Bool => DataType::Boolean,
        }
    }
    pub fn doc(self) -> FunctionDoc {
        let (syntax, description) = match self {
            JsonKind::Str => (
                "json_get_str(json_text, path)",
                "The string at `path` ('$.a.b[0]') in JSON text; other values as their JSON text; NULL when missing. Invalid JSON is a row error.",
            ),
            JsonKind::Int => (
                "json_get_int(json_text, path)",
                "The integer at `path` as BIGINT; NULL when missing or not an integer. Invalid JSON is a row error.",
            ),
            JsonKind::Float => (
                "json_get_float(json_text, path)",
                "The number at `path` as DOUBLE; NULL when missing or not a number. Invalid JSON is a row error.",
            ),
            JsonKind::Bool => (
                "json_get_bool(json_text, path)",
                "The boolean at `path`; NULL when missing or not a boolean. Invalid JSON is a row error.",
            ),
        };
        FunctionDoc {
            name: self.name(),
            syntax,
            description,
        }
    }
}

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `$.a.b[0]` / `a.b[0]` / `$['a b']` into steps.
fn parse_path(path: &str) -> std::result::Result<Vec<Step>, String> {
    let mut rest = path.trim();
    rest = rest.strip_prefix('$').unwrap_or(rest);
    let mut steps = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let bytes = rest;
    let mut key = String::new();
    let flush = |key: &mut String, steps: &mut Vec<Step>| {
        if !key.is_empty() {
            steps.push(Step::Key(std::mem::take(key)));
        }
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => flush(&mut key, &mut steps),
            '[' => {
                flush(&mut key, &mut steps);
                let end = bytes[i..]
                    .find(']')
                    .ok_or_else(|| format!("unclosed '[' at position {i}"))?
                    + i;
                let inner = bytes[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(Step::Key(q.to_string()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(Step::Key(q.to_string()));
                } else {
                    let n = inner
                        .parse::<usize>()
                        .map_err(|_| format!("`[{inner}]` is not an array index"))?;
                    steps.push(Step::Index(n));
                }
                while let Some((j, _)) = chars.peek() {
                    if *j <= end {
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
            c => key.push(c),
        }
    }
    flush(&mut key, &mut steps);
    Ok(steps)
}

fn walk<'a>(mut v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for s in steps {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonGetFunc {
    kind: JsonKind,
    signature: Signature,
}

impl JsonGetFunc {
    pub fn new(kind: JsonKind) -> Self {
        Self {
            kind,
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonGetFunc {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.data_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.kind.name();
        let path = match &args.args[1] {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)) | ScalarValue::LargeUtf8(Some(p)) => {
                    p.clone()
                }
                _ => return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&self.kind.data_type())?)),
            },
            ColumnarValue::Array(_) => return exec_err!("{name}: the path must be a constant"),
        };
        let steps = match parse_path(&path) {
            Ok(s) => s,
            Err(e) => return exec_err!("{name}: invalid path '{path}': {e}"),
        };
        let text = args.args[0].clone().into_array(args.number_rows)?;
        let text = cast(&text, &DataType::Utf8)?;
        let text = as_string_array(&text)?;
        let n = text.len();
        macro_rules! build {
            ($builder:expr, $extract:expr) => {{
                let mut b = $builder;
                for t in text.iter() {
                    let Some(t) = t else {
                        b.append_null();
                        continue;
                    };
                    let doc: Value = match serde_json::from_str(t) {
                        Ok(v) => v,
                        Err(e) => return exec_err!("{name}: value is not valid JSON ({e})"),
                    };
                    b.append_option(walk(&doc, &steps).and_then($extract));
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        let out = match self.kind {
            JsonKind::Str => build!(StringBuilder::with_capacity(n, n * 8), |v: &Value| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }),
            JsonKind::Int => build!(Int64Builder::with_capacity(n), |v: &Value| v.as_i64()),
            JsonKind::Float => build!(Float64Builder::with_capacity(n), |v: &Value| v.as_f64()),
            JsonKind::Bool => build!(BooleanBuilder::with_capacity(n), |v: &Value| v.as_bool()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("$.a.b[2].c").unwrap(),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Key("c".into())
            ]
        );
        assert_eq!(
            parse_path("a['x y']").unwrap(),
            vec![Step::Key("a".into()), Step::Key("x y".into())]
        );
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("a[1").is_err());
    }
}
