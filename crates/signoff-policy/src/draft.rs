//! Drafts: edits of a policy's source that change one rule and keep every other line, comment and layout as
//! written. Each draft is checked with [`Policy::parse`]; an edit that cannot be made safely is refused.

use std::fmt;

use crate::error::PolicyErrors;
use crate::model::{Decision, RuleAction};
use crate::policy::Policy;
use crate::yaml::{self, Kind, Node};

/// The fields of a rule that say what it does: the action keys and the options only a `route` rule takes.
const ACTION_FIELDS: [&str; 9] =
    ["decide", "route", "review", "approvals", "allow_edit", "reject_reasons", "timeout", "escalate", "on_timeout"];

/// Why a draft was not made.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftError {
    /// The source has no rule of that name.
    UnknownRule(String),
    /// The edit cannot be made to this source without risking its meaning or layout (the reason says why).
    Refused(String),
    /// The edited source is not a valid policy (a bug in the edit, or a rule name already taken).
    Invalid(PolicyErrors),
}

impl fmt::Display for DraftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DraftError::UnknownRule(name) => write!(f, "the policy has no rule `{name}`"),
            DraftError::Refused(why) => write!(f, "no draft: {why}"),
            DraftError::Invalid(errors) => write!(f, "the draft would not be a valid policy: {errors}"),
        }
    }
}

impl std::error::Error for DraftError {}

/// A rule to insert: `name`, an optional condition, and an automatic decision.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    /// Its name (unique in the policy).
    pub name: String,
    /// Its CEL condition (`None`: always matches).
    pub when: Option<String>,
    /// What it decides.
    pub decide: Decision,
}

/// `source` with rule `rule`'s action replaced by `decide: approve` (its `route` or `review` and the route options
/// removed), everything else as written.
pub fn approve_rule(source: &str, rule: &str) -> Result<String, DraftError> {
    let doc = Located::find(source, rule)?;
    let entries = doc.rule_entries()?;
    let actions: Vec<&(Node, Node)> =
        entries.iter().filter(|(k, _)| k.key_text().is_some_and(|key| ACTION_FIELDS.contains(&key))).collect();
    let Some(first) = actions.first() else {
        return Err(DraftError::Refused(format!("rule `{rule}` has no action to replace")));
    };
    if let [(key, value)] = actions.as_slice()
        && key.key_text() == Some("decide")
        && matches!(&value.kind, Kind::Scalar(text, _) if text == "approve")
    {
        return Err(DraftError::Refused(format!("rule `{rule}` already approves")));
    }
    let text = Text::new(source);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if doc.char_at(doc.item.start) == Some('{') {
        for (index, (key, value)) in entries.iter().enumerate() {
            if !actions.iter().any(|(k, _)| k.start == key.start) {
                continue;
            }
            if key.start == first.0.start {
                edits.push((text.byte(key.start), text.byte(value.end), "decide: approve".into()));
            } else {
                // From the end of the entry before (its value) to the end of this one: `, key: value`.
                let before = &entries[index - 1].1;
                edits.push((text.byte(before.end), text.byte(value.end), String::new()));
            }
        }
    } else {
        for (key, value) in &actions {
            let line_start = text.line_start(text.byte(key.start));
            let prefix = &source[line_start..text.byte(key.start)];
            if !prefix.chars().all(|c| c == ' ' || c == '-') {
                return Err(DraftError::Refused(format!("rule `{rule}`: `{}` does not start its line", key_text(key))));
            }
            let value_end = text.content_end(text.byte(value.end).max(text.byte(key.end)));
            let line_end = text.line_end(value_end);
            let rest = source[value_end..line_end].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(DraftError::Refused(format!(
                    "rule `{rule}`: text follows `{}` on its line",
                    key_text(key)
                )));
            }
            let newline = if source[..line_end].ends_with("\r\n") {
                "\r\n"
            } else if source[..line_end].ends_with('\n') {
                "\n"
            } else {
                ""
            };
            let replacement = if key.start == first.0.start {
                format!("{prefix}decide: approve{newline}")
            } else if prefix.contains('-') {
                return Err(DraftError::Refused(format!(
                    "rule `{rule}`: `{}` shares its line with the list's dash",
                    key_text(key)
                )));
            } else {
                String::new()
            };
            edits.push((line_start, line_end, replacement));
        }
    }
    let draft = apply(source, edits)?;
    let policy = Policy::parse(&draft).map_err(DraftError::Invalid)?;
    let changed = policy.rules().iter().find(|r| r.name == rule);
    if !changed.is_some_and(|r| r.action == RuleAction::Decide(Decision::Approve)) {
        return Err(DraftError::Refused(format!("rule `{rule}` would not approve after the edit")));
    }
    Ok(draft)
}

