//! [`HttpEmbedder`]: embeddings from an HTTP API — Voyage AI's `/v1/embeddings` or any OpenAI-compatible
//! `/v1/embeddings` (OpenAI, Ollama, vLLM, LiteLLM…) — behind the same [`Embedder`] trait as the local model.
//!
//! One `embed` call of up to [`HttpEmbedderConfig::batch_size`] texts is sent as few requests as the
//! request size bound allows ([`MAX_REQUEST_BYTES`] of input text per request). Each request has a timeout
//! and is retried with exponential backoff on a timeout, a failed connection, 408, 429 and 5xx — waiting
//! what `Retry-After` asks (up to [`MAX_RETRY_AFTER`]) when the server says. Other answers (400, 401, 403,
//! 404…) are not retried: they fail at once with the server's own message. Vectors are checked (count,
//! length, finite values) and L2-normalised, as the trait promises.
//!
//! The wire formats (request → response):
//!
//! ```text
//! OpenAI: {"model", "input": [..], "encoding_format": "float", "dimensions"?}
//! Voyage: {"model", "input": [..], "truncation": true, "output_dimension"?, "input_type"?}
//! both  → {"data": [{"index": i, "embedding": [f32…]}, …], …}
//! errors: {"error": {"message"}} (OpenAI), {"detail"} (Voyage), or any text
//! ```
//!
//! Caching is the caller's (the indexing pipeline's embedding cache keys by [`Embedder::model_id`], which
//! names the provider, the model and the dimensions).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EmbedError, Embedder};

/// Input text per request at most, in bytes (a batch over it is sent as several requests): ~128 code
/// chunks, well inside the providers' token limits per request (OpenAI 300k tokens, Voyage 120k–1M).
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;
/// The longest `Retry-After` honoured; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The most texts one call may carry (Voyage accepts 1,000 per request, OpenAI 2,048).
pub const MAX_HTTP_BATCH: usize = 1000;
/// How much of an error body is quoted in an error.
const MAX_ERROR_TEXT: usize = 300;
/// The largest response read, in bytes (1,000 vectors of 3,072 floats as JSON text fit).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Which wire format an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpApi {
    /// Voyage AI (`https://api.voyageai.com/v1/embeddings`).
    Voyage,
    /// OpenAI's embeddings API and the servers that copy it (Ollama, vLLM, LiteLLM…).
    OpenAi,
}

impl HttpApi {
    /// The provider's own endpoint, used when none is configured.
    pub fn default_url(self) -> &'static str {
        match self {
            HttpApi::Voyage => "https://api.voyageai.com/v1/embeddings",
            HttpApi::OpenAi => "https://api.openai.com/v1/embeddings",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpApi::Voyage => "voyage",
            HttpApi::OpenAi => "openai",
        }
    }
}

/// How to reach an embeddings API.
#[derive(Clone)]
pub struct HttpEmbedderConfig {
    pub api: HttpApi,
    /// The full endpoint URL (`…/v1/embeddings`), `http` or `https`.
    pub url: String,
    /// The model name the API knows (`voyage-code-3`, `text-embedding-3-small`, `nomic-embed-text`…).
    pub model: String,
    /// The length of the vectors the caller needs; every response is checked against it.
    pub dimensions: usize,
    /// Ask the API for `dimensions` (`dimensions` / `output_dimension`): for models with several output
    /// sizes. Off for servers that reject the parameter (many Ollama and vLLM models).
    pub request_dimensions: bool,
    /// Voyage's `input_type` (`document` or `query`), if any.
    pub input_type: Option<String>,
    /// Sent as `Authorization: Bearer …` (Ollama needs none).
    pub api_key: Option<String>,
    /// Texts per `embed` call at most, 1..=[`MAX_HTTP_BATCH`].
    pub batch_size: usize,
    /// One request's timeout (connecting, sending, and reading the whole answer).
    pub timeout: Duration,
    /// Retries after the first attempt (timeouts, connection failures, 408, 429, 5xx).
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl std::fmt::Debug for HttpEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEmbedderConfig")
            .field("api", &self.api)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl HttpEmbedderConfig {
    /// A configuration with the provider's endpoint and ledge's defaults: batches of 128, 30 s per
    /// request, 5 retries from 500 ms up to 20 s.
    pub fn new(api: HttpApi, model: impl Into<String>, dimensions: usize) -> HttpEmbedderConfig {
        HttpEmbedderConfig {
            api,
            url: api.default_url().to_owned(),
            model: model.into(),
            dimensions,
            request_dimensions: false,
            input_type: None,
            api_key: None,
            batch_size: 128,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// An embeddings API as an [`Embedder`]. Cheap to share behind an `Arc`; its client pools connections.
pub struct HttpEmbedder {
    client: reqwest::Client,
    config: HttpEmbedderConfig,
    model_id: String,
}

impl std::fmt::Debug for HttpEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEmbedder")
            .field("model_id", &self.model_id)
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Serialize)]
struct OpenAiRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Serialize)]
struct VoyageRequest<'a> {
    model: &'a str,
    input: &'a [String],
    truncation: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_type: Option<&'a str>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingRow>,
}

