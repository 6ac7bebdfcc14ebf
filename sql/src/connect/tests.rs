//! The golden suite (`tests/data/connect/golden.json`): each SMT and predicate's
//! documented behaviour, run through the translation and through hand-written SQL;
//! a long chain on 10 000 records; and the errors bad configs get.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int32Array, Int64Array, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::SchemaRef;
use serde_json::{Map, Value, json};

use super::{ConnectorConfig, TranslateOptions, translate, translate_inner};
use crate::catalog::{PipelineSpec, Plan};
use crate::{Catalog, parse};

/// One Kafka record, as the golden file writes it.
#[derive(Debug, Clone)]
struct Input {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    headers: BTreeMap<String, String>,
    value: Value,
}

impl Input {
    fn from_json(v: &Value, index: usize) -> Self {
        Self {
            topic: v.get("topic").and_then(Value::as_str).unwrap_or("orders").to_string(),
            partition: v.get("partition").and_then(Value::as_i64).unwrap_or(0) as i32,
            offset: v.get("offset").and_then(Value::as_i64).unwrap_or(index as i64),
            timestamp: v.get("timestamp").and_then(Value::as_i64).unwrap_or(1_700_000_000_000),
            key: v.get("key").and_then(Value::as_str).map(str::to_string),
            headers: v
                .get("headers")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            value: v.get("value").cloned().unwrap_or(Value::Null),
        }
    }
}

/// Plans a script and returns its last sink.
fn sink_of(sql: &str) -> Arc<PipelineSpec> {
    let (stmts, errors) = parse(sql);
    assert!(errors.is_empty(), "{errors:?}\n{sql}");
    let mut catalog = Catalog::new();
    let mut sink = None;
    for s in &stmts {
        let plan = catalog.plan(s).unwrap_or_else(|e| panic!("{}\n{sql}", e.message));
        if let Plan::CreateSink(p) = &plan {
            sink = Some(Arc::clone(p));
        }
        catalog.apply(&plan);
    }
    sink.expect("a sink")
}

/// The source batch for `inputs`: value columns decoded from JSON, then metadata.
fn batch(schema: &SchemaRef, declared: usize, inputs: &[Input], raw: bool) -> RecordBatch {
    let value_schema = Arc::new(arrow::datatypes::Schema::new(schema.fields()[..declared].to_vec()));
    let values: Vec<ArrayRef> = if raw {
        vec![Arc::new(
            inputs.iter().map(|i| i.value.as_str()).collect::<StringArray>(),
        )]
    } else {
        let lines: String = inputs
            .iter()
            .map(|i| {
                if i.value.is_null() {
                    "{}\n".to_string()
                } else {
                    format!("{}\n", i.value)
                }
            })
            .collect();
        let mut d = arrow::json::ReaderBuilder::new(Arc::clone(&value_schema))
            .with_batch_size(inputs.len().max(1))
            .build_decoder()
            .unwrap();
        d.decode(lines.as_bytes()).unwrap();
        match d.flush().unwrap() {
            Some(b) => b.columns().to_vec(),
            None => RecordBatch::new_empty(value_schema).columns().to_vec(),
        }
    };
    let mut columns = values;
    for f in &schema.fields()[declared..] {
        let col: ArrayRef = match f.name().as_str() {
            "_key" => {
                let keys = inputs.iter().map(|i| i.key.as_deref());
                match f.data_type() {
                    arrow::datatypes::DataType::Binary => Arc::new(
                        keys.map(|k| k.map(str::as_bytes))
                            .collect::<arrow::array::BinaryArray>(),
                    ),
                    _ => Arc::new(keys.collect::<StringArray>()),
                }
            }
            "_topic" => Arc::new(inputs.iter().map(|i| Some(i.topic.as_str())).collect::<StringArray>()),
            "_partition" => Arc::new(inputs.iter().map(|i| Some(i.partition)).collect::<Int32Array>()),
            "_offset" => Arc::new(inputs.iter().map(|i| Some(i.offset)).collect::<Int64Array>()),
            "_timestamp" => Arc::new(
                inputs
                    .iter()
                    .map(|i| Some(i.timestamp))
                    .collect::<TimestampMillisecondArray>(),
            ),
            "_headers" => {
                let mut b = MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new());
                for i in inputs {
                    for (k, v) in &i.headers {
                        b.keys().append_value(k);
                        b.values().append_value(v.as_bytes());
                    }
                    b.append(true).unwrap();
                }
                let a: ArrayRef = Arc::new(b.finish());
                arrow::compute::cast(&a, f.data_type()).unwrap()
            }
            other => panic!("unexpected metadata column {other}"),
        };
        columns.push(col);
    }
    RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
}

