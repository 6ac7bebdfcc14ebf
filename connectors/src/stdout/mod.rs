//! `connector = 'stdout'`: prints every row, for trying pipelines at a terminal.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{
    Connector, ConnectorError, OptionKind, OptionSpec, Options, Result, Sink, SinkContext, SinkReport, Unsupported,
};

const FORMAT: OptionSpec = OptionSpec::new(
    "format",
    OptionKind::Enum(&["json", "csv", "table"]),
    "How rows are printed: JSON lines, CSV or a text table per batch.",
)
.default("json");

#[derive(Debug, Clone, Copy)]
pub struct StdoutConnector;

#[derive(Debug, Clone)]
pub struct StdoutConfig {
    pub format: &'static str,
}

struct StdoutSink {
    format: &'static str,
    seq: Option<u64>,
    report: SinkReport,
    header_done: bool,
}

#[async_trait]
impl Connector for StdoutConnector {
    type SourceConfig = Unsupported;
    type SinkConfig = StdoutConfig;

    fn name(&self) -> &'static str {
        "stdout"
    }
    fn description(&self) -> &'static str {
        "Prints rows to standard output as JSON lines, CSV or a table."
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(&[FORMAT])
    }
    fn parse_sink(&self, opts: &mut Options, _schema: &SchemaRef) -> Result<StdoutConfig> {
        Ok(StdoutConfig {
            format: opts.pull_enum(&FORMAT)?.unwrap_or("json"),
        })
    }
    async fn build_sink(&self, config: &StdoutConfig, _ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink {
            format: config.format,
            seq: None,
            report: SinkReport {
                location: "stdout".into(),
                ..Default::default()
            },
            header_done: false,
        }))
    }
}

#[async_trait]
impl Sink for StdoutSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        let mut out = Vec::new();
        match self.format {
            "csv" => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(!self.header_done)
                    .build(&mut out);
                w.write(&batch).map_err(|e| ConnectorError::arrow("printing CSV", e))?;
                self.header_done = true;
            }
            "table" => {
                if batch.num_rows() > 0 {
                    let t = arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&batch))
                        .map_err(|e| ConnectorError::arrow("printing table", e))?;
                    out.extend_from_slice(format!("{t}\n").as_bytes());
                }
            }
            _ => {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut out);
                w.write(&batch).map_err(|e| ConnectorError::arrow("printing JSON", e))?;
                w.finish().map_err(|e| ConnectorError::arrow("printing JSON", e))?;
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&out)
            .and_then(|_| stdout.flush())
            .map_err(|e| ConnectorError::io("writing to stdout", e))?;
        self.report.rows += batch.num_rows() as u64;
        self.report.bytes += out.len() as u64;
        self.seq = Some(seq);
        Ok(())
    }
    fn durable_seq(&self) -> Option<u64> {
        self.seq
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn report(&self) -> SinkReport {
        self.report.clone()
    }
}
