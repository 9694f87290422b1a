//! GitHub webhook intake for ledge.
//!
//! * [`signature`]: `X-Hub-Signature-256` verification ([`WebhookVerifier`]); [`keys`]: which
//!   secret verifies a delivery ([`WebhookKeys`]: a repository's own, else the server's).
//! * [`envelope`]: the headers and payload fields ledge keeps ([`Envelope`]) and the `github-events`
//!   queue message built from them.
//! * [`intake`]: [`WebhookIntake`] verifies, parses, deduplicates and queues one delivery.
//! * [`recorder`]: [`EventRecorder`], the `github-events` consumer until indexing lands.
//!
//! Invariant: this crate knows GitHub's wire format and the bindings' traits, not HTTP frameworks
//! or which driver backs a binding.

pub mod envelope;
pub mod intake;
pub mod keys;
pub mod recorder;
pub mod signature;

pub use envelope::{Envelope, EnvelopeError, Payload, QueuedDelivery, RepositoryRef};
pub use intake::{Accepted, DeliveryHeaders, IntakeError, WebhookIntake};
pub use keys::WebhookKeys;
pub use recorder::EventRecorder;
pub use signature::{SignatureError, WebhookVerifier};
