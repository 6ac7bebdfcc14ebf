//! The command line: `quiver run | sql | validate | translate | connectors | dev`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use quiver_sql::{Catalog, ParsedStatement};
use tokio::sync::watch;

use crate::worker::task::State;
use crate::worker::{Engine, EngineOptions, PipelineStatus};
use crate::{console, render};

#[derive(Debug, Parser)]
#[command(
    name = "quiver",
    version,
    about = "Move data between Kafka and the systems around it, with pipelines declared in SQL."
)]
struct Cli {
    /// How log lines are written to standard error: text, or one JSON object per
    /// event for log shippers. Levels come from QUIVER_LOG (default warn).
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Text)]
    log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipelines of a .sql file until they end or Ctrl-C / SIGTERM.
    Run {
        /// The pipeline file (CREATE SOURCE / CREATE SINK statements), or a Kafka
        /// Connect connector's JSON (translated as `quiver translate` does).
        file: PathBuf,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Stop each source at the end that existed at start, flush, commit and exit.
        #[arg(long)]
        until_caught_up: bool,
        /// Folder of the state store (offsets); default: the user's data folder.
        #[arg(long, env = "QUIVER_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Forget the committed offsets of this file's sinks and read from the start.
        #[arg(long)]
        from_beginning: bool,
        /// Submit the file to a running `quiver server` at this address (as a
        /// connector named after it) and return, instead of running it here.
        #[command(flatten)]
        remote: crate::ctl::Remote,
    },
    /// A client for a running `quiver server` (or any Kafka Connect worker), as kcctl:
    /// get, describe, apply -f, pause, resume, stop, restart, delete, offsets,
    /// plugins, validate. Tables on a terminal, JSON with -o json.
    Ctl(crate::ctl::CtlArgs),
    /// A long-running worker serving Kafka Connect's REST API (standalone mode).
    ///
    /// Connectors submitted over HTTP (Kafka Connect JSON, or Quiver SQL under
    /// "quiver.sql") keep running, restart from their committed offsets after a
    /// crash, and come back in their target state. Connector files named after the
    /// options (Kafka Connect .properties or .json, or Quiver .sql) are created at
    /// start when missing, as `connect-standalone worker.properties c1.properties` does.
    Server {
        /// Address to listen on (default: the worker properties' `listeners`, else 127.0.0.1:8083).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Folder of the state store (connectors, offsets); default: the user's data folder.
        #[arg(long, env = "QUIVER_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// A Kafka Connect worker properties file (connect-standalone.properties).
        #[arg(long, value_name = "FILE")]
        worker_config: Option<PathBuf>,
        /// The worker's Kafka cluster, for connectors that read or write Kafka
        /// (overrides the properties' bootstrap.servers).
        #[arg(long, value_name = "HOST:PORT")]
        bootstrap_servers: Option<String>,
        /// Connector files to create at start when missing.
        connectors: Vec<PathBuf>,
    },
    /// Interactive SQL console.
    Sql {
        #[arg(long, env = "QUIVER_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// With --server URL: the console of a running `quiver server`, its
        /// statements run there through POST /sql (same auth flags as `quiver ctl`).
        #[command(flatten)]
        remote: crate::ctl::Remote,
    },
    /// Check pipeline files without touching any external system.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Development aids: throwaway services for trying pipelines. Not for real data.
    Dev {
        #[command(subcommand)]
        what: DevCommand,
    },
    /// Translate a Kafka Connect connector's JSON into Quiver SQL and print it.
    ///
    /// Reads `{"name": …, "config": {…}}` or the bare config map: the connector
    /// class, converters, `transforms` and `predicates`, `errors.*`. Anything with
    /// no Quiver equivalent is printed as a comment (and `quiver run` refuses it).
    Translate {
        /// The connector JSON file.
        file: PathBuf,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Also print the sink's EXPLAIN (the compiled filter and expressions) as comments.
        #[arg(long)]
        explain: bool,
    },
    /// List every connector and its options.
    Connectors {
        /// Only this connector.
        name: Option<String>,
        /// Markdown tables (as in the README).
        #[arg(long)]
        markdown: bool,
    },
}

