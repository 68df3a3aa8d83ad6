//! The post-execution review loop on every backend: sampled reviews confirmed and flagged, flags on what policy let
//! through counted as misses, the signed `request.flagged` callback, remediation through `outcome`, and every refusal.

use serde_json::{Value, json};
use signoff_domain::Role;
use signoff_store::NewKey;
use signoff_testkit::{
    Backend, CallbackReceiver, ReceivedCallback, TestApp, TestDatabase, error_code, on_every_backend, person,
    python_verifies, send,
};
use std::time::Duration;

on_every_backend!(
    a_flag_on_a_sampled_review_reaches_the_agent_signed,
    a_confirmation_approves_a_sampled_review_once,
    a_flag_on_what_policy_let_through_is_a_miss,
    a_rejection_through_any_channel_is_the_reviews_flag,
    reviews_are_refused_where_they_do_not_apply,
    review_bodies_are_checked,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [moderators] }
  - { id: mo, name: Mo, email: mo@example.com, groups: [moderators] }
  - { id: olga, name: Olga, email: olga@example.com, groups: [moderators] }
  - { id: fred, name: Fred, email: fred@example.com, groups: [finance] }
groups:
  moderators: { notify: [dashboard] }
  finance: { notify: [dashboard] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: every-removal
    when: action == "remove_comment"
    review: { sample: 1, group: moderators }
  - name: no-tagging-review
    when: action == "tag_comment"
    review: { sample: 0, group: moderators }
  - name: small-refund
    when: action == "refund" && args.amount < 100
    decide: approve
"#;

async fn app(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

async fn report(app: &TestApp, body: Value) -> String {
    let (status, created) = app.create(body).await;
    assert_eq!(status, 201, "{created}");
    id(&created)
}

async fn flag(app: &TestApp, id: &str, key: &str, body: Value) -> (u16, Value) {
    send(app.post(&format!("/v1/requests/{id}/flag"), key).json(&body)).await
}

async fn confirm(app: &TestApp, id: &str, key: &str, body: Value) -> (u16, Value) {
    send(app.post(&format!("/v1/requests/{id}/confirm"), key).json(&body)).await
}

async fn outcome(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    send(app.post(&format!("/v1/requests/{id}/outcome"), &app.agent_key).json(&body)).await
}

async fn event_kinds(app: &TestApp, id: &str) -> Vec<String> {
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
    events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

fn payload(callback: &ReceivedCallback) -> Value {
    serde_json::from_str(&callback.body).unwrap()
}

/// The callbacks received for request `id`, in arrival order.
fn callbacks_for(received: &[ReceivedCallback], id: &str) -> Vec<Value> {
    received.iter().map(payload).filter(|p| p["data"]["id"] == id).collect()
}

async fn a_flag_on_a_sampled_review_reaches_the_agent_signed(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(0, None).await;
    let id = report(
        &app,
        json!({"action": "remove_comment", "mode": "post", "args": {"comment": 7}, "callback_url": receiver.url,
               "state": {"thread": "t-7"}}),
    )
    .await;
    // A post report usually carries its outcome before anyone reviews it.
    let (status, body) = outcome(&app, &id, json!({"ok": true, "detail": {"removed": 7}})).await;
    assert_eq!(status, 200, "{body}");

    let dana = app.approver("dana").await;
    let (status, flagged) =
        flag(&app, &id, &dana, json!({"reason": "wrong_comment", "comment": "that comment was fine", "undo": true}))
            .await;
    assert_eq!(status, 200, "{flagged}");
    assert_eq!(flagged["status"], "rejected");
    assert_eq!(flagged["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "api"}));
    assert_eq!(flagged["decision"]["reason"], "wrong_comment");
    let review = &flagged["review"];
    assert_eq!(
        (&review["verdict"], &review["reason"], &review["comment"], &review["undo"], &review["miss"], &review["by"]),
        (
            &json!("flagged"),
            &json!("wrong_comment"),
            &json!("that comment was fine"),
            &json!(true),
            &json!(false),
            &json!("dana")
        )
    );
    let kinds = event_kinds(&app, &id).await;
    assert_eq!(kinds[kinds.len() - 2..], ["decided", "flagged"], "{kinds:?}");

    let received = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    let callback = &received[0];
    assert!(python_verifies(&app.agent_webhook_secret, callback), "the Python standardwebhooks package accepts it");
    let mut forged = callback.clone();
    forged.body = forged.body.replace("wrong_comment", "fine_comment");
    assert!(!python_verifies(&app.agent_webhook_secret, &forged), "and refuses a forged body");
    let body = payload(callback);
    assert_eq!(body["type"], "request.flagged");
    assert_eq!(body["timestamp"], flagged["review"]["at"]);
    assert_eq!((&body["data"]["id"], &body["data"]["review"]["undo"]), (&json!(id), &json!(true)));
    assert_eq!(body["data"]["state"], json!({"thread": "t-7"}), "the agent's state comes back");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 1, "one callback per change: the flag, not also the decision");

    // The remediation comes through `outcome`, beside the outcome reported before the flag.
    let (status, remedied) = outcome(&app, &id, json!({"ok": true, "detail": {"restored": 7}})).await;
    assert_eq!(status, 200, "{remedied}");
    assert_eq!(remedied["outcome"]["detail"], json!({"removed": 7}), "the first outcome stays");
    assert_eq!(
        (&remedied["remediation"]["ok"], &remedied["remediation"]["detail"]),
        (&json!(true), &json!({"restored": 7}))
    );
    let (_, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.agent_key)).await;
    let last = events.as_array().unwrap().last().unwrap();
    assert_eq!((&last["kind"], &last["data"]["remediation"]), (&json!("outcome_reported"), &json!(true)));
    let (status, body) = outcome(&app, &id, json!({"ok": false})).await;
    assert_eq!((status, error_code(&body)), (409, "outcome_already_reported"), "{body}");

    // A flag before any outcome: the agent's first report is the outcome, the next its remediation.
    let early = report(&app, json!({"action": "remove_comment", "mode": "post", "args": {"comment": 8}})).await;
    flag(&app, &early, &dana, json!({"reason": "wrong_comment"})).await;
    let (_, first) = outcome(&app, &early, json!({"ok": true})).await;
    assert!(first["outcome"].is_object() && first.get("remediation").is_none(), "{first}");
    let (_, second) = outcome(&app, &early, json!({"ok": true, "detail": "restored"})).await;
    assert_eq!(second["remediation"]["detail"], "restored");
}

async fn a_confirmation_approves_a_sampled_review_once(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(0, None).await;
    let id = report(&app, json!({"action": "remove_comment", "mode": "post", "callback_url": receiver.url})).await;
    let mo = app.approver("mo").await;
    let (status, confirmed) = confirm(&app, &id, &mo, json!({"comment": "right call"})).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "approved");
    assert_eq!(confirmed["decision"]["by"]["approver_id"], "mo");
    assert_eq!(
        (&confirmed["review"]["verdict"], &confirmed["review"]["comment"], &confirmed["review"]["miss"]),
        (&json!("confirmed"), &json!("right call"), &json!(false))
    );
    let kinds = event_kinds(&app, &id).await;
    assert_eq!(kinds[kinds.len() - 2..], ["decided", "confirmed"], "{kinds:?}");
    let received = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(payload(&received[0])["type"], "request.decided");
    assert!(python_verifies(&app.agent_webhook_secret, &received[0]));

    // One review per request.
    let dana = app.approver("dana").await;
    let (status, body) = flag(&app, &id, &dana, json!({"reason": "late_second_thoughts"})).await;
    assert_eq!((status, error_code(&body)), (409, "already_reviewed"), "{body}");
    let (status, body) = confirm(&app, &id, &dana, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "already_reviewed"), "{body}");

    // The body is optional.
    let other = report(&app, json!({"action": "remove_comment", "mode": "post"})).await;
    let (status, body) = send(app.post(&format!("/v1/requests/{other}/confirm"), &mo)).await;
    assert_eq!((status, body["review"]["verdict"].as_str()), (200, Some("confirmed")), "{body}");
}

async fn a_flag_on_what_policy_let_through_is_a_miss(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(0, None).await;
    let (status, created) =
        app.create(json!({"action": "refund", "args": {"amount": 40}, "callback_url": receiver.url})).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("approved")), "{created}");
    let id = id(&created);
    outcome(&app, &id, json!({"ok": true})).await;
    receiver.wait_for_accepted(1, Duration::from_secs(20)).await;

    // fred is in no group the request was routed to: any approver of the policy may flag a miss.
    let fred = app.approver("fred").await;
    let (status, flagged) = flag(&app, &id, &fred, json!({"reason": "wrong_amount", "undo": false})).await;
    assert_eq!(status, 200, "{flagged}");
    assert_eq!(flagged["status"], "approved", "a decided request keeps its decision");
    assert_eq!(flagged["decision"], created["decision"]);
    assert_eq!((&flagged["review"]["miss"], &flagged["review"]["by"]), (&json!(true), &json!("fred")));
    assert_eq!(event_kinds(&app, &id).await.last().map(String::as_str), Some("flagged"));

    let received = receiver.wait_for_accepted(2, Duration::from_secs(20)).await;
    let ours = callbacks_for(&received, &id);
    assert_eq!(
        ours.iter().map(|p| p["type"].clone()).collect::<Vec<_>>(),
        [json!("request.decided"), json!("request.flagged")]
    );
    assert!(python_verifies(&app.agent_webhook_secret, &received[1]));
    assert_eq!(ours[1]["data"]["review"]["miss"], true);

    // A review not drawn for sampling was approved by policy too.
    let unsampled = report(&app, json!({"action": "tag_comment", "mode": "post"})).await;
    let dana = app.approver("dana").await;
    let (status, body) = flag(&app, &unsampled, &dana, json!({"reason": "wrong_tag"})).await;
    assert_eq!((status, &body["review"]["miss"], &body["status"]), (200, &json!(true), &json!("approved")), "{body}");

    // Nothing to confirm on what needed no one.
    let other = id_of(app.create(json!({"action": "refund", "args": {"amount": 5}})).await);
    let (status, body) = confirm(&app, &other, &dana, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "not_reviewable"), "{body}");
}

