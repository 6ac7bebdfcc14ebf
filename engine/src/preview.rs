//! Console previews: rows read live from a source through a transform, nothing committed.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use quiver_connectors::api::{BatchPolicy, SourceContext};
use quiver_sql::Preview;
use quiver_sql::transform::error_text;

use crate::error::Result;

/// Rows shown when a preview has no LIMIT.
pub const DEFAULT_PREVIEW_ROWS: u64 = 20;

/// A preview's rows as they arrive, for a caller that shows them live (the
/// console, `POST /sql` streamed): first the columns, then each batch.
#[derive(Debug)]
pub enum Live {
    Columns(SchemaRef),
    Rows(RecordBatch),
}

/// Where [`run`] sends [`Live`] rows; a preview holds at most its LIMIT.
pub type LiveRows = tokio::sync::mpsc::UnboundedSender<Live>;

/// Runs a preview until it has `limit` rows, the source ends, or `timeout` passes.
/// With `live`, rows go there as they arrive instead of into the returned batches.
pub async fn run(p: &Preview, timeout: Duration, live: Option<&LiveRows>) -> Result<(Vec<RecordBatch>, Vec<String>)> {
    let mut notes = Vec::new();
    if let Some(live) = live {
        let _ = live.send(Live::Columns(Arc::clone(p.transform.output_schema())));
    }
    let Some(source) = &p.source else {
        // SELECT without FROM: one row of nothing.
        let empty = RecordBatch::try_new_with_options(
            Arc::clone(p.transform.input_schema()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(|e| quiver_connectors::api::ConnectorError::arrow("preview", e))?;
        let out = p
            .transform
            .evaluate(&empty)
            .map_err(|e| quiver_sql::SqlError::invalid(error_text(&e), None))?;
        return Ok((deliver(out, live).into_iter().collect(), notes));
    };
    let limit = p.limit.unwrap_or(DEFAULT_PREVIEW_ROWS);
    let ctx = SourceContext {
        name: source.name.clone(),
        pipeline: format!("preview-{}", source.name),
        schema: Arc::clone(&source.schema),
        start: None,
        bounded: false,
        batch: BatchPolicy {
            max_rows: (limit as usize).clamp(1, source.batch.max_rows),
            ..source.batch
        },
        used: p.transform.used_columns(),
        keep_raw: false,
        filter: p.transform.row_filter().cloned(),
        task: Default::default(),
    };
    let mut src = source.connector.build_source(&source.config, ctx).await?;
    let mut batches = Vec::new();
    let mut rows = 0u64;
    let mut failed = 0usize;
    let deadline = tokio::time::Instant::now() + timeout;
    while rows < limit {
        let next = match tokio::time::timeout_at(deadline, src.next_batch()).await {
            Ok(n) => n?,
            Err(_) => {
                notes.push(format!("stopped after {}s waiting for more rows", timeout.as_secs()));
                break;
            }
        };
        let Some(b) = next else { break };
        for r in &b.rejected {
            notes.push(format!(
                "{} position {}: could not decode: {}",
                r.partition, r.position, r.error
            ));
        }
        let out = p.transform.apply_with(&b.batch, b.filtered.is_some());
        for (row, e) in &out.failed {
            failed += 1;
            if let Some((part, pos)) = b.origins.get(*row) {
                notes.push(format!("{part} position {pos}: {e}"));
            }
        }
        let take = (limit - rows).min(out.batch.num_rows() as u64) as usize;
        if take > 0 {
            batches.extend(deliver(out.batch.slice(0, take), live));
            rows += take as u64;
        }
    }
    if failed > 0 {
        notes.push(format!("{failed} row(s) failed in the transform and are not shown"));
    }
    Ok((batches, notes))
}

/// Sends rows to a live caller, or hands them back to be collected.
fn deliver(batch: RecordBatch, live: Option<&LiveRows>) -> Option<RecordBatch> {
    match live {
        Some(live) => {
            let _ = live.send(Live::Rows(batch));
            None
        }
        None => Some(batch),
    }
}
