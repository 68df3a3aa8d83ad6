//! The tools, written once over [`Connect`]: ask for approval, ask a question, read a request (waiting for it if
//! asked), cancel it, report its outcome, and `approval_prompt` for Claude Code's permission prompts.
//!
//! Every tool answers a [`RequestView`] as structured content, with two text blocks: first the view's sentence for
//! the model ("Approved by dana (slack) with edited arguments: {...}. Proceed with these arguments."), then the same
//! JSON as the structured content. A failure is a tool error whose structured content is the API's error body:
//! `{"error": {"code", "message", "details"?}}`.

use crate::backend::{Connect, Failure, Signoff};
use crate::permission::{self, PermissionPrompt};
use crate::view::RequestView;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Extensions, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_domain::Kind;
use signoff_server::MAX_WAIT_SECONDS;
use signoff_wire::{ErrorBody, ErrorCode, NewRequest, Request, RequestId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a tool waits for a decision when the call does not say (`wait_s`).
pub const DEFAULT_WAIT_SECONDS: u64 = 60;

/// The MCP server: the tools, calling Signoff through `C`. Cheap to clone.
#[derive(Clone)]
pub struct Tools<C> {
    connect: Arc<C>,
    tool_router: ToolRouter<Self>,
}

impl<C: Connect> Tools<C> {
    pub fn new(connect: C) -> Self {
        Tools { connect: Arc::new(connect), tool_router: Self::tool_router() }
    }
}

/// `request_approval`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// What you want to do, e.g. `refund` or `delete_rows`; policy rules match on it.
    pub action: String,
    /// The action's arguments. An approver may edit them: once approved, run with `decision.args`.
    #[serde(default)]
    pub args: JsonObject,
    /// One line for the approver, e.g. `Refund 120 EUR for order 1042`.
    pub summary: Option<String>,
    /// Why you want to do it.
    pub reasoning: Option<String>,
    /// Anything else that helps the approver decide.
    #[serde(default)]
    pub context: JsonObject,
    /// How sure you are that this is right, 0 to 1.
    pub confidence: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Your run (task, conversation). With `call_id`, asking again returns the same request instead of a new one.
    pub run_id: Option<String>,
    /// This call within the run.
    pub call_id: Option<String>,
    /// Seconds until the request's deadline, if it should be sooner than the policy's.
    pub timeout_s: Option<u64>,
    /// Seconds to wait for a decision before answering `pending` (0 to 300, default 60).
    pub wait_s: Option<u64>,
}

/// `ask_human`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionParams {
    /// The question for a person.
    pub question: String,
    /// The answers to choose from; without them, any text.
    #[serde(default)]
    pub options: Vec<String>,
    /// Anything that helps the person answer.
    #[serde(default)]
    pub context: JsonObject,
    /// Your run; with `call_id`, asking again returns the same question instead of a new one.
    pub run_id: Option<String>,
    /// This question within the run.
    pub call_id: Option<String>,
    /// Seconds until the question expires, if it should be sooner than the policy's deadline.
    pub timeout_s: Option<u64>,
    /// Seconds to wait for the answer before answering `pending` (0 to 300, default 60).
    pub wait_s: Option<u64>,
}

/// `get_approval`'s parameters: a request, and how long to wait for it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// The `request_id` a tool answered.
    pub request_id: String,
    /// Seconds to wait for a decision before answering `pending` (0 to 300, default 0: read it as it is).
    pub wait_s: Option<u64>,
}

/// `cancel_approval`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelParams {
    /// The `request_id` a tool answered.
    pub request_id: String,
    /// Why it is no longer needed.
    pub reason: Option<String>,
}

/// `report_outcome`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeParams {
    /// The `request_id` of the approved request you ran.
    pub request_id: String,
    /// Whether the action succeeded.
    pub ok: bool,
    /// What happened: a message, an id, an error.
    pub detail: Option<Value>,
}

impl ApprovalParams {
    fn into_request(self) -> NewRequest {
        let mut new = NewRequest::action(self.action);
        new.args = Value::Object(self.args);
        new.summary = self.summary;
        new.reasoning = self.reasoning;
        new.context = Value::Object(self.context);
        new.confidence = self.confidence;
        new.tags = self.tags;
        new.run_id = self.run_id;
        new.call_id = self.call_id;
        new.timeout_s = self.timeout_s;
        new
    }
}

