//! Telegram end to end, against a fake Bot API and with updates posted the way Telegram posts them: the ask is an
//! HTML message with Approve / Reject / Open; a wrong or missing secret token is refused; a press from someone else
//! is refused; Approve decides and the message is edited with the outcome; Reject asks for the reason with a forced
//! reply, and the reply rejects with it; a repeated `update_id` acts once; questions are answered with their option
//! buttons; a `429` is waited out as `retry_after` says.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::telegram::{self, TelegramClient};
use signoff_server::notify::TelegramSender;
use signoff_testkit::fake_telegram::{
    FAKE_WEBHOOK_SECRET, FakeTelegram, FakeTelegramMessage, callback_update, deliver, reply_update,
};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    an_ask_is_an_escaped_html_message_with_buttons,
    a_wrong_or_missing_secret_token_is_refused,
    a_press_from_someone_else_is_refused,
    approve_decides_and_the_message_is_edited,
    reject_asks_for_the_reason_and_the_reply_records_it,
    a_repeated_update_acts_once,
    a_question_is_answered_with_its_option_buttons,
    a_rate_limit_is_waited_out_as_retry_after_says,
);

const HANA: i64 = 123_456_789;
const HEIDI: i64 = 223_456_789;
const OTTO: i64 = 323_456_789;

const POLICY: &str = r#"
version: 1
approvers:
  - { id: hana, name: Hana, telegram: "123456789", groups: [hiring-managers] }
  - { id: heidi, name: Heidi, telegram: "223456789", groups: [hiring-managers] }
  - { id: otto, name: Otto, telegram: "323456789", groups: [other] }
groups:
  hiring-managers: { notify: [telegram] }
  other: { notify: [telegram] }
defaults: { route: hiring-managers, timeout: 1h, on_timeout: reject }
"#;

const WITHIN: Duration = Duration::from_secs(20);

struct Scene {
    _db: TestDatabase,
    app: TestApp,
    telegram: FakeTelegram,
}

impl Scene {
    async fn new(backend: Backend) -> Scene {
        let telegram = FakeTelegram::start().await;
        let config = telegram.config();
        let (db, app) = TestApp::on_with(backend, move |state| {
            let client = TelegramClient::new(&config).expect("telegram client");
            state.senders.insert(Channel::Telegram, Arc::new(TelegramSender(client)));
            state.telegram = Some(config);
        })
        .await;
        let (status, body) = app.apply_policy(POLICY).await;
        assert_eq!(status, 201, "{body}");
        Scene { _db: db, app, telegram }
    }

