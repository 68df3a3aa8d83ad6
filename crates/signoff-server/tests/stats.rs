//! Approval statistics (`GET /v1/stats`) over seeded histories, against figures computed by hand, on every backend:
//! one history created and decided through the API (outcomes controlled, timings whatever they are), one stored with
//! chosen creation and decision times (so percentiles and days are exact), and the parameters and roles refused.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use signoff_domain::{
    Actor, Channel, EscalationStep, HumanVerdict, NewEvent, NewRequest, OnTimeout, Placement, Request, RequestId,
    Requester, Role, Route, Verdict,
};
use signoff_store::NewRequestRecord;
use signoff_testkit::{Backend, TestApp, error_code, on_every_backend, person, send};

on_every_backend!(
    figures_of_a_history_decided_through_the_api,
    times_and_days_of_a_history_stored_with_chosen_times,
    bad_parameters_are_refused_and_agents_read_no_statistics,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
  - { id: erin, name: Erin, email: erin@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: small-refund
    when: action == "refund" && args.amount < 100
    decide: approve
  - name: blocked-wire
    when: action == "wire" && args.to == "blocked"
    decide: deny
  - name: large-refund
    when: action == "refund"
    route: finance
    reject_reasons: [wrong_account, too_much]
  - name: quick-wire
    when: action == "wire"
    route: finance
    timeout: 1s
    on_timeout: fail
  - name: deploy-review
    when: action == "deploy"
    review: { sample: 1, group: finance }
"#;

async fn stats(app: &TestApp, query: &str) -> Value {
    let (status, body) = send(app.get(&format!("/v1/stats{query}"), &app.approver_key)).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
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

fn keys_of(breakdown: &Value) -> Vec<(String, u64)> {
    let entries = breakdown.as_array().unwrap().iter();
    entries.map(|b| (b["key"].as_str().unwrap().to_string(), b["figures"]["requests"].as_u64().unwrap())).collect()
}

fn entry<'a>(breakdown: &'a Value, key: &str) -> &'a Value {
    &breakdown.as_array().unwrap().iter().find(|b| b["key"] == key).unwrap()["figures"]
}

/// Twelve requests through the API: two approved and one denied by policy, four decided by people (approved
/// unchanged, approved edited, rejected twice with reasons), one left pending, one cancelled, one expired at its 1 s
/// deadline, one sampled review confirmed, and one question answered.
async fn figures_of_a_history_decided_through_the_api(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let (dana, erin) = (app.approver_key.clone(), app.approver("erin").await);
    let refund = |amount: u64| json!({"action": "refund", "args": {"amount": amount}});

    created(&app, refund(50)).await;
    created(&app, refund(60)).await;
    created(&app, json!({"action": "wire", "args": {"to": "blocked"}})).await;
    let id = created(&app, refund(500)).await;
    decided(&app, &id, &dana, json!({"outcome": "approve"})).await;
    let id = created(&app, refund(700)).await;
    decided(&app, &id, &erin, json!({"outcome": "approve", "args": {"amount": 650}})).await;
    let id = created(&app, refund(900)).await;
    decided(&app, &id, &dana, json!({"outcome": "reject", "comment": "not theirs", "reason": "wrong_account"})).await;
    let id = created(&app, refund(800)).await;
    decided(&app, &id, &erin, json!({"outcome": "reject", "comment": "too much", "reason": "too_much"})).await;
    created(&app, refund(1000)).await;
    let id = created(&app, refund(300)).await;
    let (status, _) = send(app.post(&format!("/v1/requests/{id}/cancel"), &app.agent_key)).await;
    assert_eq!(status, 200);
    let id = created(&app, json!({"action": "wire", "args": {"to": "acme"}})).await;
    let (_, expired) = send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=30"), &app.agent_key)).await;
    assert_eq!(expired["status"], "expired", "{expired}");
    let id = created(&app, json!({"action": "deploy", "mode": "post"})).await;
    decided(&app, &id, &dana, json!({"outcome": "approve"})).await;
    let id = created(&app, json!({"action": "ask", "kind": "question", "question": "Which account?"})).await;
    let (status, body) =
        send(app.post(&format!("/v1/requests/{id}/answer"), &dana).json(&json!({"text": "ACC-1"}))).await;
    assert_eq!(status, 200, "{body}");

    // Every person here decided within an hour of the request's creation.
    let report = stats(&app, "?fast_under=1h").await;
    let t = &report["totals"];
    let figure = |name: &str| t[name].as_u64().unwrap();
    let names = [
        "requests",
        "questions",
        "pending",
        "auto_approved",
        "auto_denied",
        "human_decided",
        "approved",
        "approved_unchanged",
        "edited",
        "rejected",
        "expired",
        "timed_out",
        "escalated",
        "fast_approvals",
        "cancelled",
        "answered",
        "sampled_reviews",
        "flags",
        "misses",
        "granted",
    ];
    let figures: Vec<(&str, u64)> = names.iter().map(|name| (*name, figure(name))).collect();
    let expected = [12, 1, 1, 2, 1, 5, 3, 2, 1, 2, 1, 1, 0, 3, 1, 1, 1, 0, 0, 0];
    assert_eq!(figures, names.into_iter().zip(expected).collect::<Vec<_>>(), "{report}");
    assert_eq!(t["rejection_reasons"], json!({"too_much": 1, "wrong_account": 1}));
    assert_eq!(t["time_to_decision"]["count"], 5);
    let (p50, p90, p99) = (
        t["time_to_decision"]["p50_s"].as_f64().unwrap(),
        t["time_to_decision"]["p90_s"].as_f64().unwrap(),
        t["time_to_decision"]["p99_s"].as_f64().unwrap(),
    );
    assert!(0.0 <= p50 && p50 <= p90 && p90 <= p99 && p99 < 3600.0, "{p50} {p90} {p99}");
    assert_eq!((t["approval_rate"].as_f64(), t["unchanged_rate"].as_f64()), (Some(0.6), Some(0.4)));
    assert_eq!((t["edit_rate"].as_f64(), t["flag_rate"].as_f64()), (Some(0.2), Some(0.0)));
    assert_eq!(report["fast_under_s"], 3600);
    assert_eq!(report["by"], Value::Null);
    assert_eq!(report["breakdown"], json!([]));
    // 30 days back from now touch 31 UTC days.
    let days = report["per_day"].as_array().unwrap();
    assert_eq!(days.len(), 31);
    assert_eq!(days.iter().map(|d| d["figures"]["requests"].as_u64().unwrap()).sum::<u64>(), 12);

    let loads: Vec<(&str, u64, u64, u64, u64, f64)> = report["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let n = |field: &str| l[field].as_u64().unwrap();
            (l["approver"].as_str().unwrap(), n("decisions"), n("approved"), n("rejected"), n("answered"), {
                l["share"].as_f64().unwrap()
            })
        })
        .collect();
    assert_eq!(loads, [("dana", 3, 2, 1, 1, 0.6), ("erin", 2, 1, 1, 0, 0.4)]);

    let by_rule = stats(&app, "?by=rule").await;
    assert_eq!(by_rule["by"], "rule");
    let breakdown = &by_rule["breakdown"];
    let keys: Vec<(String, u64)> = keys_of(breakdown);
    let expected = [
        ("large-refund", 6),
        ("small-refund", 2),
        ("(defaults)", 1),
        ("blocked-wire", 1),
        ("deploy-review", 1),
        ("quick-wire", 1),
    ];
    assert_eq!(keys, expected.map(|(key, n)| (key.to_string(), n)));
    let large = entry(breakdown, "large-refund");
    let counts = ["human_decided", "approved", "rejected", "pending", "cancelled", "edited"]
        .map(|name| large[name].as_u64().unwrap());
    assert_eq!(counts, [4, 2, 2, 1, 1, 1]);
    assert_eq!(large["approval_rate"].as_f64(), Some(0.5));
    assert_eq!(large["rejection_reasons"], json!({"too_much": 1, "wrong_account": 1}));
    let review = entry(breakdown, "deploy-review");
    assert_eq!((review["sampled_reviews"].as_u64(), review["flag_rate"].as_f64()), (Some(1), Some(0.0)));
    let quick = entry(breakdown, "quick-wire");
    assert_eq!((quick["expired"].as_u64(), quick["timed_out"].as_u64()), (Some(1), Some(1)));
    assert_eq!(entry(breakdown, "(defaults)")["answered"], 1);

    let by_approver = stats(&app, "?by=approver").await;
    let expected = [("(no person)", 6), ("dana", 4), ("erin", 2)];
    assert_eq!(keys_of(&by_approver["breakdown"]), expected.map(|(key, n)| (key.to_string(), n)));
    let (status, admin) = send(app.get("/v1/stats?by=action", &app.admin_key)).await;
    assert_eq!(status, 200, "admins read statistics too");
    let expected = [("refund", 8), ("wire", 2), ("ask", 1), ("deploy", 1)];
    assert_eq!(keys_of(&admin["breakdown"]), expected.map(|(key, n)| (key.to_string(), n)));
}

