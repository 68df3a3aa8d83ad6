//! Governance that holds when someone tries to get around it: people decide (not keys), a quorum approves one set of
//! arguments, typed arguments keep agents from picking a weaker gate, and the audit record keeps the whole proposal.
//! Each scenario is one of the reproductions that used to get through, on every backend.

use serde_json::{Value, json};
use signoff_domain::Role;
use signoff_store::NewKey;
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, person, send};

const PRODUCT_POLICY: &str = include_str!("../../../docs/examples/policy.yaml");

on_every_backend!(
    an_edit_by_one_quorum_member_resets_the_others,
    a_mistyped_amount_is_refused_not_sent_to_a_weaker_gate,
    two_keys_of_one_person_count_once,
    an_unbound_admin_key_manages_but_never_decides,
    an_agents_owner_never_approves_its_requests,
    the_audit_record_keeps_the_proposal_and_every_approval,
    an_oversized_field_is_refused_and_named,
);

async fn app_with_policy(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(PRODUCT_POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

async fn large_expense(app: &TestApp) -> String {
    let (status, body) = app.create(json!({"action": "expense", "args": {"amount": 30000}})).await;
    assert_eq!((status, body["group"].as_str()), (201, Some("cfo")), "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    events.as_array().unwrap().clone()
}

async fn an_edit_by_one_quorum_member_resets_the_others(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let (carl, cleo) = (app.approver("carl").await, app.approver("cleo").await);
    let id = large_expense(&app).await;

    let (status, _) = app.decide(&id, &carl, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200);
    let edit = json!({"outcome": "approve", "args": {"amount": 9_999_999}});
    let (status, body) = app.decide(&id, &cleo, edit).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending", "one person never decides what a quorum executes");
    let approvals: Vec<_> = body["approvals"].as_array().unwrap().iter().map(|a| a["approver_id"].clone()).collect();
    assert_eq!(approvals, [json!("cleo")], "carl approved other arguments: his approval no longer counts");
    let reset = events(&app, &id).await.into_iter().find(|e| e["kind"] == "approvals_reset").expect("an event");
    assert_eq!(reset["data"]["superseded"][0]["approver_id"], "carl", "{reset}");
    assert_eq!(reset["actor"], "approver:cleo");

    // Carl agrees to the edited arguments: two people approved the same ones.
    let (status, body) = app.decide(&id, &carl, json!({"outcome": "approve", "args": {"amount": 9_999_999}})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
    assert_eq!(body["decision"]["args"], json!({"amount": 9_999_999}));
    assert_eq!(body["decision"]["edited"], true);
}

async fn a_mistyped_amount_is_refused_not_sent_to_a_weaker_gate(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let (status, body) = app.create(json!({"action": "expense", "args": {"amount": "100000"}})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_args"), "{body}");
    assert_eq!(body["error"]["details"][0]["path"], "$.amount", "{body}");
    let (status, body) = app.create(json!({"action": "expense", "args": {"currency": "EUR"}})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_args"), "a missing amount too: {body}");
    let (_, page) = send(app.get("/v1/requests", &app.admin_key)).await;
    assert_eq!(page["items"], json!([]), "nothing was stored");
    // The number 100000 still needs two CFOs.
    let (_, body) = app.create(json!({"action": "expense", "args": {"amount": 100000}})).await;
    assert_eq!((body["group"].as_str(), body["approvals_required"].as_u64()), (Some("cfo"), Some(2)));
}

async fn two_keys_of_one_person_count_once(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let bound_to_carl = |name: &str| NewKey { approver_id: Some(person("carl")), ..NewKey::new(name, Role::Admin) };
    let (laptop, phone) = (app.key(bound_to_carl("carl-laptop")).await, app.key(bound_to_carl("carl-phone")).await);
    let approver_key = app.approver("carl").await;
    let id = large_expense(&app).await;
    for key in [&laptop, &phone, &approver_key] {
        let (status, body) = app.decide(&id, key, json!({"outcome": "approve"})).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("pending")), "{body}");
        assert_eq!(body["approvals"].as_array().unwrap().len(), 1, "carl counts once, whatever key he uses");
    }
    let (_, body) = app.decide(&id, &app.approver("cleo").await, json!({"outcome": "approve"})).await;
    assert_eq!(body["status"], "approved");
}

async fn an_unbound_admin_key_manages_but_never_decides(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let unbound = app.key(NewKey::new("ops", Role::Admin)).await;
    let id = large_expense(&app).await;
    let (status, body) = app.decide(&id, &unbound, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "not_an_approver"), "{body}");
    let (status, body) = app.decide(&id, &unbound, json!({"outcome": "reject", "comment": "no"})).await;
    assert_eq!((status, error_code(&body)), (403, "not_an_approver"), "{body}");
    // It still manages: it reads the request and the policy.
    assert_eq!(send(app.get(&format!("/v1/requests/{id}"), &unbound)).await.0, 200);
    assert_eq!(send(app.get("/v1/policy", &unbound)).await.0, 200);
    // An admin bound to a person outside the request's group is refused like any other outsider.
    let (status, body) = app.decide(&id, &app.admin_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "ada is not in cfo: {body}");
}

async fn an_agents_owner_never_approves_its_requests(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let agent = NewKey { owner_id: Some(person("carl")), ..NewKey::new("expense-bot", Role::Agent) };
    let agent = app.key(agent).await;
    let (status, body) =
        send(app.post("/v1/requests", &agent).json(&json!({"action": "expense", "args": {"amount": 30000}}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["requested_by"]["responsible"], "carl");
    let id = body["id"].as_str().unwrap();
    let carl_admin = app.key(NewKey { approver_id: Some(person("carl")), ..NewKey::new("carl", Role::Admin) }).await;
    for key in [app.approver("carl").await, carl_admin] {
        let (status, body) = app.decide(id, &key, json!({"outcome": "approve"})).await;
        assert_eq!((status, error_code(&body)), (403, "self_approval"), "{body}");
    }
    // Saying no is always allowed.
    let (status, body) =
        app.decide(id, &app.approver("carl").await, json!({"outcome": "reject", "comment": "mine"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("rejected")), "{body}");
}

async fn the_audit_record_keeps_the_proposal_and_every_approval(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let (status, body) = app
        .create(json!({
            "action": "expense", "args": {"amount": 30000, "currency": "EUR"}, "summary": "Offsite venue",
            "reasoning": "Quarterly offsite", "context": {"vendor": "v-1"}, "confidence": 0.9, "tags": ["travel"],
            "run_id": "run-1", "call_id": "call-1",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let carl = app.approver("carl").await;
    app.decide(&id, &carl, json!({"outcome": "approve", "args": {"amount": 29000, "currency": "EUR"}})).await;
    let events = events(&app, &id).await;
    let created = &events[0]["data"];
    for (field, value) in [
        ("args", json!({"amount": 30000, "currency": "EUR"})),
        ("summary", json!("Offsite venue")),
        ("reasoning", json!("Quarterly offsite")),
        ("context", json!({"vendor": "v-1"})),
        ("confidence", json!(0.9)),
        ("tags", json!(["travel"])),
        ("mode", json!("pre")),
        ("run_id", json!("run-1")),
        ("call_id", json!("call-1")),
    ] {
        assert_eq!(created[field], value, "created event field {field}: {created}");
    }
    assert_eq!(created["requested_by"]["key_id"], app.agent_key_id);
    let approval = events.iter().find(|e| e["kind"] == "approval_recorded").expect("the partial approval");
    assert_eq!(approval["data"]["approval"]["args"], json!({"amount": 29000, "currency": "EUR"}));
    assert_eq!(approval["data"]["approval"]["edited"], true);
    // Which key owns the events is part of what the hash covers.
    assert!(events.iter().all(|e| e["owner_key_id"] == app.agent_key_id.as_str()), "{events:?}");
}

async fn an_oversized_field_is_refused_and_named(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let big = "x".repeat(70 * 1024);
    for (body, field) in [
        (json!({"action": "refund", "args": {"note": big}}), "args"),
        (json!({"action": "refund", "state": {"note": big}}), "state"),
        (json!({"action": "refund", "reasoning": "r".repeat(17 * 1024)}), "reasoning"),
        (json!({"action": "refund", "summary": "s".repeat(2001)}), "summary"),
    ] {
        let (status, answer) = app.create(body).await;
        assert_eq!((status, error_code(&answer)), (413, "field_too_large"), "{field}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(&format!("`{field}`")), "{answer}");
    }
    let (status, _) = app.create(json!({"action": "refund", "context": {"note": "c".repeat(200 * 1024)}})).await;
    assert_eq!(status, 201, "context may be larger");
    // Each cap is configurable.
    let (_db, small) = TestApp::on_with(backend, |state| state.limits.fields.context_bytes = 1024).await;
    let (status, answer) = small.create(json!({"action": "refund", "context": {"note": "c".repeat(2048)}})).await;
    assert_eq!((status, error_code(&answer)), (413, "field_too_large"), "{answer}");
}
