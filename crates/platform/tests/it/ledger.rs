//! The repository ledger: access tokens opened for the repository they were stored for, indexed
//! files admitted up to the plan and metered per organization, webhook secrets by repository, and
//! the change counter that tells their cache to read them again.

use ledge_platform::{
    Access, Admission, Limit, NewRepository, PlatformError, Principal, RepositoryChange, StripeOutcome,
};
use serde_json::json;

use crate::support::{TestPlatform, lenient, platform_with};

/// Ada owns the organizations `octo` and `other`; answers her access to each.
async fn owner(t: &TestPlatform) -> (Principal, Access, Access) {
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let Principal::User { user, .. } = &ada else { panic!() };
    let octo = t.platform.create_organization(user, "Octo", Some("octo")).await.unwrap().organization;
    let other = t.platform.create_organization(user, "Other", Some("other")).await.unwrap().organization;
    let octo = t.platform.access(&ada, &octo.id).await.unwrap();
    let other = t.platform.access(&ada, &other.id).await.unwrap();
    (ada, octo, other)
}

#[tokio::test]
async fn an_access_token_opens_only_for_the_organization_and_key_it_was_stored_for() {
    let t = platform_with(lenient()).await;
    let (_, octo, other) = owner(&t).await;
    let with_token = NewRepository {
        git_url: "https://github.com/octo/hello",
        access_token: Some("ghs_octo_hello"),
        ..NewRepository::default()
    };
    let repo = t.platform.connect_repository(&octo, &with_token).await.unwrap();
    let plain = NewRepository { git_url: "https://github.com/octo/plain", ..NewRepository::default() };
    t.platform.connect_repository(&octo, &plain).await.unwrap();
    t.platform
        .connect_repository(&other, &NewRepository { access_token: Some("ghs_other"), ..with_token })
        .await
        .unwrap();

    let ledger = t.ledger();
    assert_eq!(ledger.access_token("octo", "octo/hello").await.unwrap().as_deref(), Some("ghs_octo_hello"));
    assert_eq!(ledger.access_token("other", "octo/hello").await.unwrap().as_deref(), Some("ghs_other"));
    assert_eq!(ledger.access_token("octo", "octo/plain").await.unwrap(), None, "no token stored");
    assert_eq!(ledger.access_token("octo", "octo/nothing").await.unwrap(), None, "not connected");
    assert_eq!(ledger.access_token("nobody", "octo/hello").await.unwrap(), None, "no such organization");

    let removed = RepositoryChange { access_token: Some(None), ..RepositoryChange::default() };
    t.platform.update_repository(&octo, &repo.id, &removed).await.unwrap();
    assert_eq!(ledger.access_token("octo", "octo/hello").await.unwrap(), None, "removed");

    // Without the sealing key, a stored token is an error, not a fetch without it.
    let keyless = ledge_platform::RepositoryLedger::new(t.db.clone(), None, t.platform.plans().clone());
    assert!(matches!(keyless.access_token("other", "octo/hello").await, Err(PlatformError::Internal(_))));
}

