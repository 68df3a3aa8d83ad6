//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256>` over `"{msg_id}.{timestamp}.{body}"`, and verification.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::secret::WebhookSecret;

/// Header carrying the message id, the same on every retry of one message.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix time in seconds at which the attempt was signed.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a timestamp may be from the verifier's clock, either way: five minutes, as in the spec.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

type HmacSha256 = Hmac<Sha256>;

/// The values of the three `webhook-*` headers of one delivery, as the receiver saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// The `webhook-id` header.
    pub id: &'a str,
    /// The `webhook-timestamp` header (unix seconds, as text).
    pub timestamp: &'a str,
    /// The `webhook-signature` header (space-separated `version,signature` pairs).
    pub signature: &'a str,
}

/// Why a delivery failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing or empty")]
    MissingHeader(&'static str),
    #[error("the webhook-timestamp header is not a whole number of unix seconds")]
    InvalidTimestamp,
    #[error("the webhook-timestamp {timestamp} is too old (now {now}, tolerance {tolerance_secs}s)")]
    TimestampTooOld { timestamp: i64, now: i64, tolerance_secs: u64 },
    #[error("the webhook-timestamp {timestamp} is in the future (now {now}, tolerance {tolerance_secs}s)")]
    TimestampTooNew { timestamp: i64, now: i64, tolerance_secs: u64 },
    #[error("no v1 signature in the webhook-signature header matches the body")]
    NoMatchingSignature,
}

fn mac_over(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.key()).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs one delivery: returns the `webhook-signature` value `v1,<base64 HMAC-SHA256>` over
/// `"{msg_id}.{timestamp}.{body}"`, keyed with the decoded secret.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac_over(secret, msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// Verifies a delivery against the current clock; see [`verify_at`].
pub fn verify(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, tolerance, unix_now())
}

