//! Property tests: a request body, as arbitrary JSON or arbitrary bytes, never panics the parser or `validate()`,
//! whatever validates survives a trip through its JSON form unchanged, and deep nesting is refused cleanly.
//!
//! Set `PROPTEST_CASES` (e.g. `PROPTEST_CASES=100000`) to run more cases than the default.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use signoff_domain::NewRequest;

/// `default` cases, or `PROPTEST_CASES` when it is set.
fn config(default: u32) -> ProptestConfig {
    match std::env::var_os("PROPTEST_CASES") {
        Some(_) => ProptestConfig::default(),
        None => ProptestConfig::with_cases(default),
    }
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Every finite double, including the ones with 17 significant digits that are hard to read back exactly.
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        (0.0..=1.0f64).prop_map(Value::from),
        Just(json!(0.1)),
        Just(json!(1e308)),
        Just(json!(5e-324)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        Just(String::new()),
        Just("\0".to_string()),
        Just("https://example.com/hook".to_string()),
        Just("http://".to_string()),
        "[a-z]{129,140}",
        Just("pre".to_string()),
        Just("post".to_string()),
    ]
}

/// Any JSON value, nested a few levels.
fn value() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 14] = [
    "action",
    "args",
    "summary",
    "reasoning",
    "context",
    "confidence",
    "tags",
    "mode",
    "run_id",
    "call_id",
    "callback_url",
    "state",
    "timeout_s",
    "bogus",
];

/// A value for `field` that is often of the right type and sometimes not.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let right = match field {
        "args" | "context" | "state" => prop::collection::btree_map(text(), value(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
            .boxed(),
        "confidence" => number().boxed(),
        "tags" => prop::collection::vec(text().prop_map(Value::String), 0..70).prop_map(Value::Array).boxed(),
        "timeout_s" => prop_oneof![Just(json!(0)), (1u64..100_000).prop_map(Value::from), number()].boxed(),
        _ => text().prop_map(Value::String).boxed(),
    };
    prop_oneof![4 => right, 1 => value()].boxed()
}

/// An object made mostly of the request's own fields.
fn body() -> impl Strategy<Value = Value> {
    let fields = prop::sample::subsequence(FIELDS.to_vec(), 0..=FIELDS.len());
    fields.prop_flat_map(|names| {
        let values: Vec<BoxedStrategy<(String, Value)>> =
            names.into_iter().map(|name| field_value(name).prop_map(move |v| (name.to_string(), v)).boxed()).collect();
        values.prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>()))
    })
}

/// Parses, validates and, when it validates, checks the round trip. Never panics on any input.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(request) = serde_json::from_slice::<NewRequest>(bytes) {
        check_request(&request)?;
    }
    Ok(())
}

fn check_request(request: &NewRequest) -> Result<(), TestCaseError> {
    if request.validate().is_ok() {
        let encoded = serde_json::to_string(request).expect("a valid request serialises");
        let decoded: NewRequest = serde_json::from_str(&encoded).expect("its own JSON parses back");
        prop_assert_eq!(&decoded, request);
        prop_assert!(decoded.validate().is_ok());
        prop_assert_eq!(decoded.fingerprint(), request.fingerprint());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_bytes(&bytes)?;
    }

    #[test]
    fn json_like_text_never_panics(text in "[{}\\[\\],:\"0-9a-z_.eE+\\- \\\\u]{0,200}") {
        check_bytes(text.as_bytes())?;
    }

    #[test]
    fn arbitrary_json_values_never_panic(v in value()) {
        if let Ok(request) = serde_json::from_value::<NewRequest>(v.clone()) {
            check_request(&request)?;
        }
        check_bytes(v.to_string().as_bytes())?;
    }

    #[test]
    fn plausible_bodies_validate_or_fail_cleanly_and_round_trip(v in body()) {
        let text = v.to_string();
        check_bytes(text.as_bytes())?;
        let mut cut = text.len() / 2;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        check_bytes(&text.as_bytes()[..cut])?;
    }

    #[test]
    fn a_valid_request_with_any_numbers_round_trips(args in prop::collection::vec(number(), 0..8), confidence in 0.0..=1.0f64) {
        let body = json!({"action": "refund", "args": {"numbers": args}, "confidence": confidence});
        let request: NewRequest = serde_json::from_value(body).expect("a well-formed body");
        prop_assert!(request.validate().is_ok());
        check_request(&request)?;
    }
}

fn nested_args(depth: usize) -> String {
    format!(r#"{{"action":"x","args":{{"a":{}{}}}}}"#, "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_nesting_is_refused_by_the_parser_without_overflowing_the_stack() {
    // 10,000 nested arrays in `args`, parsed on a small stack: serde_json's recursion limit refuses it.
    let deep = nested_args(10_000);
    let refused = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || serde_json::from_str::<NewRequest>(&deep).map(|_| ()).map_err(|e| e.to_string()))
        .expect("thread")
        .join()
        .expect("no stack overflow");
    let error = refused.unwrap_err();
    assert!(error.contains("recursion limit exceeded"), "{error}");
}

#[test]
fn the_recursion_limit_is_128_levels_of_the_whole_body() {
    // The body object, `args` and its key's array make three levels before the nested arrays.
    assert!(serde_json::from_str::<NewRequest>(&nested_args(125)).is_ok());
    let error = serde_json::from_str::<NewRequest>(&nested_args(126)).unwrap_err();
    assert!(error.to_string().contains("recursion limit exceeded"), "{error}");
}
