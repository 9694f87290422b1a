//! Property tests: every parser of untrusted input returns a value or a typed error for any input
//! (never panics), and no change to a signed or hashed secret is accepted.

use ledge_auth::password::Cost;
use ledge_auth::{AccessClaims, Credential, Email, JwtKeys, OpaqueToken, PasswordHasher, TokenKind, bearer};
use proptest::prelude::*;

const KEY: &str = "a-secret-of-at-least-thirty-two-bytes!!";

fn claims() -> AccessClaims {
    AccessClaims { sub: "user-1".into(), sid: "session-1".into(), iat: 1000, exp: 1600 }
}

/// `text` with the byte at `at` (modulo its length) replaced by `with`, if that changes it.
fn mutate(text: &str, at: usize, with: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let at = at % bytes.len();
    if bytes[at] == with {
        return None;
    }
    bytes[at] = with;
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn opening_any_text_never_panics_nor_opens(text in "(v1\\.k\\.)?[A-Za-z0-9_.-]{0,120}") {
        let keys = ledge_auth::SealingKeys::parse_list("k:0123456789abcdef0123456789abcdef").unwrap();
        prop_assert!(keys.open(&text, "context").is_err());
    }

    #[test]
    fn bearer_parsing_never_panics(value in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = bearer::parse(&value);
    }

    #[test]
    fn bearer_parsing_never_panics_on_near_tokens(value in "(Bearer|bearer|Basic)? ?(ledge|ledge_rt)?_?[a-z0-9_.=+/-]{0,80}") {
        let _ = bearer::parse(value.as_bytes());
    }

    #[test]
    fn jwt_verification_never_panics(token in "[A-Za-z0-9_.=-]{0,200}", now in any::<i64>()) {
        let keys = JwtKeys::single(KEY).unwrap();
        prop_assert!(keys.verify(&token, now).is_err());
    }

    #[test]
    fn a_jwt_changed_anywhere_is_refused(at in any::<usize>(), with in proptest::sample::select(b"AZaz09-_.=x".to_vec())) {
        let keys = JwtKeys::single(KEY).unwrap();
        let token = keys.sign(&claims());
        if let Some(changed) = mutate(&token, at, with) {
            prop_assert!(keys.verify(&changed, 1000).is_err(), "{changed}");
        }
    }

    #[test]
    fn a_jwt_from_a_bearer_header_verifies_only_unchanged(at in any::<usize>(), with in proptest::sample::select(b"AZaz09-_".to_vec())) {
        let keys = JwtKeys::single(KEY).unwrap();
        let token = keys.sign(&claims());
        let header = format!("Bearer {token}");
        let Ok(Credential::Jwt(jwt)) = bearer::parse(header.as_bytes()) else {
            return Err(TestCaseError::fail("a signed token is read as a JWT"));
        };
        prop_assert_eq!(keys.verify(jwt, 1000), Ok(claims()));
        if let Some(changed) = mutate(&token, at, with) {
            prop_assert!(keys.verify(&changed, 1000).is_err());
        }
    }

    #[test]
    fn opaque_token_parsing_never_panics(text in "(ledge|ledge_rt|ledge_inv)?_?[A-Za-z0-9_]{0,80}") {
        for kind in [TokenKind::ApiKey, TokenKind::Refresh, TokenKind::Invitation] {
            let _ = OpaqueToken::parse(kind, &text);
        }
    }

    #[test]
    fn an_opaque_token_changed_anywhere_does_not_match(at in any::<usize>(), with in proptest::sample::select(b"Aa0z_".to_vec())) {
        let made = OpaqueToken::generate(TokenKind::ApiKey);
        if let Some(changed) = mutate(&made.token, at, with)
            && let Ok(parsed) = OpaqueToken::parse(TokenKind::ApiKey, &changed)
        {
            prop_assert!(!parsed.matches(&made.hash));
        }
    }

    #[test]
    fn email_parsing_never_panics_and_is_idempotent(text in "\\PC{0,80}") {
        if let Ok(email) = Email::parse(&text) {
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        }
    }

    #[test]
    fn stored_hash_parsing_never_panics_and_never_verifies_garbage(stored in "(\\$argon2id\\$v=19\\$m=[0-9]{1,4},t=[0-9],p=[0-9]\\$)?[A-Za-z0-9+/$=,]{0,60}") {
        let hasher = PasswordHasher::new(Cost { memory_kib: 64, passes: 1, lanes: 1 });
        prop_assert!(!hasher.verify("correct horse battery", &stored));
    }
}
