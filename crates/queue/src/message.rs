//! Message bodies, content types, ids and the producer's send options and outcomes.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::de::{DeserializeOwned, IgnoredAny};
use uuid::Uuid;

use crate::QueueError;

/// How a message's body is encoded: the contract's `json` (the default for JSON values), `text`,
/// `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    Json,
    Text,
    Bytes,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Text => "text",
            ContentType::Bytes => "bytes",
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentType {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(ContentType::Json),
            "text" => Ok(ContentType::Text),
            "bytes" => Ok(ContentType::Bytes),
            other => {
                Err(QueueError::invalid("content_type", format!("{other:?} is not json, text or bytes")))
            }
        }
    }
}

/// A message body.
///
/// Sending: the variant names the content type (`Json`/`RawJson` → json, `Text` → text, `Bytes` →
/// bytes) unless [`SendOptions::content_type`] declares one, and the payload must then be valid
/// for it: json → one JSON document, text → UTF-8, bytes → anything; a `Json` value can only be
/// sent as json. Anything else is rejected with [`QueueError::InvalidInput`].
///
/// Receiving: json bodies arrive as `RawJson` (the serialized document, parsed on demand with
/// [`MessageBody::json`]), text as `Text`, bytes as `Bytes`.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageBody {
    /// A JSON value, serialized at send.
    Json(serde_json::Value),
    /// A serialized JSON document, validated at send and stored as is.
    RawJson(Bytes),
    /// A serialized JSON document its builder guarantees valid — serialized by serde, or spliced
    /// from parts that were each parsed — stored as is without the second parse `RawJson` gets
    /// (debug builds still check). Received bodies are never this variant.
    ValidJson(Bytes),
    Text(String),
    Bytes(Bytes),
}

impl MessageBody {
    /// Serializes `value` into a json body.
    pub fn json_from<T: serde::Serialize + ?Sized>(value: &T) -> Result<MessageBody, QueueError> {
        serde_json::to_vec(value)
            .map(|v| MessageBody::ValidJson(Bytes::from(v)))
            .map_err(|e| QueueError::invalid("body", format!("cannot serialize to JSON: {e}")))
    }

    /// The content type this body has when no other is declared.
    pub fn content_type(&self) -> ContentType {
        match self {
            MessageBody::Json(_) | MessageBody::RawJson(_) | MessageBody::ValidJson(_) => ContentType::Json,
            MessageBody::Text(_) => ContentType::Text,
            MessageBody::Bytes(_) => ContentType::Bytes,
        }
    }

    /// Parses a json (or text) body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, QueueError> {
        let parsed = match self {
            MessageBody::Json(value) => T::deserialize(value),
            MessageBody::RawJson(raw) | MessageBody::ValidJson(raw) => serde_json::from_slice(raw),
            MessageBody::Text(text) => serde_json::from_str(text),
            MessageBody::Bytes(_) => {
                return Err(QueueError::invalid("body", "a bytes body is not JSON"));
            }
        };
        parsed.map_err(|e| QueueError::invalid("body", format!("not the expected JSON: {e}")))
    }

    /// Checks the body against its (declared or natural) content type and serializes it.
    pub(crate) fn encode(self, declared: Option<ContentType>) -> Result<(ContentType, Bytes), QueueError> {
        let content_type = declared.unwrap_or_else(|| self.content_type());
        let payload = match self {
            MessageBody::Json(value) => {
                if content_type != ContentType::Json {
                    return Err(QueueError::invalid(
                        "content_type",
                        format!("a JSON value can only be sent as json, not {content_type}"),
                    ));
                }
                let serialized = serde_json::to_vec(&value)
                    .map_err(|e| QueueError::invalid("body", format!("cannot serialize to JSON: {e}")))?;
                return Ok((ContentType::Json, Bytes::from(serialized)));
            }
            MessageBody::ValidJson(raw) if content_type == ContentType::Json => {
                debug_assert!(
                    serde_json::from_slice::<IgnoredAny>(&raw).is_ok(),
                    "a ValidJson body is not JSON"
                );
                return Ok((ContentType::Json, raw));
            }
            MessageBody::ValidJson(raw) => raw,
            MessageBody::RawJson(raw) | MessageBody::Bytes(raw) => raw,
            MessageBody::Text(text) => Bytes::from(text),
        };
        match content_type {
            ContentType::Json => {
                serde_json::from_slice::<IgnoredAny>(&payload)
                    .map_err(|e| QueueError::invalid("body", format!("not a JSON document: {e}")))?;
            }
            ContentType::Text => {
                std::str::from_utf8(&payload)
                    .map_err(|e| QueueError::invalid("body", format!("text is not UTF-8: {e}")))?;
            }
            ContentType::Bytes => {}
        }
        Ok((content_type, payload))
    }

    /// Rebuilds a received body from its stored form.
    pub(crate) fn decode(content_type: ContentType, payload: Bytes) -> MessageBody {
        match content_type {
            ContentType::Json => MessageBody::RawJson(payload),
            ContentType::Text => match String::from_utf8(payload.to_vec()) {
                Ok(text) => MessageBody::Text(text),
                // Only a foreign writer can store non-UTF-8 text; hand the bytes over untouched.
                Err(_) => MessageBody::Bytes(payload),
            },
            ContentType::Bytes => MessageBody::Bytes(payload),
        }
    }
}