/// Runs `inputs` through a sink's transform and reads each output record back as
/// {topic, key, headers, value} JSON.
fn run(spec: &PipelineSpec, inputs: &[Input], raw: bool) -> Vec<Value> {
    let b = batch(&spec.source.schema, spec.source.declared, inputs, raw);
    let out = spec.transform.apply(&b);
    assert!(out.failed.is_empty(), "rows failed: {:?}", out.failed);
    let origin = spec.transform.input_rows(&b, &out.failed);
    let schema = out.batch.schema();
    let value_idx: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !schema.field(*i).name().starts_with('_'))
        .collect();
    let values = out.batch.project(&value_idx).unwrap();
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    w.write(&values).unwrap();
    w.finish().unwrap();
    let text = String::from_utf8(w.into_inner()).unwrap();
    let rows: Vec<Value> = if values.num_rows() == 0 {
        Vec::new()
    } else {
        serde_json::from_str(&text).unwrap()
    };
    let key_fields: Option<Vec<String>> = spec
        .options
        .iter()
        .find(|(k, _)| k == "key.fields")
        .map(|(_, v)| super::split_list(v));
    let col = |name: &str| schema.index_of(name).ok().map(|i| out.batch.column(i).clone());
    let (topics, keys, headers) = (col("_topic"), col("_key"), col("_headers"));
    rows.into_iter()
        .enumerate()
        .map(|(r, value)| {
            let input = &inputs[origin[r]];
            let value = if value.as_object().is_some_and(|m| m.values().all(Value::is_null)) {
                Value::Null
            } else {
                value
            };
            let topic = match &topics {
                Some(t) => json!(t.as_string::<i32>().value(r)),
                None => json!(input.topic),
            };
            let key = match (&key_fields, &keys) {
                (Some(fields), _) => Value::Object(fields.iter().map(|f| (f.clone(), value[f].clone())).collect()),
                // A JSON object key (key.converter JsonConverter) compares as JSON.
                (None, Some(k)) if k.is_null(r) => Value::Null,
                (None, Some(k)) => {
                    let text = k.as_string::<i32>().value(r);
                    serde_json::from_str::<Value>(text)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!(text))
                }
                (None, None) => input.key.as_deref().map_or(Value::Null, |k| {
                    serde_json::from_str::<Value>(k)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!(k))
                }),
            };
            let headers = match &headers {
                Some(h) => {
                    let m = h.as_map().value(r);
                    let (ks, vs) = (m.column(0).as_string::<i32>(), m.column(1).as_binary::<i32>());
                    Value::Object(
                        (0..m.len())
                            .map(|i| (ks.value(i).to_string(), json!(String::from_utf8_lossy(vs.value(i)))))
                            .collect(),
                    )
                }
                None => json!(input.headers),
            };
            json!({"topic": topic, "key": key, "headers": headers, "value": value})
        })
        .collect()
}

fn base_config(extra: &Map<String, Value>) -> ConnectorConfig {
    let mut config = json!({
        "name": "golden",
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "topics": "orders",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
    });
    for (k, v) in extra {
        config[k] = v.clone();
    }
    ConnectorConfig::from_json(&config.to_string(), "golden").unwrap()
}

fn translated_sink(case: &Value) -> Arc<PipelineSpec> {
    let cfg = base_config(case["config"].as_object().unwrap());
    let columns = case["columns"].as_str().unwrap();
    let options = TranslateOptions {
        columns: (!columns.is_empty()).then(|| columns.to_string()),
        bootstrap_servers: None,
        evolve: false,
    };
    let t = translate_inner(&cfg, &options, true).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
    assert!(t.untranslated.is_empty(), "{}: {:?}", case["name"], t.untranslated);
    sink_of(&t.sql.replace("${KAFKA_BOOTSTRAP}", "localhost:9092"))
}

