//! Test support shared by the workspace's tests: a fresh database per test on each backend (a SQLite temp file,
//! or a new PostgreSQL database dropped afterwards), and the real application (API, dashboard and MCP endpoint)
//! served on a free port.
#![forbid(unsafe_code)]

pub mod fake_discord;
pub mod fake_slack;
pub mod fake_telegram;
pub mod fake_twilio;
pub mod smtp;

use serde_json::Value;
use signoff_domain::{ApproverId, Role};
use signoff_server::{AppState, CallbackSettings, Limits, RetryPolicy};
use signoff_store::{NewKey, Store};
use sqlx::Connection;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The PostgreSQL server tests use; override with `SIGNOFF_TEST_POSTGRES_URL` (a URL to its maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("SIGNOFF_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Callbacks for tests: loopback receivers allowed, retries after 200 ms, a 2 s timeout.
pub fn test_callbacks() -> CallbackSettings {
    CallbackSettings {
        allow_private: true,
        timeout: std::time::Duration::from_secs(2),
        retry: RetryPolicy { first_retry: std::time::Duration::from_millis(200), ..RetryPolicy::default() },
    }
}

/// The limits tests serve with: [`Limits::default`] without rate limits, since scenario tests send bursts of
/// hundreds of calls on one key. Tests of the limits themselves set their own with [`TestApp::on_with`].
pub fn test_limits() -> Limits {
    Limits { rate_limit: 0, ip_rate_limit: 0, ..Limits::default() }
}

/// Runs each named scenario, an `async fn(Backend)` in the calling module, as one test per backend:
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await } )*
        }
    };
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A fresh, empty database; removed when dropped.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("signoff.db").display());
                TestDatabase { url, backend, _dir: Some(dir), postgres_name: None }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("signoff_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for the tests: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
                TestDatabase { url: format!("{base}/{name}"), backend, _dir: None, postgres_name: Some(name) }
            }
        }
    }

    /// Opens a store on this database (each call is a new connection, like another replica).
    pub async fn open(&self) -> Arc<dyn Store> {
        signoff_store::open(&self.url).await.expect("open store")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Dropped from a plain thread: this may run inside (or outside) an async runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
                })
            })
            .join();
        }
    }
}

/// The real app, served on a free port, with one key per role.
pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub agent_key: String,
    pub agent_key_id: String,
    /// The agent key's `whsec_` secret, which signs its callbacks.
    pub agent_webhook_secret: String,
    pub approver_key: String,
    pub admin_key: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A fresh database on `backend` and an app serving it. Keep the database alive as long as the app.
    pub async fn on(backend: Backend) -> (TestDatabase, TestApp) {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(db.open().await).await;
        (db, app)
    }

    /// Like [`TestApp::on`], with `configure` applied to the state before serving (to set limits, say).
    pub async fn on_with(backend: Backend, configure: impl FnOnce(&mut AppState)) -> (TestDatabase, TestApp) {
        let db = TestDatabase::new(backend).await;
        let store = db.open().await;
        let keys = Keys::create(store.as_ref()).await;
        let app = Self::serve(store, test_callbacks(), keys, configure).await;
        (db, app)
    }

    /// Serves a new app over `store`, with callbacks allowed to loopback and quick retries.
    pub async fn spawn(store: Arc<dyn Store>) -> TestApp {
        Self::spawn_with(store, test_callbacks()).await
    }

    /// Serves a new app over `store` with these callback settings.
    pub async fn spawn_with(store: Arc<dyn Store>, callbacks: CallbackSettings) -> TestApp {
        let keys = Keys::create(store.as_ref()).await;
        Self::serve(store, callbacks, keys, |_| {}).await
    }

    /// Serves another app (a second replica) over `store`, reusing `keys_from`'s keys.
    pub async fn replica(store: Arc<dyn Store>, keys_from: &TestApp) -> TestApp {
        Self::replica_with(store, keys_from, |_| {}).await
    }

    /// Like [`TestApp::replica`], with `configure` applied to the state before serving (to add senders, say).
    pub async fn replica_with(
        store: Arc<dyn Store>,
        keys_from: &TestApp,
        configure: impl FnOnce(&mut AppState),
    ) -> TestApp {
        let keys = Keys {
            agent: keys_from.agent_key.clone(),
            agent_id: keys_from.agent_key_id.clone(),
            agent_webhook_secret: keys_from.agent_webhook_secret.clone(),
            approver: keys_from.approver_key.clone(),
            admin: keys_from.admin_key.clone(),
        };
        let (limits, token) = (keys_from.state.limits.clone(), keys_from.state.metrics_token.clone());
        Self::serve(store, keys_from.state.callbacks.clone(), keys, |state| {
            state.limits = limits;
            state.metrics_token = token;
            configure(state);
        })
        .await
    }

    async fn serve(
        store: Arc<dyn Store>,
        callbacks: CallbackSettings,
        keys: Keys,
        configure: impl FnOnce(&mut AppState),
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let mut state = AppState::load(store, callbacks).await.expect("load app state");
        state.limits = test_limits();
        configure(&mut state);
        let (shutdown, stop) = oneshot::channel::<()>();
        // The dashboard and the MCP endpoint beside the API, as the binary serves them.
        let pages = signoff_dashboard::router(state.clone(), signoff_dashboard::DashboardSettings::default())
            .merge(signoff_mcp::router(state.clone()));
        let server =
            tokio::spawn(signoff_server::serve_with_metrics(listener, None, state.clone(), pages, async move {
                let _ = stop.await;
            }));
        TestApp {
            url,
            state,
            agent_key: keys.agent,
            agent_key_id: keys.agent_id,
            agent_webhook_secret: keys.agent_webhook_secret,
            approver_key: keys.approver,
            admin_key: keys.admin,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Shuts down gracefully and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server");
        }
    }

    pub fn post(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url)).bearer_auth(key)
    }

    pub fn get(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url)).bearer_auth(key)
    }

    /// Creates a request as the agent; returns the response status and body.
    pub async fn create(&self, body: Value) -> (u16, Value) {
        send(self.post("/v1/requests", &self.agent_key).json(&body)).await
    }

    /// Applies a policy document as the admin; returns the status and body.
    pub async fn apply_policy(&self, yaml: &str) -> (u16, Value) {
        send(self.http.put(format!("{}/v1/policy", self.url)).bearer_auth(&self.admin_key).body(yaml.to_string())).await
    }

    /// Creates an approver key bound to `approver_id`; returns its secret.
    pub async fn approver(&self, approver_id: &str) -> String {
        self.key(NewKey::approver(&person(approver_id))).await
    }

    /// Creates `key`; returns its secret.
    pub async fn key(&self, key: NewKey) -> String {
        self.state.store.create_key(key, "test").await.expect("key").secret
    }

    /// Decides as `key`.
    pub async fn decide(&self, id: &str, key: &str, body: Value) -> (u16, Value) {
        send(self.post(&format!("/v1/requests/{id}/decision"), key).json(&body)).await
    }
}

