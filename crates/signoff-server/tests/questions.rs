//! Questions (human-as-tool): an agent asks a person something and gets text back. Routed like any request (never
//! decided by a rule), answered once by a member of its group through the API or Slack, waited for like a decision,
//! and expired at its deadline.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::slack::SlackClient;
use signoff_server::notify::SlackSender;
use signoff_testkit::fake_slack::{FakeSlack, SignedInteraction, block_actions_payload, view_submission_payload};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    a_question_is_routed_answered_once_and_waited_for,
    every_wrong_answer_or_question_is_refused,
    an_unanswered_question_expires_at_its_deadline,
    a_question_is_answered_on_slack_by_option_and_by_modal,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, slack: U0DANA, groups: [ops] }
  - { id: hugo, name: Hugo, email: hugo@example.com, groups: [hr] }
groups:
  ops: { notify: [slack] }
  hr: { notify: [email] }
defaults: { route: ops, timeout: 1h, on_timeout: approve }
rules:
  - { name: asks-are-free, when: 'action == "ask"', decide: approve }
"#;

async fn scene(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

async fn ask(app: &TestApp, body: Value) -> (u16, Value) {
    send(app.post("/v1/requests", &app.agent_key).json(&body)).await
}

fn region_question() -> Value {
    json!({"action": "ask", "kind": "question", "question": "Which region should the replica go to?", "options": ["eu", "us"]})
}

async fn answer(app: &TestApp, id: &str, key: &str, text: &str) -> (u16, Value) {
    send(app.post(&format!("/v1/requests/{id}/answer"), key).json(&json!({ "text": text }))).await
}

async fn a_question_is_routed_answered_once_and_waited_for(backend: Backend) {
    let (_db, app) = scene(backend).await;
    let (status, asked) = ask(&app, region_question()).await;
    assert_eq!((status, asked["status"].as_str(), asked["kind"].as_str()), (201, Some("pending"), Some("question")));
    assert_eq!(asked["group"], "ops", "a rule that decides at once does not answer a question: the defaults route it");
    assert_eq!(asked["options"], json!(["eu", "us"]));
    let id = asked["id"].as_str().unwrap().to_string();

    let wait = app.get(&format!("/v1/requests/{id}/wait?timeout_s=20"), &app.agent_key);
    let waiting = tokio::spawn(send(wait));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dana = app.approver("dana").await;
    let (status, answered) = answer(&app, &id, &dana, " us ").await;
    assert_eq!((status, answered["status"].as_str()), (200, Some("answered")), "{answered}");
    let (status, waited) = waiting.await.unwrap();
    assert_eq!((status, waited["status"].as_str()), (200, Some("answered")), "{waited}");
    let decision = &waited["decision"];
    assert_eq!(decision["outcome"], "answered");
    assert_eq!(decision["answer"], "us", "trimmed");
    assert_eq!(decision["by"], json!({"kind": "human", "approver_id": "dana", "channel": "api"}));

    let (status, body) = answer(&app, &id, &dana, "eu").await;
    assert_eq!((status, error_code(&body)), (409, "already_decided"), "the first answer ends it: {body}");
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "routed", "decided"]);
    assert_eq!(events[0]["data"]["question"], "Which region should the replica go to?");
}

async fn every_wrong_answer_or_question_is_refused(backend: Backend) {
    let (_db, app) = scene(backend).await;
    let (_, asked) = ask(&app, region_question()).await;
    let id = asked["id"].as_str().unwrap().to_string();
    let (dana, hugo) = (app.approver("dana").await, app.approver("hugo").await);

    let (status, body) = answer(&app, &id, &dana, "asia").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_answer"), "{body}");
    assert_eq!(body["error"]["message"], "the answer must be one of: eu, us");
    let (status, body) = answer(&app, &id, &dana, "   ").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_answer"), "{body}");
    let (status, body) = answer(&app, &id, &hugo, "eu").await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "not in ops: {body}");
    let (status, body) = app.decide(&id, &dana, json!({"outcome": "approve"})).await;
    assert_eq!((status, error_code(&body)), (400, "wrong_kind"), "a question is answered, not approved: {body}");
    let (status, body) = answer(&app, &id, &app.agent_key, "eu").await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "an agent key answers nothing: {body}");

    let (_, approval) = ask(&app, json!({"action": "deploy"})).await;
    let approval = approval["id"].as_str().unwrap().to_string();
    let (status, body) = answer(&app, &approval, &dana, "yes").await;
    assert_eq!((status, error_code(&body)), (400, "wrong_kind"), "{body}");

    for (body, field) in [
        (json!({"action": "ask", "kind": "question"}), "question"),
        (json!({"action": "ask", "kind": "question", "question": " "}), "question"),
        (json!({"action": "ask", "kind": "question", "question": "Go?", "mode": "post"}), "mode"),
        (json!({"action": "ask", "kind": "question", "question": "Go?", "options": ["a", "a"]}), "options"),
        (json!({"action": "ask", "question": "Go?"}), "question"),
        (json!({"action": "ask", "options": ["a"]}), "options"),
    ] {
        let (status, answer) = ask(&app, body.clone()).await;
        assert_eq!((status, error_code(&answer)), (400, "invalid_request"), "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().starts_with(field), "{body}: {answer}");
    }
    let (status, body) = ask(&app, json!({"action": "ask", "kind": "poll", "question": "Go?"})).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");
    assert_eq!(send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await.1["status"], "pending");
}