fn hand_written_sink(case: &Value) -> Arc<PipelineSpec> {
    let raw = case["raw"].as_bool().unwrap_or(false);
    let columns = if raw {
        "value TEXT"
    } else {
        case["columns"].as_str().unwrap()
    };
    let format = if raw { "raw" } else { "json" };
    let mut sink_opts: BTreeMap<String, String> = [
        ("connector", "kafka"),
        ("bootstrap.servers", "localhost:9092"),
        ("topic", "out"),
        ("key.format", "string"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in case
        .get("sink_options")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        sink_opts.insert(k.clone(), v.as_str().unwrap().to_string());
    }
    let with: Vec<String> = sink_opts.iter().map(|(k, v)| format!("'{k}' = '{v}'")).collect();
    sink_of(&format!(
        "CREATE SOURCE src ({columns}) WITH (connector = 'kafka', 'bootstrap.servers' = 'localhost:9092', topic = 'orders', format = '{format}', 'key.format' = 'string');\n\
         CREATE SINK hand WITH ({}) AS {};",
        with.join(", "),
        case["sql"].as_str().unwrap()
    ))
}

/// Only the parts of each expected record the case states are compared.
fn assert_matches(name: &str, how: &str, got: &[Value], expected: &[Value]) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{name} ({how}): {} records, expected {}: {got:#?}",
        got.len(),
        expected.len()
    );
    for (g, e) in got.iter().zip(expected) {
        for (k, v) in e.as_object().unwrap() {
            assert_eq!(&g[k], v, "{name} ({how}): '{k}' of {g}");
        }
    }
}

#[test]
fn golden_cases_match_kafka_connect_through_translation_and_hand_written_sql() {
    let golden: Value = serde_json::from_str(include_str!("../../../tests/data/connect/golden.json")).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let mut covered = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let raw = case["raw"].as_bool().unwrap_or(false);
        let inputs: Vec<Input> = case["input"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| Input::from_json(v, i))
            .collect();
        let expected = case["expected"].as_array().unwrap();
        assert_matches(name, "translated", &run(&translated_sink(case), &inputs, raw), expected);
        assert_matches(
            name,
            "hand-written",
            &run(&hand_written_sink(case), &inputs, raw),
            expected,
        );
        for (k, v) in case["config"].as_object().unwrap() {
            if k.ends_with(".type") {
                let class = v.as_str().unwrap();
                covered.insert(class.rsplit('.').next().unwrap().split('$').next().unwrap().to_string());
            }
        }
    }
    let all: Vec<&str> = super::smt::KIND_NAMES
        .iter()
        .chain(super::predicate::KINDS.iter())
        .copied()
        .collect();
    let missing: Vec<&&str> = all.iter().filter(|k| !covered.contains(**k)).collect();
    assert!(
        missing.is_empty(),
        "SMTs or predicates without a golden case: {missing:?}"
    );
}

/// Deterministic records for the chain test: some tombstones, some with a 'pii' header.
fn generated(n: usize) -> Vec<Input> {
    (0..n)
        .map(|i| {
            let value = if i % 97 == 0 {
                Value::Null
            } else {
                json!({"id": i, "name": format!("n{i}"), "ssn": format!("{:09}", i * 7919 % 1_000_000_000), "amount": (i % 1000) as f64 / 4.0, "internal": i % 3, "ms": 1_700_000_000_000i64 + i as i64 * 60_000})
            };
            let mut headers = BTreeMap::new();
            if i % 5 == 0 {
                headers.insert("pii".to_string(), "1".to_string());
            }
            Input { topic: if i % 4 == 0 { "orders-v1".into() } else { "test-orders".into() }, partition: (i % 3) as i32, offset: i as i64, timestamp: 1_700_000_000_000 + i as i64, key: Some(format!("{i}")), headers, value }
        })
        .collect()
}

