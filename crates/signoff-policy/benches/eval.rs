//! Evaluation benchmark: 50 rules, the request matches only the last one; first the bench's own policy, then
//! `docs/examples/bench-policy-50.yaml` with the request `signoff bench` sends.
//!
//! Run with `cargo bench -p signoff-policy --bench eval`. Prints mean ns/eval and p50/p99 for each.
//! `SIGNOFF_EVAL_N` sets the evaluations per phase (default 200,000; each policy runs 2.1 × N); `SIGNOFF_EVAL_ONLY`
//! (`bench` or `example`) runs one policy. Two runs under callgrind with different counts give the instructions per
//! evaluation: the difference of their totals over 2.1 × the difference of the counts.

use serde_json::json;
use signoff_policy::{EvalInput, Mode, Policy, Verdict};
use std::hint::black_box;
use std::time::Instant;

fn policy() -> Policy {
    let mut yaml = String::from(
        "version: 1\n\
         approvers:\n  - { id: ada, name: Ada, email: ada@example.com, groups: [ops] }\n\
         groups:\n  ops: { notify: [email] }\n\
         defaults: { route: ops, timeout: 24h, on_timeout: reject }\n\
         rules:\n",
    );
    for i in 0..49 {
        yaml.push_str(&format!(
            "  - name: rule-{i}\n    when: action == \"action_{i}\" && args.amount < {} && (confidence >= 0.4 || \"internal\" in tags)\n    route: ops\n",
            (i + 1) * 100
        ));
    }
    yaml.push_str(
        "  - name: last\n    when: action == \"refund\" && args.amount >= 10.5 && \"vip\" in tags && context.region == \"eu\"\n    decide: approve\n",
    );
    Policy::parse(&yaml).expect("benchmark policy parses")
}

fn main() {
    let n: usize = std::env::var("SIGNOFF_EVAL_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let only = std::env::var("SIGNOFF_EVAL_ONLY").ok();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);

    if run("bench") {
        let policy = policy();
        assert_eq!(policy.rules().len(), 50);
        let args = json!({ "amount": 120.5, "currency": "EUR", "order": "o-123", "items": [1, 2, 3] });
        let context = json!({ "region": "eu", "customer": { "id": "c-9", "tier": "gold" } });
        let tags = vec!["vip".to_string(), "refund".to_string()];
        let input = EvalInput {
            request_id: "0190b6a4-7c1e-7b3a-9f00-5d1c2e3f4a5b",
            action: "refund",
            args: &args,
            context: &context,
            confidence: Some(0.8),
            tags: &tags,
            mode: Mode::Pre,
            agent: "support-bot",
            run_id: Some("run-1"),
        };
        assert_eq!(policy.evaluate(&input), Verdict::Approve { rule: "last".into() });
        measure("eval, 50 rules, match on the last", &policy, &input, n);
    }

    if run("example") {
        // The policy and the request `signoff bench --policy docs/examples/bench-policy-50.yaml` sends.
        let policy =
            Policy::parse(include_str!("../../../docs/examples/bench-policy-50.yaml")).expect("example parses");
        assert_eq!(policy.rules().len(), 50);
        let args = json!({ "amount": 4242, "order": "ord_4242" });
        let input = EvalInput {
            request_id: "0190b6a4-7c1e-7b3a-9f00-5d1c2e3f4a5b",
            action: "refund",
            args: &args,
            context: &serde_json::Value::Null,
            confidence: None,
            tags: &[],
            mode: Mode::Pre,
            agent: "bench",
            run_id: None,
        };
        assert!(matches!(policy.evaluate(&input), Verdict::Route(r) if r.rule.as_deref() == Some("refunds")));
        measure("eval, docs/examples/bench-policy-50.yaml, match on the last", &policy, &input, n);
    }
}

/// Prints the mean over `n` back-to-back evaluations, then p50/p99/max of `n` timed one by one, after `n / 10`
/// to warm up.
fn measure(name: &str, policy: &Policy, input: &EvalInput, n: usize) {
    for _ in 0..n / 10 {
        black_box(policy.evaluate(black_box(input)));
    }

    let start = Instant::now();
    for _ in 0..n {
        black_box(policy.evaluate(black_box(input)));
    }
    let total = start.elapsed();

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        black_box(policy.evaluate(black_box(input)));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)];

    println!(
        "{name}: {:.0} ns/eval mean over {n} ({:.2} s total); per-eval p50 {} ns, p99 {} ns, max {} ns",
        total.as_nanos() as f64 / n as f64,
        total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        samples[n - 1],
    );
}
