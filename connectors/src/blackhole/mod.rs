//! `connector = 'blackhole'`: discards rows (counting them), for benchmarks and dry runs.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionSpec, Options, Result, Sink, SinkContext, SinkReport, Unsupported};

#[derive(Debug, Clone, Copy)]
pub struct BlackholeConnector;

#[derive(Debug, Clone)]
pub struct BlackholeConfig;

struct BlackholeSink {
    seq: Option<u64>,
    report: SinkReport,
}

#[async_trait]
impl Connector for BlackholeConnector {
    type SourceConfig = Unsupported;
    type SinkConfig = BlackholeConfig;

    fn name(&self) -> &'static str {
        "blackhole"
    }
    fn description(&self) -> &'static str {
        "Discards every row and counts it; data is 'durable' at once."
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Some(&[])
    }
    fn parse_sink(&self, _opts: &mut Options, _schema: &SchemaRef) -> Result<BlackholeConfig> {
        Ok(BlackholeConfig)
    }
    async fn build_sink(&self, _config: &BlackholeConfig, _ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink {
            seq: None,
            report: SinkReport {
                location: "blackhole".into(),
                ..Default::default()
            },
        }))
    }
}

#[async_trait]
impl Sink for BlackholeSink {
    async fn write(&mut self, batch: RecordBatch, seq: u64) -> Result<()> {
        self.report.rows += batch.num_rows() as u64;
        self.report.bytes += batch.get_array_memory_size() as u64;
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
