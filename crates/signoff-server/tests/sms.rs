//! SMS through Twilio end to end, against a fake Twilio REST API and with inbound messages signed the way Twilio signs
//! them: the ask is one short GSM-7 text with a per-person code and a short signed link to the confirmation page; a
//! reply `A 4821` from the right number approves and `R 4821 too big` rejects with that reason; a wrong or missing
//! signature, a number no approver has, an unknown code and the carriers' keywords change nothing; questions are
//! answered by option number; Twilio's errors and `429`s are classified and waited out.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::links::LinkSigner;
use signoff_notify::sms::{self, TwilioClient};
use signoff_server::notify::SmsSender;
use signoff_testkit::fake_twilio::{FAKE_FROM, FakeTwilio, InboundSms};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    an_ask_is_one_short_text_with_a_code_and_a_signed_link,
    a_reply_from_the_right_number_approves_and_the_others_are_told,
    forged_unknown_and_reserved_replies_change_nothing,
    a_rejection_records_its_reason,
    reject_reasons_are_chosen_by_number,
    a_question_is_answered_by_option_number,
    twilio_rate_limits_are_waited_out_and_refusals_given_up,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, phone: "+1 (415) 555-0100", groups: [oncall] }
  - { id: carl, name: Carl, phone: "+14155550111", groups: [oncall] }
  - { id: olga, name: Olga, phone: "+14155550122", groups: [other] }
groups:
  oncall: { notify: [sms] }
  other: { notify: [sms] }
defaults: { route: oncall, timeout: 1h, on_timeout: reject }
"#;

const DANA: &str = "+14155550100";
const CARL: &str = "+14155550111";
const WITHIN: Duration = Duration::from_secs(20);

struct Scene {
    _db: TestDatabase,
    app: TestApp,
    twilio: FakeTwilio,
}

impl Scene {
    async fn new(backend: Backend, policy: &str) -> Scene {
        let twilio = FakeTwilio::start().await;
        let config = twilio.config();
        let (db, app) = TestApp::on_with(backend, move |state| {
            let signer = LinkSigner::from_base64(&LinkSigner::generate_key()).expect("link key");
            let client = TwilioClient::new(&config).expect("twilio client");
            let store = state.store.clone();
            state.senders.insert(Channel::Sms, Arc::new(SmsSender { client, signer: signer.clone(), store }));
            state.link_signer = Some(signer);
            state.twilio = Some(config);
        })
        .await;
        let (status, body) = app.apply_policy(policy).await;
        assert_eq!(status, 201, "{body}");
        Scene { _db: db, app, twilio }
    }

