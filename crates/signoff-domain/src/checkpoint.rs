//! Signed audit checkpoints: the head of the event chain, signed with Ed25519, to be kept outside the database.
//!
//! A [`SignedCheckpoint`] says "when this was signed, the log's event `seq` had hash `head_hash`". Each event's hash
//! covers the one before it, so that one hash pins down every event from genesis up to `seq`.
//! [`check_chain_against_checkpoints`] walks the whole chain and compares it with the checkpoints kept elsewhere.
//!
//! # What the checks prove
//!
//! - **Signature.** A checkpoint whose signature verifies was made by the holder of the signing key. With a trusted
//!   public key (configured out of band), it was made by *our* key; without one, the check only shows that the
//!   checkpoint is self-consistent, and whoever can rewrite the checkpoints can also sign new ones with a key of
//!   their own. Pass a trusted key whenever you have one.
//! - **Truncation.** A checkpoint at event `M` while the log ends at event `N < M` proves that events `N+1..=M`
//!   existed and are gone: the newest events were deleted.
//! - **Rewriting.** A checkpoint whose `head_hash` differs from the hash of the event at its `seq` proves that some
//!   event up to `seq` was changed, even if the whole chain after it was rehashed so that it is consistent again.
//! - **Chain.** The walk also runs a [`ChainVerifier`] from genesis, so an event altered without rehashing, a gap or
//!   a broken link is reported too.
//!
//! # What they cannot prove
//!
//! - Events after the last checkpoint are protected only by the chain itself: someone who can write the database
//!   can delete, change or rehash them without a trace until the next checkpoint is written.
//! - A checkpoint proves only what existed when it was signed. A log that was already rewritten before the
//!   checkpoint was taken checks out against it.
//! - Deleting a checkpoint goes unnoticed here: keep checkpoints where the database's writers cannot delete them
//!   (another system, append-only storage), and compare their count or latest `seq` with what you expect.
//! - Someone who holds the signing key can sign checkpoints for a rewritten chain. Keep the key away from the
//!   database and its writers.
//!
//! # Signed bytes
//!
//! The signature is Ed25519 (RFC 8032, verified strictly) over the UTF-8 bytes of
//! `signoff-checkpoint-v1\n{seq}\n{head_hash}\n{at_micros}`, where `seq` is decimal, `head_hash` the event's hex
//! hash as stored, and `at_micros` the signing time in whole microseconds since the Unix epoch, in decimal (see
//! [`SignedCheckpoint::signed_message`]). Keys, public keys and signatures travel as standard base64 with padding.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{ChainBreak, ChainVerifier, Event, GENESIS_HASH};

/// The first line of every signed message; a new format gets a new version.
pub const CHECKPOINT_CONTEXT: &str = "signoff-checkpoint-v1";

/// Why a checkpoint key or a checkpoint's signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint key seed must be 32 bytes in standard base64")]
    InvalidSeed,
    #[error("the public key must be a 32-byte Ed25519 key in standard base64")]
    InvalidPublicKey,
    #[error("the signature must be 64 bytes in standard base64")]
    InvalidSignatureEncoding,
    #[error("the key_id {key_id} does not belong to the checkpoint's public key (which has key_id {expected})")]
    KeyIdMismatch { key_id: String, expected: String },
    #[error("signed by key {key_id}, not by the trusted key {trusted_key_id}")]
    UntrustedKey { key_id: String, trusted_key_id: String },
    #[error("the signature does not match the checkpoint")]
    BadSignature,
}

impl CheckpointError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSeed => "invalid_checkpoint_seed",
            Self::InvalidPublicKey => "invalid_public_key",
            Self::InvalidSignatureEncoding => "invalid_signature_encoding",
            Self::KeyIdMismatch { .. } => "key_id_mismatch",
            Self::UntrustedKey { .. } => "untrusted_key",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// The Ed25519 key that signs checkpoints. Its `Debug` shows the key id, never the secret.
#[derive(Clone)]
pub struct CheckpointKey {
    signing: SigningKey,
}

impl CheckpointKey {
    /// A new random key, from the operating system's random source.
    pub fn generate() -> Self {
        Self { signing: SigningKey::generate(&mut rand_core::OsRng) }
    }

