//! The delivery envelope: what ledge keeps of a GitHub webhook besides its payload, and the queue
//! message built from it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Why a delivery was refused before it was queued. Each names the part of the request at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the {header} header is missing")]
    MissingHeader { header: &'static str },
    #[error("the {header} header is invalid: {reason}")]
    InvalidHeader { header: &'static str, reason: &'static str },
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the body is JSON but not an object")]
    NotAnObject,
}

/// The repository a delivery is about, as GitHub describes it in `repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRef {
    pub id: u64,
    pub full_name: String,
}

/// What ledge reads from a delivery's headers and payload; the payload itself stays raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `X-GitHub-Event`, e.g. `push`.
    pub event: String,
    /// `X-GitHub-Delivery`: GitHub's unique id of this delivery (redeliveries reuse it).
    pub delivery: String,
    /// `action` of the payload, for the events that have one.
    pub action: Option<String>,
    /// `installation.id`, when the delivery comes through a GitHub App installation.
    pub installation: Option<u64>,
    /// `repository`, for repository-scoped events.
    pub repository: Option<RepositoryRef>,
}

// Only the fields ledge reads; serde still validates the whole document while skipping the rest.
#[derive(Deserialize)]
struct PayloadProbe {
    action: Option<String>,
    installation: Option<IdProbe>,
    repository: Option<RepositoryRef>,
}

#[derive(Deserialize)]
struct IdProbe {
    id: u64,
}

const MAX_EVENT_LEN: usize = 64;
const MAX_DELIVERY_LEN: usize = 128;

fn check_event(event: Option<&[u8]>) -> Result<String, EnvelopeError> {
    const HEADER: &str = "X-GitHub-Event";
    let event = event.ok_or(EnvelopeError::MissingHeader { header: HEADER })?;
    if event.is_empty() || event.len() > MAX_EVENT_LEN {
        return Err(EnvelopeError::InvalidHeader { header: HEADER, reason: "must be 1 to 64 characters" });
    }
    if !event.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'.') {
        return Err(EnvelopeError::InvalidHeader {
            header: HEADER,
            reason: "must be an event name of lowercase letters, digits, '_' and '.'",
        });
    }
    Ok(String::from_utf8_lossy(event).into_owned())
}

fn check_delivery(delivery: Option<&[u8]>) -> Result<String, EnvelopeError> {
    const HEADER: &str = "X-GitHub-Delivery";
    let delivery = delivery.ok_or(EnvelopeError::MissingHeader { header: HEADER })?;
    if delivery.is_empty() || delivery.len() > MAX_DELIVERY_LEN {
        return Err(EnvelopeError::InvalidHeader { header: HEADER, reason: "must be 1 to 128 characters" });
    }
    if !delivery.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
        return Err(EnvelopeError::InvalidHeader {
            header: HEADER,
            reason: "must contain only letters, digits, '-', '_', '.' and ':'",
        });
    }
    Ok(String::from_utf8_lossy(delivery).into_owned())
}

impl Envelope {
    /// Reads the envelope of a delivery from its `X-GitHub-Event` and `X-GitHub-Delivery` headers
    /// and its raw body, which must be one JSON object.
    pub fn parse(
        event: Option<&[u8]>,
        delivery: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Envelope, EnvelopeError> {
        let event = check_event(event)?;
        let delivery = check_delivery(delivery)?;
        let probe: PayloadProbe = serde_json::from_slice(body).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                // Valid JSON of the wrong shape: an array, or a repository without id/full_name.
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Ok(_) if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
                        EnvelopeError::NotAnObject
                    }
                    _ => EnvelopeError::InvalidJson(e.to_string()),
                }
            } else {
                EnvelopeError::InvalidJson(e.to_string())
            }
        })?;
        Ok(Envelope {
            event,
            delivery,
            action: probe.action,
            installation: probe.installation.map(|i| i.id),
            repository: probe.repository,
        })
    }

    /// The `github-events` queue message for this delivery, as JSON bytes:
    /// `{event, delivery, action, installation, repository, payload}` where `payload` is the raw
    /// body, spliced in without being parsed or encoded again, or, when the payload was archived
    /// because it is too large for a queue message, `{…, payload_key}` naming the archived object.
    pub fn queue_message(&self, payload: Payload<'_>) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("an envelope always serializes");
        out.pop(); // the closing brace
        match payload {
            Payload::Inline(body) => {
                out.reserve(body.len() + 12);
                out.extend_from_slice(b",\"payload\":");
                out.extend_from_slice(body);
            }
            Payload::Archived(key) => {
                out.extend_from_slice(b",\"payload_key\":");
                serde_json::to_writer(&mut out, key).expect("a string always serializes");
            }
        }
        out.push(b'}');
        out
    }
}