/// `source` with `new_rule` inserted just before rule `before` (and before the comment lines directly above it), in
/// the same style as that rule, everything else as written.
pub fn insert_rule_before(source: &str, before: &str, new_rule: &NewRule) -> Result<String, DraftError> {
    let doc = Located::find(source, before)?;
    doc.rule_entries()?;
    let text = Text::new(source);
    let name = quoted(&new_rule.name)?;
    let when = new_rule.when.as_deref().map(quoted).transpose()?;
    let decide = match new_rule.decide {
        Decision::Approve => "approve",
        Decision::Deny => "deny",
    };
    let flow_fields = match &when {
        Some(when) => format!("{{ name: {name}, when: {when}, decide: {decide} }}"),
        None => format!("{{ name: {name}, decide: {decide} }}"),
    };
    let item = text.byte(doc.item.start);
    let draft = if doc.char_at(doc.rules.start) == Some('[') {
        apply(source, vec![(item, item, format!("{flow_fields}, "))])?
    } else {
        let dash = source[..item].trim_end_matches([' ', '\n', '\r']);
        if !dash.ends_with('-') {
            return Err(DraftError::Refused(format!("rule `{before}` is not a block list item")));
        }
        let dash = dash.len() - 1;
        let dash_line = text.line_start(dash);
        let indent = &source[dash_line..dash];
        if !indent.chars().all(|c| c == ' ') {
            return Err(DraftError::Refused(format!("rule `{before}` does not start its line")));
        }
        let key_column =
            if text.line_start(item) == dash_line { source[dash_line..item].chars().count() } else { indent.len() + 2 };
        let newline = if source.contains("\r\n") { "\r\n" } else { "\n" };
        let block = if doc.char_at(doc.item.start) == Some('{') {
            format!("{indent}- {flow_fields}{newline}")
        } else {
            let gap = " ".repeat(key_column - indent.len() - 1);
            let pad = " ".repeat(key_column);
            let mut block = format!("{indent}-{gap}name: {name}{newline}");
            if let Some(when) = &when {
                block.push_str(&format!("{pad}when: {when}{newline}"));
            }
            block.push_str(&format!("{pad}decide: {decide}{newline}"));
            block
        };
        let mut at = dash_line;
        while at > 0 {
            let above = text.line_start(at - 1);
            let line = source[above..at].trim_end_matches(['\n', '\r']);
            let comment = line.trim_start();
            if !comment.starts_with('#') || line.len() - comment.len() < indent.len() {
                break;
            }
            at = above;
        }
        apply(source, vec![(at, at, block)])?
    };
    let policy = Policy::parse(&draft).map_err(DraftError::Invalid)?;
    let rules = policy.rules();
    let position = rules.iter().position(|r| r.name == before);
    let inserted = position.and_then(|p| p.checked_sub(1)).map(|p| &rules[p]);
    let expected = RuleAction::Decide(new_rule.decide);
    if !inserted.is_some_and(|r| r.name == new_rule.name && r.when == new_rule.when && r.action == expected) {
        return Err(DraftError::Refused(format!("the new rule would not come just before `{before}`")));
    }
    Ok(draft)
}

/// `base` if no rule has that name, else `base-2`, `base-3`, ...
pub fn unused_rule_name(policy: &Policy, base: &str) -> String {
    let taken = |name: &str| policy.rules().iter().any(|r| r.name == name);
    if !taken(base) {
        return base.to_string();
    }
    (2..).map(|n| format!("{base}-{n}")).find(|name| !taken(name)).expect("some suffix is free")
}

/// The parsed source with the `rules` list and the rule an edit is about.
struct Located<'s> {
    source: &'s str,
    rules: Node,
    item: Node,
}

