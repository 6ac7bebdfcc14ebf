//! Helpers shared by the integration modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use quiver_engine::{Engine, EngineOptions, PipelineStatus};
use tokio::sync::watch;

/// The `quiver` binary under test.
pub(crate) fn quiver() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quiver-under-test"));
    c.env("QUIVER_LOG", "warn");
    c
}

pub(crate) fn run_cli(args: &[&str]) -> Output {
    quiver().args(args).output().expect("the quiver binary runs")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `dir` (recursively) whose name ends with `ext`, sorted.
pub(crate) fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads every Parquet file under `dir`: (path relative to dir, batches).
pub(crate) fn read_parquet(dir: &Path) -> Vec<(String, Vec<RecordBatch>)> {
    files_with(dir, ".parquet")
        .into_iter()
        .map(|p| {
            let f = std::fs::File::open(&p).expect("open parquet");
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .expect("parquet footer")
                .build()
                .expect("parquet reader");
            let batches = reader.collect::<Result<Vec<_>, _>>().expect("parquet rows");
            (
                p.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned(),
                batches,
            )
        })
        .collect()
}

/// Reads every JSON-lines file under `dir` into JSON objects.
pub(crate) fn read_jsonl(dir: &Path, ext: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in files_with(dir, ext) {
        let content = std::fs::read_to_string(&p).expect("read jsonl");
        for (i, line) in content.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line}", p.display(), i + 1));
            out.push(v);
        }
    }
    out
}

/// Runs a script in-process until every pipeline ends (sources bounded).
pub(crate) async fn run_bounded(state: &Path, sql: &str) -> Vec<PipelineStatus> {
    let engine = Arc::new(
        Engine::open(
            state,
            EngineOptions {
                bounded: true,
                persist_definitions: false,
            },
        )
        .expect("engine opens"),
    );
    let (stmts, errors) = quiver_sql::parse(sql);
    assert!(errors.is_empty(), "parse errors: {errors:?}");
    for s in &stmts {
        engine
            .execute(s)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {}", s.text));
    }
    let (_tx, rx) = watch::channel(false);
    engine.wait_all(rx).await
}

/// Groups JSON objects by a key column.
pub(crate) fn count_by_id(rows: &[serde_json::Value], key: &str) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        let id = r[key]
            .as_i64()
            .unwrap_or_else(|| panic!("row without integer '{key}': {r}"));
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

/// Asserts every id in `0..total` arrived at least once (at-least-once delivery)
/// and returns how many rows were duplicates.
pub(crate) fn assert_every_id(rows: &[serde_json::Value], total: i64) -> usize {
    let counts = count_by_id(rows, "id");
    let missing: Vec<i64> = (0..total).filter(|i| !counts.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} ids lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(counts.len(), total as usize, "ids outside 0..{total} arrived");
    counts.values().map(|c| c - 1).sum()
}
