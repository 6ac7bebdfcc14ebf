//! `quiver server` driven over real HTTP by a real client (ureq), as a curl script
//! or a Kafka Connect UI would: Kafka Connect's paths, status codes and JSON
//! bodies; lifecycle calls checked against the rows that reach the target; offsets
//! altered and reset while STOPPED; bad bodies; SIGKILL and restart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{count_by_id, quiver, read_jsonl};

/// A `quiver server` process on a free port; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
    /// What the server printed before it listened (warnings).
    pub(crate) startup: Vec<String>,
    /// The line saying where it listens.
    pub(crate) banner: String,
    /// The `Authorization` header the helpers send (a server that needs credentials).
    pub(crate) auth: Option<String>,
    /// Everything it printed since.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(state: &Path, extra: &[&str]) -> Self {
        Self::start_logging(state, extra, "warn")
    }

    /// The `https://host:port` the server said it listens on.
    pub(crate) fn https_base(&self) -> String {
        self.banner
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no https listener in: {}", self.banner))
            .to_string()
    }

    /// A server whose API needs `Authorization: Bearer <token>` (the token in
    /// `dir/tokens`); the helpers send it.
    pub(crate) fn start_with_token(dir: &Path, token: &str) -> Self {
        std::fs::write(dir.join("tokens"), format!("{token}\n")).unwrap();
        let worker = dir.join("worker.properties");
        std::fs::write(
            &worker,
            format!("quiver.rest.auth.tokens.file={}\n", dir.join("tokens").display()),
        )
        .unwrap();
        let mut server = Self::start(&dir.join("state"), &["--worker-config", worker.to_str().unwrap()]);
        server.auth = Some(format!("Bearer {token}"));
        server
    }

    pub(crate) fn start_logging(state: &Path, extra: &[&str], level: &str) -> Self {
        Self::start_with_env(state, extra, level, &[])
    }

    pub(crate) fn start_with_env(state: &Path, extra: &[&str], level: &str, env: &[(&str, &str)]) -> Self {
        let mut child = quiver()
            .env("QUIVER_LOG", level)
            .envs(env.iter().copied())
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                state.to_str().unwrap(),
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("quiver server starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let (base, banner) = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("quiver server exited before listening: {seen:?}"))
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break (rest.split_whitespace().next().unwrap().to_string(), line.clone());
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Self {
            child,
            base,
            agent,
            startup: seen,
            banner,
            auth: None,
            log,
        }
    }

    /// One request; returns the status and the body as JSON (Null when empty).
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Value) {
        let (status, _, text) = self.raw(method, path, body);
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (status, json)
    }

    pub(crate) fn raw(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Option<String>, String) {
        self.raw_as(method, path, body, self.auth.as_deref()).0
    }

    /// A request with an `Authorization` header; also returns `WWW-Authenticate`.
    pub(crate) fn raw_as(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        authorization: Option<&str>,
    ) -> ((u16, Option<String>, String), Option<String>) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        if let Some((ct, _)) = body {
            req = req.header("Content-Type", ct);
        }
        let req = req
            .body(body.map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default())
            .unwrap();
        let mut resp = self.agent.run(req).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (location, challenge) = (header("location"), header("www-authenticate"));
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        ((resp.status().as_u16(), location, text), challenge)
    }

    pub(crate) fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call(method, path, Some(("application/json", &body.to_string())))
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Waits until `GET path` satisfies `ok`.
    pub(crate) fn wait_for(&self, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.wait_within(path, what, Duration::from_secs(20), ok)
    }

    /// Waits up to `limit` (a Kafka consumer group's first join on Tansu can take
    /// tens of seconds).
    pub(crate) fn wait_within(&self, path: &str, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.get(path);
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn task_state(&self, name: &str) -> String {
        let s = self.get(&format!("/connectors/{name}/status"));
        s["tasks"][0]["state"].as_str().unwrap_or("none").to_string()
    }

    pub(crate) fn sigterm(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "SIGTERM drains and exits 0: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Quiver SQL connector: a sequence of ids at `rate` rows/s into JSON files.
pub(crate) fn sql_connector(name: &str, out: &Path, rate: u32) -> Value {
    json!({
        "name": name,
        "config": {
            "connector.class": "quiver",
            "tasks.max": "1",
            "quiver.sql": format!(
                "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '{rate}', batch.linger = '50ms', 'fields.id.kind' = 'sequence');
                 CREATE SINK out WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '500') AS SELECT id FROM gen;",
                out.display()
            ),
        }
    })
}

pub(crate) fn ids(out: &Path) -> std::collections::BTreeMap<i64, usize> {
    count_by_id(&read_jsonl(out, ".jsonl"), "id")
}

fn committed_rows(server: &Server, name: &str) -> i64 {
    let offsets = server.get(&format!("/connectors/{name}/offsets"));
    let entries = offsets["offsets"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{offsets}");
    assert_eq!(entries[0]["partition"], json!({"partition": "rows"}), "{offsets}");
    entries[0]["offset"]["position"].as_i64().unwrap()
}

#[test]
fn the_rest_api_creates_drives_and_deletes_a_connector_with_kafka_connects_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let server = Server::start(&dir.path().join("state"), &[]);

    let root = server.get("/");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        root.as_object().unwrap().contains_key("commit") && root.as_object().unwrap().contains_key("kafka_cluster_id")
    );
    assert_eq!(server.get("/connectors"), json!([]));

    // POST: 201, Location, ConnectorInfo with the config as submitted plus its name.
    let body = sql_connector("gen", &out, 2000);
    let (status, location, text) = server.raw("POST", "/connectors", Some(("application/json", &body.to_string())));
    assert_eq!(status, 201, "{text}");
    assert_eq!(location.as_deref(), Some("/connectors/gen"));
    let created: Value = serde_json::from_str(&text).unwrap();
    let mut expected_config = body["config"].clone();
    expected_config["name"] = json!("gen");
    assert_eq!(
        created,
        json!({"name": "gen", "config": expected_config, "tasks": [{"connector": "gen", "task": 0}], "type": "unknown"})
    );
    let (status, conflict) = server.json("POST", "/connectors", &body);
    assert_eq!(
        (status, conflict),
        (
            409,
            json!({"error_code": 409, "message": "Connector gen already exists"})
        )
    );

    assert_eq!(server.get("/connectors"), json!(["gen"]));
    assert_eq!(server.get("/connectors/gen"), created);
    assert_eq!(server.get("/connectors/gen/config"), expected_config);
    let status = server.wait_for("/connectors/gen/status", "task RUNNING", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    let worker = status["connector"]["worker_id"].as_str().unwrap().to_string();
    assert!(
        server.base.ends_with(&worker),
        "worker_id is the advertised host:port ({worker})"
    );
    assert_eq!(
        status,
        json!({"name": "gen", "connector": {"state": "RUNNING", "worker_id": worker}, "tasks": [{"id": 0, "state": "RUNNING", "worker_id": worker}], "type": "unknown"})
    );
    assert_eq!(
        server.get("/connectors/gen/tasks/0/status"),
        json!({"id": 0, "state": "RUNNING", "worker_id": worker})
    );
    let tasks = server.get("/connectors/gen/tasks");
    assert_eq!(tasks[0]["id"], json!({"connector": "gen", "task": 0}));
    assert_eq!(tasks[0]["config"]["task.id"], "0");
    let expanded = server.get("/connectors?expand=status&expand=info");
    assert_eq!(expanded["gen"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["gen"]["info"], created);
    assert_eq!(
        server.get("/connectors?expand=info")["gen"].as_object().unwrap().len(),
        1
    );
    assert_eq!(server.get("/connectors/gen/topics"), json!({"gen": {"topics": []}}));

    // Offsets may only change while STOPPED.
    let (status, refused) = server.call("DELETE", "/connectors/gen/offsets", None);
    assert_eq!(status, 400);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("must be in the STOPPED state"),
        "{refused}"
    );

    // Pause: nothing more reaches the target.
    server.wait_for("/connectors/gen/offsets", "a first commit", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });
    assert_eq!(server.call("PUT", "/connectors/gen/pause", None).0, 202);
    server.wait_for("/connectors/gen/status", "PAUSED", |s| {
        s["tasks"][0]["state"] == "PAUSED"
    });
    assert_eq!(server.get("/connectors/gen/status")["connector"]["state"], "PAUSED");
    std::thread::sleep(Duration::from_millis(600));
    let paused = ids(&out).len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(ids(&out).len(), paused, "nothing is written while paused");

    assert_eq!(server.call("PUT", "/connectors/gen/resume", None).0, 202);
    server.wait_for("/connectors/gen/status", "RUNNING again", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    std::thread::sleep(Duration::from_millis(800));

    // Stop (KIP-875): tasks flush, commit and go; the config stays.
    assert_eq!(server.call("PUT", "/connectors/gen/stop", None).0, 204);
    let stopped = server.get("/connectors/gen/status");
    assert_eq!(stopped["connector"]["state"], "STOPPED");
    assert_eq!(stopped["tasks"], json!([]));
    assert_eq!(server.get("/connectors/gen")["tasks"], json!([]));
    let n = committed_rows(&server, "gen");
    let written = ids(&out);
    assert!(n as usize > paused, "resumed and wrote more ({paused} → {n})");
    assert_eq!(
        written.keys().copied().collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>(),
        "exactly the committed ids"
    );

    // PATCH an offset back to row 10: the next run replays exactly ids 10..n.
    let patch = json!({"offsets": [{"partition": {"partition": "rows"}, "offset": {"position": 10}}]});
    let (status, msg) = server.json("PATCH", "/connectors/gen/offsets", &patch);
    assert_eq!(
        (status, msg),
        (
            200,
            json!({"message": "The offsets for this connector have been altered successfully"})
        )
    );
    assert_eq!(committed_rows(&server, "gen"), 10);
    assert_eq!(server.call("PUT", "/connectors/gen/resume", None).0, 202);
    server.wait_for("/connectors/gen/offsets", "progress past the old end", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > n + 200
    });
    assert_eq!(server.call("PUT", "/connectors/gen/stop", None).0, 204);
    let m = committed_rows(&server, "gen");
    let counts = ids(&out);
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), (0..m).collect::<Vec<_>>());
    for (id, c) in &counts {
        let expected = if (10..n).contains(id) { 2 } else { 1 };
        assert_eq!(*c, expected, "id {id}: replayed exactly from the patched offset");
    }

    // DELETE offsets: the next run starts from the beginning.
    let (status, msg) = server.call("DELETE", "/connectors/gen/offsets", None);
    assert_eq!(
        (status, msg),
        (
            200,
            json!({"message": "The offsets for this connector have been reset successfully"})
        )
    );
    assert_eq!(server.get("/connectors/gen/offsets"), json!({"offsets": []}));
    assert_eq!(server.call("PUT", "/connectors/gen/resume", None).0, 202);
    server.wait_for("/connectors/gen/offsets", "a commit after the reset", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });
    assert_eq!(server.call("PUT", "/connectors/gen/stop", None).0, 204);
    assert!(ids(&out)[&0] >= 2, "id 0 was read again after the reset");

    // Restart with tasks: 202 and the status; without: 204.
    assert_eq!(server.call("PUT", "/connectors/gen/resume", None).0, 202);
    let (status, body) = server.call(
        "POST",
        "/connectors/gen/restart?includeTasks=true&onlyFailed=false",
        None,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["name"], "gen");
    assert_eq!(body["tasks"][0]["id"], 0);
    assert_eq!(server.call("POST", "/connectors/gen/restart", None).0, 204);
    assert_eq!(server.call("POST", "/connectors/gen/tasks/0/restart", None).0, 204);
    let (status, missing) = server.call("POST", "/connectors/gen/tasks/7/restart", None);
    assert_eq!(
        (status, missing),
        (
            404,
            json!({"error_code": 404, "message": "Task 7 of connector gen not found"})
        )
    );

    // PATCH the config (KIP-477): null removes a key; the connector keeps running.
    let (status, patched) = server.json("PATCH", "/connectors/gen/config", &json!({"tasks.max": null}));
    assert_eq!(status, 200, "{patched}");
    assert!(patched["config"].get("tasks.max").is_none(), "{patched}");
    // PUT …/config on an existing name: 200; on a new one: 201.
    let (status, _) = server.json(
        "PUT",
        "/connectors/gen/config",
        &body_config(&sql_connector("gen", &out, 2000)),
    );
    assert_eq!(status, 200);
    let other = dir.path().join("other");
    let (status, _) = server.json(
        "PUT",
        "/connectors/second/config",
        &body_config(&sql_connector("second", &other, 100)),
    );
    assert_eq!(status, 201);
    assert_eq!(server.get("/connectors"), json!(["gen", "second"]));

    // GET /metrics: Prometheus text with Kafka Connect's metric names per task.
    server.wait_for("/connectors/gen/status", "RUNNING", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    std::thread::sleep(Duration::from_millis(600));
    let (status, _, metrics) = server.raw("GET", "/metrics", None);
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{connector=\"gen\",task=\"0\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        value("kafka_connect_source_task_metrics_source_record_poll_total") > 0.0,
        "{metrics}"
    );
    assert!(
        value("kafka_connect_sink_task_metrics_sink_record_send_total") > 0.0,
        "{metrics}"
    );
    assert!(
        value("kafka_connect_connector_task_metrics_offset_commit_completion_total") > 0.0,
        "{metrics}"
    );
    assert_eq!(value("kafka_connect_task_error_metrics_total_record_errors"), 0.0);
    assert!(
        metrics.contains("kafka_connect_connector_task_status{connector=\"gen\",task=\"0\",status=\"running\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP kafka_connect_source_task_metrics_source_record_poll_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("quiver_sink_flush_seconds_bucket{connector=\"gen\",task=\"0\""),
        "{metrics}"
    );

    assert_eq!(server.call("DELETE", "/connectors/gen", None).0, 204);
    let (status, gone) = server.call("GET", "/connectors/gen/status", None);
    assert_eq!(
        (status, gone),
        (404, json!({"error_code": 404, "message": "Connector gen not found"}))
    );
    assert_eq!(server.get("/connectors"), json!(["second"]));
    server.sigterm();
}

/// POSTs headers announcing `length` bytes and only the first 64 KiB of them;
/// returns the status and the whole answer.
fn oversized_post(server: &Server, length: usize) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "POST /connectors HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let _ = tcp.write_all(&vec![b' '; 64 * 1024]);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn body_config(connector: &Value) -> Value {
    connector["config"].clone()
}