#[test]
fn a_chain_of_seven_transforms_with_predicates_matches_hand_written_sql_on_10000_records() {
    let t = |k: &str, v: &str| (format!("transforms.{k}"), json!(v));
    let mut extra: Map<String, Value> = [
        (
            "transforms".to_string(),
            json!("dropTombstones,drop,mask,origin,amount,route,when"),
        ),
        ("predicates".to_string(), json!("tomb,pii,v1")),
        (
            "predicates.tomb.type".into(),
            json!("org.apache.kafka.connect.transforms.predicates.RecordIsTombstone"),
        ),
        (
            "predicates.pii.type".into(),
            json!("org.apache.kafka.connect.transforms.predicates.HasHeaderKey"),
        ),
        ("predicates.pii.name".into(), json!("pii")),
        (
            "predicates.v1.type".into(),
            json!("org.apache.kafka.connect.transforms.predicates.TopicNameMatches"),
        ),
        ("predicates.v1.pattern".into(), json!(".*-v1")),
    ]
    .into_iter()
    .collect();
    for (k, v) in [
        t("dropTombstones.type", "org.apache.kafka.connect.transforms.Filter"),
        t("dropTombstones.predicate", "tomb"),
        t("drop.type", "org.apache.kafka.connect.transforms.ReplaceField$Value"),
        t("drop.exclude", "internal"),
        t("drop.renames", "name:full_name"),
        t("mask.type", "org.apache.kafka.connect.transforms.MaskField$Value"),
        t("mask.fields", "ssn"),
        t("mask.replacement", "***"),
        t("mask.predicate", "pii"),
        t("origin.type", "org.apache.kafka.connect.transforms.InsertField$Value"),
        t("origin.static.field", "origin"),
        t("origin.static.value", "legacy"),
        t("origin.topic.field", "source_topic"),
        t("amount.type", "org.apache.kafka.connect.transforms.Cast$Value"),
        t("amount.spec", "amount:int32,id:string"),
        t("route.type", "org.apache.kafka.connect.transforms.RegexRouter"),
        t("route.regex", "(.*)-v1"),
        t("route.replacement", "$1"),
        t("route.predicate", "v1"),
        t(
            "when.type",
            "org.apache.kafka.connect.transforms.TimestampConverter$Value",
        ),
        t("when.field", "ms"),
        t("when.target.type", "string"),
        t("when.format", "yyyy-MM-dd HH:mm"),
    ] {
        extra.insert(k, v);
    }
    let cfg = base_config(&extra);
    let columns = "id BIGINT, name TEXT, ssn TEXT, amount DOUBLE, internal INT, ms BIGINT";
    let tr = translate_inner(
        &cfg,
        &TranslateOptions {
            columns: Some(columns.into()),
            bootstrap_servers: None,
            evolve: false,
        },
        true,
    )
    .unwrap();
    assert!(tr.untranslated.is_empty(), "{:?}", tr.untranslated);
    let translated = sink_of(&tr.sql.replace("${KAFKA_BOOTSTRAP}", "localhost:9092"));
    let hand = hand_written_sink(&json!({
        "columns": columns,
        "sql": "SELECT CAST(id AS TEXT) AS id, name AS full_name, CASE WHEN has_header(_headers, 'pii') THEN mask(ssn, '***') ELSE ssn END AS ssn, \
                CAST(amount AS INT) AS amount, format_timestamp(to_timestamp_millis(ms), 'yyyy-MM-dd HH:mm') AS ms, \
                'legacy' AS origin, _topic AS source_topic, \
                CASE WHEN regex_matches(_topic, '.*-v1') THEN regex_route(_topic, '(.*)-v1', '$1') ELSE _topic END AS _topic \
                FROM src WHERE NOT (id IS NULL AND name IS NULL AND ssn IS NULL AND amount IS NULL AND internal IS NULL AND ms IS NULL)"
    }));
    let inputs = generated(10_000);
    let a = run(&translated, &inputs, false);
    let b = run(&hand, &inputs, false);
    assert_eq!(a.len(), 10_000 - 10_000usize.div_ceil(97));
    assert_eq!(a, b);
    // Spot checks against the chain's meaning.
    let first = &a[0];
    assert_eq!(first["value"]["id"], json!("1"));
    assert_eq!(first["topic"], json!("test-orders"));
    let routed = a.iter().find(|r| r["value"]["id"] == json!("4")).unwrap();
    assert_eq!(routed["topic"], json!("orders"));
    assert_eq!(routed["value"]["source_topic"], json!("orders-v1"));
    // Every record routed by its own topic, across the runs of equal topics in a batch.
    for r in &a {
        let want = if r["value"]["source_topic"] == json!("orders-v1") {
            "orders"
        } else {
            "test-orders"
        };
        assert_eq!(r["topic"], json!(want), "{r}");
    }
    let masked = a.iter().find(|r| r["value"]["id"] == json!("5")).unwrap();
    assert_eq!(masked["value"]["ssn"], json!("***"));
    assert!(a[0]["value"].get("internal").is_none());
}

