//! The use cases every front end calls: create a request, wait for it, decide it, answer it, cancel it, report its
//! outcome, confirm or flag what an agent did; and apply a policy version.
//!
//! The HTTP handlers call these with the caller's identity and the channel the call came through; the dashboard,
//! Slack, email links and MCP call the same functions, so the rules (who may decide, quorum, separation of duties,
//! argument schemas, field limits) live here and in the domain, never in a front end.

use crate::AppState;
use crate::error::ApiError;
use crate::waiters::Wake;
use signoff_domain::{
    ApiKey, ApproverId, Channel, DomainError, FlagInput, Grant, HumanVerdict, Kind, NewRequest, Placement, Request,
    RequestId, Requester, Reviewable, Reviewer, Role, Verdict,
};
use signoff_policy::{EVERYONE, EvalInput, Policy};
use signoff_store::{Created, GrantIssue, NewRequestRecord, StandingLookup};
use signoff_wire::{ErrorCode, ErrorItem, PolicyView};
use std::sync::Arc;
use std::time::Duration;

/// Caps on the fields of a new request, in bytes of their JSON (characters for `summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    pub args_bytes: usize,
    pub context_bytes: usize,
    pub state_bytes: usize,
    pub summary_chars: usize,
    pub reasoning_bytes: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            args_bytes: 64 * 1024,
            context_bytes: 256 * 1024,
            state_bytes: 64 * 1024,
            summary_chars: 2_000,
            reasoning_bytes: 16 * 1024,
        }
    }
}

impl FieldLimits {
    /// Refuses the first field over its cap, naming it (413 `field_too_large`).
    pub fn check(&self, new: &NewRequest) -> Result<(), ApiError> {
        let json_len = |value: &serde_json::Value| serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
        let too_large = |field: &str, size: usize, limit: usize, unit: &str| {
            Err(ApiError::new(
                ErrorCode::FieldTooLarge,
                format!("`{field}` is {size} {unit}; the limit is {limit} {unit}"),
            ))
        };
        let args = json_len(&new.args);
        if args > self.args_bytes {
            return too_large("args", args, self.args_bytes, "bytes");
        }
        let context = json_len(&new.context);
        if context > self.context_bytes {
            return too_large("context", context, self.context_bytes, "bytes");
        }
        if let Some(state) = &new.state {
            let state = json_len(state);
            if state > self.state_bytes {
                return too_large("state", state, self.state_bytes, "bytes");
            }
        }
        if let Some(summary) = &new.summary {
            let chars = summary.chars().count();
            if chars > self.summary_chars {
                return too_large("summary", chars, self.summary_chars, "characters");
            }
        }
        if let Some(reasoning) = &new.reasoning
            && reasoning.len() > self.reasoning_bytes
        {
            return too_large("reasoning", reasoning.len(), self.reasoning_bytes, "bytes");
        }
        Ok(())
    }
}

/// A person deciding, and the channel their verdict came through.
#[derive(Debug, Clone, PartialEq)]
pub struct Decider {
    pub person: ApproverId,
    pub channel: Channel,
    /// The API key that carried the verdict, if one did (a key never approves what it created).
    pub key_id: Option<String>,
}

impl Decider {
    /// The person behind an API key. Keys bound to no one (an admin key made without `--approver`) manage but never
    /// decide: `403 not_an_approver`.
    pub fn from_key(key: &ApiKey, channel: Channel) -> Result<Decider, ApiError> {
        if !matches!(key.role, Role::Approver | Role::Admin) {
            return Err(ApiError::forbidden(format!("a key with role `{}` cannot decide requests", key.role)));
        }
        let person = key.approver_id.clone().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotAnApprover,
                "this admin key is bound to no person, and people decide, not keys: make one bound to you with \
                 `signoff keys create --role admin --approver ID`",
            )
        })?;
        Ok(Decider { person, channel, key_id: Some(key.id.clone()) })
    }
}

/// What a person decides.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub approve: bool,
    pub comment: Option<String>,
    pub reason: Option<String>,
    /// Approve only: the arguments approved instead of the proposed ones.
    pub args: Option<serde_json::Value>,
}