#[test]
fn bad_requests_get_kafka_connects_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), &[]);
    let post = |body: &str| server.call("POST", "/connectors", Some(("application/json", body)));

    let (status, e) = post(r#"{"name": "x", "config": {"connector.class": "#);
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error_code"], 400);
    assert!(e["message"].as_str().unwrap().contains("line 1 column"), "{e}");

    let (status, e) = post(r#"{"name": "x", "config": ["a"]}"#);
    assert_eq!(status, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("expected"), "{e}");

    let (status, e) =
        post(r#"{"name": "x", "config": {"connector.class": "com.example.NoSuchConnector", "topics": "t"}}"#);
    assert_eq!(status, 400);
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("Connector configuration is invalid and contains the following 1 error(s):\nconnector.class: unsupported connector class 'com.example.NoSuchConnector'"), "{message}");

    // An invalid option inside the SQL, and an unknown key: every problem is listed.
    let bad_sql = json!({"name": "x", "config": {"connector.class": "quiver", "colour": "red",
        "quiver.sql": "CREATE SOURCE g (id BIGINT) WITH (connector = 'datagen', 'rows.per.secnd' = '1'); CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;"}});
    let (status, e) = server.json("POST", "/connectors", &bad_sql);
    assert_eq!(status, 400);
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("contains the following 2 error(s)"), "{message}");
    assert!(message.contains("colour: unknown key"), "{message}");
    assert!(message.contains("rows.per.secnd"), "{message}");

    // A body over the limit is refused with 413 without being read: the client
    // sends its headers and a first slice, and gets the answer.
    let (status, e) = oversized_post(&server, 2 * 1024 * 1024);
    assert_eq!(status, 413, "{e}");
    assert!(e.contains("larger than the limit"), "{e}");

    let (status, e) = server.call(
        "POST",
        "/connectors",
        Some(("application/x-www-form-urlencoded", "name=x")),
    );
    assert_eq!(status, 415);
    assert!(e["message"].as_str().unwrap().contains("application/json"), "{e}");

    let (status, e) = server.json(
        "PUT",
        "/connectors/a/config",
        &json!({"name": "b", "connector.class": "quiver"}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "Connector name configuration (b) doesn't match connector name in the URL (a)"
    );

    let (status, e) = server.call("DELETE", "/connectors", None);
    assert_eq!(status, 405);
    assert_eq!(e["error_code"], 405);
    let (status, e) = server.call("GET", "/nowhere", None);
    assert_eq!((status, e["error_code"].clone()), (404, json!(404)));
    for path in [
        "/connectors/nope",
        "/connectors/nope/status",
        "/connectors/nope/config",
        "/connectors/nope/offsets",
    ] {
        let (status, e) = server.call("GET", path, None);
        assert_eq!(
            (status, e),
            (404, json!({"error_code": 404, "message": "Connector nope not found"})),
            "{path}"
        );
    }
    for path in [
        "/connectors/nope/pause",
        "/connectors/nope/resume",
        "/connectors/nope/stop",
    ] {
        assert_eq!(server.call("PUT", path, None).0, 404, "{path}");
    }
    assert_eq!(
        server.get("/connectors"),
        json!([]),
        "nothing was created by a bad request"
    );
}

#[test]
fn plugins_validation_and_sql_share_the_submission_rules() {
    let dir = tempfile::tempdir().unwrap();
    // The worker's cluster is only planned against here, never contacted.
    let server = Server::start(&dir.path().join("state"), &["--bootstrap-servers", "127.0.0.1:9"]);

    let plugins = server.get("/connector-plugins");
    let classes: Vec<(&str, &str)> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["class"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    assert!(
        classes.contains(&("org.apache.kafka.connect.file.FileStreamSinkConnector", "sink")),
        "{classes:?}"
    );
    assert!(
        classes.contains(&("io.confluent.connect.jdbc.JdbcSourceConnector", "source")),
        "{classes:?}"
    );
    assert!(
        classes.iter().all(|(_, t)| *t == "source" || *t == "sink"),
        "connectors only by default"
    );
    let everything = server.get("/connector-plugins?connectorsOnly=false");
    let all = everything.as_array().unwrap();
    for (class, kind) in [
        ("org.apache.kafka.connect.transforms.MaskField$Value", "transformation"),
        (
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            "predicate",
        ),
        ("org.apache.kafka.connect.json.JsonConverter", "converter"),
    ] {
        assert!(all.iter().any(|p| p["class"] == class && p["type"] == kind), "{class}");
    }
    let defs = server.get("/connector-plugins/quiver/config");
    assert!(
        defs.as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "quiver.sql" && d["required"] == true),
        "{defs}"
    );
    let (status, e) = server.call("GET", "/connector-plugins/com.example.Nope/config", None);
    assert_eq!(status, 404, "{e}");

    // Validate: errors are attached to their keys; secrets are hidden.
    let (status, v) = server.json(
        "PUT",
        "/connector-plugins/JdbcSinkConnector/config/validate",
        &json!({"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "name": "j", "topics": "t",
                "connection.url": "jdbc:postgresql://127.0.0.1:5432/test", "connection.password": "s3cret",
                "insert.mode": "sideways", "quiver.columns": "id BIGINT"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "io.confluent.connect.jdbc.JdbcSinkConnector");
    assert!(v["error_count"].as_u64().unwrap() >= 1, "{v}");
    let configs = v["configs"].as_array().unwrap();
    let entry = |key: &str| {
        configs
            .iter()
            .find(|c| c["value"]["name"] == key)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert!(
        !entry("insert.mode")["value"]["errors"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert_eq!(entry("connection.password")["value"]["value"], "[hidden]");
    assert_eq!(
        entry("connection.password")["definition"]["name"],
        "connection.password"
    );
    assert!(!v.to_string().contains("s3cret"), "the secret appears nowhere");

    let good = json!({"connector.class": "quiver", "quiver.sql":
        "CREATE SOURCE g (id BIGINT) WITH (connector = 'datagen'); CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;"});
    let (status, v) = server.json("PUT", "/connector-plugins/quiver/config/validate", &good);
    assert_eq!((status, v["error_count"].clone()), (200, json!(0)), "{v}");

    // POST /sql: the console's results as JSON.
    let (status, results) = server.call(
        "POST",
        "/sql",
        Some((
            "text/plain",
            "CREATE SOURCE nums (id BIGINT NOT NULL) WITH (connector = 'datagen', 'fields.id.kind' = 'sequence');\nSELECT id * 2 AS twice FROM nums LIMIT 3;\nSHOW SOURCES;",
        )),
    );
    assert_eq!(status, 200, "{results}");
    assert!(
        results[0]["message"]
            .as_str()
            .unwrap()
            .contains("source 'nums' created"),
        "{results}"
    );
    assert_eq!(results[1]["columns"], json!(["twice"]));
    assert_eq!(results[1]["rows"], json!([{"twice": 0}, {"twice": 2}, {"twice": 4}]));
    assert_eq!(results[2]["rows"][0][0], "nums");
    let (status, e) = server.call("POST", "/sql", Some(("text/plain", "DROP SOURCE nope;")));
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().starts_with("line 1:"), "{e}");

    // Streamed (NDJSON): a slow preview's first rows arrive before its last.
    let lines = streamed_sql(
        &server,
        "CREATE SOURCE slow (n BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.per.second' = '4', 'fields.n.kind' = 'sequence');
         SELECT n * 10 AS tens FROM slow LIMIT 6; DROP SOURCE nope; SHOW SOURCES;",
    );
    let kinds: Vec<String> = lines
        .iter()
        .map(|(_, v)| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>().join(","))
        .collect();
    assert!(
        lines[0].1["message"]
            .as_str()
            .unwrap()
            .contains("source 'slow' created"),
        "{kinds:?}"
    );
    assert_eq!(lines[1].1["preview"]["columns"], json!(["tens"]), "{kinds:?}");
    let rows: Vec<&(std::time::Instant, Value)> = lines.iter().filter(|(_, v)| v.get("rows").is_some()).collect();
    let got: Vec<Value> = rows
        .iter()
        .flat_map(|(_, v)| v["rows"].as_array().unwrap().clone())
        .collect();
    assert_eq!(got, (0..6).map(|n| json!({"tens": n * 10})).collect::<Vec<_>>());
    let end = lines.iter().find(|(_, v)| v.get("end").is_some()).expect("an end line");
    assert_eq!(end.1["end"]["rows"], 6);
    assert!(
        end.0.duration_since(rows[0].0) >= std::time::Duration::from_millis(500),
        "at 4 rows/s the first rows show a good while before the sixth: {kinds:?}"
    );
    // A failing statement ends the stream with its error; what follows does not run.
    let last = &lines.last().unwrap().1;
    assert!(last["error"].as_str().unwrap().starts_with("line 2:"), "{last}");
    assert_eq!(last["statement"], "DROP SOURCE nope");
}

/// `POST /sql` with `Accept: application/x-ndjson`: each line with when it arrived.
fn streamed_sql(server: &Server, sql: &str) -> Vec<(std::time::Instant, Value)> {
    use std::io::BufRead;
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/sql", server.base))
        .header("Content-Type", "text/plain")
        .header("Accept", "application/x-ndjson")
        .body(sql.to_string())
        .unwrap();
    let mut resp = ureq::agent().run(req).unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    std::io::BufReader::new(resp.body_mut().as_reader())
        .lines()
        .map(|l| {
            let l = l.unwrap();
            (std::time::Instant::now(), serde_json::from_str(&l).unwrap())
        })
        .collect()
}

/// Configs and target states survive SIGKILL; the running connector resumes from
/// its committed offset with no id missing.
#[test]
fn connectors_come_back_in_their_target_state_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("state");
    let (running, paused) = (dir.path().join("running"), dir.path().join("paused"));
    let server = Server::start(&state, &[]);
    assert_eq!(
        server
            .json("POST", "/connectors", &sql_connector("live", &running, 3000))
            .0,
        201
    );
    assert_eq!(
        server
            .json("POST", "/connectors", &sql_connector("held", &paused, 3000))
            .0,
        201
    );
    assert_eq!(server.call("PUT", "/connectors/held/pause", None).0, 202);
    server.wait_for("/connectors/live/offsets", "a commit", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });
    std::thread::sleep(Duration::from_millis(700));
    drop(server); // SIGKILL: no flush, no commit

    let before = ids(&running).len();
    assert!(before > 0);
    let server = Server::start(&state, &[]);
    assert_eq!(server.get("/connectors"), json!(["live", "held"]));
    server.wait_for("/connectors/live/status", "live RUNNING", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    server.wait_for("/connectors/held/status", "held PAUSED", |s| {
        s["tasks"][0]["state"] == "PAUSED"
    });
    assert_eq!(server.get("/connectors/held/status")["connector"]["state"], "PAUSED");
    server.wait_for("/connectors/live/offsets", "progress after the restart", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > before as i64 + 500
    });
    assert_eq!(server.task_state("live"), "RUNNING");
    server.sigterm();
    // Every id up to the last committed one arrived: nothing was lost to the kill.
    let counts = ids(&running);
    let max = *counts.keys().last().unwrap();
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..=max).collect::<Vec<_>>()
    );
}

/// `quiver server worker.properties connector.properties`: a standalone command
/// line starts, warns about the keys it does not use by name, and creates the
/// connector from its file.
#[test]
fn a_standalone_command_line_with_worker_properties_and_a_connector_file_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        "bootstrap.servers=127.0.0.1:9\nkey.converter=org.apache.kafka.connect.storage.StringConverter\noffset.storage.file.filename=/tmp/connect.offsets\nrest.advertised.host.name=worker-a\n",
    )
    .unwrap();
    let file = dir.path().join("from-file.sql");
    std::fs::write(
        &file,
        sql_connector("x", &out, 500)["config"]["quiver.sql"].as_str().unwrap(),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--worker-config", worker.to_str().unwrap(), file.to_str().unwrap()],
    );
    let log = server.startup.join("\n");
    assert!(
        log.contains("worker property 'offset.storage.file.filename' is ignored: offsets live in the state folder"),
        "{log}"
    );
    assert_eq!(server.get("/connectors"), json!(["from-file"]));
    let status = server.wait_for("/connectors/from-file/status", "RUNNING", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    assert!(
        status["tasks"][0]["worker_id"]
            .as_str()
            .unwrap()
            .starts_with("worker-a:"),
        "{status}"
    );
    server.sigterm();
}

