//! Editing JSON objects held as text: `json_set`, `json_remove`, `json_keep`,
//! `json_rename`, `json_flatten`, `json_mask`.
//!
//! These are the SQL forms of Kafka Connect's `$Key` transforms on a JSON record
//! key (`key.format = 'json'`, where `_key` is the key's JSON text): InsertField and
//! Cast set fields, ReplaceField removes, keeps and renames them, Flatten and
//! MaskField do what they do to values. Each works on the top-level fields of a
//! JSON object; NULL stays NULL; text that is not a JSON object is an error for
//! that row. Objects are written back with their keys in sorted order.

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
            JsonEdit::Set => ("json_set", "json_set(json_text, field, value)", "The JSON object with `field` set to `value` (text, number, boolean, timestamp as epoch ms, or NULL)."),
            JsonEdit::Remove => ("json_remove", "json_remove(json_text, field [, field …])", "The JSON object without those fields."),
            JsonEdit::Keep => ("json_keep", "json_keep(json_text, field [, field …])", "The JSON object with only those fields."),
            JsonEdit::Rename => ("json_rename", "json_rename(json_text, old, new)", "The JSON object with field `old` renamed `new`."),
            JsonEdit::Flatten => ("json_flatten", "json_flatten(json_text [, delimiter])", "Nested objects' fields lifted to the top as parent<delimiter>child (default '.'), as Kafka Connect's Flatten."),
            JsonEdit::Mask => (
                "json_mask",
                "json_mask(json_text, field [, replacement])",
                "The field replaced by its JSON type's empty value ('' / 0 / false), or by `replacement` (a number for numeric fields), as Kafka Connect's MaskField.",
            ),
        };
        FunctionDoc { name, syntax, description }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonEditFunc {
    edit: JsonEdit,
    signature: Signature,
}

impl JsonEditFunc {
    pub fn new(edit: JsonEdit) -> Self {
        Self { edit, signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

/// A constant text argument.
fn constant(args: &[ColumnarValue], i: usize, func: &str) -> Result<String> {
    match args.get(i) {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)))) => Ok(v.clone()),
        Some(_) => exec_err!("{func}: argument {} must be constant text", i + 1),
        None => exec_err!("{func}: missing argument {}", i + 1),
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
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Value::String(s),
        ScalarValue::Float32(Some(f)) => serde_json::Number::from_f64(f as f64).map_or(Value::Null, Value::Number),
        ScalarValue::Float64(Some(f)) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        s if s.data_type().is_integer() => match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(i)) => Value::from(i),
            _ => Value::Null,
        },
        s @ ScalarValue::TimestampSecond(..) | s @ ScalarValue::TimestampMillisecond(..) | s @ ScalarValue::TimestampMicrosecond(..) | s @ ScalarValue::TimestampNanosecond(..) => {
            match s.cast_to(&DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None))? {
                ScalarValue::TimestampMillisecond(Some(ms), _) => Value::from(ms),
                _ => Value::Null,
            }
        }
        other => Value::String(other.to_string()),
    })
}

fn flatten_into(prefix: &str, delimiter: &str, v: Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let name = if prefix.is_empty() { k } else { format!("{prefix}{delimiter}{k}") };
                flatten_into(&name, delimiter, child, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other);
        }
    }
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
        (other, Some(_)) => return exec_err!("{func}: field '{field}' is {other}; a replacement applies to strings and numbers"),
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
        if !matches!(arg_types[0], DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) {
            return plan_err!("{}: the first argument must be JSON text, not {}", doc.name, arg_types[0]);
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
            JsonEdit::Remove | JsonEdit::Keep => (1..args.args.len()).map(|i| constant(&args.args, i, &name)).collect::<Result<_>>()?,
            JsonEdit::Flatten => vec![if args.args.len() > 1 { constant(&args.args, 1, &name)? } else { ".".to_string() }],
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
            let mut obj = match serde_json::from_str::<Value>(text.value(row)) {
                Ok(Value::Object(m)) => m,
                Ok(other) => return exec_err!("{name}: expected a JSON object, got {other}"),
                Err(e) => return exec_err!("{name}: value is not valid JSON ({e})"),
            };
            match self.edit {
                JsonEdit::Set => {
                    obj.insert(names[0].clone(), to_json(value.as_ref().expect("json_set has a value"), row)?);
                }
                JsonEdit::Remove => obj.retain(|k, _| !names.contains(k)),
                JsonEdit::Keep => obj.retain(|k, _| names.contains(k)),
                JsonEdit::Rename => {
                    if let Some(v) = obj.remove(&names[0]) {
                        obj.insert(names[1].clone(), v);
                    }
                }
                JsonEdit::Flatten => {
                    let mut flat = Map::new();
                    flatten_into("", &names[0], Value::Object(obj), &mut flat);
                    obj = flat;
                }
                JsonEdit::Mask => {
                    if let Some(v) = obj.get(&names[0]) {
                        let masked = mask(&name, &names[0], v, replacement.as_deref())?;
                        obj.insert(names[0].clone(), masked);
                    }
                }
            }
            b.append_value(Value::Object(obj).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish()) as ArrayRef))
    }
}