/// Verifies a delivery as a receiver would, with `now` in unix seconds: all three headers present, the timestamp
/// within `tolerance` of `now` either way, and at least one `v1` signature in the (space-separated) signature
/// header matching the body. Signatures of other versions are ignored; comparison is constant-time.
pub fn verify_at(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    if headers.id.is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_ID));
    }
    if headers.timestamp.is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_TIMESTAMP));
    }
    if headers.signature.trim().is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_SIGNATURE));
    }
    let timestamp: i64 = headers.timestamp.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    let tolerance_secs = tolerance.as_secs();
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(if timestamp < now {
            VerifyError::TimestampTooOld { timestamp, now, tolerance_secs }
        } else {
            VerifyError::TimestampTooNew { timestamp, now, tolerance_secs }
        });
    }
    let expected = mac_over(secret, headers.id, timestamp, body);
    let matched = headers
        .signature
        .split_ascii_whitespace()
        .filter_map(|candidate| candidate.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched { Ok(()) } else { Err(VerifyError::NoMatchingSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_secret() -> WebhookSecret {
        WebhookSecret::parse(SPEC_SECRET).unwrap()
    }

    fn headers<'a>(timestamp: &'a str, signature: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders { id: SPEC_ID, timestamp, signature }
    }

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(sign(&spec_secret(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
    }

    #[test]
    fn verifies_the_test_vector_within_tolerance() {
        let ts = SPEC_TIMESTAMP.to_string();
        let secret = spec_secret();
        for now in [SPEC_TIMESTAMP, SPEC_TIMESTAMP + 300, SPEC_TIMESTAMP - 300] {
            verify_at(&secret, &headers(&ts, SPEC_SIGNATURE), SPEC_BODY, DEFAULT_TOLERANCE, now).unwrap();
        }
    }

    #[test]
    fn refuses_timestamps_outside_tolerance() {
        let ts = SPEC_TIMESTAMP.to_string();
        let secret = spec_secret();
        let h = headers(&ts, SPEC_SIGNATURE);
        assert_eq!(
            verify_at(&secret, &h, SPEC_BODY, DEFAULT_TOLERANCE, SPEC_TIMESTAMP + 301),
            Err(VerifyError::TimestampTooOld {
                timestamp: SPEC_TIMESTAMP,
                now: SPEC_TIMESTAMP + 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            verify_at(&secret, &h, SPEC_BODY, DEFAULT_TOLERANCE, SPEC_TIMESTAMP - 301),
            Err(VerifyError::TimestampTooNew {
                timestamp: SPEC_TIMESTAMP,
                now: SPEC_TIMESTAMP - 301,
                tolerance_secs: 300
            })
        );
        let bad = headers("yesterday", SPEC_SIGNATURE);
        assert_eq!(
            verify_at(&secret, &bad, SPEC_BODY, DEFAULT_TOLERANCE, SPEC_TIMESTAMP),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn refuses_tampered_bodies_ids_timestamps_and_other_secrets() {
        let ts = SPEC_TIMESTAMP.to_string();
        let secret = spec_secret();
        let now = SPEC_TIMESTAMP;
        let h = headers(&ts, SPEC_SIGNATURE);
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(verify_at(&secret, &h, tampered, DEFAULT_TOLERANCE, now), Err(VerifyError::NoMatchingSignature));
        let other_id = WebhookHeaders { id: "msg_other", ..h };
        assert_eq!(
            verify_at(&secret, &other_id, SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::NoMatchingSignature)
        );
        let later = (SPEC_TIMESTAMP + 1).to_string();
        assert_eq!(
            verify_at(&secret, &headers(&later, SPEC_SIGNATURE), SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::NoMatchingSignature)
        );
        let other_secret = WebhookSecret::generate();
        assert_eq!(
            verify_at(&other_secret, &h, SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn accepts_any_matching_signature_among_several() {
        let ts = SPEC_TIMESTAMP.to_string();
        let secret = spec_secret();
        let now = SPEC_TIMESTAMP;
        let several = format!("v1,c2lnbmF0dXJl v1a,{} garbage v1,!!notbase64 {SPEC_SIGNATURE}", &SPEC_SIGNATURE[3..]);
        verify_at(&secret, &headers(&ts, &several), SPEC_BODY, DEFAULT_TOLERANCE, now).unwrap();
        let wrong_version = format!("v2,{}", &SPEC_SIGNATURE[3..]);
        assert_eq!(
            verify_at(&secret, &headers(&ts, &wrong_version), SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::NoMatchingSignature)
        );
        let truncated = &SPEC_SIGNATURE[..SPEC_SIGNATURE.len() - 4];
        assert_eq!(
            verify_at(&secret, &headers(&ts, truncated), SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn refuses_missing_headers() {
        let ts = SPEC_TIMESTAMP.to_string();
        let secret = spec_secret();
        let now = SPEC_TIMESTAMP;
        let no_id = WebhookHeaders { id: "", timestamp: &ts, signature: SPEC_SIGNATURE };
        assert_eq!(
            verify_at(&secret, &no_id, SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
        assert_eq!(
            verify_at(&secret, &headers("", SPEC_SIGNATURE), SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::MissingHeader(HEADER_TIMESTAMP))
        );
        assert_eq!(
            verify_at(&secret, &headers(&ts, " "), SPEC_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
    }

    #[test]
    fn verify_uses_the_current_clock() {
        let secret = WebhookSecret::generate();
        let now = unix_now();
        let signature = sign(&secret, "msg_1", now, b"{}");
        let ts = now.to_string();
        let h = WebhookHeaders { id: "msg_1", timestamp: &ts, signature: &signature };
        verify(&secret, &h, b"{}", DEFAULT_TOLERANCE).unwrap();
        let old = sign(&secret, "msg_1", now - 3600, b"{}");
        let old_ts = (now - 3600).to_string();
        let stale = WebhookHeaders { id: "msg_1", timestamp: &old_ts, signature: &old };
        assert!(matches!(verify(&secret, &stale, b"{}", DEFAULT_TOLERANCE), Err(VerifyError::TimestampTooOld { .. })));
    }
}
