//! A dead-letter topic: failed records forwarded untouched, with Kafka Connect's
//! `__connect.errors.*` context headers when asked for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::client::{client_config, kafka_error};
use crate::api::{ConnectorError, RejectedRecord, Result, Stage};

/// How long `sync` waits for the dead-letter records to be acknowledged.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

struct Failures(Arc<Mutex<Option<String>>>);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

pub struct DeadLetterTopic {
    producer: ThreadedProducer<Failures>,
    failure: Arc<Mutex<Option<String>>>,
    topic: String,
    context_headers: bool,
    connector: String,
}

impl std::fmt::Debug for DeadLetterTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterTopic").field("topic", &self.topic).finish()
    }
}

/// librdkafka settings about reaching and authenticating to a cluster.
fn is_connection_setting(key: &str) -> bool {
    [
        "security.",
        "sasl.",
        "ssl.",
        "ssl_",
        "enable.ssl.",
        "client.dns.lookup",
        "broker.address.family",
        "socket.",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// Kafka Connect's names for the stage a record failed in.
fn stage_name(s: Stage) -> (&'static str, &'static str) {
    match s {
        Stage::Decode => ("VALUE_CONVERTER", "quiver.formats.RecordDecoder"),
        Stage::Transform => ("TRANSFORMATION", "quiver.sql.CompiledTransform"),
        Stage::Sink => ("TASK_PUT", "quiver.sink"),
    }
}

impl DeadLetterTopic {
    /// `connector` is the pipeline (sink) name reported in `__connect.errors.connector.name`.
    /// Of `properties` (the pipeline's Kafka client settings) only the connection and
    /// security ones are used.
    pub fn new(
        bootstrap: &str,
        topic: &str,
        context_headers: bool,
        connector: &str,
        properties: &[(String, String)],
    ) -> Result<Self> {
        let failure = Arc::new(Mutex::new(None));
        // Only how to reach and authenticate to the cluster carries over; the producer
        // and consumer tuning of the pipeline's own clients (a small message.max.bytes,
        // say) must not stop a failed record from being dead-lettered.
        let connection: Vec<(String, String)> = properties
            .iter()
            .filter(|(k, _)| is_connection_setting(k))
            .cloned()
            .collect();
        let mut cc = client_config(bootstrap, &format!("quiver-{connector}-dlq"), &connection);
        cc.set("enable.idempotence", "true");
        let producer = cc
            .create_with_context(Failures(Arc::clone(&failure)))
            .map_err(|e| kafka_error(format!("creating the dead-letter producer for {bootstrap}"), e))?;
        Ok(Self {
            producer,
            failure,
            topic: topic.to_string(),
            context_headers,
            connector: connector.to_string(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one failed record. Its original key, value and headers are kept as they were.
    pub fn send(&self, r: &RejectedRecord) -> Result<()> {
        let fallback_value;
        let (key, value, original) = match &r.raw {
            Some(raw) => (raw.key.as_deref(), raw.value.as_deref(), raw.headers.as_slice()),
            None => {
                fallback_value = match &r.record {
                    serde_json::Value::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                (None, Some(fallback_value.as_slice()), &[][..])
            }
        };
        let mut headers = OwnedHeaders::new_with_capacity(original.len() + 9);
        for (k, v) in original {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        if self.context_headers {
            let (topic, partition) = match r.partition.rsplit_once('/') {
                Some((t, p)) if p.parse::<i32>().is_ok() => (t.to_string(), p.to_string()),
                _ => (r.partition.clone(), "-1".to_string()),
            };
            let (stage, class) = stage_name(r.stage);
            let offset = r.position.to_string();
            let pairs: [(&str, &str); 9] = [
                ("__connect.errors.topic", &topic),
                ("__connect.errors.partition", &partition),
                ("__connect.errors.offset", &offset),
                ("__connect.errors.connector.name", &self.connector),
                ("__connect.errors.task.id", "0"),
                ("__connect.errors.stage", stage),
                ("__connect.errors.class.name", class),
                (
                    "__connect.errors.exception.class.name",
                    match r.stage {
                        Stage::Decode => "quiver.DecodeError",
                        Stage::Transform => "quiver.TransformError",
                        Stage::Sink => "quiver.SinkError",
                    },
                ),
                ("__connect.errors.exception.message", &r.error),
            ];
            for (k, v) in pairs {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
        }
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(ts) = r.raw.as_ref().and_then(|raw| raw.timestamp) {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kafka_error(format!("sending to dead-letter topic '{}'", self.topic), e)),
            }
        }
    }

    /// Waits until every queued record is acknowledged; fails if any was not.
    pub fn sync(&self) -> Result<()> {
        self.producer
            .flush(SYNC_TIMEOUT)
            .map_err(|e| kafka_error(format!("flushing dead-letter topic '{}'", self.topic), e))?;
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(f) => Err(ConnectorError::Config(format!(
                "dead-letter topic '{}': a record could not be delivered: {f}",
                self.topic
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_connection_setting;

    #[test]
    fn only_connection_and_security_settings_carry_over() {
        for k in [
            "security.protocol",
            "sasl.mechanism",
            "sasl.password",
            "ssl.ca.location",
            "client.dns.lookup",
        ] {
            assert!(is_connection_setting(k), "{k}");
        }
        for k in ["message.max.bytes", "linger.ms", "fetch.min.bytes", "compression.type"] {
            assert!(!is_connection_setting(k), "{k}");
        }
    }
}
