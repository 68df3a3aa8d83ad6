//! The PRODUCT.md example policy, evaluated end to end.

use serde_json::{Value, json};
use signoff_policy::{
    Channel, EVERYONE, EvalInput, Mode, OnTimeout, Outcome, Policy, Route, TraceStatus, Verdict, sample_draw,
};
use std::time::Duration;

const PRODUCT: &str = include_str!("fixtures/product.yaml");

fn policy() -> Policy {
    match Policy::parse(PRODUCT) {
        Ok(p) => p,
        Err(e) => panic!("product policy must parse:\n{e}"),
    }
}

struct Req {
    id: String,
    action: &'static str,
    args: Value,
    context: Value,
    confidence: Option<f64>,
    tags: Vec<String>,
    mode: Mode,
}

impl Req {
    fn new(action: &'static str, args: Value) -> Req {
        Req { id: "req-1".into(), action, args, context: Value::Null, confidence: None, tags: vec![], mode: Mode::Pre }
    }
    fn input(&self) -> EvalInput<'_> {
        EvalInput {
            request_id: &self.id,
            action: self.action,
            args: &self.args,
            context: &self.context,
            confidence: self.confidence,
            tags: &self.tags,
            mode: self.mode,
            agent: "finance-bot",
            run_id: None,
        }
    }
}

/// The evaluation error of a verdict that `defaults.on_error: deny` decided.
fn denied_with_error(v: Verdict) -> String {
    match v {
        Verdict::Deny { error: Some(error), .. } => error,
        other => panic!("expected a deny carrying an evaluation error, got {other:?}"),
    }
}

fn route(v: Verdict) -> Route {
    match v {
        Verdict::Route(r) => r,
        other => panic!("expected a route, got {other:?}"),
    }
}

#[test]
fn product_policy_parses_as_written() {
    let p = policy();
    assert!(!p.is_builtin());
    assert_eq!(p.source(), PRODUCT);
    assert_eq!(p.content_hash().len(), 64);
    assert_eq!(p.rules().len(), 6);
    assert_eq!(p.approvers().len(), 7);
    assert_eq!(p.approver("carl").unwrap().phone.as_deref(), Some("+15550100"));
    assert_eq!(p.approver("hana").unwrap().telegram.as_deref(), Some("123456789"));
    assert_eq!(p.approver("mo").unwrap().discord.as_deref(), Some("80351110224678912"));
    assert_eq!(p.group("directors").unwrap().notify, vec![Channel::Slack, Channel::Email]);
    assert_eq!(p.group(EVERYONE).unwrap().notify, vec![Channel::Dashboard]);
    let cfo: Vec<&str> = p.members("cfo").iter().map(|a| a.id.as_str()).collect();
    assert_eq!(cfo, ["carl", "cleo"]);
    assert_eq!(p.members(EVERYONE).len(), 7);
    assert!(p.is_member("carl", "cfo"));
    assert!(!p.is_member("dana", "cfo"));
    assert!(p.is_member("someone-else", EVERYONE));
    assert!(!p.is_member("someone-else", "cfo"));
    assert_eq!(p.defaults().route, "admins");
    assert_eq!(p.defaults().timeout, Duration::from_secs(24 * 3600));
}

#[test]
fn small_expense_is_approved() {
    let p = policy();
    assert_eq!(
        p.evaluate(&Req::new("expense", json!({"amount": 4999})).input()),
        Verdict::Approve { rule: "small-expense".into() }
    );
    // a float just under the limit behaves the same
    assert_eq!(p.evaluate(&Req::new("expense", json!({"amount": 4999.5})).input()).outcome(), Outcome::AutoApprove);
}

#[test]
fn director_tier() {
    let p = policy();
    for amount in [json!(5000), json!(25000), json!(5000.0), json!(24999.99)] {
        let r = route(p.evaluate(&Req::new("expense", json!({ "amount": amount })).input()));
        assert_eq!(r.rule.as_deref(), Some("director-expense"));
        assert_eq!(r.group, "directors");
        assert_eq!(r.approvals, 1);
        assert!(r.allow_edit);
        assert_eq!(r.timeout, Duration::from_secs(28 * 3600));
        assert_eq!(r.on_timeout, OnTimeout::Reject);
        assert_eq!(r.escalate.len(), 1);
        assert_eq!(r.escalate[0].after, Duration::from_secs(4 * 3600));
        assert_eq!(r.escalate[0].to, "cfo");
        assert_eq!(r.eval_error, None);
    }
}

