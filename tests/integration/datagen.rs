//! datagen: the same seed gives the same rows whatever the batching, across
//! restarts, and at the configured rate.

use std::collections::BTreeMap;
use std::time::Instant;

use quiver_engine::State;

use crate::support::{read_jsonl, run_bounded};

const COLUMNS: &str =
    "id BIGINT NOT NULL, s TEXT, f DOUBLE, n STRUCT<a INT, b TEXT>, pick TEXT, maybe INT, ts TIMESTAMP";
const FIELDS: &str = "seed = 5, 'fields.id.kind' = 'sequence', 'fields.s.length' = '6', 'fields.n.b.length' = '3', \
                      'fields.pick.values' = 'x,y,z', 'fields.maybe.null.rate' = '0.3'";

fn by_id(rows: Vec<serde_json::Value>) -> BTreeMap<i64, serde_json::Value> {
    rows.into_iter().map(|r| (r["id"].as_i64().unwrap(), r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_rows_for_any_batch_size_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n);
    let sql = format!(
        "CREATE SOURCE big ({COLUMNS}) WITH (connector = 'datagen', rows.total = 2000, batch.size = 1000, {FIELDS});
         CREATE SOURCE small ({COLUMNS}) WITH (connector = 'datagen', rows.total = 2000, batch.size = 7, {FIELDS});
         CREATE SINK a FROM big WITH (connector = 'filesystem', path = '{}', format = 'json');
         CREATE SINK b FROM small WITH (connector = 'filesystem', path = '{}', format = 'json');",
        out("a").display(),
        out("b").display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let a = by_id(read_jsonl(&out("a"), ".jsonl"));
    let b = by_id(read_jsonl(&out("b"), ".jsonl"));
    assert_eq!(a.len(), 2000);
    assert_eq!(a, b, "batch size does not change the rows");
    let nulls = a.values().filter(|r| r["maybe"].is_null()).count();
    assert!((450..750).contains(&nulls), "null.rate 0.3 over 2000 rows: {nulls}");

    // The same source stopped after 700 rows, then resumed to 2000 from the state store.
    let state = dir.path().join("state2");
    for total in [700, 2000] {
        let sql = format!(
            "CREATE SOURCE big ({COLUMNS}) WITH (connector = 'datagen', rows.total = {total}, batch.size = 64, {FIELDS});
             CREATE SINK c FROM big WITH (connector = 'filesystem', path = '{}', format = 'json');",
            out("c").display()
        );
        let st = run_bounded(&state, &sql).await;
        assert_eq!(st[0].state, State::Finished);
        assert_eq!(
            st[0].rows_in,
            if total == 700 { 700 } else { 1300 },
            "the second run resumes at row 700"
        );
    }
    let c = by_id(read_jsonl(&out("c"), ".jsonl"));
    assert_eq!(c, a, "resuming seeks each column's stream to the committed row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_per_second_limits_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE SOURCE s (id BIGINT) WITH (connector = 'datagen', rows.total = 600, rows.per.second = 1000, batch.linger = '50ms');
               CREATE SINK k FROM s WITH (connector = 'blackhole');";
    let started = Instant::now();
    let st = run_bounded(dir.path(), sql).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(st[0].rows_out, 600);
    // 600 rows at 1000/s: the last batch is due after ~0.55 s.
    assert!(
        elapsed >= 0.5,
        "finished in {elapsed:.2}s, faster than the limit allows"
    );
}
