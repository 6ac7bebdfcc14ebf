//! Distributed mode: `quiver server` workers that share a `group.id` keep their
//! state in Kafka ([`KafkaStore`]: the config, offsets and status topics) and
//! decide who runs the work through Kafka's own group protocol.
//!
//! Design notes:
//! - **Membership is a Kafka consumer group**, not a protocol of our own: every
//!   worker joins `group.id` (JoinGroup / SyncGroup / Heartbeat / LeaveGroup, run
//!   by librdkafka) with a subscription to the config topic, whose single
//!   partition is the cluster's work. The worker the group assigns it to runs every
//!   connector; the others stand by. Of the two shapes the design allows (Kafka
//!   Connect's `connect` protocol with a leader computing a KIP-415 assignment, or
//!   a consumer-group subscription whose assigned partitions decide ownership) this
//!   is the second, because librdkafka speaks it with every security setting a
//!   cluster may need and cannot run a custom protocol type. Splitting the work
//!   finer (a partition per connector task) is the next step on the same seam:
//!   [`Cluster`] reacts to partitions gained and revoked, whatever they stand for.
//! - **The assignor is cooperative-sticky** (KIP-429): a worker joining does not
//!   take the work from the one holding it, so nothing restarts; only a revoked
//!   partition moves, and only after its holder let it go.
//! - **Handing over**: a revoked worker stops its tasks gracefully (flush, commit)
//!   inside the revocation callback, so the next holder, which is assigned the
//!   partition only after that callback returns, starts from those commits. SIGTERM
//!   does the same, then leaves the group at once (LeaveGroup) instead of waiting for
//!   the session timeout.
//! - **Failure**: a worker that stops heartbeating (SIGKILL, a partition, SIGSTOP)
//!   loses its membership after `session.timeout.ms` (3 s by default, where Kafka
//!   Connect waits up to `scheduled.rebalance.max.delay.ms`, 5 minutes) and the
//!   group gives the work to another worker, which resumes from the last commits.
//! - **Fencing a zombie**: the holder of the work writes the state topics in
//!   Kafka transactions under one transactional id per cluster
//!   (`{group.id}-state`). A new holder's `InitProducerId` for that id bumps its
//!   epoch, so the broker refuses every later write of the old holder: a worker
//!   that was paused (SIGSTOP) or cut off past its session and comes back cannot
//!   commit an offset, however soon after resuming it tries; the store then stays
//!   fenced. When librdkafka reports the assignment *lost*, the worker also fences
//!   its store locally and aborts its tasks without committing. What a resumed
//!   zombie's task had already handed to a sink that is not exactly-once may still
//!   land once more (at-least-once); the exactly-once sinks' own mechanisms
//!   (deterministic Parquet names, offsets in the database transaction) decide
//!   there.
//! - **Statuses**: the holder writes every connector's and task's status to the
//!   status topic as Kafka Connect does (keys, shape, tombstones), so tools that
//!   read the topic see them; the REST API answers from the holder itself.
//! - **Every worker serves the whole REST API**: a standby forwards connector
//!   requests (`/connectors…`, `/sql`) to the active worker named in the status
//!   topic, as Kafka Connect forwards writes to its leader; while no worker holds
//!   the work it answers 409, Kafka Connect's "rebalance in progress".
//! - **Kafka unreachable**: at start the worker serves `/health` (503, naming the
//!   broker and the error) while it retries reading the state topics with backoff;
//!   later, `/health` asks the cluster for metadata on every probe, and running
//!   tasks keep their data safe (a commit that cannot be written fails the task,
//!   which restarts from the last commit once Kafka is back).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use serde_json::json;
use std::collections::BTreeMap;
use tokio::sync::{mpsc, watch};

use tracing::{debug, info, warn};

use crate::server::properties::Distributed;
use crate::store::kafka::{KafkaStore, StatusRecord};
use crate::worker::Engine;

/// The status-topic key naming the worker that holds the cluster's work.
pub const ACTIVE_KEY: &str = "quiver-active-worker";

/// What this worker is doing in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reading the state topics, or joining the group; the text says what is in
    /// the way, if anything.
    Starting(String),
    /// A member of the group without the work.
    Standby,
    /// Holds the work: runs every connector.
    Active,
    /// Shutting down.
    Leaving,
}

