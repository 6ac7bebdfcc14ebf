//! Changes as Debezium's change events (`envelope = 'debezium'` and
//! `'debezium-unwrapped'`), so a Debezium consumer reading Quiver's Kafka output
//! sees what Debezium's PostgreSQL connector would have written.
//!
//! Each change becomes a row of `_topic` (`{topic.prefix}.{schema}.{table}`),
//! `_key` (the primary key struct, NULL for a table without one) and `_value`
//! (the event, NULL for a tombstone), already serialized the way Kafka
//! Connect's JsonConverter writes them (with or without `{"schema", "payload"}`)
//! or, for keys, StringConverter. A Kafka sink with `format = 'raw'` writes them
//! as they are: `SELECT _value AS value, _key, _topic FROM …`.
//!
//! Design notes:
//! - **Serialized in the source.** One slot carries many tables, each with its
//!   own columns that change with `ALTER TABLE`; an Arrow batch has one schema.
//!   Building each event from its table's Relation (and the catalog's primary
//!   key and NOT NULL, which pgoutput does not send) keeps every table's schema
//!   exact and makes `ADD COLUMN` appear in the next event with no restart.
//! - **Types** follow Debezium's defaults and options: integers, floats and
//!   booleans as themselves; NUMERIC as Connect `Decimal` bytes (or
//!   `VariableScaleDecimal` without a declared scale), text or double per
//!   `decimal.handling.mode`; DATE as days (`io.debezium.time.Date`); TIME and
//!   TIMESTAMP as milli- or microseconds per the column's precision
//!   (`time.precision.mode = adaptive`) or Connect's millisecond types
//!   (`connect`); TIMESTAMPTZ and TIMETZ as UTC ISO-8601 strings
//!   (`ZonedTimestamp`, `ZonedTime`); UUID, JSON, JSONB and XML as strings named
//!   as Debezium names them; BYTEA per `binary.handling.mode`. Any other type
//!   (arrays, ranges, intervals, enums, geometry) is its PostgreSQL text as a
//!   string — Debezium drops them unless `include.unknown.datatypes`.
//! - **Events.** Inserts are `c`, snapshot rows `r` (`source.snapshot` `true`),
//!   updates `u` with `before` under `REPLICA IDENTITY FULL` (NULL otherwise, as
//!   Debezium), deletes `d` with the old key (or row) in `before` and then a
//!   tombstone (`tombstones.on.delete`), truncates `t` when not skipped. An update
//!   that changes the primary key is a delete (and tombstone) of the old key and
//!   a create of the new one, as Debezium emits it. An unchanged TOASTed value is
//!   Debezium's placeholder `__debezium_unavailable_value` (its bytes in a BYTEA).
//! - **`source.version`** says `quiver-<version>`, so where an event came from
//!   stays visible; every other field is Debezium's.
//! - **Avro** (`key.converter` / `value.converter = 'avro'`): the Connect schema
//!   becomes the Avro schema AvroConverter would register (records named by
//!   the Connect names, optional fields as unions with null, `connect.*`
//!   properties, Decimal as the `decimal` logical type), registered under
//!   `{topic}-key` / `{topic}-value` when a table's shape arrives — off the row
//!   path, and again after an ALTER TABLE. The event is written as JSON first
//!   and re-encoded from it, so both converters share one type mapping.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Value as Json, json};

use super::config::{ADDABLE_FIELDS, BinaryMode, DecimalMode, EventConfig, TimeMode};
use super::pgoutput::{RelColumn, Value};
use super::rows::{META, Meta, Origin, Target, UNAVAILABLE, metadata_fields, unhex, zone_with_minutes};
use crate::api::{RejectedRecord, RowOrigins, Stage};
use crate::formats::avro::SchemaRegistry;

/// The columns an events batch carries before the metadata ones.
pub(crate) fn event_fields() -> Vec<FieldRef> {
    let mut fields: Vec<FieldRef> = vec![
        Arc::new(Field::new("_topic", DataType::Utf8, true)),
        Arc::new(Field::new("_key", DataType::Binary, true)),
        Arc::new(Field::new("_value", DataType::Binary, true)),
    ];
    fields.extend(metadata_fields());
    fields
}

const VERSION: &str = concat!("quiver-", env!("CARGO_PKG_VERSION"));
const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");

/// How one column's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
    /// NUMERIC with a declared scale, precise: Connect `Decimal` bytes.
    Decimal(u32),
    /// NUMERIC without one, precise: `VariableScaleDecimal {scale, value}`.
    VariableDecimal,
    Text,
    Bytes(BinaryMode),
    /// Days since the epoch.
    Date,
    /// Time of day, in milliseconds (`false`) or microseconds.
    Time(bool),
    /// Since the epoch, in milliseconds (`false`) or microseconds.
    Timestamp(bool),
    ZonedTimestamp,
    ZonedTime,
}

