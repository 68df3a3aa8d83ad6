//! Advice (`GET /v1/advice`, `POST /v1/advice/apply`) over a history created and decided through the API, on every
//! backend: an always-approved rule gets a relax finding whose draft auto-approves it and whose replay counts its
//! requests; a rejection-heavy rule gets the check-before-asking finding naming its top reason; the group with most
//! of the load gets add-tier advice; the confidence threshold equals one computed here from the same decisions;
//! applying creates a new policy version, a stale finding is refused with 409, agents and approvers may not apply.

use serde_json::{Value, json};
use signoff_policy::{Decision, Policy, RuleAction};
use signoff_testkit::{Backend, TestApp, error_code, on_every_backend, send};

on_every_backend!(advice_over_a_seeded_history, applying_advice_and_who_may,);

const POLICY: &str = r#"version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance, ops] }
  - { id: erin, name: Erin, email: erin@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }   # the finance team
  ops: { notify: [email] }
defaults: { route: ops, timeout: 1h, on_timeout: reject }
rules:
  # Small refunds: people have approved every one unchanged.
  - name: refund-small
    when: action == "refund" && args.amount < 100
    route: finance
    timeout: 2h
  - { name: wire, when: 'action == "wire"', route: finance, reject_reasons: [wrong_account, too_much] }
  - name: candidate
    when: action == "advance_candidate"
    route: finance
  - name: deploy
    when: action == "deploy"
    route: ops
"#;

/// The confidences of the 40 candidates: 0.4, 0.4125, ..., 0.8875.
fn candidate_confidence(i: usize) -> f64 {
    0.4 + i as f64 * 0.0125
}

/// What people did with candidate `i`: approved unchanged from 0.6 up, except candidate 16 (0.6), approved with an
/// edit; rejected below.
enum Did {
    Unchanged,
    Edited,
    Rejected,
}

fn candidate_verdict(i: usize) -> Did {
    match i {
        16 => Did::Edited,
        i if candidate_confidence(i) >= 0.6 => Did::Unchanged,
        _ => Did::Rejected,
    }
}

async fn created(app: &TestApp, body: Value) -> String {
    let (status, created) = app.create(body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn decided(app: &TestApp, id: &str, key: &str, body: Value) {
    let (status, decided) = app.decide(id, key, body).await;
    assert_eq!(status, 200, "{decided}");
}

/// 24 small refunds approved unchanged and one pending; 20 wires, 12 approved and 8 rejected (6 `wrong_account`, 2
/// `too_much`); 40 candidates with confidences; 5 deploys for ops. Finance decides 84 of the 89 human decisions.
async fn seed(app: &TestApp) {
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let (dana, erin) = (app.approver_key.clone(), app.approver("erin").await);
    for i in 0..24 {
        let id = created(app, json!({"action": "refund", "args": {"amount": 10 + i}})).await;
        decided(app, &id, if i % 2 == 0 { &dana } else { &erin }, json!({"outcome": "approve"})).await;
    }
    created(app, json!({"action": "refund", "args": {"amount": 99}})).await;
    for i in 0..20 {
        let id = created(app, json!({"action": "wire", "args": {"to": format!("acct-{i}")}})).await;
        let body = match i {
            0..6 => json!({"outcome": "reject", "comment": "not theirs", "reason": "wrong_account"}),
            6..8 => json!({"outcome": "reject", "comment": "too much", "reason": "too_much"}),
            _ => json!({"outcome": "approve"}),
        };
        decided(app, &id, &erin, body).await;
    }
    for i in 0..40 {
        let body = json!({"action": "advance_candidate", "args": {"n": i}, "confidence": candidate_confidence(i)});
        let id = created(app, body).await;
        let verdict = match candidate_verdict(i) {
            Did::Unchanged => json!({"outcome": "approve"}),
            Did::Edited => json!({"outcome": "approve", "args": {"n": i, "note": "checked"}}),
            Did::Rejected => json!({"outcome": "reject", "comment": "not yet"}),
        };
        decided(app, &id, &dana, verdict).await;
    }
    for i in 0..5 {
        let id = created(app, json!({"action": "deploy", "args": {"n": i}})).await;
        decided(app, &id, &dana, json!({"outcome": "approve"})).await;
    }
}

/// The threshold computed here, independently: the lowest confidence seen whose tail (confidence ≥ it) holds at
/// least `min` decisions of which at least `target` were approved unchanged.
fn expected_threshold(min: usize, target: f64) -> Option<(f64, usize)> {
    let mut seen: Vec<f64> = (0..40).map(candidate_confidence).collect();
    seen.sort_by(f64::total_cmp);
    seen.into_iter().find_map(|x| {
        let tail: Vec<usize> = (0..40).filter(|&i| candidate_confidence(i) >= x).collect();
        let unchanged = tail.iter().filter(|&&i| matches!(candidate_verdict(i), Did::Unchanged)).count();
        (tail.len() >= min && unchanged as f64 / tail.len() as f64 >= target).then_some((x, tail.len()))
    })
}

fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

fn one<'a>(report: &'a Value, kind: &str, rule: &str) -> &'a Value {
    let matching: Vec<&Value> = findings(report, kind).into_iter().filter(|f| f["rule"] == rule).collect();
    assert_eq!(matching.len(), 1, "one {kind} finding for `{rule}` in {report:#}");
    matching[0]
}