impl<'s> Located<'s> {
    fn find(source: &'s str, rule: &str) -> Result<Located<'s>, DraftError> {
        let unknown = || DraftError::UnknownRule(rule.to_string());
        let root = match yaml::parse(source) {
            Ok(Some(root)) => root,
            Ok(None) => return Err(unknown()),
            Err(e) => return Err(DraftError::Refused(format!("the policy is not valid YAML: {}", e.message))),
        };
        let Kind::Map(top) = root.kind else { return Err(unknown()) };
        let Some((_, rules)) = top.into_iter().find(|(k, _)| k.key_text() == Some("rules")) else {
            return Err(unknown());
        };
        let Kind::Seq(items) = &rules.kind else { return Err(unknown()) };
        let named = |item: &Node| match &item.kind {
            Kind::Map(entries) => entries
                .iter()
                .any(|(k, v)| k.key_text() == Some("name") && matches!(&v.kind, Kind::Scalar(text, _) if text == rule)),
            _ => false,
        };
        let mut matching = items.iter().filter(|item| named(item));
        let item = matching.next().ok_or_else(unknown)?.clone();
        if matching.next().is_some() {
            return Err(DraftError::Refused(format!("two rules are named `{rule}`")));
        }
        Ok(Located { source, rules, item })
    }

    fn char_at(&self, index: usize) -> Option<char> {
        self.source.chars().nth(index)
    }

    /// The rule's entries, refused unless each lies inside the rule's own text (an alias's would not).
    fn rule_entries(&self) -> Result<&[(Node, Node)], DraftError> {
        let Kind::Map(entries) = &self.item.kind else {
            return Err(DraftError::Refused("the rule is not a mapping".into()));
        };
        let inside = |node: &Node| node.start >= self.item.start && node.end <= self.item.end;
        if self.item.end <= self.item.start || !entries.iter().all(|(k, v)| inside(k) && inside(v)) {
            return Err(DraftError::Refused("the rule is written through a YAML alias".into()));
        }
        Ok(entries)
    }
}

fn key_text(node: &Node) -> &str {
    node.key_text().unwrap_or("?")
}

/// Byte offsets of character indices, and lines around them.
struct Text<'s> {
    source: &'s str,
    bytes: Vec<usize>,
}

impl<'s> Text<'s> {
    fn new(source: &'s str) -> Text<'s> {
        let mut bytes: Vec<usize> = source.char_indices().map(|(b, _)| b).collect();
        bytes.push(source.len());
        Text { source, bytes }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.bytes.get(char_index).copied().unwrap_or(self.source.len())
    }

    fn line_start(&self, byte: usize) -> usize {
        self.source[..byte].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Just after the line break ending the line `byte` is on (or the end of the source).
    fn line_end(&self, byte: usize) -> usize {
        self.source[byte..].find('\n').map_or(self.source.len(), |i| byte + i + 1)
    }

    /// Just after the last character before `byte` that is not white space (a block scalar's span runs on to the
    /// next line).
    fn content_end(&self, byte: usize) -> usize {
        self.source[..byte].trim_end().len()
    }
}

/// Applies non-overlapping `(start, end, replacement)` byte edits.
fn apply(source: &str, mut edits: Vec<(usize, usize, String)>) -> Result<String, DraftError> {
    edits.sort_by_key(|(start, end, _)| (*start, *end));
    if edits.windows(2).any(|pair| pair[0].1 > pair[1].0) {
        return Err(DraftError::Refused("the rule's fields overlap in the source".into()));
    }
    let mut out = source.to_string();
    for (start, end, replacement) in edits.into_iter().rev() {
        out.replace_range(start..end, &replacement);
    }
    Ok(out)
}

/// A YAML double-quoted scalar; refused for control characters other than line breaks and tabs.
fn quoted(text: &str) -> Result<String, DraftError> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                return Err(DraftError::Refused("a condition with control characters".into()));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_diff::unified;

    const BLOCK: &str = "version: 1
approvers:
  - { id: dana, email: dana@example.com, groups: [finance, cfo] }
groups:
  finance: { notify: [email] }   # the finance team
  cfo: { notify: [email] }
defaults: { route: finance }
rules:
  # Small refunds: always approved unchanged so far.
  - name: refund-small
    description: refunds under 100
    when: action == \"refund\" && args.amount < 100   # in dollars
    route: finance
    escalate:
      - { after: 1h, to: cfo }   # nobody waits long
    timeout: 2h

  - name: wire
    when: |
      action == \"wire\"
    route: finance
    reject_reasons: [wrong_account, other]
";

    fn approvers_and_groups() -> &'static str {
        "version: 1\napprovers:\n  - { id: dana, email: dana@example.com, groups: [finance, cfo] }\n\
         groups:\n  finance: { notify: [email] }\n  cfo: { notify: [email] }\n"
    }

