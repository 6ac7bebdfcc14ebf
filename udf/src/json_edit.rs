//! Editing JSON objects held as text: `json_set`, `json_remove`, `json_keep`,
//! `json_rename`, `json_flatten`, `json_mask`.
//!
//! These are the SQL forms of Kafka Connect's `$Key` transforms on a JSON record
//! key (`key.format = 'json'`, where `_key` is the key's JSON text): InsertField and
//! Cast set fields, ReplaceField removes, keeps and renames them, Flatten and
//! MaskField do what they do to values. Each works on the top-level fields of a
//! JSON object; NULL stays NULL; text that is not a JSON object is an error for
//! that row. Fields keep their order, and values the edit does not touch are
//! copied as they were written (nested order and number spelling included).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue, cast::as_string_array, exec_err, plan_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use serde_json::{Map, Value};

use crate::FunctionDoc;

/// Which edit a [`JsonEditFunc`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonEdit {
    Set,
    Remove,
    Keep,
    Rename,
    Flatten,
    Mask,
}

impl JsonEdit {
    pub fn doc(self) -> FunctionDoc {
        let (name, syntax, description) = match self {
            JsonEdit::Set => (
                "json_set",
                "json_set(json_text, field, value)",
                "The JSON object with `field` set to `value` (text, number, boolean, timestamp as epoch ms, or NULL).",
            ),
            JsonEdit::Remove => (
                "json_remove",
                "json_remove(json_text, field [, field …])",
                "The JSON object without those fields.",
            ),
            JsonEdit::Keep => (
                "json_keep",
                "json_keep(json_text, field [, field …])",
                "The JSON object with only those fields.",
            ),
            JsonEdit::Rename => (
                "json_rename",
                "json_rename(json_text, old, new)",
                "The JSON object with field `old` renamed `new`.",
            ),
            JsonEdit::Flatten => (
                "json_flatten",
                "json_flatten(json_text [, delimiter])",
                "Nested objects' fields lifted to the top as parent<delimiter>child (default '.'), as Kafka Connect's Flatten.",
            ),
            JsonEdit::Mask => (
                "json_mask",
                "json_mask(json_text, field [, replacement])",
                "The field replaced by its JSON type's empty value ('' / 0 / false), or by `replacement` (a number for numeric fields), as Kafka Connect's MaskField.",
            ),
        };
        FunctionDoc {
            name,
            syntax,
            description,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonEditFunc {
    edit: JsonEdit,
    signature: Signature,
}

impl JsonEditFunc {
    pub fn new(edit: JsonEdit) -> Self {
        Self {
            edit,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// A constant, non-NULL text argument.
fn constant(args: &[ColumnarValue], i: usize, func: &str) -> Result<String> {
    let what = format!("argument {}", i + 1);
    match crate::connect::constant(args, i, func, &what)? {
        Some(v) => Ok(v),
        None => exec_err!("{func}: {what} must not be NULL"),
    }
}

/// A SQL value as JSON: text stays text, numbers and booleans stay themselves,
/// timestamps become epoch milliseconds (Kafka Connect's JSON for a Timestamp).
fn to_json(a: &ArrayRef, row: usize) -> Result<Value> {
    // A NullArray (a NULL literal) has no null buffer: ask for its type too.
    if a.data_type() == &DataType::Null || a.is_null(row) {
        return Ok(Value::Null);
    }
    let scalar = ScalarValue::try_from_array(a, row)?;
    Ok(match scalar {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Value::String(s)
        }
        ScalarValue::Float32(Some(f)) => serde_json::Number::from_f64(f as f64).map_or(Value::Null, Value::Number),
        ScalarValue::Float64(Some(f)) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        s if s.data_type().is_integer() => match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(i)) => Value::from(i),
            _ => Value::Null,
        },
        s @ ScalarValue::TimestampSecond(..)
        | s @ ScalarValue::TimestampMillisecond(..)
        | s @ ScalarValue::TimestampMicrosecond(..)
        | s @ ScalarValue::TimestampNanosecond(..) => {
            match s.cast_to(&DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None))? {
                ScalarValue::TimestampMillisecond(Some(ms), _) => Value::from(ms),
                _ => Value::Null,
            }
        }
        other => Value::String(other.to_string()),
    })
}

/// A JSON object's top-level fields in order, each value as its JSON text.
type Fields = Vec<(String, String)>;

/// Splits a JSON object into its fields. The text is validated by serde_json
/// first, so the scan below only ever sees well-formed JSON.
fn split_object(text: &str) -> std::result::Result<Fields, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => {}
        Ok(other) => return Err(format!("expected a JSON object, got {other}")),
        Err(e) => return Err(format!("value is not valid JSON ({e})")),
    }
    let b = text.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let string_end = |mut i: usize| {
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    };
    let value_end = |i: usize| match b.get(i) {
        Some(b'"') => string_end(i),
        Some(b'{' | b'[') => {
            let (mut depth, mut j) = (0usize, i);
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        }
    };
    let mut fields = Vec::new();
    let mut i = ws(ws(0) + 1);
    while i < b.len() && b[i] == b'"' {
        let key_end = string_end(i);
        let key: String = serde_json::from_str(&text[i..key_end]).map_err(|e| e.to_string())?;
        let start = ws(ws(key_end) + 1);
        let end = value_end(start);
        fields.push((key, text[start..end].to_string()));
        i = ws(end);
        if b.get(i) == Some(&b',') {
            i = ws(i + 1);
        }
    }
    Ok(fields)
}

