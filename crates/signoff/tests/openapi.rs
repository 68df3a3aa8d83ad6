//! The running server against its OpenAPI document: Schemathesis (from `.venv`, made by `scripts/test.sh`)
//! generates requests from `docs/openapi.json` and checks every answer against it, with every check on.

mod common;

use common::{Server, create_key, signoff};
use signoff_testkit::{Backend, TestDatabase};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Test cases per operation and phase; docs/api.md says how to run more.
const MAX_EXAMPLES: &str = "30";
/// A fixed seed, so a failure reproduces.
const SEED: &str = "1";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One Schemathesis run as the holder of `key`; panics with its whole output unless every check passed.
fn schemathesis(server: &Server, key: &str, who: &str) {
    let root = workspace_root();
    let program = root.join(".venv/bin/schemathesis");
    assert!(program.exists(), "{} is missing: run scripts/test.sh, which installs it", program.display());
    let workdir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(&program)
        .current_dir(workdir.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .arg("--config-file")
        .arg(root.join("crates/signoff/tests/schemathesis.toml"))
        .arg("--no-color")
        .args(["run", &format!("{}/openapi.json", server.url), "--url", &server.url])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED, "--request-timeout", "5"])
        .args(["--generation-database", "none"])
        .output()
        .expect("run schemathesis");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "Schemathesis as the {who} key found problems:\n{text}");
    let generated = text.lines().find(|line| line.contains(" generated")).unwrap_or("no summary line");
    println!("Schemathesis as the {who} key: {}", generated.trim());
}

/// Two runs on one server and database: as an agent (its own requests, the stream of its events; the people's
/// routes answer 403), then as an admin bound to a person (everything: policy, audit, decisions, cancels).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_does_what_its_openapi_document_says() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let agent = create_key(&db.url, "agent", &["--owner", "olive"])["key"].as_str().unwrap().to_string();
    // An approver, so that requests created in the runs have someone other than their owner to decide them.
    create_key(&db.url, "approver", &["--approver", "dana"]);
    let admin = create_key(&db.url, "admin", &["--approver", "ada"])["key"].as_str().unwrap().to_string();
    // A callback URL on a private or loopback address is refused unless allowed, and the schema cannot know the
    // address a name resolves to: allowed here, so that every URL of the documented form is accepted.
    let server = Server::start(signoff(&db.url).env("SIGNOFF_ALLOW_PRIVATE_CALLBACKS", "true"));
    schemathesis(&server, &agent, "agent");
    schemathesis(&server, &admin, "admin");
}

/// The `callback_url` pattern in the document is the very one the server checks.
#[test]
fn the_documented_callback_url_pattern_is_the_one_the_server_checks() {
    let document: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/openapi.json")).expect("the document is JSON");
    let callback_url = &document["components"]["schemas"]["NewRequest"]["properties"]["callback_url"];
    assert_eq!(callback_url["pattern"], signoff_domain::CALLBACK_URL_PATTERN);
    assert_eq!(callback_url["maxLength"], signoff_domain::CALLBACK_URL_MAX_LEN);
}