    /// A key from its 32-byte seed in standard base64 (surrounding whitespace is ignored).
    pub fn from_seed_base64(seed: &str) -> Result<Self, CheckpointError> {
        let bytes = BASE64.decode(seed.trim()).map_err(|_| CheckpointError::InvalidSeed)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| CheckpointError::InvalidSeed)?;
        Ok(Self { signing: SigningKey::from_bytes(&seed) })
    }

    /// The 32-byte seed in standard base64: the secret, to store where only the signer can read it.
    pub fn to_seed_base64(&self) -> String {
        BASE64.encode(self.signing.to_bytes())
    }

    /// The public key in standard base64, to configure as the trusted key of verifiers.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.signing.verifying_key().as_bytes())
    }

    /// A short stable id of the key: the first 16 hex characters of the SHA-256 of its 32 public key bytes.
    pub fn key_id(&self) -> String {
        key_id_of(&self.signing.verifying_key())
    }

    /// Signs "event `seq` had hash `head_hash` at `at`". `at` is kept in whole microseconds, as it is signed.
    pub fn sign(&self, seq: i64, head_hash: &str, at: DateTime<Utc>) -> SignedCheckpoint {
        let at = whole_micros(at);
        let signature = self.signing.sign(&SignedCheckpoint::signed_message(seq, head_hash, at));
        SignedCheckpoint {
            seq,
            head_hash: head_hash.to_owned(),
            at,
            key_id: self.key_id(),
            public_key: self.public_key_base64(),
            signature: BASE64.encode(signature.to_bytes()),
        }
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointKey").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

/// The first 16 hex characters of the SHA-256 of the 32 public key bytes.
fn key_id_of(public_key: &VerifyingKey) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    hex::encode(&digest[..8])
}

fn whole_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

fn decode_public_key(public_key: &str) -> Result<VerifyingKey, CheckpointError> {
    let bytes = BASE64.decode(public_key.trim()).map_err(|_| CheckpointError::InvalidPublicKey)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| CheckpointError::InvalidPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::InvalidPublicKey)
}

/// A checkpoint of the event chain with its Ed25519 signature. Its JSON form is what is kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The event the checkpoint anchors; 0 anchors the empty log (its head is [`GENESIS_HASH`]).
    pub seq: i64,
    /// That event's hash.
    pub head_hash: String,
    /// When the checkpoint was signed, in whole microseconds.
    pub at: DateTime<Utc>,
    /// The id of the signing key (see [`CheckpointKey::key_id`]).
    pub key_id: String,
    /// The signing key's public key, standard base64.
    pub public_key: String,
    /// The Ed25519 signature over [`SignedCheckpoint::signed_message`], standard base64.
    pub signature: String,
}

impl SignedCheckpoint {
    /// The bytes a checkpoint's signature covers: `signoff-checkpoint-v1\n{seq}\n{head_hash}\n{at_micros}`.
    pub fn signed_message(seq: i64, head_hash: &str, at: DateTime<Utc>) -> Vec<u8> {
        format!("{CHECKPOINT_CONTEXT}\n{seq}\n{head_hash}\n{}", at.timestamp_micros()).into_bytes()
    }

