//! The condition variables of one request as CEL values: each built on its first lookup, once per request, straight
//! from the request's data (strings borrowed, not copied), and shared by every rule evaluated for it.
//!
//! When no condition of the policy uses `args` (or `context`) other than to select a field of it (`args.amount`,
//! `has(args.amount)`), only the fields selected are converted: a selection finds the same value, or the same
//! missing key, in that map as in the whole one, and nothing else can see the map.

use std::collections::HashMap;
use std::sync::OnceLock;

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use crate::eval::EvalInput;
use crate::model::Rule;

type Boxed<'a> = Box<dyn Val + 'a>;

/// What the policy's conditions read of `args` and `context`.
#[derive(Debug, PartialEq)]
pub(crate) struct Needs {
    args: Option<Box<[String]>>,
    context: Option<Box<[String]>>,
}

impl Needs {
    pub(crate) fn of(rules: &[Rule]) -> Self {
        let exprs: Vec<&IdedExpr> = rules.iter().filter_map(|r| r.program.as_ref()).map(|p| p.expression()).collect();
        Needs { args: selected_fields(&exprs, "args"), context: selected_fields(&exprs, "context") }
    }
}

/// The fields of `var` that `exprs` select, sorted; `None` if any of them uses `var` otherwise (whole).
fn selected_fields(exprs: &[&IdedExpr], var: &str) -> Option<Box<[String]>> {
    let mut fields = Vec::new();
    for e in exprs {
        if !only_selects(e, var, &mut fields) {
            return None;
        }
    }
    fields.sort();
    fields.dedup();
    Some(fields.into_boxed_slice())
}

fn is_var(expr: &IdedExpr, var: &str) -> bool {
    matches!(&expr.expr, Expr::Ident(name) if name.trim_start_matches('.') == var)
}

/// Whether every use of the name `var` in `expr` (shadowed or not) is the operand of a field selection, collecting
/// the fields.
fn only_selects(expr: &IdedExpr, var: &str, fields: &mut Vec<String>) -> bool {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => true,
        Expr::Ident(_) => !is_var(expr, var),
        Expr::Select(s) if is_var(&s.operand, var) => {
            fields.push(s.field.clone());
            true
        }
        Expr::Select(s) => only_selects(&s.operand, var, fields),
        Expr::Call(c) => {
            c.target.as_deref().is_none_or(|t| only_selects(t, var, fields))
                && c.args.iter().all(|a| only_selects(a, var, fields))
        }
        Expr::Comprehension(c) => [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
            .into_iter()
            .all(|e| only_selects(e, var, fields)),
        Expr::List(l) => l.elements.iter().all(|e| only_selects(e, var, fields)),
        Expr::Map(m) => m.entries.iter().all(|e| entry_only_selects(&e.expr, var, fields)),
        Expr::Struct(s) => s.entries.iter().all(|e| entry_only_selects(&e.expr, var, fields)),
    }
}

fn entry_only_selects(entry: &EntryExpr, var: &str, fields: &mut Vec<String>) -> bool {
    match entry {
        EntryExpr::MapEntry(e) => only_selects(&e.key, var, fields) && only_selects(&e.value, var, fields),
        EntryExpr::StructField(f) => only_selects(&f.value, var, fields),
    }
}

/// Resolves the policy variables ([`crate::CONDITION_VARIABLES`]) of `input`; any other name is left to the context.
pub(crate) struct Bindings<'a> {
    input: EvalInput<'a>,
    needs: &'a Needs,
    cells: [OnceLock<Boxed<'a>>; 8],
}

impl<'a> Bindings<'a> {
    pub(crate) fn new(input: &EvalInput<'a>, needs: &'a Needs) -> Self {
        Bindings { input: *input, needs, cells: Default::default() }
    }

    fn build(&self, slot: usize) -> Boxed<'a> {
        let input = &self.input;
        match slot {
            0 => Box::new(CelString::from(input.action)),
            1 => fields_to_val(input.args, self.needs.args.as_deref()),
            2 => fields_to_val(input.context, self.needs.context.as_deref()),
            3 => input.confidence.map_or(Box::new(CelNull), |c| Box::new(CelDouble::from(c))),
            4 => Box::new(CelList::from(
                input.tags.iter().map(|t| Box::new(CelString::from(t.as_str())) as Boxed<'a>).collect::<Vec<_>>(),
            )),
            5 => Box::new(CelString::from(input.mode.as_str())),
            6 => Box::new(CelString::from(input.agent)),
            _ => input.run_id.map_or(Box::new(CelNull), |r| Box::new(CelString::from(r))),
        }
    }
}

impl VariableResolver for Bindings<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let slot = match variable {
            "action" => 0,
            "args" => 1,
            "context" => 2,
            "confidence" => 3,
            "tags" => 4,
            "mode" => 5,
            "agent" => 6,
            "run_id" => 7,
            _ => return None,
        };
        Some(CowVal::Borrowed(self.cells[slot].get_or_init(|| self.build(slot)).as_ref()))
    }
}

/// `v` as a CEL value; of an object, only `fields` (when given).
fn fields_to_val<'a>(v: &'a serde_json::Value, fields: Option<&[String]>) -> Boxed<'a> {
    match (v, fields) {
        (serde_json::Value::Object(map), Some(fields)) => {
            let mut m = HashMap::with_capacity(fields.len());
            for (k, v) in fields.iter().filter_map(|f| map.get_key_value(f.as_str())) {
                m.insert(CelMapKey::from(k.as_str()), json_to_val(v));
            }
            Box::new(CelMap::from(m))
        }
        _ => json_to_val(v),
    }
}

/// JSON as a CEL value: integers stay `int` (or `uint` above `i64::MAX`), other numbers become `double`.
fn json_to_val(v: &serde_json::Value) -> Boxed<'_> {
    match v {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        serde_json::Value::String(s) => Box::new(CelString::from(s.as_str())),
        serde_json::Value::Array(items) => Box::new(CelList::from(items.iter().map(json_to_val).collect::<Vec<_>>())),
        serde_json::Value::Object(map) => {
            let mut m = HashMap::with_capacity(map.len());
            for (k, v) in map {
                m.insert(CelMapKey::from(k.as_str()), json_to_val(v));
            }
            Box::new(CelMap::from(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::selected_fields;

    fn fields(conditions: &[&str], var: &str) -> Option<Vec<String>> {
        let env = cel::Env::stdlib();
        let programs: Vec<cel::Program> = conditions.iter().map(|c| env.compile(c).expect("compiles")).collect();
        let exprs: Vec<&cel::IdedExpr> = programs.iter().map(|p| p.expression()).collect();
        selected_fields(&exprs, var).map(Vec::from)
    }

    fn strings(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn field_selections_only_keep_their_fields() {
        assert_eq!(fields(&["args.b > 1 && has(args.a)", "args.b.c == 2"], "args"), strings(&["a", "b"]));
        assert_eq!(fields(&["tags.exists(t, args[t] == context.region)"], "context"), strings(&["region"]));
        assert_eq!(fields(&["action == \"a\""], "args"), strings(&[]));
    }

    #[test]
    fn any_other_use_keeps_the_whole_value() {
        for condition in [
            "size(args) > 1",
            "\"a\" in args",
            "args == {}",
            "args.all(k, k != \"\")",
            "args[\"a\"] == 1",
            "args.?a == optional.none()",
            "args.size() > 0",
            "[1].exists(args, args == 1)",
            "type(args) == map",
            "{\"k\": args}.k.a == 1",
        ] {
            assert_eq!(fields(&["args.a == 1", condition], "args"), None, "{condition}");
        }
    }
}
