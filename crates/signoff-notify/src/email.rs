//! Email: the ask (multipart text + HTML with Approve, Reject and Review links; a question's with Answer and
//! Answer-in-dashboard links) and the outcome as a reply in the same
//! thread, sent over SMTP with `lettre` on tokio and rustls.
//!
//! `smtp_url` is lettre's connection URL: `smtps://user:pass@host:465` (TLS from the start),
//! `smtp://host:587?tls=required` (STARTTLS, required), `smtp://host:587?tls=opportunistic` (STARTTLS when offered),
//! or `smtp://host:2525` (plain, for a local relay). SMTP `4xx` answers and connection failures are transient, `5xx`
//! answers permanent.

use crate::digest::DigestView;
use crate::links::{LinkClaims, LinkOutcome, LinkSigner};
use crate::{ProviderError, ProviderRef, RequestView};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use signoff_domain::{ApproverId, DecidedBy, DecisionOutcome, Kind, Request, Status};
use std::fmt;

/// The longest an email link lives, whatever the request's deadline.
pub const MAX_LINK_LIFETIME: Duration = Duration::days(7);
/// How long one SMTP delivery may take.
pub const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where and as whom to send.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// lettre's connection URL (see the module documentation); may carry a password.
    pub smtp_url: String,
    /// The `From` mailbox: `Signoff <signoff@example.com>` or `signoff@example.com`.
    pub from: String,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig").field("smtp_url", &redact_url(&self.smtp_url)).field("from", &self.from).finish()
    }
}

/// The links an ask carries: what the person can do from the email, and the request's page in the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLinks {
    pub actions: EmailActions,
    pub dashboard: String,
}

/// The signed links of an ask, by the request's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailActions {
    /// An approval: Approve and Reject, each opening a confirmation page.
    Decide { approve: String, reject: String },
    /// A question: Answer, opening a page with a form for the answer.
    Answer { answer: String },
}

impl EmailLinks {
    /// Signed links for `person`, asked as a member of `group`: `{public_url}/channels/email/act?token=…` for
    /// Approve and Reject (a question: Answer), each with its own nonce, living until the request's deadline and at
    /// most [`MAX_LINK_LIFETIME`]; and the request's page in the dashboard, `{public_url}/requests/{id}`.
    pub fn signed(
        signer: &LinkSigner,
        public_url: &str,
        request: &Request,
        person: &ApproverId,
        group: &str,
        now: DateTime<Utc>,
    ) -> EmailLinks {
        let expires_at = link_expiry(request.deadline_at, now);
        let link = |outcome| {
            let claims = LinkClaims {
                request_id: request.id,
                approver_id: person.clone(),
                outcome,
                group: group.to_string(),
                nonce: LinkClaims::new_nonce(),
                expires_at,
            };
            format!("{public_url}/channels/email/act?token={}", signer.sign(&claims))
        };
        let actions = match request.kind {
            Kind::Approval => {
                EmailActions::Decide { approve: link(LinkOutcome::Approve), reject: link(LinkOutcome::Reject) }
            }
            Kind::Question => EmailActions::Answer { answer: link(LinkOutcome::Answer) },
        };
        EmailLinks { actions, dashboard: format!("{public_url}/requests/{}", request.id) }
    }
}

/// When a link sent at `now` stops working: the request's deadline, but no later than [`MAX_LINK_LIFETIME`].
pub fn link_expiry(deadline_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let cap = now + MAX_LINK_LIFETIME;
    deadline_at.map_or(cap, |deadline| deadline.min(cap))
}

