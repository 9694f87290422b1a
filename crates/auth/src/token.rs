//! The opaque secrets ledge hands out: API keys, refresh tokens and invitation tokens.
//!
//! Format: `<kind>_<id>_<secret>` — `ledge_k4q…_…` for an API key, `ledge_rt_…` for a refresh
//! token, `ledge_inv_…` for an invitation. The `id` (16 characters `[a-z0-9]`) is public: the store
//! finds the record by it and shows `<kind>_<id>` as the visible prefix. The `secret` is 40
//! characters `[A-Za-z0-9]` (~238 bits). The store keeps only the SHA-256 of the whole token:
//! with that much entropy a fast hash is safe, and checking a key costs microseconds, not the
//! argon2 of a password.

use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ID_CHARS: usize = 16;
pub const SECRET_CHARS: usize = 40;

/// What a token is for, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ApiKey,
    Refresh,
    Invitation,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::ApiKey => "ledge",
            TokenKind::Refresh => "ledge_rt",
            TokenKind::Invitation => "ledge_inv",
        }
    }
}

/// Why a token string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("the token does not start with {0}_")]
    WrongKind(&'static str),
    #[error(
        "the token is not <prefix>_<id>_<secret> with a {ID_CHARS}-character id and a {SECRET_CHARS}-character secret"
    )]
    Malformed,
}

/// A freshly made token: give `token` to the user once; keep `id`, `prefix` and `hash`.
#[derive(Clone)]
pub struct OpaqueToken {
    pub token: String,
    pub id: String,
    /// `<kind>_<id>`: the part shown again later to recognise it.
    pub prefix: String,
    /// Hex SHA-256 of `token`: all the store keeps of the secret.
    pub hash: String,
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpaqueToken").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A token string taken apart: its id, to find the record, and its hash, to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub id: String,
    pub hash: String,
}

impl ParsedToken {
    /// Whether `stored_hash` is this token's hash, compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        self.hash.as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl OpaqueToken {
    pub fn generate(kind: TokenKind) -> OpaqueToken {
        let id = random_text(ID_ALPHABET, ID_CHARS);
        let secret = random_text(SECRET_ALPHABET, SECRET_CHARS);
        let prefix = format!("{}_{id}", kind.prefix());
        let token = format!("{prefix}_{secret}");
        OpaqueToken { hash: hash(&token), token, id, prefix }
    }

    /// Takes `text` apart as a token of `kind`.
    pub fn parse(kind: TokenKind, text: &str) -> Result<ParsedToken, TokenFormatError> {
        let rest = text
            .strip_prefix(kind.prefix())
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or(TokenFormatError::WrongKind(kind.prefix()))?;
        let (id, secret) = rest.split_once('_').ok_or(TokenFormatError::Malformed)?;
        let fine = id.len() == ID_CHARS
            && id.bytes().all(|b| ID_ALPHABET.contains(&b))
            && secret.len() == SECRET_CHARS
            && secret.bytes().all(|b| SECRET_ALPHABET.contains(&b));
        if !fine {
            return Err(TokenFormatError::Malformed);
        }
        Ok(ParsedToken { id: id.to_string(), hash: hash(text) })
    }
}
