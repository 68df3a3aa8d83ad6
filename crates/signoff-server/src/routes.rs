//! The `/v1` routes and their handlers.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use crate::service::{self, Decider, DecisionInput};
use crate::{AppState, MAX_BODY_BYTES, MAX_WAIT_SECONDS};
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use signoff_domain::{Channel, Event, EventKind, FlagInput, NewRequest, Request, RequestId, Role, Status};
use signoff_store::{RequestFilter, StoreError};
use signoff_wire::{
    CancelBody, ConfirmBody, DecisionBody, DeliveryView, ErrorCode, FlagBody, GrantList, Health, NotificationView,
    OnCallView, OutcomeBody, Page, PersonView, PolicyVersionSummary, PolicyView, Verdict,
    advice::{AdviceReport, AppliedAdvice, ApplyAdvice},
    stats::StatsReport,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const OPENAPI: &str = include_str!("../../../docs/openapi.json");
const DEFAULT_WAIT_SECONDS: u64 = 30;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

pub fn router(state: AppState) -> Router {
    let waits = WaitRoute(Arc::new(state.clone()));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/requests", post(create_request).get(list_requests))
        .route("/v1/requests/{id}", get(get_request))
        .route("/v1/requests/{id}/decision", post(decide_request))
        .route("/v1/requests/{id}/answer", post(answer_request))
        .route("/v1/requests/{id}/cancel", post(cancel_request))
        .route("/v1/requests/{id}/confirm", post(confirm_request))
        .route("/v1/requests/{id}/flag", post(flag_request))
        .route("/v1/requests/{id}/outcome", post(report_outcome))
        .route("/v1/requests/{id}/events", get(request_events))
        .route("/v1/requests/{id}/deliveries", get(request_deliveries))
        .route("/v1/requests/{id}/notifications", get(request_notifications))
        .route("/v1/events", get(crate::events::stream))
        .route("/v1/audit/verify", get(crate::events::verify_route))
        .route("/v1/audit/checkpoints", get(crate::checkpoints::list_route))
        .route("/v1/policy", get(get_policy).put(put_policy))
        .route("/v1/policy/versions", get(policy_versions))
        .route("/v1/groups/{name}/oncall", get(group_on_call))
        .route("/v1/stats", get(stats))
        .route("/v1/advice", get(advice))
        .route("/v1/advice/apply", post(apply_advice))
        .route("/v1/grants", get(list_grants))
        .route("/v1/grants/{id}", axum::routing::delete(revoke_grant))
        .merge(crate::channels::slack::routes())
        .merge(crate::channels::discord::routes())
        .merge(crate::channels::email::routes())
        .merge(crate::channels::sms::routes())
        .merge(crate::channels::telegram::routes())
        .route("/v1/requests/{id}/wait", axum::routing::get_service(waits))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Health { status: "ready".into() })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::new(ErrorCode::Unavailable, "the database is not reachable"))
        }
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let body = state.metrics.render(state.store.pending_count().await?, state.waiters.parked());
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body))
}

/// Parses a request id from the path; an id that cannot exist is simply not found.
fn request_id(raw: &str) -> Result<RequestId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("request"))
}

/// Loads a request the caller may see; others' requests are not found, so their existence does not leak.
async fn visible_request(state: &AppState, caller: &Caller, id: RequestId) -> Result<Request, ApiError> {
    service::visible(state, &caller.0, id).await
}

fn idempotency_key(headers: &HeaderMap, new: &NewRequest) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        Some(value) => {
            let key = value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid("Idempotency-Key must be 1 to 255 characters"));
            }
            Ok(Some(format!("header:{key}")))
        }
        None => Ok(new.run_call_key()),
    }
}

async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(new): ApiJson<NewRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let idempotency_key = idempotency_key(&headers, &new)?;
    let created = service::create(&state, &caller.0, new, idempotency_key).await?;
    let status = if created.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(created.request)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    group: Option<String>,
    action: Option<String>,
    run_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Request>>, ApiError> {
    let status = params
        .status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown status `{s}`: expected pending, approved, rejected, expired or cancelled"
                ))
            })
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let before = params
        .cursor
        .map(|c| c.parse::<RequestId>().map_err(|_| ApiError::invalid("cursor is not one this API returned")))
        .transpose()?;
    let requested_by = (caller.role() == Role::Agent).then(|| caller.0.id.clone());
    let filter = RequestFilter {
        status,
        action: params.action,
        run_id: params.run_id,
        requested_by,
        group: params.group,
        before,
        created_since: None,
        limit,
    };
    let mut items = state.store.list_requests(filter).await?;
    let cut = crate::limits::fit_page(&mut items, state.limits.page_bytes);
    let next_cursor = (cut || items.len() == limit as usize).then(|| items.last().map(|r| r.id.to_string())).flatten();
    Ok(Json(Page { items, next_cursor }))
}

