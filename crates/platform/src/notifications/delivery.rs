//! The `notifications` queue consumer: [`NotificationDelivery`].
//!
//! The queue carries two kinds of JSON message ([`NotificationMessage`]):
//!
//! * `{"kind":"event", …}` — an [`EventNotice`] sent by a producer (the indexing pipeline, …). The
//!   consumer finds the organization's current members who want the event and sends one
//!   `delivery` message per member and channel back onto the queue (de-duplicated on the event id,
//!   the member and the channel), so that each delivery is retried on its own. Email goes only
//!   where a mail server is configured (`[notifications] smtp_url`); without one, an email channel
//!   is logged as "not configured", never faked.
//! * `{"kind":"delivery", …}` — one POST to one member's webhook (the [`EventNotice`] as JSON) or
//!   Slack-compatible incoming webhook (`{"text": summary}`), with a timeout; or one plain-text
//!   email through the configured mail server (TLS or STARTTLS unless `?tls=none`; the same
//!   `Message-ID` on every attempt, so a receiving server can drop a repeat). The target is read
//!   from the member's preferences when it is delivered (a member who left, or removed the channel
//!   or the event, gets nothing) and checked again under the [`TargetPolicy`]: a named host is
//!   resolved by the client's own resolver, which refuses it when any address is not public, so
//!   the address checked is the address connected to. No redirect is followed, no proxy used.
//!   A failure (an answer other than 2xx, a timeout, a refused target) is retried through the
//!   queue with exponential backoff from the consumer's `retry_delay` (×2 per attempt); after
//!   `max_retries` the runtime moves the message to the dead-letter queue with the last reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ledge_config::{Secret, SmtpSecurity, SmtpServer};
use ledge_db::{Database, sqlx};
use ledge_queue::{
    BatchEntry, BatchHandler, BatchOptions, HandlerError, Message, MessageBatch, MessageBody, QueueProducer,
    RetryOptions, SendOptions,
};
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use tokio::sync::OnceCell;

use super::{Channel, EventNotice, TargetPolicy, non_public, parse_target_url, preferences_of, subscribers};
use crate::error::Result;

/// A message of the `notifications` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationMessage {
    /// An event for an organization's members.
    Event(EventNotice),
    /// One delivery of an event to one member's channel.
    Delivery(DeliveryTask),
}

/// One delivery: `notice` (its organization resolved to an id) to `user_id`'s `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTask {
    pub notice: EventNotice,
    pub org_id: String,
    pub org_slug: String,
    pub user_id: String,
    pub channel: Channel,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub policy: TargetPolicy,
    /// Longest a delivery may take, connection included.
    pub timeout: Duration,
    /// The first retry's delay (the consumer's `retry_delay`); each later one doubles it.
    pub retry_delay: Duration,
    /// How email is sent; none: email channels are not delivered.
    pub email: Option<EmailSettings>,
}

/// How email is sent: the mail server (an administrator's choice, so not under the
/// [`TargetPolicy`] members' targets are), its user's password, the sender.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub server: SmtpServer,
    /// The password of `server.username` (`LEDGE_SMTP_PASSWORD`).
    pub password: Option<Secret>,
    /// `address` or `Name <address>`.
    pub from: String,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            policy: TargetPolicy::default(),
            timeout: Duration::from_secs(10),
            retry_delay: Duration::from_secs(60),
            email: None,
        }
    }
}

type Opening = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Database, HandlerError>> + Send>>;
type OpenDb = dyn Fn() -> Opening + Send + Sync;

/// Consumes the `notifications` queue (see the module docs).
pub struct NotificationDelivery {
    db: OnceCell<Database>,
    open: Box<OpenDb>,
    /// Where the expanded deliveries go: the `notifications` queue itself.
    queue: Arc<dyn QueueProducer>,
    /// Built by the first delivery (TLS roots and all), not when the consumers start.
    client: std::sync::OnceLock<reqwest::Client>,
    /// Built by the first email.
    mailer: std::sync::OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    options: DeliveryOptions,
}

impl std::fmt::Debug for NotificationDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationDelivery").field("options", &self.options).finish()
    }
}

/// The client's resolver: the system's, refusing a name when any address it resolves to is not
/// public (unless the policy allows private targets).
struct PublicResolver {
    policy: TargetPolicy,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let policy = self.policy;
        Box::pin(async move {
            let addresses = match super::resolve(&host, 0).await {
                Ok(addresses) => addresses,
                Err(reason) => return Err(format!("host {host} {reason}").into()),
            };
            if !policy.allow_private
                && let Some(what) = addresses.iter().find_map(|ip| non_public(*ip))
            {
                return Err(
                    format!("host {host} resolves to {what}, and private targets are not allowed").into()
                );
            }
            let addresses: reqwest::dns::Addrs = Box::new(
                addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter(),
            );
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addresses)
        })
    }
}

