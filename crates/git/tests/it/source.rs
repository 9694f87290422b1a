//! Parsing sources, naming wants, masking credentials, and laying out mirror paths.

use std::path::Path;

use ledge_git::{CommitId, Credentials, ErrorKind, Source, mirror_path};

#[test]
fn https_urls_parse_and_print_without_user_info() {
    let source = Source::parse("https://github.com/acme/widgets.git").expect("valid");
    assert!(source.is_network());
    assert_eq!(source.to_string(), "https://github.com/acme/widgets.git");

    let with_user = Source::parse("https://x-access-token@github.com/acme/widgets").expect("valid");
    assert_eq!(with_user.to_string(), "https://github.com/acme/widgets");
}

#[test]
fn a_password_in_the_url_is_refused_and_not_echoed() {
    let err = Source::parse("https://user:s3cret-token@github.com/acme/widgets").expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.to_string().contains("s3cret-token"), "{err}");
}

#[test]
fn local_paths_and_file_urls_are_local_sources() {
    let plain = Source::parse("/srv/repos/widgets").expect("valid");
    assert_eq!(plain.local_path(), Some(Path::new("/srv/repos/widgets")));
    let file_url = Source::parse("file:///srv/repos/widgets").expect("valid");
    assert_eq!(file_url.local_path(), Some(Path::new("/srv/repos/widgets")));
    assert!(!file_url.is_network());
}

#[test]
fn ssh_and_git_protocols_are_unsupported() {
    for url in
        ["ssh://git@github.com/acme/widgets.git", "git@github.com:acme/widgets.git", "git://example.com/x"]
    {
        let err = Source::parse(url).expect_err(url);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}");
    }
    assert_eq!(Source::parse("  ").expect_err("empty").kind(), ErrorKind::InvalidInput);
}

#[test]
fn credentials_debug_masks_the_secret() {
    let credentials = Credentials::github_token("ghs_verysecret");
    let printed = format!("{credentials:?}");
    assert!(!printed.contains("ghs_verysecret"), "{printed}");
    assert!(printed.contains("x-access-token"), "{printed}");
    assert_eq!(credentials.username(), "x-access-token");
}

#[test]
fn commit_ids_round_trip_and_reject_garbage() {
    let hex = "0123456789abcdef0123456789abcdef01234567";
    let id: CommitId = hex.parse().expect("valid");
    assert_eq!(id.to_string(), hex);
    assert_eq!(format!("{id:?}"), format!("CommitId({hex})"));
    for bad in ["", "0123", "zz23456789abcdef0123456789abcdef01234567"] {
        assert_eq!(bad.parse::<CommitId>().expect_err(bad).kind(), ErrorKind::InvalidInput);
    }
}

#[test]
fn mirror_paths_stay_under_the_data_dir() {
    let data = Path::new("/var/lib/ledge");
    assert_eq!(
        mirror_path(data, "org_1", "repo-42").expect("valid"),
        Path::new("/var/lib/ledge/git/org_1/repo-42.git")
    );
    for (org, repo) in [("..", "x"), ("org", "../../etc"), ("org/x", "y"), ("", "y"), ("org", ".hidden")] {
        let err = mirror_path(data, org, repo).expect_err("escaping path");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{org}/{repo}");
    }
}
