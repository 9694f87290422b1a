//! [`StaticEmbedder`]: a model2vec static model — each token has a vector; a text's vector is the mean of its
//! tokens' vectors, L2-normalised — loaded from a model directory and run by `model2vec-rs`.

use std::path::Path;
use std::sync::Arc;

use model2vec_rs::model::StaticModel;

use crate::source::{MANIFEST, MAX_MODEL_BYTES, MAX_SIDE_FILE_BYTES};
use crate::{EmbedError, Embedder, install, int8};

/// The most texts one `embed` call accepts. Static embedding is cheap (well under a millisecond per code
/// chunk), so this only bounds the memory of one call's output (512 × dims × 4 bytes: 512 KB at 256 dims).
pub const MAX_BATCH: usize = 512;

/// Tokens pooled per text; the rest of a longer text is ignored. model2vec's own default is 512, which cuts
/// ledge's chunks (up to 4 KB of code, often over 1,000 tokens) short; 2,048 covers them whole while
/// bounding the work for a 100 KB input. Text past `MAX_TOKENS × the vocabulary's median token length`
/// characters is not even tokenised.
pub const MAX_TOKENS: usize = 2048;

/// The installed local static model: cheap to clone and share (the model is behind an `Arc`).
///
/// `embed` runs inline on the calling thread (model2vec-rs may spread one batch over rayon's threads): it
/// is CPU work of microseconds per text, and does no I/O.
#[derive(Clone)]
pub struct StaticEmbedder {
    model: StaticModel,
    model_id: Arc<str>,
    dimensions: usize,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the model itself: its Debug would print the whole embedding table.
        f.debug_struct("StaticEmbedder")
            .field("model_id", &self.model_id)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl StaticEmbedder {
    /// Loads the model installed under `models_dir` (`<data_dir>/models`); Ok(None) when none is installed.
    pub fn load_installed(models_dir: &Path) -> Result<Option<StaticEmbedder>, EmbedError> {
        match install::active_dir(models_dir)? {
            Some(dir) => Self::load(&dir).map(Some),
            None => Ok(None),
        }
    }

    /// Loads a model directory: one installed by [`install`](crate::install), or any model2vec directory
    /// (config.json, tokenizer.json, model.safetensors with an f32, f16 or int8 table), which is used as it
    /// is. The model id is the installed one (`potion-base-8M@int8`), or for a plain directory its name and
    /// table type (`potion-base-8M@f32`). Every file is checked first: a malformed model is an
    /// [`EmbedError::InvalidModel`] naming the file, never a panic later.
    pub fn load(model_dir: &Path) -> Result<StaticEmbedder, EmbedError> {
        let location = model_dir.display().to_string();
        let read = |file: &str, limit: u64| -> Result<Vec<u8>, EmbedError> {
            let path = model_dir.join(file);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() > limit => {
                    return Err(EmbedError::TooLarge {
                        file: file.to_owned(),
                        location: location.clone(),
                        size: meta.len(),
                        limit,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(EmbedError::MissingFile {
                        file: file.to_owned(),
                        location: location.clone(),
                    });
                }
                _ => {}
            }
            std::fs::read(&path).map_err(|e| EmbedError::io(path, e))
        };
        let config = read("config.json", MAX_SIDE_FILE_BYTES)?;
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&config)
            .map_err(|e| EmbedError::invalid(&location, "config.json", format!("not a JSON object: {e}")))?;
        let model = read("model.safetensors", MAX_MODEL_BYTES)?;
        let summary = int8::inspect(&model)
            .map_err(|reason| EmbedError::invalid(&location, "model.safetensors", reason))?;
        let tokenizer = read("tokenizer.json", MAX_SIDE_FILE_BYTES)?;
        int8::check_tokenizer(&tokenizer, &summary)
            .map_err(|reason| EmbedError::invalid(&location, "tokenizer.json", reason))?;
        let model_id = match install::read_manifest(model_dir)? {
            Some(manifest) if manifest.dimensions != summary.dims => {
                return Err(EmbedError::invalid(
                    &location,
                    MANIFEST,
                    format!("says {} dimensions, the table has {}", manifest.dimensions, summary.dims),
                ));
            }
            Some(manifest) => manifest.model_id,
            None => {
                let name = model_dir.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
                format!("{}@{}", install::sanitize_name(&name), summary.dtype)
            }
        };
        // Always normalise: the trait promises unit vectors, whatever the model's config says.
        let model = StaticModel::from_bytes(&tokenizer, &model, &config, Some(true))
            .map_err(|e| EmbedError::invalid(&location, "model.safetensors", format!("{e:#}")))?;
        if model.dim() != summary.dims {
            return Err(EmbedError::invalid(
                &location,
                "model.safetensors",
                "the loaded model's dimensions differ",
            ));
        }
        Ok(StaticEmbedder { model, model_id: model_id.into(), dimensions: summary.dims })
    }

    /// [`Embedder::embed`] without the future, for synchronous callers: one vector per text, in order.
    pub fn embed_now(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() > MAX_BATCH {
            return Err(EmbedError::BatchTooLarge { len: texts.len(), max: MAX_BATCH });
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.model.encode_with_args(texts, Some(MAX_TOKENS), texts.len()))
    }
}

#[async_trait::async_trait]
impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_now(texts)
    }
}
