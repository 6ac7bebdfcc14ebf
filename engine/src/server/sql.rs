//! `POST /sql`: statements as `text/plain`, answered with the console's results
//! as JSON, one entry per statement: `{"statement", "message"}` for CREATE and
//! DROP, `{"statement", "columns", "rows"}` for SHOW, DESCRIBE and EXPLAIN, and
//! `{"statement", "columns", "rows", "notes"}` with rows as objects for a
//! `SELECT … LIMIT n` preview (nothing is committed).
//!
//! Statements run in order through the same engine as the console; the first that
//! fails stops the request with 400 naming its line, and those before it stay done.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, AppState, read_body};
use crate::worker::Output;

pub(crate) async fn run(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let bytes = read_body(&headers, body, "text/plain")?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::bad_request(format!("the SQL is not UTF-8: {e}")))?;
    let (statements, errors) = quiver_sql::parse(text);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| e.render("line")).collect();
        return Err(ApiError::bad_request(lines.join("\n")));
    }
    if statements.is_empty() {
        return Err(ApiError::bad_request("no statements in the body"));
    }
    let mut results = Vec::new();
    for s in &statements {
        let out = app
            .engine
            .execute(s)
            .await
            .map_err(|e| ApiError::bad_request(format!("line {}: {e}", s.location.line)))?;
        let mut entry = output_json(&out);
        entry["statement"] = json!(s.text.trim());
        results.push(entry);
    }
    Ok(Json(json!(results)))
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
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(Vec::new());
            let mut ok = true;
            for b in batches {
                ok &= w.write(b).is_ok();
            }
            ok &= w.finish().is_ok();
            let rows: Value = if ok {
                serde_json::from_slice(&w.into_inner()).unwrap_or(json!([]))
            } else {
                json!([])
            };
            json!({"columns": columns, "rows": if rows.is_null() { json!([]) } else { rows }, "notes": notes})
        }
    }
}
