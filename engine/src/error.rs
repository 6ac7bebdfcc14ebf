//! Engine errors, typed by who must act: the caller (a bad config, a name that is
//! taken, a call that does not fit the connector's state) or the worker (its store).
//! The REST server maps each variant to Kafka Connect's status code.

use quiver_connectors::api::ConnectorError;
use quiver_sql::SqlError;

use crate::submit::Invalid;

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
    /// No connector of that name (Kafka Connect's wording).
    #[error("Connector {0} not found")]
    ConnectorNotFound(String),
    /// No task of that id.
    #[error("Task {task} of connector {connector} not found")]
    TaskNotFound { connector: String, task: u32 },
    /// The name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// A submitted config has problems; each names its key.
    #[error(
        "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
        .0.problems.len(),
        .0
    )]
    InvalidConfig(Invalid),
    /// A request that is well-formed but cannot be carried out as asked.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
