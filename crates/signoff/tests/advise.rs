//! `signoff advise` against the real binary on both backends: the findings as JSON and as text, `--apply ID` creating
//! the next policy version, and the same id refused once the policy changed.

mod common;

use common::{SIGNOFF, Server, call, create_key, run_ok, signoff};
use serde_json::{Value, json};
use signoff_testkit::{Backend, TestDatabase};
use std::process::Command;

const POLICY: &str = "version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
  - { id: ada, name: Ada, email: ada@example.com, groups: [admins] }
groups:
  finance: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins }
rules:
  - name: refund-small
    when: action == \"refund\" && args.amount < 100
    route: finance
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advise_and_apply_from_the_cli_on_sqlite() {
    advise_and_apply(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advise_and_apply_from_the_cli_on_postgres() {
    advise_and_apply(Backend::Postgres).await;
}

async fn advise_and_apply(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, POLICY).unwrap();
    run_ok(signoff(&db.url).args(["policy", "apply", file.to_str().unwrap()]));
    let key = |value: Value| value["key"].as_str().unwrap().to_string();
    let agent = key(create_key(&db.url, "agent", &[]));
    let dana = key(create_key(&db.url, "approver", &["--approver", "dana"]));
    let ada = key(create_key(&db.url, "admin", &["--approver", "ada"]));
    let server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    for amount in 0..20 {
        let create = http.post(format!("{}/v1/requests", server.url)).bearer_auth(&agent);
        let (status, created) = call(create.json(&json!({"action": "refund", "args": {"amount": amount}}))).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        let decide = http.post(format!("{}/v1/requests/{id}/decision", server.url)).bearer_auth(&dana);
        assert_eq!(call(decide.json(&json!({"outcome": "approve"}))).await.0, 200);
    }
    let client = |key: &str| {
        let mut command = Command::new(SIGNOFF);
        command.env("SIGNOFF_URL", &server.url).env("SIGNOFF_KEY", key);
        command
    };

    let output = run_ok(client(&dana).args(["advise", "--json", "--since", "7d"]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let relax = report["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "relax_auto_approve").unwrap();
    assert_eq!(relax["rule"], "refund-small");
    assert_eq!(relax["draft"]["replay"]["changed"], 20);
    let id = relax["id"].as_str().unwrap();

    let text = String::from_utf8(run_ok(client(&dana).arg("advise")).stdout).unwrap();
    assert!(text.starts_with("Advice for policy version 1 over "), "{text}");
    assert!(
        text.contains(&format!("[relax_auto_approve] {id}\n  rule `refund-small`: 20 requests, 100.0 %")),
        "{text}"
    );
    assert!(text.contains("    person (finance) → auto-approve: 20"), "{text}");
    assert!(text.contains("    -    route: finance\n    +    decide: approve\n"), "{text}");
    assert!(text.contains(&format!("Apply it with: signoff advise --apply {id}")), "{text}");

    let refused = client(&dana).args(["advise", "--apply", id]).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("Forbidden"));
    let applied = String::from_utf8(run_ok(client(&ada).args(["advise", "--apply", id])).stdout).unwrap();
    assert_eq!(applied, format!("applied finding {id} (relax_auto_approve) as policy version 2\n"));
    let again = client(&ada).args(["advise", "--apply", id]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("PolicyChanged"), "{again:?}");
    let (_, versions) = call(http.get(format!("{}/v1/policy/versions", server.url)).bearer_auth(&ada)).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");
}
