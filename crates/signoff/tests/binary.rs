//! The real `signoff` binary, as an operator and an agent use it: serve, keys, client commands, crash recovery.

mod common;

use common::{SIGNOFF, Server, call, create_key, run_ok, signoff};
use serde_json::{Value, json};
use signoff_testkit::{Backend, TestDatabase};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_requests_survive_sigkill_on_sqlite() {
    survives_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_requests_survive_sigkill_on_postgres() {
    survives_sigkill(Backend::Postgres).await;
}

async fn survives_sigkill(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let approver = create_key(&db.url, "approver", &["--approver", "dana"])["key"].as_str().unwrap().to_string();
    let server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();

    let creates: Vec<_> = (0..200)
        .map(|i| {
            let call = http
                .post(format!("{}/v1/requests", server.url))
                .bearer_auth(&agent)
                .json(&json!({"action": "refund", "args": {"i": i}}));
            tokio::spawn(async move { call.send().await })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for create in creates {
        let response = create.await.unwrap().expect("the server answers");
        assert_eq!(response.status(), 201);
        acknowledged.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    for id in &acknowledged[..20] {
        let decide = http.post(format!("{}/v1/requests/{id}/decision", server.url)).bearer_auth(&approver);
        assert_eq!(call(decide.json(&json!({"outcome": "approve"}))).await.0, 200);
    }
    // Requests in flight at the moment of the kill may or may not land; acknowledged ones must.
    let url = server.url.clone();
    for i in 0..50 {
        let call = http
            .post(format!("{url}/v1/requests"))
            .bearer_auth(&agent)
            .json(&json!({"action": "late", "args": {"i": i}}));
        tokio::spawn(async move { call.send().await });
    }
    server.kill();

    let server = Server::start(&mut signoff(&db.url));
    for (n, id) in acknowledged.iter().enumerate() {
        let (status, request) = call(http.get(format!("{}/v1/requests/{id}", server.url)).bearer_auth(&agent)).await;
        assert_eq!(status, 200, "request {id} was acknowledged, then lost");
        let want = if n < 20 { "approved" } else { "pending" };
        assert_eq!(request["status"], want);
        let (_, events) = call(http.get(format!("{}/v1/requests/{id}/events", server.url)).bearer_auth(&agent)).await;
        let kinds: Vec<_> =
            events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
        let want: &[&str] = if n < 20 { &["created", "routed", "decided"] } else { &["created", "routed"] };
        assert_eq!(kinds, want);
    }
    // Every request that exists, acknowledged or not, is whole: it has its created event.
    let (_, page) = call(http.get(format!("{}/v1/requests?limit=500", server.url)).bearer_auth(&agent)).await;
    for request in page["items"].as_array().unwrap() {
        let id = request["id"].as_str().unwrap();
        let (_, events) = call(http.get(format!("{}/v1/requests/{id}/events", server.url)).bearer_auth(&agent)).await;
        assert_eq!(events[0]["kind"], "created", "request {id} is whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_configuration_starts_on_sqlite_and_says_how_to_begin() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(SIGNOFF);
    command.current_dir(dir.path()).env_remove("SIGNOFF_DATABASE_URL").env_remove("SIGNOFF_CONFIG");
    let server = Server::start_reading(&mut command, 4);
    assert!(server.first_lines[1].contains("sqlite://./signoff.db"), "{:?}", server.first_lines);
    assert!(server.first_lines[3].contains("signoff keys create --role admin"), "{:?}", server.first_lines);
    assert!(dir.path().join("signoff.db").exists());
    let (status, _) = call(reqwest::Client::new().get(format!("{}/readyz", server.url))).await;
    assert_eq!(status, 200);
    drop(server);
    let output = Command::new(SIGNOFF)
        .current_dir(dir.path())
        .env_remove("SIGNOFF_DATABASE_URL")
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the config file missing.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_waits_and_decides() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let agent = create_key(&db.url, "agent", &[]);
    assert_eq!(agent["role"], "agent");
    assert!(agent["id"].as_str().unwrap().starts_with("key_"));
    assert!(agent["webhook_secret"].as_str().unwrap().starts_with("whsec_"));
    let approver = create_key(&db.url, "approver", &["--approver", "dana"]);
    let server = Server::start(&mut signoff(&db.url));
    let client = |key: &Value| {
        let mut command = Command::new(SIGNOFF);
        command.env("SIGNOFF_URL", &server.url).env("SIGNOFF_KEY", key["key"].as_str().unwrap());
        command
    };

    let asking = client(&agent)
        .args([
            "request",
            "--action",
            "refund",
            "--args",
            r#"{"amount": 120}"#,
            "--summary",
            "Refund #1",
            "--wait",
            "60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let output = run_ok(client(&approver).args(["pending", "--json"]));
        let page: Value = serde_json::from_slice(&output.stdout).unwrap();
        if let Some(id) = page["items"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the request never showed up as pending");
        std::thread::sleep(Duration::from_millis(100));
    };
    let table = run_ok(client(&approver).arg("pending"));
    assert!(String::from_utf8_lossy(&table.stdout).contains("Refund #1"));

    let output = client(&approver).args(["reject", &id]).output().unwrap();
    assert!(!output.status.success(), "reject without --comment is refused");
    let output = client(&agent).args(["approve", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("Forbidden"), "an agent cannot approve");

    run_ok(client(&approver).args(["approve", &id, "--comment", "fine", "--args", r#"{"amount": 100}"#]));
    let waited = asking.wait_with_output().unwrap();
    assert!(waited.status.success());
    let decided: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decision"]["args"], json!({"amount": 100}));

    let shown: Value = serde_json::from_slice(&run_ok(client(&agent).args(["show", &id])).stdout).unwrap();
    assert_eq!(shown["decision"]["comment"], "fine");

    run_ok(signoff(&db.url).args(["keys", "revoke", agent["id"].as_str().unwrap()]));
    let output = client(&agent).args(["show", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("revoked"));
    let listed = run_ok(signoff(&db.url).args(["keys", "list"]));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_waiters_and_exits_cleanly() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let mut server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    let (_, created) =
        call(http.post(format!("{}/v1/requests", server.url)).bearer_auth(&agent).json(&json!({"action": "x"}))).await;
    let id = created["id"].as_str().unwrap();
    let waiter =
        tokio::spawn(call(http.get(format!("{}/v1/requests/{id}/wait?timeout_s=300", server.url)).bearer_auth(&agent)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("signoff_waiters_parked 1")
    {
        assert!(Instant::now() < deadline, "the waiter never parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "signoff exits 0 after SIGTERM, got {exit:?}");
}

const PRODUCT_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/policy.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_apply_and_test_from_the_cli() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let checked = run_ok(signoff(&db.url).args(["policy", "check", PRODUCT_POLICY]));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("ok (6 rules"));
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "version: 1\ngroups:\n  a: { notify: [email] }\nrules:\n  - name: x\n    when: action ==\n    route: b\n",
    )
    .unwrap();
    let output = signoff(&db.url).args(["policy", "check"]).arg(&broken).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 6, column 20") && stderr.contains("line 7, column 12: rule `x`: unknown group `b`"),
        "{stderr}"
    );

    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let admin = create_key(&db.url, "admin", &[])["key"].as_str().unwrap().to_string();
    let server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    let expense = |amount: i64| {
        http.post(format!("{}/v1/requests", server.url))
            .bearer_auth(&agent)
            .json(&json!({"action": "expense", "args": {"amount": amount}}))
    };
    for amount in [100, 4000, 30000] {
        let (_, body) = call(expense(amount)).await;
        assert_eq!(body["group"], "everyone", "the built-in default routes everything to a person");
    }

    // Applied straight to the database while the server runs: the server picks it up by itself.
    let applied = run_ok(signoff(&db.url).args(["policy", "apply", PRODUCT_POLICY]));
    assert!(String::from_utf8_lossy(&applied.stdout).contains("policy version 1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, policy) = call(http.get(format!("{}/v1/policy", server.url)).bearer_auth(&admin)).await;
        if policy["version"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the server never picked up the applied policy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, small) = call(expense(4999)).await;
    assert_eq!(small["decision"]["by"]["rule"], "small-expense");

    let replayed = run_ok(signoff(&db.url).args(["policy", "test", PRODUCT_POLICY, "--since", "1d"]));
    let report = String::from_utf8_lossy(&replayed.stdout);
    assert!(report.contains("replaying 4 requests"), "{report}");
    assert!(report.contains("auto-approve"), "two requests would now pass by policy: {report}");

    let one = dir.path().join("request.json");
    std::fs::write(&one, r#"{"action": "expense", "args": {"amount": 30000}}"#).unwrap();
    let explained = run_ok(signoff(&db.url).args(["policy", "test", PRODUCT_POLICY, "--request"]).arg(&one));
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(explained.contains("small-expense") && explained.contains("did not match"), "{explained}");
    assert!(explained.contains("large-expense") && explained.contains("route to cfo"), "{explained}");
}

#[tokio::test]
async fn policy_check_prints_warnings_after_ok() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warned.yaml");
    std::fs::write(
        &file,
        "version: 1\nactions:\n  expense: { args: { properties: { amount: { type: number } } } }\nrules:\n  - name: big\n    when: action == \"expense\" && args.amont > 100\n    decide: deny\n",
    )
    .unwrap();
    let output = run_ok(signoff(&db.url).args(["policy", "check"]).arg(&file));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].ends_with("ok (1 rules, 0 approvers, 0 groups)"), "{stdout}");
    let location = format!("{}:6:34: warning: rule `big`: condition reads `args.amont`", file.display());
    assert!(lines[1].starts_with(&location), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_verify_and_tampering_on_sqlite() {
    audit_export_verify_and_tampering(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_verify_and_tampering_on_postgres() {
    audit_export_verify_and_tampering(Backend::Postgres).await;
}

/// `signoff audit export` writes a file that `signoff audit verify --file` proves whole; a value changed inside one
/// event's `data` is named by its seq. `signoff audit verify` checks the database itself the same way.
async fn audit_export_verify_and_tampering(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let approver = create_key(&db.url, "approver", &["--approver", "dana"])["key"].as_str().unwrap().to_string();
    let server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for amount in [120, 340, 560] {
        let create = http
            .post(format!("{}/v1/requests", server.url))
            .bearer_auth(&agent)
            .json(&json!({"action": "refund", "args": {"amount": amount}}));
        let (status, body) = call(create).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let decide = |id: &str, body: Value| {
        http.post(format!("{}/v1/requests/{id}/decision", server.url)).bearer_auth(&approver).json(&body)
    };
    assert_eq!(call(decide(&ids[0], json!({"outcome": "approve"}))).await.0, 200);
    assert_eq!(call(decide(&ids[1], json!({"outcome": "reject", "comment": "no"}))).await.0, 200);
    // 2 key_created, 3 × (created, routed), 2 decided.
    let expected_events = 10;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let exported = run_ok(signoff(&db.url).args(["audit", "export", "--output"]).arg(&file));
    let said = String::from_utf8_lossy(&exported.stderr);
    assert!(said.contains(&format!("exported {expected_events} events")), "{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected_events);
    let events: Vec<Value> = lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=expected_events as i64).collect::<Vec<_>>(), "one event per line, oldest first");
    let head = events.last().unwrap()["hash"].as_str().unwrap().to_string();

    // The same export on standard output, and a `--since` window that covers everything.
    let to_stdout = run_ok(signoff(&db.url).args(["audit", "export"]));
    assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), text);
    let recent = run_ok(signoff(&db.url).args(["audit", "export", "--since", "30d"]));
    assert_eq!(String::from_utf8_lossy(&recent.stdout), text);

    let verified = run_ok(signoff(&db.url).args(["audit", "verify", "--file"]).arg(&file));
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(said.trim(), format!("ok: {expected_events} events, chain head {head}"));
    let verified = run_ok(signoff(&db.url).args(["audit", "verify"]));
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(said.trim(), format!("ok: {expected_events} events, chain head {head}"), "the database checks out");

    // Change one value inside one event's data: the created event of the second request now claims a transfer.
    let index = events
        .iter()
        .position(|e| e["kind"] == "created" && e["request_id"] == ids[1].as_str())
        .expect("the second request's created event");
    let seq = events[index]["seq"].as_i64().unwrap();
    assert_eq!(events[index]["data"]["action"], "refund", "{}", events[index]);
    let mut forged = events[index].clone();
    forged["data"]["action"] = json!("transfer");
    let mut tampered_lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered_lines[index] = forged.to_string();
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, tampered_lines.join("\n") + "\n").unwrap();
    let output = signoff(&db.url).args(["audit", "verify", "--file"]).arg(&tampered).output().unwrap();
    assert!(!output.status.success(), "a tampered export does not verify");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("broken at event {seq}:")), "names event {seq}: {said}");
    assert!(said.contains(&format!("(line {})", index + 1)), "names line {}: {said}", index + 1);
    assert!(said.contains("altered"), "{said}");

    // A line removed from the middle of the export is caught at the line after it.
    let mut shortened: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    shortened.remove(4);
    let gap = dir.path().join("gap.jsonl");
    std::fs::write(&gap, shortened.join("\n") + "\n").unwrap();
    let output = signoff(&db.url).args(["audit", "verify", "--file"]).arg(&gap).output().unwrap();
    assert!(!output.status.success(), "an export with a missing event does not verify");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("broken at event 6:") && said.contains("expected event 5"), "{said}");

    // The same change made in the database: `signoff audit verify` names it and fails.
    if backend == Backend::Postgres {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE events SET data = $1 WHERE seq = $2")
            .bind(forged["data"].to_string())
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        let output = signoff(&db.url).args(["audit", "verify"]).output().unwrap();
        assert!(!output.status.success(), "a tampered database does not verify");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(&format!("broken at event {seq}:")), "{said}");
    }
    drop(server);
}

/// The README's create → wait → approve walkthrough, run as written (only the port differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("## Create → wait → approve, with curl").nth(1).expect("the walkthrough section");
    let script = section.split("```sh\n").nth(1).and_then(|block| block.split("```").next()).expect("its sh block");
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Command::new(SIGNOFF);
    serve.current_dir(dir.path()).env_remove("SIGNOFF_DATABASE_URL").env_remove("SIGNOFF_CONFIG");
    let server = Server::start(&mut serve);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let bin_dir = std::path::Path::new(SIGNOFF).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args([
            "-euo",
            "pipefail",
            "-c",
            &format!("{}\nwait", script.replace("127.0.0.1:8700", &format!("127.0.0.1:{port}"))),
        ])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("SIGNOFF_DATABASE_URL")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "the walkthrough failed");
    let printed = String::from_utf8_lossy(&output.stdout);
    let documents: Vec<Value> =
        serde_json::Deserializer::from_str(&printed).into_iter().collect::<Result<_, _>>().expect("JSON answers");
    assert_eq!(documents.len(), 3, "wait, decision and events answered: {printed}");
    let waited = documents.iter().find(|d| d["status"] == "approved" && d["decision"]["args"]["amount"] == 100);
    assert!(waited.is_some(), "{printed}");
    let events = documents.iter().find(|d| d.is_array()).expect("the timeline");
    let kinds: Vec<_> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "routed", "decided"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_the_limits_and_metrics_settings_from_the_environment() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let mut command = signoff(&db.url);
    command
        .env("SIGNOFF_METRICS_LISTEN", "127.0.0.1:0")
        .env("SIGNOFF_METRICS_TOKEN", "m3trics")
        .env("SIGNOFF_IP_RATE_LIMIT", "1");
    let server = Server::start_reading(&mut command, 3);
    let metrics_line = server.first_lines.iter().find(|line| line.starts_with("metrics on ")).expect("metrics line");
    let metrics_url = metrics_line.trim_start_matches("metrics on ").to_string();
    let http = reqwest::Client::new();

    assert_eq!(call(http.get(format!("{}/v1/requests", server.url)).bearer_auth(&agent)).await.0, 200);
    assert_eq!(call(http.get(&metrics_url)).await.0, 401, "the token is required");
    assert_eq!(call(http.get(&metrics_url).bearer_auth("m3trics")).await.0, 200);
    // The API's listener does not serve /metrics; its one call without a key per second is then used up.
    assert_eq!(call(http.get(format!("{}/metrics", server.url)).bearer_auth("m3trics")).await.0, 404);
    let (status, body) = call(http.get(format!("{}/healthz", server.url))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!(call(http.get(format!("{}/v1/requests", server.url)).bearer_auth(&agent)).await.0, 200);
    server.kill();
}

/// `signoff stats` over the API: the report as JSON, the tables, a breakdown, and the refusals in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_approval_statistics() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let agent = create_key(&db.url, "agent", &[]);
    let approver = create_key(&db.url, "approver", &["--approver", "dana"]);
    let server = Server::start(&mut signoff(&db.url));
    let client = |key: &Value| {
        let mut command = Command::new(SIGNOFF);
        command.env("SIGNOFF_URL", &server.url).env("SIGNOFF_KEY", key["key"].as_str().unwrap());
        command
    };
    let http = reqwest::Client::new();
    let bearer = |key: &Value| format!("Bearer {}", key["key"].as_str().unwrap());
    let mut ids = Vec::new();
    for amount in [120, 340, 560] {
        let body = json!({"action": "refund", "args": {"amount": amount}});
        let builder = http.post(format!("{}/v1/requests", server.url)).header("authorization", bearer(&agent));
        let (status, created) = call(builder.json(&body)).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    run_ok(client(&approver).args(["approve", &ids[0]]));
    run_ok(client(&approver).args(["approve", &ids[1], "--args", r#"{"amount": 300}"#]));
    run_ok(client(&approver).args(["reject", &ids[2], "--comment", "duplicate"]));

    let output = run_ok(client(&approver).args(["stats", "--json", "--fast-under", "1h"]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let totals = &report["totals"];
    let figures =
        ["requests", "human_decided", "approved", "approved_unchanged", "edited", "rejected", "fast_approvals"]
            .map(|name| totals[name].as_u64().unwrap());
    assert_eq!(figures, [3, 3, 2, 1, 1, 1, 2], "{report}");
    assert_eq!(totals["rejection_reasons"], json!({"(none)": 1}));
    assert_eq!(report["fast_under_s"], 3600);
    assert_eq!(report["approvers"][0]["approver"], "dana");

    let output = run_ok(client(&approver).args(["stats", "--since", "7d", "--by", "rule"]));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("decided by people    3"), "{text}");
    assert!(text.contains("  approved           2 (66.7 %)"), "{text}");
    assert!(text.contains("By rule\nKEY "), "{text}");
    assert!(text.lines().any(|line| line.starts_with("(defaults)  3 ")), "the built-in default placed them: {text}");
    assert!(text.lines().any(|line| line.starts_with("dana ") && line.contains("100.0 %")), "{text}");
    assert_eq!(text.lines().filter(|line| line.starts_with("20")).count(), 8, "7 days back touch 8 days: {text}");

    let output = client(&approver).args(["stats", "--by", "team"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected one of rule, action, group, approver"));
    let output = client(&approver).args(["stats", "--since", "yesterday"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("since: invalid duration `yesterday`"), "{stderr}");
    let output = client(&agent).args(["stats"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read statistics"), "agents read no statistics");
}
