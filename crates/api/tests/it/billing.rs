//! Billing over HTTP: Stripe's webhook (signed, replayed, tampered, stale; each event type changes
//! the organization's subscription), the daily search quota answering 429 and a plan limit 402,
//! both naming the limit.

use axum::body::Body;
use axum::http::Request;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use ledge_api::{ApiError, Limits};
use ledge_auth::StripeVerifier;
use ledge_platform::PlatformError;
use serde_json::{Value, json};

use crate::harness::{Answer, JWT_KEYS, STRIPE_SECRET, TestApp, app, app_with};
use crate::tenants::LOCAL;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({ "id": id, "object": "event", "type": kind, "created": now(), "data": { "object": object } })
        .to_string()
}

impl TestApp {
    async fn stripe(&self, payload: &str, signature: Option<String>) -> Answer {
        let mut request = Request::post("/webhooks/stripe").header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        self.send(request.body(Body::from(payload.to_owned())).unwrap()).await
    }

    /// Sends `payload` signed now with the endpoint's secret.
    async fn signed(&self, payload: &str) -> Answer {
        let signature = StripeVerifier::new(STRIPE_SECRET.as_bytes()).sign(now(), payload.as_bytes());
        self.stripe(payload, Some(signature)).await
    }

    async fn billing(&self, org: &str, token: &str) -> Value {
        let answer =
            self.call("GET", &format!("/organizations/{org}/billing"), Some(token), None, LOCAL).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.json()
    }
}

/// The subscription's (plan, status) and the plan that applies.
fn plan_of(billing: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (
        text(&billing["subscription"]["plan"]),
        text(&billing["subscription"]["status"]),
        text(&billing["plan"]["name"]),
    )
}

#[tokio::test]
async fn each_stripe_event_type_changes_the_organizations_subscription() {
    let app = app();
    let t = app.tenants().await;
    let before = app.billing(&t.org, &t.owner).await;
    assert_eq!(plan_of(&before), ("free".into(), "active".into(), "free".into()));
    assert_eq!(before["plan"]["limits"]["searches_per_day"], 200);

    let checkout = json!({
        "id": "cs_1", "client_reference_id": t.org, "customer": "cus_1", "subscription": "sub_1",
        "metadata": { "plan": "pro" },
    });
    let answer = app.signed(&event("evt_1", "checkout.session.completed", checkout)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.json()["applied"], true);
    assert_eq!(plan_of(&app.billing(&t.org, &t.owner).await), ("pro".into(), "active".into(), "pro".into()));

    let updated = json!({
        "id": "sub_1", "customer": "cus_1", "status": "trialing", "metadata": { "plan": "team" },
    });
    app.signed(&event("evt_2", "customer.subscription.updated", updated)).await;
    assert_eq!(
        plan_of(&app.billing(&t.org, &t.owner).await),
        ("team".into(), "trialing".into(), "team".into())
    );

    let invoice = json!({ "id": "in_1", "customer": "cus_1", "subscription": "sub_1" });
    app.signed(&event("evt_3", "invoice.payment_failed", invoice)).await;
    assert_eq!(
        plan_of(&app.billing(&t.org, &t.owner).await),
        ("team".into(), "past_due".into(), "team".into())
    );

    let deleted = json!({ "id": "sub_1", "customer": "cus_1", "status": "canceled" });
    app.signed(&event("evt_4", "customer.subscription.deleted", deleted)).await;
    assert_eq!(
        plan_of(&app.billing(&t.org, &t.owner).await),
        ("free".into(), "canceled".into(), "free".into())
    );

    let ignored = app.signed(&event("evt_5", "customer.created", json!({ "id": "cus_2" }))).await;
    assert_eq!(ignored.json()["ignored"], true);
}