    /// Checks that the signature was made by the checkpoint's own public key and that `key_id` belongs to it. This
    /// shows the checkpoint is intact, not who made it: see [`Self::verify_signature_with`].
    pub fn verify_signature(&self) -> Result<(), CheckpointError> {
        let public_key = decode_public_key(&self.public_key)?;
        let expected = key_id_of(&public_key);
        if self.key_id != expected {
            return Err(CheckpointError::KeyIdMismatch { key_id: self.key_id.clone(), expected });
        }
        let bytes = BASE64.decode(self.signature.trim()).map_err(|_| CheckpointError::InvalidSignatureEncoding)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| CheckpointError::InvalidSignatureEncoding)?;
        public_key
            .verify_strict(&Self::signed_message(self.seq, &self.head_hash, self.at), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// Checks that the checkpoint was signed by the key whose public key is `trusted_public_key_base64`.
    pub fn verify_signature_with(&self, trusted_public_key_base64: &str) -> Result<(), CheckpointError> {
        let trusted = decode_public_key(trusted_public_key_base64)?;
        let own = decode_public_key(&self.public_key)?;
        if own != trusted {
            return Err(CheckpointError::UntrustedKey {
                key_id: self.key_id.clone(),
                trusted_key_id: key_id_of(&trusted),
            });
        }
        self.verify_signature()
    }
}

/// One thing wrong between the event chain and its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointProblem {
    /// The checkpoint's signature does not verify, or it is not by the trusted key: it proves nothing and is not
    /// compared with the chain.
    BadSignature { seq: i64, at: DateTime<Utc>, error: CheckpointError },
    /// The log ends before the checkpoint's event: its newest events were deleted.
    Truncated { checkpoint_seq: i64, at: DateTime<Utc>, last_seq: i64 },
    /// The log goes past the checkpoint's event but has no event with its `seq` (or the `seq` is negative).
    MissingEvent { seq: i64, at: DateTime<Utc> },
    /// The event at the checkpoint's `seq` has another hash: the chain up to it was rewritten.
    HeadMismatch { seq: i64, at: DateTime<Utc>, checkpoint_hash: String, event_hash: String },
    /// The chain itself is broken (the first break [`ChainVerifier`] finds).
    ChainBroken(ChainBreak),
}

impl CheckpointProblem {
    /// A stable snake_case code for the problem.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "checkpoint_bad_signature",
            Self::Truncated { .. } => "log_truncated",
            Self::MissingEvent { .. } => "checkpoint_event_missing",
            Self::HeadMismatch { .. } => "chain_rewritten",
            Self::ChainBroken(_) => "chain_broken",
        }
    }
}

impl fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature { seq, at, error } => {
                write!(f, "the checkpoint at event {seq} (signed {at}) does not verify: {error}")
            }
            Self::Truncated { checkpoint_seq, at, last_seq } => write!(
                f,
                "the log ends at event {last_seq} but a checkpoint at event {checkpoint_seq} (signed {at}) exists: \
                 events were deleted from its end"
            ),
            Self::MissingEvent { seq, at } => {
                write!(f, "the log has no event {seq}, yet a checkpoint at it (signed {at}) exists")
            }
            Self::HeadMismatch { seq, at, checkpoint_hash, event_hash } => write!(
                f,
                "event {seq} has hash {event_hash} but the checkpoint signed {at} recorded {checkpoint_hash}: the \
                 chain up to event {seq} was rewritten"
            ),
            Self::ChainBroken(chain_break) => write!(f, "the chain is broken at {chain_break}"),
        }
    }
}

/// What [`check_chain_against_checkpoints`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// How many checkpoints were examined (all that were given).
    pub checked: usize,
    /// The `seq` of the log's last event, 0 for an empty log.
    pub last_seq: i64,
    /// Everything wrong, the chain's break first, then the checkpoints' problems in the order they were given.
    pub problems: Vec<CheckpointProblem>,
}

impl CheckpointReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckpointReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checkpoints = if self.checked == 1 { "checkpoint" } else { "checkpoints" };
        write!(f, "{} {checkpoints} checked against a log ending at event {}", self.checked, self.last_seq)?;
        if self.ok() {
            return write!(f, ": ok");
        }
        for problem in &self.problems {
            write!(f, "\n- {problem}")?;
        }
        Ok(())
    }
}

