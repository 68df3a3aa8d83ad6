//! The fake Twilio answers as Twilio does: a `201` message resource for an authenticated form, and Twilio's error JSON
//! (`code`, `message`, `more_info`, `status`) for bad credentials, a missing `To`, a refused number and a rate limit.

use serde_json::Value;
use signoff_testkit::fake_twilio::{FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FAKE_FROM, FakeTwilio};

async fn post(twilio: &FakeTwilio, token: &str, form: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let url = format!("{}/2010-04-01/Accounts/{FAKE_ACCOUNT_SID}/Messages.json", twilio.config().api_url);
    let response =
        reqwest::Client::new().post(url).basic_auth(FAKE_ACCOUNT_SID, Some(token)).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn the_fake_answers_with_twilios_resources_and_errors() {
    let twilio = FakeTwilio::start().await;
    let message = [("To", "+14155550100"), ("From", FAKE_FROM), ("Body", "hello")];
    let (status, _, created) = post(&twilio, FAKE_AUTH_TOKEN, &message).await;
    assert_eq!(
        (status, created["status"].as_str(), created["to"].as_str()),
        (201, Some("queued"), Some("+14155550100"))
    );
    assert!(created["sid"].as_str().unwrap().starts_with("SM"));

    let (status, _, error) = post(&twilio, "wrong", &message).await;
    assert_eq!((status, error["code"].as_u64()), (401, Some(20003)));
    assert_eq!(error["more_info"], "https://www.twilio.com/docs/errors/20003");
    let (status, _, error) = post(&twilio, FAKE_AUTH_TOKEN, &[("From", FAKE_FROM), ("Body", "x")]).await;
    assert_eq!((status, error["code"].as_u64()), (400, Some(21604)));

    twilio.refuse_number("+14155550199");
    let refused = [("To", "+14155550199"), ("From", FAKE_FROM), ("Body", "hello")];
    let (status, _, error) = post(&twilio, FAKE_AUTH_TOKEN, &refused).await;
    assert_eq!((status, error["code"].as_u64(), error["status"].as_u64()), (400, Some(21211), Some(400)));

    twilio.rate_limit_next(1, Some(2));
    let (status, retry_after, error) = post(&twilio, FAKE_AUTH_TOKEN, &message).await;
    assert_eq!((status, retry_after.as_deref(), error["code"].as_u64()), (429, Some("2"), Some(20429)));
    assert_eq!(post(&twilio, FAKE_AUTH_TOKEN, &message).await.0, 201, "only the next call was limited");
    assert_eq!(twilio.messages_to("+14155550100").len(), 2);
}
