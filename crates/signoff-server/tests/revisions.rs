//! Revisions: an agent asks again, with changed arguments, a request of its own that was rejected; both requests show
//! the link, and every other `revises` is refused with nothing stored.

use serde_json::{Value, json};
use signoff_domain::Role;
use signoff_store::NewKey;
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};

on_every_backend!(
    a_rejected_request_is_revised_once_and_both_show_the_link,
    every_other_revises_is_refused_and_stores_nothing,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
"#;

async fn scene(backend: Backend) -> (TestDatabase, TestApp, String) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    let dana = app.approver("dana").await;
    (db, app, dana)
}

async fn refund(app: &TestApp, key: &str, amount: u32, revises: Option<&str>) -> (u16, Value) {
    let body = json!({"action": "refund", "args": {"amount": amount}, "revises": revises});
    send(app.post("/v1/requests", key).json(&body)).await
}

async fn rejected(app: &TestApp, dana: &str, amount: u32) -> String {
    let (status, body) = refund(app, &app.agent_key, amount, None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = app.decide(&id, dana, json!({"outcome": "reject", "comment": "too large"})).await;
    assert_eq!(status, 200, "{body}");
    id
}

async fn get(app: &TestApp, id: &str) -> Value {
    send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await.1
}

async fn a_rejected_request_is_revised_once_and_both_show_the_link(backend: Backend) {
    let (_db, app, dana) = scene(backend).await;
    let first = rejected(&app, &dana, 500).await;

    let (status, second) = refund(&app, &app.agent_key, 300, Some(&first)).await;
    assert_eq!((status, second["status"].as_str()), (201, Some("pending")), "{second}");
    assert_eq!(second["revises"], first.as_str());
    assert_eq!(second["revised_by"], Value::Null);
    let earlier = get(&app, &first).await;
    assert_eq!(earlier["revised_by"], second["id"], "{earlier}");
    assert_eq!(earlier["status"], "rejected", "revising changes nothing else");
    let (_, events) = send(app.get(&format!("/v1/requests/{first}/events"), &app.admin_key)).await;
    let revised = events.as_array().unwrap().iter().find(|e| e["kind"] == "revised").expect("a revised event");
    assert_eq!(revised["data"]["revised_by"], second["id"]);
    let (_, events) =
        send(app.get(&format!("/v1/requests/{}/events", second["id"].as_str().unwrap()), &app.admin_key)).await;
    assert_eq!(events[0]["data"]["revises"], first.as_str(), "the created event keeps the link");

    // Once only: a second revision of the same request is refused, naming the first.
    let (status, body) = refund(&app, &app.agent_key, 200, Some(&first)).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_revision"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("already revised by"), "{body}");
}

async fn every_other_revises_is_refused_and_stores_nothing(backend: Backend) {
    let (_db, app, dana) = scene(backend).await;
    let other_agent = app.key(NewKey::new("other-bot", Role::Agent)).await;
    let theirs = {
        let (status, body) = refund(&app, &other_agent, 500, None).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        assert_eq!(app.decide(&id, &dana, json!({"outcome": "reject", "comment": "no"})).await.0, 200);
        id
    };
    let (_, pending) = refund(&app, &app.agent_key, 500, None).await;
    let pending = pending["id"].as_str().unwrap().to_string();
    let (_, approved) = refund(&app, &app.agent_key, 500, None).await;
    let approved = approved["id"].as_str().unwrap().to_string();
    assert_eq!(app.decide(&approved, &dana, json!({"outcome": "approve"})).await.0, 200);
    let unknown = "0193a4f2-7c1e-7d3a-9f0b-2c4d5e6f7a8b";
    let count = |app: &TestApp| {
        let request = app.get("/v1/requests?limit=500", &app.admin_key);
        async move { send(request).await.1["items"].as_array().unwrap().len() }
    };
    let stored = count(&app).await;

    for (revises, says) in [
        (theirs.as_str(), format!("no request {theirs} of this agent to revise")),
        (unknown, format!("no request {unknown} of this agent to revise")),
        (pending.as_str(), format!("request {pending} is pending: only a rejected or expired request can be revised")),
        (
            approved.as_str(),
            format!("request {approved} is approved: only a rejected or expired request can be revised"),
        ),
    ] {
        let (status, body) = refund(&app, &app.agent_key, 100, Some(revises)).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_revision"), "{body}");
        assert_eq!(body["error"]["message"], format!("revises: {says}"));
    }
    let (status, body) = refund(&app, &app.agent_key, 100, Some("not-an-id")).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");
    assert_eq!(count(&app).await, stored, "nothing stored by a refused create");
    assert_eq!(get(&app, &theirs).await["revised_by"], Value::Null);
}
