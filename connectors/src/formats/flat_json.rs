//! A fast path for flat JSON records: simd-json's tape straight into Arrow builders.
//!
//! arrow-json stays the decoder of record. This path takes a chunk only when it can
//! give exactly what arrow-json (non-strict, as [`super::decode::LineDecoder`] builds
//! it) would give: every line one JSON object, and every declared field in it holding
//! a value its column takes without conversion:
//!
//! - integer columns: an integer in the column's range;
//! - `DOUBLE`: any number;
//! - text: a string;
//! - timestamps: a string, parsed by the same arrow-cast function arrow-json calls,
//!   or an integer in the column's unit;
//! - booleans: `true` / `false`;
//! - `null`, or no field at all, on a nullable column.
//!
//! Undeclared fields are skipped, whatever they hold. Anything else — malformed JSON,
//! a string in a number column, a float in an integer column, a duplicate key, a
//! missing NOT NULL field, a `\uXXXX` escape that is half of a UTF-16 surrogate pair
//! (simd-json refuses those, as arrow-json does) — makes [`FlatJson::decode`] return
//! `None` without a batch,
//! and the caller decodes the chunk with arrow-json, which also isolates the bad
//! records and words their errors. Schemas with other column types (structs, lists,
//! decimals, dates, REAL) never take this path. A test decodes generated records
//! both ways and requires identical batches.
//!
//! Why: arrow-json tokenizes byte by byte; simd-json finds a record's structure with
//! SIMD instructions. Decoding the benchmark's 1M records alone took 1.45 s with
//! arrow-json and about 1.0 s this way (BENCHMARKS.md, "What moved the figures").

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, LargeStringBuilder, RecordBatch, StringBuilder,
    UInt64Builder,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, TimeZone, Utc};
use simd_json::{Node, StaticNode};

use crate::api::{Comparison, Constant, RowFilter};

