//! `signoff keys ...`: key management straight against the configured database, so an operator can
//! create the first admin key before the server has ever run.

use crate::config::Config;
use clap::{Args, Subcommand};
use signoff_domain::{Actor, ApproverId, Role};
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
    /// The person the key acts for, recorded in decisions: required for approver keys; for admin keys, without it
    /// the key manages but cannot decide.
    #[arg(long, value_parser = parse_person)]
    approver: Option<ApproverId>,
    /// For agent keys: the person responsible for the agent, who can never approve its requests.
    #[arg(long, value_parser = parse_person)]
    owner: Option<ApproverId>,
    /// Print a JSON object (id, name, role, approver_id, key, webhook_secret).
    #[arg(long)]
    json: bool,
}

pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let store = signoff_store::open(&config.database_url).await?;
    let actor = Actor::Operator(whoami()).to_string();
    match command {
        KeysCommand::Create(args) => {
            let created = store
                .create_key(
                    NewKey { name: args.name, role: args.role, approver_id: args.approver, owner_id: args.owner },
                    &actor,
                )
                .await?;
            let shown = CreatedKey {
                id: created.key.id,
                name: created.key.name,
                role: created.key.role,
                approver_id: created.key.approver_id,
                owner_id: created.key.owner_id,
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
                println!("{:<14} {:<9} {:<20} {:<12} {:<12} STATE", "ID", "ROLE", "NAME", "PERSON", "OWNER");
                for key in keys {
                    let state = if key.is_revoked() { "revoked" } else { "active" };
                    let person = key.approver_id.as_ref().map_or("-", |id| id.as_str());
                    let owner = key.owner_id.as_ref().map_or("-", |id| id.as_str());
                    println!("{:<14} {:<9} {:<20} {:<12} {:<12} {state}", key.id, key.role, key.name, person, owner);
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

fn parse_person(id: &str) -> Result<ApproverId, String> {
    ApproverId::parse(id)
}
