//! Sealing secrets at rest: a value opens only with its context and a configured key.

use ledge_auth::jwt::KeyConfigError;
use ledge_auth::{OpenError, SealingKeys};

const KEY_A: &str = "a:0123456789abcdef0123456789abcdef";
const KEY_B: &str = "b:fedcba9876543210fedcba9876543210";

#[test]
fn a_sealed_value_opens_with_its_context_and_hides_the_plaintext() {
    let keys = SealingKeys::parse_list(KEY_A).unwrap();
    let sealed = keys.seal(b"ghp_secret-token", "repo-1/access_token");
    assert!(sealed.starts_with("v1.a."), "{sealed}");
    assert!(!sealed.contains("ghp_secret"), "{sealed}");
    assert_eq!(keys.open(&sealed, "repo-1/access_token").unwrap(), b"ghp_secret-token");
    // A fresh nonce each time: the same secret never seals to the same text.
    assert_ne!(sealed, keys.seal(b"ghp_secret-token", "repo-1/access_token"));
    assert_eq!(keys.seal(b"", "c").len(), keys.seal(b"", "c").len());
    assert_eq!(keys.open(&keys.seal(b"", "c"), "c").unwrap(), b"");
}

#[test]
fn another_context_a_flipped_bit_or_another_key_does_not_open() {
    let keys = SealingKeys::parse_list(KEY_A).unwrap();
    let sealed = keys.seal(b"whsec", "repo-1/webhook_secret");
    assert_eq!(keys.open(&sealed, "repo-2/webhook_secret"), Err(OpenError::Tampered));
    assert_eq!(keys.open(&sealed, "repo-1/access_token"), Err(OpenError::Tampered));

    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        keys.open(std::str::from_utf8(&tampered).unwrap(), "repo-1/webhook_secret"),
        Err(OpenError::Tampered)
    );

    let same_kid_other_secret = SealingKeys::parse_list("a:another-secret-of-at-least-32-bytes!").unwrap();
    assert_eq!(same_kid_other_secret.open(&sealed, "repo-1/webhook_secret"), Err(OpenError::Tampered));
    let other_kid = SealingKeys::parse_list(KEY_B).unwrap();
    assert_eq!(other_kid.open(&sealed, "repo-1/webhook_secret"), Err(OpenError::UnknownKey));

    for bad in ["", "v1", "v1.a", "v2.a.AAAA", "v1.a.!!", "v1.a.AAAA", &"v1.a.".repeat(5000)] {
        assert_eq!(keys.open(bad, "c"), Err(OpenError::Malformed), "{bad:?}");
    }
}

#[test]
fn rotation_seals_with_the_first_key_and_opens_with_any() {
    let old = SealingKeys::parse_list(KEY_A).unwrap();
    let sealed_before = old.seal(b"t", "c");
    let rotated = SealingKeys::parse_list(&format!("{KEY_B},{KEY_A}")).unwrap();
    assert_eq!(rotated.open(&sealed_before, "c").unwrap(), b"t");
    assert!(rotated.is_stale(&sealed_before));
    let sealed_after = rotated.seal(b"t", "c");
    assert!(sealed_after.starts_with("v1.b."));
    assert!(!rotated.is_stale(&sealed_after));
}

#[test]
fn bad_key_lists_are_refused_by_entry() {
    assert_eq!(SealingKeys::parse_list("").unwrap_err(), KeyConfigError::Empty);
    assert_eq!(SealingKeys::parse_list("nocolon").unwrap_err(), KeyConfigError::NotAPair(1));
    assert_eq!(SealingKeys::parse_list("a:short").unwrap_err(), KeyConfigError::ShortSecret("a".into()));
    assert_eq!(
        SealingKeys::parse_list(&format!("{KEY_A},{KEY_A}")).unwrap_err(),
        KeyConfigError::DuplicateKid("a".into())
    );
    assert_eq!(
        SealingKeys::parse_list("a.b:0123456789abcdef0123456789abcdef").unwrap_err(),
        KeyConfigError::InvalidKid("a.b".into())
    );
    assert!(!format!("{:?}", SealingKeys::parse_list(KEY_A).unwrap()).contains("0123"));
}
