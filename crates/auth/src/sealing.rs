//! Secrets ledge must read back (a repository's webhook secret and access token), sealed at rest
//! with AES-256-GCM (aws-lc-rs) under a key from the environment.
//!
//! Keys are configured like the JWT keys (`LEDGE_ENCRYPTION_KEY`: `kid:secret` pairs separated by
//! commas, each secret at least 32 bytes): the first seals, all open, so a key is rotated by
//! putting the new one first and re-sealing (or replacing) the stored values before dropping the
//! old one. The AES key is SHA-256 of a domain label and the secret.
//!
//! A sealed value is the text `v1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`, with a random
//! 96-bit nonce. Every value is sealed for a *context* (the record and field it belongs to), passed
//! as associated data: a value copied to another record or field does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};

use crate::jwt::KeyConfigError;

/// The longest sealed text [`SealingKeys::open`] reads.
pub const MAX_SEALED_BYTES: usize = 16 * 1024;
const VERSION: &str = "v1";
const TAG_LEN: usize = 16;

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value's key id is not configured")]
    UnknownKey,
    #[error("the sealed value was tampered with, or belongs to another record")]
    Tampered,
}

struct Key {
    kid: String,
    key: LessSafeKey,
}

/// The sealing keys: the first seals, all open.
pub struct SealingKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SealingKeys").field("kids", &kids).finish_non_exhaustive()
    }
}

impl SealingKeys {
    /// Keys from `(kid, secret)` pairs, the first sealing.
    pub fn new<K: AsRef<str>, S: AsRef<[u8]>>(pairs: &[(K, S)]) -> Result<SealingKeys, KeyConfigError> {
        let mut keys: Vec<Key> = Vec::with_capacity(pairs.len());
        for (kid, secret) in pairs {
            let kid = kid.as_ref();
            // No `.` in a sealing kid: it separates the parts of a sealed value.
            crate::jwt::check_key(kid, b"-_", keys.iter().any(|k| k.kid == kid), secret.as_ref())?;
            let derived =
                Sha256::new_with_prefix(b"ledge sealing key v1\0").chain_update(secret.as_ref()).finalize();
            let unbound = UnboundKey::new(&AES_256_GCM, &derived).map_err(|_| KeyConfigError::Empty)?;
            keys.push(Key { kid: kid.to_string(), key: LessSafeKey::new(unbound) });
        }
        if keys.is_empty() {
            return Err(KeyConfigError::Empty);
        }
        Ok(SealingKeys { keys })
    }

    /// Parses the `kid1:secret1,kid2:secret2` form of `LEDGE_ENCRYPTION_KEY`; the first seals.
    pub fn parse_list(text: &str) -> Result<SealingKeys, KeyConfigError> {
        let mut pairs = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (kid, secret) = entry.split_once(':').ok_or(KeyConfigError::NotAPair(i + 1))?;
            pairs.push((kid.trim(), secret.trim()));
        }
        SealingKeys::new(&pairs)
    }

    /// Seals `plaintext` for `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        // The system's generator does not fail on the platforms ledge runs on.
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random generator works");
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .expect("AES-GCM seals any input below its limit");
        out.extend_from_slice(&body);
        format!("{VERSION}.{}.{}", key.kid, B64URL.encode(out))
    }

    /// Opens a value [`SealingKeys::seal`] sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        if sealed.len() > MAX_SEALED_BYTES {
            return Err(OpenError::Malformed);
        }
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OpenError::Malformed);
        };
        let bytes = B64URL.decode(data).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(OpenError::UnknownKey)?;
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
        let mut body = body.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| OpenError::Tampered)?;
        let len = plain.len();
        body.truncate(len);
        Ok(body)
    }

    /// Whether `sealed` was sealed with a key other than the one that seals now (to re-seal it).
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.keys[0].kid.as_str())
    }
}
