//! The file source into the filesystem sink: partitioning, resume, bad records.

use std::io::Write;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use crate::support::{read_jsonl, read_parquet, run_bounded};
use quiver_engine::State;

fn write(path: &std::path::Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_file_to_parquet_partitioned_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write(
        &input.join("a.jsonl"),
        &[
            r#"{"id":1,"country":"DE","amount":10.5}"#,
            r#"{"id":2,"country":"FR","amount":20}"#,
            r#"{"id":3,"country":"DE","amount":-1,"ignored":"extra field"}"#,
            r#"{"id":4,"country":null,"amount":7}"#,
            r#"{"id":5,"country":"a/b%c","amount":1}"#,
        ],
    );
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, country TEXT, amount DOUBLE) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', 'partition.by' = 'country') AS
             SELECT id, country, amount * 2 AS doubled FROM s WHERE amount > 0;",
        input.display(),
        out.display()
    );
    let state = dir.path().join("state");
    let st = run_bounded(&state, &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    assert_eq!((st[0].rows_in, st[0].rows_out, st[0].rows_filtered()), (5, 4, 1));

    let mut got: Vec<(String, i64, f64)> = Vec::new();
    for (path, batches) in read_parquet(&out) {
        let folder = path.rsplit_once('/').map(|(f, _)| f.to_string()).unwrap();
        for b in batches {
            assert_eq!(b.num_columns(), 2, "country lives in the folder name");
            let ids = b.column(0).as_primitive::<Int64Type>();
            let d = b.column(1).as_primitive::<arrow::datatypes::Float64Type>();
            for i in 0..b.num_rows() {
                got.push((folder.clone(), ids.value(i), d.value(i)));
            }
        }
    }
    got.sort_by_key(|g| g.1);
    assert_eq!(
        got,
        vec![
            ("country=DE".to_string(), 1, 21.0),
            ("country=FR".to_string(), 2, 40.0),
            ("country=__HIVE_DEFAULT_PARTITION__".to_string(), 4, 14.0),
            ("country=a%2Fb%25c".to_string(), 5, 2.0),
        ]
    );

    // New lines and a new file: a rerun reads only what was not committed.
    write(&input.join("a.jsonl"), &[r#"{"id":6,"country":"DE","amount":3}"#]);
    write(&input.join("b.jsonl"), &[r#"{"id":7,"country":"SE","amount":4}"#]);
    let st = run_bounded(&state, &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    assert_eq!(st[0].rows_in, 2, "only the two new records are read");
    let ids: Vec<i64> = read_parquet(&out)
        .iter()
        .flat_map(|(_, bs)| {
            bs.iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 4, 5, 6, 7]);
}

const BAD_INPUT: &[&str] = &[
    r#"{"id":1,"qty":"10"}"#,
    r#"{"id":2,"qty":"ten","note":"not read by the SELECT"}"#,
    r#"{broken json"#,
    r#"{"id":"four","qty":"4"}"#,
    r#"{"id":5,"qty":"5"}"#,
];

fn bad_records_sql(input: &std::path::Path, out: &std::path::Path, errors: &str) -> String {
    format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, qty TEXT, note TEXT) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json', {errors}) AS
             SELECT id, CAST(qty AS INT) AS qty FROM s;",
        input.display(),
        out.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_queue_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(&input, BAD_INPUT);
    let out = dir.path().join("out");
    let dlq = dir.path().join("dlq");
    let sql = bad_records_sql(
        &input,
        &out,
        &format!(
            "'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}'",
            dlq.display()
        ),
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    assert_eq!((st[0].rows_in, st[0].rows_out, st[0].rows_errored), (5, 2, 3));

    // Good rows, in order.
    let rows = read_jsonl(&out, ".jsonl");
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"id": 1, "qty": 10}),
            serde_json::json!({"id": 5, "qty": 5})
        ]
    );

    // Each bad record with where it came from and why.
    let dead = read_jsonl(&dlq, ".jsonl");
    assert_eq!(dead.len(), 3, "{dead:#?}");
    let file = input.display().to_string();
    let by_line = |n: i64| {
        dead.iter()
            .find(|d| d["position"] == n)
            .unwrap_or_else(|| panic!("no DLQ record for line {n}: {dead:#?}"))
    };
    let transform = by_line(2);
    assert_eq!(transform["stage"], "transform");
    assert_eq!(transform["partition"], file.as_str());
    assert_eq!(transform["source"], "s");
    assert_eq!(transform["sink"], "k");
    // The whole row, with the column the SELECT does not read (a pipeline without a
    // dead-letter queue need not decode it).
    assert_eq!(
        transform["record"],
        serde_json::json!({"id": 2, "qty": "ten", "note": "not read by the SELECT"})
    );
    assert!(
        transform["error"]
            .as_str()
            .unwrap()
            .contains("Cannot cast string 'ten' to value of Int32 type"),
        "{transform}"
    );
    let broken = by_line(3);
    assert_eq!(broken["stage"], "decode");
    assert_eq!(broken["record"], r#"{broken json"#);
    assert!(
        broken["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{broken}"
    );
    let wrong_type = by_line(4);
    assert_eq!(wrong_type["stage"], "decode");
    assert_eq!(wrong_type["record"], r#"{"id":"four","qty":"4"}"#);
}

/// Records that all decode (so the JSON fast path takes the chunk), one failing the
/// SELECT: its dead-letter record is the whole row, with the column the SELECT does
/// not read; without a dead-letter queue that column need not be built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_rows_keep_the_columns_the_select_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(
        &input,
        &[
            r#"{"id":1,"qty":"10","note":"a"}"#,
            r#"{"id":2,"qty":"ten","note":"b"}"#,
            r#"{"id":3,"qty":"3"}"#,
        ],
    );
    let (out, dlq) = (dir.path().join("out"), dir.path().join("dlq"));
    let sql = bad_records_sql(
        &input,
        &out,
        &format!(
            "'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}'",
            dlq.display()
        ),
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(
        (st[0].state, st[0].rows_out, st[0].rows_errored),
        (State::Finished, 2, 1),
        "{:?}",
        st[0].error
    );
    let dead = read_jsonl(&dlq, ".jsonl");
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(
        dead[0]["record"],
        serde_json::json!({"id": 2, "qty": "ten", "note": "b"})
    );
    assert_eq!(
        read_jsonl(&out, ".jsonl"),
        vec![
            serde_json::json!({"id": 1, "qty": 10}),
            serde_json::json!({"id": 3, "qty": 3})
        ]
    );
}

/// `WHERE amount > 0` is applied by the JSON source while decoding: rows that fail
/// it are counted as read and never delivered, and the rows after them keep their own
/// line numbers in the dead-letter queue. A batch with a malformed line (which the
/// fast path declines) is filtered by the transform instead, with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_applied_while_decoding_keeps_counts_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut lines: Vec<String> = (1..=40)
        .map(|i| match i {
            7 => r#"{"id":7,"amount":5,"qty":"seven"}"#.to_string(),
            23 => r#"{"id":23,"amount":"lots","qty":"1"}"#.to_string(),
            31 => r#"{"id":31,"amount":-5,"qty":"never cast"}"#.to_string(),
            i if i % 3 == 0 => format!(r#"{{"id":{i},"amount":{},"qty":"{i}"}}"#, -i),
            i => format!(r#"{{"id":{i},"amount":{i}.5,"qty":"{i}"}}"#),
        })
        .collect();
    lines.push(r#"{"id":41,"amount":-0.0,"qty":"x"}"#.to_string());
    write(&input, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let (out, dlq) = (dir.path().join("out"), dir.path().join("dlq"));
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, amount DOUBLE, qty TEXT) WITH (connector = 'file', path = '{}', format = 'json', 'batch.size' = '10');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json', 'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}') AS
             SELECT id, CAST(qty AS INT) AS qty FROM s WHERE amount > 0;",
        input.display(),
        out.display(),
        dlq.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    // Kept: 1..=40 except multiples of 3 (13 of them), line 7 (bad cast), line 23 (bad
    // JSON value), 31 (negative); 41 is -0.0, not above 0.
    let expected: Vec<i64> = (1..=40).filter(|i| i % 3 != 0 && ![7, 23, 31].contains(i)).collect();
    assert_eq!(
        (st[0].rows_in, st[0].rows_out, st[0].rows_errored),
        (41, expected.len() as u64, 2)
    );
    let ids: Vec<i64> = read_jsonl(&out, ".jsonl")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, expected);
    for r in read_jsonl(&out, ".jsonl") {
        assert_eq!(r["qty"], r["id"], "{r}");
    }
    let dead = read_jsonl(&dlq, ".jsonl");
    let by_position: Vec<(i64, &str)> = dead
        .iter()
        .map(|d| (d["position"].as_i64().unwrap(), d["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(by_position, vec![(7, "transform"), (23, "decode")], "{dead:#?}");
    assert_eq!(
        dead[0]["record"],
        serde_json::json!({"id": 7, "amount": 5.0, "qty": "seven"})
    );
}

/// A column only the `WHERE` clause reads (`amount`) is left unbuilt when the file
/// source applied the whole filter; the rows delivered are those of the records that
/// pass it, from chunks the fast path filtered and from those it declined (the chunk
/// with line 12, and the next one, which the decoder's back-off hands to arrow-json).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_only_the_filter_reads_is_filtered_at_source_with_every_row_right() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = (1..=35)
        .map(|i| match i {
            // A number as text: the fast path declines its chunk, arrow-json reads it,
            // and the transform filters that chunk with every column built.
            12 => r#"{"id":12,"amount":"12.5","qty":"12"}"#.to_string(),
            i if i % 4 == 0 => format!(r#"{{"id":{i},"amount":-{i}.25,"qty":"{i}"}}"#),
            i => format!(r#"{{"id":{i},"amount":{i}.75,"qty":"{i}"}}"#),
        })
        .collect();
    write(&input, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, amount DOUBLE, qty TEXT) WITH (connector = 'file', path = '{}', format = 'json', 'batch.size' = '8');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json') AS
             SELECT id, qty FROM s WHERE amount > 0;",
        input.display(),
        out.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    let expected: Vec<i64> = (1..=35).filter(|i| i % 4 != 0 || *i == 12).collect();
    assert_eq!(
        (st[0].rows_in, st[0].rows_out, st[0].rows_errored),
        (35, expected.len() as u64, 0)
    );
    let rows = read_jsonl(&out, ".jsonl");
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, expected);
    for r in &rows {
        assert_eq!(r["qty"].as_str().unwrap(), r["id"].to_string(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_record_fails_the_pipeline_under_tolerance_none() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(&input, BAD_INPUT);
    let out = dir.path().join("out");
    let st = run_bounded(
        &dir.path().join("state"),
        &bad_records_sql(&input, &out, "'errors.tolerance' = 'none'"),
    )
    .await;
    assert_eq!(st[0].state, State::Failed);
    let err = st[0].error.clone().unwrap();
    assert!(
        err.starts_with(&format!(
            "record at {} position 3 of source 's' failed at decode stage: invalid JSON",
            input.display()
        )),
        "{err}"
    );
    assert!(err.contains("errors.tolerance = 'all'"), "says how to tolerate: {err}");
    assert_eq!(st[0].rows_out, 0, "nothing from the failing batch is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_csv_lines_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write(
        &input,
        &[
            "id,name,score",
            "1,ann,1.5",
            "2,bob,not-a-number",
            "3,\"cy, jr\",3",
            "4,dee",
        ],
    );
    let out = dir.path().join("out");
    let dlq = dir.path().join("dlq");
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT, score DOUBLE) WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE SINK k FROM s WITH (connector = 'filesystem', path = '{}', format = 'csv', 'errors.tolerance' = 'all', 'errors.deadletterqueue.path' = '{}');",
        input.display(),
        out.display(),
        dlq.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert_eq!(st[0].state, State::Finished, "{:?}", st[0].error);
    let written: String = crate::support::files_with(&out, ".csv")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(written, "id,name,score\n1,ann,1.5\n3,\"cy, jr\",3.0\n");
    let dead = read_jsonl(&dlq, ".jsonl");
    let positions: Vec<i64> = dead.iter().map(|d| d["position"].as_i64().unwrap()).collect();
    assert_eq!(positions, vec![3, 5], "CSV line numbers count the header: {dead:#?}");
    assert!(dead.iter().all(|d| d["stage"] == "decode"));
    assert_eq!(dead[0]["record"], "2,bob,not-a-number");
}
