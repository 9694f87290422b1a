//! Notification preferences: per user and per organization, the channels a member wants to be told
//! on (an email address, a webhook URL, a Slack-compatible incoming webhook URL) and the
//! [`NotificationEvent`]s they want to hear about; the checks of a target URL ([`check_target_url`]:
//! `http`/`https` only, and — unless [`TargetPolicy::allow_private`] — no host that resolves to a
//! private, loopback, link-local, unique-local or otherwise non-public address); and the messages
//! of the `notifications` queue ([`EventNotice`]), which [`delivery`] consumes.
//!
//! A member reads and writes only their own preferences, in an organization they belong to; the
//! deliveries go only to current members.

pub mod delivery;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ledge_db::{Database, sqlx};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{PlatformError, Result};
use crate::{Access, Platform};

const MAX_URL_BYTES: usize = 2048;
const MAX_EMAIL_BYTES: usize = 254;
/// How long resolving a target's host may take when its URL is checked.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a member can be notified of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NotificationEvent {
    /// A repository's indexing job finished (possibly with failed files).
    #[serde(rename = "indexing.finished")]
    IndexingFinished,
    /// A repository's indexing job failed: every batch failed, or the job could not start.
    #[serde(rename = "indexing.failed")]
    IndexingFailed,
    /// A bug report was analysed.
    #[serde(rename = "bug_report.analysed")]
    BugReportAnalysed,
    /// The organization reached a usage limit of its plan.
    #[serde(rename = "usage_limit.reached")]
    UsageLimitReached,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 4] = [
        NotificationEvent::IndexingFinished,
        NotificationEvent::IndexingFailed,
        NotificationEvent::BugReportAnalysed,
        NotificationEvent::UsageLimitReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::IndexingFinished => "indexing.finished",
            NotificationEvent::IndexingFailed => "indexing.failed",
            NotificationEvent::BugReportAnalysed => "bug_report.analysed",
            NotificationEvent::UsageLimitReached => "usage_limit.reached",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationEvent> {
        NotificationEvent::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
    Slack,
}

/// A member's notification preferences in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPreferences {
    pub org_id: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_webhook_url: Option<String>,
    pub events: Vec<NotificationEvent>,
    /// `None` while the member has never saved preferences (nothing is sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl NotificationPreferences {
    const COLUMNS: &'static str =
        "org_id, user_id, email, webhook_url, slack_webhook_url, events, updated_at";

    fn from_row(row: &AnyRow) -> Result<NotificationPreferences> {
        let events: String = row.try_get("events")?;
        Ok(NotificationPreferences {
            org_id: row.try_get("org_id")?,
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            webhook_url: row.try_get("webhook_url")?,
            slack_webhook_url: row.try_get("slack_webhook_url")?,
            // Only ledge writes the column; an unknown name (from a later version) is skipped.
            events: events.split(',').filter_map(NotificationEvent::parse).collect(),
            updated_at: Some(row.try_get("updated_at")?),
        })
    }

    /// Whether the member wants `event`.
    pub fn wants(&self, event: NotificationEvent) -> bool {
        self.events.contains(&event)
    }

    /// The target of `channel`, if set.
    pub fn target(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Webhook => self.webhook_url.as_deref(),
            Channel::Slack => self.slack_webhook_url.as_deref(),
        }
    }
}

/// New preferences, replacing the member's: `None` clears a channel.
#[derive(Debug, Clone, Default)]
pub struct NewPreferences<'a> {
    pub email: Option<&'a str>,
    pub webhook_url: Option<&'a str>,
    pub slack_webhook_url: Option<&'a str>,
    pub events: Vec<NotificationEvent>,
}

/// Which hosts a notification may be sent to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Allows hosts on private, loopback, link-local and unique-local addresses (the
    /// `notifications.allow_private_targets` setting): for a server whose receivers are on its own
    /// network. Off by default, so that a member cannot make the server call its neighbours.
    pub allow_private: bool,
}

