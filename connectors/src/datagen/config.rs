//! Parsing datagen options into per-column generators.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use arrow::util::display::FormatOptions;

use super::{END, KIND, LENGTH, MAX, MIN, NULL_RATE, ROWS_PER_SECOND, ROWS_TOTAL, SEED, START, VALUES};
use crate::api::{ConnectorError, Options, Result};

/// How one leaf column is generated.
#[derive(Debug, Clone)]
pub enum ColumnGen {
    /// `start + row` (timestamps: one second per row), ending the source after `end`.
    Sequence { start: f64, end: Option<f64> },
    /// Uniform in `[min, max]`.
    Random { min: f64, max: f64 },
    /// Random alphanumeric text or bytes of a fixed length.
    RandomText { length: usize },
    /// One of a list, already cast to the column's type.
    Values(ArrayRef),
    /// Fair coin.
    RandomBool,
    /// Struct: one generator per child.
    Struct(Vec<ColumnSpec>),
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub path: String,
    pub field: Arc<Field>,
    pub generator: ColumnGen,
    pub null_rate: f64,
}

#[derive(Debug, Clone)]
pub struct DatagenConfig {
    pub rows_total: Option<u64>,
    pub rows_per_second: Option<f64>,
    pub seed: u64,
    pub columns: Vec<ColumnSpec>,
}

impl DatagenConfig {
    /// Rows after which the source ends: `rows.total`, or the shortest sequence.
    pub fn end_row(&self) -> Option<u64> {
        fn seq_len(cols: &[ColumnSpec]) -> Option<u64> {
            cols.iter()
                .filter_map(|c| match &c.generator {
                    ColumnGen::Sequence { start, end: Some(end) } => {
                        Some(((end - start).floor().max(-1.0) + 1.0) as u64)
                    }
                    ColumnGen::Struct(children) => seq_len(children),
                    _ => None,
                })
                .min()
        }
        match (self.rows_total, seq_len(&self.columns)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef) -> Result<DatagenConfig> {
    let rows_total = opts.pull_u64(&ROWS_TOTAL)?;
    let rows_per_second = opts.pull_f64(&ROWS_PER_SECOND)?;
    if let Some(r) = rows_per_second
        && r <= 0.0
    {
        return Err(ConnectorError::option(
            ROWS_PER_SECOND.key,
            format!("must be greater than 0 (got {r})"),
        ));
    }
    let seed = opts.pull_u64(&SEED)?.unwrap_or(0);
    let columns = schema
        .fields()
        .iter()
        .map(|f| parse_column(opts, "", f))
        .collect::<Result<Vec<_>>>()?;
    Ok(DatagenConfig {
        rows_total,
        rows_per_second,
        seed,
        columns,
    })
}

/// A value option as a number in the column's generator domain (timestamps in
/// microseconds, dates in days, decimals as their value).
fn numeric_value(key: &str, raw: &str, dt: &DataType) -> Result<f64> {
    let bad = |m: String| ConnectorError::option(key, m);
    match dt {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let target = if matches!(dt, DataType::Timestamp(_, _)) {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            } else {
                DataType::Date32
            };
            let arr: ArrayRef = Arc::new(StringArray::from(vec![raw]));
            let out = cast_with_options(
                &arr,
                &target,
                &CastOptions {
                    safe: false,
                    format_options: FormatOptions::default(),
                },
            )
            .map_err(|_| bad(format!("'{raw}' is not a valid {dt} (use e.g. '2024-01-31 12:00:00')")))?;
            let v = match target {
                DataType::Date32 => out
                    .as_any()
                    .downcast_ref::<arrow::array::Date32Array>()
                    .map(|a| a.value(0) as f64),
                _ => out
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                    .map(|a| a.value(0) as f64),
            };
            v.ok_or_else(|| ConnectorError::Internal("timestamp cast produced another type".into()))
        }
        _ => raw
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(format!("'{raw}' is not a number"))),
    }
}

fn default_range(dt: &DataType) -> (f64, f64) {
    match dt {
        DataType::Int8 => (0.0, i8::MAX as f64),
        DataType::Int16 => (0.0, i16::MAX as f64),
        DataType::UInt8 => (0.0, u8::MAX as f64),
        DataType::UInt16 => (0.0, u16::MAX as f64),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => (0.0, 1000.0),
        // 2024-01-01 .. 2024-12-31
        DataType::Timestamp(_, _) => (1_704_067_200_000_000.0, 1_735_603_200_000_000.0),
        DataType::Date32 | DataType::Date64 => (19_723.0, 20_088.0),
        _ => (0.0, 1_000_000.0),
    }
}

