//! SMS through Twilio: the ask as one short text (`Signoff: Refund $50 to c_42? Reply A 4821 to approve or R 4821
//! <reason> to reject. Details: <link>`), kept within one GSM-7 segment where the summary allows; follow-ups when
//! the request is decided or moves on; the `X-Twilio-Signature` check of inbound messages; the replies people send
//! (`A 4821`, `R 4821 too big`, a question's `A 4821 <answer>`); and the TwiML answer to them.
//!
//! Outbound is `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`, `Body`, with
//! HTTP basic auth (account SID, auth token). Twilio's errors are JSON `{"code", "message", "more_info", "status"}`:
//! `429` (code 20429) waits out `Retry-After` when given, `5xx` is transient, other `4xx` (an invalid or unsubscribed
//! number, bad credentials) permanent.
//!
//! Carriers reserve STOP, HELP, YES, NO and their kin: none of them is ever a command here. Twilio answers them
//! itself; Signoff answers them with an empty TwiML response.

use crate::email::{heading, status_line};
use crate::{ProviderError, ProviderRef, RequestView};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use signoff_domain::{DecidedBy, Kind, Request};
use std::fmt;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long one call to Twilio may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Septets in one GSM-7 segment (a single, unconcatenated SMS).
pub const SEGMENT_SEPTETS: usize = 160;
/// The longest summary a message carries, whatever the segment allows.
pub const MAX_SUMMARY_CHARS: usize = 120;
/// The shortest a summary is cut to before the message is let run over one segment instead.
const MIN_SUMMARY_CHARS: usize = 24;
/// The route Twilio posts incoming messages to, below `SIGNOFF_PUBLIC_URL`.
pub const INBOUND_PATH: &str = "/channels/twilio/sms";

/// Twilio's account, credentials and sending number.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `AC…` (`SIGNOFF_TWILIO_ACCOUNT_SID`).
    pub account_sid: String,
    /// Signs inbound webhooks and authenticates outbound calls (`SIGNOFF_TWILIO_AUTH_TOKEN`).
    pub auth_token: String,
    /// The sending number in E.164, `+15005550006` (`SIGNOFF_TWILIO_FROM`).
    pub from: String,
    /// `https://api.twilio.com` (`SIGNOFF_TWILIO_API_URL`).
    pub api_url: String,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Sends SMS through one Twilio account. Its `Debug` never shows the auth token.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    config: TwilioConfig,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TwilioClient {
    /// A client for `config`; refuses an empty SID or token and a sending number that is not E.164.
    pub fn new(config: &TwilioConfig) -> Result<TwilioClient, ProviderError> {
        if config.account_sid.is_empty() || config.auth_token.is_empty() {
            return Err(ProviderError::permanent("twilio: the account SID and auth token must both be set"));
        }
        if !is_e164(&config.from) {
            return Err(ProviderError::permanent(format!(
                "twilio_from_invalid: `{}` is not a phone number in E.164 form (+15005550006)",
                config.from
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("twilio: cannot build the HTTP client: {e}")))?;
        let config = TwilioConfig { api_url: config.api_url.trim_end_matches('/').to_string(), ..config.clone() };
        Ok(TwilioClient { http, config })
    }

    /// Sends `body` to `to` (E.164, spaces, dashes and parentheses allowed); returns the message's SID (`SM…`).
    pub async fn send(&self, to: &str, body: &str) -> Result<ProviderRef, ProviderError> {
        let to = normalize_number(to);
        let to = to.as_str();
        if !is_e164(to) {
            return Err(ProviderError::permanent(format!(
                "sms_to_invalid: `{to}` is not a phone number in E.164 form"
            )));
        }
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.config.api_url, self.config.account_sid);
        let response = self
            .http
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&[("To", to), ("From", self.config.from.as_str()), ("Body", body)])
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("twilio: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::transient(format!("twilio: reading the answer: {}", e.without_url())))?;
        let answer = classify(status, retry_after, &bytes)?;
        match answer.get("sid").and_then(Value::as_str) {
            Some(sid) if !sid.is_empty() => Ok(sid.to_string()),
            _ => Err(ProviderError::transient("twilio: the answer has no message `sid`")),
        }
    }
}

/// Reads Twilio's answer: a `2xx` JSON message resource, or an error (see the module documentation).
pub fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Result<Value, ProviderError> {
    let answer: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        return answer.ok_or_else(|| ProviderError::transient("twilio: the answer is not JSON"));
    }
    let field = |name: &str| answer.as_ref().and_then(|a| a.get(name)).cloned().unwrap_or(Value::Null);
    let code = field("code").as_u64().map_or_else(|| "no code".to_string(), |c| format!("code {c}"));
    // Twilio's message is for operators; it can quote the number but never a credential.
    let said: String = field("message").as_str().unwrap_or("").chars().take(200).collect();
    let message = format!("twilio: HTTP {status} ({code}): {said}");
    match status {
        429 => Err(ProviderError { message, retry_after, permanent: false }),
        408 | 500.. => Err(ProviderError::transient(message)),
        _ => Err(ProviderError::permanent(message)),
    }
}

