//! The connector contract: [`Connector`], [`Source`], [`Sink`] and [`Options`].

pub mod connector;
pub mod error;
pub mod filter;
pub mod options;
pub mod sink;
pub mod source;

pub use connector::{Connector, ErasedConnector, KafkaCluster, Unsupported, ValidatedConfig};
pub use error::{ConnectorError, ErrorKind, Result};
pub use filter::{Comparison, Constant, RowFilter, Term};
pub use options::{OptionKind, OptionSpec, Options, is_secret, parse_bool};
pub use sink::{Sink, SinkContext, SinkReport};
pub use source::{
    BatchPolicy, OffsetCommitter, Offsets, Progress, RawRecord, RejectedRecord, RowOrigins, Source, SourceBatch,
    SourceContext, Stage,
};
