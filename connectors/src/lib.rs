//! Quiver's connector SDK and built-in connectors.
//!
//! A connector implements [`api::Connector`]: pure option parsing into a typed
//! config (`parse_source` / `parse_sink`), then `build_source` / `build_sink`
//! which do the I/O and return an [`api::Source`] or [`api::Sink`]. Sources emit
//! Arrow batches tagged with the offsets they cover; sinks report which batches
//! are durable so the engine commits offsets only behind durable data.
//!
//! Every connector lives in its own folder and is registered in [`registry()`],
//! the one list the planner, `quiver connectors` and the docs read.

pub mod api;
pub mod blackhole;
pub mod datagen;
pub mod file;
pub mod filesystem;
pub mod formats;
pub mod jdbc;
pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod postgres_cdc;
pub mod stdout;

use api::ErasedConnector;

/// Every built-in connector, in listing order.
pub fn registry() -> &'static [&'static dyn ErasedConnector] {
    static CONNECTORS: &[&dyn ErasedConnector] = &[
        &datagen::DatagenConnector,
        &file::FileConnector,
        &filesystem::FilesystemConnector,
        &kafka::KafkaConnector,
        &postgres::PostgresConnector,
        &postgres_cdc::PostgresCdcConnector,
        &mysql::MysqlConnector,
        &stdout::StdoutConnector,
        &blackhole::BlackholeConnector,
    ];
    CONNECTORS
}

/// Looks a connector up by its `connector = '…'` name.
pub fn find(name: &str) -> Option<&'static dyn ErasedConnector> {
    registry().iter().copied().find(|c| c.name().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every default a spec documents must parse as its declared kind.
    #[test]
    fn documented_defaults_parse() {
        use api::OptionKind;
        use api::options::*;
        for c in registry() {
            for spec in c
                .source_options()
                .unwrap_or(&[])
                .iter()
                .chain(c.sink_options().unwrap_or(&[]))
            {
                let Some(d) = spec.default else { continue };
                let ok = match spec.kind {
                    OptionKind::Integer => parse_u64(d).is_ok(),
                    OptionKind::Float => parse_f64(d).is_ok(),
                    OptionKind::Bool => parse_bool(d).is_ok(),
                    OptionKind::Duration => parse_duration(d).is_ok(),
                    OptionKind::Bytes => parse_bytes(d).is_ok(),
                    OptionKind::Enum(choices) => choices.contains(&d),
                    _ => true,
                };
                assert!(ok, "{}: default '{d}' of {} does not parse", c.name(), spec.key);
            }
        }
    }
}
