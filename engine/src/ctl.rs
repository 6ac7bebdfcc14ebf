//! `quiver ctl`: a client for a running `quiver server` (or any Kafka Connect
//! worker: it speaks only Kafka Connect's REST API), modelled on kcctl.
//!
//! Output is an aligned table on a terminal and the server's JSON with `-o json`.
//! Exit codes a script can test: 0 done, 1 the server refused (its message shown
//! as it is), 2 a usage or local problem (unreadable file, unreachable server).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Where a running worker is and how to log in: `quiver ctl`'s flags, and
/// `quiver run --server` / `quiver sql --server`'s.
#[derive(Debug, Default, Args)]
pub struct Remote {
    /// The worker's REST address (ctl: default QUIVER_SERVER, else http://127.0.0.1:8083).
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// User for HTTP basic authentication (with --password-file).
    #[arg(long, global = true)]
    user: Option<String>,
    /// File holding the password (its first line), so it stays out of the process list.
    #[arg(long, value_name = "FILE", global = true)]
    password_file: Option<PathBuf>,
    /// File holding a bearer token (its first line).
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// PEM file of the CA that signs the server's certificate (https).
    #[arg(long, value_name = "PEM", global = true)]
    ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate (testing only).
    #[arg(long, global = true)]
    insecure: bool,
}

