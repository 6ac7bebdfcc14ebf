//! Columns for stock Kafka Connect JSON that declares none, found where Kafka
//! Connect finds a schema, for the server, `quiver run CONNECTOR.json` and
//! `quiver translate` alike.
//!
//! A translated config that fails only for want of columns is planned once more
//! with a stand-in column, which gives the source it reads; that source's
//! connector finds the columns ([`quiver_connectors::api::Connector::discover_columns`]):
//! the JDBC source from the table's catalog, Kafka from the Schema Registry
//! subject (AvroConverter), from the Connect schemas the records carry
//! (JsonConverter with `schemas.enable`) or from a sample of schemaless records.
//! The column list found is then given to the translation, as `--columns` would be.
//!
//! Design notes:
//! - A topic that is still empty is not an error: the server creates the
//!   connector and its task waits, saying so in its status, and asks again every
//!   few seconds (`worker/connectors.rs`).
//! - The columns found are stored with the connector, outside its config, so `GET
//!   …/config` never shows a key the user did not send, and a restart does not
//!   depend on sampling again. A JDBC source reads its catalog again at every
//!   (re)start, as Kafka Connect's JDBC source does, so a changed table is picked up.

use std::collections::BTreeMap;
use std::time::Duration;

use quiver_connectors::api::Discovery;

use crate::submit::{self, Invalid, WorkerDefaults};

/// How long finding columns may take (connecting to a database, sampling a topic).
const LIMIT: Duration = Duration::from_secs(30);

/// What looking for a connector's columns gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A SQL column list, where it came from, and whether to look again at every
    /// start (a database catalog) rather than keep it.
    Columns { ddl: String, from: String, refresh: bool },
    /// Nothing to learn them from yet: why, for status.
    Waiting(String),
}

/// Finds the columns of a connector whose config needs them; `Ok(None)` when it
/// does not (it plans as it is, or fails for another reason, which planning reports).
pub async fn columns(
    name: &str,
    config: &BTreeMap<String, String>,
    defaults: &WorkerDefaults,
) -> Result<Option<Found>, Invalid> {
    let Some(source) = submit::discovery_source(name, config, defaults)? else {
        return Ok(None);
    };
    let refresh = matches!(source.connector.name(), "postgres" | "mysql");
    let found = tokio::time::timeout(LIMIT, source.connector.discover_columns(&source.config))
        .await
        .map_err(|_| {
            Invalid::one(
                "quiver.columns",
                format!(
                    "the config declares no columns, and finding them ({} source) took over {}s; give them with quiver.columns",
                    source.connector.name(),
                    LIMIT.as_secs()
                ),
            )
        })?
        .map_err(|e| {
            Invalid::one(
                "quiver.columns",
                format!("the config declares no columns, and finding them failed: {e}; give them with quiver.columns"),
            )
        })?;
    match found {
        Discovery::Unsupported => Ok(None),
        Discovery::Waiting(why) => Ok(Some(Found::Waiting(why))),
        Discovery::Columns { schema, from } if schema.fields().is_empty() => Err(Invalid::one(
            "quiver.columns",
            format!("{from} has no columns; give them with quiver.columns"),
        )),
        Discovery::Columns { schema, from } => Ok(Some(Found::Columns {
            ddl: quiver_sql::connect::columns_ddl(&schema),
            from,
            refresh,
        })),
    }
}