/// A password read through a `${file:…}` config provider reaches the database
/// connection and appears in no response, status or log line.
#[test]
fn a_secret_from_a_file_provider_reaches_the_sink_and_appears_nowhere() {
    const SECRET: &str = "Qv-s3cret-8841";
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("db.properties");
    std::fs::write(&secrets, format!("password={SECRET}\n")).unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        "config.providers=file\nconfig.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider\n",
    )
    .unwrap();
    let table = format!("server_secret_{}", std::process::id());
    let placeholder = format!("${{file:{}:password}}", secrets.display());
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.total = '50', 'fields.id.kind' = 'sequence');
         CREATE SINK s WITH (connector = 'postgres', 'connection.url' = 'postgres://postgres@127.0.0.1:5432/test',
             'connection.password' = '{placeholder}', 'table.name.format' = '{table}', 'auto.create' = 'true') AS SELECT id FROM gen;"
    );
    let server = Server::start_logging(
        &dir.path().join("state"),
        &["--worker-config", worker.to_str().unwrap()],
        "debug",
    );
    let body = json!({"name": "secret", "config": {"connector.class": "quiver", "quiver.sql": sql}});
    let (status, created) = server.json("POST", "/connectors", &body);
    assert_eq!(status, 201, "{created}");
    server.wait_for("/connectors/secret/status", "the bounded source to finish", |s| {
        s["tasks"][0]["state"] == "STOPPED" || s["tasks"][0]["state"] == "FAILED"
    });
    assert_eq!(
        server.task_state("secret"),
        "STOPPED",
        "{}",
        server.get("/connectors/secret/status")
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count: i64 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/test", tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        tokio::spawn(conn);
        let n = client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .unwrap()
            .get(0);
        client.execute(&format!("DROP TABLE \"{table}\""), &[]).await.unwrap();
        n
    });
    assert_eq!(count, 50, "the rows arrived through the resolved connection");

    let mut seen = String::new();
    for path in [
        "/connectors/secret",
        "/connectors/secret/config",
        "/connectors/secret/status",
        "/connectors/secret/tasks",
        "/connectors?expand=info&expand=status",
        "/connectors/secret/offsets",
    ] {
        seen.push_str(&server.get(path).to_string());
    }
    let (_, sql_out) = server.call("POST", "/sql", Some(("text/plain", "SHOW SINKS;")));
    seen.push_str(&sql_out.to_string());
    assert!(seen.contains("${file:"), "the API returns the placeholder");
    assert!(!seen.contains(SECRET), "the secret leaked into a response: {seen}");
    let log = server.startup.join("\n") + &server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("connector configured"),
        "the debug log was captured: {log}"
    );
    assert!(!log.contains(SECRET), "the secret leaked into the log: {log}");
    server.sigterm();
}