/// `quiver ctl`'s connection flags and verb.
#[derive(Debug, Args)]
pub struct CtlArgs {
    #[command(flatten)]
    remote: Remote,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Connectors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum One {
    Connector,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// List: `get connectors` (name, type, state, tasks).
    Get { kind: Kind },
    /// Show one: `describe connector NAME` (config, state, tasks with worker and trace, offsets).
    Describe { kind: One, name: String },
    /// Create or update a connector from a file: Kafka Connect JSON
    /// ({"name", "config"}), a .properties connector file, or a Quiver .sql file
    /// (named after the file).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Pause a connector's tasks.
    Pause { name: String },
    /// Resume a paused or stopped connector.
    Resume { name: String },
    /// Stop a connector (its tasks flush, commit and shut down; the config stays).
    Stop { name: String },
    /// Restart a connector, and with --include-tasks its tasks (or only the failed ones).
    Restart {
        name: String,
        #[arg(long)]
        include_tasks: bool,
        #[arg(long)]
        only_failed: bool,
    },
    /// Delete a connector (its offsets stay, as in Kafka Connect).
    Delete { name: String },
    /// A connector's offsets: get, reset (stopped connectors) or patch -f FILE.
    Offsets {
        #[command(subcommand)]
        op: OffsetsOp,
    },
    /// The connector plugins the worker has.
    Plugins,
    /// Check a connector file without creating it (the server's validate endpoint).
    Validate {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum OffsetsOp {
    Get {
        name: String,
    },
    Reset {
        name: String,
    },
    Patch {
        name: String,
        /// {"offsets": [{"partition": {…}, "offset": {…}}]}
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

/// A failure: the exit code and what to print.
struct Failure(u8, String);

fn local(message: impl Into<String>) -> Failure {
    Failure(2, message.into())
}

pub fn main(args: CtlArgs) -> ExitCode {
    report(run(&args))
}

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    fn new(args: &Remote) -> Result<Self, Failure> {
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .disable_verification(args.insecure);
        if let Some(ca) = &args.ca_file {
            let pem = std::fs::read(ca).map_err(|e| local(format!("--ca-file {}: {e}", ca.display())))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| local(format!("--ca-file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(local(format!("--ca-file {}: no certificate in it", ca.display())));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(tls.build())
            .build()
            .into();
        let first_line = |flag: &str, path: &Path| -> Result<String, Failure> {
            let text = std::fs::read_to_string(path).map_err(|e| local(format!("{flag} {}: {e}", path.display())))?;
            Ok(text.lines().next().unwrap_or_default().trim_end().to_string())
        };
        let authorization = match (&args.user, &args.password_file, &args.token_file) {
            (Some(_), _, Some(_)) => return Err(local("give --user or --token-file, not both")),
            (Some(user), Some(file), None) => {
                use base64::Engine as _;
                let password = first_line("--password-file", file)?;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                ))
            }
            (Some(_), None, None) => return Err(local("--user needs --password-file")),
            (None, Some(_), _) => return Err(local("--password-file needs --user")),
            (None, None, Some(file)) => Some(format!("Bearer {}", first_line("--token-file", file)?)),
            (None, None, None) => None,
        };
        Ok(Self {
            agent,
            base: args
                .server
                .clone()
                .or_else(|| std::env::var("QUIVER_SERVER").ok())
                .unwrap_or_else(|| "http://127.0.0.1:8083".to_string())
                .trim_end_matches('/')
                .to_string(),
            authorization,
        })
    }

    /// One request; the JSON answer (Null when empty), or the server's message.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send(method, path, body)
    }

    fn send(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<Value, Failure> {
        let mut resp = self.request(method, path, body, None)?;
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        })
    }

    /// Sends a request asking for a streamed (NDJSON) answer and hands each line
    /// to `line` as it arrives.
    fn stream(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        mut line: impl FnMut(Value),
    ) -> Result<(), Failure> {
        use std::io::BufRead as _;
        let mut resp = self.request(method, path, body, Some("application/x-ndjson"))?;
        let reader = std::io::BufReader::new(resp.body_mut().as_reader());
        for text in reader.lines() {
            let text = text.map_err(|e| local(format!("{method} {path}: the answer broke off: {e}")))?;
            if !text.trim().is_empty() {
                line(serde_json::from_str(&text).unwrap_or(Value::String(text)));
            }
        }
        Ok(())
    }

    /// Sends a request; an error status becomes a [`Failure`] carrying the
    /// server's message as is.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        if let Some((ct, _)) = &body {
            req = req.header("Content-Type", *ct);
        }
        if let Some(accept) = accept {
            req = req.header("Accept", accept);
        }
        let req = req
            .body(body.map(|(_, b)| b).unwrap_or_default())
            .map_err(|e| local(format!("{method} {path}: {e}")))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| local(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            let message = json["message"]
                .as_str()
                .map_or_else(|| json.to_string(), str::to_string);
            return Err(Failure(1, format!("{message} (HTTP {status})")));
        }
        Ok(resp)
    }
}

/// `quiver run FILE --server URL`: creates or updates the file's connector on a
/// running worker and returns.
pub fn submit(remote: &Remote, file: &Path) -> ExitCode {
    let outcome = (|| {
        let client = Client::new(remote)?;
        let (name, config) = connector_file(file)?;
        let path = format!("/connectors/{}", encode(&name));
        let existed = client.call("GET", &path, None).is_ok();
        client.call("PUT", &format!("{path}/config"), Some(&Value::Object(config)))?;
        let verb = if existed { "updated" } else { "created" };
        Ok::<_, Failure>(format!("connector {name} {verb} on {}", client.base))
    })();
    report(outcome)
}

fn report(outcome: Result<String, Failure>) -> ExitCode {
    match outcome {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// `quiver sql --server URL`: the console, its statements run by the worker
/// through `POST /sql`.
pub async fn console(remote: &Remote) -> ExitCode {
    let client = match Client::new(remote) {
        Ok(c) => Arc::new(c),
        Err(f) => return report(Err(f)),
    };
    crate::render::say!("connected to {}", client.base);
    let outcome = crate::console::run_with(|text: String, out: crate::console::Printer| {
        let client = Arc::clone(&client);
        async move {
            let shown = out.clone();
            let answer = tokio::task::spawn_blocking(move || {
                let mut table = None;
                client.stream("POST", "/sql", Some(("text/plain", text.into_bytes())), |line| {
                    for l in render_streamed(&line, &mut table) {
                        let _ = shown.send(l);
                    }
                })
            })
            .await;
            let failed = match answer {
                Ok(Ok(())) => return,
                Ok(Err(Failure(_, message))) => message,
                Err(e) => e.to_string(),
            };
            let _ = out.send(format!("error: {failed}"));
        }
    })
    .await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(Err(local(e.to_string()))),
    }
}

/// One line of a streamed `POST /sql` answer as the console shows it; `table`
/// is the preview being printed.
fn render_streamed(line: &Value, table: &mut Option<crate::render::LiveTable>) -> Vec<String> {
    if line.is_array() {
        // A worker that does not stream answers with the whole array at once.
        return render_results(line);
    }
    if let Some(e) = line["error"].as_str() {
        return vec![format!("error: {e}")];
    }
    if let Some(preview) = line.get("preview") {
        let columns = preview["columns"].as_array().into_iter().flatten().map(text).collect();
        *table = Some(crate::render::LiveTable::new(columns));
        return Vec::new();
    }
    if let Some(end) = line.get("end") {
        let notes: Vec<String> = end["notes"].as_array().into_iter().flatten().map(text).collect();
        return table.take().map(|t| t.finish(&notes)).unwrap_or_default();
    }
    if line.get("columns").is_none()
        && let (Some(rows), Some(t)) = (line["rows"].as_array(), table.as_mut())
    {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| t.columns().iter().map(|c| text(&row[c.as_str()])).collect())
            .collect();
        return t.push(&cells);
    }
    render_results(&Value::Array(vec![line.clone()]))
}

/// `POST /sql`'s results as the console shows them: messages, and tables.
fn render_results(results: &Value) -> Vec<String> {
    results
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            if let Some(m) = r["message"].as_str() {
                return m.to_string();
            }
            let columns: Vec<String> = r["columns"].as_array().into_iter().flatten().map(text).collect();
            let rows = r["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| match row {
                    Value::Object(o) => columns.iter().map(|c| text(o.get(c).unwrap_or(&Value::Null))).collect(),
                    Value::Array(a) => a.iter().map(text).collect(),
                    other => vec![text(other)],
                })
                .collect();
            let header: Vec<&str> = columns.iter().map(String::as_str).collect();
            let mut out = table(&header, rows);
            for n in r["notes"].as_array().into_iter().flatten() {
                out.push_str(&format!("\n{}", text(n)));
            }
            out
        })
        .collect()
}

