//! `ledge config check` and start-up errors, as a user meets them.

use crate::harness::{Server, ledge};

#[test]
fn config_check_prints_the_resolved_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledge()
        .current_dir(dir.path())
        .args(["config", "check"])
        .env("LEDGE_GITHUB_WEBHOOK_SECRET", "very-secret-value")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[queues.github-events]"), "{text}");
    assert!(text.contains("[durable_objects.IndexingCoordinator]"), "{text}");
    assert!(!text.contains("very-secret-value"));
    assert!(text.contains("***"));
}

#[test]
fn config_check_reports_each_error_with_line_and_column_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ledge.toml");
    std::fs::write(
        &file,
        "[server]\nport = 8080\n\n[queues.file-indexing]\nmax_batch_size = 500\nmax_retriez = 3\n",
    )
    .unwrap();
    let out = ledge()
        .arg("--config")
        .arg(&file)
        .args(["config", "check"])
        .env_remove("LEDGE_PORT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("ledge.toml:5:18") && lines[0].contains("max_batch_size"), "{stderr}");
    assert!(lines[1].contains("ledge.toml:6:1") && lines[1].contains("max_retriez"), "{stderr}");
}

#[test]
fn a_second_process_cannot_use_the_same_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path());
    let out = ledge().args(["serve", "--port", "0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("in use by another ledge process"), "{stderr}");
}