    #[test]
    fn approving_a_block_rule_replaces_its_action_and_options_and_keeps_everything_else() {
        let draft = approve_rule(BLOCK, "refund-small").unwrap();
        assert_eq!(
            unified(BLOCK, &draft),
            " … 9 unchanged lines\n   - name: refund-small\n     description: refunds \
             under 100\n     when: action == \"refund\" && args.amount < 100   # in dollars\n-    route: finance\n-    \
             escalate:\n-      - { after: 1h, to: cfo }   # nobody waits long\n-    timeout: 2h\n+    decide: \
             approve\n \n   - name: wire\n     when: |\n … 3 unchanged lines\n"
        );
        let policy = Policy::parse(&draft).unwrap();
        assert_eq!(policy.rules()[0].action, RuleAction::Decide(Decision::Approve));
        assert!(matches!(policy.rules()[1].action, RuleAction::Route(_)), "the other rule is untouched");

        let draft = approve_rule(BLOCK, "wire").unwrap();
        assert_eq!(
            draft,
            BLOCK.replace("    route: finance\n    reject_reasons: [wrong_account, other]\n", "    decide: approve\n")
        );
    }

    #[test]
    fn approving_a_flow_rule_edits_inside_its_braces() {
        let source = approvers_and_groups().to_string()
            + "rules:\n  - { name: a, when: 'action == \"a\"', route: finance, # the old way\n      timeout: 2h, \
               approvals: 1 }\n  - { route: cfo, name: b }\n";
        let draft = approve_rule(&source, "a").unwrap();
        assert!(
            draft.ends_with("  - { name: a, when: 'action == \"a\"', decide: approve }\n  - { route: cfo, name: b }\n"),
            "{draft}"
        );
        let draft = approve_rule(&source, "b").unwrap();
        assert!(draft.ends_with("  - { decide: approve, name: b }\n"), "{draft}");
    }

    #[test]
    fn a_rule_with_its_action_on_the_dash_line_keeps_the_dash() {
        let source = format!("{}rules:\n  - route: finance\n    name: a\n    timeout: 1h\n", approvers_and_groups());
        let draft = approve_rule(&source, "a").unwrap();
        assert!(draft.ends_with("rules:\n  - decide: approve\n    name: a\n"), "{draft}");
        let source = format!("{}rules:\n  - timeout: 1h\n    name: a\n    route: finance\n", approvers_and_groups());
        assert!(approve_rule(&source, "a").unwrap().ends_with("rules:\n  - decide: approve\n    name: a\n"));
    }

    #[test]
    fn inserting_before_a_block_rule_goes_above_its_comment_in_its_style() {
        let rule = NewRule {
            name: "refund-small-confident".into(),
            when: Some("(action == \"refund\" && args.amount < 100) && confidence != null && confidence >= 0.9".into()),
            decide: Decision::Approve,
        };
        let draft = insert_rule_before(BLOCK, "refund-small", &rule).unwrap();
        assert_eq!(
            unified(BLOCK, &draft),
            " … 5 unchanged lines\n   cfo: { notify: [email] }\n defaults: { route: finance }\n rules:\n+  - name: \
             \"refund-small-confident\"\n+    when: \"(action == \\\"refund\\\" && args.amount < 100) && confidence != \
             null && confidence >= 0.9\"\n+    decide: approve\n   # Small refunds: always approved unchanged so \
             far.\n   - name: refund-small\n     description: refunds under 100\n … 11 unchanged lines\n"
        );
        let policy = Policy::parse(&draft).unwrap();
        assert_eq!(policy.rules().len(), 3);

        let wire = NewRule {
            name: "wire-auto".into(),
            when: Some("action == \"wire\"\n && mode == \"pre\"".into()),
            decide: Decision::Approve,
        };
        let draft = insert_rule_before(BLOCK, "wire", &wire).unwrap();
        assert!(draft.contains("    timeout: 2h\n\n  - name: \"wire-auto\"\n    when: \"action == \\\"wire\\\"\\n && mode == \\\"pre\\\"\"\n    decide: approve\n  - name: wire\n"), "{draft}");
    }

