//! The MCP server as agents use it: the real `signoff mcp` over stdio and `/mcp` over streamable HTTP, each driven by
//! rmcp's client, on every backend. Approvals, edits, rejections, policy decisions, questions, cancels and outcomes
//! reach the agent; `approval_prompt` answers Claude Code's permission prompts; failures are tool errors carrying
//! the API's codes.

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use signoff_domain::{RequestId, Role};
use signoff_store::{Change, NewKey};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::timeout;

on_every_backend!(
    both_transports_list_the_tools_with_their_parameters,
    an_approval_is_waited_for_edited_and_reported,
    policy_decisions_rejections_and_cancels_reach_the_agent,
    a_question_is_answered_by_a_person,
    approval_prompt_allows_edited_input_and_denies_with_the_reason,
    failures_are_tool_errors_with_the_api_codes,
    agents_reach_only_their_own_requests,
    http_calls_need_a_live_key,
    the_http_endpoint_is_stateless_streams_its_answers_and_checks_the_host,
    approval_prompt_fails_unavailable_when_the_server_stops,
);

/// How long any one call may take before the test fails.
const CALL: Duration = Duration::from_secs(30);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [ops] }
groups:
  ops: { notify: [dashboard] }
actions:
  refund:
    args:
      type: object
      required: [amount]
      properties:
        amount: { type: number, minimum: 0 }
defaults: { route: ops, timeout: 1h, on_timeout: reject }
rules:
  - { name: pings-pass, when: 'action == "ping"', decide: approve }
  - { name: no-nukes, when: 'action == "nuke"', decide: deny }
"#;

/// How a test reaches the tools.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// `signoff mcp`, the real binary, talking to the app through the HTTP client.
    Stdio,
    /// The app's own `/mcp`.
    Http,
}

const TRANSPORTS: [Transport; 2] = [Transport::Stdio, Transport::Http];

type Client = RunningService<RoleClient, ()>;

async fn scene(backend: Backend) -> (TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(POLICY).await;
    assert_eq!(status, 201, "{body}");
    (db, app)
}

/// An MCP client calling the tools with `key`.
async fn connect(app: &TestApp, key: &str, transport: Transport) -> Client {
    let connected = match transport {
        Transport::Stdio => {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_signoff"));
            command.arg("mcp").env("SIGNOFF_URL", &app.url).env("SIGNOFF_KEY", key);
            timeout(CALL, ().serve(TokioChildProcess::new(command).expect("start signoff mcp"))).await
        }
        Transport::Http => {
            let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", app.url)).auth_header(key);
            timeout(CALL, ().serve(StreamableHttpClientTransport::from_config(config))).await
        }
    };
    connected.expect("connects in time").unwrap_or_else(|e| panic!("{transport:?}: cannot connect: {e}"))
}

/// Calls `tool`; `Ok` with its structured content, or `Err` with the tool error's.
async fn call(client: &Client, tool: &str, arguments: Value) -> Result<Value, Value> {
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    let result = timeout(CALL, client.call_tool(params)).await.expect("the tool answers in time").expect("call");
    let structured = result.structured_content.clone().unwrap_or_else(|| text_json(&result));
    if result.is_error == Some(true) { Err(structured) } else { Ok(structured) }
}

/// A result's text content, parsed as JSON (the last block: a success's first is its sentence for the model).
fn text_json(result: &CallToolResult) -> Value {
    let text = result.content.last().and_then(|block| block.as_text()).expect("a text block");
    serde_json::from_str(&text.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text.text))
}

/// The code of a tool error, checked to be the API's error body.
fn code(error: &Value) -> &str {
    assert!(error["error"]["message"].is_string(), "not an error body: {error}");
    error_code(error)
}

fn id(view: &Value) -> String {
    view["request_id"].as_str().unwrap_or_else(|| panic!("no request_id: {view}")).to_string()
}

/// The next request created in the store: what a blocking tool call is waiting on.
async fn next_created(changes: &mut broadcast::Receiver<Change>, app: &TestApp) -> RequestId {
    loop {
        let change = timeout(CALL, changes.recv()).await.expect("a request is created in time").expect("changes");
        let id = match change {
            Change::Request(id) => id,
            Change::Updated(request) => request.id,
            Change::Unknown => continue,
        };
        if app.state.store.request(id).await.expect("read it").decision.is_none() {
            return id;
        }
    }
}

