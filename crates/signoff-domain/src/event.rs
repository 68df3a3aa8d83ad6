//! Audit events: every state change appends one, hash-chained to the one before.

use crate::request::RequestId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event in the log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Routed,
    Escalated,
    /// A reminder fell due: the group's members who have not approved are told again.
    Reminded,
    Decided,
    ApprovalRecorded,
    ApprovalsReset,
    Cancelled,
    OutcomeReported,
    /// A rejected or expired request was asked again by a later one (`revised_by`).
    Revised,
    /// A person confirmed a sampled review (`review`).
    Confirmed,
    /// A person flagged what the agent did (`review`): a sampled review, or a miss of the gate.
    Flagged,
    CallbackAttempted,
    NotificationAttempted,
    KeyCreated,
    KeyRevoked,
    PolicyApplied,
    /// A person approved a request together with similar ones for a while (a standing approval).
    GrantCreated,
    GrantRevoked,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Routed => "routed",
            EventKind::Escalated => "escalated",
            EventKind::Reminded => "reminded",
            EventKind::Decided => "decided",
            EventKind::ApprovalRecorded => "approval_recorded",
            EventKind::ApprovalsReset => "approvals_reset",
            EventKind::Cancelled => "cancelled",
            EventKind::OutcomeReported => "outcome_reported",
            EventKind::Revised => "revised",
            EventKind::Confirmed => "confirmed",
            EventKind::Flagged => "flagged",
            EventKind::CallbackAttempted => "callback_attempted",
            EventKind::NotificationAttempted => "notification_attempted",
            EventKind::KeyCreated => "key_created",
            EventKind::KeyRevoked => "key_revoked",
            EventKind::PolicyApplied => "policy_applied",
            EventKind::GrantCreated => "grant_created",
            EventKind::GrantRevoked => "grant_revoked",
        }
    }
}

/// An event about to be appended; the store gives it its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub request_id: Option<RequestId>,
    pub kind: EventKind,
    pub actor: String,
    pub data: Value,
}

impl NewEvent {
    pub fn new(request_id: Option<RequestId>, kind: EventKind, actor: impl Into<String>, data: Value) -> Self {
        NewEvent { request_id, kind, actor: actor.into(), data }
    }

    /// Seals the event at position `seq` after `prev_hash`; `owner_key_id` is the key whose request it is about
    /// (who may see it), part of the hash like everything else.
    pub fn seal(self, seq: i64, at: DateTime<Utc>, prev_hash: String, owner_key_id: Option<String>) -> Event {
        self.seal_encoded(seq, at, prev_hash, owner_key_id).0
    }

    /// [`seal`](Self::seal), also giving `data` as JSON text (what a store writes), serialised once for both.
    pub fn seal_encoded(
        self,
        seq: i64,
        at: DateTime<Utc>,
        prev_hash: String,
        owner_key_id: Option<String>,
    ) -> (Event, String) {
        let data_json = self.data.to_string();
        let mut event = Event {
            seq,
            request_id: self.request_id,
            kind: self.kind,
            actor: self.actor,
            data: self.data,
            owner_key_id,
            at,
            prev_hash,
            hash: String::new(),
        };
        event.hash = event.hash_with_data(&data_json);
        (event, data_json)
    }
}

/// An event's canonical JSON (sorted keys, compact) up to its last member, `"seq"`: the text before
/// `,"seq":{seq}}`. So the bytes an event hashes can be made before its place in the chain is known, and the
/// PostgreSQL store hashes them under the chain lock (`signoff_append_events`) with the `seq` it gives.
pub fn canonical_before_seq(
    request_id: Option<RequestId>,
    kind: EventKind,
    actor: &str,
    data: &Value,
    owner_key_id: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    let mut text = Vec::with_capacity(256);
    write_canonical_before_seq(&mut text, request_id, kind, actor, &data.to_string(), owner_key_id, at);
    String::from_utf8(text).expect("serde_json writes UTF-8")
}