#[tokio::test]
async fn a_replayed_event_changes_nothing_and_a_tampered_or_stale_one_is_refused() {
    let app = app();
    let t = app.tenants().await;
    let checkout =
        json!({ "client_reference_id": t.org, "subscription": "sub_1", "metadata": { "plan": "pro" } });
    let payload = event("evt_1", "checkout.session.completed", checkout);
    let signature = StripeVerifier::new(STRIPE_SECRET.as_bytes()).sign(now(), payload.as_bytes());
    assert_eq!(app.stripe(&payload, Some(signature.clone())).await.json()["applied"], true);
    let deleted = json!({ "id": "sub_1", "status": "canceled" });
    app.signed(&event("evt_2", "customer.subscription.deleted", deleted)).await;

    // The very same request again, within the tolerance window: recognised by its id.
    let replay = app.stripe(&payload, Some(signature.clone())).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.json()["duplicate"], true);
    assert_eq!(plan_of(&app.billing(&t.org, &t.owner).await).0, "free");

    // The same event with the plan changed, under the old signature.
    let tampered = payload.replace("\"pro\"", "\"team\"");
    let answer = app.stripe(&tampered, Some(signature)).await;
    let problem = answer.problem(401, "invalid_signature");
    assert_eq!(problem["field"], "Stripe-Signature");
    assert_eq!(plan_of(&app.billing(&t.org, &t.owner).await).0, "free");

    // Signed six minutes ago.
    let fresh = event(
        "evt_3",
        "checkout.session.completed",
        json!({ "client_reference_id": t.org, "metadata": { "plan": "pro" } }),
    );
    let stale = StripeVerifier::new(STRIPE_SECRET.as_bytes()).sign(now() - 360, fresh.as_bytes());
    let problem = app.stripe(&fresh, Some(stale)).await.problem(401, "invalid_signature");
    assert!(problem["detail"].as_str().unwrap().contains("300 s"), "{problem}");

    // No signature, another secret, a malformed event.
    app.stripe(&fresh, None).await.problem(401, "invalid_signature");
    let other = StripeVerifier::new(b"whsec_other").sign(now(), fresh.as_bytes());
    app.stripe(&fresh, Some(other)).await.problem(401, "invalid_signature");
    let unknown_plan = event(
        "evt_4",
        "checkout.session.completed",
        json!({ "client_reference_id": t.org, "metadata": { "plan": "gold" } }),
    );
    let problem = app.signed(&unknown_plan).await.problem(400, "invalid_field");
    assert_eq!(problem["field"], "data.object.metadata.plan");
    assert_eq!(plan_of(&app.billing(&t.org, &t.owner).await).0, "free");
}

#[tokio::test]
async fn without_a_secret_the_stripe_webhook_is_not_configured() {
    let app = app_with(&[("LEDGE_JWT_KEYS", JWT_KEYS)], Limits::default());
    app.stripe("{}", Some("t=1,v1=00".into())).await.problem(503, "not_configured");
}

#[tokio::test]
async fn searches_past_the_daily_quota_answer_429_naming_it() {
    let app = app_with(
        &[
            ("LEDGE_JWT_KEYS", JWT_KEYS),
            ("LEDGE_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
            ("LEDGE_PLANS__FREE__SEARCHES_PER_DAY", "2"),
        ],
        Limits::default(),
    );
    let token = app.sign_in("searcher@example.com").await;
    let answer = app.post("/organizations", Some(&token), json!({ "name": "Acme", "slug": "acme" })).await;
    let org = answer.json()["id"].as_str().unwrap().to_string();
    let search = || app.call("GET", "/search?org=acme&q=parse", Some(&token), None, LOCAL);
    assert_eq!(search().await.status, 200);
    assert_eq!(search().await.status, 200);
    let refused = search().await;
    let problem = refused.problem(429, "quota_exceeded");
    assert_eq!(problem["field"], "searches_per_day");
    assert!(problem["detail"].as_str().unwrap().contains("free plan allows 2 searches_per_day"), "{problem}");
    assert_eq!(app.billing(&org, &token).await["usage"]["searches_today"], 2);

    // On pro (5,000 a day), searching goes on.
    let checkout = json!({ "client_reference_id": org, "metadata": { "plan": "pro" } });
    app.signed(&event("evt_1", "checkout.session.completed", checkout)).await;
    assert_eq!(search().await.status, 200);
}

#[tokio::test]
async fn a_429_carries_retry_after_and_a_plan_limit_is_a_402_naming_the_limit() {
    let quota = PlatformError::QuotaExceeded {
        quota: "searches_per_day",
        allowed: 2,
        plan: "free".into(),
        retry_after: std::time::Duration::from_millis(1500),
    };
    let response = ApiError::from(quota).into_response();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let limit = PlatformError::PlanLimit { limit: "repositories", allowed: 3, plan: "free".into() };
    let response = ApiError::from(limit).into_response();
    assert_eq!(response.status(), 402);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (problem["code"].as_str(), problem["field"].as_str()),
        (Some("plan_limit"), Some("repositories"))
    );
    assert_eq!(problem["detail"], "the free plan allows 3 repositories; upgrade the plan for more");
}

#[tokio::test]
async fn the_plans_are_public() {
    let app = app_with(&[("LEDGE_JWT_KEYS", JWT_KEYS)], Limits::default()); // the built-in plans
    let plans = app.get("/billing/plans").await.json();
    let names: Vec<_> =
        plans["plans"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["free", "pro", "team"]);
    assert_eq!(plans["plans"][0]["limits"]["repositories"], 3);
}