/// A message's id: a UUIDv7 (time-ordered), shown as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Uuid);

impl MessageId {
    pub fn from_uuid(uuid: Uuid) -> MessageId {
        MessageId(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl FromStr for MessageId {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(MessageId).map_err(|e| QueueError::invalid("id", e.to_string()))
    }
}

/// Options of one `send` (or one entry of a batch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Declares the body's content type (default: the body's own, see [`MessageBody`]).
    pub content_type: Option<ContentType>,
    /// 0–43 200; overrides the queue's default delivery delay, and an explicit 0 cancels it.
    pub delay_seconds: Option<u32>,
    /// A ledge extension: if a message with this key was sent to this queue within the dedup
    /// window, the send does nothing and returns [`SendOutcome::Duplicate`].
    pub dedup_key: Option<String>,
}

impl SendOptions {
    pub fn delay(seconds: u32) -> SendOptions {
        SendOptions { delay_seconds: Some(seconds), ..SendOptions::default() }
    }

    pub fn dedup(key: impl Into<String>) -> SendOptions {
        SendOptions { dedup_key: Some(key.into()), ..SendOptions::default() }
    }

    pub fn content_type(content_type: ContentType) -> SendOptions {
        SendOptions { content_type: Some(content_type), ..SendOptions::default() }
    }
}

/// One message of a `send_batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEntry {
    pub body: MessageBody,
    pub options: SendOptions,
}

impl BatchEntry {
    pub fn new(body: MessageBody) -> BatchEntry {
        BatchEntry { body, options: SendOptions::default() }
    }
}

/// Options of a whole `send_batch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// Applies to the entries without their own `delay_seconds`; overrides the queue's default.
    pub delay_seconds: Option<u32>,
}

/// What a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message is persisted under this id.
    Queued { id: MessageId },
    /// A message with the same dedup key was sent within the dedup window: nothing was stored.
    Duplicate,
}

impl SendOutcome {
    /// The new message's id, if one was queued.
    pub fn id(&self) -> Option<MessageId> {
        match self {
            SendOutcome::Queued { id } => Some(*id),
            SendOutcome::Duplicate => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejected(body: MessageBody, declared: Option<ContentType>) {
        let result = body.clone().encode(declared);
        assert!(
            matches!(result, Err(QueueError::InvalidInput { .. })),
            "{body:?} as {declared:?}: {result:?}"
        );
    }

    #[test]
    fn bodies_take_their_natural_content_type() {
        let (ct, payload) = MessageBody::Json(json!({"a": 1})).encode(None).unwrap();
        assert_eq!((ct, &payload[..]), (ContentType::Json, &br#"{"a":1}"#[..]));
        let (ct, payload) = MessageBody::Text("hé".into()).encode(None).unwrap();
        assert_eq!((ct, &payload[..]), (ContentType::Text, "hé".as_bytes()));
        let (ct, _) = MessageBody::Bytes(Bytes::from_static(&[0xff, 0])).encode(None).unwrap();
        assert_eq!(ct, ContentType::Bytes);
        let (ct, _) = MessageBody::RawJson(Bytes::from_static(b"[1, 2]")).encode(None).unwrap();
        assert_eq!(ct, ContentType::Json);
    }

    #[test]
    fn a_body_that_does_not_match_its_type_is_rejected() {
        rejected(MessageBody::RawJson(Bytes::from_static(b"{not json")), None);
        rejected(MessageBody::RawJson(Bytes::from_static(b"{} trailing")), None);
        rejected(MessageBody::Bytes(Bytes::from_static(&[0xff, 0xfe])), Some(ContentType::Text));
        rejected(MessageBody::Text("plain words".into()), Some(ContentType::Json));
        rejected(MessageBody::Json(json!(1)), Some(ContentType::Text));
        rejected(MessageBody::Json(json!(1)), Some(ContentType::Bytes));
    }

    #[test]
    fn a_declared_type_is_honoured_when_the_payload_fits() {
        let (ct, _) = MessageBody::Text("{\"a\":1}".into()).encode(Some(ContentType::Json)).unwrap();
        assert_eq!(ct, ContentType::Json);
        let (ct, _) = MessageBody::Bytes(Bytes::from_static(b"ok")).encode(Some(ContentType::Text)).unwrap();
        assert_eq!(ct, ContentType::Text);
        let (ct, _) = MessageBody::Text("x".into()).encode(Some(ContentType::Bytes)).unwrap();
        assert_eq!(ct, ContentType::Bytes);
    }

    #[test]
    fn received_json_parses_on_demand() {
        let body = MessageBody::decode(ContentType::Json, Bytes::from_static(br#"{"n":3}"#));
        let parsed: serde_json::Value = body.json().unwrap();
        assert_eq!(parsed, json!({"n": 3}));
        assert_eq!(
            MessageBody::decode(ContentType::Text, Bytes::from_static(b"hi")),
            MessageBody::Text("hi".into())
        );
    }

    #[test]
    fn message_ids_round_trip_through_their_text() {
        let id = MessageId::from_uuid(Uuid::now_v7());
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<MessageId>().unwrap(), id);
        assert!("nope".parse::<MessageId>().is_err());
    }
}
