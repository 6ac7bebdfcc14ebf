//! A standby worker in distributed mode answers connector requests by forwarding
//! them to the worker that holds the cluster's work, as Kafka Connect's followers
//! forward writes to their leader: the client sees one API whichever worker it
//! asks. The request goes out as it came (method, path, query, body, the
//! `Authorization`, `Content-Type` and `Accept` headers) and the answer comes back
//! as it is; while no worker holds the work the answer is Kafka Connect's 409.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use super::{ApiError, BODY_LIMIT};
use crate::cluster::{Cluster, Role};

/// How long a forwarded request may take (Kafka Connect's request timeout is 90 s).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(90);

/// Kafka Connect's answer while the group rebalances.
const REBALANCING: &str = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)";

/// One client for every forwarded request, so connections to the active worker
/// are kept alive between requests.
fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(FORWARD_TIMEOUT))
            .build()
            .into()
    })
}

/// Whether a path is answered by the worker holding the work.
fn forwarded(path: &str) -> bool {
    path == "/connectors" || path.starts_with("/connectors/") || path == "/sql"
}

/// Marks a request the leader relays to the worker running a task: that worker
/// serves it itself instead of forwarding it back.
pub(crate) const RELAYED: &str = "x-quiver-relayed-by-leader";

/// The middleware: forwards connector requests while this worker does not lead.
pub(crate) async fn to_active(State(cluster): State<Arc<Cluster>>, request: Request, next: Next) -> Response {
    let relayed = request.headers().contains_key(RELAYED);
    if !forwarded(request.uri().path()) || cluster.role() == Role::Active || relayed {
        return next.run(request).await;
    }
    let Some(base) = cluster.active_url() else {
        return ApiError::new(StatusCode::CONFLICT, REBALANCING).into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    };
    let target = format!(
        "{base}{}",
        parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str())
    );
    debug!(method = %parts.method, %target, "forwarding to the active worker");
    let forwarding = relay(parts.method.as_str(), target, &parts.headers, body.to_vec(), &[]);
    // A worker that holds the work but hangs (paused, cut off) would keep the
    // request for the whole timeout: give up as soon as the work moves.
    let moved = async {
        let mut role = cluster.watch_role();
        loop {
            tokio::select! {
                changed = role.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if cluster.role() == Role::Active || cluster.active_url().as_deref() != Some(base.as_str()) {
                return;
            }
        }
    };
    let answer = tokio::select! {
        answer = forwarding => answer,
        () = moved => {
            return ApiError::new(StatusCode::CONFLICT, format!("{REBALANCING}: the work moved away from {base} while the request waited"))
                .into_response();
        }
    };
    answer_of(answer, &base)
}

type Relayed = Result<(u16, Option<ureq::http::HeaderValue>, Vec<u8>), ureq::Error>;

/// Sends a request on as it came (method, body, the `Authorization`,
/// `Content-Type` and `Accept` headers, plus `extra`), off the async workers.
fn relay(
    method: &str,
    target: String,
    headers: &axum::http::HeaderMap,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> tokio::task::JoinHandle<Relayed> {
    let mut out = ureq::http::Request::builder().method(method).uri(&target);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = headers.get(&name) {
            out = out.header(name.as_str(), v.as_bytes());
        }
    }
    for (k, v) in extra {
        out = out.header(*k, *v);
    }
    let out = out.body(body);
    tokio::task::spawn_blocking(move || {
        let out = out.map_err(|e| ureq::Error::BadUri(e.to_string()))?;
        let mut resp = agent().run(out)?;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").cloned();
        let body = resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec()?;
        Ok((status, content_type, body))
    })
}

/// The relayed answer as this worker's, or Kafka Connect's 409 when the other
/// worker does not answer.
fn answer_of(answer: Result<Relayed, tokio::task::JoinError>, base: &str) -> Response {
    match answer {
        Ok(Ok((status, content_type, body))) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(ct) = content_type.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        // The other worker is gone or unreachable: the group is about to move its work.
        Ok(Err(e)) => {
            debug!(%base, error = %e, "forwarding failed");
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{REBALANCING}: the worker at {base} does not answer ({e})"),
            )
            .into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("forwarding ended abnormally: {e}"),
        )
        .into_response(),
    }
}

/// The leader relays a request about one task to the worker that runs it (a task
/// restart), as Kafka Connect's leader does; that worker serves it itself.
pub(crate) async fn to_task_worker(
    cluster: &Cluster,
    worker_id: &str,
    method: &str,
    path: &str,
    headers: &axum::http::HeaderMap,
) -> Response {
    // The task's last status names this worker, or the request was relayed here
    // already, yet the task does not run here: it is between workers (given up,
    // not yet reported by its new holder). Relaying would come back here and wait
    // on itself until the timeout; the client asks again, as for a rebalance.
    if worker_id == cluster.worker_id() || headers.contains_key(RELAYED) {
        debug!(%worker_id, %path, "the task is between workers; not relaying");
        return ApiError::new(
            StatusCode::CONFLICT,
            format!("{REBALANCING}: the task is moving between workers; ask again"),
        )
        .into_response();
    }
    let base = cluster.url_of(worker_id);
    debug!(%method, %base, %path, "relaying to the worker running the task");
    answer_of(
        relay(method, format!("{base}{path}"), headers, Vec::new(), &[(RELAYED, "1")]).await,
        &base,
    )
}