/// The start of the UTC day `days` before today.
fn midnight(days: i64) -> DateTime<Utc> {
    (Utc::now() - Duration::days(days)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc()
}

struct Seeder<'a> {
    app: &'a TestApp,
}

impl Seeder<'_> {
    fn requester(&self) -> Requester {
        Requester { key_id: self.app.agent_key_id.clone(), key_name: "bot".into(), responsible: None }
    }

    /// A new request for `action` created at `at` and placed by `verdict`, with its events so far.
    fn placed(&self, action: &str, at: DateTime<Utc>, verdict: Verdict) -> (Request, Vec<NewEvent>) {
        let mut new = NewRequest::action(action);
        new.args = json!({"amount": 500});
        let mut request = Request::new(RequestId::new(), new, self.requester(), at);
        let mut events = vec![request.created_event(&Actor::Key { role: Role::Agent, name: "bot".into() })];
        let placement = Placement {
            version: 0,
            content_hash: "seeded".into(),
            verdict,
            default_timeout: std::time::Duration::from_secs(3600),
        };
        events.extend(request.place(placement, at));
        (request, events)
    }

    fn routed(&self, rule: &str, group: &str, at: DateTime<Utc>) -> (Request, Vec<NewEvent>) {
        self.placed(rule, at, Verdict::Route(route(rule, group)))
    }

    async fn store(&self, (request, events): (Request, Vec<NewEvent>)) {
        let record =
            NewRequestRecord { request, idempotency_key: None, fingerprint: "seeded".into(), events, standing: None };
        assert!(self.app.state.store.create_request(record).await.unwrap().created);
    }
}

