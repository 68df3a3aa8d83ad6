//! Running the real `signoff` binary from tests: keys, a server process, HTTP calls.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

pub const SIGNOFF: &str = env!("CARGO_BIN_EXE_signoff");

/// `signoff` on `database_url`, with no configuration from the environment. A PostgreSQL database's checkpoint key
/// is kept in the temporary directory (by default it would land in the working directory).
pub fn signoff(database_url: &str) -> Command {
    let mut command = Command::new(SIGNOFF);
    command.env_remove("SIGNOFF_CONFIG").env("SIGNOFF_DATABASE_URL", database_url).env("SIGNOFF_LOG", "warn");
    // The scenarios send bursts of hundreds of calls on one key, over the default rate limits.
    command.env("SIGNOFF_RATE_LIMIT", "0").env("SIGNOFF_IP_RATE_LIMIT", "0");
    if let Some(name) = database_url.strip_prefix("postgres://").and_then(|rest| rest.rsplit('/').next()) {
        command.env("SIGNOFF_CHECKPOINT_KEY_FILE", std::env::temp_dir().join(format!("{name}.checkpoint-key")));
    }
    command
}

pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("run signoff");
    assert!(output.status.success(), "signoff failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// `signoff keys create --json`.
pub fn create_key(database_url: &str, role: &str, extra: &[&str]) -> Value {
    let output =
        run_ok(signoff(database_url).args(["keys", "create", "--role", role, "--name", role, "--json"]).args(extra));
    serde_json::from_slice(&output.stdout).expect("keys create --json prints JSON")
}

/// A running `signoff serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub first_lines: Vec<String>,
}

impl Server {
    pub fn start(command: &mut Command) -> Server {
        Self::start_reading(command, 2)
    }

    /// Starts the server on a free port and reads the first `lines` lines it prints.
    pub fn start_reading(command: &mut Command, lines: usize) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(command, port, lines)
    }

    pub fn start_on(command: &mut Command, port: u16, lines: usize) -> Server {
        let mut child = command
            .arg("serve")
            .env("SIGNOFF_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start signoff serve");
        let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
        let first_lines: Vec<String> = (0..lines).map_while(|_| output.next().and_then(Result::ok)).collect();
        std::thread::spawn(move || for _ in output {});
        assert!(first_lines.first().is_some_and(|l| l.contains("listening on")), "serve said {first_lines:?}");
        Server { child, url: format!("http://127.0.0.1:{port}"), first_lines }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn call(builder: reqwest::RequestBuilder) -> (u16, Value) {
    signoff_testkit::send(builder).await
}
