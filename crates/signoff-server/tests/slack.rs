//! Slack interactivity end to end: signed clicks and modal submissions from a fake Slack decide requests created
//! through the API, through the same service as every other channel; forged, stale and retried deliveries change
//! nothing; people who may not decide are told why.

use serde_json::{Value, json};
use signoff_testkit::fake_slack::{
    FAKE_SIGNING_SECRET, FakeSlack, SignedInteraction, block_actions_payload, unix_now, view_submission_payload,
};
use signoff_testkit::{Backend, TestApp, TestDatabase, on_every_backend, send};
use std::time::Duration;

on_every_backend!(
    an_approve_click_approves_the_request,
    a_reject_click_opens_the_modal_and_its_submission_rejects,
    an_edit_submission_approves_the_edited_args,
    forged_stale_and_retried_clicks_change_nothing,
    people_who_may_not_decide_are_told_why,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, slack: U0DANA, groups: [finance] }
  - { id: carl, name: Carl, slack: U0CARL, groups: [finance] }
  - { id: mo, name: Mo, slack: U0MO, groups: [moderators] }
groups:
  finance: { notify: [slack] }
  moderators: { notify: [slack] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: refund
    when: action == "refund"
    route: finance
    reject_reasons: [fraud, duplicate]
"#;

const WITHIN: Duration = Duration::from_secs(10);

struct Scene {
    _db: TestDatabase,
    app: TestApp,
    slack: FakeSlack,
}

impl Scene {
    async fn new(backend: Backend) -> Scene {
        let slack = FakeSlack::start().await;
        let config = slack.config();
        let (db, app) = TestApp::on_with(backend, |state| state.slack = Some(config)).await;
        let (status, body) = app.apply_policy(POLICY).await;
        assert_eq!(status, 201, "{body}");
        Scene { _db: db, app, slack }
    }

    fn interactions(&self) -> String {
        format!("{}/channels/slack/interactions", self.app.url)
    }

    /// A refund routed to `finance`; returns its id.
    async fn refund(&self) -> String {
        let (status, body) =
            self.app.create(json!({"action": "refund", "args": {"amount": 50}, "summary": "Refund"})).await;
        assert_eq!((status, body["group"].as_str()), (201, Some("finance")), "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// `user` clicks `action` on the message about `id`; the click's trigger id and response URL are named `name`.
    fn click(&self, user: &str, action: &str, id: &str, name: &str) -> SignedInteraction {
        SignedInteraction::now(&block_actions_payload(user, action, id, name, &self.slack.response_url(name)))
    }

    async fn deliver(&self, interaction: &SignedInteraction) -> (u16, Value) {
        send(interaction.send(&self.app.http, &self.interactions())).await
    }

    async fn request(&self, id: &str) -> Value {
        let (status, body) = send(self.app.get(&format!("/v1/requests/{id}"), &self.app.admin_key)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits (long-polls) until `id` is decided.
    async fn decided(&self, id: &str) -> Value {
        let (status, body) =
            send(self.app.get(&format!("/v1/requests/{id}/wait?timeout_s=10"), &self.app.admin_key)).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(body["status"], "pending", "decided within the wait: {body}");
        body
    }

    async fn events(&self, id: &str, kind: &str) -> usize {
        let (_, events) = send(self.app.get(&format!("/v1/requests/{id}/events"), &self.app.admin_key)).await;
        events.as_array().unwrap().iter().filter(|e| e["kind"] == kind).count()
    }

    /// The ephemeral messages sent through the response URL named `name`.
    async fn ephemeral(&self, name: &str) -> String {
        let calls = self
            .slack
            .wait_until(WITHIN, |calls| calls.iter().any(|c| c.response_url_name.as_deref() == Some(name)))
            .await;
        let call = calls.iter().find(|c| c.response_url_name.as_deref() == Some(name)).unwrap();
        assert_eq!(call.body["response_type"], "ephemeral", "{:#}", call.body);
        assert_eq!(call.body["replace_original"], false, "the message itself stays as it is");
        call.body["text"].as_str().unwrap().to_string()
    }
}

async fn an_approve_click_approves_the_request(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    let (status, _) = scene.deliver(&scene.click("U0DANA", "approve", &id, "t1")).await;
    assert_eq!(status, 200);
    let decided = scene.decided(&id).await;
    assert_eq!(decided["status"], "approved", "{decided}");
    let by = &decided["decision"]["by"];
    assert_eq!(
        (by["kind"].as_str(), by["approver_id"].as_str(), by["channel"].as_str()),
        (Some("human"), Some("dana"), Some("slack"))
    );
    assert!(scene.slack.calls_to("response_url").is_empty(), "nothing to complain about");
}

async fn a_reject_click_opens_the_modal_and_its_submission_rejects(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    let (status, _) = scene.deliver(&scene.click("U0CARL", "reject", &id, "trigger-reject")).await;
    assert_eq!(status, 200);
    let opened = scene.slack.wait_for("views.open", 1, WITHIN).await;
    let call = &opened[0];
    assert_eq!(call.headers["authorization"], "Bearer xoxb-fake-bot-token");
    assert_eq!(call.body["trigger_id"], "trigger-reject");
    let modal = &call.body["view"];
    assert_eq!(
        (modal["callback_id"].as_str(), modal["private_metadata"].as_str()),
        (Some("signoff_reject"), Some(&*id))
    );
    let options = &modal["blocks"][1]["element"]["options"];
    assert_eq!(
        (options[0]["text"]["text"].as_str(), options[1]["text"]["text"].as_str()),
        (Some("fraud"), Some("duplicate"))
    );
    assert_eq!(scene.request(&id).await["status"], "pending", "opening the modal decides nothing");

    // Without a comment Slack keeps the modal open and shows the error under the comment input.
    let no_comment = json!({
        "reason": {"reason": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "duplicate"}, "value": "1"}}},
        "comment": {"comment": {"type": "plain_text_input", "value": "  "}},
    });
    let submit = SignedInteraction::now(&view_submission_payload("U0CARL", "signoff_reject", &id, no_comment));
    let (status, answer) = scene.deliver(&submit).await;
    assert_eq!((status, answer["response_action"].as_str()), (200, Some("errors")), "{answer}");
    assert!(answer["errors"]["comment"].as_str().unwrap().contains("comment"), "{answer}");
    assert_eq!(scene.request(&id).await["status"], "pending");

    let values = json!({
        "reason": {"reason": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "duplicate"}, "value": "1"}}},
        "comment": {"comment": {"type": "plain_text_input", "value": "charged twice, refunded already"}},
    });
    let submit = SignedInteraction::now(&view_submission_payload("U0CARL", "signoff_reject", &id, values));
    let (status, answer) = scene.deliver(&submit).await;
    assert_eq!((status, answer), (200, Value::Null), "an empty answer closes the modal");
    let decided = scene.request(&id).await;
    let decision = &decided["decision"];
    assert_eq!(decided["status"], "rejected", "{decided}");
    assert_eq!(
        (decision["reason"].as_str(), decision["comment"].as_str()),
        (Some("duplicate"), Some("charged twice, refunded already"))
    );
    assert_eq!(
        (decision["by"]["approver_id"].as_str(), decision["by"]["channel"].as_str()),
        (Some("carl"), Some("slack"))
    );
}

