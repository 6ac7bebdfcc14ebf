//! File source options.

use std::time::Duration;

use arrow::datatypes::SchemaRef;

use super::{CSV_DELIMITER, CSV_HEADER, CSV_QUOTE, FORMAT, PATH, SCAN_INTERVAL};
use crate::api::{ConnectorError, Options, Result};
use crate::formats::LineFormat;
use crate::formats::decode::CsvOptions;

#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    /// File, folder or glob (a `file://` prefix is accepted and removed).
    pub path: String,
    pub format: LineFormat,
    /// CSV only: skip the first line of every file.
    pub csv_header: bool,
    pub csv: CsvOptions,
    /// How often an unbounded source re-lists files.
    pub scan_interval: Duration,
}

pub(crate) fn one_byte(key: &str, v: &str) -> Result<u8> {
    let b = v.as_bytes();
    if b.len() == 1 {
        Ok(b[0])
    } else if v == "\\t" {
        Ok(b'\t')
    } else {
        Err(ConnectorError::option(
            key,
            format!("must be exactly one character (got '{v}')"),
        ))
    }
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef) -> Result<FileSourceConfig> {
    let path = opts.pull_required_str(&PATH)?;
    let path = path.strip_prefix("file://").unwrap_or(&path).to_string();
    if path.is_empty() {
        return Err(ConnectorError::option(PATH.key, "must not be empty"));
    }
    let format = match opts.pull_enum(&FORMAT)?.unwrap_or("json") {
        "csv" => LineFormat::Csv,
        "text" => {
            if schema.fields().len() != 1 || !matches!(schema.field(0).data_type(), arrow::datatypes::DataType::Utf8) {
                return Err(ConnectorError::option(
                    FORMAT.key,
                    "format 'text' needs exactly one TEXT column (each line is its value)",
                ));
            }
            LineFormat::Text
        }
        _ => LineFormat::Json,
    };
    let csv_header = opts.pull_bool(&CSV_HEADER)?.unwrap_or(true);
    let delimiter = one_byte(
        CSV_DELIMITER.key,
        &opts.pull_str(&CSV_DELIMITER)?.unwrap_or_else(|| ",".into()),
    )?;
    let quote = one_byte(
        CSV_QUOTE.key,
        &opts.pull_str(&CSV_QUOTE)?.unwrap_or_else(|| "\"".into()),
    )?;
    let scan_interval = opts.pull_duration(&SCAN_INTERVAL)?.unwrap_or(Duration::from_secs(1));
    Ok(FileSourceConfig {
        path,
        format,
        csv_header,
        csv: CsvOptions { delimiter, quote },
        scan_interval,
    })
}

/// How the sink writes each record as a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFormat {
    /// One JSON object per line.
    Json,
    /// The one text or bytes column as it is (Kafka Connect's FileStreamSink with
    /// StringConverter).
    Text,
}

/// File sink options: the one file to append to.
#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub path: String,
    pub format: AppendFormat,
}

pub(crate) fn parse_sink(opts: &mut Options, schema: &SchemaRef) -> Result<FileSinkConfig> {
    let path = opts.pull_required_str(&super::SINK_PATH)?;
    let path = path.strip_prefix("file://").unwrap_or(&path).to_string();
    if path.ends_with('/') || std::path::Path::new(&path).is_dir() {
        return Err(ConnectorError::option(
            "path",
            format!(
                "'{path}' is a folder; the file sink appends to one file (the filesystem sink writes folders of files)"
            ),
        ));
    }
    let format = match opts.pull_enum(&super::SINK_FORMAT)?.unwrap_or("json") {
        "text" => {
            let fields = schema.fields();
            let one_text = fields.len() == 1
                && matches!(
                    fields[0].data_type(),
                    arrow::datatypes::DataType::Utf8
                        | arrow::datatypes::DataType::LargeUtf8
                        | arrow::datatypes::DataType::Binary
                );
            if !one_text {
                return Err(ConnectorError::option(
                    "format",
                    format!(
                        "'text' writes one text or bytes column as each line; the SELECT gives {} column(s): {}",
                        fields.len(),
                        fields
                            .iter()
                            .map(|f| format!("{} {}", f.name(), f.data_type()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            AppendFormat::Text
        }
        _ => AppendFormat::Json,
    };
    Ok(FileSinkConfig { path, format })
}