    async fn create(&self, body: Value) -> String {
        let (status, body) = self.app.create(body).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn offer(&self) -> String {
        self.create(json!({
            "action": "send_offer",
            "args": {"candidate": "Ana <ana@example.com>", "salary": 95000},
            "summary": "Send the offer to Ana & co <b>now</b>",
        }))
        .await
    }

    async fn request(&self, id: &str) -> Value {
        send(self.app.get(&format!("/v1/requests/{id}"), &self.app.admin_key)).await.1
    }

    /// The ask in `chat`, once sent.
    async fn ask_in(&self, chat: i64) -> FakeTelegramMessage {
        self.telegram.wait_for_message(chat, WITHIN, |m| m.reply_to.is_none()).await
    }

    /// Posts `update` with the webhook's secret; returns the status.
    async fn post(&self, update: &Value) -> u16 {
        self.post_with(Some(FAKE_WEBHOOK_SECRET), update).await.0
    }

    async fn post_with(&self, secret: Option<&str>, update: &Value) -> (u16, Value) {
        let endpoint = format!("{}{}", self.app.url, telegram::WEBHOOK_PATH);
        send(deliver(&self.app.http, &endpoint, secret, update)).await
    }

    /// The answers to button presses so far: (text, shown as an alert).
    fn answers(&self) -> Vec<(String, bool)> {
        let calls = self.telegram.calls_to("answerCallbackQuery");
        calls.iter().map(|c| (c.body["text"].as_str().unwrap().to_string(), c.body["show_alert"] == true)).collect()
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

async fn an_ask_is_an_escaped_html_message_with_buttons(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    scene.ask_in(HEIDI).await;
    let sent = scene.telegram.calls_to("sendMessage");
    let call = sent.iter().find(|c| c.body["chat_id"] == "123456789").expect("a message to Hana");
    assert_eq!(call.body["parse_mode"], "HTML");
    assert!(ask.text.starts_with("<b>Send the offer to Ana &amp; co &lt;b&gt;now&lt;/b&gt;</b>"), "{}", ask.text);
    assert!(ask.text.contains("candidate: Ana &lt;ana@example.com&gt;"), "{}", ask.text);
    assert_eq!(ask.callback_data(), [format!("a:{id}"), format!("r:{id}")]);
    assert!(ask.callback_data().iter().all(|d| d.len() <= telegram::MAX_CALLBACK_DATA));
    let open = &ask.reply_markup["inline_keyboard"][1][0];
    assert_eq!(
        (open["text"].as_str(), open["url"].as_str()),
        (Some("Open"), Some(format!("{}/requests/{id}", scene.app.state.public_url).as_str()))
    );
    assert!(scene.telegram.messages().iter().all(|m| m.chat_id != OTTO), "Otto is in another group");
}

async fn a_wrong_or_missing_secret_token_is_refused(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    let press = callback_update(1, HANA, &ask, &format!("a:{id}"));
    for secret in [None, Some(""), Some("wrong-secret"), Some("fake_webhook-secret_12")] {
        let (status, body) = scene.post_with(secret, &press).await;
        assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{secret:?}: {body}");
    }
    assert_eq!(scene.request(&id).await["status"], "pending");
    assert!(scene.telegram.calls_to("answerCallbackQuery").is_empty());
    // Not an update at all: a clear 400.
    let (status, body) = scene.post_with(Some(FAKE_WEBHOOK_SECRET), &json!({"hello": 1})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{body}");
    // The genuine update, still unused, decides.
    assert_eq!(scene.post(&press).await, 200);
    assert_eq!(scene.request(&id).await["status"], "approved");
}

async fn a_press_from_someone_else_is_refused(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    // A stranger, and Otto (an approver, not of this group), press Hana's Approve.
    assert_eq!(scene.post(&callback_update(1, 999, &ask, &format!("a:{id}"))).await, 200);
    assert_eq!(scene.post(&callback_update(2, OTTO, &ask, &format!("a:{id}"))).await, 200);
    let answers = scene.answers();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].1 && answers[0].0.contains("(999) is not linked to any approver"), "{answers:?}");
    assert!(answers[1].1 && answers[1].0.contains("Only members of `hiring-managers`"), "{answers:?}");
    // A button that is not Signoff's.
    assert_eq!(scene.post(&callback_update(3, HANA, &ask, "z:whatever")).await, 200);
    assert!(scene.answers()[2].0.contains("not one of Signoff's"));
    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));
}

async fn approve_decides_and_the_message_is_edited(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    scene.ask_in(HEIDI).await;
    assert_eq!(scene.post(&callback_update(1, HANA, &ask, &format!("a:{id}"))).await, 200);
    assert_eq!(scene.answers(), [("Approved".to_string(), false)]);
    let request = scene.request(&id).await;
    assert_eq!(request["decision"]["by"], json!({"kind": "human", "approver_id": "hana", "channel": "telegram"}));
    // Both asks are edited: the outcome, and no buttons but Open.
    for chat in [HANA, HEIDI] {
        let edited = scene.telegram.wait_for_message(chat, WITHIN, |m| m.edits > 0).await;
        assert!(edited.text.contains("Approved by Hana via telegram"), "{}", edited.text);
        assert!(edited.callback_data().is_empty(), "{:?}", edited.reply_markup);
    }
    // Pressing again says it is decided.
    assert_eq!(scene.post(&callback_update(2, HANA, &ask, &format!("a:{id}"))).await, 200);
    let (again, alert) = scene.answers()[1].clone();
    assert!(alert && again.contains("Already decided"), "{again}");
}

async fn reject_asks_for_the_reason_and_the_reply_records_it(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    assert_eq!(scene.post(&callback_update(1, HANA, &ask, &format!("r:{id}"))).await, 200);
    assert_eq!(scene.answers(), [("Reply with the reason to reject".to_string(), false)]);
    let prompt = scene.telegram.wait_for_message(HANA, WITHIN, |m| m.reply_to == Some(ask.message_id)).await;
    assert_eq!(prompt.reply_markup["force_reply"], true);
    assert_eq!(scene.request(&id).await["status"], "pending", "asking for the reason decides nothing");

    // A reply from Otto (an approver outside the group) is refused and decides nothing.
    // (The prompt as Otto's client would quote it, in his own chat with the bot.)
    let quoted = FakeTelegramMessage { chat_id: OTTO, ..prompt.clone() };
    assert_eq!(scene.post(&reply_update(2, OTTO, &quoted, "no")).await, 200);
    let refused = scene.telegram.wait_for_message(OTTO, WITHIN, |m| m.text.contains("Only members of")).await;
    assert!(refused.text.contains("nothing was recorded"), "{}", refused.text);
    assert_eq!(scene.request(&id).await["status"], "pending");

    assert_eq!(scene.post(&reply_update(3, HANA, &prompt, "  salary above the band  ")).await, 200);
    let request = scene.wait_for_status(&id, "rejected").await;
    assert_eq!(request["decision"]["comment"], "salary above the band");
    assert_eq!(request["decision"]["by"]["channel"], "telegram");
    let told = scene.telegram.wait_for_message(HANA, WITHIN, |m| m.text.starts_with("Recorded.")).await;
    assert!(told.text.contains("Rejected by Hana via telegram"), "{}", told.text);
    let edited = scene.telegram.wait_for_message(HANA, WITHIN, |m| m.message_id == ask.message_id && m.edits > 0).await;
    assert!(edited.text.contains("Rejected by Hana"), "{}", edited.text);
}

