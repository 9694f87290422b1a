//! Email notifications through a mail server: an event reaches a subscriber's address as one
//! plain-text email, logged in with the configured user and `LEDGE_SMTP_PASSWORD`; a server that
//! does not offer STARTTLS gets nothing on an `smtp://` URL (no downgrade to plain text) and the
//! delivery ends in the dead-letter queue with the reason; without a mail server, nothing is sent.
//!
//! The mail server is a small SMTP sink on loopback that speaks the protocol (RFC 5321: greeting,
//! EHLO, AUTH PLAIN, MAIL, RCPT, DATA with dot-stuffing, QUIT) and records what it was sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ledge_config::LoadOptions;
use ledge_consumers::Consumers;
use ledge_env::{Env, QueueBinding};
use ledge_platform::{NewPreferences, NotificationEvent, Platform, Principal, TargetPolicy};
use ledge_queue::SendOptions;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::notifications::{eventually, indexing_event};

/// One email as the sink received it.
#[derive(Debug, Clone)]
struct Mail {
    login: Option<(String, String)>,
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Default)]
struct Sink {
    mails: Mutex<Vec<Mail>>,
    /// Sessions that ended before a mail was sent (the client gave up, e.g. no STARTTLS).
    abandoned: Mutex<usize>,
}

/// An SMTP server on loopback: `AUTH PLAIN` accepted, every recipient accepted, no STARTTLS.
async fn smtp_sink() -> (SocketAddr, Arc<Sink>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sink = Arc::new(Sink::default());
    let shared = sink.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let sink = shared.clone();
            tokio::spawn(async move { session(socket, &sink).await });
        }
    });
    (address, sink)
}

async fn session(socket: tokio::net::TcpStream, sink: &Sink) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut reply = async |text: &str| write.write_all(format!("{text}\r\n").as_bytes()).await.unwrap();
    reply("220 sink.test ESMTP").await;
    let (mut login, mut from, mut to, mut sent) = (None, String::new(), Vec::new(), false);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            break;
        }
        let command = line.trim_end().to_string();
        let verb = command.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => reply("250-sink.test\r\n250-8BITMIME\r\n250 AUTH PLAIN").await,
            "AUTH" => {
                let encoded = command.split(' ').nth(2).unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
                let parts: Vec<String> =
                    decoded.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                login = Some((parts[1].clone(), parts[2].clone()));
                reply("235 2.7.0 authenticated").await;
            }
            "MAIL" => {
                from = command.to_string();
                reply("250 2.1.0 ok").await;
            }
            "RCPT" => {
                to.push(command.to_string());
                reply("250 2.1.5 ok").await;
            }
            "DATA" => {
                reply("354 go ahead").await;
                let mut data = String::new();
                loop {
                    line.clear();
                    lines.read_line(&mut line).await.unwrap();
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mail = Mail { login: login.clone(), from: from.clone(), to: to.clone(), data };
                sink.mails.lock().unwrap().push(mail);
                sent = true;
                reply("250 2.0.0 queued").await;
            }
            "RSET" | "NOOP" => reply("250 ok").await,
            "QUIT" => {
                reply("221 bye").await;
                break;
            }
            _ => reply("502 5.5.2 command not recognized").await,
        }
    }
    if !sent {
        *sink.abandoned.lock().unwrap() += 1;
    }
}

struct World {
    env: Arc<Env>,
    platform: Platform,
    _dir: tempfile::TempDir,
}

