//! The engine's lifecycle API: pause, resume, stop, restart, offsets, reset.

use std::time::Duration;

use quiver_engine::{Engine, EngineError, EngineOptions, State};

use crate::support::{count_by_id, read_jsonl};

async fn exec(engine: &Engine, sql: &str) {
    let (stmts, errors) = quiver_sql::parse(sql);
    assert!(errors.is_empty(), "{errors:?}");
    for s in &stmts {
        engine.execute(s).await.unwrap();
    }
}

async fn committed_rows(engine: &Engine) -> u64 {
    engine
        .offsets("k")
        .await
        .unwrap()
        .and_then(|o| o.get("rows").and_then(|v| v.as_u64()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_stop_restart_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let engine = Engine::open(&dir.path().join("state"), EngineOptions::default()).unwrap();
    exec(
        &engine,
        &format!(
            "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '2000', batch.linger = '50ms', 'fields.id.kind' = 'sequence');
             CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '400') AS SELECT id FROM gen;",
            out.display()
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(engine.status("k").unwrap().state, State::Running);
    assert!(engine.status("k").unwrap().rows_in > 0);

    // Paused: no more rows are read.
    engine.pause("k").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = engine.status("k").unwrap();
    assert_eq!(s.state, State::Paused);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        engine.status("k").unwrap().rows_in,
        s.rows_in,
        "nothing is read while paused"
    );

    engine.resume("k").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = engine.status("k").unwrap();
    assert_eq!(s.state, State::Running);
    assert!(s.rows_in > 0);

    // Offsets cannot be reset under a running pipeline.
    assert!(matches!(
        engine.reset_offsets("k").await,
        Err(EngineError::InvalidState { .. })
    ));

    // A graceful stop flushes and commits exactly what was written.
    let stopped = engine.stop("k").await.unwrap();
    assert_eq!(stopped.state, State::Stopped);
    let n = committed_rows(&engine).await;
    assert_eq!(n, stopped.rows_out);
    let rows = read_jsonl(&out, ".jsonl");
    assert_eq!(
        count_by_id(&rows, "id").keys().copied().collect::<Vec<_>>(),
        (0..n as i64).collect::<Vec<_>>()
    );

    // Restart resumes after the committed offset: no gap, no duplicate.
    let restarted = engine.restart("k").await.unwrap();
    assert_eq!(restarted.state, State::Running);
    tokio::time::sleep(Duration::from_millis(600)).await;
    engine.stop("k").await.unwrap();
    let m = committed_rows(&engine).await;
    assert!(m > n, "the restarted pipeline made progress ({n} → {m})");
    let counts = count_by_id(&read_jsonl(&out, ".jsonl"), "id");
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..m as i64).collect::<Vec<_>>()
    );
    assert!(
        counts.values().all(|c| *c == 1),
        "a graceful stop and restart writes nothing twice"
    );

    // Reset, then a restart reads from the beginning again.
    engine.reset_offsets("k").await.unwrap();
    assert_eq!(engine.offsets("k").await.unwrap(), None);
    assert!(matches!(engine.pause("nope"), Err(EngineError::NotFound(_))));
}

/// Two concurrent `CREATE SINK` of one name: the engine serves them one at a time,
/// so exactly one is created and exactly one task runs, for every race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_start_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(Engine::open(&dir.path().join("state"), EngineOptions::default()).unwrap());
    exec(
        &engine,
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '10', 'fields.id.kind' = 'sequence');",
    )
    .await;
    for i in 0..20 {
        let sql = format!("CREATE SINK race_{i} WITH (connector = 'blackhole') AS SELECT id FROM gen;");
        let stmt = quiver_sql::parse_one(&sql).unwrap();
        let (a, b) = tokio::join!(
            tokio::spawn({
                let (e, s) = (engine.clone(), stmt.clone());
                async move { e.execute(&s).await.map(|_| ()) }
            }),
            tokio::spawn({
                let (e, s) = (engine.clone(), stmt.clone());
                async move { e.execute(&s).await.map(|_| ()) }
            }),
        );
        let results = [a.unwrap(), b.unwrap()];
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 1, "race {i}: exactly one create succeeds: {results:?}");
        let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap().to_string();
        assert!(refused.contains("already exists"), "{refused}");
    }
    assert_eq!(engine.statuses().len(), 20, "one task per sink, none orphaned");
    engine.shutdown().await;
}
