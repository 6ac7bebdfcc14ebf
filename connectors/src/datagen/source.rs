//! The datagen source: batches of generated rows, resumable at any row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, StructArray,
    UInt32Array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{ColumnGen, ColumnSpec, DatagenConfig};
use crate::api::{ConnectorError, Offsets, Progress, Result, RowOrigins, Source, SourceBatch, SourceContext};

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(crate) struct DatagenSource {
    config: DatagenConfig,
    schema: SchemaRef,
    next_row: u64,
    end_row: Option<u64>,
    batch_rows: usize,
    started: Instant,
    /// Rows this task generated since it started (paces `rows.per.second`).
    emitted: u64,
    partition: Arc<str>,
    /// This task's index and the pipeline's task count: the task generates the
    /// stripes `index, index + count, …` of [`STRIPE`] rows.
    index: u64,
    count: u64,
}

/// Rows per stripe when a generator is split over tasks.
pub(crate) const STRIPE: u64 = 4096;

impl DatagenSource {
    pub(crate) fn new(config: DatagenConfig, ctx: SourceContext) -> Result<Self> {
        let end_row = config.end_row();
        if ctx.bounded && end_row.is_none() {
            return Err(ConnectorError::Config(format!(
                "datagen source '{}' has no end: set rows.total (or a sequence with an end) to run it until caught up",
                ctx.name
            )));
        }
        let (index, count) = (u64::from(ctx.task.index), u64::from(ctx.task.count.max(1)));
        // One task keeps the partition name of a generator that was never split.
        let partition: Arc<str> = if count == 1 {
            Arc::from("rows")
        } else {
            Arc::from(format!("rows-{index}-of-{count}"))
        };
        let next_row = ctx
            .start
            .as_ref()
            .and_then(|o| o.get(&partition))
            .and_then(|v| v.as_u64())
            .unwrap_or(index * STRIPE)
            .max(index * STRIPE);
        let mut batch_rows = ctx.batch.max_rows.max(1);
        let mut config = config;
        if let Some(rate) = config.rows_per_second.as_mut() {
            // The rate is the generator's: each task makes its share.
            *rate /= count as f64;
            let rate = *rate;
            // A rate-limited source sends what accumulates during `batch.linger`.
            batch_rows = batch_rows.min(((rate * ctx.batch.linger.as_secs_f64()).ceil() as usize).max(1));
        }
        Ok(Self {
            config,
            schema: ctx.schema,
            next_row,
            end_row,
            batch_rows,
            started: Instant::now(),
            emitted: 0,
            partition,
            index,
            count,
        })
    }

    /// Rows of the first `end` that belong to this task.
    fn share(&self, end: u64) -> u64 {
        let (full, rest) = (end / STRIPE, end % STRIPE);
        let stripes = (full + self.count - 1 - self.index) / self.count;
        stripes * STRIPE + if full % self.count == self.index { rest } else { 0 }
    }
}

/// A u64 in `[0, 1)` as f64.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Words of the column's stream one row uses; fixed so rows can be sought.
fn words_per_row(spec: &ColumnSpec) -> u128 {
    let value = match &spec.generator {
        ColumnGen::RandomText { length } => *length as u128,
        ColumnGen::Struct(_) | ColumnGen::Sequence { .. } => 0,
        _ => 2,
    };
    2 + value
}

