//! Kafka Connect's 16 built-in SMTs as rewrites of a [`Record`]'s expressions.
//!
//! Each transform reads its `transforms.<alias>.*` settings, checks them the way
//! Kafka Connect's `ConfigDef` would (plus what a declared schema lets us check
//! early: field names, field types), and returns the record after it. A
//! `predicate` makes each rewritten expression a CASE on the predicate's
//! condition; `Filter` adds a condition rows must meet.
//!
//! Tombstones (a null value) pass through unchanged, as in Kafka Connect: fields a
//! transform adds are NULL for them ([`unless_tombstone`]); a NULL field stays
//! NULL under Cast, MaskField, Flatten and TimestampConverter by itself.
//!
//! Quiver's record keys are text or bytes. With `key.converter` JsonConverter the
//! key is JSON text, and the `$Key` forms that edit fields become the udf
//! crate's `json_*` functions on `_key` (`json_set`, `json_mask`, …). On other
//! keys only the whole-key forms translate (Cast$Key, TimestampConverter$Key,
//! HoistField$Key of a text key); the rest are reported as untranslatable.

use arrow::datatypes::{DataType, TimeUnit};
use quiver_connectors::api::options::closest;

use super::predicate;
use super::record::{Context, Expr, Record, sql_type, unless_tombstone};
use super::{ConnectorConfig, Notes, Result, TranslateError, lit};

const PACKAGE: &str = "org.apache.kafka.connect.transforms.";

/// The built-in SMTs: name, whether it comes in `$Key`/`$Value` forms, and the
/// settings it takes (besides `type`, `predicate`, `negate`).
pub(crate) const KINDS: [(&str, bool, &[&str]); 16] = [
    ("Cast", true, &["spec", "replace.null.with.default"]),
    ("DropHeaders", false, &["headers"]),
    ("ExtractField", true, &["field", "replace.null.with.default"]),
    ("Filter", false, &[]),
    ("Flatten", true, &["delimiter"]),
    (
        "HeaderFrom",
        true,
        &["fields", "headers", "operation", "replace.null.with.default"],
    ),
    ("HoistField", true, &["field"]),
    (
        "InsertField",
        true,
        &[
            "topic.field",
            "partition.field",
            "offset.field",
            "timestamp.field",
            "static.field",
            "static.value",
            "replace.null.with.default",
        ],
    ),
    ("InsertHeader", false, &["header", "value.literal"]),
    (
        "MaskField",
        true,
        &["fields", "replacement", "replace.null.with.default"],
    ),
    ("RegexRouter", false, &["regex", "replacement"]),
    (
        "ReplaceField",
        true,
        &[
            "exclude",
            "include",
            "renames",
            "blacklist",
            "whitelist",
            "replace.null.with.default",
        ],
    ),
    (
        "SetSchemaMetadata",
        true,
        &["schema.name", "schema.version", "replace.null.with.default"],
    ),
    (
        "TimestampConverter",
        true,
        &[
            "field",
            "target.type",
            "format",
            "unix.precision",
            "replace.null.with.default",
        ],
    ),
    ("TimestampRouter", false, &["topic.format", "timestamp.format"]),
    ("ValueToKey", false, &["fields", "replace.null.with.default"]),
];

/// The built-in SMTs' names.
#[cfg(test)]
pub(crate) const KIND_NAMES: [&str; 16] = {
    let mut names = [""; 16];
    let mut i = 0;
    while i < 16 {
        names[i] = KINDS[i].0;
        i += 1;
    }
    names
};

/// Debezium's "unwrap" SMT: what Quiver's `debezium-json` format already does.
pub(crate) const DEBEZIUM_UNWRAP: &str = "io.debezium.transforms.ExtractNewRecordState";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Key,
    Value,
    Neither,
}

/// One transform's settings, with the key prefix for messages.
struct Smt<'a> {
    cfg: &'a ConnectorConfig,
    prefix: String,
    name: &'static str,
    side: Side,
}

impl Smt<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.cfg.get(&self.key(k))
    }
    fn require(&self, k: &str, what: &str) -> Result<&str> {
        self.cfg.require(&self.key(k), what)
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.cfg.list(&self.key(k))
    }
    fn err(&self, k: &str, message: impl Into<String>) -> TranslateError {
        TranslateError::new(self.key(k), message)
    }
    fn label(&self) -> String {
        match self.side {
            Side::Key => format!("{}$Key", self.name),
            Side::Value => format!("{}$Value", self.name),
            Side::Neither => self.name.to_string(),
        }
    }
}

/// What a transform did.
enum Step {
    Record(Box<Record>),
    /// Valid Kafka Connect with no SQL form, and why.
    Untranslatable(String),
}

