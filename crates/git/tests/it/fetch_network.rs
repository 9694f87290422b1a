//! The network path (gitoxide's protocol v2 client over reqwest) against a loopback smart-HTTP server:
//! fetches, incremental fetches, wants, credentials, and the typed errors. https itself cannot be reached
//! from the test machine; http exercises the same code with plain http allowed.

use std::num::NonZeroU32;

use ledge_git::{CommitId, Credentials, Error, ErrorKind, MirrorOptions, Source, Want};

use crate::http_server::GitHttpServer;
use crate::support::{TestMirror, TestRepo, fixture};

fn http_mirror() -> TestMirror {
    TestMirror::with_options(MirrorOptions {
        allow_plain_http: true,
        connect_timeout: std::time::Duration::from_secs(5),
        ..MirrorOptions::default()
    })
}

fn served(server: &GitHttpServer) -> Source {
    Source::parse(&server.url("widgets")).expect("url")
}

#[test]
fn fetch_over_http_is_shallow_and_incremental() {
    let fixture = fixture();
    let repo = &fixture.repo;
    let server = GitHttpServer::start(repo.parent_dir(), None);
    let mirror = http_mirror();

    let first = mirror.fetch(&served(&server), &Want::branch("main"), None).expect("first fetch");
    assert_eq!(first.commit, fixture.initial);
    assert!(first.created_mirror);
    assert_eq!(first.received_objects, repo.objects_in_snapshot(fixture.initial));
    assert_eq!(mirror.list_files(fixture.initial).expect("list").files.len(), 22);

    repo.write("src/added.rs", "pub fn added() {}\n");
    let second_commit = repo.commit("second");
    let second = mirror.fetch(&served(&server), &Want::branch("main"), None).expect("second fetch");
    assert_eq!(second.commit, second_commit);
    // The missing objects (commit, root and `src` trees, one blob), plus at most the delta bases of the two
    // changed trees, which complete the server's thin pack; not the rest of the snapshot.
    let missing = repo.objects_between(fixture.initial, second_commit);
    assert_eq!(missing, 4);
    assert!((missing..=missing + 2).contains(&second.received_objects), "{second:?}");
    let stats = mirror.stats().expect("stats");
    assert_eq!((stats.packs, stats.packed_objects), (2, first.received_objects + second.received_objects));

    let changes = mirror.diff(fixture.initial, second_commit).expect("diff");
    assert_eq!(changes.iter().map(|c| c.path()).collect::<Vec<_>>(), ["src/added.rs"]);
}

#[test]
fn commits_are_fetched_by_id_and_present_ones_cost_no_request() {
    let repo = TestRepo::new();
    let ids: Vec<CommitId> = (0..3)
        .map(|i| {
            repo.write(&format!("f{i}.txt"), format!("{i}\n"));
            repo.commit(&format!("c{i}"))
        })
        .collect();
    let server = GitHttpServer::start(repo.parent_dir(), None);
    let mirror = http_mirror();

    let after = mirror.fetch(&served(&server), &Want::Commit(ids[2]), None).expect("after");
    assert_eq!(after.commit, ids[2]);
    assert!(!mirror.contains(ids[1]).expect("contains"), "depth 1");
    let before = mirror.fetch(&served(&server), &Want::Commit(ids[0]), None).expect("before");
    assert_eq!(before.commit, ids[0]);
    assert_eq!(mirror.diff(ids[0], ids[2]).expect("diff").len(), 2);

    let requests = server.requests();
    let again = mirror.fetch(&served(&server), &Want::Commit(ids[2]), None).expect("present");
    assert_eq!(again.received_objects, 0);
    assert_eq!(server.requests(), requests, "no request for a commit the mirror has");
}

#[test]
fn full_depth_fetches_history() {
    let repo = TestRepo::new();
    let ids: Vec<CommitId> = (0..3)
        .map(|i| {
            repo.write(&format!("f{i}.txt"), format!("{i}\n"));
            repo.commit(&format!("c{i}"))
        })
        .collect();
    let server = GitHttpServer::start(repo.parent_dir(), None);
    let mirror = TestMirror::with_options(MirrorOptions {
        allow_plain_http: true,
        depth: None,
        ..MirrorOptions::default()
    });
    mirror.fetch(&served(&server), &Want::Head, None).expect("fetch");
    for id in ids {
        assert!(mirror.contains(id).expect("contains"));
    }
    let two = TestMirror::with_options(MirrorOptions {
        allow_plain_http: true,
        depth: NonZeroU32::new(2),
        ..MirrorOptions::default()
    });
    two.fetch(&served(&server), &Want::Head, None).expect("fetch");
    assert!(two.contains(repo.head()).expect("contains"));
    assert!(!two.contains(repo.git(&["rev-parse", "HEAD~2"]).trim().parse().expect("id")).expect("contains"));
}

#[test]
fn unknown_refs_and_commits_are_not_found() {
    let fixture = fixture();
    let server = GitHttpServer::start(fixture.repo.parent_dir(), None);
    let mirror = http_mirror();

    let err = mirror.fetch(&served(&server), &Want::branch("nope"), None).expect_err("unknown ref");
    assert!(matches!(&err, Error::RefNotFound { name, .. } if name == "refs/heads/nope"), "{err:?}");

    let unknown: CommitId = "0000000000000000000000000000000000000001".parse().expect("id");
    let err = mirror.fetch(&served(&server), &Want::Commit(unknown), None).expect_err("unknown commit");
    assert!(matches!(err, Error::CommitNotFound { commit, .. } if commit == unknown), "{err:?}");
}

#[test]
fn a_missing_repository_is_repository_not_found() {
    let fixture = fixture();
    let server = GitHttpServer::start(fixture.repo.parent_dir(), None);
    let mirror = http_mirror();
    let missing = Source::parse(&server.url("no-such-repo")).expect("url");
    let err = mirror.fetch(&missing, &Want::Head, None).expect_err("404");
    assert!(matches!(err, Error::RepositoryNotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn a_closed_port_is_unreachable_not_a_panic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mirror = http_mirror();
    let source = Source::parse(&format!("http://127.0.0.1:{port}/acme/widgets.git")).expect("url");
    let err = mirror.fetch(&source, &Want::Head, None).expect_err("refused");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn private_repositories_refuse_fetches_without_credentials() {
    let fixture = fixture();
    let server = GitHttpServer::start(fixture.repo.parent_dir(), Some(("x-access-token", "ghs_right")));
    let mirror = http_mirror();

    let err = mirror.fetch(&served(&server), &Want::Head, None).expect_err("no credentials");
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

#[test]
fn credentials_reach_the_transport_but_are_never_sent_over_plain_http() {
    let fixture = fixture();
    let server = GitHttpServer::start(fixture.repo.parent_dir(), Some(("x-access-token", "ghs_right")));
    let mirror = http_mirror();

    // gitoxide asked the credential callback, got the token, and refused to send it in clear text.
    let token = Credentials::github_token("ghs_right");
    let err = mirror.fetch(&served(&server), &Want::Head, Some(&token)).expect_err("http with a token");
    assert!(matches!(err, Error::InvalidInput { field: "credentials", .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("ghs_right"), "the token never appears in errors");
}

#[test]
fn plain_http_must_be_allowed_explicitly() {
    let mirror = TestMirror::with_options(MirrorOptions::default());
    let source = Source::parse("http://127.0.0.1:9/acme/widgets.git").expect("url");
    let err = mirror.fetch(&source, &Want::Head, None).expect_err("http refused");
    assert!(matches!(err, Error::InvalidInput { field: "source", .. }), "{err:?}");
}