/// What connector JSON does not say.
#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// Connector JSON only: the record's columns as SQL (`id BIGINT, name TEXT`);
    /// else the config's "quiver.columns" key.
    #[arg(long, value_name = "COLUMNS")]
    columns: Option<String>,
    /// Connector JSON only: the Kafka cluster (a Kafka Connect worker setting);
    /// else the SQL reads ${KAFKA_BOOTSTRAP} when it runs.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_servers: Option<String>,
    /// Connector JSON only: type the columns from up to 200 records read off the
    /// connector's topics (JSON values), when --columns and "quiver.columns" are absent.
    #[arg(long)]
    infer_columns: bool,
}

impl ConnectArgs {
    fn options(&self) -> quiver_sql::connect::TranslateOptions {
        quiver_sql::connect::TranslateOptions {
            columns: self.columns.clone(),
            bootstrap_servers: self.bootstrap_servers.clone(),
            evolve: false,
        }
    }
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Start an in-memory Kafka (librdkafka's mock cluster) and print its address.
    ///
    /// It speaks the Kafka protocol (produce, fetch, consumer groups, offset
    /// commits) but keeps everything in memory and forgets it on exit: a
    /// development aid for the Kafka examples, not a broker.
    Kafka {
        /// A topic to create, as NAME or NAME:PARTITIONS (repeatable).
        #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
        topics: Vec<String>,
        /// Number of mock brokers.
        #[arg(long, default_value_t = 1)]
        brokers: i32,
        /// Also write the bootstrap address to this file (for scripts).
        #[arg(long, value_name = "FILE")]
        bootstrap_file: Option<PathBuf>,
    },
}

pub(crate) fn default_state_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("quiver")
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { file, remote, .. } if remote.server.is_some() => {
                tokio::task::block_in_place(|| crate::ctl::submit(&remote, &file))
            }
            Command::Run {
                file,
                connect,
                until_caught_up,
                state_dir,
                from_beginning,
                ..
            } => {
                run(
                    &file,
                    &connect,
                    until_caught_up,
                    &state_dir.unwrap_or_else(default_state_dir),
                    from_beginning,
                )
                .await
            }
            Command::Translate { file, connect, explain } => translate(&file, &connect, explain),
            Command::Ctl(args) => tokio::task::block_in_place(|| crate::ctl::main(args)),
            Command::Server {
                listen,
                state_dir,
                worker_config,
                bootstrap_servers,
                connectors,
            } => {
                crate::server::run::main(crate::server::run::ServerArgs {
                    listen,
                    state_dir: state_dir.unwrap_or_else(default_state_dir),
                    worker_config,
                    bootstrap_servers,
                    connectors,
                })
                .await
            }
            Command::Sql { remote, .. } if remote.server.is_some() => crate::ctl::console(&remote).await,
            Command::Sql { state_dir, .. } => sql(&state_dir.unwrap_or_else(default_state_dir)).await,
            Command::Validate { files } => validate(&files),
            Command::Dev {
                what:
                    DevCommand::Kafka {
                        topics,
                        brokers,
                        bootstrap_file,
                    },
            } => dev_kafka(&topics, brokers, bootstrap_file.as_deref()).await,
            Command::Connectors { name, markdown } => {
                if let Some(n) = &name
                    && quiver_connectors::find(n).is_none()
                {
                    let known: Vec<&str> = quiver_connectors::registry().iter().map(|c| c.name()).collect();
                    eprintln!("error: unknown connector '{n}'; known connectors: {}", known.join(", "));
                    return ExitCode::FAILURE;
                }
                crate::render::say_raw!("{}", render::connectors(markdown, name.as_deref()));
                ExitCode::SUCCESS
            }
        }
    })
}