fn generate(spec: &ColumnSpec, rng: &mut ChaCha8Rng, first_row: u64, rows: usize) -> Result<ArrayRef> {
    let dt = spec.field.data_type();
    let mut nulls: Vec<bool> = Vec::with_capacity(rows);
    let fail = |e: arrow::error::ArrowError| ConnectorError::arrow(format!("generating column '{}'", spec.path), e);
    // Draw every row's words in a fixed order: null decision, then the value.
    let values: ArrayRef = match &spec.generator {
        ColumnGen::Struct(children) => {
            for _ in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
            }
            let DataType::Struct(fields) = dt else {
                return Err(ConnectorError::Internal(
                    "struct generator on a non-struct column".into(),
                ));
            };
            let mut arrays = Vec::with_capacity(children.len());
            for (i, child) in children.iter().enumerate() {
                let mut crng = child_rng(rng, i);
                crng.set_word_pos(first_row as u128 * words_per_row(child));
                arrays.push(generate(child, &mut crng, first_row, rows)?);
            }
            let validity = if spec.null_rate > 0.0 {
                Some(NullBuffer::from(nulls.clone()))
            } else {
                None
            };
            return Ok(Arc::new(
                StructArray::try_new(fields.clone(), arrays, validity).map_err(fail)?,
            ));
        }
        ColumnGen::Sequence { start, .. } => {
            let mut b = Int64Builder::with_capacity(rows);
            let mut f = Float64Builder::with_capacity(rows);
            for i in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
                let row = (first_row + i as u64) as f64;
                match dt {
                    // One second per row for timestamps, one day per row for dates.
                    DataType::Timestamp(_, _) => b.append_value((start + row * 1_000_000.0) as i64),
                    DataType::Float16
                    | DataType::Float32
                    | DataType::Float64
                    | DataType::Decimal128(_, _)
                    | DataType::Decimal256(_, _) => f.append_value(start + row),
                    _ => b.append_value((start + row) as i64),
                }
            }
            match dt {
                DataType::Float16
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _) => Arc::new(f.finish()),
                DataType::Timestamp(_, _) => {
                    let micros: ArrayRef = Arc::new(b.finish());
                    cast(&micros, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(fail)?
                }
                DataType::Date32 | DataType::Date64 => {
                    let days: ArrayRef = Arc::new(b.finish());
                    cast(&cast(&days, &DataType::Int32).map_err(fail)?, &DataType::Date32).map_err(fail)?
                }
                _ => Arc::new(b.finish()),
            }
        }
        ColumnGen::Random { min, max } => {
            let integral = !matches!(
                dt,
                DataType::Float16
                    | DataType::Float32
                    | DataType::Float64
                    | DataType::Decimal128(_, _)
                    | DataType::Decimal256(_, _)
            );
            let mut b = Int64Builder::with_capacity(rows);
            let mut f = Float64Builder::with_capacity(rows);
            for _ in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
                let x = rng.next_u64();
                if integral {
                    let span = (max - min) as u128 + 1;
                    b.append_value(*min as i64 + ((x as u128 * span) >> 64) as i64);
                } else {
                    f.append_value(min + unit(x) * (max - min));
                }
            }
            if integral {
                let ints: ArrayRef = Arc::new(b.finish());
                match dt {
                    DataType::Timestamp(_, _) => {
                        cast(&ints, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(fail)?
                    }
                    DataType::Date32 | DataType::Date64 => {
                        cast(&cast(&ints, &DataType::Int32).map_err(fail)?, &DataType::Date32).map_err(fail)?
                    }
                    _ => ints,
                }
            } else {
                Arc::new(f.finish())
            }
        }
        ColumnGen::RandomText { length } => {
            let binary = matches!(dt, DataType::Binary | DataType::LargeBinary | DataType::BinaryView);
            let mut s = StringBuilder::with_capacity(rows, rows * length);
            let mut bin = BinaryBuilder::with_capacity(rows, rows * length);
            let mut buf = Vec::with_capacity(*length);
            for _ in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
                buf.clear();
                for _ in 0..*length {
                    let w = rng.next_u32();
                    buf.push(if binary {
                        w as u8
                    } else {
                        ALPHANUMERIC[(w as usize) % ALPHANUMERIC.len()]
                    });
                }
                if binary {
                    bin.append_value(&buf);
                } else {
                    s.append_value(std::str::from_utf8(&buf).map_err(|e| ConnectorError::Internal(e.to_string()))?);
                }
            }
            if binary {
                Arc::new(bin.finish())
            } else {
                Arc::new(s.finish())
            }
        }
        ColumnGen::RandomBool => {
            let mut b = BooleanBuilder::with_capacity(rows);
            for _ in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
                b.append_value(rng.next_u64() & 1 == 1);
            }
            Arc::new(b.finish())
        }
        ColumnGen::Values(choices) => {
            let n = choices.len() as u128;
            let mut idx = Vec::with_capacity(rows);
            for _ in 0..rows {
                nulls.push(unit(rng.next_u64()) >= spec.null_rate);
                idx.push(((rng.next_u64() as u128 * n) >> 64) as u32);
            }
            take(choices.as_ref(), &UInt32Array::from(idx), None).map_err(fail)?
        }
    };
    let values = if values.data_type() != dt {
        cast(&values, dt).map_err(fail)?
    } else {
        values
    };
    if spec.null_rate > 0.0 {
        let data = values
            .to_data()
            .into_builder()
            .nulls(Some(NullBuffer::from(nulls)))
            .build()
            .map_err(fail)?;
        return Ok(arrow::array::make_array(data));
    }
    Ok(values)
}

