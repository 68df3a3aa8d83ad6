//! The notification outbox end to end, with the real Slack and email adapters against a fake Slack Web API and a real
//! SMTP listener: a routed request reaches each member on each channel of their group; a decision from any channel
//! updates every message; concurrent decisions through Slack, email and the API make exactly one; a Slack outage
//! delays Slack's notifications and nothing else, and its `429` is waited out as `Retry-After` says; reminders reach
//! everyone asked who has not approved, in the thread of their ask; a group with a rotation asks only the person on
//! call.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::email::{EmailConfig, Mailer};
use signoff_notify::links::LinkSigner;
use signoff_notify::slack::SlackClient;
use signoff_server::notify::{EmailSender, SlackSender};
use signoff_testkit::fake_slack::{FakeSlack, SignedInteraction, block_actions_payload};
use signoff_testkit::smtp::{ReceivedMail, SmtpServer};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    a_routed_request_reaches_every_member_and_a_decision_updates_every_message,
    concurrent_decisions_through_slack_email_and_the_api_make_one,
    slack_down_delays_only_slack,
    a_slack_rate_limit_is_waited_out_as_retry_after_says,
    reminders_reach_everyone_asked_who_has_not_approved,
    a_reminder_the_request_no_longer_needs_is_skipped,
    a_rotation_asks_only_the_person_on_call_and_an_escalation_reaches_whoever_is_on_call,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, slack: U0DANA, groups: [finance] }
  - { id: carl, name: Carl, email: carl@example.com, slack: U0CARL, groups: [finance] }
  - { id: fred, name: Fred, email: fred@example.com, groups: [finance] }
groups:
  finance: { notify: [slack, email], slack_channel: C0FINANCE }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
"#;

const WITHIN: Duration = Duration::from_secs(20);

struct Scene {
    _db: TestDatabase,
    app: TestApp,
    slack: FakeSlack,
    smtp: SmtpServer,
}

/// [`POLICY`] with reminders two seconds after routing, and two approvals for refunds.
const REMINDING: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, slack: U0DANA, groups: [finance] }
  - { id: carl, name: Carl, email: carl@example.com, slack: U0CARL, groups: [finance] }
  - { id: fred, name: Fred, email: fred@example.com, groups: [finance] }
