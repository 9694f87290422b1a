//! HS256 access tokens: expiry, rotation by `kid`, refused algorithms, key configuration errors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ledge_auth::jwt::*;

const A: &str = "a-secret-of-at-least-thirty-two-bytes!!";
const B: &str = "another-secret-of-at-least-32-bytes-long";

fn claims(now: i64) -> AccessClaims {
    AccessClaims { sub: "user-1".into(), sid: "session-1".into(), iat: now, exp: now + 600 }
}

#[test]
fn a_signed_token_verifies_until_it_expires() {
    let keys = JwtKeys::single(A).unwrap();
    let token = keys.sign(&claims(1000));
    assert_eq!(keys.verify(&token, 1000), Ok(claims(1000)));
    assert_eq!(keys.verify(&token, 1599), Ok(claims(1000)));
    assert_eq!(keys.verify(&token, 1600), Err(TokenError::Expired));
    assert_eq!(keys.verify(&token, 900), Err(TokenError::NotYetValid));
}

#[test]
fn rotation_by_kid_keeps_old_tokens_valid_while_the_old_key_is_listed() {
    let old = JwtKeys::parse_list(&format!("k1:{A}")).unwrap();
    let token = old.sign(&claims(1000));
    let rotated = JwtKeys::parse_list(&format!("k2:{B}, k1:{A}")).unwrap();
    assert_eq!(rotated.signing_kid(), "k2");
    assert_eq!(rotated.verify(&token, 1000), Ok(claims(1000)));
    let new_token = rotated.sign(&claims(1000));
    assert_eq!(old.verify(&new_token, 1000), Err(TokenError::UnknownKey));
    let retired = JwtKeys::parse_list(&format!("k2:{B}")).unwrap();
    assert_eq!(retired.verify(&token, 1000), Err(TokenError::UnknownKey));
    // Same kid, other secret: the signature is wrong.
    let impostor = JwtKeys::parse_list(&format!("k1:{B}")).unwrap();
    assert_eq!(impostor.verify(&token, 1000), Err(TokenError::BadSignature));
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let keys = JwtKeys::single(A).unwrap();
    let token = keys.sign(&claims(1000));
    let (_, rest) = token.split_once('.').unwrap();
    for header in [
        r#"{"alg":"none","kid":"default"}"#,
        r#"{"alg":"HS512","kid":"default"}"#,
        r#"{"alg":"hs256","kid":"default"}"#,
        r#"{"alg":"HS256","kid":"default","crit":["exp"]}"#,
    ] {
        let forged = format!("{}.{rest}", B64URL.encode(header));
        assert_eq!(keys.verify(&forged, 1000), Err(TokenError::UnsupportedAlgorithm), "{header}");
    }
    let unsigned = format!("{}.{}.", B64URL.encode(r#"{"alg":"none"}"#), rest.split('.').next().unwrap());
    assert!(keys.verify(&unsigned, 1000).is_err());
}

#[test]
fn key_configuration_errors_name_the_entry() {
    assert_eq!(JwtKeys::parse_list("").unwrap_err(), KeyConfigError::Empty);
    assert_eq!(JwtKeys::parse_list(&format!("k1:{A},oops")).unwrap_err(), KeyConfigError::NotAPair(2));
    assert_eq!(JwtKeys::parse_list("k1:short").unwrap_err(), KeyConfigError::ShortSecret("k1".into()));
    assert_eq!(
        JwtKeys::parse_list(&format!("k1:{A},k1:{B}")).unwrap_err(),
        KeyConfigError::DuplicateKid("k1".into())
    );
    assert_eq!(
        JwtKeys::parse_list(&format!("k 1:{A}")).unwrap_err(),
        KeyConfigError::InvalidKid("k 1".into())
    );
}
