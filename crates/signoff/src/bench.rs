//! `signoff bench`: C concurrent clients create N requests, W waiters long-poll them, then all are decided.
//! Prints creates/s, decisions/s, decision-to-waiter wake latency and the server's peak RSS.
//!
//! By default it starts the real `signoff serve` as a child process on a fresh SQLite file, so the RSS is the
//! server's alone; `--database-url postgres://...` starts it on PostgreSQL instead, `--url` measures a running one.
//!
//! `--replicas N` (PostgreSQL) starts N `signoff serve` children on the one database, each on its own port, and spreads
//! the creating, waiting and deciding clients across them; the figures are the whole's. Each run also reports the
//! servers' and PostgreSQL's CPU time per create and per decision (from /proc), steadier than throughput on a shared
//! machine.
//!
//! `--scenario timers` measures stored timers instead: how late deadlines fire while requests are being created
//! at full speed, then how fast a server restarted over `--pending` overdue requests is ready and has fired them.

mod load;

use anyhow::{Context, bail};
use clap::Args;
use load::LoadConnection;
use serde::Serialize;
use signoff_client::Client;
use signoff_wire::{CreatedKey, DecisionBody, NewRequest, Status, Verdict};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Creates, waiters, decisions.
    Throughput,
    /// Timer lag under create load, then a restart over overdue requests.
    Timers,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "throughput")]
    scenario: Scenario,
    /// Timers: requests left pending (and overdue) across the restart.
    #[arg(long, default_value_t = 100_000)]
    pending: usize,
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
    /// Servers to start on the one database (PostgreSQL only), the clients spread across them.
    #[arg(long, default_value_t = 1, conflicts_with = "url")]
    replicas: usize,
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
    replicas: usize,
    creates_per_s: f64,
    decisions_per_s: f64,
    /// CPU time (user + system) of the servers, and of PostgreSQL's processes, per create and per decision.
    server_cpu_us_per_create: Option<f64>,
    server_cpu_us_per_decision: Option<f64>,
    postgres_cpu_us_per_create: Option<f64>,
    postgres_cpu_us_per_decision: Option<f64>,
    wake_p50_ms: f64,
    wake_p99_ms: f64,
    wake_max_ms: f64,
    server_peak_rss_mib: Option<f64>,
    server_rss_with_waiters_parked_mib: Option<f64>,
    server_rss_before_waiters_mib: Option<f64>,
    /// (RSS with the waiters parked - RSS just before parking them) / waiters.
    server_rss_per_waiter_kib: Option<f64>,
}

/// Long-polls and reads (the creates and decisions go through the leaner [`LoadConnection`]).
#[derive(Clone)]
struct LoadClient {
    http: reqwest::Client,
    url: String,
    key: String,
}

#[derive(serde::Deserialize)]
struct CreatedId {
    id: Uuid,
}

#[derive(serde::Deserialize)]
struct StatusOnly {
    status: Status,
}

impl LoadClient {
    /// Long-polls a request; returns its status.
    async fn wait(&self, id: Uuid, timeout_s: u64) -> anyhow::Result<Status> {
        let response = self
            .http
            .get(format!("{}/v1/requests/{id}/wait?timeout_s={timeout_s}", self.url))
            .bearer_auth(&self.key)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("wait answered {}", response.status());
        }
        Ok(serde_json::from_slice::<StatusOnly>(&response.bytes().await?)?.status)
    }
}

