//! Functions that give SQL the semantics of Kafka Connect transforms where
//! DataFusion has no equivalent:
//!
//! - `regex_route(topic, regex, replacement)`: `RegexRouter` — the whole value must
//!   match (Java's `Matcher.matches()`), the replacement uses Java's syntax (`$1`,
//!   `\$` for a dollar sign); a value that does not match is returned unchanged;
//! - `regex_matches(value, regex)`: the `TopicNameMatches` predicate (whole-value match);
//! - `header_add(headers, name, value)`: `InsertHeader` / `HeaderFrom` — appends a
//!   header (Kafka headers may repeat a name);
//! - `headers_drop(headers, name, …)`: `DropHeaders` — removes every header with
//!   one of the names;
//! - `has_header(headers, name)`: the `HasHeaderKey` predicate.
//!
//! Headers are the Kafka sources' `_headers` column: a map of text to bytes. The
//! regular expressions and header names must be constants.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, MapArray, MapBuilder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use regex::Regex;

use crate::FunctionDoc;

pub const REGEX_ROUTE_DOC: FunctionDoc = FunctionDoc {
    name: "regex_route",
    syntax: "regex_route(value, regex, replacement)",
    description: "Kafka Connect RegexRouter: when the whole value matches `regex`, returns `replacement` with Java-style `$1` group references; otherwise the value unchanged.",
};
pub const REGEX_MATCHES_DOC: FunctionDoc = FunctionDoc {
    name: "regex_matches",
    syntax: "regex_matches(value, regex)",
    description: "Whether the whole value matches `regex` (Kafka Connect's TopicNameMatches predicate).",
};
pub const HEADER_ADD_DOC: FunctionDoc = FunctionDoc {
    name: "header_add",
    syntax: "header_add(headers, name, value)",
    description: "The headers map with one more header `name` = `value` (text or bytes); Kafka Connect InsertHeader and HeaderFrom.",
};
pub const HEADERS_DROP_DOC: FunctionDoc = FunctionDoc {
    name: "headers_drop",
    syntax: "headers_drop(headers, name [, name …])",
    description: "The headers map without any header of the given names (Kafka Connect DropHeaders).",
};
pub const HAS_HEADER_DOC: FunctionDoc = FunctionDoc {
    name: "has_header",
    syntax: "has_header(headers, name)",
    description: "Whether the headers hold a header named `name` (Kafka Connect's HasHeaderKey predicate).",
};

/// A constant text argument, or an error naming the function and the argument.
pub(crate) fn constant(args: &[ColumnarValue], i: usize, func: &str, what: &str) -> Result<Option<String>> {
    match args.get(i) {
        Some(ColumnarValue::Scalar(s)) if s.is_null() => Ok(None),
        Some(ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)),
        )) => Ok(Some(v.clone())),
        Some(ColumnarValue::Scalar(other)) => exec_err!("{func}: the {what} must be text, not {}", other.data_type()),
        Some(ColumnarValue::Array(_)) => exec_err!("{func}: the {what} must be a constant"),
        None => exec_err!("{func}: missing the {what}"),
    }
}

/// Compiles a Java regular expression for a whole-value match. Java and Rust agree on
/// the syntax Kafka Connect configurations use (classes, groups, quantifiers,
/// alternation, named groups `(?<name>…)`); a pattern Rust cannot compile is an error
/// naming it.
fn whole(func: &str, pattern: &str) -> Result<Regex> {
    compile_whole(pattern).or_else(|e| exec_err!("{func}: {e}"))
}

fn compile_whole(pattern: &str) -> std::result::Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("invalid regex '{pattern}': {e}"))
}

/// Checks a Java regular expression the way [`regex_route`](RegexRouteFunc) and
/// `regex_matches` will compile it; the error says what Rust's regex refuses.
pub fn check_regex(pattern: &str) -> std::result::Result<(), String> {
    compile_whole(pattern).map(|_| ())
}