impl NotificationDelivery {
    /// The consumer over the store `open` opens on first use, sending expanded deliveries to
    /// `queue` (the `notifications` queue).
    pub fn new<F, Fut, E>(
        open: F,
        queue: Arc<dyn QueueProducer>,
        options: DeliveryOptions,
    ) -> NotificationDelivery
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<Database, E>> + Send + 'static,
        E: Into<HandlerError>,
    {
        let open: Box<OpenDb> = Box::new(move || {
            let opening = open();
            let opening: Opening = Box::pin(async move { opening.await.map_err(Into::into) });
            opening
        });
        NotificationDelivery {
            db: OnceCell::new(),
            open,
            queue,
            client: std::sync::OnceLock::new(),
            mailer: std::sync::OnceLock::new(),
            options,
        }
    }

    /// The HTTP client: no redirects, no proxy, the options' timeout, the public-only resolver.
    fn client(&self) -> std::result::Result<&reqwest::Client, String> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.options.timeout)
            .connect_timeout(self.options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("ledge-notifications")
            .dns_resolver(PublicResolver { policy: self.options.policy })
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {}", error_chain(&error)))?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The SMTP client of the configured mail server (`None` when email is not configured).
    fn mailer(&self) -> std::result::Result<Option<&AsyncSmtpTransport<Tokio1Executor>>, String> {
        let Some(email) = &self.options.email else { return Ok(None) };
        if let Some(mailer) = self.mailer.get() {
            return Ok(Some(mailer));
        }
        let server = &email.server;
        let builder = match server.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&server.host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&server.host),
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)),
        }
        .map_err(|e| format!("cannot set up the mail server {}: {e}", server.url()))?;
        let mut builder = builder.port(server.port).timeout(Some(self.options.timeout));
        if let Some(user) = &server.username {
            let password = email.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Some(self.mailer.get_or_init(|| builder.build())))
    }

    async fn db(&self) -> std::result::Result<&Database, HandlerError> {
        self.db.get_or_try_init(|| (self.open)()).await
    }

    /// The delay before retry number `attempts` (1 after the first delivery): `retry_delay × 2^(attempts-1)`,
    /// at most 12 h.
    fn backoff(&self, attempts: u32) -> u32 {
        let base = self.options.retry_delay.as_secs();
        let factor = 1u64 << attempts.saturating_sub(1).min(20);
        u32::try_from(base.saturating_mul(factor).min(43_200)).unwrap_or(43_200)
    }

    async fn expand(&self, notice: EventNotice) -> std::result::Result<(), HandlerError> {
        let db = self.db().await?;
        let Some((org_id, org_slug)) = organization(db, &notice).await? else {
            tracing::info!(event = notice.event.as_str(), id = %notice.id, "notification for no known organization");
            return Ok(());
        };
        let mut entries = Vec::new();
        for preferences in subscribers(db, &org_id, notice.event).await? {
            if preferences.email.is_some() && self.options.email.is_none() {
                tracing::warn!(
                    user = %preferences.user_id,
                    event = notice.event.as_str(),
                    "email notification not sent: no mail server is configured ([notifications] smtp_url)"
                );
            }
            for channel in [Channel::Email, Channel::Webhook, Channel::Slack] {
                if preferences.target(channel).is_none()
                    || (channel == Channel::Email && self.options.email.is_none())
                {
                    continue;
                }
                let task = DeliveryTask {
                    notice: notice.clone(),
                    org_id: org_id.clone(),
                    org_slug: org_slug.clone(),
                    user_id: preferences.user_id.clone(),
                    channel,
                };
                let dedup = format!("{}:{}:{channel:?}", notice.id, preferences.user_id);
                let body = MessageBody::json_from(&NotificationMessage::Delivery(task))?;
                entries.push(BatchEntry { body, options: SendOptions::dedup(dedup) });
            }
        }
        let count = entries.len();
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let chunk: Vec<BatchEntry> = entries.by_ref().take(100).collect();
            self.queue.send_batch(chunk, BatchOptions::default()).await?;
        }
        tracing::debug!(event = notice.event.as_str(), id = %notice.id, deliveries = count, "notification expanded");
        Ok(())
    }

    /// Delivers `task`; `Err` is the reason it failed (to retry).
    async fn deliver(&self, task: &DeliveryTask) -> std::result::Result<(), String> {
        let db = self.db().await.map_err(|e| format!("cannot open the database: {e}"))?;
        let preferences = preferences_of(db, &task.org_id, &task.user_id)
            .await
            .map_err(|e| format!("cannot read the preferences: {e}"))?;
        let target = preferences
            .as_ref()
            .filter(|p| p.wants(task.notice.event))
            .and_then(|p| p.target(task.channel).map(str::to_string));
        let Some(url) = target else {
            tracing::info!(user = %task.user_id, channel = ?task.channel, "notification dropped: no longer wanted");
            return Ok(());
        };
        if task.channel == Channel::Email {
            return self.send_email(task, &url).await;
        }
        let field = match task.channel {
            Channel::Slack => "slack_webhook_url",
            _ => "webhook_url",
        };
        let parsed = parse_target_url(field, &url).map_err(|e| e.to_string())?;
        // An address written in the URL never reaches the resolver: check it here.
        if !self.options.policy.allow_private
            && let Ok(ip) = parsed.host.parse::<std::net::IpAddr>()
            && let Some(what) = non_public(ip)
        {
            return Err(format!("the target is {what}, and private targets are not allowed"));
        }
        let body = match task.channel {
            Channel::Slack => serde_json::json!({ "text": task.notice.summary }),
            _ => serde_json::json!({
                "id": task.notice.id,
                "event": task.notice.event,
                "organization": { "id": task.org_id, "slug": task.org_slug },
                "subject": task.notice.subject,
                "summary": task.notice.summary,
                "occurred_at": task.notice.occurred_at,
                "data": task.notice.data,
            }),
        };
        let answer = self
            .client()?
            .post(&parsed.url)
            .header("content-type", "application/json")
            .header("x-ledge-event", task.notice.event.as_str())
            .header("x-ledge-delivery", &task.notice.id)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("cannot deliver to {}: {}", parsed.host, error_chain(&e)))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("{} answered {status}", parsed.host));
        }
        tracing::debug!(user = %task.user_id, channel = ?task.channel, id = %task.notice.id, "notification delivered");
        Ok(())
    }

    /// Sends `task` as a plain-text email to `address`.
    async fn send_email(&self, task: &DeliveryTask, address: &str) -> std::result::Result<(), String> {
        let (Some(mailer), Some(email)) = (self.mailer()?, &self.options.email) else {
            tracing::info!(user = %task.user_id, "email notification dropped: no mail server is configured any more");
            return Ok(());
        };
        let message = email_message(task, &email.from, address)?;
        mailer
            .send(message)
            .await
            // lettre's errors print their sources themselves.
            .map_err(|e| format!("cannot send email through {}: {e}", email.server.url()))?;
        tracing::debug!(user = %task.user_id, id = %task.notice.id, "email notification sent");
        Ok(())
    }

    async fn handle_message(&self, message: &Message) -> std::result::Result<(), HandlerError> {
        match message.json::<NotificationMessage>() {
            Ok(NotificationMessage::Event(notice)) => {
                if let Err(error) = self.expand(notice).await {
                    let delay = self.backoff(message.attempts);
                    message.retry_because(RetryOptions::delay(delay), &error)?;
                }
            }
            Ok(NotificationMessage::Delivery(task)) => {
                if let Err(reason) = self.deliver(&task).await {
                    tracing::warn!(message = %message.id, attempt = message.attempts, %reason, "notification not delivered");
                    let delay = self.backoff(message.attempts);
                    message.retry_because(RetryOptions::delay(delay), reason)?;
                }
            }
            Err(error) => {
                // Retrying cannot make it readable: the dead-letter queue keeps it after the retries.
                tracing::warn!(message = %message.id, %error, "unreadable notifications message");
                message.retry_because(RetryOptions::delay(0), format!("unreadable message: {error}"))?;
            }
        }
        Ok(())
    }
}

