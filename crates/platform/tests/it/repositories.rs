//! Repositories: connected per organization, secrets sealed at rest, fields checked by name.

use ledge_auth::{Scope, Scopes, SealingKeys};
use ledge_platform::{
    Access, IndexRemoval, NewRepository, PageRequest, PlatformError, Principal, RemovedRepository,
    RepositoryChange, RepositorySecrets,
};

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{
    SEALING_KEYS, TestPlatform, lenient, platform_options, platform_sealing, platform_with,
};

/// Ada owns acme and other; answers her access to each.
async fn owner(t: &TestPlatform) -> (Principal, Access, Access) {
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let Principal::User { user, .. } = &ada else { panic!() };
    let acme = t.platform.create_organization(user, "Acme", None).await.unwrap().organization.id;
    let other = t.platform.create_organization(user, "Other", None).await.unwrap().organization.id;
    let acme = t.platform.access(&ada, &acme).await.unwrap();
    let other = t.platform.access(&ada, &other).await.unwrap();
    (ada, acme, other)
}

fn hello() -> NewRepository<'static> {
    NewRepository { git_url: "https://github.com/Octo/Hello.git", ..NewRepository::default() }
}

fn field_of(error: PlatformError) -> &'static str {
    match error {
        PlatformError::Invalid { field, .. } => field,
        PlatformError::Conflict { field: Some(field), .. } => field,
        PlatformError::NotConfigured { field, .. } => field,
        other => panic!("not a field error: {other:?}"),
    }
}

#[tokio::test]
async fn a_connected_repository_is_named_from_its_url_and_found_only_in_its_organization() {
    let t = platform_with(lenient()).await;
    let (ada, acme, other) = owner(&t).await;
    let repo = t.platform.connect_repository(&acme, &hello()).await.unwrap();
    assert_eq!(repo.name, "octo/hello");
    assert_eq!(repo.default_branch, "main");
    assert!(!repo.has_webhook_secret && !repo.has_access_token);
    assert_eq!(t.platform.repository(&acme, &repo.id).await.unwrap(), repo);

    // Another organization of the same user does not see it.
    assert!(matches!(
        t.platform.repository(&other, &repo.id).await,
        Err(PlatformError::NotFound("repository"))
    ));
    let (found, _) = t.platform.repository_access(&ada, &repo.id).await.unwrap();
    assert_eq!(found.org.id, acme.org.id);

    // Neither does a stranger, nor a key of the other organization: the same 404 as no repository.
    let bob = t.account("bob@example.com").await;
    let bob = t.principal(&bob).await;
    assert!(matches!(
        t.platform.repository_access(&bob, &repo.id).await,
        Err(PlatformError::NotFound("repository"))
    ));
    let (_, secret) =
        t.platform.create_api_key(&other, "ci", Scopes::of(&[Scope::ReposRead]), None).await.unwrap();
    let key = t.platform.authenticate(format!("Bearer {secret}").as_bytes()).await.unwrap();
    assert!(matches!(
        t.platform.repository_access(&key, &repo.id).await,
        Err(PlatformError::NotFound("repository"))
    ));
    assert!(matches!(t.platform.repository_access(&bob, "nope").await, Err(PlatformError::NotFound(_))));

    // The same key twice in one organization conflicts; in another it is fine.
    let again =
        NewRepository { git_url: "https://gitlab.example.com/x/y", name: Some("OCTO/hello"), ..hello() };
    assert_eq!(field_of(t.platform.connect_repository(&acme, &again).await.unwrap_err()), "name");
    t.platform.connect_repository(&other, &hello()).await.unwrap();

    let page = t.platform.repositories(&acme, &PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items, vec![repo]);
}

