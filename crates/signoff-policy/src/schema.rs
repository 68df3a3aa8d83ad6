//! Per-action argument schemas (`actions: { NAME: { args: SCHEMA } }`): a small, exact subset of JSON Schema.
//!
//! Supported keywords: `type` (`object`, `array`, `string`, `number`, `integer`, `boolean`, `null`, or a list
//! of them), `required`, `properties`, `additionalProperties` (a boolean), `enum`, `minimum` / `maximum`
//! (inclusive), `minLength` / `maxLength` (in characters), `pattern` (a `regex` crate expression, unanchored,
//! compiled when the policy is parsed), `items`, and `description` (ignored). Any other keyword is a policy
//! error. As in JSON Schema, a keyword only constrains values of the type it is about (`minimum` ignores
//! strings, `required` ignores arrays, ...), and `integer` accepts any number without a fractional part.

use std::fmt;

use regex::Regex;
use saphyr_parser::ScalarStyle;
use serde_json::Value;

use crate::parse::{Cx, boolean, fields_of, integer, number, seq, string};
use crate::yaml::{Kind, Node, is_null};

/// The keywords a schema may use.
const KEYWORDS: [&str; 12] = [
    "type",
    "required",
    "properties",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "items",
    "description",
];

/// One way a request's `args` do not fit its action's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgProblem {
    /// Where, as a JSON path: `$` (the args themselves), `$.amount`, `$.items[2].sku`, `$["odd key"]`.
    pub path: String,
    /// What is wrong, e.g. `expected number, found string`.
    pub message: String,
}

impl fmt::Display for ArgProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A JSON type a schema's `type` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Object,
    Array,
    String,
    Number,
    Integer,
    Boolean,
    Null,
}

impl JsonType {
    const ALL: [JsonType; 7] = [
        JsonType::Object,
        JsonType::Array,
        JsonType::String,
        JsonType::Number,
        JsonType::Integer,
        JsonType::Boolean,
        JsonType::Null,
    ];

    fn as_str(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Null => "null",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            JsonType::Object => value.is_object(),
            JsonType::Array => value.is_array(),
            JsonType::String => value.is_string(),
            JsonType::Number => value.is_number(),
            JsonType::Integer => is_integer(value),
            JsonType::Boolean => value.is_boolean(),
            JsonType::Null => value.is_null(),
        }
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// The type of a value, as problems name it (`integer` for whole numbers).
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A compiled schema. Every keyword is optional; an empty schema accepts anything.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schema {
    types: Vec<JsonType>,
    required: Vec<String>,
    /// In document order.
    pub(crate) properties: Vec<(String, Schema)>,
    additional_properties: Option<bool>,
    enumeration: Option<Vec<Value>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<Regex>,
    items: Option<Box<Schema>>,
}

impl Schema {
    /// Whether the schema declares `name` under `properties`.
    pub(crate) fn declares(&self, name: &str) -> bool {
        self.properties.iter().any(|(p, _)| p == name)
    }

