//! `mask(value [, replacement])`: the SQL form of Kafka Connect's `MaskField` SMT.
//!
//! With one argument the value is replaced by its type's "empty" value, exactly as
//! `MaskField` does without `replacement`: `''` for strings, `0` for numbers,
//! `false` for booleans, the epoch for dates and timestamps. With a replacement the
//! value is replaced by it (cast to the value's type: `mask(amount, '-1')` gives
//! `-1`). NULL stays NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, new_null_array};
use arrow::compute::{cast, is_null, kernels::zip::zip};
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use crate::FunctionDoc;

pub const DOC: FunctionDoc = FunctionDoc {
    name: "mask",
    syntax: "mask(value [, replacement])",
    description: "Replaces a non-NULL value with its type's empty value ('' / 0 / false / epoch), or with `replacement` cast to the value's type (Kafka Connect MaskField).",
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskFunc {
    signature: Signature,
}

impl MaskFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    datafusion_expr::TypeSignature::Any(1),
                    datafusion_expr::TypeSignature::Any(2),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl Default for MaskFunc {
    fn default() -> Self {
        Self::new()
    }
}

/// The value `MaskField` substitutes for a type when no replacement is given.
fn empty_value(dt: &DataType) -> Result<ScalarValue> {
    let v = match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ScalarValue::Utf8(Some(String::new())),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => ScalarValue::Binary(Some(Vec::new())),
        DataType::Boolean => ScalarValue::Boolean(Some(false)),
        dt if dt.is_numeric() => ScalarValue::Int64(Some(0)),
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_) => {
            ScalarValue::Int64(Some(0))
        }
        other => return plan_err!("mask: cannot mask a value of type {other}; mask its fields instead"),
    };
    v.cast_to(dt)
}

impl ScalarUDFImpl for MaskFunc {
    fn name(&self) -> &str {
        "mask"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        empty_value(&arg_types[0])?;
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dt = args.args[0].data_type();
        let replacement = match args.args.get(1) {
            None => empty_value(&dt)?,
            Some(ColumnarValue::Scalar(s)) if s.is_null() => ScalarValue::try_from(&dt)?,
            Some(ColumnarValue::Scalar(s)) => match s.cast_to(&dt) {
                Ok(v) => v,
                Err(e) => return exec_err!("mask: replacement {s} is not a valid {dt}: {e}"),
            },
            Some(ColumnarValue::Array(_)) => return exec_err!("mask: the replacement must be a constant"),
        };
        match &args.args[0] {
            ColumnarValue::Scalar(s) if s.is_null() => Ok(ColumnarValue::Scalar(s.clone())),
            ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(replacement)),
            ColumnarValue::Array(values) => {
                let nulls = is_null(values)?;
                let masked = replacement.to_scalar()?;
                let null_array: ArrayRef = new_null_array(&dt, 1);
                let null_scalar = arrow::array::Scalar::new(null_array);
                let out = zip(&nulls, &null_scalar, &masked)?;
                // zip keeps the masked type; make sure dictionary/view types come back as declared.
                let out = if out.data_type() != values.data_type() {
                    cast(&out, values.data_type())?
                } else {
                    out
                };
                debug_assert_eq!(out.len(), values.len());
                Ok(ColumnarValue::Array(Arc::clone(&out)))
            }
        }
    }
}
