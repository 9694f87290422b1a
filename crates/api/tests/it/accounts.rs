//! The platform over HTTP: sign-up, login, sessions, organizations, API keys — problem+json for
//! every refusal, no user enumeration, 429 with Retry-After, and no heavy module built.

use serde_json::json;

use crate::harness::{app, app_with};
use crate::tenants::{LOCAL, PASSWORD};

#[tokio::test]
async fn signup_login_me_and_logout() {
    let app = app();
    let token = app.sign_in("ada@example.com").await;
    let me = app.call("GET", "/auth/me", Some(&token), None, LOCAL).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["email"], "ada@example.com");
    let out = app.call("POST", "/auth/logout", Some(&token), None, LOCAL).await;
    assert_eq!(out.status, 204);
    app.call("GET", "/auth/me", Some(&token), None, LOCAL).await.problem(401, "unauthenticated");
    app.call("GET", "/auth/me", None, None, LOCAL).await.problem(401, "unauthenticated");
    for module in ["search", "chat", "bug-analysis", "analytics-enrichment", "webhooks"] {
        assert!(!app.loaded(module), "{module} was built by the platform routes");
    }
    assert!(app.loaded("auth"));
}

#[tokio::test]
async fn login_failures_do_not_tell_whether_the_account_exists() {
    let app = app();
    app.sign_in("ada@example.com").await;
    let wrong = app
        .post("/auth/login", None, json!({ "email": "ada@example.com", "password": "wrong password!" }))
        .await;
    let unknown =
        app.post("/auth/login", None, json!({ "email": "bob@example.com", "password": PASSWORD })).await;
    wrong.problem(401, "invalid_credentials");
    unknown.problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    // Signing up with a taken address answers exactly like a new one.
    let taken =
        app.post("/auth/signup", None, json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    let new =
        app.post("/auth/signup", None, json!({ "email": "carol@example.com", "password": PASSWORD })).await;
    assert_eq!((taken.status, &taken.body), (new.status, &new.body));
}

#[tokio::test]
async fn bad_fields_are_named_in_problem_json() {
    let app = app();
    let cases = [
        (json!({ "email": "nope", "password": PASSWORD }), "email"),
        (json!({ "email": "a@b.io", "password": "short" }), "password"),
        (json!({ "email": "a@b.io" }), "password"),
        (json!({ "email": "a@b.io", "password": 12 }), "password"),
        (json!({ "email": "a@b.io", "password": PASSWORD, "admin": true }), "admin"),
    ];
    for (body, field) in cases {
        let problem = app.post("/auth/signup", None, body.clone()).await.problem(400, "invalid_field");
        assert_eq!(problem["field"], field, "{body}");
    }
    let answer = app.call("POST", "/auth/login", None, None, LOCAL).await;
    assert_eq!(answer.problem(400, "invalid_json")["field"], "body");
}

#[tokio::test]
async fn repeated_login_failures_answer_429_with_retry_after() {
    let app = app();
    app.sign_in("ada@example.com").await;
    let mut last = None;
    for n in 0..6u8 {
        // From a different address each time: the account's own limit trips.
        let body = json!({ "email": "ada@example.com", "password": "wrong password!" });
        last = Some(app.call("POST", "/auth/login", None, Some(body), [10, 1, 0, n]).await);
    }
    let last = last.unwrap();
    last.problem(429, "rate_limited");
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        axum::http::Request::post("/auth/login")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({ "email": "ada@example.com", "password": PASSWORD }).to_string(),
            ))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn without_jwt_keys_the_platform_answers_not_configured() {
    let app = app_with(&[], ledge_api::Limits::default());
    let answer = app.post("/auth/login", None, json!({ "email": "a@b.io", "password": PASSWORD })).await;
    let problem = answer.problem(503, "not_configured");
    assert!(problem["detail"].as_str().unwrap().contains("LEDGE_JWT_KEYS"));
}