#[test]
fn large_expense_needs_two_cfo_approvals() {
    let p = policy();
    let r = route(p.evaluate(&Req::new("expense", json!({"amount": 25001})).input()));
    assert_eq!(r.rule.as_deref(), Some("large-expense"));
    assert_eq!(r.group, "cfo");
    assert_eq!(r.approvals, 2);
    // timeout and on_timeout come from the defaults
    assert_eq!(r.timeout, Duration::from_secs(24 * 3600));
    assert_eq!(r.on_timeout, OnTimeout::Reject);
    assert!(r.escalate.is_empty());
}

#[test]
fn missing_amount_is_denied_with_the_error() {
    // The schema refuses a missing amount at create; a policy evaluated anyway never lets it through.
    let p = policy();
    let verdict = p.evaluate(&Req::new("expense", json!({"currency": "EUR"})).input());
    assert_eq!(verdict.rule(), Some("small-expense"));
    let err = denied_with_error(verdict);
    assert!(err.contains("small-expense"), "{err}");
    assert!(err.contains("amount"), "{err}");
}

#[test]
fn type_error_is_denied() {
    let p = policy();
    let err = denied_with_error(p.evaluate(&Req::new("expense", json!({"amount": "lots"})).input()));
    assert!(err.contains("small-expense"), "{err}");
    // args that are not an object at all
    denied_with_error(p.evaluate(&Req::new("expense", Value::Null).input()));
}

#[test]
fn unrelated_action_ignores_missing_amount_and_hits_defaults() {
    let p = policy();
    let r = route(p.evaluate(&Req::new("delete_rows", json!({})).input()));
    assert_eq!(r.rule, None);
    assert_eq!(r.group, "admins");
    assert_eq!(r.eval_error, None);
}

fn candidate(confidence: Option<f64>, tags: &[&str]) -> Req {
    let mut r = Req::new("advance_candidate", json!({"candidate": "c-17"}));
    r.confidence = confidence;
    r.tags = tags.iter().map(|t| t.to_string()).collect();
    r
}

#[test]
fn hiring() {
    let p = policy();
    assert_eq!(p.evaluate(&candidate(Some(0.9), &[]).input()), Verdict::Approve { rule: "clear-candidate".into() });
    for c in [0.4, 0.5, 0.6] {
        let r = route(p.evaluate(&candidate(Some(c), &[]).input()));
        assert_eq!(r.rule.as_deref(), Some("borderline-candidate"));
        assert_eq!(r.group, "hiring-managers");
        assert_eq!(r.timeout, Duration::from_secs(96 * 3600));
        assert_eq!(r.escalate[0].to, "hr");
        assert_eq!(r.escalate[0].after, Duration::from_secs(48 * 3600));
    }
    let r = route(p.evaluate(&candidate(Some(0.9), &["internal"]).input()));
    assert_eq!(r.group, "hiring-managers");
    // no confidence but the internal tag: `||` absorbs the error, so it still matches
    let r = route(p.evaluate(&candidate(None, &["internal"]).input()));
    assert_eq!(r.group, "hiring-managers");
    assert_eq!(r.eval_error, None);
    // no confidence, no tag: the condition cannot be evaluated, never auto-approved
    let err = denied_with_error(p.evaluate(&candidate(None, &[]).input()));
    assert!(err.contains("borderline-candidate"), "{err}");
}

#[test]
fn comment_removal_is_sampled_for_review() {
    let p = policy();
    let mut sampled = 0;
    let n = 2000;
    for i in 0..n {
        let mut r = Req::new("remove_comment", json!({"comment": i}));
        r.mode = Mode::Post;
        r.id = format!("req-{i}");
        match p.evaluate(&r.input()) {
            Verdict::Review { rule, group, sampled: s } => {
                assert_eq!(rule, "comment-removal");
                assert_eq!(group, "moderators");
                assert_eq!(s, sample_draw(&r.id, "comment-removal") < 0.05);
                // stable for one id
                assert_eq!(p.evaluate(&r.input()).outcome().to_string().contains("not"), !s);
                sampled += usize::from(s);
            }
            other => panic!("expected review, got {other:?}"),
        }
    }
    assert!(sampled > 50 && sampled < 160, "{sampled} of {n}");
}

#[test]
fn review_rules_are_skipped_for_pre_requests() {
    let p = policy();
    let r = Req::new("remove_comment", json!({}));
    let e = p.explain(&r.input());
    assert_eq!(e.verdict.outcome(), Outcome::Person { group: "admins".into() });
    let last = e.rules.last().unwrap();
    assert_eq!(last.rule, "comment-removal");
    assert_eq!(last.status, TraceStatus::Skipped);
}

