//! Discord end to end, with the real adapter against a fake Discord REST API and interactions signed with an
//! Ed25519 key the test generates: a routed request reaches each member by DM and the group's channel; PING is
//! answered with PONG; a bad signature or a stale timestamp is `401`; a button from the right person decides and
//! the answer shows the outcome; anyone else is told why, privately, and nothing changes; the reject modal records
//! the reason and comment; a decision elsewhere edits every message; reminders reply to the ask; a `429` is waited
//! out as its `retry_after` says; a refused DM is given up; questions are answered by their buttons; a quorum keeps
//! the buttons until it is met.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::discord::DiscordClient;
use signoff_server::notify::DiscordSender;
use signoff_testkit::fake_discord::{
    ApplicationKey, Clicker, FakeDiscord, FakeMessage, SignedInteraction, button_payload, message_problems,
    modal_submit_payload, ping_payload,
};
use signoff_testkit::fake_slack::unix_now;
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    ping_is_answered_with_pong,
    bad_signatures_and_stale_timestamps_are_401,
    a_button_from_the_right_user_updates_the_message,
    a_button_from_another_user_changes_nothing,
    the_reject_modal_records_the_reason_and_comment,
    a_decision_elsewhere_edits_every_message,
    a_reminder_replies_to_the_ask,
    a_rate_limit_is_waited_out_as_retry_after_says,
    a_refused_dm_is_given_up,
    a_question_is_answered_by_button,
    a_quorum_keeps_the_buttons_until_it_is_met,
);

const DANA: &str = "80351110224678912";
const CARL: &str = "80351110224678913";
const MO: &str = "80351110224678914";
const MODERATORS: &str = "1100000000000000001";

fn policy(remind: &str) -> String {
    format!(
        r#"
version: 1
approvers:
  - {{ id: dana, name: Dana, discord: "{DANA}", groups: [moderators] }}
  - {{ id: carl, name: Carl, discord: "{CARL}", groups: [moderators] }}
  - {{ id: mo, name: Mo, discord: "{MO}", groups: [finance] }}
groups:
  moderators: {{ notify: [discord], discord_channel: "{MODERATORS}"{remind} }}
  finance: {{ notify: [discord] }}
defaults: {{ route: moderators, timeout: 1h, on_timeout: reject }}
rules:
  - name: removal
    when: action == "remove_comment"
    route: moderators
    reject_reasons: [spam, off-topic]
  - {{ name: ban, when: 'action == "ban"', route: moderators, approvals: 2 }}
"#
    )
}

const WITHIN: Duration = Duration::from_secs(20);

struct Scene {
    _db: TestDatabase,
    app: TestApp,
    discord: FakeDiscord,
    key: ApplicationKey,
}

impl Scene {
    async fn new(backend: Backend) -> Scene {
        Scene::with_policy(backend, &policy("")).await
    }

    async fn with_policy(backend: Backend, policy: &str) -> Scene {
        let (discord, key) = (FakeDiscord::start().await, ApplicationKey::generate());
        let config = discord.config(&key);
        let (db, app) = TestApp::on_with(backend, move |state| {
            let client = DiscordClient::new(&config).expect("discord client");
            state.senders.insert(Channel::Discord, Arc::new(DiscordSender(client)));
            state.discord = Some(config);
        })
        .await;
        let (status, body) = app.apply_policy(policy).await;
        assert_eq!(status, 201, "{body}");
        Scene { _db: db, app, discord, key }
    }