/// Sends Signoff's email over one SMTP relay. Its `Debug` never shows the SMTP password.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// A mailer for `config`; refuses an SMTP URL lettre cannot use or a `from` that is not a mailbox.
    pub fn new(config: &EmailConfig) -> Result<Mailer, ProviderError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| ProviderError::permanent(format!("smtp_url_invalid: {e}")))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| ProviderError::permanent(format!("email_from_invalid: `{}`: {e}", config.from)))?;
        Ok(Mailer { transport, from, server: redact_url(&config.smtp_url) })
    }

    /// The ask: subject `Approve: {summary}? ({action}, rule {rule})`, text + HTML, links Approve / Reject / Review
    /// in dashboard. With `reminding`, the same ask again as a reminder: a reply in the thread of the earlier ask
    /// (`Re:` its subject, `In-Reply-To` and `References` set), with fresh links. Returns the message's `Message-ID`,
    /// angle brackets included.
    pub async fn send_request(
        &self,
        to: &str,
        request: &Request,
        view: &RequestView,
        links: &EmailLinks,
        reminding: Option<&ProviderRef>,
    ) -> Result<ProviderRef, ProviderError> {
        let details = details(request, view);
        let lead = match reminding {
            Some(_) => reminder_lead(request, view),
            None if request.kind == Kind::Question => "Signoff has a question for you".to_string(),
            None => "Signoff asks for your approval".to_string(),
        };
        let text = request_text(&lead, request, &details, links);
        let (decide, answer) = match &links.actions {
            EmailActions::Decide { approve, reject } => (Some((approve.as_str(), reject.as_str())), None),
            EmailActions::Answer { answer } => (None, Some(answer.as_str())),
        };
        let html = RequestHtml {
            lead: &lead,
            heading: heading(request),
            details: &details,
            decide,
            answer,
            dashboard: &links.dashboard,
            request_id: request.id.to_string(),
        }
        .render()
        .map_err(|e| ProviderError::permanent(format!("email_render_failed: {e}")))?;
        let message_id = self.message_id(request);
        let mut message = self.builder(to)?.message_id(Some(message_id.clone()));
        message = match reminding {
            Some(thread) => message
                .subject(format!("Re: {}", subject(request)))
                .in_reply_to(thread.clone())
                .references(thread.clone()),
            None => message.subject(subject(request)),
        };
        self.send(message, text, html).await?;
        Ok(message_id)
    }

    /// The outcome (or escalation, or quorum progress) as a reply in the same thread: `Re:` the ask's subject,
    /// `In-Reply-To` and `References` set to `thread`. Returns the reply's `Message-ID`.
    pub async fn send_update(
        &self,
        to: &str,
        thread: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let status = status_line(request, view);
        let details = details(request, view);
        let mut text = format!("{status}\n\n{}\n\n", heading(request));
        for detail in &details {
            text.push_str(&format!("{}: {}\n", detail.label, detail.value));
        }
        let html = UpdateHtml { status: &status, heading: heading(request), details: &details }
            .render()
            .map_err(|e| ProviderError::permanent(format!("email_render_failed: {e}")))?;
        let message_id = self.message_id(request);
        let message = self
            .builder(to)?
            .subject(format!("Re: {}", subject(request)))
            .message_id(Some(message_id.clone()))
            .in_reply_to(thread.clone())
            .references(thread.clone());
        self.send(message, text, html).await?;
        Ok(message_id)
    }

    /// A digest: subject the digest's headline, a line per request linking to its dashboard page, and a
    /// **Review all** link to the dashboard's batch page (text + HTML). Returns its `Message-ID`.
    pub async fn send_digest(&self, to: &str, digest: &DigestView) -> Result<ProviderRef, ProviderError> {
        let headline = digest.headline();
        let lines: Vec<(String, String)> =
            digest.items.iter().map(|item| (digest.item_line(item), digest.request_url(item.id))).collect();
        let mut text = format!("{headline}\n\n");
        for (line, url) in &lines {
            text.push_str(&format!("- {line}\n  {url}\n"));
        }
        text.push_str(&format!("\nReview all:\n{}\n", digest.review_all_url()));
        let html = DigestHtml { headline: &headline, lines: &lines, review_all: &digest.review_all_url() }
            .render()
            .map_err(|e| ProviderError::permanent(format!("email_render_failed: {e}")))?;
        let random: String = LinkClaims::new_nonce().chars().filter(char::is_ascii_alphanumeric).collect();
        let message_id = format!("<digest.{random}@{}>", self.from.email.domain());
        let message = self
            .builder(to)?
            .subject(format!("Signoff: {}", one_line(&headline, 200)))
            .message_id(Some(message_id.clone()));
        self.send(message, text, html).await?;
        Ok(message_id)
    }

    /// A dashboard sign-in link: `Sign in to Signoff`, valid once until `expires_at`. Returns its `Message-ID`.
    pub async fn send_sign_in(
        &self,
        to: &str,
        link: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<ProviderRef, ProviderError> {
        let random: String = LinkClaims::new_nonce().chars().filter(char::is_ascii_alphanumeric).collect();
        let message_id = format!("<sign-in.{random}@{}>", self.from.email.domain());
        let until = format_time(expires_at);
        let text = format!(
            "Sign in to the Signoff dashboard:\n{link}\n\nThe link works once, until {until}. If you did not ask \
             for it, ignore this message: nobody can use it without this mailbox.\n"
        );
        let html = SignInHtml { link, until: &until }
            .render()
            .map_err(|e| ProviderError::permanent(format!("email_render_failed: {e}")))?;
        let message = self.builder(to)?.subject("Sign in to Signoff").message_id(Some(message_id.clone()));
        self.send(message, text, html).await?;
        Ok(message_id)
    }

    /// A message that checks the wiring (`signoff channels test email --to ADDRESS`). Returns its `Message-ID`.
    pub async fn send_test(&self, to: &str) -> Result<ProviderRef, ProviderError> {
        let random: String = LinkClaims::new_nonce().chars().filter(char::is_ascii_alphanumeric).collect();
        let message_id = format!("<test.{random}@{}>", self.from.email.domain());
        let text = "This is a test message from Signoff: email notifications reach this address.".to_string();
        let html = format!("<p>{text}</p>");
        let message = self.builder(to)?.subject("Signoff: test message").message_id(Some(message_id.clone()));
        self.send(message, text, html).await?;
        Ok(message_id)
    }

    fn builder(&self, to: &str) -> Result<lettre::message::MessageBuilder, ProviderError> {
        let to =
            to.parse::<Mailbox>().map_err(|e| ProviderError::permanent(format!("email_to_invalid: `{to}`: {e}")))?;
        Ok(Message::builder().from(self.from.clone()).to(to))
    }

    /// `<{request id}.{random}@{the From domain}>`: unique, and the right part names us.
    fn message_id(&self, request: &Request) -> String {
        let random: String = LinkClaims::new_nonce().chars().filter(char::is_ascii_alphanumeric).collect();
        format!("<{}.{random}@{}>", request.id, self.from.email.domain())
    }

    async fn send(
        &self,
        message: lettre::message::MessageBuilder,
        text: String,
        html: String,
    ) -> Result<(), ProviderError> {
        let message = message
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| ProviderError::permanent(format!("email_build_failed: {e}")))?;
        self.transport.send(message).await.map(drop).map_err(classify)
    }
}