async fn an_unanswered_question_expires_at_its_deadline(backend: Backend) {
    let (_db, app) = scene(backend).await;
    // The defaults say `on_timeout: approve`; a question has nothing to approve, so it expires.
    let mut question = region_question();
    question["timeout_s"] = json!(1);
    let (_, asked) = ask(&app, question).await;
    let id = asked["id"].as_str().unwrap();
    let (status, waited) = send(app.get(&format!("/v1/requests/{id}/wait?timeout_s=20"), &app.agent_key)).await;
    assert_eq!((status, waited["status"].as_str()), (200, Some("expired")), "{waited}");
    assert_eq!(waited["decision"]["by"], json!({"kind": "timeout"}));
    assert_eq!(waited["decision"]["answer"], Value::Null);
}

async fn a_question_is_answered_on_slack_by_option_and_by_modal(backend: Backend) {
    let slack = FakeSlack::start().await;
    let config = slack.config();
    let (_db, app) = TestApp::on_with(backend, move |state| {
        state.senders.insert(Channel::Slack, Arc::new(SlackSender(SlackClient::new(&config).expect("client"))));
        state.slack = Some(config);
    })
    .await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let url = format!("{}/channels/slack/interactions", app.url);

    // With options: one button each; a click answers.
    let (_, asked) = ask(&app, region_question()).await;
    let id = asked["id"].as_str().unwrap().to_string();
    let posted = slack.wait_for("chat.postMessage", 1, Duration::from_secs(20)).await;
    let buttons = posted[0].body["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").cloned();
    let buttons = buttons.expect("buttons")["elements"].as_array().unwrap().clone();
    let labels: Vec<&str> = buttons.iter().map(|b| b["text"]["text"].as_str().unwrap()).collect();
    assert_eq!(labels, ["eu", "us", "Open in dashboard"], "no Approve or Reject on a question");
    let value = buttons[1]["value"].as_str().unwrap();
    let click = block_actions_payload("U0DANA", "answer_option", value, "trigger-1", &slack.response_url("one"));
    assert_eq!(send(SignedInteraction::now(&click).send(&app.http, &url)).await.0, 200);
    let updated = slack.wait_for("chat.update", 1, Duration::from_secs(20)).await;
    assert!(updated[0].body.to_string().contains("Answered by Dana"), "{:#}", updated[0].body);
    let request = send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await.1;
    assert_eq!((request["status"].as_str(), request["decision"]["answer"].as_str()), (Some("answered"), Some("us")));

    // Open-ended: Answer opens a modal; its submission answers.
    let question = json!({"action": "ask", "kind": "question", "question": "Why is the EU replica lagging?"});
    let (_, asked) = ask(&app, question).await;
    let id = asked["id"].as_str().unwrap().to_string();
    slack.wait_for("chat.postMessage", 2, Duration::from_secs(20)).await;
    let click = block_actions_payload("U0DANA", "answer", &id, "trigger-2", &slack.response_url("two"));
    assert_eq!(send(SignedInteraction::now(&click).send(&app.http, &url)).await.0, 200);
    let opened = slack.wait_for("views.open", 1, Duration::from_secs(20)).await;
    assert_eq!(opened[0].body["view"]["callback_id"], "signoff_answer");
    let empty = json!({"answer": {"answer": {"type": "plain_text_input", "value": "  "}}});
    let submit = SignedInteraction::now(&view_submission_payload("U0DANA", "signoff_answer", &id, empty));
    let (status, body) = send(submit.send(&app.http, &url)).await;
    assert_eq!((status, body["response_action"].as_str()), (200, Some("errors")), "{body}");
    let text = json!({"answer": {"answer": {"type": "plain_text_input", "value": "A long vacuum on the primary"}}});
    let submit = SignedInteraction::now(&view_submission_payload("U0DANA", "signoff_answer", &id, text));
    assert_eq!(send(submit.send(&app.http, &url)).await, (200, Value::Null));
    let request = send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await.1;
    assert_eq!(request["decision"]["answer"], "A long vacuum on the primary");
    assert_eq!(request["decision"]["by"]["channel"], "slack");
}
