//! The audit examples in `docs/api.md` are checked against the code that hashes events, so they cannot drift.

use chrono::DateTime;
use serde_json::Value;
use sha2::{Digest, Sha256};
use signoff_domain::{Event, EventKind};

fn api_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The shell example `printf '%s\n%s' PREV_HASH 'CANONICAL_JSON' | sha256sum` and the hash it documents.
struct PrintfExample {
    prev_hash: String,
    canonical: String,
    hash: String,
}

fn printf_example(doc: &str) -> PrintfExample {
    let start = doc.find("printf '%s\\n%s'").expect("the printf example in docs/api.md");
    let mut lines = doc[start..].lines().skip(1).map(str::trim);
    let prev_hash = lines.next().expect("the previous hash").trim_end_matches('\\').trim().to_string();
    let canonical = lines.next().expect("the canonical JSON").trim_end_matches('\\').trim();
    let canonical = canonical.strip_prefix('\'').and_then(|c| c.strip_suffix('\'')).expect("the JSON in quotes");
    assert_eq!(lines.next(), Some("| sha256sum"));
    let hash = lines.next().and_then(|l| l.strip_prefix("# ")).and_then(|l| l.strip_suffix("  -")).expect("# HASH  -");
    PrintfExample { prev_hash, canonical: canonical.to_string(), hash: hash.to_string() }
}

#[test]
fn the_printf_example_hashes_what_compute_hash_hashes() {
    let example = printf_example(&api_md());
    let fields: Value = serde_json::from_str(&example.canonical).expect("the canonical JSON parses");
    let keys: Vec<&str> = fields.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["actor", "at_us", "data", "kind", "owner_key_id", "request_id", "seq"], "every hashed field");
    let event = Event {
        seq: fields["seq"].as_i64().unwrap(),
        request_id: fields["request_id"].as_str().map(|id| id.parse().unwrap()),
        kind: serde_json::from_value::<EventKind>(fields["kind"].clone()).unwrap(),
        actor: fields["actor"].as_str().unwrap().to_string(),
        data: fields["data"].clone(),
        owner_key_id: fields["owner_key_id"].as_str().map(String::from),
        at: DateTime::from_timestamp_micros(fields["at_us"].as_i64().unwrap()).unwrap(),
        prev_hash: example.prev_hash.clone(),
        hash: String::new(),
    };
    assert_eq!(event.compute_hash(), example.hash, "the documented hash is the event's");
    // What `sha256sum` hashes is the documented line, byte for byte: so it is the canonical JSON the code hashes.
    let printed = hex::encode(Sha256::digest(format!("{}\n{}", example.prev_hash, example.canonical)));
    assert_eq!(printed, example.hash, "the printf line prints the documented hash");
}

/// Every event shown in the document: JSON objects (alone or in a list) with `seq`, `prev_hash` and `hash`, in
/// ```json blocks or on an event stream's `data:` lines.
fn documented_events(doc: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut push = |value: Value| match value {
        Value::Array(items) => found.extend(items),
        other => found.push(other),
    };
    for block in doc.split("```json\n").skip(1) {
        if let Ok(value) = serde_json::from_str::<Value>(block.split("```").next().unwrap_or_default()) {
            push(value);
        }
    }
    for line in doc.lines() {
        if let Some(json) = line.strip_prefix("data: ") {
            push(serde_json::from_str(json).expect("an event stream data line is JSON"));
        }
    }
    found.retain(|value| ["seq", "prev_hash", "hash"].iter().all(|key| value.get(key).is_some()));
    found
}

#[test]
fn every_documented_event_matches_its_hash() {
    let events = documented_events(&api_md());
    assert!(events.len() >= 4, "the created, routed, decided and escalated examples: {events:?}");
    for value in events {
        let event: Event = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
        assert_eq!(event.compute_hash(), event.hash, "event {} in docs/api.md", event.seq);
        assert_eq!(serde_json::to_value(&event).unwrap(), value, "event {} has exactly the API's fields", event.seq);
    }
}
