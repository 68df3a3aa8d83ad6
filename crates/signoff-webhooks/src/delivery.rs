//! One delivery attempt: check the target, POST the signed body, classify the answer.
//!
//! Every error text made here is shown to the agent that asked for the callback (the delivery log and the
//! `callback_attempted` events), so none names an address a host name resolved to: the agent could otherwise map
//! the internal network through them. Only an IP literal the agent wrote in its own URL is repeated back.

use std::error::Error;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::secret::WebhookSecret;
use crate::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign, unix_now};
use crate::url_policy::{CallbackUrlError, CallbackUrlPolicy, is_public_ip};

/// Default total time allowed for one attempt: resolving, connecting, sending and receiving the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// At most this many bytes of a response body are read; they are kept as the excerpt for the delivery log.
pub const MAX_RESPONSE_BYTES: usize = 4096;

/// The `user-agent` of every delivery.
pub const USER_AGENT_VALUE: &str = concat!("signoff-webhooks/", env!("CARGO_PKG_VERSION"));

/// Knobs of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Total time allowed for the attempt. Default [`DEFAULT_TIMEOUT`] (15 s).
    pub timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self { timeout: DEFAULT_TIMEOUT }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The receiver answered 2xx: done.
    Delivered { status: u16, elapsed_ms: u64, response_excerpt: String },
    /// The receiver answered 410 Gone: it wants no more attempts for this message.
    Gone { elapsed_ms: u64, response_excerpt: String },
    /// Anything else: another status (including 3xx, as redirects are not followed), a refused target, a network
    /// error or a timeout. Worth retrying on the [`crate::RetryPolicy`] schedule.
    Failed { status: Option<u16>, error: String, elapsed_ms: u64, response_excerpt: String },
}

impl DeliveryResult {
    /// Whether this ends the message's deliveries (delivered, or the receiver said it is gone).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }

    /// The HTTP status the receiver answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Delivered { status, .. } => Some(*status),
            Self::Gone { .. } => Some(410),
            Self::Failed { status, .. } => *status,
        }
    }

    /// Wall time of the attempt in milliseconds.
    pub fn elapsed_ms(&self) -> u64 {
        match self {
            Self::Delivered { elapsed_ms, .. } | Self::Gone { elapsed_ms, .. } | Self::Failed { elapsed_ms, .. } => {
                *elapsed_ms
            }
        }
    }

    /// The first [`MAX_RESPONSE_BYTES`] of the response body (lossy UTF-8), empty if there was none.
    pub fn response_excerpt(&self) -> &str {
        match self {
            Self::Delivered { response_excerpt, .. }
            | Self::Gone { response_excerpt, .. }
            | Self::Failed { response_excerpt, .. } => response_excerpt,
        }
    }

    /// Why the attempt failed, if it did.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Failed { error, .. } => Some(error),
            Self::Delivered { .. } | Self::Gone { .. } => None,
        }
    }
}

/// A `reqwest` client builder set up for deliveries: no redirects followed, the Signoff user agent, and no proxy
/// (a proxy would resolve callback hosts itself, out of reach of the private-address check).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(USER_AGENT_VALUE).no_proxy()
}

/// Builds the client to share between deliveries; see [`client_builder`].
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

/// Delivers one message with the default options; see [`deliver_with_options`].
pub async fn deliver(
    client: &reqwest::Client,
    url: &Url,
    secret: &WebhookSecret,
    msg_id: &str,
    body: &[u8],
    policy: &CallbackUrlPolicy,
) -> DeliveryResult {
    deliver_with_options(client, url, secret, msg_id, body, policy, &DeliveryOptions::default()).await
}

