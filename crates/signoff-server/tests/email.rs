//! Email: the links in a real message sent to a real SMTP listener, and the pages they open. `GET` decides nothing,
//! the confirmation `POST` decides once, and a link that cannot act (used, expired, forged, superseded) says why.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use signoff_domain::Request;
use signoff_notify::email::{EmailActions, EmailConfig, EmailLinks, Mailer};
use signoff_notify::links::{LinkClaims, LinkOutcome, LinkSigner};
use signoff_notify::{ProviderError, RequestView};
use signoff_testkit::smtp::{ReceivedMail, SmtpAnswer, SmtpServer};
use signoff_testkit::{Backend, TestApp, TestDatabase, on_every_backend, person, send};
use std::time::Duration as StdDuration;

on_every_backend!(
    get_shows_the_request_and_decides_nothing_then_the_post_approves_once,
    a_rejection_asks_for_a_reason_and_a_comment,
    expired_forged_and_tampered_links_are_refused,
    a_link_for_a_decided_request_names_who_decided,
    a_link_is_superseded_when_the_request_moves_or_the_person_leaves,
    without_a_link_secret_the_pages_say_so,
    a_question_is_answered_on_the_page_its_link_opens,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
  - { id: fred, name: Fred, email: fred@example.com, groups: [finance] }
  - { id: carl, name: Carl, email: carl@example.com, groups: [cfo] }
groups:
  finance: { notify: [email] }
  cfo: { notify: [email] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: small-refund
    when: action == "refund"
    route: finance
    reject_reasons: [duplicate, fraud]
  - name: escalating
    when: action == "escalating"
    route: finance
    escalate: [ { after: 1s, to: cfo } ]
"#;

const KEY: [u8; 32] = [42; 32];

async fn app(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on_with(backend, |state| state.link_signer = Some(LinkSigner::new(&KEY).unwrap())).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

async fn refund(app: &TestApp) -> Request {
    let new = json!({"action": "refund", "args": {"amount": 50, "customer": "c_42"}, "summary": "Refund $50 to c_42",
                     "reasoning": "Charged twice <script>alert(1)</script>", "confidence": 0.82, "tags": ["billing"]});
    let (status, body) = app.create(new).await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body).unwrap()
}

fn claims(request: &Request, who: &str, outcome: LinkOutcome) -> LinkClaims {
    LinkClaims {
        request_id: request.id,
        approver_id: person(who),
        outcome,
        group: request.group.clone().unwrap(),
        nonce: LinkClaims::new_nonce(),
        expires_at: Utc::now() + Duration::hours(1),
    }
}

/// A link as the worker makes it, through `EmailLinks::signed` with the app's signer.
fn links(app: &TestApp, request: &Request, who: &str) -> EmailLinks {
    let signer = app.state.link_signer.as_ref().unwrap();
    EmailLinks::signed(signer, &app.url, request, &person(who), request.group.as_deref().unwrap(), Utc::now())
}

/// An approval's Approve and Reject links.
fn decide_links(links: &EmailLinks) -> (&str, &str) {
    match &links.actions {
        EmailActions::Decide { approve, reject } => (approve, reject),
        other => panic!("an approval's links are Approve and Reject, not {other:?}"),
    }
}

fn token_of(link: &str) -> String {
    link.split_once("?token=").unwrap().1.to_string()
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(app: &TestApp, token: &str) -> Page {
    let response =
        app.http.get(format!("{}/channels/email/act", app.url)).query(&[("token", token)]).send().await.unwrap();
    page(response).await
}

async fn post(app: &TestApp, form: &[(&str, &str)]) -> Page {
    let response = app.http.post(format!("{}/channels/email/act", app.url)).form(form).send().await.unwrap();
    page(response).await
}

async fn page(response: reqwest::Response) -> Page {
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let page = Page { status, headers, body: response.text().await.unwrap() };
    assert_secure(&page);
    page
}

fn assert_secure(page: &Page) {
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let csp = header("content-security-policy");
    for directive in ["default-src 'none'", "style-src 'sha256-", "form-action 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(csp.contains("base-uri 'none'"), "{csp}");
    assert!(!page.body.contains("src=") && !page.body.contains("<link"), "a page loads nothing: {}", page.body);
}

/// The value of the hidden input `name` in a page.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.body.find(&marker).unwrap_or_else(|| panic!("no {name} in {}", page.body)) + marker.len();
    page.body[start..].split('"').next().unwrap().to_string()
}

async fn status_of(app: &TestApp, request: &Request) -> Value {
    send(app.get(&format!("/v1/requests/{}", request.id), &app.admin_key)).await.1
}

async fn a_question_is_answered_on_the_page_its_link_opens(backend: Backend) {
    let (_db, app) = app(backend).await;
    let new = json!({"action": "ask", "kind": "question", "question": "Which region <b>should</b> the replica go to?",
                     "options": ["eu", "us"]});
    let (status, body) = app.create(new).await;
    assert_eq!(status, 201, "{body}");
    let question: Request = serde_json::from_value(body).unwrap();
    let dana_links = links(&app, &question, "dana");
    let EmailActions::Answer { answer } = &dana_links.actions else {
        panic!("a question's link is Answer: {dana_links:?}")
    };

    // The mail carries Answer and the dashboard, nothing that would approve or reject.
    let smtp = SmtpServer::start().await;
    mailer(&smtp).send_request("dana@example.com", &question, &view(), &dana_links, None).await.unwrap();
    let mail = smtp.wait_for(1, StdDuration::from_secs(10)).await;
    assert_eq!(mail.text_links(), [answer.clone(), dana_links.dashboard.clone()]);
    assert_eq!(mail.html_links(), mail.text_links());
    assert!(mail.part("text/html").unwrap().contains(">Answer</a>"));

    let page = get(&app, &token_of(answer)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Answer: Which region &#60;b&#62;should&#60;/b&#62;") || page.body.contains("&lt;b&gt;")
    );
    for option in ["eu", "us"] {
        assert!(page.body.contains(&format!("name=\"text\" value=\"{option}\"")), "{}", page.body);
    }
    assert!(!page.body.contains(">Approve<") && !page.body.contains(">Reject<"), "{}", page.body);
    let (token, form_token) = (hidden(&page, "token"), hidden(&page, "form_token"));

    // A slip (no answer, or one that is not an option) is refused before the link is spent.
    for (text, why) in [("", "An answer needs some text"), ("asia", "Choose one of the answers: eu, us")] {
        let refused = post(&app, &[("token", &token), ("form_token", &form_token), ("text", text)]).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(why) && refused.body.contains("invalid_answer"), "{}", refused.body);
    }
    assert_eq!(status_of(&app, &question).await["status"], "pending");

    let done = post(&app, &[("token", &token), ("form_token", &form_token), ("text", "eu")]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your answer is recorded"), "{}", done.body);
    let answered = status_of(&app, &question).await;
    assert_eq!((answered["status"].as_str(), answered["decision"]["answer"].as_str()), (Some("answered"), Some("eu")));
    assert_eq!(answered["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "email"}));

    let again = post(&app, &[("token", &token), ("form_token", &form_token), ("text", "us")]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("link_used"), "{}", again.body);

    // A free-text question gets a text box; Fred's own link answers it.
    let (_, body) = app.create(json!({"action": "ask", "kind": "question", "question": "Why the refund?"})).await;
    let free: Request = serde_json::from_value(body).unwrap();
    let EmailActions::Answer { answer } = links(&app, &free, "fred").actions else { panic!("an Answer link") };
    let page = get(&app, &token_of(&answer)).await;
    assert!(page.body.contains("<textarea id=\"answer\" name=\"text\""), "{}", page.body);
    let (token, form_token) = (hidden(&page, "token"), hidden(&page, "form_token"));
    let text = "  Charged twice.\nSee ticket 8812.  ";
    let done = post(&app, &[("token", &token), ("form_token", &form_token), ("text", text)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(status_of(&app, &free).await["decision"]["answer"], "Charged twice.\nSee ticket 8812.");
}

async fn get_shows_the_request_and_decides_nothing_then_the_post_approves_once(backend: Backend) {
    let (_db, app) = app(backend).await;
    let request = refund(&app).await;
    let token = token_of(decide_links(&links(&app, &request, "dana")).0);

    // A scanner (or the person) follows the link twice: nothing is decided, the page shows the details.
    for _ in 0..2 {
        let page = get(&app, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for shown in ["Approve: Refund $50 to c_42", "amount: 50", "customer: c_42", "small-refund", "0.82", "billing"]
        {
            assert!(page.body.contains(shown), "{shown} missing from {}", page.body);
        }
        assert!(page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"), "{}", page.body);
        assert!(!page.body.contains("<script>"), "values are escaped");
        assert!(page.body.contains("<form method=\"post\">"), "{}", page.body);
    }
    assert_eq!(status_of(&app, &request).await["status"], "pending", "GET decides nothing");

    let page = get(&app, &token).await;
    let (token, form_token) = (hidden(&page, "token"), hidden(&page, "form_token"));

    // Without the page's form token, the POST decides nothing and spends nothing.
    let refused = post(&app, &[("token", &token), ("form_token", "nope")]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("form_token_invalid"));
    assert_eq!(status_of(&app, &request).await["status"], "pending");

    let done = post(&app, &[("token", &token), ("form_token", &form_token), ("comment", "ok by me")]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your approval is recorded") && done.body.contains("Approved by Dana via email"));
    let decided = status_of(&app, &request).await;
    assert_eq!(decided["status"], "approved", "{decided}");
    assert_eq!(decided["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "email"}));
    assert_eq!(decided["decision"]["comment"], "ok by me");

    // The same link again, by GET or POST: already used.
    for again in [get(&app, &token).await, post(&app, &[("token", &token), ("form_token", &form_token)]).await] {
        assert_eq!(again.status, 409, "{}", again.body);
        assert!(
            again.body.contains("This link was already used") && again.body.contains("link_used"),
            "{}",
            again.body
        );
    }
}

async fn a_rejection_asks_for_a_reason_and_a_comment(backend: Backend) {
    let (_db, app) = app(backend).await;
    let request = refund(&app).await;
    let token = token_of(decide_links(&links(&app, &request, "fred")).1);
    let page = get(&app, &token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<select id=\"reason\" name=\"reason\" required>"), "{}", page.body);
    assert!(page.body.contains("<option value=\"duplicate\">") && page.body.contains("<option value=\"fraud\">"));
    assert!(page.body.contains("<textarea id=\"comment\" name=\"comment\" required"), "{}", page.body);
    let form_token = hidden(&page, "form_token");

    // A slip does not spend the link.
    let no_comment = post(&app, &[("token", &token), ("form_token", &form_token), ("reason", "duplicate")]).await;
    assert!(no_comment.status == 400 && no_comment.body.contains("comment_required"), "{}", no_comment.body);
    let bad_reason =
        post(&app, &[("token", &token), ("form_token", &form_token), ("reason", "bored"), ("comment", "x")]).await;
    assert!(bad_reason.status == 400 && bad_reason.body.contains("invalid_reason"), "{}", bad_reason.body);

    let form = [("token", &*token), ("form_token", &form_token), ("reason", "duplicate"), ("comment", "paid twice")];
    let done = post(&app, &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Rejected by Fred via email"), "{}", done.body);
    let decided = status_of(&app, &request).await;
    assert_eq!(decided["status"], "rejected");
    assert_eq!(
        (decided["decision"]["reason"].as_str(), decided["decision"]["comment"].as_str()),
        (Some("duplicate"), Some("paid twice"))
    );
    assert_eq!(decided["decision"]["by"]["channel"], "email");
}

async fn expired_forged_and_tampered_links_are_refused(backend: Backend) {
    let (_db, app) = app(backend).await;
    let request = refund(&app).await;
    let signer = app.state.link_signer.as_ref().unwrap();

    let mut expired = claims(&request, "dana", LinkOutcome::Approve);
    expired.expires_at = Utc::now() - Duration::seconds(1);
    let page = get(&app, &signer.sign(&expired)).await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(page.body.contains("This link has expired") && page.body.contains("link_expired"));
    // Even with a form token made for it, an expired link decides nothing.
    let form_token = signer.form_token(&expired);
    let page = post(&app, &[("token", &signer.sign(&expired)), ("form_token", &form_token)]).await;
    assert_eq!(page.status, 410, "{}", page.body);

    let other_key = LinkSigner::new(&[1; 32]).unwrap();
    let forged = other_key.sign(&claims(&request, "dana", LinkOutcome::Approve));
    let mut tampered = signer.sign(&claims(&request, "dana", LinkOutcome::Approve)).into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    for token in [forged, String::from_utf8(tampered).unwrap(), "garbage".into(), String::new()] {
        let page = get(&app, &token).await;
        assert_eq!(page.status, 400, "{token}: {}", page.body);
        assert!(page.body.contains("This link is not valid"), "{}", page.body);
        let page = post(&app, &[("token", &token), ("form_token", "x")]).await;
        assert_eq!(page.status, 400, "{}", page.body);
    }
    assert_eq!(status_of(&app, &request).await["status"], "pending");
}

async fn a_link_for_a_decided_request_names_who_decided(backend: Backend) {
    let (_db, app) = app(backend).await;
    let request = refund(&app).await;
    let token = token_of(decide_links(&links(&app, &request, "dana")).0);
    let page = get(&app, &token).await;
    let form_token = hidden(&page, "form_token");

    let fred = app.approver("fred").await;
    let (status, body) = app.decide(&request.id.to_string(), &fred, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200, "{body}");

    for page in [get(&app, &token).await, post(&app, &[("token", &token), ("form_token", &form_token)]).await] {
        assert_eq!(page.status, 409, "{}", page.body);
        assert!(page.body.contains("This link no longer applies"), "{}", page.body);
        assert!(page.body.contains("already decided: Approved by Fred via api at"), "{}", page.body);
    }
    assert_eq!(status_of(&app, &request).await["decision"]["by"]["approver_id"], "fred");
}

async fn a_link_is_superseded_when_the_request_moves_or_the_person_leaves(backend: Backend) {
    let (_db, app) = app(backend).await;
    // The request moves: its escalation falls due (the timers fired as the worker would, a little later).
    let (status, body) = app.create(json!({"action": "escalating"})).await;
    assert_eq!(status, 201, "{body}");
    let moving: Request = serde_json::from_value(body).unwrap();
    let dana_link = token_of(decide_links(&links(&app, &moving, "dana")).0);
    assert_eq!(get(&app, &dana_link).await.status, 200);
    app.state.store.fire_due_timers(Utc::now() + Duration::seconds(5), 100).await.unwrap();
    assert_eq!(status_of(&app, &moving).await["group"], "cfo");
    let page = get(&app, &dana_link).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("It moved from finance to cfo"), "{}", page.body);

    // The person leaves the group: the policy in force no longer has Dana in finance.
    let request = refund(&app).await;
    let token = token_of(decide_links(&links(&app, &request, "dana")).0);
    let form_token = hidden(&get(&app, &token).await, "form_token");
    let (status, body) =
        app.apply_policy(&POLICY.replace("email: dana@example.com, groups: [finance]", "groups: [cfo]")).await;
    assert_eq!(status, 201, "{body}");
    for page in [get(&app, &token).await, post(&app, &[("token", &token), ("form_token", &form_token)]).await] {
        assert_eq!(page.status, 409, "{}", page.body);
        assert!(page.body.contains("Dana is no longer a member of finance"), "{}", page.body);
    }
    assert_eq!(status_of(&app, &request).await["status"], "pending");
}

async fn without_a_link_secret_the_pages_say_so(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let token = LinkSigner::new(&KEY).unwrap().sign(&LinkClaims {
        request_id: signoff_domain::RequestId::new(),
        approver_id: person("dana"),
        outcome: LinkOutcome::Approve,
        group: "finance".into(),
        nonce: "n".into(),
        expires_at: Utc::now() + Duration::hours(1),
    });
    for page in [get(&app, &token).await, post(&app, &[("token", &token)]).await] {
        assert_eq!(page.status, 503, "{}", page.body);
        assert!(page.body.contains("email_links_not_configured"), "{}", page.body);
    }
}

// The mailer against a real SMTP listener (no database involved).

fn view() -> RequestView {
    RequestView {
        public_url: "https://signoff.example.com".into(),
        group: "finance".into(),
        person: Some(person("dana")),
        person_names: [(person("dana"), "Dana".to_string())].into(),
        moved_to: None,
    }
}

async fn placed_refund() -> (TestDatabase, TestApp, Request) {
    let (db, app) = app(Backend::Sqlite).await;
    let request = refund(&app).await;
    (db, app, request)
}

fn mailer(smtp: &SmtpServer) -> Mailer {
    Mailer::new(&EmailConfig { smtp_url: smtp.url(), from: "Signoff <signoff@example.com>".into() }).unwrap()
}

fn assert_multipart(mail: &ReceivedMail) {
    let content_type = mail.header("Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");
    let types: Vec<String> = mail.parts().into_iter().map(|p| p.content_type).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
}

#[tokio::test]
async fn the_ask_arrives_with_its_subject_parts_and_links_and_the_outcome_replies_in_its_thread() {
    let (_db, app, request) = placed_refund().await;
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    let links = links(&app, &request, "dana");

    let message_id = mailer.send_request("Dana <dana@example.com>", &request, &view(), &links, None).await.unwrap();
    let ask = smtp.wait_for(1, StdDuration::from_secs(10)).await;
    assert_eq!((ask.from.as_str(), ask.to.as_slice()), ("signoff@example.com", &["dana@example.com".to_string()][..]));
    assert_eq!(ask.header("Subject").unwrap(), "Approve: Refund $50 to c_42? (refund, rule small-refund)");
    assert_eq!(ask.header("Message-ID").unwrap(), message_id);
    assert!(message_id.starts_with('<') && message_id.ends_with("@example.com>"), "{message_id}");
    assert_multipart(&ask);
    let (approve, reject) = decide_links(&links);
    assert_eq!(ask.text_links(), [approve.to_string(), reject.to_string(), links.dashboard.clone()]);
    assert_eq!(ask.html_links(), ask.text_links());
    let html = ask.part("text/html").unwrap();
    assert!(html.contains(">Approve</a>") && html.contains(">Reject</a>") && html.contains(">Review in dashboard</a>"));
    assert!(html.contains("Charged twice &#60;script&#62;") || html.contains("Charged twice &lt;script&gt;"), "{html}");
    assert!(!html.contains("<img") && !html.contains("<link"), "no remote content: {html}");
    let text = ask.part("text/plain").unwrap();
    for shown in [
        "amount: 50",
        "Reasoning: Charged twice",
        "Confidence: 0.82",
        "Tags: billing",
        "Rule: small-refund",
        "0 of 1 approvals",
    ] {
        assert!(text.contains(shown), "{shown} missing from {text}");
    }

    // The link in the mail works on the app.
    let page = get(&app, &token_of(&ask.text_links()[0])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = post(&app, &[("token", &hidden(&page, "token")), ("form_token", &hidden(&page, "form_token"))]).await;
    assert_eq!(done.status, 200, "{}", done.body);

    let decided: Request = serde_json::from_value(status_of(&app, &request).await).unwrap();
    let reply_id = mailer.send_update("dana@example.com", &message_id, &decided, &view()).await.unwrap();
    let reply = smtp.wait_for(2, StdDuration::from_secs(10)).await;
    assert_ne!(reply_id, message_id);
    assert_eq!(reply.header("Subject").unwrap(), "Re: Approve: Refund $50 to c_42? (refund, rule small-refund)");
    assert_eq!(reply.header("In-Reply-To").unwrap(), message_id);
    assert_eq!(reply.header("References").unwrap(), message_id);
    assert_multipart(&reply);
    let text = reply.part("text/plain").unwrap();
    assert!(text.starts_with("Approved by Dana via email at ") && text.contains(" UTC"), "{text}");
}

#[tokio::test]
async fn smtp_4xx_is_transient_and_5xx_permanent_and_a_dead_server_transient() {
    let (_db, app, request) = placed_refund().await;
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    let links = links(&app, &request, "dana");

    smtp.answer_rcpt(SmtpAnswer::Transient);
    let error: ProviderError =
        mailer.send_request("dana@example.com", &request, &view(), &links, None).await.unwrap_err();
    assert!(!error.permanent && error.message.contains("451"), "{error:?}");

    smtp.answer_rcpt(SmtpAnswer::Permanent);
    let error = mailer.send_request("dana@example.com", &request, &view(), &links, None).await.unwrap_err();
    assert!(error.permanent && error.message.contains("550"), "{error:?}");
    assert!(smtp.messages().is_empty());

    smtp.answer_rcpt(SmtpAnswer::Accept);
    mailer.send_request("dana@example.com", &request, &view(), &links, None).await.unwrap();
    assert_eq!(smtp.wait_for(1, StdDuration::from_secs(10)).await.to, ["dana@example.com"]);

    // Nothing listening: a connection error, which may pass.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere =
        Mailer::new(&EmailConfig { smtp_url: format!("smtp://127.0.0.1:{port}"), from: "s@example.com".into() })
            .unwrap();
    let error = nowhere.send_request("dana@example.com", &request, &view(), &links, None).await.unwrap_err();
    assert!(!error.permanent, "{error:?}");
    let error = mailer.send_request("not an address", &request, &view(), &links, None).await.unwrap_err();
    assert!(error.permanent && error.message.starts_with("email_to_invalid"), "{error:?}");
}
