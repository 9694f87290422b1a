//! Notification preferences: each member's own, per organization; target URLs checked, private
//! and loopback hosts refused unless the policy allows them.

use ledge_platform::notifications::{TargetPolicy, check_target_url, parse_target_url};
use ledge_platform::{NewPreferences, NotificationEvent, PlatformError, Principal};

use crate::support::{lenient, platform_with};

const STRICT: TargetPolicy = TargetPolicy { allow_private: false };
const OPEN: TargetPolicy = TargetPolicy { allow_private: true };

#[tokio::test]
async fn target_urls_must_be_http_to_a_public_host() {
    // (url, accepted by default?, reason words when refused)
    let table: &[(&str, bool, &str)] = &[
        ("https://93.184.215.14/hooks/1", true, ""),
        ("http://93.184.215.14:8080/hooks?x=1", true, ""),
        ("https://[2606:4700:4700::1111]/hook", true, ""),
        ("http://127.0.0.1/hook", false, "loopback"),
        ("http://127.1.2.3:9000/", false, "loopback"),
        ("http://localhost:8080/hook", false, "loopback"),
        ("http://api.localhost/hook", false, "loopback"),
        ("http://[::1]/hook", false, "loopback"),
        ("http://10.1.2.3/", false, "private"),
        ("http://172.16.0.9/", false, "private"),
        ("http://172.31.255.255/", false, "private"),
        ("http://192.168.1.10/", false, "private"),
        ("http://169.254.169.254/latest/meta-data", false, "link-local"),
        ("http://[fe80::1]/", false, "link-local"),
        ("http://[fd12:3456::1]/", false, "unique-local"),
        ("http://[fc00::1]/", false, "unique-local"),
        ("http://[::ffff:10.0.0.1]/", false, "private"),
        ("http://[::ffff:127.0.0.1]/", false, "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", false, "link-local"),
        ("http://0.0.0.0/", false, "unspecified"),
        // Other spellings of 127.0.0.1 that URL parsers accept.
        ("http://0x7f.1/", false, "loopback"),
        ("http://2130706433/", false, "loopback"),
        ("http://0177.0.0.1/", false, "loopback"),
        ("http://100.64.0.1/", false, "shared"),
        ("http://224.0.0.1/", false, "multicast"),
        ("ftp://93.184.215.14/x", false, "http"),
        ("file:///etc/passwd", false, "http"),
        ("javascript:alert(1)", false, "http"),
        ("https://user:secret@93.184.215.14/", false, "credentials"),
        ("https:///nohost", false, "host"),
        ("https://exa mple.com/", false, "spaces"),
        ("https://93.184.215.14:0/", false, "port"),
        ("https://93.184.215.14:99999/", false, "port"),
        ("", false, "bytes"),
    ];
    for (url, accepted, words) in table {
        match check_target_url("webhook_url", url, STRICT).await {
            Ok(target) => assert!(accepted, "{url} was accepted: {target:?}"),
            Err(PlatformError::Invalid { field, reason }) => {
                assert!(!accepted, "{url} was refused: {reason}");
                assert_eq!(field, "webhook_url");
                assert!(reason.contains(words), "{url}: {reason:?} does not say {words:?}");
            }
            Err(other) => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn private_targets_are_allowed_only_by_the_policy() {
    for url in
        ["http://127.0.0.1:8080/hook", "http://10.0.0.5/", "http://[fd00::1]:81/", "http://localhost/x"]
    {
        assert!(check_target_url("webhook_url", url, STRICT).await.is_err(), "{url}");
        assert!(check_target_url("webhook_url", url, OPEN).await.is_ok(), "{url}");
    }
    // The form is checked whatever the policy.
    assert!(check_target_url("webhook_url", "ftp://127.0.0.1/", OPEN).await.is_err());
    let target = parse_target_url("webhook_url", "HTTPS://Hooks.Example.COM/Path").unwrap();
    assert_eq!((target.https, target.host.as_str(), target.port), (true, "hooks.example.com", 443));
    assert_eq!(target.url, "HTTPS://Hooks.Example.COM/Path");
}

#[tokio::test]
async fn preferences_round_trip_per_member_and_organization() {
    let t = platform_with(lenient()).await;
    let ada = t.account("ada@example.com").await;
    let ada = t.principal(&ada).await;
    let bob = t.account("bob@example.com").await;
    let bob = t.principal(&bob).await;
    let (Principal::User { user: ada_user, .. }, Principal::User { user: bob_user, .. }) = (&ada, &bob)
    else {
        panic!("users")
    };
    let acme = t.platform.create_organization(ada_user, "Acme", None).await.unwrap().organization.id;
    let other = t.platform.create_organization(bob_user, "Other", None).await.unwrap().organization.id;
    let acme = t.platform.access(&ada, &acme).await.unwrap();

    let empty = t.platform.notification_preferences(&acme, &ada_user.id).await.unwrap();
    assert_eq!((empty.events.len(), empty.webhook_url, empty.updated_at), (0, None, None));

    let new = NewPreferences {
        email: Some(" Ada@Example.com "),
        webhook_url: Some("https://93.184.215.14/hooks/ledge"),
        slack_webhook_url: Some("https://93.184.215.15/services/T0/B0/x"),
        events: vec![
            NotificationEvent::IndexingFailed,
            NotificationEvent::IndexingFinished,
            NotificationEvent::IndexingFailed,
        ],
    };
    let saved = t.platform.set_notification_preferences(&acme, &ada_user.id, &new, STRICT).await.unwrap();
    assert_eq!(saved.email.as_deref(), Some("ada@example.com"));
    assert_eq!(saved.webhook_url.as_deref(), Some("https://93.184.215.14/hooks/ledge"));
    assert_eq!(saved.events, [NotificationEvent::IndexingFinished, NotificationEvent::IndexingFailed]);
    assert_eq!(t.platform.notification_preferences(&acme, &ada_user.id).await.unwrap(), saved);

    // Replacing clears what is not given.
    let only_slack = NewPreferences {
        slack_webhook_url: Some("https://93.184.215.15/services/T0/B0/y"),
        events: vec![NotificationEvent::UsageLimitReached],
        ..NewPreferences::default()
    };
    let replaced =
        t.platform.set_notification_preferences(&acme, &ada_user.id, &only_slack, STRICT).await.unwrap();
    assert_eq!((replaced.email, replaced.webhook_url), (None, None));
    assert_eq!(replaced.events, [NotificationEvent::UsageLimitReached]);

    // Bob has his own (none) in acme once he is a member, and ada none in his organization.
    assert!(matches!(t.platform.access(&ada, &other).await, Err(PlatformError::NotFound(_))));
    assert_eq!(t.platform.notification_preferences(&acme, &bob_user.id).await.unwrap().events, []);

    // A bad field is named and nothing changes.
    let private = NewPreferences { webhook_url: Some("http://192.168.0.1/"), ..NewPreferences::default() };
    let refused = t.platform.set_notification_preferences(&acme, &ada_user.id, &private, STRICT).await;
    assert!(matches!(refused, Err(PlatformError::Invalid { field: "webhook_url", .. })), "{refused:?}");
    let bad_email = NewPreferences { email: Some("not-an-address"), ..NewPreferences::default() };
    let refused = t.platform.set_notification_preferences(&acme, &ada_user.id, &bad_email, STRICT).await;
    assert!(matches!(refused, Err(PlatformError::Invalid { field: "email", .. })), "{refused:?}");
    assert_eq!(t.platform.notification_preferences(&acme, &ada_user.id).await.unwrap().events.len(), 1);
}