async fn an_edit_submission_approves_the_edited_args(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    scene.deliver(&scene.click("U0DANA", "edit", &id, "trigger-edit")).await;
    let opened = scene.slack.wait_for("views.open", 1, WITHIN).await;
    let initial = opened[0].body["view"]["blocks"][1]["element"]["initial_value"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(initial).unwrap(), json!({"amount": 50}));

    let args = |text: &str| json!({"args": {"args": {"type": "plain_text_input", "value": text}}});
    let submit = SignedInteraction::now(&view_submission_payload("U0DANA", "signoff_edit", &id, args("{\"amount\": ")));
    let (_, answer) = scene.deliver(&submit).await;
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert!(answer["errors"]["args"].as_str().unwrap().contains("not valid JSON"), "{answer}");

    let submit =
        SignedInteraction::now(&view_submission_payload("U0DANA", "signoff_edit", &id, args("{\"amount\": 40}")));
    let (status, answer) = scene.deliver(&submit).await;
    assert_eq!((status, answer), (200, Value::Null));
    let decided = scene.request(&id).await;
    assert_eq!(decided["status"], "approved", "{decided}");
    assert_eq!(
        (decided["decision"]["args"].clone(), decided["decision"]["edited"].as_bool()),
        (json!({"amount": 40}), Some(true))
    );
}

