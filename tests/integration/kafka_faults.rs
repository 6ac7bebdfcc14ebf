//! Broker faults injected with librdkafka's in-process mock cluster: a broker
//! down for 20 s, leaders moving mid-run, authorization failures. Each ends in
//! recovery with every record delivered, or in a FAILED status that says why —
//! never a hang or a silent drop.

use std::collections::BTreeSet;
use std::time::Duration;

use quiver_connectors::kafka::dev::DevCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::kafka_support::{Rec, consume, produce};
use crate::support::run_bounded;

fn ids(got: &[crate::kafka_support::Got]) -> BTreeSet<i64> {
    got.iter().map(|g| g.json()["id"].as_i64().expect("id")).collect()
}

fn datagen_to_kafka(bootstrap: &str, topic: &str, rows: u64, rate: u64) -> String {
    format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL, name TEXT) WITH (connector = 'datagen', 'rows.total' = '{rows}', 'rows.per.second' = '{rate}',
             'fields.id.kind' = 'sequence', 'fields.name.length' = '8', 'batch.linger' = '50ms');
         CREATE SINK out WITH (connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = '{topic}', 'key.fields' = 'id', 'key.format' = 'string')
           AS SELECT id, name FROM gen;"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_down_for_20_seconds_delays_but_loses_nothing() {
    let cluster = DevCluster::start(1).unwrap();
    cluster.create_topic("events", 2).unwrap();
    let bootstrap = cluster.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let sql = datagen_to_kafka(&bootstrap, "events", 3_000, 300);
    let state = dir.path().join("state");
    let run = tokio::spawn(async move { run_bounded(&state, &sql).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.mock().broker_down(-1).unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        !run.is_finished(),
        "the pipeline waits for the broker instead of finishing"
    );
    cluster.mock().broker_up(-1).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the pipeline recovers")
        .unwrap();
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    let got = tokio::task::block_in_place(|| consume(&bootstrap, "events", 3_000, Duration::from_secs(30)));
    assert_eq!(
        ids(&got),
        (0..3_000).collect::<BTreeSet<_>>(),
        "every record arrived after the outage"
    );
    assert_eq!(got.len(), 3_000, "the idempotent producer wrote no duplicates");
}

#[tokio::test(flavor = "multi_thread")]
async fn leaders_moving_mid_run_lose_nothing() {
    let cluster = DevCluster::start(3).unwrap();
    cluster.create_topic("moves", 3).unwrap();
    let bootstrap = cluster.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let sql = datagen_to_kafka(&bootstrap, "moves", 4_000, 1_000);
    let state = dir.path().join("state");
    let run = tokio::spawn(async move { run_bounded(&state, &sql).await });
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        for p in 0..3 {
            cluster
                .mock()
                .partition_leader("moves", p, Some((p + round) % 3 + 1))
                .unwrap();
        }
        cluster.mock().request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3],
        );
    }
    let status = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the pipeline finishes")
        .unwrap();
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    let got = tokio::task::block_in_place(|| consume(&bootstrap, "moves", 4_000, Duration::from_secs(30)));
    assert_eq!(ids(&got), (0..4_000).collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_failure_on_the_source_is_a_clear_failed_status() {
    let cluster = DevCluster::start(1).unwrap();
    cluster.create_topic("secret", 1).unwrap();
    let bootstrap = cluster.bootstrap();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        produce(
            &b,
            "secret",
            &(0..10)
                .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
                .collect::<Vec<_>>(),
        )
    })
    .await
    .unwrap();
    cluster.mock().request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 20],
    );
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT) WITH (connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = 'secret');
         CREATE SINK k WITH (connector = 'blackhole') AS SELECT id FROM s;"
    );
    let status = tokio::time::timeout(Duration::from_secs(60), run_bounded(&dir.path().join("state"), &sql))
        .await
        .expect("no hang");
    assert_eq!(status[0].state.to_string(), "FAILED");
    let error = status[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("source 's' failed") && error.contains("uthoriz"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_failure_on_the_sink_is_a_clear_failed_status() {
    let cluster = DevCluster::start(1).unwrap();
    cluster.create_topic("locked", 1).unwrap();
    cluster.mock().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    let dir = tempfile::tempdir().unwrap();
    let sql = datagen_to_kafka(&cluster.bootstrap(), "locked", 100, 1_000);
    let status = tokio::time::timeout(Duration::from_secs(60), run_bounded(&dir.path().join("state"), &sql))
        .await
        .expect("no hang");
    assert_eq!(status[0].state.to_string(), "FAILED");
    let error = status[0].error.clone().unwrap_or_default();
    assert!(error.contains("locked/0") && error.contains("uthoriz"), "{error}");
}
