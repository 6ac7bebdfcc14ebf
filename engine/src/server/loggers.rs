//! `/admin/loggers` (KIP-495): read and change log levels of a running worker, in
//! Kafka Connect's shapes (`{"level", "last_modified"}` per logger; a PUT answers
//! the loggers it changed). Loggers are `tracing` targets; see [`crate::logging`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiResult, json_body};
use crate::logging::{self, SetLevelError};

pub(crate) async fn list() -> ApiResult<Response> {
    let all = logging::all_levels().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(all).into_response())
}

pub(crate) async fn get(Path(logger): Path<String>) -> ApiResult<Response> {
    let level = logging::level_of(&logger).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(level).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Scope {
    scope: Option<String>,
}

pub(crate) async fn set(
    Path(logger): Path<String>,
    Query(scope): Query<Scope>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body: serde_json::Map<String, serde_json::Value> = json_body(&headers, body)?;
    let Some(level) = body.get("level") else {
        return Err(ApiError::bad_request(
            "Desired 'level' parameter was not specified in request.",
        ));
    };
    let level = level.as_str().unwrap_or_default();
    let affected = logging::set_level(&logger, level).map_err(|e| match e {
        // Kafka Connect answers an unknown level with 404.
        SetLevelError::Level(l) => ApiError::new(StatusCode::NOT_FOUND, format!("invalid log level '{l}'.")),
        SetLevelError::Other(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e),
    })?;
    // One worker is the whole cluster: scope=cluster changes it and answers 204,
    // as Kafka Connect does for that scope.
    if scope.scope.is_some_and(|s| s.eq_ignore_ascii_case("cluster")) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(affected).into_response())
}
