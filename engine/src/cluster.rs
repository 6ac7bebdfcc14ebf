//! Distributed mode: `quiver server` workers that share a `group.id` keep their
//! state in Kafka ([`KafkaStore`]: the config, offsets and status topics) and
//! split the work through Kafka's own group protocol.
//!
//! Design notes:
//! - **Membership is Kafka consumer groups**, not a protocol of our own: every
//!   worker joins two groups (JoinGroup / SyncGroup / Heartbeat / LeaveGroup, run
//!   by librdkafka). In `group.id` it subscribes to the config topic, whose one
//!   partition makes its holder the *leader*, which runs the console's pipelines,
//!   answers connector writes and publishes connector statuses. In
//!   `{group.id}-tasks` it subscribes to one *task topic* per connector whose
//!   tasks should run (`{config topic}-task-{connector}-{n}`, with n = the
//!   connector's task count partitions; no record is ever written to it): the
//!   partitions that group assigns a worker are the tasks it runs, partition i of
//!   a connector's task topic being its task i. Two groups, because creating a
//!   connector changes the task subscription: in one group the assignor would be
//!   free to move the config partition with it, and the lead (where REST writes
//!   go) would move on every connector created, answering 409 meanwhile; the
//!   leaders' group only changes when workers come and go. Of the two shapes
//!   the design allows (Kafka Connect's `connect` protocol with a leader computing
//!   a KIP-415 assignment, or a consumer-group subscription whose assigned
//!   partitions decide ownership) this is the second, because librdkafka speaks it
//!   with every security setting a cluster may need and cannot run a custom
//!   protocol type; the assignor does the balancing Kafka Connect's leader does.
//! - **The assignor is cooperative-sticky** (KIP-429): when a worker joins, only
//!   the partitions that move to it are revoked, each after its holder let it go;
//!   every other task keeps running without a restart.
//! - **Every worker follows the config topic** and keeps its engine's connectors
//!   as the topic says ([`Engine::sync_connectors`]): a connector created, changed,
//!   paused or deleted through any worker reaches every worker's tasks. A changed
//!   task count is a new task topic, so the old tasks stop everywhere and the new
//!   ones are placed afresh.
//! - **Handing over**: a revoked worker stops the revoked tasks gracefully (flush,
//!   commit) inside the revocation callback, so the next holder, which is assigned
//!   the partitions only after that callback returns, starts from those commits.
//!   SIGTERM does the same for everything, then leaves the group at once
//!   (LeaveGroup) instead of waiting for the session timeout.
//! - **Failure**: a worker that stops heartbeating (SIGKILL, a partition, SIGSTOP)
//!   loses its membership after `session.timeout.ms` (3 s by default, where Kafka
//!   Connect waits up to `scheduled.rebalance.max.delay.ms`, 5 minutes) and the
//!   group gives its tasks to the others, which resume from the last commits.
//! - **Fencing a zombie**: every task commits its offsets in Kafka transactions
//!   under a transactional id of its own (`{group.id}-{connector}-{task}`), and the
//!   leader writes connector state under `{group.id}-state`. The worker given a
//!   task claims its id before starting it; `InitProducerId` bumps the id's epoch,
//!   so the broker refuses every later commit of the task's previous runner: a
//!   worker that was paused (SIGSTOP) or cut off past its session and comes back
//!   cannot commit an offset, however soon after resuming it tries, and that task
//!   store then stays fenced. When librdkafka reports the assignment *lost*, the
//!   worker also fences its store locally and aborts its tasks without committing.
//!   What a resumed zombie's task had already handed to a sink that is not
//!   exactly-once may still land once more (at-least-once); the exactly-once
//!   sinks' own mechanisms (deterministic Parquet names, offsets in the database
//!   transaction) decide there.
//! - **Statuses**: every worker writes the status of the tasks it runs to the
//!   status topic as Kafka Connect does (keys, shape, its `worker_id`), and the
//!   leader the connectors' and the tombstones of what is gone; a connector's
//!   status read on the leader shows every task and the worker running it.
//! - **Every worker serves the whole REST API**: a worker that does not lead
//!   forwards connector requests (`/connectors…`, `/sql`) to the leader named in
//!   the status topic, as Kafka Connect forwards writes to its leader; while no
//!   worker leads it answers 409, Kafka Connect's "rebalance in progress".
//! - **Kafka unreachable**: at start the worker serves `/health` (503, naming the
//!   broker and the error) while it retries reading the state topics with backoff;
//!   later, `/health` asks the cluster for metadata on every probe, and running
//!   tasks keep their data safe (a commit that cannot be written fails the task,
//!   which restarts from the last commit once Kafka is back).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use tracing::{debug, info, warn};