    #[test]
    fn inserting_into_flow_rules() {
        let rule = NewRule { name: "x".into(), when: Some("\"vip\" in tags".into()), decide: Decision::Approve };
        let source = approvers_and_groups().to_string() + "rules:\n  - { name: a, route: finance }\n";
        let draft = insert_rule_before(&source, "a", &rule).unwrap();
        assert!(
            draft.ends_with(
                "rules:\n  - { name: \"x\", when: \"\\\"vip\\\" in tags\", decide: approve }\n  - { name: a, route: finance }\n"
            ),
            "{draft}"
        );
        let source = format!(
            "{}rules: [{{ name: a, when: \"mode == 'post'\", route: finance }}, {{ name: b, route: cfo }}]\n",
            approvers_and_groups()
        );
        let draft = insert_rule_before(&source, "b", &rule).unwrap();
        assert!(
            draft.ends_with(
                "rules: [{ name: a, when: \"mode == 'post'\", route: finance }, { name: \"x\", when: \"\\\"vip\\\" in \
                 tags\", decide: approve }, { name: b, route: cfo }]\n"
            ),
            "{draft}"
        );
    }

    #[test]
    fn crlf_sources_stay_crlf() {
        let source = BLOCK.replace('\n', "\r\n");
        let draft = approve_rule(&source, "wire").unwrap();
        assert!(draft.contains("    route: finance\r\n    escalate:") && draft.ends_with("    decide: approve\r\n"));
        let rule = NewRule { name: "x".into(), when: Some("\"vip\" in tags".into()), decide: Decision::Deny };
        let draft = insert_rule_before(&source, "wire", &rule).unwrap();
        assert!(
            draft.contains(
                "\r\n  - name: \"x\"\r\n    when: \"\\\"vip\\\" in tags\"\r\n    decide: deny\r\n  - name: wire\r\n"
            ),
            "{draft}"
        );
        assert!(!draft.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn refusals() {
        assert_eq!(approve_rule(BLOCK, "nope"), Err(DraftError::UnknownRule("nope".into())));
        let approved =
            BLOCK.replace("    route: finance\n    reject_reasons: [wrong_account, other]\n", "    decide: approve\n");
        assert!(
            matches!(approve_rule(&approved, "wire"), Err(DraftError::Refused(why)) if why.contains("already approves"))
        );

        let aliased = format!("{}rules:\n  - &r {{ name: a, route: finance }}\n  - *r\n", approvers_and_groups());
        assert!(matches!(approve_rule(&aliased, "a"), Err(DraftError::Refused(why)) if why.contains("two rules")));
        let shared_steps = format!(
            "{}rules:\n  - name: a\n    when: action == \"a\"\n    route: finance\n    escalate: &e [{{ after: 1h, to: cfo \
             }}]\n  - name: b\n    route: finance\n    escalate: *e\n",
            approvers_and_groups()
        );
        assert!(approve_rule(&shared_steps, "b").unwrap().ends_with("  - name: b\n    decide: approve\n"));

        let taken = NewRule { name: "wire".into(), when: None, decide: Decision::Approve };
        assert!(matches!(insert_rule_before(BLOCK, "refund-small", &taken), Err(DraftError::Invalid(_))));
        let control = NewRule { name: "x".into(), when: Some("a\u{7}".into()), decide: Decision::Approve };
        assert!(matches!(insert_rule_before(BLOCK, "wire", &control), Err(DraftError::Refused(_))));
        assert!(matches!(approve_rule("version: [", "a"), Err(DraftError::Refused(_))));
    }

    #[test]
    fn unused_names_get_a_suffix() {
        let policy = Policy::parse(BLOCK).unwrap();
        assert_eq!(unused_rule_name(&policy, "refund-small-auto"), "refund-small-auto");
        assert_eq!(unused_rule_name(&policy, "wire"), "wire-2");
    }
}