fn parse_column(opts: &mut Options, prefix: &str, field: &Arc<Field>) -> Result<ColumnSpec> {
    let path = if prefix.is_empty() {
        field.name().clone()
    } else {
        format!("{prefix}.{}", field.name())
    };
    let dt = field.data_type();
    let null_rate = opts.pull_f64_col(&NULL_RATE, &path)?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&null_rate) {
        return Err(ConnectorError::option(
            NULL_RATE.key_for(&path),
            format!("must be between 0 and 1 (got {null_rate})"),
        ));
    }
    if null_rate > 0.0 && !field.is_nullable() {
        return Err(ConnectorError::option(
            NULL_RATE.key_for(&path),
            format!("column '{path}' is NOT NULL, so it cannot be NULL"),
        ));
    }
    if let DataType::Struct(children) = dt {
        let children = children
            .iter()
            .map(|c| parse_column(opts, &path, c))
            .collect::<Result<Vec<_>>>()?;
        return Ok(ColumnSpec {
            path,
            field: Arc::clone(field),
            generator: ColumnGen::Struct(children),
            null_rate,
        });
    }
    let kind = opts.pull_enum_col(&KIND, &path)?.unwrap_or("random");
    let values = opts.pull_str_col(&VALUES, &path)?;
    let length = opts.pull_u64_col(&LENGTH, &path)?.unwrap_or(10) as usize;
    let start = opts.pull_str_col(&START, &path)?;
    let end = opts.pull_str_col(&END, &path)?;
    let min = opts.pull_str_col(&MIN, &path)?;
    let max = opts.pull_str_col(&MAX, &path)?;
    let is_text = matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    );
    let supported = is_text
        || dt.is_numeric()
        || matches!(
            dt,
            DataType::Boolean | DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
        );
    if !supported {
        return Err(ConnectorError::Config(format!(
            "datagen cannot generate column '{path}' of type {dt}"
        )));
    }
    // Options that do not apply to the chosen generator are mistakes, not no-ops.
    let random_range = values.is_none() && kind != "sequence" && !is_text && !matches!(dt, DataType::Boolean);
    for (spec, given) in [(&MIN, min.is_some()), (&MAX, max.is_some())] {
        if given && !random_range {
            return Err(ConnectorError::option(
                spec.key_for(&path),
                "applies only to random numbers, timestamps and dates",
            ));
        }
    }
    for (spec, given) in [(&START, start.is_some()), (&END, end.is_some())] {
        if given && (kind != "sequence" || values.is_some()) {
            return Err(ConnectorError::option(
                spec.key_for(&path),
                format!("applies only with fields.{path}.kind = 'sequence'"),
            ));
        }
    }
    let generator = if let Some(values) = values {
        let list: Vec<String> = crate::api::options::parse_list(&values);
        if list.is_empty() {
            return Err(ConnectorError::option(
                VALUES.key_for(&path),
                "needs at least one value",
            ));
        }
        let arr: ArrayRef = Arc::new(StringArray::from(list.clone()));
        let cast = cast_with_options(
            &arr,
            dt,
            &CastOptions {
                safe: false,
                format_options: FormatOptions::default(),
            },
        )
        .map_err(|e| ConnectorError::option(VALUES.key_for(&path), format!("not all values are valid {dt}: {e}")))?;
        ColumnGen::Values(cast)
    } else if kind == "sequence" {
        if matches!(dt, DataType::Boolean) {
            return Err(ConnectorError::option(
                KIND.key_for(&path),
                "a BOOLEAN column cannot be a sequence",
            ));
        }
        let num_dt = if is_text { &DataType::Int64 } else { dt };
        let start = match start {
            Some(s) => numeric_value(&START.key_for(&path), &s, num_dt)?,
            None if matches!(dt, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) => {
                default_range(dt).0
            }
            None => 0.0,
        };
        let end = end
            .map(|e| numeric_value(&END.key_for(&path), &e, num_dt))
            .transpose()?;
        if let Some(e) = end
            && e < start
        {
            return Err(ConnectorError::option(
                END.key_for(&path),
                "must not be smaller than start",
            ));
        }
        ColumnGen::Sequence { start, end }
    } else if is_text {
        ColumnGen::RandomText { length }
    } else if matches!(dt, DataType::Boolean) {
        ColumnGen::RandomBool
    } else {
        let (dmin, dmax) = default_range(dt);
        let min = min
            .map(|m| numeric_value(&MIN.key_for(&path), &m, dt))
            .transpose()?
            .unwrap_or(dmin);
        let max = max
            .map(|m| numeric_value(&MAX.key_for(&path), &m, dt))
            .transpose()?
            .unwrap_or(dmax.max(min));
        if max < min {
            return Err(ConnectorError::option(
                MAX.key_for(&path),
                format!("must not be smaller than min ({min})"),
            ));
        }
        ColumnGen::Random { min, max }
    };
    Ok(ColumnSpec {
        path,
        field: Arc::clone(field),
        generator,
        null_rate,
    })
}