#[test]
fn explain_lists_rules_up_to_the_match() {
    let p = policy();
    let e = p.explain(&candidate(Some(0.9), &[]).input());
    let names: Vec<&str> = e.rules.iter().map(|t| t.rule.as_str()).collect();
    assert_eq!(
        names,
        ["small-expense", "director-expense", "large-expense", "borderline-candidate", "clear-candidate"]
    );
    assert_eq!(e.rules[4].status, TraceStatus::Matched);
    assert!(e.rules[..4].iter().all(|t| t.status == TraceStatus::NotMatched));
    assert_eq!(e.verdict, p.evaluate(&candidate(Some(0.9), &[]).input()));
    let text = e.to_string();
    assert!(text.contains("clear-candidate"), "{text}");
    assert!(text.contains("=> approve (rule `clear-candidate`)"), "{text}");

    let e = p.explain(&Req::new("expense", json!({})).input());
    assert_eq!(e.rules.len(), 1);
    assert!(matches!(&e.rules[0].status, TraceStatus::Error(m) if m.contains("amount")));
    assert!(e.to_string().contains("error"));
}

#[test]
fn verdicts_serialize_with_tags_and_seconds() {
    let p = policy();
    let v = p.evaluate(&Req::new("expense", json!({"amount": 6000})).input());
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["kind"], "route");
    assert_eq!(j["group"], "directors");
    assert_eq!(j["timeout"], 28 * 3600);
    assert_eq!(j["on_timeout"], "reject");
    assert_eq!(j["escalate"][0]["after"], 4 * 3600);
    assert!(j.get("eval_error").is_none());
    let back: Verdict = serde_json::from_value(j).unwrap();
    assert_eq!(back, v);

    let a = serde_json::to_value(Verdict::Approve { rule: "x".into() }).unwrap();
    assert_eq!(a, json!({"kind": "approve", "rule": "x"}));
    let o = serde_json::to_value(Outcome::Person { group: "cfo".into() }).unwrap();
    assert_eq!(o, json!({"kind": "person", "group": "cfo"}));
}

#[test]
fn builtin_default_routes_everything_to_everyone() {
    let p = Policy::builtin_default();
    assert!(p.is_builtin());
    assert!(p.rules().is_empty());
    assert!(p.approvers().is_empty());
    let r = route(p.evaluate(&Req::new("anything", json!({})).input()));
    assert_eq!(r.group, EVERYONE);
    assert_eq!(r.timeout, Duration::from_secs(24 * 3600));
    assert_eq!(r.on_timeout, OnTimeout::Reject);
    assert_eq!(r.rule, None);
    // re-parsing the source yields the same behaviour and hash
    let q = Policy::parse(p.source()).unwrap();
    assert!(!q.is_builtin());
    assert_eq!(q.content_hash(), p.content_hash());
}

#[test]
fn condition_variables() {
    let p = Policy::parse(
        r#"
version: 1
rules:
  - name: ctx
    when: context.customer.tier == "gold" && agent == "support-bot" && mode == "pre" && run_id == "r1"
    decide: approve
  - name: nested
    when: args.items.exists(i, i.price > 100.5) && size(tags) == 0
    decide: deny
  - name: regex
    when: action.matches("^delete_.*") && run_id == null
    decide: deny
"#,
    )
    .unwrap();
    let mut r = Req::new("refund", json!({}));
    r.context = json!({"customer": {"tier": "gold"}});
    let mut input = r.input();
    input.agent = "support-bot";
    input.run_id = Some("r1");
    assert_eq!(p.evaluate(&input).rule(), Some("ctx"));

    let r = Req::new("refund", json!({"items": [{"price": 3}, {"price": 200}]}));
    let mut input = r.input();
    input.agent = "support-bot";
    input.run_id = Some("r1");
    // context is null and every other part of `ctx` is true: the error surfaces and is
    // attributed to the rule
    let v = p.evaluate(&input);
    assert_eq!(v.rule(), Some("ctx"));
    assert!(v.eval_error().is_some());

    let mut r = Req::new("refund", json!({"items": [{"price": 3}, {"price": 200}]}));
    r.context = json!({"customer": {"tier": "silver"}});
    assert_eq!(p.evaluate(&r.input()), Verdict::Deny { rule: "nested".into(), error: None });

    let mut r = Req::new("delete_rows", json!({"items": []}));
    r.context = json!({"customer": {"tier": "silver"}});
    assert_eq!(p.evaluate(&r.input()), Verdict::Deny { rule: "regex".into(), error: None });
}

