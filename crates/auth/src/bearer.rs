//! The `Authorization` header: `Bearer <token>`, where the token is a JWT access token or an API
//! key, told apart by form (an API key starts `ledge_`; a JWT is three base64url segments).

use crate::token::{OpaqueToken, ParsedToken, TokenFormatError, TokenKind};

/// The longest header value accepted.
pub const MAX_HEADER_BYTES: usize = 4096 + 7;

/// What a bearer token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A JWT, still to verify.
    Jwt(&'a str),
    /// An API key, taken apart, still to look up.
    ApiKey(ParsedToken),
}

/// Why an `Authorization` header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("the Authorization header is too long")]
    TooLong,
    #[error("the bearer token is neither an access token nor an API key")]
    UnknownForm,
    #[error("the API key is malformed: {0}")]
    ApiKey(TokenFormatError),
}

/// Parses an `Authorization` header value (as bytes: header values need not be UTF-8).
pub fn parse(value: &[u8]) -> Result<Credential<'_>, BearerError> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(BearerError::TooLong);
    }
    let text = std::str::from_utf8(value).map_err(|_| BearerError::NotBearer)?;
    let (scheme, token) = text.split_once(' ').ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let token = token.trim_matches(' ');
    // RFC 6750 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "=" padding.
    let body = token.trim_end_matches('=');
    let b64token =
        !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !b64token {
        return Err(BearerError::NotBearer);
    }
    if token.starts_with(TokenKind::ApiKey.prefix()) && token.as_bytes().get(5) == Some(&b'_') {
        return OpaqueToken::parse(TokenKind::ApiKey, token)
            .map(Credential::ApiKey)
            .map_err(BearerError::ApiKey);
    }
    let segments = token.split('.').count();
    if segments == 3 && !token.contains('=') {
        return Ok(Credential::Jwt(token));
    }
    Err(BearerError::UnknownForm)
}