struct Keys {
    agent: String,
    agent_id: String,
    agent_webhook_secret: String,
    approver: String,
    admin: String,
}

impl Keys {
    /// One key per role: agent `bot`, approver `dana`, admin `root` (bound to the person `ada`).
    async fn create(store: &dyn Store) -> Keys {
        let agent = store.create_key(NewKey::new("bot", Role::Agent), "test").await.expect("agent key");
        let approver = store.create_key(NewKey::approver(&person("dana")), "test").await.expect("approver key");
        let admin = NewKey { approver_id: Some(person("ada")), ..NewKey::new("root", Role::Admin) };
        let admin = store.create_key(admin, "test").await.expect("admin key");
        Keys {
            agent: agent.secret,
            agent_id: agent.key.id,
            agent_webhook_secret: agent.webhook_secret.unwrap_or_default(),
            approver: approver.secret,
            admin: admin.secret,
        }
    }
}

/// One callback POST as a receiver saw it.
#[derive(Debug, Clone)]
pub struct ReceivedCallback {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The status the receiver answered with.
    pub answered: u16,
}

/// A local HTTP server standing in for an agent's callback endpoint. It answers 500 to the first
/// `refuse_first` calls (or always `refuse_with`, when set), then 200, and records every call.
pub struct CallbackReceiver {
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<ReceivedCallback>>>,
    refusals_left: Arc<std::sync::atomic::AtomicUsize>,
}

impl CallbackReceiver {
    pub async fn start(refuse_first: usize, refuse_with: Option<u16>) -> CallbackReceiver {
        use axum::http::{HeaderMap, StatusCode};
        use std::sync::atomic::Ordering;
        let received = Arc::new(std::sync::Mutex::new(Vec::<ReceivedCallback>::new()));
        let refusals_left = Arc::new(std::sync::atomic::AtomicUsize::new(refuse_first));
        let (log, refusals) = (received.clone(), refusals_left.clone());
        let handler = move |headers: HeaderMap, body: String| {
            let (log, refusals) = (log.clone(), refusals.clone());
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut log = log.lock().unwrap();
                let refuse = refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                let answered = match refuse_with {
                    Some(status) => status,
                    None if refuse => 500,
                    None => 200,
                };
                log.push(ReceivedCallback {
                    webhook_id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                    answered,
                });
                StatusCode::from_u16(answered).unwrap()
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        CallbackReceiver { url, received, refusals_left }
    }

    /// From now on, accept every call.
    pub fn accept_all(&self) {
        self.refusals_left.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ReceivedCallback> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until the receiver has answered 2xx `count` times, or panics after `within`.
    pub async fn wait_for_accepted(&self, count: usize, within: std::time::Duration) -> Vec<ReceivedCallback> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.iter().filter(|r| (200..300).contains(&r.answered)).count() >= count {
                return received;
            }
            assert!(tokio::time::Instant::now() < deadline, "only these callbacks arrived: {received:#?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Checks a callback's signature with the independent Python `standardwebhooks` package
/// (`SIGNOFF_TEST_PYTHON`, or the workspace's `.venv`, which `scripts/test.sh` sets up).
pub fn python_verifies(secret: &str, callback: &ReceivedCallback) -> bool {
    let python = std::env::var("SIGNOFF_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_string());
    let script = r#"
import json, sys
from standardwebhooks import Webhook
case = json.load(sys.stdin)
headers = {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"], "webhook-signature": case["signature"]}
try:
    Webhook(case["secret"]).verify(case["body"], headers)
    print("ok")
except Exception as error:
    print("refused:", error)
"#;
    let case = serde_json::json!({
        "secret": secret, "id": callback.webhook_id, "timestamp": callback.timestamp,
        "signature": callback.signature, "body": callback.body,
    });
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/test.sh once, or set SIGNOFF_TEST_PYTHON"));
    use std::io::Write;
    child.stdin.take().unwrap().write_all(case.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    answer.trim() == "ok"
}

/// The person with this id (which must be a valid approver id).
pub fn person(id: &str) -> ApproverId {
    ApproverId::parse(id).expect("a valid approver id")
}

/// Sends a request; returns the status and the JSON body (`null` when the body is not JSON).
pub async fn send(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.send().await.expect("send");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The error code of an error body.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
