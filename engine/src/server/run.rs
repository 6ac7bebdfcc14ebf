//! Starting and stopping `quiver server`: read the worker properties, open the
//! store, bring every connector back in its target state, create the connector
//! files named on the command line, serve until SIGTERM or Ctrl-C, then drain:
//! every task flushes and commits before the process exits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tracing::{info, warn};

use super::properties::{WorkerConfig, connector_file, parse_properties, worker_config};
use crate::cli::shutdown_signal;
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
    let listener = match &listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?,
        ),
        None => None,
    };
    let https = match &config.https {
        Some((addr, tls)) => {
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (https): {e}"))?;
            info!(tls = %tls.summary, "https listener configured");
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

    let engine = Engine::open(
        &args.state_dir,
        EngineOptions {
            bounded: false,
            persist_definitions: true,
        },
    )
    .map_err(|e| e.to_string())?;
    let engine = Arc::new(engine);
    // Before any task starts, so flush latencies are recorded from the first one.
    crate::telemetry::install();
    let host = config.advertised_host.clone().unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            hostname().unwrap_or_else(|| "localhost".into())
        } else {
            bound.ip().to_string()
        }
    });
    let worker_id = format!("{host}:{}", config.advertised_port.unwrap_or(bound.port()));
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
    let supervisor = engine.supervise();
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
    let urls: Vec<String> = http_bound
        .map(|a| format!("http://{a}"))
        .into_iter()
        .chain(https_bound.map(|a| format!("https://{a}")))
        .collect();
    eprintln!(
        "quiver server {} listening on {} (worker {worker_id}, state in {}, {restored} connector(s) restored)",
        env!("CARGO_PKG_VERSION"),
        urls.join(" and "),
        engine.store().location()
    );
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
    let plain = async {
        match listener {
            Some(l) => axum::serve(l, router.clone()).with_graceful_shutdown(stopped()).await,
            None => Ok(()),
        }
    };
    let secure = async {
        match https {
            Some(l) => axum::serve(l, router.clone()).with_graceful_shutdown(stopped()).await,
            None => Ok(()),
        }
    };
    let (plain, secure) = tokio::join!(plain, secure);
    let served = plain.and(secure);
    // A second signal while draining aborts.
    tokio::spawn(async {
        shutdown_signal().await;
        std::process::exit(130);
    });
    supervisor.abort();
    engine.shutdown().await;
    eprintln!("stopped");
    served.map_err(|e| format!("serving on {bound}: {e}"))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
