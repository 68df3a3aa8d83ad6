//! Signed, expiring action links for email: a token names the request, the person, the outcome and the group it
//! was sent for, and a nonce the server records when the link is used, so each link decides at most once.
//!
//! A token is `base64url(JSON claims) "." base64url(HMAC-SHA256(key, "signoff-link-v1" 0x00 payload))`, without
//! padding, so it fits a URL query as is. The confirmation page embeds a second MAC over the same payload with
//! another context ([`LinkSigner::form_token`]); its `POST` must return it, so a form cannot be made from the link
//! alone by a page that only saw the URL.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use signoff_domain::{ApproverId, RequestId};
use subtle::ConstantTimeEq;

/// Bytes in a link key.
pub const KEY_LEN: usize = 32;
/// The longest token [`LinkSigner::verify`] reads; anything longer is malformed.
pub const MAX_TOKEN_LEN: usize = 4096;

const LINK_CONTEXT: &[u8] = b"signoff-link-v1\0";
const FORM_CONTEXT: &[u8] = b"signoff-form-v1\0";
/// Short SMS links are signed apart too: their MAC binds a stored link id to its request and person.
const SHORT_LINK_CONTEXT: &[u8] = b"signoff-short-link-v1\0";
/// Bytes of the MAC a short link carries (11 base64url characters): a forgery needs 2^64 tries, each one a request
/// to the server.
pub const SHORT_MAC_LEN: usize = 8;
/// Sign-in links are signed apart from action links: neither kind of token is ever taken for the other.
const SIGN_IN_CONTEXT: &[u8] = b"signoff-sign-in-v1\0";

/// What a link does when its form is sent: approve or reject an approval, or answer a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkOutcome {
    Approve,
    Reject,
    Answer,
}

impl LinkOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkOutcome::Approve => "approve",
            LinkOutcome::Reject => "reject",
            LinkOutcome::Answer => "answer",
        }
    }
}

/// What a token says: who may do what to which request, for which group, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub request_id: RequestId,
    pub approver_id: ApproverId,
    pub outcome: LinkOutcome,
    /// The group the email was sent for: the link is superseded once the request moves to another.
    pub group: String,
    /// Unique per link; recorded when the link is used (`Store::use_link`).
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// What a dashboard sign-in link says: who may sign in with it, once, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInClaims {
    pub approver_id: ApproverId,
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

impl LinkClaims {
    /// A fresh random nonce: 16 bytes, base64url.
    pub fn new_nonce() -> String {
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token at all (no `.`, too long, or claims that do not decode).
    #[error("link_malformed: this link is not a valid Signoff link")]
    Malformed,
    /// A token whose signature does not match: altered, or signed with another key.
    #[error("link_forged: this link's signature does not match")]
    Forged,
    /// A genuine token past its `expires_at`.
    #[error("link_expired: this link has expired")]
    Expired,
}

impl LinkError {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            LinkError::Malformed => "link_malformed",
            LinkError::Forged => "link_forged",
            LinkError::Expired => "link_expired",
        }
    }
}

/// A link key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link_secret_invalid: {0}")]
pub struct InvalidLinkKey(String);

/// Signs and verifies action-link tokens with one 32-byte key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner").field("key", &"<redacted>").finish()
    }
}

impl LinkSigner {
    /// A signer over `key`, which must be exactly 32 bytes.
    pub fn new(key: &[u8]) -> Result<LinkSigner, InvalidLinkKey> {
        let key: [u8; KEY_LEN] =
            key.try_into().map_err(|_| InvalidLinkKey(format!("a link key is {KEY_LEN} bytes, not {}", key.len())))?;
        Ok(LinkSigner { key })
    }

    /// A signer over a key written in standard base64 (as [`LinkSigner::generate_key`] writes it).
    pub fn from_base64(key: &str) -> Result<LinkSigner, InvalidLinkKey> {
        let bytes =
            STANDARD.decode(key.trim()).map_err(|_| InvalidLinkKey("the link key is not valid base64".into()))?;
        LinkSigner::new(&bytes)
    }

    /// A new random key, in standard base64.
    pub fn generate_key() -> String {
        STANDARD.encode(rand::random::<[u8; KEY_LEN]>())
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        self.sign_in_context(LINK_CONTEXT, claims)
    }