/// How one column reads its values.
enum Column {
    /// Signed integers of any width, and unsigned ones up to 32 bits, collected as
    /// i64 and cast to the column's type (exact: every value is checked against
    /// `min..=max` as it is read).
    Int {
        min: i64,
        max: i64,
        values: Int64Builder,
    },
    UInt64(UInt64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    /// Collected as i64 in `unit` and cast (a reinterpretation) to the timestamp type.
    Timestamp {
        unit: TimeUnit,
        zone: Option<Tz>,
        values: Int64Builder,
    },
}

impl Column {
    fn for_type(data_type: &DataType) -> Option<Self> {
        let int = |min: i64, max: i64| {
            Some(Column::Int {
                min,
                max,
                values: Int64Builder::new(),
            })
        };
        match data_type {
            DataType::Int8 => int(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => int(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => int(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => int(i64::MIN, i64::MAX),
            DataType::UInt8 => int(0, u8::MAX.into()),
            DataType::UInt16 => int(0, u16::MAX.into()),
            DataType::UInt32 => int(0, u32::MAX.into()),
            DataType::UInt64 => Some(Column::UInt64(UInt64Builder::new())),
            DataType::Float64 => Some(Column::Float64(Float64Builder::new())),
            DataType::Boolean => Some(Column::Bool(BooleanBuilder::new())),
            DataType::Utf8 => Some(Column::Utf8(StringBuilder::new())),
            DataType::LargeUtf8 => Some(Column::LargeUtf8(LargeStringBuilder::new())),
            DataType::Timestamp(unit, tz) => {
                let zone = match tz {
                    None => None,
                    Some(tz) => Some(tz.parse::<Tz>().ok()?),
                };
                Some(Column::Timestamp {
                    unit: *unit,
                    zone,
                    values: Int64Builder::new(),
                })
            }
            _ => None,
        }
    }

    /// Appends `node` (only checks it when `!keep`: the column is not built); false
    /// when arrow-json would not read it as this exact value.
    fn append(&mut self, node: &Node<'_>, keep: bool) -> bool {
        if let Node::Static(StaticNode::Null) = node {
            if keep {
                self.append_null();
            }
            return true;
        }
        match self {
            Column::Int { min, max, values } => match integer(node) {
                Some(v) if (*min..=*max).contains(&v) => keep_value(values, v, keep),
                _ => return false,
            },
            Column::UInt64(values) => match node {
                Node::Static(StaticNode::U64(v)) => keep_value(values, *v, keep),
                Node::Static(StaticNode::I64(v)) if *v >= 0 => keep_value(values, *v as u64, keep),
                _ => return false,
            },
            Column::Float64(values) => match float(node) {
                Some(v) => keep_value(values, v, keep),
                None => return false,
            },
            Column::Bool(values) => match node {
                Node::Static(StaticNode::Bool(v)) if keep => values.append_value(*v),
                Node::Static(StaticNode::Bool(_)) => {}
                _ => return false,
            },
            Column::Utf8(values) => match node {
                Node::String(s) if keep => values.append_value(s),
                Node::String(_) => {}
                _ => return false,
            },
            Column::LargeUtf8(values) => match node {
                Node::String(s) if keep => values.append_value(s),
                Node::String(_) => {}
                _ => return false,
            },
            Column::Timestamp { unit, zone, values } => {
                let v = match node {
                    Node::String(s) => match zone {
                        None => naive_iso_seconds(s.as_bytes()).map_or_else(
                            || string_to_datetime(&Utc, s).ok().and_then(|d| in_unit(&d, *unit)),
                            |secs| seconds_in_unit(secs, *unit),
                        ),
                        Some(tz) => string_to_datetime(tz, s).ok().and_then(|d| in_unit(&d, *unit)),
                    },
                    _ => integer(node),
                };
                match v {
                    Some(v) => keep_value(values, v, keep),
                    None => return false,
                }
            }
        }
        true
    }

    fn append_null(&mut self) {
        match self {
            Column::Int { values, .. } | Column::Timestamp { values, .. } => values.append_null(),
            Column::UInt64(values) => values.append_null(),
            Column::Float64(values) => values.append_null(),
            Column::Bool(values) => values.append_null(),
            Column::Utf8(values) => values.append_null(),
            Column::LargeUtf8(values) => values.append_null(),
        }
    }

    /// The column so far, as `data_type`. The builder starts again with the capacity
    /// this batch needed: chunks are alike, and growing buffers from empty every
    /// batch costs reallocations and fresh pages.
    fn finish(&mut self, data_type: &DataType) -> Option<ArrayRef> {
        let array: ArrayRef = match self {
            Column::Int { values, .. } | Column::Timestamp { values, .. } => {
                let array = values.finish();
                *values = Int64Builder::with_capacity(array.len());
                return arrow::compute::cast(&array, data_type).ok();
            }
            Column::UInt64(values) => {
                let array = values.finish();
                *values = UInt64Builder::with_capacity(array.len());
                Arc::new(array)
            }
            Column::Float64(values) => {
                let array = values.finish();
                *values = Float64Builder::with_capacity(array.len());
                Arc::new(array)
            }
            Column::Bool(values) => {
                let array = values.finish();
                *values = BooleanBuilder::with_capacity(array.len());
                Arc::new(array)
            }
            Column::Utf8(values) => {
                let array = values.finish();
                *values = StringBuilder::with_capacity(array.len(), array.value_data().len());
                Arc::new(array)
            }
            Column::LargeUtf8(values) => {
                let array = values.finish();
                *values = LargeStringBuilder::with_capacity(array.len(), array.value_data().len());
                Arc::new(array)
            }
        };
        Some(array)
    }
}

fn keep_value<T: arrow::datatypes::ArrowPrimitiveType>(
    values: &mut arrow::array::PrimitiveBuilder<T>,
    v: T::Native,
    keep: bool,
) {
    if keep {
        values.append_value(v);
    }
}

/// A number node as f64: what arrow-json's float parse gives for these digits.
fn float(node: &Node<'_>) -> Option<f64> {
    match node {
        Node::Static(StaticNode::F64(v)) => Some(*v),
        // simd-json reads `-0` as the integer 0 (non-negative integers come as U64),
        // where parsing the digits as a double gives -0.0.
        Node::Static(StaticNode::I64(0)) => Some(-0.0),
        // Both round to the nearest double, as parsing the digits would.
        Node::Static(StaticNode::I64(v)) => Some(*v as f64),
        Node::Static(StaticNode::U64(v)) => Some(*v as f64),
        _ => None,
    }
}

/// One term of a [`RowFilter`], bound to its column's type: what the record's node
/// must compare as for the record to be kept.
#[derive(Debug)]
enum Test {
    Int(Comparison, i64),
    UInt(Comparison, u64),
    Float(Comparison, f64),
    Text(Comparison, Box<[u8]>),
    Bool(Comparison, bool),
}

impl Test {
    /// The term for `column`, or `None` when its constant is not of the column's type.
    fn bind(column: &Column, op: Comparison, value: &Constant) -> Option<Self> {
        Some(match (column, value) {
            (Column::Int { .. }, Constant::Int(v)) => Test::Int(op, *v),
            (Column::UInt64(_), Constant::UInt(v)) => Test::UInt(op, *v),
            (Column::Float64(_), Constant::Float(v)) => Test::Float(op, *v),
            (Column::Utf8(_) | Column::LargeUtf8(_), Constant::Text(v)) => Test::Text(op, v.as_bytes().into()),
            (Column::Bool(_), Constant::Bool(v)) => Test::Bool(op, *v),
            _ => return None,
        })
    }

    /// Whether the value on `node` passes. A null, or a node the column does not
    /// take (which declines the chunk anyway), does not.
    fn holds(&self, node: &Node<'_>) -> bool {
        match (self, node) {
            (Test::Int(op, k), _) => integer(node).is_some_and(|v| op.holds(v.cmp(k))),
            (Test::UInt(op, k), Node::Static(StaticNode::U64(v))) => op.holds(v.cmp(k)),
            (Test::UInt(op, k), Node::Static(StaticNode::I64(v))) => {
                u64::try_from(*v).is_ok_and(|v| op.holds(v.cmp(k)))
            }
            (Test::Float(op, k), _) => float(node).is_some_and(|v| op.holds(v.total_cmp(k))),
            (Test::Text(op, k), Node::String(s)) => op.holds(s.as_bytes().cmp(k)),
            (Test::Bool(op, k), Node::Static(StaticNode::Bool(v))) => op.holds(v.cmp(k)),
            _ => false,
        }
    }
}

/// An integer node as i64: what arrow-json's integer parse gives for these digits.
fn integer(node: &Node<'_>) -> Option<i64> {
    match node {
        Node::Static(StaticNode::I64(v)) => Some(*v),
        Node::Static(StaticNode::U64(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` (or a space for the `T`), read
/// as UTC: the form most JSON timestamps take, parsed without arrow-cast's general
/// parser. `None` for any other text, and for a date or time that does not exist
/// (arrow-cast then decides, as for every other form).
fn naive_iso_seconds(s: &[u8]) -> Option<i64> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        mo0,
        mo1,
        b'-',
        d0,
        d1,
        sep,
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
    ] = s
    else {
        return None;
    };
    if sep != b'T' && sep != b' ' {
        return None;
    }
    let digits = |ds: &[u8]| {
        ds.iter()
            .try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (digits(&[y0, y1, y2, y3])?, digits(&[mo0, mo1])?, digits(&[d0, d1])?);
    let (hour, minute, second) = (digits(&[h0, h1])?, digits(&[mi0, mi1])?, digits(&[s0, s1])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (proleptic Gregorian, H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn seconds_in_unit(seconds: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(seconds),
        TimeUnit::Millisecond => seconds.checked_mul(1_000),
        TimeUnit::Microsecond => seconds.checked_mul(1_000_000),
        TimeUnit::Nanosecond => seconds.checked_mul(1_000_000_000),
    }
}

fn in_unit<T: TimeZone>(d: &DateTime<T>, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(d.timestamp()),
        TimeUnit::Millisecond => Some(d.timestamp_millis()),
        TimeUnit::Microsecond => Some(d.timestamp_micros()),
        TimeUnit::Nanosecond => d.timestamp_nanos_opt(),
    }
}

/// `a == b` for the short keys of JSON records, without a call to `memcmp` for each
/// key of each record (which cost ~5% of a JSON → Parquet run in `perf`).
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let half = |s: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    // Two overlapping loads cover every length from one load's width to twice it.
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        0..4 => a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0,
        _ => a == b,
    }
}

/// Decodes chunks of flat JSON lines, or declines them (see the module docs).
pub(crate) struct FlatJson {
    rows: Rows,
    buffers: simd_json::Buffers,
    /// simd-json unescapes strings in place, so a chunk is parsed from a copy.
    scratch: Vec<u8>,
    /// Where each line lies in `scratch` when the chunk is parsed as one array.
    bounds: Vec<(usize, usize)>,
    /// The tape of the last group parsed as one array, kept for its capacity.
    tape: Option<simd_json::Tape<'static>>,
    /// Groups of lines parsed as one array (the others line by line), for the debug log.
    pub(crate) as_array: u64,
}

/// The batch being built, and how keys find their columns.
struct Rows {
    schema: SchemaRef,
    columns: Vec<Column>,
    nullable: Vec<bool>,
    /// Per column: false when nothing reads it and it may be NULL, so its values are
    /// checked (a bad one still declines the chunk) but not built.
    keep: Vec<bool>,
    by_name: HashMap<Box<str>, usize>,
    /// The column the n-th key of the previous record named: records of one stream
    /// almost always list their keys in one order, so most lookups are one compare.
    predicted: Vec<usize>,
    /// Each column's name, at hand for the predicted-key compare.
    names: Vec<Box<[u8]>>,
    /// `seen[c] == row` when column `c` got a value in record `row` (1-based).
    seen: Vec<usize>,
    /// Per column not built: the last all-NULL array handed out for it. Arrays are
    /// immutable and shared, so batches of one length share one instead of zeroing
    /// fresh buffers every batch.
    nulls: Vec<Option<ArrayRef>>,
    /// Per column: where its value lies on the current record's tape (valid when
    /// `seen[c]` is the current row).
    slot: Vec<usize>,
    /// The terms of the row filter, by column; empty when there is none.
    filter: Vec<(usize, Test)>,
    /// With a filter: the batch's lines (0-based) whose records passed it.
    kept: Vec<usize>,
}

/// A batch decoded by the fast path.
#[derive(Debug)]
pub(crate) struct FlatBatch {
    pub(crate) batch: RecordBatch,
    /// With a row filter: the lines (0-based) whose records passed it, one per row
    /// of `batch`; `None` without one (every line is a row).
    pub(crate) kept: Option<Vec<usize>>,
}

impl std::fmt::Debug for FlatJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatJson")
            .field("columns", &self.rows.columns.len())
            .finish()
    }
}

impl FlatJson {
    /// `None` when a column's type is not one this path decodes.
    pub(crate) fn new(schema: SchemaRef) -> Option<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column::for_type(f.data_type()))
            .collect::<Option<Vec<_>>>()?;
        let by_name = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().as_str().into(), i))
            .collect::<HashMap<_, _>>();
        if by_name.len() != columns.len() {
            return None;
        }
        let rows = Rows {
            nullable: schema.fields().iter().map(|f| f.is_nullable()).collect(),
            seen: vec![0; columns.len()],
            nulls: vec![None; columns.len()],
            slot: vec![0; columns.len()],
            filter: Vec::new(),
            kept: Vec::new(),
            keep: vec![true; columns.len()],
            predicted: Vec::new(),
            names: schema.fields().iter().map(|f| f.name().as_bytes().into()).collect(),
            columns,
            by_name,
            schema,
        };
        Some(Self {
            rows,
            buffers: simd_json::Buffers::new(4096),
            scratch: Vec::new(),
            bounds: Vec::new(),
            tape: None,
            as_array: 0,
        })
    }

    /// Builds only the columns `used` marks, and NOT NULL ones: the others come out
    /// all NULL. Their values are still checked, so a record with a bad value there
    /// still declines the chunk (and arrow-json isolates it, as without skipping).
    pub(crate) fn skip_unused(&mut self, used: &[bool]) {
        for (c, keep) in self.rows.keep.iter_mut().enumerate() {
            *keep = used.get(c).copied().unwrap_or(true) || !self.rows.nullable[c];
        }
    }

    /// Keeps only the records that pass `filter`, when every term can be evaluated
    /// here (its constant is of its column's type); otherwise keeps every record.
    /// Records that fail it are still checked, so a bad one still declines the chunk,
    /// exactly as if the filter ran after decoding. When the filter is the whole
    /// `WHERE` clause, a nullable column that only it reads is checked but not built
    /// (call after [`Self::skip_unused`]).
    pub(crate) fn apply_filter(&mut self, filter: &RowFilter) {
        let rows = &mut self.rows;
        let bound = filter
            .terms
            .iter()
            .map(|t| {
                rows.columns
                    .get(t.column)
                    .and_then(|c| Test::bind(c, t.op, &t.value))
                    .map(|test| (t.column, test))
            })
            .collect::<Option<Vec<_>>>();
        match bound {
            Some(terms) => {
                if filter.complete {
                    for &(c, _) in &terms {
                        if !filter.read_after(c) && rows.nullable[c] {
                            rows.keep[c] = false;
                        }
                    }
                }
                rows.filter = terms;
            }
            None => {
                tracing::debug!(
                    ?filter,
                    "the row filter does not fit the JSON fast path's columns; the transform filters instead"
                );
                rows.filter.clear();
            }
        }
    }

    /// All `lines` as one batch, or `None` when any of them is not a record this path
    /// decodes exactly (the caller then uses arrow-json).
    pub(crate) fn decode(&mut self, lines: &[&[u8]]) -> Option<FlatBatch> {
        let Self {
            rows,
            buffers,
            scratch,
            bounds,
            tape,
            as_array,
        } = self;
        rows.seen.fill(0);
        rows.kept.clear();
        let mut ok = true;
        for (g, group) in lines.chunks(ARRAY_LINES).enumerate() {
            let first = g * ARRAY_LINES;
            let group_ok = match as_one_array(group, first, rows, buffers, scratch, bounds, tape) {
                Some(ok) => {
                    *as_array += 1;
                    ok
                }
                None => line_by_line(group, first, rows, buffers, scratch),
            };
            if !group_ok {
                ok = false;
                break;
            }
        }
        let filtering = !rows.filter.is_empty();
        let len = if filtering { rows.kept.len() } else { lines.len() };
        let columns = rows
            .columns
            .iter_mut()
            .zip(rows.schema.fields())
            .zip(&rows.keep)
            .zip(&mut rows.nulls)
            .map(|(((c, f), keep), nulls)| {
                if *keep {
                    return c.finish(f.data_type());
                }
                match nulls {
                    Some(array) if array.len() == len => {}
                    _ => *nulls = Some(arrow::array::new_null_array(f.data_type(), len)),
                }
                nulls.clone()
            })
            .collect::<Option<Vec<_>>>();
        if !ok {
            return None;
        }
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(len));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&rows.schema), columns?, &options).ok()?;
        Some(FlatBatch {
            batch,
            kept: filtering.then(|| rows.kept.clone()),
        })
    }
}

/// Lines parsed together as one array: enough to spread simd-json's set-up for one
/// call over many records, few enough that the tape (~20 nodes of 24 bytes a
/// record) stays in the CPU's caches. Measured on the benchmark's records (1 core):
/// 24 to 128 lines were alike and ~10% faster than a call per line; 256 and 512
/// were slower, and one array per whole chunk (16k records, a 7 MiB tape) was
/// slower than a call per line.
const ARRAY_LINES: usize = 64;

/// Parses `lines` (rows `first + 1 ..` of the batch) as one JSON array, its lines
/// the elements: one simd-json call per group instead of one per line, which saves
/// each line's set-up (the padded last block, the tape's reservations).
///
/// `Some(ok)` when that decides the chunk: `ok` is whether every record was
/// appended. `None` when it cannot be sure each element is exactly one line, and
/// nothing was appended: the caller then parses line by line. It is sure when the
/// array parses with one element per line, every element is an object with at least
/// one key and no nested value, and every key and string of element `k` lies inside
/// line `k`. The lines are joined by `\n,`, and a flat object cannot span such a
/// separator: a raw newline inside a string is invalid JSON, a comma after `{`, a
/// key or a `:` is invalid, and one after a value must be followed by a key (which
/// would lie in the next line) or be a trailing comma (invalid). So each line is
/// whitespace, one element, whitespace: exactly what parsing it alone would give.
fn as_one_array(
    lines: &[&[u8]],
    first: usize,
    rows: &mut Rows,
    buffers: &mut simd_json::Buffers,
    scratch: &mut Vec<u8>,
    bounds: &mut Vec<(usize, usize)>,
    kept: &mut Option<simd_json::Tape<'static>>,
) -> Option<bool> {
    if lines.len() < 2 {
        return None;
    }
    scratch.clear();
    bounds.clear();
    scratch.push(b'[');
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            scratch.extend_from_slice(b"\n,");
        }
        let start = scratch.len();
        scratch.extend_from_slice(line);
        bounds.push((start, scratch.len()));
    }
    scratch.extend_from_slice(b"\n]");
    // simd-json reads whole 64-byte blocks: with padding after the array it parses
    // `scratch` in place instead of copying it into a padded buffer of its own.
    let len = scratch.len();
    scratch.resize(len + simd_json::INPUT_PADDING, b' ');
    let base = scratch.as_ptr() as usize;
    let mut tape = kept.take().unwrap_or_else(simd_json::Tape::null).reset();
    let parsed = simd_json::fill_tape_padded(scratch, len, buffers, &mut tape).is_ok();
    let decided = if parsed {
        append_elements(&tape.0, lines.len(), first, base, bounds, rows)
    } else {
        None
    };
    *kept = Some(tape.reset());
    decided
}

/// The checks and appends of [`as_one_array`] on its parsed tape.
fn append_elements(
    nodes: &[Node<'_>],
    lines: usize,
    first: usize,
    base: usize,
    bounds: &[(usize, usize)],
    rows: &mut Rows,
) -> Option<bool> {
    match nodes.first() {
        Some(&Node::Array { len, .. }) if len == lines => {}
        _ => return None,
    }
    // Where a string node lies in `scratch`, if it is one.
    let span = |node: &Node<'_>| match node {
        Node::String(s) => (s.as_ptr() as usize)
            .checked_sub(base)
            .map(|from| Some((from, from + s.len()))),
        _ => Some(None),
    };
    let mut at = 1;
    for &(start, end) in bounds.iter() {
        let Some(&Node::Object { len, count }) = nodes.get(at) else {
            return None;
        };
        if len == 0 || count != 2 * len {
            return None;
        }
        // simd-json leaves each string where it read it (unescaping shortens it in
        // place), so the tape holds an element's strings in the order of their
        // addresses: all lie in the line when the first key starts in it and the last
        // key, and the last value if it is a string, end in it.
        let first_key = span(nodes.get(at + 1)?)?;
        let last_key = span(nodes.get(at + count - 1)?)?;
        let last_value = span(nodes.get(at + count)?)?;
        let (Some((first, _)), Some((_, last_key_end))) = (first_key, last_key) else {
            return None;
        };
        if first < start || last_key_end > end || last_value.is_some_and(|(_, to)| to > end) {
            return None;
        }
        at += 1 + count;
    }
    if at != nodes.len() {
        return None;
    }
    let mut at = 1;
    for row in first + 1..=first + lines {
        let count = match nodes.get(at) {
            Some(&Node::Object { count, .. }) => count,
            _ => return Some(false),
        };
        if !rows.record(&nodes[at..at + 1 + count], row) {
            return Some(false);
        }
        at += 1 + count;
    }
    Some(true)
}

/// Parses each line on its own, in place in one copy of the chunk (the lines after
/// a line are its padding for simd-json, and the copy ends in padding); false when
/// one is not a record the fast path decodes exactly.
fn line_by_line(
    lines: &[&[u8]],
    first: usize,
    rows: &mut Rows,
    buffers: &mut simd_json::Buffers,
    scratch: &mut Vec<u8>,
) -> bool {
    scratch.clear();
    for line in lines {
        scratch.extend_from_slice(line);
    }
    scratch.resize(scratch.len() + simd_json::INPUT_PADDING, b' ');
    let mut kept = simd_json::Tape::null();
    let mut at = 0;
    for (row, original) in lines.iter().enumerate() {
        let len = original.len();
        let line = &mut scratch[at..];
        at += len;
        let mut tape = kept.reset();
        let ok =
            simd_json::fill_tape_padded(line, len, buffers, &mut tape).is_ok() && rows.record(&tape.0, first + row + 1);
        kept = tape.reset();
        if !ok {
            return false;
        }
    }
    true
}

impl Rows {
    /// Appends the record on `nodes` as row `row`; false when it is not one the fast
    /// path decodes exactly (the batch is then thrown away).
    fn record(&mut self, nodes: &[Node<'_>], row: usize) -> bool {
        let Some(&Node::Object { len, .. }) = nodes.first() else {
            return false;
        };
        let mut at = 1;
        for n in 0..len {
            let value_at = at + 1;
            let (Some(Node::String(key)), Some(value)) = (nodes.get(at), nodes.get(value_at)) else {
                return false;
            };
            at = value_at
                + 1
                + match value {
                    Node::Object { count, .. } | Node::Array { count, .. } => *count,
                    _ => 0,
                };
            let column = match self.predicted.get(n) {
                Some(&c) if self.names.get(c).is_some_and(|name| same_key(name, key.as_bytes())) => Some(c),
                _ => {
                    let found = self.by_name.get(*key).copied();
                    if n >= self.predicted.len() {
                        self.predicted.resize(n + 1, usize::MAX);
                    }
                    self.predicted[n] = found.unwrap_or(usize::MAX);
                    found
                }
            };
            let Some(c) = column else { continue };
            if self.seen[c] == row {
                return false;
            }
            self.seen[c] = row;
            self.slot[c] = value_at;
        }
        if at != nodes.len() {
            return false;
        }
        // Values are appended once the record's keys are known, so a record the row
        // filter drops is only checked.
        let passes = self
            .filter
            .iter()
            .all(|(c, test)| self.seen[*c] == row && nodes.get(self.slot[*c]).is_some_and(|node| test.holds(node)));
        if passes && !self.filter.is_empty() {
            self.kept.push(row - 1);
        }
        for (c, column) in self.columns.iter_mut().enumerate() {
            let keep = self.keep[c] && passes;
            if self.seen[c] == row {
                let Some(value) = nodes.get(self.slot[c]) else {
                    return false;
                };
                if !column.append(value, keep) || (!self.nullable[c] && matches!(value, Node::Static(StaticNode::Null)))
                {
                    return false;
                }
            } else {
                if !self.nullable[c] {
                    return false;
                }
                if keep {
                    column.append_null();
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use rand::{Rng, SeedableRng};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int8, true),
            Field::new("count", DataType::Int32, true),
            Field::new("big", DataType::UInt64, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("long_name", DataType::LargeUtf8, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "ts_ns_utc",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
                true,
            ),
            Field::new(
                "ts_s_offset",
                DataType::Timestamp(TimeUnit::Second, Some("-05:30".into())),
                true,
            ),
        ]))
    }

    /// arrow-json configured as `LineDecoder` configures it.
    fn reference(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
        let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(lines.len().max(1))
            .with_strict_mode(false)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        let joined = lines.join(&b'\n');
        let mut data = joined.as_slice();
        while !data.is_empty() {
            let n = decoder.decode(data).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            data = &data[n..];
        }
        decoder
            .flush()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no rows".to_string())
    }

    fn string(rng: &mut impl Rng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Zürich",
            "東京",
            "😀",
            "\\\"",
            "\\\\",
            "\\n",
            "\\t",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\/",
            " ",
            "x,y",
            "{}",
            "null",
        ];
        (0..rng.random_range(0..6))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    fn timestamp(rng: &mut impl Rng) -> String {
        let (y, mo, d, h, mi, s) = (
            rng.random_range(1970..2100),
            rng.random_range(1..13),
            rng.random_range(1..29),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60),
        );
        match rng.random_range(0..6) {
            0 => format!("\"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}\""),
            1 => format!(
                "\"{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}\"",
                rng.random_range(0..1_000_000)
            ),
            2 => format!("\"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\""),
            3 => format!("\"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.123+02:00\""),
            4 => format!("\"{y}-{mo:02}-{d:02}\""),
            _ => rng.random_range(-1_000_000_000i64..4_000_000_000).to_string(),
        }
    }

    /// One record that every column takes: the field order shuffles, fields go
    /// missing or null, and undeclared fields of every JSON kind come and go.
    fn record(rng: &mut rand_chacha::ChaCha8Rng, id: i64, nested: bool) -> String {
        let mut fields = vec![format!("\"id\":{id}")];
        let mut maybe = |name: &str, value: String, rng: &mut rand_chacha::ChaCha8Rng| match rng.random_range(0..10) {
            0 => {}
            1 => fields.push(format!("\"{name}\":null")),
            _ => fields.push(format!("\"{name}\":{value}")),
        };
        let small = rng.random_range(-128..=127i64).to_string();
        maybe("small", small, rng);
        let count = rng.random_range(i32::MIN as i64..=i32::MAX as i64).to_string();
        maybe("count", count, rng);
        let big = [u64::MAX, 0, rng.random()][rng.random_range(0..3)].to_string();
        maybe("big", big, rng);
        let amount = [
            format!("{}", rng.random_range(-1e6..1e6f64)),
            "1e-7".into(),
            "-2.5E+10".into(),
            "9007199254740993".into(),
            "-0".into(),
            "0".into(),
            "0.1".into(),
        ][rng.random_range(0..7)]
        .clone();
        maybe("amount", amount, rng);
        let name = format!("\"{}\"", string(rng));
        maybe("name", name, rng);
        let long_name = format!("\"{}\"", string(rng));
        maybe("long_name", long_name, rng);
        let flag = ["true", "false"][rng.random_range(0..2)].to_string();
        maybe("flag", flag, rng);
        for name in ["ts", "ts_ns_utc", "ts_s_offset"] {
            let ts = timestamp(rng);
            maybe(name, ts, rng);
        }
        let extras: &[&str] = if nested {
            &[
                "1",
                "\"x\"",
                "[1,{\"a\":[]}]",
                "{\"id\":\"nested, not the column\"}",
                "null",
                "true",
                "1.5e300",
            ]
        } else {
            &["1", "\"x, }\"", "null", "true", "1.5e300"]
        };
        let extra = extras[rng.random_range(0..extras.len())];
        maybe("extra", extra.to_string(), rng);
        let n = fields.len();
        for i in (1..n).rev() {
            fields.swap(i, rng.random_range(0..=i));
        }
        let ws = [" ", ""][rng.random_range(0..2)];
        format!("{{{ws}{}{ws}}}", fields.join(&format!(",{ws}")))
    }

    /// Chunks with nested undeclared values are parsed line by line, flat ones as one
    /// array; both must give arrow-json's batch.
    #[test]
    fn generated_records_decode_exactly_as_arrow_json_does() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).expect("every column type is on the fast path");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for chunk in 0..80 {
            let nested = chunk % 2 == 0;
            let records: Vec<String> = (0..250).map(|i| record(&mut rng, chunk * 1000 + i, nested)).collect();
            let lines: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
            let expected =
                reference(&schema, &lines).unwrap_or_else(|e| panic!("arrow-json refused chunk {chunk}: {e}"));
            let got = flat
                .decode(&lines)
                .map(|b| b.batch)
                .unwrap_or_else(|| panic!("fast path declined chunk {chunk}: {}", records.join("\n")));
            for (c, field) in schema.fields().iter().enumerate() {
                let (got, expected) = (got.column(c), expected.column(c));
                if let Some(row) = (0..lines.len()).find(|&r| got.slice(r, 1) != expected.slice(r, 1)) {
                    panic!(
                        "chunk {chunk}, column {}: {:?} where arrow-json gives {:?} for {}",
                        field.name(),
                        got.slice(row, 1),
                        expected.slice(row, 1),
                        records[row]
                    );
                }
            }
        }
        assert_eq!(
            flat.as_array, 160,
            "the flat chunks are parsed as arrays of up to 64 lines"
        );
    }

    /// Lines that are not records on their own can still join into a valid array:
    /// none of these may be taken (the line-by-line path declines them), and the
    /// good chunk after each still decodes as one array.
    #[test]
    fn lines_that_only_parse_joined_are_declined() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        let good: [&[u8]; 2] = [br#"{"id":1,"name":"a"}"#, br#"{"id":2}"#];
        for lines in [
            vec![r#"{"id":1"#, "}"],
            // Taken only if a trailing comma (`{"id":1,}`) parsed.
            vec![r#"{"id":1"#, r#"},{"id":2}"#],
            vec![r#"{"id":1,"name":"x""#, r#"},{"id":2}"#],
            vec![r#"{"id":1"#, "}", r#"{"id":2},{"id":3}"#],
            vec![r#"{"id":1"#, r#""name":"x"}"#, r#"{"id":2},{"id":3}"#],
            vec![r#"{"id":1,"name":"a"#, r#"b"}"#, r#"{"id":2},{"id":3}"#],
            vec![r#"{"id":1,"extra":[{}"#, r#"{}]},{"id":2}"#],
            vec![r#"{"id":1}"#, r#"{"id":2},{"id":3}"#],
            vec![r#"{"id":1}"#, r#"{"id":2}]"#, r#"[{"id":3}"#],
            vec![r#"{"id":1}"#, ""],
            vec![r#"{"id":1}"#, "{}"],
        ] {
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            assert!(
                flat.decode(&lines).is_none(),
                "fast path took {:?}",
                lines.iter().map(|l| String::from_utf8_lossy(l)).collect::<Vec<_>>()
            );
            let before = flat.as_array;
            assert_eq!(flat.decode(&good).map(|b| b.batch), reference(&schema, &good).ok());
            assert_eq!(flat.as_array, before + 1);
        }
    }

    #[test]
    fn declines_what_arrow_json_would_convert_or_refuse() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        let good = br#"{"id":1,"name":"a"}"#.as_slice();
        for bad in [
            r#"{"id":1.0}"#,
            r#"{"id":"1"}"#,
            r#"{"id":1,"small":128}"#,
            r#"{"id":1,"count":2147483648}"#,
            r#"{"id":18446744073709551615}"#,
            r#"{"id":1,"big":-1}"#,
            r#"{"id":1,"amount":"1.5"}"#,
            r#"{"id":1,"name":5}"#,
            r#"{"id":1,"name":{"a":1}}"#,
            r#"{"id":1,"flag":1}"#,
            r#"{"id":1,"ts":"yesterday"}"#,
            r#"{"id":1,"ts":1.5}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"name":"no id"}"#,
            r#"{"id":null}"#,
            r#"[1,2]"#,
            r#"{"id":1"#,
            r#"{"id":1} {"id":2}"#,
            r#"{"id":1,"amount":1e400}"#,
        ] {
            assert!(
                flat.decode(&[good, bad.as_bytes(), good]).is_none(),
                "fast path took {bad}"
            );
            // Declining leaves no partial rows behind.
            let batch = flat
                .decode(&[good, good])
                .map(|b| b.batch)
                .expect("good records after a declined chunk");
            assert_eq!(batch.num_rows(), 2);
            assert_eq!(batch, reference(&schema, &[good, good]).unwrap());
        }
        assert!(
            flat.decode(&[b"{\"id\":1,\"name\":\"\xff\"}"]).is_none(),
            "invalid UTF-8"
        );
    }

    /// Odd corners of JSON: the fast path may decline them, but what it takes must be
    /// what arrow-json gives.
    #[test]
    fn odd_records_are_declined_or_decoded_as_arrow_json_does() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        for line in [
            "{\"id\":1,\"name\":\"\u{0}\"}",
            "{\"id\":1,\"name\":\"\u{1f}\"}",
            r#"{"id":1,"name":"\ud800"}"#,
            r#"{"id":1,"name":"\udc00\ud800"}"#,
            r#"{"id":1,"name":"\ud83d\ude00\ud83d"}"#,
            r#"{"id":1,"name":"\ud83d\n\ude00"}"#,
            r#"{"id":1,"name":"\\ud800"}"#,
            r#"{"id":1,"name":"\ud83d\ude00","long_name":"\ud83d"}"#,
            r#"{"id":1,"name":"\u0000"}"#,
            "\u{feff}{\"id\":1}",
            r#"{"id":-0,"amount":-0.0}"#,
            r#"{"id":1,"amount":1E2}"#,
            r#"{"id":1,"amount":4.9e-324}"#,
            r#"{"id":1,"amount":1.7976931348623157e308}"#,
            r#"{"id":1,"amount":123456789012345678901234567890}"#,
            r#"{"id":9223372036854775807,"count":-2147483648}"#,
            r#"{"id":-9223372036854775808}"#,
            r#"{"id":1,"ts":-62135596800000000}"#,
            r#"{"id":1,"ts_ns_utc":"2300-01-01T00:00:00"}"#,
            r#"{"id":1,"ts_ns_utc":9223372036854775807}"#,
            r#"{"id":1,"ts":"2024-06-01T10:00:00.123456789"}"#,
            r#"{"id":1,"ts":"2024-06-01 10:00"}"#,
            r#"{"id":1,"ts":"2024-13-01"}"#,
            r#"{"id":1,"ts":""}"#,
            r#"{"id":1,"ts_s_offset":"2024-03-31T02:30:00"}"#,
            r#"{"id":1,"ts_s_offset":"2024-10-27T02:30:00"}"#,
            r#"{"id":1,"ts_s_offset":"2024-10-27T02:30:00+05:00"}"#,
            r#"{"id":1,"Name":"case differs","name ":"space"}"#,
            r#"{"id":1,"":"empty key"}"#,
            r#"{"id":1,"extra":[[[[[[[[[[]]]]]]]]]]}"#,
            r#"  {"id":1}  "#,
            "{\"id\":1}\r",
        ] {
            // Alone (parsed as a line) and between good records (parsed as one array).
            let good = br#"{"id":7,"name":"ok"}"#.as_slice();
            for lines in [vec![line.as_bytes()], vec![good, line.as_bytes(), good]] {
                let expected = reference(&schema, &lines);
                if let Some(got) = flat.decode(&lines).map(|b| b.batch) {
                    assert_eq!(Ok(got), expected, "{line}");
                }
            }
        }
    }

    /// Unread nullable columns come out NULL, the read ones as arrow-json gives them,
    /// NOT NULL ones are always built, and a bad value in an unread column still
    /// declines the chunk (so arrow-json isolates that record as without skipping).
    #[test]
    fn unused_nullable_columns_are_checked_but_not_built() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        let mut used = vec![false; schema.fields().len()];
        used[5] = true; // name
        flat.skip_unused(&used);
        let lines: [&[u8]; 2] = [
            br#"{"id":1,"name":"a","amount":2.5,"ts":"2024-06-01T10:00:00"}"#,
            br#"{"id":2,"name":null,"count":7}"#,
        ];
        let got = flat.decode(&lines).map(|b| b.batch).expect("good records");
        let expected = reference(&schema, &lines).unwrap();
        for (c, field) in schema.fields().iter().enumerate() {
            if c == 0 || c == 5 {
                assert_eq!(got.column(c), expected.column(c), "{} is read", field.name());
            } else {
                assert_eq!(got.column(c).null_count(), 2, "{} is not read", field.name());
                assert_eq!(got.column(c).data_type(), field.data_type());
            }
        }
        // The all-NULL columns are shared between batches of one length only.
        for lines in [&[lines[0], lines[1], lines[0]][..], &lines[..], &lines[..1]] {
            let got = flat.decode(lines).map(|b| b.batch).expect("good records");
            assert_eq!(got.num_rows(), lines.len());
            for (c, field) in schema.fields().iter().enumerate().filter(|(c, _)| *c != 0 && *c != 5) {
                assert_eq!(got.column(c).len(), lines.len(), "{} is not read", field.name());
                assert_eq!(got.column(c).null_count(), lines.len(), "{} is not read", field.name());
            }
        }
        for bad in [
            r#"{"id":3,"amount":"x"}"#,
            r#"{"id":3,"ts":"yesterday"}"#,
            r#"{"id":3,"count":2147483648}"#,
            r#"{"id":3,"flag":1}"#,
            r#"{"name":"no id"}"#,
        ] {
            assert!(
                flat.decode(&[lines[0], bad.as_bytes()]).is_none(),
                "fast path took {bad}"
            );
        }
    }

    #[test]
    fn same_key_is_equality() {
        let keys = [
            "",
            "a",
            "id",
            "ix",
            "abc",
            "abd",
            "abcd",
            "abce",
            "xbcd",
            "abcdx",
            "xbcdx",
            "abcdefg",
            "abcdefx",
            "xbcdefg",
            "abcXefg",
            "abcdefgh",
            "abcdefgx",
            "xbcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghXjklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "é",
            "ü",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(same_key(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }

    /// The ISO shortcut gives arrow-cast's value for every date it takes, and leaves
    /// every date that does not exist (and every other form) to arrow-cast.
    #[test]
    fn iso_timestamps_read_as_arrow_cast_reads_them() {
        let mut checked = 0;
        for year in [0, 1, 4, 100, 1600, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999] {
            for month in 0..=13 {
                for day in [0, 1, 28, 29, 30, 31, 32] {
                    for (time, sep) in [
                        ("00:00:00", 'T'),
                        ("23:59:59", ' '),
                        ("12:34:56", 'T'),
                        ("24:00:00", 'T'),
                        ("10:60:00", ' '),
                        ("10:00:60", 'T'),
                    ] {
                        let text = format!("{year:04}-{month:02}-{day:02}{sep}{time}");
                        let expected = string_to_datetime(&Utc, &text).ok().map(|d| d.timestamp());
                        let got = naive_iso_seconds(text.as_bytes());
                        assert!(
                            got.is_none() || got == expected,
                            "{text}: {got:?} where arrow-cast gives {expected:?}"
                        );
                        if expected.is_some() && !time.contains("60") {
                            assert_eq!(got, expected, "{text} is left to arrow-cast");
                        }
                        checked += usize::from(got.is_some());
                    }
                }
            }
        }
        assert!(checked > 1000);
        for other in [
            "2024-06-01T10:00:00Z",
            "2024-06-01T10:00",
            "2024-06-01t10:00:00",
            "2024-06-01T10:00:00.5",
            "+2024-06-01T10:0:00",
            "2024-06-01T1a:00:00",
            "２０２４-06-01T10:00:00",
        ] {
            assert_eq!(naive_iso_seconds(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn schemas_with_other_column_types_never_take_the_fast_path() {
        for data_type in [
            DataType::Float32,
            DataType::Date32,
            DataType::Decimal128(10, 2),
            DataType::Binary,
            DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into()),
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
        ] {
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("x", data_type.clone(), true),
            ]));
            assert!(FlatJson::new(schema).is_none(), "{data_type}");
        }
    }

    /// With a row filter, the fast path keeps exactly the rows arrow's comparison
    /// kernels keep on arrow-json's batch (NULL and missing fail, floats compare by
    /// total order), and reports which lines they came from.
    #[test]
    fn row_filters_keep_what_arrow_comparisons_keep() {
        use crate::api::Term;
        use arrow::array::{
            BooleanArray, Datum, Float64Array, Int8Array, Int32Array, LargeStringArray, Scalar, StringArray,
            UInt64Array,
        };
        use arrow::compute::kernels::cmp;

        let schema = schema();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let records: Vec<String> = (0..600).map(|i| record(&mut rng, i, i % 3 == 0)).collect();
        let lines: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
        let all = reference(&schema, &lines).unwrap();
        let column = |name: &str| schema.index_of(name).unwrap();
        let ops = [
            Comparison::Eq,
            Comparison::NotEq,
            Comparison::Lt,
            Comparison::LtEq,
            Comparison::Gt,
            Comparison::GtEq,
        ];
        // (column, constant, the same constant as an Arrow scalar of the column's type)
        let constants: Vec<(usize, Constant, Box<dyn Datum>)> = vec![
            (
                column("small"),
                Constant::Int(0),
                Box::new(Scalar::new(Int8Array::from(vec![0]))),
            ),
            (
                column("count"),
                Constant::Int(-5),
                Box::new(Scalar::new(Int32Array::from(vec![-5]))),
            ),
            (
                column("big"),
                Constant::UInt(u64::MAX),
                Box::new(Scalar::new(UInt64Array::from(vec![u64::MAX]))),
            ),
            (
                column("amount"),
                Constant::Float(0.0),
                Box::new(Scalar::new(Float64Array::from(vec![0.0]))),
            ),
            (
                column("amount"),
                Constant::Float(-0.0),
                Box::new(Scalar::new(Float64Array::from(vec![-0.0]))),
            ),
            (
                column("amount"),
                Constant::Float(0.1),
                Box::new(Scalar::new(Float64Array::from(vec![0.1]))),
            ),
            (
                column("name"),
                Constant::Text("Zürich".into()),
                Box::new(Scalar::new(StringArray::from(vec!["Zürich"]))),
            ),
            (
                column("name"),
                Constant::Text("".into()),
                Box::new(Scalar::new(StringArray::from(vec![""]))),
            ),
            (
                column("long_name"),
                Constant::Text("a\n".into()),
                Box::new(Scalar::new(LargeStringArray::from(vec!["a\n"]))),
            ),
            (
                column("flag"),
                Constant::Bool(true),
                Box::new(Scalar::new(BooleanArray::from(vec![true]))),
            ),
        ];
        let mask = |c: usize, op: Comparison, k: &dyn Datum| -> BooleanArray {
            let v = all.column(c);
            let m = match op {
                Comparison::Eq => cmp::eq(v, k),
                Comparison::NotEq => cmp::neq(v, k),
                Comparison::Lt => cmp::lt(v, k),
                Comparison::LtEq => cmp::lt_eq(v, k),
                Comparison::Gt => cmp::gt(v, k),
                Comparison::GtEq => cmp::gt_eq(v, k),
            };
            // A NULL comparison fails the row, as in a WHERE clause.
            arrow::compute::prep_null_mask_filter(&m.unwrap())
        };
        let mut checked = 0;
        for (i, (c, value, k)) in constants.iter().enumerate() {
            for op in ops {
                // Each term alone, and together with the next constant's under `>=`.
                let (c2, value2, k2) = &constants[(i + 1) % constants.len()];
                for pair in [false, true] {
                    let mut terms = vec![Term {
                        column: *c,
                        op,
                        value: value.clone(),
                    }];
                    let mut expected = mask(*c, op, k.as_ref());
                    if pair {
                        terms.push(Term {
                            column: *c2,
                            op: Comparison::GtEq,
                            value: value2.clone(),
                        });
                        expected = arrow::compute::and(&expected, &mask(*c2, Comparison::GtEq, k2.as_ref())).unwrap();
                    }
                    let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
                    flat.apply_filter(&RowFilter {
                        terms: terms.clone(),
                        complete: true,
                        read_after: Vec::new(),
                    });
                    let got = flat
                        .decode(&lines)
                        .unwrap_or_else(|| panic!("declined under {terms:?}"));
                    let want: Vec<usize> = (0..lines.len()).filter(|&r| expected.value(r)).collect();
                    assert_eq!(got.kept.as_deref(), Some(want.as_slice()), "lines kept under {terms:?}");
                    assert_eq!(
                        got.batch,
                        arrow::compute::filter_record_batch(&all, &expected).unwrap(),
                        "rows kept under {terms:?}"
                    );
                    checked += want.len();
                }
            }
        }
        assert!(
            checked > 10_000,
            "the filters keep some rows and drop others ({checked} kept in all)"
        );

        // A term the fast path cannot bind (here a timestamp) leaves every record in.
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        let terms = vec![
            Term {
                column: column("amount"),
                op: Comparison::Gt,
                value: Constant::Float(0.0),
            },
            Term {
                column: column("ts"),
                op: Comparison::Gt,
                value: Constant::Int(0),
            },
        ];
        flat.apply_filter(&RowFilter {
            terms,
            complete: true,
            read_after: Vec::new(),
        });
        let got = flat.decode(&lines).unwrap();
        assert_eq!((got.kept, got.batch), (None, all.clone()));
    }

    /// A record the filter drops is still checked: a bad value in it declines the
    /// chunk, so arrow-json reports it as it would without the filter.
    #[test]
    fn a_filtered_out_record_with_a_bad_value_still_declines_the_chunk() {
        let schema = schema();
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        flat.apply_filter(&RowFilter {
            terms: vec![crate::api::Term {
                column: 4,
                op: Comparison::Gt,
                value: Constant::Float(0.0),
            }],
            complete: true,
            read_after: Vec::new(),
        });
        let good: &[u8] = br#"{"id":1,"amount":5}"#;
        assert!(
            flat.decode(&[good, br#"{"id":2,"amount":-1,"small":1000}"#, good])
                .is_none()
        );
        assert!(
            flat.decode(&[good, br#"{"id":2,"amount":-1,"name":7}"#, good])
                .is_none()
        );
        let ok = flat
            .decode(&[good, br#"{"id":2,"amount":-1,"name":"x"}"#, good])
            .unwrap();
        assert_eq!(ok.kept, Some(vec![0, 2]));
        assert_eq!(ok.batch.num_rows(), 2);
    }

    /// A column only the whole filter reads is checked but not built; with part of
    /// the filter, or when the pipeline reads it afterwards, it is built.
    #[test]
    fn a_column_only_the_whole_filter_reads_is_not_built() {
        let schema = schema();
        let term = crate::api::Term {
            column: 4,
            op: Comparison::Gt,
            value: Constant::Float(0.0),
        };
        let mut only_the_filter_reads_amount = vec![true; schema.fields().len()];
        only_the_filter_reads_amount[4] = false;
        let lines: [&[u8]; 3] = [
            br#"{"id":1,"amount":5}"#,
            br#"{"id":2,"amount":-1}"#,
            br#"{"id":3,"amount":2.5}"#,
        ];
        let amounts = |complete: bool, read_after: Vec<bool>| {
            let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
            flat.apply_filter(&RowFilter {
                terms: vec![term.clone()],
                complete,
                read_after,
            });
            let got = flat.decode(&lines).unwrap();
            assert_eq!(got.kept, Some(vec![0, 2]));
            let ids: Vec<i64> = got
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .values()
                .to_vec();
            assert_eq!(ids, vec![1, 3]);
            let a = got
                .batch
                .column(4)
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap()
                .clone();
            a.iter().collect::<Vec<_>>()
        };
        assert_eq!(amounts(true, only_the_filter_reads_amount.clone()), vec![None, None]);
        assert_eq!(
            amounts(false, only_the_filter_reads_amount.clone()),
            vec![Some(5.0), Some(2.5)]
        );
        assert_eq!(amounts(true, Vec::new()), vec![Some(5.0), Some(2.5)]);
        // A bad value in the unbuilt column still declines the chunk.
        let mut flat = FlatJson::new(Arc::clone(&schema)).unwrap();
        flat.apply_filter(&RowFilter {
            terms: vec![term],
            complete: true,
            read_after: only_the_filter_reads_amount,
        });
        assert!(flat.decode(&[lines[0], br#"{"id":2,"amount":"x"}"#]).is_none());
    }
}
