//! How values read on a page: times (`<time>` in UTC, shown in the viewer's zone by the script), spans of time,
//! JSON, the key arguments of a request, and the difference between two sets of arguments.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A moment, for `<time datetime="{iso}" title="{utc}">{utc}</time>`.
pub struct Moment {
    pub iso: String,
    pub utc: String,
}

impl Moment {
    pub fn of(at: DateTime<Utc>) -> Moment {
        Moment {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// A span of time in its two largest units: `2d 3h`, `4h 10m`, `5m`, `under a minute`.
pub fn span(duration: chrono::Duration) -> String {
    let minutes = duration.num_minutes();
    let (days, hours, minutes) = (minutes / (24 * 60), minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "under a minute".into(),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// What is left before `deadline`: `3h 5m left`, or `overdue by 2m`.
pub fn time_left(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if deadline > now {
        format!("{} left", span(deadline - now))
    } else {
        format!("overdue by {}", span(now - deadline))
    }
}

/// Pretty JSON, for `<pre>` blocks and the edit form.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A JSON value as one short line: strings without quotes, everything else as JSON.
pub fn inline(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The arguments a queue row shows: the first few top-level ones with a scalar value, as `name: value`.
pub fn key_args(args: &Value) -> Vec<String> {
    let Value::Object(fields) = args else { return Vec::new() };
    fields
        .iter()
        .filter(|(_, value)| !value.is_object() && !value.is_array())
        .take(3)
        .map(|(name, value)| {
            let value: String = inline(value).chars().take(40).collect();
            format!("{name}: {value}")
        })
        .collect()
}

/// One argument as a table row: its path (`to.name`) and its value on one line.
pub struct Field {
    pub path: String,
    pub value: String,
}

/// Every leaf of `args` with its path, in document order (objects are walked; arrays and scalars are leaves).
pub fn fields(args: &Value) -> Vec<Field> {
    let mut out = Vec::new();
    walk(args, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<Field>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                walk(child, path, out);
            }
        }
        leaf => out.push(Field { path: if path.is_empty() { "(value)".into() } else { path }, value: inline(leaf) }),
    }
}

/// One difference between proposed and edited arguments.
#[derive(Debug, PartialEq)]
pub struct Change {
    pub path: String,
    /// `None`: the edit added the field.
    pub proposed: Option<String>,
    /// `None`: the edit removed the field.
    pub edited: Option<String>,
}

/// The fields that differ between `proposed` and `edited`, proposed order first, then fields only the edit has.
pub fn diff(proposed: &Value, edited: &Value) -> Vec<Change> {
    let (before, after) = (fields(proposed), fields(edited));
    let value_at = |list: &[Field], path: &str| list.iter().find(|f| f.path == path).map(|f| f.value.clone());
    let mut changes: Vec<Change> = before
        .iter()
        .filter_map(|field| {
            let edited = value_at(&after, &field.path);
            (edited.as_deref() != Some(field.value.as_str())).then(|| Change {
                path: field.path.clone(),
                proposed: Some(field.value.clone()),
                edited,
            })
        })
        .collect();
    changes.extend(after.iter().filter(|f| value_at(&before, &f.path).is_none()).map(|field| Change {
        path: field.path.clone(),
        proposed: None,
        edited: Some(field.value.clone()),
    }));
    changes
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_names_changed_added_and_removed_fields_by_path() {
        let proposed = json!({"amount": 120, "to": {"name": "Ann", "iban": "X1"}, "memo": "a"});
        let edited = json!({"amount": 100, "to": {"name": "Ann"}, "memo": "a", "note": "cap"});
        let change = |path: &str, proposed: Option<&str>, edited: Option<&str>| Change {
            path: path.into(),
            proposed: proposed.map(String::from),
            edited: edited.map(String::from),
        };
        assert_eq!(
            diff(&proposed, &edited),
            [
                change("amount", Some("120"), Some("100")),
                change("to.iban", Some("X1"), None),
                change("note", None, Some("cap")),
            ]
        );
        assert!(diff(&proposed, &proposed).is_empty());
    }

    #[test]
    fn spans_read_in_their_two_largest_units() {
        let minutes = chrono::Duration::minutes;
        assert_eq!(span(chrono::Duration::seconds(20)), "under a minute");
        assert_eq!(span(minutes(5)), "5m");
        assert_eq!(span(minutes(4 * 60 + 10)), "4h 10m");
        assert_eq!(span(minutes(2 * 24 * 60 + 3 * 60 + 7)), "2d 3h");
        let now = Utc::now();
        assert_eq!(time_left(now - minutes(2), now), "overdue by 2m");
        assert_eq!(key_args(&json!({"amount": 5, "to": {"x": 1}, "memo": "hi"})), ["amount: 5", "memo: hi"]);
    }
}
