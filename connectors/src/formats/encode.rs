//! Arrow into Parquet, JSON lines or CSV bytes.
//!
//! Every encoder writes into an in-memory buffer that the caller drains with
//! [`Encoder::take_bytes`] and uploads as it goes, so a file's memory is one row
//! group (Parquet) or one batch (JSON, CSV), never the whole file.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::FileFormat;
use crate::api::{ConnectorError, Result};

/// Parquet writer settings.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub compression: Compression,
    pub row_group_rows: usize,
    pub dictionary: bool,
    /// Columns without a dictionary are written with a delta encoding instead of
    /// PLAIN where their type has one (see [`delta_encoding`]).
    pub delta: bool,
    /// Columns that get a split-block bloom filter per row group.
    pub bloom_filter_columns: Vec<String>,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            compression: Compression::ZSTD(ZstdLevel::try_new(1).expect("zstd level 1 is valid")),
            row_group_rows: 1024 * 1024,
            dictionary: true,
            delta: true,
            bloom_filter_columns: Vec::new(),
        }
    }
}

/// Parses `zstd`, `zstd(3)`, `snappy`, `lz4`, `none`.
pub fn parse_compression(v: &str) -> std::result::Result<Compression, String> {
    let v = v.trim().to_ascii_lowercase();
    let (name, level) = match v.split_once('(') {
        Some((n, rest)) => (
            n.trim().to_string(),
            Some(rest.trim_end_matches(')').trim().to_string()),
        ),
        None => (v.clone(), None),
    };
    match (name.as_str(), level) {
        ("zstd", None) => Ok(Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| e.to_string())?)),
        ("zstd", Some(l)) => {
            let l: i32 = l.parse().map_err(|_| format!("zstd level '{l}' is not a number"))?;
            Ok(Compression::ZSTD(
                ZstdLevel::try_new(l).map_err(|e| format!("zstd level {l}: {e}"))?,
            ))
        }
        ("snappy", None) => Ok(Compression::SNAPPY),
        ("lz4", None) => Ok(Compression::LZ4_RAW),
        ("none" | "uncompressed", None) => Ok(Compression::UNCOMPRESSED),
        _ => Err("expected zstd, zstd(<level 1-22>), snappy, lz4 or none".to_string()),
    }
}

/// Parquet's output as the pieces it was written in. A row group reaches the writer
/// when it is flushed, one write per page of every column. Each large write is kept
/// as an exactly sized piece instead of being appended to one growing buffer: that
/// buffer would be copied whole at each doubling and its fresh pages faulted in, for
/// every row group (measured: a fifth of the benchmark's page faults).
#[derive(Debug, Default)]
pub struct Pieces {
    pieces: Vec<Bytes>,
    /// Small writes (headers, page headers, the footer), gathered until the next
    /// large write or take.
    small: Vec<u8>,
    len: usize,
}

impl Pieces {
    /// Writes at least this long become a piece of their own.
    const LARGE: usize = 64 * 1024;

    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            self.pieces.push(Bytes::from(std::mem::take(&mut self.small)));
        }
    }

    /// Everything written since the last take, in order.
    fn take(&mut self) -> Vec<Bytes> {
        self.seal_small();
        self.len = 0;
        std::mem::take(&mut self.pieces)
    }
}

