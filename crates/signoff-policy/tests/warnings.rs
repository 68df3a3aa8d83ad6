//! Warnings: conditions that read `args` fields an action's schema does not declare.

use signoff_policy::Policy;

const HEAD: &str = "version: 1
actions:
  expense: { args: { properties: { amount: { type: number }, currency: {} } } }
  refund: { args: { properties: { order: {} } } }
";
// HEAD is 4 lines; rules start on line 6.

fn warnings(rules: &str) -> Vec<String> {
    let src = format!("{HEAD}rules:\n{rules}");
    let policy = Policy::parse(&src).unwrap_or_else(|e| panic!("{src}\n{e}"));
    policy.warnings().iter().map(ToString::to_string).collect()
}

#[test]
fn a_field_the_named_action_does_not_declare_is_a_warning() {
    assert_eq!(
        warnings("  - name: big\n    when: action == \"expense\" && args.amont > 100\n    decide: deny\n"),
        [
            "line 7, column 34: warning: rule `big`: condition reads `args.amont` (did you mean `args.amount`?), but the `actions:` schema of `expense` does not declare it"
        ]
    );
    // has() and indexing count, either side of ==, each field once
    let got = warnings(
        "  - name: r\n    when: '\"refund\" == action && has(args.reason) && args[\"reason\"] != \"\" && args[\"why\"] == 1'\n    decide: deny\n",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("`args.reason`") && got[0].contains("schema of `refund`"), "{got:?}");
    assert!(got[1].contains("`args.why`"), "{got:?}");
}

#[test]
fn declared_fields_and_actions_without_schemas_are_fine() {
    assert!(
        warnings("  - name: ok\n    when: action == \"expense\" && args.amount > 1 && args.currency == \"EUR\"\n    decide: deny\n")
            .is_empty()
    );
    assert!(warnings("  - name: ok\n    when: action == \"other\" && args.anything\n    decide: deny\n").is_empty());
    // comprehension variables named `args` are not the request's args
    assert!(
        warnings("  - name: ok\n    when: action == \"expense\" && [1].all(args, args.x == 1)\n    decide: deny\n")
            .is_empty()
    );
}

#[test]
fn a_rule_naming_no_action_warns_only_when_no_schema_declares_the_field() {
    assert!(warnings("  - name: any\n    when: args.order == \"o1\"\n    decide: deny\n").is_empty());
    assert_eq!(
        warnings("  - name: any\n    when: args.sku == \"x\"\n    decide: deny\n"),
        ["line 7, column 11: warning: rule `any`: condition reads `args.sku`, which no `actions:` schema declares"]
    );
}

#[test]
fn several_named_actions_each_need_the_field() {
    let got = warnings(
        "  - name: both\n    when: (action == \"expense\" || action == \"refund\") && args.amount > 1\n    decide: deny\n",
    );
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("the `actions:` schema of `refund` does not declare it"), "{got:?}");
}

#[test]
fn no_schemas_no_warnings() {
    let p = Policy::parse("version: 1\nrules:\n  - name: r\n    when: args.whatever > 1\n    decide: deny\n").unwrap();
    assert!(p.warnings().is_empty());
}