fn route(rule: &str, group: &str) -> Route {
    Route {
        rule: Some(rule.into()),
        group: group.into(),
        approvals: 1,
        allow_edit: true,
        reject_reasons: Vec::new(),
        timeout: std::time::Duration::from_secs(3600),
        on_timeout: OnTimeout::Reject,
        escalate: Vec::new(),
        remind: Vec::new(),
        eval_error: None,
    }
}

/// `who` decides `seconds` after the request was created: approves (with `edit` as the arguments, if given) or,
/// with `reject`, rejects for that reason.
fn decide(
    (mut request, mut events): (Request, Vec<NewEvent>),
    who: &str,
    seconds: i64,
    verdict: Result<Option<Value>, Option<&str>>,
) -> (Request, Vec<NewEvent>) {
    let (approve, args, reason, comment) = match verdict {
        Ok(args) => (true, args, None, None),
        Err(reason) => (false, None, reason.map(String::from), Some("no".to_string())),
    };
    let verdict = HumanVerdict {
        approve,
        approver_id: person(who),
        key_id: None,
        channel: Channel::Dashboard,
        comment,
        reason,
        args,
    };
    let at = request.created_at + Duration::seconds(seconds);
    events.extend(request.apply_human_verdict(verdict, at).unwrap());
    (request, events)
}