async fn forged_stale_and_retried_clicks_change_nothing(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;
    let payload = block_actions_payload("U0DANA", "approve", &id, "t", &scene.slack.response_url("t"));

    let forged = SignedInteraction::new("not the signing secret", &payload, unix_now());
    let (status, body) = scene.deliver(&forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("bad_signature"), "{body}");

    let stale = SignedInteraction::new(FAKE_SIGNING_SECRET, &payload, unix_now() - 6 * 60);
    let (status, body) = scene.deliver(&stale).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("stale_timestamp"), "{body}");

    let mut tampered = SignedInteraction::now(&payload);
    tampered.body = tampered.body.replace("U0DANA", "U0CARL");
    assert_eq!(scene.deliver(&tampered).await.0, 401);

    // A retry is acknowledged at once and never acted on.
    let retried = SignedInteraction::now(&payload).retried(1);
    assert_eq!(scene.deliver(&retried).await.0, 200);
    // A click delivered after it is acted on (its modal opens), and the retry still decided nothing.
    scene.deliver(&scene.click("U0CARL", "reject", &id, "after")).await;
    scene.slack.wait_for("views.open", 1, WITHIN).await;
    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));

    // The real delivery decides; replaying it (retried, or even as a fresh delivery) decides nothing more.
    let click = SignedInteraction::now(&payload);
    assert_eq!(scene.deliver(&click).await.0, 200);
    assert_eq!(scene.decided(&id).await["status"], "approved");
    assert_eq!(scene.deliver(&click.clone().retried(2)).await.0, 200);
    assert_eq!(scene.deliver(&click).await.0, 200);
    // The replay is refused as already decided, and told so.
    let told = scene.ephemeral("t").await;
    assert!(told.contains("already approved by Dana"), "{told}");
    assert_eq!(scene.events(&id, "decided").await, 1, "decided once");
}

async fn people_who_may_not_decide_are_told_why(backend: Backend) {
    let scene = Scene::new(backend).await;
    let id = scene.refund().await;

    scene.deliver(&scene.click("U0MO", "approve", &id, "not-a-member")).await;
    let told = scene.ephemeral("not-a-member").await;
    assert!(told.contains("Only members of the group `finance`"), "{told}");

    scene.deliver(&scene.click("U0STRANGER", "reject", &id, "stranger")).await;
    let told = scene.ephemeral("stranger").await;
    assert!(told.contains("U0STRANGER") && told.contains("not linked to any approver"), "{told}");

    let values = json!({"comment": {"comment": {"type": "plain_text_input", "value": "no"}}});
    let submit = SignedInteraction::now(&view_submission_payload("U0MO", "signoff_reject", &id, values));
    let (_, answer) = scene.deliver(&submit).await;
    assert_eq!(answer["response_action"], "errors", "{answer}");

    assert!(scene.slack.calls_to("views.open").is_empty(), "no modal for people who may not decide");
    let request = scene.request(&id).await;
    assert_eq!((request["status"].as_str(), request["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));
}
