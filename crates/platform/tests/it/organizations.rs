//! Organizations, members, roles, invitations, soft deletion, the audit log, and tenancy: another
//! organization's records read as not found.

use std::time::Duration;

use ledge_auth::Role;
use ledge_platform::{Need, PageRequest, PlatformError, Principal};

use crate::support::{TestPlatform, lenient, platform_with};

fn user(principal: &Principal) -> &ledge_platform::User {
    match principal {
        Principal::User { user, .. } => user,
        other => panic!("{other:?}"),
    }
}

/// Ada owns "Acme"; Bob is a member; Eve is in no organization.
struct World {
    t: TestPlatform,
    ada: Principal,
    bob: Principal,
    eve: Principal,
    org: String,
}

async fn world() -> World {
    let t = platform_with(lenient()).await;
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let bob = t.account("bob@example.com").await;
    let bob = t.principal(&bob).await;
    let eve = t.account("eve@example.com").await;
    let eve = t.principal(&eve).await;
    let org = t.platform.create_organization(user(&ada), "Acme Corp", None).await.unwrap();
    assert_eq!(org.organization.slug, "acme-corp");
    assert_eq!(org.role, Role::Owner);
    let org = org.organization.id;
    let access = t.platform.access(&ada, &org).await.unwrap();
    let (_, token) =
        t.platform.create_invitation(&access, "bob@example.com", Role::Member, None).await.unwrap();
    t.platform.accept_invitation(user(&bob), &token).await.unwrap();
    World { t, ada, bob, eve, org }
}

