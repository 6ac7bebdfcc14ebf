//! Bytes ⇄ Arrow, shared by every connector that reads or writes bytes.
//!
//! [`decode::LineDecoder`] turns newline-delimited JSON or CSV into batches of the
//! declared schema with per-record error isolation; [`encode::Encoder`] turns
//! batches into Parquet, JSON lines or CSV bytes ready to upload; [`record`]
//! maps one message payload to one record and back (JSON, Kafka Connect's JSON
//! envelope, CSV, raw bytes, Debezium JSON).

pub mod avro;
pub mod decode;
pub mod encode;
mod flat_json;
pub mod record;

use std::str::FromStr;

/// Text formats a source can decode line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    Json,
    Csv,
    /// The line itself, as the value of the one TEXT column (Kafka Connect's FileStreamSource).
    Text,
}

/// File formats a sink can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Json,
    Csv,
}

impl FileFormat {
    /// The name used in `format = '…'`.
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
        }
    }
    pub fn extension(&self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Json => "jsonl",
            FileFormat::Csv => "csv",
        }
    }
}

impl FromStr for FileFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "parquet" => Ok(Self::Parquet),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            other => Err(format!("unknown format '{other}'")),
        }
    }
}