groups:
  finance: { notify: [slack, email], slack_channel: C0FINANCE, remind: [2s] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - { name: refund, when: 'action == "refund"', route: finance, approvals: 2 }
"#;

impl Scene {
    async fn new(backend: Backend) -> Scene {
        Scene::with_policy(backend, POLICY).await
    }

    async fn with_policy(backend: Backend, policy: &str) -> Scene {
        let (slack, smtp) = (FakeSlack::start().await, SmtpServer::start().await);
        let (slack_config, smtp_url) = (slack.config(), smtp.url());
        let (db, app) = TestApp::on_with(backend, move |state| {
            let client = SlackClient::new(&slack_config).expect("slack client");
            state.senders.insert(Channel::Slack, Arc::new(SlackSender(client)));
            state.slack = Some(slack_config);
            let signer = LinkSigner::from_base64(&LinkSigner::generate_key()).expect("link key");
            let mailer = Mailer::new(&EmailConfig { smtp_url, from: "Signoff <signoff@example.com>".into() });
            state.link_signer = Some(signer.clone());
            state.senders.insert(Channel::Email, Arc::new(EmailSender { mailer: mailer.expect("mailer"), signer }));
        })
        .await;
        let (status, body) = app.apply_policy(policy).await;
        assert_eq!(status, 201, "{body}");
        Scene { _db: db, app, slack, smtp }
    }

    async fn refund(&self) -> String {
        let (status, body) =
            self.app.create(json!({"action": "refund", "args": {"amount": 50}, "summary": "Refund"})).await;
        assert_eq!((status, body["group"].as_str()), (201, Some("finance")), "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn request(&self, id: &str) -> Value {
        send(self.app.get(&format!("/v1/requests/{id}"), &self.app.admin_key)).await.1
    }

    async fn notifications(&self, id: &str) -> Vec<Value> {
        let (status, body) = send(self.app.get(&format!("/v1/requests/{id}/notifications"), &self.app.agent_key)).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// Waits until every notification about `id` is sent, and returns them.
    async fn all_sent(&self, id: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let notifications = self.notifications(id).await;
            if notifications.len() >= count && notifications.iter().all(|n| n["state"] == "sent") {
                return notifications;
            }
            assert!(tokio::time::Instant::now() < deadline, "not all sent: {notifications:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn click(&self, user: &str, id: &str, name: &str) -> SignedInteraction {
        SignedInteraction::now(&block_actions_payload(user, "approve", id, name, &self.slack.response_url(name)))
    }

    async fn deliver(&self, interaction: &SignedInteraction) -> u16 {
        let url = format!("{}/channels/slack/interactions", self.app.url);
        send(interaction.send(&self.app.http, &url)).await.0
    }

    /// The mail to `to` about `id`, and its Approve link's token.
    fn approve_token(&self, to: &str, id: &str) -> String {
        let mail = self.mail_to(to, id);
        let link = mail.text_links().into_iter().find(|l| l.contains("/channels/email/act?token=")).expect("a link");
        link.split_once("?token=").unwrap().1.to_string()
    }

    fn mail_to(&self, to: &str, id: &str) -> ReceivedMail {
        let mails = self.smtp.messages();
        let about = |m: &&ReceivedMail| m.to.iter().any(|t| t.contains(to)) && m.data.contains(id);
        mails.iter().find(about).cloned().unwrap_or_else(|| panic!("no mail to {to} about {id}: {mails:#?}"))
    }

    /// Follows an email link as the person would: the confirmation page, then its form.
    async fn approve_by_email(&self, token: &str) -> (u16, String) {
        let url = format!("{}/channels/email/act", self.app.url);
        let page = self.app.http.get(&url).query(&[("token", token)]).send().await.unwrap().text().await.unwrap();
        let form_token = hidden(&page, "form_token");
        let answer = self.app.http.post(&url).form(&[("token", token), ("form_token", &form_token)]).send().await;
        let answer = answer.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

async fn a_routed_request_reaches_every_member_and_a_decision_updates_every_message(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    // dana and carl on Slack and email, fred by email only (no Slack id), and the group's shared channel.
    let asks = scene.all_sent(&id, 6).await;
    let mut sent: Vec<(String, String)> = asks
        .iter()
        .map(|n| (n["approver_id"].as_str().unwrap_or("-").into(), n["channel"].as_str().unwrap().into()))
        .collect();
    sent.sort();
    let expected =
        [("-", "slack"), ("carl", "email"), ("carl", "slack"), ("dana", "email"), ("dana", "slack"), ("fred", "email")];
    assert_eq!(sent, expected.map(|(a, c)| (a.to_string(), c.to_string())));
    let posted = scene.slack.wait_for("chat.postMessage", 3, WITHIN).await;
    let mut channels: Vec<&str> = posted.iter().map(|c| c.body["channel"].as_str().unwrap()).collect();
    channels.sort();
    assert_eq!(channels, ["C0FINANCE", "U0CARL", "U0DANA"], "a DM to each member and a post in the group's channel");
    scene.smtp.wait_for(3, WITHIN).await;

    // Dana approves on Slack; every message is brought up to date: both Slack messages edited, each mail answered.
    assert_eq!(scene.deliver(&scene.click("U0DANA", &id, "approve-1")).await, 200);
    let decided = scene.slack.wait_for("chat.update", 3, WITHIN).await;
    for update in &decided {
        let text = update.body.to_string();
        assert!(text.contains("Approved by Dana"), "{text}");
        assert!(!text.contains("\"action_id\":\"approve\""), "no buttons once decided: {text}");
    }
    let reply = scene.smtp.wait_for(6, WITHIN).await;
    let ask = scene.mail_to(&reply.to[0], &id);
    assert_eq!(reply.header("In-Reply-To"), ask.header("Message-ID"), "the outcome replies in the ask's thread");
    let all = scene.all_sent(&id, 12).await;
    assert_eq!(all.iter().filter(|n| n["purpose"] == "update").count(), 6, "{all:#?}");
    // Each message went out once: a retry (a slow SMTP accept under load, say) may add attempts, never messages.
    let sent = |n: &Value| n["history"].as_array().unwrap().iter().filter(|a| a["state"] == "sent").count();
    assert!(all.iter().all(|n| sent(n) == 1), "each sent exactly once: {all:#?}");
    assert_eq!(scene.smtp.messages().len(), 6, "three asks and three replies by email");
    let edits = scene.slack.calls_to("chat.update").into_iter().filter(|c| c.answered == 200 && c.error.is_none());
    assert_eq!(edits.count(), 3, "each Slack message edited once");
    assert_eq!(
        scene.request(&id).await["decision"]["by"],
        json!({"kind": "human", "approver_id": "dana", "channel": "slack"})
    );
}

async fn concurrent_decisions_through_slack_email_and_the_api_make_one(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    scene.all_sent(&id, 6).await;
    let fred = scene.app.approver("fred").await;
    let token = scene.approve_token("carl@example.com", &id);
    let click = scene.click("U0DANA", &id, "race");
    let api = scene.app.decide(&id, &fred, json!({"outcome": "reject", "comment": "not this one"}));
    let (slack, email, (api_status, api_body)) =
        tokio::join!(scene.deliver(&click), scene.approve_by_email(&token), api);
    assert_eq!(slack, 200, "Slack is always answered at once");
    let request = scene.request(&id).await;
    let by = request["decision"]["by"]["channel"].as_str().unwrap().to_string();
    let (_, events) = send(scene.app.get(&format!("/v1/requests/{id}/events"), &scene.app.admin_key)).await;
    let decisions = events.as_array().unwrap().iter().filter(|e| e["kind"] == "decided").count();
    assert_eq!(decisions, 1, "exactly one decision, by {by}");
    // The losers are told who decided.
    if by != "api" {
        assert_eq!((api_status, error_code(&api_body)), (409, "already_decided"), "{api_body}");
    }
    if by != "email" {
        assert_eq!(email.0, 409, "{}", email.1);
    }
    // Every Slack message about it ends up showing the outcome.
    let updates = scene.slack.wait_for("chat.update", 3, WITHIN).await;
    assert!(updates.iter().all(|u| !u.body.to_string().contains("\"action_id\":\"approve\"")), "{updates:#?}");
}

async fn slack_down_delays_only_slack(backend: Backend) {
    let scene = Scene::new(backend).await;
    scene.slack.go_down().await;
    let fred = scene.app.approver("fred").await;
    let started = std::time::Instant::now();
    let (first, second) = (scene.refund().await, scene.refund().await);
    let (status, _) = scene.app.decide(&second, &fred, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "creates and decisions never wait for Slack");
    // Email goes out meanwhile; Slack's asks wait and retry.
    scene.smtp.wait_for(6, WITHIN).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let slack_asks: Vec<Value> =
            scene.notifications(&first).await.into_iter().filter(|n| n["channel"] == "slack").collect();
        if slack_asks.iter().any(|n| n["attempts"].as_u64() >= Some(1)) {
            assert!(slack_asks.iter().all(|n| n["state"] == "pending"), "retried, not given up: {slack_asks:#?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt on Slack: {slack_asks:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Slack comes back: everything owed is delivered, the decided request's messages show the outcome.
    scene.slack.come_back().await;
    scene.all_sent(&first, 6).await;
    scene.all_sent(&second, 12).await;
    let posted = scene.slack.wait_for("chat.postMessage", 6, WITHIN).await;
    assert_eq!(posted.len(), 6);
    let updated = scene.slack.wait_for("chat.update", 3, WITHIN).await;
    assert!(updated.iter().all(|u| u.body.to_string().contains("Approved by Fred")), "{updated:#?}");
}

async fn a_slack_rate_limit_is_waited_out_as_retry_after_says(backend: Backend) {
    let scene = Scene::new(backend).await;
    scene.slack.rate_limit_next(1, 2);
    let id = scene.refund().await;
    let all = scene.all_sent(&id, 6).await;
    let limited: Vec<&Value> = all.iter().filter(|n| n["attempts"] == 2).collect();
    assert_eq!(limited.len(), 1, "one Slack ask met the rate limit: {all:#?}");
    let history = limited[0]["history"].as_array().unwrap();
    assert_eq!(history[0]["state"], "pending", "{history:#?}");
    assert!(history[0]["error"].as_str().unwrap().contains("rate"), "{history:#?}");
    let at = |attempt: &Value| chrono::DateTime::parse_from_rfc3339(attempt["at"].as_str().unwrap()).unwrap();
    let waited = at(&history[1]) - at(&history[0]);
    assert!(waited >= chrono::Duration::seconds(2), "retried after {waited}, before Retry-After's 2 s");
    // Not much later either (20 s allows for a loaded machine; the outbox looks for due work every 250 ms).
    assert!(waited < chrono::Duration::seconds(20), "retried after {waited}: much later than Retry-After said");
}

/// The reminders of a request, once `count` of them are no longer pending.
async fn settled_reminders(scene: &Scene, id: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let reminders: Vec<Value> =
            scene.notifications(id).await.into_iter().filter(|n| n["purpose"] == "reminder").collect();
        if reminders.len() >= count && reminders.iter().all(|n| n["state"] != "pending") {
            return reminders;
        }
        assert!(tokio::time::Instant::now() < deadline, "reminders not settled: {reminders:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reminders_reach_everyone_asked_who_has_not_approved(backend: Backend) {
    let scene = Scene::with_policy(backend, REMINDING).await;
    let id = scene.refund().await;
    let dana = scene.app.approver("dana").await;
    let (status, body) = scene.app.decide(&id, &dana, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")), "one of two approvals: {body}");

    // Two seconds after routing: Carl (Slack and email), Fred (email) and the shared channel; not Dana.
    let reminders = settled_reminders(&scene, &id, 4).await;
    let mut reminded: Vec<(String, String)> = reminders
        .iter()
        .map(|n| (n["approver_id"].as_str().unwrap_or("-").into(), n["channel"].as_str().unwrap().into()))
        .collect();
    reminded.sort();
    let expected = [("-", "slack"), ("carl", "email"), ("carl", "slack"), ("fred", "email")];
    assert_eq!(reminded, expected.map(|(a, c)| (a.to_string(), c.to_string())));
    assert!(reminders.iter().all(|n| n["state"] == "sent"), "{reminders:#?}");
    let (_, events) = send(scene.app.get(&format!("/v1/requests/{id}/events"), &scene.app.admin_key)).await;
    assert_eq!(events.as_array().unwrap().iter().filter(|e| e["kind"] == "reminded").count(), 1, "{events:#}");

    // On Slack, each reminder is a reply in the thread of its ask.
    let posts = scene.slack.calls_to("chat.postMessage");
    let threaded: Vec<&Value> = posts.iter().map(|c| &c.body).filter(|b| b.get("thread_ts").is_some()).collect();
    assert_eq!(threaded.len(), 2, "{posts:#?}");
    let messages = scene.slack.messages();
    for reply in threaded {
        let ask = messages.iter().find(|m| m.channel == reply["channel"] && m.thread_ts.is_none()).expect("the ask");
        assert_eq!(reply["thread_ts"], ask.ts.as_str(), "{messages:#?}");
        let text = reply["text"].as_str().unwrap();
        assert!(
            text.starts_with("Reminder: *Refund* still waits for your decision (1 of 2 approvals: Dana)"),
            "{text}"
        );
    }

    // By email, a reply in the thread of Fred's ask, with fresh links that decide.
    let mails = scene.smtp.messages();
    let to_fred: Vec<&ReceivedMail> = mails.iter().filter(|m| m.to.iter().any(|t| t.contains("fred@"))).collect();
    let ask = to_fred.iter().find(|m| m.header("In-Reply-To").is_none()).expect("fred's ask");
    let reminder = to_fred
        .iter()
        .find(|m| m.part("text/plain").is_some_and(|text| text.starts_with("Reminder: this request still waits")))
        .unwrap_or_else(|| panic!("no reminder to fred: {to_fred:#?}"));
    assert_eq!(reminder.header("In-Reply-To"), ask.header("Message-ID"));
    assert!(reminder.header("Subject").unwrap().starts_with("Re: Approve: Refund?"), "{reminder:#?}");
    let link = reminder.text_links().into_iter().find(|l| l.contains("/channels/email/act?token=")).expect("a link");
    let (status, page) = scene.approve_by_email(link.split_once("?token=").unwrap().1).await;
    assert_eq!(status, 200, "{page}");
    let request = scene.request(&id).await;
    assert_eq!(request["status"], "approved", "Dana and Fred: {request:#}");
}

async fn a_reminder_the_request_no_longer_needs_is_skipped(backend: Backend) {
    let scene = Scene::with_policy(backend, REMINDING).await;
    let id = scene.refund().await;
    scene.all_sent(&id, 6).await;
    // Slack goes down before the reminders: theirs wait and retry; email's go out.
    scene.slack.go_down().await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let slack: Vec<Value> = scene
            .notifications(&id)
            .await
            .into_iter()
            .filter(|n| n["purpose"] == "reminder" && n["channel"] == "slack")
            .collect();
        if slack.len() == 3 && slack.iter().all(|n| n["attempts"].as_u64() >= Some(1)) {
            assert!(slack.iter().all(|n| n["state"] == "pending"), "{slack:#?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt at Slack reminders: {slack:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The request is decided meanwhile; once Slack is back, the reminders it no longer needs are not sent.
    let dana = scene.app.approver("dana").await;
    let reject = json!({"outcome": "reject", "comment": "paid already"});
    assert_eq!(scene.app.decide(&id, &dana, reject).await.0, 200);
    scene.slack.come_back().await;
    let reminders = settled_reminders(&scene, &id, 6).await;
    let skipped: Vec<&Value> = reminders.iter().filter(|n| n["channel"] == "slack").collect();
    assert!(skipped.iter().all(|n| n["state"] == "skipped"), "{skipped:#?}");
    assert!(skipped.iter().all(|n| n["last_error"] == "not sent: the request is rejected"), "{skipped:#?}");
    let threaded = scene.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.body.get("thread_ts").is_some());
    assert_eq!(threaded.count(), 0, "no Slack reminder about a decided request");
}

/// A policy whose `oncall` group rotates hourly between carl and cleo from `starts`, and whose `escalating` requests
/// go to finance first, then to `oncall` after a second.
fn rotating(starts: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"
version: 1
approvers:
  - {{ id: dana, name: Dana, email: dana@example.com, groups: [finance] }}
  - {{ id: carl, name: Carl, email: carl@example.com, slack: U0CARL, groups: [oncall] }}
  - {{ id: cleo, name: Cleo, email: cleo@example.com, slack: U0CLEO, groups: [oncall] }}
groups:
  finance: {{ notify: [email] }}
  oncall:
    notify: [slack, email]
    slack_channel: C0ONCALL
    rotation: {{ members: [carl, cleo], every: 1h, starts: "{}" }}
defaults: {{ route: oncall, timeout: 1h, on_timeout: reject }}
rules:
  - {{ name: escalating, when: 'action == "escalating"', route: finance, escalate: [ {{ after: 1s, to: oncall }} ] }}
"#,
        starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

async fn a_rotation_asks_only_the_person_on_call_and_an_escalation_reaches_whoever_is_on_call(backend: Backend) {
    let now = chrono::Utc::now();
    // Half an hour into carl's shift (the first), so no hand-over falls within the test.
    let carls_shift = now - chrono::Duration::minutes(30);
    let scene = Scene::with_policy(backend, &rotating(carls_shift)).await;
    let asked = |notifications: &[Value]| {
        let mut asked: Vec<(String, String)> = notifications
            .iter()
            .filter(|n| n["purpose"] == "ask")
            .map(|n| (n["approver_id"].as_str().unwrap_or("-").into(), n["channel"].as_str().unwrap().into()))
            .collect();
        asked.sort();
        asked
    };
    let pairs = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, c)| (a.to_string(), c.to_string())).collect::<Vec<_>>();

    let (status, body) = scene.app.create(json!({"action": "restart", "summary": "Restart the API"})).await;
    assert_eq!((status, body["group"].as_str()), (201, Some("oncall")), "{body}");
    let first = scene.all_sent(body["id"].as_str().unwrap(), 3).await;
    assert_eq!(asked(&first), pairs(&[("-", "slack"), ("carl", "email"), ("carl", "slack")]), "{first:#?}");

    let (status, on_call) = send(scene.app.get("/v1/groups/oncall/oncall", &scene.app.admin_key)).await;
    assert_eq!(status, 200, "{on_call}");
    assert_eq!(
        (&on_call["on_call"], &on_call["next"]),
        (&json!({"id": "carl", "name": "Carl"}), &json!({"id": "cleo", "name": "Cleo"}))
    );
    let until: chrono::DateTime<chrono::Utc> = serde_json::from_value(on_call["until"].clone()).unwrap();
    assert_eq!(until.timestamp(), (carls_shift + chrono::Duration::hours(1)).timestamp(), "{on_call}");

    // An hour and a half into the rotation it is cleo's shift: new requests, and escalations, go to her.
    let (status, body) = scene.app.apply_policy(&rotating(now - chrono::Duration::minutes(90))).await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = scene.app.create(json!({"action": "restart", "summary": "Restart the API"})).await;
    let second = scene.all_sent(body["id"].as_str().unwrap(), 3).await;
    assert_eq!(asked(&second), pairs(&[("-", "slack"), ("cleo", "email"), ("cleo", "slack")]), "{second:#?}");

    let (_, body) = scene.app.create(json!({"action": "escalating", "summary": "Refund"})).await;
    assert_eq!(body["group"], "finance", "{body}");
    let escalated = scene.all_sent(body["id"].as_str().unwrap(), 4).await;
    assert_eq!(
        asked(&escalated),
        pairs(&[("-", "slack"), ("cleo", "email"), ("cleo", "slack"), ("dana", "email")]),
        "finance first, then whoever is on call: {escalated:#?}"
    );

    // Who is on call is for people: a group without a rotation, an unknown group, and an agent key are refused.
    for (path, key, status_wanted, code) in [
        ("/v1/groups/finance/oncall", &scene.app.admin_key, 404, "not_found"),
        ("/v1/groups/nope/oncall", &scene.app.admin_key, 404, "not_found"),
        ("/v1/groups/oncall/oncall", &scene.app.agent_key, 403, "forbidden"),
    ] {
        let (status, body) = send(scene.app.get(path, key)).await;
        assert_eq!((status, error_code(&body)), (status_wanted, code), "{path}: {body}");
    }
}
