//! Metrics: the one place that turns the worker's task counters and events into
//! Prometheus metrics (`GET /metrics`), through the `metrics` crate and
//! `metrics-exporter-prometheus`.
//!
//! Design notes:
//! - Names follow what the Prometheus JMX exporter makes of Kafka Connect's MBeans
//!   (as Strimzi's dashboards use them): `kafka_connect_source_task_metrics_source_record_poll_total`,
//!   `kafka_connect_sink_task_metrics_sink_record_send_total`,
//!   `kafka_connect_task_error_metrics_deadletterqueue_produce_requests`, … with
//!   `connector` and `task` labels, so existing dashboards work on a Quiver worker.
//!   What Kafka Connect has no metric for is named `quiver_…`. Consumer lag takes
//!   the name the exporter gives the Kafka consumer's `records-lag`
//!   (`kafka_consumer_consumer_fetch_manager_metrics_records_lag`, per `topic` and
//!   `partition`); its `_max` is the largest over the task's partitions now, where
//!   the Java client's is the largest over a time window.
//! - Counters are read from the tasks' live counters when scraped, not incremented
//!   per record: the data path pays nothing for metrics. Only the sink flush
//!   latency is recorded as it happens, once per flush.
//! - Series of a connector that is gone age out after [`IDLE`].

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::worker::task::State;
use crate::worker::{Engine, TaskStatus};

/// How long a series that is no longer updated stays exported.
const IDLE: Duration = Duration::from_secs(120);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once). Returns `None` when
/// another recorder was installed first (an embedding application's).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .idle_timeout(metrics_util::MetricKindMask::ALL, Some(IDLE))
                .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        "kafka_connect_source_task_metrics_source_record_poll_total",
        Unit::Count,
        "Records read from the source (Kafka Connect: source-record-poll-total)."
    );
    describe_counter!(
        "kafka_connect_sink_task_metrics_sink_record_send_total",
        Unit::Count,
        "Records written to the sink (Kafka Connect: sink-record-send-total)."
    );
    describe_counter!(
        "kafka_connect_task_error_metrics_total_record_errors",
        Unit::Count,
        "Records that failed to decode, transform or write (Kafka Connect: total-record-errors)."
    );
    describe_counter!(
        "kafka_connect_task_error_metrics_deadletterqueue_produce_requests",
        Unit::Count,
        "Records written to a dead-letter queue (Kafka Connect: deadletterqueue-produce-requests)."
    );
    describe_counter!(
        "kafka_connect_connector_task_metrics_offset_commit_completion_total",
        Unit::Count,
        "Offset commits (Kafka Connect: offset-commit-completion-total)."
    );
    describe_counter!(
        "kafka_connect_connector_task_metrics_offset_commit_failure_total",
        Unit::Count,
        "Offset commits that failed (Kafka Connect: offset-commit-failure-total)."
    );
    describe_counter!(
        "quiver_task_records_filtered_total",
        Unit::Count,
        "Records the WHERE clause dropped."
    );
    describe_counter!(
        "quiver_task_batches_total",
        Unit::Count,
        "Batches the source delivered."
    );
    describe_counter!("quiver_sink_bytes_total", Unit::Bytes, "Bytes the sink wrote.");
    describe_counter!(
        "quiver_sink_files_total",
        Unit::Count,
        "Files or objects the sink completed."
    );
    describe_gauge!(
        "kafka_connect_connector_task_status",
        "1 for the task's current state (Kafka Connect: connector-task-metrics status)."
    );
    describe_gauge!(
        "kafka_consumer_consumer_fetch_manager_metrics_records_lag",
        Unit::Count,
        "Records in the partition beyond the task's position (Kafka consumer: records-lag)."
    );
    describe_gauge!(
        "kafka_consumer_consumer_fetch_manager_metrics_records_lag_max",
        Unit::Count,
        "The largest lag over the partitions the task reads (Kafka consumer: records-lag-max)."
    );
    describe_histogram!("quiver_sink_flush_seconds", Unit::Seconds, "Time a sink flush took.");
    describe_gauge!(
        "quiver_task_failed",
        "1 while the task is FAILED, labelled by the stage that failed and who must act (config, external, data, internal)."
    );
}

/// Records one sink flush (called by the task; a no-op without a recorder).
pub(crate) fn sink_flushed(connector: &str, task: u32, took: Duration) {
    histogram!("quiver_sink_flush_seconds", "connector" => connector.to_string(), "task" => task.to_string())
        .record(took.as_secs_f64());
}

fn state_label(s: State) -> &'static str {
    match s {
        State::Running => "running",
        State::Paused => "paused",
        State::Failed => "failed",
        State::Stopped | State::Finished => "stopped",
    }
}

/// Publishes one task's counters, failure and state.
fn publish(connector: &str, t: &TaskStatus) {
    let task = t.id.to_string();
    let count = |name: &'static str, value: u64| {
        counter!(name, "connector" => connector.to_string(), "task" => task.clone()).absolute(value);
    };
    count("kafka_connect_source_task_metrics_source_record_poll_total", t.rows_in);
    count("kafka_connect_sink_task_metrics_sink_record_send_total", t.rows_out);
    count("kafka_connect_task_error_metrics_total_record_errors", t.rows_errored);
    count(
        "kafka_connect_task_error_metrics_deadletterqueue_produce_requests",
        t.dead_lettered,
    );
    count(
        "kafka_connect_connector_task_metrics_offset_commit_completion_total",
        t.commits,
    );
    count(
        "kafka_connect_connector_task_metrics_offset_commit_failure_total",
        t.commit_failures,
    );
    count("quiver_task_records_filtered_total", t.rows_filtered());
    count("quiver_task_batches_total", t.batches);
    count("quiver_sink_bytes_total", t.sink.bytes);
    count("quiver_sink_files_total", t.sink.files);
    if let Some(f) = &t.failure {
        gauge!(
            "quiver_task_failed",
            "connector" => connector.to_string(),
            "task" => task.clone(),
            "stage" => f.stage.to_string(),
            "kind" => f.kind_label()
        )
        .set(if t.state == State::Failed { 1.0 } else { 0.0 });
    }
    for l in &t.lag {
        gauge!(
            "kafka_consumer_consumer_fetch_manager_metrics_records_lag",
            "connector" => connector.to_string(),
            "task" => task.clone(),
            "topic" => l.topic.clone(),
            "partition" => l.partition.to_string()
        )
        .set(l.records as f64);
    }
    if let Some(max) = t.lag.iter().map(|l| l.records).max() {
        gauge!(
            "kafka_consumer_consumer_fetch_manager_metrics_records_lag_max",
            "connector" => connector.to_string(),
            "task" => task.clone()
        )
        .set(max as f64);
    }
    for state in ["running", "paused", "failed", "stopped"] {
        let value = if state == state_label(t.state) { 1.0 } else { 0.0 };
        gauge!(
            "kafka_connect_connector_task_status",
            "connector" => connector.to_string(),
            "task" => task.clone(),
            "status" => state
        )
        .set(value);
    }
}

/// The Prometheus text exposition of every task of the worker.
pub fn render(engine: &Engine, handle: &PrometheusHandle) -> String {
    for s in engine.statuses() {
        for t in &s.tasks {
            publish(&s.name, t);
        }
    }
    handle.run_upkeep();
    handle.render()
}