/// A Kafka source's offsets over the REST API: they read back per partition in
/// Kafka Connect's shape, a reset clears the store *and* the consumer group so
/// everything is read again, and a PATCH replays exactly from the given offset.
#[test]
fn kafka_offsets_reset_and_patch_replay_exactly_what_was_asked() {
    use crate::kafka_support::{Rec, broker, committed, create_topic, produce, unique};
    let bootstrap = broker();
    let topic = unique("server-offsets");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(create_topic(&bootstrap, &topic, 2));
    let records: Vec<Rec> = (0..40)
        .map(|i| Rec::value(format!("{{\"id\": {i}}}")).partition(i % 2))
        .collect();
    produce(&bootstrap, &topic, &records);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let server = Server::start(&dir.path().join("state"), &["--bootstrap-servers", &bootstrap]);
    let sql = format!(
        "CREATE SOURCE k (id BIGINT NOT NULL) WITH (connector = 'kafka', topic = '{topic}', format = 'json', 'scan.startup.mode' = 'group-offsets');
         CREATE SINK s WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '5') AS SELECT id, _partition AS p, _offset AS o FROM k;",
        out.display()
    );
    let body = json!({"name": "ks", "config": {"connector.class": "quiver", "quiver.sql": sql}});
    assert_eq!(server.json("POST", "/connectors", &body).0, 201);
    let settled = |n: i64| {
        move |o: &Value| {
            o["offsets"].as_array().is_some_and(|a| {
                a.iter()
                    .map(|e| e["offset"]["kafka_offset"].as_i64().unwrap_or(0))
                    .sum::<i64>()
                    == n
            })
        }
    };
    server.wait_within(
        "/connectors/ks/offsets",
        "both partitions read to the end",
        Duration::from_secs(90),
        settled(40),
    );
    let mut offsets = server.get("/connectors/ks/offsets")["offsets"]
        .as_array()
        .unwrap()
        .clone();
    offsets.sort_by_key(|e| e["partition"]["kafka_partition"].as_i64());
    assert_eq!(
        offsets,
        vec![
            json!({"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 20}}),
            json!({"partition": {"kafka_topic": topic, "kafka_partition": 1}, "offset": {"kafka_offset": 20}}),
        ]
    );
    let group = "quiver-ks";
    assert_eq!(committed(&bootstrap, group, &topic, 2), [(0, 20), (1, 20)].into());
    assert_eq!(server.call("PUT", "/connectors/ks/stop", None).0, 204);
    assert_eq!(ids(&out).len(), 40);

    // Reset: the store and the consumer group forget; everything is read again.
    assert_eq!(server.call("DELETE", "/connectors/ks/offsets", None).0, 200);
    assert!(
        committed(&bootstrap, group, &topic, 2).is_empty(),
        "the group's commits are gone"
    );
    assert_eq!(server.call("PUT", "/connectors/ks/resume", None).0, 202);
    server.wait_within(
        "/connectors/ks/offsets",
        "everything read again",
        Duration::from_secs(90),
        settled(40),
    );
    assert_eq!(server.call("PUT", "/connectors/ks/stop", None).0, 204);
    let counts = ids(&out);
    assert_eq!(counts.len(), 40);
    assert!(
        counts.values().all(|c| *c == 2),
        "every record exactly twice: {counts:?}"
    );

    // PATCH partition 0 back to offset 15: exactly its records 15..19 come again.
    let patch = json!({"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 15}}]});
    assert_eq!(server.json("PATCH", "/connectors/ks/offsets", &patch).0, 200);
    assert_eq!(server.call("PUT", "/connectors/ks/resume", None).0, 202);
    server.wait_within(
        "/connectors/ks/offsets",
        "partition 0 read to the end again",
        Duration::from_secs(90),
        settled(40),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.call("PUT", "/connectors/ks/stop", None).0, 204);
    let rows = read_jsonl(&out, ".jsonl");
    let third: Vec<(i64, i64)> = {
        let mut seen = std::collections::BTreeMap::<(i64, i64), usize>::new();
        for r in &rows {
            *seen
                .entry((r["p"].as_i64().unwrap(), r["o"].as_i64().unwrap()))
                .or_default() += 1;
        }
        seen.into_iter().filter(|(_, c)| *c == 3).map(|(k, _)| k).collect()
    };
    assert_eq!(
        third,
        (15..20).map(|o| (0, o)).collect::<Vec<_>>(),
        "only partition 0 from offset 15 replayed"
    );
    assert_eq!(rows.len(), 85);
    server.sigterm();
}

/// A failed task is restarted automatically with growing waits, says so in its
/// status, recovers once the outside world does, and stays FAILED with its trace
/// after `auto.restart.max.restarts`.
#[test]
fn a_failed_task_restarts_automatically_with_backoff_and_gives_up_after_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), &[]);
    // The sink's folder is a plain file: every write fails until it is removed.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "not a folder").unwrap();
    let connector = |name: &str, max: u32| {
        json!({"name": name, "config": {
            "connector.class": "quiver",
            "auto.restart.max.restarts": max.to_string(),
            "quiver.sql": format!(
                "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '500', 'fields.id.kind' = 'sequence');
                 CREATE SINK s WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '100', 'errors.retry.timeout' = '0') AS SELECT id FROM gen;",
                blocked.join("out").display()
            ),
        }})
    };
    assert_eq!(server.json("POST", "/connectors", &connector("flaky", 10)).0, 201);
    let failed = server.wait_for("/connectors/flaky/status", "a scheduled restart", |s| {
        s["tasks"][0]["state"] == "FAILED" && s["tasks"][0]["next_restart"].is_string()
    });
    assert!(
        failed["tasks"][0]["trace"].as_str().unwrap().contains("blocked"),
        "{failed}"
    );
    server.wait_for("/connectors/flaky/status", "one automatic restart", |s| {
        s["tasks"][0]["restarts"].as_u64().unwrap_or(0) >= 1
    });
    // The outside world recovers: the next automatic restart runs for good.
    std::fs::remove_file(&blocked).unwrap();
    let running = server.wait_for("/connectors/flaky/status", "RUNNING after a restart", |s| {
        s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["restarts"].as_u64().unwrap_or(0) >= 1
    });
    assert!(running["tasks"][0].get("next_restart").is_none(), "{running}");
    server.wait_for("/connectors/flaky/offsets", "rows committed", |o| {
        !o["offsets"].as_array().unwrap().is_empty()
    });
    assert!(!ids(&blocked.join("out")).is_empty());
    assert_eq!(server.call("DELETE", "/connectors/flaky", None).0, 204);

    // A task that keeps failing stays FAILED with its last trace after the limit.
    let blocked_again = dir.path().join("blocked");
    std::fs::remove_dir_all(&blocked_again).unwrap();
    std::fs::write(&blocked_again, "not a folder").unwrap();
    assert_eq!(server.json("POST", "/connectors", &connector("doomed", 2)).0, 201);
    let given_up = server.wait_for("/connectors/doomed/status", "two restarts and no more", |s| {
        s["tasks"][0]["restarts"] == 2
            && s["tasks"][0]["state"] == "FAILED"
            && s["tasks"][0].get("next_restart").is_none()
    });
    assert!(
        given_up["tasks"][0]["trace"].as_str().unwrap().contains("blocked"),
        "{given_up}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let later = server.get("/connectors/doomed/status");
    assert_eq!(later["tasks"][0]["restarts"], 2, "no third restart: {later}");
    assert_eq!(later["tasks"][0]["state"], "FAILED");
    let (_, _, metrics) = server.raw("GET", "/metrics", None);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("quiver_task_failed{connector=\"doomed\",task=\"0\"")
                && l.contains("kind=\"external\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    // A user's restart starts the count again.
    assert_eq!(server.call("POST", "/connectors/doomed/tasks/0/restart", None).0, 204);
    assert!(
        server.get("/connectors/doomed/status")["tasks"][0]
            .get("restarts")
            .is_none()
    );
    // A bad record without tolerance would fail again on every restart: it stays
    // FAILED at once, with no restart scheduled.
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, "{\"id\": 1}\nnot json\n").unwrap();
    let bad = json!({"name": "bad-data", "config": {"connector.class": "quiver", "quiver.sql": format!(
        "CREATE SOURCE f (id BIGINT) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM f;",
        input.display()
    )}});
    assert_eq!(server.json("POST", "/connectors", &bad).0, 201);
    let failed = server.wait_for("/connectors/bad-data/status", "FAILED", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let still = server.get("/connectors/bad-data/status");
    assert_eq!(still["tasks"][0]["state"], "FAILED", "{still}");
    assert!(
        still["tasks"][0].get("next_restart").is_none() && still["tasks"][0].get("restarts").is_none(),
        "{still}"
    );
    assert!(
        failed["tasks"][0]["trace"]
            .as_str()
            .unwrap()
            .contains("errors.tolerance"),
        "{failed}"
    );
}

/// The `file` sink (FileStreamSink's translation) appends one line per record to
/// one file, commits only what it synced, and removes a line a crash cut short.
#[test]
fn the_file_sink_appends_whole_lines_to_one_file_and_repairs_a_cut_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lines").join("out.jsonl");
    let server = Server::start(&dir.path().join("state"), &[]);
    let body = json!({"name": "appender", "config": {"connector.class": "quiver", "quiver.sql": format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.per.second = '1000', 'fields.id.kind' = 'sequence');
         CREATE SINK s WITH (connector = 'file', path = '{}') AS SELECT id FROM gen;",
        out.display()
    )}});
    assert_eq!(server.json("POST", "/connectors", &body).0, 201);
    server.wait_for("/connectors/appender/offsets", "a synced commit", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > 500
    });
    assert_eq!(server.call("PUT", "/connectors/appender/stop", None).0, 204);
    let read_ids = || -> Vec<i64> {
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"))["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    let n = committed_rows(&server, "appender");
    assert_eq!(
        read_ids(),
        (0..n).collect::<Vec<_>>(),
        "one line per committed record, in order"
    );

    // A crash cut the last line short: the next start removes it and appends on.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"id\": 99")
        .unwrap();
    assert_eq!(server.call("PUT", "/connectors/appender/resume", None).0, 202);
    server.wait_for("/connectors/appender/offsets", "more commits", |o| {
        o["offsets"][0]["offset"]["position"].as_i64().unwrap_or(0) > n + 300
    });
    assert_eq!(server.call("PUT", "/connectors/appender/stop", None).0, 204);
    let m = committed_rows(&server, "appender");
    assert_eq!(
        read_ids(),
        (0..m).collect::<Vec<_>>(),
        "whole lines only, nothing lost or repeated"
    );

    // format = 'text' needs one text column, and says so.
    let bad = json!({"name": "t", "config": {"connector.class": "quiver", "quiver.sql": format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen');
         CREATE SINK s WITH (connector = 'file', path = '{}', format = 'text') AS SELECT id FROM gen;",
        dir.path().join("t.txt").display()
    )}});
    let (status, e) = server.json("POST", "/connectors", &bad);
    assert_eq!(status, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("'text' writes one text or bytes column"),
        "{e}"
    );
    server.sigterm();
}

