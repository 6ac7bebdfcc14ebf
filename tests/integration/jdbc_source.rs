//! The polling sources (`postgres`, `mysql`) against the servers on this machine:
//! every mapped type read back, changes picked up while a pipeline runs, and
//! restarts that resume without gaps or repeats.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use quiver_engine::State;

use crate::kafka_support::unique;
use crate::support::{read_jsonl, run_bounded};

async fn pg() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(crate::postgres::URL, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    client
}

async fn maria() -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(crate::mysql::URL).unwrap())
        .await
        .expect("MariaDB on 127.0.0.1:3306")
}

fn table(name: &str) -> String {
    unique(name).replace('-', "_")
}

/// JSON rows written by a filesystem sink, ordered by id.
fn by_id(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut rows = read_jsonl(dir, ".jsonl");
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bulk_reads_every_mapped_type() {
    let dir = tempfile::tempdir().unwrap();
    let c = pg().await;
    let t = table("src_types");
    c.batch_execute(&format!(
        "CREATE TABLE {t} (id int PRIMARY KEY, small smallint, big bigint, price numeric(10, 2), name text, data bytea, doc jsonb, uid uuid,
           at timestamp, at_tz timestamptz, day date, tm time, tags text[], nums int[], ok boolean, ratio float8);
         INSERT INTO {t} VALUES (1, 7, 9000000000, 12.34, 'héllo ''q''', '\\x00ff', '{{\"a\": [1, 2]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2026-11-22 01:02:03.456789', '2026-11-22 01:02:03.456789+02', '2026-11-22', '12:34:56.5', '{{x,y}}', '{{1,NULL,3}}', true, 0.25);
         INSERT INTO {t} (id) VALUES (2);"
    ))
    .await
    .unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE SOURCE s (id INT NOT NULL, small SMALLINT, big BIGINT, price DECIMAL(10, 2), name STRING, data BYTEA, doc STRING, uid STRING,
           at TIMESTAMP, at_tz TIMESTAMP WITH TIME ZONE, day DATE, tm TIME, tags STRING[], nums INT[], ok BOOLEAN, ratio DOUBLE)
         WITH (connector = 'postgres', 'connection.url' = 'jdbc:postgresql://127.0.0.1:5432/test?user=postgres', mode = 'bulk', 'table.whitelist' = 'public.{t}');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json')
         AS SELECT id, small, big, price, name, encode(data, 'hex') AS data, json_get_int(doc, '$.a[1]') AS doc_a1, uid, CAST(at AS STRING) AS at,
                   CAST(at_tz AS STRING) AS at_tz, CAST(day AS STRING) AS day, CAST(tm AS STRING) AS tm, tags, nums, ok, ratio FROM s;",
        out.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let rows = by_id(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        serde_json::json!({"id": 1, "small": 7, "big": 9_000_000_000i64, "price": 12.34, "name": "héllo 'q'", "data": "00ff", "doc_a1": 2,
            "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "at": "2026-11-22T01:02:03.456789", "at_tz": "2026-11-21T23:02:03.456789",
            "day": "2026-11-22", "tm": "12:34:56.500", "tags": ["x", "y"], "nums": [1, null, 3], "ok": true, "ratio": 0.25})
    );
    // NULL in every column but the key.
    let second = rows[1].as_object().unwrap();
    assert!(
        second["id"] == 2
            && second.len() == rows[0].as_object().unwrap().len()
            && second.iter().all(|(k, v)| k == "id" || v.is_null()),
        "{second:?}"
    );
}