/// Why `ip` is not a public address a notification may be sent to, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 0 || ip.is_broadcast() || a >= 240 {
        Some("an unspecified or reserved address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if (a, b, c) == (192, 0, 0) || (a == 198 && (b == 18 || b == 19)) || ip.is_documentation() {
        Some("a reserved address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("a unique-local address")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0, 0] {
        // NAT64 and IPv4-compatible addresses reach the IPv4 address in their last 32 bits.
        let v4 = Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        );
        non_public_v4(v4)
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// A target URL, taken apart.
///
/// `host` is the host as the HTTP client reads it: lower-cased, an IP address in its canonical
/// form (brackets removed from IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    pub url: String,
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// Checks the form of a target URL: `http://` or `https://`, a host, no credentials, no spaces or
/// control characters. Does not resolve the host (see [`check_target_url`]).
pub fn parse_target_url(field: &'static str, url: &str) -> Result<TargetUrl> {
    let url = url.trim();
    let bad = |reason: &str| PlatformError::invalid(field, reason.to_string());
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(bad(&format!("must be 1 to {MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let lower = url.to_ascii_lowercase();
    let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, &url[8..8 + rest.len()])
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, &url[7..7 + rest.len()])
    } else {
        return Err(bad("must be an https:// or http:// URL"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(bad("must not hold credentials"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("has an unclosed '['"))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(bad("must name a host"));
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err(bad("must name a host"));
        }
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host = host.to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<IpAddr>().is_ok()
            || host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(bad("must name a host"));
    }
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(port) => port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("has a bad port"))?,
    };
    // The host as the HTTP client will read it (WHATWG rules: `0x7f.1` and `2130706433` are
    // 127.0.0.1), so that the address checked is the one connected to.
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("is not a valid URL"))?;
    let host = match parsed.host_str() {
        Some(normalized) => normalized.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => return Err(bad("must name a host")),
    };
    Ok(TargetUrl { url: url.to_string(), https, host, port })
}

/// Checks a target URL ([`parse_target_url`]) and, unless `policy` allows private targets, that its
/// host is public: an address written in the URL is checked, a name is resolved and **every**
/// address it resolves to is checked (one private address is enough to refuse it).
pub async fn check_target_url(field: &'static str, url: &str, policy: TargetPolicy) -> Result<TargetUrl> {
    let target = parse_target_url(field, url)?;
    if policy.allow_private {
        return Ok(target);
    }
    let refuse = |what: &str| {
        PlatformError::invalid(
            field,
            format!(
                "must not point to {what}: notifications go to public hosts (unless the server sets \
                 notifications.allow_private_targets)"
            ),
        )
    };
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return match non_public(ip) {
            Some(what) => Err(refuse(what)),
            None => Ok(target),
        };
    }
    if target.host == "localhost" || target.host.ends_with(".localhost") {
        return Err(refuse("a loopback address"));
    }
    let addresses = resolve(&target.host, target.port)
        .await
        .map_err(|reason| PlatformError::invalid(field, format!("host {} {reason}", target.host)))?;
    for ip in addresses {
        if let Some(what) = non_public(ip) {
            return Err(refuse(what));
        }
    }
    Ok(target)
}

/// Every address `host` resolves to (at least one), or why not.
pub async fn resolve(host: &str, port: u16) -> std::result::Result<Vec<IpAddr>, String> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| "cannot be resolved in time".to_string())?
        .map_err(|_| "cannot be resolved".to_string())?;
    let addresses: Vec<IpAddr> = lookup.map(|address| address.ip()).collect();
    if addresses.is_empty() {
        return Err("resolves to no address".to_string());
    }
    Ok(addresses)
}

/// Checks an email address's form (the account rules of `ledge-auth`), lower-cased.
fn check_email(email: &str) -> Result<String> {
    let email = email.trim().to_ascii_lowercase();
    let fine = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if !fine {
        return Err(PlatformError::invalid("email", "must be an email address like name@example.com"));
    }
    Ok(email)
}

fn events_text(events: &[NotificationEvent]) -> String {
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
}