fn error_of(extra: Value, columns: &str) -> String {
    let cfg = base_config(extra.as_object().unwrap());
    translate(
        &cfg,
        &TranslateOptions {
            columns: Some(columns.into()),
            bootstrap_servers: None,
            evolve: false,
        },
    )
    .map(|t| t.sql)
    .unwrap_err()
    .to_string()
}

#[test]
fn invalid_configs_name_the_transform_alias_and_the_key() {
    let cols = "id BIGINT, name TEXT, ssn TEXT";
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"transforms": "x", "transforms.x.type": "org.apache.kafka.connect.transforms.MaskFeld$Value"}),
            &["transforms.x.type", "unknown transform", "MaskField$Value"],
        ),
        (
            json!({"transforms": "x", "transforms.x.type": "org.apache.kafka.connect.transforms.MaskField"}),
            &["transforms.x.type", "MaskField$Key", "MaskField$Value"],
        ),
        (json!({"transforms": "x"}), &["transforms.x.type", "missing"]),
        (
            json!({"transforms": "m", "transforms.m.type": "org.apache.kafka.connect.transforms.MaskField$Value"}),
            &["transforms.m.fields", "missing"],
        ),
        (
            json!({"transforms": "r", "transforms.r.type": "org.apache.kafka.connect.transforms.RegexRouter", "transforms.r.regex": "(unclosed", "transforms.r.replacement": "x"}),
            &["transforms.r.regex", "invalid regex"],
        ),
        (
            json!({"transforms": "r", "transforms.r.type": "org.apache.kafka.connect.transforms.RegexRouter", "transforms.r.regex": "(.*)", "transforms.r.replacement": "$"}),
            &["transforms.r.replacement"],
        ),
        (
            json!({"transforms": "t", "transforms.t.type": "org.apache.kafka.connect.transforms.TimestampConverter$Value", "transforms.t.field": "name", "transforms.t.target.type": "unix", "transforms.t.format": "yyyy-MM-dd Q"}),
            &["transforms.t.format", "Q"],
        ),
        (
            json!({"transforms": "t", "transforms.t.type": "org.apache.kafka.connect.transforms.TimestampConverter$Value", "transforms.t.field": "name", "transforms.t.target.type": "unix"}),
            &["transforms.t.format", "required"],
        ),
        (
            json!({"transforms": "t", "transforms.t.type": "org.apache.kafka.connect.transforms.TimestampConverter$Value", "transforms.t.target.type": "date"}),
            &["transforms.t.target.type", "Date"],
        ),
        (
            json!({"transforms": "t", "transforms.t.type": "org.apache.kafka.connect.transforms.TimestampRouter", "transforms.t.timestamp.format": "yyyy-MM-dd Q"}),
            &["transforms.t.timestamp.format"],
        ),
        (
            json!({"transforms": "c", "transforms.c.type": "org.apache.kafka.connect.transforms.Cast$Value", "transforms.c.spec": "id:integer"}),
            &["transforms.c.spec", "invalid type 'integer'", "int64"],
        ),
        (
            json!({"transforms": "c", "transforms.c.type": "org.apache.kafka.connect.transforms.Cast$Value", "transforms.c.spec": "nope:string"}),
            &["transforms.c.spec", "no field 'nope'"],
        ),
        (
            json!({"transforms": "m", "transforms.m.type": "org.apache.kafka.connect.transforms.MaskField$Value", "transforms.m.feilds": "ssn"}),
            &["transforms.m.feilds", "did you mean 'fields'"],
        ),
        (
            json!({"transforms": "m", "transforms.m.type": "org.apache.kafka.connect.transforms.MaskField$Value", "transforms.m.fields": "id", "transforms.m.replacement": "***"}),
            &["transforms.m.replacement", "not a number"],
        ),
        (
            json!({"transforms": "h", "transforms.h.type": "org.apache.kafka.connect.transforms.HeaderFrom$Value", "transforms.h.fields": "id,name", "transforms.h.headers": "a", "transforms.h.operation": "move"}),
            &["transforms.h.headers", "pair up"],
        ),
        (
            json!({"transforms": "f", "transforms.f.type": "org.apache.kafka.connect.transforms.Filter", "transforms.f.predicate": "nope"}),
            &["transforms.f.predicate", "'nope'"],
        ),
        (
            json!({"predicates": "p", "predicates.p.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"}),
            &["predicates.p.pattern", "missing"],
        ),
        (
            json!({"predicates": "p", "predicates.p.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches", "predicates.p.pattern": "[a-"}),
            &["predicates.p.pattern", "invalid regex"],
        ),
        (
            json!({"predicates": "p", "predicates.p.type": "HasHeader"}),
            &["predicates.p.type", "HasHeaderKey"],
        ),
        (
            json!({"connector.class": "com.acme.MagicSink"}),
            &[
                "connector.class",
                "com.acme.MagicSink",
                "io.confluent.connect.s3.S3SinkConnector",
            ],
        ),
        (
            json!({"value.converter": "io.confluent.connect.protobuf.ProtobufConverter"}),
            &["value.converter", "ProtobufConverter"],
        ),
    ];
    for (extra, needles) in cases {
        let e = error_of(extra.clone(), cols);
        for n in needles {
            assert!(e.contains(n), "error for {extra} should mention '{n}': {e}");
        }
    }
}

