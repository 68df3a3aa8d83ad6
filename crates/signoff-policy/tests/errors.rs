//! Every kind of malformed policy yields a precise message at the right line and column.

use signoff_policy::Policy;

const HEAD: &str = "version: 1
approvers:
  - { id: dana, name: Dana, email: d@example.com, groups: [directors] }
  - { id: carl, name: Carl, email: c@example.com, groups: [cfo] }
  - { id: cleo, name: Cleo, email: e@example.com, groups: [cfo] }
groups:
  directors: { notify: [slack, email] }
  cfo: { notify: [email, sms] }
defaults: { route: directors, timeout: 24h, on_timeout: reject }
";
// HEAD is 9 lines; rules start on line 10.

fn errors(yaml: &str) -> Vec<String> {
    match Policy::parse(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => {
            let text = e.to_string();
            assert_eq!(text.lines().count(), e.len());
            text.lines().map(str::to_string).collect()
        }
    }
}

fn with_rules(rules: &str) -> String {
    format!("{HEAD}rules:\n{rules}")
}

#[track_caller]
fn expect(yaml: &str, wanted: &[&str]) {
    let got = errors(yaml);
    assert_eq!(got, wanted, "\nfor:\n{yaml}");
}

#[test]
fn base_is_valid() {
    Policy::parse(&with_rules("  - name: ok\n    route: cfo\n")).unwrap();
}

#[test]
fn yaml_syntax_error() {
    let got = errors("version: 1\nrules:\n  - name: a\n    when: [unclosed\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("line 5, column 1: YAML syntax error:"), "{got:?}");
    let got = errors("version: 1\n  bad: indent\n");
    assert!(got[0].starts_with("line 2, column 6: YAML syntax error"), "{got:?}");
}

#[test]
fn empty_and_non_mapping_documents() {
    expect("", &["line 1, column 1: the policy is empty; expected a mapping with `version: 1`"]);
    expect("- a\n- b\n", &["line 1, column 1: policy: expected a mapping, found a list"]);
    expect(
        "version: 1\n---\nversion: 1\n",
        &["line 2, column 1: YAML syntax error: a policy file holds exactly one YAML document; found a second one"],
    );
}

#[test]
fn version_problems() {
    expect("rules: []\n", &["line 1, column 1: policy: missing field `version` (write `version: 1`)"]);
    expect("version: 2\n", &["line 1, column 10: version: unsupported version 2; this build understands version 1"]);
    expect("version: \"1\"\n", &["line 1, column 10: version: expected an integer, found the string `1`"]);
}

#[test]
fn unknown_fields() {
    expect(
        "version: 1\nrulez: []\n",
        &[
            "line 2, column 1: policy: unknown field `rulez` (did you mean `rules`?); expected one of `version`, `approvers`, `groups`, `defaults`, `rules`, `actions`",
        ],
    );
    let got = errors(&with_rules("  - name: a\n    whn: action == \"x\"\n    decide: approve\n"));
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("line 12, column 5: rule `a`: unknown field `whn` (did you mean `when`?)"), "{got:?}");
    let got = errors("version: 1\napprovers:\n  - { id: x, name: X, mail: x@y }\n");
    assert!(
        got[0].starts_with("line 3, column 23: approver `x`: unknown field `mail` (did you mean `email`?)"),
        "{got:?}"
    );
    let got = errors("version: 1\ngroups:\n  g: { notify: [email], members: [x] }\n");
    assert!(got[0].starts_with("line 3, column 25: group `g`: unknown field `members`"), "{got:?}");
}

#[test]
fn duplicate_keys() {
    expect(
        &with_rules("  - name: a\n    route: cfo\n    route: directors\n"),
        &["line 13, column 5: rule `a`: duplicate field `route` (first set on line 12)"],
    );
}

