//! `quiver server`: Kafka Connect's REST API (and `/sql`) over one worker.
//!
//! Handlers are thin: they read the request, call the [`Engine`] (which holds the
//! mutation lock, plans, persists and starts) and render Kafka Connect's JSON
//! shapes. Paths, status codes and bodies follow Kafka Connect's `ConnectorsResource`
//! and `ConnectorPluginsResource` (3.x/4.x), so curl scripts, kcctl and UIs written
//! for Kafka Connect work unchanged; every error is `{"error_code": N, "message": …}`.
//!
//! Design notes:
//! - Bodies are read as bytes and parsed here rather than by axum's `Json`
//!   extractor, so a malformed body gets Kafka Connect's error shape with serde's
//!   line and column, and a body over [`BODY_LIMIT`] is refused with 413 before it
//!   is buffered.
//! - A request without a `Content-Type` is read as JSON (curl's `-d` sends a form
//!   type, which is refused with 415 and a hint, as Jersey does).

pub mod auth;
mod connectors;
pub mod cors;
mod forward;
mod loggers;
mod offsets;
mod plugins;
pub mod properties;
pub mod run;
mod sql;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::EngineError;
use crate::worker::Engine;

/// The largest request body accepted (connector configs are a few KiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What handlers share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// An error in Kafka Connect's shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.status.as_u16(), "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::ConnectorNotFound(_) | EngineError::TaskNotFound { .. } | EngineError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            EngineError::AlreadyExists(_) => StatusCode::CONFLICT,
            EngineError::InvalidConfig(_) | EngineError::BadRequest(_) | EngineError::Sql(_) => StatusCode::BAD_REQUEST,
            EngineError::InvalidState { .. } => StatusCode::CONFLICT,
            EngineError::Connector(_) | EngineError::State { .. } | EngineError::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, e.to_string())
    }
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

/// Reads a JSON body: 413 over the limit, 415 for a non-JSON content type, 400
/// with serde's line and column for malformed JSON or a wrong shape.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = read_body(headers, body, "application/json")?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let what = if e.is_data() {
            "does not have the expected shape"
        } else {
            "is not valid JSON"
        };
        ApiError::bad_request(format!("Request body {what}: {e}"))
    })
}

/// Reads a body of the given content type (absent counts as that type).
pub(crate) fn read_body(
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
    expected: &str,
) -> ApiResult<Bytes> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(expected) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("HTTP 415 Unsupported Media Type: the body is {essence}; send it as Content-Type: {expected}"),
            ));
        }
    }
    body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!("Request body is larger than the limit of {BODY_LIMIT} bytes"),
            )
        } else {
            ApiError::new(status, format!("Request body could not be read: {e}"))
        }
    })
}

/// What a worker's properties say about who may call the API and from where.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// With credentials, every route but `/health` needs them.
    pub credentials: Option<Arc<auth::Credentials>>,
    /// Cross-origin requests allowed (outside authentication, so preflights pass).
    pub cors: Option<cors::Cors>,
    /// A distributed worker's cluster: a standby forwards connector requests.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The REST API's routes.
pub fn router(engine: Arc<Engine>, access: &Access) -> Router {
    let state = AppState {
        engine,
        cluster: access.cluster.clone(),
    };
    let routes = Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/admin/loggers", get(loggers::list))
        .route("/admin/loggers/{logger}", get(loggers::get).put(loggers::set))
        .route("/connectors", get(connectors::list).post(connectors::create))
        .route("/connectors/{name}", get(connectors::info).delete(connectors::delete))
        .route(
            "/connectors/{name}/config",
            get(connectors::config)
                .put(connectors::put_config)
                .patch(connectors::patch_config),
        )
        .route("/connectors/{name}/status", get(connectors::status))
        .route("/connectors/{name}/tasks", get(connectors::tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(connectors::task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(connectors::restart_task),
        )
        .route("/connectors/{name}/restart", post(connectors::restart))
        .route("/connectors/{name}/pause", put(connectors::pause))
        .route("/connectors/{name}/resume", put(connectors::resume))
        .route("/connectors/{name}/stop", put(connectors::stop))
        .route("/connectors/{name}/topics", get(connectors::topics))
        .route("/connectors/{name}/topics/reset", put(connectors::reset_topics))
        .route(
            "/connectors/{name}/offsets",
            get(offsets::get).patch(offsets::alter).delete(offsets::reset),
        )
        .route("/connector-plugins", get(plugins::list))
        .route("/connector-plugins/{plugin}/config", get(plugins::config))
        .route("/connector-plugins/{plugin}/config/validate", put(plugins::validate))
        .route("/sql", post(sql::run))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_announced_oversize));
    // Forwarding runs after authentication: a standby never relays a request it
    // would have refused.
    let routes = match &access.cluster {
        Some(c) => routes.layer(axum::middleware::from_fn_with_state(Arc::clone(c), forward::to_active)),
        None => routes,
    };
    let routes = match &access.credentials {
        Some(c) => routes.layer(axum::middleware::from_fn_with_state(Arc::clone(c), auth::require)),
        None => routes,
    };
    let routes = match &access.cors {
        Some(c) => routes.layer(c.layer()),
        None => routes,
    };
    routes.with_state(state)
}

/// How long `/health` waits for the store before calling the worker unhealthy.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /health` (KIP-1017): 200 once the worker serves and its store answers,
/// else 503 with the reason. Needs no credentials (a readiness probe). While the
/// worker starts it does not listen yet, and while it drains it accepts no more
/// connections, so a probe sees both as down.
async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    if let Some(why) = state.cluster.as_ref().and_then(|c| c.unhealthy()) {
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(why)).into_response();
    }
    let store = Arc::clone(state.engine.store());
    let (status, body) = match tokio::time::timeout(HEALTH_TIMEOUT, store.check()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "message": format!("The worker's state store does not answer: {e}")}),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "message": format!("The worker's state store did not answer within {}s", HEALTH_TIMEOUT.as_secs())}),
        ),
    };
    (status, axum::Json(body)).into_response()
}

/// Answers 413 as soon as a request announces a body over [`BODY_LIMIT`], before
/// reading any of it; a body without a length is cut off at the limit instead.
async fn refuse_announced_oversize(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {BODY_LIMIT} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

async fn root() -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("QUIVER_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": serde_json::Value::Null,
    }))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(axum::extract::State(app): axum::extract::State<AppState>) -> Response {
    match crate::telemetry::install() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            crate::telemetry::render(&app.engine, handle),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available: another metrics recorder is installed in this process",
        )
        .into_response(),
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("HTTP 404 Not Found: no endpoint {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("HTTP 405 Method Not Allowed: {method} is not served at {}", uri.path()),
    )
}
