//! Client commands (`request`, `pending`, `show`, `approve`, `reject`, `cancel`, `grants`, `mcp`): the HTTP API from
//! the shell,
//! or from an MCP client over stdio, using `SIGNOFF_URL` and `SIGNOFF_KEY`.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use signoff_client::{Client, ListQuery};
use signoff_wire::{DecisionBody, Mode, NewRequest, Request, Verdict};
use std::io::Read;

/// Where the server is and which key to call with.
#[derive(Debug, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "SIGNOFF_URL", default_value = "http://127.0.0.1:8700")]
    url: String,
    /// The API key to call with.
    #[arg(long, env = "SIGNOFF_KEY", hide_env_values = true)]
    key: String,
}

impl Connection {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url, &self.key)?)
    }
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    #[command(flatten)]
    connection: Connection,
    /// The whole request as JSON: a file path, or `-` for standard input. Flags given too override its fields.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// What the agent wants to do, e.g. `refund`.
    #[arg(long)]
    action: Option<String>,
    /// The action's arguments, a JSON object.
    #[arg(long)]
    args: Option<String>,
    #[arg(long)]
    summary: Option<String>,
    #[arg(long)]
    reasoning: Option<String>,
    /// Extra context, a JSON object.
    #[arg(long)]
    context: Option<String>,
    /// The agent's confidence, 0 to 1.
    #[arg(long)]
    confidence: Option<f64>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// `pre` (ask before acting, the default) or `post` (report after acting).
    #[arg(long)]
    mode: Option<String>,
    #[arg(long)]
    run_id: Option<String>,
    #[arg(long)]
    call_id: Option<String>,
    #[arg(long)]
    callback_url: Option<String>,
    /// Seconds until the request's deadline.
    #[arg(long)]
    timeout_s: Option<u64>,
    /// Makes retries of this command return the same request.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Block until decided, up to this many seconds (at most 300 per call; longer waits call again).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "300")]
    wait: Option<u64>,
}

fn parse_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(text).with_context(|| format!("--{flag} is not valid JSON"))?;
    if !value.is_object() {
        bail!("--{flag} must be a JSON object");
    }
    Ok(value)
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn parse_id(id: &str) -> anyhow::Result<signoff_domain::RequestId> {
    id.parse().with_context(|| format!("`{id}` is not a request id"))
}

impl RequestArgs {
    fn to_new_request(&self) -> anyhow::Result<NewRequest> {
        let mut new = match &self.json {
            Some(source) => {
                let text = if source == "-" {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                } else {
                    std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"))?
                };
                serde_json::from_str(&text).context("the --json request is not a valid request body")?
            }
            None => NewRequest::action(self.action.clone().context("give --action, or the whole request with --json")?),
        };
        if let Some(action) = &self.action {
            new.action = action.clone();
        }
        if let Some(args) = &self.args {
            new.args = parse_object("args", args)?;
        }
        if let Some(context) = &self.context {
            new.context = parse_object("context", context)?;
        }
        if !self.tags.is_empty() {
            new.tags = self.tags.clone();
        }
        if let Some(mode) = &self.mode {
            new.mode = match mode.as_str() {
                "pre" => Mode::Pre,
                "post" => Mode::Post,
                other => bail!("--mode must be pre or post, not `{other}`"),
            };
        }
        let strings = [
            (&mut new.summary, &self.summary),
            (&mut new.reasoning, &self.reasoning),
            (&mut new.run_id, &self.run_id),
            (&mut new.call_id, &self.call_id),
            (&mut new.callback_url, &self.callback_url),
        ];
        for (field, flag) in strings {
            if flag.is_some() {
                field.clone_from(flag);
            }
        }
        if self.confidence.is_some() {
            new.confidence = self.confidence;
        }
        if self.timeout_s.is_some() {
            new.timeout_s = self.timeout_s;
        }
        Ok(new)
    }
}

pub async fn request(args: RequestArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let new = args.to_new_request()?;
    let created = client.create_request(&new, args.idempotency_key.as_deref()).await?;
    let request = match args.wait {
        Some(seconds) => wait_for(&client, created.request, seconds).await?,
        None => created.request,
    };
    print_json(&request)
}

/// Waits in calls of at most 300 s until the request is decided or `seconds` have passed.
async fn wait_for(client: &Client, mut request: Request, seconds: u64) -> anyhow::Result<Request> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !request.status.is_final() {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_secs();
        if left == 0 {
            break;
        }
        request = client.wait(request.id, left.min(300)).await?;
    }
    Ok(request)
}