/// An exactly-once database sink keeps its positions in `quiver_offsets`, which
/// win at start: a reset and a PATCH over REST reach them too, so the next run
/// replays exactly what was asked. `sink` is the sink's connector and connection
/// options; `counts` reads (rows, distinct ids) of the table from the database.
fn offsets_reset_and_patch_reach(sink: &str, table: &str, counts: &dyn Fn() -> (i64, i64), clean_up: &dyn Fn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), &[]);
    let name = format!("eos-{table}");
    let body = json!({"name": name, "config": {"connector.class": "quiver", "quiver.sql": format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.total = '200', 'fields.id.kind' = 'sequence');
         CREATE SINK s WITH ({sink}, 'table.name.format' = '{table}', 'auto.create' = 'true',
             'sink.delivery.guarantee' = 'exactly-once') AS SELECT id FROM gen;"
    )}});
    let path = |p: &str| format!("/connectors/{name}{p}");
    assert_eq!(server.json("POST", "/connectors", &body).0, 201);
    let finished = |s: &Value| s["tasks"][0]["state"] == "STOPPED";
    server.wait_for(&path("/status"), "the bounded source to finish", finished);
    assert_eq!(counts(), (200, 200));

    // PATCH back to row 150: exactly ids 150..199 are written again.
    assert_eq!(server.call("PUT", &path("/stop"), None).0, 204);
    let patch = json!({"offsets": [{"partition": {"partition": "rows"}, "offset": {"position": 150}}]});
    assert_eq!(server.json("PATCH", &path("/offsets"), &patch).0, 200);
    assert_eq!(server.call("PUT", &path("/resume"), None).0, 202);
    server.wait_for(&path("/status"), "the replay to finish", finished);
    assert_eq!(counts(), (250, 200), "ids 150..199 once more, nothing else");

    // Reset: everything again, although the sink's own positions said 200.
    assert_eq!(server.call("PUT", &path("/stop"), None).0, 204);
    assert_eq!(server.call("DELETE", &path("/offsets"), None).0, 200);
    assert_eq!(server.call("PUT", &path("/resume"), None).0, 202);
    server.wait_for(&path("/status"), "the full replay to finish", finished);
    assert_eq!(counts(), (450, 200));
    clean_up(&name);
    server.sigterm();
}

#[test]
fn offsets_reset_and_patch_reach_an_exactly_once_postgres_sink() {
    const URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    let table = format!("server_eos_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = || {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(URL, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432");
            rt.spawn(conn);
            client
        })
    };
    offsets_reset_and_patch_reach(
        &format!("connector = 'postgres', 'connection.url' = '{URL}'"),
        &table,
        &|| {
            let c = client();
            let sql = format!("SELECT count(*), count(DISTINCT id) FROM \"{table}\"");
            let row = rt.block_on(c.query_one(&sql, &[])).unwrap();
            (row.get(0), row.get(1))
        },
        &|name| {
            let c = client();
            let sql = format!("DROP TABLE \"{table}\"; DELETE FROM quiver_offsets WHERE pipeline = '{name}'");
            rt.block_on(c.batch_execute(&sql)).unwrap();
        },
    );
}

#[test]
fn offsets_reset_and_patch_reach_an_exactly_once_mysql_sink() {
    use mysql_async::prelude::Queryable;
    const URL: &str = "mysql://root@127.0.0.1:3306/test";
    let table = format!("server_eos_my_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = |sql: String| -> Option<(i64, i64)> {
        rt.block_on(async {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(URL).unwrap())
                .await
                .expect("MariaDB on 127.0.0.1:3306");
            let row: Option<(i64, i64)> = c.query_first(sql).await.unwrap();
            c.disconnect().await.unwrap();
            row
        })
    };
    offsets_reset_and_patch_reach(
        &format!("connector = 'mysql', 'connection.url' = '{URL}'"),
        &table,
        &|| run(format!("SELECT count(*), count(DISTINCT id) FROM `{table}`")).unwrap(),
        &|name| {
            run(format!("DROP TABLE `{table}`"));
            run(format!("DELETE FROM quiver_offsets WHERE pipeline = '{name}'"));
        },
    );
}

/// `tasks.max = 4` over a 4-partition topic: four tasks, each RUNNING with its own
/// partition; every record reaches the target; the committed offsets are exactly
/// the topic's ends; each task has its own metrics and its own restart, which
/// leaves its siblings running; and files of a folder spread over tasks too.
#[test]
fn tasks_max_four_over_four_partitions_runs_four_tasks_each_with_its_partitions() {
    use crate::kafka_support::{Rec, broker, create_topic, produce, unique};
    let bootstrap = broker();
    let topic = unique("server-tasks");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(create_topic(&bootstrap, &topic, 4));
    let batch = |from: i64| -> Vec<Rec> {
        (from..from + 200)
            .map(|i| Rec::value(format!("{{\"id\": {i}}}")).partition((i % 4) as i32))
            .collect()
    };
    produce(&bootstrap, &topic, &batch(0));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let server = Server::start(&dir.path().join("state"), &["--bootstrap-servers", &bootstrap]);
    let sql = format!(
        "CREATE SOURCE k (id BIGINT NOT NULL) WITH (connector = 'kafka', topic = '{topic}', format = 'json', 'batch.linger' = '50ms');
         CREATE SINK s WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '10') AS SELECT id, _partition AS p FROM k;",
        out.display()
    );
    let body = json!({"name": "par", "config": {"connector.class": "quiver", "tasks.max": "4", "quiver.sql": sql}});
    let (status, created) = server.json("POST", "/connectors", &body);
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["tasks"],
        json!([
            {"connector": "par", "task": 0},
            {"connector": "par", "task": 1},
            {"connector": "par", "task": 2},
            {"connector": "par", "task": 3}
        ])
    );
    let spread = |s: &Value| {
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        tasks.len() == 4
            && tasks
                .iter()
                .all(|t| t["state"] == "RUNNING" && t["partitions"].as_array().is_some_and(|p| p.len() == 1))
    };
    let status = server.wait_within(
        "/connectors/par/status",
        "four running tasks with one partition each",
        Duration::from_secs(90),
        spread,
    );
    let mut partitions: Vec<String> = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["partitions"][0].as_str().unwrap().to_string())
        .collect();
    partitions.sort();
    assert_eq!(partitions, (0..4).map(|p| format!("{topic}/{p}")).collect::<Vec<_>>());
    assert_eq!(
        (0..4)
            .map(|i| status["tasks"][i]["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );

    let settled = |n: i64| {
        move |o: &Value| {
            o["offsets"]
                .as_array()
                .is_some_and(|a| a.len() == 4 && a.iter().all(|e| e["offset"]["kafka_offset"].as_i64() == Some(n / 4)))
        }
    };
    server.wait_within(
        "/connectors/par/offsets",
        "every partition committed to its end",
        Duration::from_secs(60),
        settled(200),
    );
    // Each task wrote the rows of its own partition.
    let metrics = server.raw("GET", "/metrics", None).2;
    for task in 0..4 {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("kafka_connect_sink_task_metrics_sink_record_send_total")
                    && l.contains("connector=\"par\"")
                    && l.contains(&format!("task=\"{task}\""))
            })
            .unwrap_or_else(|| panic!("no send total for task {task}:\n{metrics}"));
        assert!(
            line.ends_with(" 50"),
            "task {task} wrote its partition's 50 rows: {line}"
        );
    }
    // Consumer lag per partition, under the name the JMX exporter gives Kafka's
    // records-lag; every partition is read to its end. Statistics come every second.
    let lag_of = |metrics: &str, p: i32| -> Option<String> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("kafka_consumer_consumer_fetch_manager_metrics_records_lag{")
                    && l.contains("connector=\"par\"")
                    && l.contains(&format!("topic=\"{topic}\""))
                    && l.contains(&format!("partition=\"{p}\""))
            })
            .map(str::to_string)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = server.raw("GET", "/metrics", None).2;
        if (0..4).all(|p| lag_of(&metrics, p).is_some()) || std::time::Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for p in 0..4 {
        let line = lag_of(&metrics, p).unwrap_or_else(|| panic!("no lag for partition {p}:\n{metrics}"));
        assert!(line.ends_with(" 0"), "partition {p} read to its end: {line}");
    }
    assert!(
        metrics.contains("kafka_consumer_consumer_fetch_manager_metrics_records_lag_max{connector=\"par\""),
        "{metrics}"
    );

    // One task restarts alone: the others keep their state, and the group hands
    // the partitions over without losing a record.
    assert_eq!(server.call("POST", "/connectors/par/tasks/2/restart", None).0, 204);
    assert_eq!(server.call("POST", "/connectors/par/tasks/4/restart", None).0, 404);
    produce(&bootstrap, &topic, &batch(200));
    server.wait_within(
        "/connectors/par/status",
        "four running tasks again",
        Duration::from_secs(90),
        spread,
    );
    server.wait_within(
        "/connectors/par/offsets",
        "the second batch committed",
        Duration::from_secs(90),
        settled(400),
    );
    assert_eq!(server.call("PUT", "/connectors/par/stop", None).0, 204);
    let rows = read_jsonl(&out, ".jsonl");
    let counts = count_by_id(&rows, "id");
    assert_eq!(counts.len(), 400, "every record arrived");
    assert!(
        rows.iter()
            .all(|r| r["p"].as_i64() == Some(r["id"].as_i64().unwrap() % 4)),
        "rows carry their partition"
    );

    // A folder of files: tasks.max = 2 spreads the files over two tasks by path,
    // each file read once.
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in 0..6 {
        let lines: String = (0..10).map(|i| format!("{{\"id\": {}}}\n", f * 10 + i)).collect();
        std::fs::write(input.join(format!("part-{f}.jsonl")), lines).unwrap();
    }
    let files_out = dir.path().join("files-out");
    let sql = format!(
        "CREATE SOURCE f (id BIGINT NOT NULL) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SINK s WITH (connector = 'filesystem', path = '{}', format = 'json', 'rollover.rows' = '10', 'tasks.max' = '2') AS SELECT id FROM f;",
        input.display(),
        files_out.display()
    );
    let body = json!({"name": "files", "config": {"connector.class": "quiver", "quiver.sql": sql}});
    assert_eq!(server.json("POST", "/connectors", &body).0, 201);
    let status = server.wait_for("/connectors/files/status", "two tasks sharing six files", |s| {
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        tasks.len() == 2
            && tasks
                .iter()
                .map(|t| t["partitions"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
                == 6
    });
    let per_task: Vec<usize> = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["partitions"].as_array().unwrap().len())
        .collect();
    assert!(per_task.iter().all(|n| *n > 0), "both tasks have files: {status}");
    server.wait_for("/connectors/files/offsets", "all six files committed", |o| {
        o["offsets"]
            .as_array()
            .is_some_and(|a| a.len() == 6 && a.iter().all(|e| e["offset"]["line"].as_i64() == Some(10)))
    });
    assert_eq!(server.call("PUT", "/connectors/files/stop", None).0, 204);
    let counts = count_by_id(&read_jsonl(&files_out, ".jsonl"), "id");
    assert_eq!(counts.len(), 60);
    assert!(counts.values().all(|c| *c == 1), "each file read once: {counts:?}");
    server.sigterm();
}

