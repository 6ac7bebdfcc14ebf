//! Quiver's end-to-end suite: one test binary, one module per area.
//!
//! Every test runs real pipelines (in-process through the engine API, or as a
//! `quiver` process when it must be killed) and asserts on what reached the
//! target: rows and values read back from Parquet/JSON files, dead-letter
//! records, offsets, exit codes and error text.

mod avro;
mod cli;
mod connect;
mod console;
mod crash;
mod datagen;
mod distributed;
mod file_source;
mod jdbc_kafka;
mod jdbc_source;
mod kafka;
mod kafka_faults;
mod kafka_support;
mod lakehouse;
mod lifecycle;
mod mysql;
mod postgres;
mod postgres_cdc;
mod quickstart;
mod rolling;
mod s3_support;
mod server;
mod support;
