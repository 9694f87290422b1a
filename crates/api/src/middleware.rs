//! The middleware every request goes through, in one layer so the hot path stays short: request
//! id, a tracing span, the request timeout, metrics by route and status, problem+json for the
//! router's own wrong-method answers, and CORS for the origins `server.cors_origins` allows.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::AppState;
use crate::problem::{ApiError, ErrorCode};

pub const REQUEST_ID: &str = "x-request-id";

/// A request id from the client is kept when it is short and printable; otherwise ledge makes one:
/// 16 hex digits unique to this process's start (random) and 16 of a counter. No system call per
/// request (a UUID would read the kernel's random source every time).
fn request_id(req: &Request) -> HeaderValue {
    if let Some(given) = req.headers().get(REQUEST_ID)
        && !given.is_empty()
        && given.len() <= 128
        && given.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return given.clone();
    }
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut text = [0u8; 32];
    let hex = b"0123456789abcdef";
    for (i, byte) in process.to_be_bytes().iter().chain(n.to_be_bytes().iter()).enumerate() {
        text[2 * i] = hex[usize::from(byte >> 4)];
        text[2 * i + 1] = hex[usize::from(byte & 0xf)];
    }
    HeaderValue::from_bytes(&text).expect("hex is a valid header value")
}

/// The `Origin` of a request if `server.cors_origins` allows it.
fn allowed_origin(state: &AppState, req: &Request) -> Option<HeaderValue> {
    let allowed = &state.env.config().server.cors_origins;
    if allowed.is_empty() {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(text)).then(|| origin.clone())
}

/// The answer to a CORS preflight from an allowed origin.
fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-request-id"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

pub async fn around_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let cors = allowed_origin(&state, &req);
    let is_preflight = cors.is_some()
        && req.method() == http::Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let method = req.method().clone();
    let route: Option<MatchedPath> = req.extensions().get::<MatchedPath>().cloned();
    let span = tracing::debug_span!("request", id = ?id, %method, path = %req.uri().path());
    let timeout = state.limits.request_timeout;
    let response = async move {
        if is_preflight {
            return preflight();
        }
        match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => {
                ApiError::new(ErrorCode::Timeout, format!("no answer within {} s", timeout.as_secs_f64()))
                    .into_response()
            }
        }
    }
    .instrument(span)
    .await;
    // The router's own answer to a wrong method becomes problem+json too.
    let mut response = if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(http::header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(http::header::ALLOW).cloned();
        let mut problem =
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not answer that method")
                .into_response();
        if let Some(allow) = allow {
            problem.headers_mut().insert(http::header::ALLOW, allow);
        }
        problem
    } else {
        response
    };
    let status = response.status();
    response.headers_mut().insert(REQUEST_ID, id.clone());
    if let Some(origin) = cors {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, x-request-id"),
        );
    }
    let elapsed = started.elapsed();
    let route = route.as_ref().map(|r| r.as_str()).unwrap_or("unmatched");
    state.metrics.http.record(&method, route, status.as_u16(), elapsed);
    if status.is_server_error() {
        tracing::error!(request_id = ?id, %method, route, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(request_id = ?id, %method, route, status = status.as_u16(),
            elapsed_us = elapsed.as_micros() as u64, "request");
    }
    response
}
