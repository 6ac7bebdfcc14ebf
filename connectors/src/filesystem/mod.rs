//! `connector = 'filesystem'`: Parquet, JSON-lines or CSV files in a local folder or
//! an object store (S3, GCS, Azure) through `object_store`.
//!
//! - `store.rs`: `path` and the `s3.*` / `gcs.*` / `azure.*` / `storage.*` options
//!   into a built, checked `ObjectStore`;
//! - `config.rs`: the sink's own options;
//! - `sink.rs`: partition folders, open files grouped into roll units, rolling,
//!   the memory bound, and durability (per batch, or per Kafka partition for
//!   exactly-once files).
//!
//! A file appears under its final name only when complete (multipart upload, or a
//! local rename), and the sink reports rows durable only once every file holding
//! them is complete.

mod config;
mod sink;
pub mod store;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Unsupported};

pub use config::FilesystemSinkConfig;

pub(crate) const PATH: OptionSpec = OptionSpec::new(
    "path",
    OptionKind::String,
    "Where files go: a local folder, file://, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or abfs(s)://container@account.dfs.core.windows.net/prefix.",
)
.required();
pub(crate) const FORMAT: OptionSpec = OptionSpec::new(
    "format",
    OptionKind::Enum(&["parquet", "json", "csv"]),
    "File format: Parquet, JSON lines or CSV with a header.",
)
.default("parquet");
pub(crate) const PARTITION_BY: OptionSpec = OptionSpec::new(
    "partition.by",
    OptionKind::List,
    "Output columns whose values name Hive-style 'col=value/' folders; they are not repeated inside the files.",
);
pub(crate) const ROLLOVER_ROWS: OptionSpec = OptionSpec::new(
    "rollover.rows",
    OptionKind::Integer,
    "Close a file after this many rows (exactly-once: after this many rows of one source partition).",
)
.default("1000000");
pub(crate) const ROLLOVER_BYTES: OptionSpec = OptionSpec::new(
    "rollover.bytes",
    OptionKind::Bytes,
    "Close a file once about this many bytes are written.",
)
.default("128MiB");
pub(crate) const ROLLOVER_INTERVAL: OptionSpec = OptionSpec::new(
    "rollover.interval",
    OptionKind::Duration,
    "Close a file this long after it was opened, by the wall clock, even if no more rows arrive.",
)
.default("5 minutes");
pub(crate) const ROLLOVER_INACTIVITY: OptionSpec = OptionSpec::new(
    "rollover.inactivity",
    OptionKind::Duration,
    "Close a file that has received no rows for this long (wall clock), even if no record ever arrives again. Off by default.",
);
pub(crate) const MEMORY_MAX: OptionSpec = OptionSpec::new(
    "sink.memory.max",
    OptionKind::Bytes,
    "Memory for all open files together (encoders and upload buffers); when reached, the largest open files are closed early.",
)
.default("256MiB");
pub(crate) const DELIVERY: OptionSpec = OptionSpec::new(
    "sink.delivery.guarantee",
    OptionKind::Enum(&["at-least-once", "exactly-once"]),
    "exactly-once (Kafka sources): files named <topic>+<partition>+<first offset>, rolled per source partition, so a replay rewrites the same objects.",
)
.default("at-least-once");
pub(crate) const PARQUET_COMPRESSION: OptionSpec = OptionSpec::new(
    "parquet.compression",
    OptionKind::String,
    "Parquet codec: zstd, zstd(<level>), snappy, lz4 or none.",
)
.default("zstd(1)");
pub(crate) const PARQUET_ROW_GROUP_ROWS: OptionSpec = OptionSpec::new(
    "parquet.row.group.rows",
    OptionKind::Integer,
    "Rows per Parquet row group (bounds the sink's memory per open file).",
)
.default("1048576");
pub(crate) const PARQUET_DICTIONARY: OptionSpec =
    OptionSpec::new(
        "parquet.dictionary",
        OptionKind::Bool,
        "Dictionary-encode Parquet columns, except those at least 95% distinct in the file's first batch (of 4,096 rows or more): near-unique values gain little from a dictionary, which costs a hash per value and often outgrows its 1 MiB page and falls back to plain.",
    )
    .default("true");
pub(crate) const PARQUET_DELTA: OptionSpec = OptionSpec::new(
    "parquet.delta",
    OptionKind::Bool,
    "Columns that get no dictionary use Parquet's delta encodings instead of PLAIN: DELTA_BINARY_PACKED for integers, dates, times and timestamps, DELTA_BYTE_ARRAY for text and binary. Near-unique ids, timestamps and names take a fraction of the bytes and compress faster. false writes PLAIN, for readers that decode only PLAIN and dictionary pages (Spark's vectorized reader before 3.3).",
)
.default("true");
pub(crate) const PARQUET_BLOOM: OptionSpec = OptionSpec::new(
    "parquet.bloom.filter.columns",
    OptionKind::List,
    "Columns (inside the files) that get a Parquet bloom filter per row group.",
);

const OWN_OPTIONS: &[OptionSpec] = &[
    PATH,
    FORMAT,
    PARTITION_BY,
    ROLLOVER_ROWS,
    ROLLOVER_BYTES,
    ROLLOVER_INTERVAL,
    ROLLOVER_INACTIVITY,
    MEMORY_MAX,
    DELIVERY,
    PARQUET_COMPRESSION,
    PARQUET_ROW_GROUP_ROWS,
    PARQUET_DICTIONARY,
    PARQUET_DELTA,
    PARQUET_BLOOM,
];

/// The sink's options, then the storage options.
static SINK_OPTIONS: std::sync::LazyLock<Vec<OptionSpec>> =
    std::sync::LazyLock::new(|| OWN_OPTIONS.iter().chain(store::STORE_OPTIONS.iter()).copied().collect());

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
        "Writes Parquet (zstd), JSON-lines or CSV files to a folder, S3, GCS or Azure, partitioned into col=value/ folders and rolled by rows, bytes, time or inactivity."
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS.as_slice())
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<FilesystemSinkConfig> {
        config::parse(opts, schema)
    }
    fn check_sink_source(&self, config: &FilesystemSinkConfig, source_connector: &str) -> Result<()> {
        sink::check_source(config, source_connector)
    }
    async fn build_sink(&self, config: &FilesystemSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::FilesystemSink::start(config.clone(), ctx).await?))
    }
}