#[tokio::test]
async fn bad_fields_are_refused_by_name() {
    let t = platform_with(lenient()).await;
    let (_, acme, _) = owner(&t).await;
    let cases: &[(NewRepository, &str)] = &[
        (NewRepository { git_url: "", ..hello() }, "git_url"),
        (NewRepository { git_url: "http://github.com/octo/hello", ..hello() }, "git_url"),
        (NewRepository { git_url: "git@github.com:octo/hello.git", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://user:pw@github.com/octo/hello", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com/", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://-/octo/hello", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com:x/octo/hello", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com/octo/x@y", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com/octo/hel lo", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com/octo/hello?x=1", ..hello() }, "git_url"),
        (NewRepository { git_url: "https://github.com/hello", ..hello() }, "name"),
        (NewRepository { name: Some("no-slash"), ..hello() }, "name"),
        (NewRepository { name: Some("a/b/c"), ..hello() }, "name"),
        (NewRepository { name: Some("octo/.."), ..hello() }, "name"),
        (NewRepository { default_branch: Some(""), ..hello() }, "default_branch"),
        (NewRepository { default_branch: Some("a..b"), ..hello() }, "default_branch"),
        (NewRepository { default_branch: Some("-x"), ..hello() }, "default_branch"),
        (NewRepository { default_branch: Some("x.lock"), ..hello() }, "default_branch"),
        (NewRepository { default_branch: Some("has space"), ..hello() }, "default_branch"),
        (NewRepository { webhook_secret: Some(""), ..hello() }, "webhook_secret"),
        (NewRepository { access_token: Some("a\nb"), ..hello() }, "access_token"),
    ];
    for (new, field) in cases {
        let error = t.platform.connect_repository(&acme, new).await.unwrap_err();
        assert_eq!(field_of(error), *field, "{new:?}");
    }
    for url in [
        "https://git.example.com:8443/a/b.git",
        "https://[2001:db8::1]/a/b",
        "https://git.example.com/team/a/b",
    ] {
        let new = NewRepository { git_url: url, name: Some("x/y"), ..hello() };
        let repo = t.platform.connect_repository(&acme, &new).await.unwrap();
        t.platform.disconnect_repository(&acme, &repo.id).await.unwrap();
    }
    let fine = NewRepository { default_branch: Some("release/1.x"), ..hello() };
    assert_eq!(t.platform.connect_repository(&acme, &fine).await.unwrap().default_branch, "release/1.x");
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_open_only_for_their_record() {
    let t = platform_with(lenient()).await;
    let (_, acme, _) = owner(&t).await;
    let new =
        NewRepository { webhook_secret: Some("whsec-plain"), access_token: Some("ghp_plain"), ..hello() };
    let repo = t.platform.connect_repository(&acme, &new).await.unwrap();
    assert!(repo.has_webhook_secret && repo.has_access_token);
    let json = serde_json::to_string(&repo).unwrap();
    assert!(!json.contains("plain"), "{json}");

    let (webhook, token) = t.platform.stored_repository_secrets(&repo.id).await.unwrap();
    let (webhook, token) = (webhook.unwrap(), token.unwrap());
    assert!(webhook.starts_with("v1.s1.") && !webhook.contains("plain"), "{webhook}");
    assert!(token.starts_with("v1.s1.") && !token.contains("plain"), "{token}");
    let keys = SealingKeys::parse_list(SEALING_KEYS).unwrap();
    // Sealed for its record and field: the token's text does not open as the webhook secret.
    assert!(keys.open(&token, &format!("repository/{}/{}/webhook_secret", acme.org.id, repo.id)).is_err());

    let secrets = t.platform.repository_secrets(&acme, &repo.id).await.unwrap();
    assert_eq!(
        secrets,
        RepositorySecrets {
            webhook_secret: Some("whsec-plain".into()),
            access_token: Some("ghp_plain".into())
        }
    );
    assert!(!format!("{secrets:?}").contains("plain"));

    // Changing one secret leaves the other; null removes.
    let change = RepositoryChange { access_token: Some(Some("ghp_new")), ..RepositoryChange::default() };
    t.platform.update_repository(&acme, &repo.id, &change).await.unwrap();
    let secrets = t.platform.repository_secrets(&acme, &repo.id).await.unwrap();
    assert_eq!(secrets.webhook_secret.as_deref(), Some("whsec-plain"));
    assert_eq!(secrets.access_token.as_deref(), Some("ghp_new"));
    let change = RepositoryChange { webhook_secret: Some(None), ..RepositoryChange::default() };
    let updated = t.platform.update_repository(&acme, &repo.id, &change).await.unwrap();
    assert!(!updated.has_webhook_secret && updated.has_access_token);
}

#[tokio::test]
async fn without_an_encryption_key_secrets_are_refused_but_plain_repositories_connect() {
    let t = platform_sealing(lenient(), None).await;
    let (_, acme, _) = owner(&t).await;
    let new = NewRepository { access_token: Some("ghp_plain"), ..hello() };
    let error = t.platform.connect_repository(&acme, &new).await.unwrap_err();
    assert!(matches!(error, PlatformError::NotConfigured { field: "access_token", .. }), "{error:?}");
    let repo = t.platform.connect_repository(&acme, &hello()).await.unwrap();
    assert_eq!(
        t.platform.repository_secrets(&acme, &repo.id).await.unwrap(),
        RepositorySecrets { webhook_secret: None, access_token: None }
    );
}

#[tokio::test]
async fn updates_change_named_fields_and_disconnecting_is_audited() {
    let t = platform_with(lenient()).await;
    let (_, acme, other) = owner(&t).await;
    let repo = t.platform.connect_repository(&acme, &hello()).await.unwrap();
    let change = RepositoryChange {
        git_url: Some("https://git.example.com/octo/hello"),
        default_branch: Some("develop"),
        ..RepositoryChange::default()
    };
    let updated = t.platform.update_repository(&acme, &repo.id, &change).await.unwrap();
    assert_eq!(
        (updated.git_url.as_str(), updated.default_branch.as_str(), updated.name.as_str()),
        ("https://git.example.com/octo/hello", "develop", "octo/hello")
    );
    let nothing = t.platform.update_repository(&acme, &repo.id, &RepositoryChange::default()).await;
    assert_eq!(field_of(nothing.unwrap_err()), "body");
    let bad = RepositoryChange { default_branch: Some("a b"), ..RepositoryChange::default() };
    assert_eq!(
        field_of(t.platform.update_repository(&acme, &repo.id, &bad).await.unwrap_err()),
        "default_branch"
    );
    assert!(matches!(
        t.platform.update_repository(&other, &repo.id, &change).await,
        Err(PlatformError::NotFound(_))
    ));
    assert!(matches!(
        t.platform.disconnect_repository(&other, &repo.id).await,
        Err(PlatformError::NotFound(_))
    ));

    let removed = t.platform.disconnect_repository(&acme, &repo.id).await.unwrap();
    assert_eq!(removed.name, "octo/hello");
    assert!(matches!(t.platform.repository(&acme, &repo.id).await, Err(PlatformError::NotFound(_))));
    assert!(matches!(
        t.platform.disconnect_repository(&acme, &repo.id).await,
        Err(PlatformError::NotFound(_))
    ));

    let log = t.platform.audit_log(&acme, &PageRequest::first(100)).await.unwrap();
    let actions: Vec<(&str, Option<&str>)> = log
        .items
        .iter()
        .filter(|e| e.action.starts_with("repository."))
        .map(|e| (e.action.as_str(), e.detail.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("repository.connected", Some("octo/hello")),
            ("repository.updated", Some("git_url,default_branch")),
            ("repository.removed", Some("octo/hello")),
        ]
    );
    // Reconnecting after a disconnect is allowed.
    t.platform.connect_repository(&acme, &hello()).await.unwrap();
}

#[tokio::test]
async fn repository_lists_page_by_cursor_without_repeats() {
    let t = platform_with(lenient()).await;
    let (_, acme, _) = owner(&t).await;
    for i in 0..7 {
        let url = format!("https://github.com/octo/repo{i}");
        t.platform
            .connect_repository(&acme, &NewRepository { git_url: &url, ..NewRepository::default() })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = t.platform.repositories(&acme, &page).await.unwrap();
        seen.extend(got.items.iter().map(|r| r.name.clone()));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::parse(Some(&cursor), Some("3")).unwrap(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("octo/repo{i}")).collect();
    assert_eq!(seen, expected);
}

/// Records the repositories it is asked to remove; fails while `failing` is set.
#[derive(Debug, Default)]
struct Removals {
    removed: Mutex<Vec<RemovedRepository>>,
    failing: AtomicBool,
}

impl IndexRemoval for Removals {
    fn remove<'a>(
        &'a self,
        repositories: &'a [RemovedRepository],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            if self.failing.load(Ordering::SeqCst) {
                return Err("the queue is down".to_string());
            }
            self.removed.lock().unwrap().extend_from_slice(repositories);
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_purged_organization_gives_its_slug_back_only_once_its_repositories_index_removal_is_queued() {
    let removals = Arc::new(Removals { failing: AtomicBool::new(true), ..Removals::default() });
    let t = platform_options(lenient(), None, Some(removals.clone())).await;
    let (ada, acme, _) = owner(&t).await;
    t.platform.connect_repository(&acme, &hello()).await.unwrap();
    t.platform.delete_organization(&acme).await.unwrap();
    t.advance(Duration::from_secs(31 * 24 * 3600));
    let Principal::User { user, .. } = &ada else { panic!() };

    // The removal fails: acme is not purged, its slug stays taken.
    assert_eq!(t.platform.purge_deleted_organizations().await.unwrap(), 0);
    let taken = t.platform.create_organization(user, "Acme", Some("acme")).await.unwrap_err();
    assert!(matches!(taken, PlatformError::Conflict { field: Some("slug"), .. }), "{taken:?}");

    removals.failing.store(false, Ordering::SeqCst);
    let again = t.platform.create_organization(user, "Acme", Some("acme")).await.unwrap();
    assert_eq!(
        *removals.removed.lock().unwrap(),
        [RemovedRepository { org_slug: "acme".into(), name: "octo/hello".into() }]
    );
    let access = t.platform.access(&ada, &again.organization.id).await.unwrap();
    assert!(t.platform.repositories(&access, &PageRequest::first(10)).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn without_an_index_removal_organizations_with_repositories_are_not_purged() {
    let t = platform_options(lenient(), None, None).await;
    let (ada, acme, other) = owner(&t).await;
    t.platform.connect_repository(&acme, &hello()).await.unwrap();
    t.platform.delete_organization(&acme).await.unwrap();
    t.platform.delete_organization(&other).await.unwrap();
    t.advance(Duration::from_secs(31 * 24 * 3600));
    assert_eq!(
        t.platform.purge_deleted_organizations().await.unwrap(),
        1,
        "only the one without repositories"
    );
    let Principal::User { user, .. } = &ada else { panic!() };
    assert!(t.platform.create_organization(user, "Acme", Some("acme")).await.is_err());
    t.platform.create_organization(user, "Other", Some("other")).await.unwrap();
}

mod properties {
    use ledge_platform::PlatformError;
    use ledge_platform::repositories::{check_branch, check_git_url, check_repository_name};
    use proptest::prelude::*;

    /// `Ok` values pass their check again unchanged; errors name `field`.
    fn stable(
        check: fn(&str) -> Result<String, PlatformError>,
        field: &str,
        text: &str,
    ) -> Result<(), TestCaseError> {
        match check(text) {
            Ok(value) => prop_assert_eq!(check(&value).ok(), Some(value)),
            Err(PlatformError::Invalid { field: named, .. }) => prop_assert_eq!(named, field),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_is_a_checked_value_or_a_field_error(text in "\\PC{0,80}") {
            stable(check_git_url, "git_url", &text)?;
            stable(check_branch, "default_branch", &text)?;
            stable(check_repository_name, "name", &text)?;
        }

        #[test]
        fn near_urls_and_names_are_checked_or_refused(
            url in "(https?://)?([a-z0-9.@:-]{0,20})(/[A-Za-z0-9._@?#-]{0,12}){0,4}",
            name in "[A-Za-z0-9._/-]{0,30}",
        ) {
            stable(check_git_url, "git_url", &url)?;
            stable(check_repository_name, "name", &name)?;
            stable(check_branch, "default_branch", &name)?;
            if let Ok(url) = check_git_url(&url) {
                prop_assert!(url.starts_with("https://") && !url.contains('@'));
            }
        }
    }
}
