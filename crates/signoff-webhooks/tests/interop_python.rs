//! Interop with the independent Python `standardwebhooks` package: it must accept what we sign, refuse tampering,
//! and produce the same signatures we do.
//!
//! The interpreter comes from `SIGNOFF_TEST_PYTHON`, or `<workspace>/.venv/bin/python`. A missing interpreter or
//! package fails the test (it is never skipped).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use signoff_webhooks::{DEFAULT_TOLERANCE, WebhookHeaders, WebhookSecret, sign, unix_now, verify_at};

const SETUP_HINT: &str = "run `python3 -m venv .venv && .venv/bin/pip install standardwebhooks` in the workspace root, or point \
     SIGNOFF_TEST_PYTHON at a python with standardwebhooks installed";

/// Reads `{"secret", "verify": [{id, timestamp, signature, body}], "sign": [{id, timestamp, body}]}` from stdin and
/// prints `{"verify": ["valid" | "invalid: …"], "sign": ["v1,…"]}`.
const SCRIPT: &str = r#"
import json, sys
from datetime import datetime, timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

job = json.load(sys.stdin)
hook = Webhook(job["secret"])
verified = []
for case in job["verify"]:
    headers = {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"], "webhook-signature": case["signature"]}
    try:
        hook.verify(case["body"].encode("utf-8"), headers)
        verified.append("valid")
    except WebhookVerificationError as error:
        verified.append("invalid: " + str(error))
signed = [
    hook.sign(case["id"], datetime.fromtimestamp(case["timestamp"], tz=timezone.utc), case["body"])
    for case in job["sign"]
]
print(json.dumps({"verify": verified, "sign": signed}))
"#;

fn python() -> PathBuf {
    match std::env::var_os("SIGNOFF_TEST_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    }
}

fn run_python(job: &Value) -> Value {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}; {SETUP_HINT}", python.display()));
    child.stdin.take().unwrap().write_all(job.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed ({}): {stderr}\n{SETUP_HINT}", python.display(), output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("bad output from python: {error}"))
}

#[test]
fn python_standardwebhooks_agrees_with_our_signatures() {
    let secrets = [WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(), WebhookSecret::generate()];
    let body = r#"{"request_id":"req_01J","status":"approved","comment":"looks fine ✓","args":{"amount":4200}}"#;
    let tampered = body.replace("4200", "42000");
    let now = unix_now();
    let id = "msg_2b5cUQ2yNvjpJT2Tv6vFq8";

    for secret in &secrets {
        let signature = sign(secret, id, now, body.as_bytes());
        let with_others = format!("v1,bm90IGl0 v1a,c29tZXRoaW5nIGVsc2U= {signature}");
        let other_secret_signature = sign(&WebhookSecret::generate(), id, now, body.as_bytes());
        let case = |body: &str, signature: &str| json!({"id": id, "timestamp": now.to_string(), "signature": signature, "body": body});
        let job = json!({
            "secret": secret.expose(),
            "verify": [
                case(body, &signature),
                case(&tampered, &signature),
                case(body, &with_others),
                case(body, &other_secret_signature),
            ],
            "sign": [
                {"id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "timestamp": 1_614_265_330, "body": r#"{"test": 2432232314}"#},
                {"id": id, "timestamp": now, "body": body},
            ],
        });
        let answer = run_python(&job);
        let verified: Vec<&str> = answer["verify"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(verified[0], "valid", "python refused our signature");
        assert!(verified[1].starts_with("invalid"), "python accepted a tampered body: {}", verified[1]);
        assert_eq!(verified[2], "valid", "python refused a header with several signatures");
        assert!(verified[3].starts_with("invalid"), "python accepted another secret's signature: {}", verified[3]);

        let python_signatures: Vec<&str> =
            answer["sign"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(
            python_signatures[0],
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#)
        );
        assert_eq!(python_signatures[1], signature);
        let ts = now.to_string();
        let headers = WebhookHeaders { id, timestamp: &ts, signature: python_signatures[1] };
        verify_at(secret, &headers, body.as_bytes(), DEFAULT_TOLERANCE, now).unwrap();
    }
}
