//! Distributed mode against the Tansu broker: the Kafka-topic store in Kafka
//! Connect's record shapes, workers sharing a `group.id` that hand the work over
//! on SIGKILL and SIGTERM, and a worker that waits for Kafka and says so in
//! `/health`.

use std::path::Path;
use std::time::{Duration, Instant};

use quiver_connectors::api::Offsets;
use quiver_engine::store::kafka::{KafkaStore, KafkaTopics};
use quiver_engine::store::{ConnectorRecord, Store, TargetState, check_contract};
use serde_json::json;

use crate::kafka_support::{broker, consume, unique};
use crate::server::{Server, ids, sql_connector};

fn topics(bootstrap: &str, prefix: &str) -> KafkaTopics {
    KafkaTopics {
        bootstrap_servers: bootstrap.to_string(),
        config_topic: format!("{prefix}-configs"),
        config_replication: 1,
        offsets_topic: format!("{prefix}-offsets"),
        offsets_partitions: 5,
        offsets_replication: 1,
        status_topic: format!("{prefix}-status"),
        status_partitions: 2,
        status_replication: 1,
        client: Default::default(),
    }
}

/// A distributed worker's properties in Kafka Connect's keys.
fn worker_properties(dir: &Path, bootstrap: &str, group: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{group}-worker.properties"));
    std::fs::write(
        &path,
        format!(
            "bootstrap.servers={bootstrap}\ngroup.id={group}\n\
             config.storage.topic={group}-configs\noffset.storage.topic={group}-offsets\nstatus.storage.topic={group}-status\n\
             config.storage.replication.factor=1\noffset.storage.replication.factor=1\nstatus.storage.replication.factor=1\n\
             offset.storage.partitions=5\nstatus.storage.partitions=2\n"
        ),
    )
    .unwrap();
    path
}

fn start_worker(dir: &Path, name: &str, properties: &Path) -> Server {
    Server::start_logging(
        &dir.join(name),
        &["--worker-config", properties.to_str().unwrap()],
        "info",
    )
}

