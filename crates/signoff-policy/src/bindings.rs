//! The condition variables of one request as CEL values: each built on its first lookup, once per request, straight
//! from the request's data (strings borrowed, not copied), and shared by every rule evaluated for it.

use std::collections::HashMap;
use std::sync::OnceLock;

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use crate::eval::EvalInput;

type Boxed<'a> = Box<dyn Val + 'a>;

/// Resolves the policy variables ([`crate::CONDITION_VARIABLES`]) of `input`; any other name is left to the context.
pub(crate) struct Bindings<'a> {
    input: EvalInput<'a>,
    cells: [OnceLock<Boxed<'a>>; 8],
}

impl<'a> Bindings<'a> {
    pub(crate) fn new(input: &EvalInput<'a>) -> Self {
        Bindings { input: *input, cells: Default::default() }
    }

    fn build(&self, slot: usize) -> Boxed<'a> {
        let input = &self.input;
        match slot {
            0 => Box::new(CelString::from(input.action)),
            1 => json_to_val(input.args),
            2 => json_to_val(input.context),
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
