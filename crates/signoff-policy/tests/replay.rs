//! Replaying past requests against a draft policy.

use serde_json::json;
use signoff_policy::{Mode, Outcome, Policy, ReplayRecord, Verdict, replay};

const PRODUCT: &str = include_str!("fixtures/product.yaml");

fn record(id: &str, action: &str, args: serde_json::Value, confidence: Option<f64>) -> ReplayRecord {
    ReplayRecord {
        request_id: id.into(),
        action: action.into(),
        args,
        context: serde_json::Value::Null,
        confidence,
        tags: vec![],
        mode: Mode::Pre,
        agent: "bot".into(),
        run_id: None,
    }
}

#[test]
fn replay_reports_changes_per_rule() {
    let current = Policy::parse(PRODUCT).unwrap();
    // Draft: lower the auto-approve limit to 1000 and send everything above 20000 to the cfo.
    let draft_src = PRODUCT
        .replace("args.amount < 5000", "args.amount < 1000")
        .replace("args.amount <= 25000", "args.amount <= 20000");
    let draft = Policy::parse(&draft_src).unwrap();

    let mut records = Vec::new();
    for (i, amount) in [500, 2000, 3000, 4999, 6000, 22000, 24000, 30000].iter().enumerate() {
        records.push(record(&format!("e{i}"), "expense", json!({ "amount": amount }), None));
    }
    records.push(record("c1", "advance_candidate", json!({}), Some(0.9)));
    records.push(record("bad", "expense", json!({}), None));

    let stored: Vec<(ReplayRecord, Verdict)> = records
        .into_iter()
        .map(|r| {
            let v = current.evaluate(&r.input());
            (r, v)
        })
        .collect();
    let report = replay(&draft, stored);
    assert_eq!(report.total, 10);
    assert_eq!(report.changed, 5, "{report}");
    assert_eq!(report.draft_errors, 1);

    let t = &report.transitions;
    assert_eq!(t[0].from, Outcome::AutoApprove);
    assert_eq!(t[0].to, Outcome::Person { group: "directors".into() });
    assert_eq!(t[0].count, 3);
    assert_eq!(t[0].label(), "auto-approve → person (directors)");
    assert_eq!(t[0].examples, ["e1", "e2", "e3"]);
    assert_eq!(t[1].label(), "directors → cfo");
    assert_eq!(t[1].count, 2);

    let director = report.by_draft_rule.iter().find(|r| r.rule == "director-expense").unwrap();
    assert_eq!((director.requests, director.changed), (4, 3));
    let large = report.by_draft_rule.iter().find(|r| r.rule == "large-expense").unwrap();
    assert_eq!((large.requests, large.changed), (3, 2));
    // rules that matched nothing are listed too, in draft order
    assert_eq!(report.by_draft_rule[0].rule, "small-expense");
    assert_eq!(report.by_draft_rule.len(), 7); // 6 rules + the error bucket
    assert_eq!(report.by_draft_rule[6].rule, "(defaults: error in `small-expense`)");

    let old_small = report.by_current_rule.iter().find(|r| r.rule == "small-expense").unwrap();
    assert_eq!((old_small.requests, old_small.changed), (4, 3));

    let text = report.to_string();
    assert!(text.contains("Replayed 10 requests"), "{text}");
    assert!(text.contains("auto-approve → person (directors)"), "{text}");
    assert!(text.contains("directors → cfo: 2"), "{text}");
    println!("{text}");

    // identical policy: nothing changes
    let same = replay(
        &current,
        vec![(record("x", "expense", json!({"amount": 1}), None), Verdict::Approve { rule: "small-expense".into() })],
    );
    assert_eq!(same.changed, 0);
    assert!(same.transitions.is_empty());
}
