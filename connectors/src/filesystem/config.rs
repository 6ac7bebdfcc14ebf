//! Filesystem sink options.

use std::time::Duration;

use arrow::datatypes::SchemaRef;

use super::{
    FORMAT, PARQUET_COMPRESSION, PARQUET_DICTIONARY, PARQUET_ROW_GROUP_ROWS, PARTITION_BY, PATH, ROLLOVER_BYTES, ROLLOVER_INTERVAL,
    ROLLOVER_ROWS,
};
use crate::api::{ConnectorError, Options, Result};
use crate::formats::FileFormat;
use crate::formats::encode::{ParquetOptions, parse_compression};

#[derive(Debug, Clone)]
pub struct FilesystemSinkConfig {
    /// Local folder (a `file://` prefix is removed).
    pub path: String,
    pub format: FileFormat,
    /// Indices of the output columns that name partition folders.
    pub partition_by: Vec<usize>,
    pub rollover_rows: u64,
    pub rollover_bytes: u64,
    pub rollover_interval: Duration,
    pub parquet: ParquetOptions,
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef) -> Result<FilesystemSinkConfig> {
    let raw = opts.pull_required_str(&PATH)?;
    let path = match raw.split_once("://") {
        None => raw.clone(),
        Some(("file", rest)) => rest.to_string(),
        Some((scheme, _)) => {
            return Err(ConnectorError::option(
                PATH.key,
                format!("scheme '{scheme}://' is not supported yet; use a local path or file://"),
            ));
        }
    };
    if path.is_empty() {
        return Err(ConnectorError::option(PATH.key, "must not be empty"));
    }
    let format: FileFormat = opts.pull_enum(&FORMAT)?.unwrap_or("parquet").parse().map_err(|e: String| ConnectorError::option(FORMAT.key, e))?;
    let mut partition_by = Vec::new();
    for col in opts.pull_list(&PARTITION_BY)?.unwrap_or_default() {
        let idx = schema.index_of(&col).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            ConnectorError::option(PARTITION_BY.key, format!("'{col}' is not an output column (output columns: {})", names.join(", ")))
        })?;
        if partition_by.contains(&idx) {
            return Err(ConnectorError::option(PARTITION_BY.key, format!("'{col}' is listed twice")));
        }
        partition_by.push(idx);
    }
    if !partition_by.is_empty() && partition_by.len() == schema.fields().len() {
        return Err(ConnectorError::option(PARTITION_BY.key, "would leave no columns inside the files"));
    }
    let rollover_rows = opts.pull_u64(&ROLLOVER_ROWS)?.unwrap_or(1_000_000);
    let rollover_bytes = opts.pull_bytes(&ROLLOVER_BYTES)?.unwrap_or(128 * 1024 * 1024);
    let rollover_interval = opts.pull_duration(&ROLLOVER_INTERVAL)?.unwrap_or(Duration::from_secs(300));
    for (key, zero) in [(ROLLOVER_ROWS.key, rollover_rows == 0), (ROLLOVER_BYTES.key, rollover_bytes == 0), (ROLLOVER_INTERVAL.key, rollover_interval.is_zero())] {
        if zero {
            return Err(ConnectorError::option(key, "must be greater than zero"));
        }
    }
    let mut parquet = ParquetOptions::default();
    if let Some(c) = opts.pull_str(&PARQUET_COMPRESSION)? {
        parquet.compression = parse_compression(&c).map_err(|e| ConnectorError::option(PARQUET_COMPRESSION.key, format!("{e} (got '{c}')")))?;
    }
    if let Some(n) = opts.pull_u64(&PARQUET_ROW_GROUP_ROWS)? {
        if n == 0 {
            return Err(ConnectorError::option(PARQUET_ROW_GROUP_ROWS.key, "must be greater than zero"));
        }
        parquet.row_group_rows = n as usize;
    }
    if let Some(d) = opts.pull_bool(&PARQUET_DICTIONARY)? {
        parquet.dictionary = d;
    }
    Ok(FilesystemSinkConfig { path, format, partition_by, rollover_rows, rollover_bytes, rollover_interval, parquet })
}