#[test]
fn custom_transforms_are_reported_never_ignored() {
    let cfg = base_config(
        json!({"transforms": "mine", "transforms.mine.type": "com.acme.Scrub", "transforms.mine.level": "3"})
            .as_object()
            .unwrap(),
    );
    let t = translate(
        &cfg,
        &TranslateOptions {
            columns: Some("id BIGINT".into()),
            bootstrap_servers: None,
            evolve: false,
        },
    )
    .unwrap();
    assert_eq!(t.untranslated.len(), 1, "{:?}", t.untranslated);
    assert!(
        t.untranslated[0].starts_with("transforms.mine.type: custom transform class com.acme.Scrub"),
        "{:?}",
        t.untranslated
    );
    assert!(t.sql.contains("-- NOT TRANSLATED transforms.mine.type"), "{}", t.sql);
}

#[test]
fn connector_json_without_column_types_asks_for_them() {
    let cfg = base_config(&Map::new());
    let e = translate(&cfg, &TranslateOptions::default()).unwrap_err().to_string();
    assert!(e.contains("--columns") && e.contains("quiver.columns"), "{e}");
}

#[test]
fn mirror_source_copies_bytes_keys_headers_and_partitions_under_the_renamed_topic() {
    let cfg = ConnectorConfig::from_json(
        &json!({"name": "mm2", "config": {
            "connector.class": "org.apache.kafka.connect.mirror.MirrorSourceConnector",
            "source.cluster.alias": "east", "source.cluster.bootstrap.servers": "east:9092", "target.cluster.bootstrap.servers": "west:9092",
            "topics": "orders.*,payments",
            "transforms": "drop", "transforms.drop.type": "org.apache.kafka.connect.transforms.DropHeaders", "transforms.drop.headers": "trace"
        }})
        .to_string(),
        "x",
    )
    .unwrap();
    let t = translate(&cfg, &TranslateOptions::default()).unwrap();
    for needle in [
        "'topic.pattern' = '(?:orders.*)|(?:payments)'",
        "'east.' || _topic AS _topic",
        "_key AS _key",
        "headers_drop(_headers, 'trace') AS _headers",
        "_partition AS _partition",
        "_timestamp AS _timestamp",
        "NOT regex_matches(_topic, '__.*')",
        "'bootstrap.servers' = 'west:9092'",
    ] {
        assert!(t.sql.contains(needle), "missing {needle} in\n{}", t.sql);
    }
    super::check(&t).unwrap();
}