#[derive(Deserialize)]
struct EmbeddingRow {
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// What one attempt came to.
enum Attempt {
    Done(Vec<Vec<f32>>),
    /// Worth another try, after at least this long (a server's `Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl HttpEmbedder {
    /// An embedder for `config`; checks it (URL, model, sizes) without any request.
    pub fn new(config: HttpEmbedderConfig) -> Result<HttpEmbedder, EmbedError> {
        let invalid = |reason: String| {
            EmbedError::InvalidSource(format!("{} embeddings: {reason}", config.api.as_str()))
        };
        let url =
            reqwest::Url::parse(&config.url).map_err(|e| invalid(format!("url {:?}: {e}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("url {:?} is not http or https", config.url)));
        }
        if config.model.trim().is_empty() {
            return Err(invalid("no model is named".into()));
        }
        if config.dimensions == 0 {
            return Err(invalid("dimensions must be at least 1".into()));
        }
        if !(1..=MAX_HTTP_BATCH).contains(&config.batch_size) {
            return Err(invalid(format!(
                "batch_size {} is not within 1..={MAX_HTTP_BATCH}",
                config.batch_size
            )));
        }
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be longer than zero".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("ledge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let model_id = format!("{}:{}@{}", config.api.as_str(), config.model, config.dimensions);
        Ok(HttpEmbedder { client, config, model_id })
    }

    fn body(&self, texts: &[String]) -> Result<Vec<u8>, EmbedError> {
        let dimensions = self.config.request_dimensions.then_some(self.config.dimensions);
        let body = match self.config.api {
            HttpApi::OpenAi => serde_json::to_vec(&OpenAiRequest {
                model: &self.config.model,
                input: texts,
                encoding_format: "float",
                dimensions,
            }),
            HttpApi::Voyage => serde_json::to_vec(&VoyageRequest {
                model: &self.config.model,
                input: texts,
                truncation: true,
                output_dimension: dimensions,
                input_type: self.config.input_type.as_deref(),
            }),
        };
        body.map_err(|e| self.rejected(None, format!("cannot encode the request: {e}")))
    }

    fn rejected(&self, status: Option<u16>, detail: String) -> EmbedError {
        EmbedError::Provider { url: self.config.url.clone(), status, detail }
    }

    /// One request for `texts`, retried as the configuration says.
    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = self.body(texts)?;
        let mut attempt = 0u32;
        loop {
            let reason = match self.attempt(texts.len(), body.clone()).await? {
                Attempt::Done(vectors) => return Ok(vectors),
                Attempt::Retry { reason, after } => {
                    if attempt >= self.config.max_retries {
                        return Err(EmbedError::Unavailable {
                            url: self.config.url.clone(),
                            reason: format!("{reason} (gave up after {} attempts)", attempt + 1),
                        });
                    }
                    let backoff = self
                        .config
                        .initial_backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(self.config.max_backoff);
                    (reason, after.map_or(backoff, |after| after.min(MAX_RETRY_AFTER).max(backoff)))
                }
            };
            attempt += 1;
            tracing::debug!(url = %self.config.url, attempt, reason = %reason.0, "retrying an embeddings request in {:?}", reason.1);
            tokio::time::sleep(reason.1).await;
        }
    }

    async fn attempt(&self, expected: usize, body: Vec<u8>) -> Result<Attempt, EmbedError> {
        let mut request = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Attempt::Retry { reason: describe(&e), after: None }),
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let bytes = match read_limited(response).await {
            Ok(bytes) => bytes,
            Err(reason) => return Ok(Attempt::Retry { reason, after: None }),
        };
        if status.is_success() {
            return self.vectors(expected, &bytes).map(Attempt::Done);
        }
        let detail = error_text(&bytes);
        let code = status.as_u16();
        if code == 408 || code == 429 || status.is_server_error() {
            return Ok(Attempt::Retry { reason: format!("HTTP {status}: {detail}"), after });
        }
        let hint = match code {
            401 | 403 => " (check the API key: LEDGE_VOYAGE_API_KEY or LEDGE_OPENAI_API_KEY)",
            404 => " (check the url and the model name)",
            _ => "",
        };
        Err(self.rejected(Some(code), format!("{detail}{hint}")))
    }

