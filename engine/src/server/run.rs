//! Starting and stopping `quiver server`: read the worker properties, open the
//! store, bring every connector back in its target state, create the connector
//! files named on the command line, serve until SIGTERM or Ctrl-C, then drain:
//! every task flushes and commits before the process exits. A distributed worker
//! (`group.id` set) serves at once and leaves the rest to [`crate::cluster`].
//!
//! Design note: the REST API runs on a tokio runtime of its own (one thread),
//! apart from the runtime the pipeline tasks run on. Pipelines are CPU-bound and
//! yield only between batches, so on a shared runtime a status request waited
//! behind batches for tens of milliseconds (p99 56–69 ms under load, BENCHMARKS.md);
//! on its own thread the OS schedules it beside the pipelines. The engine keeps a
//! handle to its runtime and spawns every task there, so a task started by a REST
//! call never lands on the API's thread; previews (`POST /sql`) run there too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tracing::{info, warn};

use super::properties::{WorkerConfig, connector_file, parse_properties, worker_config};
use crate::cli::shutdown_signal;
use crate::cluster::Cluster;
use crate::store::Store;
use crate::store::kafka::KafkaStore;
use crate::worker::{Engine, EngineOptions};

/// `quiver server`'s command line.
#[derive(Debug)]
pub struct ServerArgs {
    pub listen: Option<String>,
    pub state_dir: PathBuf,
    pub worker_config: Option<PathBuf>,
    pub bootstrap_servers: Option<String>,
    pub connectors: Vec<PathBuf>,
}

/// The default REST address, as Kafka Connect's (but on loopback only).
const DEFAULT_LISTEN: &str = "127.0.0.1:8083";

