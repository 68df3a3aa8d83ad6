//! A pre-check read off a condition's CEL syntax tree: the actions it can match at all, so that evaluation skips a
//! rule naming another action without running CEL.
//!
//! [`action_set`] returns a set `S` such that, for a request whose `action` is not in `S`, the condition evaluates
//! to `false`, never to an error. By the interpreter's rules (`cel` 0.15, `Value::resolve_val`):
//! - `action == "a"` (either side) and `action in ["a", "b"]` (string literals only) resolve the bound variable
//!   `action` and a literal, and compare strings: `false` outside `{a}` or `{a, b}`, and never an error.
//! - `x && y` is `false` as soon as either side is `false`: a `false` left side returns at once, and a `false`
//!   right side makes the whole `false` whether the left was `true`, `false` or an error. So outside the set of
//!   either side (or of both: their intersection) it is `false`.
//! - `x || y` is `false` when both sides are `false`: outside the union of both sides' sets.
//!
//! Anything else yields no set and the condition is evaluated as written. [`ActionIndex`] keeps the sets of a
//! policy's rules and, by action, the rules that can match it.

use std::collections::HashMap;

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, operators};

use crate::model::Rule;

/// The action sets of a policy's rules, and the rules that can match each action, in rule order.
pub(crate) struct ActionIndex {
    sets: Vec<Option<Box<[String]>>>,
    /// By action: the rules whose set holds it.
    named: HashMap<String, Box<[u32]>>,
    /// The rules without a set, which every action must consider.
    open: Box<[u32]>,
    all: Box<[u32]>,
}

impl ActionIndex {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let sets: Vec<Option<Box<[String]>>> = rules
            .iter()
            .map(|r| r.program.as_ref().and_then(|p| action_set(p.expression())).map(Vec::into_boxed_slice))
            .collect();
        let mut named: HashMap<String, Vec<u32>> = HashMap::new();
        let mut open = Vec::new();
        for (i, set) in (0u32..).zip(&sets) {
            match set {
                Some(set) => set.iter().for_each(|a| named.entry(a.clone()).or_default().push(i)),
                None => open.push(i),
            }
        }
        ActionIndex {
            named: named.into_iter().map(|(a, rules)| (a, rules.into_boxed_slice())).collect(),
            open: open.into_boxed_slice(),
            all: (0u32..).take(sets.len()).collect(),
            sets,
        }
    }

    /// Rule `i`'s action set.
    pub(crate) fn set(&self, i: usize) -> Option<&[String]> {
        self.sets[i].as_deref()
    }

    /// The indices of the rules that can match `action`, in order.
    pub(crate) fn candidates(&self, action: &str) -> Merge<'_> {
        Merge { a: self.named.get(action).map_or(&[], |r| r), b: &self.open }
    }

    /// The indices of all rules, in order.
    pub(crate) fn all(&self) -> Merge<'_> {
        Merge { a: &[], b: &self.all }
    }
}

/// Two ascending lists of rule indices as one.
pub(crate) struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let next = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) if x < y => {
                self.a = &self.a[1..];
                x
            }
            (_, Some(&y)) => {
                self.b = &self.b[1..];
                y
            }
            (Some(&x), None) => {
                self.a = &self.a[1..];
                x
            }
            (None, None) => return None,
        };
        Some(next as usize)
    }
}

/// The actions outside of which `expr` is certainly `false`, sorted and without duplicates; `None` when no such
/// set can be read off `expr`.
pub(crate) fn action_set(expr: &IdedExpr) -> Option<Vec<String>> {
    let mut set = walk(expr)?;
    set.sort();
    set.dedup();
    Some(set)
}

fn walk(expr: &IdedExpr) -> Option<Vec<String>> {
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    if call.target.is_some() || call.args.len() != 2 {
        return None;
    }
    let (left, right) = (&call.args[0], &call.args[1]);
    match call.func_name.as_str() {
        operators::LOGICAL_AND => match (walk(left), walk(right)) {
            (Some(l), Some(r)) => Some(l.into_iter().filter(|a| r.contains(a)).collect()),
            (Some(s), None) | (None, Some(s)) => Some(s),
            (None, None) => None,
        },
        operators::LOGICAL_OR => {
            let mut l = walk(left)?;
            l.extend(walk(right)?);
            Some(l)
        }
        operators::EQUALS => match (is_action(left), is_action(right)) {
            (true, false) => string_literal(right).map(|s| vec![s.to_string()]),
            (false, true) => string_literal(left).map(|s| vec![s.to_string()]),
            _ => None,
        },
        operators::IN if is_action(left) => {
            let Expr::List(list) = &right.expr else {
                return None;
            };
            if !list.optional_indices.is_empty() {
                return None;
            }
            list.elements.iter().map(|e| string_literal(e).map(str::to_string)).collect()
        }
        _ => None,
    }
}