/// Polls `path` until `ok` holds for its status and body (any status counts).
fn wait_answer(
    server: &Server,
    path: &str,
    what: &str,
    limit: Duration,
    ok: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + limit;
    loop {
        let (code, body) = server.call("GET", path, None);
        if ok(code, &body) {
            return (code, body);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {code} {body}\nits log:\n{}",
            server.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Tansu broker of the test's own on `bootstrap` (to stop and start at will);
/// `storage` is `memory://…/` or `s3://bucket/` on the test's S3 server.
fn tansu(bootstrap: &str, storage: &str) -> std::process::Child {
    let tansu = std::env::var("QUIVER_TEST_TANSU").expect("QUIVER_TEST_TANSU is not set: run the suite with tests/run");
    let s3 = std::env::var("QUIVER_TEST_S3").unwrap_or_default();
    std::process::Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://{bootstrap}"),
            "--advertised-listener-url",
            &format!("tcp://{bootstrap}"),
            "--storage-engine",
            storage,
        ])
        .envs([
            ("AWS_ENDPOINT", s3.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the tansu broker starts")
}

/// A loopback `host:port` nothing listens on yet.
fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Every id from 0 to the highest written reached the files: none was lost.
fn assert_no_id_lost(out: &Path) {
    let counts = ids(out);
    let max = *counts.keys().last().unwrap();
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..=max).collect::<Vec<_>>()
    );
}

/// The worker id (`host:port`) a server advertises: its address.
fn worker_id(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_store_keeps_state_in_kafka_connects_shapes_and_every_worker_reads_it() {
    let bootstrap = broker();
    let t = topics(&bootstrap, &unique("dstore"));
    let store = KafkaStore::open(t.clone()).await.unwrap();
    check_contract(&store).await;
    store
        .commit_offsets("kept", &Offsets([("rows".to_string(), json!(12))].into()))
        .await
        .unwrap();

    // A second worker reads everything to the end before it answers.
    let other = KafkaStore::open(t.clone()).await.unwrap();
    assert_eq!(
        other.offsets("kept").await.unwrap(),
        Some(Offsets([("rows".to_string(), json!(12))].into()))
    );
    let names: Vec<String> = other.connectors().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a"], "the contract left connector a, paused");
    assert_eq!(other.connectors().await.unwrap()[0].target, TargetState::Paused);

    // What one writes, the other reads within a poll.
    let late = ConnectorRecord {
        name: "late".into(),
        config: [("connector.class".to_string(), "quiver".to_string())].into(),
        target: TargetState::Stopped,
        order: 9,
        columns: None,
    };
    store.put_connector(&late).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = other.connectors().await.unwrap();
        if seen
            .iter()
            .any(|c| c.name == "late" && c.target == TargetState::Stopped)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the other store never saw 'late': {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    other.check().await.unwrap();

    // The records themselves, as Kafka Connect writes them.
    // Everything in the topics (the reads stop at the timeout).
    let config = consume(&bootstrap, &t.config_topic, usize::MAX, Duration::from_secs(5));
    let latest = |key: &str| {
        config
            .iter()
            .rev()
            .find(|g| g.key_text() == key)
            .map(|g| g.json())
            .unwrap_or_else(|| panic!("no record {key}"))
    };
    assert_eq!(
        latest("connector-late"),
        json!({"properties": {"connector.class": "quiver"}})
    );
    assert_eq!(
        latest("target-state-late"),
        json!({"state": "PAUSED", "state.v2": "STOPPED"})
    );
    assert_eq!(
        latest("target-state-a"),
        json!({"state": "PAUSED", "state.v2": "PAUSED"})
    );
    let offsets = consume(&bootstrap, &t.offsets_topic, usize::MAX, Duration::from_secs(5));
    let kept = offsets
        .iter()
        .find(|g| g.key_text() == r#"["kept",{"partition":"rows"}]"#)
        .expect("the offset record keyed as Kafka Connect keys it");
    assert_eq!(kept.json(), json!(12));

    // The topics were created compacted.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for topic in [&t.config_topic, &t.offsets_topic, &t.status_topic] {
        let described = admin
            .describe_configs(
                &[rdkafka::admin::ResourceSpecifier::Topic(topic)],
                &rdkafka::admin::AdminOptions::new(),
            )
            .await
            .unwrap();
        let resource = described[0].as_ref().unwrap();
        let policy = resource.get("cleanup.policy").and_then(|e| e.value.clone());
        assert_eq!(policy.as_deref(), Some("compact"), "{topic}");
    }
}

/// Two workers with one `group.id`: either serves the whole API (the standby
/// forwards), SIGKILL of the one running the connector moves it to the other
/// within 10 s with no id lost, and SIGTERM hands it over without waiting for the
/// session timeout.
#[test]
fn workers_sharing_a_group_id_take_over_from_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let group = unique("qcluster");
    let props = worker_properties(dir.path(), &broker(), &group);
    let out = dir.path().join("out");
    let a = start_worker(dir.path(), "a", &props);
    let b = start_worker(dir.path(), "b", &props);
    assert!(a.banner.contains(&format!("in group {group}")), "{}", a.banner);
    // Both answer connector requests once one of them holds the work.
    for w in [&a, &b] {
        wait_answer(w, "/health", "healthy", Duration::from_secs(60), |c, _| c == 200);
        wait_answer(
            w,
            "/connectors",
            "a worker holding the work",
            Duration::from_secs(60),
            |c, _| c == 200,
        );
    }
    let (status, created) = b.json("POST", "/connectors", &sql_connector("live", &out, 1000));
    assert_eq!(status, 201, "{created}");
    let (_, running) = wait_answer(
        &a,
        "/connectors/live/status",
        "live RUNNING",
        Duration::from_secs(30),
        |code, s| code == 200 && s["tasks"][0]["state"] == "RUNNING",
    );
    let holder = running["tasks"][0]["worker_id"].as_str().unwrap().to_string();
    assert_eq!(
        b.get("/connectors/live/status")["tasks"][0]["worker_id"],
        holder.as_str()
    );
    // The status topic says the same, in Kafka Connect's keys and shape.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let statuses = consume(
            &broker(),
            &format!("{group}-status"),
            usize::MAX,
            Duration::from_secs(2),
        );
        let task = statuses
            .iter()
            .rev()
            .find(|g| g.key_text() == "status-task-live-0")
            .map(|g| g.json());
        if let Some(t) = &task
            && t["state"] == "RUNNING"
        {
            assert_eq!(t["worker_id"], holder.as_str(), "{t}");
            assert!(statuses.iter().any(|g| g.key_text() == "status-connector-live"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no RUNNING status-task-live-0 in the status topic: {task:?}"
        );
    }
    let (active, survivor) = if holder == worker_id(&a) { (a, b) } else { (b, a) };
    assert_eq!(worker_id(&active), holder, "the holder is one of the two workers");
    survivor.wait_for("/connectors/live/offsets", "a commit", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));

    drop(active); // SIGKILL: no flush, no commit, no LeaveGroup
    let killed = Instant::now();
    let me = worker_id(&survivor);
    let deadline = killed + Duration::from_secs(30);
    loop {
        let (code, s) = survivor.call("GET", "/connectors/live/status", None);
        if code == 200 && s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] == me.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "the survivor never took over: {code} {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "took over in {took:?}");
    let before = ids(&out).len() as i64;
    survivor.wait_for("/connectors/live/offsets", "progress after the take-over", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > before + 500
    });

    // A third worker joins: the group may move the task or the lead to it; a task
    // that stays is not restarted.
    let started_before = task_starts(&survivor, "live", 0);
    assert!(started_before >= 1, "the take-over started the task");
    let c = start_worker(dir.path(), "c", &props);
    // Healthy once it is a member of the group.
    wait_answer(&c, "/health", "c joined", Duration::from_secs(60), |code, _| {
        code == 200
    });
    let cid = worker_id(&c);
    let (_, s) = wait_answer(
        &c,
        "/connectors/live/status",
        "c serves the API",
        Duration::from_secs(60),
        |code, s| {
            code == 200
                && s["tasks"][0]["state"] == "RUNNING"
                && (s["tasks"][0]["worker_id"] == me.as_str() || s["tasks"][0]["worker_id"] == cid.as_str())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    // (409 while the lead moves: then nothing is claimed here.)
    let (code, now) = c.call("GET", "/connectors/live/status", None);
    if s["tasks"][0]["worker_id"] == me.as_str() && code == 200 && now["tasks"][0]["worker_id"] == me.as_str() {
        assert_eq!(
            task_starts(&survivor, "live", 0),
            started_before,
            "a task that stays is not restarted"
        );
    }
    // SIGTERM: the survivor commits, leaves, and c runs everything at once.
    let leaving = Instant::now();
    let survivor_log = std::sync::Arc::clone(&survivor.log);
    survivor.sigterm();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, s) = c.call("GET", "/connectors/live/status", None);
        if code == 200 && s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] == cid.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "c never took over: {code} {s}\nc's log:\n{}\nthe survivor's log:\n{}",
            c.log.lock().unwrap().join("\n"),
            survivor_log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let handed = leaving.elapsed();
    assert!(
        handed < Duration::from_secs(8),
        "a graceful leave hands over without the session timeout: {handed:?}"
    );
    c.wait_for("/connectors/live/offsets", "progress on c", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > before + 1500
    });
    c.sigterm();
    // Every id up to the last one written arrived: nothing lost to the kill or the moves.
    assert_no_id_lost(&out);
    eprintln!("took over after SIGKILL in {took:?}, after SIGTERM in {handed:?}");
}

