//! Debezium's PostgreSQL connector (`io.debezium.connector.postgresql.PostgresConnector`)
//! → a `postgres-cdc` source and a Kafka sink.
//!
//! Design notes:
//! - **Events are built by the source.** Debezium writes every captured table to
//!   its own topic with that table's own schema; one SQL source has one set of
//!   columns. So the source serializes each change itself (`envelope =
//!   'debezium'`, or `'debezium-unwrapped'` for `ExtractNewRecordState`) into
//!   `_key`, `_value` and `_topic`, and the sink writes those bytes as they are
//!   (`format = 'raw'`). The converters' settings (`schemas.enable`,
//!   StringConverter keys) and Debezium's type options travel to the source.
//! - **The outbox router is SQL.** `io.debezium.transforms.outbox.EventRouter`
//!   reads one table of known columns, so it becomes the SELECT a user would
//!   write (see `examples/postgres_outbox.sql`): the route expression as
//!   `_topic`, the event key as `_key`, the payload as the value, the event id
//!   and any `header` placements as `_headers`, the commit time as the record
//!   timestamp, and only inserts (and snapshot reads) as events.
//! - Debezium's defaults are kept where they differ from the SQL source's: slot
//!   `debezium`, publication `dbz_publication`, so a team moving a connector
//!   from Kafka Connect can keep its slot.
//! - Refused, naming the key: another logical decoding plugin than pgoutput,
//!   a ByteArrayConverter, and transforms after the events are built other than
//!   topic routing (they would need the event's fields).

use arrow::datatypes::{DataType, TimeUnit};

use super::classes::{Plan, SinkShape, bootstrap, client_overrides, o, pass_through};
use super::converters::{self, Converter};
use super::record::{Context, Expr};
use super::smt::DEBEZIUM_UNWRAP;
use super::{ConnectorConfig, Notes, Result, TranslateError, TranslateOptions, ident, lit, split_list};

pub(crate) const EVENT_ROUTER: &str = "io.debezium.transforms.outbox.EventRouter";

/// Options named the same in Debezium and in the `postgres-cdc` source.
const SAME: [&str; 17] = [
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "database.sslmode",
    "database.sslrootcert",
    "publication.autocreate.mode",
    "table.include.list",
    "table.exclude.list",
    "snapshot.mode",
    "slot.drop.on.stop",
    "heartbeat.interval.ms",
    "skipped.operations",
    "tombstones.on.delete",
    "decimal.handling.mode",
    "time.precision.mode",
];

/// Transforms that may follow the source's events: they only route.
const ROUTING: [&str; 2] = [
    "org.apache.kafka.connect.transforms.RegexRouter",
    "org.apache.kafka.connect.transforms.TimestampRouter",
];