/// SMTP `5xx` is permanent; `4xx`, timeouts, TLS and connection failures may pass.
fn classify(error: lettre::transport::smtp::Error) -> ProviderError {
    let message = match error.status() {
        Some(code) => format!("smtp_refused: the server answered {code}: {error}"),
        None => format!("smtp_failed: {error}"),
    };
    if error.is_permanent() { ProviderError::permanent(message) } else { ProviderError::transient(message) }
}

/// An SMTP URL with its password replaced by `***`, for Debug and logs.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable smtp url>".into(),
    }
}

/// One labelled line of a request's details, shared by the emails and the confirmation pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub label: &'static str,
    pub value: String,
}

/// The longest argument value shown before it is folded with `…`.
pub const MAX_VALUE_CHARS: usize = 300;

/// The subject of the ask: `Approve: {summary or action}? ({action}, rule {rule})`, on one line.
pub fn subject(request: &Request) -> String {
    if let Some(question) = request.question.as_deref().filter(|_| request.kind == Kind::Question) {
        return format!("Question: {} ({})", one_line(question, 150), request.action);
    }
    let what = one_line(request.summary.as_deref().unwrap_or(&request.action), 150);
    let what = what.trim_end_matches('?');
    match rule(request) {
        Some(rule) => format!("Approve: {what}? ({}, rule {rule})", request.action),
        None => format!("Approve: {what}? ({})", request.action),
    }
}

/// The summary, else the action.
pub fn heading(request: &Request) -> String {
    let question = request.question.as_deref().filter(|_| request.kind == Kind::Question);
    one_line(question.or(request.summary.as_deref()).unwrap_or(&request.action), 500)
}

