//! Kafka Connect connector JSON, translated and run by the `quiver` binary: a JDBC
//! sink connector with a chain of transforms into PostgreSQL, a FileStreamSource
//! into Kafka, and what `translate` / `run` say about configs they cannot run.

use std::time::Duration;

use serde_json::{Value, json};

use crate::kafka_support::{Rec, broker, consume, create_topic, produce, unique};
use crate::support::{quiver, run_cli, text};

fn example(name: &str) -> Value {
    let path = format!("{}/../examples/connect/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn write_json(dir: &std::path::Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.display().to_string()
}

/// `quiver run FILE --until-caught-up` plus `args`, with its own state folder; it must succeed.
fn run_connector(file: &str, dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) {
    let out = quiver()
        .args(["run", file, "--until-caught-up"])
        .args(args)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jdbc_sink_connector_json_with_five_transforms_runs_into_postgres() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let base = unique("connect").replace('-', "_");
    let (ta, tb) = (format!("{base}_a_v1"), format!("{base}_b_v1"));
    create_topic(&b, &ta, 1).await;
    create_topic(&b, &tb, 1).await;
    produce(
        &b,
        &ta,
        &[
            Rec::value(r#"{"id":1,"name":"a","ssn":"111","amount":10.7}"#).header("pii", "1"),
            Rec::value(r#"{"id":2,"name":"b","ssn":"222","amount":3.2}"#),
            Rec::default().key("k"), // a tombstone: the Filter drops it
            Rec::value(r#"{"id":1,"name":"a2","ssn":"333","amount":1.2}"#).header("pii", "1"),
        ],
    );
    produce(
        &b,
        &tb,
        &[Rec::value(r#"{"id":3,"name":"c","ssn":"444","amount":5.9}"#)],
    );

    let mut connector = example("orders-to-postgres.json");
    connector["name"] = json!(format!("{base}-pg"));
    connector["config"]["topics.regex"] = json!(format!("{base}_.*_v1"));
    connector["config"]["connection.url"] = json!(crate::postgres::URL);
    let file = write_json(dir.path(), "connector.json", &connector);
    run_connector(&file, dir.path(), &["--bootstrap-servers", &b], &[]);

    let (c, conn) = tokio_postgres::connect(crate::postgres::URL, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let read = |table: String| {
        let c = &c;
        async move {
            c.query(
                &format!("SELECT id, name, ssn, amount, origin FROM \"{table}\" ORDER BY id"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i32>(3),
                    r.get::<_, String>(4),
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let origin = "kafka-connect-migration".to_string();
    // RegexRouter renamed each topic, and the routed topic named the table.
    assert_eq!(
        read(format!("{base}_a_current")).await,
        vec![
            (1, "a2".into(), "***-**-****".into(), 1, origin.clone()),
            (2, "b".into(), "222".into(), 3, origin.clone())
        ]
    );
    assert_eq!(
        read(format!("{base}_b_current")).await,
        vec![(3, "c".into(), "444".into(), 5, origin)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_stream_source_connector_json_writes_lines_to_kafka() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("connect-lines");
    create_topic(&b, &topic, 1).await;
    let input = dir.path().join("input.txt");
    std::fs::write(&input, "first line\nsecond, with a comma\n{\"not\": \"parsed\"}\n").unwrap();
    let connector = json!({
        "name": "lines",
        "config": {
            "connector.class": "FileStreamSource",
            "file": input.display().to_string(),
            "topic": topic,
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "transforms": "origin",
            "transforms.origin.type": "org.apache.kafka.connect.transforms.InsertHeader",
            "transforms.origin.header": "origin",
            "transforms.origin.value.literal": "file"
        }
    });
    let file = write_json(dir.path(), "lines.json", &connector);
    run_connector(&file, dir.path(), &[], &[("KAFKA_BOOTSTRAP", &b)]);
    let got = consume(&b, &topic, 3, Duration::from_secs(30));
    let values: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(values, ["first line", "second, with a comma", "{\"not\": \"parsed\"}"]);
    assert!(
        got.iter()
            .all(|g| g.headers.get("origin").map(String::as_str) == Some("file")),
        "{got:?}"
    );
}

#[test]
fn translate_prints_sql_that_validates_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let example = format!("{}/../examples/connect/s3-orders.json", env!("CARGO_MANIFEST_DIR"));
    let out = run_cli(&["translate", &example, "--explain"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sql = text(&out.stdout);
    assert!(sql.contains("CREATE SINK s3_orders"), "{sql}");
    assert!(
        sql.contains("'path' = 's3://lake/raw/orders'")
            && sql.contains("'format' = 'parquet'")
            && sql.contains("'rollover.rows' = '10000'"),
        "{sql}"
    );
    assert!(
        sql.contains("mask(\"email\", 'redacted@example.com') AS \"email\""),
        "{sql}"
    );
    assert!(
        sql.contains("WHERE NOT COALESCE(has_header(_headers, 'test'), false)"),
        "{sql}"
    );
    // --explain: the compiled expressions, as EXPLAIN shows them.
    assert!(
        sql.contains("column email mask(email@2, redacted@example.com)"),
        "{sql}"
    );
    assert!(
        sql.contains("dead-letter topic orders-dlq on ${KAFKA_BOOTSTRAP}"),
        "{sql}"
    );
    // The printed SQL is a pipeline file like any other.
    let path = dir.path().join("s3.sql");
    std::fs::write(&path, sql.split("-- EXPLAIN").next().unwrap()).unwrap();
    let v = quiver()
        .args(["validate"])
        .arg(&path)
        .env("KAFKA_BOOTSTRAP", "localhost:9092")
        .output()
        .unwrap();
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));
}

#[test]
fn untranslatable_and_invalid_connectors_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = example("s3-orders.json");
    c["config"]["transforms"] = json!("scrub,pii");
    c["config"]["transforms.scrub.type"] = json!("com.acme.kafka.Scrub");
    let custom = write_json(dir.path(), "custom.json", &c);
    let t = run_cli(&["translate", &custom]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    assert!(
        text(&t.stdout)
            .contains("-- NOT TRANSLATED transforms.scrub.type: custom transform class com.acme.kafka.Scrub"),
        "{}",
        text(&t.stdout)
    );
    assert!(
        text(&t.stderr).contains("warning: not translated: transforms.scrub.type"),
        "{}",
        text(&t.stderr)
    );
    let r = quiver()
        .args(["run", &custom, "--until-caught-up", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(
        text(&r.stderr).contains("cannot run") && text(&r.stderr).contains("transforms.scrub.type"),
        "{}",
        text(&r.stderr)
    );

    let mut bad = example("s3-orders.json");
    bad["config"]["transforms.pii.fields"] = json!("nope");
    let bad = write_json(dir.path(), "bad.json", &bad);
    let e = run_cli(&["translate", &bad]);
    assert_eq!(e.status.code(), Some(1));
    assert!(
        text(&e.stderr).contains("transforms.pii.fields: the record has no field 'nope'"),
        "{}",
        text(&e.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_source_connector_json_copies_records_to_the_renamed_topic() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("mirrored");
    create_topic(&b, &topic, 2).await;
    create_topic(&b, &format!("east.{topic}"), 2).await;
    produce(
        &b,
        &topic,
        &[
            Rec::value("one")
                .key("k1")
                .partition(0)
                .header("trace", "t1")
                .header("keep", "yes"),
            Rec::value("two").key("k2").partition(1),
            Rec::value(vec![0xff, 0x00]).key("k3").partition(1),
        ],
    );
    let connector = json!({"name": unique("mm2"), "config": {
        "connector.class": "org.apache.kafka.connect.mirror.MirrorSourceConnector",
        "source.cluster.alias": "east", "source.cluster.bootstrap.servers": b, "target.cluster.bootstrap.servers": b,
        "topics": topic,
        "transforms": "drop", "transforms.drop.type": "org.apache.kafka.connect.transforms.DropHeaders", "transforms.drop.headers": "trace"
    }});
    let file = write_json(dir.path(), "mm2.json", &connector);
    run_connector(&file, dir.path(), &[], &[]);
    type Copied = (String, Vec<u8>, Vec<(String, String)>);
    let mut got: Vec<Copied> = consume(&b, &format!("east.{topic}"), 3, Duration::from_secs(30))
        .into_iter()
        .map(|g| {
            (
                g.key_text(),
                g.value.clone().unwrap_or_default(),
                g.headers.clone().into_iter().collect(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "k1".to_string(),
                b"one".to_vec(),
                vec![("keep".to_string(), "yes".to_string())]
            ),
            ("k2".to_string(), b"two".to_vec(), vec![]),
            ("k3".to_string(), vec![0xff, 0x00], vec![]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_columns_types_a_connector_from_its_topic_and_runs_it() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("connect-infer");
    create_topic(&b, &topic, 1).await;
    produce(
        &b,
        &topic,
        &[
            Rec::value(r#"{"id":1,"Name":"Ann","address":{"city":"Lyon"},"score":1.5}"#),
            Rec::value(r#"{"id":2,"Name":"Bo","address":{"city":"Oslo"},"score":2}"#),
        ],
    );
    let out_dir = dir.path().join("out");
    let connector = json!({"name": "infer", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "topics": topic,
        "file": out_dir.display().to_string(),
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "mask,flat",
        "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField$Value",
        "transforms.mask.fields": "Name",
        "transforms.flat.type": "org.apache.kafka.connect.transforms.Flatten$Value"
    }});
    let file = write_json(dir.path(), "infer.json", &connector);
    let t = run_cli(&["translate", &file, "--infer-columns", "--bootstrap-servers", &b]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let sql = text(&t.stdout);
    assert!(sql.contains("-- columns inferred from 2 records"), "{sql}");
    assert!(
        sql.contains("\"Name\" TEXT")
            && sql.contains("\"address\" STRUCT<\"city\" TEXT>")
            && sql.contains("\"id\" BIGINT")
            && sql.contains("\"score\" DOUBLE"),
        "{sql}"
    );

    run_connector(&file, dir.path(), &["--infer-columns", "--bootstrap-servers", &b], &[]);
    // FileStreamSink appends one JSON line per record to the one file `file` names.
    let mut rows: Vec<serde_json::Value> = std::fs::read_to_string(&out_dir)
        .expect("the one file FileStreamSink's 'file' names")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "Name": "", "address.city": "Lyon", "score": 1.5}),
            json!({"id": 2, "Name": "", "address.city": "Oslo", "score": 2.0}),
        ]
    );

    // Without a reader of JSON from Kafka there is nothing to sample.
    let mut lines = connector.clone();
    lines["config"]["connector.class"] = json!("FileStreamSource");
    let lines = write_json(dir.path(), "lines.json", &lines);
    let e = run_cli(&["translate", &lines, "--infer-columns", "--bootstrap-servers", &b]);
    assert!(
        !e.status.success() && text(&e.stderr).contains("cannot be sampled"),
        "{}",
        text(&e.stderr)
    );
}