/// Stock Kafka Connect JSON with no Quiver-only keys: the worker finds the columns
/// where Kafka Connect finds a schema. A JDBC source reads the table's catalog; a
/// JDBC sink reads the Connect schemas its JsonConverter records carry, and the
/// table it auto-creates has their types; a sink on a still-empty topic of
/// schemaless JSON waits (UNASSIGNED, saying why) and starts once records arrive.
/// `GET …/config` never shows a key the user did not send.
#[test]
fn stock_connector_json_finds_its_columns_where_kafka_connect_does() {
    use crate::kafka_support::{Rec, broker, consume, create_topic, produce, unique};
    let bootstrap = broker();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/test", tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    });
    let source_table = unique("disc_src").replace('-', "_");
    rt.block_on(pg.batch_execute(&format!(
        "CREATE TABLE \"{source_table}\" (id SERIAL PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(10,2));
         INSERT INTO \"{source_table}\" (name, amount) VALUES ('a', 1.50), ('b', NULL), ('c', 3.25);"
    )))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), &["--bootstrap-servers", &bootstrap]);

    // A JDBC source: the columns come from the catalog.
    let topic = format!("disc-{source_table}");
    rt.block_on(create_topic(&bootstrap, &topic, 1));
    let config = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "connection.url": "jdbc:postgresql://127.0.0.1:5432/test",
        "connection.user": "postgres",
        "mode": "incrementing",
        "incrementing.column.name": "id",
        "table.whitelist": source_table,
        "topic.prefix": "disc-",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "poll.interval.ms": "200"
    });
    let (status, created) = server.json("POST", "/connectors", &json!({"name": "pg-src", "config": config}));
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        server.get("/connectors/pg-src/config").as_object().unwrap().len(),
        11,
        "only the keys sent, and name"
    );
    let got = consume(&bootstrap, &topic, 3, Duration::from_secs(60));
    let mut values: Vec<Value> = got.iter().map(|g| g.json()).collect();
    values.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(values[0]["name"], "a");
    let amount = &values[0]["amount"];
    assert_eq!(
        amount.as_f64().or_else(|| amount.as_str().and_then(|a| a.parse().ok())),
        Some(1.5),
        "NUMERIC(10,2) read as a number: {}",
        values[0]
    );
    assert_eq!(values[1]["amount"], Value::Null);
    assert_eq!(values[2]["id"], 3);

    // The table gains a column: the source notices at its next poll, the worker
    // reads the catalog again, and the new row arrives with it; nothing is read twice.
    rt.block_on(pg.batch_execute(&format!(
        "ALTER TABLE \"{source_table}\" ADD COLUMN region TEXT;
         INSERT INTO \"{source_table}\" (name, amount, region) VALUES ('d', 4.00, 'north');"
    )))
    .unwrap();
    let got = consume(&bootstrap, &topic, 4, Duration::from_secs(60));
    let values: Vec<Value> = got.iter().map(|g| g.json()).collect();
    assert_eq!(values.len(), 4, "{values:?}");
    assert_eq!(values[3]["id"], 4, "{values:?}");
    assert_eq!(values[3]["region"], "north", "{values:?}");
    assert_eq!(
        consume(&bootstrap, &topic, 5, Duration::from_secs(3)).len(),
        4,
        "no row read twice"
    );
    let status = server.get("/connectors/pg-src/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");

    // A JDBC sink reading JsonConverter records with their Connect schemas.
    let enveloped = unique("disc-env");
    rt.block_on(create_topic(&bootstrap, &enveloped, 1));
    let record = |id: i64, name: &str| {
        Rec::value(
            json!({
                "schema": {"type": "struct", "fields": [
                    {"type": "int32", "optional": false, "field": "id"},
                    {"type": "string", "optional": true, "field": "name"},
                    {"type": "float64", "optional": true, "field": "score"}
                ]},
                "payload": {"id": id, "name": name, "score": id as f64 / 2.0}
            })
            .to_string(),
        )
    };
    produce(&bootstrap, &enveloped, &[record(1, "x"), record(2, "y")]);
    let sink_table = enveloped.replace('-', "_");
    let sink = |topic: &str, table: &str, schemas: bool| {
        json!({
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "topics": topic,
            "connection.url": "jdbc:postgresql://127.0.0.1:5432/test?user=postgres",
            "table.name.format": table,
            "auto.create": "true",
            "auto.evolve": "true",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": schemas.to_string()
        })
    };
    let (status, body) = server.json(
        "POST",
        "/connectors",
        &json!({"name": "env-sink", "config": sink(&enveloped, &sink_table, true)}),
    );
    assert_eq!(status, 201, "{body}");
    let count = |table: &str| {
        rt.block_on(pg.query_one(&format!("SELECT count(*) FROM \"{table}\""), &[]))
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(-1)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&sink_table) < 2 {
        assert!(Instant::now() < deadline, "the enveloped records reached the table");
        std::thread::sleep(Duration::from_millis(200));
    }
    let types: Vec<(String, String)> = rt
        .block_on(pg.query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&sink_table],
        ))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        types,
        [
            ("id".to_string(), "integer".to_string()),
            ("name".to_string(), "text".to_string()),
            ("score".to_string(), "double precision".to_string())
        ]
    );

    // The records' schema gains a field: the worker adds the column, the sink's
    // auto.evolve alters the table, and no record is lost on the way.
    let grown = |id: i64, city: &str| {
        Rec::value(
            json!({
                "schema": {"type": "struct", "fields": [
                    {"type": "int32", "optional": false, "field": "id"},
                    {"type": "string", "optional": true, "field": "name"},
                    {"type": "float64", "optional": true, "field": "score"},
                    {"type": "string", "optional": true, "field": "city"}
                ]},
                "payload": {"id": id, "name": "z", "score": 1.0, "city": city}
            })
            .to_string(),
        )
    };
    produce(
        &bootstrap,
        &enveloped,
        &[record(3, "w"), grown(4, "Oslo"), record(5, "v"), grown(6, "Lima")],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&sink_table) < 6 {
        assert!(
            Instant::now() < deadline,
            "the grown records reached the table: {}",
            server.get("/connectors/env-sink/status")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows: Vec<(i32, Option<String>)> = rt
        .block_on(pg.query(&format!("SELECT id, city FROM \"{sink_table}\" ORDER BY id"), &[]))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            (1, None),
            (2, None),
            (3, None),
            (4, Some("Oslo".to_string())),
            (5, None),
            (6, Some("Lima".to_string()))
        ],
        "each record once, the new field in its new column"
    );
    let status = server.get("/connectors/env-sink/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert!(
        server
            .get("/connectors/env-sink/config")
            .get("quiver.columns")
            .is_none(),
        "the grown columns stay out of the config"
    );

    // Schemaless JSON on an empty topic: the connector waits, then starts.
    let empty = unique("disc-empty");
    rt.block_on(create_topic(&bootstrap, &empty, 1));
    let late_table = empty.replace('-', "_");
    let (status, body) = server.json(
        "POST",
        "/connectors",
        &json!({"name": "late-sink", "config": sink(&empty, &late_table, false)}),
    );
    assert_eq!(status, 201, "{body}");
    let waiting = server.get("/connectors/late-sink/status");
    assert_eq!(waiting["connector"]["state"], "RUNNING", "{waiting}");
    assert_eq!(waiting["tasks"][0]["state"], "UNASSIGNED", "{waiting}");
    assert!(
        waiting["tasks"][0]["trace"]
            .as_str()
            .is_some_and(|t| t.contains("waiting for the first records")),
        "{waiting}"
    );
    produce(
        &bootstrap,
        &empty,
        &[
            Rec::value(r#"{"id": 7, "label": "late"}"#),
            Rec::value(r#"{"id": 8, "label": "later"}"#),
        ],
    );
    server.wait_within(
        "/connectors/late-sink/status",
        "the waiting connector running",
        Duration::from_secs(60),
        |s| s["tasks"][0]["state"] == "RUNNING",
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&late_table) < 2 {
        assert!(Instant::now() < deadline, "the late records reached the table");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        server
            .get("/connectors/late-sink/config")
            .get("quiver.columns")
            .is_none()
    );
    server.sigterm();
}

/// A stock FileStreamSource connector follows its file as Kafka Connect's does:
/// lines appended while it runs reach the topic, a line still being written waits
/// for its newline, and the offsets show how far the file was read.
#[test]
fn file_stream_source_follows_a_growing_file() {
    use crate::kafka_support::{broker, consume, create_topic, unique};
    use std::io::Write;
    let bootstrap = broker();
    let topic = unique("server-follow");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(create_topic(&bootstrap, &topic, 1));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    let server = Server::start(&dir.path().join("state"), &["--bootstrap-servers", &bootstrap]);
    let body = json!({"name": "follow", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "file": input.display().to_string(),
        "topic": topic,
        "value.converter": "org.apache.kafka.connect.storage.StringConverter"
    }});
    let (status, created) = server.json("POST", "/connectors", &body);
    assert_eq!(status, 201, "{created}");
    let values = |n: usize, wait: Duration| -> Vec<String> {
        consume(&bootstrap, &topic, n, wait)
            .into_iter()
            .map(|g| String::from_utf8(g.value.unwrap_or_default()).unwrap())
            .collect()
    };
    assert_eq!(values(2, Duration::from_secs(30)), ["one", "two"]);

    // Appended while running: a whole line, and half of the next.
    let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    f.write_all(b"three\nfou").unwrap();
    f.flush().unwrap();
    assert_eq!(values(3, Duration::from_secs(30)), ["one", "two", "three"]);
    assert_eq!(
        values(4, Duration::from_secs(3)),
        ["one", "two", "three"],
        "a line without its newline is not read yet"
    );
    f.write_all(b"r\n").unwrap();
    f.flush().unwrap();
    assert_eq!(values(4, Duration::from_secs(30)), ["one", "two", "three", "four"]);

    // The committed position is the byte after "four\n".
    let end = std::fs::metadata(&input).unwrap().len();
    let offsets = server.wait_for("/connectors/follow/offsets", "the file's end committed", |o| {
        o["offsets"][0]["offset"]["byte"].as_u64() == Some(end)
    });
    assert_eq!(offsets["offsets"][0]["offset"]["line"], 4, "{offsets}");
    server.sigterm();
}

