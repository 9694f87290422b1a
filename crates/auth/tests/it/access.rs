//! Roles are ordered; scopes round-trip through their stored text.

use ledge_auth::access::*;

#[test]
fn roles_are_ordered_and_round_trip() {
    assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
    for role in Role::ALL {
        assert_eq!(Role::parse(role.as_str()), Some(*role));
    }
    assert_eq!(Role::parse("Owner"), None);
}

#[test]
fn scopes_round_trip_as_text_and_members_cannot_administer() {
    let text = "admin search:read";
    let scopes = Scopes::parse_text(text).unwrap();
    assert_eq!(scopes.to_text(), "search:read admin");
    assert_eq!(Scopes::parse_text("search:read repo:write"), Err("repo:write".into()));
    assert!(!Role::Member.scopes().contains(Scope::Admin));
    assert!(Role::Admin.scopes().covers(Scopes::all()));
    assert!(!Role::Member.scopes().covers(scopes));
}
