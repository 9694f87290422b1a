//! `Stripe-Signature`: a signed payload is accepted within the tolerance window; a tampered payload,
//! a wrong secret, a stale or future timestamp and every malformed header are refused by kind.

use std::time::Duration;

use ledge_auth::stripe::{SignatureError, StripeSignature, StripeVerifier};
use proptest::prelude::*;

const SECRET: &[u8] = b"whsec_test_secret";
const NOW: i64 = 1_765_000_000;
const PAYLOAD: &[u8] = br#"{"id":"evt_1","type":"invoice.payment_failed"}"#;

#[test]
fn a_payload_signed_with_the_secret_is_accepted_within_five_minutes_either_way() {
    let verifier = StripeVerifier::new(SECRET);
    for signed_at in [NOW, NOW - 300, NOW + 300] {
        let header = verifier.sign(signed_at, PAYLOAD);
        assert_eq!(verifier.verify(Some(header.as_bytes()), PAYLOAD, NOW), Ok(signed_at));
    }
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let verifier = StripeVerifier::new(SECRET);
    for signed_at in [NOW - 301, NOW + 301, 0] {
        let header = verifier.sign(signed_at, PAYLOAD);
        assert_eq!(
            verifier.verify(Some(header.as_bytes()), PAYLOAD, NOW),
            Err(SignatureError::Stale(Duration::from_secs(300)))
        );
    }
    let strict = StripeVerifier::new(SECRET).with_tolerance(Duration::from_secs(10));
    let header = strict.sign(NOW - 11, PAYLOAD);
    assert!(matches!(strict.verify(Some(header.as_bytes()), PAYLOAD, NOW), Err(SignatureError::Stale(_))));
}

#[test]
fn a_tampered_payload_a_moved_timestamp_or_another_secret_do_not_match() {
    let verifier = StripeVerifier::new(SECRET);
    let header = verifier.sign(NOW, PAYLOAD);
    let tampered = br#"{"id":"evt_1","type":"invoice.payment_failes"}"#;
    assert_eq!(verifier.verify(Some(header.as_bytes()), tampered, NOW), Err(SignatureError::Mismatch));
    let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
    assert_eq!(verifier.verify(Some(moved.as_bytes()), PAYLOAD, NOW), Err(SignatureError::Mismatch));
    let other = StripeVerifier::new(b"whsec_other");
    assert_eq!(other.verify(Some(header.as_bytes()), PAYLOAD, NOW), Err(SignatureError::Mismatch));
    assert_eq!(verifier.verify(None, PAYLOAD, NOW), Err(SignatureError::Missing));
}

#[test]
fn while_a_secret_rolls_any_v1_may_match_and_other_schemes_are_ignored() {
    let verifier = StripeVerifier::new(SECRET);
    let ours = verifier.sign(NOW, PAYLOAD);
    let theirs = StripeVerifier::new(b"whsec_old").sign(NOW, PAYLOAD);
    let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_string();
    let header = format!("t={NOW}, v1={}, v0=00ff, v1={}", v1(&theirs), v1(&ours));
    assert_eq!(verifier.verify(Some(header.as_bytes()), PAYLOAD, NOW), Ok(NOW));
}

#[test]
fn malformed_headers_say_what_is_wrong() {
    let mac = "ab".repeat(32);
    let cases: &[(&str, &str)] = &[
        ("", "an item is not key=value"),
        ("t=1", "no v1 signature"),
        (&format!("v1={mac}"), "t is missing"),
        (&format!("t=1,t=2,v1={mac}"), "t appears twice"),
        (&format!("t=-1,v1={mac}"), "t is not a number of seconds"),
        (&format!("t=1e3,v1={mac}"), "t is not a number of seconds"),
        ("t=1,v1=abcd", "v1 is not 64 hex digits"),
        (&format!("t=1,v1={mac},=x"), "an item has no key"),
    ];
    for (header, reason) in cases {
        assert_eq!(
            StripeSignature::parse(header.as_bytes()),
            Err(SignatureError::Malformed(reason)),
            "{header:?}"
        );
    }
    let many = format!("t=1{}", format!(",v1={mac}").repeat(9));
    assert_eq!(
        StripeSignature::parse(many.as_bytes()),
        Err(SignatureError::Malformed("too many v1 signatures"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsing_any_bytes_never_panics(header in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = StripeSignature::parse(&header);
    }

    #[test]
    fn parsing_near_headers_never_panics(header in "(t=[0-9-]{0,14})?(, ?(v1|v0|t|x)?=?[0-9a-f]{0,66}){0,4}") {
        if let Ok(parsed) = StripeSignature::parse(header.as_bytes()) {
            prop_assert!(!parsed.v1.is_empty() && parsed.timestamp >= 0);
        }
    }

    #[test]
    fn a_signed_header_parses_back_to_its_timestamp(t in 0i64..100_000_000_000, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let verifier = StripeVerifier::new(SECRET);
        let header = verifier.sign(t, &payload);
        let parsed = StripeSignature::parse(header.as_bytes()).unwrap();
        prop_assert_eq!(parsed.timestamp, t);
        prop_assert_eq!(verifier.verify(Some(header.as_bytes()), &payload, t), Ok(t));
    }

    #[test]
    fn no_change_to_a_signed_payload_is_accepted(payload in proptest::collection::vec(any::<u8>(), 1..200), at in any::<usize>(), with in any::<u8>()) {
        let verifier = StripeVerifier::new(SECRET);
        let header = verifier.sign(NOW, &payload);
        let mut changed = payload.clone();
        let at = at % changed.len();
        prop_assume!(changed[at] != with);
        changed[at] = with;
        prop_assert_eq!(verifier.verify(Some(header.as_bytes()), &changed, NOW), Err(SignatureError::Mismatch));
    }
}
