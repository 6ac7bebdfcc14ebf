//! librdkafka client configuration and error classification.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::api::{ConnectorError, Result};

/// Keys Quiver sets itself; giving them through `properties.*` would break a guarantee.
const MANAGED: &[(&str, &str)] = &[
    ("bootstrap.servers", "use the bootstrap.servers option"),
    ("group.id", "use the group.id option"),
    (
        "enable.auto.commit",
        "Quiver commits offsets itself, only after the sink has made them durable",
    ),
    (
        "enable.auto.offset.store",
        "Quiver commits offsets itself, only after the sink has made them durable",
    ),
    (
        "transactional.id",
        "use sink.delivery.guarantee = 'exactly-once' and transactional.id.prefix",
    ),
    (
        "partition.assignment.strategy",
        "Quiver uses the eager range/round-robin protocol so a task can commit before it gives partitions up",
    ),
];

/// Checks `properties.*` pass-through keys against librdkafka without connecting.
pub(crate) fn check_properties(properties: &[(String, String)]) -> Result<()> {
    for (k, v) in properties {
        if let Some((_, why)) = MANAGED.iter().find(|(m, _)| m == k) {
            return Err(ConnectorError::option(
                format!("properties.{k}"),
                format!("cannot be set here: {why}"),
            ));
        }
        let mut c = ClientConfig::new();
        c.set(k, v);
        if let Err(e) = c.create_native_config() {
            let msg = match e {
                KafkaError::ClientConfig(_, desc, _, _) => desc,
                other => other.to_string(),
            };
            return Err(ConnectorError::option(
                format!("properties.{k}"),
                format!("librdkafka rejected it: {msg}"),
            ));
        }
    }
    Ok(())
}

/// A client config with the bootstrap servers, Quiver's defaults and the user's properties.
pub(crate) fn client_config(bootstrap: &str, client_id: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c.set("client.id", client_id);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// Wraps a librdkafka error with what was being done.
pub fn kafka_error(context: impl Into<String>, source: KafkaError) -> ConnectorError {
    ConnectorError::Kafka {
        context: context.into(),
        retriable: is_retriable(&source),
        source,
    }
}

/// Errors that go away by themselves: brokers restarting, leaders moving, timeouts.
pub(crate) fn is_retriable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::RequestTimedOut
                | C::OperationTimedOut
                | C::MessageTimedOut
                | C::TimedOutQueue
                | C::QueueFull
                | C::NotLeaderForPartition
                | C::LeaderNotAvailable
                | C::NetworkException
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::UnknownTopicOrPartition
                | C::Resolve
                | C::RebalanceInProgress
        ),
        None => false,
    }
}

/// Errors that no retry fixes: the user must change credentials, ACLs or topics.
pub(crate) fn is_fatal(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::TransactionalIdAuthorizationFailed
                | C::SaslAuthenticationFailed
                | C::Authentication
                | C::Fatal
                | C::Fenced
                | C::ProducerFenced
                | C::InvalidProducerEpoch
                | C::InvalidConfig
                | C::UnsupportedSASLMechanism
                | C::IllegalSASLState
        )
    )
}