impl Write for Pieces {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() >= Self::LARGE {
            self.seal_small();
            self.pieces.push(Bytes::copy_from_slice(buf));
        } else {
            self.small.extend_from_slice(buf);
        }
        self.len += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Rows a first batch needs before [`nearly_distinct`] judges a column by it.
const DISTINCT_SAMPLE_MIN: usize = 4096;

/// Whether `column` is (a top-level primitive or string column) at least 95% distinct
/// over the first batch of a file, which must have [`DISTINCT_SAMPLE_MIN`] rows.
///
/// Such a column is written without a dictionary. A batch of n rows drawn from a
/// column of d distinct values shows about d·(1 − e^(−n/d)) of them; 95% of n means
/// d ≈ 10·n or more. A dictionary of that many values saves little over plain
/// encoding under zstd, costs a hash of every value, and often outgrows Parquet's
/// 1 MiB dictionary page and falls back to plain within the row group anyway (16,384
/// rows of 8-byte ids or timestamps: ≥ 160,000 values, 1.3 MB). Measured on the
/// benchmark's records (ids, customer names, timestamps nearly unique): 8–9% less
/// CPU for the whole pipeline, and smaller files. Low-cardinality columns (countries,
/// statuses, prices with few distinct values) keep their dictionary.
fn nearly_distinct(column: &dyn Array) -> bool {
    let rows = column.len() - column.null_count();
    if column.len() < DISTINCT_SAMPLE_MIN || rows == 0 {
        return false;
    }
    let distinct = match column.data_type() {
        DataType::Utf8 => distinct_values(column.as_string::<i32>().iter()),
        DataType::LargeUtf8 => distinct_values(column.as_string::<i64>().iter()),
        DataType::Binary => distinct_values(column.as_binary::<i32>().iter()),
        DataType::LargeBinary => distinct_values(column.as_binary::<i64>().iter()),
        t if t.is_primitive() => match t.primitive_width() {
            Some(width @ (4 | 8)) => {
                let data = column.to_data();
                let values = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + data.len()) * width];
                let nulls = data.nulls();
                distinct_values(
                    values
                        .chunks_exact(width)
                        .enumerate()
                        .map(|(i, v)| nulls.is_none_or(|n| n.is_valid(i)).then_some(v)),
                )
            }
            _ => return false,
        },
        _ => return false,
    };
    distinct * 100 >= rows * 95
}

/// The delta encoding for a top-level column of this type written without a
/// dictionary, if Parquet has one for its physical type: DELTA_BINARY_PACKED for
/// INT32 and INT64 (integers, dates, times, timestamps), DELTA_BYTE_ARRAY for
/// BYTE_ARRAY (text, binary).
///
/// Such columns are the near-unique ones (ids, timestamps, names). PLAIN stores 4 or
/// 8 bytes an integer and a 4-byte length before every string; delta encoding stores
/// bit-packed differences from the previous integer, and each string as the length
/// of the prefix it shares with the previous one plus the rest. Sequential ids then
/// take almost nothing, a month of timestamps ~5 bytes, and zstd has far fewer bytes
/// to compress. Measured on the benchmark's records (ids and timestamps, then
/// customer names too): 3.2% and another 2.6% less time for the whole JSON → Parquet
/// pipeline, and a file of 13.1 → 11.0 MB. Current readers decode both (Spark's
/// vectorized reader since 3.3, Trino, DuckDB, pyarrow, polars); `parquet.delta =
/// false` writes PLAIN for those that do not.
fn delta_encoding(data_type: &DataType) -> Option<Encoding> {
    match data_type {
        t if t.is_integer() => Some(Encoding::DELTA_BINARY_PACKED),
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) | DataType::Timestamp(..) => {
            Some(Encoding::DELTA_BINARY_PACKED)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            Some(Encoding::DELTA_BYTE_ARRAY)
        }
        _ => None,
    }
}

fn distinct_values<'a, T: std::hash::Hash + Eq + ?Sized + 'a>(values: impl Iterator<Item = Option<&'a T>>) -> usize {
    values.flatten().collect::<std::collections::HashSet<_>>().len()
}

/// Encodes batches into one file's bytes.
pub enum Encoder {
    Parquet(Box<ArrowWriter<Pieces>>),
    Json(arrow::json::LineDelimitedWriter<Vec<u8>>),
    /// CSV: header once, then each batch appended to `out`.
    Csv {
        header_written: bool,
        out: Vec<u8>,
    },
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Parquet(_) => "Encoder::Parquet",
            Encoder::Json(_) => "Encoder::Json",
            Encoder::Csv { .. } => "Encoder::Csv",
        })
    }
}

