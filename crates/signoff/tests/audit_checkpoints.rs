//! Signed audit checkpoints from outside: the server writes them and hands them to a witness, the CLI exports them,
//! and `signoff audit verify --checkpoints` catches what the hash chain alone cannot: a deleted tail, and a chain
//! rewritten and rehashed from some event on. Also: one `signoff serve` per SQLite file.

mod common;

use common::{Server, call, create_key, run_ok, signoff};
use serde_json::{Value, json};
use signoff_domain::Event;
use signoff_testkit::{Backend, CallbackReceiver, TestDatabase};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_catch_truncation_and_rewriting_on_sqlite() {
    checkpoints_catch_truncation_and_rewriting(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_catch_truncation_and_rewriting_on_postgres() {
    checkpoints_catch_truncation_and_rewriting(Backend::Postgres).await;
}

/// Runs SQL statements (`?` placeholders, text parameters) against the test database, whichever backend it is.
async fn execute(db: &TestDatabase, statements: &[(String, Vec<String>)]) {
    match db.backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(db.url.trim_start_matches("sqlite://")).unwrap();
            for (sql, params) in statements {
                conn.execute(sql, rusqlite::params_from_iter(params)).unwrap();
            }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for (sql, params) in statements {
                let sql = (1..=params.len()).fold(sql.clone(), |sql, i| sql.replacen('?', &format!("${i}"), 1));
                let mut query = sqlx::query(&sql);
                for param in params {
                    query = query.bind(param);
                }
                query.execute(&mut conn).await.unwrap();
            }
        }
    }
}

fn export(db: &TestDatabase) -> Vec<Event> {
    let output = run_ok(signoff(&db.url).args(["audit", "export"]));
    String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn verify_with(db: &TestDatabase, checkpoints: &std::path::Path) -> (bool, String) {
    let output = signoff(&db.url).args(["audit", "verify", "--checkpoints"]).arg(checkpoints).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

/// Writes `events` back over the stored rows (data, prev_hash, hash), as a forger with database access would.
async fn overwrite(db: &TestDatabase, events: &[Event]) {
    let statements: Vec<(String, Vec<String>)> = events
        .iter()
        .map(|e| {
            (
                "UPDATE events SET data = ?, prev_hash = ?, hash = ? WHERE seq = CAST(? AS BIGINT)".to_string(),
                vec![e.data.to_string(), e.prev_hash.clone(), e.hash.clone(), e.seq.to_string()],
            )
        })
        .collect();
    execute(db, &statements).await;
}

async fn checkpoints_catch_truncation_and_rewriting(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let witness = CallbackReceiver::start(0, None).await;
    let config = dir.path().join("signoff.toml");
    std::fs::write(
        &config,
        format!("[audit]\ncheckpoint_every_events = 4\ncheckpoint_every = \"1h\"\nwitness_url = \"{}\"\n", witness.url),
    )
    .unwrap();
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let server = Server::start(signoff(&db.url).arg("--config").arg(&config));
    let http = reqwest::Client::new();
    for amount in [10, 20, 30] {
        let create = http
            .post(format!("{}/v1/requests", server.url))
            .bearer_auth(&agent)
            .json(&json!({"action": "refund", "args": {"amount": amount}}));
        assert_eq!(call(create).await.0, 201);
    }
    // 1 key_created + 3 × (created, routed) = 7 events: the worker checkpoints at 4 or more, and the witness gets it.
    let received = witness.wait_for_accepted(1, Duration::from_secs(20)).await;
    let witnessed: Value = serde_json::from_str(&received[0].body).unwrap();
    assert!(witnessed["seq"].as_i64().unwrap() >= 4, "{witnessed}");
    drop(server);

    // A checkpoint of the head now, and the export of all of them.
    let written = run_ok(signoff(&db.url).args(["audit", "checkpoint"]));
    let head: Value = serde_json::from_slice(&written.stdout).unwrap();
    assert_eq!(head["seq"], 7, "{head}");
    let file = dir.path().join("checkpoints.jsonl");
    run_ok(signoff(&db.url).args(["audit", "checkpoints", "-o"]).arg(&file));
    let lines = std::fs::read_to_string(&file).unwrap();
    // The worker's checkpoint and this one (the same head is stored once per key).
    let seqs: Vec<i64> =
        lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_i64().unwrap()).collect();
    assert!(seqs.contains(&witnessed["seq"].as_i64().unwrap()) && seqs.last() == Some(&7), "{lines}");
    let (ok, said) = verify_with(&db, &file);
    assert!(ok, "a whole chain checks out: {said}");
    // The witness's copy alone works too.
    let witness_file = dir.path().join("witness.jsonl");
    std::fs::write(&witness_file, format!("{}\n", received[0].body)).unwrap();
    assert!(verify_with(&db, &witness_file).0);

    // Rewrite the first request's created event (a bigger amount) and rehash everything after it: the chain alone
    // verifies, the checkpoints do not.
    let original = export(&db);
    let mut forged = original.clone();
    let index = forged.iter().position(|e| e.data["args"]["amount"] == 10).unwrap();
    forged[index].data["args"]["amount"] = json!(10_000);
    for i in index..forged.len() {
        if i > 0 {
            forged[i].prev_hash = forged[i - 1].hash.clone();
        }
        forged[i].hash = forged[i].compute_hash();
    }
    overwrite(&db, &forged[index..]).await;
    let plain = run_ok(signoff(&db.url).args(["audit", "verify"]));
    assert!(String::from_utf8_lossy(&plain.stdout).starts_with("ok"), "a rehashed chain fools the chain check");
    let (ok, said) = verify_with(&db, &file);
    assert!(!ok && said.contains("was rewritten"), "{said}");

    // Restore it, then delete the newest events: the chain alone verifies, the checkpoints do not.
    overwrite(&db, &original[index..]).await;
    assert!(verify_with(&db, &file).0);
    execute(&db, &[("DELETE FROM events WHERE seq > CAST(? AS BIGINT)".to_string(), vec!["5".to_string()])]).await;
    let plain = run_ok(signoff(&db.url).args(["audit", "verify"]));
    assert!(String::from_utf8_lossy(&plain.stdout).starts_with("ok"), "a truncated chain fools the chain check");
    let (ok, said) = verify_with(&db, &file);
    assert!(!ok && said.contains("events were deleted from its end"), "{said}");

    // A checkpoint signed by another key is refused when the configured key is trusted.
    let mut other: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    other["signature"] = json!("AAAA");
    let forged_file = dir.path().join("forged.jsonl");
    std::fs::write(&forged_file, format!("{other}\n")).unwrap();
    let (ok, said) = verify_with(&db, &forged_file);
    assert!(!ok && said.contains("does not verify"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_file_is_refused() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let first = Server::start(&mut signoff(&db.url));
    let output = signoff(&db.url).arg("serve").env("SIGNOFF_LISTEN", "127.0.0.1:0").output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("another `signoff serve` is already running"), "{said}");
    // CLI commands still work beside the server.
    create_key(&db.url, "agent", &[]);
    first.kill();
    // Once it is gone (even killed), a new server starts.
    let again = Server::start(&mut signoff(&db.url));
    drop(again);
}