/// REST authentication configured exactly as Kafka Connect's BasicAuthSecurityRestExtension
/// (worker property + JAAS file named in KAFKA_OPTS + users file), plus bearer tokens:
/// without valid credentials every path but /health is 401 with Kafka Connect's error
/// body and a WWW-Authenticate challenge; a refused password never reaches the log.
#[test]
fn basic_auth_from_kafka_connects_jaas_files_and_bearer_tokens_guard_every_path_but_health_and_cors() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.properties");
    std::fs::write(&users, "admin: hunter2-admin\nci: ci-pass\n").unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        format!(
            "KafkaConnect {{\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file=\"{}\";\n}};\n",
            users.display()
        ),
    )
    .unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "# CI token\nci-token-0f3a\n").unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension\nquiver.rest.auth.tokens.file={}\naccess.control.allow.origin=https://*.example.com\naccess.control.allow.methods=GET,POST,PUT,DELETE\n",
            tokens.display()
        ),
    )
    .unwrap();
    let opts = format!("-Xms256M -Djava.security.auth.login.config={}", jaas.display());
    let server = Server::start_with_env(
        &dir.path().join("state"),
        &["--worker-config", worker.to_str().unwrap()],
        "warn",
        &[("KAFKA_OPTS", &opts)],
    );
    assert!(
        !server.startup.iter().any(|l| l.contains("rest.extension.classes")),
        "the extension key is used, not ignored: {:?}",
        server.startup
    );
    let basic = |user: &str, password: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let refused = |method: &str, path: &str, auth: Option<&str>| {
        let ((status, _, body), challenge) = server.raw_as(method, path, None, auth);
        assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"error_code": 401, "message": "User cannot access the resource."})
        );
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.contains("Basic realm=") && challenge.contains("Bearer"),
            "{challenge}"
        );
    };
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/connectors"),
        ("POST", "/connectors"),
        ("GET", "/connectors/x/status"),
        ("DELETE", "/connectors/x"),
        ("GET", "/connector-plugins"),
        ("PUT", "/connector-plugins/datagen/config/validate"),
        ("POST", "/sql"),
        ("GET", "/metrics"),
    ] {
        refused(method, path, None);
    }
    refused("GET", "/connectors", Some(&basic("admin", "wrong")));
    refused("GET", "/connectors", Some(&basic("nobody", "hunter2-admin")));
    refused("GET", "/connectors", Some("Bearer ci-token-0f3b"));
    refused("GET", "/connectors", Some("Digest abc"));

    // The health check answers without credentials, in KIP-1017's shape.
    let ((status, _, body), _) = server.raw_as("GET", "/health", None, None);
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");

    // Valid credentials of either kind go through.
    let ((status, _, body), _) = server.raw_as("GET", "/connectors", None, Some(&basic("admin", "hunter2-admin")));
    assert_eq!((status, body.as_str()), (200, "[]"));
    let ((status, _, _), _) = server.raw_as("GET", "/connector-plugins", None, Some(&basic("ci", "ci-pass")));
    assert_eq!(status, 200);
    let ((status, _, _), _) = server.raw_as("GET", "/metrics", None, Some("Bearer ci-token-0f3a"));
    assert_eq!(status, 200);

    // CORS as Kafka Connect's access.control.allow.*: a browser's preflight carries
    // no credentials and is answered; an origin not listed gets no CORS header.
    let cors = |method: &str, origin: &str| {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/connectors", server.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header("Authorization", basic("admin", "hunter2-admin"))
            .body(Vec::new())
            .unwrap();
        let req = if method == "OPTIONS" {
            let (mut parts, body) = req.into_parts();
            parts.headers.remove("Authorization");
            ureq::http::Request::from_parts(parts, body)
        } else {
            req
        };
        let resp = server.agent.run(req).unwrap();
        let h = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        (
            resp.status().as_u16(),
            h("access-control-allow-origin"),
            h("access-control-allow-methods"),
        )
    };
    let (status, origin, methods) = cors("OPTIONS", "https://ui.example.com");
    assert_eq!(status, 200);
    assert_eq!(origin.as_deref(), Some("https://ui.example.com"));
    assert!(methods.unwrap_or_default().contains("PUT"));
    let (status, origin, _) = cors("GET", "https://ui.example.com");
    assert_eq!((status, origin.as_deref()), (200, Some("https://ui.example.com")));
    let (_, origin, _) = cors("GET", "https://evil.test");
    assert_eq!(origin, None, "an origin not listed is not let in");

    // The refusals were logged with the user, never the password or token.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("authentication failed"), "{log}");
    assert!(log.contains("user 'admin'"), "{log}");
    assert!(
        !log.contains("wrong") && !log.contains("hunter2") && !log.contains("ci-token"),
        "{log}"
    );
    server.sigterm();

    // A worker that names the extension without the JAAS file says what is missing.
    let out = quiver()
        .args(["server", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state2"))
        .args(["--worker-config", worker.to_str().unwrap()])
        .env_remove("KAFKA_OPTS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KAFKA_OPTS") && err.contains("java.security.auth.login.config"),
        "{err}"
    );
}