use crate::server::properties::Distributed;
use crate::store::kafka::{KafkaStore, StatusRecord};
use crate::worker::{Engine, TaskKey};

/// The status-topic key naming the worker that leads the cluster.
pub const ACTIVE_KEY: &str = "quiver-active-worker";

/// What this worker is doing in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reading the state topics, or joining the group; the text says what is in
    /// the way, if anything.
    Starting(String),
    /// A member of the group that does not lead it (it runs the tasks it is given).
    Standby,
    /// Leads the cluster: holds the config topic's partition (and runs tasks too).
    Active,
    /// Shutting down.
    Leaving,
}

/// A distributed worker's place in its cluster.
pub struct Cluster {
    settings: Distributed,
    store: Arc<KafkaStore>,
    worker_id: String,
    url: String,
    role: watch::Sender<Role>,
    stop: Arc<AtomicBool>,
    /// The thread that serves the group membership (joined on leave).
    member: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The tasks' group member, to change its subscription as connectors come and go.
    consumer: std::sync::Mutex<Option<Arc<BaseConsumer<Membership>>>>,
    /// The task topics subscribed to: topic → (connector, task count).
    work: std::sync::Mutex<BTreeMap<String, (String, u32)>>,
    /// Whether the tasks' group member has been given its subscription once.
    subscribed: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("group", &self.settings.group_id)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

type Partitions = Vec<(String, i32)>;

enum Event {
    /// A rebalance completed with nothing new for this worker.
    Joined,
    Assigned(Partitions),
    Revoked {
        partitions: Partitions,
        lost: bool,
        done: std::sync::mpsc::Sender<()>,
    },
}

fn listed(partitions: &TopicPartitionList) -> Partitions {
    partitions
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
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
        let event = Event::Revoked {
            partitions: listed(partitions),
            lost,
            done,
        };
        if self.events.send(event).is_ok() {
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
                // The partitions stand for work; no record is read from them.
                let _ = consumer.pause(partitions);
                self.store.unfence();
                let _ = self.events.send(Event::Assigned(listed(partitions)));
            }
            Rebalance::Assign(_) => {
                let _ = self.events.send(Event::Joined);
            }
            Rebalance::Error(e) => warn!(error = %e, "group rebalance failed; librdkafka retries"),
            _ => {}
        }
    }
}

