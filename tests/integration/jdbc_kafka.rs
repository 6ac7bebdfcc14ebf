//! Kafka into the relational sinks: tombstones delete by record key, Kafka
//! coordinates as the primary key, and `${topic}` naming the table.

use mysql_async::prelude::Queryable;
use quiver_engine::State;

use crate::kafka_support::{Rec, broker, create_topic, produce, unique};
use crate::support::run_bounded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_delete_by_key_and_kafka_coordinates_key_each_record() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("jdbc-keys").replace('-', "_");
    create_topic(&b, &topic, 1).await;
    let records = [
        Rec::value(r#"{"name":"a"}"#).key("k1"),
        Rec::value(r#"{"name":"b"}"#).key("k2"),
        Rec {
            key: Some(b"k1".to_vec()),
            ..Default::default()
        }, // a tombstone: k1 is deleted
        Rec::value(r#"{"name":"c"}"#).key("k3"),
        Rec::value(r#"{"name":"b2"}"#).key("k2"),
    ];
    produce(&b, &topic, &records);
    let pg_table = format!("{topic}_by_key");
    let sql = format!(
        "CREATE SOURCE s (name TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{topic}', format = 'json', 'key.format' = 'string');
         CREATE SINK by_key WITH (connector = 'postgres', 'connection.url' = '{}', 'table.name.format' = '{pg_table}', 'insert.mode' = 'upsert',
           'pk.mode' = 'record_key', 'pk.fields' = 'id', 'delete.enabled' = 'true', 'auto.create' = 'true') AS SELECT _key, name FROM s;
         CREATE SINK by_offset WITH (connector = 'mysql', 'connection.url' = '{}', 'table.name.format' = 'log_${{topic}}', 'pk.mode' = 'kafka', 'auto.create' = 'true')
           AS SELECT name FROM s;",
        crate::postgres::URL,
        crate::mysql::URL
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");

    let (c, conn) = tokio_postgres::connect(crate::postgres::URL, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows: Vec<(String, String)> = c
        .query(&format!("SELECT id, name FROM {pg_table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("k2".to_string(), "b2".to_string()),
            ("k3".to_string(), "c".to_string())
        ]
    );

    // Every record, the tombstone too, under its (topic, partition, offset).
    let mut m = mysql_async::Conn::new(mysql_async::Opts::from_url(crate::mysql::URL).unwrap())
        .await
        .unwrap();
    let log: Vec<(String, i32, i64, Option<String>)> =
        m.query(format!("SELECT __connect_topic, __connect_partition, __connect_offset, name FROM `log_{topic}` ORDER BY __connect_offset")).await.unwrap();
    let want: Vec<(String, i32, i64, Option<String>)> = [Some("a"), Some("b"), None, Some("c"), Some("b2")]
        .iter()
        .enumerate()
        .map(|(o, n)| (topic.clone(), 0, o as i64, n.map(String::from)))
        .collect();
    assert_eq!(log, want);
    let key: Vec<String> =
        m.query(format!("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = 'log_{topic}' AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION")).await.unwrap();
    assert_eq!(key, ["__connect_topic", "__connect_partition", "__connect_offset"]);
}