#[tokio::test]
async fn indexed_files_are_admitted_up_to_the_plan_and_metered_per_organization() {
    let t = platform_with(lenient()).await;
    let (_, octo, _) = owner(&t).await;
    let ledger = t.ledger();
    let allowed = t.platform.plans().free().limits.indexed_files.unwrap();
    assert_eq!(allowed, 10_000);

    assert_eq!(ledger.admit_indexed_files("octo", "octo/a", 6_000).await.unwrap(), Admission::Admitted);
    assert_eq!(
        ledger.admit_indexed_files("octo", "octo/b", 5_000).await.unwrap(),
        Admission::LimitReached { plan: "free".into(), allowed, would_hold: 11_000 }
    );
    assert_eq!(ledger.indexed_files("octo").await.unwrap(), 6_000, "a refused job meters nothing");
    assert_eq!(ledger.admit_indexed_files("octo", "octo/b", 4_000).await.unwrap(), Admission::Admitted);
    // A repository's new count replaces its old one.
    assert_eq!(
        ledger.admit_indexed_files("octo", "octo/a", 6_001).await.unwrap(),
        Admission::LimitReached { plan: "free".into(), allowed, would_hold: 10_001 }
    );
    assert_eq!(ledger.admit_indexed_files("octo", "octo/a", 5_000).await.unwrap(), Admission::Admitted);
    assert_eq!(t.platform.billing(&octo).await.unwrap().usage.indexed_files, 9_000);
    // Another organization's files are its own; an unknown organization has no plan.
    assert_eq!(ledger.admit_indexed_files("other", "octo/a", 10_000).await.unwrap(), Admission::Admitted);
    assert_eq!(ledger.admit_indexed_files("nobody", "x/y", 1 << 40).await.unwrap(), Admission::Admitted);
    assert_eq!(ledger.indexed_files("nobody").await.unwrap(), 0);

    // At the limit, a re-index is still allowed; past it (a downgrade), it is refused by name.
    ledger.admit_indexed_files("octo", "octo/b", 5_000).await.unwrap();
    t.platform.check_limit(&octo.org.id, Limit::IndexedFiles, 0).await.unwrap();
    let now = t.platform.options().clock.now_ms() / 1000;
    let checkout = json!({
        "id": "evt_1", "type": "checkout.session.completed", "created": now,
        "data": { "object": { "client_reference_id": octo.org.id, "customer": "cus_1",
                              "subscription": "sub_1", "metadata": { "plan": "pro" } } },
    });
    let applied = t.platform.apply_stripe_event(checkout.to_string().as_bytes()).await.unwrap();
    assert!(matches!(applied, StripeOutcome::Applied { .. }));
    assert_eq!(ledger.admit_indexed_files("octo", "octo/a", 100_000).await.unwrap(), Admission::Admitted);
    let canceled = json!({
        "id": "evt_2", "type": "customer.subscription.deleted", "created": now + 1,
        "data": { "object": { "id": "sub_1", "customer": "cus_1", "status": "canceled" } },
    });
    t.platform.apply_stripe_event(canceled.to_string().as_bytes()).await.unwrap();
    match t.platform.check_limit(&octo.org.id, Limit::IndexedFiles, 0).await.unwrap_err() {
        PlatformError::PlanLimit { limit, allowed, plan } => {
            assert_eq!((limit, allowed, plan.as_str()), ("indexed_files", 10_000, "free"))
        }
        other => panic!("{other:?}"),
    }
    // Over the limit, a job that does not add files still goes through (the index can shrink).
    assert_eq!(ledger.admit_indexed_files("octo", "octo/a", 90_000).await.unwrap(), Admission::Admitted);
    assert!(matches!(
        ledger.admit_indexed_files("octo", "octo/a", 90_001).await.unwrap(),
        Admission::LimitReached { .. }
    ));
    // A removed repository's files are no longer counted.
    ledger.forget_indexed_files("octo", "octo/a").await.unwrap();
    assert_eq!(ledger.indexed_files("octo").await.unwrap(), 5_000);
    t.platform.check_limit(&octo.org.id, Limit::IndexedFiles, 0).await.unwrap();
    assert_eq!(ledger.indexed_files("other").await.unwrap(), 10_000);
}

#[tokio::test]
async fn webhook_secrets_are_listed_by_repository_and_every_change_is_counted() {
    let t = platform_with(lenient()).await;
    let (ada, octo, other) = owner(&t).await;
    let changes = t.platform.options().repository_changes.clone();
    let ledger = t.ledger();
    assert!(ledger.webhook_secrets().await.unwrap().is_empty());

    let before = changes.current();
    let hello = NewRepository {
        git_url: "https://github.com/octo/hello",
        webhook_secret: Some("octo-hello-secret"),
        ..NewRepository::default()
    };
    let repo = t.platform.connect_repository(&octo, &hello).await.unwrap();
    t.platform
        .connect_repository(&other, &NewRepository { webhook_secret: None, ..hello.clone() })
        .await
        .unwrap();
    assert_eq!(changes.current(), before + 2, "connecting counts");
    let secrets = ledger.webhook_secrets().await.unwrap();
    assert_eq!(secrets.len(), 1, "only repositories with a secret: {secrets:?}");
    let stored = &secrets[&("octo".to_string(), "octo/hello".to_string())];
    assert_eq!(stored.secret.as_deref(), Some("octo-hello-secret"));
    assert!(!format!("{stored:?}").contains("octo-hello-secret"), "Debug masks it");

    let rotated = RepositoryChange { webhook_secret: Some(Some("rotated")), ..RepositoryChange::default() };
    t.platform.update_repository(&octo, &repo.id, &rotated).await.unwrap();
    assert_eq!(changes.current(), before + 3, "updating counts");
    let secrets = ledger.webhook_secrets().await.unwrap();
    assert_eq!(secrets[&("octo".to_string(), "octo/hello".to_string())].secret.as_deref(), Some("rotated"));

    // A deleted organization's repositories have no secret in use; restoring brings them back.
    let deleted = t.platform.access(&ada, &octo.org.id).await.unwrap();
    t.platform.delete_organization(&deleted).await.unwrap();
    assert_eq!(changes.current(), before + 4, "deleting the organization counts");
    assert!(ledger.webhook_secrets().await.unwrap().is_empty());
    let Principal::User { user, .. } = &ada else { panic!() };
    t.platform.restore_organization(user, &octo.org.id).await.unwrap();
    assert_eq!(changes.current(), before + 5, "restoring counts");
    assert_eq!(ledger.webhook_secrets().await.unwrap().len(), 1);

    // Without the sealing key, the secret is listed as unreadable, not skipped.
    let keyless = ledge_platform::RepositoryLedger::new(t.db.clone(), None, t.platform.plans().clone());
    let secrets = keyless.webhook_secrets().await.unwrap();
    assert_eq!(secrets[&("octo".to_string(), "octo/hello".to_string())].secret, None);

    t.platform.disconnect_repository(&octo, &repo.id).await.unwrap();
    assert_eq!(changes.current(), before + 6, "disconnecting counts");
    assert!(ledger.webhook_secrets().await.unwrap().is_empty());
}
