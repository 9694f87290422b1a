//! [`WebhookKeys`]: which secret a delivery's signature is checked with — a repository's own webhook
//! secret when it has one, else the server's (`LEDGE_GITHUB_WEBHOOK_SECRET`).
//!
//! GitHub signs the body before ledge knows which repository it is about, so when any repository
//! has a secret of its own the body's `repository.full_name` is read **only to choose the key**
//! (nothing else of it is used before the signature is verified). With no repository secret at all,
//! nothing of the body is read before verification: the fast path of a server-wide secret.

use std::collections::HashMap;

use serde::Deserialize;

use crate::{SignatureError, WebhookVerifier};

/// The keys deliveries are verified with.
#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    server: Option<WebhookVerifier>,
    /// By repository `full_name`, lower-cased; `None`: it has a secret the server cannot read.
    repositories: HashMap<String, Option<WebhookVerifier>>,
}

/// The field that chooses the key: `repository.full_name`.
#[derive(Deserialize)]
struct KeyHint<'a> {
    #[serde(borrow, default)]
    repository: Option<RepositoryHint<'a>>,
}

#[derive(Deserialize)]
struct RepositoryHint<'a> {
    #[serde(borrow, default)]
    full_name: Option<std::borrow::Cow<'a, str>>,
}

impl WebhookKeys {
    /// Keys with the server's secret, if it has one, and no repository secret yet.
    pub fn new(server: Option<WebhookVerifier>) -> WebhookKeys {
        WebhookKeys { server, repositories: HashMap::new() }
    }

    /// Adds repository `full_name`'s own secret; `None` for a secret the server has but cannot read
    /// (its deliveries are refused rather than checked with the server's secret).
    pub fn add_repository(&mut self, full_name: &str, secret: Option<&[u8]>) {
        self.repositories.insert(full_name.to_ascii_lowercase(), secret.map(WebhookVerifier::new));
    }

    /// Whether no delivery can be verified at all (no server secret, no repository secret).
    pub fn is_empty(&self) -> bool {
        self.server.is_none() && self.repositories.is_empty()
    }

    /// How many repositories have a secret of their own.
    pub fn repository_count(&self) -> usize {
        self.repositories.len()
    }

    /// Checks `header` (the `X-Hub-Signature-256` value, if any) against `body` with the key of the
    /// repository the body names, else the server's.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        if !self.repositories.is_empty()
            && let Some(name) = repository_of(body)
            && let Some(own) = self.repositories.get(&name)
        {
            return own.as_ref().ok_or(SignatureError::KeyUnavailable)?.verify(header, body);
        }
        self.server.as_ref().ok_or(SignatureError::NoKey)?.verify(header, body)
    }
}

/// The body's `repository.full_name`, lower-cased, if it is a JSON object that has one.
fn repository_of(body: &[u8]) -> Option<String> {
    let hint: KeyHint<'_> = serde_json::from_slice(body).ok()?;
    Some(hint.repository?.full_name?.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"action":"opened","repository":{"id":1,"full_name":"Octo/Hello"}}"#;

    fn keys() -> WebhookKeys {
        let mut keys = WebhookKeys::new(Some(WebhookVerifier::new(b"server")));
        keys.add_repository("octo/hello", Some(b"own"));
        keys.add_repository("octo/locked", None);
        keys
    }

    fn signed(secret: &[u8], body: &[u8]) -> String {
        WebhookVerifier::new(secret).sign(body)
    }

    #[test]
    fn a_repository_with_its_own_secret_is_verified_with_it_only() {
        let keys = keys();
        assert_eq!(keys.verify(Some(signed(b"own", BODY).as_bytes()), BODY), Ok(()));
        assert_eq!(
            keys.verify(Some(signed(b"server", BODY).as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
        let tampered = br#"{"action":"closed","repository":{"id":1,"full_name":"Octo/Hello"}}"#;
        assert_eq!(
            keys.verify(Some(signed(b"own", BODY).as_bytes()), tampered),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn other_repositories_and_bodies_without_one_use_the_server_secret() {
        let keys = keys();
        for body in [
            &br#"{"repository":{"full_name":"octo/other"}}"#[..],
            br#"{"zen":"hi"}"#,
            br#"{"repository":null}"#,
            b"not json",
        ] {
            assert_eq!(keys.verify(Some(signed(b"server", body).as_bytes()), body), Ok(()), "{body:?}");
            assert_eq!(
                keys.verify(Some(signed(b"own", body).as_bytes()), body),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn an_unreadable_repository_secret_or_no_key_refuses() {
        let keys = keys();
        let body = br#"{"repository":{"full_name":"octo/locked"}}"#;
        let header = signed(b"server", body);
        assert_eq!(keys.verify(Some(header.as_bytes()), body), Err(SignatureError::KeyUnavailable));
        let mut only_repositories = WebhookKeys::new(None);
        only_repositories.add_repository("octo/hello", Some(b"own"));
        assert_eq!(only_repositories.verify(Some(signed(b"own", BODY).as_bytes()), BODY), Ok(()));
        assert_eq!(only_repositories.verify(Some(header.as_bytes()), body), Err(SignatureError::NoKey));
        assert!(WebhookKeys::new(None).is_empty());
    }
}
