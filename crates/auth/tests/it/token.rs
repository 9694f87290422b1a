//! Opaque tokens (API keys, refresh, invitation): format, id, hash.

use ledge_auth::token::*;

#[test]
fn generated_tokens_parse_back_to_their_id_and_hash() {
    for kind in [TokenKind::ApiKey, TokenKind::Refresh, TokenKind::Invitation] {
        let made = OpaqueToken::generate(kind);
        assert!(made.token.starts_with(&format!("{}_", made.prefix)));
        let parsed = OpaqueToken::parse(kind, &made.token).unwrap();
        assert_eq!(parsed.id, made.id);
        assert!(parsed.matches(&made.hash));
        assert!(!format!("{made:?}").contains(&made.token), "Debug never shows the secret");
    }
}

#[test]
fn kinds_are_not_interchangeable() {
    let key = OpaqueToken::generate(TokenKind::ApiKey);
    assert_eq!(
        OpaqueToken::parse(TokenKind::Refresh, &key.token),
        Err(TokenFormatError::WrongKind("ledge_rt"))
    );
    let refresh = OpaqueToken::generate(TokenKind::Refresh);
    // `ledge_rt_<id>_<secret>` read as an API key has the id `rt`: malformed.
    assert_eq!(OpaqueToken::parse(TokenKind::ApiKey, &refresh.token), Err(TokenFormatError::Malformed));
}

#[test]
fn a_changed_secret_keeps_the_id_but_not_the_hash() {
    let made = OpaqueToken::generate(TokenKind::ApiKey);
    let mut tampered = made.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let parsed = OpaqueToken::parse(TokenKind::ApiKey, &tampered).unwrap();
    assert_eq!(parsed.id, made.id);
    assert!(!parsed.matches(&made.hash));
}
