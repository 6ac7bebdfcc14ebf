//! The connector trait authors implement, and the erased form the registry stores.
//!
//! Validation ([`Connector::parse_source`], [`Connector::parse_sink`]) is pure: it
//! consumes `WITH (…)` options into a typed config and touches nothing outside the
//! process, so `quiver validate` can run it anywhere. Building does the I/O.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::{FieldRef, SchemaRef};
use async_trait::async_trait;
use futures::future::BoxFuture;

use super::error::{ConnectorError, Result};
use super::options::{OptionSpec, Options};
use super::sink::{Sink, SinkContext};
use super::source::{Source, SourceContext};

/// A Kafka cluster a config talks to (bootstrap servers and client properties),
/// where a dead-letter topic goes unless told otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaCluster {
    pub bootstrap: String,
    /// librdkafka settings (security, tuning) to reuse for the dead-letter producer.
    pub properties: Vec<(String, String)>,
}

impl Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if super::options::is_secret(k) {
                        "********"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("KafkaCluster")
            .field("bootstrap", &self.bootstrap)
            .field("properties", &props)
            .finish()
    }
}

/// What [`Connector::discover_columns`] found.
#[derive(Debug, Clone)]
pub enum Discovery {
    /// This source cannot tell its columns: they must be declared.
    Unsupported,
    /// The columns, and where they came from (for logs and status).
    Columns {
        schema: arrow::datatypes::Schema,
        from: String,
    },
    /// Nothing to learn them from yet (an empty topic): why, for status.
    Waiting(String),
}

/// Config type for a role a connector does not play.
#[derive(Debug)]
pub enum Unsupported {}

/// A connector: typed configs for the roles it plays, and how to build them.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    type SourceConfig: Debug + Send + Sync + 'static;
    type SinkConfig: Debug + Send + Sync + 'static;

    /// The `connector = '…'` name.
    fn name(&self) -> &'static str;
    /// One line for listings.
    fn description(&self) -> &'static str;
    /// The options of the source role; `None` if this connector is not a source.
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        None
    }
    /// The options of the sink role; `None` if this connector is not a sink.
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        None
    }
    /// Consumes the source options into a config. Pure: no I/O.
    fn parse_source(&self, _opts: &mut Options, _schema: &SchemaRef) -> Result<Self::SourceConfig> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a source",
            self.name()
        )))
    }
    /// Consumes the sink options into a config. Pure: no I/O.
    fn parse_sink(&self, _opts: &mut Options, _schema: &SchemaRef) -> Result<Self::SinkConfig> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a sink",
            self.name()
        )))
    }
    /// The Kafka cluster a source config reads from, if it is a Kafka one.
    fn source_cluster(&self, _config: &Self::SourceConfig) -> Option<KafkaCluster> {
        None
    }
    /// The Kafka cluster a sink config writes to, if it is a Kafka one.
    fn sink_cluster(&self, _config: &Self::SinkConfig) -> Option<KafkaCluster> {
        None
    }
    /// Refuses, at CREATE time, a sink config that cannot work with the source it
    /// reads (named by connector), e.g. exactly-once files from a non-Kafka source.
    fn check_sink_source(&self, _config: &Self::SinkConfig, _source_connector: &str) -> Result<()> {
        Ok(())
    }
    /// Columns every row of this source carries besides the declared ones
    /// (`_topic`, `_offset`, …): usable in SELECT and WHERE, left out of `SELECT *`.
    fn metadata_columns(&self, _config: &Self::SourceConfig) -> Vec<FieldRef> {
        Vec::new()
    }
    /// Whether this source config carries each record whole in its metadata
    /// columns (`_key`, `_value`, as Debezium events), so it declares no columns;
    /// every other source must declare some.
    fn declares_no_columns(&self, _config: &Self::SourceConfig) -> bool {
        false
    }
    /// How many parallel tasks a pipeline reading this source runs when its sink
    /// asks for `requested` (`tasks.max`, as Kafka Connect's `taskConfigs(maxTasks)`
    /// decides): a source that cannot split its work (one table, one generator)
    /// runs one task; one whose own options ask for more (Kafka's `tasks.max`) may
    /// say so.
    fn source_tasks(&self, _config: &Self::SourceConfig, _requested: u32) -> u32 {
        1
    }
    /// Finds the columns of what this source config reads where Kafka Connect finds
    /// a schema — a table's catalog, a Schema Registry subject, the schema JSON
    /// records carry, or a sample of schemaless records — for a stock connector
    /// config that declares none. Does I/O; called only when columns are missing.
    async fn discover_columns(&self, _config: &Self::SourceConfig) -> Result<Discovery> {
        Ok(Discovery::Unsupported)
    }
    /// How many parallel writers this sink config allows of the `tasks` a pipeline
    /// would run: one file appended to by one writer, say, allows one.
    fn sink_tasks(&self, _config: &Self::SinkConfig, tasks: u32) -> u32 {
        tasks
    }
    /// Forgets the offsets this source keeps outside the worker's store (a Kafka
    /// consumer group's commits), so a reset replays from the start. Called only
    /// while no task of `pipeline` runs. Most sources keep none.
    async fn reset_source_offsets(&self, _config: &Self::SourceConfig, _pipeline: &str) -> Result<()> {
        Ok(())
    }
    /// Replaces the positions a sink keeps with its data (an exactly-once database
    /// sink's `quiver_offsets` rows) by `to`, or forgets them (`None`), so an offsets
    /// reset or alter is honoured: such a sink's own positions win at start. Called
    /// only while no task of `pipeline` runs. Most sinks keep none.
    async fn reset_sink_offsets(
        &self,
        _config: &Self::SinkConfig,
        _pipeline: &str,
        _to: Option<&super::Offsets>,
    ) -> Result<()> {
        Ok(())
    }
    async fn build_source(&self, _config: &Self::SourceConfig, _ctx: SourceContext) -> Result<Box<dyn Source>> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a source",
            self.name()
        )))
    }
    async fn build_sink(&self, _config: &Self::SinkConfig, _ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a sink",
            self.name()
        )))
    }
}

