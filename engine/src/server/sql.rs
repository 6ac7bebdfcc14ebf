//! `POST /sql`: statements as `text/plain`, answered with the console's results
//! as JSON, one entry per statement: `{"statement", "message"}` for CREATE and
//! DROP, `{"statement", "columns", "rows"}` for SHOW, DESCRIBE and EXPLAIN, and
//! `{"statement", "columns", "rows", "notes"}` with rows as objects for a
//! `SELECT … LIMIT n` preview (nothing is committed).
//!
//! Statements run in order through the same engine as the console; the first that
//! fails stops the request with 400 naming its line, and those before it stay done.
//!
//! With `Accept: application/x-ndjson` the answer is streamed instead, one JSON
//! object per line as it is ready, so a preview's rows show while it still waits
//! for more (`quiver sql --server` asks for this):
//! `{"statement", "message"}`, `{"statement", "columns", "rows"}` (SHOW …),
//! `{"statement", "preview": {"columns"}}` then `{"rows": [{…}]}` per batch and
//! `{"end": {"rows", "notes"}}`, and `{"statement", "error"}` which ends the
//! stream (the status is already 200 by then).
//!
//! Statements run on the engine's runtime, not the API's: a preview evaluates
//! rows, and status requests must not wait behind it.

use std::convert::Infallible;
use std::sync::Arc;

use arrow::array::RecordBatch;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use quiver_sql::ParsedStatement;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ApiError, ApiResult, AppState, read_body};
use crate::preview::Live;
use crate::worker::{Engine, Output};

/// The media type of a streamed answer.
const NDJSON: &str = "application/x-ndjson";

pub(crate) async fn run(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let statements = statements(&headers, body)?;
    let streamed = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(NDJSON));
    if streamed {
        return Ok(stream(&app.engine, statements));
    }
    let results = app
        .engine
        .on_engine_runtime(move |engine| async move {
            let mut results = Vec::new();
            for s in &statements {
                let out = match engine.execute(s).await {
                    Ok(out) => out,
                    Err(e) => return Ok(Err(format!("line {}: {e}", s.location.line))),
                };
                let mut entry = output_json(&out);
                entry["statement"] = json!(s.text.trim());
                results.push(entry);
            }
            Ok(Ok(results))
        })
        .await?
        .map_err(ApiError::bad_request)?;
    Ok(Json(json!(results)).into_response())
}

/// The request's statements, or 400 naming what is wrong with them.
fn statements(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Vec<ParsedStatement>> {
    let bytes = read_body(headers, body, "text/plain")?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::bad_request(format!("the SQL is not UTF-8: {e}")))?;
    let (statements, errors) = quiver_sql::parse(text);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| e.render("line")).collect();
        return Err(ApiError::bad_request(lines.join("\n")));
    }
    if statements.is_empty() {
        return Err(ApiError::bad_request("no statements in the body"));
    }
    Ok(statements)
}

/// Runs the statements on the engine's runtime and streams their results as
/// lines; a client that goes away stops the run at its next line.
fn stream(engine: &Arc<Engine>, statements: Vec<ParsedStatement>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let send = move |v: Value| {
        let tx = tx.clone();
        async move {
            let mut line = v.to_string();
            line.push('\n');
            tx.send(Bytes::from(line)).await.is_ok()
        }
    };
    let worker = Arc::clone(engine);
    engine.spawn(async move {
        for s in &statements {
            let statement = s.text.trim();
            let (live, mut arriving) = mpsc::unbounded_channel();
            let run = async {
                let result = worker.execute_live(s, Some(&live)).await;
                drop(live);
                result
            };
            let forward = async {
                let (mut rows, mut open) = (0usize, true);
                while let Some(next) = arriving.recv().await {
                    let line = match next {
                        Live::Columns(schema) => {
                            let columns: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
                            json!({"statement": statement, "preview": {"columns": columns}})
                        }
                        Live::Rows(batch) => {
                            rows += batch.num_rows();
                            json!({"rows": rows_json(&[batch])})
                        }
                    };
                    open = open && send(line).await;
                }
                (rows, open)
            };
            let (result, (rows, open)) = tokio::join!(run, forward);
            let last = match result {
                Ok(Output::Rows { notes, .. }) => json!({"end": {"rows": rows, "notes": notes}}),
                Ok(out) => {
                    let mut entry = output_json(&out);
                    entry["statement"] = json!(statement);
                    entry
                }
                Err(e) => {
                    let line = json!({"statement": statement, "error": format!("line {}: {e}", s.location.line)});
                    send(line).await;
                    return;
                }
            };
            if !(open && send(last).await) {
                return;
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    ([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(body)).into_response()
}

fn output_json(out: &Output) -> Value {
    match out {
        Output::Message(m) => json!({"message": m}),
        Output::Table(t) => json!({"columns": t.columns, "rows": t.rows}),
        Output::Rows { batches, notes } => {
            let columns: Vec<String> = batches
                .first()
                .map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
                .unwrap_or_default();
            json!({"columns": columns, "rows": rows_json(batches), "notes": notes})
        }
    }
}

/// Rows as JSON objects, NULLs written out.
fn rows_json(batches: &[RecordBatch]) -> Value {
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    let mut ok = true;
    for b in batches {
        ok &= w.write(b).is_ok();
    }
    ok &= w.finish().is_ok();
    match ok.then(|| serde_json::from_slice::<Value>(&w.into_inner())) {
        Some(Ok(rows @ Value::Array(_))) => rows,
        _ => json!([]),
    }
}