/// Whether `number` is E.164: `+` and 8 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// A phone number as written in a policy (`+1 (415) 555-0100`), reduced to `+` and its digits for comparing with
/// Twilio's `From`.
pub fn normalize_number(number: &str) -> String {
    number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect()
}

/// `X-Twilio-Signature` for a request to `url` with form `params`: base64 of HMAC-SHA1 (key: the auth token) over
/// the URL followed by every parameter's name and value, sorted by name (then value), concatenated without
/// separators; a parameter repeated with the same value counts once, as Twilio's helper libraries count it.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Why an inbound request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("twilio_signature_missing: the request has no X-Twilio-Signature header")]
    Missing,
    #[error("twilio_signature_invalid: X-Twilio-Signature does not match this request")]
    Invalid,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "twilio_signature_missing",
            SignatureError::Invalid => "twilio_signature_invalid",
        }
    }
}

/// Checks `header` (the `X-Twilio-Signature` value) against the request, in constant time.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> Result<(), SignatureError> {
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let expected = signature(auth_token, url, params);
    if bool::from(expected.as_bytes().ct_eq(header.trim().as_bytes())) { Ok(()) } else { Err(SignatureError::Invalid) }
}

/// What a reply asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `A 4821 [text]`: approve (the text is a comment), or answer a question (the text is the answer).
    Approve { code: String, text: String },
    /// `R 4821 <reason>`: reject.
    Reject { code: String, text: String },
    /// A word carriers reserve (STOP, HELP, YES, NO, …): never a command, and never answered.
    CarrierKeyword,
    /// Anything else: answered with how to reply.
    Unrecognized,
}

/// The words carriers and Twilio act on themselves (opt-out, opt-in, help), and YES and NO.
const CARRIER_KEYWORDS: [&str; 14] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "START",
    "UNSTOP",
    "YES",
    "NO",
    "HELP",
    "INFO",
    "OPTOUT",
    "REVOKE",
];

/// Reads a reply: a verb (`A` or `R`, any case), a code of digits, then free text; spaces and line breaks between
/// them are all one.
pub fn parse_reply(body: &str) -> Reply {
    let body = body.trim();
    let first_word = body.split_whitespace().next().unwrap_or("");
    if CARRIER_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(first_word)) && body.split_whitespace().count() == 1 {
        return Reply::CarrierKeyword;
    }
    let mut words = body.split_whitespace();
    let (Some(verb), Some(code)) = (words.next(), words.next()) else { return Reply::Unrecognized };
    let text = words.collect::<Vec<_>>().join(" ");
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Reply::Unrecognized;
    }
    let code = code.to_string();
    match verb {
        "A" | "a" => Reply::Approve { code, text },
        "R" | "r" => Reply::Reject { code, text },
        _ => Reply::Unrecognized,
    }
}

/// How to reply, for a message that could not be read.
pub fn help_text() -> &'static str {
    "Signoff: reply A <code> to approve, or R <code> <reason> to reject; a question: A <code> <answer>. The code is \
     in the message that asked you."
}

/// The ask: `Signoff: {summary}? Reply A {code} to approve or R {code} <reason> to reject. Details: {link}`; a
/// question: `Signoff asks: {question} Reply A {code} <answer>[ (1 Basic, 2 Pro)]. Details: {link}`. The summary is
/// cut (with `...`) so the message stays within one GSM-7 segment where it can.
pub fn ask_text(request: &Request, code: &str, link: &str) -> String {
    compose(request, "Signoff:", "Signoff asks:", code, link)
}

/// A reminder: the ask again, led by `Signoff reminder:`, with the same code.
pub fn reminder_text(request: &Request, code: &str, link: &str) -> String {
    compose(request, "Signoff reminder:", "Signoff reminder:", code, link)
}

/// The follow-up once the request is decided or moved on (`Signoff 4821: Refund $50 to c_42: Approved by Dana via
/// slack at 16:02 UTC`); `None` while it still waits in the same group (quorum progress is not worth a text).
pub fn update_text(request: &Request, view: &RequestView, code: &str) -> Option<String> {
    if request.decision.is_none() && view.moved_to.is_none() {
        return None;
    }
    let status = status_line(request, view);
    let summary = cut(&heading(request), MAX_SUMMARY_CHARS);
    Some(fit(&format!("Signoff {code}: "), &summary, &format!(": {status}")))
}

