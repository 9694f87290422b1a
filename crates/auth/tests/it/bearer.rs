//! The `Authorization` header told apart into a JWT or an API key.

use ledge_auth::bearer::*;
use ledge_auth::token::{OpaqueToken, TokenFormatError, TokenKind};

#[test]
fn bearer_headers_are_told_apart() {
    let key = OpaqueToken::generate(TokenKind::ApiKey);
    match parse(format!("Bearer {}", key.token).as_bytes()).unwrap() {
        Credential::ApiKey(parsed) => assert_eq!(parsed.id, key.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(parse(b"bearer aaa.bbb.ccc"), Ok(Credential::Jwt("aaa.bbb.ccc")));
    assert_eq!(parse(b"Basic dXNlcjpwYXNz"), Err(BearerError::NotBearer));
    assert_eq!(parse(b"Bearer"), Err(BearerError::NotBearer));
    assert_eq!(parse(b"Bearer "), Err(BearerError::NotBearer));
    assert_eq!(parse(b"Bearer a b"), Err(BearerError::NotBearer));
    assert_eq!(parse(b"Bearer abc"), Err(BearerError::UnknownForm));
    assert_eq!(parse(b"Bearer ledge_abc_def"), Err(BearerError::ApiKey(TokenFormatError::Malformed)));
    let refresh = OpaqueToken::generate(TokenKind::Refresh);
    assert!(parse(format!("Bearer {}", refresh.token).as_bytes()).is_err(), "a refresh token is no key");
}
