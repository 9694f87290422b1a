//! A repository's stored access token over real https: `ledge serve` (trusting a test CA through
//! `SSL_CERT_FILE`) fetches a connected repository from a loopback TLS server that wants
//! credentials, and the server sees the token of that repository — and none for a repository
//! connected without one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::Server;

const ENCRYPTION_KEY: &str = "e2e:an-e2e-encryption-key-of-32-bytes-or-more";
const TOKEN: &str = "ghs_e2e_repository_token";

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`leaf.pem`, `leaf.key`), made with
/// the `openssl` program.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ledge test CA"],
        ]
        .concat(),
    );
    let leaf = ["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"];
    openssl(&[&["req"][..], &ec, &leaf].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

/// The requests a server received: path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A loopback https server that wants credentials for everything: it answers 401 with a Basic
/// challenge and records each request's path and `Authorization` header.
fn private_https_server(dir: &Path) -> (u16, Seen) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("leaf.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, recorded) = (config.clone(), recorded.clone());
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_string());
                    }
                }
                recorded.lock().unwrap().push((path, authorization));
                let _ = tls.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, seen)
}

#[test]
fn a_connected_repository_is_fetched_over_https_with_its_own_access_token() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let (port, seen) = private_https_server(certs.path());
    let data = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    let server = Server::start_with(
        data.path(),
        &[],
        &[("SSL_CERT_FILE", ca.to_str().unwrap()), ("LEDGE_ENCRYPTION_KEY", ENCRYPTION_KEY)],
    );
    server.member_of("octo");
    let json = [("Content-Type", "application/json")];
    let account = br#"{"email": "e2e@example.com", "password": "an e2e passphrase"}"#;
    let login = server.request("POST", "/auth/login", &json, account).json();
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());
    let auth = [("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    for (name, token) in [("private", Some(TOKEN)), ("public", None)] {
        let mut body = serde_json::json!({
            "org": "octo", "git_url": format!("https://127.0.0.1:{port}/octo/{name}.git"),
        });
        if let Some(token) = token {
            body["access_token"] = token.into();
        }
        let answer = server.request("POST", "/repositories", &auth, body.to_string().as_bytes());
        assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.json()["index_queued"], true);
    }

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"))
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let requests = seen.lock().unwrap().clone();
        let private_with_token = requests.iter().any(|(path, auth)| {
            path.starts_with("/octo/private.git") && auth.as_deref() == Some(basic.as_str())
        });
        let public_asked = requests.iter().any(|(path, _)| path.starts_with("/octo/public.git"));
        if private_with_token && public_asked {
            // Only the repository with a token sent one; nobody sent another's.
            for (path, auth) in &requests {
                if path.starts_with("/octo/public.git") {
                    assert_eq!(auth, &None, "{requests:?}");
                } else if let Some(auth) = auth {
                    assert_eq!(auth, &basic, "{requests:?}");
                }
            }
            break;
        }
        assert!(Instant::now() < deadline, "the fetches did not reach the server as expected: {requests:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