fn join_object(fields: &Fields) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn flatten_into(prefix: &str, delimiter: &str, fields: Fields, out: &mut Fields) -> std::result::Result<(), String> {
    for (k, raw) in fields {
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}{delimiter}{k}")
        };
        if raw.starts_with('{') {
            flatten_into(&name, delimiter, split_object(&raw)?, out)?;
        } else {
            out.push((name, raw));
        }
    }
    Ok(())
}

/// Kafka Connect MaskField on one JSON value.
fn mask(func: &str, field: &str, v: &Value, replacement: Option<&str>) -> Result<Value> {
    Ok(match (v, replacement) {
        (Value::Null, _) => Value::Null,
        (Value::String(_), None) => Value::String(String::new()),
        (Value::Number(_), None) => Value::from(0),
        (Value::Bool(_), None) => Value::Bool(false),
        (Value::Array(_), None) => Value::Array(Vec::new()),
        (Value::Object(_), None) => Value::Object(Map::new()),
        (Value::String(_), Some(r)) => Value::String(r.to_string()),
        (Value::Number(n), Some(r)) => match (n.is_f64(), r.parse::<i64>(), r.parse::<f64>()) {
            (false, Ok(i), _) => Value::from(i),
            (_, _, Ok(f)) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            _ => return exec_err!("{func}: replacement '{r}' is not a number, and field '{field}' is"),
        },
        (other, Some(_)) => {
            return exec_err!("{func}: field '{field}' is {other}; a replacement applies to strings and numbers");
        }
    })
}