/// A column's Connect schema and how its values are written.
fn column_kind(c: &RelColumn, cfg: &EventConfig) -> (Kind, Json) {
    // The declared precision of time types (-1: the default, 6).
    let precision = if c.type_mod < 0 { 6 } else { c.type_mod };
    let micros_time = match cfg.time {
        TimeMode::Connect => false,
        TimeMode::AdaptiveTimeMicros => true,
        TimeMode::Adaptive => precision > 3,
    };
    let named = |ty: &str, name: &str| json!({"type": ty, "name": name, "version": 1});
    let plain = |ty: &str| json!({"type": ty});
    match c.type_oid {
        16 => (Kind::Bool, plain("boolean")),
        21 => (Kind::Int, plain("int16")),
        23 => (Kind::Int, plain("int32")),
        20 | 26 => (Kind::Int, plain("int64")),
        700 => (Kind::Float, plain("float")),
        701 => (Kind::Float, plain("double")),
        1700 => match cfg.decimal {
            DecimalMode::String => (Kind::Text, plain("string")),
            DecimalMode::Double => (Kind::Float, plain("double")),
            DecimalMode::Precise if c.type_mod >= 4 => {
                let m = c.type_mod - 4;
                let (p, s) = ((m >> 16) & 0xffff, m & 0xffff);
                (
                    Kind::Decimal(s as u32),
                    json!({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                           "parameters": {"scale": s.to_string(), "connect.decimal.precision": p.to_string()}}),
                )
            }
            DecimalMode::Precise => (
                Kind::VariableDecimal,
                json!({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
                       "doc": "Variable scaled decimal",
                       "fields": [{"type": "int32", "optional": false, "field": "scale"},
                                  {"type": "bytes", "optional": false, "field": "value"}]}),
            ),
        },
        17 => match cfg.binary {
            BinaryMode::Bytes => (Kind::Bytes(cfg.binary), plain("bytes")),
            other => (Kind::Bytes(other), plain("string")),
        },
        1082 => match cfg.time {
            TimeMode::Connect => (Kind::Date, named("int32", "org.apache.kafka.connect.data.Date")),
            _ => (Kind::Date, named("int32", "io.debezium.time.Date")),
        },
        1083 => match (cfg.time, micros_time) {
            (TimeMode::Connect, _) => (Kind::Time(false), named("int32", "org.apache.kafka.connect.data.Time")),
            (_, true) => (Kind::Time(true), named("int64", "io.debezium.time.MicroTime")),
            (_, false) => (Kind::Time(false), named("int32", "io.debezium.time.Time")),
        },
        1114 => match (cfg.time, precision > 3) {
            (TimeMode::Connect, _) => (
                Kind::Timestamp(false),
                named("int64", "org.apache.kafka.connect.data.Timestamp"),
            ),
            (_, true) => (Kind::Timestamp(true), named("int64", "io.debezium.time.MicroTimestamp")),
            (_, false) => (Kind::Timestamp(false), named("int64", "io.debezium.time.Timestamp")),
        },
        1184 => (Kind::ZonedTimestamp, named("string", "io.debezium.time.ZonedTimestamp")),
        1266 => (Kind::ZonedTime, named("string", "io.debezium.time.ZonedTime")),
        2950 => (Kind::Text, named("string", "io.debezium.data.Uuid")),
        114 | 3802 => (Kind::Text, named("string", "io.debezium.data.Json")),
        142 => (Kind::Text, named("string", "io.debezium.data.Xml")),
        _ => (Kind::Text, plain("string")),
    }
}

/// A column as a field of a struct schema.
fn field_schema(mut schema: Json, optional: bool, name: &str) -> Json {
    if let Json::Object(m) = &mut schema {
        m.insert("optional".into(), optional.into());
        m.insert("field".into(), name.into());
    }
    schema
}

/// One table's event shapes, built when its Relation arrives.
struct Shape {
    generation: u64,
    topic: String,
    kinds: Vec<Kind>,
    /// Indices of the primary-key columns; empty: the events have no key.
    key: Vec<usize>,
    /// `{"schema": …, "payload": ` for the key and the value (schemas enabled).
    key_head: Option<String>,
    value_head: Option<String>,
    /// The Connect schemas of key and value, for Avro.
    key_schema: Json,
    value_schema: Json,
    /// Avro: the registry's ids of the key and value schemas, once registered.
    registered: Option<(u32, u32)>,
}

impl Shape {
    fn new(target: &Target, cfg: &EventConfig) -> Self {
        let rel = &target.rel;
        let topic = format!("{}.{}.{}", cfg.topic_prefix, rel.schema, rel.table);
        let avro_name = |suffix: &str| {
            let name: String = format!("{}.{}.{}", cfg.topic_prefix, rel.schema, rel.table)
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
                .collect();
            format!("{name}.{suffix}")
        };
        let mut kinds = Vec::with_capacity(rel.columns.len());
        let mut fields = Vec::with_capacity(rel.columns.len());
        for c in &rel.columns {
            let (kind, schema) = column_kind(c, cfg);
            kinds.push(kind);
            fields.push(field_schema(schema, !c.not_null, &c.name));
        }
        let key: Vec<usize> = (0..rel.columns.len()).filter(|i| rel.columns[*i].primary).collect();
        let key_schema = json!({
            "type": "struct",
            "fields": key.iter().map(|i| fields[*i].clone()).collect::<Vec<_>>(),
            "optional": false,
            "name": avro_name("Key"),
        });
        let row_schema = |optional: bool, field: Option<&str>, extra: &[Json]| {
            let mut all = fields.clone();
            all.extend_from_slice(extra);
            let mut s = json!({"type": "struct", "fields": all, "optional": optional, "name": avro_name("Value")});
            if let (Some(f), Json::Object(m)) = (field, &mut s) {
                m.insert("field".into(), f.into());
            }
            s
        };
        let value_schema = match &cfg.unwrap {
            Some(u) => {
                let mut extra: Vec<Json> = u
                    .add_fields
                    .iter()
                    .map(|f| {
                        let ty = ADDABLE_FIELDS
                            .iter()
                            .find(|(n, _)| n == f)
                            .map_or("string", |(_, t)| *t);
                        json!({"type": ty, "optional": true, "field": added_name(&u.prefix, f)})
                    })
                    .collect();
                if u.rewrite {
                    extra.push(json!({"type": "string", "optional": true, "field": format!("{}deleted", u.prefix)}));
                }
                row_schema(false, None, &extra)
            }
            None => json!({
                "type": "struct",
                "fields": [
                    row_schema(true, Some("before"), &[]),
                    row_schema(true, Some("after"), &[]),
                    source_schema(),
                    {"type": "struct", "fields": [
                        {"type": "string", "optional": false, "field": "id"},
                        {"type": "int64", "optional": false, "field": "total_order"},
                        {"type": "int64", "optional": false, "field": "data_collection_order"}],
                     "optional": true, "name": "event.block", "version": 1, "field": "transaction"},
                    {"type": "string", "optional": false, "field": "op"},
                    {"type": "int64", "optional": true, "field": "ts_ms"},
                    {"type": "int64", "optional": true, "field": "ts_us"},
                    {"type": "int64", "optional": true, "field": "ts_ns"},
                ],
                "optional": false,
                "name": avro_name("Envelope"),
                "version": 2,
            }),
        };
        let head = |schema: &Json| format!("{{\"schema\":{schema},\"payload\":");
        Self {
            generation: target.generation,
            topic,
            kinds,
            key_head: (cfg.key_schemas && !cfg.key_string && !cfg.key_avro && !key.is_empty())
                .then(|| head(&key_schema)),
            value_head: (cfg.value_schemas && !cfg.value_avro).then(|| head(&value_schema)),
            key,
            key_schema,
            value_schema,
            registered: None,
        }
    }
}

fn added_name(prefix: &str, field: &str) -> String {
    format!("{prefix}{}", field.replace('.', "_"))
}

