//! Timers and callbacks across crashes and replicas, with the real binary.

mod common;

use common::{Server, call, create_key, run_ok, signoff};
use serde_json::{Value, json};
use signoff_testkit::{Backend, CallbackReceiver, TestDatabase, python_verifies};
use std::time::{Duration, Instant};

const DEADLINES: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: short
    when: action == "short"
    route: finance
    timeout: 2s
    on_timeout: reject
"#;

fn write_policy(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, DEADLINES).unwrap();
    path
}

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_that_passed_while_the_server_was_down_fire_at_start() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    run_ok(signoff(&db.url).args(["policy", "apply"]).arg(write_policy(dir.path())));
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let server = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..50 {
        let create =
            http.post(format!("{}/v1/requests", server.url)).bearer_auth(&agent).json(&json!({"action": "short"}));
        ids.push(call(create).await.1["id"].as_str().unwrap().to_string());
    }
    server.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let started = Instant::now();
    let server = Server::start(&mut signoff(&db.url));
    let last = ids.last().unwrap().clone();
    wait_until("the overdue deadlines firing", Duration::from_secs(5), async || {
        let get = http.get(format!("{}/v1/requests/{last}", server.url)).bearer_auth(&agent);
        call(get).await.1["status"] == "rejected"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(3), "fired {:?} after start", started.elapsed());
    for id in &ids {
        let (_, request) = call(http.get(format!("{}/v1/requests/{id}", server.url)).bearer_auth(&agent)).await;
        assert_eq!(
            (request["status"].as_str(), request["decision"]["by"]["kind"].as_str()),
            (Some("rejected"), Some("timeout"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_survives_a_crash_mid_retry() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signoff.toml");
    std::fs::write(&config, "[callbacks]\nallow_private = true\nfirst_retry = \"1s\"\ntimeout = \"2s\"\n").unwrap();
    let agent = create_key(&db.url, "agent", &[]);
    let secret = agent["webhook_secret"].as_str().unwrap().to_string();
    let agent = agent["key"].as_str().unwrap().to_string();
    let approver = create_key(&db.url, "approver", &["--approver", "dana"])["key"].as_str().unwrap().to_string();
    let receiver = CallbackReceiver::start(1_000_000, None).await; // refuses everything for now
    let server = Server::start(signoff(&db.url).arg("--config").arg(&config));
    let http = reqwest::Client::new();
    let create = http
        .post(format!("{}/v1/requests", server.url))
        .bearer_auth(&agent)
        .json(&json!({"action": "refund", "callback_url": receiver.url}));
    let id = call(create).await.1["id"].as_str().unwrap().to_string();
    let decide = http.post(format!("{}/v1/requests/{id}/decision", server.url)).bearer_auth(&approver);
    assert_eq!(call(decide.json(&json!({"outcome": "approve"}))).await.0, 200);
    wait_until("a first refused attempt", Duration::from_secs(10), async || !receiver.received().is_empty()).await;
    server.kill();

    // The receiver now accepts, and a restarted server must finish the job.
    let refused = receiver.received().len();
    receiver.accept_all();
    let server = Server::start(signoff(&db.url).arg("--config").arg(&config));
    let received = receiver.wait_for_accepted(1, Duration::from_secs(15)).await;
    let accepted: Vec<_> = received.iter().filter(|r| r.answered == 200).collect();
    assert_eq!(accepted.len(), 1);
    assert!(received.iter().all(|r| r.webhook_id == received[0].webhook_id), "the same webhook-id after the restart");
    assert!(python_verifies(&secret, accepted[0]));
    let body: Value = serde_json::from_str(&accepted[0].body).unwrap();
    assert_eq!(body["data"]["id"], id.as_str());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), received.len(), "delivered exactly once");
    assert!(refused >= 1);
    let (_, deliveries) =
        call(http.get(format!("{}/v1/requests/{id}/deliveries", server.url)).bearer_auth(&agent)).await;
    assert_eq!(deliveries[0]["state"], "delivered");
    assert!(deliveries[0]["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_fire_each_deadline_once() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    run_ok(signoff(&db.url).args(["policy", "apply"]).arg(write_policy(dir.path())));
    let agent = create_key(&db.url, "agent", &[])["key"].as_str().unwrap().to_string();
    let first = Server::start(&mut signoff(&db.url));
    let second = Server::start(&mut signoff(&db.url));
    let http = reqwest::Client::new();
    let mut creates = Vec::new();
    for i in 0..1000 {
        let url = if i % 2 == 0 { &first.url } else { &second.url };
        let create = http.post(format!("{url}/v1/requests")).bearer_auth(&agent).json(&json!({"action": "short"}));
        creates.push(tokio::spawn(call(create)));
    }
    for create in creates {
        assert_eq!(create.await.unwrap().0, 201);
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    wait_until("every deadline firing", Duration::from_secs(20), async || {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
            .fetch_one(&pool)
            .await
            .unwrap();
        pending == 0
    })
    .await;
    let decided: Vec<(String, i64)> =
        sqlx::query_as("SELECT request_id, COUNT(*) FROM events WHERE kind = 'decided' GROUP BY request_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(decided.len(), 1000);
    assert!(decided.iter().all(|(_, count)| *count == 1), "a deadline fired twice");
    let by_timeout: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE status = 'rejected'").fetch_one(&pool).await.unwrap();
    assert_eq!(by_timeout, 1000);
    pool.close().await;
    drop((first, second));
}