/// Makes one delivery attempt: POSTs `body` to `url` with `content-type: application/json`, the `webhook-id`
/// (`msg_id`, the same on every attempt of one message), `webhook-timestamp` (now) and `webhook-signature`
/// headers, within `options.timeout` in total.
///
/// The URL is checked against `policy` again. Unless `policy.allow_private`, a host name is resolved here, the
/// attempt is refused before connecting if any of its addresses is not public, and the connection goes only to the
/// addresses checked (through a one-off client pinned to them), so a DNS answer that changes between check and
/// connect cannot reach a private address. Otherwise, and for IP-literal hosts, `client` is used: build it with
/// [`build_client`] so redirects are not followed.
pub async fn deliver_with_options(
    client: &reqwest::Client,
    url: &Url,
    secret: &WebhookSecret,
    msg_id: &str,
    body: &[u8],
    policy: &CallbackUrlPolicy,
    options: &DeliveryOptions,
) -> DeliveryResult {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + options.timeout;
    let failed = |status, error, response_excerpt| DeliveryResult::Failed {
        status,
        error,
        elapsed_ms: elapsed_ms(started),
        response_excerpt,
    };
    let response =
        match tokio::time::timeout_at(deadline, send(client, url, secret, msg_id, body, policy, options)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return failed(None, error, String::new()),
            Err(_) => return failed(None, format!("timed out after {:?}", options.timeout), String::new()),
        };
    let status = response.status();
    let location = response.headers().get(LOCATION).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let final_url = (response.url() != url).then(|| response.url().to_string());
    let mut excerpt = Vec::new();
    // The answer is in; a body that is slow or broken only shortens the excerpt.
    let _ = tokio::time::timeout_at(deadline, read_excerpt(response, &mut excerpt)).await;
    let response_excerpt = String::from_utf8_lossy(&excerpt).into_owned();
    let code = status.as_u16();
    if let Some(final_url) = final_url {
        let error = format!(
            "the HTTP client followed a redirect to {final_url}; build it with signoff_webhooks::build_client(), \
             which follows none"
        );
        return failed(Some(code), error, response_excerpt);
    }
    let elapsed_ms = elapsed_ms(started);
    if status.is_success() {
        DeliveryResult::Delivered { status: code, elapsed_ms, response_excerpt }
    } else if code == 410 {
        DeliveryResult::Gone { elapsed_ms, response_excerpt }
    } else if status.is_redirection() {
        let target = location.as_deref().unwrap_or("no location");
        failed(
            Some(code),
            format!("callback answered HTTP {status} ({target}); redirects are not followed"),
            response_excerpt,
        )
    } else {
        failed(Some(code), format!("callback answered HTTP {status}"), response_excerpt)
    }
}

/// Checks the target, signs and sends; returns the response once its headers are in.
async fn send(
    client: &reqwest::Client,
    url: &Url,
    secret: &WebhookSecret,
    msg_id: &str,
    body: &[u8],
    policy: &CallbackUrlPolicy,
    options: &DeliveryOptions,
) -> Result<reqwest::Response, String> {
    policy.check_url(url).map_err(|error| error.to_string())?;
    let pinned = match (policy.allow_private, url.host()) {
        (false, Some(Host::Domain(host))) => {
            let port = url.port_or_known_default().unwrap_or(0);
            let addresses = resolve_public(host, port, policy).await?;
            Some(pinned_client(host, &addresses)?)
        }
        _ => None,
    };
    let client = pinned.as_ref().unwrap_or(client);
    let timestamp = unix_now();
    let signature = sign(secret, msg_id, timestamp, body);
    client
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(HEADER_ID, msg_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .timeout(options.timeout)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|error| send_error_text(&error))
}

/// Resolves `host` and returns its addresses if every one of them is public.
async fn resolve_public(host: &str, port: u16, policy: &CallbackUrlPolicy) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| format!("could not resolve callback host {host}: {}", without_addresses(&error.to_string())))?
        .collect();
    check_resolved(host, addresses, policy)
}

/// A delivery client that connects to `host` only at `addresses`.
fn pinned_client(host: &str, addresses: &[SocketAddr]) -> Result<reqwest::Client, String> {
    client_builder()
        .resolve_to_addrs(host, addresses)
        .build()
        .map_err(|error| format!("could not build the HTTP client: {}", without_addresses(&describe(&error))))
}

