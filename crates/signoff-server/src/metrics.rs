//! Prometheus metrics: requests created and decided, the pending gauge, time to decision, callbacks and timer lag.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use signoff_domain::{DecidedBy, Request};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CreatedLabels {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecidedLabels {
    outcome: &'static str,
    rule: String,
    decided_by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    result: &'static str,
}

/// Every metric Signoff exports. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    created: Family<CreatedLabels, Counter>,
    decided: Family<DecidedLabels, Counter>,
    time_to_decision: Histogram,
    callback_attempts: Family<CallbackLabels, Counter>,
    timer_lag: Histogram,
    pending: Gauge,
    waiters: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("signoff");
        let created = Family::<CreatedLabels, Counter>::default();
        registry.register("requests_created", "Approval requests created", created.clone());
        let decided = Family::<DecidedLabels, Counter>::default();
        registry.register("requests_decided", "Requests decided, by outcome, rule and who decided", decided.clone());
        let time_to_decision = Histogram::new(exponential_buckets(0.05, 3.0, 14));
        registry.register(
            "time_to_decision_seconds",
            "Time from a request's creation to its decision",
            time_to_decision.clone(),
        );
        let callback_attempts = Family::<CallbackLabels, Counter>::default();
        registry.register("callback_attempts", "Callback delivery attempts, by result", callback_attempts.clone());
        let timer_lag = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("timer_lag_seconds", "How late stored timers fired after their due time", timer_lag.clone());
        let pending = Gauge::default();
        registry.register("requests_pending", "Requests waiting for a decision", pending.clone());
        let waiters = Gauge::default();
        registry.register("waiters_parked", "Long-poll waiters currently parked", waiters.clone());
        Metrics {
            inner: Arc::new(Inner {
                registry,
                created,
                decided,
                time_to_decision,
                callback_attempts,
                timer_lag,
                pending,
                waiters,
            }),
        }
    }
}

impl Metrics {
    /// Counts a new request, and its decision if policy decided it at once.
    pub fn created(&self, request: &Request) {
        self.inner.created.get_or_create(&CreatedLabels { mode: request.mode.as_str() }).inc();
        self.decided(request);
    }

    /// Counts a decision, if `request` has one.
    pub fn decided(&self, request: &Request) {
        let Some(decision) = &request.decision else { return };
        let (decided_by, rule) = match &decision.by {
            DecidedBy::Human { .. } => ("human", request.policy.as_ref().and_then(|p| p.rule.clone())),
            DecidedBy::Policy { rule } => ("policy", Some(rule.clone())),
            DecidedBy::Timeout => ("timeout", request.policy.as_ref().and_then(|p| p.rule.clone())),
            DecidedBy::Agent { .. } => ("agent", request.policy.as_ref().and_then(|p| p.rule.clone())),
            DecidedBy::Grant { .. } => ("grant", request.policy.as_ref().and_then(|p| p.rule.clone())),
        };
        let labels = DecidedLabels {
            outcome: request.status.as_str(),
            rule: rule.unwrap_or_else(|| "defaults".into()),
            decided_by,
        };
        self.inner.decided.get_or_create(&labels).inc();
        let waited = (decision.at - request.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        self.inner.time_to_decision.observe(waited.max(0.0));
    }

    pub fn callback_attempt(&self, result: &'static str) {
        self.inner.callback_attempts.get_or_create(&CallbackLabels { result }).inc();
    }

    pub fn timer_lag(&self, seconds: f64) {
        self.inner.timer_lag.observe(seconds.max(0.0));
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, pending: u64, waiters: usize) -> String {
        self.inner.pending.set(pending as i64);
        self.inner.waiters.set(waiters as i64);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).is_err() {
            text.clear();
        }
        text
    }
}
