//! The webhook intake: verify, parse, deduplicate and queue one delivery.
//!
//! Order matters: the signature is checked before anything of the body is used, so unauthenticated
//! input is never acted on (when a repository has a webhook secret of its own, its `full_name` is
//! read first, only to choose the key: see [`WebhookKeys`]). A delivery whose id was queued before (GitHub redelivers with the same
//! `X-GitHub-Delivery`) is answered as a duplicate and not queued again; the check and the send
//! are one atomic queue operation (`dedup_key`). A payload too large for a queue message is stored
//! in the `archives` bucket first and the message names it.

use std::sync::Arc;

use bytes::Bytes;
use ledge_bucket::{Bucket, HttpMetadata, PutOptions};
use ledge_queue::{MessageBody, QueueError, QueueProducer, SendOptions, SendOutcome};

use crate::{Envelope, EnvelopeError, Payload, SignatureError, WebhookKeys};

/// Largest queue message the intake builds inline; larger payloads are archived. Below the queue
/// contract's 128 KB message limit, with room for the message metadata.
pub const MAX_INLINE_MESSAGE: usize = 120_000;

/// What became of an accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Queued on `github-events`.
    Queued { delivery: String },
    /// Queued before (same delivery id): not queued again.
    Duplicate { delivery: String },
}

/// Why a delivery was refused or could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("cannot queue the delivery: {0}")]
    Queue(#[from] QueueError),
    #[error("cannot archive the payload: {0}")]
    Archive(#[from] ledge_bucket::Error),
}

/// The headers of a delivery that the intake reads, raw.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryHeaders<'a> {
    pub signature: Option<&'a [u8]>,
    pub event: Option<&'a [u8]>,
    pub delivery: Option<&'a [u8]>,
}

/// Accepts GitHub deliveries onto the `github-events` queue.
pub struct WebhookIntake {
    events: Arc<dyn QueueProducer>,
    archives: Arc<dyn Bucket>,
}

impl std::fmt::Debug for WebhookIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookIntake").field("queue", &self.events.queue()).finish()
    }
}

impl WebhookIntake {
    pub fn new(events: Arc<dyn QueueProducer>, archives: Arc<dyn Bucket>) -> Self {
        WebhookIntake { events, archives }
    }

    /// Verifies (with `keys`), parses, deduplicates and queues one delivery. Returns once it is
    /// persisted.
    pub async fn accept(
        &self,
        keys: &WebhookKeys,
        headers: DeliveryHeaders<'_>,
        body: Bytes,
    ) -> Result<Accepted, IntakeError> {
        keys.verify(headers.signature, &body)?;
        let envelope = Envelope::parse(headers.event, headers.delivery, &body)?;
        let mut message = envelope.queue_message(Payload::Inline(&body));
        if message.len() > MAX_INLINE_MESSAGE {
            let key = archive_key(&envelope);
            let options = PutOptions {
                http_metadata: HttpMetadata {
                    content_type: Some("application/json".into()),
                    ..HttpMetadata::default()
                },
                ..PutOptions::default()
            };
            self.archives.put(&key, body.into(), options).await?;
            message = envelope.queue_message(Payload::Archived(&key));
        }
        let options = SendOptions { dedup_key: Some(envelope.delivery.clone()), ..SendOptions::default() };
        let delivery = envelope.delivery;
        match self.events.send(MessageBody::ValidJson(message.into()), options).await? {
            SendOutcome::Queued { .. } => Ok(Accepted::Queued { delivery }),
            SendOutcome::Duplicate => Ok(Accepted::Duplicate { delivery }),
        }
    }
}

/// Where an oversized payload is archived: by installation (the tenant GitHub knows) and delivery.
fn archive_key(envelope: &Envelope) -> String {
    let owner = envelope.installation.map_or_else(|| "none".to_string(), |i| i.to_string());
    format!("github/installations/{owner}/deliveries/{}.json", envelope.delivery)
}
