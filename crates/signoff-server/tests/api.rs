//! The HTTP API as an agent and an approver use it, on every backend.

use serde_json::{Value, json};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::time::Duration;

on_every_backend!(
    create_wait_approve,
    idempotency_by_header_and_by_run_and_call,
    fifty_concurrent_duplicate_creates_make_one_request,
    fifty_concurrent_decisions_have_one_winner,
    wait_times_out_with_the_pending_request,
    bad_input_gets_a_status_and_a_code,
    roles_are_enforced,
    revoked_keys_are_refused,
    reject_edit_cancel_and_outcome,
    listing_pages_newest_first,
    health_readiness_and_openapi,
    graceful_shutdown_answers_waiters,
    many_waiters_on_one_request_all_wake_and_abandoned_ones_are_cleared,
);

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_string()
}

async fn create_wait_approve(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (status, created) = app.create(json!({"action": "refund", "args": {"amount": 120}, "summary": "Refund"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["decision"], Value::Null);
    let id = id_of(&created);

    let waiter = tokio::spawn(send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=30"), &app.agent_key)));
    while app.state.waiters.parked() == 0 {
        tokio::task::yield_now().await;
    }
    let (status, decided) = app.decide(&id, &app.approver_key, json!({"outcome": "approve", "comment": "ok"})).await;
    assert_eq!(status, 200, "{decided}");
    let (status, woken) = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
    assert_eq!(status, 200);
    assert_eq!(woken["status"], "approved");
    assert_eq!(woken["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "api"}));

    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
    let kinds: Vec<_> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "routed", "decided"]);
}

async fn idempotency_by_header_and_by_run_and_call(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let body = json!({"action": "refund", "args": {"amount": 5}});
    let create = |body: &Value, key: &str| {
        send(app.post("/v1/requests", &app.agent_key).header("Idempotency-Key", key).json(body))
    };
    let (first_status, first) = create(&body, "abc").await;
    let (retry_status, retry) = create(&body, "abc").await;
    assert_eq!((first_status, retry_status), (201, 200));
    assert_eq!(first["id"], retry["id"]);
    let (status, conflict) = create(&json!({"action": "refund", "args": {"amount": 6}}), "abc").await;
    assert_eq!((status, error_code(&conflict)), (409, "idempotency_conflict"));

    let by_call = json!({"action": "email", "run_id": "run-1", "call_id": "call-1"});
    let (s1, a) = app.create(by_call.clone()).await;
    let (s2, b) = app.create(by_call).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(a["id"], b["id"]);
    // The same key under another caller is another request.
    let (status, _) = send(app.post("/v1/requests", &app.admin_key).header("Idempotency-Key", "abc").json(&body)).await;
    assert_eq!(status, 201);
}

async fn fifty_concurrent_duplicate_creates_make_one_request(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let call = app
                .post("/v1/requests", &app.agent_key)
                .header("Idempotency-Key", "dup")
                .json(&json!({"action": "refund", "args": {"amount": 1}}));
            tokio::spawn(send(call))
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert!(status == 200 || status == 201, "{status} {body}");
        created += usize::from(status == 201);
        ids.insert(id_of(&body));
    }
    assert_eq!((created, ids.len()), (1, 1));
    let (_, page) = send(app.get("/v1/requests", &app.agent_key)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

async fn fifty_concurrent_decisions_have_one_winner(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let body =
                if i % 2 == 0 { json!({"outcome": "approve"}) } else { json!({"outcome": "reject", "comment": "no"}) };
            let key = if i % 3 == 0 { &app.admin_key } else { &app.approver_key };
            tokio::spawn(send(app.post(&format!("/v1/requests/{id}/decision"), key).json(&body)))
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        if status != 200 {
            assert_eq!((status, error_code(&body)), (409, "already_decided"), "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1);
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    let decided = events.as_array().unwrap().iter().filter(|e| e["kind"] == "decided").count();
    assert_eq!(decided, 1);
}

async fn wait_times_out_with_the_pending_request(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let (status, body) = send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=1"), &app.agent_key)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
    assert_eq!(app.state.waiters.parked(), 0, "a timed-out waiter leaves nothing parked");
    let (status, body) = send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=301"), &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"));
    let unknown = signoff_domain::RequestId::new();
    let (status, _) = send(app.get(&format!("/v1/requests/{unknown}/wait?timeout_s=5"), &app.agent_key)).await;
    assert_eq!(status, 404);
    app.decide(&id, &app.approver_key, json!({"outcome": "approve"})).await;
    let (status, body) = send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=5"), &app.agent_key)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    assert_eq!(app.state.waiters.parked(), 0, "answered and refused waiters leave nothing parked");
}

async fn bad_input_gets_a_status_and_a_code(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let raw = |body: &'static str| {
        send(app.post("/v1/requests", &app.agent_key).header("content-type", "application/json").body(body))
    };
    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        ("malformed JSON", raw("{\"action\":").await, 400, "bad_request"),
        ("wrong type", raw("{\"action\": 5}").await, 400, "bad_request"),
        ("missing action", raw("{\"args\": {}}").await, 400, "bad_request"),
        ("unknown field", raw("{\"action\": \"x\", \"amount\": 1}").await, 400, "bad_request"),
        ("empty action", app.create(json!({"action": ""})).await, 400, "invalid_request"),
        ("long action", app.create(json!({"action": "x".repeat(129)})).await, 400, "invalid_request"),
        ("args not an object", app.create(json!({"action": "x", "args": [1]})).await, 400, "invalid_request"),
        ("confidence above 1", app.create(json!({"action": "x", "confidence": 1.5})).await, 400, "invalid_request"),
        ("NUL in the action", app.create(json!({"action": "a\u{0}b"})).await, 400, "invalid_request"),
        ("bad mode", app.create(json!({"action": "x", "mode": "sideways"})).await, 400, "bad_request"),
        (
            "not JSON at all",
            send(app.post("/v1/requests", &app.agent_key).body("action=x")).await,
            415,
            "unsupported_media_type",
        ),
        (
            "body over 1 MiB",
            app.create(json!({"action": "x", "summary": "y".repeat(1024 * 1024)})).await,
            413,
            "payload_too_large",
        ),
        (
            "unknown id",
            send(app.get(&format!("/v1/requests/{}", signoff_domain::RequestId::new()), &app.agent_key)).await,
            404,
            "not_found",
        ),
        ("malformed id", send(app.get("/v1/requests/not-an-id", &app.agent_key)).await, 404, "not_found"),
        (
            "cancel body over 1 MiB",
            send(
                app.post(&format!("/v1/requests/{}/cancel", signoff_domain::RequestId::new()), &app.agent_key)
                    .body(vec![b' '; 2 << 20]),
            )
            .await,
            413,
            "payload_too_large",
        ),
        ("unknown route", send(app.get("/v1/nothing", &app.agent_key)).await, 404, "not_found"),
        ("wrong method", send(app.http.delete(format!("{}/v1/requests", app.url))).await, 405, "method_not_allowed"),
        ("bad status filter", send(app.get("/v1/requests?status=done", &app.agent_key)).await, 400, "invalid_request"),
        ("bad limit", send(app.get("/v1/requests?limit=abc", &app.agent_key)).await, 400, "bad_request"),
        ("no key", send(app.http.get(format!("{}/v1/requests", app.url))).await, 401, "unauthorized"),
        ("unknown key", send(app.get("/v1/requests", "so_agent_forged")).await, 401, "unauthorized"),
        (
            "not a bearer",
            send(app.http.get(format!("{}/v1/requests", app.url)).header("authorization", "Basic abc")).await,
            401,
            "unauthorized",
        ),
    ];
    for (case, (status, body), want_status, want_code) in cases {
        assert_eq!((status, error_code(&body)), (want_status, want_code), "{case}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{case} has a message");
    }
    let (_, page) = send(app.get("/v1/requests", &app.admin_key)).await;
    assert!(page["items"].as_array().unwrap().is_empty(), "no bad input left a request behind");
}

async fn roles_are_enforced(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let (status, body) = app.decide(&id, &app.agent_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = send(app.post("/v1/requests", &app.approver_key).json(&json!({"action": "refund"}))).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = send(app.post(&format!("/v1/requests/{id}/cancel"), &app.approver_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));

    // An admin that creates a request cannot approve it itself.
    let (_, own) = send(app.post("/v1/requests", &app.admin_key).json(&json!({"action": "refund"}))).await;
    let (status, body) = app.decide(&id_of(&own), &app.admin_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "self_approval"));

    // Agents see only their own requests.
    let other_agent = app
        .state
        .store
        .create_key(signoff_store::NewKey::new("other", signoff_domain::Role::Agent), "test")
        .await
        .unwrap();
    let (status, body) = send(app.get(&format!("/v1/requests/{id}"), &other_agent.secret)).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (_, page) = send(app.get("/v1/requests", &other_agent.secret)).await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (status, _) = send(app.get(&format!("/v1/requests/{id}"), &app.approver_key)).await;
    assert_eq!(status, 200);
}

async fn revoked_keys_are_refused(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (status, _) = send(app.get("/v1/requests", &app.agent_key)).await;
    assert_eq!(status, 200);
    app.state.store.revoke_key(&app.agent_key_id, "test").await.unwrap();
    let (status, body) = send(app.get("/v1/requests", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"));
}

async fn reject_edit_cancel_and_outcome(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (status, a) = app.create(json!({"action": "refund", "args": {"amount": 900, "memo": "a\u{0}b"}})).await;
    assert_eq!(status, 201, "any text in args is kept as given: {a}");
    assert_eq!(a["args"]["memo"], "a\u{0}b");
    let (status, body) = app.decide(&id_of(&a), &app.approver_key, json!({"outcome": "reject"})).await;
    assert_eq!((status, error_code(&body)), (400, "comment_required"));
    let (status, body) =
        app.decide(&id_of(&a), &app.approver_key, json!({"outcome": "reject", "comment": "over\u{0} budget"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("rejected")), "{body}");
    assert_eq!(body["decision"]["comment"], "over\u{0} budget", "any text is kept as given");
    let (status, body) = app.decide(&id_of(&a), &app.approver_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (409, "already_decided"));

    let (_, b) = app.create(json!({"action": "refund", "args": {"amount": 900}})).await;
    let (status, body) =
        app.decide(&id_of(&b), &app.approver_key, json!({"outcome": "approve", "args": {"amount": 500}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["args"], json!({"amount": 900}));
    assert_eq!(body["decision"]["args"], json!({"amount": 500}));
    assert_eq!(body["decision"]["edited"], true);
    let outcome =
        |id: &str, body: Value| send(app.post(&format!("/v1/requests/{id}/outcome"), &app.agent_key).json(&body));
    let (status, body) = outcome(&id_of(&b), json!({"ok": true, "detail": {"refund_id": "re_1"}})).await;
    assert_eq!((status, body["outcome"]["ok"].as_bool()), (200, Some(true)));
    let (status, body) = outcome(&id_of(&b), json!({"ok": true})).await;
    assert_eq!((status, error_code(&body)), (409, "outcome_already_reported"));

    let (_, c) = app.create(json!({"action": "refund"})).await;
    let (status, body) = outcome(&id_of(&c), json!({"ok": true})).await;
    assert_eq!((status, error_code(&body)), (409, "not_decided"));
    let (status, body) = send(
        app.post(&format!("/v1/requests/{}/cancel", id_of(&c)), &app.agent_key).json(&json!({"reason": "user left"})),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(body["decision"]["by"]["kind"], "agent");
    let (status, body) = send(app.post(&format!("/v1/requests/{}/cancel", id_of(&c)), &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (409, "already_decided"));
}

async fn listing_pages_newest_first(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, body) = app.create(json!({"action": "refund", "run_id": "r1", "args": {"i": i}})).await;
        ids.push(id_of(&body));
    }
    app.create(json!({"action": "email"})).await;
    let (_, first) = send(app.get("/v1/requests?action=refund&limit=3", &app.agent_key)).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, second) =
        send(app.get(&format!("/v1/requests?action=refund&limit=3&cursor={cursor}"), &app.agent_key)).await;
    assert_eq!(second["next_cursor"], Value::Null);
    let seen: Vec<String> =
        first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).map(id_of).collect();
    ids.reverse();
    assert_eq!(seen, ids);
    let (_, by_run) = send(app.get("/v1/requests?run_id=r1&status=pending&limit=500", &app.agent_key)).await;
    assert_eq!(by_run["items"].as_array().unwrap().len(), 5);
}

async fn health_readiness_and_openapi(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (status, body) = send(app.http.get(format!("{}/healthz", app.url))).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = send(app.http.get(format!("{}/readyz", app.url))).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, spec) = send(app.http.get(format!("{}/openapi.json", app.url))).await;
    assert_eq!(status, 200);
    for path in [
        "/v1/requests",
        "/v1/requests/{id}",
        "/v1/requests/{id}/wait",
        "/v1/requests/{id}/decision",
        "/v1/requests/{id}/answer",
        "/v1/requests/{id}/cancel",
        "/v1/requests/{id}/outcome",
        "/v1/requests/{id}/events",
        "/v1/requests/{id}/deliveries",
        "/v1/requests/{id}/notifications",
        "/v1/events",
        "/v1/audit/verify",
        "/v1/audit/checkpoints",
        "/v1/policy",
        "/v1/policy/versions",
        "/v1/groups/{name}/oncall",
        "/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(spec["paths"][path].is_object(), "the OpenAPI document describes {path}");
    }
}

async fn graceful_shutdown_answers_waiters(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let waiter = tokio::spawn(send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=300"), &app.agent_key)));
    while app.state.waiters.parked() == 0 {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    app.stop().await;
    let (status, body) = waiter.await.unwrap();
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A decision made through one server wakes a waiter parked on another (PostgreSQL LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_one_replica_wakes_a_waiter_on_another() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let first = TestApp::spawn(db.open().await).await;
    let second = TestApp::replica(db.open().await, &first).await;
    let (_, created) = first.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let waiter = tokio::spawn(send(first.get(&format!("/v1/requests/{id}/wait?timeout_s=30"), &first.agent_key)));
    while first.state.waiters.parked() == 0 {
        tokio::task::yield_now().await;
    }
    let decided_at = std::time::Instant::now();
    let (status, _) = second.decide(&id, &second.approver_key, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200);
    let (status, woken) = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
    assert_eq!((status, woken["status"].as_str()), (200, Some("approved")));
    assert!(decided_at.elapsed() < Duration::from_secs(2), "woken by the notice, not by the timeout");
}

/// A key revoked while its event stream is open loses the stream within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_open_event_stream() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(db.open().await).await;
    let stream = app.get("/v1/events", &app.agent_key).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    app.state.store.revoke_key(&app.agent_key_id, "test").await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.bytes()).await;
    assert!(ended.is_ok(), "the stream of a revoked key must end");
}

async fn many_waiters_on_one_request_all_wake_and_abandoned_ones_are_cleared(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = id_of(&created);
    let wait = format!("/v1/requests/{id}/wait?timeout_s=30");
    let quitter = tokio::spawn(send(app.get(&wait, &app.agent_key)));
    while app.state.waiters.parked() < 1 {
        tokio::task::yield_now().await;
    }
    // The client goes away: its connection closes, and the server forgets the waiter without waiting for a change.
    quitter.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.state.waiters.parked() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "an abandoned waiter stayed parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let waiters: Vec<_> = (0..20).map(|_| tokio::spawn(send(app.get(&wait, &app.agent_key)))).collect();
    while app.state.waiters.parked() < 20 {
        tokio::task::yield_now().await;
    }
    let (status, _) = app.decide(&id, &app.approver_key, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200);
    for waiter in waiters {
        let (status, woken) = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        assert_eq!((status, woken["status"].as_str()), (200, Some("approved")));
    }
    assert_eq!(app.state.waiters.parked(), 0);
}