impl QuestionParams {
    fn into_request(self) -> NewRequest {
        let mut new = NewRequest::action("ask_human");
        new.kind = Kind::Question;
        new.question = Some(self.question);
        new.options = self.options;
        new.context = Value::Object(self.context);
        new.run_id = self.run_id;
        new.call_id = self.call_id;
        new.timeout_s = self.timeout_s;
        new
    }
}

#[tool_router]
impl<C: Connect> Tools<C> {
    #[tool(description = "Ask for approval before an action that costs money, deletes or changes data, or reaches \
                       people. Waits up to `wait_s` for the decision. Run the action only when `status` is \
                       `approved`, with `decision.args` (an approver may have edited them), then call \
                       `report_outcome`. `rejected`, `expired` or `cancelled`: do not run it; `decision.comment` \
                       says why. `pending`: call `get_approval` with the `request_id` and a `wait_s`.")]
    async fn request_approval(
        &self,
        extensions: Extensions,
        Parameters(params): Parameters<ApprovalParams>,
    ) -> CallToolResult {
        let wait_s = params.wait_s;
        reply(self.create_and_wait(&extensions, params.into_request(), wait_s).await)
    }

    #[tool(description = "Ask a person a question (optionally with `options` to choose from) and wait up to `wait_s` \
                       for the answer. `answered`: the answer is `decision.answer`. `pending`: call \
                       `get_approval` with the `request_id` and a `wait_s`. `expired` or `cancelled`: nobody answered.")]
    async fn ask_human(
        &self,
        extensions: Extensions,
        Parameters(params): Parameters<QuestionParams>,
    ) -> CallToolResult {
        let wait_s = params.wait_s;
        reply(self.create_and_wait(&extensions, params.into_request(), wait_s).await)
    }

    #[tool(
        description = "Read a request that `request_approval` or `ask_human` answered, waiting up to `wait_s` \
                       (default 0: not at all) for its decision if it is still pending; answers it as it is then.",
        annotations(read_only_hint = true)
    )]
    async fn get_approval(&self, extensions: Extensions, Parameters(params): Parameters<GetParams>) -> CallToolResult {
        reply(self.wait(&extensions, &params.request_id, Some(params.wait_s.unwrap_or(0))).await)
    }

    #[tool(description = "Withdraw a pending request you no longer need, saying why.")]
    async fn cancel_approval(
        &self,
        extensions: Extensions,
        Parameters(params): Parameters<CancelParams>,
    ) -> CallToolResult {
        reply(
            async {
                let signoff = self.connect.connect(&extensions)?;
                Ok(signoff.cancel(request_id(&params.request_id)?, params.reason).await?.into())
            }
            .await,
        )
    }

    #[tool(description = "After running an approved action, report whether it succeeded (`ok`) and what happened.")]
    async fn report_outcome(
        &self,
        extensions: Extensions,
        Parameters(params): Parameters<OutcomeParams>,
    ) -> CallToolResult {
        reply(
            async {
                let signoff = self.connect.connect(&extensions)?;
                let id = request_id(&params.request_id)?;
                Ok(signoff.report_outcome(id, params.ok, params.detail).await?.into())
            }
            .await,
        )
    }

    #[tool(description = "For Claude Code's --permission-prompt-tool: asks Signoff whether a tool may run, waits for \
                       the decision and answers {\"behavior\": \"allow\", \"updatedInput\"} or {\"behavior\": \
                       \"deny\", \"message\"}.")]
    async fn approval_prompt(
        &self,
        extensions: Extensions,
        Parameters(prompt): Parameters<PermissionPrompt>,
    ) -> CallToolResult {
        let decided = async {
            let signoff = self.connect.connect(&extensions)?;
            let request = signoff.create(prompt.to_request()).await?;
            until_decided(&signoff, request).await
        }
        .await;
        match decided {
            Ok(request) => CallToolResult::success(vec![ContentBlock::text(permission::answer(&request).to_string())]),
            Err(failure) => failed(failure),
        }
    }
}

