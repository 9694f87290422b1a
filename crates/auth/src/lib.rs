//! ledge's authentication primitives, pure logic with no I/O: what the platform records and the
//! HTTP layer build on.
//!
//! * [`password`]: argon2id hashing to a PHC string, verification in constant time, a dummy
//!   verification with the same cost for unknown accounts, the password and email rules.
//! * [`jwt`]: HS256 access tokens written by hand on `hmac` + `sha2`, keys rotated by `kid`.
//! * [`token`]: the opaque secrets ledge hands out — API keys, refresh tokens, invitation tokens —
//!   as `<kind>_<id>_<secret>`, stored only as a SHA-256 hash.
//! * [`bearer`]: the `Authorization: Bearer` header, told apart into a JWT or an API key.
//! * [`access`]: roles (owner, admin, member) and API key scopes.
//! * [`throttle`]: in-process token buckets for login attempts per account and per IP.
//! * [`sealing`]: AES-256-GCM sealing of the secrets ledge must read back, keys rotated by `kid`.
//! * [`stripe`]: the `Stripe-Signature` header of billing webhooks, a timestamped HMAC-SHA256.
//!
//! Invariant: knows no storage, no HTTP framework, no clock but the one passed in. Every parser
//! here returns a typed error for any input and never panics (see the property tests).

pub mod access;
pub mod bearer;
pub mod jwt;
pub mod password;
pub mod sealing;
pub mod stripe;
pub mod throttle;
pub mod token;

pub use access::{Role, Scope, Scopes};
pub use bearer::{BearerError, Credential};
pub use jwt::{AccessClaims, JwtKeys, KeyConfigError, TokenError};
pub use password::{Email, EmailError, PasswordError, PasswordHasher};
pub use sealing::{OpenError, SealingKeys};
pub use stripe::{SignatureError, StripeSignature, StripeVerifier};
pub use throttle::{LoginThrottle, TokenBuckets};
pub use token::{OpaqueToken, ParsedToken, TokenFormatError, TokenKind};