    /// A comment removal routed to `moderators`; returns its id.
    async fn removal(&self) -> String {
        let body = json!({"action": "remove_comment", "args": {"comment": "c_7"}, "summary": "Remove comment c_7"});
        let (status, body) = self.app.create(body).await;
        assert_eq!((status, body["group"].as_str()), (201, Some("moderators")), "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn deliver(&self, interaction: &SignedInteraction) -> (u16, Value) {
        let url = format!("{}/channels/discord/interactions", self.app.url);
        send(interaction.send(&self.app.http, &url)).await
    }

    /// Signs `payload` now and delivers it; the interaction must be answered `200`.
    async fn interact(&self, payload: &Value) -> Value {
        let (status, answer) = self.deliver(&SignedInteraction::now(&self.key, payload)).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn request(&self, id: &str) -> Value {
        let (status, body) = send(self.app.get(&format!("/v1/requests/{id}"), &self.app.admin_key)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn notifications(&self, id: &str) -> Vec<Value> {
        let (status, body) = send(self.app.get(&format!("/v1/requests/{id}/notifications"), &self.app.agent_key)).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// Waits until `count` notifications about `id` exist and none is pending; returns them.
    async fn settled(&self, id: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let notifications = self.notifications(id).await;
            if notifications.len() >= count && notifications.iter().all(|n| n["state"] != "pending") {
                return notifications;
            }
            assert!(tokio::time::Instant::now() < deadline, "not settled: {notifications:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The ask about `id` in `channel` (a DM channel or the group's), once it is posted.
    async fn ask_in(&self, channel: &str, id: &str) -> FakeMessage {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let about =
                |m: &FakeMessage| m.channel_id == channel && m.reference.is_none() && m.embeds.to_string().contains(id);
            if let Some(message) = self.discord.messages().into_iter().find(about) {
                return message;
            }
            assert!(tokio::time::Instant::now() < deadline, "no ask in {channel}: {:#?}", self.discord.messages());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The ask about `id` in the DM of the Discord user `user`.
    async fn dm_ask(&self, user: &str, id: &str) -> FakeMessage {
        self.settled(id, 3).await;
        let channel = self.discord.dm_channel(user).expect("a DM was opened");
        self.ask_in(&channel, id).await
    }
}

fn custom_ids(components: &Value) -> Vec<String> {
    let rows = components.as_array().expect("action rows");
    let buttons = rows.iter().flat_map(|row| row["components"].as_array().unwrap());
    buttons.map(|b| b["custom_id"].as_str().unwrap_or("<link>").to_string()).collect()
}

fn footer(message: &Value) -> String {
    message["embeds"][0]["footer"]["text"].as_str().unwrap_or("").to_string()
}

/// An `UPDATE_MESSAGE` answer: the message without buttons, its footer saying how the request ended.
fn assert_updated(answer: &Value, wants: &str) {
    assert_eq!(answer["type"], 7, "{answer:#}");
    let data = &answer["data"];
    assert_eq!(data["components"], json!([]), "no buttons once decided: {data:#}");
    assert!(footer(data).starts_with(wants), "{}", footer(data));
    assert!(message_problems(data).is_empty(), "{:?}", message_problems(data));
}

/// An ephemeral answer: only the person who clicked sees it.
fn ephemeral_text(answer: &Value) -> String {
    assert_eq!((answer["type"].as_u64(), answer["data"]["flags"].as_u64()), (Some(4), Some(64)), "{answer:#}");
    answer["data"]["content"].as_str().unwrap().to_string()
}

async fn ping_is_answered_with_pong(backend: Backend) {
    let scene = Scene::new(backend).await;
    assert_eq!(scene.interact(&ping_payload()).await, json!({"type": 1}));

    // A server without Discord configured has no interactions endpoint.
    let (_db, plain) = TestApp::on(backend).await;
    let ping = SignedInteraction::now(&scene.key, &ping_payload());
    let (status, body) = send(ping.send(&plain.http, &format!("{}/channels/discord/interactions", plain.url))).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
}

async fn bad_signatures_and_stale_timestamps_are_401(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.removal().await;
    let ask = scene.dm_ask(DANA, &id).await;
    let click = button_payload(Clicker::InDm(DANA), &format!("approve:{id}"), &ask);
    let refused = |(status, body): (u16, Value), why: &str| {
        assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{why}: {body}");
        body["error"]["message"].as_str().unwrap().to_string()
    };

    let forged = SignedInteraction::now(&ApplicationKey::generate(), &click);
    assert!(refused(scene.deliver(&forged).await, "another key").starts_with("bad_signature"));
    let mut tampered = SignedInteraction::now(&scene.key, &ping_payload());
    tampered.body = click.to_string();
    assert!(refused(scene.deliver(&tampered).await, "another body").starts_with("bad_signature"));
    let mut unsigned = SignedInteraction::now(&scene.key, &click);
    unsigned.signature.clear();
    assert!(refused(scene.deliver(&unsigned).await, "no signature").starts_with("bad_signature"));
    let mut retimed = SignedInteraction::now(&scene.key, &click);
    retimed.timestamp = (unix_now() - 1).to_string();
    assert!(refused(scene.deliver(&retimed).await, "another timestamp").starts_with("bad_signature"));
    // Just outside the 300 s window; the future one with room for a slow machine, whose clock moves toward it.
    for at in [unix_now() - 301, unix_now() + 330] {
        let stale = SignedInteraction::new(&scene.key, &click, at);
        assert!(refused(scene.deliver(&stale).await, "stale").starts_with("stale_timestamp"));
    }
    let url = format!("{}/channels/discord/interactions", scene.app.url);
    refused(send(scene.app.http.post(&url).body(click.to_string())).await, "no headers");
    assert_eq!(scene.request(&id).await["status"], "pending", "nothing refused decided anything");

    let mut malformed = SignedInteraction::now(&scene.key, &json!({}));
    malformed.body = "{\"type\": \"click\"".into();
    malformed.signature = scene.key.sign(&malformed.timestamp, malformed.body.as_bytes());
    let (status, body) = scene.deliver(&malformed).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"), "{body}");
}

async fn a_button_from_the_right_user_updates_the_message(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.removal().await;
    let ask = scene.dm_ask(DANA, &id).await;
    let opened = scene.discord.calls_to("POST", "/users/@me/channels");
    let mut recipients: Vec<&str> = opened.iter().map(|c| c.body["recipient_id"].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, [DANA, CARL], "a DM to each member");
    scene.ask_in(MODERATORS, &id).await;
    let ids = custom_ids(&ask.components);
    assert_eq!(ids, [format!("approve:{id}"), format!("reject:{id}"), "<link>".into()]);
    assert!(ask.embeds[0]["title"].as_str().unwrap().contains("Remove comment c\\_7"), "{:#}", ask.embeds);

    let answer = scene.interact(&button_payload(Clicker::InDm(DANA), &format!("approve:{id}"), &ask)).await;
    assert_updated(&answer, "Approved by Dana");
    let decided = scene.request(&id).await;
    assert_eq!(decided["status"], "approved", "{decided}");
    assert_eq!(decided["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "discord"}));
    // The outbox brings every message up to date: both DMs and the group's channel.
    let edits = scene.discord.wait_for("PATCH", "/channels/{id}/messages/{id}", 3, WITHIN).await;
    assert!(edits.iter().all(|e| footer(&e.body).starts_with("Approved by Dana")), "{edits:#?}");
}

async fn a_button_from_another_user_changes_nothing(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.removal().await;
    scene.settled(&id, 3).await;
    let shared = scene.ask_in(MODERATORS, &id).await;
    let approve = format!("approve:{id}");

    let stranger = scene.interact(&button_payload(Clicker::InGuild("99"), &approve, &shared)).await;
    let text = ephemeral_text(&stranger);
    assert!(text.contains("not linked to any approver") && text.contains("discord: \"99\""), "{text}");
    let outsider = scene.interact(&button_payload(Clicker::InGuild(MO), &approve, &shared)).await;
    assert!(ephemeral_text(&outsider).contains("Only members of the group `moderators`"), "{outsider}");
    let reject = scene.interact(&button_payload(Clicker::InGuild(MO), &format!("reject:{id}"), &shared)).await;
    assert!(ephemeral_text(&reject).contains("Only members"), "no modal for an outsider: {reject}");
    let unknown = scene.interact(&button_payload(Clicker::InGuild(DANA), "edit:whatever", &shared)).await;
    assert!(ephemeral_text(&unknown).contains("not one of Signoff's"), "{unknown}");

    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));
    assert!(scene.discord.calls_to("PATCH", "/channels/{id}/messages/{id}").is_empty(), "no message changed");
}

async fn the_reject_modal_records_the_reason_and_comment(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.removal().await;
    scene.settled(&id, 3).await;
    let shared = scene.ask_in(MODERATORS, &id).await;
    let answer = scene.interact(&button_payload(Clicker::InGuild(CARL), &format!("reject:{id}"), &shared)).await;
    assert_eq!(answer["type"], 9, "a modal: {answer:#}");
    let modal = &answer["data"];
    assert_eq!(modal["custom_id"], format!("reject_modal:{id}"));
    let inputs: Vec<&Value> = modal["components"].as_array().unwrap().iter().map(|row| &row["components"][0]).collect();
    assert_eq!(inputs.iter().map(|i| i["custom_id"].as_str().unwrap()).collect::<Vec<_>>(), ["reason", "comment"]);
    assert_eq!(inputs[0]["placeholder"], "One of: 1 spam, 2 off-topic");
    assert!(modal["title"].as_str().unwrap().chars().count() <= 45);
    assert_eq!(scene.request(&id).await["status"], "pending", "opening the modal decides nothing");

    let modal_id = format!("reject_modal:{id}");
    let submit = |values: &[(&str, &str)]| modal_submit_payload(Clicker::InGuild(CARL), &modal_id, values, &shared);
    let no_comment = scene.interact(&submit(&[("reason", "spam"), ("comment", "  ")])).await;
    assert!(ephemeral_text(&no_comment).contains("needs a comment"), "{no_comment}");
    let wrong_reason = scene.interact(&submit(&[("reason", "rude"), ("comment", "rude")])).await;
    assert!(ephemeral_text(&wrong_reason).contains("`rude` is not one of the reasons: 1 spam, 2 off-topic"));
    assert_eq!(scene.request(&id).await["status"], "pending");

    let answer = scene.interact(&submit(&[("reason", "2"), ("comment", "not spam, just off-topic")])).await;
    assert_updated(&answer, "Rejected by Carl");
    assert!(footer(&answer["data"]).ends_with("(reason: off-topic): not spam, just off-topic"), "{answer:#}");
    let decision = scene.request(&id).await["decision"].clone();
    assert_eq!(
        (decision["outcome"].as_str(), decision["reason"].as_str(), decision["comment"].as_str()),
        (Some("rejected"), Some("off-topic"), Some("not spam, just off-topic"))
    );
    assert_eq!(decision["by"], json!({"kind": "human", "approver_id": "carl", "channel": "discord"}));
}

async fn a_decision_elsewhere_edits_every_message(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.removal().await;
    scene.settled(&id, 3).await;
    let dana = scene.app.approver("dana").await;
    let (status, body) = scene.app.decide(&id, &dana, json!({"outcome": "approve"})).await;
    assert_eq!(status, 200, "{body}");
    let edits = scene.discord.wait_for("PATCH", "/channels/{id}/messages/{id}", 3, WITHIN).await;
    assert!(edits.iter().all(|e| e.body["components"] == json!([])), "the buttons go: {edits:#?}");
    for message in scene.discord.messages() {
        assert_eq!((message.edits, message.components.clone()), (1, json!([])), "{message:#?}");
        assert!(footer(&json!({"embeds": message.embeds})).starts_with("Approved by Dana"), "{message:#?}");
    }
    let all = scene.settled(&id, 6).await;
    assert_eq!(all.iter().filter(|n| n["purpose"] == "update" && n["state"] == "sent").count(), 3, "{all:#?}");

    // A click on a message the outbox has not edited yet is told who decided.
    let stale = scene.ask_in(MODERATORS, &id).await;
    let late = scene.interact(&button_payload(Clicker::InGuild(CARL), &format!("approve:{id}"), &stale)).await;
    assert!(ephemeral_text(&late).contains("already approved by Dana"), "{late}");
}

async fn a_reminder_replies_to_the_ask(backend: Backend) {
    let scene = Scene::with_policy(backend, &policy(", remind: [2s]")).await;
    let id = scene.removal().await;
    let notifications = scene.settled(&id, 6).await;
    let reminders: Vec<&Value> = notifications.iter().filter(|n| n["purpose"] == "reminder").collect();
    assert_eq!(reminders.len(), 3, "both members and the group's channel: {notifications:#?}");
    assert!(reminders.iter().all(|n| n["state"] == "sent"), "{reminders:#?}");
    let messages = scene.discord.messages();
    let replies: Vec<&FakeMessage> = messages.iter().filter(|m| m.reference.is_some()).collect();
    assert_eq!(replies.len(), 3, "{messages:#?}");
    for reply in replies {
        let ask = messages.iter().find(|m| Some(&m.id) == reply.reference.as_ref()).expect("the ask");
        assert_eq!(ask.channel_id, reply.channel_id, "a reply in the ask's channel");
        let text = reply.content.as_str().unwrap();
        assert!(text.starts_with("Reminder: **Remove comment c\\_7** still waits for your decision"), "{text}");
        assert_eq!(reply.components, json!([]), "the buttons stay on the ask");
    }
}

async fn a_rate_limit_is_waited_out_as_retry_after_says(backend: Backend) {
    let scene = Scene::new(backend).await;
    scene.discord.rate_limit_next(1, 1.5);
    let id = scene.removal().await;
    let all = scene.settled(&id, 3).await;
    assert!(all.iter().all(|n| n["state"] == "sent"), "{all:#?}");
    let limited: Vec<&Value> = all.iter().filter(|n| n["attempts"] == 2).collect();
    assert_eq!(limited.len(), 1, "one ask met the rate limit: {all:#?}");
    let history = limited[0]["history"].as_array().unwrap();
    assert!(history[0]["error"].as_str().unwrap().contains("rate limited (429)"), "{history:#?}");
    let at = |attempt: &Value| chrono::DateTime::parse_from_rfc3339(attempt["at"].as_str().unwrap()).unwrap();
    let waited = at(&history[1]) - at(&history[0]);
    assert!(waited >= chrono::Duration::milliseconds(1500), "retried after {waited}, before retry_after's 1.5 s");
    assert!(waited < chrono::Duration::seconds(10), "retried after {waited}: much later than retry_after said");
    let limited = scene.discord.calls().into_iter().find(|c| c.answered == 429).unwrap();
    assert_eq!(limited.code, None, "a 429 body has no error code");
}

async fn a_refused_dm_is_given_up(backend: Backend) {
    let scene = Scene::new(backend).await;
    scene.discord.refuse_dms_from(CARL);
    let id = scene.removal().await;
    let all = scene.settled(&id, 3).await;
    let carls: Vec<&Value> = all.iter().filter(|n| n["approver_id"] == "carl").collect();
    assert_eq!((carls.len(), carls[0]["state"].as_str(), carls[0]["attempts"].as_u64()), (1, Some("failed"), Some(1)));
    let error = carls[0]["last_error"].as_str().unwrap();
    assert!(error.contains("error 50007: Cannot send messages to this user"), "{error}");
    assert_eq!(all.iter().filter(|n| n["state"] == "sent").count(), 2, "the others are sent: {all:#?}");
}

async fn a_question_is_answered_by_button(backend: Backend) {
    let scene = Scene::new(backend).await;
    let question = json!({"action": "moderate", "kind": "question", "question": "Keep or remove c_7?", "options": ["keep", "remove"]});
    let (status, body) = scene.app.create(question).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    scene.settled(&id, 3).await;
    let shared = scene.ask_in(MODERATORS, &id).await;
    assert_eq!(custom_ids(&shared.components), [format!("option:{id}:0"), format!("option:{id}:1"), "<link>".into()]);
    let answer = scene.interact(&button_payload(Clicker::InGuild(CARL), &format!("option:{id}:1"), &shared)).await;
    assert_updated(&answer, "Answered by Carl");
    assert!(footer(&answer["data"]).contains("“remove”"), "{answer:#}");
    let request = scene.request(&id).await;
    assert_eq!(
        (request["status"].as_str(), request["decision"]["answer"].as_str()),
        (Some("answered"), Some("remove"))
    );
    assert_eq!(request["decision"]["by"]["channel"], "discord");

    // Without options, Answer opens a modal whose text is the answer.
    let open = json!({"action": "moderate", "kind": "question", "question": "Why was c_7 reported?"});
    let (_, body) = scene.app.create(open).await;
    let id = body["id"].as_str().unwrap().to_string();
    scene.settled(&id, 3).await;
    let ask = scene.dm_ask(DANA, &id).await;
    assert_eq!(custom_ids(&ask.components), [format!("answer:{id}"), "<link>".into()]);
    let modal = scene.interact(&button_payload(Clicker::InDm(DANA), &format!("answer:{id}"), &ask)).await;
    assert_eq!(
        (modal["type"].as_u64(), modal["data"]["custom_id"].as_str()),
        (Some(9), Some(&*format!("answer_modal:{id}")))
    );
    let submit =
        modal_submit_payload(Clicker::InDm(DANA), &format!("answer_modal:{id}"), &[("answer", " spam ")], &ask);
    assert_updated(&scene.interact(&submit).await, "Answered by Dana");
    assert_eq!(scene.request(&id).await["decision"]["answer"], "spam");
}

async fn a_quorum_keeps_the_buttons_until_it_is_met(backend: Backend) {
    let scene = Scene::new(backend).await;
    let (status, body) = scene.app.create(json!({"action": "ban", "summary": "Ban user u_9"})).await;
    assert_eq!((status, body["approvals_required"].as_u64()), (201, Some(2)), "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let ask = scene.dm_ask(DANA, &id).await;
    let first = scene.interact(&button_payload(Clicker::InDm(DANA), &format!("approve:{id}"), &ask)).await;
    assert_eq!(first["type"], 7, "{first:#}");
    assert_eq!(footer(&first["data"]), "1 of 2 approvals: Dana");
    assert_eq!(custom_ids(&first["data"]["components"])[0], format!("approve:{id}"), "still waiting for one more");
    let again = scene.interact(&button_payload(Clicker::InDm(DANA), &format!("approve:{id}"), &ask)).await;
    assert_eq!(footer(&again["data"]), "1 of 2 approvals: Dana", "the same person counts once: {again:#}");

    let shared = scene.ask_in(MODERATORS, &id).await;
    let second = scene.interact(&button_payload(Clicker::InGuild(CARL), &format!("approve:{id}"), &shared)).await;
    assert_updated(&second, "Approved by Carl");
    assert_eq!(scene.request(&id).await["status"], "approved");
}