pub async fn main(args: ServerArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServerArgs) -> Result<(), String> {
    let mut config = match &args.worker_config {
        None => WorkerConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            worker_config(&parse_properties(&text)).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    for w in &config.warnings {
        warn!("{w}");
        eprintln!("warning: {w}");
    }
    if let Some(b) = &args.bootstrap_servers {
        config.defaults.bootstrap_servers = Some(b.clone());
    }
    // `--listen` replaces the worker's http listener; an https one is kept. A
    // worker that lists only https serves no plain http.
    let listen = args
        .listen
        .clone()
        .or_else(|| config.listen.clone())
        .or_else(|| config.https.is_none().then(|| DEFAULT_LISTEN.to_string()));
    // The API answers from a runtime of its own: pipeline tasks are CPU-bound and
    // would otherwise keep a status request waiting behind a batch for tens of
    // milliseconds. One thread is plenty for the API; the OS schedules it beside
    // the pipelines' threads. Listeners are registered with this runtime's reactor.
    let api = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("quiver-api")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the API's runtime: {e}"))?;
    let bind = |addr: &str, what: &str| -> Result<tokio::net::TcpListener, String> {
        let std = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {addr}{what}: {e}"))?;
        let _in_api = api.enter();
        tokio::net::TcpListener::from_std(std).map_err(|e| format!("cannot listen on {addr}{what}: {e}"))
    };
    let listener = match &listen {
        Some(listen) => Some(bind(listen, "")?),
        None => None,
    };
    let https = match &config.https {
        Some((addr, tls)) => {
            let tcp = bind(addr, " (https)")?;
            info!(tls = %tls.summary, "https listener configured");
            let _in_api = api.enter();
            Some(tls.listen(tcp).map_err(|e| format!("https listener on {addr}: {e}"))?)
        }
        None => None,
    };
    let https_bound = https
        .as_ref()
        .map(axum::serve::Listener::local_addr)
        .transpose()
        .map_err(|e| e.to_string())?;
    let http_bound = listener
        .as_ref()
        .map(tokio::net::TcpListener::local_addr)
        .transpose()
        .map_err(|e| e.to_string())?;
    let Some(bound) = http_bound.or(https_bound) else {
        return Err("no listener: give --listen or listeners".into());
    };

    let options = EngineOptions {
        bounded: false,
        persist_definitions: true,
    };
    let host = config.advertised_host.clone().unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            hostname().unwrap_or_else(|| "localhost".into())
        } else {
            bound.ip().to_string()
        }
    });
    let worker_id = format!("{host}:{}", config.advertised_port.unwrap_or(bound.port()));
    let urls: Vec<String> = http_bound
        .map(|a| format!("http://{a}"))
        .into_iter()
        .chain(https_bound.map(|a| format!("https://{a}")))
        .collect();
    // Before any task starts, so flush latencies are recorded from the first one.
    crate::telemetry::install();

    let (engine, cluster) = match &config.distributed {
        Some(distributed) => {
            if !args.connectors.is_empty() {
                return Err(
                    "a distributed worker (group.id is set) takes no connector files; submit them over REST (quiver ctl apply -f FILE)"
                        .into(),
                );
            }
            let store = Arc::new(KafkaStore::new(distributed.topics.clone()).map_err(|e| e.to_string())?);
            let engine = Arc::new(Engine::over_store(Arc::clone(&store) as Arc<dyn Store>, options));
            engine.configure_worker(config.defaults.clone(), worker_id.clone());
            // Forwarded requests go to the advertised address, over the scheme
            // `rest.advertised.listener` names (http when both are served).
            let scheme = match (&config.advertised_listener, http_bound) {
                (Some(l), _) => l.clone(),
                (None, Some(_)) => "http".to_string(),
                (None, None) => "https".to_string(),
            };
            let cluster = Cluster::new(
                distributed.clone(),
                store,
                worker_id.clone(),
                format!("{scheme}://{worker_id}"),
            );
            tokio::spawn(Arc::clone(&cluster).run(Arc::clone(&engine)));
            eprintln!(
                "quiver server {} listening on {} (worker {worker_id} in group {}, state in {})",
                env!("CARGO_PKG_VERSION"),
                urls.join(" and "),
                distributed.group_id,
                engine.store().location()
            );
            (engine, Some(cluster))
        }
        None => {
            let engine = Arc::new(Engine::open(&args.state_dir, options).map_err(|e| e.to_string())?);
            engine.configure_worker(config.defaults.clone(), worker_id.clone());
            match engine.restore().await {
                Ok((_, errors)) => {
                    for e in errors {
                        warn!(error = %e, "a console definition could not be restored");
                    }
                }
                Err(e) => return Err(format!("cannot restore console definitions: {e}")),
            }
            let restored = engine.restore_connectors().await.map_err(|e| e.to_string())?;
            for path in &args.connectors {
                let (name, connector) = connector_file(path)?;
                if engine.connector_info(&name).is_ok() {
                    info!(connector = %name, file = %path.display(), "connector exists; its stored config is kept");
                    continue;
                }
                engine
                    .put_connector(&name, connector, true, None)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            eprintln!(
                "quiver server {} listening on {} (worker {worker_id}, state in {}, {restored} connector(s) restored)",
                env!("CARGO_PKG_VERSION"),
                urls.join(" and "),
                engine.store().location()
            );
            (engine, None)
        }
    };
    let supervisor = engine.supervise();
    let credentials = config.credentials.clone().map(Arc::new);
    match &credentials {
        Some(c) if c.lets_everyone_in() => {
            warn!(from = ?c.sources, "the REST API's users file is empty: every request is let in, as Kafka Connect does");
            eprintln!("warning: the REST API's users file is empty: every request is let in");
        }
        Some(c) => info!(from = ?c.sources, "the REST API requires credentials"),
        None => {}
    }
    let access = super::Access {
        credentials,
        cors: config.cors.clone(),
        cluster: cluster.clone(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("stopping: tasks flush and commit (press Ctrl-C again to abort)");
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let router = super::router(Arc::clone(&engine), &access);
    let plain = listener.map(|l| {
        let serve = axum::serve(l, router.clone()).with_graceful_shutdown(stopped());
        api.spawn(async move { serve.await })
    });
    let secure = https.map(|l| {
        let serve = axum::serve(l, router.clone()).with_graceful_shutdown(stopped());
        api.spawn(async move { serve.await })
    });
    let finished = |served: Option<tokio::task::JoinHandle<std::io::Result<()>>>| async move {
        match served {
            Some(h) => h.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    };
    let (plain, secure) = tokio::join!(finished(plain), finished(secure));
    let served = plain.and(secure);
    // A second signal while draining aborts.
    tokio::spawn(async {
        shutdown_signal().await;
        std::process::exit(130);
    });
    supervisor.abort();
    match &cluster {
        // Tasks commit, then the worker leaves the group: the work moves at once.
        Some(c) => c.leave(&engine).await,
        None => engine.shutdown().await,
    }
    // Only now: a client a handler built (a registry or database connection) may
    // have left its connection task on the API's runtime, and draining tasks use it.
    api.shutdown_background();
    eprintln!("stopped");
    served.map_err(|e| format!("serving on {bound}: {e}"))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
