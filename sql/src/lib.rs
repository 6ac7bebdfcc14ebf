//! Quiver's SQL: statements in, validated pipeline specs out.
//!
//! [`parser::parse`] reads a script into statements (sqlparser plus Quiver's
//! `CREATE SOURCE` / `CREATE SINK` forms). [`catalog::Catalog::plan`] validates a
//! statement against the declared sources — connector options through each
//! connector's pure parser, the SELECT through [`stateless::check`] and DataFusion's
//! planner — and returns a [`catalog::Plan`]. A sink's plan carries a
//! [`transform::CompiledTransform`]: the filter and projections compiled once into
//! DataFusion `PhysicalExpr`s, evaluated batch by batch by the engine.

pub mod catalog;
pub mod compile;
pub mod connect;
pub mod error;
pub mod parser;
pub mod stateless;
pub mod transform;

pub use catalog::{Catalog, ErrorPolicy, PipelineSpec, Plan, Preview, SourceDef, Table};
pub use error::{Location, SqlError};
pub use parser::{ParsedStatement, Statement, parse, parse_one};
pub use transform::{CompiledTransform, TransformOutput};