/// A validated, type-erased connector config.
#[derive(Debug, Clone)]
pub struct ValidatedConfig(Arc<dyn AnyDebug>);

pub trait AnyDebug: Any + Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}
impl<T: Any + Debug + Send + Sync> AnyDebug for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The object-safe form of [`Connector`] that the registry stores.
pub trait ErasedConnector: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn source_options(&self) -> Option<&'static [OptionSpec]>;
    fn sink_options(&self) -> Option<&'static [OptionSpec]>;
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<ValidatedConfig>;
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<ValidatedConfig>;
    fn metadata_columns(&self, config: &ValidatedConfig) -> Vec<FieldRef>;
    fn declares_no_columns(&self, config: &ValidatedConfig) -> bool;
    fn source_cluster(&self, config: &ValidatedConfig) -> Option<KafkaCluster>;
    fn sink_cluster(&self, config: &ValidatedConfig) -> Option<KafkaCluster>;
    fn check_sink_source(&self, config: &ValidatedConfig, source_connector: &str) -> Result<()>;
    fn source_tasks(&self, config: &ValidatedConfig, requested: u32) -> u32;
    fn sink_tasks(&self, config: &ValidatedConfig, tasks: u32) -> u32;
    fn discover_columns<'a>(&'a self, config: &'a ValidatedConfig) -> BoxFuture<'a, Result<Discovery>>;
    fn reset_source_offsets<'a>(&'a self, config: &'a ValidatedConfig, pipeline: &'a str) -> BoxFuture<'a, Result<()>>;
    fn reset_sink_offsets<'a>(
        &'a self,
        config: &'a ValidatedConfig,
        pipeline: &'a str,
        to: Option<&'a super::Offsets>,
    ) -> BoxFuture<'a, Result<()>>;
    fn build_source<'a>(
        &'a self,
        config: &'a ValidatedConfig,
        ctx: SourceContext,
    ) -> BoxFuture<'a, Result<Box<dyn Source>>>;
    fn build_sink<'a>(&'a self, config: &'a ValidatedConfig, ctx: SinkContext) -> BoxFuture<'a, Result<Box<dyn Sink>>>;
}