/// A struct child's stream: derived from the parent's key so it is independent of batching.
fn child_rng(parent: &ChaCha8Rng, index: usize) -> ChaCha8Rng {
    let mut seed = parent.get_seed();
    seed[31] ^= 0x5a;
    let mut r = ChaCha8Rng::from_seed(seed);
    r.set_stream(parent.get_stream() ^ ((index as u64 + 1) << 32));
    r
}

#[async_trait]
impl Source for DatagenSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        // A batch stays within one of this task's stripes.
        let mut rows = self.batch_rows as u64;
        if self.count > 1 {
            rows = rows.min(STRIPE - self.next_row % STRIPE);
        }
        if let Some(end) = self.end_row {
            if self.next_row >= end {
                return Ok(None);
            }
            rows = rows.min(end - self.next_row);
        }
        if let Some(rate) = self.config.rows_per_second {
            let due = self.started + Duration::from_secs_f64(self.emitted as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let first = self.next_row;
        let mut columns = Vec::with_capacity(self.config.columns.len());
        for (i, spec) in self.config.columns.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
            rng.set_stream(i as u64);
            rng.set_word_pos(first as u128 * words_per_row(spec));
            columns.push(generate(spec, &mut rng, first, rows as usize)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| ConnectorError::arrow("assembling generated batch", e))?;
        self.next_row += rows;
        self.emitted += rows;
        if self.count > 1 && self.next_row.is_multiple_of(STRIPE) {
            // Skip the stripes of the other tasks.
            self.next_row += (self.count - 1) * STRIPE;
        }
        let mut origins = RowOrigins::with_capacity(rows as usize);
        origins.push_range(&self.partition, first as i64, rows as usize);
        let mut offsets = Offsets::default();
        offsets.0.insert(self.partition.to_string(), self.next_row.into());
        Ok(Some(SourceBatch {
            batch,
            origins,
            offsets,
            rejected: Vec::new(),
            raw: Vec::new(),
            filtered: None,
        }))
    }

    fn progress(&self) -> Progress {
        let done = self.share(self.next_row);
        Progress {
            done: self.end_row.map_or(done, |end| done.min(self.share(end))),
            total: self.end_row.map(|end| self.share(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::api::{BatchPolicy, TaskSlot};

    fn task(index: u32, count: u32, total: u64, start: Option<Offsets>) -> DatagenSource {
        let field = Arc::new(Field::new("id", DataType::Int64, false));
        let config = DatagenConfig {
            rows_total: Some(total),
            rows_per_second: None,
            seed: 0,
            columns: vec![ColumnSpec {
                path: "id".into(),
                field: Arc::clone(&field),
                generator: ColumnGen::Sequence { start: 0.0, end: None },
                null_rate: 0.0,
            }],
        };
        let ctx = SourceContext {
            name: "gen".into(),
            pipeline: "p".into(),
            schema: Arc::new(Schema::new(vec![field])),
            start,
            bounded: false,
            batch: BatchPolicy {
                max_rows: 1000,
                ..Default::default()
            },
            used: Vec::new(),
            keep_raw: false,
            filter: None,
            task: TaskSlot {
                index,
                count,
                ..Default::default()
            },
        };
        DatagenSource::new(config, ctx).unwrap()
    }

    async fn drain(s: &mut DatagenSource, limit: usize) -> (Vec<i64>, Offsets) {
        let (mut ids, mut last) = (Vec::new(), Offsets::default());
        while ids.len() < limit {
            let Some(b) = s.next_batch().await.unwrap() else { break };
            let col = b.batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            ids.extend(col.values().iter().copied());
            last = b.offsets;
        }
        (ids, last)
    }

    #[tokio::test]
    async fn tasks_split_the_rows_in_stripes_each_row_once_and_resume_in_their_own_partition() {
        let total = 3 * STRIPE * 2 + 1234;
        let mut all = Vec::new();
        for index in 0..3 {
            let mut s = task(index, 3, total, None);
            // Stop part-way, then resume from the offsets the task reported.
            let (first, offsets) = drain(&mut s, 5000).await;
            assert!(offsets.get(&format!("rows-{index}-of-3")).is_some(), "{offsets:?}");
            let mut rest = task(index, 3, total, Some(offsets));
            let (second, _) = drain(&mut rest, usize::MAX).await;
            assert_eq!(rest.progress().done, rest.progress().total.unwrap());
            all.extend(first);
            all.extend(second);
        }
        all.sort_unstable();
        assert_eq!(all, (0..total as i64).collect::<Vec<_>>());
    }
}
