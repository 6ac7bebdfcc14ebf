//! `connector = 'filesystem'`: Parquet, JSON-lines or CSV files through `object_store`.
//!
//! Rows are split by `partition.by` into Hive-style `col=value/` folders; each
//! partition has at most one open file, streamed to the store as it is encoded
//! and rolled by rows, bytes or age. A file appears under its final name only
//! when complete (object_store's multipart/rename protocol), and the sink reports
//! a batch durable only once every file holding its rows is complete.

mod config;
mod sink;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Unsupported};

pub use config::FilesystemSinkConfig;

pub(crate) const PATH: OptionSpec = OptionSpec::new(
    "path",
    OptionKind::String,
    "Folder to write into: a local path or a file:// URL.",
)
.required();
pub(crate) const FORMAT: OptionSpec =
    OptionSpec::new("format", OptionKind::Enum(&["parquet", "json", "csv"]), "File format: Parquet, JSON lines or CSV with a header.").default("parquet");
pub(crate) const PARTITION_BY: OptionSpec = OptionSpec::new(
    "partition.by",
    OptionKind::List,
    "Output columns whose values name Hive-style 'col=value/' folders; they are not repeated inside the files.",
);
pub(crate) const ROLLOVER_ROWS: OptionSpec =
    OptionSpec::new("rollover.rows", OptionKind::Integer, "Close a file after this many rows.").default("1000000");
pub(crate) const ROLLOVER_BYTES: OptionSpec =
    OptionSpec::new("rollover.bytes", OptionKind::Bytes, "Close a file once about this many bytes are written.").default("128MiB");
pub(crate) const ROLLOVER_INTERVAL: OptionSpec = OptionSpec::new(
    "rollover.interval",
    OptionKind::Duration,
    "Close a file this long (wall clock) after it was opened, even if no more rows arrive.",
)
.default("5 minutes");
pub(crate) const PARQUET_COMPRESSION: OptionSpec = OptionSpec::new(
    "parquet.compression",
    OptionKind::String,
    "Parquet codec: zstd, zstd(<level>), snappy, lz4 or none.",
)
.default("zstd(1)");
pub(crate) const PARQUET_ROW_GROUP_ROWS: OptionSpec =
    OptionSpec::new("parquet.row.group.rows", OptionKind::Integer, "Rows per Parquet row group (bounds the sink's memory per open file).")
        .default("1048576");
pub(crate) const PARQUET_DICTIONARY: OptionSpec =
    OptionSpec::new("parquet.dictionary", OptionKind::Bool, "Dictionary-encode Parquet columns.").default("true");

const SINK_OPTIONS: &[OptionSpec] = &[
    PATH,
    FORMAT,
    PARTITION_BY,
    ROLLOVER_ROWS,
    ROLLOVER_BYTES,
    ROLLOVER_INTERVAL,
    PARQUET_COMPRESSION,
    PARQUET_ROW_GROUP_ROWS,
    PARQUET_DICTIONARY,
];

#[derive(Debug, Clone, Copy)]
pub struct FilesystemConnector;

#[async_trait]
impl Connector for FilesystemConnector {
    type SourceConfig = Unsupported;
    type SinkConfig = FilesystemSinkConfig;

    fn name(&self) -> &'static str {
        "filesystem"
    }
    fn description(&self) -> &'static str {
        "Writes Parquet (zstd), JSON-lines or CSV files, partitioned into col=value/ folders and rolled by rows, bytes or time."
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS)
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<FilesystemSinkConfig> {
        config::parse(opts, schema)
    }
    async fn build_sink(&self, config: &FilesystemSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::FilesystemSink::new(config.clone(), ctx)?))
    }
}
