//! A throwaway Kafka for trying pipelines: librdkafka's in-process mock cluster.
//!
//! It speaks the real protocol on a loopback port (produce, fetch, consumer
//! groups, offset commits) but keeps everything in memory, has no admin API and
//! no transaction markers. A development aid for `quiver dev kafka` and tests,
//! never a broker to keep data in.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::kafka_error;
use crate::api::{ConnectorError, Result};

pub struct DevCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for DevCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCluster")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl DevCluster {
    /// Starts `brokers` mock brokers on ephemeral loopback ports.
    pub fn start(brokers: i32) -> Result<Self> {
        if !(1..=16).contains(&brokers) {
            return Err(ConnectorError::Config(format!(
                "a dev cluster has 1 to 16 brokers (asked for {brokers})"
            )));
        }
        let cluster = MockCluster::new(brokers).map_err(|e| kafka_error("starting the mock Kafka cluster", e))?;
        Ok(Self { cluster })
    }

    /// The `bootstrap.servers` value for clients.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        if name.is_empty() || partitions < 1 {
            return Err(ConnectorError::Config(format!(
                "topic '{name}' needs a name and at least one partition"
            )));
        }
        self.cluster
            .create_topic(name, partitions, 1)
            .map_err(|e| kafka_error(format!("creating topic '{name}'"), e))
    }

    /// The mock itself, for fault injection in tests (broker down, request errors, leader moves).
    pub fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}

/// Parses `name` or `name:partitions`.
pub fn parse_topic(spec: &str) -> std::result::Result<(String, i32), String> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), 1)),
        Some((n, p)) => match p.parse::<i32>() {
            Ok(p) if p >= 1 => Ok((n.to_string(), p)),
            _ => Err(format!(
                "'{spec}': expected name or name:partitions with partitions ≥ 1"
            )),
        },
    }
}
