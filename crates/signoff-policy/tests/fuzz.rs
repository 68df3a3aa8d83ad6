//! Property tests: `Policy::parse` never panics, on random text, random bytes or plausible YAML, and
//! `parse_duration` never panics and never wraps.
//!
//! Set `PROPTEST_CASES` (e.g. `PROPTEST_CASES=100000`) to run more cases than the default.

use proptest::prelude::*;
use signoff_policy::{Policy, format_duration, parse_duration};
use std::time::Duration;

/// `default` cases, or `PROPTEST_CASES` when it is set.
fn config(default: u32) -> ProptestConfig {
    match std::env::var_os("PROPTEST_CASES") {
        Some(_) => ProptestConfig::default(),
        None => ProptestConfig::with_cases(default),
    }
}

/// The longest duration a policy accepts: 365 days.
const MAX_SECS: u64 = 365 * 86_400;

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

/// A count for one part of a duration: mostly small, sometimes near or past every limit.
fn part() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..400, 1 => any::<u64>(), 1 => Just(u64::MAX), 1 => Just(u64::MAX / 60 + 1)]
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Policy::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn durations_never_panic(s in "\\PC{0,40}") {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_secs() >= 1 && d.as_secs() <= MAX_SECS, "{}: {:?}", s, d);
        }
    }

    #[test]
    fn duration_like_text_never_panics(s in "[0-9dhms ]{0,40}") {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_secs() >= 1 && d.as_secs() <= MAX_SECS, "{}: {:?}", s, d);
        }
    }

    #[test]
    fn durations_add_up_exactly_or_are_refused(d in part(), h in part(), m in part(), s in part()) {
        let text = format!("{d}d{h}h{m}m{s}s");
        let exact = [(d, 86_400u64), (h, 3_600), (m, 60), (s, 1)]
            .iter()
            .try_fold(0u64, |total, &(n, unit)| n.checked_mul(unit).and_then(|secs| total.checked_add(secs)));
        match (parse_duration(&text), exact) {
            (Ok(parsed), Some(total)) => prop_assert_eq!(parsed.as_secs(), total),
            (Ok(parsed), None) => prop_assert!(false, "{} overflows u64 but parsed as {:?}", text, parsed),
            (Err(error), Some(total)) => prop_assert!(total == 0 || total > MAX_SECS, "{}: {}", text, error),
            (Err(error), None) => prop_assert!(error.contains("too long"), "{}: {}", text, error),
        }
    }

    #[test]
    fn formatted_durations_parse_back(secs in 1..=MAX_SECS) {
        let d = Duration::from_secs(secs);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
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
    let deep_maps = format!("version: 1\nrules: {}1{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    assert!(Policy::parse(&deep_maps).is_err());
    let deep_block: String = (0..10_000).map(|i| format!("{}- \n", "  ".repeat(i))).collect();
    assert!(Policy::parse(&format!("version: 1\nrules:\n{deep_block}")).is_err());
    let deep_block_maps: String = (0..10_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    assert!(Policy::parse(&format!("version: 1\nrules:\n{deep_block_maps}")).is_err());
    let mut bomb = String::from("version: 1\nx0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!("x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let err = Policy::parse(&bomb).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}

/// A group's `digest` as written: any mix of its fields (and a stray one) with plausible and broken values.
fn digest_value() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("every"),
        Just("at"),
        Just("timezone"),
        Just("time_zone"),
        Just("min"),
        Just("urgent_after"),
        Just("total"),
        Just("bogus"),
    ];
    let value = prop_oneof![
        Just("2s".to_string()),
        Just("0s".to_string()),
        Just("1h".to_string()),
        Just("[\"09:00\", \"15:00\"]".to_string()),
        Just("[\"23:59\", \"00:00\"]".to_string()),
        Just("[\"25:61\"]".to_string()),
        Just("[]".to_string()),
        Just("\"02:30\"".to_string()),
        Just("Europe/Berlin".to_string()),
        Just("America/New_York".to_string()),
        Just("Mars/Olympus".to_string()),
        Just("none".to_string()),
        Just("args.amount".to_string()),
        Just("context.cost.eur".to_string()),
        Just("args.".to_string()),
        Just("0".to_string()),
        Just("3".to_string()),
        Just("~".to_string()),
        scalar(),
    ];
    prop::collection::vec((field, value), 0..5).prop_map(|kv| {
        let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{{{}}}", body.join(", "))
    })
}

proptest! {
    #![proptest_config(config(300))]

    /// Any digest is parsed or refused with positions, never a panic; a valid one's next time is always later.
    #[test]
    fn digests_never_panic_and_their_next_time_is_later(digest in digest_value(), secs in 0i64..4_000_000_000) {
        let yaml = format!(
            "version: 1\napprovers:\n  - {{ id: carl, groups: [finance] }}\ngroups:\n  finance:\n    notify: [email]\n    \
             digest: {digest}\ndefaults: {{ route: finance, timeout: 24h }}\n"
        );
        match signoff_policy::Policy::parse(&yaml) {
            Ok(policy) => {
                let digest = policy.group("finance").unwrap().digest.clone().expect("a digest");
                let after = chrono::DateTime::from_timestamp(secs, 0).unwrap();
                let next = digest.schedule.next_after(after);
                prop_assert!(next > after && next - after <= chrono::Duration::days(2), "{after} -> {next}");
            }
            Err(errors) => prop_assert!(errors.iter().all(|e| e.line.is_some()), "{errors}"),
        }
    }
}