/// Creates a request for `by` (an agent or admin key): checks it, places it by the policy in force and stores it with
/// its events. A retry with the same idempotency key returns the original (`created: false`).
pub async fn create(
    state: &AppState,
    by: &ApiKey,
    new: NewRequest,
    idempotency_key: Option<String>,
) -> Result<Created, ApiError> {
    if !matches!(by.role, Role::Agent | Role::Admin) {
        return Err(ApiError::forbidden(format!("a key with role `{}` cannot create requests", by.role)));
    }
    new.validate()?;
    state.limits.fields.check(&new)?;
    if let Some(url) = &new.callback_url {
        let policy = signoff_webhooks::CallbackUrlPolicy { allow_private: state.callbacks.allow_private };
        policy.check(url).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    let active = state.policy.current();
    check_args(&active.policy, &new)?;
    // Only a retry under the same key is compared with it.
    let fingerprint = if idempotency_key.is_some() { new.fingerprint() } else { String::new() };
    let now = signoff_store::now();
    let mut request = Request::new(RequestId::new(), new, Requester::of(by), now);
    let mut events = vec![request.created_event(&by.actor())];
    let id = request.id.to_string();
    let verdict = active.policy.evaluate(&EvalInput {
        request_id: &id,
        action: &request.action,
        args: &request.args,
        context: &request.context,
        confidence: request.confidence,
        tags: &request.tags,
        mode: request.mode,
        agent: &by.name,
        run_id: request.run_id.as_deref(),
    });
    // Only a person can answer a question: a rule that would decide one at once (or sample it) routes it by the
    // defaults instead.
    let verdict = match verdict {
        Verdict::Route(_) => verdict,
        _ if request.kind == Kind::Question => active.policy.defaults_verdict(),
        _ => verdict,
    };
    let placement = Placement {
        version: active.version(),
        content_hash: active.policy.content_hash(),
        verdict,
        default_timeout: active.policy.defaults().timeout,
    };
    let standing = match &placement.verdict {
        Verdict::Route(route)
            if route.approvals == 1 && route.eval_error.is_none() && request.kind == Kind::Approval =>
        {
            route.rule.as_deref().and_then(|rule| active.policy.standing(rule))
        }
        _ => None,
    };
    events.extend(request.place(placement, now));
    // The grant itself is looked up in the create's transaction, so a revocation committed before it is seen.
    let standing =
        standing.map(|terms| StandingLookup { scope: terms.scope_of(&request, &request.args), rule: terms.rule });
    let created = state
        .store
        .create_request(NewRequestRecord { request, idempotency_key, fingerprint, events, standing })
        .await?;
    if created.created {
        state.metrics.created(&created.request);
    }
    Ok(created)
}

/// Refuses arguments that do not fit the action's schema in the policy (`400 invalid_args`, one detail per problem
/// with its JSON path).
fn check_args(policy: &signoff_policy::Policy, new: &NewRequest) -> Result<(), ApiError> {
    let Err(problems) = policy.check_args(&new.action, &new.args) else { return Ok(()) };
    let listed: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    let mut error = ApiError::new(
        ErrorCode::InvalidArgs,
        format!("the arguments do not fit the policy's schema for `{}`: {}", new.action, listed.join("; ")),
    );
    error.details = problems
        .into_iter()
        .map(|p| ErrorItem { message: p.message, path: Some(p.path), line: None, column: None })
        .collect();
    Err(error)
}

/// A person's verdict on a request. Inside the request's update, after its due timers have fired: the person must
/// belong to the group the request is routed to at that moment, must not be the one responsible for it, and an
/// approval counts toward the quorum only with the same arguments as the others.
pub async fn decide(
    state: &AppState,
    id: RequestId,
    decider: Decider,
    input: DecisionInput,
) -> Result<Request, ApiError> {
    Ok(decide_granting(state, id, decider, input, None).await?.0)
}

/// Approves a request "and similar ones for the next `window`": [`decide`]'s approval, and in the same transaction a
/// standing approval under the request's rule. Refused (and nothing decided) unless the policy in force gives that
/// rule `standing` with a `max` of at least `window`, and this approval alone decides the request.
pub async fn approve_standing(
    state: &AppState,
    id: RequestId,
    decider: Decider,
    input: DecisionInput,
    window: Duration,
) -> Result<(Request, Grant), ApiError> {
    if !input.approve {
        return Err(ApiError::invalid("a standing approval comes only with an approval"));
    }
    let policy = state.policy.current().policy.clone();
    let now = signoff_store::now();
    let issue: GrantIssue = Box::new(move |request| {
        let rule = request.policy.as_ref().and_then(|p| p.rule.clone()).unwrap_or_default();
        let terms = policy.standing(&rule).ok_or_else(|| DomainError::Invalid {
            field: "standing_s",
            message: format!(
                "the policy in force allows no standing approvals for this request's rule{}",
                if rule.is_empty() { String::new() } else { format!(" `{rule}`") }
            ),
        })?;
        request.grant(&terms, window, now)
    });
    let (request, grant) = decide_granting(state, id, decider, input, Some(issue)).await?;
    let grant = grant.ok_or_else(|| ApiError::new(ErrorCode::Internal, "the approval was stored without its grant"))?;
    Ok((request, grant))
}

async fn decide_granting(
    state: &AppState,
    id: RequestId,
    decider: Decider,
    input: DecisionInput,
    issue: Option<GrantIssue>,
) -> Result<(Request, Option<Grant>), ApiError> {
    let active = state.policy.current();
    let verdict = HumanVerdict {
        approve: input.approve,
        approver_id: decider.person,
        key_id: decider.key_id,
        channel: decider.channel,
        comment: input.comment,
        reason: input.reason,
        args: input.args,
    };
    let now = signoff_store::now();
    let (request, grant) = state
        .store
        .update_request_granting(
            id,
            Box::new(move |request| {
                if !request.status.is_final() {
                    // Said first: a member of the group who is responsible for the request hears why they may not.
                    request.refuse_self_approval(&verdict)?;
                    let group = request.group.as_deref().unwrap_or(EVERYONE);
                    if !active.policy.is_member(verdict.approver_id.as_str(), group) {
                        return Err(DomainError::NotInGroup(group.to_string()));
                    }
                }
                request.apply_human_verdict(verdict, now)
            }),
            issue,
        )
        .await?;
    state.metrics.decided(&request);
    Ok((request, grant))
}

/// Grants live now (with `all`, expired and revoked ones too), for approvers and admins.
pub async fn grants(state: &AppState, by: &ApiKey, all: bool) -> Result<Vec<Grant>, ApiError> {
    require_people_side(by, "list standing approvals")?;
    Ok(state.store.grants(all, signoff_store::now()).await?)
}

/// Revokes a standing approval: an admin may revoke any, an approver only the ones they granted (others are
/// `403`). Answers the grant as it now stands.
pub async fn revoke_grant(state: &AppState, by: &ApiKey, id: &str) -> Result<Grant, ApiError> {
    require_people_side(by, "revoke standing approvals")?;
    revoke_grant_as(state, id, by.role == Role::Admin, by.approver_id.as_ref(), by.actor().to_string()).await
}

/// Revokes a standing approval for `person` (an admin when `admin`), recording `actor` as who revoked it.
pub async fn revoke_grant_as(
    state: &AppState,
    id: &str,
    admin: bool,
    person: Option<&ApproverId>,
    actor: String,
) -> Result<Grant, ApiError> {
    if id.is_empty() || id.len() > signoff_domain::GRANT_ID_MAX_LEN {
        return Err(ApiError::not_found("grant"));
    }
    let grant = state.store.grant(id).await.map_err(|e| match e {
        signoff_store::StoreError::NotFound => ApiError::not_found("grant"),
        other => other.into(),
    })?;
    if !admin && person != Some(&grant.approver_id) {
        return Err(ApiError::forbidden("only the person who granted a standing approval, or an admin, may revoke it"));
    }
    Ok(state.store.revoke_grant(id, &actor).await?)
}

fn require_people_side(by: &ApiKey, doing: &str) -> Result<(), ApiError> {
    if matches!(by.role, Role::Approver | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a key with role `{}` cannot {doing}", by.role)))
    }
}

/// A person answers a question. Like a decision, inside the request's update after its due timers: the person must
/// belong to the group the question is routed to at that moment; the first answer ends it.
pub async fn answer(state: &AppState, id: RequestId, by: Decider, text: String) -> Result<Request, ApiError> {
    let active = state.policy.current();
    let now = signoff_store::now();
    let request = state
        .store
        .update_request(
            id,
            Box::new(move |request| {
                let group = request.group.as_deref().unwrap_or(EVERYONE);
                if !request.status.is_final() && !active.policy.is_member(by.person.as_str(), group) {
                    return Err(DomainError::NotInGroup(group.to_string()));
                }
                request.answer(by.person, by.channel, &text, now)
            }),
        )
        .await?;
    state.metrics.decided(&request);
    Ok(request)
}

/// A person confirms a pending sampled review: it is approved by them, with `review.verdict: confirmed`. Like a
/// decision, inside the request's update after its due timers: the person must belong to the request's group and
/// must not be the one responsible for it.
pub async fn confirm(
    state: &AppState,
    id: RequestId,
    decider: Decider,
    comment: Option<String>,
) -> Result<Request, ApiError> {
    let active = state.policy.current();
    let now = signoff_store::now();
    let reviewer = reviewer(decider);
    let request = state
        .store
        .update_request(
            id,
            Box::new(move |request| {
                may_review(request, &active.policy, &reviewer)?;
                request.confirm(reviewer, comment, now)
            }),
        )
        .await?;
    state.metrics.decided(&request);
    Ok(request)
}

/// A person flags what an agent did. A pending sampled review is rejected by them (a member of its group); a request
/// policy let through keeps its decision and the flag records a miss (any approver of the policy). Either way, in the
/// same transaction, the agent's `request.flagged` callback is enqueued and a `flagged` event appended.
pub async fn flag(state: &AppState, id: RequestId, decider: Decider, input: FlagInput) -> Result<Request, ApiError> {
    let active = state.policy.current();
    let now = signoff_store::now();
    let reviewer = reviewer(decider);
    let request = state
        .store
        .update_request(
            id,
            Box::new(move |request| {
                may_review(request, &active.policy, &reviewer)?;
                request.flag(reviewer, input, now)
            }),
        )
        .await?;
    if request.review.as_ref().is_some_and(|review| !review.miss) {
        state.metrics.decided(&request);
    }
    Ok(request)
}

fn reviewer(decider: Decider) -> Reviewer {
    Reviewer { approver_id: decider.person, key_id: decider.key_id, channel: decider.channel }
}

/// Who may review: for a sampled review, a member of the group it is routed to (as for a decision); for a miss, any
/// approver the policy declares (any person, under a policy that declares none). Never the person responsible for
/// the request, said first so they hear why.
fn may_review(request: &Request, policy: &signoff_policy::Policy, reviewer: &Reviewer) -> Result<(), DomainError> {
    let reviewable = request.reviewable()?;
    request.refuse_self_review(reviewer)?;
    let person = reviewer.approver_id.as_str();
    match reviewable {
        Reviewable::SampledReview => {
            let group = request.group.as_deref().unwrap_or(EVERYONE);
            if !policy.is_member(person, group) {
                return Err(DomainError::NotInGroup(group.to_string()));
            }
        }
        Reviewable::Miss => {
            if !policy.approvers().is_empty() && policy.approver(person).is_none() {
                return Err(DomainError::NotADeclaredApprover);
            }
        }
    }
    Ok(())
}

/// The requesting key (or an admin) withdraws a pending request.
pub async fn cancel(state: &AppState, id: RequestId, by: &ApiKey, reason: Option<String>) -> Result<Request, ApiError> {
    require_requester_side(by, "cancel requests")?;
    visible(state, by, id).await?;
    let key_id = by.id.clone();
    let now = signoff_store::now();
    let request = state.store.update_request(id, Box::new(move |request| request.cancel(&key_id, reason, now))).await?;
    state.metrics.decided(&request);
    Ok(request)
}

/// The requesting key (or an admin) reports what happened when the action ran.
pub async fn report_outcome(
    state: &AppState,
    id: RequestId,
    by: &ApiKey,
    ok: bool,
    detail: Option<serde_json::Value>,
) -> Result<Request, ApiError> {
    require_requester_side(by, "report outcomes")?;
    visible(state, by, id).await?;
    let actor = by.actor().to_string();
    let now = signoff_store::now();
    let request = state
        .store
        .update_request(id, Box::new(move |request| request.report_outcome(ok, detail, &actor, now)))
        .await?;
    Ok(request)
}

/// Returns as soon as the request `by` may see leaves `pending`, or as it is once `timeout` has passed or the server
/// is shutting down. Woken by the store's change notices, never by polling.
pub async fn wait(state: &AppState, by: &ApiKey, id: RequestId, timeout: Duration) -> Result<Request, ApiError> {
    wait_shared(state, by, id, timeout).await.map(Arc::unwrap_or_clone)
}

/// [`wait`], answering with the state a change notice handed over as it is (shared by every waiter on the request,
/// so a wake copies nothing).
pub async fn wait_shared(
    state: &AppState,
    by: &ApiKey,
    id: RequestId,
    timeout: Duration,
) -> Result<Arc<Request>, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    // However this call ends, nothing of it stays parked.
    let _unpark = state.waiters.unpark_on_drop(id);
    loop {
        // Parked before reading, so a change landing between the read and the park still wakes us.
        let parked = state.waiters.park(id);
        let request = visible(state, by, id).await?;
        if request.status.is_final() || state.waiters.is_shutting_down() {
            return Ok(Arc::new(request));
        }
        // Nothing of the pending request is held while parked: an idle waiter costs only its registration.
        drop(request);
        match tokio::time::timeout_at(deadline, parked).await {
            // The committed final state, handed over in memory: no read.
            Ok(Wake::Changed(Some(changed))) if changed.status.is_final() => return Ok(changed),
            // Still pending (or unknown): park again and read, since a later change may have been announced
            // before the new registration.
            Ok(Wake::Changed(_)) => continue,
            Ok(Wake::ShuttingDown) | Err(_) => return Ok(Arc::new(state.store.request(id).await?)),
        }
    }
}

