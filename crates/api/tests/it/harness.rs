//! A test server: an env on a fresh data directory and the router over it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ledge_api::{AppState, Limits};
use ledge_config::LoadOptions;
use tower::ServiceExt;

pub const SECRET: &str = "test-webhook-secret";
pub const JWT_KEYS: &str = "k1:a-test-signing-key-of-at-least-32-bytes";
pub const STRIPE_SECRET: &str = "whsec_test_stripe_secret";

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// Sent as `Authorization: Bearer` by [`TestApp::send`] when a request has none.
    pub bearer: std::sync::OnceLock<String>,
    pub _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a problem+json answer with this status and code; returns the problem.
    pub fn problem(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        assert_eq!(self.content_type.as_deref(), Some("application/problem+json"));
        let problem = self.json();
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status);
        problem
    }
}

pub fn app_with(env_vars: &[(&str, &str)], limits: Limits) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = ledge_config::load(LoadOptions {
        data_dir: Some(dir.path().to_path_buf()),
        env: env_vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        working_dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
    .unwrap();
    let env = Arc::new(ledge_env::Env::open(Arc::new(config)).unwrap());
    let state = AppState::new(env, limits);
    TestApp { router: ledge_api::app(state.clone()), state, bearer: std::sync::OnceLock::new(), _dir: dir }
}

pub fn app() -> TestApp {
    app_with(
        &[
            ("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET),
            ("LEDGE_JWT_KEYS", JWT_KEYS),
            ("LEDGE_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
            // Tests connect more repositories to one organization than the free plan allows; the
            // plan limit has its own test (billing.rs).
            ("LEDGE_PLANS__FREE__REPOSITORIES", "unlimited"),
        ],
        Limits::default(),
    )
}

impl TestApp {
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        if let Some(token) = self.bearer.get()
            && !request.headers().contains_key("authorization")
        {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, content_type, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// `method path` with an optional bearer token and JSON body, from client address `ip`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
        ip: [u8; 4],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        let peer = std::net::SocketAddr::from((ip, 40000));
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        self.send(request).await
    }

    pub fn loaded(&self, module: &str) -> bool {
        self.state
            .modules
            .statuses()
            .iter()
            .find(|m| m.name == module)
            .unwrap_or_else(|| panic!("{module}"))
            .loaded
    }
}