fn run(args: &CtlArgs) -> Result<String, Failure> {
    let client = Client::new(&args.remote)?;
    let json_out = args.output == Output::Json;
    let show = |v: &Value, table: &dyn Fn(&Value) -> String| {
        if json_out {
            serde_json::to_string_pretty(v).unwrap_or_default()
        } else {
            table(v)
        }
    };
    let path = |name: &str, rest: &str| format!("/connectors/{}{rest}", encode(name));
    match &args.command {
        CtlCommand::Get { kind: Kind::Connectors } => {
            let all = client.call("GET", "/connectors?expand=status&expand=info", None)?;
            Ok(show(&all, &connectors_table))
        }
        CtlCommand::Describe { name, .. } => {
            let info = client.call("GET", &path(name, ""), None)?;
            let status = client.call("GET", &path(name, "/status"), None)?;
            let offsets = client.call("GET", &path(name, "/offsets"), None).unwrap_or(Value::Null);
            let all = json!({"name": name, "info": info, "status": status, "offsets": offsets});
            Ok(show(&all, &describe_text))
        }
        CtlCommand::Apply { file } => {
            let (name, config) = connector_file(file)?;
            let existed = client.call("GET", &path(&name, ""), None).is_ok();
            let info = client.call("PUT", &path(&name, "/config"), Some(&Value::Object(config)))?;
            let verb = if existed { "updated" } else { "created" };
            Ok(show(&info, &|_| format!("connector {name} {verb}")))
        }
        CtlCommand::Pause { name } => {
            client.call("PUT", &path(name, "/pause"), None)?;
            Ok(show(&Value::Null, &|_| format!("connector {name} pausing")))
        }
        CtlCommand::Resume { name } => {
            client.call("PUT", &path(name, "/resume"), None)?;
            Ok(show(&Value::Null, &|_| format!("connector {name} resuming")))
        }
        CtlCommand::Stop { name } => {
            client.call("PUT", &path(name, "/stop"), None)?;
            Ok(show(&Value::Null, &|_| format!("connector {name} stopped")))
        }
        CtlCommand::Restart {
            name,
            include_tasks,
            only_failed,
        } => {
            let q = format!("/restart?includeTasks={include_tasks}&onlyFailed={only_failed}");
            let status = client.call("POST", &path(name, &q), None)?;
            Ok(show(&status, &|_| format!("connector {name} restarted")))
        }
        CtlCommand::Delete { name } => {
            client.call("DELETE", &path(name, ""), None)?;
            Ok(show(&Value::Null, &|_| format!("connector {name} deleted")))
        }
        CtlCommand::Offsets { op } => match op {
            OffsetsOp::Get { name } => {
                let o = client.call("GET", &path(name, "/offsets"), None)?;
                Ok(show(&o, &offsets_table))
            }
            OffsetsOp::Reset { name } => {
                let o = client.call("DELETE", &path(name, "/offsets"), None)?;
                Ok(show(&o, &|v| {
                    v["message"].as_str().unwrap_or("offsets reset").to_string()
                }))
            }
            OffsetsOp::Patch { name, file } => {
                let text = std::fs::read_to_string(file).map_err(|e| local(format!("{}: {e}", file.display())))?;
                let body: Value =
                    serde_json::from_str(&text).map_err(|e| local(format!("{}: not JSON: {e}", file.display())))?;
                let o = client.call("PATCH", &path(name, "/offsets"), Some(&body))?;
                Ok(show(&o, &|v| {
                    v["message"].as_str().unwrap_or("offsets altered").to_string()
                }))
            }
        },
        CtlCommand::Plugins => {
            let p = client.call("GET", "/connector-plugins?connectorsOnly=false", None)?;
            Ok(show(&p, &plugins_table))
        }
        CtlCommand::Validate { file } => {
            let (_, config) = connector_file(file)?;
            let class = config
                .get("connector.class")
                .and_then(Value::as_str)
                .ok_or_else(|| local(format!("{}: no connector.class", file.display())))?
                .to_string();
            let v = client.call(
                "PUT",
                &format!("/connector-plugins/{}/config/validate", encode(&class)),
                Some(&Value::Object(config)),
            )?;
            let errors = v["error_count"].as_u64().unwrap_or(0);
            let out = show(&v, &validation_text);
            if errors > 0 {
                return Err(Failure(1, out));
            }
            Ok(out)
        }
    }
}