/// Whether an update about `request` would only repeat what the TwiML answer told `person` already: they decided it
/// themselves, by SMS.
pub fn decided_by_sms_reply(request: &Request, person: Option<&signoff_domain::ApproverId>) -> bool {
    matches!(
        request.decision.as_ref().map(|d| &d.by),
        Some(DecidedBy::Human { approver_id, channel: signoff_domain::Channel::Sms }) if Some(approver_id) == person
    )
}

fn compose(request: &Request, lead: &str, question_lead: &str, code: &str, link: &str) -> String {
    let summary = cut(&heading(request), MAX_SUMMARY_CHARS);
    match request.kind {
        Kind::Approval => {
            let summary = summary.trim_end_matches('?').to_string();
            let tail = format!("? Reply A {code} to approve or R {code} <reason> to reject. Details: {link}");
            fit(&format!("{lead} "), &summary, &tail)
        }
        Kind::Question => {
            let options = if request.options.is_empty() {
                String::new()
            } else {
                let listed: Vec<String> =
                    request.options.iter().enumerate().map(|(i, option)| format!("{} {option}", i + 1)).collect();
                format!(" ({})", listed.join(", "))
            };
            let tail = format!(" Reply A {code} <answer>{options}. Details: {link}");
            fit(&format!("{question_lead} "), &summary, &tail)
        }
    }
}

/// `head + summary + tail`, the summary cut so the whole fits one GSM-7 segment if it can while keeping at least
/// [`MIN_SUMMARY_CHARS`] of it; otherwise the whole summary (the message then runs over several segments).
fn fit(head: &str, summary: &str, tail: &str) -> String {
    let whole = format!("{head}{summary}{tail}");
    if !is_gsm7(&whole) || septets(&whole) <= SEGMENT_SEPTETS {
        return whole;
    }
    let room = SEGMENT_SEPTETS.saturating_sub(septets(head) + septets(tail) + 3);
    let mut cut_summary = String::new();
    for c in summary.chars() {
        if septets(&cut_summary) + septets(&c.to_string()) > room {
            break;
        }
        cut_summary.push(c);
    }
    if cut_summary.chars().count() < MIN_SUMMARY_CHARS {
        return whole;
    }
    format!("{head}{}...{tail}", cut_summary.trim_end())
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(max).collect::<String>())
    }
}

/// GSM 03.38's basic character set.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each of these takes two septets (an escape, then the character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Whether `text` can be sent in GSM-7 (otherwise it goes as UCS-2, 70 characters a segment).
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENDED.contains(c))
}

/// How many septets `text` takes in GSM-7 (characters outside it count one; check [`is_gsm7`] first).
pub fn septets(text: &str) -> usize {
    text.chars().map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 }).sum()
}

