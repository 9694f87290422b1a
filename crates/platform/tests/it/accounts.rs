//! Sign-up, login, sessions, refresh and logout.

use std::time::Duration;

use ledge_auth::{LoginThrottle, TokenBuckets};
use ledge_platform::{PlatformError, Principal};

use crate::support::{PASSWORD, lenient, platform, platform_with};

#[tokio::test]
async fn a_signed_up_account_logs_in_and_its_token_names_the_user() {
    let t = platform().await;
    t.platform.signup(" Ada@Example.com ", PASSWORD, Some("Ada"), "1.1.1.1").await.unwrap();
    let tokens = t.platform.login("ada@example.com", PASSWORD, "1.1.1.1").await.unwrap();
    assert_eq!(tokens.user.email, "ada@example.com");
    assert_eq!(tokens.user.name, "Ada");
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 300);
    match t.principal(&tokens).await {
        Principal::User { user, .. } => assert_eq!(user, tokens.user),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_accounts_and_wrong_passwords_fail_alike_and_signup_does_not_tell_taken_addresses() {
    let t = platform_with(lenient()).await;
    t.account("ada@example.com").await;
    let wrong = t.platform.login("ada@example.com", "not the passphrase", "ip").await.unwrap_err();
    let unknown = t.platform.login("bob@example.com", PASSWORD, "ip").await.unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(wrong, PlatformError::InvalidCredentials));
    assert!(matches!(unknown, PlatformError::InvalidCredentials));
    // Signing up again with the taken address answers the same, and changes nothing.
    t.platform.signup("ada@example.com", "another long passphrase", None, "ip").await.unwrap();
    t.platform.login("ada@example.com", PASSWORD, "ip").await.unwrap();
    assert!(t.platform.login("ada@example.com", "another long passphrase", "ip").await.is_err());
}

#[tokio::test]
async fn signup_refuses_bad_fields_by_name() {
    let t = platform().await;
    let field = |e: PlatformError| match e {
        PlatformError::Invalid { field, .. } => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(t.platform.signup("nope", PASSWORD, None, "ip").await.unwrap_err()), "email");
    assert_eq!(field(t.platform.signup("a@b.io", "short", None, "ip").await.unwrap_err()), "password");
    let long = "n".repeat(101);
    assert_eq!(field(t.platform.signup("a@b.io", PASSWORD, Some(&long), "ip").await.unwrap_err()), "name");
}

#[tokio::test]
async fn login_is_throttled_per_account_and_per_ip_with_a_retry_time() {
    let throttle = LoginThrottle::new(
        TokenBuckets::new(3, Duration::from_secs(60), 100),
        TokenBuckets::new(5, Duration::from_secs(60), 100),
    );
    let t = platform_with(throttle).await;
    t.platform.signup("ada@example.com", PASSWORD, None, "signup-ip").await.unwrap();
    for ip in ["1", "2", "3"] {
        assert!(matches!(
            t.platform.login("ada@example.com", "wrong password!", ip).await,
            Err(PlatformError::InvalidCredentials)
        ));
    }
    // The right password from a fresh IP is refused too: the account is over.
    match t.platform.login("ada@example.com", PASSWORD, "4").await {
        Err(PlatformError::Throttled { retry_after }) => assert!(retry_after >= Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    for n in 0..5 {
        let _ = t.platform.login(&format!("u{n}@example.com"), PASSWORD, "9").await;
    }
    assert!(matches!(
        t.platform.login("other@example.com", PASSWORD, "9").await,
        Err(PlatformError::Throttled { .. })
    ));
}

#[tokio::test]
async fn logout_ends_the_session_for_access_and_refresh_tokens() {
    let t = platform().await;
    let tokens = t.account("ada@example.com").await;
    let principal = t.principal(&tokens).await;
    t.platform.logout(&principal).await.unwrap();
    let header = format!("Bearer {}", tokens.access_token);
    assert!(matches!(
        t.platform.authenticate(header.as_bytes()).await,
        Err(PlatformError::Unauthenticated(_))
    ));
    assert!(t.platform.refresh(&tokens.refresh_token, "ip").await.is_err());
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_refresh_token_ends_the_session() {
    let t = platform().await;
    let first = t.account("ada@example.com").await;
    let second = t.platform.refresh(&first.refresh_token, "ip").await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    t.principal(&second).await;
    // The first refresh token is spent; presenting it again ends the session for everyone.
    assert!(t.platform.refresh(&first.refresh_token, "ip").await.is_err());
    let header = format!("Bearer {}", second.access_token);
    assert!(t.platform.authenticate(header.as_bytes()).await.is_err());
    assert!(t.platform.refresh(&second.refresh_token, "ip").await.is_err());
}

#[tokio::test]
async fn sessions_slide_while_used_and_end_after_fifteen_idle_minutes() {
    let t = platform().await;
    let mut tokens = t.account("ada@example.com").await;
    for _ in 0..3 {
        t.advance(Duration::from_secs(10 * 60));
        tokens = t.platform.refresh(&tokens.refresh_token, "ip").await.unwrap();
    }
    t.advance(Duration::from_secs(4 * 60));
    t.principal(&tokens).await;
    t.advance(Duration::from_secs(16 * 60));
    assert!(t.platform.refresh(&tokens.refresh_token, "ip").await.is_err(), "idle for 16 minutes");
}

#[tokio::test]
async fn access_tokens_expire_after_five_minutes() {
    let t = platform().await;
    let tokens = t.account("ada@example.com").await;
    t.advance(Duration::from_secs(301));
    let header = format!("Bearer {}", tokens.access_token);
    assert!(matches!(
        t.platform.authenticate(header.as_bytes()).await,
        Err(PlatformError::Unauthenticated(_))
    ));
}

#[tokio::test]
async fn malformed_authorization_headers_are_unauthenticated() {
    let t = platform().await;
    for header in ["", "Basic x", "Bearer", "Bearer a.b.c", "Bearer ledge_x_y"] {
        assert!(
            matches!(
                t.platform.authenticate(header.as_bytes()).await,
                Err(PlatformError::Unauthenticated(_))
            ),
            "{header}"
        );
    }
}