async fn both_transports_list_the_tools_with_their_parameters(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let client = connect(&app, &app.agent_key, transport).await;
        let tools = client.list_all_tools().await.expect("list tools");
        let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
        names.sort();
        assert_eq!(
            names,
            ["approval_prompt", "ask_human", "cancel_approval", "get_approval", "report_outcome", "request_approval",],
            "{transport:?}"
        );
        let schema = |name: &str| Value::Object((*tools.iter().find(|t| t.name == name).unwrap().input_schema).clone());
        assert_eq!(schema("request_approval")["required"], json!(["action"]), "{transport:?}");
        assert_eq!(schema("approval_prompt")["required"], json!(["tool_name"]), "{transport:?}");
        assert_eq!(schema("ask_human")["required"], json!(["question"]), "{transport:?}");
        let info = client.peer_info().expect("server info");
        assert_eq!(info.server_info.as_ref().map(|server| server.name.as_str()), Some("signoff"), "{transport:?}");
        client.cancel().await.expect("close");
    }
}

async fn an_approval_is_waited_for_edited_and_reported(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let client = connect(&app, &app.agent_key, transport).await;
        let ask = json!({
            "action": "refund", "args": {"amount": 120}, "summary": "Refund order 1042",
            "run_id": format!("run-{transport:?}"), "call_id": "refund-1", "wait_s": 0,
        });
        let pending = call(&client, "request_approval", ask.clone()).await.unwrap();
        assert_eq!((pending["status"].as_str(), pending["group"].as_str()), (Some("pending"), Some("ops")));
        assert!(pending["message"].as_str().unwrap().contains("get_approval"), "{pending}");
        let request_id = id(&pending);

        let again = call(&client, "request_approval", ask).await.unwrap();
        assert_eq!(id(&again), request_id, "the same run and call ask once");

        let waiting = {
            let client = client.peer().clone();
            let arguments = json!({"request_id": request_id, "wait_s": 20});
            tokio::spawn(async move {
                let Value::Object(arguments) = arguments else { unreachable!() };
                client.call_tool(CallToolRequestParams::new("get_approval").with_arguments(arguments)).await
            })
        };
        let edit = json!({"outcome": "approve", "comment": "Not the shipping", "args": {"amount": 100}});
        let (status, body) = app.decide(&request_id, &app.approver_key, edit).await;
        assert_eq!(status, 200, "{body}");
        let waited = timeout(CALL, waiting).await.expect("the wait ends").unwrap().expect("get_approval");
        let approved = waited.structured_content.expect("structured content");
        assert_eq!(approved["status"], "approved", "{transport:?}: {approved}");
        assert_eq!(approved["decision"]["args"], json!({"amount": 100}));
        assert_eq!(approved["decision"]["edited"], true);
        assert_eq!(approved["decision"]["by"], json!({"kind": "human", "approver_id": "dana", "channel": "api"}));
        assert_eq!(approved["args"], json!({"amount": 120}), "the proposal stays beside the decision");
        let message = approved["message"].as_str().unwrap();
        assert_eq!(
            message,
            "Approved by dana (api) with edited arguments: {\"amount\":100}. Proceed with these arguments \
             (`decision.args`), not your own. Comment: Not the shipping"
        );
        let first = waited.content.first().and_then(|block| block.as_text()).expect("a sentence first");
        assert_eq!(first.text, message, "the model reads the sentence first");

        let reported =
            call(&client, "report_outcome", json!({"request_id": request_id, "ok": true, "detail": "refunded"}))
                .await
                .unwrap();
        assert_eq!(reported["outcome"]["ok"], true);
        let read = call(&client, "get_approval", json!({"request_id": request_id})).await.unwrap();
        assert_eq!((read["status"].as_str(), read["outcome"]["detail"].as_str()), (Some("approved"), Some("refunded")));
        client.cancel().await.expect("close");
    }
}