/// Refuses the whole host if any address it resolved to is not public. The error does not say which address.
fn check_resolved(
    host: &str,
    addresses: Vec<SocketAddr>,
    policy: &CallbackUrlPolicy,
) -> Result<Vec<SocketAddr>, String> {
    if addresses.is_empty() {
        return Err(format!("callback host {host} resolved to no addresses"));
    }
    if !policy.allow_private && addresses.iter().any(|address| !is_public_ip(address.ip())) {
        return Err(CallbackUrlError::ResolvesToPrivateAddress { host: host.to_owned() }.to_string());
    }
    Ok(addresses)
}

/// Reads the body into `excerpt` until it ends, fails, or [`MAX_RESPONSE_BYTES`] are in.
async fn read_excerpt(mut response: reqwest::Response, excerpt: &mut Vec<u8>) {
    while excerpt.len() < MAX_RESPONSE_BYTES {
        let Ok(Some(chunk)) = response.chunk().await else { break };
        let room = MAX_RESPONSE_BYTES - excerpt.len();
        excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// Why a request could not be sent, in words that name no address.
///
/// Timeouts and the usual connection failures get a fixed text; anything else is the error's chain of causes
/// with every address in it replaced (see [`without_addresses`]).
fn send_error_text(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let io_kind = causes(error).find_map(|cause| cause.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    let fixed = match io_kind {
        Some(ErrorKind::ConnectionRefused) => "connection refused",
        Some(ErrorKind::ConnectionReset) => "connection reset",
        Some(ErrorKind::ConnectionAborted) => "connection aborted",
        Some(ErrorKind::TimedOut) => "connection timed out",
        Some(ErrorKind::HostUnreachable) => "host unreachable",
        Some(ErrorKind::NetworkUnreachable) => "network unreachable",
        _ => return without_addresses(&describe(error)),
    };
    fixed.to_owned()
}

/// An error and its causes, outermost first.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&cause| cause.source())
}

/// An error with its chain of causes, each once.
fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    for cause in causes(error) {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
    }
    text
}

/// `text` with every IP address and socket address in it replaced by `<address>`.
///
/// The text is cut into words (runs of ASCII letters, digits, `.`, `:`, `[` and `]`); a word that is an address,
/// possibly followed by `.` or `:` punctuation, is replaced. This is the safety net for error texts that come from
/// the HTTP stack, whose wording we do not control.
fn without_addresses(text: &str) -> String {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let (word, after) = rest.split_at(rest.find(|c| !is_word_char(c)).unwrap_or(rest.len()));
        let core = if is_address(word) { word } else { word.trim_end_matches(['.', ':']) };
        if is_address(core) {
            out.push_str("<address>");
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
        let (gap, after) = after.split_at(after.find(is_word_char).unwrap_or(after.len()));
        out.push_str(gap);
        rest = after;
    }
    out
}

/// Whether `word` is an IP address, a socket address or a bracketed IPv6 address.
fn is_address(word: &str) -> bool {
    let bracketed_v6 =
        || word.strip_prefix('[').and_then(|w| w.strip_suffix(']')).is_some_and(|w| w.parse::<Ipv6Addr>().is_ok());
    // `::` alone is a valid address but, in error texts, a Rust path separator.
    word.bytes().any(|b| b.is_ascii_hexdigit())
        && (word.parse::<IpAddr>().is_ok() || word.parse::<SocketAddr>().is_ok() || bracketed_v6())
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    const STRICT: CallbackUrlPolicy = CallbackUrlPolicy { allow_private: false };

    fn at(ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, 443)
    }

    #[test]
    fn a_host_is_refused_if_any_resolved_address_is_private() {
        let public = at(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)));
        assert_eq!(check_resolved("example.com", vec![public], &STRICT), Ok(vec![public]));
        for private in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::new(192, 168, 1, 1).to_ipv6_mapped()),
        ] {
            let error = check_resolved("rebind.example", vec![public, at(private)], &STRICT).unwrap_err();
            assert_eq!(
                error,
                "callback_url host rebind.example resolves to a private or special-purpose address; set \
                 callbacks.allow_private = true or SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true to allow it for development"
            );
        }
        let lax = CallbackUrlPolicy { allow_private: true };
        let loopback = at(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(check_resolved("dev.example", vec![loopback], &lax), Ok(vec![loopback]));
        assert!(check_resolved("empty.example", Vec::new(), &STRICT).unwrap_err().contains("no addresses"));
    }

    #[tokio::test]
    async fn real_resolution_of_a_loopback_name_is_refused_without_naming_the_address() {
        let error = resolve_public("localhost", 80, &STRICT).await.unwrap_err();
        assert!(error.contains("resolves to a private or special-purpose address"), "{error}");
        assert!(!error.contains("127.0.0.1") && !error.contains("::1"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_to_a_resolved_address_does_not_name_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let pinned = pinned_client("callback.signoff.test", &[address]).unwrap();
        let url = format!("http://callback.signoff.test:{}/cb", address.port());
        let error = pinned.post(&url).body("{}").send().await.unwrap_err();
        assert!(format!("{error:?}").contains("127.0.0.1"), "the test needs an error that knows the address");
        assert_eq!(send_error_text(&error), "connection refused");
    }

    #[test]
    fn addresses_are_cut_out_of_error_texts() {
        for (text, expected) in [
            ("tcp connect error: 10.0.0.5:443: Connection refused", "tcp connect error: <address>: Connection refused"),
            (
                "error sending request for url (http://[fd00::1]:8080/cb)",
                "error sending request for url (http://<address>/cb)",
            ),
            ("no route to 172.16.0.1.", "no route to <address>."),
            ("peer [::1] and fe80::1%eth0 and 2001:db8::", "peer <address> and <address>%eth0 and <address>"),
            ("hosts 192.168.1.1,169.254.169.254", "hosts <address>,<address>"),
        ] {
            assert_eq!(without_addresses(text), expected);
        }
        for unchanged in [
            "hyper_util::client::legacy::Error",
            "client error (Connect): tcp connect error",
            "failed to lookup address information: Name or service not known",
            "os error 111",
            "version 1.2.3 and :: and a:b",
            "",
        ] {
            assert_eq!(without_addresses(unchanged), unchanged);
        }
    }

    #[tokio::test]
    async fn a_pinned_client_connects_only_to_the_checked_address_on_the_url_port() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before the request ended");
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        // The pinned address carries port 1; the URL's port must win, as reqwest documents.
        let pinned = pinned_client("callback.signoff.test", &[SocketAddr::new(address.ip(), 1)]).unwrap();
        let url = format!("http://callback.signoff.test:{}/cb", address.port());
        let response = pinned.post(&url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 204);
        let request = server.await.unwrap();
        assert!(
            request.to_ascii_lowercase().contains(&format!("host: callback.signoff.test:{}", address.port())),
            "{request}"
        );
    }

    #[test]
    fn result_accessors_report_what_happened() {
        let delivered = DeliveryResult::Delivered { status: 204, elapsed_ms: 3, response_excerpt: String::new() };
        assert!(delivered.is_final());
        assert_eq!((delivered.status(), delivered.elapsed_ms(), delivered.error()), (Some(204), 3, None));
        let gone = DeliveryResult::Gone { elapsed_ms: 4, response_excerpt: "bye".into() };
        assert!(gone.is_final());
        assert_eq!((gone.status(), gone.response_excerpt()), (Some(410), "bye"));
        let failed = DeliveryResult::Failed {
            status: None,
            error: "boom".into(),
            elapsed_ms: 5,
            response_excerpt: String::new(),
        };
        assert!(!failed.is_final());
        assert_eq!((failed.status(), failed.error()), (None, Some("boom")));
        let json = serde_json::to_value(&gone).unwrap();
        assert_eq!(json, serde_json::json!({"outcome": "gone", "elapsed_ms": 4, "response_excerpt": "bye"}));
    }

    #[test]
    fn user_agent_names_the_crate_and_version() {
        assert_eq!(USER_AGENT_VALUE, format!("signoff-webhooks/{}", env!("CARGO_PKG_VERSION")));
    }
}