    /// The vectors of a successful answer, in input order, checked and normalised.
    fn vectors(&self, expected: usize, bytes: &[u8]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let invalid = |reason: String| EmbedError::InvalidResponse { url: self.config.url.clone(), reason };
        let response: EmbeddingsResponse = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not an embeddings list ({e}): {}", error_text(bytes))))?;
        if response.data.len() != expected {
            return Err(invalid(format!("{} vectors for {expected} texts", response.data.len())));
        }
        let mut rows: Vec<(usize, Vec<f32>)> = Vec::with_capacity(expected);
        for (position, row) in response.data.into_iter().enumerate() {
            rows.push((row.index.unwrap_or(position), row.embedding));
        }
        rows.sort_by_key(|(index, _)| *index);
        if rows.iter().enumerate().any(|(i, (index, _))| i != *index) {
            return Err(invalid("the indexes of the vectors are not 0..n, each once".into()));
        }
        rows.into_iter()
            .map(|(_, mut values)| {
                if values.len() != self.config.dimensions {
                    return Err(invalid(format!(
                        "a vector of {} dimensions, {} expected (the vector index's; set `dimensions` to match \
                         the model)",
                        values.len(),
                        self.config.dimensions
                    )));
                }
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(invalid("a vector with a non-finite value".into()));
                }
                let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    values.iter_mut().for_each(|v| *v /= norm);
                }
                Ok(values)
            })
            .collect()
    }
}

/// reqwest's message and its causes (its top-level message alone rarely says what went wrong).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_owned() } else { error.to_string() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these APIs and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// The message of an error body: OpenAI's `error.message`, Voyage's `detail`, or the text, shortened.
fn error_text(bytes: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str().map(str::to_owned))
    });
    let mut text = message.unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().to_owned());
    if text.is_empty() {
        text = "(no body)".into();
    }
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[async_trait::async_trait]
impl Embedder for HttpEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.config.dimensions
    }

    fn max_batch(&self) -> usize {
        self.config.batch_size
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() > self.config.batch_size {
            return Err(EmbedError::BatchTooLarge { len: texts.len(), max: self.config.batch_size });
        }
        let mut vectors = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < texts.len() {
            // At least one text per request; more while the request stays under MAX_REQUEST_BYTES.
            let mut end = start + 1;
            let mut bytes = texts[start].len();
            while end < texts.len() && bytes + texts[end].len() <= MAX_REQUEST_BYTES {
                bytes += texts[end].len();
                end += 1;
            }
            vectors.extend(self.request(&texts[start..end]).await?);
            start = end;
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_are_the_servers_message() {
        assert_eq!(error_text(br#"{"error":{"message":"bad key","type":"x"}}"#), "bad key");
        assert_eq!(error_text(br#"{"detail":"Invalid model"}"#), "Invalid model");
        assert_eq!(error_text(b"  upstream down \n"), "upstream down");
        assert_eq!(error_text(b""), "(no body)");
        assert!(error_text("é".repeat(400).as_bytes()).ends_with('…'));
    }

    #[test]
    fn a_config_prints_no_key() {
        let mut config = HttpEmbedderConfig::new(HttpApi::Voyage, "voyage-code-3", 1024);
        config.api_key = Some("sk-secret".into());
        assert!(!format!("{config:?}").contains("sk-secret"));
    }
}