async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(visible_request(&state, &caller, request_id(&id)?).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitParams {
    timeout_s: Option<u64>,
}

/// `GET /v1/requests/{id}/wait`, as a service rather than a handler: a parked long-poll then holds a pointer to the
/// state, not copies of it (about 1.4 KiB each), and none of the call's head (headers, extensions, the caller's
/// secret), which is dropped once read.
#[derive(Clone)]
struct WaitRoute(Arc<AppState>);

impl tower::Service<axum::extract::Request> for WaitRoute {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let state = self.0.clone();
        let head = Box::new(request.into_parts().0);
        Box::pin(async move { Ok(wait_request(state, head).await.into_response()) })
    }
}

/// Returns as soon as the request leaves `pending`, or the still-pending request after `timeout_s`.
async fn wait_request(
    state: Arc<AppState>,
    mut head: Box<axum::http::request::Parts>,
) -> Result<Json<SharedRequest>, ApiError> {
    let caller = Caller::from_request_parts(&mut head, &state).await?;
    let ApiPath(id) = ApiPath::<String>::from_request_parts(&mut head, &state).await?;
    let ApiQuery(params) = ApiQuery::<WaitParams>::from_request_parts(&mut head, &state).await?;
    drop(head);
    let id = request_id(&id)?;
    let timeout_s = params.timeout_s.unwrap_or(DEFAULT_WAIT_SECONDS);
    if timeout_s > MAX_WAIT_SECONDS {
        return Err(ApiError::invalid(format!("timeout_s must be at most {MAX_WAIT_SECONDS}")));
    }
    let by = caller.0;
    Ok(Json(SharedRequest(service::wait_shared(&state, &by, id, Duration::from_secs(timeout_s)).await?)))
}

/// A request as a change notice handed it over, serialised in place.
struct SharedRequest(Arc<Request>);

impl serde::Serialize for SharedRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

async fn decide_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<Request>, ApiError> {
    let decider = Decider::from_key(&caller.0, Channel::Api)?;
    let id = request_id(&id)?;
    let input = DecisionInput {
        approve: body.outcome == Verdict::Approve,
        comment: body.comment,
        reason: body.reason,
        args: body.args,
    };
    match body.standing_s {
        None => Ok(Json(service::decide(&state, id, decider, input).await?)),
        Some(seconds) => {
            let window = Duration::from_secs(seconds);
            Ok(Json(service::approve_standing(&state, id, decider, input, window).await?.0))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantParams {
    all: Option<bool>,
}

async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<GrantParams>,
) -> Result<Json<GrantList>, ApiError> {
    let items = service::grants(&state, &caller.0, params.all.unwrap_or(false)).await?;
    Ok(Json(GrantList { items }))
}

async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<signoff_domain::Grant>, ApiError> {
    Ok(Json(service::revoke_grant(&state, &caller.0, &id).await?))
}

async fn answer_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<signoff_wire::AnswerBody>,
) -> Result<Json<Request>, ApiError> {
    let by = Decider::from_key(&caller.0, Channel::Api)?;
    let id = request_id(&id)?;
    Ok(Json(service::answer(&state, id, by, body.text).await?))
}

/// A person confirms a sampled review; the body is optional: absent, empty or `{"comment": ...}`.
async fn confirm_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Request>, ApiError> {
    let decider = Decider::from_key(&caller.0, Channel::Api)?;
    let id = request_id(&id)?;
    let body: ConfirmBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConfirmBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid confirm body: {e}")))?
    };
    Ok(Json(service::confirm(&state, id, decider, body.comment).await?))
}

/// A person flags what an agent did: a sampled review, or a request policy let through (a miss).
async fn flag_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FlagBody>,
) -> Result<Json<Request>, ApiError> {
    let decider = Decider::from_key(&caller.0, Channel::Api)?;
    let id = request_id(&id)?;
    let input = FlagInput { reason: body.reason, comment: body.comment, undo: body.undo };
    Ok(Json(service::flag(&state, id, decider, input).await?))
}

/// The optional body of a cancel: absent, empty or `{"reason": ...}`.
async fn cancel_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Request>, ApiError> {
    let id = request_id(&id)?;
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid cancel body: {e}")))?
    };
    Ok(Json(service::cancel(&state, id, &caller.0, body.reason).await?))
}

async fn report_outcome(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<Json<Request>, ApiError> {
    let id = request_id(&id)?;
    Ok(Json(service::report_outcome(&state, id, &caller.0, body.ok, body.detail).await?))
}

async fn request_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Event>>, ApiError> {
    let id = request_id(&id)?;
    visible_request(&state, &caller, id).await?;
    match state.store.request_events(id).await {
        Ok(events) => Ok(Json(events)),
        Err(StoreError::NotFound) => Err(ApiError::not_found("request")),
        Err(error) => Err(error.into()),
    }
}

/// The callbacks for a request, with their attempts so far.
async fn request_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let id = request_id(&id)?;
    visible_request(&state, &caller, id).await?;
    // Rows first, then their attempts: an attempt is committed with its row, so the history holds every attempt the
    // row counts (and perhaps one more that landed in between).
    let deliveries = state.store.deliveries(id).await?;
    let mut attempts = attempts_by(&state, id, EventKind::CallbackAttempted, "webhook_id").await?;
    Ok(Json(
        deliveries
            .into_iter()
            .map(|record| DeliveryView { history: attempts.remove(&record.webhook_id).unwrap_or_default(), record })
            .collect(),
    ))
}

