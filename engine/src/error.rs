//! Engine errors.

use quiver_connectors::api::ConnectorError;
use quiver_sql::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Sql(#[from] SqlError),
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    /// The local state store failed.
    #[error("state store {path}: {message}")]
    State { path: String, message: String },
    #[error("there is no pipeline named '{0}'")]
    NotFound(String),
    /// A lifecycle call that does not fit the pipeline's current status.
    #[error("pipeline '{name}' is {status}: {message}")]
    InvalidState {
        name: String,
        status: String,
        message: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