/// What a request shows: action, arguments, reasoning, confidence, tags, rule, deadline, quorum progress.
pub fn details(request: &Request, view: &RequestView) -> Vec<Detail> {
    let mut details = vec![Detail { label: "Action", value: request.action.clone() }];
    if let Some(question) = request.question.as_deref().filter(|_| request.kind == Kind::Question) {
        details.push(Detail { label: "Question", value: question.to_string() });
        if !request.options.is_empty() {
            details.push(Detail { label: "Options", value: request.options.join("\n") });
        }
    }
    details.push(Detail { label: "Arguments", value: readable_args(&request.args) });
    if let Some(reasoning) = &request.reasoning {
        details.push(Detail { label: "Reasoning", value: reasoning.clone() });
    }
    if let Some(confidence) = request.confidence {
        details.push(Detail { label: "Confidence", value: format!("{confidence:.2}") });
    }
    if !request.tags.is_empty() {
        details.push(Detail { label: "Tags", value: request.tags.join(", ") });
    }
    if let Some(rule) = rule(request) {
        details.push(Detail { label: "Rule", value: rule.to_string() });
    }
    if let Some(group) = &request.group {
        details.push(Detail { label: "Group", value: group.clone() });
    }
    if let Some(deadline) = request.deadline_at {
        details.push(Detail { label: "Deadline", value: format_time(deadline) });
    }
    details.push(Detail { label: "Approvals", value: quorum(request, view) });
    details
}

/// Where the request stands, in one sentence: "Approved by Dana via email at 16:02 UTC (arguments edited)",
/// "Rejected by Carl at 09:15 UTC: duplicate", "Moved to cfo", "1 of 2 approvals: Carl", "Waiting for approval".
pub fn status_line(request: &Request, view: &RequestView) -> String {
    if let Some(decision) = &request.decision {
        let at = decision.at.format("%H:%M UTC");
        let outcome = match decision.outcome {
            DecisionOutcome::Approved => "Approved",
            DecisionOutcome::Rejected => "Rejected",
            DecisionOutcome::Expired => "Expired",
            DecisionOutcome::Cancelled => "Cancelled",
            DecisionOutcome::Answered => "Answered",
        };
        let mut line = match &decision.by {
            DecidedBy::Human { approver_id, channel } => {
                format!("{outcome} by {} via {channel} at {at}", view.name_of(approver_id))
            }
            DecidedBy::Policy { rule } => format!("{outcome} by policy rule {rule} at {at}"),
            DecidedBy::Timeout => format!("{outcome} at {at}: the deadline passed"),
            DecidedBy::Agent { .. } => format!("{outcome} by the agent at {at}"),
            DecidedBy::Grant { grant_id, approver_id } => {
                format!("{outcome} by standing grant {grant_id} of {} at {at}", view.name_of(approver_id))
            }
        };
        if decision.edited {
            line.push_str(" (arguments edited)");
        }
        if let Some(answer) = &decision.answer {
            line.push_str(&format!(": “{answer}”"));
        }
        if let Some(reason) = &decision.reason {
            line.push_str(&format!(": {reason}"));
        }
        return line;
    }
    if let Some(group) = &view.moved_to {
        return format!("Moved to {group}");
    }
    if request.status == Status::Pending && !request.approvals.is_empty() {
        return quorum(request, view);
    }
    "Waiting for approval".into()
}

/// A reminder's first line: "Reminder: this request still waits for your decision (deadline 2026-12-01 18:00 UTC)".
fn reminder_lead(request: &Request, view: &RequestView) -> String {
    let mut lead = "Reminder: this request still waits for your decision".to_string();
    match request.deadline_at {
        Some(deadline) => lead.push_str(&format!(" (deadline {}; {})", format_time(deadline), quorum(request, view))),
        None => lead.push_str(&format!(" ({})", quorum(request, view))),
    }
    lead
}

/// "1 of 2 approvals: Carl", or "0 of 1 approvals".
fn quorum(request: &Request, view: &RequestView) -> String {
    let names: Vec<&str> = request.approvals.iter().map(|a| view.name_of(&a.approver_id)).collect();
    let counted = format!("{} of {} approvals", request.approvals.len(), request.approvals_required);
    if names.is_empty() { counted } else { format!("{counted}: {}", names.join(", ")) }
}

fn rule(request: &Request) -> Option<&str> {
    request.policy.as_ref().and_then(|p| p.rule.as_deref())
}

fn format_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Top-level object members as `key: value` lines (strings without quotes), other JSON compact; long values folded.
pub fn readable_args(args: &serde_json::Value) -> String {
    let show = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => fold(s),
        other => fold(&other.to_string()),
    };
    match args {
        serde_json::Value::Object(members) if !members.is_empty() => {
            members.iter().map(|(key, value)| format!("{key}: {}", show(value))).collect::<Vec<_>>().join("\n")
        }
        other => show(other),
    }
}