/// Applies the connector's `transforms` chain to `start`.
pub(crate) fn chain(cfg: &ConnectorConfig, start: &Record, ctx: &Context, notes: &mut Notes) -> Result<Record> {
    // Every declared predicate is checked, used or not, as Kafka Connect does.
    let declared: Vec<String> = cfg.list("predicates");
    let mut predicates = Vec::new();
    for alias in &declared {
        predicates.push((alias.clone(), predicate::parse(cfg, alias)?));
    }
    let aliases = cfg.list("transforms");
    let mut rec = start.clone();
    for (i, alias) in aliases.iter().enumerate() {
        if aliases[..i].contains(alias) {
            return Err(TranslateError::new("transforms", format!("lists '{alias}' twice")));
        }
        let prefix = format!("transforms.{alias}.");
        let type_key = format!("{prefix}type");
        let class = cfg.require(&type_key, "the transform's class")?;
        let predicate = match cfg.get(&format!("{prefix}predicate")) {
            None => None,
            Some(p) => match predicates.iter().find(|(a, _)| a == p) {
                Some((_, pred)) => Some(pred.clone()),
                None => {
                    return Err(TranslateError::new(
                        format!("{prefix}predicate"),
                        format!(
                            "names predicate '{p}', which 'predicates' does not declare (declared: {})",
                            if declared.is_empty() {
                                "none".to_string()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    ));
                }
            },
        };
        let negate = cfg.bool(&format!("{prefix}negate"), false)?;
        if ctx.unwrapped.as_deref() == Some(alias.as_str()) && class == super::debezium::EVENT_ROUTER {
            check_keys(
                cfg,
                &prefix,
                &[
                    "table.field.event.id",
                    "table.field.event.key",
                    "table.field.event.payload",
                    "table.field.event.timestamp",
                    "table.fields.additional.placement",
                    "table.expand.json.payload",
                    "route.by.field",
                    "route.topic.regex",
                    "route.topic.replacement",
                    "route.tombstone.on.empty.payload",
                    "debezium.op.invalid.behavior",
                ],
                "EventRouter",
            )?;
            continue;
        }
        if ctx.unwrapped.as_deref() == Some(alias.as_str()) {
            notes.note(if ctx.from_kafka {
                format!("transforms.{alias} ({DEBEZIUM_UNWRAP}): done by the source's format = 'debezium-json'")
            } else {
                format!("transforms.{alias} ({DEBEZIUM_UNWRAP}): done by the source's envelope = 'debezium-unwrapped'")
            });
            check_keys(
                cfg,
                &prefix,
                &[
                    "drop.tombstones",
                    "delete.handling.mode",
                    "add.fields",
                    "add.headers",
                    "add.fields.prefix",
                    "delete.tombstone.handling.mode",
                ],
                "ExtractNewRecordState",
            )?;
            continue;
        }
        let Some((name, side, keys)) = classify(class, &type_key)? else {
            notes.untranslated(
                &type_key,
                format!("custom transform class {class} has no SQL equivalent; write what it does into the SELECT"),
            );
            continue;
        };
        check_keys(cfg, &prefix, keys, name)?;
        let smt = Smt {
            cfg,
            prefix: prefix.clone(),
            name,
            side,
        };
        let cond = match &predicate {
            None => None,
            Some(p) => {
                let c = p.condition(&rec, ctx, &format!("{prefix}predicate"))?;
                Some(if negate { format!("NOT {c}") } else { c })
            }
        };
        if name == "Filter" {
            rec.keep.push(match cond {
                Some(c) => format!("NOT {c}"),
                None => "false".to_string(),
            });
            continue;
        }
        match apply(&smt, &rec, ctx, notes)? {
            Step::Record(next) => {
                let next = *next;
                rec = match cond {
                    Some(c) => {
                        if next.key_fields != rec.key_fields {
                            notes.untranslated(
                                &type_key,
                                "ValueToKey under a predicate: a sink's key columns are the same for every row",
                            );
                            continue;
                        }
                        Record::merge(&c, next, rec)
                    }
                    None => next,
                }
            }
            Step::Untranslatable(why) => notes.untranslated(&type_key, format!("{} {why}", smt.label())),
        }
    }
    Ok(rec)
}

/// A transform class → (built-in name, side, its settings), `None` for a class
/// outside Kafka Connect's package (a custom SMT).
fn classify(class: &str, type_key: &str) -> Result<Option<(&'static str, Side, &'static [&'static str])>> {
    let short = match class.strip_prefix(PACKAGE) {
        Some(s) => s,
        None if !class.contains('.') => class,
        None => return Ok(None),
    };
    let (base, side) = match short.split_once('$') {
        Some((b, "Key")) => (b, Side::Key),
        Some((b, "Value")) => (b, Side::Value),
        Some(_) => ("", Side::Neither),
        None => (short, Side::Neither),
    };
    let unknown = || {
        let names: Vec<String> = KINDS
            .iter()
            .map(|(n, sided, _)| {
                if *sided {
                    format!("{n}$Key, {n}$Value")
                } else {
                    n.to_string()
                }
            })
            .collect();
        TranslateError::new(
            type_key,
            format!(
                "unknown transform '{class}'; Kafka Connect's built-in transforms are {}",
                names.join(", ")
            ),
        )
    };
    let Some((name, sided, keys)) = KINDS.iter().find(|(n, _, _)| *n == base) else {
        return Err(unknown());
    };
    match (sided, side) {
        (true, Side::Neither) => Err(TranslateError::new(
            type_key,
            format!("{name} comes in two forms: {PACKAGE}{name}$Key or {PACKAGE}{name}$Value"),
        )),
        (false, Side::Key | Side::Value) => Err(unknown()),
        _ => Ok(Some((name, side, keys))),
    }
}

fn check_keys(cfg: &ConnectorConfig, prefix: &str, keys: &[&str], name: &str) -> Result<()> {
    for k in cfg.keys_under(prefix) {
        if !["type", "predicate", "negate"].contains(&k) && !keys.contains(&k) {
            let mut known: Vec<&str> = keys.to_vec();
            known.extend(["predicate", "negate"]);
            let hint = closest(k, known.iter().copied())
                .map(|c| format!("did you mean '{c}'? "))
                .unwrap_or_default();
            return Err(TranslateError::new(
                format!("{prefix}{k}"),
                format!("unknown setting for {name}; {hint}it takes {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn apply(smt: &Smt<'_>, rec: &Record, ctx: &Context, notes: &mut Notes) -> Result<Step> {
    match smt.name {
        "Cast" => cast(smt, rec, ctx),
        "DropHeaders" => drop_headers(smt, rec),
        "ExtractField" => extract_field(smt, rec),
        "Flatten" => flatten(smt, rec, ctx),
        "HeaderFrom" => header_from(smt, rec, ctx),
        "HoistField" => hoist_field(smt, rec, ctx),
        "InsertField" => insert_field(smt, rec, ctx),
        "InsertHeader" => insert_header(smt, rec),
        "MaskField" => mask_field(smt, rec, ctx),
        "RegexRouter" => regex_router(smt, rec, ctx),
        "ReplaceField" => replace_field(smt, rec, ctx),
        "SetSchemaMetadata" => {
            let _ = (smt.get("schema.name"), smt.get("schema.version"));
            notes.note(format!(
                "{} ({}): no effect, Arrow schemas have no name or version",
                smt.key("type"),
                smt.label()
            ));
            Ok(Step::Record(Box::new(rec.clone())))
        }
        "TimestampConverter" => timestamp_converter(smt, rec),
        "TimestampRouter" => timestamp_router(smt, rec, ctx),
        "ValueToKey" => value_to_key(smt, rec),
        other => Err(smt.err("type", format!("no translation for {other}"))),
    }
}

const STRUCT_KEY: &str = "needs a structured key: with key.converter JsonConverter the key is JSON text, edited with the json_* functions; other keys are text or bytes";

/// The key as JSON text (key.converter JsonConverter), for the `$Key` forms that edit fields.
fn json_key<'r>(rec: &'r Record, ctx: &Context) -> Option<&'r Expr> {
    rec.key.as_ref().filter(|k| ctx.key_json && k.ty == DataType::Utf8)
}

/// `rec` with its key replaced by `sql` (JSON text).
fn with_key(rec: &Record, sql: String) -> Step {
    let mut next = rec.clone();
    next.key = Some(Expr::new(sql, DataType::Utf8));
    Step::Record(Box::new(next))
}

/// The field `name` of the value, or an error naming the setting and the fields there are.
fn field<'r>(smt: &Smt<'_>, rec: &'r Record, setting: &str, name: &str) -> Result<&'r Expr> {
    rec.field(name).ok_or_else(|| {
        smt.err(
            setting,
            format!("the record has no field '{name}' (fields: {})", rec.field_names()),
        )
    })
}

fn is_complex(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..)
    )
}

fn type_word(ty: &DataType) -> String {
    match ty {
        DataType::Struct(_) => "STRUCT".into(),
        DataType::List(_) | DataType::LargeList(_) => "ARRAY".into(),
        DataType::Map(..) => "MAP".into(),
        other => crate::compile::sql_type_name(other),
    }
}

/// The value as one primitive: the single column of a `raw` format.
fn whole_value(rec: &Record) -> Option<(&String, &Expr)> {
    match rec.fields.as_slice() {
        [(n, e)] if !is_complex(&e.ty) => Some((n, e)),
        _ => None,
    }
}

fn cast_type(word: &str) -> Option<DataType> {
    Some(match word {
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "string" => DataType::Utf8,
        _ => return None,
    })
}

/// Kafka Connect's Cast of one value: numbers, booleans and strings to any of
/// them; bytes only to a base64 string; `Boolean.parseBoolean` for text to boolean.
fn cast_expr(smt: &Smt<'_>, what: &str, e: &Expr, to: &DataType) -> Result<Expr> {
    if is_complex(&e.ty) {
        return Err(smt.err(
            "spec",
            format!("cannot cast {what} of type {}: Kafka Connect's Cast takes only integers, floats, booleans, strings and bytes (and top-level fields only)", type_word(&e.ty)),
        ));
    }
    let sql = match (&e.ty, to) {
        (DataType::Binary | DataType::LargeBinary, DataType::Utf8) => format!("encode({}, 'base64')", e.sql),
        (DataType::Binary | DataType::LargeBinary, _) => {
            return Err(smt.err(
                "spec",
                format!("{what} is bytes, which Kafka Connect casts only to string"),
            ));
        }
        (DataType::Utf8 | DataType::LargeUtf8, DataType::Boolean) => format!("(lower({}) = 'true')", e.sql),
        _ => format!("CAST({} AS {})", e.sql, sql_type(to).unwrap_or("TEXT")),
    };
    Ok(Expr::new(sql, to.clone()))
}

fn cast(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let spec = smt.list("spec");
    if spec.is_empty() {
        return Err(smt.err(
            "spec",
            "missing: at least one field:type pair, or one type for the whole value",
        ));
    }
    let valid = "int8, int16, int32, int64, float32, float64, boolean, string";
    let mut casts: Vec<(Option<String>, DataType)> = Vec::new();
    for item in &spec {
        let (field, word) = match item.split_once(':') {
            Some((f, t)) => (Some(f.trim().to_string()), t.trim()),
            None => (None, item.as_str()),
        };
        if field.as_deref() == Some("") {
            return Err(smt.err("spec", format!("'{item}' names no field")));
        }
        let Some(ty) = cast_type(word) else {
            return Err(smt.err(
                "spec",
                format!("invalid type '{word}' in '{item}'; valid types are {valid}"),
            ));
        };
        casts.push((field, ty));
    }
    let whole = casts.iter().any(|(f, _)| f.is_none());
    if whole && casts.len() > 1 {
        return Err(smt.err("spec", "a cast of the whole value must be the spec's only entry"));
    }
    let mut next = rec.clone();
    if whole {
        let to = &casts[0].1;
        match smt.side {
            Side::Key => match &rec.key {
                Some(k) => next.key = Some(cast_expr(smt, "the key", k, to)?),
                None => {
                    return Ok(Step::Untranslatable(
                        "casts the key, and these records have none".into(),
                    ));
                }
            },
            _ => match whole_value(rec) {
                Some((name, e)) => next.fields = vec![(name.clone(), cast_expr(smt, "the value", e, to)?)],
                None => return Err(smt.err(
                    "spec",
                    format!(
                        "a cast of the whole value needs a primitive value (a raw format); this record has fields {}",
                        rec.field_names()
                    ),
                )),
            },
        }
        return Ok(Step::Record(Box::new(next)));
    }
    if smt.side == Side::Key {
        let Some(k) = json_key(rec, ctx) else {
            return Ok(Step::Untranslatable(format!("casts key fields; it {STRUCT_KEY}")));
        };
        let mut sql = k.sql.clone();
        for (name, to) in casts {
            let name = name.unwrap_or_default();
            let text = format!("json_get_str({}, {})", k.sql, lit(&name));
            let value = match &to {
                DataType::Utf8 => text,
                DataType::Boolean => format!("(lower({text}) = 'true')"),
                // Through DOUBLE, so "4.5" casts to 4 as Java's Number.intValue() does.
                DataType::Float32 | DataType::Float64 => {
                    format!("CAST({text} AS {})", sql_type(&to).unwrap_or("DOUBLE"))
                }
                _ => format!("CAST(CAST({text} AS DOUBLE) AS {})", sql_type(&to).unwrap_or("BIGINT")),
            };
            sql = format!("json_set({sql}, {}, {value})", lit(&name));
        }
        return Ok(with_key(rec, sql));
    }
    for (name, to) in casts {
        let name = name.unwrap_or_default();
        let Some(e) = rec.field(&name) else {
            let hint = if name.contains('.') {
                " (Cast casts top-level fields only; Kafka Connect has no nested paths in spec)"
            } else {
                ""
            };
            return Err(smt.err(
                "spec",
                format!("the record has no field '{name}'{hint} (fields: {})", rec.field_names()),
            ));
        };
        let cast = cast_expr(smt, &format!("field '{name}'"), e, &to)?;
        if let Some(slot) = next.fields.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = cast;
        }
    }
    Ok(Step::Record(Box::new(next)))
}

fn drop_headers(smt: &Smt<'_>, rec: &Record) -> Result<Step> {
    let names = smt.list("headers");
    if names.is_empty() {
        return Err(smt.err("headers", "missing: the header names to drop"));
    }
    let mut next = rec.clone();
    if let Some(h) = &rec.headers {
        let args: Vec<String> = names.iter().map(|n| lit(n)).collect();
        next.headers = Some(Expr::new(
            format!("headers_drop({}, {})", h.sql, args.join(", ")),
            h.ty.clone(),
        ));
    }
    Ok(Step::Record(Box::new(next)))
}

/// The fields a struct expression expands to, as `get_field` expressions.
fn struct_fields(e: &Expr) -> Option<Vec<(String, Expr)>> {
    match &e.ty {
        DataType::Struct(children) => Some(
            children
                .iter()
                .map(|c| {
                    (
                        c.name().clone(),
                        Expr::new(
                            format!("get_field({}, {})", e.sql, lit(c.name())),
                            c.data_type().clone(),
                        ),
                    )
                })
                .collect(),
        ),
        _ => None,
    }
}

fn extract_field(smt: &Smt<'_>, rec: &Record) -> Result<Step> {
    let name = smt.require("field", "the name of the field to extract")?.to_string();
    let mut next = rec.clone();
    if smt.side == Side::Key {
        let Some(k) = &rec.key else {
            return Ok(Step::Untranslatable(
                "extracts from the key, and these records have none".into(),
            ));
        };
        if k.ty != DataType::Utf8 || name.contains(['.', '[', '$']) {
            return Ok(Step::Untranslatable(format!(
                "reads field '{name}' of the key; only a JSON key (key.converter JsonConverter) with a plain field name translates"
            )));
        }
        next.key = Some(Expr::new(
            format!("json_get_str({}, {})", k.sql, lit(&name)),
            DataType::Utf8,
        ));
        return Ok(Step::Record(Box::new(next)));
    }
    let e = field(smt, rec, "field", &name)?;
    next.fields = match struct_fields(e) {
        Some(children) => children,
        None => vec![(name, e.clone())],
    };
    Ok(Step::Record(Box::new(next)))
}

fn flatten(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let delimiter = smt.get("delimiter").unwrap_or(".").to_string();
    if smt.side == Side::Key {
        return Ok(match json_key(rec, ctx) {
            Some(k) => with_key(rec, format!("json_flatten({}, {})", k.sql, lit(&delimiter))),
            None => Step::Untranslatable(format!("flattens the key; it {STRUCT_KEY}")),
        });
    }
    fn walk(prefix: &str, delimiter: &str, e: &Expr, out: &mut Vec<(String, Expr)>) {
        match struct_fields(e) {
            Some(children) => {
                for (n, c) in children {
                    walk(&format!("{prefix}{delimiter}{n}"), delimiter, &c, out);
                }
            }
            None => out.push((prefix.to_string(), e.clone())),
        }
    }
    let mut fields = Vec::new();
    for (n, e) in &rec.fields {
        walk(n, &delimiter, e, &mut fields);
    }
    for (i, (n, _)) in fields.iter().enumerate() {
        if fields[..i].iter().any(|(m, _)| m == n) {
            return Err(smt.err("delimiter", format!("flattening gives two fields named '{n}'")));
        }
    }
    Ok(Step::Record(Box::new(Record { fields, ..rec.clone() })))
}

fn header_from(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let fields = smt.list("fields");
    let headers = smt.list("headers");
    let operation = smt.require("operation", "move or copy")?;
    let moving = match operation {
        "move" => true,
        "copy" => false,
        other => return Err(smt.err("operation", format!("must be move or copy, not '{other}'"))),
    };
    if fields.is_empty() {
        return Err(smt.err("fields", "missing: the fields to copy into headers"));
    }
    if headers.len() != fields.len() {
        return Err(smt.err(
            "headers",
            format!(
                "names {} headers for {} fields; they pair up one to one",
                headers.len(),
                fields.len()
            ),
        ));
    }
    if smt.side == Side::Key {
        let Some(k) = json_key(rec, ctx) else {
            return Ok(Step::Untranslatable(format!("reads key fields; it {STRUCT_KEY}")));
        };
        let mut h = rec.headers.clone().unwrap_or_else(|| Expr::new("NULL", DataType::Null));
        for (f, name) in fields.iter().zip(&headers) {
            h = Expr::new(
                format!(
                    "header_add({}, {}, json_get_str({}, {}))",
                    h.sql,
                    lit(name),
                    k.sql,
                    lit(f)
                ),
                h.ty,
            );
        }
        let mut next = rec.clone();
        next.headers = Some(h);
        if moving {
            let names: Vec<String> = fields.iter().map(|f| lit(f)).collect();
            next.key = Some(Expr::new(
                format!("json_remove({}, {})", k.sql, names.join(", ")),
                DataType::Utf8,
            ));
        }
        return Ok(Step::Record(Box::new(next)));
    }
    let mut h = rec.headers.clone().unwrap_or_else(|| Expr::new("NULL", DataType::Null));
    for (f, name) in fields.iter().zip(&headers) {
        let e = field(smt, rec, "fields", f)?;
        if is_complex(&e.ty) {
            return Ok(Step::Untranslatable(format!(
                "puts field '{f}' of type {} into a header; headers hold text or bytes",
                type_word(&e.ty)
            )));
        }
        let value = if matches!(e.ty, DataType::Binary) {
            e.sql.clone()
        } else {
            format!("CAST({} AS TEXT)", e.sql)
        };
        h = Expr::new(format!("header_add({}, {}, {value})", h.sql, lit(name)), h.ty);
    }
    let mut next = rec.clone();
    next.headers = Some(match (&ctx.tombstone, &rec.headers) {
        (Some(t), Some(old)) => Expr::new(format!("CASE WHEN {t} THEN {} ELSE {} END", old.sql, h.sql), h.ty),
        _ => h,
    });
    if moving {
        next.fields.retain(|(n, _)| !fields.contains(n));
    }
    Ok(Step::Record(Box::new(next)))
}

fn hoist_field(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let name = smt
        .require("field", "the name of the field to wrap the value in")?
        .to_string();
    if smt.side == Side::Key {
        return Ok(match &rec.key {
            // A JSON key is embedded as it is; a text key becomes a JSON string.
            Some(k) if json_key(rec, ctx).is_some() => {
                let open = serde_json::to_string(&serde_json::json!({ name.clone(): null })).unwrap_or_default();
                with_key(
                    rec,
                    format!("{} || {} || '}}'", lit(open.trim_end_matches("null}")), k.sql),
                )
            }
            Some(k) if k.ty == DataType::Utf8 => with_key(rec, format!("json_set('{{}}', {}, {})", lit(&name), k.sql)),
            _ => Step::Untranslatable(format!("wraps the key in a struct; it {STRUCT_KEY}")),
        });
    }
    // A primitive value (StringConverter) is wrapped as it is: {field: value}.
    if ctx.primitive
        && let Some((_, e)) = whole_value(rec)
    {
        return Ok(Step::Record(Box::new(Record {
            fields: vec![(name, e.clone())],
            ..rec.clone()
        })));
    }
    let args: Vec<String> = rec
        .fields
        .iter()
        .map(|(n, e)| format!("{}, {}", lit(n), e.sql))
        .collect();
    let ty = DataType::Struct(
        rec.fields
            .iter()
            .map(|(n, e)| arrow::datatypes::Field::new(n, e.ty.clone(), true))
            .collect(),
    );
    let e = unless_tombstone(ctx, Expr::new(format!("named_struct({})", args.join(", ")), ty));
    Ok(Step::Record(Box::new(Record {
        fields: vec![(name, e)],
        ..rec.clone()
    })))
}

fn insert_field(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    // `name!` is required, `name?` optional: either way the field is added.
    let name = |k: &str| smt.get(k).map(|v| v.trim_end_matches(['!', '?']).to_string());
    if smt.side == Side::Key {
        let Some(k) = json_key(rec, ctx) else {
            return Ok(Step::Untranslatable(format!("inserts into the key; it {STRUCT_KEY}")));
        };
        let mut sql = k.sql.clone();
        let slots = [
            ("topic.field", &rec.topic),
            ("partition.field", &rec.partition),
            ("offset.field", &rec.offset),
            ("timestamp.field", &rec.timestamp),
        ];
        for (setting, slot) in slots {
            if let Some(n) = name(setting) {
                let value = slot.as_ref().map_or("NULL".to_string(), |e| e.sql.clone());
                sql = format!("json_set({sql}, {}, {value})", lit(&n));
            }
        }
        if let (Some(n), Some(v)) = (name("static.field"), smt.get("static.value")) {
            sql = format!("json_set({sql}, {}, {})", lit(&n), lit(v));
        }
        return Ok(with_key(rec, sql));
    }
    let null = |ty: DataType, sql_ty: &str| Expr::new(format!("CAST(NULL AS {sql_ty})"), ty);
    let mut added: Vec<(String, Expr)> = Vec::new();
    if let Some(n) = name("topic.field") {
        let topic = rec.topic.clone().unwrap_or_else(|| null(DataType::Utf8, "TEXT"));
        added.push((n, topic));
    }
    if let Some(n) = name("partition.field") {
        added.push((n, rec.partition.clone().unwrap_or_else(|| null(DataType::Int32, "INT"))));
    }
    if let Some(n) = name("offset.field") {
        match &rec.offset {
            Some(o) if ctx.from_kafka => added.push((n, o.clone())),
            _ => {
                return Err(smt.err(
                    "offset.field",
                    format!(
                        "offsets exist only for records read from Kafka (sink connectors); these come from {}",
                        ctx.origin
                    ),
                ));
            }
        }
    }
    if let Some(n) = name("timestamp.field") {
        added.push((
            n,
            rec.timestamp
                .clone()
                .unwrap_or_else(|| null(DataType::Timestamp(TimeUnit::Millisecond, None), "TIMESTAMP")),
        ));
    }
    if let (Some(n), Some(v)) = (name("static.field"), smt.get("static.value")) {
        added.push((n, Expr::new(lit(v), DataType::Utf8)));
    }
    let mut next = rec.clone();
    for (n, e) in added {
        if next.field(&n).is_some() {
            return Err(smt.err(
                "type",
                format!(
                    "inserts field '{n}', which the record already has (Kafka Connect refuses duplicate field names)"
                ),
            ));
        }
        next.fields.push((n, unless_tombstone(ctx, e)));
    }
    Ok(Step::Record(Box::new(next)))
}

fn insert_header(smt: &Smt<'_>, rec: &Record) -> Result<Step> {
    let name = smt.require("header", "the header's name")?;
    let value = smt.require("value.literal", "the header's value")?;
    let h = rec.headers.clone().unwrap_or_else(|| Expr::new("NULL", DataType::Null));
    let mut next = rec.clone();
    next.headers = Some(Expr::new(
        format!("header_add({}, {}, {})", h.sql, lit(name), lit(value)),
        h.ty,
    ));
    Ok(Step::Record(Box::new(next)))
}

fn mask_field(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let fields = smt.list("fields");
    if fields.is_empty() {
        return Err(smt.err("fields", "missing: the fields to mask"));
    }
    let replacement = smt.get("replacement");
    if smt.side == Side::Key {
        let Some(k) = json_key(rec, ctx) else {
            return Ok(Step::Untranslatable(format!("masks key fields; it {STRUCT_KEY}")));
        };
        let mut sql = k.sql.clone();
        for f in &fields {
            sql = match replacement {
                Some(r) => format!("json_mask({sql}, {}, {})", lit(f), lit(r)),
                None => format!("json_mask({sql}, {})", lit(f)),
            };
        }
        return Ok(with_key(rec, sql));
    }
    let mut next = rec.clone();
    for f in &fields {
        let e = field(smt, rec, "fields", f)?;
        if is_complex(&e.ty) {
            return Err(smt.err(
                "fields",
                format!(
                    "cannot mask field '{f}' of type {}: Kafka Connect masks primitive fields",
                    type_word(&e.ty)
                ),
            ));
        }
        let sql = match replacement {
            None => format!("mask({})", e.sql),
            Some(r) => {
                let numeric = e.ty.is_numeric();
                let text = matches!(e.ty, DataType::Utf8 | DataType::LargeUtf8);
                if !numeric && !text {
                    return Err(smt.err(
                        "replacement",
                        format!(
                            "field '{f}' is {}; Kafka Connect replaces only string and numeric fields",
                            type_word(&e.ty)
                        ),
                    ));
                }
                if numeric && r.parse::<f64>().is_err() {
                    return Err(smt.err(
                        "replacement",
                        format!("'{r}' is not a number, and field '{f}' is {}", type_word(&e.ty)),
                    ));
                }
                format!("mask({}, {})", e.sql, lit(r))
            }
        };
        if let Some(slot) = next.fields.iter_mut().find(|(n, _)| n == f) {
            slot.1 = Expr::new(sql, e.ty.clone());
        }
    }
    Ok(Step::Record(Box::new(next)))
}

fn regex_router(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let regex = smt.require("regex", "the regular expression topics are matched against")?;
    let replacement = smt.require("replacement", "the new topic, with $1 for groups")?;
    quiver_udf::connect::check_regex(regex).map_err(|e| smt.err("regex", e))?;
    quiver_udf::connect::java_replacement(replacement).map_err(|e| smt.err("replacement", e))?;
    let Some(topic) = &rec.topic else {
        return Err(smt.err(
            "type",
            format!("routes by topic, and records from {} have none", ctx.origin),
        ));
    };
    let mut next = rec.clone();
    next.topic = Some(Expr::new(
        format!("regex_route({}, {}, {})", topic.sql, lit(regex), lit(replacement)),
        DataType::Utf8,
    ));
    Ok(Step::Record(Box::new(next)))
}

fn replace_field(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    // `blacklist`/`whitelist` are the pre-2.6 names of exclude/include.
    let mut exclude = smt.list("exclude");
    exclude.extend(smt.list("blacklist"));
    let mut include = smt.list("include");
    include.extend(smt.list("whitelist"));
    let mut renames: Vec<(String, String)> = Vec::new();
    for r in smt.list("renames") {
        match r.split_once(':') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                renames.push((from.trim().to_string(), to.trim().to_string()))
            }
            _ => return Err(smt.err("renames", format!("'{r}' is not old:new"))),
        }
    }
    if smt.side == Side::Key {
        let Some(k) = json_key(rec, ctx) else {
            return Ok(Step::Untranslatable(format!("rewrites key fields; it {STRUCT_KEY}")));
        };
        let list = |names: &[String]| names.iter().map(|n| lit(n)).collect::<Vec<_>>().join(", ");
        let mut sql = k.sql.clone();
        if !include.is_empty() {
            sql = format!("json_keep({sql}, {})", list(&include));
        }
        if !exclude.is_empty() {
            sql = format!("json_remove({sql}, {})", list(&exclude));
        }
        for (from, to) in &renames {
            sql = format!("json_rename({sql}, {}, {})", lit(from), lit(to));
        }
        return Ok(with_key(rec, sql));
    }
    for (setting, names) in [("exclude", &exclude), ("include", &include)] {
        if let Some(n) = names.iter().find(|n| rec.field(n).is_none()) {
            return Err(smt.err(
                setting,
                format!("the record has no field '{n}' (fields: {})", rec.field_names()),
            ));
        }
    }
    // Kafka Connect: a field is kept when not excluded and (no include list, or included);
    // renames apply to the fields kept.
    let mut fields = Vec::new();
    for (n, e) in &rec.fields {
        if exclude.contains(n) || (!include.is_empty() && !include.contains(n)) {
            continue;
        }
        let name = renames
            .iter()
            .find(|(from, _)| from == n)
            .map_or(n.clone(), |(_, to)| to.clone());
        if fields.iter().any(|(m, _): &(String, Expr)| *m == name) {
            return Err(smt.err("renames", format!("two fields would be named '{name}'")));
        }
        fields.push((name, e.clone()));
    }
    Ok(Step::Record(Box::new(Record { fields, ..rec.clone() })))
}

const PRECISIONS: [(&str, &str); 4] = [
    ("seconds", "seconds"),
    ("milliseconds", "millis"),
    ("microseconds", "micros"),
    ("nanoseconds", "nanos"),
];

fn timestamp_converter(smt: &Smt<'_>, rec: &Record) -> Result<Step> {
    let target = smt.require("target.type", "one of string, unix, Date, Time, Timestamp")?;
    if !["string", "unix", "Date", "Time", "Timestamp"].contains(&target) {
        return Err(smt.err(
            "target.type",
            format!("'{target}' is not one of string, unix, Date, Time, Timestamp"),
        ));
    }
    let format = smt.get("format");
    if let Some(f) = format {
        quiver_udf::simple_date_format::to_chrono(f).map_err(|e| smt.err("format", e))?;
    }
    let precision = smt.get("unix.precision").unwrap_or("milliseconds");
    let Some((_, unit)) = PRECISIONS.iter().find(|(p, _)| *p == precision) else {
        return Err(smt.err(
            "unix.precision",
            format!("'{precision}' is not one of seconds, milliseconds, microseconds, nanoseconds"),
        ));
    };
    let field_name = smt.get("field").map(str::to_string);
    let need_format = || {
        smt.err(
            "format",
            "required when converting to or from a string (a SimpleDateFormat pattern)",
        )
    };
    // The input as a TIMESTAMP expression.
    let convert = |e: &Expr| -> Result<Expr> {
        let ts = match &e.ty {
            DataType::Timestamp(..) => e.sql.clone(),
            DataType::Date32 | DataType::Date64 => format!("CAST({} AS TIMESTAMP)", e.sql),
            DataType::Int64 | DataType::Int32 => format!("to_timestamp_{unit}({})", e.sql),
            DataType::Utf8 | DataType::LargeUtf8 => {
                format!("parse_timestamp({}, {})", e.sql, lit(format.ok_or_else(need_format)?))
            }
            other => return Err(smt.err(
                "field",
                format!(
                    "cannot convert a {} to a timestamp (Kafka Connect takes string, unix, Date, Time or Timestamp)",
                    type_word(other)
                ),
            )),
        };
        Ok(match target {
            "string" => Expr::new(
                format!("format_timestamp({ts}, {})", lit(format.ok_or_else(need_format)?)),
                DataType::Utf8,
            ),
            "unix" => Expr::new(format!("CAST(to_timestamp_{unit}({ts}) AS BIGINT)"), DataType::Int64),
            "Date" => Expr::new(format!("CAST({ts} AS DATE)"), DataType::Date32),
            "Time" => Expr::new(format!("CAST({ts} AS TIME)"), DataType::Time64(TimeUnit::Nanosecond)),
            _ => Expr::new(ts, DataType::Timestamp(TimeUnit::Microsecond, None)),
        })
    };
    let mut next = rec.clone();
    match (smt.side, field_name) {
        (Side::Key, None) => match &rec.key {
            Some(k) => next.key = Some(convert(k)?),
            None => return Ok(Step::Untranslatable("converts the key, and these records have none".into())),
        },
        (Side::Key, Some(_)) => return Ok(Step::Untranslatable("converts a key field: the type of a JSON key's field (number or text) is not known before the records arrive".into())),
        (_, Some(name)) => {
            let e = convert(field(smt, rec, "field", &name)?)?;
            if let Some(slot) = next.fields.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = e;
            }
        }
        (_, None) => match whole_value(rec) {
            Some((n, e)) => next.fields = vec![(n.clone(), convert(e)?)],
            None => return Err(smt.err("field", format!("missing: without it the whole value is converted, and this record has fields {}", rec.field_names()))),
        },
    }
    Ok(Step::Record(Box::new(next)))
}