/// Waits until `count()` reaches `want` (or fails after 30 s).
async fn wait_for(what: &str, want: i64, mut count: impl AsyncFnMut() -> i64) {
    let start = Instant::now();
    loop {
        let n = count().await;
        if n == want {
            return;
        }
        assert!(
            n < want && start.elapsed() < Duration::from_secs(30),
            "{what}: {n} rows, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_timestamp_incrementing_picks_up_changes_and_resumes_exactly_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let c = pg().await;
    let (src, dst) = (table("src_ti"), table("dst_ti"));
    c.batch_execute(&format!(
        "CREATE TABLE {src} (id serial PRIMARY KEY, name text, updated timestamptz NOT NULL);
         INSERT INTO {src} (name, updated) SELECT 'n' || i, timestamptz '2026-01-01' + i * interval '1 second' FROM generate_series(1, 100) i;"
    ))
    .await
    .unwrap();
    // Every change becomes a row of the target (no key): a repeat or a gap shows in the counts.
    let sql = format!(
        "CREATE SOURCE s (id INT NOT NULL, name STRING, updated TIMESTAMP WITH TIME ZONE)
         WITH (connector = 'postgres', 'connection.url' = '{}', mode = 'timestamp+incrementing', 'incrementing.column.name' = 'id',
               'timestamp.column.name' = 'updated', 'table.whitelist' = '{src}', 'poll.interval.ms' = '200', 'batch.max.rows' = '7');
         CREATE SINK {dst} WITH (connector = 'postgres', 'connection.url' = '{}', 'auto.create' = 'true', 'sink.delivery.guarantee' = 'exactly-once')
         AS SELECT id, name FROM s;",
        crate::postgres::URL,
        crate::postgres::URL
    );
    let file = dir.path().join("p.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");
    let args = ["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    let count = async || -> i64 {
        c.query_one(&format!("SELECT count(*) FROM {dst}"), &[])
            .await
            .map_or(0, |r| r.get(0))
    };

    let mut child = crate::support::quiver().args(args).spawn().unwrap();
    wait_for("first poll", 100, count).await;
    // New rows and updates (a later timestamp) made while the pipeline runs.
    c.batch_execute(&format!(
        "INSERT INTO {src} (name, updated) SELECT 'm' || i, now() - interval '1 second' FROM generate_series(1, 50) i;
         UPDATE {src} SET name = name || '!', updated = now() - interval '1 second' WHERE id <= 10;"
    ))
    .await
    .unwrap();
    wait_for("changes during the run", 160, count).await;
    child.kill().unwrap();
    child.wait().unwrap();
    c.batch_execute(&format!(
        "INSERT INTO {src} (name, updated) SELECT 'k' || i, now() - interval '1 second' FROM generate_series(1, 20) i;"
    ))
    .await
    .unwrap();
    let done = crate::support::quiver()
        .args(args)
        .arg("--until-caught-up")
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}\n{}",
        crate::support::text(&done.stdout),
        crate::support::text(&done.stderr)
    );
    let got: Vec<(i32, String)> = c
        .query(&format!("SELECT id, name FROM {dst} ORDER BY id, name"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut want: Vec<(i32, String)> = (1..=100).map(|i| (i, format!("n{i}"))).collect();
    want.extend((1..=10).map(|i| (i, format!("n{i}!"))));
    want.extend((101..=150).map(|i| (i, format!("m{}", i - 100))));
    want.extend((151..=170).map(|i| (i, format!("k{}", i - 150))));
    want.sort();
    assert_eq!(got.len(), 180, "every change exactly once");
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_bulk_reads_every_mapped_type_and_incrementing_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = maria().await;
    let t = table("src_types");
    c.query_drop(format!(
        "CREATE TABLE `{t}` (id INT AUTO_INCREMENT PRIMARY KEY, small SMALLINT, big BIGINT UNSIGNED, price DECIMAL(10, 2), name VARCHAR(50), data BLOB, doc JSON,
           at DATETIME(6), day DATE, tm TIME(3), ok BOOLEAN, ratio DOUBLE);
         INSERT INTO `{t}` VALUES (1, 7, 9000000000, 12.34, 'héllo ''q'' \\\\', X'00FF', '{{\"a\": [1, 2]}}', '2026-11-22 01:02:03.456789', '2026-11-22', '12:34:56.5', TRUE, 0.25);
         INSERT INTO `{t}` (id) VALUES (2);"
    ))
    .await
    .unwrap();
    let out = dir.path().join("out");
    let sql = |mode: &str, out: &std::path::Path| {
        format!(
            "CREATE SOURCE s (id INT NOT NULL, small SMALLINT, big BIGINT, price DECIMAL(10, 2), name STRING, data BYTEA, doc STRING, at TIMESTAMP, day DATE, tm TIME, ok BOOLEAN, ratio DOUBLE)
             WITH (connector = 'mysql', 'connection.url' = 'jdbc:mariadb://127.0.0.1:3306/test?user=root', mode = '{mode}', 'table.whitelist' = '{t}', 'batch.max.rows' = '2'{});
             CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json')
             AS SELECT id, small, big, price, name, encode(data, 'hex') AS data, json_get_int(doc, '$.a[1]') AS doc_a1, CAST(at AS STRING) AS at,
                       CAST(day AS STRING) AS day, CAST(tm AS STRING) AS tm, ok, ratio FROM s;",
            if mode == "incrementing" { ", 'incrementing.column.name' = 'id'" } else { "" },
            out.display()
        )
    };
    let st = run_bounded(&dir.path().join("state"), &sql("bulk", &out)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let rows = by_id(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        serde_json::json!({"id": 1, "small": 7, "big": 9_000_000_000i64, "price": 12.34, "name": "héllo 'q' \\", "data": "00ff", "doc_a1": 2,
            "at": "2026-11-22T01:02:03.456789", "day": "2026-11-22", "tm": "12:34:56.500", "ok": true, "ratio": 0.25})
    );
    // NULL in every column but the key.
    let second = rows[1].as_object().unwrap();
    assert!(
        second["id"] == 2
            && second.len() == rows[0].as_object().unwrap().len()
            && second.iter().all(|(k, v)| k == "id" || v.is_null()),
        "{second:?}"
    );

    // Incrementing: a second run with the same state reads only the rows added since.
    let (inc, state) = (dir.path().join("inc"), dir.path().join("inc-state"));
    let st = run_bounded(&state, &sql("incrementing", &inc)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    assert_eq!(by_id(&inc).len(), 2);
    c.query_drop(format!(
        "INSERT INTO `{t}` (name) VALUES ('a'), ('b'), ('c'); UPDATE `{t}` SET name = 'changed' WHERE id = 1;"
    ))
    .await
    .unwrap();
    let st = run_bounded(&state, &sql("incrementing", &inc)).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let ids: Vec<i64> = by_id(&inc).iter().map(|r| r["id"].as_i64().unwrap()).collect();
    // Incrementing mode sees new rows only (updates need a timestamp column), each once.
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_source_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!(
        "CREATE SOURCE s (id INT) WITH (connector = 'postgres', 'connection.url' = '{}', mode = 'bulk', 'table.whitelist' = 'no_such_table_here');
         CREATE SINK k WITH (connector = 'blackhole') AS SELECT id FROM s;",
        crate::postgres::URL
    );
    let st = run_bounded(&dir.path().join("a"), &missing).await;
    let err = st[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("no_such_table_here") && err.contains("does not exist"),
        "{err}"
    );
    // A declared column the database value cannot fill is a decode error for that row only.
    let mut c = maria().await;
    let t = table("src_bad");
    c.query_drop(format!("CREATE TABLE `{t}` (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO `{t}` VALUES (1, '10'), (2, 'ten'), (3, '30'), (4, NULL);")).await.unwrap();
    let dlq = dir.path().join("dlq");
    let out = dir.path().join("out");
    let bad = format!(
        "CREATE SOURCE s (id INT, v BIGINT NOT NULL) WITH (connector = 'mysql', 'connection.url' = '{}', mode = 'bulk', 'table.whitelist' = '{t}');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json', 'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}') AS SELECT id, v FROM s;",
        crate::mysql::URL,
        out.display(),
        dlq.display()
    );
    let st = run_bounded(&dir.path().join("b"), &bad).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let rows: Vec<i64> = by_id(&out).iter().map(|r| r["v"].as_i64().unwrap()).collect();
    assert_eq!(rows, vec![10, 30]);
    let dead = read_jsonl(&dlq, ".jsonl");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("'ten' is not a valid Int64"),
        "{}",
        dead[0]
    );
    assert!(
        dead[1]["error"]
            .as_str()
            .unwrap()
            .contains("column v is declared NOT NULL and the database value is NULL"),
        "{}",
        dead[1]
    );
    assert!(
        dead.iter()
            .all(|d| d["stage"] == "decode" && d["partition"] == t.as_str()),
        "{dead:?}"
    );
    // Options are checked at CREATE time.
    let refused = quiver_sql::parse(
        "CREATE SOURCE s (id INT) WITH (connector = 'mysql', 'connection.url' = 'mysql://h/db', mode = 'incrementing', 'table.whitelist' = 't');",
    );
    let engine = quiver_engine::Engine::open(
        &dir.path().join("c"),
        quiver_engine::EngineOptions {
            bounded: true,
            persist_definitions: false,
        },
    )
    .unwrap();
    let e = engine.execute(&refused.0[0]).await.unwrap_err().to_string();
    assert!(e.contains("incrementing.column.name"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_are_used_and_certificate_problems_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // The polling source reads its own connection's TLS status from pg_stat_ssl.
    let probe = |mode: &str, extra: &str, out: &std::path::Path| {
        format!(
            "CREATE SOURCE s (id INT, ssl BOOLEAN) WITH (connector = 'postgres', 'connection.url' = '{}', 'connection.ssl.mode' = '{mode}'{extra}, mode = 'bulk',
               query = 'SELECT 1 AS id, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
             CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json') AS SELECT id, ssl FROM s;",
            crate::postgres::URL,
            out.display()
        )
    };
    for (mode, want) in [("require", true), ("disable", false)] {
        let out = dir.path().join(mode);
        let st = run_bounded(&dir.path().join(format!("s-{mode}")), &probe(mode, "", &out)).await;
        assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
        assert_eq!(by_id(&out)[0]["ssl"], want, "sslmode {mode}");
    }
    // verify-full with the server's self-signed certificate as the root: the host
    // name (127.0.0.1) is not the certificate's, and the error says so.
    let cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if std::path::Path::new(cert).exists() {
        let sql = probe(
            "verify-full",
            &format!(", 'connection.ssl.root.cert' = '{cert}'"),
            &dir.path().join("vf"),
        );
        let st = run_bounded(&dir.path().join("s-vf"), &sql).await;
        let err = st[0].error.clone().unwrap_or_default();
        assert_eq!(st[0].state, State::Failed);
        assert!(
            err.contains("connecting to postgres://127.0.0.1:5432/test") && err.to_lowercase().contains("certificate"),
            "{err}"
        );
    }
    // MariaDB here has TLS off: require is refused with the driver's reason, prefer falls back.
    let maria = |mode: &str| {
        format!(
            "CREATE SOURCE s (id INT) WITH (connector = 'mysql', 'connection.url' = '{}', 'connection.ssl.mode' = '{mode}', mode = 'bulk', query = 'SELECT 1 AS id');
             CREATE SINK k WITH (connector = 'blackhole') AS SELECT id FROM s;",
            crate::mysql::URL
        )
    };
    let st = run_bounded(&dir.path().join("m1"), &maria("require")).await;
    let err = st[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("connecting to mysql://127.0.0.1:3306/test") && err.contains("SSL"),
        "{err}"
    );
    let st = run_bounded(&dir.path().join("m2"), &maria("prefer")).await;
    assert!(
        st.iter().all(|s| s.state == State::Finished && s.rows_out == 1),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_to_mariadb_example_copies_rows_and_their_updates() {
    let dir = tempfile::tempdir().unwrap();
    let c = pg().await;
    let mut m = maria().await;
    // The example's own set-up (its header comment), on fresh tables.
    c.batch_execute(
        "DROP TABLE IF EXISTS accounts; CREATE TABLE accounts (id serial PRIMARY KEY, owner text, balance numeric(12, 2), tags text[], updated timestamptz NOT NULL DEFAULT now());
         INSERT INTO accounts (owner, balance, tags) VALUES ('ada', 10.50, '{vip}'), ('bob', 3, '{}')",
    )
    .await
    .unwrap();
    m.query_drop("DROP TABLE IF EXISTS accounts_copy; CREATE TABLE IF NOT EXISTS quiver_offsets (pipeline VARCHAR(255) NOT NULL, source_partition VARCHAR(255) NOT NULL, position TEXT NOT NULL, updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (pipeline, source_partition)); DELETE FROM quiver_offsets WHERE pipeline = 'accounts_copy'").await.unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/postgres_to_mariadb.sql");
    let state = dir.path().join("state");
    let run = || {
        crate::support::quiver()
            .args([
                "run",
                example,
                "--until-caught-up",
                "--state-dir",
                state.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", crate::support::text(&out.stderr));
    c.batch_execute("UPDATE accounts SET balance = 99, updated = clock_timestamp() WHERE id = 1")
        .await
        .unwrap();
    let out = run();
    assert!(out.status.success(), "{}", crate::support::text(&out.stderr));
    let rows: Vec<(i32, String, String, Option<i64>)> = m
        .query("SELECT id, owner, CAST(balance AS CHAR), tag_count FROM accounts_copy ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "ADA".into(), "99.00".into(), Some(1)),
            (2, "BOB".into(), "3.00".into(), Some(0))
        ]
    );
}
