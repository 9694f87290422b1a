//! Repositories over HTTP: connecting queues an index job, secrets are accepted but never shown,
//! another organization's repository is 404, disconnecting queues the removal of its index, and
//! connect/disconnect are in the audit log.

use ledge_api::Limits;
use ledge_env::QueueBinding;
use ledge_indexing::{RepositoryJob, RepositoryTask};
use serde_json::{Value, json};

use crate::harness::{JWT_KEYS, SECRET, TestApp, app_with};
use crate::tenants::LOCAL;

const ENCRYPTION_KEY: &str = "e1:an-encryption-key-of-at-least-32-bytes";

fn app() -> TestApp {
    app_with(
        &[
            ("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET),
            ("LEDGE_JWT_KEYS", JWT_KEYS),
            ("LEDGE_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
        Limits::default(),
    )
}

async fn jobs(app: &TestApp) -> Vec<RepositoryJob> {
    let backend = app.state.env.queue_backend().await.unwrap();
    let messages = backend.peek(QueueBinding::RepositoryIndexing.name(), 1000).await.unwrap();
    messages.iter().map(|m| m.body.json().unwrap()).collect()
}

async fn connect(app: &TestApp, token: &str, body: Value) -> Value {
    let answer = app.call("POST", "/repositories", Some(token), Some(body), LOCAL).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.json()
}

#[tokio::test]
async fn connecting_keeps_secrets_out_of_answers_and_queues_the_first_index() {
    let app = app();
    let t = app.tenants().await;
    let body = json!({
        "org": "acme",
        "git_url": "https://github.com/Octo/Hello.git",
        "default_branch": "trunk",
        "webhook_secret": "whsec-do-not-show",
        "access_token": "ghp_do-not-show",
    });
    let answer = connect(&app, &t.admin, body).await;
    let text = answer.to_string();
    assert!(!text.contains("do-not-show"), "{text}");
    let repo = &answer["repository"];
    assert_eq!(repo["name"], "octo/hello");
    assert_eq!(repo["default_branch"], "trunk");
    assert_eq!(
        (repo["has_webhook_secret"].as_bool(), repo["has_access_token"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(answer["index_queued"], true);
    let id = repo["id"].as_str().unwrap();

    let jobs = jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].org.as_str(), jobs[0].repo.as_str()), ("acme", "octo/hello"));
    assert_eq!(
        jobs[0].task,
        RepositoryTask::Index {
            clone_url: "https://github.com/Octo/Hello.git".into(),
            commit: None,
            before: None
        }
    );

    // Members read it (by org slug or id), and so does a key with repos:read.
    let shown = app.call("GET", &format!("/repositories/{id}"), Some(&t.member), None, LOCAL).await;
    assert_eq!(shown.json(), *repo);
    for path in
        ["/repositories?org=acme".to_string(), format!("/repositories?org={}", t.org), "/repositories".into()]
    {
        let token = if path == "/repositories" { &t.key_with } else { &t.member };
        let listed = app.call("GET", &path, Some(token), None, LOCAL).await;
        assert_eq!(listed.status, 200, "{path}: {:?}", listed.body);
        assert_eq!(listed.json()["items"][0]["id"], id, "{path}");
        assert!(!String::from_utf8_lossy(&listed.body).contains("do-not-show"));
    }
}

#[tokio::test]
async fn bad_fields_are_named_in_problem_json() {
    let app = app();
    let t = app.tenants().await;
    let cases = [
        (json!({ "org": "acme" }), 400, "invalid_field", "git_url"),
        (json!({ "org": "acme", "git_url": "http://github.com/a/b" }), 400, "invalid_field", "git_url"),
        (json!({ "org": "acme", "git_url": "https://x:y@github.com/a/b" }), 400, "invalid_field", "git_url"),
        (json!({ "org": "acme", "git_url": 7 }), 400, "invalid_field", "git_url"),
        (
            json!({ "org": "acme", "git_url": "https://github.com/a/b", "default_branch": "a..b" }),
            400,
            "invalid_field",
            "default_branch",
        ),
        (
            json!({ "org": "acme", "git_url": "https://github.com/a/b", "name": "nope" }),
            400,
            "invalid_field",
            "name",
        ),
        (
            json!({ "org": "acme", "git_url": "https://github.com/a/b", "token": "x" }),
            400,
            "invalid_field",
            "token",
        ),
        (json!({ "git_url": "https://github.com/a/b" }), 400, "invalid_field", "org"),
        (json!({ "org": "nowhere", "git_url": "https://github.com/a/b" }), 404, "not_found", "org"),
    ];
    for (body, status, code, field) in cases {
        let answer = app.call("POST", "/repositories", Some(&t.owner), Some(body.clone()), LOCAL).await;
        assert_eq!(answer.problem(status, code)["field"], field, "{body}");
    }
    connect(&app, &t.owner, json!({ "org": "acme", "git_url": "https://github.com/a/b" })).await;
    let again = json!({ "org": "acme", "git_url": "https://gitlab.com/A/B" });
    let answer = app.call("POST", "/repositories", Some(&t.owner), Some(again), LOCAL).await;
    assert_eq!(answer.problem(409, "conflict")["field"], "name");
    let answer = app.call("GET", "/repositories?org=acme&limit=0", Some(&t.owner), None, LOCAL).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "limit");
    let answer = app.call("GET", "/repositories?org=acme&page=2", Some(&t.owner), None, LOCAL).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "page");
}

#[tokio::test]
async fn another_organizations_repository_is_not_found_whatever_the_route() {
    let app = app();
    let t = app.tenants().await;
    let answer =
        connect(&app, &t.owner, json!({ "org": "acme", "git_url": "https://github.com/acme/api" })).await;
    let id = answer["repository"]["id"].as_str().unwrap().to_string();
    let other =
        connect(&app, &t.outsider, json!({ "org": t.other_org, "git_url": "https://github.com/o/x" })).await;
    let theirs = other["repository"]["id"].as_str().unwrap().to_string();
    for (method, path, body) in [
        ("GET", format!("/repositories/{id}"), None),
        ("PATCH", format!("/repositories/{id}"), Some(json!({ "default_branch": "x" }))),
        ("DELETE", format!("/repositories/{id}"), None),
        ("POST", format!("/repositories/{id}/reindex"), None),
        ("GET", format!("/repositories/{id}/index-status"), None),
    ] {
        let answer = app.call(method, &path, Some(&t.outsider), body.clone(), LOCAL).await;
        answer.problem(404, "repository_not_found");
        let unknown = path.replace(&id, "0123456789abcdef");
        app.call(method, &unknown, Some(&t.owner), body, LOCAL).await.problem(404, "repository_not_found");
    }
    // Acme's key does not reach the other organization's repository either, nor list it.
    app.call("GET", &format!("/repositories/{theirs}"), Some(&t.key_with), None, LOCAL)
        .await
        .problem(404, "repository_not_found");
    let path = format!("/repositories?org={}", t.other_org);
    app.call("GET", &path, Some(&t.key_with), None, LOCAL).await.problem(404, "not_found");
    let listed = app.call("GET", "/repositories?org=acme", Some(&t.owner), None, LOCAL).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn updating_reindexing_and_disconnecting_queue_their_jobs_and_are_audited() {
    let app = app();
    let t = app.tenants().await;
    let answer =
        connect(&app, &t.owner, json!({ "org": "acme", "git_url": "https://github.com/acme/api" })).await;
    let id = answer["repository"]["id"].as_str().unwrap().to_string();
    let path = format!("/repositories/{id}");

    let change = json!({ "git_url": "https://git.example.com/acme/api.git", "access_token": "ghp_x" });
    let updated = app.call("PATCH", &path, Some(&t.admin), Some(change), LOCAL).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let updated = updated.json();
    assert_eq!(
        (updated["git_url"].as_str(), updated["has_access_token"].as_bool()),
        (Some("https://git.example.com/acme/api.git"), Some(true))
    );
    let cleared =
        app.call("PATCH", &path, Some(&t.admin), Some(json!({ "access_token": null })), LOCAL).await;
    assert_eq!(cleared.json()["has_access_token"], false);
    let answer = app.call("PATCH", &path, Some(&t.admin), Some(json!({ "name": "a/b" })), LOCAL).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "name");
    let answer = app.call("PATCH", &path, Some(&t.admin), Some(json!({})), LOCAL).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "body");

    let reindex = app.call("POST", &format!("{path}/reindex"), Some(&t.key_with), None, LOCAL).await;
    assert_eq!(reindex.status, 202, "{:?}", reindex.body);
    let removed = app.call("DELETE", &path, Some(&t.owner), None, LOCAL).await;
    assert_eq!(removed.status, 202, "{:?}", removed.body);
    assert_eq!(removed.json()["removed"]["name"], "acme/api");
    app.call("GET", &path, Some(&t.owner), None, LOCAL).await.problem(404, "repository_not_found");
    app.call("DELETE", &path, Some(&t.owner), None, LOCAL).await.problem(404, "repository_not_found");

    let tasks: Vec<(String, RepositoryTask)> =
        jobs(&app).await.into_iter().map(|j| (j.repo, j.task)).collect();
    let index = |url: &str| RepositoryTask::Index { clone_url: url.into(), commit: None, before: None };
    assert_eq!(
        tasks,
        [
            ("acme/api".to_string(), index("https://github.com/acme/api")),
            ("acme/api".to_string(), index("https://git.example.com/acme/api.git")),
            ("acme/api".to_string(), RepositoryTask::Remove),
        ]
    );

    let log =
        app.call("GET", &format!("/organizations/{}/audit-log", t.org), Some(&t.admin), None, LOCAL).await;
    let log = log.json();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("repository.")))
        .collect();
    assert_eq!(
        actions,
        ["repository.connected", "repository.updated", "repository.updated", "repository.removed"]
    );
    assert!(!log.to_string().contains("ghp_x"));
}

