//! Background workers: the stored-timer loop (escalations, deadlines), the callback delivery loop, and (when
//! configured) the audit checkpoint writer.
//! Both are safe to run on every replica: the store hands each timer and each delivery to one of them.

use crate::AppState;
use signoff_domain::DecidedBy;
use signoff_store::{Delivery, DeliveryAttempt, DeliveryState, now};
use signoff_webhooks::{CallbackUrlPolicy, DeliveryOptions, DeliveryResult, WebhookSecret};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How often the timer loop looks for due timers when none were due.
const TIMER_TICK: Duration = Duration::from_millis(200);
/// Timers fired per transaction.
const TIMER_BATCH: u32 = 500;
/// How often the delivery loop looks for due callbacks when none were due.
const DELIVERY_TICK: Duration = Duration::from_millis(250);
/// Callbacks sent at once.
const DELIVERY_CONCURRENCY: usize = 32;

/// Starts both loops; they stop when `shutdown` turns true.
pub fn spawn(state: &AppState, shutdown: watch::Receiver<bool>) {
    tokio::spawn(run_timers(state.clone(), shutdown.clone()));
    if !state.senders.is_empty() {
        let planner = crate::notify::Planner::new(state.policy.clone(), state.senders.channels());
        state.store.set_notification_planner(Arc::new(planner));
        tokio::spawn(crate::notify::run(state.clone(), state.senders.clone(), shutdown.clone()));
        tokio::spawn(crate::digests::run(state.clone(), state.senders.channels(), shutdown.clone()));
    }
    if let Some(settings) = state.checkpoints.clone() {
        tokio::spawn(crate::checkpoints::run(state.clone(), settings, shutdown.clone()));
    }
    tokio::spawn(run_deliveries(state.clone(), shutdown));
}

async fn sleep_or_stop(pause: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

async fn run_timers(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let at = now();
        let fired = match state.store.fire_due_timers(at, TIMER_BATCH).await {
            Ok(changed) => {
                for request in &changed {
                    if let Some(decision) = request.decision.as_ref().filter(|d| d.by == DecidedBy::Timeout) {
                        state.metrics.decided(request);
                        if let Some(deadline) = request.deadline_at {
                            state.metrics.timer_lag(lag_seconds(deadline, decision.at));
                        }
                    }
                    for step in request.escalations.iter().filter(|s| s.fired_at == Some(at)) {
                        state.metrics.timer_lag(lag_seconds(step.due_at, at));
                    }
                }
                changed.len()
            }
            Err(error) => {
                tracing::warn!(%error, "firing timers failed; retrying");
                0
            }
        };
        if fired < TIMER_BATCH as usize && sleep_or_stop(TIMER_TICK, &mut shutdown).await {
            return;
        }
    }
}

fn lag_seconds(due: chrono::DateTime<chrono::Utc>, fired: chrono::DateTime<chrono::Utc>) -> f64 {
    (fired - due).num_microseconds().unwrap_or(0) as f64 / 1e6
}

async fn run_deliveries(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let client = match signoff_webhooks::build_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the callback HTTP client; callbacks will not be delivered");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(DELIVERY_CONCURRENCY));
    let lease = state.callbacks.timeout * 4;
    loop {
        let claimed = match state.store.claim_deliveries(now(), lease, DELIVERY_CONCURRENCY as u32).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming callbacks failed; retrying");
                Vec::new()
            }
        };
        let busy = !claimed.is_empty();
        for delivery in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (state, client) = (state.clone(), client.clone());
            tokio::spawn(async move {
                attempt(&state, &client, delivery).await;
                drop(permit);
            });
        }
        if !busy && sleep_or_stop(DELIVERY_TICK, &mut shutdown).await {
            return;
        }
    }
}

/// Sends one callback and records the attempt and what comes next.
async fn attempt(state: &AppState, client: &reqwest::Client, delivery: Delivery) {
    let started = now();
    let result = match (WebhookSecret::parse(&delivery.secret), signoff_webhooks::Url::parse(&delivery.url)) {
        (Ok(secret), Ok(url)) => {
            let policy = CallbackUrlPolicy { allow_private: state.callbacks.allow_private };
            let options = DeliveryOptions { timeout: state.callbacks.timeout };
            signoff_webhooks::deliver_with_options(
                client,
                &url,
                &secret,
                &delivery.id,
                delivery.body.as_bytes(),
                &policy,
                &options,
            )
            .await
        }
        (Err(error), _) => DeliveryResult::Failed {
            status: None,
            error: format!("the requesting key has no usable webhook secret: {error}"),
            elapsed_ms: 0,
            response_excerpt: String::new(),
        },
        (_, Err(error)) => DeliveryResult::Failed {
            status: None,
            error: format!("invalid callback URL: {error}"),
            elapsed_ms: 0,
            response_excerpt: String::new(),
        },
    };
    let at = now();
    let (state_after, next_attempt_at) = match &result {
        DeliveryResult::Delivered { .. } => (DeliveryState::Delivered, None),
        DeliveryResult::Gone { .. } => (DeliveryState::Gone, None),
        DeliveryResult::Failed { .. } => {
            let age =
                delivery.first_attempt_at.map_or(Duration::ZERO, |first| (at - first).to_std().unwrap_or_default());
            match state.callbacks.retry.next_attempt_after(delivery.attempts + 1, age, &mut rand::rng()) {
                Some(wait) => {
                    let wait = chrono::Duration::microseconds(wait.as_micros().try_into().unwrap_or(i64::MAX));
                    (DeliveryState::Pending, Some(at + wait))
                }
                None => (DeliveryState::Failed, None),
            }
        }
    };
    state.metrics.callback_attempt(match &result {
        DeliveryResult::Delivered { .. } => "delivered",
        DeliveryResult::Gone { .. } => "gone",
        DeliveryResult::Failed { .. } => "failed",
    });
    let record = DeliveryAttempt {
        at: started,
        state: state_after,
        status: result.status(),
        error: result.error().map(String::from),
        elapsed_ms: result.elapsed_ms(),
        next_attempt_at,
    };
    match state.store.record_delivery_attempt(&delivery, record).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(webhook_id = %delivery.id, "the callback's lease ran out during the attempt; another worker retries it")
        }
        // The lease runs out and the callback is tried again: receivers deduplicate by webhook-id.
        Err(error) => tracing::error!(%error, webhook_id = %delivery.id, "cannot record a callback attempt"),
    }
}