/// The notifications about a request (asks and the updates to them), with their attempts so far.
async fn request_notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let id = request_id(&id)?;
    visible_request(&state, &caller, id).await?;
    // Rows first, then their attempts (see `request_deliveries`).
    let notifications = state.store.notifications(id).await?;
    let mut attempts = attempts_by(&state, id, EventKind::NotificationAttempted, "notification_id").await?;
    Ok(Json(
        notifications
            .into_iter()
            .map(|notification| NotificationView {
                history: attempts.remove(&notification.id).unwrap_or_default(),
                notification,
            })
            .collect(),
    ))
}

/// A request's attempt events of `kind`, oldest first, grouped by the delivery they are about (the `key` field of
/// their data), each as its data with the event's `at`.
async fn attempts_by(
    state: &AppState,
    id: RequestId,
    kind: EventKind,
    key: &str,
) -> Result<HashMap<String, Vec<serde_json::Value>>, ApiError> {
    let mut attempts: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for event in state.store.request_events(id).await?.into_iter().filter(|event| event.kind == kind) {
        let Some(of) = event.data[key].as_str().map(String::from) else { continue };
        let mut attempt = event.data;
        attempt["at"] = serde_json::json!(event.at);
        attempts.entry(of).or_default().push(attempt);
    }
    Ok(attempts)
}

async fn get_policy(State(state): State<AppState>, caller: Caller) -> Result<Json<PolicyView>, ApiError> {
    caller.require(&[Role::Approver, Role::Admin], "read the policy")?;
    Ok(Json(state.policy.current().view()))
}

/// Applies a new policy version: the body is the YAML document. All or nothing: an invalid document is refused
/// with every problem and its position, and the version in force stays.
async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin], "apply a policy")?;
    let source = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("the policy must be UTF-8 text"))?;
    let (created, view) = service::apply_policy(&state, &caller.0, source).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// Who is on call for a group with a rotation, since when, until when, and who is next.
async fn group_on_call(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OnCallView>, ApiError> {
    caller.require(&[Role::Approver, Role::Admin], "read the policy")?;
    let active = state.policy.current();
    let group = active.policy.group(&name).ok_or_else(|| ApiError::not_found(&format!("group `{name}`")))?;
    let rotation = group.rotation.as_ref().ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("group `{name}` has no on-call rotation; every member is asked"))
    })?;
    let on_call = rotation.on_call(signoff_store::now());
    let person = |id: &str| PersonView {
        id: id.to_string(),
        name: active.policy.approver(id).map(|a| a.name.clone()).unwrap_or_else(|| id.to_string()),
    };
    Ok(Json(OnCallView {
        group: name.clone(),
        on_call: person(on_call.person),
        since: on_call.since,
        until: on_call.until,
        next: person(on_call.next),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    since: Option<String>,
    by: Option<String>,
    fast_under: Option<String>,
}

/// Approval statistics over the requests created since `since` (default 30 days), optionally broken down `by`.
async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<StatsReport>, ApiError> {
    // Refused before the parameters are read, so an agent learns nothing from their errors.
    crate::insights::may_read_stats(&caller.0)?;
    let options = crate::insights::options(
        params.since.as_deref(),
        params.by.as_deref(),
        params.fast_under.as_deref(),
        signoff_store::now(),
    )?;
    Ok(Json(crate::insights::stats(&state, &caller.0, options).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdviceParams {
    since: Option<String>,
    min: Option<u64>,
}

/// Which gates to relax or tighten over the requests created since `since` (default 30 days).
async fn advice(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<AdviceParams>,
) -> Result<Json<AdviceReport>, ApiError> {
    // Refused before the parameters are read, so an agent learns nothing from their errors.
    crate::insights::may_read_stats(&caller.0)?;
    let options = crate::advice::options(params.since.as_deref(), params.min, signoff_store::now())?;
    Ok(Json(crate::advice::advice(&state, &caller.0, options).await?))
}

/// Applies one finding's draft as a new policy version.
async fn apply_advice(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApplyAdvice>,
) -> Result<(StatusCode, Json<AppliedAdvice>), ApiError> {
    caller.require(&[Role::Admin], "apply advice")?;
    let options = crate::advice::options(body.since.as_deref(), body.min, signoff_store::now())?;
    let (finding, policy) = crate::advice::apply(&state, &caller.0, &body.id, options).await?;
    Ok((StatusCode::CREATED, Json(AppliedAdvice { finding, policy })))
}

async fn policy_versions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PolicyVersionSummary>>, ApiError> {
    caller.require(&[Role::Approver, Role::Admin], "read the policy")?;
    let versions = state.store.policy_versions().await?;
    Ok(Json(
        versions
            .into_iter()
            .map(|v| PolicyVersionSummary {
                version: v.version,
                content_hash: v.content_hash,
                created_at: v.created_at,
                created_by: v.created_by,
            })
            .collect(),
    ))
}