/// `/admin/loggers` (KIP-495) changes what a running worker logs, in Kafka Connect's
/// shapes; `--log-format json` writes one JSON object per event.
#[test]
fn loggers_change_log_levels_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        &dir.path().join("state"),
        &["--log-format", "json"],
        "warn,quiver_connectors=error",
        &[],
    );
    let all = server.get("/admin/loggers");
    assert_eq!(all["root"], json!({"level": "WARN", "last_modified": null}), "{all}");
    assert_eq!(all["quiver_connectors"]["level"], "ERROR", "{all}");
    // A logger without its own level has its parent's (here root's).
    assert_eq!(server.get("/admin/loggers/quiver_engine::worker")["level"], "WARN");

    let connector = |name: &str| {
        json!({"name": name, "config": {"connector.class": "quiver", "quiver.sql":
            "CREATE SOURCE g (id BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.per.second' = '10');
             CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;"}})
    };
    let logged = |what: &str| server.log.lock().unwrap().iter().any(|l| l.contains(what));
    assert_eq!(server.json("POST", "/connectors", &connector("quiet")).0, 201);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!logged("connector configured"), "INFO is below WARN");

    let (status, affected) = server.json("PUT", "/admin/loggers/quiver_engine", &json!({"level": "info"}));
    assert_eq!(status, 200, "{affected}");
    assert_eq!(affected, json!(["quiver_engine"]));
    let set = server.get("/admin/loggers/quiver_engine::worker::connectors");
    assert_eq!(set["level"], "INFO", "{set}");
    assert!(set["last_modified"].as_i64().is_some_and(|t| t > 0), "{set}");
    assert_eq!(server.json("POST", "/connectors", &connector("loud")).0, 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logged("connector configured") {
        assert!(
            Instant::now() < deadline,
            "INFO lines appear once the level allows them"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // JSON lines, with the event's fields.
    let line = server
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("connector configured"))
        .cloned()
        .unwrap();
    let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(event["level"], "INFO", "{event}");
    assert_eq!(event["fields"]["connector"], "loud", "{event}");

    // Kafka Connect's refusals: no level, an unknown one.
    let (status, body) = server.json("PUT", "/admin/loggers/root", &json!({}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "Desired 'level' parameter was not specified in request."
    );
    let (status, body) = server.json("PUT", "/admin/loggers/root", &json!({"level": "LOUD"}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["message"], "invalid log level 'LOUD'.");
    // scope=cluster: one worker is the cluster; 204 as Kafka Connect answers.
    let (status, _) = server.json("PUT", "/admin/loggers/root?scope=cluster", &json!({"level": "ERROR"}));
    assert_eq!(status, 204);
    assert_eq!(server.get("/admin/loggers")["root"]["level"], "ERROR");
    server.sigterm();
}

/// HTTPS beside HTTP from `listeners`, with Kafka Connect's PEM keystore keys
/// (`listeners.https.ssl.*` before `ssl.*`) and required client certificates:
/// a client without a certificate is refused at the handshake, one with a
/// certificate the truststore signs gets the API; the HTTP listener still serves.
#[test]
fn https_listener_with_pem_keystore_and_required_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=quiver-test-ca",
            ],
        ]
        .concat(),
    );
    std::fs::write(d.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{who}.key"),
                    "-out",
                    &format!("{who}.csr"),
                    "-subj",
                    &format!("/CN={who}"),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{who}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{who}.ext"),
        ]);
    }
    // One PEM file with the private key and its chain, as KIP-651's keystore.
    let keystore = [
        std::fs::read_to_string(d.join("server.key")).unwrap(),
        std::fs::read_to_string(d.join("server.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(d.join("keystore.pem"), keystore).unwrap();
    let worker = d.join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "listeners=https://127.0.0.1:0\nssl.keystore.type=PEM\nssl.keystore.location={}\nssl.truststore.type=PEM\nssl.truststore.location={}\nlisteners.https.ssl.client.authentication=required\nssl.client.authentication=none\n",
            d.join("keystore.pem").display(),
            d.join("ca.pem").display()
        ),
    )
    .unwrap();
    let server = Server::start(&d.join("state"), &["--worker-config", worker.to_str().unwrap()]);
    let https = server.https_base();
    assert!(
        !server.startup.iter().any(|l| l.contains("ssl.")),
        "the ssl keys are used, not ignored: {:?}",
        server.startup
    );
    let curl = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(d.join("ca.pem"))
            .args(extra)
            .arg(format!("{https}/connectors"))
            .output()
            .expect("curl runs")
    };
    let refused = curl(&[]);
    assert!(
        !refused.status.success(),
        "no client certificate: refused at the handshake"
    );
    let ok = curl(&[
        "--cert",
        d.join("client.crt").to_str().unwrap(),
        "--key",
        d.join("client.key").to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "[]");
    // The HTTP listener serves beside it.
    assert_eq!(server.get("/connectors"), json!([]));
    server.sigterm();

    // `quiver ctl` over HTTPS trusts the CA it is given, and only that.
    std::fs::write(
        &worker,
        format!(
            "listeners=https://127.0.0.1:0\nssl.keystore.type=PEM\nssl.keystore.location={}\n",
            d.join("keystore.pem").display()
        ),
    )
    .unwrap();
    let server = Server::start(&d.join("state"), &["--worker-config", worker.to_str().unwrap()]);
    let https = server.https_base();
    let ctl = |extra: &[&str]| {
        quiver()
            .args(["ctl", "--server", &https])
            .args(extra)
            .args(["get", "connectors"])
            .output()
            .unwrap()
    };
    let trusted = ctl(&["--ca-file", d.join("ca.pem").to_str().unwrap()]);
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert!(String::from_utf8_lossy(&trusted.stdout).starts_with("NAME"));
    let untrusted = ctl(&[]);
    assert_eq!(untrusted.status.code(), Some(2), "an unknown CA is refused");
    server.sigterm();

    // A JKS keystore is refused with the key and what to do.
    std::fs::write(
        &worker,
        "listeners=https://127.0.0.1:0\nssl.keystore.type=JKS\nssl.keystore.location=/x.jks\n",
    )
    .unwrap();
    let out = quiver()
        .args(["server", "--state-dir"])
        .arg(d.join("state2"))
        .args(["--worker-config", worker.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ssl.keystore.type") && err.contains("PEM"), "{err}");
}

/// `quiver ctl` against a live server with a bearer token: every verb, its output
/// and its exit code (0 done, 1 the server refused, with its message as it is).
#[test]
fn quiver_ctl_drives_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start_with_token(d, "ctl-token");
    std::fs::write(
        d.join("gen.sql"),
        "CREATE SOURCE g (id BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.per.second' = '20', 'fields.id.kind' = 'sequence');
         CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;",
    )
    .unwrap();
    let ctl = |args: &[&str]| {
        let out = quiver()
            .args(["ctl", "--server", &server.base, "--token-file"])
            .arg(d.join("tokens"))
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(args);
        assert_eq!(code, 0, "ctl {args:?}: {out}{err}");
        out
    };
    assert_eq!(ok(&["apply", "-f", "gen.sql"]).trim(), "connector gen created");
    assert_eq!(ok(&["apply", "-f", "gen.sql"]).trim(), "connector gen updated");
    server.wait_for("/connectors/gen/status", "gen running", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    let table = ok(&["get", "connectors"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("NAME"), "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, ["gen", "unknown", "RUNNING", "1/1", "quiver"], "{table}");
    let json: Value = serde_json::from_str(&ok(&["get", "connectors", "-o", "json"])).unwrap();
    assert_eq!(json["gen"]["status"]["connector"]["state"], "RUNNING");
    let described = ok(&["describe", "connector", "gen"]);
    assert!(
        described.contains("State:   RUNNING") && described.contains("connector.class: quiver"),
        "{described}"
    );
    assert!(
        described.contains("Tasks:") && described.contains("Offsets:"),
        "{described}"
    );

    assert!(ok(&["pause", "gen"]).contains("pausing"));
    server.wait_for("/connectors/gen/status", "gen paused", |s| {
        s["connector"]["state"] == "PAUSED"
    });
    ok(&["resume", "gen"]);
    server.wait_for("/connectors/gen/status", "gen running again", |s| {
        s["connector"]["state"] == "RUNNING"
    });
    ok(&["restart", "gen", "--include-tasks"]);
    ok(&["stop", "gen"]);
    let offsets = ok(&["offsets", "get", "gen"]);
    assert!(offsets.starts_with("PARTITION"), "{offsets}");
    assert!(offsets.contains("\"position\""), "{offsets}");
    ok(&["offsets", "reset", "gen"]);
    let offsets: Value = serde_json::from_str(&ok(&["offsets", "get", "gen", "-o", "json"])).unwrap();
    assert_eq!(offsets["offsets"], json!([]), "{offsets}");
    let plugins = ok(&["plugins"]);
    assert!(plugins.starts_with("CLASS"), "{plugins}");
    assert!(
        plugins
            .lines()
            .any(|l| l.starts_with("org.apache.kafka.connect.file.FileStreamSinkConnector") && l.contains("sink")),
        "{plugins}"
    );

    // The server's refusals come through as they are, with exit code 1.
    std::fs::write(
        d.join("bad.json"),
        r#"{"name": "bad", "config": {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "topics": "t"}}"#,
    )
    .unwrap();
    let (code, _, err) = ctl(&["validate", "-f", "bad.json"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("file"), "the missing key is named: {err}");
    ok(&["delete", "gen"]);
    let (code, _, err) = ctl(&["describe", "connector", "gen"]);
    assert_eq!(code, 1);
    assert!(err.contains("gen") && err.contains("HTTP 404"), "{err}");
    // Without credentials: 401, Kafka Connect's message.
    let out = quiver()
        .args(["ctl", "--server", &server.base, "get", "connectors"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("User cannot access the resource. (HTTP 401)"));
    // A local problem is exit code 2.
    let (code, _, err) = ctl(&["apply", "-f", "missing.sql"]);
    assert_eq!(code, 2, "{err}");
    server.sigterm();
}

/// `quiver run FILE.sql --server URL` submits the file as a connector and returns;
/// `quiver sql --server URL` is the console of the running worker (POST /sql);
/// both take `quiver ctl`'s auth flags.
#[test]
fn run_and_sql_reach_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start_with_token(d, "remote-token");
    let file = d.join("counter.sql");
    std::fs::write(
        &file,
        "CREATE SOURCE g (id BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.per.second' = '20');
         CREATE SINK s WITH (connector = 'blackhole') AS SELECT id FROM g;",
    )
    .unwrap();
    let out = quiver()
        .args(["run"])
        .arg(&file)
        .args(["--server", &server.base, "--token-file"])
        .arg(d.join("tokens"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("connector counter created"));
    server.wait_for("/connectors/counter/status", "the submitted file running", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });

    // The console over the server: statements typed on stdin run there.
    use std::io::Write;
    let mut console = quiver()
        .args(["sql", "--server", &server.base, "--token-file"])
        .arg(d.join("tokens"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    console
        .stdin
        .take()
        .unwrap()
        .write_all(b"SHOW SINKS;\nCREATE SOURCE nums (n BIGINT NOT NULL) WITH (connector = 'datagen', 'rows.total' = '3', 'fields.n.kind' = 'sequence');\nSELECT n FROM nums LIMIT 3;\nDROP BANANA;\n")
        .unwrap();
    let out = console.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connected to"), "{text}");
    assert!(text.contains("counter"), "SHOW SINKS lists the worker's sinks: {text}");
    assert!(text.contains("nums"), "{text}");
    assert!(
        text.contains("| n |\n+---+\n| 0 |\n| 1 |\n| 2 |\n+---+\n3 row(s)"),
        "the preview's rows, streamed into one table: {text}"
    );
    assert!(
        text.contains("error:") && text.contains("HTTP 400"),
        "a bad statement shows the server's message: {text}"
    );
    server.sigterm();
}