fn timestamp_router(smt: &Smt<'_>, rec: &Record, ctx: &Context) -> Result<Step> {
    let topic_format = smt.get("topic.format").unwrap_or("${topic}-${timestamp}").to_string();
    let ts_format = smt.get("timestamp.format").unwrap_or("yyyyMMdd").to_string();
    quiver_udf::simple_date_format::to_chrono(&ts_format).map_err(|e| smt.err("timestamp.format", e))?;
    let (Some(topic), Some(ts)) = (&rec.topic, &rec.timestamp) else {
        return Err(smt.err("type", format!("needs each record's topic and timestamp; records from {} have no timestamp (Kafka Connect fails them too)", ctx.origin)));
    };
    // Split the format around ${topic} and ${timestamp}.
    let mut parts: Vec<String> = Vec::new();
    let mut rest = topic_format.as_str();
    while !rest.is_empty() {
        let next = [
            ("${topic}", topic.sql.clone()),
            (
                "${timestamp}",
                format!("format_timestamp({}, {})", ts.sql, lit(&ts_format)),
            ),
        ]
        .into_iter()
        .filter_map(|(p, sql)| rest.find(p).map(|i| (i, p.len(), sql)))
        .min_by_key(|(i, _, _)| *i);
        match next {
            Some((i, len, sql)) => {
                if i > 0 {
                    parts.push(lit(&rest[..i]));
                }
                parts.push(sql);
                rest = &rest[i + len..];
            }
            None => {
                parts.push(lit(rest));
                rest = "";
            }
        }
    }
    let sql = if parts.is_empty() {
        "''".to_string()
    } else {
        parts.join(" || ")
    };
    let mut next = rec.clone();
    next.topic = Some(Expr::new(sql, DataType::Utf8));
    Ok(Step::Record(Box::new(next)))
}

fn value_to_key(smt: &Smt<'_>, rec: &Record) -> Result<Step> {
    let fields = smt.list("fields");
    if fields.is_empty() {
        return Err(smt.err("fields", "missing: the value fields that make the key"));
    }
    for f in &fields {
        field(smt, rec, "fields", f)?;
    }
    let mut next = rec.clone();
    next.key_fields = Some(fields);
    Ok(Step::Record(Box::new(next)))
}
