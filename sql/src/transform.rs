//! A compiled SELECT: a filter and one expression per output column, evaluated on
//! whole Arrow batches, with failing rows isolated instead of failing the batch.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::{FilterBuilder, concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion_common::{DataFusionError, ScalarValue};
use datafusion_expr::Operator;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion_physical_expr::utils::split_conjunction;
use quiver_connectors::api::{Comparison, Constant, RowFilter, Term};

/// The filter and projections of one sink, planned and compiled once.
#[derive(Clone)]
pub struct CompiledTransform {
    pub(crate) input: SchemaRef,
    pub(crate) output: SchemaRef,
    pub(crate) filter: Option<Arc<dyn PhysicalExpr>>,
    pub(crate) projections: Vec<Arc<dyn PhysicalExpr>>,
    /// `CREATE SINK … FROM source`: batches pass through untouched.
    pub(crate) identity: bool,
    /// The input columns the projections read; the filter copies only these
    /// (a wide source projected to a few columns copies a few).
    pub(crate) projected: Vec<bool>,
    /// `input` with every column nullable: the schema of a filtered batch, whose
    /// unread columns are NULL placeholders.
    pub(crate) filtered: SchemaRef,
    /// The comparisons of the filter a source may apply while decoding.
    pub(crate) pushdown: Option<RowFilter>,
}

