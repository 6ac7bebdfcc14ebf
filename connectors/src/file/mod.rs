//! `connector = 'file'`: newline-delimited JSON or CSV files as a source.
//!
//! `path` is a file, a folder (its regular files, sorted by name, dotfiles
//! skipped) or a glob. Each file is a partition; its position is the number of
//! lines and bytes consumed, so a restart seeks to where the last committed batch
//! ended. Unbounded, the source keeps watching for new files and appended lines;
//! with `--until-caught-up` it reads the files present at start to their end.

pub(crate) mod config;
mod source;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Source, SourceContext, Unsupported};

pub use config::FileSourceConfig;

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

#[derive(Debug, Clone, Copy)]
pub struct FileConnector;

#[async_trait]
impl Connector for FileConnector {
    type SourceConfig = FileSourceConfig;
    type SinkConfig = Unsupported;

    fn name(&self) -> &'static str {
        "file"
    }
    fn description(&self) -> &'static str {
        "Reads JSON-lines, CSV or plain text files (a file, folder or glob), resuming at the last committed line; watches for new data when unbounded."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SOURCE_OPTIONS)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<FileSourceConfig> {
        config::parse(opts, schema)
    }
    async fn build_source(&self, config: &FileSourceConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::FileSource::new(config.clone(), ctx)?))
    }
}