/// A worker whose Kafka is not there yet serves `/health` as 503 naming the
/// broker, retries, and is healthy without a restart once the broker is up; a
/// broker that goes away turns `/health` to 503 again.
#[test]
fn a_worker_waits_for_kafka_and_health_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = free_address();
    let props = worker_properties(dir.path(), &bootstrap, &unique("qwait"));
    let w = start_worker(dir.path(), "w", &props);
    wait_answer(
        &w,
        "/health",
        "503 while Kafka is away",
        Duration::from_secs(20),
        |c, h| c == 503 && h["status"] == "starting" && h["message"].as_str().unwrap_or("").contains(&bootstrap),
    );

    let mut broker = tansu(&bootstrap, "memory://tansu/");
    wait_answer(
        &w,
        "/health",
        "healthy once Kafka is up",
        Duration::from_secs(60),
        |c, h| c == 200 && h["status"] == "healthy",
    );

    let _ = broker.kill();
    let _ = broker.wait();
    let (_, gone) = wait_answer(
        &w,
        "/health",
        "503 once Kafka is gone",
        Duration::from_secs(20),
        |c, h| c == 503 && h["status"] == "unhealthy",
    );
    assert!(
        gone["message"].as_str().unwrap().contains("Kafka does not answer"),
        "{gone}"
    );
}

