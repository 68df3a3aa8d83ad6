//! Property tests: `Policy::parse` never panics, on random text or plausible YAML.

use proptest::prelude::*;
use signoff_policy::Policy;

const PRODUCT: &str = include_str!("fixtures/product.yaml");

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("everyone".to_string()),
        Just("cfo".to_string()),
        Just("directors".to_string()),
        Just("4h".to_string()),
        Just("0s".to_string()),
        Just("1h30m".to_string()),
        Just("approve".to_string()),
        Just("deny".to_string()),
        Just("reject".to_string()),
        Just("~".to_string()),
        Just("true".to_string()),
        Just("2".to_string()),
        Just("0.05".to_string()),
        Just("-1".to_string()),
        Just("\"action == 'x'\"".to_string()),
        Just("args.amount < 5000".to_string()),
        Just("\"confidence >= 0.4 || 'internal' in tags\"".to_string()),
        Just("\"args.(\"".to_string()),
        Just("[email, sms]".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        "[a-z0-9 .<>=&|\"'()-]{0,20}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("version"),
        Just("approvers"),
        Just("groups"),
        Just("defaults"),
        Just("rules"),
        Just("name"),
        Just("when"),
        Just("route"),
        Just("decide"),
        Just("review"),
        Just("approvals"),
        Just("timeout"),
        Just("escalate"),
        Just("after"),
        Just("to"),
        Just("on_timeout"),
        Just("sample"),
        Just("group"),
        Just("notify"),
        Just("id"),
        Just("groups"),
        Just("allow_edit"),
        Just("reject_reasons"),
        Just("bogus"),
    ]
    .prop_map(str::to_string)
}

/// A random YAML value (flow style), nested a few levels.
fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 0..6).prop_map(|kv| {
        let mut s = String::from("version: 1\n");
        for (k, v) in kv {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn random_yaml_like_text_never_panics(s in "[a-z:{}\\[\\],\\- \n\"'&*!|>#0-9]{0,300}") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn plausible_documents_never_panic(doc in document()) {
        if let Err(e) = Policy::parse(&doc) {
            prop_assert!(!e.is_empty());
            for err in e.iter() {
                prop_assert!(err.line.is_some());
            }
        }
    }

    #[test]
    fn mutated_product_policy_never_panics(cut in 0usize..2000, insert in scalar()) {
        let mut s = PRODUCT.to_string();
        let mut at = cut % (s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.insert_str(at, &insert);
        let _ = Policy::parse(&s);
        let mut t = PRODUCT.to_string();
        t.truncate(at);
        let _ = Policy::parse(&t);
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_rejected() {
    let deep = format!("version: 1\nrules: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Policy::parse(&deep).is_err());
    let mut bomb = String::from("version: 1\nx0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!("x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let err = Policy::parse(&bomb).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}
