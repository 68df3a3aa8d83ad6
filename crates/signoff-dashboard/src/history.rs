//! History: decided requests (approved, rejected, expired, cancelled), the newest decision first, filtered by who
//! decided, the outcome, the rule that placed them and the day they were decided on; each links to its request page.

use crate::Dashboard;
use crate::lists::{self, Pager, decider_of, rule_of};
use crate::page::{Chrome, PageError, render};
use crate::session::SignedIn;
use crate::view::Moment;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use signoff_domain::{Request, ReviewVerdict, Reviewable, Status};
use signoff_policy::Policy;
use signoff_store::RequestQuery;

/// The outcomes a decided request can have, in the order the filter offers them.
const OUTCOMES: [Status; 4] = [Status::Approved, Status::Rejected, Status::Expired, Status::Cancelled];

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    person: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    rule: String,
    /// The first day (`YYYY-MM-DD`, UTC) of decisions shown.
    #[serde(default)]
    from: String,
    /// The last day (`YYYY-MM-DD`, UTC) of decisions shown.
    #[serde(default)]
    to: String,
    page: Option<u32>,
}

struct Row {
    id: String,
    title: String,
    action: String,
    status: &'static str,
    decider: String,
    rule: String,
    decided: Option<Moment>,
    note: String,
    /// "confirmed", "flagged", "flagged: a miss of the gate", or empty.
    review: String,
    /// Let through without a person and not reviewed yet: the row links to the request page's Flag form.
    flaggable: bool,
}

/// One person the filter offers: their id and name in the policy.
struct Choice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    chrome: Chrome,
    rows: Vec<Row>,
    people: Vec<Choice>,
    outcomes: Vec<&'static str>,
    rules: Vec<String>,
    params: HistoryParams,
    error: Option<String>,
    pager: Pager,
}

/// `GET /history`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<HistoryParams>,
) -> Result<Response, PageError> {
    let policy = dashboard.app.policy.current().policy.clone();
    let (query, error) = match search(&params) {
        Ok(query) => (Some(query), None),
        Err(error) => (None, Some(error)),
    };
    let page = match query {
        Some(query) => {
            Some(lists::fetch(&dashboard, query, params.page).await.map_err(|e| e.for_person(signed_in.person()))?)
        }
        None => None,
    };
    let filters = [
        ("person", params.person.as_str()),
        ("outcome", params.outcome.as_str()),
        ("rule", params.rule.as_str()),
        ("from", params.from.as_str()),
        ("to", params.to.as_str()),
    ];
    let pager = match &page {
        Some(page) => Pager::new("/history", &filters, page),
        None => Pager { number: 1, previous: None, next: None },
    };
    let rows = page.iter().flat_map(|page| &page.requests).map(|request| row(request, &policy)).collect();
    let view = HistoryPage {
        chrome: Chrome::new(Some(signed_in.person()), "history"),
        rows,
        people: policy.approvers().iter().map(|a| Choice { id: a.id.clone(), name: a.name.clone() }).collect(),
        outcomes: OUTCOMES.iter().map(|s| s.as_str()).collect(),
        rules: policy.rules().iter().map(|r| r.name.clone()).collect(),
        pager,
        params,
        error: error.clone(),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(render(status, &view))
}

/// The store query the filters ask for, or what is wrong with them, in words.
fn search(params: &HistoryParams) -> Result<RequestQuery, String> {
    let statuses = match params.outcome.trim() {
        "" => OUTCOMES.to_vec(),
        text => match Status::parse(text).filter(|s| s.is_final()) {
            Some(status) => vec![status],
            None => return Err(format!("`{text}` is not an outcome: approved, rejected, expired or cancelled.")),
        },
    };
    let (decided_from, decided_before) = days(params.from.trim(), params.to.trim())?;
    let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    Ok(RequestQuery {
        statuses,
        decided_by: given(&params.person),
        rule: given(&params.rule),
        decided_from,
        decided_before,
        ..RequestQuery::default()
    })
}

/// The moments a range of days spans: where it starts, and where it ends (exclusive); `None`: open on that side.
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The moments a range of UTC days spans: from the start of `from` to the end of `to` (either may be empty: open).
fn days(from: &str, to: &str) -> Result<Span, String> {
    let day = |text: &str, name: &str| -> Result<Option<NaiveDate>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("The {name} date `{text}` is not a date written as YYYY-MM-DD."))
    };
    let (from, to) = (day(from, "from")?, day(to, "to")?);
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(format!("The range ends ({to}) before it starts ({from})."));
    }
    let start = |date: NaiveDate| date.and_hms_opt(0, 0, 0).map(|at| at.and_utc());
    Ok((from.and_then(start), to.and_then(|to| to.succ_opt()).and_then(start)))
}

fn row(request: &Request, policy: &Policy) -> Row {
    let decision = request.decision.as_ref();
    Row {
        id: request.id.to_string(),
        title: request.summary.clone().unwrap_or_else(|| request.action.clone()),
        action: request.action.clone(),
        status: request.status.as_str(),
        decider: decider_of(request, policy),
        rule: rule_of(request),
        decided: decision.map(|d| Moment::of(d.at)),
        note: decision
            .map(|d| [d.reason.clone(), d.comment.clone()].into_iter().flatten().collect::<Vec<_>>().join(" — "))
            .unwrap_or_default(),
        review: match &request.review {
            Some(review) if review.verdict == ReviewVerdict::Confirmed => "confirmed".to_string(),
            Some(review) if review.miss => "flagged: a miss of the gate".to_string(),
            Some(_) => "flagged".to_string(),
            None => String::new(),
        },
        flaggable: request.reviewable() == Ok(Reviewable::Miss),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
    }

    #[test]
    fn a_range_of_days_covers_the_last_day_whole() {
        let range = days("2025-03-01", "2025-03-31").unwrap();
        assert_eq!(range, (at("2025-03-01T00:00:00Z"), at("2025-04-01T00:00:00Z")));
        assert_eq!(days("", "2025-03-01").unwrap(), (None, at("2025-03-02T00:00:00Z")));
        assert_eq!(days("", "").unwrap(), (None, None));
        assert_eq!(days("2025-03-02", "2025-03-02").unwrap().1, at("2025-03-03T00:00:00Z"));
    }

    #[test]
    fn bad_dates_and_backwards_ranges_are_refused_in_words() {
        assert_eq!(
            days("03/01/2025", "").unwrap_err(),
            "The from date `03/01/2025` is not a date written as YYYY-MM-DD."
        );
        assert_eq!(
            days("2025-03-02", "2025-03-01").unwrap_err(),
            "The range ends (2025-03-01) before it starts (2025-03-02)."
        );
    }

    #[test]
    fn the_outcome_must_be_a_decided_status() {
        let search = |outcome: &str| search(&HistoryParams { outcome: outcome.into(), ..HistoryParams::default() });
        assert_eq!(search("").unwrap().statuses, OUTCOMES);
        assert_eq!(search("expired").unwrap().statuses, [Status::Expired]);
        assert!(search("pending").unwrap_err().contains("is not an outcome"));
        assert!(search("lost").is_err());
    }
}
