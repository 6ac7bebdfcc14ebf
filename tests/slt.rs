//! The sqllogictest adapter: statements go to a fresh in-process engine per file.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use quiver_engine::{Engine, EngineOptions, Output};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

#[derive(Debug)]
pub struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SltError {}

pub struct QuiverDb {
    engine: Arc<Engine>,
    _state: tempfile::TempDir,
}

impl QuiverDb {
    pub fn new() -> Result<Self, SltError> {
        let state = tempfile::tempdir().map_err(|e| SltError(e.to_string()))?;
        let engine = Engine::open(state.path(), EngineOptions::default()).map_err(|e| SltError(e.to_string()))?;
        Ok(Self {
            engine: Arc::new(engine),
            _state: state,
        })
    }
}

fn column_type(dt: &DataType) -> DefaultColumnType {
    if dt.is_integer() {
        DefaultColumnType::Integer
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(_, _)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

/// Cells as text: NULL for nulls, (empty) for empty strings, as DataFusion's .slt files do.
fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SltError(e.to_string()))?;
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .zip(b.columns())
                    .map(|(f, c)| {
                        let s = f.value(r).to_string();
                        if s.is_empty() && !c.is_null(r) {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

#[async_trait]
impl AsyncDB for QuiverDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let (stmts, errors) = quiver_sql::parse(sql);
        if let Some(e) = errors.first() {
            return Err(SltError(e.to_string()));
        }
        let mut last = DBOutput::StatementComplete(0);
        for s in stmts {
            let out = self.engine.execute(&s).await.map_err(|e| SltError(e.to_string()))?;
            last = match out {
                Output::Message(_) => DBOutput::StatementComplete(0),
                Output::Table(t) => DBOutput::Rows {
                    types: vec![DefaultColumnType::Text; t.columns.len()],
                    rows: t
                        .rows
                        .into_iter()
                        .map(|r| {
                            r.into_iter()
                                .map(|c| if c.is_empty() { "(empty)".to_string() } else { c })
                                .collect()
                        })
                        .collect(),
                },
                Output::Rows { batches, .. } => {
                    let types = batches
                        .first()
                        .map(|b| b.schema().fields().iter().map(|f| column_type(f.data_type())).collect())
                        .unwrap_or_default();
                    DBOutput::Rows {
                        types,
                        rows: rows(&batches)?,
                    }
                }
            };
        }
        Ok(last)
    }

    async fn shutdown(&mut self) {
        self.engine.shutdown().await;
    }

    fn engine_name(&self) -> &str {
        "quiver"
    }
}