#[tokio::test]
async fn organizations_answer_404_to_outsiders_and_keys_stop_working_once_revoked() {
    let app = app();
    let t = app.tenants().await;
    let path = format!("/organizations/{}", t.org);
    assert_eq!(app.call("GET", &path, Some(&t.member), None, LOCAL).await.status, 200);
    app.call("GET", &path, Some(&t.outsider), None, LOCAL).await.problem(404, "not_found");
    let theirs = format!("/organizations/{}", t.other_org);
    app.call("GET", &theirs, Some(&t.key_with), None, LOCAL).await.problem(404, "not_found");
    app.call("PATCH", &path, Some(&t.member), Some(json!({ "name": "X" })), LOCAL)
        .await
        .problem(403, "forbidden");

    let (id, secret) = app.api_key(&t.org, &t.owner, &["search:read"]).await;
    let keys = app.call("GET", &format!("{path}/api-keys"), Some(&t.admin), None, LOCAL).await;
    assert_eq!(keys.status, 200);
    let listed = String::from_utf8(keys.body.to_vec()).unwrap();
    assert!(listed.contains(&id) && !listed.contains(&secret), "listed once, never the secret");
    assert_eq!(app.call("GET", &path, Some(&secret), None, LOCAL).await.status, 200);
    let revoked = app.call("DELETE", &format!("{path}/api-keys/{id}"), Some(&t.admin), None, LOCAL).await;
    assert_eq!(revoked.status, 204);
    app.call("GET", &path, Some(&secret), None, LOCAL).await.problem(401, "unauthenticated");

    // The last owner cannot step down.
    let me = app.call("GET", "/auth/me", Some(&t.owner), None, LOCAL).await.json();
    let owner_id = me["user"]["id"].as_str().unwrap();
    let body = json!({ "role": "admin" });
    let answer =
        app.call("PATCH", &format!("{path}/members/{owner_id}"), Some(&t.owner), Some(body), LOCAL).await;
    answer.problem(409, "last_owner");
    let answer = app
        .call(
            "PATCH",
            &format!("{path}/members/{}", t.member_id),
            Some(&t.admin),
            Some(json!({ "role": "boss" })),
            LOCAL,
        )
        .await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "role");
}

#[tokio::test]
async fn lists_page_with_cursors() {
    let app = app();
    let t = app.tenants().await;
    for _ in 0..3 {
        app.api_key(&t.org, &t.owner, &["search:read"]).await;
    }
    let mut ids = Vec::new();
    let mut path = format!("/organizations/{}/api-keys?limit=2", t.org);
    loop {
        let page = app.call("GET", &path, Some(&t.owner), None, LOCAL).await.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        ids.extend(items.iter().map(|k| k["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/organizations/{}/api-keys?limit=2&cursor={cursor}", t.org),
            None => break,
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (5, 5), "{ids:?}");
    let bad = format!("/organizations/{}/api-keys?cursor=%21%21", t.org);
    assert_eq!(
        app.call("GET", &bad, Some(&t.owner), None, LOCAL).await.problem(400, "invalid_field")["field"],
        "cursor"
    );
}

#[tokio::test]
async fn each_caller_is_rate_limited_with_retry_after() {
    let limits = ledge_api::Limits {
        caller_burst: 3,
        caller_refill: std::time::Duration::from_secs(30),
        ..ledge_api::Limits::default()
    };
    let app = app_with(&[("LEDGE_JWT_KEYS", crate::harness::JWT_KEYS)], limits);
    let ada = app.sign_in("ada@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.call("GET", "/auth/me", Some(&ada), None, LOCAL).await.status, 200);
    }
    app.call("GET", "/auth/me", Some(&ada), None, LOCAL).await.problem(429, "rate_limited");
    assert_eq!(
        app.call("GET", "/auth/me", Some(&bob), None, LOCAL).await.status,
        200,
        "callers are counted apart"
    );
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        axum::http::Request::get("/auth/me")
            .header("authorization", format!("Bearer {ada}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
}
