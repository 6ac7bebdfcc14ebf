//! Filesystem sink options.

use std::time::Duration;

use arrow::datatypes::SchemaRef;

use super::store::{self, StoreSpec};
use super::{
    DELIVERY, FORMAT, MEMORY_MAX, PARQUET_BLOOM, PARQUET_COMPRESSION, PARQUET_DELTA, PARQUET_DICTIONARY,
    PARQUET_ROW_GROUP_ROWS, PARTITION_BY, PATH, ROLLOVER_BYTES, ROLLOVER_INACTIVITY, ROLLOVER_INTERVAL, ROLLOVER_ROWS,
};
use crate::api::{ConnectorError, Options, Result};
use crate::formats::FileFormat;
use crate::formats::encode::{ParquetOptions, parse_compression};

#[derive(Debug, Clone)]
pub struct FilesystemSinkConfig {
    pub store: StoreSpec,
    pub format: FileFormat,
    /// Indices of the output columns that name partition folders.
    pub partition_by: Vec<usize>,
    pub rollover_rows: u64,
    pub rollover_bytes: u64,
    /// Wall-clock age at which a file is closed.
    pub rollover_interval: Duration,
    /// Wall-clock idle time after which a file is closed.
    pub rollover_inactivity: Option<Duration>,
    /// Memory for all open files together.
    pub memory_max: u64,
    pub exactly_once: bool,
    pub parquet: ParquetOptions,
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef) -> Result<FilesystemSinkConfig> {
    let raw = opts.pull_required_str(&PATH)?;
    let store = store::parse(PATH.key, &raw, opts)?;
    let format: FileFormat = opts
        .pull_enum(&FORMAT)?
        .unwrap_or("parquet")
        .parse()
        .map_err(|e: String| ConnectorError::option(FORMAT.key, e))?;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut partition_by = Vec::new();
    for col in opts.pull_list(&PARTITION_BY)?.unwrap_or_default() {
        let idx = schema.index_of(&col).map_err(|_| {
            ConnectorError::option(
                PARTITION_BY.key,
                format!("'{col}' is not an output column (output columns: {})", names.join(", ")),
            )
        })?;
        if partition_by.contains(&idx) {
            return Err(ConnectorError::option(
                PARTITION_BY.key,
                format!("'{col}' is listed twice"),
            ));
        }
        partition_by.push(idx);
    }
    if !partition_by.is_empty() && partition_by.len() == schema.fields().len() {
        return Err(ConnectorError::option(
            PARTITION_BY.key,
            "would leave no columns inside the files",
        ));
    }
    let rollover_rows = opts.pull_u64(&ROLLOVER_ROWS)?.unwrap_or(1_000_000);
    let rollover_bytes = opts.pull_bytes(&ROLLOVER_BYTES)?.unwrap_or(128 * 1024 * 1024);
    let rollover_interval = opts
        .pull_duration(&ROLLOVER_INTERVAL)?
        .unwrap_or(Duration::from_secs(300));
    let rollover_inactivity = opts.pull_duration(&ROLLOVER_INACTIVITY)?;
    let memory_max = opts.pull_bytes(&MEMORY_MAX)?.unwrap_or(256 * 1024 * 1024);
    for (key, zero) in [
        (ROLLOVER_ROWS.key, rollover_rows == 0),
        (ROLLOVER_BYTES.key, rollover_bytes == 0),
        (ROLLOVER_INTERVAL.key, rollover_interval.is_zero()),
        (
            ROLLOVER_INACTIVITY.key,
            rollover_inactivity.is_some_and(|d| d.is_zero()),
        ),
    ] {
        if zero {
            return Err(ConnectorError::option(key, "must be greater than zero"));
        }
    }
    if memory_max < 1024 * 1024 {
        return Err(ConnectorError::option(
            MEMORY_MAX.key,
            format!("must be at least 1MiB (got {memory_max} bytes)"),
        ));
    }
    let exactly_once = opts.pull_enum(&DELIVERY)?.unwrap_or("at-least-once") == "exactly-once";
    let mut parquet = ParquetOptions::default();
    if format != FileFormat::Parquet
        && let Some(spec) = [
            &PARQUET_COMPRESSION,
            &PARQUET_ROW_GROUP_ROWS,
            &PARQUET_DICTIONARY,
            &PARQUET_DELTA,
            &PARQUET_BLOOM,
        ]
        .into_iter()
        .find(|s| opts.contains(s.key))
    {
        return Err(ConnectorError::option(
            spec.key,
            format!("applies only to format = 'parquet' (format is '{}')", format.name()),
        ));
    }
    if let Some(c) = opts.pull_str(&PARQUET_COMPRESSION)? {
        parquet.compression = parse_compression(&c)
            .map_err(|e| ConnectorError::option(PARQUET_COMPRESSION.key, format!("{e} (got '{c}')")))?;
    }
    if let Some(n) = opts.pull_u64(&PARQUET_ROW_GROUP_ROWS)? {
        if n == 0 {
            return Err(ConnectorError::option(
                PARQUET_ROW_GROUP_ROWS.key,
                "must be greater than zero",
            ));
        }
        parquet.row_group_rows = n as usize;
    }
    if let Some(d) = opts.pull_bool(&PARQUET_DICTIONARY)? {
        parquet.dictionary = d;
    }
    if let Some(d) = opts.pull_bool(&PARQUET_DELTA)? {
        parquet.delta = d;
    }
    for col in opts.pull_list(&PARQUET_BLOOM)?.unwrap_or_default() {
        match schema.index_of(&col) {
            Ok(i) if partition_by.contains(&i) => {
                return Err(ConnectorError::option(
                    PARQUET_BLOOM.key,
                    format!("'{col}' is a partition.by column, so it is not stored inside the files"),
                ));
            }
            Ok(_) => parquet.bloom_filter_columns.push(col),
            Err(_) => {
                return Err(ConnectorError::option(
                    PARQUET_BLOOM.key,
                    format!("'{col}' is not an output column (output columns: {})", names.join(", ")),
                ));
            }
        }
    }
    Ok(FilesystemSinkConfig {
        store,
        format,
        partition_by,
        rollover_rows,
        rollover_bytes,
        rollover_interval,
        rollover_inactivity,
        memory_max,
        exactly_once,
        parquet,
    })
}
