//! Policy warnings: things that parse and run but are probably mistakes. Today one check: a
//! condition reads an `args` field that the action's `actions:` schema does not declare.
//!
//! A rule "is about" the actions its condition compares with `action == "NAME"` (either side,
//! anywhere in the condition). A field read is the first segment after `args`: `args.x`,
//! `has(args.x)` and `args["x"]`. When the rule names actions, each named action that has a
//! schema must declare the field; when it names none, some schema must declare it. Policies
//! without any `actions:` schema get no such warnings.

use std::collections::BTreeMap;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

use crate::error::PolicyWarning;
use crate::parse::{expr_pos, offset_to_line_col, suggest};
use crate::schema::Schema;
use crate::yaml::Node;

/// What a condition reads and compares, collected from its syntax tree.
#[derive(Default)]
struct Reads {
    /// `args` fields read, first occurrence only, with the id of the `args` identifier.
    fields: Vec<(String, u64)>,
    /// Actions named by `action == "NAME"`.
    actions: Vec<String>,
}

/// The warnings for one rule's condition `text` (the YAML value `node`), compiled as `program`.
pub(crate) fn rule_warnings(
    source: &str,
    label: &str,
    node: &Node,
    text: &str,
    program: &cel::Program,
    actions: &BTreeMap<String, Schema>,
) -> Vec<PolicyWarning> {
    if actions.is_empty() {
        return Vec::new();
    }
    let mut reads = Reads::default();
    walk(program.expression(), &mut Vec::new(), &mut reads);
    let named: Vec<(&str, &Schema)> =
        reads.actions.iter().filter_map(|a| actions.get_key_value(a)).map(|(a, s)| (a.as_str(), s)).collect();
    let mut warnings = Vec::new();
    for (field, id) in &reads.fields {
        let message = if reads.actions.is_empty() {
            if actions.values().any(|s| s.declares(field)) {
                continue;
            }
            format!("{label}: condition reads `args.{field}`, which no `actions:` schema declares")
        } else {
            let missing: Vec<&(&str, &Schema)> = named.iter().filter(|(_, s)| !s.declares(field)).collect();
            let Some((action, schema)) = missing.first() else { continue };
            let names: Vec<&str> = missing.iter().map(|(a, _)| *a).collect();
            let hint = suggest(field, schema.properties.iter().map(|(p, _)| p.as_str()))
                .map(|s| format!(" (did you mean `args.{s}`?)"))
                .unwrap_or_default();
            let whose = if names.len() == 1 {
                format!("the `actions:` schema of `{action}` does")
            } else {
                format!("the `actions:` schemas of `{}` do", names.join("`, `"))
            };
            format!("{label}: condition reads `args.{field}`{hint}, but {whose} not declare it")
        };
        let (line, col) = program
            .source_info()
            .offset_for(*id)
            .map(|(start, _)| offset_to_line_col(text, start as usize))
            .unwrap_or((1, 1));
        let (pos, suffix) = expr_pos(source, node, text, line, col);
        warnings.push(PolicyWarning { line: pos.line, column: pos.column, message: format!("{message}{suffix}") });
    }
    warnings
}

fn is_free_ident<'e>(expr: &'e IdedExpr, name: &str, bound: &[&'e str]) -> bool {
    matches!(&expr.expr, Expr::Ident(n) if n == name && !bound.contains(&name))
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

fn walk<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>, out: &mut Reads) {
    let mut read = |field: &str, id: u64| {
        if !out.fields.iter().any(|(f, _)| f == field) {
            out.fields.push((field.to_string(), id));
        }
    };
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
        Expr::Select(s) => {
            if is_free_ident(&s.operand, "args", bound) {
                read(&s.field, s.operand.id);
            }
            walk(&s.operand, bound, out);
        }
        Expr::Call(call) => {
            if let [a, b] = call.args.as_slice() {
                if call.func_name == "_[_]"
                    && is_free_ident(a, "args", bound)
                    && let Some(field) = string_literal(b)
                {
                    read(field, a.id);
                }
                if call.func_name == "_==_" {
                    let named = match (string_literal(a), string_literal(b)) {
                        (None, Some(name)) if is_free_ident(a, "action", bound) => Some(name),
                        (Some(name), None) if is_free_ident(b, "action", bound) => Some(name),
                        _ => None,
                    };
                    if let Some(name) = named
                        && !out.actions.iter().any(|n| n == name)
                    {
                        out.actions.push(name.to_string());
                    }
                }
            }
            if let Some(t) = &call.target {
                walk(t, bound, out);
            }
            for a in &call.args {
                walk(a, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound, out);
            walk(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                bound.push(v);
            }
            bound.push(&c.accu_var);
            walk(&c.loop_cond, bound, out);
            walk(&c.loop_step, bound, out);
            walk(&c.result, bound, out);
            bound.truncate(depth);
        }
        Expr::List(l) => {
            for e in &l.elements {
                walk(e, bound, out);
            }
        }
        Expr::Map(m) => {
            for e in &m.entries {
                if let EntryExpr::MapEntry(me) = &e.expr {
                    walk(&me.key, bound, out);
                    walk(&me.value, bound, out);
                }
            }
        }
        Expr::Struct(s) => {
            for e in &s.entries {
                if let EntryExpr::StructField(sf) = &e.expr {
                    walk(&sf.value, bound, out);
                }
            }
        }
    }
}