/// Loads a request `by` may see; others' requests are not found, so their existence does not leak.
pub async fn visible(state: &AppState, by: &ApiKey, id: RequestId) -> Result<Request, ApiError> {
    let request = state.store.request(id).await?;
    if can_see(by, &request) { Ok(request) } else { Err(ApiError::not_found("request")) }
}

/// Agents see only the requests they created; people see all.
pub fn can_see(by: &ApiKey, request: &Request) -> bool {
    by.role != Role::Agent || request.requested_by.key_id == by.id
}

fn require_requester_side(by: &ApiKey, doing: &str) -> Result<(), ApiError> {
    if matches!(by.role, Role::Agent | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a key with role `{}` cannot {doing}", by.role)))
    }
}

/// Stores `source` as the next policy version (unless it is byte for byte the version in force) and puts it in force
/// at once; admins only. All or nothing: an invalid document is refused with every problem and its position. Says
/// whether a version was created, and the version in force. `PUT /v1/policy` and `POST /v1/advice/apply` both apply
/// through here.
pub async fn apply_policy(state: &AppState, by: &ApiKey, source: &str) -> Result<(bool, PolicyView), ApiError> {
    if by.role != Role::Admin {
        return Err(ApiError::forbidden(format!("a key with role `{}` cannot apply a policy", by.role)));
    }
    let policy = Policy::parse(source)?;
    let applied = state.store.apply_policy(source, &policy.content_hash(), &by.actor().to_string()).await?;
    state.policy.install(policy, applied.policy);
    Ok((applied.created, state.policy.current().view()))
}