#[test]
fn errors_converters_overrides_and_debezium_unwrap_carry_over() {
    let cfg = ConnectorConfig::from_json(
        &json!({
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "name": "cdc-to-pg",
            "connection.url": "jdbc:postgresql://db:5432/app",
            "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
            "topics.regex": "dbserver1\\.public\\..*",
            "tasks.max": 3,
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": "http://registry:8081",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "consumer.override.max.poll.records": "500",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "dlq",
            "errors.deadletterqueue.context.headers.enable": true,
            "errors.retry.timeout": "-1",
            "errors.log.enable": "true",
            "quiver.columns": "id BIGINT, name TEXT"
        })
        .to_string(),
        "x",
    )
    .unwrap();
    let t = translate(
        &cfg,
        &TranslateOptions {
            columns: None,
            bootstrap_servers: Some("k1:9092".into()),
            evolve: false,
        },
    )
    .unwrap();
    for needle in [
        "'connector' = 'postgres'",
        "'topic.pattern' = 'dbserver1\\.public\\..*'",
        "'tasks.max' = '3'",
        "'format' = 'avro'",
        "'schema.registry.url' = 'http://registry:8081'",
        "'key.format' = 'string'",
        "'properties.max.poll.records' = '500'",
        "'bootstrap.servers' = 'k1:9092'",
        "'group.id' = 'connect-cdc-to-pg'",
        "'errors.tolerance' = 'all'",
        "'errors.deadletterqueue.topic.name' = 'dlq'",
        "'errors.deadletterqueue.context.headers.enable' = 'true'",
        "'errors.retry.timeout' = '365d'",
        "'errors.log.enable' = 'true'",
        "'insert.mode' = 'upsert'",
    ] {
        assert!(t.sql.contains(needle), "missing {needle} in\n{}", t.sql);
    }
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);

    // Debezium's unwrap SMT first in the chain is the debezium-json format.
    let cfg = base_config(json!({"transforms": "unwrap,mask", "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState", "transforms.unwrap.drop.tombstones": "false",
        "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField$Value", "transforms.mask.fields": "name"}).as_object().unwrap());
    let t = translate(
        &cfg,
        &TranslateOptions {
            columns: Some("id BIGINT, name TEXT".into()),
            bootstrap_servers: None,
            evolve: false,
        },
    )
    .unwrap();
    assert!(
        t.sql.contains("'format' = 'debezium-json'") && t.sql.contains("mask(\"name\") AS \"name\""),
        "{}",
        t.sql
    );
    assert!(
        t.sql.contains("done by the source's format = 'debezium-json'"),
        "{}",
        t.sql
    );
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
}

fn debezium_pg(extra: Value) -> ConnectorConfig {
    let mut config = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": "5432", "database.user": "postgres",
        "database.password": "secret", "database.dbname": "test", "topic.prefix": "shop",
        "plugin.name": "pgoutput", "table.include.list": "public\\.orders,public\\.items",
        "decimal.handling.mode": "string", "tombstones.on.delete": "true"
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    ConnectorConfig::from_json(&json!({"name": "pg-cdc", "config": config}).to_string(), "x").unwrap()
}