fn source_schema() -> Json {
    let f = |ty: &str, optional: bool, name: &str| json!({"type": ty, "optional": optional, "field": name});
    json!({
        "type": "struct",
        "fields": [
            f("string", false, "version"),
            f("string", false, "connector"),
            f("string", false, "name"),
            f("int64", false, "ts_ms"),
            {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
             "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
             "default": "false", "field": "snapshot"},
            f("string", false, "db"),
            f("string", true, "sequence"),
            f("int64", true, "ts_us"),
            f("int64", true, "ts_ns"),
            f("string", false, "schema"),
            f("string", false, "table"),
            f("int64", true, "txId"),
            f("int64", true, "lsn"),
            f("int64", true, "xmin"),
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.Source",
        "field": "source",
    })
}

/// Gathers the events of one batch.
pub(crate) struct Events {
    cfg: EventConfig,
    /// `debezium-unwrapped`: what ExtractNewRecordState adds, named once.
    unwrap: Option<Arc<Unwrapped>>,
    registry: Option<Arc<SchemaRegistry>>,
    db: String,
    source: String,
    shapes: HashMap<u32, Shape>,
    topic: StringBuilder,
    key: BinaryBuilder,
    value: BinaryBuilder,
    meta: Meta,
    origins: RowOrigins,
    rejected: Vec<RejectedRecord>,
    /// Scratch for one event.
    buf: Vec<u8>,
    key_buf: Vec<u8>,
}

/// ExtractNewRecordState's settings with the names of the fields it adds.
struct Unwrapped {
    rewrite: bool,
    tombstones: bool,
    /// (`add.fields` entry, the field's name in the row).
    added: Vec<(String, String)>,
    deleted: String,
}

/// Which row image goes where in an event.
struct Images<'a, 'v> {
    before: Option<&'a [Value<'v>]>,
    after: Option<&'a [Value<'v>]>,
    /// Where an unchanged TOASTed value of `after` can be found (the old row).
    old: Option<&'a [Value<'v>]>,
}