#[test]
fn big_integers_and_unsigned() {
    let p = Policy::parse(
        "version: 1\nrules:\n  - name: big\n    when: args.n > 9223372036854775807.0\n    decide: deny\n",
    )
    .unwrap();
    let r = Req::new("x", json!({"n": 18446744073709551615u64}));
    assert_eq!(p.evaluate(&r.input()).rule(), Some("big"));
}

#[test]
fn on_timeout_approve_is_never_used_for_evaluation_errors() {
    let p = Policy::parse(
        "version: 1\ndefaults: { route: everyone, timeout: 1h, on_timeout: approve, on_error: { route: everyone } }\nrules:\n  - name: r\n    when: args.amount < 5\n    decide: approve\n",
    )
    .unwrap();
    let r = route(p.evaluate(&Req::new("x", json!({})).input()));
    assert!(r.eval_error.is_some());
    assert_eq!(r.on_timeout, OnTimeout::Reject);
    let r = route(p.evaluate(&Req::new("x", json!({"amount": 9})).input()));
    assert_eq!(r.on_timeout, OnTimeout::Approve);
}

#[test]
fn sampling_rate_is_within_tolerance() {
    let n = 20_000usize;
    let p = 0.05;
    let hits = (0..n)
        .map(|i| {
            // uuid-like ids
            format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                i * 2_654_435_761 % 0xffff_ffff,
                i % 0xffff,
                i % 0xfff,
                (i * 7) % 0xfff,
                i * 97
            )
        })
        .filter(|id| sample_draw(id, "comment-removal") < p)
        .count();
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!((hits as f64 - mean).abs() < 4.0 * sd, "{hits} hits, expected {mean} ± {sd}");
    // stable
    assert_eq!(sample_draw("abc", "r"), sample_draw("abc", "r"));
    assert_ne!(sample_draw("abc", "r"), sample_draw("abc", "s"));
    let d = sample_draw("abc", "r");
    assert!((0.0..1.0).contains(&d));
}

#[test]
fn documented_functions_are_available() {
    let p = Policy::parse(
        r#"
version: 1
rules:
  - name: strings
    when: action.startsWith("ref") && action.endsWith("und") && action.contains("fun") && action.matches("^r.*d$")
    decide: deny
"#,
    )
    .unwrap();
    assert_eq!(p.evaluate(&Req::new("refund", json!({})).input()).rule(), Some("strings"));
    for cond in [
        "has(args.amount) && !has(args.nothing)",
        "size(args.items) == 2 && size(tags) == 0 && size(action) == 6",
        "args.items.all(i, i.price > 0) && args.items.exists_one(i, i.price > 100)",
        "size(args.items.filter(i, i.price > 100)) == 1",
        "args.items.map(i, i.price)[1] == 200",
        "args.amount == 5000",
        "args.amount == 5000.0 && args.amount >= 5000 && args.ratio < 1",
        "args.name in [\"a\", \"b\"] && \"amount\" in args",
    ] {
        let src = format!("version: 1\nrules:\n  - name: c\n    when: '{cond}'\n    decide: deny\n");
        let p = Policy::parse(&src).unwrap_or_else(|e| panic!("{cond}: {e}"));
        let r = Req::new(
            "refund",
            json!({"amount": 5000, "ratio": 0.5, "name": "a", "items": [{"price": 3}, {"price": 200}]}),
        );
        let v = p.evaluate(&r.input());
        assert_eq!(v.rule(), Some("c"), "{cond}: {v:?}");
        assert!(v.eval_error().is_none(), "{cond}: {v:?}");
        assert_eq!(v.outcome(), Outcome::AutoDeny, "{cond}: {v:?}");
    }
}

#[test]
fn approver_addresses_per_channel() {
    let p = policy();
    let dana = p.approver("dana").unwrap();
    assert_eq!(dana.address(Channel::Slack), Some("U024BE7LH"));
    assert_eq!(dana.address(Channel::Email), Some("dana@example.com"));
    assert_eq!(dana.address(Channel::Sms), None);
    assert_eq!(dana.address(Channel::Dashboard), Some("dana"));
    assert_eq!(dana.address(Channel::Api), None);
    assert_eq!(serde_json::to_value(Channel::Api).unwrap(), json!("api"));
}

