//! The connector contract: [`Connector`], [`Source`], [`Sink`] and [`Options`].

pub mod connector;
pub mod error;
pub mod filter;
pub mod options;
pub mod sink;
pub mod source;

pub use connector::{Connector, Discovery, ErasedConnector, KafkaCluster, Unsupported, ValidatedConfig};
pub use error::{ConnectorError, ErrorKind, Result};
pub use filter::{Comparison, Constant, RowFilter, Term};
pub use options::{OptionKind, OptionSpec, Options, is_secret, parse_bool};
pub use sink::{Sink, SinkContext, SinkReport};
pub use source::{
    BatchPolicy, LagProbe, OffsetCommitter, Offsets, PartitionLag, PartitionProbe, Progress, RawRecord, RejectedRecord,
    RowOrigins, SharedOffsets, Source, SourceBatch, SourceContext, Stage, TaskSlot,
};
