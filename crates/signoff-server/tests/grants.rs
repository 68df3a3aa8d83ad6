//! Standing approvals: a person approves a request "and similar ones for a while"; the grant approves the same agent
//! key's matching requests under the same rule until it expires or is revoked, never on a quorum rule. On every
//! backend.

use serde_json::{Value, json};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};

on_every_backend!(
    a_grant_approves_matching_requests_within_its_window,
    a_different_scoped_field_is_routed_as_usual,
    an_expired_grant_approves_nothing,
    a_revoked_grant_approves_nothing,
    quorum_rules_never_use_grants,
    a_standing_approval_is_bounded_by_the_rule,
    only_the_granter_or_an_admin_revokes,
    grants_follow_the_policy_in_force,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, groups: [finance] }
  - { id: eve, name: Eve, groups: [finance] }
  - { id: carl, name: Carl, groups: [cfo] }
  - { id: cleo, name: Cleo, groups: [cfo] }
groups:
  finance: { notify: [dashboard] }
  cfo: { notify: [dashboard] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: refunds
    when: action == "refund" && args.amount < 1000
    route: finance
    standing: { max: 4h, scope: [action, args.customer] }
  - name: quick-refunds
    when: action == "quick-refund"
    route: finance
    standing: { max: 2s, scope: [args.customer] }
  - name: big-refunds
    when: action == "refund"
    route: cfo
    approvals: 2
"#;

async fn with_policy(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

async fn refund(app: &TestApp, action: &str, customer: &str, amount: i64) -> Value {
    let (status, body) = app.create(json!({"action": action, "args": {"customer": customer, "amount": amount}})).await;
    assert_eq!(status, 201, "{body}");
    body
}

fn id(request: &Value) -> &str {
    request["id"].as_str().unwrap()
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    events.as_array().unwrap().clone()
}

fn delete(app: &TestApp, path: &str, key: &str) -> reqwest::RequestBuilder {
    app.http.delete(format!("{}{path}", app.url)).bearer_auth(key)
}

/// Dana approves a refund for acme "and similar ones" for `standing_s`; answers the grant's id.
async fn grant(app: &TestApp, dana: &str, action: &str, standing_s: u64) -> String {
    let first = refund(app, action, "acme", 100).await;
    assert_eq!(first["status"], "pending", "{first}");
    let (status, body) = app.decide(id(&first), dana, json!({"outcome": "approve", "standing_s": standing_s})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
    let created = events(app, id(&first)).await.into_iter().find(|e| e["kind"] == "grant_created").expect("event");
    assert_eq!(created["actor"], "approver:dana", "{created}");
    created["data"]["grant_id"].as_str().unwrap().to_string()
}

async fn a_grant_approves_matching_requests_within_its_window(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    let grant_id = grant(&app, &dana, "refund", 3600).await;
    assert!(grant_id.starts_with("grt_"), "{grant_id}");

    let second = refund(&app, "refund", "acme", 250).await;
    assert_eq!(second["status"], "approved", "{second}");
    let by = &second["decision"]["by"];
    assert_eq!(by, &json!({"kind": "grant", "grant_id": grant_id, "approver_id": "dana"}));
    let decided = events(&app, id(&second)).await.into_iter().find(|e| e["kind"] == "decided").expect("decided");
    assert_eq!(decided["data"]["by"]["grant_id"], grant_id.as_str(), "{decided}");
    assert_eq!(decided["actor"], format!("grant:{grant_id}"));

    let (status, list) = send(app.get("/v1/grants", &dana)).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let listed = &items[0];
    assert_eq!((listed["id"].as_str(), listed["rule"].as_str()), (Some(grant_id.as_str()), Some("refunds")));
    assert_eq!((listed["approver_id"].as_str(), listed["uses"].as_u64()), (Some("dana"), Some(1)));
    assert_eq!(listed["key_id"], app.agent_key_id.as_str());
    assert_eq!(
        listed["scope"],
        json!([{"path": "action", "value": "refund"}, {"path": "args.customer", "value": "acme"}])
    );
    let (status, body) = send(app.get("/v1/grants", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "agents do not list grants: {body}");
}

async fn a_different_scoped_field_is_routed_as_usual(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    grant(&app, &dana, "refund", 3600).await;
    let other_customer = refund(&app, "refund", "globex", 100).await;
    assert_eq!(
        (other_customer["status"].as_str(), other_customer["group"].as_str()),
        (Some("pending"), Some("finance"))
    );
    // The same fields under another rule (and another action) are not in the grant's scope either.
    let other_rule = refund(&app, "quick-refund", "acme", 100).await;
    assert_eq!(other_rule["status"], "pending", "{other_rule}");
    // Nor are another agent key's requests.
    let other_agent = app.key(signoff_store::NewKey::new("other-bot", signoff_domain::Role::Agent)).await;
    let (status, body) = send(
        app.post("/v1/requests", &other_agent)
            .json(&json!({"action": "refund", "args": {"customer": "acme", "amount": 5}})),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (201, Some("pending")), "{body}");
}

async fn an_expired_grant_approves_nothing(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    grant(&app, &dana, "quick-refund", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let later = refund(&app, "quick-refund", "acme", 100).await;
    assert_eq!(later["status"], "pending", "the grant expired: {later}");
    let (_, live) = send(app.get("/v1/grants", &dana)).await;
    assert_eq!(live["items"], json!([]), "{live}");
    let (_, all) = send(app.get("/v1/grants?all=true", &dana)).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
}

async fn a_revoked_grant_approves_nothing(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    let grant_id = grant(&app, &dana, "refund", 3600).await;
    let (status, revoked) = send(delete(&app, &format!("/v1/grants/{grant_id}"), &dana)).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["revoked_by"], "approver:dana");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let later = refund(&app, "refund", "acme", 100).await;
    assert_eq!(later["status"], "pending", "the grant was revoked: {later}");
    let source = revoked["request_id"].as_str().unwrap();
    let event = events(&app, source).await.into_iter().find(|e| e["kind"] == "grant_revoked").expect("event");
    assert_eq!(event["data"]["grant_id"], grant_id.as_str());
    // Revoking again answers the grant as it stands and records nothing more.
    let (status, again) = send(delete(&app, &format!("/v1/grants/{grant_id}"), &dana)).await;
    assert_eq!((status, &again["revoked_at"]), (200, &revoked["revoked_at"]), "{again}");
    let revocations = events(&app, source).await.into_iter().filter(|e| e["kind"] == "grant_revoked").count();
    assert_eq!(revocations, 1);
}

async fn quorum_rules_never_use_grants(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let quorum =
        POLICY.replace("standing: { max: 2s, scope: [args.customer] }", "approvals: 2\n    standing: { max: 2s }");
    let (status, body) = app.apply_policy(&quorum).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_policy"), "{body}");
    let problem = &body["error"]["details"][0];
    assert!(problem["message"].as_str().unwrap().contains("never applies to a rule that needs 2 approvals"), "{body}");
    assert!(problem["line"].is_u64() && problem["column"].is_u64(), "{body}");

    // A request routed for two approvals refuses a standing approval, and nothing is decided.
    let big = refund(&app, "refund", "acme", 5000).await;
    assert_eq!(big["approvals_required"], 2, "{big}");
    let carl = app.approver("carl").await;
    let (status, body) = app.decide(id(&big), &carl, json!({"outcome": "approve", "standing_s": 60})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{body}");
    let (_, now) = send(app.get(&format!("/v1/requests/{}", id(&big)), &app.admin_key)).await;
    assert_eq!(now["approvals"], json!([]), "the refused standing approval recorded nothing: {now}");
    let (_, grants) = send(app.get("/v1/grants?all=true", &carl)).await;
    assert_eq!(grants["items"], json!([]));
}

async fn a_standing_approval_is_bounded_by_the_rule(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    let first = refund(&app, "refund", "acme", 100).await;
    let over = json!({"outcome": "approve", "standing_s": 4 * 3600 + 1});
    let (status, body) = app.decide(id(&first), &dana, over).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "over max: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("14400"), "{body}");
    let (status, body) = app.decide(id(&first), &dana, json!({"outcome": "approve", "standing_s": 0})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "zero: {body}");
    let reject = json!({"outcome": "reject", "comment": "no", "standing_s": 60});
    let (status, body) = app.decide(id(&first), &dana, reject).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "a rejection: {body}");
    let (status, body) = app.decide(id(&first), &dana, json!({"outcome": "approve", "standing_s": "1h"})).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "not a number: {body}");
    let (status, body) = app.decide(id(&first), &dana, json!({"outcome": "approve", "standing_s": 1.5})).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "a fraction: {body}");
    let huge = json!({"outcome": "approve", "standing_s": 56_280_324_859.0});
    let (status, body) = app.decide(id(&first), &dana, huge).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "a whole float, over max: {body}");
    let (_, still) = send(app.get(&format!("/v1/requests/{}", id(&first)), &app.admin_key)).await;
    assert_eq!(still["status"], "pending", "{still}");
    // The defaults' route has no rule and no standing.
    let (_, other) = app.create(json!({"action": "wire", "args": {}})).await;
    let (status, body) = app.decide(id(&other), &dana, json!({"outcome": "approve", "standing_s": 60})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{body}");
}

async fn only_the_granter_or_an_admin_revokes(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    let grant_id = grant(&app, &dana, "refund", 3600).await;
    let eve = app.approver("eve").await;
    let (status, body) = send(delete(&app, &format!("/v1/grants/{grant_id}"), &eve)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = send(delete(&app, &format!("/v1/grants/{grant_id}"), &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    for unknown in ["grt_00000000000000000000000000000000", "nope", &"x".repeat(300)] {
        let (status, body) = send(delete(&app, &format!("/v1/grants/{unknown}"), &app.admin_key)).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{unknown}: {body}");
    }
    let (status, body) = send(delete(&app, &format!("/v1/grants/{grant_id}"), &app.admin_key)).await;
    assert_eq!((status, body["revoked_by"].as_str()), (200, Some("approver:ada")), "{body}");
}

async fn grants_follow_the_policy_in_force(backend: Backend) {
    let (_db, app) = with_policy(backend).await;
    let dana = app.approver("dana").await;
    grant(&app, &dana, "refund", 3600).await;
    // A later version drops `standing` from the rule: its live grants stop applying.
    let (status, body) =
        app.apply_policy(&POLICY.replace("    standing: { max: 4h, scope: [action, args.customer] }\n", "")).await;
    assert_eq!(status, 201, "{body}");
    let later = refund(&app, "refund", "acme", 100).await;
    assert_eq!(later["status"], "pending", "{later}");
    // Given back, they apply again until they expire.
    let (status, body) = app.apply_policy(&format!("{POLICY}\n# again\n")).await;
    assert_eq!(status, 201, "{body}");
    let again = refund(&app, "refund", "acme", 100).await;
    assert_eq!(again["status"], "approved", "{again}");
}