/// A distributed worker's place in its cluster.
#[derive(Debug)]
pub struct Cluster {
    settings: Distributed,
    store: Arc<KafkaStore>,
    worker_id: String,
    url: String,
    role: watch::Sender<Role>,
    stop: Arc<AtomicBool>,
    /// The thread that serves the group membership (joined on leave).
    member: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

enum Event {
    /// A rebalance completed (this worker is a member of the group now).
    Joined,
    Gained,
    Revoked {
        lost: bool,
        done: std::sync::mpsc::Sender<()>,
    },
}

/// librdkafka's rebalance callbacks, turned into [`Event`]s for the worker.
struct Membership {
    events: mpsc::UnboundedSender<Event>,
    store: Arc<KafkaStore>,
    handover_limit: Duration,
}

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        if partitions.count() == 0 {
            return;
        }
        let lost = consumer.assignment_lost();
        if lost {
            // Before anything else can run: another worker may own the work now.
            self.store.fence();
        }
        let (done, wait) = std::sync::mpsc::channel();
        if self.events.send(Event::Revoked { lost, done }).is_ok() {
            // The group gives the work to another worker only once this returns:
            // wait for the tasks to flush and commit (bounded by the rebalance timeout).
            if wait.recv_timeout(self.handover_limit).is_err() {
                warn!(
                    limit_s = self.handover_limit.as_secs(),
                    "tasks did not stop within the rebalance timeout; handing the work over anyway"
                );
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) if partitions.count() > 0 => {
                // The partition stands for the work; its records are read by the store.
                let _ = consumer.pause(partitions);
                self.store.unfence();
                let _ = self.events.send(Event::Gained);
            }
            Rebalance::Assign(_) => {
                let _ = self.events.send(Event::Joined);
            }
            Rebalance::Error(e) => warn!(error = %e, "group rebalance failed; librdkafka retries"),
            _ => {}
        }
    }
}

impl Cluster {
    pub fn new(settings: Distributed, store: Arc<KafkaStore>, worker_id: String, url: String) -> Arc<Self> {
        let reading = format!("reading the state topics from {}", settings.topics.bootstrap_servers);
        Arc::new(Self {
            settings,
            store,
            worker_id,
            url,
            role: watch::channel(Role::Starting(reading)).0,
            stop: Arc::new(AtomicBool::new(false)),
            member: std::sync::Mutex::new(None),
        })
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Changes of [`Cluster::role`].
    pub fn watch_role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    pub fn group_id(&self) -> &str {
        &self.settings.group_id
    }

    /// The URL of the worker that holds the work, if it is another one.
    pub fn active_url(&self) -> Option<String> {
        let statuses = self.store.statuses();
        let active = statuses.get(ACTIVE_KEY)?;
        if active.state != "RUNNING" || active.worker_id == self.worker_id {
            return None;
        }
        active.url.clone()
    }

    /// Reads the state topics (retrying with backoff while Kafka is unreachable),
    /// then joins the group and follows its decisions until [`Cluster::leave`].
    pub async fn run(self: Arc<Self>, engine: Arc<Engine>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            match self.store.load().await {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot read the cluster's state from Kafka; retrying");
                    self.role.send_replace(Role::Starting(e.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.role
            .send_replace(Role::Starting(format!("joining group {}", self.settings.group_id)));
        let (events, mut incoming) = mpsc::unbounded_channel();
        let membership = Membership {
            events,
            store: Arc::clone(&self.store),
            handover_limit: Duration::from_millis(u64::from(self.settings.rebalance_timeout_ms)),
        };
        let consumer: BaseConsumer<Membership> = match self
            .store
            .topics()
            .client_config()
            .set("group.id", &self.settings.group_id)
            .set("client.id", format!("quiver-{}", self.worker_id))
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", self.settings.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", self.settings.heartbeat_interval_ms.to_string())
            .set(
                "max.poll.interval.ms",
                self.settings.rebalance_timeout_ms.max(10_000).to_string(),
            )
            .set("enable.auto.commit", "false")
            .create_with_context(membership)
        {
            Ok(c) => c,
            Err(e) => {
                self.role
                    .send_replace(Role::Starting(format!("cannot create the group member: {e}")));
                return;
            }
        };
        if let Err(e) = consumer.subscribe(&[&self.store.topics().config_topic]) {
            self.role.send_replace(Role::Starting(format!(
                "cannot join group {}: {e}",
                self.settings.group_id
            )));
            return;
        }
        info!(group = %self.settings.group_id, worker = %self.worker_id, "joining the cluster's group");
        tokio::spawn(Arc::clone(&self).publish_statuses(Arc::clone(&engine)));
        let stop = Arc::clone(&self.stop);
        let member = std::thread::Builder::new()
            .name("quiver-group-member".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Serves heartbeats' results and rebalance callbacks; the config
                    // partition itself is paused, so no records arrive.
                    let _ = consumer.poll(Duration::from_millis(100));
                }
                // Dropping the consumer closes it: LeaveGroup, so the work moves at once.
                drop(consumer);
            });
        match member {
            Ok(thread) => *self.member.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread),
            Err(e) => {
                self.role
                    .send_replace(Role::Starting(format!("cannot start the group member: {e}")));
                return;
            }
        }
        while let Some(event) = incoming.recv().await {
            match event {
                Event::Joined => {
                    if matches!(self.role(), Role::Starting(_)) {
                        info!(group = %self.settings.group_id, worker = %self.worker_id, "joined the cluster's group; standing by");
                        self.role.send_replace(Role::Standby);
                    }
                }
                Event::Gained => {
                    info!(worker = %self.worker_id, "this worker holds the cluster's work now");
                    if !self.claim().await {
                        continue;
                    }
                    self.role.send_replace(Role::Active);
                    match engine.take_over().await {
                        Ok(n) => info!(connectors = n, "took over the cluster's connectors"),
                        Err(e) => warn!(error = %e, "taking over the cluster's connectors failed"),
                    }
                    self.announce("RUNNING").await;
                }
                Event::Revoked { lost, done } => {
                    if lost {
                        warn!(
                            "this worker lost its place in the group (paused or cut off too long): its tasks stop without committing"
                        );
                    } else {
                        info!("handing the cluster's work over: tasks flush and commit");
                    }
                    engine.stand_down(!lost).await;
                    self.store.release().await;
                    if self.role() != Role::Leaving {
                        self.role.send_replace(Role::Standby);
                    }
                    let _ = done.send(());
                }
            }
        }
    }