/// The server under test: a child process we started, or one given by URL.
struct Target {
    url: String,
    exe: std::path::PathBuf,
    port: u16,
    agent_key: String,
    approver_key: String,
    database: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Starts another `signoff serve` on this target's database, on a free port of its own.
    fn another_replica(&self) -> anyhow::Result<Target> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut replica = Target {
            url: format!("http://127.0.0.1:{port}"),
            exe: self.exe.clone(),
            port,
            agent_key: self.agent_key.clone(),
            approver_key: self.approver_key.clone(),
            database: self.database.clone(),
            child: None,
            _dir: None,
        };
        replica.spawn()?;
        Ok(replica)
    }

    /// Starts `signoff serve` on this target's database and port.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = std::process::Command::new(&self.exe)
            .arg("serve")
            .env("SIGNOFF_DATABASE_URL", &self.database)
            .env("SIGNOFF_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SIGNOFF_LOG", "warn")
            // The bench drives one key and tens of thousands of parked waiters at full speed.
            .env("SIGNOFF_RATE_LIMIT", "0")
            .env("SIGNOFF_IP_RATE_LIMIT", "0")
            .env("SIGNOFF_MAX_CONNECTIONS", "1000000")
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start `signoff serve`")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: the server gets no chance to clean up.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `path` answers 2xx.
async fn wait_until_healthy(url: &str, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("{url}{path}")).await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server did not answer {path} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    crate::raise_open_file_limit();
    if args.scenario == Scenario::Throughput && args.waiters > args.requests {
        bail!("--waiters ({}) cannot exceed --requests ({})", args.waiters, args.requests);
    }
    if args.replicas == 0 || (args.replicas > 1 && !args.database_url.as_deref().is_some_and(is_postgres)) {
        bail!("--replicas above 1 needs --database-url postgres://… (SQLite has one process per file)");
    }
    let target = match &args.url {
        Some(url) => Target {
            url: url.clone(),
            exe: std::env::current_exe()?,
            port: 0,
            agent_key: args.agent_key.clone().context("--url needs --agent-key")?,
            approver_key: args.approver_key.clone().context("--url needs --approver-key")?,
            database: "external".into(),
            child: None,
            _dir: None,
        },
        None => start_server(args.database_url.clone(), args.policy.as_deref()).await?,
    };
    let mut more = Vec::new();
    for _ in 1..args.replicas {
        more.push(target.another_replica()?);
    }
    for replica in &more {
        wait_until_healthy(&replica.url, "/healthz").await?;
    }
    let servers: Vec<&Target> = std::iter::once(&target).chain(&more).collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let clients = |key: &str| -> Vec<LoadClient> {
        servers.iter().map(|s| LoadClient { http: http.clone(), url: s.url.clone(), key: key.to_string() }).collect()
    };
    let agents = clients(&target.agent_key);
    let approvers = clients(&target.approver_key);
    let reader = Client::with_http(http.clone(), &target.url, &target.approver_key)?;
    if args.scenario == Scenario::Timers {
        drop(servers);
        return timers(&args, target, &agents[0], &reader).await;
    }
    let pids: Vec<u32> = servers.iter().filter_map(|s| s.child.as_ref().map(Child::id)).collect();
    let postgres = args.database_url.as_deref().is_some_and(is_postgres);

    eprintln!(
        "creating {} requests with {} clients on {} server(s)...",
        args.requests,
        args.concurrency,
        servers.len()
    );
    let cpu_before = cpu_snapshot(&pids, postgres);
    let started = Instant::now();
    let ids = Arc::new(create_all(&agents, args.requests, args.concurrency, None).await?);
    let creates_per_s = args.requests as f64 / started.elapsed().as_secs_f64();
    let cpu_created = cpu_snapshot(&pids, postgres);

    eprintln!("parking {} waiters...", args.waiters);
    let before_rss_mib = target.child.as_ref().and_then(|child| current_rss_mib(child.id()));
    let waiter_clients = waiter_clients(&target, args.waiters)?;
    let mut waiters = Vec::with_capacity(args.waiters);
    // In steps, so the connections never overflow the listen backlog (SYN cookies, retransmits, header timeouts).
    for batch in ids[..args.waiters].chunks(WAITER_BATCH) {
        for &id in batch {
            let index = waiters.len();
            let client = LoadClient {
                url: servers[index % servers.len()].url.clone(),
                ..waiter_clients[index / WAITERS_PER_SOURCE].clone()
            };
            waiters.push(tokio::spawn(async move {
                let status = client.wait(id, 300).await?;
                let woke = Instant::now();
                anyhow::ensure!(status != Status::Pending, "a waiter came back with its request still pending");
                Ok::<_, anyhow::Error>(woke)
            }));
        }
        // Each server parks every n-th waiter.
        for (index, server) in servers.iter().enumerate() {
            wait_until_parked(&server.url, (waiters.len() + servers.len() - 1 - index) / servers.len()).await?;
        }
    }
    let parked_rss_mib = target.child.as_ref().and_then(|child| current_rss_mib(child.id()));

    eprintln!("deciding {} requests with {} clients...", args.requests, args.concurrency);
    let cpu_parked = cpu_snapshot(&pids, postgres);
    let started = Instant::now();
    let acknowledged = decide_all(&approvers, ids.clone(), args.concurrency).await?;
    let decisions_per_s = args.requests as f64 / started.elapsed().as_secs_f64();
    let cpu_decided = cpu_snapshot(&pids, postgres);

    let mut latencies_ms = Vec::with_capacity(args.waiters);
    for (index, waiter) in waiters.into_iter().enumerate() {
        let woke = waiter.await??;
        latencies_ms.push(woke.saturating_duration_since(acknowledged[index]).as_secs_f64() * 1000.0);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let per = |before: Option<f64>, after: Option<f64>| Some((after? - before?) / args.requests as f64);
    let results = Results {
        database: target.database.clone(),
        policy: args.policy.as_ref().map(|p| p.display().to_string()),
        requests: args.requests,
        concurrency: args.concurrency,
        waiters: args.waiters,
        replicas: servers.len(),
        creates_per_s,
        decisions_per_s,
        server_cpu_us_per_create: per(cpu_before.servers, cpu_created.servers),
        server_cpu_us_per_decision: per(cpu_parked.servers, cpu_decided.servers),
        postgres_cpu_us_per_create: per(cpu_before.postgres, cpu_created.postgres),
        postgres_cpu_us_per_decision: per(cpu_parked.postgres, cpu_decided.postgres),
        wake_p50_ms: percentile(&latencies_ms, 0.50),
        wake_p99_ms: percentile(&latencies_ms, 0.99),
        wake_max_ms: latencies_ms.last().copied().unwrap_or(0.0),
        server_peak_rss_mib: target.child.as_ref().and_then(|child| peak_rss_mib(child.id())),
        server_rss_with_waiters_parked_mib: parked_rss_mib,
        server_rss_before_waiters_mib: before_rss_mib,
        server_rss_per_waiter_kib: per_waiter_kib(before_rss_mib, parked_rss_mib, args.waiters),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let us = |value: Option<f64>| value.map_or("unknown".to_string(), |v| format!("{v:.0} µs"));
        println!("database            {}", results.database);
        println!("policy              {}", results.policy.as_deref().unwrap_or("built-in default"));
        println!(
            "requests            {} ({} clients, {} waiters, {} server(s))",
            results.requests, results.concurrency, results.waiters, results.replicas
        );
        println!("creates/s           {:.0}", results.creates_per_s);
        println!("decisions/s         {:.0}", results.decisions_per_s);
        println!(
            "server CPU          {} per create, {} per decision",
            us(results.server_cpu_us_per_create),
            us(results.server_cpu_us_per_decision)
        );
        if postgres {
            println!(
                "PostgreSQL CPU      {} per create, {} per decision",
                us(results.postgres_cpu_us_per_create),
                us(results.postgres_cpu_us_per_decision)
            );
        }
        println!(
            "wake latency        p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (decision acknowledged -> waiter answered)",
            results.wake_p50_ms, results.wake_p99_ms, results.wake_max_ms
        );
        match results.server_peak_rss_mib {
            Some(rss) => println!(
                "server peak RSS     {rss:.1} MiB ({:.1} MiB with the waiters parked; the first server)",
                results.server_rss_with_waiters_parked_mib.unwrap_or(0.0)
            ),
            None => println!("server peak RSS     unknown (external server)"),
        }
        if let (Some(per_waiter), Some(before)) =
            (results.server_rss_per_waiter_kib, results.server_rss_before_waiters_mib)
        {
            println!("RSS per waiter      {per_waiter:.2} KiB (parked minus {before:.1} MiB just before parking)");
        }
    }
    Ok(())
}

