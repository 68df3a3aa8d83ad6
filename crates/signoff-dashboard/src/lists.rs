//! What the Expired, Review and History pages share: one page of a store query, links to the pages before and after
//! it with the same filters, and how a request's rule and decider read in a list.

use crate::Dashboard;
use crate::page::PageError;
use crate::view::encode;
use signoff_domain::{DecidedBy, Request};
use signoff_policy::Policy;
use signoff_store::RequestQuery;

/// Rows per page.
pub const PAGE_SIZE: u32 = 25;

/// One page of requests, and whether another follows.
pub struct Page {
    pub requests: Vec<Request>,
    pub number: u32,
    pub more: bool,
}

/// Page `number` (from 1) of `query`: one row more than a page is asked for, to know whether a next page exists.
pub async fn fetch(dashboard: &Dashboard, query: RequestQuery, number: Option<u32>) -> Result<Page, PageError> {
    let number = number.unwrap_or(1).max(1);
    let query = RequestQuery { offset: (number - 1).saturating_mul(PAGE_SIZE), limit: PAGE_SIZE + 1, ..query };
    let mut requests = dashboard.app.store.find_requests(query).await?;
    let more = requests.len() > PAGE_SIZE as usize;
    requests.truncate(PAGE_SIZE as usize);
    Ok(Page { requests, number, more })
}

/// The links to the pages before and after `page`, at `path` with the non-empty `filters`.
pub struct Pager {
    pub number: u32,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new(path: &str, filters: &[(&str, &str)], page: &Page) -> Pager {
        let link = |to: u32| {
            let mut query: Vec<String> = filters
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| format!("{name}={}", encode(value)))
                .collect();
            query.push(format!("page={to}"));
            format!("{path}?{}", query.join("&"))
        };
        Pager {
            number: page.number,
            previous: (page.number > 1).then(|| link(page.number - 1)),
            next: page.more.then(|| link(page.number + 1)),
        }
    }
}

/// The rule that placed a request, as a list shows it.
pub fn rule_of(request: &Request) -> String {
    match request.policy.as_ref().and_then(|p| p.rule.as_deref()) {
        Some(rule) => rule.to_string(),
        None => "defaults".to_string(),
    }
}

/// Who or what made a request's decision, with people named as the policy names them.
pub fn decider_of(request: &Request, policy: &Policy) -> String {
    match request.decision.as_ref().map(|d| &d.by) {
        Some(DecidedBy::Human { approver_id, channel }) => {
            let name = policy.approver(approver_id.as_str()).map(|a| a.name.as_str()).unwrap_or(approver_id.as_str());
            format!("{name} via {channel}")
        }
        Some(DecidedBy::Policy { rule }) => format!("policy rule `{rule}`"),
        Some(DecidedBy::Timeout) => "the deadline".to_string(),
        Some(DecidedBy::Agent { .. }) => "the agent".to_string(),
        Some(DecidedBy::Grant { grant_id, approver_id }) => {
            let name = policy.approver(approver_id.as_str()).map(|a| a.name.as_str()).unwrap_or(approver_id.as_str());
            format!("standing grant {grant_id} of {name}")
        }
        None => "no one yet".to_string(),
    }
}