#[derive(Debug, Args)]
pub struct PendingArgs {
    #[command(flatten)]
    connection: Connection,
    /// Only requests for this action.
    #[arg(long)]
    action: Option<String>,
    /// Only this group's queue.
    #[arg(long)]
    group: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn pending(args: PendingArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let query = ListQuery {
        status: Some("pending".into()),
        action: args.action,
        group: args.group,
        limit: Some(args.limit),
        ..ListQuery::default()
    };
    let page = client.list_requests(&query).await?;
    if args.json {
        return print_json(&page);
    }
    if page.items.is_empty() {
        println!("no pending requests");
        return Ok(());
    }
    println!("{:<36}  {:<20}  {:<20}  SUMMARY", "ID", "CREATED", "ACTION");
    for request in &page.items {
        println!(
            "{:<36}  {:<20}  {:<20}  {}",
            request.id,
            request.created_at.format("%Y-%m-%d %H:%M:%S"),
            request.action,
            request.summary.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    connection: Connection,
    id: String,
}

pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    print_json(&args.connection.client()?.request(parse_id(&args.id)?).await?)
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    connection: Connection,
    id: String,
    #[arg(long)]
    comment: Option<String>,
    /// Approve with these arguments instead of the proposed ones (a JSON object).
    #[arg(long)]
    args: Option<String>,
    /// Also approve similar requests for this long (e.g. `2h`), where the rule's `standing` allows it.
    #[arg(long)]
    standing: Option<String>,
}

pub async fn approve(args: ApproveArgs) -> anyhow::Result<()> {
    let edited = args.args.as_deref().map(|text| parse_object("args", text)).transpose()?;
    let standing_s = match args.standing.as_deref() {
        Some(text) => {
            Some(signoff_policy::parse_duration(text).map_err(|e| anyhow::anyhow!("--standing: {e}"))?.as_secs())
        }
        None => None,
    };
    let body =
        DecisionBody { outcome: Verdict::Approve, comment: args.comment, reason: None, args: edited, standing_s };
    print_json(&args.connection.client()?.decide(parse_id(&args.id)?, &body).await?)
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    #[command(flatten)]
    connection: Connection,
    id: String,
    /// Why: required, and handed to the agent.
    #[arg(long)]
    comment: String,
    /// A short reason code, e.g. `over_budget`.
    #[arg(long)]
    reason: Option<String>,
}

pub async fn reject(args: RejectArgs) -> anyhow::Result<()> {
    let body = DecisionBody {
        outcome: Verdict::Reject,
        comment: Some(args.comment),
        reason: args.reason,
        args: None,
        standing_s: None,
    };
    print_json(&args.connection.client()?.decide(parse_id(&args.id)?, &body).await?)
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    connection: Connection,
    id: String,
    #[arg(long)]
    reason: Option<String>,
}

pub async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    print_json(&args.connection.client()?.cancel(parse_id(&args.id)?, args.reason).await?)
}

/// `signoff grants`: standing approvals.
#[derive(Debug, clap::Subcommand)]
pub enum GrantsCommand {
    /// List the standing approvals live now (approver or admin key).
    List {
        #[command(flatten)]
        connection: Connection,
        /// Expired and revoked ones too.
        #[arg(long)]
        all: bool,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a standing approval (the person who granted it, or an admin).
    Revoke {
        #[command(flatten)]
        connection: Connection,
        id: String,
    },
}

pub async fn grants(command: GrantsCommand) -> anyhow::Result<()> {
    match command {
        GrantsCommand::List { connection, all, json } => {
            let grants = connection.client()?.grants(all).await?;
            if json {
                return print_json(&grants);
            }
            if grants.is_empty() {
                println!("no standing approvals");
                return Ok(());
            }
            println!("{:<36}  {:<20}  {:<10}  {:<20}  {:<5}  SCOPE", "ID", "RULE", "GRANTED BY", "EXPIRES", "USES");
            for grant in &grants {
                let scope: Vec<String> = grant.scope.iter().map(|s| format!("{}={}", s.path, s.value)).collect();
                let state = if grant.revoked_at.is_some() { " (revoked)" } else { "" };
                println!(
                    "{:<36}  {:<20}  {:<10}  {:<20}  {:<5}  {}{state}",
                    grant.id,
                    grant.rule,
                    grant.approver_id.as_str(),
                    grant.expires_at.format("%Y-%m-%d %H:%M:%S"),
                    grant.uses,
                    scope.join(" ")
                );
            }
            Ok(())
        }
        GrantsCommand::Revoke { connection, id } => print_json(&connection.client()?.revoke_grant(&id).await?),
    }
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    connection: Connection,
}

/// Serves the MCP tools on stdin and stdout until the client closes them. Nothing else is printed on stdout.
pub async fn mcp(args: McpArgs) -> anyhow::Result<()> {
    Ok(signoff_mcp::serve_stdio(args.connection.client()?).await?)
}