const ON_ERROR_BASE: &str = "version: 1
approvers:
  - { id: ada, name: Ada, groups: [admins] }
  - { id: bo, name: Bo, groups: [admins] }
groups:
  admins: { notify: [email] }
defaults: { route: everyone, timeout: 2h, on_timeout: approve";

fn on_error_policy(on_error: &str) -> Policy {
    let src = format!(
        "{ON_ERROR_BASE}{on_error} }}\nrules:\n  - name: small\n    when: args.amount < 5\n    decide: approve\n"
    );
    Policy::parse(&src).unwrap_or_else(|e| panic!("{src}\n{e}"))
}

#[test]
fn on_error_denies_by_default_and_carries_the_error() {
    for on_error in ["", ", on_error: deny"] {
        let p = on_error_policy(on_error);
        assert_eq!(p.defaults().on_error, signoff_policy::OnError::Deny);
        let v = p.evaluate(&Req::new("x", json!({})).input());
        let Verdict::Deny { rule, error: Some(error) } = &v else { panic!("expected a deny with an error: {v:?}") };
        assert_eq!(rule, "small");
        assert!(error.contains("small") && error.contains("amount"), "{error}");
        assert_eq!(v.eval_error(), Some(error.as_str()));
        assert_eq!(v.outcome(), Outcome::AutoDeny);
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["kind"], "deny");
        assert_eq!(j["error"], json!(error));
        assert_eq!(serde_json::from_value::<Verdict>(j).unwrap(), v);
        // evaluable requests are unaffected
        assert_eq!(p.evaluate(&Req::new("x", json!({"amount": 1})).input()).eval_error(), None);
    }
}

#[test]
fn on_error_route_sends_to_its_group_with_its_quorum_and_never_approves_on_timeout() {
    let p = on_error_policy(", on_error: { route: admins, approvals: 2 }");
    let r = route(p.evaluate(&Req::new("x", json!({"amount": "lots"})).input()));
    assert_eq!((r.group.as_str(), r.approvals, r.rule.as_deref()), ("admins", 2, Some("small")));
    assert_eq!(r.on_timeout, OnTimeout::Reject, "defaults say approve, but never for an evaluation error");
    assert_eq!(r.timeout, Duration::from_secs(7200));
    assert!(r.eval_error.as_deref().unwrap().contains("small"));
    let r = route(on_error_policy(", on_error: { route: admins }").evaluate(&Req::new("x", json!({})).input()));
    assert_eq!(r.approvals, 1);
}

#[test]
fn explanation_shows_the_error_path() {
    let p = on_error_policy("");
    let text = p.explain(&Req::new("x", json!({})).input()).to_string();
    assert!(text.contains("small") && text.contains("error: "), "{text}");
    assert!(text.contains("=> deny (defaults, on_error: rule `small` could not be evaluated"), "{text}");
    let p = on_error_policy(", on_error: { route: admins }");
    let text = p.explain(&Req::new("x", json!({})).input()).to_string();
    assert!(text.contains("=> route to admins, timeout 2h then reject (defaults, on_error: rule `small`"), "{text}");
}

#[test]
fn on_error_problems_are_policy_errors() {
    let bad = |on_error: &str| match Policy::parse(&format!("{ON_ERROR_BASE}{on_error} }}\n")) {
        Ok(_) => panic!("{on_error} should be refused"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        bad(", on_error: approve"),
        "line 7, column 74: defaults: on_error: expected `deny` or `{ route: GROUP, approvals: N }`, found `approve`"
    );
    assert!(bad(", on_error: { route: nobody }").contains("unknown group `nobody`"));
    assert!(bad(", on_error: { route: admins, approvals: 3 }").contains("approvals 3 exceeds the 2 members"));
    assert!(bad(", on_error: { route: admins, approvals: 0 }").contains("between 1 and 100"));
    assert!(bad(", on_error: { approvals: 1 }").contains("missing field `route`"));
}

#[test]
fn the_expense_schema_refuses_a_string_amount() {
    let p = policy();
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(p.check_args("expense", &json!({"amount": 120, "currency": "EUR"})), Ok(()));
    let missing = p.check_args("expense", &json!({"currency": "EUR"})).unwrap_err();
    assert_eq!((missing[0].path.as_str(), missing[0].message.as_str()), ("$.amount", "is required"));
    let problems = p.check_args("expense", &json!({"amount": "100000"})).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].path.as_str(), problems[0].message.as_str()),
        ("$.amount", "expected number, found string")
    );
    assert_eq!(p.check_args("advance_candidate", &json!({"anything": true})), Ok(()));
}
