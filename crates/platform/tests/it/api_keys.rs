//! API keys: shown once, scoped, revocable, expiring, bound to their organization.

use std::time::Duration;

use ledge_auth::{Role, Scope, Scopes};
use ledge_platform::{Access, Need, PageRequest, PlatformError, Principal};

use crate::support::{TestPlatform, lenient, platform_with};

/// A platform where ada, signed in, owns the organization Acme: her principal, Acme's id, her access.
async fn ada_owning_acme() -> (TestPlatform, Principal, String, Access) {
    let t = platform_with(lenient()).await;
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let Principal::User { user, .. } = &ada else { panic!() };
    let acme = t.platform.create_organization(user, "Acme", None).await.unwrap().organization.id;
    let access = t.platform.access(&ada, &acme).await.unwrap();
    (t, ada, acme, access)
}

#[tokio::test]
async fn a_key_authenticates_for_its_organization_only_until_revoked() {
    let (t, ada, acme, access) = ada_owning_acme().await;
    let Principal::User { user, .. } = &ada else { panic!() };
    let other = t.platform.create_organization(user, "Other", None).await.unwrap().organization.id;
    let (key, secret) =
        t.platform.create_api_key(&access, "ci", Scopes::of(&[Scope::SearchRead]), None).await.unwrap();
    assert!(secret.starts_with(&format!("{}_", key.prefix)));
    assert!(key.prefix.starts_with("ledge_"));

    let header = format!("Bearer {secret}");
    let principal = t.platform.authenticate(header.as_bytes()).await.unwrap();
    let key_access = t.platform.access(&principal, &acme).await.unwrap();
    assert_eq!(key_access.role, None);
    assert!(key_access.allows(Need::new(Role::Member, Some(Scope::SearchRead))));
    assert!(!key_access.allows(Need::new(Role::Admin, Some(Scope::Admin))));
    assert!(matches!(t.platform.access(&principal, &other).await, Err(PlatformError::NotFound(_))));

    let listed = t.platform.api_keys(&access, &PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].last_used_at.is_some(), "the use above is recorded");
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(&secret[secret.len() - 40..]), "the secret is never listed");

    t.platform.revoke_api_key(&access, &key.id).await.unwrap();
    assert!(matches!(
        t.platform.authenticate(header.as_bytes()).await,
        Err(PlatformError::Unauthenticated(_))
    ));
    let other_access = t.platform.access(&ada, &other).await.unwrap();
    assert!(matches!(
        t.platform.revoke_api_key(&other_access, &key.id).await,
        Err(PlatformError::NotFound(_))
    ));
}

#[tokio::test]
async fn keys_expire_and_cannot_be_given_scopes_their_creator_lacks() {
    let (t, _, acme, access) = ada_owning_acme().await;
    let now = ledge_kv::Clock::now_ms(t.clock.as_ref());
    let soon = now + 60_000;
    let (_, secret) = t
        .platform
        .create_api_key(&access, "short", Scopes::of(&[Scope::ReposRead]), Some(soon))
        .await
        .unwrap();
    let header = format!("Bearer {secret}");
    t.platform.authenticate(header.as_bytes()).await.unwrap();
    t.advance(Duration::from_secs(61));
    assert!(t.platform.authenticate(header.as_bytes()).await.is_err());
    assert!(matches!(
        t.platform.create_api_key(&access, "past", Scopes::of(&[Scope::ReposRead]), Some(now)).await,
        Err(PlatformError::Invalid { field: "expires_at", .. })
    ));
    assert!(matches!(
        t.platform.create_api_key(&access, "none", Scopes::empty(), None).await,
        Err(PlatformError::Invalid { field: "scopes", .. })
    ));

    let (_, admin_secret) =
        t.platform.create_api_key(&access, "admin", Scopes::of(&[Scope::Admin]), None).await.unwrap();
    let key = t.platform.authenticate(format!("Bearer {admin_secret}").as_bytes()).await.unwrap();
    let key_access = t.platform.access(&key, &acme).await.unwrap();
    assert!(matches!(
        t.platform.create_api_key(&key_access, "wider", Scopes::of(&[Scope::ChatWrite]), None).await,
        Err(PlatformError::Forbidden(_))
    ));
}

#[tokio::test]
async fn key_lists_page_by_cursor_without_repeats() {
    let (t, _, _, access) = ada_owning_acme().await;
    for n in 0..5 {
        t.platform
            .create_api_key(&access, &format!("k{n}"), Scopes::of(&[Scope::SearchRead]), None)
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let keys = t.platform.api_keys(&access, &page).await.unwrap();
        names.extend(keys.items.into_iter().map(|k| k.name));
        let Some(cursor) = keys.next_cursor else { break };
        page = PageRequest::parse(Some(&cursor), Some("2")).unwrap();
    }
    // All made in the same millisecond (the clock stands still): the id breaks the tie.
    names.sort();
    assert_eq!(names, ["k0", "k1", "k2", "k3", "k4"]);
}

#[tokio::test]
async fn a_key_and_a_member_used_a_moment_ago_fail_once_their_organization_is_deleted() {
    let (t, ada, acme, access) = ada_owning_acme().await;
    let (_, secret) =
        t.platform.create_api_key(&access, "ci", Scopes::of(&[Scope::SearchRead]), None).await.unwrap();
    let header = format!("Bearer {secret}");
    // Used twice, so that whatever the platform keeps of them is warm.
    for _ in 0..2 {
        let key = t.platform.authenticate(header.as_bytes()).await.unwrap();
        t.platform.access(&key, &acme).await.unwrap();
        t.platform.access(&ada, &acme).await.unwrap();
    }

    t.platform.delete_organization(&access).await.unwrap();
    assert!(matches!(
        t.platform.authenticate(header.as_bytes()).await,
        Err(PlatformError::Unauthenticated(_))
    ));
    assert!(matches!(t.platform.access(&ada, &acme).await, Err(PlatformError::NotFound(_))));
}

/// The first page of keys is kept in memory between calls; a new key, a key's first use and a
/// revocation each show on the next read.
#[tokio::test]
async fn the_list_of_keys_follows_creation_use_and_revocation_after_it_was_read() {
    let (t, _, _, access) = ada_owning_acme().await;
    let first = PageRequest::first(10);
    assert!(t.platform.api_keys(&access, &first).await.unwrap().items.is_empty());

    let (key, secret) =
        t.platform.create_api_key(&access, "ci", Scopes::of(&[Scope::SearchRead]), None).await.unwrap();
    let listed = t.platform.api_keys(&access, &first).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].last_used_at, None);

    t.platform.authenticate(format!("Bearer {secret}").as_bytes()).await.unwrap();
    let listed = t.platform.api_keys(&access, &first).await.unwrap();
    assert!(listed.items[0].last_used_at.is_some(), "the use is listed");
    // The key was read again after its use was recorded: it still authenticates.
    t.platform.authenticate(format!("Bearer {secret}").as_bytes()).await.unwrap();

    t.platform.revoke_api_key(&access, &key.id).await.unwrap();
    let listed = t.platform.api_keys(&access, &first).await.unwrap();
    assert!(listed.items[0].revoked_at.is_some(), "the revocation is listed");
}