impl Platform {
    /// `user_id`'s notification preferences in the organization (nothing set and no events if they
    /// never saved any).
    pub async fn notification_preferences(
        &self,
        access: &Access,
        user_id: &str,
    ) -> Result<NotificationPreferences> {
        let preferences = preferences_of(&self.db, &access.org.id, user_id).await?;
        Ok(preferences.unwrap_or_else(|| NotificationPreferences {
            org_id: access.org.id.clone(),
            user_id: user_id.to_string(),
            email: None,
            webhook_url: None,
            slack_webhook_url: None,
            events: Vec::new(),
            updated_at: None,
        }))
    }

    /// Replaces `user_id`'s notification preferences in the organization, after checking every
    /// target under `policy`.
    pub async fn set_notification_preferences(
        &self,
        access: &Access,
        user_id: &str,
        new: &NewPreferences<'_>,
        policy: TargetPolicy,
    ) -> Result<NotificationPreferences> {
        let email = new.email.map(check_email).transpose()?;
        let webhook_url = match new.webhook_url {
            Some(url) => Some(check_target_url("webhook_url", url, policy).await?.url),
            None => None,
        };
        let slack_webhook_url = match new.slack_webhook_url {
            Some(url) => Some(check_target_url("slack_webhook_url", url, policy).await?.url),
            None => None,
        };
        let now = self.now_ms();
        sqlx::query(
            "INSERT INTO notification_preferences
               (org_id, user_id, email, webhook_url, slack_webhook_url, events, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, user_id) DO UPDATE SET email = excluded.email,
               webhook_url = excluded.webhook_url, slack_webhook_url = excluded.slack_webhook_url,
               events = excluded.events, updated_at = excluded.updated_at",
        )
        .bind(&access.org.id)
        .bind(user_id)
        .bind(&email)
        .bind(&webhook_url)
        .bind(&slack_webhook_url)
        .bind(events_text(&new.events))
        .bind(now)
        .execute(self.db.pool())
        .await?;
        self.notification_preferences(access, user_id).await
    }
}

/// `user_id`'s saved preferences in organization `org_id`, if they are still a member.
pub(crate) async fn preferences_of(
    db: &Database,
    org_id: &str,
    user_id: &str,
) -> Result<Option<NotificationPreferences>> {
    let sql = format!(
        "SELECT {} FROM notification_preferences p WHERE p.org_id = $1 AND p.user_id = $2
           AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = p.org_id AND m.user_id = p.user_id)",
        NotificationPreferences::COLUMNS
    );
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).bind(user_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(NotificationPreferences::from_row).transpose()
}

/// The preferences of every current member of `org_id` who wants `event`.
pub(crate) async fn subscribers(
    db: &Database,
    org_id: &str,
    event: NotificationEvent,
) -> Result<Vec<NotificationPreferences>> {
    let sql = format!(
        "SELECT {} FROM notification_preferences p WHERE p.org_id = $1
           AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = p.org_id AND m.user_id = p.user_id)
         ORDER BY p.user_id",
        NotificationPreferences::COLUMNS
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).fetch_all(db.pool()).await?;
    let all = rows.iter().map(NotificationPreferences::from_row).collect::<Result<Vec<_>>>()?;
    Ok(all.into_iter().filter(|p| p.wants(event)).collect())
}

/// An event to notify an organization's members of: what producers send on the `notifications`
/// queue (as `{"kind":"event", …}`, see [`delivery`]).
///
/// The organization is named by id or, for producers that only know it by slug (the indexing
/// pipeline), by slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventNotice {
    /// Unique per event (a retry of the producer keeps it): deliveries are de-duplicated on it.
    pub id: String,
    pub event: NotificationEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    /// What the event is about (a repository key, a bug report id, a limit's name).
    pub subject: String,
    /// One line for people (the Slack text).
    pub summary: String,
    /// Epoch milliseconds.
    pub occurred_at: i64,
    /// Event-specific details, passed on to webhooks as they are.
    #[serde(default)]
    pub data: serde_json::Value,
}