/// `quiver dev kafka`: a mock cluster until Ctrl-C.
async fn dev_kafka(topics: &[String], brokers: i32, bootstrap_file: Option<&Path>) -> ExitCode {
    use quiver_connectors::kafka::dev::{DevCluster, parse_topic};
    let mut parsed = Vec::new();
    for t in topics {
        match parse_topic(t) {
            Ok(p) => parsed.push(p),
            Err(e) => {
                eprintln!("error: --topic {e}");
                return ExitCode::from(2);
            }
        }
    }
    let cluster = match DevCluster::start(brokers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, partitions) in &parsed {
        if let Err(e) = cluster.create_topic(name, *partitions) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let bootstrap = cluster.bootstrap();
    if let Some(f) = bootstrap_file
        && let Err(e) = std::fs::write(f, format!("{bootstrap}\n"))
    {
        eprintln!("error: cannot write {}: {e}", f.display());
        return ExitCode::FAILURE;
    }
    crate::render::say!("Development Kafka (librdkafka mock cluster, in memory; everything is lost on exit)");
    crate::render::say!("  bootstrap.servers = {bootstrap}");
    for (name, partitions) in &parsed {
        crate::render::say!(
            "  topic {name} ({partitions} partition{})",
            if *partitions == 1 { "" } else { "s" }
        );
    }
    crate::render::say!("Pipelines read it through ${{KAFKA_BOOTSTRAP}}; in another shell:");
    crate::render::say!("  export KAFKA_BOOTSTRAP={bootstrap}");
    crate::render::say!("Press Ctrl-C to stop.");
    shutdown_signal().await;
    drop(cluster);
    ExitCode::SUCCESS
}

fn is_connector_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Reads connector JSON and translates it; errors are `file: key: message`.
fn translate_file(
    path: &Path,
    connect: &ConnectArgs,
) -> Result<(quiver_sql::connect::Translation, quiver_sql::Table), String> {
    use quiver_sql::connect::{ConnectorConfig, check, translate};
    let (file, text, stem) = crate::server::properties::read_named(path)?;
    let config = ConnectorConfig::from_json(&text, &stem).map_err(|e| format!("{file}: {e}"))?;
    let mut options = connect.options();
    let mut inferred = None;
    if connect.infer_columns && options.columns.is_none() {
        let (columns, records) =
            infer_columns(&config, connect).map_err(|e| format!("{file}: --infer-columns: {e}"))?;
        inferred = Some(format!(
            "-- columns inferred from {records} records on the connector's topics: check the types\n"
        ));
        options.columns = Some(columns);
    }
    let mut translation = match translate(&config, &options) {
        Ok(t) => t,
        // No columns anywhere: find them where Kafka Connect would (the table's
        // catalog, the registry, the records), as the server does.
        Err(e) if e.key == "quiver.columns" && options.columns.is_none() => {
            let (columns, from) = find_columns(&config, connect).map_err(|why| format!("{file}: {e} ({why})"))?;
            inferred = Some(format!("-- columns found from {from}: check the types\n"));
            options.columns = Some(columns);
            translate(&config, &options).map_err(|e| format!("{file}: {e}"))?
        }
        Err(e) => return Err(format!("{file}: {e}")),
    };
    if let Some(comment) = inferred {
        translation.sql.insert_str(0, &comment);
    }
    let explain = check(&translation).map_err(|e| {
        format!(
            "{file}: the translated SQL does not plan: {}\n{}",
            e.render("translated"),
            translation.sql
        )
    })?;
    Ok((translation, explain))
}

/// Finds a stock connector's columns with [`crate::discover`]; returns them and
/// where they came from, or why they could not be found.
fn find_columns(
    config: &quiver_sql::connect::ConnectorConfig,
    connect: &ConnectArgs,
) -> Result<(String, String), String> {
    use crate::discover::Found;
    let defaults = crate::submit::WorkerDefaults {
        bootstrap_servers: connect
            .bootstrap_servers
            .clone()
            .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok()),
        ..Default::default()
    };
    let found = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(crate::discover::columns(&config.name, config.values(), &defaults))
    });
    match found {
        Ok(Some(Found::Columns { ddl, from, .. })) => Ok((ddl, from)),
        Ok(Some(Found::Waiting(why))) => Err(format!("{why}; give them with --columns meanwhile")),
        Ok(None) => Err("nothing to find them from".into()),
        Err(invalid) => Err(invalid.to_string()),
    }
}

