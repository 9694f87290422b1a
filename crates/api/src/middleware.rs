//! The middleware every request goes through, in one layer so the hot path stays short: request
//! id, a tracing span, the request timeout, metrics by route and status, problem+json for the
//! router's own wrong-method answers, and CORS for the origins `server.cors_origins` allows.
//!
//! It is a tower [`Layer`] with a future of its own rather than `axum::middleware::from_fn`: that
//! one boxes each request's whole future (over a kilobyte, past glibc's per-thread cache, so
//! every request took an allocator lock the HTTP threads contend for) and clones the inner
//! service once more. The timeout's timer is armed only when the route does not answer on its
//! first poll, which `/health` and most reads do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

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

/// The [`Layer`] that puts [`AroundRequest`] around every route.
#[derive(Clone)]
pub struct AroundRequestLayer {
    state: AppState,
}

impl AroundRequestLayer {
    pub fn new(state: AppState) -> AroundRequestLayer {
        AroundRequestLayer { state }
    }
}

impl<S> Layer<S> for AroundRequestLayer {
    type Service = AroundRequest<S>;
    fn layer(&self, inner: S) -> AroundRequest<S> {
        AroundRequest { inner, state: self.state.clone() }
    }
}

/// Request id, span, timeout, metrics, CORS and problem+json around one route (see the module
/// documentation).
#[derive(Clone)]
pub struct AroundRequest<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for AroundRequest<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AroundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&req);
        let cors = allowed_origin(&self.state, &req);
        let is_preflight = cors.is_some()
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let span =
            tracing::debug_span!("request", id = ?id, method = %req.method(), path = %req.uri().path());
        let finish = Finish {
            state: self.state.clone(),
            started,
            id,
            cors,
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
        };
        let answer = if is_preflight {
            Answer::Ready { response: Some(preflight()) }
        } else {
            let timeout = self.state.limits.request_timeout;
            Answer::Route { route: self.inner.call(req), timeout, deadline: None }
        };
        AroundFuture { answer, span, finish: Some(finish) }
    }
}

pin_project_lite::pin_project! {
    /// The future of one request through [`AroundRequest`].
    pub struct AroundFuture<F> {
        #[pin]
        answer: Answer<F>,
        span: tracing::Span,
        finish: Option<Finish>,
    }
}

pin_project_lite::pin_project! {
    #[project = AnswerProj]
    enum Answer<F> {
        /// A CORS preflight, answered here.
        Ready { response: Option<Response> },
        /// The route's answer, with the request timeout's timer once the route has had to wait.
        Route {
            #[pin]
            route: F,
            timeout: Duration,
            deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        },
    }
}

impl<F> Future for AroundFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this.span.enter();
        let response = match this.answer.project() {
            AnswerProj::Ready { response } => response.take().expect("an answer is polled once it is ready"),
            AnswerProj::Route { route, timeout, deadline } => match route.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Pending => {
                    let started = this.finish.as_ref().expect("a request is finished once").started;
                    let deadline = deadline.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until((started + *timeout).into()))
                    });
                    ready!(deadline.as_mut().poll(cx));
                    ApiError::new(ErrorCode::Timeout, format!("no answer within {} s", timeout.as_secs_f64()))
                        .into_response()
                }
            },
        };
        drop(entered);
        let finish = this.finish.take().expect("a request is finished once");
        Poll::Ready(Ok(finish.answer(response)))
    }
}

/// What the answer to a request needs from the request, kept while the route works.
struct Finish {
    state: AppState,
    started: Instant,
    id: HeaderValue,
    cors: Option<HeaderValue>,
    method: Method,
    route: Option<MatchedPath>,
}

impl Finish {
    fn answer(self, response: Response) -> Response {
        let Finish { state, started, id, cors, method, route } = self;
        // The router's own answer to a wrong method becomes problem+json too.
        let mut response = if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && response.headers().get(header::CONTENT_TYPE).is_none()
        {
            let allow = response.headers().get(header::ALLOW).cloned();
            let mut problem =
                ApiError::new(ErrorCode::MethodNotAllowed, "this route does not answer that method")
                    .into_response();
            if let Some(allow) = allow {
                problem.headers_mut().insert(header::ALLOW, allow);
            }
            problem
        } else {
            response
        };
        let status = response.status();
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
        response.headers_mut().insert(REQUEST_ID, id);
        response
    }
}