/// Java's `Matcher.replaceFirst` replacement (`$1`, `${name}`, `\$`, `\\`) as a
/// Rust `regex` replacement (`${1}`, `${name}`, `$$`, `\`).
pub fn java_replacement(java: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => return Err("ends with a lone '\\'".into()),
            },
            '$' => match chars.peek() {
                Some('{') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    if name.is_empty() {
                        return Err("has an empty ${} group reference".into());
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some(d) if d.is_ascii_digit() => {
                    // Java reads one digit (more while the group number stays valid);
                    // Kafka Connect routes use single digits.
                    let d = chars.next().unwrap_or('0');
                    out.push_str(&format!("${{{d}}}"));
                }
                _ => return Err("has a '$' that is not a group reference (write \\$ for a dollar sign)".into()),
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

fn text_array(v: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    Ok(cast(&v.clone().into_array(rows)?, &DataType::Utf8)?)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexRouteFunc {
    signature: Signature,
}

impl RegexRouteFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl Default for RegexRouteFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for RegexRouteFunc {
    fn name(&self) -> &str {
        "regex_route"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (Some(pattern), Some(replacement)) = (
            constant(&args.args, 1, "regex_route", "regex")?,
            constant(&args.args, 2, "regex_route", "replacement")?,
        ) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let re = whole("regex_route", &pattern)?;
        let rust = match java_replacement(&replacement) {
            Ok(r) => r,
            Err(e) => return exec_err!("regex_route: replacement '{replacement}' {e}"),
        };
        let values = text_array(&args.args[0], args.number_rows)?;
        let values = values.as_string::<i32>();
        // Rows of a batch mostly share a topic: route each run of equal values once.
        let mut out = StringBuilder::with_capacity(values.len(), values.value_data().len());
        let mut last: Option<(&str, String)> = None;
        for v in values.iter() {
            let Some(v) = v else {
                out.append_null();
                continue;
            };
            if let Some((input, routed)) = &last
                && *input == v
            {
                out.append_value(routed);
                continue;
            }
            let routed = match re.captures(v) {
                Some(caps) => {
                    let mut s = String::new();
                    caps.expand(&rust, &mut s);
                    s
                }
                None => v.to_string(),
            };
            out.append_value(&routed);
            last = Some((v, routed));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexMatchesFunc {
    signature: Signature,
}

impl RegexMatchesFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl Default for RegexMatchesFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for RegexMatchesFunc {
    fn name(&self) -> &str {
        "regex_matches"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(pattern) = constant(&args.args, 1, "regex_matches", "regex")? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
        };
        let re = whole("regex_matches", &pattern)?;
        let values = text_array(&args.args[0], args.number_rows)?;
        // Rows of a batch mostly share a topic: match each run of equal values once.
        let mut last: Option<(&str, bool)> = None;
        let out: BooleanArray = values
            .as_string::<i32>()
            .iter()
            .map(|v| {
                v.map(|v| match last {
                    Some((input, m)) if input == v => m,
                    _ => {
                        let m = re.is_match(v);
                        last = Some((v, m));
                        m
                    }
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// What a header function does to each row's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderOp {
    Add,
    Drop,
    Has,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HeaderFunc {
    op: HeaderOp,
    signature: Signature,
}

impl HeaderFunc {
    pub fn new(op: HeaderOp) -> Self {
        let signature = match op {
            HeaderOp::Add => Signature::any(3, Volatility::Immutable),
            HeaderOp::Has => Signature::any(2, Volatility::Immutable),
            HeaderOp::Drop => Signature::variadic_any(Volatility::Immutable),
        };
        Self { op, signature }
    }
    pub fn doc(op: HeaderOp) -> FunctionDoc {
        match op {
            HeaderOp::Add => HEADER_ADD_DOC,
            HeaderOp::Drop => HEADERS_DROP_DOC,
            HeaderOp::Has => HAS_HEADER_DOC,
        }
    }
}

/// Kafka headers as the Kafka source gives them: `MAP<TEXT, BYTEA>`.
pub fn headers_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new())
        .finish()
        .data_type()
        .clone()
}

fn is_headers(dt: &DataType) -> bool {
    match dt {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(f) => {
                f.len() == 2
                    && matches!(f[0].data_type(), DataType::Utf8)
                    && matches!(f[1].data_type(), DataType::Binary)
            }
            _ => false,
        },
        _ => false,
    }
}

impl ScalarUDFImpl for HeaderFunc {
    fn name(&self) -> &str {
        Self::doc(self.op).name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let name = self.name();
        if arg_types.len() < 2 {
            return plan_err!(
                "{name}: expected the headers and a header name ({})",
                Self::doc(self.op).syntax
            );
        }
        if arg_types[0] == DataType::Null {
            // NULL headers (a record that has none yet): the result is a headers map.
            return Ok(match self.op {
                HeaderOp::Has => DataType::Boolean,
                _ => headers_type(),
            });
        }
        if !is_headers(&arg_types[0]) {
            return plan_err!(
                "{name}: the first argument must be Kafka headers (the _headers column, MAP<TEXT, BYTEA>), not {}",
                arg_types[0]
            );
        }
        Ok(match self.op {
            HeaderOp::Has => DataType::Boolean,
            _ => arg_types[0].clone(),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let rows = args.number_rows;
        let mut headers = args.args[0].clone().into_array(rows)?;
        if headers.data_type() == &DataType::Null {
            headers = arrow::array::new_null_array(&headers_type(), rows);
        }
        let Some(map) = headers.as_any().downcast_ref::<MapArray>() else {
            return exec_err!("{name}: the first argument must be Kafka headers");
        };
        let names: Vec<String> = (1..if self.op == HeaderOp::Drop { args.args.len() } else { 2 })
            .map(|i| constant(&args.args, i, name, "header name").map(Option::unwrap_or_default))
            .collect::<Result<_>>()?;
        if self.op == HeaderOp::Has {
            let out: BooleanArray = (0..rows)
                .map(|r| {
                    (!map.is_null(r)).then(|| {
                        let entries = map.value(r);
                        entries
                            .column(0)
                            .as_string::<i32>()
                            .iter()
                            .any(|k| k == Some(names[0].as_str()))
                    })
                })
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        let added = match self.op {
            HeaderOp::Add => Some(cast(&args.args[2].clone().into_array(rows)?, &DataType::Binary)?),
            _ => None,
        };
        let mut b = MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new());
        for r in 0..rows {
            if !map.is_null(r) {
                let entries = map.value(r);
                let (keys, values) = (
                    entries.column(0).as_string::<i32>(),
                    entries.column(1).as_binary::<i32>(),
                );
                for i in 0..entries.len() {
                    let key = keys.value(i);
                    if self.op == HeaderOp::Drop && names.iter().any(|n| n == key) {
                        continue;
                    }
                    b.keys().append_value(key);
                    b.values().append_option(values.is_valid(i).then(|| values.value(i)));
                }
            }
            if let Some(added) = &added {
                b.keys().append_value(&names[0]);
                let v = added.as_binary::<i32>();
                b.values().append_option(v.is_valid(r).then(|| v.value(r)));
            }
            if map.is_null(r) && added.is_none() {
                b.append(false)?;
            } else {
                b.append(true)?;
            }
        }
        let out: ArrayRef = Arc::new(b.finish());
        // The builder's field names may differ from the input's; keep the input's type.
        let out = if out.data_type() != headers.data_type() {
            cast(&out, headers.data_type())?
        } else {
            out
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements_become_rust_replacements() {
        assert_eq!(java_replacement("$1-v2").unwrap(), "${1}-v2");
        assert_eq!(java_replacement("${name}_x").unwrap(), "${name}_x");
        assert_eq!(java_replacement("cost\\$5\\\\").unwrap(), "cost$$5\\");
        assert!(java_replacement("a$").is_err());
        assert!(java_replacement("a\\").is_err());
    }
}