#[tokio::test]
async fn without_an_encryption_key_secrets_are_refused_by_field() {
    let app = crate::harness::app();
    let t = app.tenants().await;
    let body = json!({ "org": "acme", "git_url": "https://github.com/a/b", "webhook_secret": "s" });
    let answer = app.call("POST", "/repositories", Some(&t.owner), Some(body), LOCAL).await;
    assert_eq!(answer.problem(503, "not_configured")["field"], "webhook_secret");
    connect(&app, &t.owner, json!({ "org": "acme", "git_url": "https://github.com/a/b" })).await;
}

#[tokio::test]
async fn reindexing_an_organization_already_past_its_indexed_files_is_402_naming_the_limit() {
    use ledge_platform::{Plan, PlanLimits, Plans, RepositoryLedger};
    let app = app_with(
        &[
            ("LEDGE_JWT_KEYS", JWT_KEYS),
            ("LEDGE_ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("LEDGE_PLANS__FREE__INDEXED_FILES", "5"),
        ],
        Limits::default(),
    );
    let t = app.tenants().await;
    let answer =
        connect(&app, &t.owner, json!({ "org": "acme", "git_url": "https://github.com/acme/api" })).await;
    let reindex = format!("/repositories/{}/reindex", answer["repository"]["id"].as_str().unwrap());
    assert_eq!(app.call("POST", &reindex, Some(&t.admin), None, LOCAL).await.status, 202);

    // The organization holds 6 indexed files (metered under a plan without limit, then downgraded).
    let db = app.state.env.db().await.unwrap();
    let unlimited = Plan { name: "free".into(), limits: PlanLimits::default(), stripe_price: None };
    let ledger = RepositoryLedger::new(db.clone(), None, Plans::new(vec![unlimited]));
    ledger.admit_indexed_files("acme", "acme/api", 6).await.unwrap();
    let problem = app.call("POST", &reindex, Some(&t.admin), None, LOCAL).await.problem(402, "plan_limit");
    assert_eq!(problem["field"], "indexed_files");
    assert!(problem["detail"].as_str().unwrap().contains("allows 5 indexed_files"), "{problem}");
    let billing =
        app.call("GET", &format!("/organizations/{}/billing", t.org), Some(&t.owner), None, LOCAL).await;
    assert_eq!(billing.json()["usage"]["indexed_files"], 6, "{:?}", billing.body);

    ledger.forget_indexed_files("acme", "acme/api").await.unwrap();
    assert_eq!(app.call("POST", &reindex, Some(&t.admin), None, LOCAL).await.status, 202);
}