fn fold(s: &str) -> String {
    if s.chars().count() <= MAX_VALUE_CHARS {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX_VALUE_CHARS).collect::<String>())
    }
}

fn one_line(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max { line } else { format!("{}…", line.chars().take(max).collect::<String>()) }
}

fn request_text(lead: &str, request: &Request, details: &[Detail], links: &EmailLinks) -> String {
    let mut text = format!("{lead}\n\n{}\n\n", heading(request));
    for detail in details {
        if detail.value.contains('\n') {
            text.push_str(&format!("{}:\n  {}\n", detail.label, detail.value.replace('\n', "\n  ")));
        } else {
            text.push_str(&format!("{}: {}\n", detail.label, detail.value));
        }
    }
    match &links.actions {
        EmailActions::Decide { approve, reject } => text.push_str(&format!(
            "\nApprove:\n{approve}\n\nReject:\n{reject}\n\nReview in dashboard:\n{}\n\n\
             Each link opens a page that asks you to confirm; nothing is decided until you do.\n",
            links.dashboard
        )),
        EmailActions::Answer { answer } => text.push_str(&format!(
            "\nAnswer:\n{answer}\n\nAnswer in dashboard:\n{}\n\n\
             The Answer link opens a page with a form; nothing is answered until you send it.\n",
            links.dashboard
        )),
    }
    text
}

#[derive(Template)]
#[template(path = "email_digest.html")]
struct DigestHtml<'a> {
    headline: &'a str,
    /// Each request's line and its dashboard link.
    lines: &'a [(String, String)],
    review_all: &'a str,
}

#[derive(Template)]
#[template(path = "email_request.html")]
struct RequestHtml<'a> {
    lead: &'a str,
    heading: String,
    details: &'a [Detail],
    /// An approval's Approve and Reject links.
    decide: Option<(&'a str, &'a str)>,
    /// A question's Answer link.
    answer: Option<&'a str>,
    dashboard: &'a str,
    request_id: String,
}

#[derive(Template)]
#[template(path = "email_sign_in.html")]
struct SignInHtml<'a> {
    link: &'a str,
    until: &'a str,
}

#[derive(Template)]
#[template(path = "email_update.html")]
struct UpdateHtml<'a> {
    status: &'a str,
    heading: String,
    details: &'a [Detail],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_expiry_is_the_deadline_capped_at_seven_days() {
        let now = Utc::now();
        assert_eq!(link_expiry(None, now), now + MAX_LINK_LIFETIME);
        assert_eq!(link_expiry(Some(now + Duration::hours(2)), now), now + Duration::hours(2));
        assert_eq!(link_expiry(Some(now + Duration::days(30)), now), now + MAX_LINK_LIFETIME);
    }

    #[test]
    fn debug_hides_the_smtp_password() {
        let config = EmailConfig { smtp_url: "smtps://user:hunter2@mail.example.com:465".into(), from: "a@b.c".into() };
        assert!(!format!("{config:?}").contains("hunter2"));
        let mailer = Mailer::new(&config).unwrap();
        let shown = format!("{mailer:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("mail.example.com"), "{shown}");
    }

    #[test]
    fn bad_settings_are_permanent_errors() {
        let bad_url = Mailer::new(&EmailConfig { smtp_url: "ftp://x".into(), from: "a@b.c".into() }).unwrap_err();
        assert!(bad_url.permanent && bad_url.message.starts_with("smtp_url_invalid"), "{bad_url:?}");
        let bad_from = Mailer::new(&EmailConfig { smtp_url: "smtp://127.0.0.1:25".into(), from: "nope".into() });
        assert!(bad_from.unwrap_err().message.starts_with("email_from_invalid"));
    }

    #[test]
    fn arguments_read_as_lines_and_long_values_fold() {
        let args = serde_json::json!({"amount": 50, "customer": "c_42", "note": "x".repeat(400)});
        let shown = readable_args(&args);
        assert!(shown.starts_with("amount: 50\ncustomer: c_42\nnote: xxx"), "{shown}");
        assert!(shown.ends_with('…'));
        assert_eq!(readable_args(&serde_json::json!([1, 2])), "[1,2]");
    }
}
