//! `signoff keys ...`: key management straight against the configured database, so an operator can
//! create the first admin key before the server has ever run.

use crate::config::Config;
use clap::{Args, Subcommand};
use signoff_domain::Role;
use signoff_store::NewKey;
use signoff_wire::CreatedKey;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create(CreateArgs),
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; it is refused from then on.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// agent, approver or admin.
    #[arg(long)]
    role: Role,
    /// A name to recognise the key by (recorded in events).
    #[arg(long)]
    name: String,
    /// For approver keys: the approver id recorded in decisions.
    #[arg(long)]
    approver: Option<String>,
    /// Print a JSON object (id, name, role, approver_id, key, webhook_secret).
    #[arg(long)]
    json: bool,
}

pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let store = signoff_store::open(&config.database_url).await?;
    let actor = format!("cli:{}", whoami());
    match command {
        KeysCommand::Create(args) => {
            let created = store
                .create_key(NewKey { name: args.name, role: args.role, approver_id: args.approver }, &actor)
                .await?;
            let shown = CreatedKey {
                id: created.key.id,
                name: created.key.name,
                role: created.key.role,
                approver_id: created.key.approver_id,
                key: created.secret,
                webhook_secret: created.webhook_secret,
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                println!("created {} key {} ({})", shown.role, shown.id, shown.name);
                println!("key: {}", shown.key);
                if let Some(secret) = &shown.webhook_secret {
                    println!("webhook secret: {secret}");
                }
                println!("the key is shown only now; store it somewhere safe");
            }
        }
        KeysCommand::List { json } => {
            let keys = store.keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!("{:<14} {:<9} {:<20} {:<12} STATE", "ID", "ROLE", "NAME", "APPROVER");
                for key in keys {
                    let state = if key.is_revoked() { "revoked" } else { "active" };
                    let approver = key.approver_id.as_deref().unwrap_or("-");
                    println!("{:<14} {:<9} {:<20} {:<12} {state}", key.id, key.role, key.name, approver);
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let key = store.revoke_key(&id, &actor).await.map_err(|e| match e {
                signoff_store::StoreError::NotFound => anyhow::anyhow!("no key with id {id}"),
                other => other.into(),
            })?;
            println!("revoked key {} ({})", key.id, key.name);
        }
    }
    Ok(())
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}
