//! `sha256_hex(value)` and `md5_hex(value)`: lowercase hex digests of text or bytes,
//! the usual way to pseudonymise a key before it leaves a pipeline.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, cast::as_binary_array};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::FunctionDoc;

pub const SHA256_DOC: FunctionDoc = FunctionDoc {
    name: "sha256_hex",
    syntax: "sha256_hex(text_or_bytes)",
    description: "SHA-256 digest of the value's UTF-8 bytes (or raw bytes) as 64 lowercase hex characters; NULL stays NULL.",
};
pub const MD5_DOC: FunctionDoc = FunctionDoc {
    name: "md5_hex",
    syntax: "md5_hex(text_or_bytes)",
    description: "MD5 digest of the value's UTF-8 bytes (or raw bytes) as 32 lowercase hex characters; NULL stays NULL.",
};

fn hash_signature() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8View]),
            TypeSignature::Exact(vec![DataType::LargeUtf8]),
            TypeSignature::Exact(vec![DataType::Binary]),
            TypeSignature::Exact(vec![DataType::BinaryView]),
            TypeSignature::Exact(vec![DataType::LargeBinary]),
        ],
        Volatility::Immutable,
    )
}

fn hex_digest<D: Digest>(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let input = args.args[0].clone().into_array(args.number_rows)?;
    let bytes = cast(&input, &DataType::Binary)?;
    let bytes = as_binary_array(&bytes)?;
    let mut out = StringBuilder::with_capacity(bytes.len(), bytes.len() * 64);
    for v in bytes.iter() {
        match v {
            Some(v) => out.append_value(hex::encode(D::digest(v))),
            None => out.append_null(),
        }
    }
    let out: ArrayRef = Arc::new(out.finish());
    Ok(ColumnarValue::Array(out))
}

macro_rules! digest_func {
    ($ty:ident, $name:literal, $digest:ty) => {
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub struct $ty {
            signature: Signature,
        }
        impl $ty {
            pub fn new() -> Self {
                Self {
                    signature: hash_signature(),
                }
            }
        }
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
        impl ScalarUDFImpl for $ty {
            fn name(&self) -> &str {
                $name
            }
            fn signature(&self) -> &Signature {
                &self.signature
            }
            fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
                Ok(DataType::Utf8)
            }
            fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
                hex_digest::<$digest>(&args)
            }
        }
    };
}

digest_func!(Sha256HexFunc, "sha256_hex", Sha256);
digest_func!(Md5HexFunc, "md5_hex", Md5);
