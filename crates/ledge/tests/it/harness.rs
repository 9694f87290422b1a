//! Starts `ledge serve` as a child process and talks HTTP/1.1 to it with a minimal client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SECRET: &str = "e2e-secret";
pub const JWT_KEYS: &str = "e2e:an-e2e-signing-key-of-at-least-32-bytes";

pub fn ledge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ledge"))
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    log: mpsc::Receiver<String>,
    /// Sent as `Authorization: Bearer` by [`Server::get`] once [`Server::member_of`] made one.
    bearer: std::sync::OnceLock<String>,
}

impl Server {
    /// Starts `ledge serve` on a free port over `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[], &[])
    }

    /// [`Server::start`] with more `serve` arguments and environment variables.
    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = ledge()
            .args(["--log-format", "json", "serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .env("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)
            .env("LEDGE_JWT_KEYS", JWT_KEYS)
            .env("LEDGE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ledge starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // From here on, the server is killed and reaped on drop, also if start-up fails.
        let mut server = Server { child, port: 0, log: rx, bearer: std::sync::OnceLock::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.port == 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = server.log.recv_timeout(wait).expect("ledge logs that it listens");
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if event["message"] == "ledge is listening" {
                let address = event["address"].as_str().unwrap();
                server.port = address.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        server
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        request(self.port, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        match self.bearer.get() {
            Some(bearer) => self.request("GET", path, &[("Authorization", bearer)], b""),
            None => self.request("GET", path, &[], b""),
        }
    }

    /// Makes [`Server::get`] ask as an API key (scope `repos:read`) of the organization `slug`,
    /// signing a user up and creating the organization unless an earlier server on the same data
    /// directory did.
    pub fn member_of(&self, slug: &str) {
        let json = [("Content-Type", "application/json")];
        let account = br#"{"email": "e2e@example.com", "password": "an e2e passphrase"}"#;
        assert_eq!(self.request("POST", "/auth/signup", &json, account).status, 202);
        let login = self.request("POST", "/auth/login", &json, account);
        assert_eq!(login.status, 200, "{}", String::from_utf8_lossy(&login.body));
        let access = format!("Bearer {}", login.json()["access_token"].as_str().unwrap());
        let auth = [("Content-Type", "application/json"), ("Authorization", access.as_str())];
        let body = serde_json::json!({ "name": slug, "slug": slug }).to_string();
        let created = self.request("POST", "/organizations", &auth, body.as_bytes());
        let org = if created.status == 201 {
            created.json()["id"].as_str().unwrap().to_owned()
        } else {
            let mine = self.request("GET", "/organizations", &auth, b"").json();
            let org = mine["items"].as_array().unwrap().iter().find(|o| o["slug"] == slug);
            org.unwrap_or_else(|| panic!("no organization {slug}: {mine}"))["id"].as_str().unwrap().to_owned()
        };
        let key = br#"{"name": "e2e", "scopes": ["repos:read"]}"#;
        let answer = self.request("POST", &format!("/organizations/{org}/api-keys"), &auth, key);
        assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
        let secret = answer.json()["secret"].as_str().unwrap().to_owned();
        self.bearer.set(format!("Bearer {secret}")).expect("member_of is called once per server");
    }

    pub fn webhook(&self, event: &str, delivery: &str, body: &[u8]) -> Response {
        let signature = ledge_github::WebhookVerifier::new(SECRET.as_bytes()).sign(body);
        self.request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", delivery),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        )
    }

    /// The value of one Prometheus series, e.g. `ledge_queue_depth{queue="x",state="ready"}`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = String::from_utf8(self.get("/metrics").body).unwrap();
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Polls `check` until it holds or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut check: impl FnMut(&Server) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.unwrap().success());
    }

    /// Waits for the process to exit; returns its status and the log lines it wrote.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let lines = self.log.try_iter().collect();
                return (status, lines);
            }
            assert!(Instant::now() < deadline, "ledge did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked") {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
