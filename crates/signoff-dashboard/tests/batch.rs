//! Batch review through the real app: the page lists the person's decidable pending requests of a group with the
//! total; approving the selected ones decides each on its own (one `decided` event each, by that person, through the
//! dashboard); one already decided is refused for itself alone; the form needs the session's CSRF token.

mod support;

use serde_json::{Value, json};
use signoff_testkit::{Backend, TestApp, on_every_backend, send};
use support::Browser;

on_every_backend!(
    approving_a_batch_decides_each_selected_request_separately,
    a_batch_needs_the_csrf_token_a_group_of_the_persons_and_a_verdict,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [finance] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [finance, ops] }
  - { id: olga, name: Olga Ops, email: olga@example.com, groups: [ops] }
groups:
  finance: { notify: [dashboard], digest: { every: 1h } }
  ops: { notify: [dashboard] }
defaults: { route: finance, timeout: 24h, on_timeout: reject }
rules:
  - { name: ops, when: 'action == "restart"', route: ops }
"#;

async fn create(app: &TestApp, summary: &str, amount: i64) -> String {
    let (status, created) =
        app.create(json!({"action": "refund", "summary": summary, "args": {"amount": amount}})).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_else(|| body["events"].as_array().cloned().unwrap_or_default())
}

async fn status_of(app: &TestApp, id: &str) -> String {
    send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await.1["status"].as_str().unwrap().to_string()
}

async fn approving_a_batch_decides_each_selected_request_separately(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let ids = [create(&app, "Refund A", 100).await, create(&app, "Refund B", 250).await];
    let kept = create(&app, "Refund C", 40).await;
    let stale = create(&app, "Refund D", 10).await;
    let mut dana = Browser::new(&app);
    assert_eq!(dana.sign_in(&app.approver_key).await.status, 303);

    let queue = dana.get("/").await;
    assert!(queue.body.contains(r#"href="/batch?group=finance""#), "the queue links to Review all: {}", queue.body);
    let page = dana.get("/batch?group=finance").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("4 requests you may decide, total 400 (args.amount)"), "{}", page.body);
    for id in ids.iter().chain([&kept, &stale]) {
        assert!(page.body.contains(&format!(r#"name="id" value="{id}" checked"#)), "{id} checked: {}", page.body);
    }
    // Someone else decides one of them meanwhile.
    let (status, body) = app.decide(&stale, &app.admin_key, json!({"outcome": "reject", "comment": "duplicate"})).await;
    assert_eq!(status, 200, "{body}");

    let csrf = dana.csrf("/batch?group=finance").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("group", "finance"),
        ("verdict", "approve"),
        ("comment", "checked the orders"),
        ("id", ids[0].as_str()),
        ("id", ids[1].as_str()),
        ("id", stale.as_str()),
    ];
    let answer = dana.post("/batch", &form).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("Approved."), "{}", answer.body);
    assert!(answer.body.contains("already rejected"), "the stale one is refused for itself: {}", answer.body);
    // What was left out stays, unticked.
    assert!(answer.body.contains(&format!(r#"name="id" value="{kept}" aria-label"#)), "{}", answer.body);

    for id in &ids {
        assert_eq!(status_of(&app, id).await, "approved");
        let decided: Vec<Value> = events(&app, id).await.into_iter().filter(|e| e["kind"] == "decided").collect();
        assert_eq!(decided.len(), 1, "one decision event for {id}: {decided:#?}");
        assert_eq!(decided[0]["actor"], "approver:dana", "{decided:#?}");
        let by = &decided[0]["data"]["by"];
        assert_eq!((&by["approver_id"], &by["channel"]), (&json!("dana"), &json!("dashboard")), "{decided:#?}");
    }
    assert_eq!(status_of(&app, &kept).await, "pending");
    assert_eq!(status_of(&app, &stale).await, "rejected");
    let decided = events(&app, &stale).await.into_iter().filter(|e| e["kind"] == "decided").count();
    assert_eq!(decided, 1, "the refused one keeps its one decision");

    // Rejecting needs a comment: refused for each, nothing decided.
    let csrf = dana.csrf("/batch?group=finance").await;
    let form = [("csrf", csrf.as_str()), ("group", "finance"), ("verdict", "reject"), ("id", kept.as_str())];
    let answer = dana.post("/batch", &form).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("class=\"error\""), "{}", answer.body);
    assert_eq!(status_of(&app, &kept).await, "pending");
}

async fn a_batch_needs_the_csrf_token_a_group_of_the_persons_and_a_verdict(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let id = create(&app, "Refund A", 100).await;
    let mut dana = Browser::new(&app);
    assert_eq!(dana.sign_in(&app.approver_key).await.status, 303);
    for csrf in [None, Some("guessed")] {
        let mut form = vec![("group", "finance"), ("verdict", "approve"), ("id", id.as_str())];
        form.extend(csrf.map(|token| ("csrf", token)));
        assert_eq!(dana.post("/batch", &form).await.status, 403, "{csrf:?}");
    }
    assert_eq!(status_of(&app, &id).await, "pending");
    assert_eq!(dana.get("/batch?group=ops").await.status, 403, "not dana's group");
    assert_eq!(dana.get("/batch?group=nope").await.status, 404);
    assert_eq!(dana.get("/batch").await.status, 400);
    let csrf = dana.csrf("/batch?group=finance").await;
    let bad = [("csrf", csrf.as_str()), ("group", "finance"), ("verdict", "maybe"), ("id", id.as_str())];
    assert_eq!(dana.post("/batch", &bad).await.status, 400);
    let none = [("csrf", csrf.as_str()), ("group", "finance"), ("verdict", "approve")];
    assert_eq!(dana.post("/batch", &none).await.status, 400);
    let forged = [("csrf", csrf.as_str()), ("group", "finance"), ("verdict", "approve"), ("id", "not-an-id")];
    let answer = dana.post("/batch", &forged).await;
    assert!(answer.body.contains("does not name a request"), "{}", answer.body);
    assert_eq!(dana.get("/").await.status, 200);
    // Signed out: sent to sign in.
    assert_eq!(Browser::new(&app).get("/batch?group=finance").await.status, 303);
}
