//! Nothing hangs, nothing is lost: deadlines, escalation and signed callbacks, on every backend.

use serde_json::{Value, json};
use signoff_testkit::{
    Backend, CallbackReceiver, TestApp, TestDatabase, error_code, on_every_backend, python_verifies, send,
};
use std::time::{Duration, Instant};

on_every_backend!(
    a_deadline_rejects_by_timeout,
    a_failing_deadline_expires_the_request,
    the_agent_may_shorten_a_deadline_never_extend_it,
    escalation_reroutes_and_keeps_approvals,
    decisions_racing_deadlines_have_one_outcome,
    callbacks_are_retried_until_accepted_and_signed,
    a_gone_receiver_stops_the_retries,
    private_callback_urls_are_refused_unless_allowed,
);

const TIMEOUTS: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
  - { id: fred, name: Fred, email: fred@example.com, groups: [finance] }
  - { id: carl, name: Carl, email: carl@example.com, groups: [cfo] }
  - { id: cleo, name: Cleo, email: cleo@example.com, groups: [cfo] }
groups:
  finance: { notify: [email] }
  cfo: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: quick-reject
    when: action == "quick_reject"
    route: finance
    timeout: 2s
    on_timeout: reject
  - name: quick-fail
    when: action == "quick_fail"
    route: finance
    timeout: 1s
    on_timeout: fail
  - name: escalating
    when: action == "escalating"
    route: finance
    approvals: 2
    escalate: [ { after: 1s, to: cfo } ]
    timeout: 1h
"#;

async fn app(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(TIMEOUTS).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

async fn wait(app: &TestApp, id: &str, seconds: u64) -> Value {
    send(app.get(&format!("/v1/requests/{id}/wait?timeout_s={seconds}"), &app.agent_key)).await.1
}

async fn a_deadline_rejects_by_timeout(backend: Backend) {
    let (_db, app) = app(backend).await;
    let started = Instant::now();
    let (_, created) = app.create(json!({"action": "quick_reject"})).await;
    let decided = wait(&app, &id(&created), 10).await;
    let waited = started.elapsed();
    assert_eq!(decided["status"], "rejected", "{decided}");
    assert_eq!(decided["decision"]["by"], json!({"kind": "timeout"}));
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_millis(3500), "took {waited:?}");
}

async fn a_failing_deadline_expires_the_request(backend: Backend) {
    let (_db, app) = app(backend).await;
    let (_, created) = app.create(json!({"action": "quick_fail"})).await;
    let expired = wait(&app, &id(&created), 10).await;
    assert_eq!(expired["status"], "expired");
    let (_, queue) = send(app.get("/v1/requests?status=expired", &app.approver_key)).await;
    assert_eq!(queue["items"][0]["id"], created["id"], "expired requests stay visible for follow-up");
    let (status, body) = app.decide(&id(&created), &app.admin_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (409, "already_decided"));
}

async fn the_agent_may_shorten_a_deadline_never_extend_it(backend: Backend) {
    let (_db, app) = app(backend).await;
    let (_, shorter) = app.create(json!({"action": "anything", "timeout_s": 1})).await;
    let (_, longer) = app.create(json!({"action": "quick_fail", "timeout_s": 7200})).await;
    let seconds = |r: &Value| {
        let at = |field: &str| chrono::DateTime::parse_from_rfc3339(r[field].as_str().unwrap()).unwrap();
        (at("deadline_at") - at("created_at")).num_milliseconds()
    };
    assert_eq!(seconds(&shorter), 1000);
    assert_eq!(seconds(&longer), 1000, "the rule's 1 s stands");
    assert_eq!(wait(&app, &id(&shorter), 10).await["status"], "rejected");
}