/// Writes the canonical object `{"actor","at_us","data","kind","owner_key_id","request_id","seq"}` (keys sorted,
/// compact) up to `"seq"`, field by field around `data_json`.
fn write_canonical_before_seq(
    out: &mut Vec<u8>,
    request_id: Option<RequestId>,
    kind: EventKind,
    actor: &str,
    data_json: &str,
    owner_key_id: Option<&str>,
    at: DateTime<Utc>,
) {
    out.extend_from_slice(b"{\"actor\":");
    write_json(out, actor);
    out.extend_from_slice(b",\"at_us\":");
    out.extend_from_slice(at.timestamp_micros().to_string().as_bytes());
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data_json.as_bytes());
    out.extend_from_slice(b",\"kind\":");
    write_json(out, &kind);
    out.extend_from_slice(b",\"owner_key_id\":");
    write_json(out, &owner_key_id);
    out.extend_from_slice(b",\"request_id\":");
    write_json(out, &request_id);
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub request_id: Option<RequestId>,
    pub kind: EventKind,
    pub actor: String,
    pub data: Value,
    /// The key whose request this event is about: it decides who may see the event.
    #[serde(default)]
    pub owner_key_id: Option<String>,
    pub at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl Event {
    /// SHA-256 over the previous hash and this event's canonical bytes (JSON with sorted keys,
    /// time in whole microseconds so every backend stores it exactly).
    pub fn compute_hash(&self) -> String {
        self.hash_with_data(&self.data.to_string())
    }

    /// [`compute_hash`](Self::compute_hash) with `data` already serialised.
    fn hash_with_data(&self, data_json: &str) -> String {
        let mut canonical = Vec::with_capacity(data_json.len() + 256);
        write_canonical_before_seq(
            &mut canonical,
            self.request_id,
            self.kind,
            &self.actor,
            data_json,
            self.owner_key_id.as_deref(),
            self.at,
        );
        canonical.extend_from_slice(b",\"seq\":");
        canonical.extend_from_slice(self.seq.to_string().as_bytes());
        canonical.push(b'}');
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(
            b"
",
        );
        hasher.update(&canonical);
        hex::encode(hasher.finalize())
    }

    /// Whether the stored hash matches the content and follows `prev_hash`.
    pub fn verifies_after(&self, prev_hash: &str) -> bool {
        self.prev_hash == prev_hash && self.hash == self.compute_hash()
    }
}

/// Appends `value` as compact JSON.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings, ids and kinds always serialise");
}

/// Where a hash chain stops being whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {}: {}", self.seq, self.reason)
    }
}

/// Checks events in order: consecutive sequence numbers, each linked to the one before, each hash matching its
/// content. Feed it the whole log (from `GENESIS_HASH`) or an export's slice (from its first `prev_hash`).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: Option<(i64, String)>,
    checked: u64,
}

impl ChainVerifier {
    /// A verifier for a log that starts at the beginning.
    pub fn from_genesis() -> Self {
        ChainVerifier { prev: Some((0, GENESIS_HASH.to_string())), checked: 0 }
    }

    /// A verifier that trusts the first event's link (for a slice of the log).
    pub fn from_first() -> Self {
        ChainVerifier { prev: None, checked: 0 }
    }

    pub fn check(&mut self, event: &Event) -> Result<(), ChainBreak> {
        let broken = |reason: String| Err(ChainBreak { seq: event.seq, reason });
        if let Some((prev_seq, prev_hash)) = &self.prev {
            let Some(expected) = prev_seq.checked_add(1) else {
                return broken(format!("no event can follow event {prev_seq}, the largest sequence number"));
            };
            if event.seq != expected {
                return broken(format!("expected event {expected} next; an event is missing or out of order"));
            }
            if &event.prev_hash != prev_hash {
                return broken("its prev_hash does not match the hash of the event before it".into());
            }
        }
        if event.hash != event.compute_hash() {
            return broken("its content does not match its hash: the event was altered".into());
        }
        self.prev = Some((event.seq, event.hash.clone()));
        self.checked += 1;
        Ok(())
    }

    /// How many events have checked out so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The last good event's hash: the head of the chain.
    pub fn head(&self) -> Option<&str> {
        self.prev.as_ref().map(|(_, hash)| hash.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The canonical bytes as first defined: a JSON object of these keys, serialised with its keys sorted.
    fn hash_as_first_defined(event: &Event) -> String {
        let canonical = json!({
            "seq": event.seq,
            "request_id": event.request_id,
            "kind": event.kind,
            "actor": event.actor,
            "data": event.data,
            "owner_key_id": event.owner_key_id,
            "at_us": event.at.timestamp_micros(),
        });
        let mut hasher = Sha256::new();
        hasher.update(event.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }

    #[test]
    fn the_streamed_hash_equals_the_hash_as_first_defined() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z").unwrap().with_timezone(&Utc);
        let data = [
            json!({}),
            json!(null),
            json!({"z": 1, "a": [1.5, "two", {"y": null, "b": true}], "ünïcode": "\"quoted\"\n\u{1}"}),
            json!({"amount": 12_345_678_901_i64, "negative": -3, "float": 0.1}),
        ];
        for (index, data) in data.into_iter().enumerate() {
            for (request_id, owner) in [(None, None), (Some(RequestId::new()), Some("key_1".to_string()))] {
                let event = NewEvent::new(request_id, EventKind::Decided, "approver:ana \"x\"", data.clone()).seal(
                    index as i64 + 1,
                    at,
                    GENESIS_HASH.to_string(),
                    owner,
                );
                assert_eq!(event.hash, hash_as_first_defined(&event), "{event:?}");
            }
        }
    }
}