/// A TwiML answer: `message` sent back to the person, or nothing when `None`.
pub fn twiml(message: Option<&str>) -> String {
    match message {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".to_string(),
    }
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters at all.
            c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The worked example of Twilio's webhook security documentation (and its helper libraries' tests): auth token
    /// `12345`, this URL and these parameters sign as `RSOYDt4T1cUTdK1PDd93/VVr8B8=`.
    #[test]
    fn the_signature_matches_twilios_documented_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = params(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(signature("12345", url, &form), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(verify_signature("12345", url, &form, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), Ok(()));
        assert_eq!(verify_signature("12346", url, &form, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), Err(SignatureError::Invalid));
        let other_url = "https://mycompany.com/myapp.php?foo=1&bar=3";
        assert_eq!(
            verify_signature("12345", other_url, &form, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Err(SignatureError::Invalid)
        );
        let mut tampered = form.clone();
        tampered[0].1 = "9999".into();
        assert_eq!(
            verify_signature("12345", url, &tampered, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Err(SignatureError::Invalid)
        );
        assert_eq!(verify_signature("12345", url, &form, ""), Err(SignatureError::Missing));
        // The helper libraries' vector for a repeated parameter.
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(signature("12345", url, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn replies_read_verb_code_and_text_and_carrier_words_are_never_commands() {
        let approve = |code: &str, text: &str| Reply::Approve { code: code.into(), text: text.into() };
        assert_eq!(parse_reply("A 4821"), approve("4821", ""));
        assert_eq!(parse_reply("  a   4821  \n"), approve("4821", ""));
        assert_eq!(parse_reply("A 4821 looks fine"), approve("4821", "looks fine"));
        assert_eq!(parse_reply("R 4821 too   big"), Reply::Reject { code: "4821".into(), text: "too big".into() });
        assert_eq!(parse_reply("r 4821\ntoo big"), Reply::Reject { code: "4821".into(), text: "too big".into() });
        for word in ["STOP", "stop", "HELP", "Yes", "NO", "unsubscribe", "START"] {
            assert_eq!(parse_reply(word), Reply::CarrierKeyword, "{word}");
        }
        for garbage in ["", "A", "4821", "A x821", "Y 4821", "YES 4821", "A 123456789", "approve 4821", "A4821"] {
            assert_eq!(parse_reply(garbage), Reply::Unrecognized, "{garbage:?}");
        }
    }

    #[test]
    fn numbers_are_e164_and_normalized_for_comparison() {
        assert!(is_e164("+14155550100"));
        for bad in ["14155550100", "+0123456789", "+1415", "+1415555010012345", "+1 415 555 0100", ""] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert_eq!(normalize_number("+1 (415) 555-0100"), "+14155550100");
    }

    #[test]
    fn gsm7_counts_extension_characters_twice() {
        assert!(is_gsm7("Refund $50 to c_42? {ok}"));
        assert_eq!(septets("a{b}"), 6);
        assert!(!is_gsm7("Refund 50 € … to Zoë"));
        assert!(!is_gsm7("😀"));
    }

    #[test]
    fn twilio_errors_are_classified_with_their_code() {
        let body = br#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#;
        let limited = classify(429, Some(Duration::from_secs(3)), body).unwrap_err();
        assert!(!limited.permanent && limited.retry_after == Some(Duration::from_secs(3)), "{limited:?}");
        assert!(limited.message.contains("code 20429"), "{limited:?}");
        let body = br#"{"code": 21211, "message": "The 'To' number is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let invalid = classify(400, None, body).unwrap_err();
        assert!(invalid.permanent && invalid.message.contains("21211"), "{invalid:?}");
        assert!(!classify(503, None, b"<html>").unwrap_err().permanent);
        assert!(classify(201, None, b"not json").is_err());
        assert_eq!(classify(201, None, br#"{"sid": "SM1"}"#).unwrap()["sid"], "SM1");
    }

    fn request(summary: &str) -> Request {
        let mut new = signoff_domain::NewRequest::action("refund");
        new.summary = Some(summary.to_string());
        let requester = signoff_domain::Requester { key_id: "k".into(), key_name: "bot".into(), responsible: None };
        Request::new(signoff_domain::RequestId::new(), new, requester, chrono::Utc::now())
    }

    const LINK: &str = "https://signoff.example.com/s/AbCdEfGhIjKlMnOpQrS";

    #[test]
    fn an_ask_fits_one_segment_by_cutting_a_long_summary() {
        let short = ask_text(&request("Refund $50 to c_42"), "4821", LINK);
        assert_eq!(
            short,
            format!(
                "Signoff: Refund $50 to c_42? Reply A 4821 to approve or R 4821 <reason> to reject. Details: {LINK}"
            )
        );
        let long = ask_text(&request(&"Refund the whole order to the customer ".repeat(5)), "4821", LINK);
        assert!(is_gsm7(&long) && septets(&long) <= SEGMENT_SEPTETS, "{} septets: {long}", septets(&long));
        assert!(long.starts_with("Signoff: Refund the whole order") && long.contains("...? Reply A 4821"), "{long}");
        assert!(long.ends_with(LINK), "the link is never cut: {long}");
        // Outside GSM-7 the message goes as UCS-2 whatever its length: the summary is kept (up to its cap).
        let unicode = ask_text(&request("Rückerstattung 50 € für Zoë – bitte prüfen"), "4821", LINK);
        assert!(unicode.contains("Rückerstattung 50 € für Zoë – bitte prüfen?"), "{unicode}");
        let reminder = reminder_text(&request("Refund $50 to c_42"), "4821", LINK);
        assert!(reminder.starts_with("Signoff reminder: Refund $50 to c_42? Reply A 4821"), "{reminder}");
    }

    #[test]
    fn twiml_escapes_and_an_empty_answer_says_nothing() {
        let answer = twiml(Some("Approved <b>&</b> \u{7}done"));
        assert!(answer.contains("<Message>Approved &lt;b&gt;&amp;&lt;/b&gt; done</Message>"), "{answer}");
        assert!(!twiml(None).contains("<Message>"));
    }

    #[test]
    fn debug_hides_the_auth_token() {
        let config = TwilioConfig {
            account_sid: "AC123".into(),
            auth_token: "hunter2-token".into(),
            from: "+15005550006".into(),
            api_url: "https://api.twilio.com".into(),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        let client = TwilioClient::new(&config).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
        let bad_from = TwilioClient::new(&TwilioConfig { from: "5550006".into(), ..config }).unwrap_err();
        assert!(bad_from.permanent && bad_from.message.starts_with("twilio_from_invalid"), "{bad_from:?}");
    }
}