fn id_of((status, body): (u16, Value)) -> String {
    assert_eq!(status, 201, "{body}");
    id(&body)
}

async fn a_rejection_through_any_channel_is_the_reviews_flag(backend: Backend) {
    let (_db, app) = app(backend).await;
    let receiver = CallbackReceiver::start(0, None).await;
    let id = report(&app, json!({"action": "remove_comment", "mode": "post", "callback_url": receiver.url})).await;
    let mo = app.approver("mo").await;
    let (status, body) =
        app.decide(&id, &mo, json!({"outcome": "reject", "reason": "spam_was_fine", "comment": "not spam"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["review"]["verdict"], &body["review"]["reason"], &body["review"]["undo"]),
        (&json!("flagged"), &json!("spam_was_fine"), &json!(false))
    );
    let received = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(payload(&received[0])["type"], "request.flagged");

    let approved = report(&app, json!({"action": "remove_comment", "mode": "post"})).await;
    let (_, body) = app.decide(&approved, &mo, json!({"outcome": "approve"})).await;
    assert_eq!(body["review"]["verdict"], "confirmed");
}

async fn reviews_are_refused_where_they_do_not_apply(backend: Backend) {
    let (_db, app) = app(backend).await;
    let dana = app.approver("dana").await;
    let sampled = report(&app, json!({"action": "remove_comment", "mode": "post"})).await;
    let reason = json!({"reason": "wrong_comment"});

    for missing in ["0190a5c4-0000-7000-8000-000000000000", "not-an-id"] {
        let (status, body) = flag(&app, missing, &dana, reason.clone()).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{missing}: {body}");
        let (status, body) = confirm(&app, missing, &dana, json!({})).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{missing}: {body}");
    }

    // Not a member of the sampled review's group.
    let fred = app.approver("fred").await;
    let (status, body) = flag(&app, &sampled, &fred, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = confirm(&app, &sampled, &fred, json!({})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // Nobody reviews what they answer for: the owner of the agent, on a sampled review or a miss.
    let olga_bot = NewKey { owner_id: Some(person("olga")), ..NewKey::new("olga-bot", Role::Agent) };
    let olga_bot = app.key(olga_bot).await;
    let (_, own) =
        send(app.post("/v1/requests", &olga_bot).json(&json!({"action": "remove_comment", "mode": "post"}))).await;
    let (_, own_refund) =
        send(app.post("/v1/requests", &olga_bot).json(&json!({"action": "refund", "args": {"amount": 1}}))).await;
    let olga = app.approver("olga").await;
    for (target, verb, review) in
        [(id(&own), "flag", &reason), (id(&own), "confirm", &json!({})), (id(&own_refund), "flag", &reason)]
    {
        let (status, body) = send(app.post(&format!("/v1/requests/{target}/{verb}"), &olga).json(review)).await;
        assert_eq!((status, error_code(&body)), (403, "self_approval"), "{verb}: {body}");
    }

    // A miss is flagged by an approver the policy declares.
    let refund = id_of(app.create(json!({"action": "refund", "args": {"amount": 1}})).await);
    let stranger = app.approver("zed").await;
    let (status, body) = flag(&app, &refund, &stranger, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // People review, not keys.
    let unbound_admin = app.key(NewKey::new("ops", Role::Admin)).await;
    let (status, body) = flag(&app, &sampled, &unbound_admin, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (403, "not_an_approver"), "{body}");
    let (status, body) = confirm(&app, &sampled, &app.agent_key, json!({})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // Questions are answered, never reviewed.
    let question =
        id_of(app.create(json!({"action": "ask_human", "kind": "question", "question": "Which tag?"})).await);
    let (status, body) = flag(&app, &question, &dana, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (400, "wrong_kind"), "{body}");

    // A pending request that is not a sampled review is decided, not reviewed.
    let pending = id_of(app.create(json!({"action": "refund", "args": {"amount": 5000}})).await);
    let (status, body) = flag(&app, &pending, &fred, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (409, "not_decided"), "{body}");
    let (status, body) = confirm(&app, &pending, &fred, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "not_decided"), "{body}");

    // A person's approval is theirs, not a miss of the gate; a rejected action did not run.
    app.decide(&pending, &fred, json!({"outcome": "approve"})).await;
    let (status, body) = flag(&app, &pending, &dana, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (409, "not_reviewable"), "{body}");
    let rejected = id_of(app.create(json!({"action": "refund", "args": {"amount": 6000}})).await);
    app.decide(&rejected, &fred, json!({"outcome": "reject", "comment": "no"})).await;
    let (status, body) = flag(&app, &rejected, &dana, reason.clone()).await;
    assert_eq!((status, error_code(&body)), (409, "not_reviewable"), "{body}");

    // Nothing refused changed the sampled review.
    let (_, still) = send(app.get(&format!("/v1/requests/{sampled}"), &dana)).await;
    assert_eq!((still["status"].as_str(), still.get("review")), (Some("pending"), None), "{still}");
}

async fn review_bodies_are_checked(backend: Backend) {
    let (_db, app) = app(backend).await;
    let dana = app.approver("dana").await;
    let sampled = report(&app, json!({"action": "remove_comment", "mode": "post"})).await;
    for (body, code) in [
        (json!({}), "bad_request"),
        (json!({"reason": 7}), "bad_request"),
        (json!({"reason": "x", "surprise": true}), "bad_request"),
        (json!({"reason": "x", "undo": "yes"}), "bad_request"),
        (json!({"reason": "   "}), "invalid_request"),
        (json!({"reason": "x".repeat(201)}), "invalid_request"),
    ] {
        let (status, answer) = flag(&app, &sampled, &dana, body.clone()).await;
        assert_eq!((status, error_code(&answer)), (400, code), "{body}: {answer}");
    }
    let huge = json!({"reason": "x", "comment": "y".repeat(2 * 1024 * 1024)});
    let (status, answer) = flag(&app, &sampled, &dana, huge.clone()).await;
    assert_eq!((status, error_code(&answer)), (413, "payload_too_large"), "{answer}");
    let (status, answer) = confirm(&app, &sampled, &dana, huge).await;
    assert_eq!((status, error_code(&answer)), (413, "payload_too_large"), "{answer}");
    let (status, answer) = send(
        app.post(&format!("/v1/requests/{sampled}/confirm"), &dana)
            .body("{not json")
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!((status, error_code(&answer)), (400, "bad_request"), "{answer}");
    let (status, answer) = confirm(&app, &sampled, &dana, json!({"comment": 5})).await;
    assert_eq!((status, error_code(&answer)), (400, "bad_request"), "{answer}");
    let (_, still) = send(app.get(&format!("/v1/requests/{sampled}"), &dana)).await;
    assert_eq!(still["status"], "pending", "{still}");
}
