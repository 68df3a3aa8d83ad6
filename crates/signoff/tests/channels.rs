//! The channels from the command line: `signoff channels test` reaches a real SMTP listener and the fake Slack,
//! Discord, Twilio and Telegram with the configured settings, `channels telegram setup` calls `setWebhook` with the
//! public URL and the secret token, each says clearly when its channel is not configured, and `policy check` warns
//! about a channel a policy names that the server has not configured.

mod common;

use common::{Server, run_ok, signoff};
use signoff_testkit::fake_discord::{self, ApplicationKey, FakeDiscord};
use signoff_testkit::fake_slack::{FAKE_BOT_TOKEN, FAKE_SIGNING_SECRET, FakeSlack};
use signoff_testkit::fake_telegram::{self, FakeTelegram};
use signoff_testkit::fake_twilio::{FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FAKE_FROM, FakeTwilio};
use signoff_testkit::smtp::SmtpServer;
use signoff_testkit::{Backend, TestDatabase};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_test_sends_through_each_configured_channel() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let (smtp, slack) = (SmtpServer::start().await, FakeSlack::start().await);
    let output = run_ok(
        signoff(&db.url)
            .args(["channels", "test", "email", "--to", "dana@example.com"])
            .env("SIGNOFF_SMTP_URL", smtp.url())
            .env("SIGNOFF_EMAIL_FROM", "Signoff <signoff@example.com>"),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sent a test message to dana@example.com"));
    let mail = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(mail.to.iter().any(|to| to.contains("dana@example.com")), "{mail:?}");

    let output = run_ok(
        signoff(&db.url)
            .args(["channels", "test", "slack", "--to", "U024BE7LH"])
            .env("SIGNOFF_SLACK_BOT_TOKEN", FAKE_BOT_TOKEN)
            .env("SIGNOFF_SLACK_SIGNING_SECRET", FAKE_SIGNING_SECRET)
            .env("SIGNOFF_SLACK_API_URL", slack.api_url()),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sent a test message to U024BE7LH"));
    let posted = slack.wait_for("chat.postMessage", 1, Duration::from_secs(10)).await;
    assert_eq!(posted[0].body["channel"], "U024BE7LH");

    let twilio = FakeTwilio::start().await;
    let output = run_ok(
        signoff(&db.url)
            .args(["channels", "test", "sms", "--to", "+14155550100"])
            .env("SIGNOFF_TWILIO_ACCOUNT_SID", FAKE_ACCOUNT_SID)
            .env("SIGNOFF_TWILIO_AUTH_TOKEN", FAKE_AUTH_TOKEN)
            .env("SIGNOFF_TWILIO_FROM", FAKE_FROM)
            .env("SIGNOFF_TWILIO_API_URL", twilio.config().api_url),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sent a test message to +14155550100 (SM"));
    let texts = twilio.wait_for("+14155550100", 1, Duration::from_secs(10)).await;
    assert!(texts[0].body.starts_with("Signoff: this is a test message"), "{texts:?}");

    let output = signoff(&db.url).args(["channels", "test", "sms", "--to", "+14155550100"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sms is not configured"));

    let telegram = FakeTelegram::start().await;
    let with_telegram = |command: &mut std::process::Command| {
        command
            .env("SIGNOFF_TELEGRAM_BOT_TOKEN", fake_telegram::FAKE_BOT_TOKEN)
            .env("SIGNOFF_TELEGRAM_WEBHOOK_SECRET", fake_telegram::FAKE_WEBHOOK_SECRET)
            .env("SIGNOFF_TELEGRAM_API_URL", telegram.config().api_url)
            .env("SIGNOFF_PUBLIC_URL", "https://signoff.example.com/");
    };
    let mut test = signoff(&db.url);
    test.args(["channels", "test", "telegram", "--to", "123456789"]);
    with_telegram(&mut test);
    assert!(
        String::from_utf8_lossy(&run_ok(&mut test).stdout).contains("sent a test message to 123456789 (123456789:1)")
    );
    let mut setup = signoff(&db.url);
    setup.args(["channels", "telegram", "setup"]);
    with_telegram(&mut setup);
    let said = String::from_utf8_lossy(&run_ok(&mut setup).stdout).to_string();
    assert!(said.contains("https://signoff.example.com/channels/telegram/webhook"), "{said}");
    let webhook = telegram.wait_for("setWebhook", 1, Duration::from_secs(10)).await;
    assert_eq!(webhook[0].body["url"], "https://signoff.example.com/channels/telegram/webhook");
    assert_eq!(webhook[0].body["secret_token"], fake_telegram::FAKE_WEBHOOK_SECRET);
    let output = signoff(&db.url).args(["channels", "telegram", "setup"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("telegram is not configured"));

    let output = signoff(&db.url).args(["channels", "test", "slack", "--to", "U1"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("slack is not configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_test_sends_a_discord_dm() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let (discord, key) = (FakeDiscord::start().await, ApplicationKey::generate());
    let public_key = key.public_key().to_hex();
    let discord_env = |command: &mut std::process::Command| {
        command
            .env("SIGNOFF_DISCORD_BOT_TOKEN", fake_discord::FAKE_BOT_TOKEN)
            .env("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY", &public_key)
            .env("SIGNOFF_DISCORD_API_URL", discord.api_url());
    };
    let mut command = signoff(&db.url);
    command.args(["channels", "test", "discord", "--to", "80351110224678912"]);
    discord_env(&mut command);
    let output = run_ok(&mut command);
    assert!(String::from_utf8_lossy(&output.stdout).contains("sent a test message to 80351110224678912"));
    let opened = discord.wait_for("POST", "/users/@me/channels", 1, Duration::from_secs(10)).await;
    assert_eq!(opened[0].body["recipient_id"], "80351110224678912");
    let posted = discord.wait_for("POST", "/channels/{id}/messages", 1, Duration::from_secs(10)).await;
    assert!(posted[0].body["content"].as_str().unwrap().starts_with("This is a test message from Signoff"));

    let output = signoff(&db.url).args(["channels", "test", "discord", "--to", "1"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("discord is not configured"));
    let mut command = signoff(&db.url);
    command.args(["channels", "test", "discord", "--to", "1"]);
    discord_env(&mut command);
    let output = command.env("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY", "abcd").output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY: the Discord public key is not 32 bytes"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_channels_are_a_warning_never_a_crash() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/policy.yaml");
    let output = run_ok(signoff(&db.url).args(["policy", "check", policy]));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("notify on slack, which this server has not configured"), "{said}");
    assert!(said.contains("notify on email, which this server has not configured"), "{said}");
    run_ok(signoff(&db.url).args(["policy", "apply", policy]));
    let server = Server::start_reading(&mut signoff(&db.url), 9);
    let started = server.first_lines.join("\n");
    assert!(started.contains("channels: none configured"), "{started}");
    assert!(started.contains("warning: groups"), "{started}");
}
