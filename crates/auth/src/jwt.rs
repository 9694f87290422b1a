//! HS256 JSON Web Tokens (RFC 7519) for short-lived access tokens, written on `hmac` + `sha2`.
//!
//! A token is `base64url(header).base64url(claims).base64url(HMAC-SHA256)`. The header must say
//! `alg: HS256` and name a `kid`; the first configured key signs, every configured key verifies,
//! so a key is rotated by putting the new one first and dropping the old one once the tokens it
//! signed have expired. The signature is checked (in constant time) before the claims are parsed.
//! Anything else — `alg: none`, another algorithm, an unknown `kid`, padding, trailing bits,
//! extra segments, a token over 4 KiB — is refused with a [`TokenError`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// The shortest signing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// Clock skew allowed on `iat`.
const LEEWAY_SECONDS: i64 = 30;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The server-side session the token belongs to (logout deletes it).
    pub sid: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    UnsupportedAlgorithm,
    #[error("the token's key id is not known")]
    UnknownKey,
    #[error("the token's signature is wrong")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// Why the configured keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    #[error("no key is configured")]
    Empty,
    #[error("entry {0} is not kid:secret")]
    NotAPair(usize),
    #[error("key id {0:?} must be 1-64 characters of letters, digits, '-', '_' or '.'")]
    InvalidKid(String),
    #[error("key id {0:?} appears twice")]
    DuplicateKid(String),
    #[error("the secret of key {0:?} must be at least {MIN_KEY_BYTES} bytes long")]
    ShortSecret(String),
}

#[derive(Clone)]
struct Key {
    kid: String,
    mac: HmacSha256,
}

/// The signing and verification keys: the first signs, all verify.
#[derive(Clone)]
pub struct JwtKeys {
    keys: Vec<Key>,
    /// The header of every token signed, base64url-encoded once.
    signing_header: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys").field("kids", &kids).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Checks one configured `(kid, secret)` pair: a kid of 1 to 64 ASCII letters, digits and
/// `punctuation`, not `taken` by an earlier pair, and a secret of at least [`MIN_KEY_BYTES`].
pub(crate) fn check_key(
    kid: &str,
    punctuation: &[u8],
    taken: bool,
    secret: &[u8],
) -> Result<(), KeyConfigError> {
    let valid = !kid.is_empty()
        && kid.len() <= 64
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b));
    if !valid {
        return Err(KeyConfigError::InvalidKid(kid.to_string()));
    }
    if taken {
        return Err(KeyConfigError::DuplicateKid(kid.to_string()));
    }
    if secret.len() < MIN_KEY_BYTES {
        return Err(KeyConfigError::ShortSecret(kid.to_string()));
    }
    Ok(())
}

impl JwtKeys {
    /// Keys from `(kid, secret)` pairs, the first signing.
    pub fn new<K: AsRef<str>, S: AsRef<[u8]>>(pairs: &[(K, S)]) -> Result<JwtKeys, KeyConfigError> {
        let mut keys: Vec<Key> = Vec::with_capacity(pairs.len());
        for (kid, secret) in pairs {
            let kid = kid.as_ref();
            check_key(kid, b"-_.", keys.iter().any(|k| k.kid == kid), secret.as_ref())?;
            let mac = HmacSha256::new_from_slice(secret.as_ref()).expect("HMAC takes keys of any length");
            keys.push(Key { kid: kid.to_string(), mac });
        }
        let first = keys.first().ok_or(KeyConfigError::Empty)?;
        let header = serde_json::to_vec(&HeaderOut { alg: "HS256", typ: "JWT", kid: &first.kid })
            .expect("a header serializes");
        let signing_header = B64URL.encode(header);
        Ok(JwtKeys { keys, signing_header })
    }

    /// Parses the `kid1:secret1,kid2:secret2` form (of `LEDGE_JWT_SECRETS`); the first signs.
    pub fn parse_list(text: &str) -> Result<JwtKeys, KeyConfigError> {
        let mut pairs = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (kid, secret) = entry.split_once(':').ok_or(KeyConfigError::NotAPair(i + 1))?;
            pairs.push((kid.trim(), secret.trim()));
        }
        JwtKeys::new(&pairs)
    }

    /// One key (of `LEDGE_JWT_SECRET`), with the key id `default`.
    pub fn single(secret: &str) -> Result<JwtKeys, KeyConfigError> {
        JwtKeys::new(&[("default", secret)])
    }

    /// The key id that signs.
    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let payload = B64URL.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut token = String::with_capacity(self.signing_header.len() + payload.len() + 45);
        token.push_str(&self.signing_header);
        token.push('.');
        token.push_str(&payload);
        let mut mac = self.keys[0].mac.clone();
        mac.update(token.as_bytes());
        let signature = B64URL.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&signature);
        token
    }

    /// The claims of `token` if it is well formed, signed by a configured key and valid at `now`
    /// (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: HeaderIn = B64URL
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" || header.crit.is_some() {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(TokenError::UnknownKey)?;
        let signature = B64URL.decode(signature).map_err(|_| TokenError::Malformed)?;
        let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        let mut mac = key.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
        let claims: AccessClaims = B64URL
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}
