//! Billing: plan limits (402) and daily quotas (429) per organization, and subscriptions changed by
//! Stripe events — each type, a replay, an older event arriving late.

use std::time::Duration;

use ledge_platform::{Access, Limit, NewRepository, PlatformError, Principal, Quota, StripeOutcome};
use serde_json::{Value, json};

use crate::support::{TestPlatform, lenient, platform_with};

/// Ada owns acme and other; answers her access to each.
async fn owner(t: &TestPlatform) -> (Access, Access) {
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let Principal::User { user, .. } = &ada else { panic!() };
    let acme = t.platform.create_organization(user, "Acme", None).await.unwrap().organization.id;
    let other = t.platform.create_organization(user, "Other", None).await.unwrap().organization.id;
    (t.platform.access(&ada, &acme).await.unwrap(), t.platform.access(&ada, &other).await.unwrap())
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    json!({ "id": id, "object": "event", "type": kind, "created": created, "data": { "object": object } })
        .to_string()
        .into_bytes()
}

fn checkout(id: &str, org: &str, plan: &str, created: i64) -> Vec<u8> {
    let session = json!({
        "id": "cs_1", "object": "checkout.session", "client_reference_id": org,
        "customer": "cus_1", "subscription": "sub_1", "metadata": { "plan": plan },
    });
    event(id, "checkout.session.completed", created, session)
}

#[tokio::test]
async fn the_free_plan_limits_repositories_and_the_one_past_it_names_the_limit() {
    let t = platform_with(lenient()).await;
    let (acme, other) = owner(&t).await;
    let allowed = t.platform.plans().free().limits.repositories.unwrap();
    assert_eq!(allowed, 10, "support.rs");
    for i in 0..allowed {
        let url = format!("https://github.com/acme/r{i}");
        let repo = NewRepository { git_url: &url, ..Default::default() };
        t.platform.connect_repository(&acme, &repo).await.unwrap();
    }
    let one_more = NewRepository { git_url: "https://github.com/acme/more", ..Default::default() };
    match t.platform.connect_repository(&acme, &one_more).await.unwrap_err() {
        PlatformError::PlanLimit { limit, allowed, plan } => {
            assert_eq!((limit, allowed, plan.as_str()), ("repositories", 10, "free"))
        }
        other => panic!("{other:?}"),
    }
    // Another organization's count is its own.
    t.platform.connect_repository(&other, &one_more).await.unwrap();
    // On the pro plan (25), it fits.
    let now = t.clock_seconds();
    t.platform.apply_stripe_event(&checkout("evt_1", &acme.org.id, "pro", now)).await.unwrap();
    t.platform.connect_repository(&acme, &one_more).await.unwrap();
    assert_eq!(t.platform.billing(&acme).await.unwrap().usage.repositories, 11);
    assert!(t.platform.check_limit(&acme.org.id, Limit::IndexedFiles, 250_001).await.is_err());
    t.platform.check_limit(&acme.org.id, Limit::IndexedFiles, 250_000).await.unwrap();
}