async fn policy_decisions_rejections_and_cancels_reach_the_agent(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let client = connect(&app, &app.agent_key, transport).await;
        let ping = call(&client, "request_approval", json!({"action": "ping"})).await.unwrap();
        assert_eq!(ping["status"], "approved", "{ping}");
        assert_eq!(ping["decision"]["by"], json!({"kind": "policy", "rule": "pings-pass"}));
        let nuke =
            call(&client, "request_approval", json!({"action": "nuke", "args": {"target": "prod"}})).await.unwrap();
        assert_eq!(nuke["status"], "rejected", "{nuke}");
        assert!(nuke["message"].as_str().unwrap().contains("no-nukes"), "{nuke}");

        let mut changes = app.state.store.changes();
        let asking = {
            let client = client.peer().clone();
            tokio::spawn(async move {
                let arguments = json!({"action": "refund", "args": {"amount": 9000}, "wait_s": 20});
                let Value::Object(arguments) = arguments else { unreachable!() };
                client.call_tool(CallToolRequestParams::new("request_approval").with_arguments(arguments)).await
            })
        };
        let request_id = next_created(&mut changes, &app).await.to_string();
        let reject = json!({"outcome": "reject", "comment": "Outside the refund window", "reason": "policy"});
        let (status, body) = app.decide(&request_id, &app.approver_key, reject).await;
        assert_eq!(status, 200, "{body}");
        let asked = timeout(CALL, asking).await.expect("the ask ends").unwrap().expect("request_approval");
        let rejected = asked.structured_content.expect("structured content");
        assert_eq!((rejected["status"].as_str(), id(&rejected)), (Some("rejected"), request_id.clone()));
        let message = rejected["message"].as_str().unwrap();
        assert!(message.contains("Outside the refund window") && message.contains("Do not run it"), "{message}");

        let pending =
            call(&client, "request_approval", json!({"action": "refund", "args": {"amount": 1}, "wait_s": 0}))
                .await
                .unwrap();
        let cancelled = call(&client, "cancel_approval", json!({"request_id": id(&pending), "reason": "not needed"}))
            .await
            .unwrap();
        assert_eq!(
            (cancelled["status"].as_str(), cancelled["decision"]["reason"].as_str()),
            (Some("cancelled"), Some("not needed"))
        );
        client.cancel().await.expect("close");
    }
}