/// Eight requests stored with chosen times over the last five UTC days (and one just before them): people decided
/// five of them in 5 s, 20 s, 300 s, 60 s and 3600 s.
async fn times_and_days_of_a_history_stored_with_chosen_times(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let seeder = Seeder { app: &app };
    let start = midnight(4);
    let hour = |day: i64, hour: i64| start + Duration::days(day) + Duration::hours(hour);
    let wrong_account = Route { reject_reasons: vec!["wrong_account".into()], ..route("wire", "treasury") };

    seeder.store(decide(seeder.routed("refund", "finance", hour(1, 10)), "dana", 5, Ok(None))).await;
    let edit = Ok(Some(json!({"amount": 450})));
    seeder.store(decide(seeder.routed("refund", "finance", hour(1, 11)), "dana", 20, edit)).await;
    let wire = seeder.placed("wire", hour(1, 12), Verdict::Route(wrong_account.clone()));
    seeder.store(decide(wire, "erin", 300, Err(Some("wrong_account")))).await;
    seeder.store(decide(seeder.routed("refund", "finance", hour(2, 9)), "erin", 60, Ok(None))).await;
    let escalating = Route {
        timeout: std::time::Duration::from_secs(600),
        escalate: vec![EscalationStep {
            after: std::time::Duration::from_secs(60),
            to: "directors".into(),
            remind: Vec::new(),
        }],
        ..wrong_account
    };
    let (mut timed_out, mut events) = seeder.placed("wire", hour(2, 10), Verdict::Route(escalating));
    events.extend(timed_out.fire_timers(hour(2, 10) + Duration::seconds(60)));
    events.extend(timed_out.fire_timers(hour(2, 10) + Duration::seconds(600)));
    seeder.store((timed_out, events)).await;
    seeder.store(seeder.placed("refund", hour(3, 8), Verdict::Approve { rule: "small".into() })).await;
    seeder.store(decide(seeder.routed("refund", "finance", hour(3, 9)), "dana", 3600, Err(None))).await;
    let waiting = Route { timeout: std::time::Duration::from_secs(30 * 86_400), ..route("refund", "finance") };
    seeder.store(seeder.placed("refund", hour(3, 10), Verdict::Route(waiting))).await;
    let before = start - Duration::seconds(1);
    seeder.store(seeder.placed("refund", before, Verdict::Approve { rule: "small".into() })).await;

    let since = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = stats(&app, &format!("?since={since}&by=approver")).await;
    assert_eq!(report["since"], since.as_str());
    let t = &report["totals"];
    let names = ["requests", "pending", "auto_approved", "human_decided", "approved", "edited", "rejected"];
    let figures = names.map(|name| t[name].as_u64().unwrap());
    assert_eq!(figures, [8, 1, 1, 5, 3, 1, 2], "{report}");
    let names = ["timed_out", "expired", "escalated", "fast_approvals"];
    assert_eq!(names.map(|name| t[name].as_u64().unwrap()), [1, 0, 1, 1]);
    assert_eq!(t["rejection_reasons"], json!({"(none)": 1, "wrong_account": 1}));
    // Sorted: 5, 20, 60, 300, 3600; nearest rank: the 3rd, the 5th, the 5th.
    assert_eq!(t["time_to_decision"], json!({"count": 5, "p50_s": 60.0, "p90_s": 3600.0, "p99_s": 3600.0}));

    let per_day: Vec<(String, u64, u64)> = report["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let f = &d["figures"];
            (
                d["day"].as_str().unwrap().to_string(),
                f["requests"].as_u64().unwrap(),
                f["human_decided"].as_u64().unwrap(),
            )
        })
        .collect();
    let day = |n: i64| (start + Duration::days(n)).date_naive().to_string();
    let expected = [(day(0), 0, 0), (day(1), 3, 3), (day(2), 2, 1), (day(3), 3, 1), (day(4), 0, 0)];
    assert_eq!(per_day, expected);
    assert_eq!(report["per_day"][2]["figures"]["escalated"], 1);

    let expected = [("(no person)", 3), ("dana", 3), ("erin", 2)];
    assert_eq!(keys_of(&report["breakdown"]), expected.map(|(key, n)| (key.to_string(), n)));
    let dana = &report["approvers"][0];
    assert_eq!((dana["approver"].as_str(), dana["decisions"].as_u64()), (Some("dana"), Some(3)));
    assert_eq!((dana["share"].as_f64(), dana["time_to_decision"]["p50_s"].as_f64()), (Some(0.6), Some(20.0)));
    assert_eq!(report["approvers"][1]["share"].as_f64(), Some(0.4));

    let by_group = stats(&app, &format!("?since={since}&by=group&fast_under=30s")).await;
    let expected = [("finance", 5), ("(no group)", 1), ("directors", 1), ("treasury", 1)];
    assert_eq!(keys_of(&by_group["breakdown"]), expected.map(|(key, n)| (key.to_string(), n)));
    assert_eq!(by_group["totals"]["fast_approvals"], 2, "5 s and 20 s are under 30 s");
    assert_eq!(entry(&by_group["breakdown"], "directors")["escalated"], 1);
    // A duration back from now: 4 days reach into the first (empty) day, 5 days past the request stored just before it.
    assert_eq!(stats(&app, "?since=4d").await["totals"]["requests"], 8);
    assert_eq!(stats(&app, "?since=5d").await["totals"]["requests"], 9);
}