pub(crate) fn postgres(
    cfg: &ConnectorConfig,
    options: &TranslateOptions,
    plan: &mut Plan,
    notes: &mut Notes,
) -> Result<()> {
    if let Some(p) = cfg.get("plugin.name")
        && p != "pgoutput"
    {
        return Err(TranslateError::new(
            "plugin.name",
            format!(
                "'{p}' needs a server extension; Quiver reads PostgreSQL's built-in pgoutput (set plugin.name = pgoutput)"
            ),
        ));
    }
    let mut opts = vec![o("connector", "postgres-cdc")];
    pass_through(cfg, &SAME, &mut opts);
    opts.push(o("slot.name", cfg.get("slot.name").unwrap_or("debezium")));
    opts.push(o(
        "publication.name",
        cfg.get("publication.name").unwrap_or("dbz_publication"),
    ));
    schema_lists(cfg, &mut opts, notes)?;
    for key in ["message.key.columns", "column.include.list", "column.exclude.list"] {
        if cfg.get(key).is_some() {
            notes.untranslated(key, "not supported by the postgres-cdc source yet");
        }
    }
    if cfg.bool("provide.transaction.metadata", false)? {
        notes.untranslated(
            "provide.transaction.metadata",
            "transaction boundary events are not produced",
        );
    }
    let prefix = cfg
        .get("topic.prefix")
        .or_else(|| cfg.get("database.server.name"))
        .ok_or_else(|| {
            TranslateError::new(
                "topic.prefix",
                "missing; the logical server name every topic starts with ({topic.prefix}.{schema}.{table})",
            )
        })?
        .to_string();

    // The transforms Debezium runs on its own events.
    let aliases = cfg.list("transforms");
    let class_of = |alias: &str| cfg.get(&format!("transforms.{alias}.type")).unwrap_or("").to_string();
    let mut router = None;
    let mut unwrap = None;
    for (i, alias) in aliases.iter().enumerate() {
        let class = class_of(alias);
        let first = i == 0;
        match class.as_str() {
            DEBEZIUM_UNWRAP if first => unwrap = Some(alias.clone()),
            EVENT_ROUTER if first => router = Some(alias.clone()),
            c if ROUTING.contains(&c) => {}
            DEBEZIUM_UNWRAP | EVENT_ROUTER => {
                return Err(TranslateError::new(
                    "transforms",
                    format!("{alias} ({class}) must come first: it reads Debezium's change event"),
                ));
            }
            _ => {
                return Err(TranslateError::new(
                    format!("transforms.{alias}.type"),
                    format!(
                        "'{class}' after a Debezium PostgreSQL source: the source writes each event whole, so only {DEBEZIUM_UNWRAP} or {EVENT_ROUTER} (first) and topic routing ({}) translate",
                        ROUTING.join(", ")
                    ),
                ));
            }
        }
    }
    let value = converters::read(cfg, "value", notes)?;
    let key = converters::read(cfg, "key", notes)?;
    let mut sink = vec![
        o("connector", "kafka"),
        o(
            "bootstrap.servers",
            bootstrap(cfg, options, "producer.override.bootstrap.servers"),
        ),
        o("format", "raw"),
    ];
    client_overrides(cfg, "producer.override.", &mut sink);
    plan.sink_options = sink;
    plan.shape = SinkShape::Kafka { mirror: true };
    plan.record.topic = Some(Expr::column("_topic", DataType::Utf8));
    plan.record.key = Some(Expr::column("_key", DataType::Binary));
    plan.context = Context {
        from_kafka: false,
        tombstone: None,
        origin: "a Debezium PostgreSQL source".into(),
        key_json: false,
        primitive: true,
        unwrapped: unwrap.clone().or(router.clone()),
    };
    if let Some(alias) = router {
        return outbox(cfg, &alias, &value, opts, plan, notes);
    }
    opts.push(o("topic.prefix", prefix));
    pass_through(cfg, &["binary.handling.mode"], &mut opts);
    let mut registry: Option<(String, Option<String>)> = None;
    for (which, conv) in [("value", &value), ("key", &key)] {
        match conv {
            Converter::Json { schemas } => {
                opts.push(o(&format!("{which}.converter.schemas.enable"), schemas.to_string()))
            }
            Converter::String if which == "key" => opts.push(o("key.converter", "string")),
            Converter::Avro { registry: url, auth } => {
                if let Some((other, _)) = registry.as_ref().filter(|(u, _)| u != url) {
                    return Err(TranslateError::new(
                        format!("{which}.converter.schema.registry.url"),
                        format!(
                            "'{url}' differs from the other converter's '{other}'; Quiver registers both with one registry"
                        ),
                    ));
                }
                registry = Some((url.clone(), auth.clone()));
                opts.push(o(&format!("{which}.converter"), "avro"));
            }
            _ => {
                return Err(TranslateError::new(
                    format!("{which}.converter"),
                    "Debezium change events are written as JsonConverter or AvroConverter writes them (keys also as StringConverter)",
                ));
            }
        }
    }
    if let Some((url, auth)) = registry {
        opts.push(o("schema.registry.url", url));
        if let Some(a) = auth {
            opts.push(o("schema.registry.basic.auth.user.info", a));
        }
    }
    match &unwrap {
        None => opts.push(o("envelope", "debezium")),
        Some(alias) => {
            opts.push(o("envelope", "debezium-unwrapped"));
            unwrap_options(cfg, alias, &mut opts, notes)?;
        }
    }
    plan.record.fields = vec![("value".into(), Expr::column("_value", DataType::Binary))];
    plan.source_options = opts;
    plan.columns = String::new();
    Ok(())
}