#[tokio::test]
async fn a_daily_quota_is_used_up_until_the_next_utc_midnight() {
    let t = platform_with(lenient()).await;
    let (acme, other) = owner(&t).await;
    // Start at 23:00 UTC.
    let now = t.platform.options().clock.now_ms();
    let day = 86_400_000;
    t.advance(Duration::from_millis(u64::try_from(day - now.rem_euclid(day) + 23 * 3_600_000).unwrap()));
    for n in 1..=50 {
        assert_eq!(t.platform.meter(&acme.org.id, Quota::ChatMessages).await.unwrap(), n);
    }
    match t.platform.meter(&acme.org.id, Quota::ChatMessages).await.unwrap_err() {
        PlatformError::QuotaExceeded { quota, allowed, retry_after, .. } => {
            assert_eq!((quota, allowed), ("chat_messages_per_day", 50));
            assert_eq!(retry_after, Duration::from_secs(3600));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.platform.meter(&other.org.id, Quota::ChatMessages).await.unwrap(), 1, "per organization");
    assert_eq!(t.platform.meter(&acme.org.id, Quota::Searches).await.unwrap(), 1, "per quota");
    let usage = t.platform.billing(&acme).await.unwrap().usage;
    assert_eq!((usage.chat_messages_today, usage.searches_today), (50, 1));
    t.advance(Duration::from_secs(3600));
    assert_eq!(t.platform.meter(&acme.org.id, Quota::ChatMessages).await.unwrap(), 1, "a new day");
}

#[tokio::test]
async fn each_stripe_event_type_updates_the_subscription() {
    let t = platform_with(lenient()).await;
    let (acme, _) = owner(&t).await;
    let org = acme.org.id.clone();
    let now = t.clock_seconds();
    let applied = |outcome: StripeOutcome| match outcome {
        StripeOutcome::Applied { org_id, subscription } => {
            assert_eq!(org_id, org);
            subscription
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(t.platform.subscription(&org).await.unwrap().plan, "free");

    let s = applied(t.platform.apply_stripe_event(&checkout("evt_1", &org, "pro", now)).await.unwrap());
    assert_eq!((s.plan.as_str(), s.status.as_str()), ("pro", "active"));
    assert_eq!(
        (s.stripe_customer.as_deref(), s.stripe_subscription.as_deref()),
        (Some("cus_1"), Some("sub_1"))
    );
    assert_eq!(t.platform.plan_of(&org).await.unwrap().name, "pro");

    // Found by its subscription id; the plan from metadata.plan.
    let updated = json!({
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
        "current_period_end": now + 30 * 86_400, "metadata": { "plan": "team" },
        "items": { "data": [{ "price": { "id": "price_unknown" } }] },
    });
    let s = applied(
        t.platform
            .apply_stripe_event(&event("evt_2", "customer.subscription.updated", now + 1, updated))
            .await
            .unwrap(),
    );
    assert_eq!((s.plan.as_str(), s.status.as_str()), ("team", "active"));
    assert_eq!(s.current_period_end, Some((now + 30 * 86_400) * 1000));

    let invoice = json!({ "id": "in_1", "object": "invoice", "customer": "cus_1", "subscription": "sub_1" });
    let s = applied(
        t.platform
            .apply_stripe_event(&event("evt_3", "invoice.payment_failed", now + 2, invoice))
            .await
            .unwrap(),
    );
    assert_eq!((s.plan.as_str(), s.status.as_str()), ("team", "past_due"));
    assert_eq!(
        t.platform.plan_of(&org).await.unwrap().name,
        "team",
        "past due keeps the plan while Stripe retries"
    );

    let deleted =
        json!({ "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "canceled" });
    let s = applied(
        t.platform
            .apply_stripe_event(&event("evt_4", "customer.subscription.deleted", now + 3, deleted))
            .await
            .unwrap(),
    );
    assert_eq!((s.plan.as_str(), s.status.as_str()), ("free", "canceled"));
    assert_eq!(t.platform.plan_of(&org).await.unwrap().name, "free");

    let page = ledge_platform::PageRequest::parse(None, Some("100")).unwrap();
    let log = t.platform.audit_log(&acme, &page).await.unwrap();
    let changes = log.items.iter().filter(|e| e.action == "billing.subscription_changed").count();
    assert_eq!(changes, 4);
}

#[tokio::test]
async fn a_replayed_or_late_event_changes_nothing_and_a_bad_one_records_nothing() {
    let t = platform_with(lenient()).await;
    let (acme, _) = owner(&t).await;
    let org = acme.org.id.clone();
    let now = t.clock_seconds();
    let first = checkout("evt_1", &org, "pro", now);
    t.platform.apply_stripe_event(&first).await.unwrap();
    let deleted = json!({ "id": "sub_1", "customer": "cus_1", "status": "canceled" });
    t.platform
        .apply_stripe_event(&event("evt_2", "customer.subscription.deleted", now + 5, deleted))
        .await
        .unwrap();

    assert_eq!(t.platform.apply_stripe_event(&first).await.unwrap(), StripeOutcome::Duplicate);
    // The same change under a new id, created before the last one applied: recorded, not applied.
    let late = checkout("evt_0", &org, "team", now + 1);
    assert_eq!(
        t.platform.apply_stripe_event(&late).await.unwrap(),
        StripeOutcome::Stale { org_id: org.clone() }
    );
    let s = t.platform.subscription(&org).await.unwrap();
    assert_eq!((s.plan.as_str(), s.status.as_str()), ("free", "canceled"));

    // Refused by field, and not recorded: the same id applies once fixed.
    let field = |e: PlatformError| match e {
        PlatformError::Invalid { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let bad = checkout("evt_9", &org, "platinum", now + 10);
    assert_eq!(field(t.platform.apply_stripe_event(&bad).await.unwrap_err()), "data.object.metadata.plan");
    let unnamed =
        event("evt_9", "checkout.session.completed", now + 10, json!({ "metadata": { "plan": "pro" } }));
    assert_eq!(
        field(t.platform.apply_stripe_event(&unnamed).await.unwrap_err()),
        "data.object.client_reference_id"
    );
    assert_eq!(field(t.platform.apply_stripe_event(b"[1]").await.unwrap_err()), "id");
    let good = checkout("evt_9", &org, "pro", now + 10);
    assert!(matches!(t.platform.apply_stripe_event(&good).await.unwrap(), StripeOutcome::Applied { .. }));

    // Unknown types are ignored; an unknown subscription or organization is not found.
    let other = event("evt_x", "customer.created", now, json!({ "id": "cus_2" }));
    assert_eq!(t.platform.apply_stripe_event(&other).await.unwrap(), StripeOutcome::Ignored);
    let stranger = json!({ "id": "sub_404", "customer": "cus_404", "status": "active" });
    let stranger = event("evt_y", "customer.subscription.updated", now, stranger);
    assert!(matches!(t.platform.apply_stripe_event(&stranger).await, Err(PlatformError::NotFound(_))));
    let nowhere = checkout("evt_z", "no-such-org", "pro", now);
    assert!(matches!(t.platform.apply_stripe_event(&nowhere).await, Err(PlatformError::NotFound(_))));
}

impl TestPlatform {
    fn clock_seconds(&self) -> i64 {
        self.platform.options().clock.now_ms() / 1000
    }
}

#[tokio::test]
async fn requests_at_once_never_pass_the_quota_together() {
    let t = platform_with(lenient()).await;
    let (acme, _) = owner(&t).await;
    let mut pending: Vec<_> =
        (0..80).map(|_| Some(Box::pin(t.platform.meter(&acme.org.id, Quota::ChatMessages)))).collect();
    let mut results = Vec::new();
    // All 80 polled together (the store's connections interleave them), like a join_all.
    std::future::poll_fn(|cx| {
        for slot in pending.iter_mut() {
            if let Some(future) = slot
                && let std::task::Poll::Ready(result) = future.as_mut().poll(cx)
            {
                results.push(result);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    let passed = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 50, "the free plan's 50 chat messages, no more");
    assert_eq!(t.platform.billing(&acme).await.unwrap().usage.chat_messages_today, 50);
}
