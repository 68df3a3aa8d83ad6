//! `signoff bench`: C concurrent clients create N requests, W waiters long-poll them, then all are decided.
//! Prints creates/s, decisions/s, decision-to-waiter wake latency and the server's peak RSS.
//!
//! By default it starts the real `signoff serve` as a child process on a fresh SQLite file, so the RSS is the
//! server's alone; `--database-url postgres://...` starts it on PostgreSQL instead, `--url` measures a running one.

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use signoff_client::Client;
use signoff_wire::{CreatedKey, DecisionBody, NewRequest, Verdict};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measure a server that is already running (needs --agent-key and --approver-key).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, requires = "url")]
    agent_key: Option<String>,
    #[arg(long, requires = "url")]
    approver_key: Option<String>,
    /// The database for the server the bench starts; default: a fresh SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Apply this policy to the server the bench starts (e.g. docs/examples/bench-policy-50.yaml). The bench's
    /// requests have action `refund`; the approver is `bench-approver`, who must be a member of their group.
    #[arg(long, conflicts_with = "url")]
    policy: Option<std::path::PathBuf>,
    /// Requests to create (N).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent creating and deciding clients (C).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent long-poll waiters (W), each on its own request.
    #[arg(long, default_value_t = 10_000)]
    waiters: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Results {
    database: String,
    policy: Option<String>,
    requests: usize,
    concurrency: usize,
    waiters: usize,
    creates_per_s: f64,
    decisions_per_s: f64,
    wake_p50_ms: f64,
    wake_p99_ms: f64,
    wake_max_ms: f64,
    server_peak_rss_mib: Option<f64>,
    server_rss_with_waiters_parked_mib: Option<f64>,
}

/// The server under test: a child process we started, or one given by URL.
struct Target {
    url: String,
    agent_key: String,
    approver_key: String,
    database: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    crate::raise_open_file_limit();
    if args.waiters > args.requests {
        bail!("--waiters ({}) cannot exceed --requests ({})", args.waiters, args.requests);
    }
    let target = match &args.url {
        Some(url) => Target {
            url: url.clone(),
            agent_key: args.agent_key.clone().context("--url needs --agent-key")?,
            approver_key: args.approver_key.clone().context("--url needs --approver-key")?,
            database: "external".into(),
            child: None,
            _dir: None,
        },
        None => start_server(args.database_url.clone(), args.policy.as_deref()).await?,
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let agent = Client::with_http(http.clone(), &target.url, &target.agent_key)?;
    let approver = Client::with_http(http, &target.url, &target.approver_key)?;

    eprintln!("creating {} requests with {} clients...", args.requests, args.concurrency);
    let started = Instant::now();
    let ids = Arc::new(create_all(&agent, args.requests, args.concurrency).await?);
    let creates_per_s = args.requests as f64 / started.elapsed().as_secs_f64();

    eprintln!("parking {} waiters...", args.waiters);
    let waiter_http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let waiter_client = Client::with_http(waiter_http, &target.url, &target.agent_key)?;
    let mut waiters = Vec::with_capacity(args.waiters);
    for &id in ids.iter().take(args.waiters) {
        let client = waiter_client.clone();
        waiters.push(tokio::spawn(async move {
            let request = client.wait(id, 300).await?;
            anyhow::ensure!(request.status.is_final(), "a waiter came back with its request still pending");
            Ok::<_, anyhow::Error>(Instant::now())
        }));
    }
    wait_until_parked(&target.url, args.waiters).await?;
    let parked_rss_mib = target.child.as_ref().and_then(|child| current_rss_mib(child.id()));

    eprintln!("deciding {} requests with {} clients...", args.requests, args.concurrency);
    let started = Instant::now();
    let acknowledged = decide_all(&approver, ids.clone(), args.concurrency).await?;
    let decisions_per_s = args.requests as f64 / started.elapsed().as_secs_f64();

    let mut latencies_ms = Vec::with_capacity(args.waiters);
    for (index, waiter) in waiters.into_iter().enumerate() {
        let woke = waiter.await??;
        latencies_ms.push(woke.saturating_duration_since(acknowledged[index]).as_secs_f64() * 1000.0);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let results = Results {
        database: target.database.clone(),
        policy: args.policy.as_ref().map(|p| p.display().to_string()),
        requests: args.requests,
        concurrency: args.concurrency,
        waiters: args.waiters,
        creates_per_s,
        decisions_per_s,
        wake_p50_ms: percentile(&latencies_ms, 0.50),
        wake_p99_ms: percentile(&latencies_ms, 0.99),
        wake_max_ms: latencies_ms.last().copied().unwrap_or(0.0),
        server_peak_rss_mib: target.child.as_ref().and_then(|child| peak_rss_mib(child.id())),
        server_rss_with_waiters_parked_mib: parked_rss_mib,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!("database            {}", results.database);
        println!("policy              {}", results.policy.as_deref().unwrap_or("built-in default"));
        println!(
            "requests            {} ({} clients, {} waiters)",
            results.requests, results.concurrency, results.waiters
        );
        println!("creates/s           {:.0}", results.creates_per_s);
        println!("decisions/s         {:.0}", results.decisions_per_s);
        println!(
            "wake latency        p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (decision acknowledged -> waiter answered)",
            results.wake_p50_ms, results.wake_p99_ms, results.wake_max_ms
        );
        match results.server_peak_rss_mib {
            Some(rss) => println!(
                "server peak RSS     {rss:.1} MiB ({:.1} MiB with the waiters parked)",
                results.server_rss_with_waiters_parked_mib.unwrap_or(0.0)
            ),
            None => println!("server peak RSS     unknown (external server)"),
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident set size of a process, from /proc (Linux).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    proc_status_mib(pid, "VmHWM:")
}

fn current_rss_mib(pid: u32) -> Option<f64> {
    proc_status_mib(pid, "VmRSS:")
}

fn proc_status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn create_all(client: &Client, total: usize, concurrency: usize) -> anyhow::Result<Vec<Uuid>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(made);
                }
                let mut new = NewRequest::action("refund");
                new.args = serde_json::json!({ "amount": index % 10_000, "order": format!("ord_{index}") });
                new.summary = Some(format!("Refund order {index}"));
                made.push((index, client.create_request(&new, None).await?.request.id));
            }
        }));
    }
    let mut ids = vec![Uuid::nil(); total];
    for task in tasks {
        for (index, id) in task.await?? {
            ids[index] = id;
        }
    }
    Ok(ids)
}