/// Samples the connector's topics and types its columns; returns them and how many records were read.
fn infer_columns(
    config: &quiver_sql::connect::ConnectorConfig,
    connect: &ConnectArgs,
) -> Result<(String, usize), String> {
    use quiver_connectors::kafka::sample::{infer_json_columns, sample_values};
    let Some(spec) = quiver_sql::connect::sample_spec(config).map_err(|e| e.to_string())? else {
        return Err("this connector's columns cannot be sampled: only connectors reading JSON from Kafka (JsonConverter) can be, and only without quiver.columns".into());
    };
    let bootstrap = spec
        .bootstrap
        .clone()
        .or_else(|| connect.bootstrap_servers.clone())
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .ok_or("needs the Kafka cluster: --bootstrap-servers or KAFKA_BOOTSTRAP")?;
    let values =
        sample_values(&bootstrap, &[], &spec.topics, 200, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    if values.is_empty() {
        return Err(format!(
            "no records arrived from {bootstrap} within 10 s to infer columns from; give them with --columns"
        ));
    }
    let schema = infer_json_columns(&values, spec.envelope).map_err(|e| e.to_string())?;
    Ok((quiver_sql::connect::columns_ddl(&schema), values.len()))
}

fn translate(path: &Path, connect: &ConnectArgs, explain: bool) -> ExitCode {
    match translate_file(path, connect) {
        Ok((t, plan)) => {
            crate::render::say_raw!("{}", t.sql);
            if explain {
                let lines: Vec<String> = plan.rows.iter().map(|r| format!("--   {}", r.join(" "))).collect();
                crate::render::say_raw!("\n-- EXPLAIN\n{}\n", lines.join("\n"));
            }
            for u in &t.untranslated {
                eprintln!("warning: not translated: {u}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses and plans a file (SQL, or connector JSON translated first) against a
/// scratch catalog, returning every problem.
fn check_file(path: &Path, connect: &ConnectArgs) -> Result<Vec<ParsedStatement>, Vec<String>> {
    let file = path.display().to_string();
    let text = if is_connector_json(path) {
        let (t, _) = translate_file(path, connect).map_err(|e| vec![e])?;
        if !t.untranslated.is_empty() {
            let mut problems = vec![format!(
                "{file}: cannot run: parts of this connector have no Quiver equivalent (quiver translate shows the SQL):"
            )];
            problems.extend(t.untranslated.iter().map(|u| format!("  {u}")));
            return Err(problems);
        }
        t.sql
    } else {
        match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return Err(vec![format!("{file}: cannot read: {e}")]),
        }
    };
    let (stmts, errors) = quiver_sql::parse(&text);
    let mut problems: Vec<(u64, u64, String)> = errors
        .iter()
        .map(|e| {
            (
                e.location.map_or(0, |l| l.line),
                e.location.map_or(0, |l| l.column),
                e.render(&file),
            )
        })
        .collect();
    let mut catalog = Catalog::new();
    let mut failed_sources: Vec<String> = Vec::new();
    for s in &stmts {
        match catalog.plan(s) {
            Ok(plan) => catalog.apply(&plan),
            Err(e) => {
                if let quiver_sql::Statement::CreateSource(c) = &s.statement {
                    failed_sources.push(c.name.value.clone());
                }
                // A sink on a source that already failed would only repeat that error.
                if failed_sources
                    .iter()
                    .any(|n| e.message.starts_with(&format!("unknown source '{n}'")))
                {
                    continue;
                }
                problems.push((
                    e.location.map_or(0, |l| l.line),
                    e.location.map_or(0, |l| l.column),
                    e.render(&file),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(stmts)
    } else {
        problems.sort_by_key(|p| (p.0, p.1));
        Err(problems.into_iter().map(|p| p.2).collect())
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match check_file(
            f,
            &ConnectArgs {
                columns: None,
                bootstrap_servers: None,
                infer_columns: false,
            },
        ) {
            Ok(stmts) => crate::render::say!(
                "{}: ok ({} statement{})",
                f.display(),
                stmts.len(),
                if stmts.len() == 1 { "" } else { "s" }
            ),
            Err(problems) => {
                failed = true;
                for p in problems {
                    crate::render::say!("{p}");
                }
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(
    file: &Path,
    connect: &ConnectArgs,
    until_caught_up: bool,
    state_dir: &Path,
    from_beginning: bool,
) -> ExitCode {
    let stmts = match check_file(file, connect) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let engine = match Engine::open(
        state_dir,
        EngineOptions {
            bounded: until_caught_up,
            persist_definitions: false,
        },
    ) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if from_beginning {
        // Plan the file (it planned in check_file) to reach every place its sinks'
        // offsets live: the store, and each source's upstream commits.
        let mut catalog = Catalog::new();
        for s in &stmts {
            let Ok(plan) = catalog.plan(s) else { continue };
            catalog.apply(&plan);
            if let quiver_sql::Plan::CreateSink(spec) = &plan
                && let Err(e) = engine.reset_pipeline_offsets(spec).await
            {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("stopping: flushing and committing (press Ctrl-C again to abort)");
        let _ = stop_tx.send(true);
        shutdown_signal().await;
        std::process::exit(130);
    });
    let name = file.display().to_string();
    for s in &stmts {
        match engine.execute(s).await {
            Ok(out) => {
                if !matches!(out, crate::Output::Message(_)) {
                    crate::render::say!("{}", render::output(&out));
                }
            }
            Err(e) => {
                eprintln!("{name}:{}: {e}", s.location);
                engine.shutdown().await;
                return ExitCode::FAILURE;
            }
        }
    }
    let bars = if std::io::stderr().is_terminal() && until_caught_up {
        Some(progress_bars(Arc::clone(&engine)))
    } else {
        None
    };
    let statuses = engine.wait_all(stop_rx).await;
    if let Some((multi, handle)) = bars {
        handle.abort();
        let _ = multi.clear();
    }
    finish(&statuses)
}

fn finish(statuses: &[PipelineStatus]) -> ExitCode {
    if statuses.is_empty() {
        crate::render::say!("no sinks in this file: nothing ran");
    }
    for s in statuses {
        crate::render::say_raw!("{}", render::summary(s));
    }
    if statuses.iter().any(|s| s.state == State::Failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One progress bar per pipeline, refreshed from the engine's status.
fn progress_bars(engine: Arc<Engine>) -> (MultiProgress, tokio::task::JoinHandle<()>) {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {percent:>3}% {msg} (ETA {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars: Vec<(String, ProgressBar)> = engine
        .statuses()
        .into_iter()
        .map(|s| {
            let bar = multi.add(ProgressBar::new(s.progress_total.unwrap_or(0).max(1)));
            bar.set_style(style.clone());
            bar.set_prefix(s.name.clone());
            (s.name, bar)
        })
        .collect();
    let handle = tokio::spawn(async move {
        loop {
            for (name, bar) in &bars {
                if let Ok(s) = engine.status(name) {
                    if let Some(total) = s.progress_total {
                        bar.set_length(total.max(1));
                    }
                    bar.set_position(s.progress_done);
                    let secs = (s.elapsed_ms as f64 / 1000.0).max(0.001);
                    let rate = s.rows_in as f64 / secs;
                    bar.set_message(match s.progress_total {
                        Some(total) => format!("{}/{total} records, {rate:.0} rows/s", s.progress_done),
                        None => format!("{} rows, {rate:.0} rows/s", s.rows_in),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    (multi, handle)
}

async fn sql(state_dir: &Path) -> ExitCode {
    let engine = match Engine::open(
        state_dir,
        EngineOptions {
            bounded: false,
            persist_definitions: true,
        },
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match engine.restore().await {
        Ok((n, errors)) => {
            if n > 0 {
                crate::render::say!("restored {n} source(s)/sink(s) from {}", engine.store().location());
            }
            for e in errors {
                eprintln!("warning: could not restore {e}");
            }
        }
        Err(e) => eprintln!("warning: could not restore definitions: {e}"),
    }
    let result = console::run(&engine).await;
    engine.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