    async fn create(&self, body: Value) -> String {
        let (status, body) = self.app.create(body).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn refund(&self) -> String {
        self.create(json!({"action": "refund", "args": {"amount": 50}, "summary": "Refund $50 to c_42"})).await
    }

    async fn request(&self, id: &str) -> Value {
        send(self.app.get(&format!("/v1/requests/{id}"), &self.app.admin_key)).await.1
    }

    async fn notifications(&self, id: &str) -> Vec<Value> {
        let (status, body) = send(self.app.get(&format!("/v1/requests/{id}/notifications"), &self.app.agent_key)).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// The code in the `nth` (0-based) text to `to`: the digits after `Reply A `.
    async fn code(&self, to: &str, nth: usize) -> String {
        let texts = self.twilio.wait_for(to, nth + 1, WITHIN).await;
        code_in(&texts[nth].body)
    }

    /// Posts an SMS from `from` to the inbound route, signed by the fake; returns the status and TwiML (unescaped).
    async fn reply(&self, from: &str, body: &str) -> (u16, String) {
        let inbound = InboundSms::new(&self.signed_url(), from, body);
        self.post(&inbound).await
    }

    /// The URL Twilio signs: the one configured at Twilio, `SIGNOFF_PUBLIC_URL` + the route.
    fn signed_url(&self) -> String {
        format!("{}{}", self.app.state.public_url, sms::INBOUND_PATH)
    }

    async fn post(&self, inbound: &InboundSms) -> (u16, String) {
        let endpoint = format!("{}{}", self.app.url, sms::INBOUND_PATH);
        let response = inbound.send(&self.app.http, &endpoint).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        // TwiML escapes the message; the tests read it as the person would.
        let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'");
        (status, text.replace("&amp;", "&"))
    }

    async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let request = self.request(id).await;
            if request["status"] == status {
                return request;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {}: {request:#}", request["status"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn code_in(text: &str) -> String {
    let after = text.split_once("Reply A ").unwrap_or_else(|| panic!("no code in {text:?}")).1;
    after.chars().take_while(char::is_ascii_digit).collect()
}

async fn an_ask_is_one_short_text_with_a_code_and_a_signed_link(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    let id = scene.refund().await;
    let texts = scene.twilio.wait_for(DANA, 1, WITHIN).await;
    let call = scene.twilio.calls().into_iter().find(|c| c.field("To") == Some(DANA)).unwrap();
    assert!(call.authorized, "basic auth with the account SID and auth token");
    assert!(call.content_type.starts_with("application/x-www-form-urlencoded"), "{}", call.content_type);
    assert_eq!(call.field("From"), Some(FAKE_FROM));
    let text = &texts[0].body;
    let code = code_in(text);
    assert_eq!(code.len(), 4, "{text}");
    let expected =
        format!("Signoff: Refund $50 to c_42? Reply A {code} to approve or R {code} <reason> to reject. Details: ");
    assert!(text.starts_with(&expected), "{text}");
    assert!(sms::is_gsm7(text) && sms::septets(text) <= sms::SEGMENT_SEPTETS, "one GSM-7 segment: {text}");
    // Carl holds his own code; Olga, in another group, is not asked.
    scene.twilio.wait_for(CARL, 1, WITHIN).await;
    assert!(scene.twilio.messages_to("+14155550122").is_empty());

    // The link opens the email channel's confirmation page for Dana, which decides nothing until its form is sent.
    let link = text.rsplit_once("Details: ").unwrap().1;
    let path = link.strip_prefix(&scene.app.state.public_url).expect("the link is under the public URL");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(format!("{}{path}", scene.app.url)).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/channels/email/act?token="), "{location}");
    let page = scene.app.http.get(format!("{}{location}", scene.app.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Refund $50 to c_42") && page.contains("Dana"), "{page}");
    assert_eq!(scene.request(&id).await["status"], "pending");

    // A link altered in any way opens nothing.
    let mut forged = path.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "/s/short", "/s/AAAAAAAAAAAAAAAAAAA"] {
        let response = no_redirects.get(format!("{}{bad}", scene.app.url)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{bad}");
    }
}

async fn a_reply_from_the_right_number_approves_and_the_others_are_told(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    let id = scene.refund().await;
    let code = scene.code(DANA, 0).await;
    scene.twilio.wait_for(CARL, 1, WITHIN).await;
    let (status, twiml) = scene.reply(DANA, &format!("a {code}")).await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Response><Message>Signoff "), "{twiml}");
    assert!(twiml.contains(&format!("Signoff {code}: your approval is recorded. Approved by Dana via sms")), "{twiml}");
    let request = scene.request(&id).await;
    assert_eq!(request["status"], "approved");
    assert_eq!(request["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "sms"}));

    // Carl is told by a follow-up; Dana is not texted again (the TwiML answer told her).
    let carl = scene.twilio.wait_for(CARL, 2, WITHIN).await;
    let carl_code = code_in(&carl[0].body);
    assert!(
        carl[1].body.starts_with(&format!("Signoff {carl_code}: Refund $50 to c_42: Approved by Dana via sms")),
        "{}",
        carl[1].body
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    while scene.notifications(&id).await.iter().any(|n| n["state"] != "sent") {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", scene.notifications(&id).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(scene.twilio.messages_to(DANA).len(), 1);

    // Replying again changes nothing and says why.
    let (_, again) = scene.reply(DANA, &format!("A {code}")).await;
    assert!(again.contains("already decided"), "{again}");
}

async fn forged_unknown_and_reserved_replies_change_nothing(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    let id = scene.refund().await;
    let code = scene.code(DANA, 0).await;
    let approve = format!("A {code}");

    // Signed with another token, signed for another URL, unsigned, or altered after signing: refused.
    let wrong_token = InboundSms::signed_with("not-the-auth-token", &scene.signed_url(), DANA, &approve);
    let wrong_url = InboundSms::new("https://elsewhere.example.com/channels/twilio/sms", DANA, &approve);
    let mut unsigned = InboundSms::new(&scene.signed_url(), DANA, &approve);
    unsigned.signature = String::new();
    let mut altered = InboundSms::new(&scene.signed_url(), CARL, &approve);
    for field in &mut altered.form {
        if field.0 == "From" {
            field.1 = DANA.into();
        }
    }
    for (what, inbound) in
        [("wrong token", wrong_token), ("wrong url", wrong_url), ("unsigned", unsigned), ("altered", altered)]
    {
        let (status, body) = scene.post(&inbound).await;
        assert_eq!(status, 401, "{what}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error_code(&body), "unauthorized", "{what}");
    }

    // A number no approver has, Olga (not in the group) replaying Dana's code, an unknown code, carrier keywords and
    // gibberish: answered, never decided.
    let (_, stranger) = scene.reply("+14155550999", &approve).await;
    assert!(stranger.contains("not linked to any approver"), "{stranger}");
    let (_, olga) = scene.reply("+14155550122", &approve).await;
    assert!(olga.contains("no open request of yours has this code"), "{olga}");
    let (_, unknown) = scene.reply(DANA, "A 999").await;
    assert!(unknown.contains("no open request of yours has this code"), "{unknown}");
    for keyword in ["STOP", "HELP", "YES", "NO", "start"] {
        let (status, twiml) = scene.reply(DANA, keyword).await;
        assert_eq!(status, 200);
        assert!(!twiml.contains("<Message>"), "{keyword} is never answered: {twiml}");
    }
    let (_, help) = scene.reply(DANA, "approve it please").await;
    assert!(help.contains("reply A <code> to approve"), "{help}");
    let (_, reject_without_reason) = scene.reply(DANA, &format!("R {code}")).await;
    assert!(reject_without_reason.contains("needs a reason"), "{reject_without_reason}");

    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));
}

async fn a_rejection_records_its_reason(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    let id = scene.refund().await;
    let code = scene.code(DANA, 0).await;
    let (_, twiml) = scene.reply(DANA, &format!("R {code} too big")).await;
    assert!(twiml.contains("your rejection is recorded"), "{twiml}");
    let request = scene.request(&id).await;
    assert_eq!(request["status"], "rejected");
    assert_eq!(request["decision"]["comment"], "too big");
    assert_eq!(request["decision"]["by"]["channel"], "sms");
}

async fn reject_reasons_are_chosen_by_number(backend: Backend) {
    let policy = format!(
        "{POLICY}rules:\n  - {{ name: refunds, when: 'action == \"refund\"', route: oncall, reject_reasons: [duplicate, too large] }}\n"
    );
    let scene = Scene::new(backend, &policy).await;
    let id = scene.refund().await;
    let code = scene.code(DANA, 0).await;
    let (_, unknown) = scene.reply(DANA, &format!("R {code} because")).await;
    assert!(unknown.contains("choose a reason") && unknown.contains("1 duplicate, 2 too large"), "{unknown}");
    assert_eq!(scene.request(&id).await["status"], "pending");
    let (_, twiml) = scene.reply(DANA, &format!("R {code} 2 over the monthly cap")).await;
    assert!(twiml.contains("your rejection is recorded"), "{twiml}");
    let decision = scene.request(&id).await["decision"].clone();
    assert_eq!(
        (decision["reason"].as_str(), decision["comment"].as_str()),
        (Some("too large"), Some("over the monthly cap"))
    );
}

async fn a_question_is_answered_by_option_number(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    let id = scene
        .create(json!({"action": "ask", "kind": "question", "question": "Which region?", "options": ["eu", "us"]}))
        .await;
    let texts = scene.twilio.wait_for(DANA, 1, WITHIN).await;
    let code = code_in(&texts[0].body);
    assert!(
        texts[0]
            .body
            .starts_with(&format!("Signoff asks: Which region? Reply A {code} <answer> (1 eu, 2 us). Details: ")),
        "{}",
        texts[0].body
    );
    let (_, wrong) = scene.reply(DANA, &format!("R {code} no")).await;
    assert!(wrong.contains("this is a question"), "{wrong}");
    let (_, not_an_option) = scene.reply(DANA, &format!("A {code} 3")).await;
    assert!(not_an_option.contains("answer with one of: 1 eu, 2 us"), "{not_an_option}");
    let (_, twiml) = scene.reply(DANA, &format!("A {code} 2")).await;
    assert!(twiml.contains("your answer is recorded"), "{twiml}");
    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["decision"]["answer"].as_str()), (Some("answered"), Some("us")));
}

async fn twilio_rate_limits_are_waited_out_and_refusals_given_up(backend: Backend) {
    let scene = Scene::new(backend, POLICY).await;
    scene.twilio.rate_limit_next(1, Some(1));
    scene.twilio.refuse_number(CARL);
    let id = scene.refund().await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    let (dana, carl) = loop {
        let notifications = scene.notifications(&id).await;
        let of = |person: &str| notifications.iter().find(|n| n["approver_id"] == person).cloned().unwrap();
        let (dana, carl) = (of("dana"), of("carl"));
        if dana["state"] == "sent" && carl["state"] == "failed" {
            break (dana, carl);
        }
        assert!(tokio::time::Instant::now() < deadline, "{notifications:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let limited = scene.twilio.calls().into_iter().filter(|c| c.answered == 429).collect::<Vec<_>>();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].answer["code"], 20429);
    let history = |n: &Value| {
        n["history"].as_array().unwrap().iter().map(|a| a["state"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    // Whoever met the 429 was retried and sent; Carl's number was refused for good (Twilio's code 21211).
    let retried = [&dana, &carl].into_iter().find(|n| history(n).len() > 1).expect("one retry");
    assert!(retried["history"].to_string().contains("20429"), "{retried:#}");
    assert_eq!(history(&dana).last().map(String::as_str), Some("sent"));
    assert!(carl["last_error"].as_str().unwrap().contains("code 21211"), "{carl:#}");
    scene.wait_for_status(&id, "pending").await;
}