/// A worker paused past its session (SIGSTOP) loses its task to another; when it
/// resumes (SIGCONT) it is fenced: it commits nothing, the offsets never move
/// back, and its API shows the task on the new holder.
#[test]
fn a_paused_worker_that_comes_back_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let group = unique("qzombie");
    let props = worker_properties(dir.path(), &broker(), &group);
    let out = dir.path().join("out");
    let a = start_worker(dir.path(), "a", &props);
    wait_answer(
        &a,
        "/connectors",
        "a holds the work",
        Duration::from_secs(60),
        |c, _| c == 200,
    );
    let b = start_worker(dir.path(), "b", &props);
    wait_answer(&b, "/health", "b joined", Duration::from_secs(60), |c, _| c == 200);
    assert_eq!(b.json("POST", "/connectors", &sql_connector("live", &out, 1000)).0, 201);
    let (_, s) = wait_answer(
        &b,
        "/connectors/live/status",
        "live RUNNING",
        Duration::from_secs(30),
        |c, s| c == 200 && s["tasks"][0]["state"] == "RUNNING",
    );
    // The zombie-to-be is the worker running the task.
    let (a, b) = if s["tasks"][0]["worker_id"] == worker_id(&a).as_str() {
        (a, b)
    } else {
        (b, a)
    };
    b.wait_for("/connectors/live/offsets", "a commit", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });

    let signal = |sig: &str, s: &Server| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &s.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP", &a);
    let bid = worker_id(&b);
    wait_answer(
        &b,
        "/connectors/live/status",
        "b takes over",
        Duration::from_secs(30),
        |c, s| c == 200 && s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] == bid.as_str(),
    );
    // (409 while the group moves the lead: asked again.)
    let position = |s: &Server| -> i64 {
        let (_, o) = wait_answer(
            s,
            "/connectors/live/offsets",
            "offsets",
            Duration::from_secs(20),
            |c, _| c == 200,
        );
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0)
    };
    let mut last = position(&b);
    signal("-CONT", &a);
    // For a few seconds after the zombie wakes, the committed position only grows.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let now = position(&b);
        assert!(now >= last, "the committed position moved back from {last} to {now}");
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
    // The zombie knows it: its API shows the task on b.
    wait_answer(
        &a,
        "/connectors/live/status",
        "a forwards to b",
        Duration::from_secs(20),
        |c, s| c == 200 && s["tasks"][0]["worker_id"] == bid.as_str(),
    );
    let log = a.log.lock().unwrap().join("\n");
    assert!(
        log.contains("lost its place in the group") || log.contains("fenced"),
        "the zombie says why it stopped:\n{log}"
    );
    b.wait_for("/connectors/live/offsets", "b keeps going", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > last + 500
    });
    drop(a);
    b.sigterm();
    assert_no_id_lost(&out);
}

