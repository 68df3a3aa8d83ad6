//! `signoff channels test slack|email|sms --to ADDRESS`: sends a test message with the configured channel, so an operator
//! can check the wiring before anyone waits on it.

use crate::config::Config;
use anyhow::bail;
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Send a test message through a configured channel.
    Test {
        /// slack, email or sms.
        channel: TestChannel,
        /// A Slack member or channel id (`U024BE7LH`, `C0123`), an email address, or a phone number (E.164).
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TestChannel {
    Slack,
    Email,
    Sms,
}

pub async fn run(command: ChannelsCommand, config: &Config) -> anyhow::Result<()> {
    let ChannelsCommand::Test { channel, to } = command;
    let sent = match channel {
        TestChannel::Slack => {
            let (Some(bot_token), Some(signing_secret)) = (&config.slack.bot_token, &config.slack.signing_secret)
            else {
                bail!("slack is not configured: set SIGNOFF_SLACK_BOT_TOKEN and SIGNOFF_SLACK_SIGNING_SECRET");
            };
            let slack = signoff_notify::slack::SlackConfig {
                bot_token: bot_token.clone(),
                signing_secret: signing_secret.clone(),
                api_url: config.slack.api_url.clone(),
            };
            let client = signoff_notify::slack::SlackClient::new(&slack)?;
            client.post_test(&to).await?
        }
        TestChannel::Email => {
            let (Some(smtp_url), Some(from)) = (&config.email.smtp_url, &config.email.from) else {
                bail!("email is not configured: set SIGNOFF_SMTP_URL and SIGNOFF_EMAIL_FROM");
            };
            let email = signoff_notify::email::EmailConfig { smtp_url: smtp_url.clone(), from: from.clone() };
            signoff_notify::email::Mailer::new(&email)?.send_test(&to).await?
        }
        TestChannel::Sms => {
            let Some(twilio) = config.twilio.settings() else {
                bail!(
                    "sms is not configured: set SIGNOFF_TWILIO_ACCOUNT_SID, SIGNOFF_TWILIO_AUTH_TOKEN and \
                     SIGNOFF_TWILIO_FROM"
                );
            };
            let text = "Signoff: this is a test message; SMS notifications reach this number.";
            signoff_notify::sms::TwilioClient::new(&twilio)?.send(&to, text).await?
        }
    };
    println!("sent a test message to {to} ({sent})");
    Ok(())
}