#[test]
fn debezium_postgres_connector_becomes_a_cdc_source_writing_debezium_events() {
    let t = translate(
        &debezium_pg(json!({"key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false"})),
        &TranslateOptions::default(),
    )
    .unwrap();
    for needle in [
        "CREATE SOURCE pg_cdc_source\nWITH (",
        "'connector' = 'postgres-cdc'",
        "'envelope' = 'debezium'",
        "'topic.prefix' = 'shop'",
        "'slot.name' = 'debezium'",
        "'publication.name' = 'dbz_publication'",
        "'decimal.handling.mode' = 'string'",
        "'key.converter.schemas.enable' = 'false'",
        "'value.converter.schemas.enable' = 'true'",
        "'format' = 'raw'",
        "\"_value\" AS \"value\"",
        "\"_topic\" AS _topic",
        "\"_key\" AS _key",
    ] {
        assert!(t.sql.contains(needle), "missing {needle} in\n{}", t.sql);
    }
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    super::check(&t).unwrap();

    // ExtractNewRecordState (legacy options) and a topic router after it.
    let t = translate(
        &debezium_pg(json!({"transforms": "unwrap,route",
            "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
            "transforms.unwrap.delete.handling.mode": "rewrite", "transforms.unwrap.add.fields": "op,source.ts_ms",
            "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex": "shop\\.public\\.(.*)", "transforms.route.replacement": "cdc.$1"})),
        &TranslateOptions::default(),
    )
    .unwrap();
    for needle in [
        "'envelope' = 'debezium-unwrapped'",
        "'unwrap.delete.tombstone.handling.mode' = 'rewrite'",
        "'unwrap.add.fields' = 'op,source.ts_ms'",
        "done by the source's envelope = 'debezium-unwrapped'",
        "regex_route(\"_topic\", 'shop\\.public\\.(.*)', 'cdc.$1') AS _topic",
    ] {
        assert!(t.sql.contains(needle), "missing {needle} in\n{}", t.sql);
    }
    super::check(&t).unwrap();

    for (extra, key, what) in [
        (json!({"plugin.name": "decoderbufs"}), "plugin.name", "pgoutput"),
        (json!({"topic.prefix": ""}), "topic.prefix", "missing"),
        (
            json!({"value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter"}),
            "value.converter",
            "AvroConverter",
        ),
        (
            json!({"value.converter": "io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": "http://r1",
                   "key.converter": "io.confluent.connect.avro.AvroConverter", "key.converter.schema.registry.url": "http://r2"}),
            "key.converter.schema.registry.url",
            "one registry",
        ),
        (
            json!({"transforms": "mask", "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField$Value", "transforms.mask.fields": "x"}),
            "transforms.mask.type",
            "writes each event whole",
        ),
        (json!({"snapshot.mode": "sometimes"}), "snapshot.mode", "sometimes"),
    ] {
        let e = translate(&debezium_pg(extra.clone()), &TranslateOptions::default())
            .map_err(|e| e.to_string())
            .and_then(|t| super::check(&t).map(|_| ()).map_err(|e| e.message));
        let e = e.expect_err(&format!("{extra} should fail"));
        assert!(e.contains(key) && e.contains(what), "{extra}: {e}");
    }
}

#[test]
fn debezium_outbox_event_router_becomes_the_routing_select() {
    let t = translate(
        &debezium_pg(json!({"table.include.list": "public\\.outbox", "transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "transforms.outbox.table.fields.additional.placement": "type:header:eventType",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"})),
        &TranslateOptions::default(),
    )
    .unwrap();
    for needle in [
        "CREATE SOURCE pg_cdc_source (\"id\" TEXT, \"aggregateid\" TEXT, \"payload\" TEXT, \"aggregatetype\" TEXT, \"type\" TEXT)",
        "'outbox.event.' || \"aggregatetype\" || '' AS _topic",
        "\"aggregateid\" AS _key",
        "map(['id', 'eventType'], [\"id\", \"type\"]) AS _headers",
        "\"_commit_ts\" AS _timestamp",
        "WHERE _op IN ('c', 'r')",
    ] {
        assert!(t.sql.contains(needle), "missing {needle} in\n{}", t.sql);
    }
    assert!(!t.sql.contains("'envelope'"), "{}", t.sql);
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    super::check(&t).unwrap();

    // Failing on an update of an outbox row has no SQL form: said, not dropped.
    let t = translate(
        &debezium_pg(json!({"transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "transforms.outbox.debezium.op.invalid.behavior": "fatal",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"})),
        &TranslateOptions::default(),
    )
    .unwrap();
    assert_eq!(t.untranslated.len(), 1, "{:?}", t.untranslated);
    assert!(
        t.untranslated[0].starts_with("transforms.outbox.debezium.op.invalid.behavior: 'fatal'"),
        "{:?}",
        t.untranslated
    );
}