#[test]
fn cel_syntax_error_points_into_the_expression() {
    // `when: ` starts at column 5, the value at column 11; the error (`&&`) is its 11th char.
    let got = errors(&with_rules("  - name: bad\n    when: action == && args.x\n    decide: approve\n"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("line 12, column 21: rule `bad`: invalid condition: "), "{got:?}");
    // quoted: the quote shifts the column by one (the error is at the closing quote)
    let got = errors(&with_rules("  - name: bad\n    when: 'action =='\n    decide: approve\n"));
    assert!(got[0].starts_with("line 12, column 21: rule `bad`: invalid condition: "), "{got:?}");
    // literal block: the line inside the block
    let got = errors(&with_rules(
        "  - name: bad\n    when: |\n      action == \"x\" &&\n        args.y <\n    decide: approve\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    // the end of `        args.y <` on line 14
    assert!(got[0].starts_with("line 14, column 17: rule `bad`: invalid condition: "), "{got:?}");
}

#[test]
fn unknown_variable() {
    expect(
        &with_rules("  - name: v\n    when: actoin == \"x\"\n    decide: approve\n"),
        &[
            "line 12, column 11: rule `v`: unknown variable `actoin` (did you mean `action`?) in condition; available: action, args, context, confidence, tags, mode, agent, run_id",
        ],
    );
    // comprehension variables are fine
    Policy::parse(&with_rules(
        "  - name: v\n    when: args.items.all(i, i.qty > 0) && tags.exists(t, t == \"x\")\n    decide: approve\n",
    ))
    .unwrap();
}

#[test]
fn constant_conditions() {
    expect(
        &with_rules("  - name: never\n    when: 1 == 2\n    decide: approve\n"),
        &["line 12, column 11: rule `never`: condition `1 == 2` is always false; the rule can never match"],
    );
    expect(
        &with_rules("  - name: num\n    when: 1 + 2\n    decide: approve\n"),
        &["line 12, column 11: rule `num`: condition `1 + 2` is a int, not a boolean"],
    );
}

#[test]
fn unknown_groups_everywhere() {
    expect(
        &with_rules("  - name: x\n    route: directorz\n"),
        &[
            "line 12, column 12: rule `x`: unknown group `directorz` (did you mean `directors`?); declare it under `groups`",
        ],
    );
    expect(
        &with_rules("  - name: x\n    route: cfo\n    timeout: 8h\n    escalate: [ { after: 1h, to: board } ]\n"),
        &["line 14, column 34: rule `x`: escalate: unknown group `board`; declare it under `groups`"],
    );
    expect(
        &with_rules("  - name: x\n    review: { sample: 0.1, group: mods }\n"),
        &["line 12, column 35: rule `x`: review: unknown group `mods`; declare it under `groups`"],
    );
    expect(
        &HEAD.replace("route: directors", "route: admins"),
        &["line 9, column 20: defaults: route: unknown group `admins`; declare it under `groups`"],
    );
    expect(
        &HEAD.replace("groups: [cfo] }\n  - { id: cleo", "groups: [cfo, finance] }\n  - { id: cleo"),
        &["line 4, column 65: approver `carl`: unknown group `finance`; declare it under `groups`"],
    );
}

#[test]
fn group_without_members() {
    let yaml = HEAD.replace(
        "  cfo: { notify: [email, sms] }\n",
        "  cfo: { notify: [email, sms] }\n  board: { notify: [email] }\n",
    );
    expect(
        &format!("{yaml}rules:\n  - name: x\n    route: board\n"),
        &["line 13, column 12: rule `x`: group `board` has no members; list it in an approver's `groups`"],
    );
}

#[test]
fn unknown_channel() {
    expect(
        &HEAD.replace("[email, sms]", "[email, sns]"),
        &[
            "line 8, column 26: group `cfo`: unknown channel `sns` (did you mean `sms`?); expected one of slack, email, sms, telegram, discord, dashboard",
        ],
    );
}

#[test]
fn api_is_not_a_notification_channel() {
    expect(
        &HEAD.replace("[email, sms]", "[email, api]"),
        &[
            "line 8, column 26: group `cfo`: api is not a notification channel; approvers can always decide through the API",
        ],
    );
}

#[test]
fn duplicate_approver_ids_and_rule_names() {
    expect(
        &HEAD.replace("id: cleo", "id: carl"),
        &["line 5, column 11: approver `carl`: duplicate approver id (first on line 4)"],
    );
    expect(
        &with_rules(
            "  - name: a\n    when: action == \"x\"\n    route: cfo\n  - name: a\n    when: action == \"y\"\n    route: cfo\n",
        ),
        &["line 14, column 11: rule `a`: duplicate rule name (first on line 11)"],
    );
}

#[test]
fn shadowed_rules() {
    expect(
        &with_rules("  - name: all\n    route: cfo\n  - name: later\n    when: action == \"x\"\n    decide: approve\n"),
        &["line 13, column 11: rule `later` can never match: rule `all` (line 11) before it always matches"],
    );
    expect(
        &with_rules("  - name: yes\n    when: \"true\"\n    route: cfo\n  - name: later\n    decide: deny\n"),
        &["line 14, column 11: rule `later` can never match: rule `yes` (line 11) before it always matches"],
    );
    expect(
        &with_rules(
            "  - name: a\n    when: action == \"x\"\n    route: cfo\n  - name: b\n    when: action==\"x\"\n    decide: deny\n",
        ),
        &["line 14, column 11: rule `b` can never match: rule `a` (line 11) before it has the same condition"],
    );
    // a review rule without `when` does not shadow pre requests
    Policy::parse(&with_rules(
        "  - name: r\n    review: { sample: 0.1, group: cfo }\n  - name: later\n    decide: deny\n",
    ))
    .unwrap();
}

#[test]
fn bad_durations() {
    expect(
        &with_rules("  - name: x\n    route: cfo\n    timeout: 0s\n"),
        &["line 13, column 14: rule `x`: timeout: duration `0s` is zero; it must be longer than zero"],
    );
    expect(
        &with_rules("  - name: x\n    route: cfo\n    timeout: 10\n"),
        &["line 13, column 14: rule `x`: timeout: duration `10` has no unit; write e.g. `10s` or `10m`"],
    );
    expect(
        &HEAD.replace("timeout: 24h", "timeout: 1 day"),
        &["line 9, column 40: defaults: timeout: unknown unit ` ` in duration `1 day`; use `w`, `d`, `h`, `m` or `s`"],
    );
}

#[test]
fn approvals_bounds() {
    expect(
        &with_rules("  - name: x\n    route: cfo\n    approvals: 0\n"),
        &["line 13, column 16: rule `x`: approvals must be at least 1, found 0"],
    );
    expect(
        &with_rules("  - name: x\n    route: cfo\n    approvals: 3\n"),
        &["line 13, column 16: rule `x`: approvals 3 exceeds the 2 members of group `cfo`"],
    );
}

#[test]
fn sample_bounds() {
    expect(
        &with_rules("  - name: x\n    review: { sample: 5, group: cfo }\n"),
        &["line 12, column 23: rule `x`: review: sample must be between 0 and 1 (e.g. 0.05 for 5 %), found 5"],
    );
}

#[test]
fn escalation_not_shorter_than_timeout() {
    expect(
        &with_rules("  - name: x\n    route: directors\n    timeout: 4h\n    escalate: [ { after: 4h, to: cfo } ]\n"),
        &["line 14, column 26: rule `x`: escalation after 4h is not shorter than the rule's timeout of 4h"],
    );
    // against the default timeout of 24h
    expect(
        &with_rules("  - name: x\n    route: directors\n    escalate:\n      - after: 2d\n        to: cfo\n"),
        &["line 14, column 16: rule `x`: escalation after 2d is not shorter than the default timeout of 1d"],
    );
}

#[test]
fn rule_shape_problems() {
    expect(
        &with_rules("  - name: x\n    when: action == \"a\"\n"),
        &["line 11, column 5: rule `x`: needs exactly one of `decide`, `route` or `review`"],
    );
    expect(
        &with_rules("  - name: x\n    decide: approve\n    route: cfo\n"),
        &[
            "line 13, column 5: rule `x`: `decide` and `route` cannot be combined; a rule has exactly one of `decide`, `route` or `review`",
        ],
    );
    expect(
        &with_rules("  - name: x\n    decide: maybe\n"),
        &["line 12, column 13: rule `x`: decide: expected `approve` or `deny`, found `maybe`"],
    );
    expect(
        &with_rules("  - name: x\n    decide: approve\n    approvals: 2\n"),
        &["line 13, column 5: rule `x`: `approvals` only applies to `route` rules, not `decide`"],
    );
    expect(
        &with_rules("  - when: action == \"a\"\n    decide: deny\n"),
        &["line 11, column 5: rules[0]: missing field `name`"],
    );
    expect(
        &with_rules("  - name: x\n    route: cfo\n    allow_edit: maybe\n"),
        &["line 13, column 17: rule `x`: allow_edit: expected `true` or `false`, found `maybe`"],
    );
    expect(
        &with_rules("  - name: x\n    route: cfo\n    on_timeout: explode\n"),
        &["line 13, column 17: rule `x`: on_timeout: expected `approve`, `reject` or `fail`, found `explode`"],
    );
}

#[test]
fn all_problems_are_reported_at_once_sorted() {
    let got = errors(&with_rules(
        "  - name: a\n    route: nope\n    approvals: 0\n  - name: a\n    when: x ==\n    decide: deny\n",
    ));
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("line 12, column 12: rule `a`: unknown group `nope`"));
    assert!(got[1].starts_with("line 13, column 16: rule `a`: approvals must be at least 1"));
    assert!(got[2].starts_with("line 14, column 11: rule `a`: duplicate rule name"));
    assert!(got[3].starts_with("line 15, column 1"), "{got:?}");
}

#[test]
fn an_approver_without_a_name_is_named_by_its_id() {
    let p = Policy::parse(&with_rules("  - name: ok\n    route: cfo\n").replace("name: Carl, ", "")).unwrap();
    assert_eq!(p.approver("carl").unwrap().name, "carl");
    assert_eq!(p.approver("dana").unwrap().name, "Dana");
    expect(&HEAD.replace("name: Carl", "name: \"\""), &["line 4, column 23: approver `carl`: name: must not be empty"]);
}

#[test]
fn a_broken_approver_does_not_leave_its_groups_without_members() {
    // cfo's only valid members are carl and cleo; break both: the groups they list still count.
    let yaml = HEAD
        .replace("{ id: carl, name: Carl,", "{ id: carl, name: [Carl],")
        .replace("{ id: cleo, name: Cleo,", "{ id: [cleo], name: Cleo,");
    expect(
        &format!("{yaml}rules:\n  - name: x\n    route: cfo\n"),
        &[
            "line 4, column 23: approver `carl`: name: expected a string, found a list",
            "line 5, column 11: approvers[2]: id: expected a string, found a list",
        ],
    );
    // An entry without an id is broken too.
    expect(
        &format!(
            "{}rules:\n  - name: x\n    route: cfo\n",
            HEAD.replace("{ id: carl, name: Carl", "{ name: Carl").replace("{ id: cleo, name: Cleo", "{ name: Cleo")
        ),
        &["line 4, column 5: approvers[1]: missing field `id`", "line 5, column 5: approvers[2]: missing field `id`"],
    );
}

#[test]
fn group_reminders_are_increasing_durations() {
    let yaml = |remind: &str| {
        format!(
            "version: 1\napprovers:\n  - {{ id: dana, email: d@example.com, groups: [directors] }}\ngroups:\n  \
             directors: {{ notify: [email], remind: {remind} }}\ndefaults: {{ route: directors, timeout: 24h }}\n"
        )
    };
    expect(
        &yaml("[2h, 1h, 2h]"),
        &[
            "line 5, column 46: group `directors`: remind: reminders must be in increasing order (1h after 2h)",
            "line 5, column 50: group `directors`: remind: reminders must be in increasing order (2h after 2h)",
        ],
    );
    expect(
        &yaml("[soon]"),
        &[
            "line 5, column 42: group `directors`: remind: invalid duration `soon`; expected a duration such as `90s`, `30m`, `4h`, `2d` or `1h30m`",
        ],
    );
    expect(&yaml("4h"), &["line 5, column 41: group `directors`: remind: expected a list, found a scalar"]);
}

#[test]
fn a_routes_reminders_are_its_groups_and_each_escalation_step_carries_its_targets() {
    use signoff_policy::{EvalInput, Mode, Verdict};
    use std::time::Duration;
    let policy = Policy::parse(
        "version: 1
approvers:
  - { id: dana, email: d@example.com, groups: [directors] }
  - { id: carl, email: c@example.com, groups: [cfo] }
groups:
  directors: { notify: [email], remind: [30m, 2h] }
  cfo: { notify: [email], remind: [1h] }
defaults: { route: directors, timeout: 24h }
rules:
  - { name: big, when: 'args.amount > 10', route: directors, escalate: [ { after: 4h, to: cfo } ] }
",
    )
    .unwrap();
    let (args, context, tags) = (serde_json::json!({"amount": 50}), serde_json::Value::Null, Vec::new());
    let input = EvalInput {
        request_id: "r",
        action: "refund",
        args: &args,
        context: &context,
        confidence: None,
        tags: &tags,
        mode: Mode::Pre,
        agent: "bot",
        run_id: None,
    };
    let Verdict::Route(route) = policy.evaluate(&input) else { panic!("routed") };
    assert_eq!(route.remind, [Duration::from_secs(1800), Duration::from_secs(7200)]);
    assert_eq!(route.escalate[0].remind, [Duration::from_secs(3600)]);
}

#[test]
fn rotations_name_members_of_their_group_and_a_schedule_that_can_be_followed() {
    let yaml = |rotation: &str| {
        format!(
            "version: 1\napprovers:\n  - {{ id: carl, groups: [oncall] }}\n  - {{ id: cleo, groups: [oncall] }}\n  \
             - {{ id: dana, groups: [finance] }}\ngroups:\n  finance: {{ notify: [email] }}\n  oncall:\n    \
             notify: [email]\n    rotation: {rotation}\ndefaults: {{ route: oncall, timeout: 24h }}\n"
        )
    };
    Policy::parse(&yaml("{ members: [carl, cleo], every: 1w, starts: 2026-01-05T09:00:00Z }")).unwrap();
    Policy::parse(&yaml("{ members: [cleo], handover: \"09:00\", time_zone: Europe/Berlin, starts: 2026-01-05 }"))
        .unwrap();
    Policy::parse(&yaml(
        "{ members: [carl, cleo], handover: \"09:00\", time_zone: UTC, starts: 2026-01-05, every: 7d }",
    ))
    .unwrap();
    for (rotation, wanted) in [
        (
            "{ members: [carl, dana, cart], every: 1w, starts: 2026-01-05T09:00:00Z }",
            vec![
                "line 10, column 33: group `oncall`: rotation: `dana` is not a member of `oncall`; add it to their `groups`",
                "line 10, column 39: group `oncall`: rotation: unknown approver `cart` (did you mean `carl`?)",
            ],
        ),
        (
            "{ members: [carl, carl], every: 1w }",
            vec![
                "line 10, column 15: group `oncall`: rotation: missing field `starts` (e.g. `starts: 2026-01-05T09:00:00Z`)",
                "line 10, column 33: group `oncall`: rotation: members: `carl` is listed twice",
            ],
        ),
        (
            "{ members: [], starts: 2026-01-05T09:00:00Z }",
            vec![
                "line 10, column 15: group `oncall`: rotation: missing field `every` (e.g. `every: 1w`)",
                "line 10, column 26: group `oncall`: rotation: members: list at least one approver",
            ],
        ),
        (
            "{ members: [carl], every: 400d, starts: monday }",
            vec![
                "line 10, column 41: group `oncall`: rotation: every: duration `400d` is longer than the maximum of 365d",
                "line 10, column 55: group `oncall`: rotation: starts: expected an RFC 3339 instant like 2026-01-05T09:00:00Z, found `monday` (or give handover and time_zone)",
            ],
        ),
        (
            "{ members: [carl], handover: \"9am\", time_zone: Mars/Olympus, starts: 2026-01-05T09:00:00Z, every: 36h }",
            vec![
                "line 10, column 44: group `oncall`: rotation: handover: expected a wall-clock time like \"09:00\", found `9am`",
                "line 10, column 62: group `oncall`: rotation: time_zone: unknown time zone `Mars/Olympus`; expected an IANA name like Europe/Berlin",
                "line 10, column 84: group `oncall`: rotation: starts: expected the first shift's date like 2026-01-05, found `2026-01-05T09:00:00Z`",
                "line 10, column 113: group `oncall`: rotation: every: a rotation with a handover time changes in whole days (1d, 7d, ...)",
            ],
        ),
        (
            "{ members: [carl], time_zone: UTC }",
            vec![
                "line 10, column 15: group `oncall`: rotation: missing field `handover` (a rotation with a handover time needs handover, time_zone and starts)",
                "line 10, column 15: group `oncall`: rotation: missing field `starts` (a rotation with a handover time needs handover, time_zone and starts)",
            ],
        ),
    ] {
        expect(&yaml(rotation), &wanted);
    }
}

#[test]
fn discord_ids_are_digits() {
    let yaml = HEAD
        .replace("email: d@example.com,", "email: d@example.com, discord: dana#0001,")
        .replace("[email, sms] }", "[email, discord], discord_channel: general }");
    expect(
        &yaml,
        &[
            "line 3, column 60: approver `dana`: discord: `dana#0001` is not a Discord id (digits only, e.g. \"80351110224678912\")",
            "line 8, column 53: group `cfo`: discord_channel: `general` is not a Discord id (digits only, e.g. \"80351110224678912\")",
        ],
    );
    let yaml = HEAD
        .replace("email: d@example.com,", "email: d@example.com, discord: 80351110224678912,")
        .replace("[email, sms] }", "[email, discord], discord_channel: \"1100000000000000001\" }");
    let policy = Policy::parse(&yaml).unwrap();
    assert_eq!(policy.approver("dana").unwrap().discord.as_deref(), Some("80351110224678912"));
    assert_eq!(policy.group("cfo").unwrap().discord_channel.as_deref(), Some("1100000000000000001"));
}

#[test]
fn digests_name_a_schedule_that_can_be_followed() {
    let yaml = |digest: &str| {
        format!(
            "version: 1\napprovers:\n  - {{ id: carl, groups: [finance] }}\ngroups:\n  finance:\n    notify: [slack, email]\n    \
             digest: {digest}\ndefaults: {{ route: finance, timeout: 24h }}\n"
        )
    };
    let parsed = Policy::parse(&yaml("{ every: 2s }")).unwrap();
    let digest = parsed.group("finance").unwrap().digest.clone().unwrap();
    assert_eq!(digest.min, 2);
    assert_eq!(digest.total.as_deref(), Some("args.amount"));
    assert_eq!(digest.urgent_after, None);
    let parsed = Policy::parse(&yaml(
        "{ at: [\"15:00\", \"09:00\"], timezone: Europe/Berlin, min: 1, urgent_after: 1h, total: none }",
    ))
    .unwrap();
    let digest = parsed.group("finance").unwrap().digest.clone().unwrap();
    assert_eq!((digest.min, digest.total, digest.urgent_after), (1, None, Some(std::time::Duration::from_secs(3600))));
    match digest.schedule {
        signoff_policy::DigestSchedule::At { times, timezone } => {
            assert_eq!(times.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["09:00:00", "15:00:00"]);
            assert_eq!(timezone.name(), "Europe/Berlin");
        }
        other => panic!("{other:?}"),
    }
    Policy::parse(&yaml("{ at: [\"09:00\"], total: context.cost.eur }")).unwrap();
    for (digest, wanted) in [
        (
            "{ every: 1h, at: [\"09:00\"] }",
            vec!["line 7, column 26: group `finance`: digest: give either `every` or `at`, not both"],
        ),
        (
            "{ min: 3 }",
            vec![
                "line 7, column 13: group `finance`: digest: missing field `every` or `at` (e.g. `every: 1h` or `at: [\"09:00\"]`)",
            ],
        ),
        (
            "{ every: 0s }",
            vec![
                "line 7, column 22: group `finance`: digest: every: duration `0s` is zero; it must be longer than zero",
            ],
        ),
        (
            "{ every: 1h, timezone: UTC, min: 0, urgent_after: soon }",
            vec![
                "line 7, column 26: group `finance`: digest: timezone: only a digest with `at` times has a time zone",
                "line 7, column 46: group `finance`: digest: min: expected a number of requests from 1 to 10000, found 0",
                "line 7, column 63: group `finance`: digest: urgent_after: invalid duration `soon`; expected a duration such as `90s`, `30m`, `4h`, `2d` or `1h30m`",
            ],
        ),
        (
            "{ at: [\"25:00\", \"09:00\", \"09:00\"], timezone: Mars/Olympus }",
            vec![
                "line 7, column 20: group `finance`: digest: at: expected a wall-clock time like \"09:00\", found `25:00`",
                "line 7, column 38: group `finance`: digest: at: `09:00` is listed twice",
                "line 7, column 58: group `finance`: digest: timezone: unknown time zone `Mars/Olympus`; expected an IANA name like Europe/Berlin",
            ],
        ),
        (
            "{ at: [] }",
            vec![
                "line 7, column 19: group `finance`: digest: at: list at least one time (e.g. `at: [\"09:00\", \"15:00\"]`)",
            ],
        ),
        (
            "{ every: 1h, total: amount, frequency: 2 }",
            vec![
                "line 7, column 33: group `finance`: digest: total: expected a field path under args or context (e.g. `args.amount`), or `none`, found `amount`",
                "line 7, column 41: group `finance`: digest: unknown field `frequency`; expected one of `every`, `at`, `timezone`, `time_zone`, `min`, `urgent_after`, `total`",
            ],
        ),
    ] {
        expect(&yaml(digest), &wanted);
    }
}

#[test]
fn standing_is_one_persons_on_route_rules_only() {
    let ok = Policy::parse(&with_rules(
        "  - name: refunds\n    route: directors\n    standing: { max: 4h, scope: [action, args.customer, tags] }\n",
    ))
    .unwrap();
    let terms = ok.standing("refunds").expect("terms");
    assert_eq!(terms.max, std::time::Duration::from_secs(4 * 3600));
    let scope: Vec<String> = terms.scope.iter().map(ToString::to_string).collect();
    assert_eq!(scope, ["action", "args.customer", "tags"]);
    let implicit = Policy::parse(&with_rules("  - name: r\n    route: cfo\n    standing: { max: 30m }\n")).unwrap();
    assert_eq!(implicit.standing("r").unwrap().scope.len(), 1, "action is always in scope");
    assert!(implicit.standing("nope").is_none());

    expect(
        &with_rules("  - name: q\n    route: cfo\n    approvals: 2\n    standing: { max: 4h }\n"),
        &[
            "line 14, column 15: rule `q`: standing: a standing approval is one person's, so it never applies to a rule \
           that needs 2 approvals; remove `standing` or set `approvals: 1`",
        ],
    );
    expect(
        &with_rules("  - name: d\n    decide: approve\n    standing: { max: 4h }\n"),
        &["line 13, column 5: rule `d`: `standing` only applies to `route` rules, not `decide`"],
    );
    expect(
        &with_rules("  - name: v\n    review: { sample: 0.1, group: cfo }\n    standing: { max: 4h }\n"),
        &["line 13, column 5: rule `v`: `standing` only applies to `route` rules, not `review`"],
    );
    expect(
        &with_rules("  - name: z\n    route: cfo\n    standing: { max: 0s }\n"),
        &["line 13, column 22: rule `z`: standing: max: duration `0s` is zero; it must be longer than zero"],
    );
    expect(
        &with_rules("  - name: m\n    route: cfo\n    standing: { scope: [action] }\n"),
        &["line 13, column 15: rule `m`: standing: missing field `max` (the longest window a person may grant, e.g. \
           `4h`)"],
    );
    expect(
        &with_rules(
            "  - name: s\n    route: cfo\n    standing: { max: 1h, scope: [args, agent, args.a..b, action.x] }\n",
        ),
        &[
            "line 13, column 34: rule `s`: standing: scope `args` needs a field: write `args.NAME` (e.g. `args.customer`)",
            "line 13, column 40: rule `s`: standing: scope `agent`: a scope is `action`, `tags`, `args.FIELD` or \
             `context.FIELD`",
            "line 13, column 47: rule `s`: standing: scope `args.a..b`: each field after `args.` is 1 to 64 letters, \
             digits, `_` or `-`, separated by `.`",
            "line 13, column 58: rule `s`: standing: scope `action` has no fields: write `action`",
        ],
    );
    expect(
        &with_rules("  - name: t\n    route: cfo\n    standing: { max: 1h, scope: [args.a, args.a] }\n"),
        &["line 13, column 42: rule `t`: standing: scope `args.a` is listed twice"],
    );
}