impl ScalarUDFImpl for JsonEditFunc {
    fn name(&self) -> &str {
        self.edit.doc().name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let doc = self.edit.doc();
        let (min, max) = match self.edit {
            JsonEdit::Set | JsonEdit::Rename => (3, 3),
            JsonEdit::Remove | JsonEdit::Keep => (2, usize::MAX),
            JsonEdit::Flatten => (1, 2),
            JsonEdit::Mask => (2, 3),
        };
        if arg_types.len() < min || arg_types.len() > max {
            return plan_err!("{}: expected {}", doc.name, doc.syntax);
        }
        if !matches!(
            arg_types[0],
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
        ) {
            return plan_err!(
                "{}: the first argument must be JSON text, not {}",
                doc.name,
                arg_types[0]
            );
        }
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name().to_string();
        let rows = args.number_rows;
        let text = cast(&args.args[0].clone().into_array(rows)?, &DataType::Utf8)?;
        let text = as_string_array(&text)?;
        let names: Vec<String> = match self.edit {
            JsonEdit::Set | JsonEdit::Mask => vec![constant(&args.args, 1, &name)?],
            JsonEdit::Rename => vec![constant(&args.args, 1, &name)?, constant(&args.args, 2, &name)?],
            JsonEdit::Remove | JsonEdit::Keep => (1..args.args.len())
                .map(|i| constant(&args.args, i, &name))
                .collect::<Result<_>>()?,
            JsonEdit::Flatten => vec![if args.args.len() > 1 {
                constant(&args.args, 1, &name)?
            } else {
                ".".to_string()
            }],
        };
        let value = match self.edit {
            JsonEdit::Set => Some(args.args[2].clone().into_array(rows)?),
            _ => None,
        };
        let replacement = match (self.edit, args.args.get(2)) {
            (JsonEdit::Mask, Some(_)) => Some(constant(&args.args, 2, &name)?),
            _ => None,
        };
        let mut b = StringBuilder::with_capacity(rows, rows * 16);
        for row in 0..rows {
            if text.is_null(row) {
                b.append_null();
                continue;
            }
            let mut fields = match split_object(text.value(row)) {
                Ok(f) => f,
                Err(e) => return exec_err!("{name}: {e}"),
            };
            let position = |fields: &Fields, key: &str| fields.iter().position(|(k, _)| k == key);
            match self.edit {
                JsonEdit::Set => {
                    let Some(value) = &value else {
                        return exec_err!("{name}: missing the value");
                    };
                    let raw = to_json(value, row)?.to_string();
                    match position(&fields, &names[0]) {
                        Some(i) => fields[i].1 = raw,
                        None => fields.push((names[0].clone(), raw)),
                    }
                }
                JsonEdit::Remove => fields.retain(|(k, _)| !names.contains(k)),
                JsonEdit::Keep => fields.retain(|(k, _)| names.contains(k)),
                JsonEdit::Rename => {
                    if let Some(i) = position(&fields, &names[0]) {
                        fields[i].0 = names[1].clone();
                        // The renamed field replaces one that already had the new name.
                        let dup: Vec<usize> = fields
                            .iter()
                            .enumerate()
                            .filter(|(j, (k, _))| *j != i && k == &names[1])
                            .map(|(j, _)| j)
                            .collect();
                        for j in dup.into_iter().rev() {
                            fields.remove(j);
                        }
                    }
                }
                JsonEdit::Flatten => {
                    let mut flat = Vec::with_capacity(fields.len());
                    if let Err(e) = flatten_into("", &names[0], fields, &mut flat) {
                        return exec_err!("{name}: {e}");
                    }
                    fields = flat;
                }
                JsonEdit::Mask => {
                    if let Some(i) = position(&fields, &names[0]) {
                        let current: Value = serde_json::from_str(&fields[i].1).unwrap_or(Value::Null);
                        fields[i].1 = mask(&name, &names[0], &current, replacement.as_deref())?.to_string();
                    }
                }
            }
            b.append_value(join_object(&fields));
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_split_in_order_with_raw_values() {
        let f = split_object(r#" { "b" : "x\\" , "a":{"n":[1,{"k":"]"}]}, "c":-2.5e1,"d":null,"e":true } "#).unwrap();
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d", "e"]);
        assert_eq!(f[0].1, r#""x\\""#);
        assert_eq!(f[1].1, r#"{"n":[1,{"k":"]"}]}"#);
        assert_eq!(f[2].1, "-2.5e1");
        assert_eq!(
            join_object(&f),
            r#"{"b":"x\\","a":{"n":[1,{"k":"]"}]},"c":-2.5e1,"d":null,"e":true}"#
        );
        assert!(split_object("[1]").unwrap_err().contains("expected a JSON object"));
        assert!(split_object("{\"a\":").unwrap_err().contains("not valid JSON"));
        assert_eq!(split_object("{}").unwrap(), Vec::<(String, String)>::new());
    }
}