async fn bad_parameters_are_refused_and_agents_read_no_statistics(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let future = (Utc::now() + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let long_ago = (Utc::now() - Duration::days(400)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (query, code, says) in [
        ("?since=yesterday", "invalid_request", "since: invalid duration `yesterday`"),
        ("?since=30", "invalid_request", "since: duration `30` has no unit"),
        (&format!("?since={future}"), "invalid_request", "is in the future"),
        (&format!("?since={long_ago}"), "invalid_request", "at most the last 365 days"),
        ("?since=400d", "invalid_request", "longer than the maximum of 365d"),
        ("?by=team", "invalid_request", "by: expected one of rule, action, group, approver; found `team`"),
        ("?by=Rule", "invalid_request", "found `Rule`"),
        ("?fast_under=0s", "invalid_request", "fast_under: duration `0s` is zero"),
        ("?fast_under=soon", "invalid_request", "fast_under: invalid duration"),
        ("?group=finance", "bad_request", "unknown field `group`"),
    ] {
        let (status, body) = send(app.get(&format!("/v1/stats{query}"), &app.approver_key)).await;
        assert_eq!((status, error_code(&body)), (400, code), "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    let (status, body) = send(app.get("/v1/stats", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("cannot read statistics"));
    let (status, body) = send(app.get("/v1/stats?since=nonsense", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "an agent learns nothing from the parameters");
    let (status, body) = send(app.http.get(format!("{}/v1/stats", app.url))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    let (status, body) = send(app.post("/v1/stats", &app.approver_key)).await;
    assert_eq!((status, error_code(&body)), (405, "method_not_allowed"));

    let empty = stats(&app, "?since=12h").await;
    assert_eq!(empty["totals"]["requests"], 0);
    assert_eq!(empty["totals"]["approval_rate"], Value::Null);
    assert_eq!(empty["totals"]["time_to_decision"], json!({"count": 0, "p50_s": null, "p90_s": null, "p99_s": null}));
    assert!(!empty["per_day"].as_array().unwrap().is_empty());
}
