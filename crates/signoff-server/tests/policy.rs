//! Policy at runtime: the PRODUCT.md example as written, on every backend.

use serde_json::{Value, json};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};

const PRODUCT_POLICY: &str = include_str!("../../../docs/examples/policy.yaml");

on_every_backend!(
    finance_tiers_route_by_amount,
    a_condition_that_cannot_be_evaluated_follows_on_error,
    quorum_needs_distinct_members_and_never_the_requester,
    hiring_escalates_only_the_borderline,
    post_execution_reports_are_sampled_and_flags_reach_the_agent,
    malformed_policies_are_refused_and_change_nothing,
    edits_and_reject_reasons_follow_the_rule,
    versions_are_listed_and_reapplying_is_a_no_op,
);

async fn app_with_policy(backend: Backend, policy: &str) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(policy).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

async fn expense(app: &TestApp, args: Value) -> Value {
    let (status, body) = app.create(json!({"action": "expense", "args": args})).await;
    assert_eq!(status, 201, "{body}");
    body
}

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

async fn finance_tiers_route_by_amount(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    let small = expense(&app, json!({"amount": 4999})).await;
    assert_eq!(small["status"], "approved");
    assert_eq!(small["decision"]["by"], json!({"kind": "policy", "rule": "small-expense"}));
    assert_eq!(small["policy"]["version"], 1);

    for amount in [5000, 25000] {
        let routed = expense(&app, json!({"amount": amount})).await;
        assert_eq!(routed["status"], "pending");
        assert_eq!(routed["group"], "directors", "amount {amount}");
        assert_eq!(routed["policy"]["rule"], "director-expense");
        assert_eq!(routed["approvals_required"], 1);
        assert_eq!(routed["on_timeout"], "reject");
        assert_eq!(routed["escalations"][0]["to"], "cfo");
        let created = chrono::DateTime::parse_from_rfc3339(routed["created_at"].as_str().unwrap()).unwrap();
        let deadline = chrono::DateTime::parse_from_rfc3339(routed["deadline_at"].as_str().unwrap()).unwrap();
        assert_eq!((deadline - created).num_hours(), 28);
    }
    let large = expense(&app, json!({"amount": 25001})).await;
    assert_eq!((large["group"].as_str(), large["approvals_required"].as_u64()), (Some("cfo"), Some(2)));

    let (_, events) = send(app.get(&format!("/v1/requests/{}/events", id(&large)), &app.agent_key)).await;
    assert_eq!(events[1]["kind"], "routed");
    assert_eq!(events[1]["data"]["group"], "cfo");
    assert_eq!(events[1]["actor"], "policy:large-expense");
}

async fn a_condition_that_cannot_be_evaluated_follows_on_error(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    // No confidence: `borderline-candidate` cannot compare null with 0.4. `on_error: deny` decides.
    let (status, request) = app.create(json!({"action": "advance_candidate", "args": {"candidate": "c-9"}})).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["status"], "rejected", "never approved when a condition fails");
    assert_eq!(request["decision"]["by"], json!({"kind": "policy", "rule": "borderline-candidate"}));
    let comment = request["decision"]["comment"].as_str().unwrap();
    assert!(comment.contains("borderline-candidate") && comment.contains("on_error"), "the agent sees why: {comment}");
    assert!(request["policy"]["error"].as_str().unwrap().contains("borderline-candidate"));

    // With `on_error: {route, approvals}`, the request goes to that group and quorum instead.
    let routed = PRODUCT_POLICY.replace("  on_error: deny", "  on_error: { route: cfo, approvals: 2 }");
    assert_eq!(app.apply_policy(&routed).await.0, 201);
    let (_, request) = app.create(json!({"action": "advance_candidate", "args": {"candidate": "c-9"}})).await;
    assert_eq!((request["status"].as_str(), request["group"].as_str()), (Some("pending"), Some("cfo")), "{request}");
    assert_eq!(request["approvals_required"], 2);
    let (_, events) = send(app.get(&format!("/v1/requests/{}/events", id(&request)), &app.agent_key)).await;
    assert!(
        events[1]["data"]["error"].as_str().unwrap().contains("borderline-candidate"),
        "and in its events: {events}"
    );
}

