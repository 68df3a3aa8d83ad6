//! A local stand-in for Twilio: the Messages resource (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
//! HTTP basic auth) answering like Twilio does (a `201` message resource, or Twilio's error JSON with `code`,
//! `message`, `more_info` and `status`, a `429` with code 20429 when rate limited), and the inbound webhooks Twilio
//! posts for an incoming SMS, signed with `X-Twilio-Signature` the way Twilio signs them (written here apart from the
//! code under test, so each checks the other).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use signoff_notify::sms::TwilioConfig;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The account the fake serves.
pub const FAKE_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// Its auth token: authenticates outbound calls and signs inbound webhooks.
pub const FAKE_AUTH_TOKEN: &str = "fake-twilio-auth-token";
/// Signoff's number at the fake (Twilio's magic test number).
pub const FAKE_FROM: &str = "+15005550006";

/// One call to the Messages resource, as the fake saw it.
#[derive(Debug, Clone)]
pub struct TwilioCall {
    /// The form fields, in order.
    pub form: Vec<(String, String)>,
    /// Whether basic auth carried the fake's SID and token.
    pub authorized: bool,
    pub content_type: String,
    /// The status answered.
    pub answered: u16,
    /// The answer's body.
    pub answer: Value,
}

impl TwilioCall {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

#[derive(Default)]
struct Faults {
    /// Answer `429` (code 20429) to the next `.0` calls, with `Retry-After: .1` when set.
    rate_limited: (usize, Option<u64>),
    /// Numbers Twilio refuses as invalid (code 21211).
    invalid_numbers: HashSet<String>,
}

struct Inner {
    calls: Mutex<Vec<TwilioCall>>,
    faults: Mutex<Faults>,
    next_sid: AtomicU64,
}

/// A fake Twilio REST API on `127.0.0.1`.
pub struct FakeTwilio {
    url: String,
    inner: Arc<Inner>,
}

impl FakeTwilio {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeTwilio {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake twilio");
        let url = format!("http://{}", listener.local_addr().expect("fake twilio address"));
        let inner = Arc::new(Inner { calls: Mutex::default(), faults: Mutex::default(), next_sid: AtomicU64::new(1) });
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{account}/Messages.json", axum::routing::post(create_message))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTwilio { url, inner }
    }

    /// A Twilio configuration pointing at this fake.
    pub fn config(&self) -> TwilioConfig {
        TwilioConfig {
            account_sid: FAKE_ACCOUNT_SID.into(),
            auth_token: FAKE_AUTH_TOKEN.into(),
            from: FAKE_FROM.into(),
            api_url: self.url.clone(),
        }
    }

    /// The next `calls` calls answer `429` with Twilio's code 20429 (and `Retry-After` when `retry_after_s` is set).
    pub fn rate_limit_next(&self, calls: usize, retry_after_s: Option<u64>) {
        self.inner.faults.lock().unwrap().rate_limited = (calls, retry_after_s);
    }

    /// From now on, messages to `number` are refused as invalid (`400`, code 21211).
    pub fn refuse_number(&self, number: &str) {
        self.inner.faults.lock().unwrap().invalid_numbers.insert(number.to_string());
    }