/// The single transition of a replay: (from, to, count).
fn transitions(finding: &Value) -> Vec<(String, String, u64)> {
    let replay = &finding["draft"]["replay"];
    let changes = replay["transitions"].as_array().unwrap();
    changes.iter().map(|t| (t["from"].to_string(), t["to"].to_string(), t["count"].as_u64().unwrap())).collect()
}

async fn advice_over_a_seeded_history(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    seed(&app).await;
    let (status, report) = send(app.get("/v1/advice", &app.approver_key)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["policy_version"].as_i64(), report["min_decisions"].as_u64()), (Some(1), Some(20)));

    // Relax: every decision an unchanged approval; the draft approves by policy and keeps everything else.
    let relax = one(&report, "relax_auto_approve", "refund-small");
    let message = relax["message"].as_str().unwrap();
    assert!(message.starts_with("rule `refund-small`: 25 requests, 100.0 % approved unchanged, median "), "{message}");
    assert!(message.contains("consider auto-approve"), "{message}");
    assert_eq!(relax["evidence"]["figures"]["human_decided"], 24);
    let source = relax["draft"]["source"].as_str().unwrap();
    let draft = Policy::parse(source).unwrap();
    let rule = draft.rules().iter().find(|r| r.name == "refund-small").unwrap();
    assert_eq!(rule.action, RuleAction::Decide(Decision::Approve));
    assert_eq!(
        source,
        POLICY.replace("    route: finance\n    timeout: 2h\n", "    decide: approve\n"),
        "only the rule's action changed: comments and the other rules are as written"
    );
    let diff = relax["draft"]["diff"].as_str().unwrap();
    assert!(diff.contains("\n-    route: finance\n-    timeout: 2h\n+    decide: approve\n"), "{diff}");
    // All 25 (the pending one too) would have been approved by policy; nothing else changes.
    let person = json!({"kind": "person", "group": "finance"}).to_string();
    let auto = json!({"kind": "auto_approve"}).to_string();
    assert_eq!(transitions(relax), [(person.clone(), auto.clone(), 25)]);
    assert_eq!(relax["draft"]["replay"]["total"], 90);
    assert_eq!(relax["draft"]["replay"]["changed"], 25);
    assert!(findings(&report, "relax_auto_approve").iter().all(|f| f["rule"] == "refund-small"));

    // Tighten: 40 % rejected, the top reason `wrong_account` with 30 % of the decisions.
    let wire = one(&report, "tighten_check_before_asking", "wire");
    assert_eq!(
        wire["message"],
        "rule `wire`: 40.0 % of 20 decisions rejected, 30.0 % rejected with reason `wrong_account` — the agent needs \
         a check before asking"
    );
    assert_eq!(wire["evidence"]["top_reason"], json!({"reason": "wrong_account", "count": 6, "share": 0.3}));
    assert!(wire.get("draft").is_none(), "the agent changes, not the policy");

    // Add a tier: finance decides 84 of the 89 human decisions.
    let tiers = findings(&report, "add_tier");
    assert_eq!(tiers.len(), 1, "{report:#}");
    assert_eq!(tiers[0]["group"], "finance");
    assert!((tiers[0]["evidence"]["share_of_decisions"].as_f64().unwrap() - 84.0 / 89.0).abs() < 1e-12);
    assert!(tiers[0]["message"].as_str().unwrap().starts_with("group `finance` decides 94.4 % of all requests"));

    // The confidence threshold: the same as computed here from the same decisions, with its draft and replay.
    let (x, tail) = expected_threshold(20, 0.99).expect("the seeded decisions have a threshold");
    let threshold = one(&report, "confidence_threshold", "candidate");
    let found = &threshold["calibration"]["threshold"];
    assert_eq!(found["confidence"].as_f64(), Some(x), "{found}");
    assert_eq!(found["human_decided"].as_u64(), Some(tail as u64));
    assert_eq!(found["unchanged_rate"].as_f64(), Some(1.0));
    let (low, high) = (found["wilson_low"].as_f64().unwrap(), found["wilson_high"].as_f64().unwrap());
    assert!(0.8 < low && low < 1.0 && high == 1.0, "{found}");
    let buckets = threshold["calibration"]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 10);
    let by_bucket: Vec<u64> = buckets.iter().map(|b| b["human_decided"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (0..10)
        .map(|b| (0..40).filter(|&i| (candidate_confidence(i) * 10.0).floor() as u64 == b).count() as u64)
        .collect();
    assert_eq!(by_bucket, expected);
    let source = threshold["draft"]["source"].as_str().unwrap();
    let draft = Policy::parse(source).unwrap();
    let names: Vec<&str> = draft.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["refund-small", "wire", "candidate-confident", "candidate", "deploy"]);
    assert_eq!(
        draft.rules()[2].when.as_deref(),
        Some(format!("(action == \"advance_candidate\") && confidence != null && confidence >= {x:?}").as_str())
    );
    assert_eq!(transitions(threshold), [(person, auto, tail as u64)]);

    // With a higher minimum no rule has enough decisions; the group finding needs as many in all.
    let (_, strict) = send(app.get("/v1/advice?since=1d&min=100", &app.admin_key)).await;
    assert_eq!(strict["findings"], json!([]), "{strict}");
    let (_, lenient) = send(app.get("/v1/advice?min=5", &app.approver_key)).await;
    assert!(findings(&lenient, "relax_auto_approve").iter().any(|f| f["rule"] == "deploy"), "{lenient:#}");
    // Ids are stable while nothing changes.
    let (_, again) = send(app.get("/v1/advice", &app.approver_key)).await;
    assert_eq!(again["findings"], report["findings"]);
}