/// Decides every request; returns when each decision was acknowledged, by index.
async fn decide_all(client: &Client, ids: Arc<Vec<Uuid>>, concurrency: usize) -> anyhow::Result<Vec<Instant>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, ids) = (client.clone(), next.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let body = DecisionBody { outcome: Verdict::Approve, comment: None, reason: None, args: None };
            let mut acknowledged = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= ids.len() {
                    return Ok::<_, anyhow::Error>(acknowledged);
                }
                client.decide(ids[index], &body).await?;
                acknowledged.push((index, Instant::now()));
            }
        }));
    }
    let mut times = vec![Instant::now(); ids.len()];
    for task in tasks {
        for (index, at) in task.await?? {
            times[index] = at;
        }
    }
    Ok(times)
}

/// Reads the server's parked-waiter gauge until all waiters are parked.
async fn wait_until_parked(url: &str, waiters: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
        let parked = metrics
            .lines()
            .find_map(|line| line.strip_prefix("signoff_waiters_parked "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as usize;
        if parked >= waiters {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {parked} of {waiters} waiters parked after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `signoff serve` on a free port with fresh keys, and waits until it answers.
async fn start_server(database_url: Option<String>, policy: Option<&std::path::Path>) -> anyhow::Result<Target> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let database = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let key = |role: &str, extra: &[&str]| -> anyhow::Result<String> {
        let output = std::process::Command::new(&exe)
            .args(["keys", "create", "--role", role, "--name", &format!("bench-{role}"), "--json"])
            .args(extra)
            .env("SIGNOFF_DATABASE_URL", &database)
            .output()?;
        if !output.status.success() {
            bail!("creating a {role} key failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(serde_json::from_slice::<CreatedKey>(&output.stdout)?.key)
    };
    let agent_key = key("agent", &[])?;
    let approver_key = key("approver", &["--approver", "bench-approver"])?;
    if let Some(policy) = policy {
        let output = std::process::Command::new(&exe)
            .args(["policy", "apply"])
            .arg(policy)
            .env("SIGNOFF_DATABASE_URL", &database)
            .output()?;
        if !output.status.success() {
            bail!("applying {} failed: {}", policy.display(), String::from_utf8_lossy(&output.stderr));
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = std::process::Command::new(&exe)
        .arg("serve")
        .env("SIGNOFF_DATABASE_URL", &database)
        .env("SIGNOFF_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIGNOFF_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start `signoff serve`")?;
    let url = format!("http://127.0.0.1:{port}");
    let target = Target { url, agent_key, approver_key, database, child: Some(child), _dir: Some(dir) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{}/healthz", target.url)).await.is_err() {
        if Instant::now() > deadline {
            bail!("the server did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(target)
}
