//! The authorization matrix: every route of the router × every kind of caller → the expected
//! status, from one table. A route the router serves that has no row fails the test, so a new
//! route cannot ship without saying who may call it.
//!
//! Callers, in column order: anonymous, a member of another organization, an API key of the
//! organization without the route's scope (only `chat:write`), one with every scope, then the
//! organization's member, admin and owner. Rows run in table order and columns left to right, so
//! the destructive rows (delete, restore, logout) come last.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::{TestApp, app};
use crate::tenants::{PASSWORD, Tenants};

const CALLERS: [&str; 7] =
    ["anonymous", "outsider", "key without scope", "key with scope", "member", "admin", "owner"];

/// What a request's path and body are made of.
#[derive(Clone, Copy)]
enum Fill {
    /// The path as written (`{org}`, `{member}` replaced), no body.
    Plain,
    /// With a JSON body; `{n}` in it is replaced by a counter.
    Body(&'static str),
    /// `{id}` is a key the owner creates just before the request.
    FreshKey,
    /// `{id}` is an invitation the owner creates just before the request.
    FreshInvitation,
    /// `{id}` is a repository the owner connects just before the request; the body, if not empty.
    FreshRepository(&'static str),
}

pub(crate) struct Row {
    pub(crate) method: &'static str,
    /// The route as registered in the router.
    pub(crate) route: &'static str,
    /// The path requested.
    path: &'static str,
    fill: Fill,
    /// Statuses in [`CALLERS`] order; 0: let through, then waits for the indexing pipeline of the
    /// queue consumers, which this test does not run (not probed; the `ledge` e2e tests cover it).
    pub(crate) expect: [u16; 7],
}

const fn row(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    fill: Fill,
    statuses: [u16; 7],
) -> Row {
    Row { method, route, path, fill, expect: statuses }
}

const fn same(method: &'static str, route: &'static str, status: u16) -> Row {
    row(method, route, route, Fill::Plain, [status; 7])
}

#[rustfmt::skip]
pub(crate) const TABLE: &[Row] = &[
    //                                                                                       anon  out   key-  key+  mem   adm   own
    same("GET", "/health", 200),
    same("GET", "/health/modules", 200),
    same("GET", "/metrics", 200),
    same("POST", "/webhooks/github", 401),
    row("GET", "/search", "/search?q=parse&org=acme", Fill::Plain,                           [401, 404, 403, 200, 200, 200, 200]),
    row("POST", "/search", "/search", Fill::Body(r#"{"q":"parse","org":"acme"}"#),          [401, 404, 403, 200, 200, 200, 200]),
    row("POST", "/repositories", "/repositories", Fill::Body(r#"{"org":"acme","git_url":"https://github.com/acme/r{n}"}"#), [401, 404, 403, 201, 403, 201, 201]),
    row("GET", "/repositories", "/repositories?org=acme", Fill::Plain,                       [401, 404, 403, 200, 200, 200, 200]),
    row("GET", "/repositories/{id}", "/repositories/{id}", Fill::FreshRepository(""),        [401, 404, 403, 200, 200, 200, 200]),
    row("PATCH", "/repositories/{id}", "/repositories/{id}", Fill::FreshRepository(r#"{"default_branch":"develop"}"#), [401, 404, 403, 200, 403, 200, 200]),
    row("DELETE", "/repositories/{id}", "/repositories/{id}", Fill::FreshRepository(""),     [401, 404, 403, 202, 403, 202, 202]),
    row("POST", "/repositories/{id}/reindex", "/repositories/{id}/reindex", Fill::FreshRepository(""), [401, 404, 403, 202, 403, 202, 202]),
    // 0: let through, then waits for the indexing pipeline (not probed).
    row("GET", "/repositories/{id}/index-status", "/repositories/acme%2Fhello/index-status", Fill::Plain, [401, 404, 403, 0, 0, 0, 0]),
    row("GET", "/repositories/{id}/index-status/stream", "/repositories/acme%2Fhello/index-status/stream", Fill::Plain, [401, 404, 403, 0, 0, 0, 0]),
    same("GET", "/billing/plans", 200),
    same("POST", "/webhooks/stripe", 401),
    row("GET", "/organizations/{org}/billing", "/organizations/{org}/billing", Fill::Plain,   [401, 404, 403, 200, 403, 200, 200]),
    same("ANY", "/chat", 501),
    same("ANY", "/chat/{*rest}", 501),
    same("ANY", "/bug-reports", 501),
    same("ANY", "/bug-reports/{*rest}", 501),
    same("ANY", "/analytics", 501),
    same("ANY", "/analytics/{*rest}", 501),
    same("GET", "/openapi.json", 200),
    row("POST", "/auth/signup", "/auth/signup", Fill::Body(r#"{"email":"new{n}@example.com","password":"PASSWORD"}"#), [202, 202, 202, 202, 202, 202, 202]),
    row("POST", "/auth/login", "/auth/login", Fill::Body(r#"{"email":"nobody{n}@example.com","password":"PASSWORD"}"#), [401, 401, 401, 401, 401, 401, 401]),
    row("POST", "/auth/refresh", "/auth/refresh", Fill::Body(r#"{"refresh_token":"ledge_rt_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#), [401, 401, 401, 401, 401, 401, 401]),
    row("GET", "/auth/me", "/auth/me", Fill::Plain,                                          [401, 200, 200, 200, 200, 200, 200]),
    row("POST", "/organizations", "/organizations", Fill::Body(r#"{"name":"New {n}"}"#),      [401, 201, 403, 403, 201, 201, 201]),
    row("GET", "/organizations", "/organizations", Fill::Plain,                               [401, 200, 403, 403, 200, 200, 200]),
    row("GET", "/organizations/{org}", "/organizations/{org}", Fill::Plain,                   [401, 404, 200, 200, 200, 200, 200]),
    row("PATCH", "/organizations/{org}", "/organizations/{org}", Fill::Body(r#"{"name":"Acme"}"#), [401, 404, 403, 200, 403, 200, 200]),
    row("GET", "/organizations/{org}/members", "/organizations/{org}/members", Fill::Plain,   [401, 404, 403, 200, 200, 200, 200]),
    row("PATCH", "/organizations/{org}/members/{user}", "/organizations/{org}/members/{member}", Fill::Body(r#"{"role":"member"}"#), [401, 404, 403, 200, 403, 200, 200]),
    row("DELETE", "/organizations/{org}/members/{user}", "/organizations/{org}/members/nobody", Fill::Plain, [401, 404, 403, 404, 403, 404, 404]),
    row("POST", "/organizations/{org}/invitations", "/organizations/{org}/invitations", Fill::Body(r#"{"email":"invitee{n}@example.com","role":"member"}"#), [401, 404, 403, 201, 403, 201, 201]),
    row("GET", "/organizations/{org}/invitations", "/organizations/{org}/invitations", Fill::Plain, [401, 404, 403, 200, 403, 200, 200]),
    row("DELETE", "/organizations/{org}/invitations/{id}", "/organizations/{org}/invitations/{id}", Fill::FreshInvitation, [401, 404, 403, 204, 403, 204, 204]),
    row("POST", "/invitations/accept", "/invitations/accept", Fill::Body(r#"{"token":"ledge_inv_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#), [401, 404, 403, 403, 404, 404, 404]),
    row("GET", "/organizations/{org}/audit-log", "/organizations/{org}/audit-log", Fill::Plain, [401, 404, 403, 200, 403, 200, 200]),
    row("POST", "/organizations/{org}/api-keys", "/organizations/{org}/api-keys", Fill::Body(r#"{"name":"k{n}","scopes":["search:read"]}"#), [401, 404, 403, 201, 403, 201, 201]),
    row("GET", "/organizations/{org}/api-keys", "/organizations/{org}/api-keys", Fill::Plain, [401, 404, 403, 200, 403, 200, 200]),
    row("DELETE", "/organizations/{org}/api-keys/{id}", "/organizations/{org}/api-keys/{id}", Fill::FreshKey, [401, 404, 403, 204, 403, 204, 204]),
    // Each member's own preferences: an API key has none.
    row("GET", "/organizations/{org}/notifications", "/organizations/{org}/notifications", Fill::Plain, [401, 404, 403, 403, 200, 200, 200]),
    row("PUT", "/organizations/{org}/notifications", "/organizations/{org}/notifications", Fill::Body(r#"{"webhook_url":"https://93.184.215.14/hooks/{n}","events":["indexing.finished"]}"#), [401, 404, 403, 403, 200, 200, 200]),
    // Destructive, last: the owner deletes the organization (its keys stop working), restores it,
    // then everyone logs out.
    row("DELETE", "/organizations/{org}", "/organizations/{org}", Fill::Plain,                [401, 404, 403, 403, 403, 403, 204]),
    row("POST", "/organizations/{org}/restore", "/organizations/{org}/restore", Fill::Plain,  [401, 404, 401, 401, 404, 404, 200]),
    row("POST", "/auth/logout", "/auth/logout", Fill::Plain,                                  [401, 204, 403, 403, 204, 204, 204]),
];

/// The routes the router serves, read from its `Debug` output: axum 0.8 prints each path router
/// with the path of every route id (the fallback's own router comes after `fallback_router`).
pub(crate) fn registered_routes(app: &TestApp) -> BTreeSet<String> {
    // The routes built at start, then those built on first use.
    let lazy = ledge_api::lazy_routes(app.state.clone());
    let debug = format!("{:?}", app.router);
    let lazy_debug = format!("{lazy:?}");
    let mut routes = BTreeSet::new();
    for debug in [debug, lazy_debug] {
        let served = debug.split("fallback_router").next().unwrap_or_default();
        routes.extend(route_paths(served));
    }
    routes
}

/// The route templates in a router's `Debug` text.
fn route_paths(served: &str) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    let mut rest = served;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(open) = rest.find(": \"") else { break };
        let after = &rest[open + 3..];
        let Some(close) = after.find('"') else { break };
        let path = &after[..close];
        if path.starts_with('/') && !path.contains("__private__") {
            routes.insert(path.to_string());
        }
        rest = &after[close..];
    }
    routes
}

#[tokio::test]
async fn every_registered_route_has_a_row() {
    let app = app();
    let registered = registered_routes(&app);
    assert!(registered.contains("/health") && registered.contains("/organizations/{org}"), "{registered:?}");
    let in_table: BTreeSet<String> = TABLE.iter().map(|row| row.route.to_string()).collect();
    let missing: Vec<_> = registered.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&registered).collect();
    assert!(missing.is_empty(), "routes without a row in the authorization matrix: {missing:?}");
    assert!(stale.is_empty(), "rows for routes the router does not serve: {stale:?}");
}

fn token_of(t: &Tenants, caller: usize) -> Option<&str> {
    match caller {
        0 => None,
        1 => Some(&t.outsider),
        2 => Some(&t.key_without),
        3 => Some(&t.key_with),
        4 => Some(&t.member),
        5 => Some(&t.admin),
        _ => Some(&t.owner),
    }
}

async fn fresh_repository(app: &TestApp, t: &Tenants, n: usize) -> String {
    let body = json!({ "org": t.org, "git_url": format!("https://github.com/acme/fresh{n}") });
    let answer = app.post("/repositories", Some(&t.owner), body).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.json()["repository"]["id"].as_str().unwrap().to_string()
}

async fn fresh_invitation(app: &TestApp, t: &Tenants, n: usize) -> String {
    let path = format!("/organizations/{}/invitations", t.org);
    let body = json!({ "email": format!("fresh{n}@example.com"), "role": "member" });
    let answer = app.post(&path, Some(&t.owner), body).await;
    answer.json()["invitation"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_table_says() {
    let app = app();
    let t = app.tenants().await;
    let mut n = 0usize;
    let mut mismatches = Vec::new();
    let mut probed = 0;
    for row in TABLE {
        for (caller, want) in row.expect.iter().enumerate() {
            n += 1;
            if *want == 0 {
                continue;
            }
            let mut path =
                row.path.replace("{org}", &t.org).replace("{member}", &t.member_id).replace("{*rest}", "x/y");
            let mut body: Option<Value> = None;
            match row.fill {
                Fill::Plain => path = path.replace("{id}", "octo%2Fhello"),
                Fill::Body(text) => {
                    let text = text.replace("{n}", &n.to_string()).replace("PASSWORD", PASSWORD);
                    body = Some(serde_json::from_str(&text).unwrap());
                }
                Fill::FreshKey => {
                    path = path.replace("{id}", &app.api_key(&t.org, &t.owner, &["search:read"]).await.0)
                }
                Fill::FreshInvitation => path = path.replace("{id}", &fresh_invitation(&app, &t, n).await),
                Fill::FreshRepository(text) => {
                    path = path.replace("{id}", &fresh_repository(&app, &t, n).await);
                    if !text.is_empty() {
                        body = Some(serde_json::from_str(text).unwrap());
                    }
                }
            }
            let method = if row.method == "ANY" { "GET" } else { row.method };
            // Each request from its own address, so the per-address login limit does not interfere.
            let ip = [10, 2, (n / 250) as u8, (n % 250) as u8];
            let answer = app.call(method, &path, token_of(&t, caller), body, ip).await;
            probed += 1;
            if answer.status.as_u16() != *want {
                mismatches.push(format!(
                    "{} {} as {}: expected {want}, got {} {}",
                    row.method,
                    row.route,
                    CALLERS[caller],
                    answer.status.as_u16(),
                    String::from_utf8_lossy(&answer.body)
                ));
            } else if *want >= 400 {
                assert_eq!(
                    answer.content_type.as_deref(),
                    Some("application/problem+json"),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(probed > 200, "{probed}");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[tokio::test]
async fn methods_outside_the_table_answer_405() {
    let app = app();
    let t = app.tenants().await;
    let mut routes: Vec<(&str, &str)> = Vec::new();
    for row in TABLE {
        if !routes.iter().any(|(route, _)| *route == row.route) {
            routes.push((row.route, row.path));
        }
    }
    for (route, path) in routes {
        let methods: Vec<&str> = TABLE.iter().filter(|r| r.route == route).map(|r| r.method).collect();
        if methods.contains(&"ANY") {
            continue;
        }
        let path = path.replace("{org}", &t.org).replace("{member}", &t.member_id).replace("{id}", "x");
        assert!(!path.contains('{'), "{path}");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.contains(&method) {
                continue;
            }
            let answer = app.call(method, &path, Some(&t.owner), None, [10, 3, 0, 1]).await;
            assert_eq!(answer.status, 405, "{method} {route} is served but has no row");
        }
    }
}
