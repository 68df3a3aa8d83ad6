//! The fake Bot API checks what Telegram checks and answers as Telegram does: the token, HTML entities,
//! `callback_data` of at most 64 bytes, edits that change nothing, chats that do not exist, and `429` with
//! `parameters.retry_after`.

use serde_json::{Value, json};
use signoff_testkit::fake_telegram::{FAKE_BOT_TOKEN, FakeTelegram};

async fn call(telegram: &FakeTelegram, token: &str, method: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/bot{token}/{method}", telegram.config().api_url);
    let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_fake_answers_as_the_bot_api_does() {
    let telegram = FakeTelegram::start().await;
    let send = |text: &str| json!({"chat_id": 42, "text": text, "parse_mode": "HTML"});
    let (status, sent) = call(&telegram, FAKE_BOT_TOKEN, "sendMessage", send("<b>Tom &amp; Jerry</b>")).await;
    assert_eq!((status, sent["ok"].as_bool(), sent["result"]["message_id"].as_i64()), (200, Some(true), Some(1)));

    let (status, refused) = call(&telegram, "1:wrong", "sendMessage", send("hi")).await;
    assert_eq!(
        (status, refused["error_code"].as_u64(), refused["description"].as_str()),
        (401, Some(401), Some("Unauthorized"))
    );
    for unescaped in ["Tom & Jerry", "a < b", "<script>x</script>", "1 > 0"] {
        let (status, refused) = call(&telegram, FAKE_BOT_TOKEN, "sendMessage", send(unescaped)).await;
        assert_eq!(status, 400, "{unescaped}");
        assert!(refused["description"].as_str().unwrap().starts_with("Bad Request: can't parse entities"), "{refused}");
    }
    let long_data = json!({"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a".repeat(65)}]]}});
    let (status, refused) = call(&telegram, FAKE_BOT_TOKEN, "sendMessage", long_data).await;
    assert_eq!((status, refused["description"].as_str()), (400, Some("Bad Request: BUTTON_DATA_INVALID")));

    let same = json!({"chat_id": 42, "message_id": 1, "text": "<b>Tom &amp; Jerry</b>", "parse_mode": "HTML"});
    let (status, refused) = call(&telegram, FAKE_BOT_TOKEN, "editMessageText", same).await;
    assert!(status == 400 && refused["description"].as_str().unwrap().contains("message is not modified"), "{refused}");
    let missing = json!({"chat_id": 42, "message_id": 9, "text": "new"});
    assert_eq!(
        call(&telegram, FAKE_BOT_TOKEN, "editMessageText", missing).await.1["description"],
        "Bad Request: message to edit not found"
    );
    telegram.forget_chat(43);
    let (_, refused) = call(&telegram, FAKE_BOT_TOKEN, "sendMessage", json!({"chat_id": 43, "text": "x"})).await;
    assert_eq!(refused["description"], "Bad Request: chat not found");

    telegram.rate_limit_next(1, 3);
    let (status, limited) = call(&telegram, FAKE_BOT_TOKEN, "sendMessage", send("x")).await;
    assert_eq!(
        (status, limited["error_code"].as_u64(), limited["parameters"]["retry_after"].as_u64()),
        (429, Some(429), Some(3))
    );
    assert_eq!(
        call(&telegram, FAKE_BOT_TOKEN, "sendMessage", send("x")).await.0,
        200,
        "only the next call was limited"
    );
}
