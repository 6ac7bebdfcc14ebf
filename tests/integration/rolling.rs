//! File rolling in the filesystem sink: by rows, by bytes, and by age with no new input.

use std::time::Duration;

use quiver_engine::{Engine, EngineOptions, State};

use crate::support::{files_with, read_jsonl, run_bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_roll_by_rows_and_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let by_rows = dir.path().join("rows");
    let by_bytes = dir.path().join("bytes");
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL, pad TEXT) WITH (connector = 'datagen', rows.total = 10000, 'fields.id.kind' = 'sequence', 'fields.pad.length' = '100');
         CREATE SINK r WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '3000') AS SELECT id FROM gen;
         CREATE SINK b WITH (connector = 'filesystem', path = '{}', format = 'csv', 'rollover.bytes' = '200KB') AS SELECT id, pad FROM gen;",
        by_rows.display(),
        by_bytes.display()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");

    // Rows: 3000 + 3000 + 3000 + 1000, in id order across files named in sequence.
    let files = files_with(&by_rows, ".jsonl");
    let counts: Vec<usize> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .collect();
    assert_eq!(counts, vec![3000, 3000, 3000, 1000]);
    assert_eq!(read_jsonl(&by_rows, ".jsonl").len(), 10_000);

    // Bytes: ~1.1 MB of CSV in files of about 200 KB (a file closes once it passes the limit).
    let files = files_with(&by_bytes, ".csv");
    assert!(files.len() >= 5, "{} files", files.len());
    for f in &files[..files.len() - 1] {
        let size = std::fs::metadata(f).unwrap().len();
        assert!((200_000..300_000).contains(&size), "{} is {size} bytes", f.display());
    }
    let data_lines: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count() - 1)
        .sum();
    assert_eq!(data_lines, 10_000, "every file has its own header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_still_closes_its_file_after_rollover_interval() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":1}\n{\"id\":2}\n").unwrap();
    let out = dir.path().join("out");
    let engine = Engine::open(&dir.path().join("state"), EngineOptions::default()).unwrap();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL) WITH (connector = 'file', path = '{}', 'scan.interval' = '100ms');
         CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.interval' = '700ms') AS SELECT id FROM s;",
        input.display(),
        out.display()
    );
    let (stmts, _) = quiver_sql::parse(&sql);
    for s in &stmts {
        engine.execute(s).await.unwrap();
    }
    // Both rows are read at once, then nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(engine.status("k").unwrap().rows_out, 2);
    assert!(
        files_with(&out, ".jsonl").is_empty(),
        "the file is still open and invisible"
    );
    assert_eq!(
        engine.offsets("k").await.unwrap(),
        None,
        "nothing is committed before the file is durable"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(read_jsonl(&out, ".jsonl").len(), 2, "closed by age with no new input");
    let committed = engine.offsets("k").await.unwrap().expect("committed once durable");
    assert_eq!(committed.get(&input.display().to_string()).unwrap()["line"], 2);
    engine.shutdown().await;
}