async fn a_repeated_update_acts_once(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.offer().await;
    let ask = scene.ask_in(HANA).await;
    let press = callback_update(41, HANA, &ask, &format!("r:{id}"));
    for _ in 0..3 {
        assert_eq!(scene.post(&press).await, 200);
    }
    assert_eq!(scene.answers().len(), 1, "the press is answered once");
    let prompts = scene.telegram.messages().into_iter().filter(|m| m.reply_to == Some(ask.message_id)).count();
    assert_eq!(prompts, 1, "one forced reply");
    let prompt = scene.telegram.wait_for_message(HANA, WITHIN, |m| m.reply_to == Some(ask.message_id)).await;
    let reply = reply_update(42, HANA, &prompt, "duplicate of another offer");
    for _ in 0..3 {
        assert_eq!(scene.post(&reply).await, 200);
    }
    let request = scene.wait_for_status(&id, "rejected").await;
    let events = send(scene.app.get(&format!("/v1/requests/{id}/events"), &scene.app.admin_key)).await.1;
    let decided = events.as_array().unwrap().iter().filter(|e| e["kind"] == "decided").count();
    assert_eq!(decided, 1, "{events:#}");
    assert_eq!(request["decision"]["comment"], "duplicate of another offer");
    let recorded = scene.telegram.messages().into_iter().filter(|m| m.text.starts_with("Recorded.")).count();
    assert_eq!(recorded, 1, "the reply is acted on once");
}

async fn a_question_is_answered_with_its_option_buttons(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene
        .create(json!({"action": "ask", "kind": "question", "question": "Which start date?", "options": ["June 1", "July 1"]}))
        .await;
    let ask = scene.ask_in(HANA).await;
    assert_eq!(ask.callback_data(), [format!("o:{id}:0"), format!("o:{id}:1")]);
    assert_eq!(scene.post(&callback_update(1, HANA, &ask, &format!("o:{id}:7"))).await, 200);
    assert!(scene.answers()[0].0.contains("not one of the question's"));
    assert_eq!(scene.post(&callback_update(2, HANA, &ask, &format!("o:{id}:1"))).await, 200);
    let request = scene.request(&id).await;
    assert_eq!(
        (request["status"].as_str(), request["decision"]["answer"].as_str()),
        (Some("answered"), Some("July 1"))
    );
    let edited = scene.telegram.wait_for_message(HANA, WITHIN, |m| m.edits > 0).await;
    assert!(edited.text.contains("Answered by Hana via telegram"), "{}", edited.text);
}

async fn a_rate_limit_is_waited_out_as_retry_after_says(backend: Backend) {
    let scene = Scene::new(backend).await;
    scene.telegram.rate_limit_next(1, 1);
    let id = scene.offer().await;
    scene.ask_in(HANA).await;
    scene.ask_in(HEIDI).await;
    let limited: Vec<_> = scene.telegram.calls().into_iter().filter(|c| c.answered == 429).collect();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].error.as_deref(), Some("Too Many Requests: retry after 1"));
    // The messages arrive before their attempts are recorded: wait until both notifications say they were sent.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let notifications = loop {
        let path = format!("/v1/requests/{id}/notifications");
        let notifications = send(scene.app.get(&path, &scene.app.agent_key)).await.1.as_array().unwrap().clone();
        if notifications.len() == 2 && notifications.iter().all(|n| n["state"] == "sent") {
            break notifications;
        }
        assert!(tokio::time::Instant::now() < deadline, "{notifications:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let retried = notifications.iter().find(|n| n["history"].as_array().unwrap().len() > 1);
    let retried = retried.expect("one notification was retried");
    let history = retried["history"].as_array().unwrap();
    assert!(history[0].to_string().contains("429"), "{history:#?}");
    let (first, second) = (history[0]["at"].as_str().unwrap(), history[1]["at"].as_str().unwrap());
    let waited =
        chrono::DateTime::parse_from_rfc3339(second).unwrap() - chrono::DateTime::parse_from_rfc3339(first).unwrap();
    assert!(waited >= chrono::Duration::milliseconds(900), "waited {waited}");
}