/// `schema.include.list` / `schema.exclude.list` as the table lists' patterns.
fn schema_lists(cfg: &ConnectorConfig, opts: &mut Vec<(String, String)>, notes: &mut Notes) -> Result<()> {
    let include = cfg.list("schema.include.list");
    let exclude = cfg.list("schema.exclude.list");
    let tables = |schemas: &[String]| {
        schemas
            .iter()
            .map(|s| format!("{s}\\..*"))
            .collect::<Vec<_>>()
            .join(",")
    };
    if !include.is_empty() {
        if cfg.get("table.include.list").is_some() {
            notes.note("schema.include.list and table.include.list: the table list decides");
        } else {
            opts.push(o("table.include.list", tables(&include)));
        }
    }
    if !exclude.is_empty() {
        match opts.iter_mut().find(|(k, _)| k == "table.exclude.list") {
            Some((_, v)) => *v = format!("{v},{}", tables(&exclude)),
            None => opts.push(o("table.exclude.list", tables(&exclude))),
        }
    }
    Ok(())
}

/// ExtractNewRecordState's settings → the source's `unwrap.*` options.
fn unwrap_options(
    cfg: &ConnectorConfig,
    alias: &str,
    opts: &mut Vec<(String, String)>,
    notes: &mut Notes,
) -> Result<()> {
    let key = |k: &str| format!("transforms.{alias}.{k}");
    let mode = match cfg.get(&key("delete.tombstone.handling.mode")) {
        Some(m) => m.to_string(),
        None => {
            let legacy = cfg.get(&key("delete.handling.mode"));
            let drop_tombstones = cfg.bool(&key("drop.tombstones"), true)?;
            match (legacy, drop_tombstones) {
                (None, true) if cfg.get(&key("drop.tombstones")).is_none() => "tombstone".into(),
                (None | Some("drop"), true) => "drop".into(),
                (None | Some("drop"), false) => "tombstone".into(),
                (Some("rewrite"), true) => "rewrite".into(),
                (Some("rewrite"), false) => "rewrite-with-tombstone".into(),
                (Some("none"), _) => {
                    notes.note(format!(
                        "{}: none passes deletes on with a null value; written as their tombstone",
                        key("delete.handling.mode")
                    ));
                    "tombstone".into()
                }
                (Some(other), _) => {
                    return Err(TranslateError::new(
                        key("delete.handling.mode"),
                        format!("'{other}' is not drop, rewrite or none"),
                    ));
                }
            }
        }
    };
    opts.push(o("unwrap.delete.tombstone.handling.mode", mode));
    if let Some(f) = cfg.get(&key("add.fields")) {
        opts.push(o("unwrap.add.fields", f));
    }
    if let Some(p) = cfg.get(&key("add.fields.prefix")) {
        opts.push(o("unwrap.add.fields.prefix", p));
    }
    if cfg.get(&key("add.headers")).is_some() {
        notes.untranslated(&key("add.headers"), "headers from the envelope are not added yet");
    }
    Ok(())
}

