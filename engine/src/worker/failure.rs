//! Typed task failures: where a task failed (its stage), who must act (the
//! connector error's kind: config, external system, data, internal) and whether
//! a retry can help. The message is what a status trace shows; the rest drives
//! decisions: automatic restarts skip failures a restart cannot mend, and metrics
//! count failures by stage and kind.

use std::fmt;

use quiver_connectors::api::{ConnectorError, ErrorKind};
use serde::Serialize;

/// The part of a task that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStage {
    /// Building the source or sink.
    Start,
    /// Reading or decoding.
    Source,
    /// A record failed the transform (without tolerance).
    Transform,
    /// Writing, flushing or committing in the sink.
    Sink,
    /// Writing a dead-letter queue or topic.
    DeadLetter,
    /// The worker's store.
    Store,
    /// A bug: the task panicked.
    Internal,
}

impl fmt::Display for FailureStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureStage::Start => "start",
            FailureStage::Source => "source",
            FailureStage::Transform => "transform",
            FailureStage::Sink => "sink",
            FailureStage::DeadLetter => "dead_letter",
            FailureStage::Store => "store",
            FailureStage::Internal => "internal",
        })
    }
}

/// Why a task stopped with FAILED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub stage: FailureStage,
    pub kind: ErrorKind,
    /// Whether trying again (a restart) can help.
    pub retriable: bool,
    pub message: String,
    /// The source's records carry fields that are no columns (a Connect schema
    /// that grew): the worker adds them when it found the columns itself.
    pub grown: Option<Vec<arrow::datatypes::Field>>,
}

impl TaskFailure {
    /// A connector's error, with what the task was doing.
    pub(crate) fn connector(stage: FailureStage, context: impl fmt::Display, e: &ConnectorError) -> Self {
        Self {
            stage,
            kind: e.kind(),
            // A restart re-establishes every connection, so anything not caused by
            // the config, the data or a bug may go away.
            retriable: e.is_retriable() || e.kind() == ErrorKind::External,
            message: format!("{context}: {e}"),
            grown: match e {
                ConnectorError::SchemaGrew { added, .. } => Some(added.clone()),
                _ => None,
            },
        }
    }

    /// The worker's store failed.
    pub(crate) fn store(e: impl fmt::Display) -> Self {
        Self {
            stage: FailureStage::Store,
            kind: ErrorKind::External,
            retriable: true,
            message: format!("state store: {e}"),
            grown: None,
        }
    }

    /// A bad record with `errors.tolerance = none`.
    pub(crate) fn record(stage: FailureStage, message: String) -> Self {
        Self {
            stage,
            kind: ErrorKind::Data,
            retriable: false,
            message,
            grown: None,
        }
    }

    /// An outside system failed (a dead-letter queue's disk, a topic) without a
    /// typed error.
    pub(crate) fn external(stage: FailureStage, message: String) -> Self {
        Self {
            stage,
            kind: ErrorKind::External,
            retriable: true,
            message,
            grown: None,
        }
    }

    /// A bug.
    pub(crate) fn internal(message: String) -> Self {
        Self {
            stage: FailureStage::Internal,
            kind: ErrorKind::Internal,
            retriable: false,
            message,
            grown: None,
        }
    }

    /// The kind as a label (`config`, `external`, `data`, `internal`).
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            ErrorKind::Config => "config",
            ErrorKind::External => "external",
            ErrorKind::Data => "data",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether an automatic restart may mend it: not a bad config, and not a bad
    /// record without tolerance, which a restart would read and fail on again.
    pub fn restartable(&self) -> bool {
        self.retriable || matches!(self.kind, ErrorKind::External | ErrorKind::Internal)
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