async fn applying_advice_and_who_may(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    seed(&app).await;
    let (_, report) = send(app.get("/v1/advice", &app.admin_key)).await;
    let relax = one(&report, "relax_auto_approve", "refund-small").clone();
    let threshold = one(&report, "confidence_threshold", "candidate").clone();
    let wire = one(&report, "tighten_check_before_asking", "wire").clone();
    let apply = |key: &str, body: Value| send(app.post("/v1/advice/apply", key).json(&body));

    let (status, body) = send(app.get("/v1/advice", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "agents read no advice");
    for key in [&app.agent_key, &app.approver_key] {
        let (status, body) = apply(key, json!({"id": relax["id"]})).await;
        assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    }
    for query in ["?since=soon", "?since=400d", "?min=0", "?min=-1", "?other=1"] {
        let (status, body) = send(app.get(&format!("/v1/advice{query}"), &app.approver_key)).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    let (status, body) = apply(&app.admin_key, json!({"id": wire["id"]})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "no draft to apply: {body}");
    let unknown = format!("{}-0000000000000000", &report["policy_hash"].as_str().unwrap()[..8]);
    let (status, body) = apply(&app.admin_key, json!({"id": unknown})).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, body) = apply(&app.admin_key, json!({"id": relax["id"], "extra": 1})).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");

    let (status, applied) = apply(&app.admin_key, json!({"id": relax["id"], "since": "30d", "min": 20})).await;
    assert_eq!(status, 201, "{applied}");
    assert_eq!(applied["finding"]["id"], relax["id"]);
    assert_eq!(applied["policy"]["version"], 2);
    assert_eq!(applied["policy"]["source"], relax["draft"]["source"]);
    let (_, versions) = send(app.get("/v1/policy/versions", &app.admin_key)).await;
    let numbers: Vec<i64> = versions.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [2, 1]);
    let (status, refund) = app.create(json!({"action": "refund", "args": {"amount": 5}})).await;
    assert_eq!((status, refund["status"].as_str()), (201, Some("approved")), "the new version is in force: {refund}");

    // The threshold finding was made for version 1.
    let (status, body) = apply(&app.admin_key, json!({"id": threshold["id"]})).await;
    assert_eq!((status, error_code(&body)), (409, "policy_changed"), "{body}");
    let (_, versions) = send(app.get("/v1/policy/versions", &app.admin_key)).await;
    assert_eq!(versions.as_array().unwrap().len(), 2, "nothing applied");
    let (_, now) = send(app.get("/v1/advice", &app.admin_key)).await;
    assert_eq!(now["policy_version"], 2);
    assert!(findings(&now, "relax_auto_approve").is_empty(), "the rule approves by policy now: {now:#}");
    let fresh = one(&now, "confidence_threshold", "candidate");
    assert_ne!(fresh["id"], threshold["id"]);
}
