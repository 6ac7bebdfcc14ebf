//! `connector = 'datagen'`: deterministic generated rows for trying pipelines.
//!
//! Every column gets its own ChaCha stream keyed by `seed` and column index, and
//! every row uses a fixed number of words from it, so row `n` of a column is the
//! same whatever batch size or restart point produced it. A restarted pipeline
//! seeks straight to its committed row instead of regenerating what came before.
//!
//! With `tasks.max` = n the rows are dealt out in stripes of 4096: task i makes
//! stripes i, i + n, … and keeps its position under the source partition
//! `rows-{i}-of-{n}` (one task keeps `rows`), so the tasks together make exactly
//! the rows one task would, each row once. Changing `tasks.max` starts the split
//! positions afresh.

mod config;
mod source;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::api::{Connector, OptionKind, OptionSpec, Options, Result, Source, SourceContext, Unsupported};

pub use config::DatagenConfig;

pub(crate) const ROWS_TOTAL: OptionSpec = OptionSpec::new(
    "rows.total",
    OptionKind::Integer,
    "Rows to generate before the source ends; unset means unbounded.",
);
pub(crate) const ROWS_PER_SECOND: OptionSpec = OptionSpec::new(
    "rows.per.second",
    OptionKind::Float,
    "Rate limit in rows per second; unset means as fast as possible.",
);
pub(crate) const SEED: OptionSpec = OptionSpec::new(
    "seed",
    OptionKind::Integer,
    "Seed of the generator: the same seed gives the same rows.",
)
.default("0");
pub(crate) const KIND: OptionSpec = OptionSpec::new(
    "fields.<col>.kind",
    OptionKind::Enum(&["random", "sequence"]),
    "How the column's values are made.",
)
.default("random");
pub(crate) const START: OptionSpec = OptionSpec::new(
    "fields.<col>.start",
    OptionKind::Value,
    "First value of a sequence (default 0; for timestamps '2024-01-01 00:00:00', stepping one second).",
);
pub(crate) const END: OptionSpec = OptionSpec::new(
    "fields.<col>.end",
    OptionKind::Value,
    "Last value of a sequence; the source ends after it.",
);
pub(crate) const MIN: OptionSpec = OptionSpec::new(
    "fields.<col>.min",
    OptionKind::Value,
    "Smallest random value (numbers default 0; timestamps and dates default 2024-01-01).",
);
pub(crate) const MAX: OptionSpec = OptionSpec::new(
    "fields.<col>.max",
    OptionKind::Value,
    "Largest random value (integers default 1000000 or the type's max; floats and decimals 1000; timestamps and dates 2024-12-31).",
);
pub(crate) const LENGTH: OptionSpec = OptionSpec::new(
    "fields.<col>.length",
    OptionKind::Integer,
    "Length of random strings (alphanumeric) and bytes.",
)
.default("10");
pub(crate) const VALUES: OptionSpec = OptionSpec::new(
    "fields.<col>.values",
    OptionKind::List,
    "A comma list of values to pick from at random (cast to the column's type).",
);
pub(crate) const NULL_RATE: OptionSpec = OptionSpec::new(
    "fields.<col>.null.rate",
    OptionKind::Float,
    "Fraction of rows (0 to 1) where the column is NULL.",
)
.default("0");

const SOURCE_OPTIONS: &[OptionSpec] = &[
    ROWS_TOTAL,
    ROWS_PER_SECOND,
    SEED,
    KIND,
    START,
    END,
    MIN,
    MAX,
    LENGTH,
    VALUES,
    NULL_RATE,
];

#[derive(Debug, Clone, Copy)]
pub struct DatagenConnector;

#[async_trait]
impl Connector for DatagenConnector {
    type SourceConfig = DatagenConfig;
    type SinkConfig = Unsupported;

    fn name(&self) -> &'static str {
        "datagen"
    }
    fn description(&self) -> &'static str {
        "Generates deterministic rows for the declared columns (sequences, random ranges, value lists, NULLs), optionally rate-limited."
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Some(SOURCE_OPTIONS)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<DatagenConfig> {
        config::parse(opts, schema)
    }
    /// A generator splits over every task asked for: task `i` of `n` makes the
    /// stripes `i, i + n, …` of 4096 rows, each at `rows.per.second / n`.
    fn source_tasks(&self, _config: &DatagenConfig, requested: u32) -> u32 {
        requested.max(1)
    }
    async fn build_source(&self, config: &DatagenConfig, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::DatagenSource::new(config.clone(), ctx)?))
    }
}
