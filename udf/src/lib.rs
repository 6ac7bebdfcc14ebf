//! Quiver's built-in scalar functions.
//!
//! Every function is a DataFusion [`ScalarUDFImpl`](datafusion_expr::ScalarUDFImpl)
//! struct named `<Name>Func`, documented in its own module and registered in one
//! list, [`functions()`]. The SQL planner (`quiver-sql`) registers that list next
//! to DataFusion's own functions, so a user can call them in any `SELECT` of a
//! `CREATE SINK … AS SELECT` and in console previews. They are evaluated batch at
//! a time on Arrow arrays; a row-level failure (invalid JSON, an unparseable
//! timestamp) is an error for the batch, which the engine then narrows down to
//! the failing rows and routes by the pipeline's error policy.

use std::sync::Arc;

use datafusion_expr::ScalarUDF;

pub mod connect;
pub mod datetime;
pub mod hash;
pub mod json;
pub mod json_edit;
pub mod mask;
pub mod simple_date_format;

/// Name and one-line description of every built-in function, for `quiver connectors`
/// style listings and the README.
#[derive(Debug, Clone, Copy)]
pub struct FunctionDoc {
    pub name: &'static str,
    pub syntax: &'static str,
    pub description: &'static str,
}

/// All of Quiver's built-in scalar functions, ready to register with a planner.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(mask::MaskFunc::new())),
        Arc::new(ScalarUDF::from(hash::Sha256HexFunc::new())),
        Arc::new(ScalarUDF::from(hash::Md5HexFunc::new())),
        Arc::new(ScalarUDF::from(json::JsonGetFunc::new(json::JsonKind::Str))),
        Arc::new(ScalarUDF::from(json::JsonGetFunc::new(json::JsonKind::Int))),
        Arc::new(ScalarUDF::from(json::JsonGetFunc::new(json::JsonKind::Float))),
        Arc::new(ScalarUDF::from(json::JsonGetFunc::new(json::JsonKind::Bool))),
        Arc::new(ScalarUDF::from(datetime::FormatTimestampFunc::new())),
        Arc::new(ScalarUDF::from(datetime::ParseTimestampFunc::new())),
        Arc::new(ScalarUDF::from(datetime::NowFunc::new())),
        Arc::new(ScalarUDF::from(connect::RegexRouteFunc::new())),
        Arc::new(ScalarUDF::from(connect::RegexMatchesFunc::new())),
        Arc::new(ScalarUDF::from(connect::HeaderFunc::new(connect::HeaderOp::Add))),
        Arc::new(ScalarUDF::from(connect::HeaderFunc::new(connect::HeaderOp::Drop))),
        Arc::new(ScalarUDF::from(connect::HeaderFunc::new(connect::HeaderOp::Has))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(json_edit::JsonEdit::Set))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(
            json_edit::JsonEdit::Remove,
        ))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(json_edit::JsonEdit::Keep))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(
            json_edit::JsonEdit::Rename,
        ))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(
            json_edit::JsonEdit::Flatten,
        ))),
        Arc::new(ScalarUDF::from(json_edit::JsonEditFunc::new(json_edit::JsonEdit::Mask))),
    ]
}

/// Documentation of every function in [`functions()`], in the same order.
pub fn function_docs() -> Vec<FunctionDoc> {
    vec![
        mask::DOC,
        hash::SHA256_DOC,
        hash::MD5_DOC,
        json::JsonKind::Str.doc(),
        json::JsonKind::Int.doc(),
        json::JsonKind::Float.doc(),
        json::JsonKind::Bool.doc(),
        datetime::FORMAT_DOC,
        datetime::PARSE_DOC,
        datetime::NOW_DOC,
        connect::REGEX_ROUTE_DOC,
        connect::REGEX_MATCHES_DOC,
        connect::HEADER_ADD_DOC,
        connect::HEADERS_DROP_DOC,
        connect::HAS_HEADER_DOC,
        json_edit::JsonEdit::Set.doc(),
        json_edit::JsonEdit::Remove.doc(),
        json_edit::JsonEdit::Keep.doc(),
        json_edit::JsonEdit::Rename.doc(),
        json_edit::JsonEdit::Flatten.doc(),
        json_edit::JsonEdit::Mask.doc(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_function_is_documented_once() {
        let funcs = super::functions();
        let docs = super::function_docs();
        assert_eq!(funcs.len(), docs.len());
        for (f, d) in funcs.iter().zip(docs.iter()) {
            assert_eq!(f.name(), d.name);
        }
    }
}
