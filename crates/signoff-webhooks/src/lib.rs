//! Signed decision callbacks for Signoff, per the [Standard Webhooks](https://www.standardwebhooks.com/) spec.
//!
//! - [`WebhookSecret`], [`sign`] and [`verify`]: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//!   `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the decoded `whsec_<base64>` secret.
//! - [`CallbackUrlPolicy`]: which callback URLs are accepted (http/https, and no private or local targets unless
//!   `allow_private`). DNS names are checked again at delivery time, against every address they resolve to.
//! - [`deliver`]: one signed POST with a 15 s budget, no redirects, 4 KiB of the answer kept; see
//!   [`DeliveryResult`] for how answers are classified.
//! - [`RetryPolicy`]: when to try again.
//!
//! # Retry schedule
//!
//! With the defaults, the attempt after the n-th failure waits:
//!
//! | after failure | 1   | 2    | 3     | 4      | 5      | 6   | 7   | 8   | 9 and later |
//! |---------------|-----|------|-------|--------|--------|-----|-----|-----|-------------|
//! | delay         | 5 s | 30 s | 2 min | 10 min | 30 min | 1 h | 2 h | 4 h | 8 h         |
//!
//! each multiplied by a random factor in 0.8–1.2. No attempt is scheduled later than 3 days after the first one,
//! which without jitter makes 17 attempts, the last 71 h 42 min after the first; with jitter, 15 to 19.
//! A 2xx answer ends the retries, and so does 410 Gone; everything else is retried.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use signoff_webhooks::{CallbackUrlPolicy, DeliveryResult, WebhookSecret, build_client, deliver};
//!
//! let client = build_client()?;
//! let policy = CallbackUrlPolicy { allow_private: false };
//! let url = policy.check("https://agent.example.com/signoff/callback")?;
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! match deliver(&client, &url, &secret, "msg_2b5c", br#"{"status":"approved"}"#, &policy).await {
//!     DeliveryResult::Delivered { status, .. } => println!("delivered ({status})"),
//!     DeliveryResult::Gone { .. } => println!("receiver is gone; stop"),
//!     DeliveryResult::Failed { error, .. } => println!("retry later: {error}"),
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod delivery;
mod retry;
mod secret;
mod signature;
mod url_policy;

pub use delivery::{
    DEFAULT_TIMEOUT, DeliveryOptions, DeliveryResult, MAX_RESPONSE_BYTES, USER_AGENT_VALUE, build_client,
    client_builder, deliver, deliver_with_options,
};
pub use retry::RetryPolicy;
pub use secret::{MAX_SECRET_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX, SecretError, WebhookSecret};
pub use signature::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifyError, WebhookHeaders, sign, unix_now,
    verify, verify_at,
};
pub use url::Url;
pub use url_policy::{CallbackUrlError, CallbackUrlPolicy, is_public_ip, refused_range};