    /// Takes the cluster's transactional id, fencing a previous holder; retried
    /// for a while (Kafka may be slow to answer right after a rebalance).
    async fn claim(&self) -> bool {
        let id = format!("{}-state", self.settings.group_id);
        for attempt in 1..=10 {
            match self.store.claim(&id).await {
                Ok(()) => return true,
                Err(e) => {
                    warn!(error = %e, attempt, "cannot claim the cluster's state writes yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        warn!("giving up claiming the cluster's state writes: standing by until the next rebalance");
        false
    }

    /// While this worker holds the work, writes every connector's and task's
    /// status to the status topic when it changes, in Kafka Connect's keys and
    /// shape (`status-connector-{name}`, `status-task-{name}-{id}` →
    /// `{"state", "trace", "worker_id", "generation"}`), and tombstones for
    /// connectors that are gone; checked once a second.
    async fn publish_statuses(self: Arc<Self>, engine: Arc<Engine>) {
        let mut written: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while !self.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            if self.role() != Role::Active {
                written.clear();
                continue;
            }
            let mut now = BTreeMap::new();
            for name in engine.connector_names() {
                let Ok(status) = engine.connector_status(&name) else {
                    continue;
                };
                now.insert(
                    format!("status-connector-{name}"),
                    (status.connector.state.to_string(), status.connector.trace.clone()),
                );
                for (id, task) in &status.tasks {
                    now.insert(
                        format!("status-task-{name}-{id}"),
                        (task.state.to_string(), task.trace.clone()),
                    );
                }
            }
            for (key, (state, trace)) in &now {
                if written.get(key) == Some(&(state.clone(), trace.clone())) {
                    continue;
                }
                let record = StatusRecord {
                    state: state.clone(),
                    trace: trace.clone(),
                    worker_id: self.worker_id.clone(),
                    generation: 0,
                    url: None,
                };
                match self.store.put_status(key, &record).await {
                    Ok(()) => {
                        written.insert(key.clone(), (state.clone(), trace.clone()));
                    }
                    Err(e) => debug!(%key, error = %e, "status not written; tried again next second"),
                }
            }
            let gone: Vec<String> = written.keys().filter(|k| !now.contains_key(*k)).cloned().collect();
            for key in gone {
                if self.store.remove_status(&key).await.is_ok() {
                    written.remove(&key);
                }
            }
        }
    }

    /// Names this worker in the status topic as the one holding the work.
    async fn announce(&self, state: &str) {
        let record = StatusRecord {
            state: state.to_string(),
            trace: None,
            worker_id: self.worker_id.clone(),
            generation: 0,
            url: Some(self.url.clone()),
        };
        if let Err(e) = self.store.put_status(ACTIVE_KEY, &record).await {
            warn!(error = %e, "cannot name this worker as the active one in the status topic");
        }
    }

    /// Graceful leave (SIGTERM): tasks flush and commit, then the worker leaves
    /// the group so another takes over without waiting for the session timeout.
    pub async fn leave(&self, engine: &Engine) {
        let was_active = self.role() == Role::Active;
        self.role.send_replace(Role::Leaving);
        engine.stand_down(true).await;
        if was_active {
            self.announce("UNASSIGNED").await;
        }
        self.store.release().await;
        self.stop.store(true, Ordering::Relaxed);
        let member = self.member.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = member {
            // Closing the consumer sends LeaveGroup; wait for it before the process ends.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// `/health`'s answer while the worker is not serving its role normally.
    pub fn unhealthy(&self) -> Option<serde_json::Value> {
        match self.role() {
            Role::Starting(why) => Some(json!({
                "status": "starting",
                "message": format!("Worker is still starting up: {why}"),
            })),
            Role::Leaving => Some(json!({"status": "unhealthy", "message": "Worker is shutting down"})),
            Role::Standby | Role::Active => None,
        }
    }
}