async fn world(vars: &[(&str, String)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut env: std::collections::BTreeMap<String, String> = [
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_RETRIES", "1"),
        ("LEDGE_QUEUES__NOTIFICATIONS__RETRY_DELAY", "0"),
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_BATCH_TIMEOUT", "0"),
        ("LEDGE_NOTIFICATIONS__DELIVERY_TIMEOUT", "5s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let config = ledge_config::load(LoadOptions {
        data_dir: Some(dir.path().to_path_buf()),
        env,
        working_dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
    .unwrap();
    let env = Arc::new(Env::open(Arc::new(config)).unwrap());
    World { platform: crate::support::platform(&env, None).await, env, _dir: dir }
}

/// Grace, owner of an organization, wants `indexing.finished` by email only; returns its slug.
async fn subscribe_by_email(world: &World) -> String {
    let platform = &world.platform;
    platform.signup("grace@example.com", "a long enough passphrase", None, "127.0.0.1").await.unwrap();
    let tokens = platform.login("grace@example.com", "a long enough passphrase", "127.0.0.1").await.unwrap();
    let grace = platform.authenticate(format!("Bearer {}", tokens.access_token).as_bytes()).await.unwrap();
    let Principal::User { user, .. } = &grace else { panic!("a user") };
    let org = platform.create_organization(user, "Mail", None).await.unwrap().organization;
    let access = platform.access(&grace, &org.id).await.unwrap();
    let preferences = NewPreferences {
        email: Some("grace.hopper@example.com"),
        webhook_url: None,
        slack_webhook_url: None,
        events: vec![NotificationEvent::IndexingFinished],
    };
    platform
        .set_notification_preferences(&access, &user.id, &preferences, TargetPolicy::default())
        .await
        .unwrap();
    org.slug
}

/// Queues the `indexing.finished` event of job 42 for the organization `slug`.
async fn send_indexing_finished(world: &World, slug: &str) {
    let queue = world.env.queue(QueueBinding::Notifications).await.unwrap();
    let event = indexing_event("job-42", "indexing.finished", slug);
    queue.send(event, SendOptions::dedup("job-42")).await.unwrap();
}

/// Runs the consumers of `world` while `check` runs, then stops them.
async fn with_consumers(world: &World, check: impl AsyncFnOnce()) {
    let consumers = Consumers::build(&world.env).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumers.run(async move {
        let _ = stopped.await;
    }));
    check().await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_event_reaches_a_subscriber_as_one_email_through_the_mail_server() {
    let (at, sink) = smtp_sink().await;
    let world = world(&[
        ("LEDGE_NOTIFICATIONS__SMTP_URL", format!("smtp://alerts%40example.com@{at}?tls=none")),
        ("LEDGE_NOTIFICATIONS__EMAIL_FROM", "ledge alerts <alerts@example.com>".into()),
        ("LEDGE_SMTP_PASSWORD", "correct horse".into()),
    ])
    .await;
    let slug = subscribe_by_email(&world).await;
    with_consumers(&world, async || {
        send_indexing_finished(&world, &slug).await;
        eventually("the email", || !sink.mails.lock().unwrap().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await;

    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "one email, sent once: {mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.login, Some(("alerts@example.com".to_owned(), "correct horse".to_owned())));
    assert_eq!(mail.from, "MAIL FROM:<alerts@example.com>");
    assert_eq!(mail.to, ["RCPT TO:<grace.hopper@example.com>"]);
    let header = |name: &str| {
        mail.data
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in\n{}", mail.data))
            .to_owned()
    };
    assert_eq!(header("From"), "\"ledge alerts\" <alerts@example.com>");
    assert_eq!(header("To"), "grace.hopper@example.com");
    assert_eq!(header("Subject"), "[ledge] octo/hello indexed at 0123456789ab: 3 files");
    assert_eq!(header("X-Ledge-Event"), "indexing.finished");
    assert!(
        header("Message-ID").starts_with("<job-42."),
        "the same id on every attempt: {}",
        header("Message-ID")
    );
    assert!(header("Content-Type").starts_with("text/plain"));
    let body = mail.data.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    for expected in [
        "octo/hello indexed at 0123456789ab: 3 files",
        &format!("Organization: {slug}"),
        "Event:        indexing.finished",
        "When:         Tue, 14 Nov 2023 22:13:20 GMT",
        "\"commit\": \"0123456789abcdef\"",
    ] {
        assert!(body.contains(expected), "{expected:?} not in the body:\n{body}");
    }
}

#[tokio::test]
async fn a_mail_server_without_starttls_gets_nothing_and_the_delivery_is_dead_lettered() {
    let (at, sink) = smtp_sink().await;
    let world = world(&[
        // smtp:// without ?tls=none: STARTTLS is required, and this server does not offer it.
        ("LEDGE_NOTIFICATIONS__SMTP_URL", format!("smtp://alerts@{at}")),
        ("LEDGE_NOTIFICATIONS__EMAIL_FROM", "alerts@example.com".into()),
        ("LEDGE_SMTP_PASSWORD", "correct horse".into()),
    ])
    .await;
    let slug = subscribe_by_email(&world).await;
    let backend = world.env.queue_backend().await.unwrap();
    let mut dead = Vec::new();
    with_consumers(&world, async || {
        send_indexing_finished(&world, &slug).await;
        for _ in 0..200 {
            dead = backend.peek("notifications-dlq", 10).await.unwrap();
            if !dead.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    assert_eq!(dead.len(), 1, "the email delivery is dead-lettered after its retries");
    let info = dead[0].dead_letter.clone().unwrap();
    let reason = info.last_error.unwrap_or_default();
    assert!(reason.contains("cannot send email through smtp://alerts@127.0.0.1"), "{reason}");
    assert!(reason.to_lowercase().contains("starttls"), "the reason names STARTTLS: {reason}");
    assert!(sink.mails.lock().unwrap().is_empty(), "nothing was sent in plain text");
    // Two attempts (max_retries = 1), each ended before AUTH or MAIL.
    eventually("two abandoned sessions", || *sink.abandoned.lock().unwrap() == 2).await;
}

#[tokio::test]
async fn without_a_mail_server_an_email_preference_sends_nothing() {
    let world = world(&[]).await;
    let slug = subscribe_by_email(&world).await;
    with_consumers(&world, async || {
        send_indexing_finished(&world, &slug).await;
        let backend = world.env.queue_backend().await.unwrap();
        for _ in 0..200 {
            let depth = backend.depth("notifications").await.unwrap();
            if depth.ready + depth.delayed + depth.in_flight == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the event was not consumed");
    })
    .await;
    // Had an email delivery been queued, it would have failed (no server) and been dead-lettered.
    let backend = world.env.queue_backend().await.unwrap();
    assert!(backend.peek("notifications-dlq", 10).await.unwrap().is_empty(), "no delivery was attempted");
}