impl fmt::Debug for CompiledTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledTransform")
            .field("filter", &self.filter.as_ref().map(|e| e.to_string()))
            .field(
                "projections",
                &self.projections.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The conjuncts of `filter` of the form `column <op> constant`, the constant of the
/// column's own type, as a [`RowFilter`] a source can evaluate on records it has not
/// built (see `quiver_connectors::api::filter`). `complete` when those are all of it.
/// `None` when no conjunct has that form.
fn pushdown(filter: &Arc<dyn PhysicalExpr>, input: &SchemaRef, projected: &[bool]) -> Option<RowFilter> {
    let conjuncts = split_conjunction(filter);
    let terms: Vec<Term> = conjuncts.iter().filter_map(|e| term(e.as_ref(), input)).collect();
    if terms.is_empty() {
        return None;
    }
    Some(RowFilter {
        complete: terms.len() == conjuncts.len(),
        terms,
        read_after: projected.to_vec(),
    })
}

/// One conjunct as a [`Term`], if it is a comparison of a column with a constant.
fn term(expr: &dyn PhysicalExpr, input: &SchemaRef) -> Option<Term> {
    let binary = expr.downcast_ref::<BinaryExpr>()?;
    let op = match binary.op() {
        Operator::Eq => Comparison::Eq,
        Operator::NotEq => Comparison::NotEq,
        Operator::Lt => Comparison::Lt,
        Operator::LtEq => Comparison::LtEq,
        Operator::Gt => Comparison::Gt,
        Operator::GtEq => Comparison::GtEq,
        _ => return None,
    };
    fn as_column(e: &Arc<dyn PhysicalExpr>) -> Option<usize> {
        e.downcast_ref::<Column>().map(Column::index)
    }
    fn as_literal(e: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
        e.downcast_ref::<Literal>().map(Literal::value)
    }
    let (column, op, value) = match (as_column(binary.left()), as_literal(binary.right())) {
        (Some(c), Some(v)) => (c, op, v),
        _ => (as_column(binary.right())?, op.flipped(), as_literal(binary.left())?),
    };
    let field = input.fields().get(column)?;
    if &value.data_type() != field.data_type() {
        return None;
    }
    let value = match value.clone() {
        ScalarValue::Int8(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::Int16(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::Int32(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::Int64(Some(v)) => Constant::Int(v),
        ScalarValue::UInt8(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::UInt16(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::UInt32(Some(v)) => Constant::Int(i64::from(v)),
        ScalarValue::UInt64(Some(v)) => Constant::UInt(v),
        ScalarValue::Float64(Some(v)) => Constant::Float(v),
        ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) => Constant::Text(v.into()),
        ScalarValue::Boolean(Some(v)) => Constant::Bool(v),
        _ => return None,
    };
    Some(Term { column, op, value })
}

/// Marks in `used` every input column the expressions read.
fn mark_columns<'a>(exprs: impl IntoIterator<Item = &'a Arc<dyn PhysicalExpr>>, used: &mut [bool]) {
    for e in exprs {
        for c in datafusion_physical_expr::utils::collect_columns(e) {
            if let Some(u) = used.get_mut(c.index()) {
                *u = true;
            }
        }
    }
}

/// The rows of `batch` that `mask` keeps, for the columns in `projected`; every
/// other column becomes an all-NULL placeholder of its type, which nothing reads.
/// `filtered` is the batch's schema with every column nullable, to allow that.
fn filter_projected(
    batch: &RecordBatch,
    mask: &BooleanArray,
    projected: &[bool],
    filtered: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if projected.iter().all(|p| *p) || projected.len() != batch.num_columns() {
        return filter_record_batch(batch, mask);
    }
    let predicate = FilterBuilder::new(mask).optimize().build();
    let rows = predicate.count();
    let columns = batch
        .columns()
        .iter()
        .zip(projected)
        .map(|(c, keep)| {
            if *keep {
                predicate.filter(c)
            } else {
                Ok(new_null_array(c.data_type(), rows))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(filtered),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

/// The result of applying a transform to a batch.
#[derive(Debug)]
pub struct TransformOutput {
    /// Rows that passed the filter and evaluated, in input order.
    pub batch: RecordBatch,
    /// (input row, error) for each row that failed to evaluate.
    pub failed: Vec<(usize, String)>,
}

impl CompiledTransform {
    /// A pass-through transform for `CREATE SINK … FROM source`: the first
    /// `visible` columns (the declared ones; connector metadata is left out).
    pub fn identity(schema: SchemaRef, visible: usize) -> Self {
        let visible = visible.min(schema.fields().len());
        let output = Arc::new(arrow::datatypes::Schema::new(schema.fields()[..visible].to_vec()));
        Self {
            filtered: Arc::clone(&schema),
            input: schema,
            output,
            filter: None,
            projections: Vec::new(),
            identity: true,
            projected: Vec::new(),
            pushdown: None,
        }
    }

    /// A compiled SELECT: `filter` over `input`, then one expression per `output` column.
    pub(crate) fn new(
        input: SchemaRef,
        output: SchemaRef,
        filter: Option<Arc<dyn PhysicalExpr>>,
        projections: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Self {
        let mut projected = vec![false; input.fields().len()];
        mark_columns(&projections, &mut projected);
        let filtered = Arc::new(arrow::datatypes::Schema::new(
            input
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let pushdown = filter.as_ref().and_then(|f| pushdown(f, &input, &projected));
        Self {
            input,
            output,
            filter,
            projections,
            identity: false,
            projected,
            filtered,
            pushdown,
        }
    }

    /// The part of the `WHERE` clause a source may apply while decoding (see
    /// `SourceContext::filter`); `None` when no part of it is a plain comparison of
    /// a column with a constant.
    pub fn row_filter(&self) -> Option<&RowFilter> {
        self.pushdown.as_ref()
    }

    /// [`Self::row_filter`] as text (for EXPLAIN), saying whether it is the whole filter.
    pub fn row_filter_text(&self) -> Option<String> {
        let p = self.pushdown.as_ref()?;
        let terms: Vec<String> = p
            .terms
            .iter()
            .map(|t| {
                format!(
                    "{} {} {}",
                    self.input.fields().get(t.column).map_or("?", |f| f.name().as_str()),
                    t.op,
                    t.value
                )
            })
            .collect();
        Some(format!(
            "{} ({} of the filter)",
            terms.join(" AND "),
            if p.complete { "all" } else { "part" }
        ))
    }

    /// Whether a batch the source has already filtered with [`Self::row_filter`]
    /// needs no filtering here.
    pub fn filtered_by_source(&self) -> bool {
        self.pushdown.as_ref().is_some_and(|p| p.complete)
    }

    /// Which input columns the filter and projections read (all of them for a
    /// pass-through), so sources can skip building the others.
    pub fn used_columns(&self) -> Vec<bool> {
        let n = self.input.fields().len();
        if self.identity {
            return (0..n).map(|i| i < self.output.fields().len()).collect();
        }
        let mut used = vec![false; n];
        mark_columns(self.filter.iter().chain(&self.projections), &mut used);
        used
    }

    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The compiled filter, as text (for EXPLAIN).
    pub fn filter_text(&self) -> Option<String> {
        self.filter.as_ref().map(|e| e.to_string())
    }

    /// Output column name and compiled expression text (for EXPLAIN).
    pub fn projection_texts(&self) -> Vec<(String, String)> {
        if self.identity {
            return self
                .output
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().clone(), format!("{}@{i}", f.name())))
                .collect();
        }
        self.output
            .fields()
            .iter()
            .zip(&self.projections)
            .map(|(f, e)| (f.name().clone(), e.to_string()))
            .collect()
    }

    /// Evaluates the whole batch; any row error fails it.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
        self.evaluate_with(batch, false)
    }

    /// [`Self::evaluate`], without the filter when `prefiltered` (every row of the
    /// batch already passed it: see [`Self::filtered_by_source`]).
    fn evaluate_with(&self, batch: &RecordBatch, prefiltered: bool) -> Result<RecordBatch, DataFusionError> {
        if self.identity {
            let n = self.output.fields().len();
            if n == batch.num_columns() {
                return Ok(batch.clone());
            }
            return Ok(RecordBatch::try_new_with_options(
                Arc::clone(&self.output),
                batch.columns()[..n].to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )?);
        }
        let filtered;
        let input = match self.filter.as_ref().filter(|_| !prefiltered) {
            None => batch,
            Some(f) => {
                let mask = f.evaluate(batch)?.into_array(batch.num_rows())?;
                let mask = mask
                    .as_boolean_opt()
                    .ok_or_else(|| DataFusionError::Internal("filter did not produce booleans".into()))?;
                filtered = filter_projected(batch, mask, &self.projected, &self.filtered)?;
                &filtered
            }
        };
        let rows = input.num_rows();
        let columns = self
            .projections
            .iter()
            .map(|p| p.evaluate(input).and_then(|v| v.into_array(rows)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.output),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }

    /// Evaluates the batch; if it fails, narrows the failure down to single rows
    /// by halving, so every good row still comes out, in order.
    pub fn apply(&self, batch: &RecordBatch) -> TransformOutput {
        self.apply_with(batch, false)
    }

    /// [`Self::apply`] on a batch whose source applied [`Self::row_filter`]:
    /// `prefiltered` skips the filter when that was all of it.
    pub fn apply_with(&self, batch: &RecordBatch, prefiltered: bool) -> TransformOutput {
        let prefiltered = prefiltered && self.filtered_by_source();
        match self.evaluate_with(batch, prefiltered) {
            Ok(b) => TransformOutput {
                batch: b,
                failed: Vec::new(),
            },
            Err(e) => {
                let mut good = Vec::new();
                let mut failed = Vec::new();
                self.isolate(batch, 0, e, prefiltered, &mut good, &mut failed);
                let batch = concat_batches(&self.output, &good)
                    .unwrap_or_else(|_| RecordBatch::new_empty(Arc::clone(&self.output)));
                TransformOutput { batch, failed }
            }
        }
    }

    /// For each output row of `apply(batch)`, the input row it came from: the rows
    /// that pass the filter, less the rows that failed. The filter is evaluated once
    /// over the batch; only when that fails (a row error inside the filter) is it
    /// evaluated row by row.
    pub fn input_rows(&self, batch: &RecordBatch, failed: &[(usize, String)]) -> Vec<usize> {
        self.input_rows_with(batch, failed, false)
    }

    /// [`Self::input_rows`] for a batch given to [`Self::apply_with`]: when the
    /// source applied the whole filter, every row passed it (and a column only the
    /// filter reads may not have been built), so it is not evaluated again.
    pub fn input_rows_with(&self, batch: &RecordBatch, failed: &[(usize, String)], prefiltered: bool) -> Vec<usize> {
        let failed: std::collections::HashSet<usize> = failed.iter().map(|f| f.0).collect();
        let filter = self
            .filter
            .as_ref()
            .filter(|_| !(prefiltered && self.filtered_by_source()));
        let Some(f) = filter else {
            return (0..batch.num_rows()).filter(|r| !failed.contains(r)).collect();
        };
        let whole = f.evaluate(batch).and_then(|v| v.into_array(batch.num_rows())).ok();
        if let Some(mask) = whole.as_ref().and_then(|a| a.as_boolean_opt()) {
            return (0..batch.num_rows())
                .filter(|r| !failed.contains(r) && mask.is_valid(*r) && mask.value(*r))
                .collect();
        }
        let passes = |row: usize| -> bool {
            let one = batch.slice(row, 1);
            f.evaluate(&one)
                .and_then(|v| v.into_array(1))
                .ok()
                .and_then(|a| a.as_boolean_opt().map(|b| b.is_valid(0) && b.value(0)))
                .unwrap_or(false)
        };
        (0..batch.num_rows())
            .filter(|r| !failed.contains(r) && passes(*r))
            .collect()
    }

    fn isolate(
        &self,
        batch: &RecordBatch,
        offset: usize,
        err: DataFusionError,
        prefiltered: bool,
        good: &mut Vec<RecordBatch>,
        failed: &mut Vec<(usize, String)>,
    ) {
        let n = batch.num_rows();
        if n <= 1 {
            if n == 1 {
                failed.push((offset, error_text(&err)));
            }
            return;
        }
        let half = n / 2;
        for (start, len) in [(0, half), (half, n - half)] {
            let part = batch.slice(start, len);
            match self.evaluate_with(&part, prefiltered) {
                Ok(b) => good.push(b),
                Err(e) => self.isolate(&part, offset + start, e, prefiltered, good, failed),
            }
        }
    }
}

/// DataFusion's error text without backtraces and doubled prefixes.
pub fn error_text(e: &DataFusionError) -> String {
    let s = e.strip_backtrace();
    s.replace("Arrow error: ", "").replace("Execution error: ", "")
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// `SELECT id FROM s WHERE amount > 0`, compiled by hand.
    fn id_where_amount_positive() -> CompiledTransform {
        let input = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, true),
        ]));
        let output = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let filter: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("amount", 1)),
            Operator::Gt,
            Arc::new(Literal::new(ScalarValue::Float64(Some(0.0)))),
        ));
        CompiledTransform::new(input, output, Some(filter), vec![Arc::new(Column::new("id", 0))])
    }

    /// A batch the source filtered itself, leaving the filter-only `amount` unbuilt
    /// (NULL): every row passed, and provenance must not evaluate the filter again.
    #[test]
    fn a_batch_filtered_at_source_maps_every_row_to_itself() {
        let t = id_where_amount_positive();
        let filter = t.row_filter().expect("pushed down");
        assert!(filter.complete);
        assert_eq!(
            filter.read_after,
            vec![true, false],
            "amount is read only by the filter"
        );
        let batch = RecordBatch::try_new(
            Arc::clone(t.input_schema()),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Float64Array::from(vec![None::<f64>; 3])),
            ],
        )
        .unwrap();
        let out = t.apply_with(&batch, true);
        assert_eq!(
            out.batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec(),
            vec![1, 2, 3]
        );
        assert_eq!(t.input_rows_with(&batch, &[], true), vec![0, 1, 2]);
        assert_eq!(t.input_rows_with(&batch, &[(1, "refused".into())], true), vec![0, 2]);
        // Not filtered at source: the filter decides (NULL amounts fail it).
        assert_eq!(t.input_rows_with(&batch, &[], false), Vec::<usize>::new());
        assert_eq!(t.apply_with(&batch, false).batch.num_rows(), 0);
    }
}