impl Events {
    pub(crate) fn new(cfg: EventConfig, db: &str, schema: &SchemaRef, used: &[bool], source: &str) -> Self {
        let with_before = used.get(schema.fields().len() - 1).copied().unwrap_or(true);
        let registry = cfg
            .registry
            .as_ref()
            .map(|(url, auth)| Arc::new(SchemaRegistry::new(url, auth.as_deref())));
        let unwrap = cfg.unwrap.as_ref().map(|u| {
            Arc::new(Unwrapped {
                rewrite: u.rewrite,
                tombstones: u.tombstones,
                added: u
                    .add_fields
                    .iter()
                    .map(|f| (f.clone(), added_name(&u.prefix, f)))
                    .collect(),
                deleted: format!("{}deleted", u.prefix),
            })
        });
        Self {
            cfg,
            unwrap,
            registry,
            db: db.to_string(),
            source: source.to_string(),
            shapes: HashMap::new(),
            topic: StringBuilder::new(),
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            meta: Meta::new(with_before),
            origins: RowOrigins::default(),
            rejected: Vec::new(),
            buf: Vec::new(),
            key_buf: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.origins.len()
    }

    /// Appends the events of one change: `values` is the new row, `old` the old
    /// key or row (as [`super::rows::Rows::push`] takes them).
    fn avro(&self) -> bool {
        self.cfg.key_avro || self.cfg.value_avro
    }

    /// The shape of `target`'s events, built again when its relation changed.
    fn shape(&mut self, target: &Target) -> &mut Shape {
        let cfg = &self.cfg;
        let shape = self
            .shapes
            .entry(target.rel.id)
            .or_insert_with(|| Shape::new(target, cfg));
        if shape.generation != target.generation {
            *shape = Shape::new(target, cfg);
        }
        shape
    }

    /// Avro: registers the key and value schemas of `target`'s events under
    /// `{topic}-key` and `{topic}-value` (TopicNameStrategy, as AvroConverter),
    /// once per shape of the table. Called where a table's shape arrives, off
    /// the row path.
    pub(crate) async fn prepare(&mut self, target: &Target) -> Result<(), String> {
        let Some(registry) = self.registry.clone() else {
            return Ok(());
        };
        if !self.avro() {
            return Ok(());
        }
        let (key_on, value_on) = (self.cfg.key_avro, self.cfg.value_avro);
        let shape = self.shape(target);
        if shape.registered.is_some() {
            return Ok(());
        }
        let key_on = key_on && !shape.key.is_empty();
        let key_avro = avro_schema(&shape.key_schema, &mut Vec::new()).to_string();
        let value_avro = avro_schema(&shape.value_schema, &mut Vec::new()).to_string();
        let topic = shape.topic.clone();
        let ids = tokio::task::spawn_blocking(move || -> Result<(u32, u32), String> {
            let key = if key_on {
                registry.register(&format!("{topic}-key"), &key_avro)?
            } else {
                0
            };
            let value = if value_on {
                registry.register(&format!("{topic}-value"), &value_avro)?
            } else {
                0
            };
            Ok((key, value))
        })
        .await
        .map_err(|e| e.to_string())??;
        self.shape(target).registered = Some(ids);
        Ok(())
    }

    pub(crate) fn push(
        &mut self,
        target: &Target,
        values: Option<&[Value<'_>]>,
        old: Option<&[Value<'_>]>,
        at: Origin,
    ) {
        self.shape(target);
        let Some(shape) = self.shapes.remove(&target.rel.id) else {
            return;
        };
        let result = if self.avro() && shape.registered.is_none() {
            Err(format!(
                "the Avro schemas of {} are not registered with the Schema Registry",
                target.qualified
            ))
        } else {
            self.events(&shape, target, values, old, at)
        };
        self.shapes.insert(target.rel.id, shape);
        if let Err(why) = result {
            let record = match values.or(old) {
                Some(v) => super::rows::values_json(target, v),
                None => Json::Null,
            };
            self.rejected.push(RejectedRecord {
                source: self.source.clone(),
                partition: target.qualified.to_string(),
                position: at.lsn as i64,
                stage: Stage::Decode,
                error: why,
                record,
                raw: None,
            });
        }
    }

    fn events(
        &mut self,
        shape: &Shape,
        target: &Target,
        values: Option<&[Value<'_>]>,
        old: Option<&[Value<'_>]>,
        at: Origin,
    ) -> Result<(), String> {
        let full = target.rel.replica_identity == b'f';
        match at.op {
            b'u' => {
                let new = values.unwrap_or_default();
                let key_changed = old.is_some_and(|o| shape.key.iter().any(|&i| o.get(i) != new.get(i)));
                if key_changed {
                    // Debezium: a delete of the old key (and its tombstone), then a create.
                    self.delete(shape, target, old, at)?;
                    return self.event(
                        shape,
                        target,
                        b'c',
                        values,
                        Images {
                            before: None,
                            after: values,
                            old,
                        },
                        at,
                    );
                }
                let before = old.filter(|_| full);
                self.event(
                    shape,
                    target,
                    b'u',
                    values,
                    Images {
                        before,
                        after: values,
                        old,
                    },
                    at,
                )
            }
            b'd' => self.delete(shape, target, old, at),
            b't' => {
                if self.unwrap.is_some() {
                    return Ok(());
                }
                self.event(
                    shape,
                    target,
                    b't',
                    None,
                    Images {
                        before: None,
                        after: None,
                        old: None,
                    },
                    at,
                )
            }
            op => self.event(
                shape,
                target,
                op,
                values,
                Images {
                    before: None,
                    after: values,
                    old: None,
                },
                at,
            ),
        }
    }

    /// A delete event of the `old` key or row (and its tombstone).
    fn delete(&mut self, shape: &Shape, target: &Target, old: Option<&[Value<'_>]>, at: Origin) -> Result<(), String> {
        let images = Images {
            before: old,
            after: None,
            old: None,
        };
        self.event(shape, target, b'd', old, images, at)
    }

    /// Appends one event (and the tombstone after a delete); `key_row` holds the key.
    fn event(
        &mut self,
        shape: &Shape,
        target: &Target,
        op: u8,
        key_row: Option<&[Value<'_>]>,
        images: Images<'_, '_>,
        at: Origin,
    ) -> Result<(), String> {
        let has_key = !shape.key.is_empty() && key_row.is_some();
        if let Some(row) = key_row.filter(|_| has_key) {
            self.key_buf.clear();
            self.write_key(shape, target, row)?;
            if let (true, Some((id, _))) = (self.cfg.key_avro, shape.registered) {
                self.key_buf = to_avro(&self.key_buf, &shape.key_schema, id)?;
            }
        }
        let mut value = true;
        let mut tombstone = op == b'd' && self.cfg.tombstones && has_key;
        self.buf.clear();
        match self.unwrap.clone() {
            None => {
                if let Some(h) = &shape.value_head {
                    self.buf.extend_from_slice(h.as_bytes());
                }
                self.write_envelope(shape, target, op, &images, at)?;
                if shape.value_head.is_some() {
                    self.buf.push(b'}');
                }
            }
            Some(u) => {
                let row = if op == b'd' { images.before } else { images.after };
                tombstone &= u.tombstones;
                if op == b'd' && !u.rewrite {
                    value = false;
                } else {
                    if let Some(h) = &shape.value_head {
                        self.buf.extend_from_slice(h.as_bytes());
                    }
                    self.buf.push(b'{');
                    let mut first = self.write_fields(shape, target, row, images.old)?;
                    for (f, name) in &u.added {
                        sep(&mut self.buf, &mut first);
                        json_str(&mut self.buf, name);
                        self.buf.push(b':');
                        write_added(&mut self.buf, f, target, op, at, &self.db, &self.cfg.topic_prefix);
                    }
                    if u.rewrite {
                        sep(&mut self.buf, &mut first);
                        json_str(&mut self.buf, &u.deleted);
                        self.buf.push(b':');
                        json_str(&mut self.buf, if op == b'd' { "true" } else { "false" });
                    }
                    self.buf.push(b'}');
                    if shape.value_head.is_some() {
                        self.buf.push(b'}');
                    }
                }
            }
        }
        if value {
            if let (true, Some((_, id))) = (self.cfg.value_avro, shape.registered) {
                self.buf = to_avro(&self.buf, &shape.value_schema, id)?;
            }
            self.append(shape, target, has_key, true, op, images.before, at);
        }
        if tombstone {
            self.append(shape, target, true, false, op, images.before, at);
        }
        Ok(())
    }

    /// Appends the row in `key_buf` and `buf` (without `value`: a tombstone);
    /// `op` is the event's, for `_op`.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        shape: &Shape,
        target: &Target,
        key: bool,
        value: bool,
        op: u8,
        old: Option<&[Value<'_>]>,
        at: Origin,
    ) {
        self.topic.append_value(&shape.topic);
        if key {
            self.key.append_value(&self.key_buf);
        } else {
            self.key.append_null();
        }
        if value {
            self.value.append_value(&self.buf);
        } else {
            self.value.append_null();
        }
        self.meta.push(target, old, Origin { op, ..at });
        self.origins.push(&target.qualified, at.lsn as i64);
    }

    fn write_key(&mut self, shape: &Shape, target: &Target, row: &[Value<'_>]) -> Result<(), String> {
        let mut out = std::mem::take(&mut self.key_buf);
        let result = (|| {
            if self.cfg.key_string {
                // StringConverter writes Struct.toString(): Struct{a=1,b=x}, nulls left out.
                out.extend_from_slice(b"Struct{");
                let mut first = true;
                for &i in &shape.key {
                    if let Some(Value::Text(t)) = row.get(i) {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        out.extend_from_slice(target.rel.columns[i].name.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(t);
                    }
                }
                out.push(b'}');
                return Ok(());
            }
            if let Some(h) = &shape.key_head {
                out.extend_from_slice(h.as_bytes());
            }
            out.push(b'{');
            let mut first = true;
            for &i in &shape.key {
                sep(&mut out, &mut first);
                json_str(&mut out, &target.rel.columns[i].name);
                out.push(b':');
                write_value(
                    &mut out,
                    shape.kinds[i],
                    row.get(i).copied().unwrap_or(Value::Null),
                    &target.rel.columns[i],
                )?;
            }
            out.push(b'}');
            if shape.key_head.is_some() {
                out.push(b'}');
            }
            Ok(())
        })();
        self.key_buf = out;
        result
    }

    /// `{col: value, …}` of a row image, without the braces; `Ok(first)`, whether
    /// nothing was written.
    fn write_fields(
        &mut self,
        shape: &Shape,
        target: &Target,
        row: Option<&[Value<'_>]>,
        old: Option<&[Value<'_>]>,
    ) -> Result<bool, String> {
        let mut first = true;
        for (i, c) in target.rel.columns.iter().enumerate() {
            sep(&mut self.buf, &mut first);
            json_str(&mut self.buf, &c.name);
            self.buf.push(b':');
            let mut v = row.and_then(|r| r.get(i).copied()).unwrap_or(Value::Null);
            if v == Value::Unchanged {
                v = match old.and_then(|o| o.get(i)) {
                    Some(o @ Value::Text(_)) => *o,
                    _ => match shape.kinds[i] {
                        Kind::Text => Value::Text(UNAVAILABLE.as_bytes()),
                        Kind::Bytes(_) => {
                            // The placeholder's bytes, as Debezium's binary placeholder.
                            write_bytes(&mut self.buf, UNAVAILABLE.as_bytes(), shape.kinds[i]);
                            continue;
                        }
                        _ => Value::Null,
                    },
                };
            }
            write_value(&mut self.buf, shape.kinds[i], v, c)?;
        }
        Ok(first)
    }

    fn write_image(
        &mut self,
        shape: &Shape,
        target: &Target,
        row: Option<&[Value<'_>]>,
        old: Option<&[Value<'_>]>,
    ) -> Result<(), String> {
        if row.is_none() {
            self.buf.extend_from_slice(b"null");
            return Ok(());
        }
        self.buf.push(b'{');
        self.write_fields(shape, target, row, old)?;
        self.buf.push(b'}');
        Ok(())
    }

    fn write_envelope(
        &mut self,
        shape: &Shape,
        target: &Target,
        op: u8,
        images: &Images<'_, '_>,
        at: Origin,
    ) -> Result<(), String> {
        self.buf.extend_from_slice(b"{\"before\":");
        self.write_image(shape, target, images.before, None)?;
        self.buf.extend_from_slice(b",\"after\":");
        self.write_image(shape, target, images.after, images.old)?;
        self.buf.extend_from_slice(b",\"source\":");
        self.write_source(target, op, at);
        let now = now_micros();
        let _ = write!(
            self.buf,
            ",\"transaction\":null,\"op\":\"{}\",\"ts_ms\":{},\"ts_us\":{},\"ts_ns\":{}}}",
            super::rows::op_str(op),
            now / 1000,
            now,
            now * 1000
        );
        Ok(())
    }

    fn write_source(&mut self, target: &Target, op: u8, at: Origin) {
        let micros = source_micros(at);
        self.buf.extend_from_slice(b"{\"version\":");
        json_str(&mut self.buf, VERSION);
        self.buf.extend_from_slice(b",\"connector\":\"postgresql\",\"name\":");
        json_str(&mut self.buf, &self.cfg.topic_prefix);
        let _ = write!(
            self.buf,
            ",\"ts_ms\":{},\"snapshot\":\"{}\",\"db\":",
            micros / 1000,
            if op == b'r' { "true" } else { "false" }
        );
        json_str(&mut self.buf, &self.db);
        let _ = write!(
            self.buf,
            ",\"sequence\":\"[\\\"{}\\\",\\\"{}\\\"]\",\"ts_us\":{},\"ts_ns\":{},\"schema\":",
            at.last_commit,
            at.lsn,
            micros,
            micros * 1000
        );
        json_str(&mut self.buf, &target.rel.schema);
        self.buf.extend_from_slice(b",\"table\":");
        json_str(&mut self.buf, &target.rel.table);
        match at.xid {
            Some(x) => {
                let _ = write!(self.buf, ",\"txId\":{x}");
            }
            None => self.buf.extend_from_slice(b",\"txId\":null"),
        }
        let _ = write!(self.buf, ",\"lsn\":{},\"xmin\":null}}", at.lsn);
    }

    /// The batch so far and the changes that could not be written; starts a new one.
    pub(crate) fn finish(
        &mut self,
    ) -> Result<(RecordBatch, RowOrigins, Vec<RejectedRecord>), arrow::error::ArrowError> {
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
        ];
        arrays.extend(self.meta.finish());
        let schema = Arc::new(arrow::datatypes::Schema::new(event_fields()));
        debug_assert_eq!(arrays.len(), 3 + META);
        let batch = RecordBatch::try_new(schema, arrays)?;
        Ok((
            batch,
            std::mem::take(&mut self.origins),
            std::mem::take(&mut self.rejected),
        ))
    }
}

/// An `unwrap.add.fields` value: `db` and `name` are the database and
/// `topic.prefix`.
fn write_added(out: &mut Vec<u8>, field: &str, target: &Target, op: u8, at: Origin, db: &str, name: &str) {
    let text = match field {
        "op" => Some(super::rows::op_str(op)),
        "table" => Some(target.rel.table.as_str()),
        "schema" => Some(target.rel.schema.as_str()),
        "db" => Some(db),
        "name" => Some(name),
        "connector" => Some("postgresql"),
        "version" => Some(VERSION),
        "snapshot" => Some(if op == b'r' { "true" } else { "false" }),
        _ => None,
    };
    let _ = match (text, field) {
        (Some(s), _) => {
            json_str(out, s);
            Ok(())
        }
        (None, "lsn") => write!(out, "{}", at.lsn),
        (None, "txId") => match at.xid {
            Some(x) => write!(out, "{x}"),
            None => write!(out, "null"),
        },
        (None, "source.ts_ms") => write!(out, "{}", source_micros(at) / 1000),
        _ => write!(out, "{}", now_micros() / 1000),
    };
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// When the change happened: its commit, or now for a snapshot read.
fn source_micros(at: Origin) -> i64 {
    at.commit_micros.unwrap_or_else(now_micros)
}

fn sep(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Bytes as a JSON string: base64 (JsonConverter's bytes), URL-safe base64 or hex.
/// None of these alphabets needs escaping.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8], kind: Kind) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    out.push(b'"');
    let engine = match kind {
        Kind::Bytes(BinaryMode::Hex) => {
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out.push(b'"');
            return;
        }
        Kind::Bytes(BinaryMode::Base64UrlSafe) => &URL_SAFE,
        _ => &STANDARD,
    };
    // Encoded in place at the end of the buffer: no string per value.
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let written = engine.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// One value, from PostgreSQL's text output, as JsonConverter writes it.
fn write_value(out: &mut Vec<u8>, kind: Kind, v: Value<'_>, column: &RelColumn) -> Result<(), String> {
    let t = match v {
        Value::Text(t) => t,
        Value::Null | Value::Unchanged => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
    };
    let s = std::str::from_utf8(t).map_err(|_| format!("column {}: the value is not UTF-8", column.name))?;
    let bad = |what: &str| format!("column {}: '{s}' is not a valid {what}", column.name);
    match kind {
        Kind::Bool => out.extend_from_slice(if s == "t" { b"true" } else { b"false" }),
        Kind::Int => {
            let n: i64 = s.parse().map_err(|_| bad("integer"))?;
            let _ = write!(out, "{n}");
        }
        Kind::Float => match s.parse::<f64>() {
            // JSON has no NaN or infinities: JsonConverter (Jackson) writes them as strings.
            Ok(f) if f.is_finite() => {
                let _ = write!(out, "{f:?}");
            }
            _ => json_str(out, s),
        },
        Kind::Decimal(scale) => {
            let unscaled = unscaled(s, scale).ok_or_else(|| bad("NUMERIC for Connect's Decimal"))?;
            write_bytes(out, &twos_complement(unscaled), Kind::Bytes(BinaryMode::Bytes));
        }
        Kind::VariableDecimal => {
            let scale = s.split_once('.').map_or(0, |(_, f)| f.len()) as u32;
            let unscaled = unscaled(s, scale).ok_or_else(|| bad("NUMERIC for Debezium's VariableScaleDecimal"))?;
            let _ = write!(out, "{{\"scale\":{scale},\"value\":");
            write_bytes(out, &twos_complement(unscaled), Kind::Bytes(BinaryMode::Bytes));
            out.push(b'}');
        }
        Kind::Text => json_str(out, s),
        Kind::Bytes(_) => {
            let bytes = unhex(t).ok_or_else(|| bad("bytea hex value (\\x…)"))?;
            write_bytes(out, &bytes, kind);
        }
        Kind::Date => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("date"))?;
            let _ = write!(out, "{}", (d - EPOCH).num_days());
        }
        Kind::Time(micros) => {
            let us = if s == "24:00:00" {
                86_400_000_000
            } else {
                let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").map_err(|_| bad("time"))?;
                i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000)
            };
            let _ = write!(out, "{}", if micros { us } else { us / 1000 });
        }
        Kind::Timestamp(micros) => {
            let ts = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map_err(|_| bad("timestamp"))?;
            let us = ts.and_utc().timestamp_micros();
            let _ = write!(out, "{}", if micros { us } else { us.div_euclid(1000) });
        }
        Kind::ZonedTimestamp => {
            let ts = DateTime::parse_from_str(&zone_with_minutes(s), "%Y-%m-%d %H:%M:%S%.f%:z")
                .map_err(|_| bad("timestamp with time zone"))?;
            let utc = ts.with_timezone(&chrono::Utc);
            // Digits, '-', ':', 'T' and 'Z' only: nothing to escape.
            let _ = write!(out, "\"{}", utc.format("%Y-%m-%dT%H:%M:%S"));
            write_fraction(out, utc.nanosecond());
            out.extend_from_slice(b"Z\"");
        }
        Kind::ZonedTime => {
            let (time, zone) = split_zone(s).ok_or_else(|| bad("time with time zone"))?;
            let t = NaiveTime::parse_from_str(time, "%H:%M:%S%.f").map_err(|_| bad("time with time zone"))?;
            let offset = zone_seconds(zone).ok_or_else(|| bad("time with time zone"))?;
            let utc = t - chrono::Duration::seconds(offset);
            let _ = write!(out, "\"{}", utc.format("%H:%M:%S"));
            write_fraction(out, utc.nanosecond());
            out.extend_from_slice(b"Z\"");
        }
    }
    Ok(())
}

/// `.5`, `.123456`: the fraction of a second as ISO-8601 prints it, no trailing
/// zeros, nothing for a whole second.
fn write_fraction(out: &mut Vec<u8>, nanos: u32) {
    if nanos == 0 {
        return;
    }
    let (mut digits, mut n) = (9, nanos);
    while n % 10 == 0 {
        n /= 10;
        digits -= 1;
    }
    let _ = write!(out, ".{n:0digits$}");
}

fn split_zone(s: &str) -> Option<(&str, &str)> {
    let at = s.rfind(['+', '-'])?;
    Some((&s[..at], &s[at..]))
}

/// `+02`, `-05:30`, `+05:30:15` → seconds east of UTC.
fn zone_seconds(z: &str) -> Option<i64> {
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let mut parts = z[1..].split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next().map_or(Ok(0), str::parse).ok()?;
    let sec: i64 = parts.next().map_or(Ok(0), str::parse).ok()?;
    Some(sign * (h * 3600 + m * 60 + sec))
}

/// The unscaled integer of a decimal's text at `scale` (`-12.5` at 2 → -1250).
/// PostgreSQL prints a typed NUMERIC at its scale, so digits are only padded,
/// never rounded; more digits than the scale, or beyond i128, is refused.
fn unscaled(s: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() > scale as usize
        || int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut n: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        n = n.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    for _ in frac.len()..scale as usize {
        n = n.checked_mul(10)?;
    }
    Some(if neg { -n } else { n })
}

/// The shortest big-endian two's complement bytes of `n`, as Java's
/// `BigInteger.toByteArray()` (what Connect's Decimal carries).
fn twos_complement(n: i128) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// A Connect schema (as JsonConverter writes it) as the Avro schema
/// AvroConverter registers for it: structs as records named by their Connect
/// name (a second use refers to the first by name), optional fields as unions
/// with null, and Connect's logical names kept as `connect.*` properties.
fn avro_schema(connect: &Json, defined: &mut Vec<String>) -> Json {
    let ty = connect["type"].as_str().unwrap_or("string");
    let name = connect.get("name").and_then(Json::as_str);
    if ty == "struct" {
        let full = name.unwrap_or("ConnectDefault").to_string();
        if defined.contains(&full) {
            return Json::String(full);
        }
        defined.push(full.clone());
        let (namespace, short) = full.rsplit_once('.').unwrap_or(("", full.as_str()));
        let fields: Vec<Json> = connect["fields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let inner = avro_schema(f, defined);
                let field = f["field"].as_str().unwrap_or_default();
                if f["optional"].as_bool().unwrap_or(false) {
                    json!({"name": field, "type": ["null", inner], "default": null})
                } else {
                    json!({"name": field, "type": inner})
                }
            })
            .collect();
        let mut record = json!({"type": "record", "name": short, "fields": fields, "connect.name": full});
        if !namespace.is_empty() {
            record["namespace"] = namespace.into();
        }
        if let Some(v) = connect.get("version") {
            record["connect.version"] = v.clone();
        }
        return record;
    }
    let avro_type = match ty {
        "int8" | "int16" | "int32" => "int",
        "int64" => "long",
        other => other,
    };
    let mut out = json!({"type": avro_type});
    if matches!(ty, "int8" | "int16") {
        out["connect.type"] = ty.into();
    }
    if let Some(n) = name {
        out["connect.name"] = n.into();
        if let Some(v) = connect.get("version") {
            out["connect.version"] = v.clone();
        }
        if let Some(p) = connect.get("parameters") {
            out["connect.parameters"] = p.clone();
        }
        if n == "org.apache.kafka.connect.data.Decimal" {
            let param = |k: &str| connect["parameters"][k].as_str().and_then(|v| v.parse::<u64>().ok());
            out["logicalType"] = "decimal".into();
            out["scale"] = param("scale").unwrap_or(0).into();
            out["precision"] = param("connect.decimal.precision").unwrap_or(38).into();
        }
    }
    if out.as_object().is_some_and(|m| m.len() == 1) {
        return Json::String(avro_type.to_string());
    }
    out
}

/// A JSON payload (as written for JsonConverter) in Avro's binary encoding,
/// framed as Confluent's wire format: magic byte 0, the schema id, the datum.
fn to_avro(payload: &[u8], connect: &Json, id: u32) -> Result<Vec<u8>, String> {
    let value: Json = serde_json::from_slice(payload).map_err(|e| format!("re-reading an event for Avro: {e}"))?;
    let mut out = Vec::with_capacity(payload.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    avro_datum(connect, &value, &mut out)?;
    Ok(out)
}

/// Avro's zig-zag varint of a long (also its int, union index and lengths).
fn avro_long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn avro_datum(connect: &Json, value: &Json, out: &mut Vec<u8>) -> Result<(), String> {
    let field = connect["field"].as_str().unwrap_or("value");
    let bad = || format!("field {field}: {value} does not fit its {} schema", connect["type"]);
    match connect["type"].as_str().unwrap_or("string") {
        "struct" => {
            for f in connect["fields"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let v = &value[f["field"].as_str().unwrap_or_default()];
                if f["optional"].as_bool().unwrap_or(false) {
                    if v.is_null() {
                        avro_long(0, out);
                        continue;
                    }
                    avro_long(1, out);
                }
                avro_datum(f, v, out)?;
            }
        }
        "int8" | "int16" | "int32" | "int64" => avro_long(value.as_i64().unwrap_or_default(), out),
        "boolean" => out.push(u8::from(value.as_bool().unwrap_or(false))),
        "float" | "double" => {
            let f = match value {
                Json::Number(n) => n.as_f64().ok_or_else(bad)?,
                Json::String(s) => s.parse::<f64>().map_err(|_| bad())?,
                _ => 0.0,
            };
            if connect["type"] == "float" {
                out.extend_from_slice(&(f as f32).to_le_bytes());
            } else {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        "bytes" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .map_err(|_| bad())?;
            avro_long(bytes.len() as i64, out);
            out.extend_from_slice(&bytes);
        }
        _ => {
            let s = value.as_str().unwrap_or_default();
            avro_long(s.len() as i64, out);
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::super::config::Unwrap;
    use super::super::pgoutput::Relation;
    use super::*;

    fn cfg(unwrap: Option<Unwrap>) -> EventConfig {
        EventConfig {
            topic_prefix: "shop".into(),
            key_string: false,
            key_avro: false,
            value_avro: false,
            registry: None,
            key_schemas: true,
            value_schemas: true,
            tombstones: true,
            decimal: DecimalMode::Precise,
            time: TimeMode::Adaptive,
            binary: BinaryMode::Bytes,
            unwrap,
        }
    }

    fn col(name: &str, type_oid: u32, type_mod: i32, primary: bool) -> RelColumn {
        RelColumn {
            name: name.into(),
            key: primary,
            type_oid,
            type_mod,
            primary,
            not_null: primary,
        }
    }

    fn target() -> Target {
        Target::new(
            Relation {
                id: 7,
                schema: "public".into(),
                table: "orders".into(),
                replica_identity: b'd',
                columns: vec![
                    col("id", 23, -1, true),
                    // NUMERIC(10,2)
                    col("total", 1700, (10 << 16 | 2) + 4, false),
                    col("at", 1184, -1, false),
                    col("day", 1082, -1, false),
                    col("data", 17, -1, false),
                    col("note", 25, -1, false),
                ],
            },
            &[],
        )
    }

    fn origin(op: u8) -> Origin {
        Origin {
            op,
            lsn: 200,
            xid: Some(9),
            commit_micros: Some(1_700_000_000_123_456),
            last_commit: 100,
        }
    }

    /// The old tuple of a delete under REPLICA IDENTITY DEFAULT: the key alone.
    fn old_key(id: &[u8]) -> [Value<'_>; 6] {
        let mut row = [Value::Null; 6];
        row[0] = Value::Text(id);
        row
    }

    fn schema() -> SchemaRef {
        Arc::new(arrow::datatypes::Schema::new(event_fields()))
    }

    fn json_at(a: &arrow::array::BinaryArray, row: usize) -> Json {
        serde_json::from_slice(a.value(row)).unwrap()
    }

    #[test]
    fn envelope_key_types_and_tombstone_are_debeziums() {
        let t = target();
        let mut e = Events::new(cfg(None), "test", &schema(), &[], "cdc");
        let row = [
            Value::Text(b"1"),
            Value::Text(b"-12.50"),
            Value::Text(b"2024-01-02 05:04:05.5+02"),
            Value::Text(b"1970-01-03"),
            Value::Text(b"\\x00ff"),
            Value::Text(b"hi"),
        ];
        e.push(&t, Some(&row), None, origin(b'c'));
        e.push(&t, None, Some(&old_key(b"1")), origin(b'd'));
        let (batch, origins, rejected) = e.finish().unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(batch.num_rows(), 3, "create, delete, tombstone");
        assert_eq!(origins.len(), 3);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "shop.public.orders");
        let keys = batch.column(1).as_binary::<i32>();
        let values = batch.column(2).as_binary::<i32>();
        let key = json_at(keys, 0);
        assert_eq!(key["payload"], json!({"id": 1}));
        assert_eq!(key["schema"]["name"], "shop.public.orders.Key");
        assert_eq!(
            key["schema"]["fields"][0],
            json!({"type": "int32", "optional": false, "field": "id"})
        );
        let v = json_at(values, 0);
        let p = &v["payload"];
        assert_eq!(p["op"], "c");
        assert_eq!(p["before"], Json::Null);
        // -12.50 at scale 2: unscaled -1250 = 0xfb1e.
        assert_eq!(p["after"]["total"], "+x4=");
        assert_eq!(p["after"]["at"], "2024-01-02T03:04:05.5Z");
        assert_eq!(p["after"]["day"], 2);
        assert_eq!(p["after"]["data"], "AP8=");
        assert_eq!(p["after"]["note"], "hi");
        assert_eq!(p["source"]["connector"], "postgresql");
        assert_eq!(p["source"]["name"], "shop");
        assert_eq!(p["source"]["db"], "test");
        assert_eq!(p["source"]["table"], "orders");
        assert_eq!(p["source"]["txId"], 9);
        assert_eq!(p["source"]["lsn"], 200);
        assert_eq!(p["source"]["ts_ms"], 1_700_000_000_123i64);
        assert_eq!(p["source"]["sequence"], "[\"100\",\"200\"]");
        assert_eq!(p["source"]["snapshot"], "false");
        let fields = v["schema"]["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "before",
                "after",
                "source",
                "transaction",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns"
            ]
        );
        assert_eq!(fields[1]["name"], "shop.public.orders.Value");
        assert_eq!(fields[1]["fields"][1]["name"], "org.apache.kafka.connect.data.Decimal");
        assert_eq!(fields[1]["fields"][1]["parameters"]["scale"], "2");
        assert_eq!(fields[1]["fields"][1]["parameters"]["connect.decimal.precision"], "10");
        assert_eq!(v["schema"]["name"], "shop.public.orders.Envelope");
        let d = json_at(values, 1);
        assert_eq!(d["payload"]["op"], "d");
        assert_eq!(d["payload"]["before"]["id"], 1);
        assert_eq!(d["payload"]["after"], Json::Null);
        assert!(values.is_null(2), "the tombstone has no value");
        assert_eq!(json_at(keys, 2)["payload"], json!({"id": 1}));
        assert_eq!(batch.column(3).as_string::<i32>().value(1), "d");
    }

    #[test]
    fn unwrapped_rows_rewrite_deletes_and_add_fields() {
        let t = target();
        let unwrap = Unwrap {
            rewrite: true,
            tombstones: false,
            add_fields: vec!["op".into(), "source.ts_ms".into()],
            prefix: "__".into(),
        };
        let mut c = cfg(Some(unwrap));
        c.value_schemas = false;
        c.key_schemas = false;
        let mut e = Events::new(c, "test", &schema(), &[], "cdc");
        let row = [
            Value::Text(b"2"),
            Value::Text(b"3"),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Unchanged,
        ];
        e.push(&t, Some(&row), None, origin(b'u'));
        e.push(&t, None, Some(&old_key(b"2")), origin(b'd'));
        let (batch, _, rejected) = e.finish().unwrap();
        assert!(rejected.is_empty());
        assert_eq!(batch.num_rows(), 2, "no tombstone");
        let values = batch.column(2).as_binary::<i32>();
        let u = json_at(values, 0);
        assert_eq!(u["total"], "ASw=", "3.00 → 300");
        assert_eq!(u["note"], UNAVAILABLE);
        assert_eq!(u["__op"], "u");
        assert_eq!(u["__source_ts_ms"], 1_700_000_000_123i64);
        assert_eq!(u["__deleted"], "false");
        let d = json_at(values, 1);
        assert_eq!(d["id"], 2);
        assert_eq!(d["__deleted"], "true");
        assert_eq!(json_at(batch.column(1).as_binary::<i32>(), 1), json!({"id": 2}));
    }

    #[test]
    fn a_key_change_is_a_delete_and_a_create_and_bad_values_are_rejected() {
        let t = target();
        let mut c = cfg(None);
        c.key_string = true;
        let mut e = Events::new(c, "test", &schema(), &[], "cdc");
        let nulls = [Value::Null; 5];
        let mut new = vec![Value::Text(b"5")];
        new.extend_from_slice(&nulls);
        let mut old = vec![Value::Text(b"4")];
        old.extend_from_slice(&nulls);
        e.push(&t, Some(&new), Some(&old), origin(b'u'));
        let mut bad = vec![Value::Text(b"6"), Value::Text(b"1.234")];
        bad.extend_from_slice(&nulls[..4]);
        e.push(&t, Some(&bad), None, origin(b'c'));
        let (batch, _, rejected) = e.finish().unwrap();
        let ops: Vec<&str> = (0..batch.num_rows())
            .map(|r| batch.column(3).as_string::<i32>().value(r))
            .collect();
        assert_eq!(ops, ["d", "d", "c"], "delete, tombstone, create");
        assert_eq!(batch.column(1).as_binary::<i32>().value(0), b"Struct{id=4}");
        assert_eq!(batch.column(1).as_binary::<i32>().value(2), b"Struct{id=5}");
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].error.contains("column total: '1.234'"),
            "{}",
            rejected[0].error
        );
    }

    #[test]
    fn decimals_are_javas_big_integer_bytes() {
        assert_eq!(twos_complement(0), [0]);
        assert_eq!(twos_complement(127), [0x7f]);
        assert_eq!(twos_complement(128), [0x00, 0x80]);
        assert_eq!(twos_complement(-1), [0xff]);
        assert_eq!(twos_complement(-129), [0xff, 0x7f]);
        assert_eq!(unscaled("1.5", 2), Some(150));
        assert_eq!(unscaled("-0.01", 2), Some(-1));
        assert_eq!(unscaled("1.555", 2), None);
        assert_eq!(unscaled("NaN", 2), None);
        let fraction = |n| {
            let mut out = Vec::new();
            write_fraction(&mut out, n);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(fraction(500_000_000), ".5");
        assert_eq!(fraction(123_456_000), ".123456");
        assert_eq!(fraction(7), ".000000007");
        assert_eq!(fraction(0), "");
        assert_eq!(zone_seconds("-05:30"), Some(-19800));
        let bytes = |mode| {
            let mut out = Vec::new();
            write_bytes(&mut out, &[0xfb, 0xff, 0x00], Kind::Bytes(mode));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(bytes(BinaryMode::Bytes), "\"+/8A\"");
        assert_eq!(bytes(BinaryMode::Base64), "\"+/8A\"");
        assert_eq!(bytes(BinaryMode::Base64UrlSafe), "\"-_8A\"");
        assert_eq!(bytes(BinaryMode::Hex), "\"fbff00\"");
    }
}