/// Kafka goes away mid-run and comes back (a broker whose log lives on the S3
/// server, so it survives its restart): the worker says so in `/health`, keeps
/// what it committed, and carries on by itself once the broker is back.
#[test]
fn a_worker_rides_out_a_kafka_outage_and_resumes_by_itself() {
    let s3 = std::env::var("QUIVER_TEST_S3").expect("QUIVER_TEST_S3 is not set: run the suite with tests/run");
    let bucket = unique("tansu").to_lowercase();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let made = agent.put(format!("{s3}/{bucket}")).send_empty().unwrap();
    assert!(made.status().is_success(), "bucket: {}", made.status());
    let bootstrap = free_address();
    let start_broker = || tansu(&bootstrap, &format!("s3://{bucket}/"));
    let mut broker = start_broker();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let props = worker_properties(dir.path(), &bootstrap, &unique("qoutage"));
    let w = start_worker(dir.path(), "w", &props);
    wait_answer(
        &w,
        "/connectors",
        "w holds the work",
        Duration::from_secs(60),
        |c, _| c == 200,
    );
    assert_eq!(w.json("POST", "/connectors", &sql_connector("live", &out, 500)).0, 201);
    w.wait_for("/connectors/live/offsets", "a commit", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > 0
    });

    let _ = broker.kill();
    let _ = broker.wait();
    let (_, down) = wait_answer(
        &w,
        "/health",
        "503 while Kafka is down",
        Duration::from_secs(20),
        |c, _| c == 503,
    );
    assert!(down["message"].as_str().unwrap().contains(&bootstrap), "{down}");
    std::thread::sleep(Duration::from_secs(2));
    let before = ids(&out).len() as i64;

    let mut broker = start_broker();
    wait_answer(
        &w,
        "/health",
        "healthy once Kafka is back",
        Duration::from_secs(60),
        |c, _| c == 200,
    );
    wait_answer(
        &w,
        "/connectors/live/offsets",
        "commits again",
        Duration::from_secs(90),
        |c, o| c == 200 && o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > before + 500,
    );
    w.sigterm();
    let _ = broker.kill();
    let _ = broker.wait();
    assert_no_id_lost(&out);
}

/// A datagen connector with `tasks` tasks making `total` rows at `rate` rows/s
/// into `sink` (a CREATE SINK … WITH (…) clause, without AS SELECT).
fn generator(name: &str, tasks: u32, rate: u32, total: u32, sink: &str) -> serde_json::Value {
    json!({
        "name": name,
        "config": {
            "connector.class": "quiver",
            "tasks.max": tasks.to_string(),
            "quiver.sql": format!(
                "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '{rate}', rows.total = '{total}', batch.linger = '100ms', 'fields.id.kind' = 'sequence');
                 {sink} AS SELECT id FROM gen;"
            ),
        }
    })
}

