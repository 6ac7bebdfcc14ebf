//! Typed connector errors, classified by who must act and whether a retry can help.

use arrow::error::ArrowError;

/// Who has to do something about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's statement or options are wrong; fix and resubmit.
    Config,
    /// An outside system (disk, object store, database, broker) failed or is unreachable.
    External,
    /// A record could not be decoded, transformed or written.
    Data,
    /// A bug in Quiver.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An option has a bad value or is missing.
    #[error("option '{key}': {message}")]
    Option { key: String, message: String },
    /// A required option that was not given.
    #[error("missing required option '{key}': {doc}")]
    Missing { key: String, doc: String },
    /// An option key that the connector does not take.
    #[error("unknown option '{key}' for {connector} {role}{suggestion}")]
    UnknownOption {
        key: String,
        connector: String,
        role: &'static str,
        suggestion: String,
    },
    /// A configuration problem that is not about one option.
    #[error("{0}")]
    Config(String),
    /// I/O on local files.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The object store (local filesystem, S3, …) failed.
    #[error("{context}: {source}")]
    ObjectStore {
        context: String,
        #[source]
        source: object_store::Error,
    },
    /// Arrow failed while decoding or encoding.
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: ArrowError,
    },
    /// The Parquet writer failed.
    #[error("{context}: {source}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A Kafka client (librdkafka) failed.
    #[error("{context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
        retriable: bool,
    },
    /// Something that should not happen.
    /// A database or service could not be reached or dropped the connection; a
    /// retry (after a reconnect) may succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A newer instance of the same task took over the target (the task was
    /// started again on another worker): this one must not write. Writing again
    /// cannot succeed; a restart starts a new instance from the latest commit.
    #[error("{0}")]
    Fenced(String),
    /// The source has fields that are not declared columns (a record's Kafka
    /// Connect schema, a polled table's catalog); a caller that found the columns
    /// itself may add `added` and start again from the last committed position.
    #[error("{context} has {}, which {}", names(added), not_declared(added.len()))]
    SchemaGrew {
        context: String,
        added: Vec<arrow::datatypes::Field>,
    },
}

fn not_declared(n: usize) -> &'static str {
    if n == 1 {
        "is not a declared column"
    } else {
        "are not declared columns"
    }
}

fn names(fields: &[arrow::datatypes::Field]) -> String {
    fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

impl ConnectorError {
    pub fn option(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Option {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn store(context: impl Into<String>, source: object_store::Error) -> Self {
        Self::ObjectStore {
            context: context.into(),
            source,
        }
    }

    pub fn arrow(context: impl Into<String>, source: ArrowError) -> Self {
        Self::Arrow {
            context: context.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Option { .. } | Self::Missing { .. } | Self::UnknownOption { .. } | Self::Config(_) => {
                ErrorKind::Config
            }
            Self::Io { .. }
            | Self::ObjectStore { .. }
            | Self::Kafka { .. }
            | Self::Unavailable(_)
            | Self::Fenced(_) => ErrorKind::External,
            Self::Arrow { .. } | Self::Parquet { .. } | Self::SchemaGrew { .. } => ErrorKind::Data,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The option key this error is about, so callers can point at its location.
    pub fn option_key(&self) -> Option<&str> {
        match self {
            Self::Option { key, .. } | Self::Missing { key, .. } | Self::UnknownOption { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            Self::ObjectStore { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::NotSupported { .. }
            ),
            Self::Kafka { retriable, .. } => *retriable,
            Self::Unavailable(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// An error followed by each cause that adds something (a TLS failure says why,
/// a refused connection names the address).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(&format!(": {text}"));
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};

    use super::*;

    #[test]
    fn a_grown_schema_names_where_and_what() {
        let one = ConnectorError::SchemaGrew {
            context: "table public.orders".into(),
            added: vec![Field::new("region", DataType::Utf8, true)],
        };
        assert_eq!(
            one.to_string(),
            "table public.orders has region, which is not a declared column"
        );
        let two = ConnectorError::SchemaGrew {
            context: "the Connect schema of the record at t/0, offset 7".into(),
            added: vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Int64, true),
            ],
        };
        assert_eq!(
            two.to_string(),
            "the Connect schema of the record at t/0, offset 7 has a, b, which are not declared columns"
        );
    }
}
