//! The Discord client against the fake Discord: DMs opened and messages posted, edited and replied to within
//! Discord's limits, and each failure classified the way the notification worker needs (a `429` with its
//! `retry_after`, transient outages, permanent refusals such as `50007`).

use serde_json::json;
use signoff_domain::{
    ApproverId, Channel, DecidedBy, Decision, DecisionOutcome, Kind, NewRequest, Request, RequestId, Requester, Status,
};
use signoff_notify::RequestView;
use signoff_notify::discord::{DiscordClient, DiscordConfig, Recipient};
use signoff_testkit::fake_discord::{ApplicationKey, FakeDiscord, message_problems};
use std::time::Duration;

fn request() -> Request {
    let requester = Requester { key_id: "k1".into(), key_name: "bot".into(), responsible: None };
    let mut new = NewRequest::action("refund");
    new.summary = Some("Refund".into());
    new.args = json!({"note": "y".repeat(5000)});
    new.reasoning = Some("z".repeat(5000));
    Request::new(RequestId::new(), new, requester, signoff_store::now())
}

#[tokio::test]
async fn the_client_posts_edits_replies_and_classifies_failures() {
    let discord = FakeDiscord::start().await;
    let key = ApplicationKey::generate();
    let client = DiscordClient::new(&discord.config(&key)).unwrap();
    let (request, view) =
        (request(), RequestView { public_url: "https://signoff.example.com".into(), ..Default::default() });

    let dm = client.post_request(Recipient::User("80351110224678912"), &request, &view).await.unwrap();
    let channel = discord.dm_channel("80351110224678912").expect("a DM was opened");
    let message = &discord.messages()[0];
    assert_eq!(dm, format!("{channel}:{}", message.id));
    let open = &discord.calls_to("POST", "/users/@me/channels")[0];
    assert_eq!(open.body, json!({"recipient_id": "80351110224678912"}));
    assert_eq!(open.headers["authorization"], "Bot fake-discord-bot-token");
    assert!(open.headers["user-agent"].starts_with("DiscordBot ("), "{:?}", open.headers);
    let post = &discord.calls_to("POST", "/channels/{id}/messages")[0];
    assert!(message_problems(&post.body).is_empty(), "long arguments and reasoning are cut to fit");
    assert_eq!(
        client.post_request(Recipient::User("80351110224678912"), &request, &view).await.unwrap().split(':').next(),
        Some(&*channel),
        "the same DM"
    );

    let shared = client.post_request(Recipient::Channel("1100000000000000001"), &request, &view).await.unwrap();
    assert!(shared.starts_with("1100000000000000001:"), "{shared}");
    client.update_request(&dm, &request, &view).await.unwrap();
    assert_eq!(discord.messages()[0].edits, 1);
    let reminder = client.post_reminder(&dm, &request, &view).await.unwrap();
    let reply = discord.messages().into_iter().find(|m| reminder.ends_with(&m.id)).unwrap();
    assert_eq!(reply.reference.as_deref(), Some(&*discord.messages()[0].id));

    discord.rate_limit_next(1, 1.5);
    let limited = client.update_request(&dm, &request, &view).await.unwrap_err();
    assert_eq!((limited.retry_after, limited.permanent), (Some(Duration::from_millis(1500)), false));
    let answered = discord.calls().pop().unwrap();
    assert_eq!(answered.answered, 429);
    discord.fail_next(1);
    assert!(!client.update_request(&dm, &request, &view).await.unwrap_err().permanent);

    discord.refuse_dms_from("80351110224678913");
    let refused = client.post_request(Recipient::User("80351110224678913"), &request, &view).await.unwrap_err();
    assert!(refused.permanent && refused.message.contains("50007: Cannot send messages to this user"), "{refused}");
    discord.forget_channel("1100000000000000009");
    let gone = client.post_request(Recipient::Channel("1100000000000000009"), &request, &view).await.unwrap_err();
    assert!(gone.permanent && gone.message.contains("10003"), "{gone}");
    let missing = client.update_request(&format!("{channel}:1"), &request, &view).await.unwrap_err();
    assert!(missing.permanent && missing.message.contains("10008: Unknown Message"), "{missing}");
    let not_an_id = client.post_request(Recipient::User("dana#0001"), &request, &view).await.unwrap_err();
    assert!(not_an_id.permanent && not_an_id.message.contains("not a user id"), "{not_an_id}");

    let wrong = DiscordClient::new(&DiscordConfig { bot_token: "wrong".into(), ..discord.config(&key) }).unwrap();
    let unauthorized = wrong.post_test("80351110224678912").await.unwrap_err();
    assert!(unauthorized.permanent && unauthorized.message.contains("HTTP 401"), "{unauthorized}");
    assert!(!unauthorized.message.contains("wrong"), "the token is never in an error: {unauthorized}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down =
        DiscordClient::new(&DiscordConfig { api_url: format!("http://{closed}/api/v10"), ..discord.config(&key) });
    let down = down.unwrap().post_test("80351110224678912").await.unwrap_err();
    assert!(!down.permanent, "connection refused is transient: {down}");

    let mut question = request;
    question.kind = Kind::Question;
    question.question = Some("Which region?".into());
    question.options = (0..20).map(|i| format!("option {i} {}", "w".repeat(190))).collect();
    client.post_request(Recipient::Channel("1100000000000000001"), &question, &view).await.unwrap();
    let post = discord.calls_to("POST", "/channels/{id}/messages").pop().unwrap();
    assert!(post.ok() && message_problems(&post.body).is_empty(), "{:#?}", message_problems(&post.body));
}

/// Every field at its longest: still one message within Discord's limits, asked and decided.
#[tokio::test]
async fn a_request_at_every_limit_still_fits() {
    let discord = FakeDiscord::start().await;
    let client = DiscordClient::new(&discord.config(&ApplicationKey::generate())).unwrap();
    let view = RequestView { public_url: "https://signoff.example.com".into(), ..Default::default() };
    let mut request = request();
    request.action = "a".repeat(300);
    request.kind = Kind::Question;
    request.question = Some("*q* ".repeat(1000));
    request.options = (0..20).map(|i| format!("{i}{}", "_".repeat(199))).collect();
    request.tags = (0..50).map(|i| format!("tag{i}-{}", "#".repeat(60))).collect();
    request.confidence = Some(0.5);
    let sent = client.post_request(Recipient::Channel("1100000000000000001"), &request, &view).await;
    let post = discord.calls_to("POST", "/channels/{id}/messages").pop().unwrap();
    assert!(sent.is_ok() && message_problems(&post.body).is_empty(), "{:#?}", message_problems(&post.body));

    let dana = ApproverId::parse("dana").unwrap();
    for (outcome, status) in
        [(DecisionOutcome::Answered, Status::Answered), (DecisionOutcome::Rejected, Status::Rejected)]
    {
        request.status = status;
        request.decision = Some(Decision {
            outcome,
            args: request.args.clone(),
            edited: true,
            comment: Some("c".repeat(4000)),
            reason: Some("r".repeat(500)),
            by: DecidedBy::Human { approver_id: dana.clone(), channel: Channel::Discord },
            at: signoff_store::now(),
            answer: Some("a".repeat(16_000)),
        });
        client.update_request(sent.as_ref().unwrap(), &request, &view).await.unwrap();
        let edit = discord.calls_to("PATCH", "/channels/{id}/messages/{id}").pop().unwrap();
        assert!(edit.ok() && message_problems(&edit.body).is_empty(), "{:#?}", message_problems(&edit.body));
    }
}

#[test]
fn the_fake_refuses_what_discord_refuses() {
    let too_long = json!({
        "content": "x".repeat(2001),
        "embeds": [{"title": "t".repeat(257), "fields": [{"name": "a", "value": ""}]}],
        "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "A", "custom_id": "c".repeat(101)},
            {"type": 2, "style": 5, "label": "Open", "custom_id": "x"},
        ]}],
    });
    let paths: Vec<String> = message_problems(&too_long).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "content",
            "embeds.0.title",
            "embeds.0.fields.0",
            "components.0.components.0.custom_id",
            "components.0.components.1"
        ]
    );
}