/// A connector file as (name, config), read as `quiver server` reads the files
/// named on its command line: Kafka Connect JSON, `.properties`, or Quiver `.sql`.
fn connector_file(file: &Path) -> Result<(String, serde_json::Map<String, Value>), Failure> {
    let (name, config) = crate::server::properties::connector_file(file).map_err(local)?;
    Ok((name, config.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
}

/// Percent-encodes a path segment (also for the server's relayed requests).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Rows as aligned columns under a header.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(
        || if v.is_null() { String::new() } else { v.to_string() },
        str::to_string,
    )
}

fn connectors_table(all: &Value) -> String {
    let rows = all
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, c)| {
                    let tasks = c["status"]["tasks"].as_array().cloned().unwrap_or_default();
                    let running = tasks.iter().filter(|t| t["state"] == "RUNNING").count();
                    vec![
                        name.clone(),
                        text(&c["status"]["type"]),
                        text(&c["status"]["connector"]["state"]),
                        format!("{running}/{}", tasks.len()),
                        text(&c["info"]["config"]["connector.class"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["NAME", "TYPE", "STATE", "TASKS", "CLASS"], rows)
}

fn describe_text(all: &Value) -> String {
    let mut out = vec![
        format!("Name:    {}", text(&all["name"])),
        format!("Type:    {}", text(&all["status"]["type"])),
        format!("State:   {}", text(&all["status"]["connector"]["state"])),
        format!("Worker:  {}", text(&all["status"]["connector"]["worker_id"])),
        "Config:".to_string(),
    ];
    if let Some(c) = all["info"]["config"].as_object() {
        for (k, v) in c {
            let v = text(v);
            let first = v.lines().next().unwrap_or_default();
            let more = if v.lines().count() > 1 { " …" } else { "" };
            out.push(format!("  {k}: {first}{more}"));
        }
    }
    out.push("Tasks:".to_string());
    let tasks = all["status"]["tasks"].as_array().cloned().unwrap_or_default();
    let rows = tasks
        .iter()
        .map(|t| {
            vec![
                text(&t["id"]),
                text(&t["state"]),
                text(&t["worker_id"]),
                text(&t["trace"]).lines().next().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    out.push(indent(&table(&["ID", "STATE", "WORKER", "TRACE"], rows)));
    out.push("Offsets:".to_string());
    out.push(indent(&offsets_table(&all["offsets"])));
    out.join("\n")
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

fn offsets_table(o: &Value) -> String {
    let rows = o["offsets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| vec![e["partition"].to_string(), e["offset"].to_string()])
                .collect()
        })
        .unwrap_or_default();
    table(&["PARTITION", "OFFSET"], rows)
}

fn plugins_table(p: &Value) -> String {
    let rows = p
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| vec![text(&e["class"]), text(&e["type"]), text(&e["version"])])
                .collect()
        })
        .unwrap_or_default();
    table(&["CLASS", "TYPE", "VERSION"], rows)
}

fn validation_text(v: &Value) -> String {
    let errors = v["error_count"].as_u64().unwrap_or(0);
    let mut out = vec![format!("{}: {errors} error(s)", text(&v["name"]))];
    for c in v["configs"].as_array().into_iter().flatten() {
        for e in c["value"]["errors"].as_array().into_iter().flatten() {
            out.push(format!("  {}: {}", text(&c["value"]["name"]), text(e)));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_paths_are_encoded() {
        let t = table(
            &["NAME", "STATE"],
            vec![
                vec!["a-long-name".into(), "RUNNING".into()],
                vec!["b".into(), "PAUSED".into()],
            ],
        );
        assert_eq!(t, "NAME         STATE\na-long-name  RUNNING\nb            PAUSED");
        assert_eq!(encode("my connector/1"), "my%20connector%2F1");
    }
}