#[tokio::test]
async fn an_outsider_finds_no_organization_and_roles_decide_what_members_may_do() {
    let w = world().await;
    let p = &w.t.platform;
    assert!(matches!(p.access(&w.eve, &w.org).await, Err(PlatformError::NotFound("organization"))));
    assert!(matches!(p.access(&w.ada, "no-such-org").await, Err(PlatformError::NotFound(_))));
    let bob = p.access(&w.bob, &w.org).await.unwrap();
    assert_eq!(bob.role, Some(Role::Member));
    assert!(bob.allows(Need::new(Role::Member, None)));
    assert!(matches!(bob.require(Need::new(Role::Admin, None)), Err(PlatformError::Forbidden(_))));
    let orgs = p.organizations_of(user(&w.bob), &PageRequest::first(10)).await.unwrap();
    assert_eq!(orgs.items.len(), 1);
    assert_eq!(orgs.items[0].organization.id, w.org);
    assert!(p.organizations_of(user(&w.eve), &PageRequest::first(10)).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn the_last_owner_can_neither_leave_nor_be_demoted_and_only_owners_grant_ownership() {
    let w = world().await;
    let p = &w.t.platform;
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    let ada_id = user(&w.ada).id.clone();
    let bob_id = user(&w.bob).id.clone();
    assert!(matches!(p.change_role(&ada, &ada_id, Role::Admin).await, Err(PlatformError::LastOwner)));
    assert!(matches!(p.remove_member(&ada, &ada_id).await, Err(PlatformError::LastOwner)));

    p.change_role(&ada, &bob_id, Role::Admin).await.unwrap();
    let bob = p.access(&w.bob, &w.org).await.unwrap();
    assert!(matches!(p.change_role(&bob, &bob_id, Role::Owner).await, Err(PlatformError::Forbidden(_))));
    assert!(matches!(p.change_role(&bob, &ada_id, Role::Member).await, Err(PlatformError::Forbidden(_))));
    assert!(matches!(p.remove_member(&bob, &ada_id).await, Err(PlatformError::Forbidden(_))));

    // With a second owner, the first can step down.
    p.change_role(&ada, &bob_id, Role::Owner).await.unwrap();
    let member = p.change_role(&ada, &ada_id, Role::Member).await.unwrap();
    assert_eq!(member.role, Role::Member);
    let bob = p.access(&w.bob, &w.org).await.unwrap();
    assert!(matches!(p.remove_member(&bob, &bob_id).await, Err(PlatformError::LastOwner)));
    // A member leaves on its own.
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    p.remove_member(&ada, &ada_id).await.unwrap();
    assert!(matches!(p.access(&w.ada, &w.org).await, Err(PlatformError::NotFound(_))));
}

#[tokio::test]
async fn invitations_are_for_their_address_used_once_and_expire() {
    let w = world().await;
    let p = &w.t.platform;
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    let (invitation, token) = p.create_invitation(&ada, "Eve@Example.com", Role::Admin, None).await.unwrap();
    assert_eq!(invitation.email, "eve@example.com");
    // Someone else holding the token finds nothing.
    assert!(matches!(p.accept_invitation(user(&w.bob), &token).await, Err(PlatformError::NotFound(_))));
    let joined = p.accept_invitation(user(&w.eve), &token).await.unwrap();
    assert_eq!(joined.role, Role::Admin);
    assert!(matches!(p.accept_invitation(user(&w.eve), &token).await, Err(PlatformError::Expired(_))));

    let (_, late) = p
        .create_invitation(&ada, "carol@example.com", Role::Member, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let carol = w.t.account("carol@example.com").await;
    let carol = w.t.principal(&carol).await;
    w.t.advance(Duration::from_secs(3601));
    assert!(matches!(p.accept_invitation(user(&carol), &late).await, Err(PlatformError::Expired(_))));

    let (revoked, token) = p.create_invitation(&ada, "dan@example.com", Role::Member, None).await.unwrap();
    p.revoke_invitation(&ada, &revoked.id).await.unwrap();
    let dan = w.t.account("dan@example.com").await;
    let dan = w.t.principal(&dan).await;
    assert!(matches!(p.accept_invitation(user(&dan), &token).await, Err(PlatformError::NotFound(_))));
    let admin_eve = p.access(&w.eve, &w.org).await.unwrap();
    assert!(matches!(
        p.create_invitation(&admin_eve, "x@example.com", Role::Owner, None).await,
        Err(PlatformError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_deleted_organization_reads_as_missing_until_an_owner_restores_it() {
    let w = world().await;
    let p = &w.t.platform;
    let bob = p.access(&w.bob, &w.org).await.unwrap();
    assert!(matches!(p.delete_organization(&bob).await, Err(PlatformError::Forbidden(_))));
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    p.delete_organization(&ada).await.unwrap();
    assert!(matches!(p.access(&w.ada, &w.org).await, Err(PlatformError::NotFound(_))));
    assert!(p.organizations_of(user(&w.ada), &PageRequest::first(10)).await.unwrap().items.is_empty());
    // The slug stays taken during the grace period.
    let taken = p.create_organization(user(&w.eve), "Acme", Some("acme-corp")).await.unwrap_err();
    assert!(matches!(taken, PlatformError::Conflict { field: Some("slug"), .. }), "{taken:?}");
    assert!(matches!(p.restore_organization(user(&w.bob), &w.org).await, Err(PlatformError::NotFound(_))));
    p.restore_organization(user(&w.ada), &w.org).await.unwrap();
    p.access(&w.bob, &w.org).await.unwrap();
    // Past the grace period, there is nothing to restore.
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    p.delete_organization(&ada).await.unwrap();
    w.t.advance(Duration::from_secs(31 * 24 * 3600));
    assert!(matches!(p.restore_organization(user(&w.ada), &w.org).await, Err(PlatformError::NotFound(_))));
    // Past the grace period it is purged with its records, and its slug is free again.
    let again = p.create_organization(user(&w.eve), "Acme", Some("acme-corp")).await.unwrap();
    assert_ne!(again.organization.id, w.org);
    assert_eq!(p.purge_deleted_organizations().await.unwrap(), 0, "already purged");
    let eve = p.access(&w.eve, &again.organization.id).await.unwrap();
    let members = p.members(&eve, &PageRequest::first(10)).await.unwrap();
    assert_eq!(members.items.len(), 1, "none of the old members came with the slug");
    let log = p.audit_log(&eve, &PageRequest::first(100)).await.unwrap();
    assert!(log.items.iter().all(|e| e.action != "organization.deleted"), "the old log is gone");
}

#[tokio::test]
async fn members_page_by_cursor_and_the_audit_log_records_security_actions() {
    let w = world().await;
    let p = &w.t.platform;
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    for n in 0..3 {
        let email = format!("m{n}@example.com");
        let (_, token) = p.create_invitation(&ada, &email, Role::Member, None).await.unwrap();
        let tokens = w.t.account(&email).await;
        let principal = w.t.principal(&tokens).await;
        p.accept_invitation(user(&principal), &token).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let members = p.members(&ada, &page).await.unwrap();
        assert!(members.items.len() <= 2);
        seen.extend(members.items.iter().map(|m| m.email.clone()));
        match members.next_cursor {
            Some(cursor) => page = PageRequest::parse(Some(&cursor), Some("2")).unwrap(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], "ada@example.com");
    assert!(matches!(
        PageRequest::parse(Some("garbage!"), None),
        Err(PlatformError::Invalid { field: "cursor", .. })
    ));
    assert!(matches!(
        PageRequest::parse(None, Some("0")),
        Err(PlatformError::Invalid { field: "limit", .. })
    ));

    p.change_role(&ada, &user(&w.bob).id, Role::Admin).await.unwrap();
    p.login("bob@example.com", crate::support::PASSWORD, "ip").await.unwrap();
    let log = p.audit_log(&ada, &PageRequest::first(100)).await.unwrap();
    let actions: Vec<&str> = log.items.iter().map(|e| e.action.as_str()).collect();
    for expected in ["organization.created", "invitation.created", "member.joined", "member.role_changed"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let login = log.items.iter().find(|e| e.action == "login").expect("bob's login as a member");
    assert_eq!(login.actor.as_deref(), Some(user(&w.bob).id.as_str()));
}

/// The first page of a user's organizations (what `GET /auth/me` shows) is kept in memory between
/// calls; every change to a membership or an organization shows on the next read.
#[tokio::test]
async fn a_users_organizations_follow_every_change_after_they_were_read() {
    let w = world().await;
    let p = &w.t.platform;
    let first = PageRequest::first(100);
    let names = |page: ledge_platform::Page<ledge_platform::OrganizationWithRole>| {
        page.items.into_iter().map(|o| (o.organization.name, o.role)).collect::<Vec<_>>()
    };
    assert_eq!(
        names(p.organizations_of(user(&w.bob), &first).await.unwrap()),
        [("Acme Corp".into(), Role::Member)]
    );

    let ada = p.access(&w.ada, &w.org).await.unwrap();
    p.update_organization(&ada, "Acme Inc").await.unwrap();
    assert_eq!(
        names(p.organizations_of(user(&w.bob), &first).await.unwrap()),
        [("Acme Inc".into(), Role::Member)]
    );

    let bob_id = user(&w.bob).id.clone();
    p.change_role(&ada, &bob_id, Role::Admin).await.unwrap();
    assert_eq!(
        names(p.organizations_of(user(&w.bob), &first).await.unwrap()),
        [("Acme Inc".into(), Role::Admin)]
    );

    let other = p.create_organization(user(&w.eve), "Globex", None).await.unwrap().organization.id;
    let eve = p.access(&w.eve, &other).await.unwrap();
    let (_, token) = p.create_invitation(&eve, "bob@example.com", Role::Member, None).await.unwrap();
    p.accept_invitation(user(&w.bob), &token).await.unwrap();
    assert_eq!(
        names(p.organizations_of(user(&w.bob), &first).await.unwrap()),
        [("Acme Inc".into(), Role::Admin), ("Globex".into(), Role::Member)]
    );

    p.remove_member(&ada, &bob_id).await.unwrap();
    assert_eq!(
        names(p.organizations_of(user(&w.bob), &first).await.unwrap()),
        [("Globex".into(), Role::Member)]
    );
    p.delete_organization(&eve).await.unwrap();
    assert!(p.organizations_of(user(&w.bob), &first).await.unwrap().items.is_empty());
}

/// The first page of members is kept in memory between calls; a member joining, changing role and
/// leaving each show on the next read.
#[tokio::test]
async fn the_list_of_members_follows_every_change_after_it_was_read() {
    let w = world().await;
    let p = &w.t.platform;
    let first = PageRequest::first(20);
    let ada = p.access(&w.ada, &w.org).await.unwrap();
    let roles = |page: ledge_platform::Page<ledge_platform::Member>| {
        page.items.into_iter().map(|m| (m.email, m.role)).collect::<Vec<_>>()
    };
    let before =
        [("ada@example.com".to_string(), Role::Owner), ("bob@example.com".to_string(), Role::Member)];
    assert_eq!(roles(p.members(&ada, &first).await.unwrap()), before);

    let (_, token) = p.create_invitation(&ada, "eve@example.com", Role::Admin, None).await.unwrap();
    p.accept_invitation(user(&w.eve), &token).await.unwrap();
    let mut expected = before.to_vec();
    expected.push(("eve@example.com".into(), Role::Admin));
    assert_eq!(roles(p.members(&ada, &first).await.unwrap()), expected);

    let bob_id = user(&w.bob).id.clone();
    p.change_role(&ada, &bob_id, Role::Admin).await.unwrap();
    expected[1].1 = Role::Admin;
    assert_eq!(roles(p.members(&ada, &first).await.unwrap()), expected);

    p.remove_member(&ada, &bob_id).await.unwrap();
    expected.remove(1);
    assert_eq!(roles(p.members(&ada, &first).await.unwrap()), expected);
}
