//! Quiver's runtime and the `quiver` binary.
//!
//! The control plane, as named modules:
//! - [`worker`]: [`worker::Engine`] owns the catalog, the running tasks and the
//!   store. It executes statements planned by `quiver-sql` and starts a
//!   connector's supervised tasks (`tasks.max` of them, as its source can split;
//!   [`worker::task`]: source → bounded channel → compiled transform → sink), committing offsets only once the sink reports
//!   data durable and routing bad records by the error policy ([`dlq`]).
//! - [`store`]: the worker's state (configs, target states, offsets) behind one
//!   async interface; the local redb store and an in-memory one.
//! - [`submit`]: translation and validation of connector configs, shared by the
//!   CLI and the REST API; [`discover`] finds the columns a stock config lacks.
//! - [`server`]: `quiver server`, Kafka Connect's REST API over the worker.
//! - [`telemetry`]: task counters and events as Prometheus metrics.
//! - [`cli`] and [`console`] are the user-facing entry points.

pub mod cli;
pub mod cluster;
pub mod console;
pub mod ctl;
pub mod discover;
pub mod dlq;
pub mod error;
pub mod logging;
pub mod preview;
pub mod providers;
pub mod render;
pub mod server;
pub mod store;
pub mod submit;
pub mod telemetry;
pub mod worker;

pub use error::EngineError;
pub use worker::task::State;
pub use worker::{Engine, EngineOptions, Output, PipelineStatus, TaskStatus};