/// What the tools share.
impl<C: Connect> Tools<C> {
    /// Creates `new` as the caller, then waits up to `wait_s` for its decision.
    async fn create_and_wait(
        &self,
        extensions: &Extensions,
        new: NewRequest,
        wait_s: Option<u64>,
    ) -> Result<RequestView, Failure> {
        let wait = wait_for(wait_s)?;
        let signoff = self.connect.connect(extensions)?;
        let request = signoff.create(new).await?;
        wait_up_to(&signoff, request, wait).await
    }

    /// Reads the request `raw_id` names, then waits up to `wait_s` for its decision.
    async fn wait(&self, extensions: &Extensions, raw_id: &str, wait_s: Option<u64>) -> Result<RequestView, Failure> {
        let wait = wait_for(wait_s)?;
        let signoff = self.connect.connect(extensions)?;
        let request = signoff.request(request_id(raw_id)?).await?;
        wait_up_to(&signoff, request, wait).await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "signoff",
    instructions = "Signoff asks people before you act. Before an action that costs money, deletes or changes data, \
                    or reaches people, call `request_approval` and act only on `approved`, with `decision.args`. \
                    To ask a person something, call `ask_human`."
)]
impl<C: Connect> ServerHandler for Tools<C> {
    /// Dispatches to the tools. Arguments that do not fit a tool's parameters are a tool error with the API's code
    /// for a malformed body, `bad_request`.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let response = self.tool_router.call(ToolCallContext::new(self, request, context)).await?;
        Ok(match response {
            // The router's own refusal of the arguments; the tools' failures always carry the error body.
            CallToolResponse::Complete(result)
                if result.is_error == Some(true) && result.structured_content.is_none() =>
            {
                let message = result.content.iter().filter_map(|block| block.as_text()).map(|text| text.text.as_str());
                failed(Failure::new(ErrorCode::BadRequest, message.collect::<Vec<_>>().join(" "))).into()
            }
            other => other,
        })
    }
}

/// A tool's answer: the view's sentence and the view as structured content, or a tool error with the API's error
/// body.
fn reply(result: Result<RequestView, Failure>) -> CallToolResult {
    match result {
        Ok(view) => {
            let sentence = ContentBlock::text(view.message.clone());
            let mut result = CallToolResult::structured(serde_json::to_value(view).unwrap_or(Value::Null));
            result.content.insert(0, sentence);
            result
        }
        Err(failure) => failed(failure),
    }
}

fn failed(failure: Failure) -> CallToolResult {
    let body = ErrorBody { error: failure.0 };
    CallToolResult::structured_error(serde_json::to_value(body).unwrap_or_else(|_| json!({})))
}

/// `wait_s`, checked like the API's `timeout_s`.
fn wait_for(wait_s: Option<u64>) -> Result<Duration, Failure> {
    match wait_s.unwrap_or(DEFAULT_WAIT_SECONDS) {
        seconds if seconds <= MAX_WAIT_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(Failure::new(ErrorCode::InvalidRequest, format!("wait_s must be at most {MAX_WAIT_SECONDS}"))),
    }
}

/// A request id from a tool's arguments; one that cannot exist is simply not found, as in the API.
fn request_id(raw: &str) -> Result<RequestId, Failure> {
    raw.trim().parse().map_err(|_| Failure::new(ErrorCode::NotFound, "request not found"))
}

/// The request once decided, or as it is after `wait`.
async fn wait_up_to(signoff: &impl Signoff, request: Request, wait: Duration) -> Result<RequestView, Failure> {
    if request.status.is_final() || wait.is_zero() {
        return Ok(request.into());
    }
    Ok(signoff.wait(request.id, wait).await?.into())
}

/// The request once decided, however long its deadline lets it wait. A wait that comes back undecided before its
/// time means the server is shutting down: `unavailable`, and asking again about the same tool use resumes.
async fn until_decided(signoff: &impl Signoff, mut request: Request) -> Result<Request, Failure> {
    let most = Duration::from_secs(MAX_WAIT_SECONDS);
    while !request.status.is_final() {
        let started = Instant::now();
        request = signoff.wait(request.id, most).await?;
        if !request.status.is_final() && started.elapsed() < most {
            return Err(Failure::new(
                ErrorCode::Unavailable,
                "Signoff stopped waiting (it is shutting down); ask again",
            ));
        }
    }
    Ok(request)
}