/// The outbox event router as the sink's SELECT over the outbox table's columns.
fn outbox(
    cfg: &ConnectorConfig,
    alias: &str,
    value: &Converter,
    mut opts: Vec<(String, String)>,
    plan: &mut Plan,
    notes: &mut Notes,
) -> Result<()> {
    let key = |k: &str| format!("transforms.{alias}.{k}");
    let field = |k: &str, default: &str| cfg.get(&key(k)).unwrap_or(default).to_string();
    let id = field("table.field.event.id", "id");
    let event_key = field("table.field.event.key", "aggregateid");
    let payload = field("table.field.event.payload", "payload");
    let route_by = field("route.by.field", "aggregatetype");
    let replacement = field("route.topic.replacement", "outbox.event.${routedByValue}");
    let regex = cfg.get(&key("route.topic.regex"));
    let mut columns = vec![id.clone(), event_key.clone(), payload.clone(), route_by.clone()];
    let mut headers = vec![(id.clone(), id.clone())];
    for placement in split_list(cfg.get(&key("table.fields.additional.placement")).unwrap_or("")) {
        let parts: Vec<&str> = placement.split(':').collect();
        match parts.as_slice() {
            [column, "header"] | [column, "header", _] => {
                let name = parts.get(2).unwrap_or(column);
                headers.push((name.to_string(), column.to_string()));
                columns.push(column.to_string());
            }
            _ => {
                return Err(TranslateError::new(
                    key("table.fields.additional.placement"),
                    format!("'{placement}': only column:header[:alias] placements translate"),
                ));
            }
        }
    }
    if let Some(ts) = cfg.get(&key("table.field.event.timestamp")) {
        columns.push(ts.to_string());
    }
    let mut seen = Vec::new();
    columns.retain(|c| {
        let new = !seen.contains(c);
        seen.push(c.clone());
        new
    });
    plan.columns = columns
        .iter()
        .map(|c| format!("{} TEXT", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let routed = ident(&route_by);
    let topic = match regex {
        None | Some("(?<routedByValue>.*)") => {
            let parts: Vec<String> = replacement.split("${routedByValue}").map(lit).collect();
            parts.join(&format!(" || {routed} || "))
        }
        Some(r) => format!(
            "regexp_replace({routed}, {}, {})",
            lit(&format!("^(?:{r})$")),
            lit(&replacement)
        ),
    };
    plan.record.topic = Some(Expr::new(topic, DataType::Utf8));
    plan.record.key = Some(Expr::column(&event_key, DataType::Utf8));
    let header_names: Vec<String> = headers.iter().map(|(n, _)| lit(n)).collect();
    let header_values: Vec<String> = headers.iter().map(|(_, c)| ident(c)).collect();
    plan.record.headers = Some(Expr::new(
        format!("map([{}], [{}])", header_names.join(", "), header_values.join(", ")),
        DataType::Utf8,
    ));
    plan.record.timestamp = Some(match cfg.get(&key("table.field.event.timestamp")) {
        Some(ts) => Expr::new(
            format!("CAST({} AS TIMESTAMP)", ident(ts)),
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        None => Expr::column(
            "_commit_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        ),
    });
    let expand = cfg.bool(&key("table.expand.json.payload"), false)?;
    let payload_sql = match value {
        Converter::String | Converter::Bytes => ident(&payload),
        Converter::Json { schemas: false } if expand => ident(&payload),
        _ => {
            return Err(TranslateError::new(
                "value.converter",
                "the outbox payload is written as it is stored: use StringConverter, or JsonConverter with schemas.enable = false and table.expand.json.payload = true",
            ));
        }
    };
    plan.record.fields = vec![("value".into(), Expr::new(payload_sql, DataType::Utf8))];
    // Debezium routes inserts (and snapshot reads); deletes and updates of outbox rows are not events.
    plan.record.keep.push("_op IN ('c', 'r')".into());
    notes.note(format!(
        "transforms.{alias} ({EVENT_ROUTER}): the SELECT below routes each inserted outbox row"
    ));
    // Updates of outbox rows are left out (the WHERE above), as Debezium's default
    // `warn` does; failing on one has no SQL form.
    match cfg.get(&key("debezium.op.invalid.behavior")) {
        None | Some("warn") => {}
        Some(other) => notes.untranslated(
            &key("debezium.op.invalid.behavior"),
            format!("'{other}': an update of an outbox row is left out, never an error"),
        ),
    }
    if cfg.get(&key("route.tombstone.on.empty.payload")).is_some() {
        notes.note(format!(
            "{}: a NULL payload is written as a null value (a tombstone) either way",
            key("route.tombstone.on.empty.payload")
        ));
    }
    opts.retain(|(k, _)| k != "tombstones.on.delete" && k != "decimal.handling.mode" && k != "time.precision.mode");
    plan.source_options = opts;
    Ok(())
}
