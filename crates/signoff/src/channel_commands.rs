//! `signoff channels test slack|email|discord|sms|telegram --to ADDRESS`: sends a test message with the configured
//! channel, so an operator can check the wiring before anyone waits on it; and `signoff channels telegram setup`,
//! which points the bot's webhook at this server with its secret token.

use crate::config::Config;
use anyhow::bail;
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Send a test message through a configured channel.
    Test {
        /// slack, email, discord, sms or telegram.
        channel: TestChannel,
        /// A Slack member or channel id (`U024BE7LH`, `C0123`), an email address, a Discord user id
        /// (`80351110224678912`, sent a DM), a phone number (E.164), or a Telegram chat id.
        #[arg(long)]
        to: String,
    },
    /// Telegram's one-time setup.
    #[command(subcommand)]
    Telegram(TelegramCommand),
}

#[derive(Debug, Subcommand)]
pub enum TelegramCommand {
    /// Point the bot's webhook at `{public_url}/channels/telegram/webhook`, with the configured secret token.
    Setup,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TestChannel {
    Slack,
    Email,
    Discord,
    Sms,
    Telegram,
}

pub async fn run(command: ChannelsCommand, config: &Config) -> anyhow::Result<()> {
    let (channel, to) = match command {
        ChannelsCommand::Test { channel, to } => (channel, to),
        ChannelsCommand::Telegram(TelegramCommand::Setup) => return telegram_setup(config).await,
    };
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
        TestChannel::Discord => {
            let Some(discord) = config.discord.settings()? else {
                bail!(
                    "discord is not configured: set SIGNOFF_DISCORD_BOT_TOKEN and \
                     SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY"
                );
            };
            signoff_notify::discord::DiscordClient::new(&discord)?.post_test(&to).await?
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
        TestChannel::Telegram => {
            signoff_notify::telegram::TelegramClient::new(&telegram(config)?)?.send_test(&to).await?
        }
    };
    println!("sent a test message to {to} ({sent})");
    Ok(())
}

/// The Telegram settings, or why there are none.
fn telegram(config: &Config) -> anyhow::Result<signoff_notify::telegram::TelegramConfig> {
    match config.telegram.settings()? {
        Some(telegram) => Ok(telegram),
        None => bail!("telegram is not configured: set SIGNOFF_TELEGRAM_BOT_TOKEN and SIGNOFF_TELEGRAM_WEBHOOK_SECRET"),
    }
}

async fn telegram_setup(config: &Config) -> anyhow::Result<()> {
    let telegram = telegram(config)?;
    if !config.public_url.starts_with("https://") {
        eprintln!(
            "warning: Telegram delivers webhooks only to https:// URLs on ports 443, 80, 88 or 8443; {} may be refused",
            config.public_url
        );
    }
    let url = format!("{}{}", config.public_url, signoff_notify::telegram::WEBHOOK_PATH);
    signoff_notify::telegram::TelegramClient::new(&telegram)?.set_webhook(&url, &telegram.webhook_secret).await?;
    println!("telegram: the bot's webhook is {url}, with the configured secret token");
    Ok(())
}