    /// Checks `value` at `path`, appending every problem found.
    pub(crate) fn check(&self, value: &Value, path: &str, out: &mut Vec<ArgProblem>) {
        let mut problem = |path: &str, message: String| out.push(ArgProblem { path: path.to_string(), message });
        if !self.types.is_empty() && !self.types.iter().any(|t| t.matches(value)) {
            let wanted = self.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" or ");
            problem(path, format!("expected {wanted}, found {}", type_name(value)));
        }
        if let Some(allowed) = &self.enumeration
            && !allowed.iter().any(|a| json_eq(a, value))
        {
            let list = allowed.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
            problem(path, format!("must be one of {list}"));
        }
        match value {
            Value::Number(n) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = self.minimum
                    && v < min
                {
                    problem(path, format!("must be at least {min}, found {n}"));
                }
                if let Some(max) = self.maximum
                    && v > max
                {
                    problem(path, format!("must be at most {max}, found {n}"));
                }
            }
            Value::String(s) => {
                let chars = s.chars().count();
                if let Some(min) = self.min_length
                    && chars < min
                {
                    problem(path, format!("must be at least {min} characters long, found {chars}"));
                }
                if let Some(max) = self.max_length
                    && chars > max
                {
                    problem(path, format!("must be at most {max} characters long, found {chars}"));
                }
                if let Some(re) = &self.pattern
                    && !re.is_match(s)
                {
                    problem(path, format!("must match the pattern `{}`", re.as_str()));
                }
            }
            Value::Array(items) => {
                if let Some(schema) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        schema.check(item, &format!("{path}[{i}]"), out);
                    }
                }
            }
            Value::Object(map) => {
                for name in &self.required {
                    if !map.contains_key(name) {
                        out.push(ArgProblem { path: child_path(path, name), message: "is required".into() });
                    }
                }
                for (name, schema) in &self.properties {
                    if let Some(v) = map.get(name) {
                        schema.check(v, &child_path(path, name), out);
                    }
                }
                if self.additional_properties == Some(false) {
                    for name in map.keys().filter(|k| !self.declares(k)) {
                        out.push(ArgProblem {
                            path: child_path(path, name),
                            message: "is not allowed (the schema sets `additionalProperties: false`)".into(),
                        });
                    }
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

/// `$.name` for identifier-like names, `$["odd name"]` (JSON-quoted) otherwise.
fn child_path(path: &str, name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { format!("{path}.{name}") } else { format!("{path}[{}]", Value::String(name.to_string())) }
}

/// JSON equality as JSON Schema defines it: numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The JSON value a YAML node denotes (for `enum`): plain scalars are null, booleans or numbers
/// when they read as such, quoted scalars are always strings.
fn to_json(node: &Node) -> Value {
    match &node.kind {
        Kind::Scalar(text, ScalarStyle::Plain) => {
            if is_null(text) {
                Value::Null
            } else if let Ok(b) = text.parse::<bool>() {
                Value::Bool(b)
            } else if let Ok(i) = text.parse::<i64>() {
                Value::from(i)
            } else if let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(text.clone())
            }
        }
        Kind::Scalar(text, _) => Value::String(text.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => {
            Value::Object(entries.iter().filter_map(|(k, v)| Some((k.key_text()?.to_string(), to_json(v)))).collect())
        }
    }
}

/// Decodes and validates a schema node; `what` names it in errors (e.g. ``action `expense`: args``).
/// Returns `None` when it has a problem (already reported).
pub(crate) fn parse_schema(cx: &mut Cx, node: &Node, what: &str) -> Option<Schema> {
    let errors_before = cx.errors.len();
    let f = fields_of(cx, node, what, &KEYWORDS, "keyword")?;
    let mut schema = Schema::default();
    if let Some(n) = f.get("type") {
        let list: Vec<&Node> = match &n.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![n],
        };
        if list.is_empty() {
            cx.err(n.pos, format!("{what}: type: the list of types is empty"));
        }
        for item in list {
            // `null` is a type name here, not YAML's null.
            let name = match &item.kind {
                Kind::Scalar(text, _) if text == "null" => text.clone(),
                _ => match string(cx, item, &format!("{what}: type")) {
                    Some(name) => name,
                    None => continue,
                },
            };
            match JsonType::ALL.into_iter().find(|t| t.as_str() == name) {
                Some(t) if schema.types.contains(&t) => {
                    cx.err(item.pos, format!("{what}: type `{name}` is listed twice"))
                }
                Some(t) => schema.types.push(t),
                None => {
                    let names = JsonType::ALL.map(JsonType::as_str);
                    cx.err(item.pos, format!("{what}: unknown type `{name}`; expected one of {}", names.join(", ")))
                }
            }
        }
    }
    if let Some(n) = f.get("required") {
        for item in seq(cx, n, &format!("{what}: required")) {
            let Some(name) = string(cx, item, &format!("{what}: required")) else { continue };
            if schema.required.contains(&name) {
                cx.err(item.pos, format!("{what}: required field `{name}` is listed twice"));
            } else {
                schema.required.push(name);
            }
        }
    }
    if let Some(n) = f.get("properties") {
        match &n.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let Some(name) = string(cx, k, &format!("{what}: properties")) else { continue };
                    if schema.declares(&name) {
                        cx.err(k.pos, format!("{what}: property `{name}` is declared twice"));
                        continue;
                    }
                    if let Some(s) = parse_schema(cx, v, &format!("{what}.properties.{name}")) {
                        schema.properties.push((name, s));
                    }
                }
            }
            Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => {}
            _ => cx.err(n.pos, format!("{what}: properties: expected a mapping, found {}", n.describe())),
        }
    }
    if let Some(n) = f.get("additionalProperties") {
        schema.additional_properties = boolean(cx, n, &format!("{what}: additionalProperties"));
    }
    if let Some(n) = f.get("enum") {
        let items = seq(cx, n, &format!("{what}: enum"));
        if items.is_empty() {
            cx.err(n.pos, format!("{what}: enum: the list of allowed values is empty"));
        } else {
            schema.enumeration = Some(items.iter().map(to_json).collect());
        }
    }
    schema.minimum = f.get("minimum").and_then(|n| number(cx, n, &format!("{what}: minimum")));
    schema.maximum = f.get("maximum").and_then(|n| number(cx, n, &format!("{what}: maximum")));
    if let (Some(min), Some(max), Some(n)) = (schema.minimum, schema.maximum, f.get("maximum"))
        && min > max
    {
        cx.err(n.pos, format!("{what}: maximum {max} is less than minimum {min}"));
    }
    let length = |cx: &mut Cx, key: &str| {
        let n = f.get(key)?;
        let v = integer(cx, n, &format!("{what}: {key}"))?;
        match usize::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                cx.err(n.pos, format!("{what}: {key} must be zero or more, found {v}"));
                None
            }
        }
    };
    schema.min_length = length(cx, "minLength");
    schema.max_length = length(cx, "maxLength");
    if let (Some(min), Some(max), Some(n)) = (schema.min_length, schema.max_length, f.get("maxLength"))
        && min > max
    {
        cx.err(n.pos, format!("{what}: maxLength {max} is less than minLength {min}"));
    }
    if let Some(n) = f.get("pattern")
        && let Some(text) = string(cx, n, &format!("{what}: pattern"))
    {
        match Regex::new(&text) {
            Ok(re) => schema.pattern = Some(re),
            Err(e) => {
                let detail = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                cx.err(n.pos, format!("{what}: pattern `{text}` is not a valid regular expression: {detail}"));
            }
        }
    }
    if let Some(n) = f.get("items") {
        schema.items = parse_schema(cx, n, &format!("{what}.items")).map(Box::new);
    }
    if let Some(n) = f.get("description") {
        string(cx, n, &format!("{what}: description"));
    }
    (cx.errors.len() == errors_before).then_some(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_names_that_are_not_identifiers() {
        assert_eq!(child_path("$", "amount"), "$.amount");
        assert_eq!(child_path("$.items[2]", "sku_1"), "$.items[2].sku_1");
        assert_eq!(child_path("$", "odd key"), "$[\"odd key\"]");
        assert_eq!(child_path("$", "1st"), "$[\"1st\"]");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&serde_json::json!(1), &serde_json::json!(1.0)));
        assert!(!json_eq(&serde_json::json!(1), &serde_json::json!("1")));
        assert!(json_eq(&serde_json::json!({"a": [1]}), &serde_json::json!({"a": [1.0]})));
    }
}
