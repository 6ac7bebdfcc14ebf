//! Avro in Confluent's wire format, through the in-repo Schema Registry
//! (tests/registry/server.py) and checked against confluent-kafka's own
//! AvroSerializer / AvroDeserializer (tests/registry/avro_client.py).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka_support::{Rec, broker, consume, create_topic, produce, unique};
use crate::support::run_bounded;

pub(crate) fn registry() -> String {
    std::env::var("QUIVER_TEST_REGISTRY")
        .expect("QUIVER_TEST_REGISTRY is not set: run the suite with tests/run, which starts the test registry")
}

pub(crate) fn python_client(args: &[&str]) -> String {
    let python =
        std::env::var("QUIVER_TEST_PYTHON").expect("QUIVER_TEST_PYTHON is not set: run the suite with tests/run");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/registry/avro_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "avro_client.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_from_confluent_serializer_through_quiver_to_confluent_deserializer() {
    let (b, r) = (broker(), registry());
    let (input, output, dlq) = (unique("avro-in"), unique("avro-out"), unique("avro-dlq"));
    create_topic(&b, &input, 2).await;
    create_topic(&b, &output, 1).await;
    create_topic(&b, &dlq, 1).await;
    let (b2, r2, i2) = (b.clone(), r.clone(), input.clone());
    tokio::task::spawn_blocking(move || python_client(&["produce", &b2, &r2, &i2, "200"]))
        .await
        .unwrap();
    // Two records that are not Confluent Avro: a JSON text and an unknown schema id.
    produce(
        &b,
        &input,
        &[
            Rec::value(r#"{"id": 1}"#).key("json"),
            Rec::value(vec![0, 0, 0, 0x27, 0x0f, 2]).key("unknown-id"),
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE orders (id BIGINT NOT NULL, name TEXT, qty BIGINT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{input}',
             format = 'avro', 'schema.registry.url' = '{r}');
         CREATE SINK out WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{output}', format = 'avro', 'schema.registry.url' = '{r}',
             'errors.tolerance' = 'all', 'errors.deadletterqueue.topic.name' = '{dlq}', 'errors.deadletterqueue.context.headers.enable' = 'true')
           AS SELECT id, upper(name) AS name, qty * 10 AS qty10 FROM orders WHERE id < 150;"
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    assert_eq!((status[0].rows_in, status[0].rows_errored), (202, 2));

    // confluent-kafka decodes what Quiver wrote, with the schema Quiver registered.
    let (b3, r3, o3) = (b.clone(), r.clone(), output.clone());
    let lines = tokio::task::spawn_blocking(move || python_client(&["consume", &b3, &r3, &o3, "150"]))
        .await
        .unwrap();
    let rows: BTreeMap<i64, serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["id"].as_i64().unwrap(), v))
        .collect();
    assert_eq!(rows.len(), 150);
    assert_eq!(rows[&42], serde_json::json!({"id": 42, "name": "NAME-42", "qty10": 0}));
    assert_eq!(
        rows[&13],
        serde_json::json!({"id": 13, "name": null, "qty10": 60}),
        "a null union branch, and an int promoted to long"
    );
    assert!(
        !rows[&42].as_object().unwrap().contains_key("internal_note"),
        "the writer's extra field was resolved away"
    );

    let dead = tokio::task::block_in_place(|| consume(&b, &dlq, 2, Duration::from_secs(20)));
    let by_key: BTreeMap<String, &crate::kafka_support::Got> = dead.iter().map(|d| (d.key_text(), d)).collect();
    assert!(
        by_key["json"].headers["__connect.errors.exception.message"].contains("wrong magic byte 0x7b"),
        "{:?}",
        by_key["json"].headers
    );
    assert!(
        by_key["unknown-id"].headers["__connect.errors.exception.message"].contains("unknown schema id 9999"),
        "{:?}",
        by_key["unknown-id"].headers
    );
}
