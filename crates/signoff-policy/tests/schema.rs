//! Per-action argument schemas: each keyword, error positions, and a property test that the
//! validator never panics.

use proptest::prelude::*;
use serde_json::{Value, json};
use signoff_policy::{ArgProblem, Policy};

fn policy_with(schema: &str) -> Policy {
    let src = format!("version: 1\nactions:\n  a:\n    args: {schema}\n");
    Policy::parse(&src).unwrap_or_else(|e| panic!("{schema}:\n{e}"))
}

/// The problems as `path: message` lines (empty when the args are accepted).
fn problems(schema: &str, args: Value) -> Vec<String> {
    match policy_with(schema).check_args("a", &args) {
        Ok(()) => Vec::new(),
        Err(problems) => {
            assert!(!problems.is_empty());
            problems.iter().map(ArgProblem::to_string).collect()
        }
    }
}

fn parse_errors(schema: &str) -> Vec<String> {
    let src = format!("version: 1\nactions:\n  a:\n    args: {schema}\n");
    match Policy::parse(&src) {
        Ok(_) => panic!("expected errors for {schema}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn actions_without_a_schema_accept_anything() {
    let p = policy_with("{ type: object }");
    assert_eq!(p.check_args("other", &json!("not even an object")), Ok(()));
    assert_eq!(Policy::builtin_default().check_args("a", &json!(null)), Ok(()));
    assert_eq!(p.schema_actions().collect::<Vec<_>>(), ["a"]);
    assert!(problems("{}", json!({"x": [1, 2]})).is_empty());
}

#[test]
fn type_single_and_list() {
    let cases = [
        ("object", json!({}), json!([])),
        ("array", json!([1]), json!({})),
        ("string", json!("x"), json!(1)),
        ("number", json!(1.5), json!("1.5")),
        ("integer", json!(3), json!(3.5)),
        ("boolean", json!(true), json!("true")),
        ("null", json!(null), json!(0)),
    ];
    for (t, ok, bad) in cases {
        let schema = format!("{{ type: {t} }}");
        assert!(problems(&schema, ok.clone()).is_empty(), "{t} accepts {ok}");
        assert_eq!(problems(&schema, bad.clone()).len(), 1, "{t} refuses {bad}");
    }
    assert!(problems("{ type: integer }", json!(3.0)).is_empty(), "a whole number is an integer");
    assert_eq!(problems("{ type: string }", json!(100000)), ["$: expected string, found integer"]);
    assert_eq!(problems("{ type: [string, null] }", json!(1.5)), ["$: expected string or null, found number"]);
    assert!(problems("{ type: [string, null] }", json!(null)).is_empty());
}

#[test]
fn required_and_properties() {
    let schema = "{ type: object, required: [amount, currency], properties: { amount: { type: number, minimum: 0 } } }";
    assert!(problems(schema, json!({"amount": 5, "currency": "EUR", "extra": 1})).is_empty());
    assert_eq!(problems(schema, json!({})), ["$.amount: is required", "$.currency: is required"]);
    assert_eq!(
        problems(schema, json!({"amount": "100000", "currency": "EUR"})),
        ["$.amount: expected number, found string"]
    );
    assert_eq!(problems(schema, json!({"amount": -1, "currency": "EUR"})), ["$.amount: must be at least 0, found -1"]);
    // `required` and `properties` only constrain objects
    assert_eq!(problems(schema, json!([1])), ["$: expected object, found array"]);
}

#[test]
fn additional_properties_false_names_each_extra_field() {
    let schema = "{ properties: { a: {} }, additionalProperties: false }";
    assert!(problems(schema, json!({"a": 1})).is_empty());
    assert_eq!(
        problems(schema, json!({"a": 1, "b": 2, "odd key": 3})),
        [
            "$.b: is not allowed (the schema sets `additionalProperties: false`)",
            "$[\"odd key\"]: is not allowed (the schema sets `additionalProperties: false`)"
        ]
    );
    assert!(problems("{ properties: { a: {} }, additionalProperties: true }", json!({"b": 1})).is_empty());
}

#[test]
fn enum_compares_json_values() {
    let schema = r#"{ enum: [EUR, "USD", 1, null, true] }"#;
    for ok in [json!("EUR"), json!("USD"), json!(1), json!(1.0), json!(null), json!(true)] {
        assert!(problems(schema, ok.clone()).is_empty(), "{ok}");
    }
    assert_eq!(problems(schema, json!("GBP")), [r#"$: must be one of "EUR", "USD", 1, null, true"#]);
    assert_eq!(problems(r#"{ enum: ["1"] }"#, json!(1)).len(), 1, "a quoted scalar is a string");
}

#[test]
fn minimum_and_maximum_are_inclusive() {
    let schema = "{ minimum: 1, maximum: 2.5 }";
    for ok in [json!(1), json!(2.5), json!(2)] {
        assert!(problems(schema, ok.clone()).is_empty(), "{ok}");
    }
    assert_eq!(problems(schema, json!(0.5)), ["$: must be at least 1, found 0.5"]);
    assert_eq!(problems(schema, json!(3)), ["$: must be at most 2.5, found 3"]);
    assert!(problems(schema, json!("0")).is_empty(), "minimum only constrains numbers");
}

#[test]
fn lengths_count_characters() {
    let schema = "{ minLength: 2, maxLength: 3 }";
    assert!(problems(schema, json!("été")).is_empty(), "3 characters, 5 bytes");
    assert_eq!(problems(schema, json!("é")), ["$: must be at least 2 characters long, found 1"]);
    assert_eq!(problems(schema, json!("abcd")), ["$: must be at most 3 characters long, found 4"]);
    assert!(problems(schema, json!(12345)).is_empty(), "lengths only constrain strings");
}

#[test]
fn pattern_is_an_unanchored_regex() {
    let schema = r#"{ pattern: "^[A-Z]{3}-\\d+$" }"#;
    assert!(problems(schema, json!("SKU-12")).is_empty());
    assert_eq!(problems(schema, json!("sku-12")), [r"$: must match the pattern `^[A-Z]{3}-\d+$`"]);
    assert!(problems("{ pattern: b }", json!("abc")).is_empty(), "unanchored");
}

#[test]
fn items_report_the_index_in_the_path() {
    let schema = "{ type: object, properties: { items: { type: array, items: { type: object, required: [sku], \
                  properties: { sku: { type: string } } } } } }";
    assert!(problems(schema, json!({"items": [{"sku": "a"}]})).is_empty());
    assert_eq!(
        problems(schema, json!({"items": [{"sku": "a"}, {"sku": "b"}, {"sku": 3}, {}]})),
        ["$.items[2].sku: expected string, found integer", "$.items[3].sku: is required"]
    );
}

#[test]
fn every_problem_is_reported() {
    let schema = "{ type: object, required: [a, b], additionalProperties: false, \
                  properties: { c: { type: string, minLength: 5, pattern: '^x' } } }";
    let got = problems(schema, json!({"c": "abc", "d": 1}));
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn schema_errors_have_line_and_column() {
    assert_eq!(
        parse_errors("{ type: object, format: email }"),
        [
            "line 4, column 27: action `a`: args: unknown keyword `format`; expected one of `type`, `required`, `properties`, `additionalProperties`, `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `items`, `description`"
        ]
    );
    assert_eq!(
        parse_errors("{ properties: { n: { minimun: 0 } } }"),
        [
            "line 4, column 32: action `a`: args.properties.n: unknown keyword `minimun` (did you mean `minimum`?); expected one of `type`, `required`, `properties`, `additionalProperties`, `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `items`, `description`"
        ]
    );
    assert_eq!(
        parse_errors("{ type: decimal }"),
        [
            "line 4, column 19: action `a`: args: unknown type `decimal`; expected one of object, array, string, number, integer, boolean, null"
        ]
    );
    assert_eq!(
        parse_errors("{ items: { pattern: '(' } }"),
        [
            "line 4, column 31: action `a`: args.items: pattern `(` is not a valid regular expression: error: unclosed group"
        ]
    );
    assert_eq!(
        parse_errors("{ minimum: 5, maximum: 1 }"),
        ["line 4, column 34: action `a`: args: maximum 1 is less than minimum 5"]
    );
    assert_eq!(
        parse_errors("{ minLength: -1 }"),
        ["line 4, column 24: action `a`: args: minLength must be zero or more, found -1"]
    );
    assert_eq!(
        parse_errors("{ enum: [] }"),
        ["line 4, column 19: action `a`: args: enum: the list of allowed values is empty"]
    );
    assert_eq!(
        parse_errors("{ additionalProperties: {} }"),
        ["line 4, column 35: action `a`: args: additionalProperties: expected `true` or `false`, found a mapping"]
    );
    let missing = Policy::parse("version: 1\nactions:\n  a: { description: x }\n").unwrap_err();
    assert_eq!(
        missing.to_string(),
        "line 3, column 6: action `a`: missing field `args` (a schema such as `{ type: object }`)"
    );
}

/// A random schema as JSON (which is valid YAML flow), using every keyword.
fn schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({})),
        prop::sample::select(vec!["object", "array", "string", "number", "integer", "boolean", "null"])
            .prop_map(|t| json!({ "type": t })),
        (-5i64..5).prop_map(|n| json!({ "minimum": n })),
        (-5.0f64..5.0).prop_map(|n| json!({ "maximum": n })),
        (0i64..4).prop_map(|n| json!({ "minLength": n, "maxLength": n + 2 })),
        "[a-z^$.*+?()\\[\\]|\\\\]{0,6}".prop_map(|p| json!({ "pattern": p })),
        prop::collection::vec(json_value(), 1..3).prop_map(|v| json!({ "enum": v })),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3).prop_map(|props| {
                let required: Vec<&String> = props.keys().collect();
                json!({ "type": ["object", "null"], "properties": props, "required": required })
            }),
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3)
                .prop_map(|props| json!({ "properties": props, "additionalProperties": false })),
            inner.prop_map(|items| json!({ "type": "array", "items": items })),
        ]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]|\\PC{0,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn validator_never_panics(schema in schema(), args in json_value()) {
        let src = format!("version: 1\nactions:\n  a:\n    args: {schema}\n");
        if let Ok(policy) = Policy::parse(&src)
            && let Err(problems) = policy.check_args("a", &args)
        {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(p.path.starts_with('$'));
            }
        }
    }

    #[test]
    fn arbitrary_schema_text_never_panics(text in "[a-zA-Z:{}\\[\\], \"'0-9.-]{0,80}", args in json_value()) {
        let src = format!("version: 1\nactions:\n  a:\n    args: {text}\n");
        if let Ok(policy) = Policy::parse(&src) {
            let _ = policy.check_args("a", &args);
        }
    }
}