/// Walks the whole chain (every event from genesis, in order) and compares it with `checkpoints`: each checkpoint's
/// signature (by `trusted_key`, a base64 public key, when given), whether its event still exists, and whether that
/// event's hash is the one signed. The chain itself is verified on the way. See the module docs for what this
/// proves and what it cannot.
pub fn check_chain_against_checkpoints(
    events: impl IntoIterator<Item = Event>,
    checkpoints: &[SignedCheckpoint],
    trusted_key: Option<&str>,
) -> CheckpointReport {
    let signatures: Vec<Result<(), CheckpointError>> = checkpoints
        .iter()
        .map(|checkpoint| match trusted_key {
            Some(trusted) => checkpoint.verify_signature_with(trusted),
            None => checkpoint.verify_signature(),
        })
        .collect();
    // The hash at every seq a valid checkpoint anchors; seq 0 is the empty log's head.
    let mut hashes: HashMap<i64, Option<String>> = checkpoints
        .iter()
        .zip(&signatures)
        .filter(|(_, signature)| signature.is_ok())
        .map(|(checkpoint, _)| (checkpoint.seq, (checkpoint.seq == 0).then(|| GENESIS_HASH.to_owned())))
        .collect();
    let mut verifier = ChainVerifier::from_genesis();
    let mut chain_break = None;
    let mut last_seq = 0;
    for event in events {
        if chain_break.is_none()
            && let Err(broken) = verifier.check(&event)
        {
            chain_break = Some(broken);
        }
        last_seq = last_seq.max(event.seq);
        if let Some(slot @ None) = hashes.get_mut(&event.seq) {
            *slot = Some(event.hash);
        }
    }
    let mut problems: Vec<CheckpointProblem> = chain_break.into_iter().map(CheckpointProblem::ChainBroken).collect();
    for (checkpoint, signature) in checkpoints.iter().zip(signatures) {
        let (seq, at) = (checkpoint.seq, checkpoint.at);
        let problem = match (signature, hashes.get(&seq).and_then(Option::as_ref)) {
            (Err(error), _) => Some(CheckpointProblem::BadSignature { seq, at, error }),
            (Ok(()), _) if seq > last_seq => Some(CheckpointProblem::Truncated { checkpoint_seq: seq, at, last_seq }),
            (Ok(()), None) => Some(CheckpointProblem::MissingEvent { seq, at }),
            (Ok(()), Some(event_hash)) if *event_hash != checkpoint.head_hash => {
                Some(CheckpointProblem::HeadMismatch {
                    seq,
                    at,
                    checkpoint_hash: checkpoint.head_hash.clone(),
                    event_hash: event_hash.clone(),
                })
            }
            (Ok(()), Some(_)) => None,
        };
        problems.extend(problem);
    }
    CheckpointReport { checked: checkpoints.len(), last_seq, problems }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;
    use crate::event::{EventKind, NewEvent};

    /// RFC 8032, section 7.1, test 1: the seed and its public key.
    const RFC8032_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const RFC8032_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, second).unwrap()
    }

    fn new_event(n: i64) -> NewEvent {
        NewEvent::new(None, EventKind::KeyCreated, "admin:root", json!({ "n": n }))
    }

    /// A chain of `len` events, sealed from genesis.
    fn chain(len: i64) -> Vec<Event> {
        reseal((1..=len).map(new_event).collect())
    }

    /// Seals `events` in order from genesis, as a store would.
    fn reseal(events: Vec<NewEvent>) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut sealed = Vec::new();
        for (event, seq) in events.into_iter().zip(1..) {
            let event = event.seal(seq, at(u32::try_from(seq).unwrap()), prev, None);
            prev = event.hash.clone();
            sealed.push(event);
        }
        sealed
    }

    fn as_new(event: &Event) -> NewEvent {
        NewEvent::new(event.request_id, event.kind, event.actor.clone(), event.data.clone())
    }

    fn checkpoint_at(key: &CheckpointKey, events: &[Event], seq: i64) -> SignedCheckpoint {
        let event = &events[usize::try_from(seq - 1).unwrap()];
        key.sign(event.seq, &event.hash, at(50))
    }

    #[test]
    fn a_good_chain_passes_every_checkpoint() {
        let key = CheckpointKey::generate();
        let events = chain(10);
        let checkpoints = vec![
            key.sign(0, GENESIS_HASH, at(0)),
            checkpoint_at(&key, &events, 3),
            checkpoint_at(&key, &events, 7),
            checkpoint_at(&key, &events, 10),
        ];
        let report = check_chain_against_checkpoints(events, &checkpoints, Some(&key.public_key_base64()));
        assert!(report.ok(), "{report}");
        assert_eq!((report.checked, report.last_seq), (4, 10));
        assert_eq!(report.to_string(), "4 checkpoints checked against a log ending at event 10: ok");
    }

    #[test]
    fn a_truncated_chain_fails() {
        let key = CheckpointKey::generate();
        let mut events = chain(10);
        let checkpoints = vec![checkpoint_at(&key, &events, 5), checkpoint_at(&key, &events, 10)];
        events.truncate(7);
        let report = check_chain_against_checkpoints(events, &checkpoints, Some(&key.public_key_base64()));
        assert_eq!(report.problems, vec![CheckpointProblem::Truncated { checkpoint_seq: 10, at: at(50), last_seq: 7 }]);
        assert_eq!(report.problems[0].code(), "log_truncated");
        let text = report.problems[0].to_string();
        assert!(text.starts_with("the log ends at event 7 but a checkpoint at event 10"), "{text}");
        // Deleting every event is truncation too.
        let report = check_chain_against_checkpoints(Vec::new(), &checkpoints, None);
        assert_eq!(report.problems.len(), 2, "{report}");
        assert!(report.problems.iter().all(|problem| matches!(problem, CheckpointProblem::Truncated { .. })));
    }

    #[test]
    fn a_rewritten_and_rehashed_chain_fails_from_the_changed_event_on() {
        let key = CheckpointKey::generate();
        let events = chain(10);
        let checkpoints: Vec<_> = [3, 7, 10].into_iter().map(|seq| checkpoint_at(&key, &events, seq)).collect();
        let mut rewritten: Vec<NewEvent> = events.iter().map(as_new).collect();
        rewritten[3].data = json!({ "n": 4, "approved_by": "mallory" });
        let rewritten = reseal(rewritten);
        assert!(rewritten.iter().zip(&events).take(3).all(|(new, old)| new == old));
        assert_ne!(rewritten[3].hash, events[3].hash);

        let report = check_chain_against_checkpoints(rewritten.clone(), &checkpoints, None);
        let mismatched: Vec<i64> = report
            .problems
            .iter()
            .map(|problem| match problem {
                CheckpointProblem::HeadMismatch { seq, .. } => *seq,
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(mismatched, vec![7, 10], "the rehashed chain itself is whole; only the checkpoints catch it");
        let text = report.problems[0].to_string();
        assert!(text.contains(&rewritten[6].hash) && text.contains(&events[6].hash), "{text}");
        assert!(text.ends_with("the chain up to event 7 was rewritten"), "{text}");
    }

    #[test]
    fn an_event_altered_without_rehashing_breaks_the_chain() {
        let key = CheckpointKey::generate();
        let mut events = chain(5);
        let checkpoints = vec![checkpoint_at(&key, &events, 5)];
        events[1].data = json!({ "n": 99 });
        let report = check_chain_against_checkpoints(events, &checkpoints, None);
        assert_eq!(report.problems.len(), 1, "{report}");
        assert!(matches!(&report.problems[0], CheckpointProblem::ChainBroken(ChainBreak { seq: 2, .. })), "{report}");
        assert_eq!(report.problems[0].code(), "chain_broken");
    }

    #[test]
    fn a_checkpoint_at_a_missing_event_fails() {
        let key = CheckpointKey::generate();
        let mut events = chain(6);
        let checkpoints = vec![checkpoint_at(&key, &events, 4)];
        events.remove(3);
        let report = check_chain_against_checkpoints(events, &checkpoints, None);
        assert!(matches!(report.problems[0], CheckpointProblem::ChainBroken(_)), "{report}");
        assert_eq!(report.problems[1], CheckpointProblem::MissingEvent { seq: 4, at: at(50) });
    }

    #[test]
    fn a_forged_signature_fails() {
        let key = CheckpointKey::generate();
        let events = chain(4);
        let genuine = checkpoint_at(&key, &events, 4);
        genuine.verify_signature().unwrap();

        let mut moved_head = genuine.clone();
        moved_head.head_hash = events[2].hash.clone();
        let mut moved_seq = genuine.clone();
        moved_seq.seq = 3;
        let mut moved_time = genuine.clone();
        moved_time.at = at(51);
        let mut flipped = genuine.clone();
        let mut signature = BASE64.decode(&flipped.signature).unwrap();
        signature[10] ^= 1;
        flipped.signature = BASE64.encode(signature);
        for forged in [&moved_head, &moved_seq, &moved_time, &flipped] {
            assert_eq!(forged.verify_signature(), Err(CheckpointError::BadSignature), "{forged:?}");
        }

        let mut garbled = genuine.clone();
        garbled.signature = "not base64!".into();
        assert_eq!(garbled.verify_signature(), Err(CheckpointError::InvalidSignatureEncoding));
        let mut relabelled = genuine.clone();
        relabelled.key_id = "0000000000000000".into();
        assert!(matches!(relabelled.verify_signature(), Err(CheckpointError::KeyIdMismatch { .. })));

        let report = check_chain_against_checkpoints(events, &[moved_head, genuine], None);
        assert_eq!(report.checked, 2);
        assert_eq!(
            report.problems,
            vec![CheckpointProblem::BadSignature { seq: 4, at: at(50), error: CheckpointError::BadSignature }]
        );
        assert_eq!(report.problems[0].code(), "checkpoint_bad_signature");
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_fails_against_the_trusted_key() {
        let ours = CheckpointKey::generate();
        let theirs = CheckpointKey::generate();
        let events = chain(3);
        // A rewriter re-signs the head of its rewritten chain with a key of its own.
        let forged = checkpoint_at(&theirs, &events, 3);
        forged.verify_signature().unwrap();
        let error = forged.verify_signature_with(&ours.public_key_base64()).unwrap_err();
        assert_eq!(error, CheckpointError::UntrustedKey { key_id: theirs.key_id(), trusted_key_id: ours.key_id() });
        assert_eq!(error.code(), "untrusted_key");

        let trusted = ours.public_key_base64();
        let report = check_chain_against_checkpoints(events.clone(), std::slice::from_ref(&forged), Some(&trusted));
        assert!(matches!(report.problems[..], [CheckpointProblem::BadSignature { seq: 3, .. }]), "{report}");
        assert!(report.to_string().contains(&format!("not by the trusted key {}", ours.key_id())), "{report}");
        // Without a trusted key, a self-consistent checkpoint passes: that is why the trusted key matters.
        assert!(check_chain_against_checkpoints(events, &[forged], None).ok());
        assert_eq!(
            checkpoint_at(&ours, &chain(1), 1).verify_signature_with("short"),
            Err(CheckpointError::InvalidPublicKey)
        );
    }

    #[test]
    fn keys_round_trip_through_their_seed_and_match_rfc_8032() {
        let key = CheckpointKey::from_seed_base64(RFC8032_SEED).unwrap();
        assert_eq!(key.public_key_base64(), RFC8032_PUBLIC);
        assert_eq!(key.key_id(), "21fe31dfa154a261");
        assert_eq!(key.to_seed_base64(), RFC8032_SEED);
        assert_eq!(CheckpointKey::from_seed_base64(&format!(" {RFC8032_SEED}\n")).unwrap().key_id(), key.key_id());

        let generated = CheckpointKey::generate();
        let again = CheckpointKey::from_seed_base64(&generated.to_seed_base64()).unwrap();
        assert_eq!(again.public_key_base64(), generated.public_key_base64());
        assert_ne!(generated.key_id(), key.key_id());

        for bad in ["", "not base64!", "AAAA", "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2AA"] {
            assert_eq!(CheckpointKey::from_seed_base64(bad).unwrap_err(), CheckpointError::InvalidSeed, "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = CheckpointKey::from_seed_base64(RFC8032_SEED).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "CheckpointKey { key_id: \"21fe31dfa154a261\", .. }");
        assert!(!debug.contains(RFC8032_SEED) && !debug.contains("9d61b19d"), "{debug}");
    }

    #[test]
    fn the_signed_message_and_json_are_as_documented() {
        let when = Utc.timestamp_micros(1_772_366_400_123_456).unwrap();
        assert_eq!(
            SignedCheckpoint::signed_message(42, "abc123", when),
            b"signoff-checkpoint-v1\n42\nabc123\n1772366400123456".to_vec()
        );
        let key = CheckpointKey::from_seed_base64(RFC8032_SEED).unwrap();
        let with_nanos = when + chrono::Duration::nanoseconds(789);
        let checkpoint = key.sign(42, "abc123", with_nanos);
        assert_eq!(checkpoint.at, when, "the time is kept as it is signed, in whole microseconds");
        let json = serde_json::to_value(&checkpoint).unwrap();
        let fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, ["at", "head_hash", "key_id", "public_key", "seq", "signature"]);
        assert_eq!(json["key_id"], "21fe31dfa154a261");
        let back: SignedCheckpoint = serde_json::from_value(json).unwrap();
        assert_eq!(back, checkpoint);
        back.verify_signature_with(RFC8032_PUBLIC).unwrap();
    }
}