/// Server RSS added per parked waiter, in KiB.
fn per_waiter_kib(before_mib: Option<f64>, parked_mib: Option<f64>, waiters: usize) -> Option<f64> {
    let (before, parked) = (before_mib?, parked_mib?);
    (waiters > 0).then(|| (parked - before) * 1024.0 / waiters as f64)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// CPU time (user + system, µs) used so far by the servers, and by every `postgres` process on the machine.
struct CpuSnapshot {
    servers: Option<f64>,
    postgres: Option<f64>,
}

fn cpu_snapshot(pids: &[u32], postgres: bool) -> CpuSnapshot {
    let servers = (!pids.is_empty()).then(|| pids.iter().filter_map(|&pid| cpu_us(pid)).sum());
    let postgres = postgres.then(|| {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
            .filter_map(cpu_us)
            .sum()
    });
    CpuSnapshot { servers, postgres }
}

/// A process's user + system CPU time in µs, from /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_us(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10_000.0)
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

async fn create_all(
    clients: &[LoadClient],
    total: usize,
    concurrency: usize,
    timeout_s: Option<u64>,
) -> anyhow::Result<Vec<Uuid>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (client, next) = (clients[task % clients.len()].clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection = LoadConnection::connect(&client.url, &client.key).await?;
            let mut made = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(made);
                }
                let mut new = NewRequest::action("refund");
                new.args = serde_json::json!({ "amount": index % 10_000, "order": format!("ord_{index}") });
                new.summary = Some(format!("Refund order {index}"));
                new.timeout_s = timeout_s;
                let answer = connection.post("/v1/requests", &serde_json::to_vec(&new)?).await?;
                if answer.status != 201 {
                    bail!("create answered {}: {}", answer.status, String::from_utf8_lossy(answer.body));
                }
                made.push((index, serde_json::from_slice::<CreatedId>(answer.body)?.id));
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

#[derive(Debug, Serialize)]
struct TimerResults {
    database: String,
    requests: usize,
    creates_per_s: f64,
    timer_lag_p50_ms: f64,
    timer_lag_p99_ms: f64,
    timer_lag_max_ms: f64,
    pending_at_restart: u64,
    restart_to_ready_ms: f64,
    restart_to_all_fired_ms: f64,
    /// Overdue requests fired per second between ready and the last one fired.
    timers_fired_per_s: f64,
}

/// Timer lag under load, then a restart over overdue requests.
async fn timers(args: &BenchArgs, mut target: Target, agent: &LoadClient, approver: &Client) -> anyhow::Result<()> {
    if target.child.is_none() {
        bail!("--scenario timers restarts the server, so it starts its own: drop --url");
    }
    eprintln!("creating {} requests with 2 s deadlines, {} clients...", args.requests, args.concurrency);
    let started = Instant::now();
    create_all(std::slice::from_ref(agent), args.requests, args.concurrency, Some(2)).await?;
    let creates_per_s = args.requests as f64 / started.elapsed().as_secs_f64();
    wait_for_pending(&target.url, 0, Duration::from_secs(120)).await?;
    let mut lags_ms = Vec::with_capacity(args.requests);
    let mut cursor = None;
    loop {
        let query = signoff_client::ListQuery {
            status: Some("rejected".into()),
            limit: Some(500),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = approver.list_requests(&query).await?;
        for request in &page.items {
            if let (Some(deadline), Some(decision)) = (request.deadline_at, &request.decision) {
                lags_ms.push((decision.at - deadline).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    lags_ms.sort_by(f64::total_cmp);

    // Long enough for all of them to be created before the first falls due (with room for a slower, larger file).
    let pending_timeout_s = (args.pending as f64 / creates_per_s * 1.5).ceil().max(10.0) as u64 + 10;
    eprintln!(
        "creating {} requests with {pending_timeout_s} s deadlines, then restarting after they pass...",
        args.pending
    );
    let created_from = Instant::now();
    create_all(std::slice::from_ref(agent), args.pending, args.concurrency, Some(pending_timeout_s)).await?;
    let pending_at_restart = pending_gauge(&target.url).await?;
    target.kill();
    let due_in = Duration::from_secs(pending_timeout_s).saturating_sub(created_from.elapsed());
    tokio::time::sleep(due_in + Duration::from_secs(1)).await;
    let restarted = Instant::now();
    target.spawn()?;
    wait_until_healthy(&target.url, "/readyz").await?;
    let restart_to_ready_ms = restarted.elapsed().as_secs_f64() * 1000.0;
    let within = Duration::from_secs(300.max(pending_at_restart / 1_000));
    wait_for_pending(&target.url, 0, within).await?;
    let restart_to_all_fired_ms = restarted.elapsed().as_secs_f64() * 1000.0;
    let firing_s = (restart_to_all_fired_ms - restart_to_ready_ms) / 1000.0;

    let results = TimerResults {
        database: target.database.clone(),
        requests: args.requests,
        creates_per_s,
        timer_lag_p50_ms: percentile(&lags_ms, 0.50),
        timer_lag_p99_ms: percentile(&lags_ms, 0.99),
        timer_lag_max_ms: lags_ms.last().copied().unwrap_or(0.0),
        pending_at_restart,
        restart_to_ready_ms,
        restart_to_all_fired_ms,
        timers_fired_per_s: pending_at_restart as f64 / firing_s,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!("database            {}", results.database);
        println!("creates/s           {:.0} ({} requests with 2 s deadlines)", results.creates_per_s, results.requests);
        println!(
            "timer lag           p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (deadline -> decision by timeout)",
            results.timer_lag_p50_ms, results.timer_lag_p99_ms, results.timer_lag_max_ms
        );
        println!("restart             {} overdue requests pending", results.pending_at_restart);
        println!("  ready after       {:.0} ms", results.restart_to_ready_ms);
        println!("  all fired after   {:.0} ms", results.restart_to_all_fired_ms);
        println!("  timers fired/s    {:.0} (from ready to the last one)", results.timers_fired_per_s);
    }
    Ok(())
}

/// Reads the server's pending gauge.
async fn pending_gauge(url: &str) -> anyhow::Result<u64> {
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("signoff_requests_pending "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .context("the server's /metrics has no signoff_requests_pending")
}

async fn wait_for_pending(url: &str, target: u64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let pending = pending_gauge(url).await?;
        if pending <= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{pending} requests still pending after {within:?}");
        }
        // The gauge is a count over the pending requests: read it often only once few are left.
        let pause = if pending > 50_000 { 500 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Decides every request; returns when each decision was acknowledged, by index.
async fn decide_all(clients: &[LoadClient], ids: Arc<Vec<Uuid>>, concurrency: usize) -> anyhow::Result<Vec<Instant>> {
    let next = Arc::new(AtomicUsize::new(0));
    let body = serde_json::to_vec(&DecisionBody {
        outcome: Verdict::Approve,
        comment: None,
        reason: None,
        args: None,
        standing_s: None,
    })?;
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (client, next, ids, body) =
            (clients[task % clients.len()].clone(), next.clone(), ids.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection = LoadConnection::connect(&client.url, &client.key).await?;
            let mut acknowledged = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= ids.len() {
                    return Ok::<_, anyhow::Error>(acknowledged);
                }
                let answer = connection.post(&format!("/v1/requests/{}/decision", ids[index]), &body).await?;
                if !(200..300).contains(&answer.status) {
                    bail!("decision answered {}: {}", answer.status, String::from_utf8_lossy(answer.body));
                }
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

/// Waiters connected at once while parking: well under the kernel's listen backlog.
const WAITER_BATCH: usize = 1000;

/// Waiters per source address: one address pair has about 28,000 ephemeral ports, so past this many waiters on the
/// server the bench starts (on 127.0.0.1) they connect from 127.0.0.2, 127.0.0.3 and on.
const WAITERS_PER_SOURCE: usize = 20_000;

/// One client per source address, each opening a connection per waiter.
fn waiter_clients(target: &Target, waiters: usize) -> anyhow::Result<Vec<LoadClient>> {
    let sources = waiters.div_ceil(WAITERS_PER_SOURCE).max(1);
    if sources > 1 && target.child.is_none() {
        bail!("more than {WAITERS_PER_SOURCE} waiters connect from several loopback addresses: drop --url");
    }
    (0..sources)
        .map(|source| {
            let mut builder = reqwest::Client::builder().pool_max_idle_per_host(0);
            if sources > 1 {
                let last = u8::try_from(source + 1).context("too many waiters")?;
                builder = builder.local_address(std::net::IpAddr::from([127, 0, 0, last]));
            }
            Ok(LoadClient { http: builder.build()?, url: target.url.clone(), key: target.agent_key.clone() })
        })
        .collect()
}

/// Reads the server's parked-waiter gauge until `waiters` are parked.
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
    let url = format!("http://127.0.0.1:{port}");
    let mut target = Target { url, exe, port, agent_key, approver_key, database, child: None, _dir: Some(dir) };
    target.spawn()?;
    wait_until_healthy(&target.url, "/healthz").await?;
    Ok(target)
}
