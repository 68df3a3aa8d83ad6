//! The `whsec_<base64>` signing secret of the Standard Webhooks spec: parsing, generation and a masked `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

/// The prefix every secret carries in its text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest accepted key, in bytes (192 bits), as the Standard Webhooks spec recommends.
pub const MIN_SECRET_BYTES: usize = 24;

/// Longest accepted key, in bytes (512 bits), as the Standard Webhooks spec recommends.
pub const MAX_SECRET_BYTES: usize = 64;

/// Key length of secrets made by [`WebhookSecret::generate`].
const GENERATED_SECRET_BYTES: usize = 32;

/// A webhook signing secret: `whsec_` followed by the standard (padded) base64 of 24 to 64 random bytes.
///
/// `Debug` never shows the key; [`WebhookSecret::expose`] returns the text form for storing or showing it once.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

/// Why a string is not a valid webhook secret. Messages never include the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("webhook secret must start with \"whsec_\" followed by base64")]
    MissingPrefix,
    #[error("webhook secret after \"whsec_\" is not valid standard base64 (with padding)")]
    InvalidBase64,
    #[error("webhook secret decodes to {len} bytes; it must be between 24 and 64 bytes")]
    InvalidLength { len: usize },
}

impl WebhookSecret {
    /// Parses the text form `whsec_<base64>`, checking the prefix, the base64 and the key length (24 to 64 bytes).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::InvalidBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::InvalidLength { len: key.len() });
        }
        Ok(Self { text: text.to_owned(), key })
    }

    /// Makes a new secret of 32 bytes from a cryptographically secure generator seeded by the operating system.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self::from_key_bytes(key)
    }

    fn from_key_bytes(key: Vec<u8>) -> Self {
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(&key));
        Self { text, key }
    }

    /// The text form `whsec_<base64>`, for storing the secret or showing it to its owner once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The raw HMAC key (the decoded base64).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_****)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn parses_the_spec_example_secret() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(secret.key().len(), 24);
        assert_eq!(secret.expose(), SPEC_SECRET);
        assert_eq!(SPEC_SECRET.parse::<WebhookSecret>().unwrap(), secret);
    }

    #[test]
    fn refuses_malformed_secrets_with_clear_errors() {
        assert_eq!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::MissingPrefix));
        assert_eq!(WebhookSecret::parse("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::MissingPrefix));
        assert_eq!(WebhookSecret::parse("whsec_not base64!!"), Err(SecretError::InvalidBase64));
        assert_eq!(WebhookSecret::parse("whsec_"), Err(SecretError::InvalidLength { len: 0 }));
        assert_eq!(WebhookSecret::parse("whsec_c2hvcnQ="), Err(SecretError::InvalidLength { len: 5 }));
        let too_long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(WebhookSecret::parse(&too_long), Err(SecretError::InvalidLength { len: 65 }));
        let longest = format!("whsec_{}", STANDARD.encode([7u8; 64]));
        assert!(WebhookSecret::parse(&longest).is_ok());
        let message = SecretError::InvalidBase64.to_string();
        assert!(message.contains("whsec_"), "{message}");
    }

    #[test]
    fn debug_masks_the_key() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "WebhookSecret(whsec_****)");
        assert!(!shown.contains("MfKQ"));
    }

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.key().len(), GENERATED_SECRET_BYTES);
        assert_eq!(WebhookSecret::parse(a.expose()).unwrap(), a);
    }
}