impl Encoder {
    /// An encoder for one file; `first` is the file's first batch (Parquet decides from
    /// it which columns get a dictionary: see [`nearly_distinct`]).
    pub fn new(
        format: FileFormat,
        schema: &SchemaRef,
        parquet: &ParquetOptions,
        first: Option<&RecordBatch>,
    ) -> Result<Self> {
        Ok(match format {
            FileFormat::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(parquet.compression)
                    .set_max_row_group_row_count(Some(parquet.row_group_rows))
                    .set_dictionary_enabled(parquet.dictionary);
                // Top-level columns written without a dictionary: all when dictionaries
                // are off, else those the first batch shows nearly distinct.
                let mut plain: Vec<String> = Vec::new();
                if !parquet.dictionary {
                    plain.extend(schema.fields().iter().map(|f| f.name().clone()));
                } else if let Some(batch) = first {
                    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                        if nearly_distinct(column.as_ref()) {
                            props = props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
                            plain.push(field.name().clone());
                        }
                    }
                }
                if parquet.delta {
                    for field in schema.fields().iter().filter(|f| plain.contains(f.name())) {
                        if let Some(encoding) = delta_encoding(field.data_type()) {
                            props = props.set_column_encoding(ColumnPath::from(field.name().as_str()), encoding);
                        }
                    }
                }
                for col in &parquet.bloom_filter_columns {
                    props = props.set_column_bloom_filter_enabled(ColumnPath::from(col.as_str()), true);
                }
                let props = props.build();
                let w = ArrowWriter::try_new(Pieces::default(), Arc::clone(schema), Some(props)).map_err(|e| {
                    ConnectorError::Parquet {
                        context: "creating Parquet writer".into(),
                        source: e,
                    }
                })?;
                Encoder::Parquet(Box::new(w))
            }
            FileFormat::Json => Encoder::Json(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(Vec::with_capacity(1 << 16)),
            ),
            FileFormat::Csv => Encoder::Csv {
                header_written: false,
                out: Vec::with_capacity(1 << 16),
            },
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Encoder::Parquet(w) => w.write(batch).map_err(|e| ConnectorError::Parquet {
                context: "encoding Parquet".into(),
                source: e,
            }),
            Encoder::Json(w) => w.write(batch).map_err(|e| ConnectorError::arrow("encoding JSON", e)),
            Encoder::Csv { header_written, out } => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(!*header_written)
                    .build(std::mem::take(out));
                w.write(batch).map_err(|e| ConnectorError::arrow("encoding CSV", e))?;
                *out = w.into_inner();
                *header_written = true;
                Ok(())
            }
        }
    }

    /// Bytes encoded so far and not yet taken, in order, as one or more pieces.
    pub fn take_bytes(&mut self) -> Vec<Bytes> {
        let whole = |v: &mut Vec<u8>| {
            if v.is_empty() {
                Vec::new()
            } else {
                vec![Bytes::from(std::mem::take(v))]
            }
        };
        match self {
            Encoder::Parquet(w) => w.inner_mut().take(),
            Encoder::Json(w) => whole(w.get_mut()),
            Encoder::Csv { out, .. } => whole(out),
        }
    }

    /// Bytes held in memory that are not yet encoded output (Parquet's open row group).
    pub fn buffered_bytes(&self) -> usize {
        match self {
            Encoder::Parquet(w) => w.in_progress_size(),
            _ => 0,
        }
    }

    /// Memory the encoder holds: open row group, page buffers, dictionaries and
    /// encoded bytes not yet taken.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Encoder::Parquet(w) => w.memory_size() + w.inner().len,
            Encoder::Json(w) => w.get_ref().len(),
            Encoder::Csv { out, .. } => out.len(),
        }
    }

    /// Writes the file's footer.
    pub fn finish(&mut self) -> Result<()> {
        match self {
            Encoder::Parquet(w) => {
                w.finish().map_err(|e| ConnectorError::Parquet {
                    context: "finishing Parquet file".into(),
                    source: e,
                })?;
            }
            Encoder::Json(w) => w
                .finish()
                .map_err(|e| ConnectorError::arrow("finishing JSON file", e))?,
            Encoder::Csv { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("customer", DataType::Utf8, true),
        ]));
        let ids = (from..from + rows).collect::<Vec<_>>();
        let countries = ids
            .iter()
            .map(|i| (i % 7 != 0).then(|| ["DE", "FR", "NL"][(i % 3) as usize]))
            .collect::<StringArray>();
        let customers = ids
            .iter()
            .map(|i| Some(format!("cust_{:08}", i * 7919 % 100_000_000)))
            .collect::<StringArray>();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(countries),
                Arc::new(customers),
            ],
        )
        .unwrap()
    }

    #[test]
    fn nearly_distinct_columns_are_told_from_repeating_ones() {
        let b = batch(0, 5000);
        assert!(nearly_distinct(b.column(0).as_ref()), "unique ids");
        assert!(!nearly_distinct(b.column(1).as_ref()), "three countries");
        assert!(nearly_distinct(b.column(2).as_ref()), "unique customers");
        // Too few rows to judge: the dictionary stays.
        assert!(!nearly_distinct(batch(0, 100).column(0).as_ref()));
        // 2,000 distinct values in 5,000 rows repeat enough for a dictionary.
        let repeating = Int64Array::from((0..5000).map(|i| i % 2000).collect::<Vec<i64>>());
        assert!(!nearly_distinct(&repeating));
        // NULLs do not count as values; a sliced array is judged by its own rows.
        let sliced = Int64Array::from(
            (0..10_000)
                .map(|i| if i < 5000 { i % 3 } else { i })
                .collect::<Vec<i64>>(),
        )
        .slice(5000, 5000);
        assert!(nearly_distinct(&sliced));
        let mostly_null = Int64Array::from((0..5000).map(|i| (i % 10 == 0).then_some(i)).collect::<Vec<_>>());
        assert!(nearly_distinct(&mostly_null));
    }

    /// Two row groups written through `Pieces`, taken in several takes, read back
    /// whole; the unique columns are plain, the repeating one dictionary-encoded.
    #[test]
    fn parquet_pieces_read_back_in_order_with_dictionaries_where_values_repeat() {
        let first = batch(0, 30_000);
        let options = ParquetOptions {
            row_group_rows: 40_000,
            ..ParquetOptions::default()
        };
        let mut e = Encoder::new(FileFormat::Parquet, &first.schema(), &options, Some(&first)).unwrap();
        let mut file = Vec::new();
        let mut takes = 0;
        for b in [first.clone(), batch(30_000, 30_000)] {
            e.write(&b).unwrap();
            let pieces = e.take_bytes();
            takes += usize::from(!pieces.is_empty());
            file.extend(pieces.iter().flat_map(|p| p.iter().copied()));
        }
        e.finish().unwrap();
        file.extend(e.take_bytes().iter().flat_map(|p| p.iter().copied()));
        assert!(e.take_bytes().is_empty());
        assert_eq!(takes, 1, "the first row group is flushed by the second write");

        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
        let meta = reader.metadata().clone();
        assert_eq!(meta.num_row_groups(), 2);
        for rg in meta.row_groups() {
            let dict = |c: usize| rg.column(c).encodings().any(|e| e == Encoding::RLE_DICTIONARY);
            assert!(
                !dict(0) && dict(1) && !dict(2),
                "encodings of {:?}",
                rg.columns()
                    .iter()
                    .map(|c| c.encodings().collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            );
        }
        let read = reader
            .build()
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let read = arrow::compute::concat_batches(&first.schema(), &read).unwrap();
        assert_eq!(
            read,
            arrow::compute::concat_batches(&first.schema(), &[first, batch(30_000, 30_000)]).unwrap()
        );
    }

    /// Integer, timestamp and text columns without a dictionary are delta-encoded
    /// (all of them when dictionaries are off), doubles stay PLAIN, `parquet.delta =
    /// false` writes PLAIN, and every value reads back.
    #[test]
    fn columns_without_a_dictionary_are_delta_encoded() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int32, true),
            Field::new(
                "at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("amount", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
        ]));
        let rows = 6000i64;
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from((0..rows).map(|i| 1_000_000 + i).collect::<Vec<_>>())),
                Arc::new(arrow::array::Int32Array::from(
                    (0..rows)
                        .map(|i| (i % 5 != 0).then_some((i % 20) as i32))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(arrow::array::TimestampMicrosecondArray::from(
                    (0..rows)
                        .map(|i| (i % 9 != 0).then_some(1_717_200_000_000_000 + i * 7_919_000_003 % 2_592_000_000_000))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(arrow::array::Float64Array::from(
                    (0..rows).map(|i| i as f64 * 0.37).collect::<Vec<_>>(),
                )),
                Arc::new(
                    (0..rows)
                        .map(|i| (i % 11 != 0).then(|| format!("cust_{:08}", i * 7919 % 100_000_000)))
                        .collect::<StringArray>(),
                ),
                Arc::new(
                    (0..rows)
                        .map(|i| Some(["DE", "FR", "NL"][(i % 3) as usize]))
                        .collect::<StringArray>(),
                ),
            ],
        )
        .unwrap();
        let delta = |c: &parquet::file::metadata::ColumnChunkMetaData| {
            c.encodings()
                .any(|e| matches!(e, Encoding::DELTA_BINARY_PACKED | Encoding::DELTA_BYTE_ARRAY))
        };
        let dict =
            |c: &parquet::file::metadata::ColumnChunkMetaData| c.encodings().any(|e| e == Encoding::RLE_DICTIONARY);
        // (dictionary, delta) → per column (delta, dictionary)
        for (dictionary, on, expect) in [
            (
                true,
                true,
                [
                    (true, false),
                    (false, true),
                    (true, false),
                    (false, false),
                    (true, false),
                    (false, true),
                ],
            ),
            (
                true,
                false,
                [
                    (false, false),
                    (false, true),
                    (false, false),
                    (false, false),
                    (false, false),
                    (false, true),
                ],
            ),
            (
                false,
                true,
                [
                    (true, false),
                    (true, false),
                    (true, false),
                    (false, false),
                    (true, false),
                    (true, false),
                ],
            ),
        ] {
            let options = ParquetOptions {
                dictionary,
                delta: on,
                ..ParquetOptions::default()
            };
            let mut e = Encoder::new(FileFormat::Parquet, &schema, &options, Some(&b)).unwrap();
            e.write(&b).unwrap();
            e.write(&b.slice(100, 50)).unwrap();
            e.finish().unwrap();
            let file = e
                .take_bytes()
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>();
            let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
            let rg = reader.metadata().row_group(0).clone();
            let got = rg.columns().iter().map(|c| (delta(c), dict(c))).collect::<Vec<_>>();
            assert_eq!(got, expect, "dictionary: {dictionary}, delta: {on}");
            let read = reader
                .build()
                .unwrap()
                .collect::<std::result::Result<Vec<_>, _>>()
                .unwrap();
            assert_eq!(
                arrow::compute::concat_batches(&schema, &read).unwrap(),
                arrow::compute::concat_batches(&schema, &[b.clone(), b.slice(100, 50)]).unwrap()
            );
        }
    }

    #[test]
    fn dictionaries_stay_everywhere_without_a_first_batch_and_nowhere_when_off() {
        let b = batch(0, 5000);
        for (first, dictionary, expect) in [(None, true, true), (Some(&b), false, false)] {
            let options = ParquetOptions {
                dictionary,
                ..ParquetOptions::default()
            };
            let mut e = Encoder::new(FileFormat::Parquet, &b.schema(), &options, first).unwrap();
            e.write(&b).unwrap();
            e.finish().unwrap();
            let file = e
                .take_bytes()
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>();
            let meta = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
                .unwrap()
                .metadata()
                .clone();
            let dict = meta
                .row_group(0)
                .column(0)
                .encodings()
                .any(|e| e == Encoding::RLE_DICTIONARY);
            assert_eq!(
                dict,
                expect,
                "first batch given: {}, dictionary: {dictionary}",
                first.is_some()
            );
        }
    }
}