async fn a_question_is_answered_by_a_person(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let client = connect(&app, &app.agent_key, transport).await;
        let question = json!({"question": "Which region?", "options": ["eu", "us"], "wait_s": 0});
        let asked = call(&client, "ask_human", question).await.unwrap();
        assert_eq!((asked["status"].as_str(), asked["options"].clone()), (Some("pending"), json!(["eu", "us"])));
        assert_eq!(asked["question"], "Which region?");
        let (status, body) = send(
            app.post(&format!("/v1/requests/{}/answer", id(&asked)), &app.approver_key).json(&json!({"text": "eu"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answered = call(&client, "get_approval", json!({"request_id": id(&asked), "wait_s": 60})).await.unwrap();
        assert_eq!(
            (answered["status"].as_str(), answered["decision"]["answer"].as_str()),
            (Some("answered"), Some("eu"))
        );
        assert_eq!(answered["message"], "Answered by dana (api): eu");
        client.cancel().await.expect("close");
    }
}

/// Claude Code's permission prompt for a Bash command.
fn bash_prompt(tool_use_id: &str, command: &str) -> Value {
    json!({"tool_name": "Bash", "input": {"command": command, "description": "Clean up"}, "tool_use_id": tool_use_id})
}

/// Starts `approval_prompt` (it waits until decided); returns the request it asked and the pending call.
async fn prompt(
    app: &TestApp,
    client: &Client,
    arguments: Value,
) -> (String, tokio::task::JoinHandle<Result<CallToolResult, rmcp::ServiceError>>) {
    let mut changes = app.state.store.changes();
    let peer = client.peer().clone();
    let pending = tokio::spawn(async move {
        let Value::Object(arguments) = arguments else { unreachable!() };
        peer.call_tool(CallToolRequestParams::new("approval_prompt").with_arguments(arguments)).await
    });
    (next_created(&mut changes, app).await.to_string(), pending)
}

async fn answer_of(pending: tokio::task::JoinHandle<Result<CallToolResult, rmcp::ServiceError>>) -> Value {
    let result = timeout(CALL, pending).await.expect("the prompt is answered").unwrap().expect("approval_prompt");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    text_json(&result)
}

async fn approval_prompt_allows_edited_input_and_denies_with_the_reason(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let client = connect(&app, &app.agent_key, transport).await;
        let use_id = format!("toolu_{transport:?}_1");
        let (request_id, pending) = prompt(&app, &client, bash_prompt(&use_id, "rm -rf build dist")).await;
        let (_, asked) = send(app.get(&format!("/v1/requests/{request_id}"), &app.admin_key)).await;
        assert_eq!(
            (asked["action"].as_str(), asked["summary"].as_str()),
            (Some("Bash"), Some("Bash: rm -rf build dist"))
        );
        assert_eq!((asked["run_id"].as_str(), asked["call_id"].as_str()), (Some("claude-code"), Some(use_id.as_str())));
        assert_eq!(asked["tags"], json!(["permission-prompt"]));
        let edited = json!({"command": "rm -rf build", "description": "Clean up"});
        let (status, body) =
            app.decide(&request_id, &app.approver_key, json!({"outcome": "approve", "args": edited})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer_of(pending).await, json!({"behavior": "allow", "updatedInput": edited}), "{transport:?}");

        let again = call(&client, "approval_prompt", bash_prompt(&use_id, "rm -rf build dist")).await;
        let Ok(again) = again else { panic!("{again:?}") };
        assert_eq!(
            again,
            json!({"behavior": "allow", "updatedInput": edited}),
            "asking again resumes the same request"
        );

        let (request_id, pending) =
            prompt(&app, &client, bash_prompt(&format!("{use_id}-2"), "git push --force")).await;
        let reject = json!({"outcome": "reject", "comment": "Never force-push main"});
        let (status, body) = app.decide(&request_id, &app.approver_key, reject).await;
        assert_eq!(status, 200, "{body}");
        let denied = answer_of(pending).await;
        assert_eq!(denied["behavior"], "deny", "{denied}");
        let message = denied["message"].as_str().unwrap();
        assert!(message.contains("dana") && message.contains("Never force-push main"), "{message}");

        let ping = call(&client, "approval_prompt", json!({"tool_name": "ping", "input": {}})).await.unwrap();
        assert_eq!(ping, json!({"behavior": "allow", "updatedInput": {}}), "policy decides at once");
        client.cancel().await.expect("close");
    }
    let (_, page) = send(app.get("/v1/requests?run_id=claude-code", &app.admin_key)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4, "one request per tool use: {page}");
}

async fn failures_are_tool_errors_with_the_api_codes(backend: Backend) {
    let (_db, app) = scene(backend).await;
    for transport in TRANSPORTS {
        let agent = connect(&app, &app.agent_key, transport).await;
        let missing = "0196a3c4-5e2f-7a10-8b3c-4d5e6f708192";
        let error = call(&agent, "get_approval", json!({"request_id": missing})).await.unwrap_err();
        assert_eq!(code(&error), "not_found", "{transport:?}: {error}");
        let error = call(&agent, "get_approval", json!({"request_id": "not-an-id", "wait_s": 1})).await.unwrap_err();
        assert_eq!(code(&error), "not_found", "{transport:?}: {error}");
        let error = call(&agent, "request_approval", json!({"action": "ping", "wait_s": 301})).await.unwrap_err();
        assert_eq!(code(&error), "invalid_request", "{transport:?}: {error}");
        let error = call(&agent, "request_approval", json!({"action": "refund", "args": {"amount": "lots"}})).await;
        let error = error.unwrap_err();
        assert_eq!(code(&error), "invalid_args", "{transport:?}: {error}");
        assert_eq!(error["error"]["details"][0]["path"], "$.amount", "{transport:?}: {error}");
        let error = call(&agent, "request_approval", json!({"summary": "no action"})).await.unwrap_err();
        assert_eq!(code(&error), "bad_request", "{transport:?}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("action"), "{error}");
        let error = call(&agent, "request_approval", json!({"action": "ping", "colour": "red"})).await.unwrap_err();
        assert_eq!(code(&error), "bad_request", "{transport:?}: {error}");
        let error = call(&agent, "ask_human", json!({"question": "Which?", "options": ["a", "a"]})).await.unwrap_err();
        assert_eq!(code(&error), "invalid_request", "{transport:?}: {error}");
        let pending = call(&agent, "request_approval", json!({"action": "refund", "args": {"amount": 5}, "wait_s": 0}))
            .await
            .unwrap();
        let error = call(&agent, "report_outcome", json!({"request_id": id(&pending), "ok": true})).await.unwrap_err();
        assert_eq!(code(&error), "not_decided", "{transport:?}: {error}");
        agent.cancel().await.expect("close");

        let approver = connect(&app, &app.approver_key, transport).await;
        let error = call(&approver, "request_approval", json!({"action": "ping"})).await.unwrap_err();
        assert_eq!(code(&error), "forbidden", "{transport:?}: {error}");
        let error = call(&approver, "cancel_approval", json!({"request_id": id(&pending)})).await.unwrap_err();
        assert_eq!(code(&error), "forbidden", "{transport:?}: {error}");
        approver.cancel().await.expect("close");
    }
}

async fn agents_reach_only_their_own_requests(backend: Backend) {
    let (_db, app) = scene(backend).await;
    let other_agent = app.key(NewKey::new("other-bot", Role::Agent)).await;
    for transport in TRANSPORTS {
        let mine = connect(&app, &app.agent_key, transport).await;
        let theirs = connect(&app, &other_agent, transport).await;
        let pending = call(&mine, "request_approval", json!({"action": "refund", "args": {"amount": 5}, "wait_s": 0}))
            .await
            .unwrap();
        for tool in ["get_approval", "cancel_approval"] {
            let error = call(&theirs, tool, json!({"request_id": id(&pending)})).await.unwrap_err();
            assert_eq!(code(&error), "not_found", "{transport:?} {tool}: {error}");
        }
        let (_, read) = send(app.get(&format!("/v1/requests/{}", id(&pending)), &app.admin_key)).await;
        assert_eq!(read["requested_by"]["key_name"], "bot", "the tools create as the caller's key");
        mine.cancel().await.expect("close");
        theirs.cancel().await.expect("close");
    }
}

async fn http_calls_need_a_live_key(backend: Backend) {
    let (_db, app) = scene(backend).await;
    let list_tools = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let post = |key: Option<&str>| {
        let builder = app
            .http
            .post(format!("{}/mcp", app.url))
            .header("Accept", "application/json, text/event-stream")
            .json(&list_tools);
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    };
    let (status, body) = send(post(None)).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
    let (status, body) = send(post(Some("so_agent_unknown"))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");

    let doomed = app.state.store.create_key(NewKey::new("doomed", Role::Agent), "test").await.expect("key");
    let client = connect(&app, &doomed.secret, Transport::Http).await;
    call(&client, "request_approval", json!({"action": "ping"})).await.expect("a live key calls");
    app.state.store.revoke_key(&doomed.key.id, "test").await.expect("revoke");
    let (status, body) = send(post(Some(&doomed.secret))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
    let params = CallToolRequestParams::new("request_approval")
        .with_arguments(json!({"action": "ping"}).as_object().unwrap().clone());
    assert!(client.call_tool(params).await.is_err(), "a revoked key's session is refused");
}

async fn approval_prompt_fails_unavailable_when_the_server_stops(backend: Backend) {
    for transport in TRANSPORTS {
        let (_db, app) = scene(backend).await;
        let client = connect(&app, &app.agent_key, transport).await;
        let (_, pending) = prompt(&app, &client, bash_prompt("toolu_stop", "make deploy")).await;
        timeout(CALL, app.stop()).await.expect("the server stops in time");
        let result = timeout(CALL, pending).await.expect("the prompt ends").unwrap().expect("approval_prompt");
        assert_eq!(result.is_error, Some(true), "{transport:?}: {result:?}");
        let error = result.structured_content.expect("the error body");
        assert_eq!(code(&error), "unavailable", "{transport:?}: {error}");
    }
}

async fn the_http_endpoint_is_stateless_streams_its_answers_and_checks_the_host(backend: Backend) {
    let (_db, app) = scene(backend).await;
    let list_tools = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let mcp = format!("{}/mcp", app.url);
    let accept = ("Accept", "application/json, text/event-stream");
    let response = app.http.post(&mcp).bearer_auth(&app.agent_key).header(accept.0, accept.1).json(&list_tools);
    let response = response.send().await.expect("POST /mcp");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none(), "no sessions: any replica answers");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.contains("request_approval"), "{body}");

    let get = app.http.get(&mcp).bearer_auth(&app.agent_key).header("Accept", "text/event-stream").send().await;
    assert_eq!(get.expect("GET /mcp").status(), 405, "no standalone stream without sessions");
    let rebound =
        app.http.post(&mcp).bearer_auth(&app.agent_key).header(accept.0, accept.1).header("Host", "evil.example");
    let rebound = rebound.json(&list_tools).send().await.expect("POST /mcp");
    assert_eq!(rebound.status(), 403, "a Host that is neither loopback nor the public URL's");
}