fn is_action(expr: &IdedExpr) -> bool {
    matches!(&expr.expr, Expr::Ident(name) if name == "action")
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::action_set;

    fn set(condition: &str) -> Option<Vec<String>> {
        let program = cel::Env::stdlib().compile(condition).expect("condition compiles");
        action_set(program.expression())
    }

    fn strings(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn reads_equality_membership_and_both_connectives() {
        assert_eq!(set(r#"action == "refund""#), strings(&["refund"]));
        assert_eq!(set(r#""refund" == action"#), strings(&["refund"]));
        assert_eq!(set(r#"action in ["b", "a", "b"]"#), strings(&["a", "b"]));
        assert_eq!(set(r#"args.amount > 3 && action == "refund" && "vip" in tags"#), strings(&["refund"]));
        assert_eq!(set(r#"action in ["a", "b"] && action in ["b", "c"]"#), strings(&["b"]));
        assert_eq!(set(r#"action == "a" && action == "b""#), strings(&[]));
        assert_eq!(set(r#"action == "a" || action in ["b"]"#), strings(&["a", "b"]));
        assert_eq!(set(r#"(action == "a" || action == "b") && args.x"#), strings(&["a", "b"]));
    }

    #[test]
    fn gives_up_on_anything_else() {
        for condition in [
            r#"action != "refund""#,
            r#"!(action == "refund")"#,
            r#"action == "a" || args.x"#,
            r#"action == agent"#,
            r#"action == 1"#,
            r#"action in ["a", 1]"#,
            r#"action in context.actions"#,
            r#"action.startsWith("re")"#,
            r#"[1].all(action, action == "a")"#,
            r#"action == "a" ? true : false"#,
            r#"args.amount > 3"#,
        ] {
            assert_eq!(set(condition), None, "{condition}");
        }
    }
}

/// Evaluation as it runs (the pre-check, variables built on first use) against plain CEL (every condition run, every
/// variable converted up front): random policies of conditions mixing action tests with conditions that are true,
/// false or fail to evaluate, over random requests, give the same verdicts and the same traces.
#[cfg(test)]
mod same_verdicts {
    use crate::{EvalInput, Mode, Policy};
    use proptest::prelude::*;

    const ACTIONS: [&str; 4] = ["pay", "refund", "ship", "pay\u{e9}"];

    fn config(default: u32) -> ProptestConfig {
        match std::env::var_os("PROPTEST_CASES") {
            Some(_) => ProptestConfig::default(),
            None => ProptestConfig::with_cases(default),
        }
    }

    fn action_literal() -> impl Strategy<Value = String> {
        prop::sample::select(&ACTIONS[..]).prop_map(|a| format!("{a:?}"))
    }

    fn atom() -> BoxedStrategy<String> {
        prop_oneof![
            4 => action_literal().prop_map(|a| format!("action == {a}")),
            2 => action_literal().prop_map(|a| format!("{a} == action")),
            2 => prop::collection::vec(action_literal(), 0..3).prop_map(|l| format!("action in [{}]", l.join(", "))),
            1 => action_literal().prop_map(|a| format!("action != {a}")),
            1 => action_literal().prop_map(|a| format!("action in [{a}, 1]")),
            1 => Just("action == agent".to_string()),
            1 => Just("action == 1".to_string()),
            2 => (0i64..300).prop_map(|n| format!("args.amount > {n}")),
            1 => Just("args.amount".to_string()),
            1 => Just("args.missing == 1".to_string()),
            1 => Just("\"vip\" in tags".to_string()),
            1 => Just("confidence >= 0.5".to_string()),
            1 => Just("context.region == \"eu\"".to_string()),
            1 => Just("mode == \"post\"".to_string()),
            1 => Just("run_id == null".to_string()),
            1 => Just("1 / 0 == 1".to_string()),
            1 => Just("size(tags) > 0".to_string()),
            1 => Just("true".to_string()),
            1 => Just("false".to_string()),
            1 => Just("args.note == \"x\"".to_string()),
            1 => Just("\"amount\" in args".to_string()),
            1 => Just("has(args.amount)".to_string()),
            1 => Just("size(args) == 2".to_string()),
            1 => Just("args == {\"amount\": 12.5}".to_string()),
            1 => Just("args.amount == 12.5".to_string()),
            1 => Just("type(args.amount) == uint".to_string()),
            1 => Just("int(args.amount) > 3".to_string()),
            1 => Just("args.all(k, k != \"\")".to_string()),
            1 => Just("args.exists(action, action == \"note\")".to_string()),
            1 => Just("context.n[1].a == null".to_string()),
            1 => Just("context.n == [1, {\"a\": null}]".to_string()),
            1 => Just("context[\"r\u{e9}gion\"] == \"\u{e9}\"".to_string()),
            1 => Just("tags.exists(t, t == \"vip\")".to_string()),
            1 => Just("tags == [\"vip\"]".to_string()),
            1 => Just("agent + \"-\" + mode == \"bot-pre\"".to_string()),
            1 => Just("run_id.startsWith(\"run\")".to_string()),
            1 => Just("confidence == null".to_string()),
            1 => Just("action.size() > 3".to_string()),
        ]
        .boxed()
    }

    fn condition() -> impl Strategy<Value = String> {
        atom().prop_recursive(4, 16, 3, |inner| {
            prop_oneof![
                4 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
                3 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
                1 => inner.clone().prop_map(|a| format!("!({a})")),
                1 => (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| format!("({a} ? {b} : {c})")),
            ]
        })
    }

    fn rule_action() -> impl Strategy<Value = &'static str> {
        prop::sample::select(
            &["decide: approve", "decide: deny", "route: ops", "review: { sample: 0.5, group: ops }"][..],
        )
    }

    fn policy() -> impl Strategy<Value = String> {
        let rules = prop::collection::vec((prop::option::weighted(0.9, condition()), rule_action()), 1..8);
        (rules, any::<bool>()).prop_map(|(rules, on_error_route)| {
            let on_error = if on_error_route { ", on_error: { route: ops, approvals: 1 }" } else { "" };
            let mut yaml = format!(
                "version: 1\n\
                 approvers:\n  - {{ id: ada, name: Ada, email: ada@example.com, groups: [ops] }}\n\
                 groups:\n  ops: {{ notify: [email] }}\n\
                 defaults: {{ route: ops, timeout: 24h, on_timeout: reject{on_error} }}\n\
                 rules:\n"
            );
            for (i, (when, action)) in rules.iter().enumerate() {
                yaml.push_str(&format!("  - name: r{i}\n"));
                if let Some(when) = when {
                    yaml.push_str(&format!("    when: '{}'\n", when.replace('\'', "''")));
                }
                yaml.push_str(&format!("    {action}\n"));
            }
            yaml
        })
    }

    #[derive(Debug, Clone)]
    struct Request {
        action: String,
        args: serde_json::Value,
        context: serde_json::Value,
        confidence: Option<f64>,
        tags: Vec<String>,
        mode: Mode,
        agent: String,
        run_id: Option<String>,
    }

    fn request() -> impl Strategy<Value = Request> {
        let action = prop_oneof![
            4 => prop::sample::select(&ACTIONS[..]).prop_map(str::to_string),
            1 => Just("other".to_string()),
            1 => Just(String::new()),
        ];
        let args = prop_oneof![
            (0i64..300).prop_map(|n| serde_json::json!({ "amount": n, "note": "x" })),
            Just(serde_json::json!({ "amount": 12.5 })),
            Just(serde_json::json!({ "amount": "12" })),
            Just(serde_json::json!({ "amount": u64::MAX, "note": "x" })),
            Just(serde_json::json!({ "amount": -4, "note": "" })),
            Just(serde_json::json!({})),
            Just(serde_json::json!([1, 2])),
        ];
        let context = prop_oneof![
            Just(serde_json::Value::Null),
            Just(serde_json::json!({ "region": "eu", "n": [1, { "a": null }] })),
            Just(serde_json::json!({ "region": "us" })),
            Just(serde_json::json!({ "r\u{e9}gion": "\u{e9}", "n": [] })),
        ];
        let tags = prop::collection::vec(prop::sample::select(&["vip", "internal"][..]).prop_map(str::to_string), 0..3);
        (
            action,
            args,
            context,
            prop::option::of(0.0f64..1.0),
            tags,
            any::<bool>(),
            prop::sample::select(&["pay", "bot"][..]),
            prop::option::of(Just("run-1".to_string())),
        )
            .prop_map(|(action, args, context, confidence, tags, post, agent, run_id)| Request {
                action,
                args,
                context,
                confidence,
                tags,
                mode: if post { Mode::Post } else { Mode::Pre },
                agent: agent.to_string(),
                run_id,
            })
    }

    proptest! {
        #![proptest_config(config(2_000))]

        #[test]
        fn prefilter_decides_as_plain_cel(yaml in policy(), requests in prop::collection::vec(request(), 1..6)) {
            // Constant conditions and the like are refused by the parser: nothing to compare then.
            let Ok(policy) = Policy::parse(&yaml) else { return Ok(()) };
            for r in &requests {
                let input = EvalInput {
                    request_id: "req-1",
                    action: &r.action,
                    args: &r.args,
                    context: &r.context,
                    confidence: r.confidence,
                    tags: &r.tags,
                    mode: r.mode,
                    agent: &r.agent,
                    run_id: r.run_id.as_deref(),
                };
                let plain = policy.explain_plain(&input);
                prop_assert_eq!(&policy.evaluate(&input), &plain.verdict, "{}\n{:?}", yaml, r);
                prop_assert_eq!(&policy.explain(&input), &plain);
            }
        }
    }
}