impl std::fmt::Debug for dyn ErasedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn downcast<'a, T: 'static>(name: &str, config: &'a ValidatedConfig) -> Result<&'a T> {
    // Deref the Arc first: `Arc<dyn AnyDebug>` is itself `AnyDebug` through the blanket impl.
    (*config.0).as_any().downcast_ref::<T>().ok_or_else(|| {
        ConnectorError::Internal(format!(
            "config handed to connector '{name}' was made by another connector"
        ))
    })
}

impl<C: Connector> ErasedConnector for C {
    fn name(&self) -> &'static str {
        Connector::name(self)
    }
    fn description(&self) -> &'static str {
        Connector::description(self)
    }
    fn source_options(&self) -> Option<&'static [OptionSpec]> {
        Connector::source_options(self)
    }
    fn sink_options(&self) -> Option<&'static [OptionSpec]> {
        Connector::sink_options(self)
    }
    fn parse_source(&self, opts: &mut Options, schema: &SchemaRef) -> Result<ValidatedConfig> {
        Ok(ValidatedConfig(Arc::new(Connector::parse_source(self, opts, schema)?)))
    }
    fn parse_sink(&self, opts: &mut Options, schema: &SchemaRef) -> Result<ValidatedConfig> {
        Ok(ValidatedConfig(Arc::new(Connector::parse_sink(self, opts, schema)?)))
    }
    fn metadata_columns(&self, config: &ValidatedConfig) -> Vec<FieldRef> {
        downcast::<C::SourceConfig>(Connector::name(self), config)
            .map(|c| Connector::metadata_columns(self, c))
            .unwrap_or_default()
    }
    fn declares_no_columns(&self, config: &ValidatedConfig) -> bool {
        downcast::<C::SourceConfig>(Connector::name(self), config)
            .map(|c| Connector::declares_no_columns(self, c))
            .unwrap_or(false)
    }
    fn source_cluster(&self, config: &ValidatedConfig) -> Option<KafkaCluster> {
        downcast::<C::SourceConfig>(Connector::name(self), config)
            .ok()
            .and_then(|c| Connector::source_cluster(self, c))
    }
    fn sink_cluster(&self, config: &ValidatedConfig) -> Option<KafkaCluster> {
        downcast::<C::SinkConfig>(Connector::name(self), config)
            .ok()
            .and_then(|c| Connector::sink_cluster(self, c))
    }
    fn check_sink_source(&self, config: &ValidatedConfig, source_connector: &str) -> Result<()> {
        Connector::check_sink_source(
            self,
            downcast::<C::SinkConfig>(Connector::name(self), config)?,
            source_connector,
        )
    }
    fn source_tasks(&self, config: &ValidatedConfig, requested: u32) -> u32 {
        downcast::<C::SourceConfig>(Connector::name(self), config)
            .map(|c| Connector::source_tasks(self, c, requested).max(1))
            .unwrap_or(1)
    }
    fn discover_columns<'a>(&'a self, config: &'a ValidatedConfig) -> BoxFuture<'a, Result<Discovery>> {
        Box::pin(async move {
            let cfg = downcast::<C::SourceConfig>(Connector::name(self), config)?;
            Connector::discover_columns(self, cfg).await
        })
    }
    fn sink_tasks(&self, config: &ValidatedConfig, tasks: u32) -> u32 {
        downcast::<C::SinkConfig>(Connector::name(self), config)
            .map(|c| Connector::sink_tasks(self, c, tasks).clamp(1, tasks.max(1)))
            .unwrap_or(1)
    }
    fn reset_sink_offsets<'a>(
        &'a self,
        config: &'a ValidatedConfig,
        pipeline: &'a str,
        to: Option<&'a super::Offsets>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let cfg = downcast::<C::SinkConfig>(Connector::name(self), config)?;
            Connector::reset_sink_offsets(self, cfg, pipeline, to).await
        })
    }
    fn reset_source_offsets<'a>(&'a self, config: &'a ValidatedConfig, pipeline: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let cfg = downcast::<C::SourceConfig>(Connector::name(self), config)?;
            Connector::reset_source_offsets(self, cfg, pipeline).await
        })
    }
    fn build_source<'a>(
        &'a self,
        config: &'a ValidatedConfig,
        ctx: SourceContext,
    ) -> BoxFuture<'a, Result<Box<dyn Source>>> {
        Box::pin(async move {
            let cfg = downcast::<C::SourceConfig>(Connector::name(self), config)?;
            Connector::build_source(self, cfg, ctx).await
        })
    }
    fn build_sink<'a>(&'a self, config: &'a ValidatedConfig, ctx: SinkContext) -> BoxFuture<'a, Result<Box<dyn Sink>>> {
        Box::pin(async move {
            let cfg = downcast::<C::SinkConfig>(Connector::name(self), config)?;
            Connector::build_sink(self, cfg, ctx).await
        })
    }
}