/// Where a queued delivery's payload is.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// In the message itself: the raw body, which [`Envelope::parse`] validated as one JSON object.
    Inline(&'a [u8]),
    /// In the `archives` bucket under this key.
    Archived(&'a str),
}

/// A queued `github-events` message, as consumers read it back.
#[derive(Debug, Clone, Deserialize)]
pub struct QueuedDelivery {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub payload: Option<Box<RawValue>>,
    pub payload_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(Some(b"push"), Some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958"), body.as_bytes())
    }

    #[test]
    fn reads_installation_repository_and_action() {
        let env = parse(
            r#"{"action":"opened","installation":{"id":42,"node_id":"x"},
                "repository":{"id":7,"full_name":"octo/hello","private":false},"extra":[1,2,{"a":null}]}"#,
        )
        .unwrap();
        assert_eq!(env.action.as_deref(), Some("opened"));
        assert_eq!(env.installation, Some(42));
        assert_eq!(env.repository, Some(RepositoryRef { id: 7, full_name: "octo/hello".into() }));
    }

    #[test]
    fn bodies_that_are_not_one_json_object_are_refused() {
        assert!(matches!(parse(r#"{"repository": {"full_name": "#), Err(EnvelopeError::InvalidJson(_))));
        assert!(matches!(parse("{} trailing"), Err(EnvelopeError::InvalidJson(_))));
        assert!(matches!(parse(""), Err(EnvelopeError::InvalidJson(_))));
        assert_eq!(parse("[1,2]"), Err(EnvelopeError::NotAnObject));
        assert_eq!(parse("\"text\""), Err(EnvelopeError::NotAnObject));
    }

    #[test]
    fn headers_are_required_and_checked() {
        let body = b"{}";
        assert_eq!(
            Envelope::parse(None, Some(b"d"), body),
            Err(EnvelopeError::MissingHeader { header: "X-GitHub-Event" })
        );
        assert_eq!(
            Envelope::parse(Some(b"push"), None, body),
            Err(EnvelopeError::MissingHeader { header: "X-GitHub-Delivery" })
        );
        assert!(matches!(
            Envelope::parse(Some(b"Push Event"), Some(b"d"), body),
            Err(EnvelopeError::InvalidHeader { header: "X-GitHub-Event", .. })
        ));
        assert!(matches!(
            Envelope::parse(Some(b"push"), Some(b"a\"b"), body),
            Err(EnvelopeError::InvalidHeader { header: "X-GitHub-Delivery", .. })
        ));
        assert!(matches!(
            Envelope::parse(Some(b"push"), Some(&[b'a'; 129]), body),
            Err(EnvelopeError::InvalidHeader { header: "X-GitHub-Delivery", .. })
        ));
    }

    #[test]
    fn the_queue_message_embeds_the_raw_payload_and_reads_back() {
        let body = r#"{"repository":{"id":7,"full_name":"octo/hello"},"n":1.50}"#;
        let env = parse(body).unwrap();
        let msg = env.queue_message(Payload::Inline(body.as_bytes()));
        let text = String::from_utf8(msg.clone()).unwrap();
        assert!(
            text.contains(r#""payload":{"repository":{"id":7,"full_name":"octo/hello"},"n":1.50}"#),
            "{text}"
        );
        let back: QueuedDelivery = serde_json::from_slice(&msg).unwrap();
        assert_eq!(back.envelope, env);
        assert_eq!(back.payload.unwrap().get(), body);

        let archived: QueuedDelivery =
            serde_json::from_slice(&env.queue_message(Payload::Archived("webhooks/x.json"))).unwrap();
        assert_eq!(archived.payload_key.as_deref(), Some("webhooks/x.json"));
        assert!(archived.payload.is_none());
    }
}