async fn escalation_reroutes_and_keeps_approvals(backend: Backend) {
    let (_db, app) = app(backend).await;
    let (dana, carl) = (app.approver("dana").await, app.approver("carl").await);
    let (_, created) = app.create(json!({"action": "escalating"})).await;
    let id = id(&created);
    let (status, body) = app.decide(&id, &dana, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")), "{body}");
    let (status, _) = app.decide(&id, &carl, json!({"outcome": "approve"})).await;
    assert_eq!(status, 403, "carl is not in finance before the escalation");

    let deadline = Instant::now() + Duration::from_secs(5);
    let escalated = loop {
        let (_, request) = send(app.get(&format!("/v1/requests/{id}"), &app.agent_key)).await;
        if request["group"] == "cfo" {
            break request;
        }
        assert!(Instant::now() < deadline, "never escalated: {request}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(escalated["approvals"].as_array().unwrap().len(), 1, "dana's approval stays");
    let (status, body) = app.decide(&id, &carl, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
    let escalation = events.as_array().unwrap().iter().find(|e| e["kind"] == "escalated").expect("an escalated event");
    assert_eq!(
        (escalation["data"]["from"].as_str(), escalation["data"]["to"].as_str()),
        (Some("finance"), Some("cfo"))
    );
}

async fn decisions_racing_deadlines_have_one_outcome(backend: Backend) {
    let (_db, app) = app(backend).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(id(&app.create(json!({"action": "quick_fail"})).await.1));
    }
    tokio::time::sleep(Duration::from_millis(950)).await;
    let racers: Vec<_> = ids
        .iter()
        .map(|id| {
            let call = app
                .post(&format!("/v1/requests/{id}/decision"), &app.approver_key)
                .json(&json!({"outcome": "approve"}));
            tokio::spawn(send(call))
        })
        .collect();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        assert!(status == 200 || (status == 409 && error_code(&body) == "already_decided"), "{status} {body}");
    }
    for id in &ids {
        let request = wait(&app, id, 5).await;
        assert!(request["status"] == "approved" || request["status"] == "expired", "{request}");
        let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
        let finals = events.as_array().unwrap().iter().filter(|e| e["kind"] == "decided").count();
        assert_eq!(finals, 1, "request {id} has exactly one outcome: {events}");
    }
}

async fn callbacks_are_retried_until_accepted_and_signed(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(2, None).await;
    let (status, created) =
        app.create(json!({"action": "anything", "callback_url": receiver.url, "state": {"thread": "t-42"}})).await;
    assert_eq!(status, 201, "{created}");
    let id = id(&created);
    app.decide(&id, &app.approver_key, json!({"outcome": "approve", "comment": "go"})).await;

    let received = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 3, "two refusals, then one acceptance: {received:#?}");
    assert!(received.iter().all(|r| r.webhook_id == received[0].webhook_id), "one webhook-id across retries");
    let accepted = received.last().unwrap();
    assert!(python_verifies(&app.agent_webhook_secret, accepted), "the Python standardwebhooks package accepts it");
    let mut forged = accepted.clone();
    forged.body = forged.body.replace("approved", "rejected");
    assert!(!python_verifies(&app.agent_webhook_secret, &forged), "and refuses a forged body");
    let payload: Value = serde_json::from_str(&accepted.body).unwrap();
    assert_eq!(payload["type"], "request.decided");
    assert_eq!(payload["data"]["id"], id.as_str());
    assert_eq!(payload["data"]["status"], "approved");
    assert_eq!(payload["data"]["state"], json!({"thread": "t-42"}), "the agent's state comes back");

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 3, "nothing more once accepted");
    let (_, deliveries) = send(app.get(&format!("/v1/requests/{id}/deliveries"), &app.agent_key)).await;
    assert_eq!(deliveries[0]["state"], "delivered", "{deliveries}");
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["webhook_id"], accepted.webhook_id.as_str());
    let history: Vec<_> = deliveries[0]["history"].as_array().unwrap().iter().map(|a| a["state"].clone()).collect();
    assert_eq!(history, [json!("pending"), json!("pending"), json!("delivered")], "each attempt is listed");
    assert_eq!(deliveries[0]["history"][0]["status"], 500);
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
    let attempts = events.as_array().unwrap().iter().filter(|e| e["kind"] == "callback_attempted").count();
    assert_eq!(attempts, 3);

    // Policy and timeouts call back too.
    let (_, timed) = app.create(json!({"action": "quick_fail", "callback_url": receiver.url})).await;
    let received = receiver.wait_for_accepted(2, Duration::from_secs(10)).await;
    let last: Value = serde_json::from_str(&received.last().unwrap().body).unwrap();
    assert_eq!((last["data"]["id"].clone(), last["data"]["status"].as_str()), (timed["id"].clone(), Some("expired")));
}

async fn a_gone_receiver_stops_the_retries(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(0, Some(410)).await;
    let (_, created) = app.create(json!({"action": "anything", "callback_url": receiver.url})).await;
    app.decide(&id(&created), &app.approver_key, json!({"outcome": "reject", "comment": "no"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, deliveries) = send(app.get(&format!("/v1/requests/{}/deliveries", id(&created)), &app.agent_key)).await;
        if deliveries[0]["state"] == "gone" {
            assert_eq!(deliveries[0]["attempts"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 1, "410 stops the retries");
}

async fn private_callback_urls_are_refused_unless_allowed(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let app = TestApp::spawn_with(db.open().await, signoff_server::CallbackSettings::default()).await;
    for url in ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/x", "http://[::1]/x"] {
        let (status, body) = app.create(json!({"action": "anything", "callback_url": url})).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{url}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("SIGNOFF_ALLOW_PRIVATE_CALLBACKS"), "{body}");
    }
    let (status, body) = app.create(json!({"action": "anything", "callback_url": "ftp://example.com/x"})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{body}");
    let (status, _) =
        app.create(json!({"action": "anything", "callback_url": "https://hooks.example.com/signoff"})).await;
    assert_eq!(status, 201);
}
