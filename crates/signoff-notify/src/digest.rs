//! What a digest message shows, on every channel that sends digests: a group's pending requests that its addressee
//! may decide, with their count, the sum of the group's `total` field, the age of the oldest, a link to each in the
//! dashboard and a "Review all" link to the dashboard's batch page.

use chrono::{DateTime, Utc};
use signoff_domain::{ApproverId, Request, RequestId};

/// One request in a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestItem {
    pub id: RequestId,
    /// The summary, else the action.
    pub summary: String,
    pub action: String,
    /// The request's value of the group's `total` field, if it has one.
    pub amount: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub deadline_at: Option<DateTime<Utc>>,
}

impl DigestItem {
    /// `request` as a digest line, with its value of `total` (a field path) if it has one.
    pub fn of(request: &Request, amount: Option<f64>) -> DigestItem {
        DigestItem {
            id: request.id,
            summary: request.summary.clone().unwrap_or_else(|| request.action.clone()),
            action: request.action.clone(),
            amount,
            created_at: request.created_at,
            deadline_at: request.deadline_at,
        }
    }
}

/// A digest for one addressee.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestView {
    /// `SIGNOFF_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    pub group: String,
    /// The addressee.
    pub person: Option<ApproverId>,
    /// Oldest first; never empty when sent.
    pub items: Vec<DigestItem>,
    /// The field summed (`args.amount`); `None`: the group shows no total.
    pub total_field: Option<String>,
    /// When the digest is rendered (for the oldest request's age).
    pub now: DateTime<Utc>,
}

impl DigestView {
    /// The dashboard's batch page for the group.
    pub fn review_all_url(&self) -> String {
        format!(
            "{}/batch?group={}",
            self.public_url,
            url::form_urlencoded::byte_serialize(self.group.as_bytes()).collect::<String>()
        )
    }

    /// The dashboard page of one request.
    pub fn request_url(&self, id: RequestId) -> String {
        format!("{}/requests/{id}", self.public_url)
    }

    /// The sum of the items' amounts, when the group shows a total and at least one item has the field.
    pub fn total(&self) -> Option<f64> {
        self.total_field.as_ref()?;
        let amounts: Vec<f64> = self.items.iter().filter_map(|item| item.amount).collect();
        (!amounts.is_empty()).then(|| amounts.iter().sum())
    }

    /// "12 refund requests pending in finance, total 940 (args.amount), oldest 3 h".
    pub fn headline(&self) -> String {
        let count = self.items.len();
        let noun = if count == 1 { "request" } else { "requests" };
        let first_action = self.items.first().map(|item| item.action.as_str());
        let what = match first_action {
            Some(action) if self.items.iter().all(|item| item.action == action) => format!("{action} {noun}"),
            _ => noun.to_string(),
        };
        let mut line = format!("{count} {what} pending in {}", self.group);
        if let (Some(total), Some(field)) = (self.total(), &self.total_field) {
            line.push_str(&format!(", total {} ({field})", format_amount(total)));
        }
        if let Some(oldest) = self.items.iter().map(|item| item.created_at).min() {
            line.push_str(&format!(", oldest {}", format_age(self.now - oldest)));
        }
        line
    }

    /// One line per request: "Refund order 1 — refund — 120 — due 2026-01-05 10:00 UTC".
    pub fn item_line(&self, item: &DigestItem) -> String {
        let mut line = format!("{} — {}", item.summary, item.action);
        if let Some(amount) = item.amount.filter(|_| self.total_field.is_some()) {
            line.push_str(&format!(" — {}", format_amount(amount)));
        }
        if let Some(deadline) = item.deadline_at {
            line.push_str(&format!(" — due {}", deadline.format("%Y-%m-%d %H:%M UTC")));
        }
        line
    }
}

/// An amount without a needless fraction: `940`, `12.5`, `0.33`.
pub fn format_amount(amount: f64) -> String {
    let rounded = (amount * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 { format!("{}", rounded as i64) } else { format!("{rounded:.2}") }
}

/// An age in the largest unit that fits: `45 s`, `12 min`, `3 h`, `2 d`.
pub fn format_age(age: chrono::Duration) -> String {
    let secs = age.num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(action: &str, amount: Option<f64>, age_secs: i64, now: DateTime<Utc>) -> DigestItem {
        DigestItem {
            id: RequestId::new(),
            summary: format!("{action} it"),
            action: action.into(),
            amount,
            created_at: now - chrono::Duration::seconds(age_secs),
            deadline_at: None,
        }
    }

    #[test]
    fn the_headline_counts_sums_and_ages() {
        let now = Utc::now();
        let mut view = DigestView {
            public_url: "https://signoff.example".into(),
            group: "finance ops".into(),
            person: None,
            items: vec![item("refund", Some(120.0), 3 * 3600 + 5, now), item("refund", Some(820.0), 60, now)],
            total_field: Some("args.amount".into()),
            now,
        };
        assert_eq!(view.headline(), "2 refund requests pending in finance ops, total 940 (args.amount), oldest 3 h");
        assert_eq!(view.review_all_url(), "https://signoff.example/batch?group=finance+ops");
        view.items.push(item("wire", None, 10, now));
        view.total_field = None;
        assert_eq!(view.headline(), "3 requests pending in finance ops, oldest 3 h");
        assert_eq!(format_amount(12.5), "12.50");
        assert_eq!(format_amount(0.333), "0.33");
    }
}