    /// The claims of a genuine, unexpired token. The signature is checked (in constant time) before anything else
    /// is read from the token, and the expiry only after it.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        let claims: LinkClaims = self.verify_in_context(LINK_CONTEXT, token)?;
        if now >= claims.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }

    /// The token of a dashboard sign-in link.
    pub fn sign_sign_in(&self, claims: &SignInClaims) -> String {
        self.sign_in_context(SIGN_IN_CONTEXT, claims)
    }

    /// The claims of a genuine, unexpired sign-in token (checked as [`LinkSigner::verify`] checks action links).
    pub fn verify_sign_in(&self, token: &str, now: DateTime<Utc>) -> Result<SignInClaims, LinkError> {
        let claims: SignInClaims = self.verify_in_context(SIGN_IN_CONTEXT, token)?;
        if now >= claims.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }

    fn sign_in_context(&self, context: &[u8], claims: &impl Serialize) -> String {
        let payload = encode_claims(claims);
        let mac = self.mac(context, &payload);
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    fn verify_in_context<T: serde::de::DeserializeOwned>(&self, context: &[u8], token: &str) -> Result<T, LinkError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(LinkError::Malformed);
        }
        let Some((payload, mac)) = token.split_once('.') else { return Err(LinkError::Malformed) };
        let expected = URL_SAFE_NO_PAD.encode(self.mac(context, payload));
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(LinkError::Forged);
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)
    }

    /// The MAC of a short SMS link: the first [`SHORT_MAC_LEN`] bytes of HMAC-SHA256 over the stored link id, its
    /// request and its person, base64url without padding.
    pub fn short_link_mac(&self, link_id: &str, request_id: RequestId, person: &ApproverId) -> String {
        let payload = format!("{link_id}\0{request_id}\0{person}");
        URL_SAFE_NO_PAD.encode(&self.mac(SHORT_LINK_CONTEXT, &payload)[..SHORT_MAC_LEN])
    }

    /// Whether `mac` is the short-link MAC for this link id, request and person (compared in constant time).
    pub fn verify_short_link_mac(&self, link_id: &str, request_id: RequestId, person: &ApproverId, mac: &str) -> bool {
        bool::from(self.short_link_mac(link_id, request_id, person).as_bytes().ct_eq(mac.as_bytes()))
    }

    /// The token the confirmation page embeds for `claims`; the page's `POST` must send it back.
    pub fn form_token(&self, claims: &LinkClaims) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(FORM_CONTEXT, &encode_claims(claims)))
    }

    /// Whether `token` is the form token for `claims` (compared in constant time).
    pub fn verify_form_token(&self, claims: &LinkClaims, token: &str) -> bool {
        bool::from(self.form_token(claims).as_bytes().ct_eq(token.as_bytes()))
    }

    fn mac(&self, context: &[u8], payload: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(context);
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn encode_claims(claims: &impl Serialize) -> String {
    let json = serde_json::to_vec(claims).expect("link claims always serialize");
    URL_SAFE_NO_PAD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn signer() -> LinkSigner {
        LinkSigner::from_base64(&LinkSigner::generate_key()).unwrap()
    }

    fn claims(now: DateTime<Utc>) -> LinkClaims {
        LinkClaims {
            request_id: RequestId::new(),
            approver_id: ApproverId::parse("dana").unwrap(),
            outcome: LinkOutcome::Approve,
            group: "finance".into(),
            nonce: LinkClaims::new_nonce(),
            expires_at: now + Duration::hours(1),
        }
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe() {
        let (signer, now) = (signer(), Utc::now());
        let claims = claims(now);
        let token = signer.sign(&claims);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert_eq!(signer.verify(&token, now), Ok(claims));
    }

    #[test]
    fn sign_in_tokens_and_action_tokens_are_never_taken_for_each_other() {
        let (signer, now) = (signer(), Utc::now());
        let sign_in = SignInClaims {
            approver_id: ApproverId::parse("dana").unwrap(),
            nonce: LinkClaims::new_nonce(),
            expires_at: now + Duration::minutes(15),
        };
        let token = signer.sign_sign_in(&sign_in);
        assert_eq!(signer.verify_sign_in(&token, now), Ok(sign_in));
        assert_eq!(signer.verify(&token, now), Err(LinkError::Forged));
        assert_eq!(signer.verify_sign_in(&signer.sign(&claims(now)), now), Err(LinkError::Forged));
        assert_eq!(signer.verify_sign_in(&token, now + Duration::minutes(15)), Err(LinkError::Expired));
    }

    #[test]
    fn any_flipped_character_is_forged() {
        let (signer, now) = (signer(), Utc::now());
        let token = signer.sign(&claims(now));
        for i in (0..token.len()).filter(|&i| token.as_bytes()[i] != b'.') {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(signer.verify(&altered, now), Err(LinkError::Forged), "position {i}");
        }
    }

    #[test]
    fn another_key_is_forged() {
        let now = Utc::now();
        let token = signer().sign(&claims(now));
        assert_eq!(signer().verify(&token, now), Err(LinkError::Forged));
    }

    #[test]
    fn an_expired_token_is_expired_and_a_forged_expired_one_forged() {
        let (signer, now) = (signer(), Utc::now());
        let claims = claims(now);
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token, claims.expires_at), Err(LinkError::Expired));
        assert_eq!(signer.verify(&token, claims.expires_at - Duration::seconds(1)), Ok(claims.clone()));
        let forged = format!("{token}x");
        assert_eq!(signer.verify(&forged, claims.expires_at), Err(LinkError::Forged));
    }

    #[test]
    fn garbage_is_malformed() {
        let (signer, now) = (signer(), Utc::now());
        for garbage in ["", "hello", "%%%", &"a".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(signer.verify(garbage, now), Err(LinkError::Malformed), "{garbage:?}");
        }
        // Signed by us, but not claims.
        let payload = URL_SAFE_NO_PAD.encode(b"[1,2]");
        let token = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signer.mac(LINK_CONTEXT, &payload)));
        assert_eq!(signer.verify(&token, now), Err(LinkError::Malformed));
    }

    #[test]
    fn the_form_token_is_bound_to_the_claims_and_differs_from_the_link_mac() {
        let (signer, now) = (signer(), Utc::now());
        let claims = claims(now);
        let form = signer.form_token(&claims);
        assert!(signer.verify_form_token(&claims, &form));
        assert!(!signer.verify_form_token(&claims, ""));
        let mut other = claims.clone();
        other.outcome = LinkOutcome::Reject;
        assert!(!signer.verify_form_token(&other, &form));
        let token = signer.sign(&claims);
        assert_ne!(token.split_once('.').unwrap().1, form);
        assert!(!LinkSigner::new(&[7; KEY_LEN]).unwrap().verify_form_token(&claims, &form));
    }

    #[test]
    fn a_short_link_mac_binds_its_id_request_and_person() {
        let signer = signer();
        let (id, dana, carl) =
            (RequestId::new(), ApproverId::parse("dana").unwrap(), ApproverId::parse("carl").unwrap());
        let mac = signer.short_link_mac("AbCdEfGh", id, &dana);
        assert_eq!(mac.len(), 11);
        assert!(signer.verify_short_link_mac("AbCdEfGh", id, &dana, &mac));
        assert!(!signer.verify_short_link_mac("AbCdEfGi", id, &dana, &mac));
        assert!(!signer.verify_short_link_mac("AbCdEfGh", RequestId::new(), &dana, &mac));
        assert!(!signer.verify_short_link_mac("AbCdEfGh", id, &carl, &mac));
        assert!(!signer.verify_short_link_mac("AbCdEfGh", id, &dana, ""));
        assert!(!self::signer().verify_short_link_mac("AbCdEfGh", id, &dana, &mac));
    }

    #[test]
    fn keys_are_32_bytes_and_debug_hides_them() {
        assert!(LinkSigner::new(&[0; 31]).is_err());
        assert!(LinkSigner::from_base64("not base64!").is_err());
        let key = LinkSigner::generate_key();
        let signer = LinkSigner::from_base64(&key).unwrap();
        assert!(!format!("{signer:?}").contains(&key));
        assert!(format!("{signer:?}").contains("redacted"));
    }
}
