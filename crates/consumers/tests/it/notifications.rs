//! The `notifications` consumer end to end: an event on the queue (as the indexing pipeline sends
//! it, the organization named by slug) reaches each subscribed member's webhook and Slack URL on a
//! local HTTP server; a receiver that fails twice is retried until it answers; one that always
//! fails ends in the dead-letter queue with its last error.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ledge_config::LoadOptions;
use ledge_consumers::Consumers;
use ledge_env::{Env, QueueBinding};
use ledge_platform::{NewPreferences, NotificationEvent, Platform, Principal, TargetPolicy};
use ledge_queue::{MessageBody, SendOptions};
use serde_json::{Value, json};

/// What the receiver was sent: (path, `x-ledge-event` header, body).
#[derive(Default)]
pub(crate) struct Received {
    requests: Mutex<Vec<(String, String, Value)>>,
}

impl Received {
    pub(crate) fn to(&self, path: &str) -> Vec<Value> {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter(|(p, _, _)| p == path).map(|(_, _, body)| body.clone()).collect()
    }
}

/// A local receiver: `/ok/*` answers 204, `/flaky` 500 twice then 200, `/down` always 503.
pub(crate) async fn receiver() -> (SocketAddr, Arc<Received>) {
    async fn hook(
        State(received): State<Arc<Received>>,
        Path(path): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let event = headers.get("x-ledge-event").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let mut requests = received.requests.lock().unwrap();
        requests.push((path.clone(), event, body));
        let seen = requests.iter().filter(|(p, _, _)| *p == path).count();
        match path.as_str() {
            "flaky" if seen <= 2 => StatusCode::INTERNAL_SERVER_ERROR,
            "down" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::NO_CONTENT,
        }
    }
    let received = Arc::new(Received::default());
    let router = Router::new().route("/{*path}", post(hook)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, received)
}

struct World {
    env: Arc<Env>,
    platform: Platform,
    _dir: tempfile::TempDir,
}

/// An env whose `notifications` queue retries at once, twice, and allows the local receiver.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_RETRIES", "2"),
        ("LEDGE_QUEUES__NOTIFICATIONS__RETRY_DELAY", "0"),
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_BATCH_TIMEOUT", "0"),
        ("LEDGE_NOTIFICATIONS__ALLOW_PRIVATE_TARGETS", "true"),
        ("LEDGE_NOTIFICATIONS__DELIVERY_TIMEOUT", "2s"),
    ];
    let config = ledge_config::load(LoadOptions {
        data_dir: Some(dir.path().to_path_buf()),
        env: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        working_dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
    .unwrap();
    let env = Arc::new(Env::open(Arc::new(config)).unwrap());
    World { platform: crate::support::platform(&env, None).await, env, _dir: dir }
}

/// Ada, owner of one organization per receiver behaviour, each with her preferences pointing at it.
async fn subscribe(world: &World, at: SocketAddr) -> Vec<String> {
    let platform = &world.platform;
    platform.signup("ada@example.com", "a long enough passphrase", None, "127.0.0.1").await.unwrap();
    let tokens = platform.login("ada@example.com", "a long enough passphrase", "127.0.0.1").await.unwrap();
    let ada = platform.authenticate(format!("Bearer {}", tokens.access_token).as_bytes()).await.unwrap();
    let Principal::User { user, .. } = &ada else { panic!("a user") };
    let mut slugs = Vec::new();
    for (name, webhook, slack) in [
        ("Happy", format!("http://{at}/ok-webhook"), Some(format!("http://{at}/ok-slack"))),
        ("Flaky", format!("http://{at}/flaky"), None),
        ("Down", format!("http://{at}/down"), None),
    ] {
        let org = platform.create_organization(user, name, None).await.unwrap().organization;
        let access = platform.access(&ada, &org.id).await.unwrap();
        let preferences = NewPreferences {
            email: Some("ada@example.com"),
            webhook_url: Some(&webhook),
            slack_webhook_url: slack.as_deref(),
            events: vec![NotificationEvent::IndexingFinished],
        };
        let open = TargetPolicy { allow_private: true };
        platform.set_notification_preferences(&access, &user.id, &preferences, open).await.unwrap();
        slugs.push(org.slug);
    }
    slugs
}

/// The event the indexing pipeline sends when a job ends.
pub(crate) fn indexing_event(id: &str, event: &str, org_slug: &str) -> MessageBody {
    MessageBody::json_from(&json!({
        "kind": "event",
        "id": id,
        "event": event,
        "org_slug": org_slug,
        "subject": "octo/hello",
        "summary": "octo/hello indexed at 0123456789ab: 3 files",
        "occurred_at": 1_700_000_000_000i64,
        "data": { "repository": "octo/hello", "commit": "0123456789abcdef" },
    }))
    .unwrap()
}

pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting: {what}");
}

#[tokio::test]
async fn events_reach_subscribers_with_retries_and_dead_letters() {
    let (at, received) = receiver().await;
    let world = world().await;
    let slugs = subscribe(&world, at).await;
    let consumers = Consumers::build(&world.env).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumers.run(async move {
        let _ = stopped.await;
    }));

    let queue = world.env.queue(QueueBinding::Notifications).await.unwrap();
    for (i, slug) in slugs.iter().enumerate() {
        let id = format!("event-{i}");
        queue
            .send(indexing_event(&id, "indexing.finished", slug), SendOptions::dedup(id.clone()))
            .await
            .unwrap();
    }
    // An event nobody subscribed to sends nothing.
    let unwanted = indexing_event("event-failed", "indexing.failed", &slugs[0]);
    queue.send(unwanted, SendOptions::default()).await.unwrap();

    eventually("the webhook and the Slack URL", || {
        received.to("ok-webhook").len() == 1 && received.to("ok-slack").len() == 1
    })
    .await;
    let webhook = &received.to("ok-webhook")[0];
    assert_eq!(webhook["event"], "indexing.finished");
    assert_eq!(webhook["organization"]["slug"], slugs[0].as_str());
    assert_eq!(webhook["subject"], "octo/hello");
    assert_eq!(webhook["data"]["commit"], "0123456789abcdef");
    assert_eq!(received.to("ok-slack")[0], json!({ "text": "octo/hello indexed at 0123456789ab: 3 files" }));
    let headed =
        received.requests.lock().unwrap().iter().filter(|(_, e, _)| e == "indexing.finished").count();
    assert!(headed >= 2, "every delivery names its event in x-ledge-event");

    eventually("the flaky receiver's third delivery", || received.to("flaky").len() == 3).await;
    eventually("the down receiver's three deliveries", || received.to("down").len() == 3).await;
    let backend = world.env.queue_backend().await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = backend.peek("notifications-dlq", 10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "only the delivery that always failed is dead-lettered");
    let info = dead[0].dead_letter.clone().expect("dead-letter info");
    assert_eq!((info.source_queue.as_str(), info.attempts), ("notifications", 3));
    assert!(info.last_error.as_deref().unwrap_or_default().contains("503"), "{info:?}");
    let task: Value = dead[0].body.json().unwrap();
    assert_eq!((task["kind"].as_str(), task["channel"].as_str()), (Some("delivery"), Some("webhook")));

    // Nothing more arrives: the flaky receiver is not called again once it answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.to("flaky").len(), 3);
    assert_eq!(received.to("ok-webhook").len(), 1, "a delivered notification is not sent twice");
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