    pub fn calls(&self) -> Vec<TwilioCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Every message accepted, oldest first.
    pub fn messages(&self) -> Vec<SentSms> {
        let accepted = self.calls().into_iter().filter(|c| c.answered == 201);
        accepted
            .map(|c| SentSms {
                sid: c.answer["sid"].as_str().unwrap_or_default().to_string(),
                to: c.field("To").unwrap_or_default().to_string(),
                from: c.field("From").unwrap_or_default().to_string(),
                body: c.field("Body").unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// The messages accepted for `to`.
    pub fn messages_to(&self, to: &str) -> Vec<SentSms> {
        self.messages().into_iter().filter(|m| m.to == to).collect()
    }

    /// Waits until `count` messages to `to` were accepted, or panics after `within`.
    pub async fn wait_for(&self, to: &str, count: usize, within: Duration) -> Vec<SentSms> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let messages = self.messages_to(to);
            if messages.len() >= count {
                return messages;
            }
            assert!(tokio::time::Instant::now() < deadline, "only these calls arrived: {:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Twilio's error body.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let expected = format!("Basic {}", STANDARD.encode(format!("{FAKE_ACCOUNT_SID}:{FAKE_AUTH_TOKEN}")));
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let authorized = authorization == expected;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let response = answer(&inner, &account, authorized, &content_type, field("To"), field("From"), field("Body"));
    let (parts, bytes) = response.into_parts();
    let bytes = axum::body::to_bytes(bytes, 1 << 20).await.unwrap_or_default();
    let answered = parts.status.as_u16();
    let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    inner.calls.lock().unwrap().push(TwilioCall { form, authorized, content_type, answered, answer });
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn answer(
    inner: &Inner,
    account: &str,
    authorized: bool,
    content_type: &str,
    to: Option<String>,
    from: Option<String>,
    body: Option<String>,
) -> Response {
    if !authorized {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if account != FAKE_ACCOUNT_SID {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return twilio_error(StatusCode::BAD_REQUEST, 20001, "Invalid content type");
    }
    let mut faults = inner.faults.lock().unwrap();
    if faults.rate_limited.0 > 0 {
        faults.rate_limited.0 -= 1;
        let mut response = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        if let Some(seconds) = faults.rate_limited.1 {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        return response;
    }
    let Some(to) = to.filter(|to| !to.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.");
    };
    if faults.invalid_numbers.contains(&to) {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if from.as_deref() != Some(FAKE_FROM) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21606,
            "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account.",
        );
    }
    let Some(body) = body.filter(|b| !b.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let sid = format!("SM{:032x}", inner.next_sid.fetch_add(1, Ordering::SeqCst));
    let resource = json!({
        "sid": sid,
        "account_sid": FAKE_ACCOUNT_SID,
        "to": to,
        "from": FAKE_FROM,
        "body": body,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "api_version": "2010-04-01",
        "error_code": null,
        "error_message": null,
        "uri": format!("/2010-04-01/Accounts/{FAKE_ACCOUNT_SID}/Messages/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

/// An incoming SMS as Twilio posts it to a messaging webhook: its form fields and `X-Twilio-Signature`.
#[derive(Debug, Clone)]
pub struct InboundSms {
    pub form: Vec<(String, String)>,
    pub signature: String,
}

impl InboundSms {
    /// The webhook for `body` sent from `from` to [`FAKE_FROM`], signed for `url` (the webhook URL configured at
    /// Twilio) with [`FAKE_AUTH_TOKEN`].
    pub fn new(url: &str, from: &str, body: &str) -> InboundSms {
        InboundSms::signed_with(FAKE_AUTH_TOKEN, url, from, body)
    }

    /// Like [`InboundSms::new`], signed with another token.
    pub fn signed_with(auth_token: &str, url: &str, from: &str, body: &str) -> InboundSms {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let form: Vec<(String, String)> = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("ToCity", ""),
            ("FromZip", ""),
            ("SmsSid", sid.as_str()),
            ("FromState", ""),
            ("SmsStatus", "received"),
            ("FromCity", ""),
            ("Body", body),
            ("FromCountry", "US"),
            ("To", FAKE_FROM),
            ("ToZip", ""),
            ("NumSegments", "1"),
            ("MessageSid", sid.as_str()),
            ("AccountSid", FAKE_ACCOUNT_SID),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Twilio's scheme: the URL, then each parameter's name and value, sorted by name.
        let mut sorted = form.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut data = url.to_string();
        for (name, value) in &sorted {
            data.push_str(name);
            data.push_str(value);
        }
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
        mac.update(data.as_bytes());
        InboundSms { form, signature: STANDARD.encode(mac.finalize().into_bytes()) }
    }

    /// Posts it to `endpoint` (where the app listens) as Twilio would: form-encoded, with the signature header.
    pub fn send(&self, http: &reqwest::Client, endpoint: &str) -> reqwest::RequestBuilder {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.form).finish();
        http.post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &self.signature)
            .header("user-agent", "TwilioProxy/1.1")
            .body(body)
    }
}