/// The task topic of a connector with `count` tasks: a legal, unique topic name
/// (characters Kafka refuses are replaced, and a hash of the name added).
pub fn task_topic(config_topic: &str, connector: &str, count: u32) -> String {
    let clean: String = connector
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    if clean == connector {
        format!("{config_topic}-task-{clean}-{count}")
    } else {
        let hash = connector.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("{config_topic}-task-{clean}-{hash:016x}-{count}")
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
            consumer: std::sync::Mutex::new(None),
            work: std::sync::Mutex::new(BTreeMap::new()),
            subscribed: AtomicBool::new(false),
        })
    }

    /// The consumer group that places tasks: `{group.id}-tasks`.
    pub fn tasks_group(&self) -> String {
        format!("{}-tasks", self.settings.group_id)
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

    /// The REST URL of a worker of the cluster, by its id (`host:port`), over the
    /// scheme this worker advertises.
    pub fn url_of(&self, worker_id: &str) -> String {
        let scheme = self.url.split("://").next().unwrap_or("http");
        format!("{scheme}://{worker_id}")
    }

    /// The URL of the worker that leads the cluster, if it is another one.
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
        engine.place_tasks();
        if let Err(e) = engine.sync_connectors().await {
            warn!(error = %e, "cannot read the cluster's connectors");
        }
        self.role
            .send_replace(Role::Starting(format!("joining group {}", self.settings.group_id)));
        let (events, mut incoming) = mpsc::unbounded_channel();
        let member = |group: &str| -> Result<BaseConsumer<Membership>, String> {
            let membership = Membership {
                events: events.clone(),
                store: Arc::clone(&self.store),
                handover_limit: Duration::from_millis(u64::from(self.settings.rebalance_timeout_ms)),
            };
            self.store
                .topics()
                .client_config()
                .set("group.id", group)
                .set("client.id", format!("quiver-{}", self.worker_id))
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", self.settings.session_timeout_ms.to_string())
                .set("heartbeat.interval.ms", self.settings.heartbeat_interval_ms.to_string())
                .set(
                    "max.poll.interval.ms",
                    self.settings.rebalance_timeout_ms.max(10_000).to_string(),
                )
                .set("topic.metadata.refresh.interval.ms", "2000")
                .set("enable.auto.commit", "false")
                .create_with_context(membership)
                .map_err(|e| format!("cannot create the member of group {group}: {e}"))
        };
        let (leads, consumer) = match (member(&self.settings.group_id), member(&self.tasks_group())) {
            (Ok(l), Ok(t)) => (l, t),
            (Err(e), _) | (_, Err(e)) => {
                self.role.send_replace(Role::Starting(e));
                return;
            }
        };
        drop(events);
        if let Err(e) = leads.subscribe(&[&self.store.topics().config_topic]) {
            self.role.send_replace(Role::Starting(format!(
                "cannot join group {}: {e}",
                self.settings.group_id
            )));
            return;
        }
        let consumer = Arc::new(consumer);
        *self.consumer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&consumer));
        if let Err(e) = self.subscribe(&engine).await {
            self.role.send_replace(Role::Starting(format!(
                "cannot join group {}: {e}",
                self.settings.group_id
            )));
            return;
        }
        info!(group = %self.settings.group_id, worker = %self.worker_id, "joining the cluster's group");
        self.spawn_followers(&engine);
        let stop = Arc::clone(&self.stop);
        let member = std::thread::Builder::new()
            .name("quiver-group-member".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Serves heartbeats' results and rebalance callbacks; the
                    // assigned partitions are paused, so no records arrive.
                    let _ = consumer.poll(Duration::from_millis(50));
                    let _ = leads.poll(Duration::from_millis(50));
                }
                // The last references: dropping them closes the consumers
                // (LeaveGroup), so the work moves at once.
                drop(consumer);
                drop(leads);
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
                Event::Joined => self.joined(),
                Event::Assigned(partitions) => {
                    self.joined();
                    let config = &self.store.topics().config_topic;
                    if partitions.iter().any(|(t, _)| t == config) {
                        self.lead(&engine).await;
                    }
                    let tasks: Vec<TaskKey> = partitions.iter().filter_map(|p| self.task_of(p)).collect();
                    futures::future::join_all(tasks.into_iter().map(|key| self.hold(&engine, key))).await;
                }
                Event::Revoked { partitions, lost, done } => {
                    if lost {
                        warn!(
                            "this worker lost its place in the group (paused or cut off too long): its tasks stop without committing"
                        );
                    }
                    let tasks: Vec<TaskKey> = partitions.iter().filter_map(|p| self.task_of(p)).collect();
                    futures::future::join_all(tasks.iter().map(|key| engine.release_task(key, !lost))).await;
                    let config = &self.store.topics().config_topic;
                    if partitions.iter().any(|(t, _)| t == config) {
                        info!(lost, "handing the cluster's leadership over");
                        engine.drop_definitions(!lost).await;
                        self.store.release().await;
                        if self.role() != Role::Leaving {
                            self.role.send_replace(Role::Standby);
                        }
                    }
                    let _ = done.send(());
                }
            }
        }
    }

    fn joined(&self) {
        if matches!(self.role(), Role::Starting(_)) {
            info!(group = %self.settings.group_id, worker = %self.worker_id, "joined the cluster's group");
            self.role.send_replace(Role::Standby);
        }
    }

    /// The connector task a partition stands for, if it is one of ours.
    fn task_of(&self, (topic, partition): &(String, i32)) -> Option<TaskKey> {
        let work = self.work.lock().unwrap_or_else(|p| p.into_inner());
        let (connector, count) = work.get(topic)?;
        let index = u32::try_from(*partition).ok().filter(|i| i < count)?;
        Some((connector.clone(), index, *count))
    }

    /// Takes the lead: the config writes' transactional id, the console's pipelines.
    async fn lead(&self, engine: &Engine) {
        info!(worker = %self.worker_id, "this worker leads the cluster now");
        if !self.claim().await {
            return;
        }
        self.role.send_replace(Role::Active);
        match engine.take_over().await {
            Ok(n) => info!(connectors = n, "leading the cluster's connectors"),
            Err(e) => warn!(error = %e, "restoring the console's pipelines failed"),
        }
        self.announce("RUNNING").await;
    }

    /// Starts a task the group gave this worker, once its transactional id is
    /// ours (which fences whoever ran it before); retried while Kafka is slow.
    async fn hold(&self, engine: &Engine, key: TaskKey) {
        let (connector, index, _) = &key;
        let id = format!("{}-{connector}-{index}", self.settings.group_id);
        for attempt in 1..=10 {
            match self.store.task_writer(&id).await {
                Ok(writer) => {
                    engine.hold_task(key, Arc::new(writer));
                    return;
                }
                Err(e) => {
                    warn!(error = %e, attempt, %connector, task = index, "cannot claim the task's transactional id yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        warn!(%connector, task = index, "giving up claiming the task: it waits for the next rebalance");
    }

    /// Subscribes to the config topic and the task topic of every connector whose
    /// tasks should run (creating the topics that are missing), when that set changed.
    async fn subscribe(&self, engine: &Engine) -> crate::error::Result<()> {
        let topics = self.store.topics();
        let wanted: BTreeMap<String, (String, u32)> = engine
            .placed_connectors()
            .into_iter()
            .map(|(name, count)| (task_topic(&topics.config_topic, &name, count), (name, count)))
            .collect();
        let consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(consumer) = consumer else { return Ok(()) };
        {
            let work = self.work.lock().unwrap_or_else(|p| p.into_inner());
            if *work == wanted && self.subscribed.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
        let known: BTreeSet<String> = self
            .work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let new: Vec<(&String, u32)> = wanted
            .iter()
            .filter(|(t, _)| !known.contains(*t))
            .map(|(t, (_, n))| (t, *n))
            .collect();
        if !new.is_empty() {
            self.create_task_topics(&new).await?;
        }
        // Mapped before subscribing, so the assignment that follows is understood.
        self.work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(wanted.clone());
        let names: Vec<&str> = wanted.keys().map(String::as_str).collect();
        if names.is_empty() {
            // No task runs anywhere: this worker leaves the tasks' group.
            consumer.unsubscribe();
        } else {
            consumer
                .subscribe(&names)
                .map_err(|e| topics_error(&topics.bootstrap_servers, &format!("cannot subscribe to {names:?}"), e))?;
        }
        self.subscribed.store(true, Ordering::Relaxed);
        debug!(topics = ?names, "subscribed to the cluster's tasks");
        *self.work.lock().unwrap_or_else(|p| p.into_inner()) = wanted;
        Ok(())
    }

    async fn create_task_topics(&self, new: &[(&String, u32)]) -> crate::error::Result<()> {
        let topics = self.store.topics();
        let fail = |what: &str, e: &dyn std::fmt::Display| topics_error(&topics.bootstrap_servers, what, e);
        let admin: AdminClient<DefaultClientContext> = topics
            .client_config()
            .create()
            .map_err(|e| fail("cannot create the admin client", &e))?;
        let existing = crate::store::kafka::existing_topics(topics).await?;
        let wanted: Vec<NewTopic> = new
            .iter()
            .filter(|(t, _)| !existing.contains(t.as_str()))
            .map(|(t, n)| NewTopic::new(t, *n as i32, TopicReplication::Fixed(topics.config_replication)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let results = admin
            .create_topics(
                &wanted,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .map_err(|e| fail("cannot create the task topics", &e))?;
        for r in results {
            match r {
                Ok(t) => info!(topic = %t, "created a connector's task topic"),
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => return Err(fail(&format!("cannot create task topic {t}"), &e)),
            }
        }
        Ok(())
    }

    /// Follows the config topic (connectors changed on any worker) and publishes
    /// the statuses of what runs here.
    fn spawn_followers(self: &Arc<Self>, engine: &Arc<Engine>) {
        let (me, e) = (Arc::clone(self), Arc::clone(engine));
        tokio::spawn(async move { me.follow_config(e).await });
        tokio::spawn(Arc::clone(self).publish_statuses(Arc::clone(engine)));
    }

    async fn follow_config(self: Arc<Self>, engine: Arc<Engine>) {
        let mut seen = self.store.config_changes();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while !self.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let now = self.store.config_changes();
            if now != seen {
                seen = now;
                if let Err(e) = engine.sync_connectors().await {
                    warn!(error = %e, "cannot apply the cluster's connector changes; trying again");
                    seen = 0;
                    continue;
                }
            }
            if self.role() == Role::Leaving {
                return;
            }
            if let Err(e) = self.subscribe(&engine).await {
                warn!(error = %e, "cannot change this worker's subscription to the cluster's work; trying again");
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

    /// Writes the status of every task that runs here and, on the leader, of every
    /// connector to the status topic when the topic says otherwise, in Kafka
    /// Connect's keys and shape (`status-connector-{name}`, `status-task-{name}-{id}`
    /// → `{"state", "trace", "worker_id", "generation"}`); the leader also writes
    /// tombstones for connectors and tasks that are gone. Checked once a second.
    async fn publish_statuses(self: Arc<Self>, engine: Arc<Engine>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while !self.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            if matches!(self.role(), Role::Starting(_) | Role::Leaving) {
                continue;
            }
            let leads = self.role() == Role::Active;
            let mut now = BTreeMap::new();
            let mut expected = BTreeSet::new();
            for name in engine.connector_names() {
                if let Ok(status) = engine.status(&name) {
                    for task in &status.tasks {
                        let state = crate::worker::task_state(task.state);
                        let trace = task.error.clone().filter(|_| state == "FAILED");
                        now.insert(format!("status-task-{name}-{}", task.id), (state.to_string(), trace));
                    }
                }
                if !leads {
                    continue;
                }
                let Ok(info) = engine.connector_info(&name) else {
                    continue;
                };
                expected.extend(info.tasks.iter().map(|t| format!("status-task-{name}-{t}")));
                if let Ok(status) = engine.connector_status(&name) {
                    let key = format!("status-connector-{name}");
                    now.insert(
                        key.clone(),
                        (status.connector.state.to_string(), status.connector.trace),
                    );
                    expected.insert(key);
                }
            }
            let stored = self.store.statuses();
            for (key, (state, trace)) in &now {
                let same = stored
                    .get(key)
                    .is_some_and(|r| &r.state == state && &r.trace == trace && r.worker_id == self.worker_id);
                if same {
                    continue;
                }
                let record = StatusRecord {
                    state: state.clone(),
                    trace: trace.clone(),
                    worker_id: self.worker_id.clone(),
                    generation: 0,
                    url: None,
                };
                if let Err(e) = self.store.put_status(key, &record).await {
                    debug!(%key, error = %e, "status not written; tried again next second");
                }
            }
            if leads {
                let gone = stored.keys().filter(|k| {
                    (k.starts_with("status-connector-") || k.starts_with("status-task-")) && !expected.contains(*k)
                });
                for key in gone {
                    if let Err(e) = self.store.remove_status(key).await {
                        debug!(%key, error = %e, "status tombstone not written; tried again next second");
                    }
                }
            }
        }
    }

    /// Names this worker in the status topic as the one leading the cluster.
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
    /// the group so others take over without waiting for the session timeout.
    pub async fn leave(&self, engine: &Engine) {
        let was_active = self.role() == Role::Active;
        self.role.send_replace(Role::Leaving);
        engine.stand_down(true).await;
        if was_active {
            self.announce("UNASSIGNED").await;
        }
        self.store.release().await;
        self.stop.store(true, Ordering::Relaxed);
        self.consumer.lock().unwrap_or_else(|p| p.into_inner()).take();
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

fn topics_error(brokers: &str, what: &str, e: impl std::fmt::Display) -> crate::error::EngineError {
    crate::error::EngineError::State {
        path: format!("kafka://{brokers}"),
        message: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::task_topic;

    #[test]
    fn task_topics_are_legal_and_unique_per_connector_and_count() {
        assert_eq!(task_topic("cfg", "orders-pg", 4), "cfg-task-orders-pg-4");
        let odd = task_topic("cfg", "orders to pg", 4);
        assert!(odd.starts_with("cfg-task-orders_to_pg-"), "{odd}");
        assert!(
            odd.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "{odd}"
        );
        assert_ne!(odd, task_topic("cfg", "orders/to/pg", 4));
        assert_ne!(task_topic("cfg", "a", 2), task_topic("cfg", "a", 3));
    }
}
