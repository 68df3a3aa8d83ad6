//! The Slack client against the fake Slack: messages posted and updated, and each failure classified the way the
//! notification worker needs (rate limits with their wait, transient outages, permanent errors).

use signoff_domain::{NewRequest, Request, RequestId, Requester};
use signoff_notify::RequestView;
use signoff_notify::slack::{SlackClient, SlackConfig};
use signoff_testkit::fake_slack::FakeSlack;
use std::time::Duration;

fn request() -> Request {
    let requester = Requester { key_id: "k1".into(), key_name: "bot".into(), responsible: None };
    Request::new(RequestId::new(), NewRequest::action("refund"), requester, signoff_store::now())
}

#[tokio::test]
async fn the_client_posts_updates_and_classifies_failures() {
    let slack = FakeSlack::start().await;
    let client = SlackClient::new(&slack.config()).unwrap();
    let (request, view) = (request(), RequestView::default());

    let message = client.post_request("U0DANA", &request, &view).await.unwrap();
    assert_eq!(message, "D0DANA:1700000000.000100", "a DM lands in the bot's DM channel");
    let second = client.post_request("C0FIN", &request, &view).await.unwrap();
    assert_eq!(second, "C0FIN:1700000000.000200", "ts increments");
    client.update_request(&message, &request, &view).await.unwrap();
    assert_eq!(slack.messages()[0].updates, 1);
    let post = &slack.calls_to("chat.postMessage")[0];
    assert_eq!(post.headers["authorization"], "Bearer xoxb-fake-bot-token");
    assert!(post.headers["content-type"].starts_with("application/json"));
    assert!(post.body["blocks"].is_array() && post.body["text"].is_string());

    slack.rate_limit_next(1, 7);
    let limited = client.update_request(&message, &request, &view).await.unwrap_err();
    assert_eq!((limited.retry_after, limited.permanent), (Some(Duration::from_secs(7)), false));
    slack.fail_next(1);
    assert!(!client.update_request(&message, &request, &view).await.unwrap_err().permanent);

    slack.forget_channel("C0GONE");
    let gone = client.post_request("C0GONE", &request, &view).await.unwrap_err();
    assert!(gone.permanent && gone.message.contains("channel_not_found"), "{gone}");
    let missing = client.update_request(&"C0FIN:1.2".to_string(), &request, &view).await.unwrap_err();
    assert!(missing.permanent && missing.message.contains("message_not_found"), "{missing}");
    let wrong = SlackClient::new(&SlackConfig { bot_token: "xoxb-wrong".into(), ..slack.config() }).unwrap();
    let refused = wrong.post_request("U0DANA", &request, &view).await.unwrap_err();
    assert!(refused.permanent && refused.message.contains("invalid_auth"), "{refused}");
    assert!(!refused.message.contains("xoxb"), "the token is never in an error: {refused}");

    slack.go_down().await;
    let down = client.post_request("U0DANA", &request, &view).await.unwrap_err();
    assert!(!down.permanent, "connection refused is transient: {down}");
    slack.come_back().await;
    client.post_request("U0DANA", &request, &view).await.unwrap();

    client.respond(&slack.response_url("r1"), "not yours").await.unwrap();
    let reply = &slack.calls_to("response_url")[0];
    assert_eq!((reply.response_url_name.as_deref(), reply.body["text"].as_str()), (Some("r1"), Some("not yours")));
}
