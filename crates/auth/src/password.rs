//! Passwords: the rules a new password must meet, argon2id hashing to a PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), verification in constant time, and a dummy
//! verification of the same cost so that an unknown account answers as slowly as a wrong password.
//! Also the one email normalization every account lookup uses.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::Rng as _;
use subtle::ConstantTimeEq;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (bounds the hashing work a request can ask for).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Why a password is refused. Messages are shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    #[error("must contain at least 5 different characters")]
    TooRepetitive,
    #[error("must not contain the email address's name")]
    ContainsEmail,
    #[error("is too common; choose another one")]
    TooCommon,
}

/// Why an email address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must be an email address like name@example.com")]
    Invalid,
    #[error("must be at most 254 characters long")]
    TooLong,
}

/// An email address, trimmed and lower-cased: the form accounts are looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, EmailError> {
        // Lower-cased before the checks: lower-casing can lengthen a character (`Ⱥ` → `ⱥ`), and
        // the stored form must pass them too.
        let text = text.trim().to_lowercase();
        let text = text.as_str();
        if text.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = text.split_once('@').ok_or(EmailError::Invalid)?;
        let fine = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && text.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if !fine {
            return Err(EmailError::Invalid);
        }
        Ok(Email(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or("")
    }
}

/// A few of the most common passwords of at least 12 characters (lower-cased); the rest of the
/// protection is the length rule and login throttling.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "qwertyuiop123",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwertyqwerty",
    "iloveyou1234",
    "letmein12345",
    "administrator",
    "changeme1234",
    "welcome12345",
    "1q2w3e4r5t6y",
    "abcdefghijkl",
    "correcthorsebatterystaple",
];

/// Checks a new password against the rules (`email` is the account's).
pub fn check_password(password: &str, email: &Email) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(PasswordError::TooRepetitive);
    }
    let lower = password.to_lowercase();
    let local = email.local_part();
    if local.chars().count() >= 4 && lower.contains(local) {
        return Err(PasswordError::ContainsEmail);
    }
    if COMMON.contains(&lower.as_str()) {
        return Err(PasswordError::TooCommon);
    }
    Ok(())
}

/// The hashing cost. The default is OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for Cost {
    fn default() -> Self {
        Cost { memory_kib: 19 * 1024, passes: 2, lanes: 1 }
    }
}

/// The largest cost a stored hash may ask for: a hash string is data, and data must not be able
/// to make a verification take minutes or gigabytes.
const MAX_COST: Cost = Cost { memory_kib: 256 * 1024, passes: 16, lanes: 8 };
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// Hashes and verifies passwords with argon2id at one cost.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: Cost,
    /// A hash of a random password at `cost`, verified against when the account is unknown.
    dummy: String,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        PasswordHasher::new(Cost::default())
    }
}

impl PasswordHasher {
    pub fn new(cost: Cost) -> PasswordHasher {
        let mut hasher = PasswordHasher { cost, dummy: String::new() };
        let random: [u8; 16] = rand::rng().random();
        hasher.dummy = hasher.hash(&hex::encode(random));
        hasher
    }

    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        let salt: [u8; SALT_BYTES] = rand::rng().random();
        let mut out = [0u8; HASH_BYTES];
        derive(self.cost, password.as_bytes(), &salt, &mut out)
            .expect("the configured cost and fixed salt/output sizes are valid");
        let Cost { memory_kib, passes, lanes } = self.cost;
        format!("$argon2id$v=19$m={memory_kib},t={passes},p={lanes}${}${}", B64.encode(salt), B64.encode(out))
    }

    /// Whether `password` matches the PHC string `stored` (compared in constant time). A
    /// malformed or over-costly stored string is `false`, after the dummy's work.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match parse_phc(stored) {
            Some((cost, salt, expected)) if password.len() <= MAX_PASSWORD_BYTES => {
                let mut out = vec![0u8; expected.len()];
                if derive(cost, password.as_bytes(), &salt, &mut out).is_err() {
                    return false;
                }
                out.ct_eq(&expected).into()
            }
            _ => {
                self.verify_dummy(password);
                false
            }
        }
    }

    /// Does the work of a verification against no account and returns nothing: call it when the
    /// account is unknown, so the answer takes as long as for a wrong password.
    pub fn verify_dummy(&self, password: &str) {
        let password = &password.as_bytes()[..password.len().min(MAX_PASSWORD_BYTES)];
        if let Some((cost, salt, expected)) = parse_phc(&self.dummy) {
            let mut out = vec![0u8; expected.len()];
            let _ = derive(cost, password, &salt, &mut out);
            let _ = out.ct_eq(&expected);
        }
    }
}

fn derive(cost: Cost, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(out.len()))?;
    let mut memory = vec![Block::default(); params.block_count()];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        &mut memory,
    )
}

/// `$argon2id$v=19$m=M,t=T,p=P$salt$hash` → (cost, salt, hash), refusing anything else.
fn parse_phc(text: &str) -> Option<(Cost, Vec<u8>, Vec<u8>)> {
    let mut parts = text.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
        return None;
    }
    let mut params = parts.next()?.split(',');
    let mut number = |name: &str| -> Option<u32> {
        let (key, value) = params.next()?.split_once('=')?;
        if key != name || value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse().ok()
    };
    let cost = Cost { memory_kib: number("m")?, passes: number("t")?, lanes: number("p")? };
    if params.next().is_some() {
        return None;
    }
    let within = cost.memory_kib <= MAX_COST.memory_kib
        && cost.passes <= MAX_COST.passes
        && cost.lanes <= MAX_COST.lanes
        && cost.lanes >= 1;
    if !within {
        return None;
    }
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    if parts.next().is_some() || !(8..=64).contains(&salt.len()) || !(16..=64).contains(&hash.len()) {
        return None;
    }
    Some((cost, salt, hash))
}
