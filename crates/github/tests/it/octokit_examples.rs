//! Every example payload GitHub publishes (npm `@octokit/webhooks-examples`) yields an envelope.

use ledge_github::{Envelope, WebhookVerifier};

#[derive(serde::Deserialize)]
struct EventExamples {
    name: String,
    examples: Vec<serde_json::Value>,
}

fn examples() -> Vec<EventExamples> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/octokit-webhooks-examples.json");
    serde_json::from_slice(&std::fs::read(path).expect("testdata present")).expect("examples parse")
}

#[test]
fn all_329_published_examples_of_58_events_parse_and_verify() {
    let events = examples();
    assert_eq!(events.len(), 58);
    let verifier = WebhookVerifier::new(b"examples-secret");
    let mut seen = 0;
    for event in &events {
        for (i, example) in event.examples.iter().enumerate() {
            let body = serde_json::to_vec(example).unwrap();
            let delivery = format!("{}-{i}", event.name);
            let signature = verifier.sign(&body);
            verifier.verify(Some(signature.as_bytes()), &body).unwrap();
            let env = Envelope::parse(Some(event.name.as_bytes()), Some(delivery.as_bytes()), &body)
                .unwrap_or_else(|e| panic!("{} example {i}: {e}", event.name));
            assert_eq!(env.event, event.name);
            assert_eq!(env.action.as_deref(), example.get("action").and_then(|a| a.as_str()));
            assert_eq!(
                env.repository.as_ref().map(|r| r.full_name.as_str()),
                example.pointer("/repository/full_name").and_then(|n| n.as_str()),
                "{} example {i}",
                event.name
            );
            assert_eq!(env.installation, example.pointer("/installation/id").and_then(|n| n.as_u64()));
            seen += 1;
        }
    }
    assert_eq!(seen, 329);
}
