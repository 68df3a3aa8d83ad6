//! The channels from the command line: `signoff channels test` reaches a real SMTP listener, the fake Slack and the
//! fake Twilio with the configured settings, says clearly when a channel is not configured, and `policy check` warns
//! about a channel a policy names that the server has not configured.

mod common;

use common::{Server, run_ok, signoff};
use signoff_testkit::fake_slack::{FAKE_BOT_TOKEN, FAKE_SIGNING_SECRET, FakeSlack};
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

    let output = signoff(&db.url).args(["channels", "test", "slack", "--to", "U1"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("slack is not configured"));
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