/// The email of `task` from `from` to `to`: the summary as its subject, the event's details as
/// plain text, and a `Message-ID` made of the event and the member, the same on every attempt.
fn email_message(task: &DeliveryTask, from: &str, to: &str) -> std::result::Result<lettre::Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("email_from {from:?} is not an address: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("{to:?} is not an email address: {e}"))?;
    let notice = &task.notice;
    let subject: String = notice.summary.chars().filter(|c| !c.is_control()).take(150).collect();
    let occurred =
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(notice.occurred_at).unwrap_or_default());
    let mut body = format!(
        "{summary}\n\nOrganization: {org}\nEvent:        {event}\nAbout:        {subject}\nWhen:         {when}\n",
        summary = notice.summary,
        org = task.org_slug,
        event = notice.event.as_str(),
        subject = notice.subject,
        when = httpdate::fmt_http_date(occurred),
    );
    if !notice.data.is_null() {
        let details = serde_json::to_string_pretty(&notice.data).unwrap_or_default();
        body.push_str(&format!("\nDetails:\n{details}\n"));
    }
    body.push_str(&format!(
        "\n--\nYou receive this because your notification preferences in {} send {} to this address.\n",
        task.org_slug,
        notice.event.as_str()
    ));
    let domain = from.email.domain().to_owned();
    let token =
        |text: &str| text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>();
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[ledge] {subject}"))
        .message_id(Some(format!("<{}.{}@{domain}>", token(&notice.id), token(&task.user_id))))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Ledge-Event"),
            notice.event.as_str().into(),
        ))
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Ledge-Delivery"), token(&notice.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// The reasons of an error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The notice's organization (id, slug), if it exists and is not deleted.
async fn organization(db: &Database, notice: &EventNotice) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT id, slug FROM organizations WHERE (id = $1 OR slug = $2) AND deleted_at IS NULL LIMIT 1",
    )
    .bind(notice.org_id.as_deref().unwrap_or(""))
    .bind(notice.org_slug.as_deref().unwrap_or(""))
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((row.try_get("id")?, row.try_get("slug")?))).transpose()
}

#[async_trait]
impl BatchHandler for NotificationDelivery {
    async fn handle(&self, batch: MessageBatch) -> std::result::Result<(), HandlerError> {
        for message in &batch.messages {
            self.handle_message(message).await?;
        }
        Ok(())
    }
}
