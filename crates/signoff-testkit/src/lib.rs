//! Test support shared by the workspace's tests: a fresh database per test on each backend (a SQLite temp file,
//! or a new PostgreSQL database dropped afterwards), and the real application served on a free port.
#![forbid(unsafe_code)]

use serde_json::Value;
use signoff_domain::Role;
use signoff_server::{AppState, CallbackSettings, RetryPolicy};
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
    pub approver_key: String,
    pub admin_key: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Serves a new app over `store`, with callbacks allowed to loopback and quick retries.
    pub async fn spawn(store: Arc<dyn Store>) -> TestApp {
        Self::spawn_with(store, test_callbacks()).await
    }

    /// Serves a new app over `store` with these callback settings.
    pub async fn spawn_with(store: Arc<dyn Store>, callbacks: CallbackSettings) -> TestApp {
        let agent = store.create_key(NewKey { name: "bot".into(), role: Role::Agent, approver_id: None }, "test").await;
        let agent = agent.expect("agent key");
        let approver = store
            .create_key(NewKey { name: "dana".into(), role: Role::Approver, approver_id: Some("dana".into()) }, "test")
            .await
            .expect("approver key");
        let admin =
            store.create_key(NewKey { name: "root".into(), role: Role::Admin, approver_id: None }, "test").await;
        let admin = admin.expect("admin key");
        Self::serve(store, callbacks, agent.secret, agent.key.id, approver.secret, admin.secret).await
    }

    /// Serves another app (a second replica) over `store`, reusing `keys_from`'s keys.
    pub async fn replica(store: Arc<dyn Store>, keys_from: &TestApp) -> TestApp {
        Self::serve(
            store,
            keys_from.state.callbacks.clone(),
            keys_from.agent_key.clone(),
            keys_from.agent_key_id.clone(),
            keys_from.approver_key.clone(),
            keys_from.admin_key.clone(),
        )
        .await
    }

    async fn serve(
        store: Arc<dyn Store>,
        callbacks: CallbackSettings,
        agent_key: String,
        agent_key_id: String,
        approver_key: String,
        admin_key: String,
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = AppState::load(store, callbacks).await.expect("load app state");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(signoff_server::serve(listener, state.clone(), async move {
            let _ = stop.await;
        }));
        TestApp {
            url,
            state,
            agent_key,
            agent_key_id,
            approver_key,
            admin_key,
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
        let key = NewKey { name: approver_id.into(), role: Role::Approver, approver_id: Some(approver_id.into()) };
        self.state.store.create_key(key, "test").await.expect("approver key").secret
    }

    /// Decides as `key`.
    pub async fn decide(&self, id: &str, key: &str, body: Value) -> (u16, Value) {
        send(self.post(&format!("/v1/requests/{id}/decision"), key).json(&body)).await
    }
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
