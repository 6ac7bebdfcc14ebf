//! `connector = 'file'`: newline-delimited JSON or CSV files as a source, and one
//! file appended to as a sink ([`sink`], Kafka Connect's FileStreamSink).
//!
//! As a source:
//! `path` is a file, a folder (its regular files, sorted by name, dotfiles
//! skipped) or a glob. Each file is a partition; its position is the number of
//! lines and bytes consumed, so a restart seeks to where the last committed batch
//! ended. Unbounded, the source keeps watching for new files and appended lines;
//! with `--until-caught-up` it reads the files present at start to their end.

pub(crate) mod config;
mod sink;
mod source;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, Source, SourceContext};

pub use config::{AppendFormat, FileSinkConfig, FileSourceConfig};

pub(crate) const PATH: OptionSpec = OptionSpec::new(
    "path",
    OptionKind::String,
    "A file, a folder (its files, sorted by name) or a glob such as 'data/*.jsonl'.",
)
.required();
pub(crate) const FORMAT: OptionSpec = OptionSpec::new(
    "format",
    OptionKind::Enum(&["json", "csv", "text"]),
    "How lines are decoded: JSON objects, CSV records, or text (each line one value in the one declared TEXT column).",
)
.default("json");
pub(crate) const CSV_HEADER: OptionSpec = OptionSpec::new(
    "csv.header",
    OptionKind::Bool,
    "Whether each CSV file starts with a header line (skipped).",
)
.default("true");
pub(crate) const CSV_DELIMITER: OptionSpec = OptionSpec::new(
    "csv.delimiter",
    OptionKind::String,
    "CSV field delimiter (one character).",
)
.default(",");
pub(crate) const CSV_QUOTE: OptionSpec =
    OptionSpec::new("csv.quote", OptionKind::String, "CSV quote character (one character).").default("\"");
pub(crate) const SCAN_INTERVAL: OptionSpec = OptionSpec::new(
    "scan.interval",
    OptionKind::Duration,
    "How often an unbounded source looks for new files and lines.",
)
.default("1s");

const SOURCE_OPTIONS: &[OptionSpec] = &[PATH, FORMAT, CSV_HEADER, CSV_DELIMITER, CSV_QUOTE, SCAN_INTERVAL];

pub(crate) const SINK_PATH: OptionSpec = OptionSpec::new(
    "path",
    OptionKind::String,
    "The one file to append to (created with its folder if missing), as FileStreamSink's 'file'.",
)
.required();
pub(crate) const SINK_FORMAT: OptionSpec = OptionSpec::new(
    "format",
    OptionKind::Enum(&["json", "text"]),
    "Each record as a JSON object, or text: the one text or bytes column as it is.",
)
.default("json");
const SINK_OPTIONS: &[OptionSpec] = &[SINK_PATH, SINK_FORMAT];

#[derive(Debug, Clone, Copy)]
pub struct FileConnector;

#[async_trait]
impl Connector for FileConnector {
    type SourceConfig = FileSourceConfig;
    type SinkConfig = FileSinkConfig;

    fn name(&self) -> &'static str {
        "file"
    }
    fn description(&self) -> &'static str {
        "Reads JSON-lines, CSV or plain text files (a file, folder or glob), resuming at the last committed line; watches for new data when unbounded. As a sink, appends one line per record to one file."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SOURCE_OPTIONS)
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SINK_OPTIONS)
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<FileSinkConfig> {
        config::parse_sink(opts, schema)
    }
    /// One file, one writer: parallel appenders would interleave and each would
    /// take a sibling's line in progress for one cut short by a crash.
    fn sink_tasks(&self, _config: &FileSinkConfig, _tasks: u32) -> u32 {
        1
    }
    async fn build_sink(&self, config: &FileSinkConfig, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::FileSink::open(config, &ctx)?))
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<FileSourceConfig> {
        config::parse(opts, schema)
    }
    /// A folder or glob splits its files over the tasks (by a hash of the path);
    /// one file is one task's, as Kafka Connect's FileStreamSource always is.
    fn source_tasks(&self, config: &FileSourceConfig, requested: u32) -> u32 {
        let path = std::path::Path::new(&config.path);
        if config.path.contains(['*', '?', '[']) || path.is_dir() {
            requested
        } else {
            1
        }
    }
    async fn build_source(&self, config: &FileSourceConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::FileSource::new(config.clone(), ctx)?))
    }
}
