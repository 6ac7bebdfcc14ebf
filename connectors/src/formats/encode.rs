//! Arrow into Parquet, JSON lines or CSV bytes.
//!
//! Every encoder writes into an in-memory buffer that the caller drains with
//! [`Encoder::take_bytes`] and uploads as it goes, so a file's memory is one row
//! group (Parquet) or one batch (JSON, CSV), never the whole file.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
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
    /// Columns that get a split-block bloom filter per row group.
    pub bloom_filter_columns: Vec<String>,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            compression: Compression::ZSTD(ZstdLevel::try_new(1).expect("zstd level 1 is valid")),
            row_group_rows: 1024 * 1024,
            dictionary: true,
            bloom_filter_columns: Vec::new(),
        }
    }
}

/// Parses `zstd`, `zstd(3)`, `snappy`, `lz4`, `none`.
pub fn parse_compression(v: &str) -> std::result::Result<Compression, String> {
    let v = v.trim().to_ascii_lowercase();
    let (name, level) = match v.split_once('(') {
        Some((n, rest)) => (n.trim().to_string(), Some(rest.trim_end_matches(')').trim().to_string())),
        None => (v.clone(), None),
    };
    match (name.as_str(), level) {
        ("zstd", None) => Ok(Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| e.to_string())?)),
        ("zstd", Some(l)) => {
            let l: i32 = l.parse().map_err(|_| format!("zstd level '{l}' is not a number"))?;
            Ok(Compression::ZSTD(ZstdLevel::try_new(l).map_err(|e| format!("zstd level {l}: {e}"))?))
        }
        ("snappy", None) => Ok(Compression::SNAPPY),
        ("lz4", None) => Ok(Compression::LZ4_RAW),
        ("none" | "uncompressed", None) => Ok(Compression::UNCOMPRESSED),
        _ => Err("expected zstd, zstd(<level 1-22>), snappy, lz4 or none".to_string()),
    }
}

/// Encodes batches into one file's bytes.
pub enum Encoder {
    Parquet(Box<ArrowWriter<Vec<u8>>>),
    Json(arrow::json::LineDelimitedWriter<Vec<u8>>),
    /// CSV: header once, then each batch appended to `out`.
    Csv { header_written: bool, out: Vec<u8> },
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
    pub fn new(format: FileFormat, schema: &SchemaRef, parquet: &ParquetOptions) -> Result<Self> {
        Ok(match format {
            FileFormat::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(parquet.compression)
                    .set_max_row_group_row_count(Some(parquet.row_group_rows))
                    .set_dictionary_enabled(parquet.dictionary);
                for col in &parquet.bloom_filter_columns {
                    props = props.set_column_bloom_filter_enabled(ColumnPath::from(col.as_str()), true);
                }
                let props = props.build();
                let w = ArrowWriter::try_new(Vec::with_capacity(1 << 20), Arc::clone(schema), Some(props))
                    .map_err(|e| ConnectorError::Parquet { context: "creating Parquet writer".into(), source: e })?;
                Encoder::Parquet(Box::new(w))
            }
            FileFormat::Json => Encoder::Json(arrow::json::WriterBuilder::new().with_explicit_nulls(true).build(Vec::with_capacity(1 << 16))),
            FileFormat::Csv => Encoder::Csv { header_written: false, out: Vec::with_capacity(1 << 16) },
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Encoder::Parquet(w) => w.write(batch).map_err(|e| ConnectorError::Parquet { context: "encoding Parquet".into(), source: e }),
            Encoder::Json(w) => w.write(batch).map_err(|e| ConnectorError::arrow("encoding JSON", e)),
            Encoder::Csv { header_written, out } => {
                let mut w = arrow::csv::WriterBuilder::new().with_header(!*header_written).build(std::mem::take(out));
                w.write(batch).map_err(|e| ConnectorError::arrow("encoding CSV", e))?;
                *out = w.into_inner();
                *header_written = true;
                Ok(())
            }
        }
    }

    /// Bytes encoded so far and not yet taken.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        match self {
            Encoder::Parquet(w) => std::mem::take(w.inner_mut()),
            Encoder::Json(w) => std::mem::take(w.get_mut()),
            Encoder::Csv { out, .. } => std::mem::take(out),
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
            Encoder::Parquet(w) => w.memory_size() + w.inner().len(),
            Encoder::Json(w) => w.get_ref().len(),
            Encoder::Csv { out, .. } => out.len(),
        }
    }

    /// Writes the file's footer.
    pub fn finish(&mut self) -> Result<()> {
        match self {
            Encoder::Parquet(w) => {
                w.finish().map_err(|e| ConnectorError::Parquet { context: "finishing Parquet file".into(), source: e })?;
            }
            Encoder::Json(w) => w.finish().map_err(|e| ConnectorError::arrow("finishing JSON file", e))?,
            Encoder::Csv { .. } => {}
        }
        Ok(())
    }
}
