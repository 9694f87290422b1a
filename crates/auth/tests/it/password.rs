//! Email normalization, password rules, argon2id PHC hashing and verification.

use ledge_auth::password::*;

fn fast() -> PasswordHasher {
    PasswordHasher::new(Cost { memory_kib: 64, passes: 1, lanes: 1 })
}

fn email() -> Email {
    Email::parse(" Ada.Lovelace@Example.COM ").unwrap()
}

#[test]
fn emails_are_normalized_and_malformed_ones_refused() {
    assert_eq!(email().as_str(), "ada.lovelace@example.com");
    for bad in ["", "ada", "@example.com", "ada@", "ada@example", "ada@@example.com", "a da@x.io", "a@.x.io"]
    {
        assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
    }
    assert_eq!(Email::parse(&format!("{}@x.io", "a".repeat(260))), Err(EmailError::TooLong));
}

#[test]
fn password_rules_name_what_is_wrong() {
    let email = email();
    assert_eq!(check_password("short", &email), Err(PasswordError::TooShort));
    assert_eq!(check_password(&"x".repeat(300), &email), Err(PasswordError::TooLong));
    assert_eq!(check_password("abababababababab", &email), Err(PasswordError::TooRepetitive));
    assert_eq!(check_password("my-ada.lovelace-pass", &email), Err(PasswordError::ContainsEmail));
    assert_eq!(check_password("Password1234", &email), Err(PasswordError::TooCommon));
    assert_eq!(check_password("correct horse battery", &email), Ok(()));
}

#[test]
fn hashes_are_argon2id_phc_strings_salted_and_verified() {
    let hasher = fast();
    let a = hasher.hash("correct horse battery");
    let b = hasher.hash("correct horse battery");
    assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
    assert_ne!(a, b, "fresh salt each time");
    assert!(hasher.verify("correct horse battery", &a));
    assert!(!hasher.verify("correct horse batterY", &a));
    // A hash made at another cost verifies: the cost is read from the string.
    assert!(
        PasswordHasher::new(Cost { memory_kib: 128, passes: 2, lanes: 1 })
            .verify("correct horse battery", &a)
    );
}

#[test]
fn malformed_or_over_costly_stored_hashes_never_verify() {
    let hasher = fast();
    let good = hasher.hash("correct horse battery");
    let over = good.replace("m=64", "m=99999999");
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    for stored in ["", "$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", &over, &tampered] {
        assert!(!hasher.verify("correct horse battery", stored), "{stored}");
    }
}

#[test]
fn the_default_cost_is_owasps() {
    assert_eq!(Cost::default(), Cost { memory_kib: 19456, passes: 2, lanes: 1 });
}
