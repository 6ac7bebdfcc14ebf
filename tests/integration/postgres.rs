//! The PostgreSQL sink against the real server on this machine: insert, upsert and
//! update modes read back row by row, auto-create and auto-evolve, bad rows
//! isolated into the dead-letter queue, and names that try to inject SQL.

use std::collections::BTreeMap;

use quiver_engine::State;
use tokio_postgres::{Client, NoTls};

use crate::kafka_support::unique;
use crate::support::{read_jsonl, run_bounded};

pub(crate) const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub(crate) async fn client() -> Client {
    let (client, conn) = tokio_postgres::connect(URL, NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (see ../shared/SERVICES.md)");
    tokio::spawn(conn);
    client
}

/// A table name no other test or run uses.
fn table(name: &str) -> String {
    unique(name).replace('-', "_")
}

/// (id, name, amount as text) of every row, by id.
async fn rows(c: &Client, table: &str) -> BTreeMap<i64, (Option<String>, Option<String>)> {
    c.query(&format!("SELECT id, name, amount::text FROM \"{table}\""), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                (r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2)),
            )
        })
        .collect()
}

fn write_lines(dir: &std::path::Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_then_upsert_then_update_read_back_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let c = client().await;
    let t = table("orders");
    let first: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"n{i}","amount":"{}.{:02}","tags":{{"a":{i}}}}}"#,
                i,
                i % 100
            )
        })
        .collect();
    let input = write_lines(dir.path(), "a.jsonl", &first);
    let sink = |name: &str, mode: &str, path: &std::path::Path| {
        format!(
            "CREATE SOURCE s_{name} (id BIGINT NOT NULL, name TEXT, amount TEXT, tags STRUCT<a BIGINT>) WITH (connector = 'file', path = '{}');
             CREATE SINK {name} WITH (connector = 'postgres', 'connection.url' = 'jdbc:postgresql://127.0.0.1:5432/test?user=postgres', 'table.name.format' = '{t}',
               'insert.mode' = '{mode}', 'pk.mode' = 'record_value', 'pk.fields' = 'id', 'auto.create' = 'true')
             AS SELECT id, name, CAST(amount AS DECIMAL(12, 2)) AS amount, tags, now() AS loaded_at FROM s_{name};",
            path.display()
        )
    };
    let st = run_bounded(&dir.path().join("s1"), &sink("load", "insert", &input)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let got = rows(&c, &t).await;
    assert_eq!(got.len(), 1000);
    for i in 0..1000i64 {
        assert_eq!(
            got[&i],
            (Some(format!("n{i}")), Some(format!("{i}.{:02}", i % 100))),
            "row {i}"
        );
    }
    // The table was created from the Arrow schema with the key from pk.fields.
    let types: Vec<(String, String)> = c
        .query(&format!("SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [
        ("id", "bigint"),
        ("name", "text"),
        ("amount", "numeric"),
        ("tags", "jsonb"),
        ("loaded_at", "timestamp with time zone"),
    ];
    assert_eq!(types, expected.map(|(a, b)| (a.to_string(), b.to_string())).to_vec());
    let tag: serde_json::Value = c
        .query_one(&format!("SELECT tags FROM \"{t}\" WHERE id = 7"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tag, serde_json::json!({"a": 7}));
    let pk: i64 = c
        .query_one(&format!("SELECT count(*) FROM information_schema.table_constraints WHERE table_name = '{t}' AND constraint_type = 'PRIMARY KEY'"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, 1);

    // Upsert: ids 500..1500, new names; the same id twice in the input keeps the last.
    let mut second: Vec<String> = (500..1500)
        .map(|i| format!(r#"{{"id":{i},"name":"u{i}","amount":"1.50"}}"#))
        .collect();
    second.push(r#"{"id":600,"name":"last","amount":"2.00"}"#.to_string());
    let input = write_lines(dir.path(), "b.jsonl", &second);
    let st = run_bounded(&dir.path().join("s2"), &sink("up", "upsert", &input)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let got = rows(&c, &t).await;
    assert_eq!(got.len(), 1500);
    assert_eq!(got[&0], (Some("n0".into()), Some("0.00".into())));
    assert_eq!(got[&999], (Some("u999".into()), Some("1.50".into())));
    assert_eq!(got[&600], (Some("last".into()), Some("2.00".into())));
    assert_eq!(got[&1499], (Some("u1499".into()), Some("1.50".into())));

    // Update: only keys that exist change; new keys are not inserted.
    let third: Vec<String> = [10, 20, 5000]
        .iter()
        .map(|i| format!(r#"{{"id":{i},"name":"x{i}","amount":"9.99"}}"#))
        .collect();
    let input = write_lines(dir.path(), "c.jsonl", &third);
    let st = run_bounded(&dir.path().join("s3"), &sink("upd", "update", &input)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let got = rows(&c, &t).await;
    assert_eq!(got.len(), 1500);
    assert_eq!(got[&10], (Some("x10".into()), Some("9.99".into())));
    assert_eq!(got[&11], (Some("n11".into()), Some("11.11".into())));
    assert!(!got.contains_key(&5000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bad_rows_among_10000_go_to_the_dead_letter_queue_and_the_rest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let c = client().await;
    let t = table("checked");
    c.batch_execute(&format!(
        "CREATE TABLE \"{t}\" (id BIGINT PRIMARY KEY, name TEXT, amount INTEGER CHECK (amount >= 0))"
    ))
    .await
    .unwrap();
    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"n{i}","amount":{}}}"#,
                if [17, 5000, 9999].contains(&i) { -1 } else { i }
            )
        })
        .collect();
    let input = write_lines(dir.path(), "in.jsonl", &lines);
    let dlq = dir.path().join("dlq");
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT, amount BIGINT) WITH (connector = 'file', path = '{}');
         CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}')
         AS SELECT * FROM s;",
        input.display(),
        dlq.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    assert_eq!(st[0].rows_out, 9997);
    assert_eq!(st[0].rows_errored, 3);
    let got = rows(&c, &t).await;
    assert_eq!(got.len(), 9997);
    assert!(!got.contains_key(&17) && !got.contains_key(&5000) && !got.contains_key(&9999));
    let dead = read_jsonl(&dlq, ".jsonl");
    assert_eq!(dead.len(), 3);
    let mut ids: Vec<i64> = dead.iter().map(|d| d["record"]["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec![17, 5000, 9999]);
    for d in &dead {
        let e = d["error"].as_str().unwrap();
        assert!(
            e.contains("23514") && e.contains("check constraint") && e.contains(&t),
            "{e}"
        );
        assert_eq!(d["stage"], "sink");
    }
    // Without tolerance the first bad row stops the pipeline, naming its position and the error.
    let t2 = table("checked_strict");
    c.batch_execute(&format!(
        "CREATE TABLE \"{t2}\" (id BIGINT PRIMARY KEY, name TEXT, amount INTEGER CHECK (amount >= 0))"
    ))
    .await
    .unwrap();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT, amount BIGINT) WITH (connector = 'file', path = '{}');
         CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t2}') AS SELECT * FROM s;",
        input.display()
    );
    let st = run_bounded(&dir.path().join("state2"), &sql).await;
    let err = st[0].error.clone().unwrap_or_default();
    assert_eq!(st[0].state, State::Failed);
    assert!(err.contains("position 18") && err.contains("check constraint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_cannot_inject_sql_and_missing_tables_and_columns_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = client().await;
    let victim = table("victim");
    c.batch_execute(&format!("CREATE TABLE \"{victim}\" (id BIGINT)"))
        .await
        .unwrap();
    let input = write_lines(dir.path(), "in.jsonl", &[r#"{"id":1}"#.to_string()]);
    let evil = format!("x\"; DROP TABLE \"{victim}\"; --");
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL) WITH (connector = 'file', path = '{}');
         CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{}', 'auto.create' = 'true') AS SELECT id AS \"a\"\"b\" FROM s;",
        input.display(),
        evil.replace('\'', "''")
    );
    let st = run_bounded(&dir.path().join("s1"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM \"{victim}\""), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the victim table still exists");
    let quoted = format!("\"{}\"", evil.replace('"', "\"\""));
    let v: i64 = c
        .query_one(&format!("SELECT \"a\"\"b\" FROM {quoted}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 1, "a table with the literal name holds the row");
    c.batch_execute(&format!("DROP TABLE {quoted}")).await.unwrap();

    // A missing table without auto.create, then a missing column without auto.evolve.
    let t = table("absent");
    let sql = |evolve: bool| {
        format!(
            "CREATE SOURCE s (id BIGINT NOT NULL) WITH (connector = 'file', path = '{}');
             CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'auto.evolve' = '{evolve}') AS SELECT id, 'x' AS extra FROM s;",
            input.display()
        )
    };
    let st = run_bounded(&dir.path().join("s2"), &sql(false)).await;
    let err = st[0].error.clone().unwrap_or_default();
    assert!(
        err.contains(&format!("table {t} does not exist")) && err.contains("auto.create"),
        "{err}"
    );
    c.batch_execute(&format!("CREATE TABLE \"{t}\" (id INTEGER)"))
        .await
        .unwrap();
    let st = run_bounded(&dir.path().join("s3"), &sql(false)).await;
    let err = st[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("has no column extra") && err.contains("auto.evolve"),
        "{err}"
    );
    // auto.evolve adds the column; the INTEGER id takes BIGINT values through a cast.
    let st = run_bounded(&dir.path().join("s4"), &sql(true)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let r = c
        .query_one(&format!("SELECT id, extra FROM \"{t}\""), &[])
        .await
        .unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, String>(1)), (1, "x".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_from_an_op_column_and_from_tombstones_remove_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = client().await;
    let t = table("cdc");
    // Debezium-style changes: c(reate), u(pdate), d(elete); the `before` image carries the key of a delete.
    let changes = [
        (1, "a", "c"),
        (2, "b", "c"),
        (1, "a", "d"),
        (3, "c", "c"),
        (3, "c", "d"),
        (2, "b2", "u"),
        (4, "d", "c"),
        (4, "d", "d"),
        (4, "d4", "c"),
    ];
    let lines: Vec<String> = changes
        .iter()
        .map(|(id, name, op)| format!(r#"{{"id":{id},"name":"{name}","op":"{op}"}}"#))
        .collect();
    let input = write_lines(dir.path(), "cdc.jsonl", &lines);
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT, op TEXT) WITH (connector = 'file', path = '{}');
         CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'insert.mode' = 'upsert',
           'pk.mode' = 'record_value', 'pk.fields' = 'id', 'delete.enabled' = 'true', 'auto.create' = 'true')
         AS SELECT id, name, NULL::decimal(10,2) AS amount, op AS _op FROM s;",
        input.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let got = rows(&c, &t).await;
    let names: Vec<(i64, Option<String>)> = got.into_iter().map(|(id, (n, _))| (id, n)).collect();
    assert_eq!(names, vec![(2, Some("b2".into())), (4, Some("d4".into()))]);
    // _op is how deletes are recognised, never a column of the table.
    let cols: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = '{t}' AND column_name = '_op'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 0);

    // record_key: a record whose value is null (every written column NULL) is a tombstone.
    let t = table("tomb");
    let lines = [
        r#"{"id":1,"name":"a"}"#,
        r#"{"id":2,"name":"b"}"#,
        r#"{"id":1}"#,
        r#"{"id":3,"name":"c"}"#,
        r#"{"id":3}"#,
        r#"{"id":3,"name":"c2"}"#,
    ];
    let input = write_lines(dir.path(), "tomb.jsonl", &lines.map(String::from));
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT) WITH (connector = 'file', path = '{}');
         CREATE SINK k WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'insert.mode' = 'upsert',
           'pk.mode' = 'record_key', 'pk.fields' = 'id', 'delete.enabled' = 'true', 'auto.create' = 'true')
         AS SELECT id AS _key, name FROM s;",
        input.display()
    );
    let st = run_bounded(&dir.path().join("state2"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let got: Vec<(i64, String)> = c
        .query(&format!("SELECT id, name FROM \"{t}\" ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, vec![(2, "b".to_string()), (3, "c2".to_string())]);
}

#[test]
fn exactly_once_survives_sigkill_with_positions_in_the_same_transaction() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(client());
    let dir = tempfile::tempdir().unwrap();
    let t = table("eos");
    let total: i64 = 30_000;
    // Plain inserts, no key: only the positions committed with the rows prevent duplicates.
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL, payload TEXT) WITH (connector = 'datagen', rows.total = '{total}', rows.per.second = '10000', 'fields.id.kind' = 'sequence', 'fields.payload.length' = '16');
         CREATE SINK {t} WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'auto.create' = 'true', 'sink.delivery.guarantee' = 'exactly-once') AS SELECT id, payload FROM gen;"
    );
    let file = dir.path().join("p.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");
    let args = ["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    for wait in [1300, 900] {
        let mut child = crate::support::quiver().args(args).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL: the open transaction dies with the process
        child.wait().unwrap();
    }
    let partial: i64 = rt
        .block_on(c.query_one(&format!("SELECT count(*) FROM \"{t}\""), &[]))
        .unwrap()
        .get(0);
    assert!(
        partial > 0 && partial < total,
        "the kills happened mid-run ({partial} rows)"
    );
    // The state store is removed: the positions in quiver_offsets alone must be enough.
    std::fs::remove_dir_all(&state).unwrap();
    let done = crate::support::quiver().args(args).output().unwrap();
    assert!(
        done.status.success(),
        "{}\n{}",
        crate::support::text(&done.stdout),
        crate::support::text(&done.stderr)
    );
    let (n, distinct): (i64, i64) = rt
        .block_on(c.query_one(&format!("SELECT count(*), count(DISTINCT id) FROM \"{t}\""), &[]))
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((n, distinct), (total, total), "every row exactly once");
    let position: serde_json::Value = rt
        .block_on(c.query_one(
            "SELECT position FROM quiver_offsets WHERE pipeline = $1 AND source_partition = 'rows'",
            &[&t],
        ))
        .unwrap()
        .get(0);
    assert_eq!(position, serde_json::json!(total));
}

/// Restarts the machine's PostgreSQL mid-run: every other test using it would
/// fail meanwhile, so this one is ignored by default and `tests/run` runs it alone
/// after the suite (`cargo test --test integration -- --ignored`).
#[test]
#[ignore = "restarts the shared PostgreSQL server; tests/run runs it on its own"]
fn a_database_restart_mid_run_pauses_the_pipeline_and_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = table("restart");
    let total: i64 = 40_000;
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL, payload TEXT) WITH (connector = 'datagen', rows.total = '{total}', rows.per.second = '10000', 'fields.id.kind' = 'sequence', 'fields.payload.length' = '16');
         CREATE SINK {t} WITH (connector = 'postgres', 'connection.url' = '{URL}', 'auto.create' = 'true', 'insert.mode' = 'upsert', 'pk.mode' = 'record_value',
           'pk.fields' = 'id', 'retry.backoff.ms' = '500', 'max.retries' = '60') AS SELECT id, payload FROM gen;"
    );
    let file = dir.path().join("p.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");
    let child = crate::support::quiver()
        .args(["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Down for three seconds, then back: a restart with a noticeable outage.
    let version = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    let cluster = |action: &str| {
        let out = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", version.to_str().unwrap(), "main", action])
            .output()
            .expect("pg_ctlcluster runs");
        assert!(
            out.status.success(),
            "pg_ctlcluster {action}: {}",
            crate::support::text(&out.stderr)
        );
    };
    cluster("stop");
    std::thread::sleep(std::time::Duration::from_secs(3));
    cluster("start");
    let out = child.wait_with_output().unwrap();
    let log = crate::support::text(&out.stderr);
    assert!(out.status.success(), "{}\n{log}", crate::support::text(&out.stdout));
    assert!(
        log.contains("PostgreSQL unreachable; retrying"),
        "the restart was noticed and waited out:\n{log}"
    );
    let c = rt.block_on(client());
    let (n, distinct): (i64, i64) = rt
        .block_on(c.query_one(&format!("SELECT count(*), count(DISTINCT id) FROM \"{t}\""), &[]))
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((n, distinct), (total, total), "every row arrived");
}

/// An engine of its own (state in memory) running `sql`.
async fn start(sql: &str) -> std::sync::Arc<quiver_engine::Engine> {
    let engine = std::sync::Arc::new(
        quiver_engine::Engine::with_store(
            std::sync::Arc::new(quiver_engine::store::MemoryStore::default()),
            quiver_engine::EngineOptions::default(),
        )
        .await
        .unwrap(),
    );
    for s in quiver_sql::parse(sql).0 {
        engine.execute(&s).await.unwrap();
    }
    engine
}

/// (rows, distinct ids) in a table; zeros while it does not exist.
async fn count(c: &Client, table: &str) -> (i64, i64) {
    c.query_one(&format!("SELECT count(*), count(DISTINCT id) FROM \"{table}\""), &[])
        .await
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
        .unwrap_or((0, 0))
}

/// Two instances of one exactly-once task (a worker paused past its session that
/// comes back while the task runs elsewhere): once the newer one has started, the
/// older one writes nothing more — no rows, no positions — and fails saying why;
/// the newer one carries on, and every row is in the table exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_instance_of_an_exactly_once_task_is_fenced_by_a_newer_one() {
    use std::time::{Duration, Instant};

    let t = table("fenced");
    let pipeline = unique("fenced").replace('-', "_");
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '400', batch.linger = '50ms', 'fields.id.kind' = 'sequence');
         CREATE SINK {pipeline} WITH (connector = 'postgres', 'connection.url' = '{URL}', 'table.name.format' = '{t}', 'auto.create' = 'true',
           'sink.delivery.guarantee' = 'exactly-once') AS SELECT id FROM gen;"
    );
    let c = client().await;
    let old = start(&sql).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&c, &t).await.0 < 200 {
        assert!(Instant::now() < deadline, "the first instance writes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The newer instance resumes from the positions in quiver_offsets …
    let new = start(&sql).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let s = old.status(&pipeline).unwrap();
        if s.state == State::Failed {
            break s.error.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "the older instance was never fenced: {:?}",
            s.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed.contains("was started again"), "{failed}");
    old.shutdown().await;
    // … and the older one, fenced at its next batch, added nothing after that.
    let written = count(&c, &t).await.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&c, &t).await.0 < written + 400 {
        assert!(Instant::now() < deadline, "the newer instance carries on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    new.shutdown().await;
    let (rows, distinct) = count(&c, &t).await;
    assert_eq!(rows, distinct, "no row written twice");
    let max: i64 = c
        .query_one(&format!("SELECT max(id) FROM \"{t}\""), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max + 1, rows, "no row missing");
}
