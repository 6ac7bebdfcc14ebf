//! Kafka source and sink against Tansu, a real Kafka-compatible broker over TCP
//! (started by `tests/run`): formats, metadata columns, routing, the dead-letter
//! topic, offsets committed to the group, crashes and consumer-group sharing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type};

use crate::kafka_support::{Rec, broker, committed, consume, create_topic, produce, unique};
use crate::support::{assert_every_id, count_by_id, quiver, read_jsonl, read_parquet, run_bounded, text};

/// One Parquet row of the first test.
#[derive(Debug)]
struct Row {
    name: Option<String>,
    doubled: Option<f64>,
    key: String,
    topic: String,
    partition: i32,
    offset: i64,
    origin: Option<String>,
}

fn order(i: i64) -> Rec {
    Rec::value(format!(
        r#"{{"id":{i},"name":"n{i}","amount":{}.5,"extra":"ignored"}}"#,
        i
    ))
    .key(format!("k{i}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn json_to_parquet_with_metadata_dead_letter_topic_and_group_offsets() {
    let b = broker();
    let (topic, dlq) = (unique("orders"), unique("orders-dlq"));
    create_topic(&b, &topic, 3).await;
    create_topic(&b, &dlq, 1).await;
    let mut records: Vec<Rec> = (0..300).map(|i| order(i).partition((i % 3) as i32)).collect();
    records[10] = Rec::value("{broken").key("bad-1").partition(1).header("trace", "t-1");
    records[20] = Rec::value(r#"{"id":"twenty","name":"x"}"#).key("bad-2").partition(2);
    records[30] = Rec::value(r#"{"id":30}"#)
        .key("k30")
        .partition(0)
        .header("origin", "web");
    produce(&b, &topic, &records);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    let sql = format!(
        "CREATE SOURCE orders (id BIGINT NOT NULL, name TEXT, amount DOUBLE)
           WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{topic}', format = 'json', 'key.format' = 'string');
         CREATE SINK lake WITH (connector = 'filesystem', path = '{}', format = 'parquet',
             'errors.tolerance' = 'all', 'errors.deadletterqueue.topic.name' = '{dlq}',
             'errors.deadletterqueue.context.headers.enable' = 'true')
           AS SELECT id, name, amount * 2 AS doubled, _key AS k, _topic AS t, _partition AS p, _offset AS o, _headers['origin'] AS origin,
                     100 / (id - 44) AS inverse
              FROM orders WHERE id % 2 = 0;",
        out.display()
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    assert_eq!(status[0].rows_in, 300);
    assert_eq!(
        status[0].rows_errored, 3,
        "two records that do not decode, one the SELECT cannot evaluate"
    );

    let batches: Vec<RecordBatch> = read_parquet(&out).into_iter().flat_map(|(_, b)| b).collect();
    let mut rows: BTreeMap<i64, Row> = BTreeMap::new();
    for batch in &batches {
        let id = batch.column(0).as_primitive::<Int64Type>();
        let name = batch.column(1).as_string::<i32>();
        let doubled = batch.column(2).as_primitive::<Float64Type>();
        let k = batch.column(3).as_string::<i32>();
        let t = batch.column(4).as_string::<i32>();
        let p = batch.column(5).as_primitive::<Int32Type>();
        let o = batch.column(6).as_primitive::<Int64Type>();
        let origin = batch.column(7);
        for r in 0..batch.num_rows() {
            let row = Row {
                name: name.is_valid(r).then(|| name.value(r).to_string()),
                doubled: doubled.is_valid(r).then(|| doubled.value(r)),
                key: k.value(r).to_string(),
                topic: t.value(r).to_string(),
                partition: p.value(r),
                offset: o.value(r),
                origin: (!origin.is_null(r))
                    .then(|| String::from_utf8_lossy(origin.as_binary::<i32>().value(r)).into_owned()),
            };
            assert!(
                rows.insert(id.value(r), row).is_none(),
                "id {} written twice",
                id.value(r)
            );
        }
    }
    let expected: BTreeSet<i64> = (0..300).filter(|i| i % 2 == 0 && ![10, 20, 44].contains(i)).collect();
    assert_eq!(rows.keys().copied().collect::<BTreeSet<_>>(), expected);
    let r = &rows[&42];
    assert_eq!(
        (
            r.name.as_deref(),
            r.doubled,
            r.key.as_str(),
            r.topic.as_str(),
            r.partition
        ),
        (Some("n42"), Some(85.0), "k42", topic.as_str(), 0)
    );
    assert_eq!(r.offset, 14, "record 42 is the 15th of partition 0");
    // A missing field is NULL; headers are readable by name.
    assert_eq!((rows[&30].name.as_deref(), rows[&30].doubled), (None, None));
    assert_eq!(rows[&30].origin.as_deref(), Some("web"));
    assert_eq!(rows[&0].origin, None);

    // The three bad records reached the dead-letter topic untouched, with context headers.
    let dead = consume(&b, &dlq, 3, Duration::from_secs(20));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let broken = dead
        .iter()
        .find(|d| d.key_text() == "bad-1")
        .expect("the broken JSON record");
    assert_eq!(broken.value.as_deref(), Some(&b"{broken"[..]));
    assert_eq!(broken.headers["trace"], "t-1", "original headers are kept");
    assert_eq!(broken.headers["__connect.errors.topic"], topic);
    assert_eq!(broken.headers["__connect.errors.partition"], "1");
    assert_eq!(broken.headers["__connect.errors.offset"], "3");
    assert_eq!(broken.headers["__connect.errors.stage"], "VALUE_CONVERTER");
    assert_eq!(broken.headers["__connect.errors.connector.name"], "lake");
    assert!(
        broken.headers["__connect.errors.exception.message"].contains("JSON"),
        "{:?}",
        broken.headers
    );
    let wrong = dead
        .iter()
        .find(|d| d.key_text() == "bad-2")
        .expect("the wrong-type record");
    assert_eq!(wrong.headers["__connect.errors.offset"], "6");
    let divide = dead
        .iter()
        .find(|d| d.key_text() == "k44")
        .expect("the record the SELECT failed on");
    assert_eq!(
        divide.value,
        order(44).value,
        "the original value bytes, not the decoded row"
    );
    assert_eq!(divide.headers["__connect.errors.stage"], "TRANSFORMATION");
    assert!(
        divide.headers["__connect.errors.exception.message"].contains("ivide by zero"),
        "{:?}",
        divide.headers
    );

    // Offsets reached the consumer group only after the files were durable: all 100 per partition.
    let group = committed(&b, "quiver-lake", &topic, 3);
    assert_eq!(group, BTreeMap::from([(0, 100), (1, 100), (2, 100)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_to_kafka_routes_rows_by_topic_column_with_keys_and_connect_envelope() {
    let b = broker();
    let (input, big, small) = (unique("csv-in"), unique("big"), unique("small"));
    create_topic(&b, &input, 1).await;
    create_topic(&b, &big, 2).await;
    create_topic(&b, &small, 1).await;
    let records: Vec<Rec> = (0..50)
        .map(|i| Rec::value(format!("{i},\"name, {i}\",{}", i * 3)))
        .collect();
    produce(&b, &input, &records);
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE lines (id INT NOT NULL, name TEXT, qty INT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{input}', format = 'csv');
         CREATE SINK routed WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', format = 'json', 'json.schemas.enable' = 'true', 'compression.type' = 'zstd')
           AS SELECT id, upper(name) AS name, qty,
                     CASE WHEN qty >= 75 THEN '{big}' ELSE '{small}' END AS _topic,
                     CAST(id AS TEXT) AS _key,
                     map(['source'], [arrow_cast('csv', 'Binary')]) AS _headers,
                     to_timestamp_millis(1704164645000 + id * 1000) AS _timestamp
              FROM lines;"
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    assert_eq!(status[0].rows_out, 50);

    let got_big = consume(&b, &big, 25, Duration::from_secs(20));
    let got_small = consume(&b, &small, 25, Duration::from_secs(20));
    assert_eq!((got_big.len(), got_small.len()), (25, 25));
    for g in got_big.iter().chain(&got_small) {
        let v = g.json();
        let id = v["payload"]["id"].as_i64().expect("payload.id");
        assert_eq!(g.key_text(), id.to_string());
        assert_eq!(v["payload"]["name"], format!("NAME, {id}"));
        assert_eq!(v["payload"]["qty"], id * 3);
        assert_eq!(v["schema"]["type"], "struct");
        assert_eq!(
            v["schema"]["fields"][0],
            serde_json::json!({"type": "int32", "field": "id", "optional": false})
        );
        assert_eq!(g.headers["source"], "csv");
        assert_eq!(
            g.timestamp,
            Some(1_704_164_645_000 + id * 1000),
            "the record time comes from _timestamp"
        );
        assert!(
            v["payload"].get("_topic").is_none(),
            "routing columns stay out of the payload"
        );
    }
    assert!(
        got_big
            .iter()
            .all(|g| g.json()["payload"]["qty"].as_i64().unwrap() >= 75)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn debezium_and_raw_formats_decode() {
    let b = broker();
    let (cdc, raw) = (unique("cdc"), unique("raw"));
    create_topic(&b, &cdc, 1).await;
    create_topic(&b, &raw, 1).await;
    produce(
        &b,
        &cdc,
        &[
            Rec::value(r#"{"before":null,"after":{"id":1,"email":"a@x"},"op":"c","source":{"table":"users"}}"#),
            Rec::value(r#"{"before":{"id":1,"email":"a@x"},"after":{"id":1,"email":"b@x"},"op":"u"}"#),
            Rec::value(r#"{"before":{"id":1,"email":"b@x"},"after":null,"op":"d"}"#),
            Rec {
                key: Some(b"1".to_vec()),
                ..Default::default()
            },
            Rec::value(r#"{"schema":{},"payload":{"before":null,"after":{"id":2,"email":"c@x"},"op":"r"}}"#),
        ],
    );
    produce(
        &b,
        &raw,
        &[
            Rec::value("plain line"),
            Rec::value(vec![0xff, 0xfe]),
            Rec::value("second"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (o1, o2, dlq) = (dir.path().join("cdc"), dir.path().join("raw"), dir.path().join("dlq"));
    let sql = format!(
        "CREATE SOURCE users (id BIGINT, email TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{cdc}', format = 'debezium-json');
         CREATE SINK users_out WITH (connector = 'filesystem', path = '{}', format = 'json', 'errors.tolerance' = 'all')
           AS SELECT id, email, _op AS op FROM users;
         CREATE SOURCE lines (value TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{raw}', format = 'raw');
         CREATE SINK lines_out WITH (connector = 'filesystem', path = '{}', format = 'json', 'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}')
           AS SELECT value, length(value) AS n FROM lines;",
        o1.display(),
        o2.display(),
        dlq.display()
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(status.iter().all(|s| s.state.to_string() == "FINISHED"), "{status:?}");
    let users = read_jsonl(&o1, ".jsonl");
    let ops: Vec<(i64, String, String)> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_i64().unwrap(),
                u["email"].as_str().unwrap().to_string(),
                u["op"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The update's `after`, the delete's `before`; the tombstone is skipped; the last record uses the
    // schema envelope without json.schemas.enable, so it has no `op` and is rejected.
    assert_eq!(
        ops,
        [
            (1, "a@x".into(), "c".into()),
            (1, "b@x".into(), "u".into()),
            (1, "b@x".into(), "d".into())
        ]
    );
    let users_status = status.iter().find(|s| s.name == "users_out").expect("users_out status");
    assert_eq!(users_status.rows_errored, 1);
    let lines = read_jsonl(&o2, ".jsonl");
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"value": "plain line", "n": 10}),
            serde_json::json!({"value": "second", "n": 6})
        ]
    );
    let dead = read_jsonl(&dlq, ".jsonl");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["partition"], format!("{raw}/0"));
    assert_eq!(dead[0]["position"], 1);
    assert!(dead[0]["error"].as_str().unwrap().contains("UTF-8"), "{}", dead[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_record_without_tolerance_fails_naming_topic_partition_and_offset() {
    let b = broker();
    let topic = unique("strict");
    create_topic(&b, &topic, 2).await;
    produce(
        &b,
        &topic,
        &[
            order(1).partition(1),
            order(2).partition(1),
            Rec::value(r#"{"id": true}"#).partition(1),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{topic}');
         CREATE SINK k WITH (connector = 'blackhole') AS SELECT id FROM s;"
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FAILED");
    let error = status[0].error.clone().unwrap_or_default();
    assert!(error.contains(&format!("{topic}/1 position 2")), "{error}");
    assert!(error.contains("errors.tolerance"), "{error}");
    // Nothing past the bad record was committed to the group.
    assert!(committed(&b, "quiver-k", &topic, 2).values().all(|o| *o <= 2));
}

#[test]
fn sigkill_mid_run_then_restart_loses_nothing_and_reports_rereads() {
    let b = broker();
    let (topic, group) = (unique("crash"), unique("crash-group"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, &topic, 3));
    let total = 30_000i64;
    let records: Vec<Rec> = (0..total).map(|i| order(i).partition((i % 3) as i32)).collect();
    produce(&b, &topic, &records);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let file = dir.path().join("p.sql");
    // A slow sink (rows roll every 500, the source reads 1000 at a time) so the kill lands mid-run.
    std::fs::write(
        &file,
        format!(
            "CREATE SOURCE orders (id BIGINT NOT NULL, name TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{topic}', 'batch.size' = '1000', 'group.id' = '{group}');
             CREATE SINK out WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '500') AS SELECT id, name FROM orders;",
            out.display()
        ),
    )
    .unwrap();
    let args = ["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    let mut child = quiver().args(args).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read_jsonl(&out, ".jsonl").len() < 2_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = read_jsonl(&out, ".jsonl").len();
    assert!(
        partial >= 2_000,
        "the pipeline was running when killed ({partial} rows)"
    );

    let args = [
        "run",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--until-caught-up",
    ];
    let done = quiver().args(args).output().unwrap();
    let stdout = text(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", text(&done.stderr));
    assert!(stdout.contains("resumed after the committed position"), "{stdout}");
    let rows = read_jsonl(&out, ".jsonl");
    let duplicates = assert_every_id(&rows, total);
    println!(
        "Kafka SIGKILL: {} rows for {total} records, {duplicates} re-read; summary:\n{stdout}",
        rows.len()
    );
    if duplicates > 0 {
        assert!(
            stdout.contains("re-read"),
            "the summary reports the re-read records: {stdout}"
        );
    }
    // The group's offsets are not checked here: the killed run's consumer is still a
    // member until its session times out, and Kafka rejects commits from outside an
    // active group. The state store is the resume point (checked above); the group
    // offsets of a clean bounded run are checked in the first test.
}

#[test]
fn two_tasks_split_the_partitions_and_a_rebalance_loses_nothing() {
    let b = broker();
    let topic = unique("shared");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, &topic, 4));
    let first: Vec<Rec> = (0..4_000).map(|i| order(i).partition((i % 4) as i32)).collect();
    produce(&b, &topic, &first);

    let dir = tempfile::tempdir().unwrap();
    let group = unique("group");
    let pipeline = |name: &str, tasks: u32| {
        let out = dir.path().join(name);
        let file = dir.path().join(format!("{name}.sql"));
        std::fs::write(
            &file,
            format!(
                "CREATE SOURCE orders (id BIGINT NOT NULL) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{topic}', 'group.id' = '{group}', 'tasks.max' = '{tasks}', 'batch.linger' = '50ms');
                 CREATE SINK {name} WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.interval' = '300ms') AS SELECT id, _partition AS p FROM orders;",
                out.display()
            ),
        )
        .unwrap();
        let state = dir.path().join(format!("state-{name}"));
        let log = dir.path().join(format!("{name}.log"));
        let child = quiver()
            .env("QUIVER_LOG", "quiver_connectors=info")
            .args(["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, out, log)
    };
    let log_has = |log: &std::path::Path, what: &str| std::fs::read_to_string(log).unwrap_or_default().contains(what);
    let wait_for = |dirs: &[&std::path::Path], n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let rows: Vec<serde_json::Value> = dirs.iter().flat_map(|d| read_jsonl(d, ".jsonl")).collect();
            let got = count_by_id(&rows, "id").len();
            if got >= n || std::time::Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (mut a, out_a, log_a) = pipeline("a", 2);
    assert!(wait_for(&[&out_a], 4_000) >= 4_000, "process a read the first records");
    // A second member joins; once the group has rebalanced, more records arrive.
    let (mut c, out_c, log_c) = pipeline("c", 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !log_has(&log_c, "partitions assigned") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let second: Vec<Rec> = (4_000..8_000).map(|i| order(i).partition((i % 4) as i32)).collect();
    produce(&b, &topic, &second);
    wait_for(&[&out_a, &out_c], 8_000);
    for child in [&mut a, &mut c] {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let logs_a = std::fs::read_to_string(&log_a).unwrap();
    let logs_c = std::fs::read_to_string(&log_c).unwrap();

    let mut rows = read_jsonl(&out_a, ".jsonl");
    rows.extend(read_jsonl(&out_c, ".jsonl"));
    assert_every_id(&rows, 8_000);
    // Both tasks of process a received partitions at the start.
    assert!(
        logs_a.contains("task=0") && logs_a.contains("task=1") && logs_a.contains("partitions assigned"),
        "{logs_a}"
    );
    assert!(
        logs_a.contains("partitions revoked"),
        "the rebalance revoked partitions from process a: {logs_a}"
    );
    assert!(
        logs_c.contains("partitions assigned"),
        "process c got partitions: {logs_c}"
    );
    let from_c = count_by_id(&read_jsonl(&out_c, ".jsonl"), "id");
    assert!(
        from_c.keys().any(|id| *id >= 4_000),
        "process c read part of the second wave"
    );
}

/// Exactly-once into Kafka. Tansu (like the mock) does not hide aborted
/// transactions from read_committed readers, so what is checked is what can be:
/// the transactional flow completes, the consumed offsets reach the group only
/// through the producer's transaction (the engine does not commit them itself),
/// and a second instance with the same transactional id fences the first.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_commits_offsets_in_the_transaction_and_a_second_instance_fences_the_first() {
    let b = broker();
    let (input, output, group, prefix) = (
        unique("eos-in"),
        unique("eos-out"),
        unique("eos-group"),
        unique("eos-tx"),
    );
    create_topic(&b, &input, 1).await;
    create_topic(&b, &output, 1).await;
    produce(&b, &input, &(0..500).map(order).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE orders (id BIGINT NOT NULL, name TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{input}', 'group.id' = '{group}');
         CREATE SINK copy WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{output}',
             'sink.delivery.guarantee' = 'exactly-once', 'transactional.id.prefix' = '{prefix}')
           AS SELECT id, name FROM orders;"
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    let got = tokio::task::block_in_place(|| consume(&b, &output, 500, Duration::from_secs(20)));
    assert_eq!(
        got.iter()
            .map(|g| g.json()["id"].as_i64().unwrap())
            .collect::<BTreeSet<_>>(),
        (0..500).collect()
    );
    assert_eq!(
        committed(&b, &group, &input, 1),
        BTreeMap::from([(0, 500)]),
        "offsets committed by the transaction"
    );

    // A second producer with the same transactional id takes over; the first one's
    // next transaction is fenced and its pipeline fails, saying so.
    let engine = std::sync::Arc::new(
        quiver_engine::Engine::open(&dir.path().join("state2"), quiver_engine::EngineOptions::default()).unwrap(),
    );
    let sql = sql
        .replace("CREATE SINK copy", "CREATE SINK copy2")
        .replace(&format!("'{prefix}'"), &format!("'{prefix}-live'"));
    let (stmts, _) = quiver_sql::parse(&sql);
    for s in &stmts {
        engine.execute(s).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let zombie_killer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("transactional.id", format!("{prefix}-live-0"))
        .create()
        .unwrap();
    tokio::task::block_in_place(|| {
        rdkafka::producer::Producer::init_transactions(&zombie_killer, Duration::from_secs(20))
    })
    .unwrap();
    produce(&b, &input, &(500..600).map(order).collect::<Vec<_>>());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = engine.status("copy2").unwrap();
        if s.state.to_string() == "FAILED" || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.state.to_string(), "FAILED", "the fenced pipeline stops");
    let error = status.error.unwrap_or_default().to_lowercase();
    assert!(error.contains("fenced") || error.contains("epoch"), "{error}");
}

/// Parses `rows in N, rows out M, filtered F, dead-lettered D` of one sink's summary.
fn summary_counts(stdout: &str, sink: &str) -> [u64; 4] {
    let block = stdout
        .split(&format!("sink '{sink}'"))
        .nth(1)
        .unwrap_or_else(|| panic!("no summary for {sink}: {stdout}"));
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with("rows in"))
        .expect("counts line");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    [nums[0], nums[1], nums[2], nums[3]]
}

/// The README's Kafka example, run as a user runs it: `quiver dev kafka` in one
/// process, the example in another, stopped with SIGTERM and resumed.
#[test]
fn the_kafka_example_runs_against_quiver_dev_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap_file = dir.path().join("bootstrap");
    let mut dev = quiver()
        .args([
            "dev",
            "kafka",
            "--topic",
            "orders:3",
            "--topic",
            "orders_dlq",
            "--bootstrap-file",
            bootstrap_file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !bootstrap_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bootstrap = std::fs::read_to_string(&bootstrap_file)
        .expect("dev kafka wrote its address")
        .trim()
        .to_string();
    let lake = dir.path().join("lake");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/kafka_orders.sql")).unwrap();
    let file = dir.path().join("kafka_orders.sql");
    std::fs::write(&file, example.replace("/tmp/quiver-kafka/lake", lake.to_str().unwrap())).unwrap();
    let state = dir.path().join("state");
    let args = ["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];

    let run = quiver()
        .env("KAFKA_BOOTSTRAP", &bootstrap)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(13));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let first = run.wait_with_output().unwrap();
    let first_out = text(&first.stdout);
    assert!(first.status.success(), "{first_out}\n{}", text(&first.stderr));
    assert_eq!(
        summary_counts(&first_out, "publish")[1],
        50_000,
        "the producer pipeline published everything: {first_out}"
    );

    // Resume and read the rest of the topic.
    let mut args2 = args.to_vec();
    args2.push("--until-caught-up");
    let second = quiver()
        .env("KAFKA_BOOTSTRAP", &bootstrap)
        .args(&args2)
        .output()
        .unwrap();
    let second_out = text(&second.stdout);
    assert!(second.status.success(), "{second_out}\n{}", text(&second.stderr));
    let _ = dev.kill();
    let _ = dev.wait();

    let [in1, out1, filtered1, dead1] = summary_counts(&first_out, "lake");
    let [in2, out2, filtered2, dead2] = summary_counts(&second_out, "lake");
    let batches: Vec<RecordBatch> = read_parquet(&lake).into_iter().flat_map(|(_, b)| b).collect();
    let mut ids = BTreeSet::new();
    for b in &batches {
        let amount = b.column_by_name("amount").unwrap().as_primitive::<Float64Type>();
        assert!(
            amount.iter().all(|a| a.is_some_and(|a| a > 10.0)),
            "the WHERE clause held"
        );
        assert!(b.column_by_name("kafka_offset").is_some() && b.column_by_name("published_at").is_some());
        ids.extend(
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .iter()
                .flatten(),
        );
    }
    assert_eq!((dead1, dead2), (0, 0));
    assert_eq!(
        ids.len() as u64 + filtered1 + filtered2,
        50_000,
        "every published record was read once: {first_out}\n{second_out}"
    );
    assert!(in1 + in2 >= 50_000 && out1 + out2 >= ids.len() as u64);
}

/// Records the sink can never write (larger than message.max.bytes, or routed to a
/// NULL topic) go to the dead-letter topic as the original source records, at the
/// sink stage; the others are written.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_sink_refuses_goes_to_the_dead_letter_topic_as_the_original() {
    let b = broker();
    let (input, output, dlq) = (unique("big-in"), unique("big-out"), unique("big-dlq"));
    for t in [&input, &output, &dlq] {
        create_topic(&b, t, 1).await;
    }
    let mut records: Vec<Rec> = (0..40).map(order).collect();
    let huge = format!(r#"{{"id":12,"name":"{}"}}"#, "x".repeat(5_000));
    records[12] = Rec::value(huge.clone()).key("k12");
    produce(&b, &input, &records);
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE SOURCE orders (id BIGINT NOT NULL, name TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', topic = '{input}');
         CREATE SINK copy WITH (connector = 'kafka', 'bootstrap.servers' = '{b}', 'properties.message.max.bytes' = '2000',
             'errors.tolerance' = 'all', 'errors.deadletterqueue.topic.name' = '{dlq}', 'errors.deadletterqueue.context.headers.enable' = 'true')
           AS SELECT id, name, CASE WHEN id = 20 THEN NULL ELSE '{output}' END AS _topic FROM orders WHERE id % 2 = 0;"
    );
    let status = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(status[0].state.to_string(), "FINISHED", "{:?}", status[0].error);
    assert_eq!((status[0].rows_out, status[0].rows_errored), (18, 2));
    let got = tokio::task::block_in_place(|| consume(&b, &output, 18, Duration::from_secs(20)));
    let ids: BTreeSet<i64> = got.iter().map(|g| g.json()["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (0..40).filter(|i| i % 2 == 0 && *i != 12 && *i != 20).collect());
    let dead = tokio::task::block_in_place(|| consume(&b, &dlq, 2, Duration::from_secs(20)));
    assert_eq!(dead.len(), 2);
    let big = dead
        .iter()
        .find(|d| d.key_text() == "k12")
        .expect("the record too large for the broker");
    assert_eq!(
        big.value.as_deref(),
        Some(huge.as_bytes()),
        "the original record, untouched"
    );
    assert_eq!(big.headers["__connect.errors.stage"], "TASK_PUT");
    assert_eq!(big.headers["__connect.errors.offset"], "12");
    assert!(
        big.headers["__connect.errors.exception.message"].contains("too large"),
        "{:?}",
        big.headers
    );
    let unrouted = dead
        .iter()
        .find(|d| d.key_text() == "k20")
        .expect("the record with no topic");
    assert_eq!(unrouted.value, order(20).value);
    assert!(
        unrouted.headers["__connect.errors.exception.message"].contains("_topic is NULL"),
        "{:?}",
        unrouted.headers
    );
}
