//! Quiver's runtime and the `quiver` binary.
//!
//! [`engine::Engine`] executes statements planned by `quiver-sql`: it records
//! sources and sinks, starts one supervised pipeline per sink
//! ([`pipeline`]: source task → bounded channel → compiled transform → sink),
//! commits offsets to the crash-safe [`state::StateStore`] only once the sink
//! reports data durable, and routes bad records by each sink's error policy
//! ([`dlq`]). [`cli`] and [`console`] are the user-facing entry points.

pub mod cli;
pub mod console;
pub mod dlq;
pub mod engine;
pub mod error;
pub mod pipeline;
pub mod preview;
pub mod render;
pub mod state;

pub use engine::{Engine, EngineOptions, Output, PipelineStatus};
pub use error::EngineError;
pub use pipeline::State;