async fn quorum_needs_distinct_members_and_never_the_requester(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    let (carl, cleo, dana) = (app.approver("carl").await, app.approver("cleo").await, app.approver("dana").await);
    let request = expense(&app, json!({"amount": 30000})).await;
    let id = id(&request);

    let (status, body) = app.decide(&id, &dana, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "dana is not in cfo: {body}");
    let (status, body) = app.decide(&id, &carl, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
    let (_, body) = app.decide(&id, &carl, json!({"outcome": "approve"})).await;
    assert_eq!(body["approvals"].as_array().unwrap().len(), 1, "carl twice counts once");
    assert_eq!(body["status"], "pending");
    let (status, body) = app.decide(&id, &cleo, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let approvers: Vec<_> = body["approvals"].as_array().unwrap().iter().map(|a| a["approver_id"].clone()).collect();
    assert_eq!(approvers, [json!("carl"), json!("cleo")]);

    // One rejection rejects.
    let second = id_of_new(&app, 40000).await;
    app.decide(&second, &carl, json!({"outcome": "approve"})).await;
    let (status, body) = app.decide(&second, &cleo, json!({"outcome": "reject", "comment": "no"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("rejected")));

    // The person who created a request can never approve it, even as an admin.
    let (_, own) =
        send(app.post("/v1/requests", &app.admin_key).json(&json!({"action": "expense", "args": {"amount": 9000}})))
            .await;
    let (status, body) = app.decide(own["id"].as_str().unwrap(), &app.admin_key, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (403, "self_approval"));
}

async fn id_of_new(app: &TestApp, amount: i64) -> String {
    id(&expense(app, json!({"amount": amount})).await)
}

async fn hiring_escalates_only_the_borderline(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    let candidate = |confidence: f64, tags: Value| {
        app.create(json!({"action": "advance_candidate", "confidence": confidence, "tags": tags, "args": {"candidate": "c-1"}}))
    };
    let (_, clear) = candidate(0.9, json!([])).await;
    assert_eq!(
        (clear["status"].as_str(), clear["decision"]["by"]["rule"].as_str()),
        (Some("approved"), Some("clear-candidate"))
    );
    let (_, borderline) = candidate(0.5, json!([])).await;
    assert_eq!(
        (borderline["status"].as_str(), borderline["group"].as_str()),
        (Some("pending"), Some("hiring-managers"))
    );
    assert_eq!(borderline["escalations"][0]["to"], "hr");
    let (_, internal) = candidate(0.95, json!(["internal"])).await;
    assert_eq!(internal["group"], "hiring-managers");
    let hana = app.approver("hana").await;
    let (status, _) = app.decide(&id(&borderline), &hana, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200);
}

async fn post_execution_reports_are_sampled_and_flags_reach_the_agent(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    let total = 600;
    let mut sampled = Vec::new();
    for i in 0..total {
        let (status, report) =
            app.create(json!({"action": "remove_comment", "mode": "post", "args": {"comment": i}})).await;
        assert_eq!(status, 201);
        match report["sampled"].as_bool() {
            Some(true) => {
                assert_eq!(
                    (report["status"].as_str(), report["group"].as_str()),
                    (Some("pending"), Some("moderators"))
                );
                sampled.push(id(&report));
            }
            Some(false) => {
                assert_eq!(report["status"], "approved");
                assert_eq!(report["decision"]["by"]["rule"], "comment-removal");
            }
            None => panic!("a review-rule report says whether it was sampled: {report}"),
        }
    }
    // 5 % of 600 is 30; four standard deviations (about 21) either side.
    assert!((9..=51).contains(&sampled.len()), "sampled {} of {total}", sampled.len());

    let (_, queue) = send(app.get("/v1/requests?group=moderators&status=pending&limit=500", &app.approver_key)).await;
    let queued: Vec<_> = queue["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(queued.len(), sampled.len(), "the sampled reports wait in the moderators' queue");
    let mo = app.approver("mo").await;
    let flagged = &sampled[0];
    let (status, body) =
        app.decide(flagged, &mo, json!({"outcome": "reject", "comment": "removed a comment that was fine"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("rejected")));
    let (_, waited) = send(app.get(&format!("/v1/requests/{flagged}/wait?timeout_s=1"), &app.agent_key)).await;
    assert_eq!(waited["decision"]["comment"], "removed a comment that was fine");
    let (_, confirmed) = app.decide(&sampled[1], &mo, json!({"outcome": "approve"})).await;
    assert_eq!(confirmed["status"], "approved");
}

async fn malformed_policies_are_refused_and_change_nothing(backend: Backend) {
    let (_db, app) = app_with_policy(backend, PRODUCT_POLICY).await;
    let bad_yaml = "version: 1\nrules:\n  - name: x\n    when: [unclosed\n";
    let bad_cel = PRODUCT_POLICY.replace("args.amount < 5000", "args.amount <<< 5000");
    let unknown_group = PRODUCT_POLICY.replace("route: directors", "route: director");
    let bad_duration = PRODUCT_POLICY.replace("timeout: 28h", "timeout: 28 hours");
    for (case, document, wants) in [
        ("YAML", bad_yaml, "line 5, column 1: YAML syntax error"),
        ("CEL", bad_cel.as_str(), "small-expense"),
        ("unknown group", unknown_group.as_str(), "unknown group `director`"),
        ("duration", bad_duration.as_str(), "28 hours"),
    ] {
        let (status, body) = app.apply_policy(document).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_policy"), "{case}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(wants), "{case}: {message}");
        let first = &body["error"]["details"][0];
        assert!(first["line"].as_u64().is_some(), "{case} says where: {body}");
    }
    let (_, current) = send(app.get("/v1/policy", &app.admin_key)).await;
    assert_eq!(current["version"], 1);
    let routed = expense(&app, json!({"amount": 5000})).await;
    assert_eq!(routed["group"], "directors", "the version in force still decides");
    let (status, body) =
        send(app.http.put(format!("{}/v1/policy", app.url)).bearer_auth(&app.approver_key).body("x")).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
}

async fn edits_and_reject_reasons_follow_the_rule(backend: Backend) {
    let policy = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: strict-refund
    when: action == "refund"
    route: finance
    allow_edit: false
    reject_reasons: [fraud, duplicate]
"#;
    let (_db, app) = app_with_policy(backend, policy).await;
    let (_, refund) = app.create(json!({"action": "refund", "args": {"amount": 10}})).await;
    let refund = id(&refund);
    let (status, body) =
        app.decide(&refund, &app.approver_key, json!({"outcome": "approve", "args": {"amount": 5}})).await;
    assert_eq!((status, error_code(&body)), (400, "edit_not_allowed"));
    let (status, body) =
        app.decide(&refund, &app.approver_key, json!({"outcome": "reject", "comment": "looks off"})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_reason"));
    assert!(body["error"]["message"].as_str().unwrap().contains("fraud, duplicate"));
    let (status, body) = app
        .decide(
            &refund,
            &app.approver_key,
            json!({"outcome": "reject", "comment": "seen before", "reason": "duplicate"}),
        )
        .await;
    assert_eq!((status, body["decision"]["reason"].as_str()), (200, Some("duplicate")));
}

async fn versions_are_listed_and_reapplying_is_a_no_op(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, builtin) = send(app.get("/v1/policy", &app.approver_key)).await;
    assert_eq!((builtin["version"].as_i64(), builtin["builtin"].as_bool()), (Some(0), Some(true)));
    let (_, before) = app.create(json!({"action": "anything"})).await;
    assert_eq!((before["group"].as_str(), before["policy"]["version"].as_i64()), (Some("everyone"), Some(0)));

    assert_eq!(app.apply_policy(PRODUCT_POLICY).await.0, 201);
    let (status, again) = app.apply_policy(PRODUCT_POLICY).await;
    assert_eq!((status, again["version"].as_i64()), (200, Some(1)));
    let changed = PRODUCT_POLICY.replace("args.amount < 5000", "args.amount < 1000");
    let (status, v2) = app.apply_policy(&changed).await;
    assert_eq!((status, v2["version"].as_i64()), (201, Some(2)));
    let (_, versions) = send(app.get("/v1/policy/versions", &app.admin_key)).await;
    let numbers: Vec<_> = versions.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [2, 1]);
    let (status, _) = send(app.get("/v1/policy", &app.agent_key)).await;
    assert_eq!(status, 403, "agents do not read the policy (it lists people)");
}