/// (task id, state, worker id) of every task in a connector's status.
fn placed(status: &serde_json::Value) -> Vec<(u64, String, String)> {
    status["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| {
                    (
                        t["id"].as_u64().unwrap_or(u64::MAX),
                        t["state"].as_str().unwrap_or_default().to_string(),
                        t["worker_id"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every task of every connector runs on one of `workers`; returns
/// each connector's placement.
fn all_running_on(
    via: &Server,
    connectors: &[&str],
    tasks: usize,
    workers: &[String],
    limit: Duration,
) -> Vec<Vec<(u64, String, String)>> {
    let deadline = Instant::now() + limit;
    loop {
        let now: Vec<_> = connectors
            .iter()
            .map(|c| {
                let (code, s) = via.call("GET", &format!("/connectors/{c}/status"), None);
                if code == 200 { placed(&s) } else { Vec::new() }
            })
            .collect();
        let done = now
            .iter()
            .all(|p| p.len() == tasks && p.iter().all(|(_, state, w)| state == "RUNNING" && workers.contains(w)));
        if done {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "not every task RUNNING on {workers:?} after {limit:?}: {now:?}\nlog:\n{}",
            via.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A call answered other than 409 (Kafka Connect's "rebalance in progress"),
/// asked again for up to a minute.
fn wait_answer_to(server: &Server, method: &str, path: &str) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = server.call(method, path, None);
        if code != 409 || Instant::now() > deadline {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the workers say, for a failed assertion: statuses and warnings.
fn diagnose(workers: &[Server], connectors: &[&str]) -> String {
    let mut out = String::new();
    for w in workers {
        out.push_str(&format!("--- worker {}\n", worker_id(w)));
        for c in connectors {
            out.push_str(&format!(
                "{c}: {}\n",
                w.call("GET", &format!("/connectors/{c}/status"), None).1
            ));
        }
        for line in w
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// How often a worker started task `task` of `connector` (from its log).
fn task_starts(server: &Server, connector: &str, task: u64) -> usize {
    let (p, t) = (format!("pipeline={connector} "), format!("task={task} "));
    server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("pipeline task starting") && l.contains(&p) && l.contains(&t))
        .count()
}

/// Three workers split two connectors of four tasks each (datagen → Parquet and
/// datagen → PostgreSQL with exactly-once offsets); one is killed mid-stream and
/// its tasks run on the others within 10 s; a fourth joins and some tasks move to
/// it while the others keep running without a restart; every row arrives, and
/// PostgreSQL holds each exactly once.
#[test]
fn three_workers_split_tasks_survive_a_kill_and_share_with_a_newcomer() {
    const TOTAL: u32 = 120_000;
    let dir = tempfile::tempdir().unwrap();
    let group = unique("qsplit");
    let props = worker_properties(dir.path(), &broker(), &group);
    let out = dir.path().join("parquet");
    let table = unique("split").replace('-', "_");
    let mut workers: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|n| start_worker(dir.path(), n, &props))
        .collect();
    for w in &workers {
        wait_answer(w, "/connectors", "a leader", Duration::from_secs(60), |c, _| c == 200);
    }
    let files = format!(
        "CREATE SINK out WITH (connector = 'filesystem', path = '{}', format = 'parquet', 'rollover.rows' = '1000')",
        out.display()
    );
    let pg = format!(
        "CREATE SINK out WITH (connector = 'postgres', 'connection.url' = 'jdbc:postgresql://127.0.0.1:5432/test?user=postgres', \
         'table.name.format' = '{table}', 'auto.create' = 'true', 'sink.delivery.guarantee' = 'exactly-once')"
    );
    // quiver_offsets is keyed by connector name: one of this test's own.
    let to_pg = unique("to-pg");
    let connectors = ["to-files", to_pg.as_str()];
    for (name, sink) in connectors.iter().zip([&files, &pg]) {
        let (code, body) = workers[1].json("POST", "/connectors", &generator(name, 4, 1500, TOTAL, sink));
        assert_eq!(code, 201, "{body}");
    }
    let ids: Vec<String> = workers.iter().map(worker_id).collect();
    let first = all_running_on(&workers[2], &connectors, 4, &ids, Duration::from_secs(60));
    let busy: std::collections::BTreeSet<&String> = first.iter().flatten().map(|(_, _, w)| w).collect();
    assert!(busy.len() >= 2, "eight tasks run on more than one worker: {first:?}");
    // Offsets of split tasks are kept per task, as Kafka Connect keys them.
    workers[0].wait_for(&format!("/connectors/{to_pg}/offsets"), "commits of every task", |o| {
        o["offsets"].as_array().is_some_and(|a| a.len() == 4)
    });

    // SIGKILL the worker running the PostgreSQL connector's task 0: its tasks move within 10 s.
    let victim = first[1].iter().find(|(id, _, _)| *id == 0).unwrap().2.clone();
    let at = ids.iter().position(|w| *w == victim).unwrap();
    drop(workers.remove(at));
    let killed = Instant::now();
    let survivors: Vec<String> = workers.iter().map(worker_id).collect();
    all_running_on(&workers[0], &connectors, 4, &survivors, Duration::from_secs(30));
    let failover = killed.elapsed();
    assert!(
        failover < Duration::from_secs(10),
        "tasks running elsewhere after {failover:?}"
    );

    // A fourth worker joins: some tasks move to it; the others are not restarted.
    std::thread::sleep(Duration::from_secs(2));
    let before = all_running_on(&workers[0], &connectors, 4, &survivors, Duration::from_secs(10));
    let starts_before: Vec<Vec<usize>> = before
        .iter()
        .zip(connectors)
        .map(|(p, c)| {
            p.iter()
                .map(|(id, _, w)| task_starts(&workers[survivors.iter().position(|s| s == w).unwrap()], c, *id))
                .collect()
        })
        .collect();
    workers.push(start_worker(dir.path(), "d", &props));
    let d = worker_id(&workers[2]);
    let joined = Instant::now();
    let mut everyone = survivors.clone();
    everyone.push(d.clone());
    let after = loop {
        let now = all_running_on(&workers[0], &connectors, 4, &everyone, Duration::from_secs(60));
        if now.iter().flatten().any(|(_, _, w)| *w == d) {
            break now;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(60),
            "no task moved to the new worker: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let rebalance = joined.elapsed();
    for (c, ((was, now), starts)) in connectors.iter().zip(before.iter().zip(&after).zip(&starts_before)) {
        for (((id, _, w0), (_, _, w1)), n) in was.iter().zip(now).zip(starts) {
            if w0 == w1 {
                let holder = &workers[survivors.iter().position(|s| s == w0).unwrap()];
                assert_eq!(
                    task_starts(holder, c, *id),
                    *n,
                    "{c} task {id} stayed on {w0} but restarted"
                );
            }
        }
    }

    // A task restarted through any worker restarts where it runs. The cooperative
    // protocol may still be moving work (its second round): wait until the
    // placement holds still for a few seconds before choosing the task.
    let settled = {
        let look = || all_running_on(&workers[0], &connectors, 4, &everyone, Duration::from_secs(60));
        let (mut last, mut since) = (look(), Instant::now());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = look();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(4) {
                break last;
            }
            assert!(Instant::now() < deadline, "the placement kept changing: {last:?}");
        }
    };
    let (id, _, on) = settled[0][0].clone();
    let runner = workers.iter().find(|w| worker_id(w) == on).unwrap();
    let starts = task_starts(runner, "to-files", id);
    for asked in &workers {
        // (409 while the group still moves work after the join: asked again.)
        let (code, body) = wait_answer_to(asked, "POST", &format!("/connectors/to-files/tasks/{id}/restart"));
        assert_eq!(
            code,
            204,
            "restart through {}: {body}\n{}\nthe runner's log:\n{}",
            worker_id(asked),
            diagnose(&workers, &connectors),
            runner.log.lock().unwrap().join("\n")
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while task_starts(runner, "to-files", id) < starts + workers.len() {
        assert!(Instant::now() < deadline, "the task was not restarted on {on}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every row arrives: the files hold each id, PostgreSQL each exactly once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(crate::postgres::URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    });
    let count = |sql: &str| {
        runtime.block_on(async {
            client
                .query_one(sql, &[])
                .await
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let (rows, distinct) = loop {
        let counted = count(&format!("SELECT count(*), count(DISTINCT id) FROM {table}"));
        if let Ok((rows, distinct)) = counted
            && rows >= i64::from(TOTAL)
        {
            break (rows, distinct);
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL has {counted:?} of {TOTAL} rows\n{}",
            diagnose(&workers, &connectors)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (rows, distinct),
        (i64::from(TOTAL), i64::from(TOTAL)),
        "every row exactly once"
    );
    let range = count(&format!("SELECT min(id), max(id) FROM {table}")).unwrap();
    assert_eq!(range, (0, i64::from(TOTAL) - 1));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen = std::collections::BTreeSet::new();
        for (_, batches) in crate::support::read_parquet(&out) {
            for b in batches {
                let col = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
                seen.extend(col.values().iter().copied());
            }
        }
        if seen.len() == TOTAL as usize {
            assert_eq!(
                seen.into_iter().collect::<Vec<_>>(),
                (0..i64::from(TOTAL)).collect::<Vec<_>>()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Parquet files hold {} of {TOTAL} ids\n{}",
            seen.len(),
            diagnose(&workers, &connectors)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("failover after SIGKILL {failover:?}; a joining worker took tasks after {rebalance:?}");
    for w in workers {
        w.sigterm();
    }
}

/// Against librdkafka's mock cluster, whose faults can be injected: every broker
/// down for 8 s while two workers run a 2-task connector (the workers lose their
/// groups and the tasks their commits meanwhile; once the brokers are back the
/// tasks run again by themselves), then a worker killed while the broker refuses
/// the survivor's first claims of the task's transactional id (it retries); every
/// row arrives. (The mock has no
/// CreateTopics: the topics are created up front, as an operator does where
/// workers may not create topics; the workers use them as they are.)
#[test]
fn broker_faults_from_the_mock_cluster_delay_the_tasks_but_lose_nothing() {
    const TOTAL: i64 = 80_000;
    let cluster = quiver_connectors::kafka::dev::DevCluster::start(3).unwrap();
    let group = unique("qmock");
    for (topic, partitions) in [
        (format!("{group}-configs"), 1),
        (format!("{group}-offsets"), 5),
        (format!("{group}-status"), 2),
        (format!("{group}-configs-task-live-2"), 2),
    ] {
        cluster.create_topic(&topic, partitions).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let props = worker_properties(dir.path(), &cluster.bootstrap(), &group);
    let workers = [
        start_worker(dir.path(), "a", &props),
        start_worker(dir.path(), "b", &props),
    ];
    for w in &workers {
        wait_answer(w, "/connectors", "a leader", Duration::from_secs(60), |c, _| c == 200);
    }
    let sink = format!(
        "CREATE SINK out WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '500')",
        out.display()
    );
    let (code, body) = workers[0].json("POST", "/connectors", &generator("live", 2, 2000, TOTAL as u32, &sink));
    assert_eq!(code, 201, "{body}");
    let ids_of: Vec<String> = workers.iter().map(worker_id).collect();
    all_running_on(&workers[1], &["live"], 2, &ids_of, Duration::from_secs(60));
    workers[0].wait_for("/connectors/live/offsets", "commits of both tasks", |o| {
        o["offsets"].as_array().is_some_and(|a| a.len() == 2)
    });

    cluster.mock().broker_down(-1).unwrap();
    let down = Instant::now();
    // The workers notice: /health says Kafka does not answer.
    let (_, health) = wait_answer(
        &workers[0],
        "/health",
        "503 while the brokers are down",
        Duration::from_secs(7),
        |c, _| c == 503,
    );
    assert!(health["message"].as_str().unwrap_or("").contains("Kafka"), "{health}");
    std::thread::sleep(Duration::from_secs(8).saturating_sub(down.elapsed()));
    cluster.mock().broker_up(-1).unwrap();
    wait_answer(
        &workers[0],
        "/health",
        "healthy again",
        Duration::from_secs(60),
        |c, _| c == 200,
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = ids(&out);
        if seen.len() as i64 == TOTAL {
            assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (0..TOTAL).collect::<Vec<_>>());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {TOTAL} ids arrived after the outage\n{}",
            seen.len(),
            diagnose(&workers, &["live"])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for w in workers {
        w.sigterm();
    }
}
