//! The statistics of a history built with the domain's own transitions, against figures computed by hand.

use super::*;
use chrono::TimeZone;
use serde_json::json;
use signoff_domain::{
    ApproverId, Channel, EscalationStep, HumanVerdict, Mode, NewRequest, OnTimeout, Placement, Request, RequestId,
    Requester, Route, Verdict,
};

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
}

fn after(start: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    start + chrono::Duration::milliseconds((seconds * 1000.0) as i64)
}

fn new_request(action: &str, created_at: DateTime<Utc>, placed_by: Verdict) -> Request {
    let mut new = NewRequest::action(action);
    new.args = json!({"amount": 100});
    if matches!(placed_by, Verdict::Review { .. }) {
        new.mode = Mode::Post;
    }
    let requester = Requester { key_id: "k_agent".into(), key_name: "bot".into(), responsible: None };
    let mut request = Request::new(RequestId::new(), new, requester, created_at);
    let placement = Placement {
        version: 1,
        content_hash: "h".into(),
        verdict: placed_by,
        default_timeout: std::time::Duration::from_secs(3600),
    };
    request.place(placement, created_at);
    request
}

fn route(rule: Option<&str>, group: &str) -> Route {
    Route {
        rule: rule.map(String::from),
        group: group.into(),
        approvals: 1,
        allow_edit: true,
        reject_reasons: Vec::new(),
        timeout: std::time::Duration::from_secs(3600),
        on_timeout: OnTimeout::Fail,
        escalate: Vec::new(),
        remind: Vec::new(),
        eval_error: None,
    }
}

fn routed(rule: &str, group: &str, action: &str, created_at: DateTime<Utc>) -> Request {
    new_request(action, created_at, Verdict::Route(route(Some(rule), group)))
}

fn verdict(approve: bool, who: &str) -> HumanVerdict {
    HumanVerdict {
        approve,
        approver_id: ApproverId::parse(who).unwrap(),
        key_id: None,
        channel: Channel::Dashboard,
        comment: None,
        reason: None,
        args: None,
    }
}

fn approve(mut request: Request, who: &str, seconds: f64) -> Request {
    request.apply_human_verdict(verdict(true, who), after(request.created_at, seconds)).unwrap();
    request
}

fn approve_edited(mut request: Request, who: &str, seconds: f64) -> Request {
    let edit = HumanVerdict { args: Some(json!({"amount": 50})), ..verdict(true, who) };
    request.apply_human_verdict(edit, after(request.created_at, seconds)).unwrap();
    request
}

fn reject(mut request: Request, who: &str, seconds: f64, reason: Option<&str>) -> Request {
    let rejection =
        HumanVerdict { comment: Some("no".into()), reason: reason.map(String::from), ..verdict(false, who) };
    request.apply_human_verdict(rejection, after(request.created_at, seconds)).unwrap();
    request
}

/// The history of docs/stats.md's worked example: 15 requests over 2 to 4 November, and two outside the period.
fn history() -> Vec<Request> {
    let reasons = |mut route: Route| {
        route.reject_reasons = vec!["wrong_account".into(), "too_much".into()];
        route
    };
    let wire_check = || reasons(route(Some("wire-check"), "treasury"));
    let mut requests = vec![
        // 2 November
        new_request("refund", at(2, 10, 0), Verdict::Approve { rule: "small".into() }),
        new_request("wire", at(2, 10, 5), Verdict::Deny { rule: "blocked".into(), error: None }),
        approve(routed("refund-large", "finance", "refund", at(2, 11, 0)), "alice", 4.0),
        approve_edited(routed("refund-large", "finance", "refund", at(2, 12, 0)), "bob", 30.0),
        reject(new_request("wire", at(2, 13, 0), Verdict::Route(wire_check())), "alice", 120.0, Some("wrong_account")),
        // 3 November
        reject(new_request("wire", at(3, 9, 0), Verdict::Route(wire_check())), "bob", 60.0, Some("wrong_account")),
        reject(routed("refund-large", "finance", "refund", at(3, 10, 0)), "alice", 10.0, None),
    ];
    let mut expires = routed("refund-large", "finance", "refund", at(3, 11, 0));
    expires.fire_timers(at(3, 12, 0));
    requests.push(expires);
    let escalating = Route {
        timeout: std::time::Duration::from_secs(600),
        on_timeout: OnTimeout::Reject,
        escalate: vec![EscalationStep {
            after: std::time::Duration::from_secs(60),
            to: "directors".into(),
            remind: Vec::new(),
        }],
        ..wire_check()
    };
    let mut times_out = new_request("wire", at(3, 14, 0), Verdict::Route(escalating));
    times_out.fire_timers(at(3, 14, 1));
    times_out.fire_timers(at(3, 14, 10));
    requests.push(times_out);
    requests.push(routed("refund-large", "finance", "refund", at(3, 23, 0)));
    // 4 November
    let mut cancelled = routed("refund-large", "finance", "refund", at(4, 8, 0));
    cancelled.cancel("k_agent", None, at(4, 8, 1)).unwrap();
    requests.push(cancelled);
    let mut question = NewRequest::action("ask");
    question.kind = signoff_domain::Kind::Question;
    question.question = Some("Which account?".into());
    let requester = Requester { key_id: "k_agent".into(), key_name: "bot".into(), responsible: None };
    let mut question = Request::new(RequestId::new(), question, requester, at(4, 9, 0));
    let placement = Placement {
        version: 1,
        content_hash: "h".into(),
        verdict: Verdict::Route(route(None, "finance")),
        default_timeout: std::time::Duration::from_secs(3600),
    };
    question.place(placement, at(4, 9, 0));
    question.answer(ApproverId::parse("carol").unwrap(), Channel::Slack, "ACC-1", at(4, 9, 2)).unwrap();
    requests.push(question);
    let review = |sampled| Verdict::Review { rule: "post-review".into(), group: "audit".into(), sampled };
    requests.push(approve(new_request("deploy", at(4, 10, 0), review(true)), "carol", 9.5));
    requests.push(new_request("deploy", at(4, 11, 0), review(false)));
    let quorum = Route { approvals: 2, ..route(Some("big-refund"), "directors") };
    let quorum = new_request("refund", at(4, 12, 0), Verdict::Route(quorum));
    requests.push(approve(approve(quorum, "alice", 20.0), "bob", 40.0));
    // Outside [1 November, 5 November).
    requests.push(new_request("refund", at(5, 0, 0), Verdict::Approve { rule: "small".into() }));
    requests.push(new_request("refund", Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap(), review(false)));
    requests
}

fn options(by: Option<GroupBy>) -> StatsOptions {
    StatsOptions { by, ..StatsOptions::new(at(1, 0, 0), at(5, 0, 0)) }
}

fn breakdown(report: &StatsReport) -> Vec<(&str, u64)> {
    report.breakdown.iter().map(|b| (b.key.as_str(), b.figures.requests)).collect()
}

fn figures_of<'a>(report: &'a StatsReport, key: &str) -> &'a Figures {
    &report.breakdown.iter().find(|b| b.key == key).unwrap().figures
}

#[test]
fn totals_match_the_hand_computed_figures() {
    let report = compute(&history(), &options(None));
    let t = &report.totals;
    assert_eq!((t.requests, t.questions, t.pending), (15, 1, 1));
    assert_eq!((t.auto_approved, t.auto_denied, t.auto_decided()), (2, 1, 3));
    assert_eq!((t.human_decided, t.approved, t.approved_unchanged, t.edited, t.rejected), (7, 4, 3, 1, 3));
    assert_eq!(t.rejection_reasons, BTreeMap::from([("(none)".to_string(), 1), ("wrong_account".to_string(), 2)]));
    // Seconds to decide, sorted: 4, 9.5, 10, 30, 40, 60, 120.
    assert_eq!(t.time_to_decision, Percentiles { count: 7, p50_s: Some(30.0), p90_s: Some(120.0), p99_s: Some(120.0) });
    assert_eq!((t.expired, t.timed_out, t.escalated), (1, 2, 1));
    assert_eq!((t.fast_approvals, t.cancelled, t.answered, t.sampled_reviews), (2, 1, 1, 1));
    assert_eq!((t.flags, t.misses, t.granted), (0, 0, 0));
    assert_eq!(t.approval_rate, Some(4.0 / 7.0));
    assert_eq!(t.unchanged_rate, Some(3.0 / 7.0));
    assert_eq!(t.edit_rate, Some(1.0 / 7.0));
    assert_eq!(t.flag_rate, Some(0.0));
    assert_eq!(t.fast_approval_rate, Some(0.5));
    assert_eq!(report.fast_under_s, 10);
    assert!(report.breakdown.is_empty() && report.by.is_none());
    // Every approval request ends up in exactly one of these.
    let parts = t.pending + t.auto_decided() + t.human_decided + t.timed_out + t.cancelled;
    assert_eq!(parts, t.requests - t.questions);
}

#[test]
fn every_day_of_the_period_is_listed_with_zeros_for_quiet_days() {
    let report = compute(&history(), &options(None));
    let days: Vec<String> = report.per_day.iter().map(|d| d.day.to_string()).collect();
    assert_eq!(days, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]);
    let quiet = &report.per_day[0].figures;
    assert_eq!(*quiet, Figures::default());
    assert_eq!(quiet.approval_rate, None);
    assert_eq!(quiet.time_to_decision, Percentiles { count: 0, p50_s: None, p90_s: None, p99_s: None });

    let second = &report.per_day[1].figures;
    assert_eq!((second.requests, second.auto_decided(), second.human_decided), (5, 2, 3));
    assert_eq!((second.approved, second.rejected), (2, 1));
    assert_eq!((second.time_to_decision.p50_s, second.time_to_decision.p90_s), (Some(30.0), Some(120.0)));
    let third = &report.per_day[2].figures;
    assert_eq!((third.requests, third.human_decided, third.pending, third.expired, third.timed_out), (5, 2, 1, 1, 2));
    assert_eq!(third.escalated, 1);
    let fourth = &report.per_day[3].figures;
    assert_eq!((fourth.requests, fourth.cancelled, fourth.answered, fourth.human_decided), (5, 1, 1, 2));
    assert_eq!((fourth.auto_approved, fourth.sampled_reviews, fourth.fast_approvals), (1, 1, 1));

    let summed: u64 = report.per_day.iter().map(|d| d.figures.requests).sum();
    assert_eq!(summed, report.totals.requests);
}

#[test]
fn the_days_of_a_period_follow_its_bounds() {
    let noon = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    let day_list = |until| days(noon, until).iter().map(|d| d.to_string()).collect::<Vec<_>>();
    assert_eq!(day_list(at(3, 0, 0)), ["2026-11-01", "2026-11-02"]);
    assert_eq!(day_list(at(3, 0, 0) + chrono::Duration::seconds(1)), ["2026-11-01", "2026-11-02", "2026-11-03"]);
    assert!(day_list(noon).is_empty());
    assert!(day_list(at(1, 0, 0)).is_empty());
}

#[test]
fn by_rule_breaks_down_each_rule_with_its_own_figures() {
    let report = compute(&history(), &options(Some(GroupBy::Rule)));
    assert_eq!(report.by, Some(GroupBy::Rule));
    assert_eq!(
        breakdown(&report),
        [
            ("refund-large", 6),
            ("wire-check", 3),
            ("post-review", 2),
            ("(defaults)", 1),
            ("big-refund", 1),
            ("blocked", 1),
            ("small", 1)
        ]
    );
    let refund = figures_of(&report, "refund-large");
    assert_eq!((refund.human_decided, refund.approved, refund.rejected, refund.expired), (3, 2, 1, 1));
    assert_eq!((refund.pending, refund.cancelled, refund.edited), (1, 1, 1));
    assert_eq!(refund.approval_rate, Some(2.0 / 3.0));
    let wire = figures_of(&report, "wire-check");
    assert_eq!((wire.rejected, wire.timed_out, wire.escalated, wire.approval_rate), (2, 1, 1, Some(0.0)));
    assert_eq!(wire.rejection_reasons, BTreeMap::from([("wrong_account".to_string(), 2)]));
    let review = figures_of(&report, "post-review");
    assert_eq!((review.sampled_reviews, review.auto_approved, review.approved, review.flag_rate), (1, 1, 1, Some(0.0)));
    let question = figures_of(&report, "(defaults)");
    assert_eq!((question.questions, question.answered, question.human_decided), (1, 1, 0));
}

#[test]
fn by_action_group_and_approver() {
    let by_action = compute(&history(), &options(Some(GroupBy::Action)));
    assert_eq!(breakdown(&by_action), [("refund", 8), ("wire", 4), ("deploy", 2), ("ask", 1)]);

    let by_group = compute(&history(), &options(Some(GroupBy::Group)));
    assert_eq!(
        breakdown(&by_group),
        [("finance", 7), ("(no group)", 3), ("directors", 2), ("treasury", 2), ("audit", 1)]
    );
    // The escalated request counts with the group it was escalated to.
    assert_eq!(figures_of(&by_group, "directors").escalated, 1);

    let by_approver = compute(&history(), &options(Some(GroupBy::Approver)));
    assert_eq!(breakdown(&by_approver), [("(no person)", 7), ("alice", 3), ("bob", 3), ("carol", 2)]);
    let carol = figures_of(&by_approver, "carol");
    assert_eq!((carol.answered, carol.approved, carol.fast_approvals), (1, 1, 1));
}

#[test]
fn each_person_s_load_and_share_of_the_decisions() {
    let report = compute(&history(), &options(None));
    let loads: Vec<(&str, u64, u64, u64, u64, u64)> = report
        .approvers
        .iter()
        .map(|l| (l.approver.as_str(), l.decisions, l.approved, l.rejected, l.quorum_approvals, l.answered))
        .collect();
    assert_eq!(loads, [("alice", 3, 1, 2, 1, 0), ("bob", 3, 2, 1, 0, 0), ("carol", 1, 1, 0, 0, 1)]);
    let shares: Vec<f64> = report.approvers.iter().map(|l| l.share).collect();
    assert_eq!(shares, [3.0 / 7.0, 3.0 / 7.0, 1.0 / 7.0]);
    // Alice decided in 4, 120 and 10 seconds.
    assert_eq!(
        report.approvers[0].time_to_decision,
        Percentiles { count: 3, p50_s: Some(10.0), p90_s: Some(120.0), p99_s: Some(120.0) }
    );
}

#[test]
fn very_fast_means_strictly_under_the_threshold() {
    let mut wider = options(None);
    wider.fast_under = std::time::Duration::from_secs(30);
    // 4 s and 9.5 s; 30 s is not under 30 s.
    assert_eq!(compute(&history(), &wider).totals.fast_approvals, 2);
    wider.fast_under = std::time::Duration::from_secs(31);
    let report = compute(&history(), &wider);
    assert_eq!((report.totals.fast_approvals, report.fast_under_s), (3, 31));
    wider.fast_under = std::time::Duration::from_secs(4);
    assert_eq!(compute(&history(), &wider).totals.fast_approvals, 0);
}

#[test]
fn percentiles_by_nearest_rank() {
    let mut hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
    let p = percentiles(&mut hundred);
    assert_eq!((p.count, p.p50_s, p.p90_s, p.p99_s), (100, Some(50.0), Some(90.0), Some(99.0)));
    let p = percentiles(&mut [3.0, 1.0, 4.0, 2.0]);
    assert_eq!((p.p50_s, p.p90_s, p.p99_s), (Some(2.0), Some(4.0), Some(4.0)));
    let p = percentiles(&mut [7.5]);
    assert_eq!((p.count, p.p50_s, p.p90_s, p.p99_s), (1, Some(7.5), Some(7.5), Some(7.5)));
    let mut ten: Vec<f64> = (1..=10).map(f64::from).collect();
    let p = percentiles(&mut ten);
    assert_eq!((p.p50_s, p.p90_s, p.p99_s), (Some(5.0), Some(9.0), Some(10.0)));
    assert_eq!(percentiles(&mut []), Percentiles::default());
}

#[test]
fn rates_are_absent_without_a_denominator() {
    assert_eq!(rate(0, 0), None);
    assert_eq!(rate(0, 4), Some(0.0));
    assert_eq!(rate(3, 4), Some(0.75));
}

#[test]
fn group_by_parses_its_snake_case_names_only() {
    for by in GroupBy::ALL {
        assert_eq!(by.as_str().parse::<GroupBy>(), Ok(by));
        assert_eq!(serde_json::to_value(by).unwrap(), json!(by.as_str()));
    }
    let error = "Rule".parse::<GroupBy>().unwrap_err();
    assert_eq!(error, "by: expected one of rule, action, group, approver; found `Rule`");
    assert!("".parse::<GroupBy>().is_err());
}

#[test]
fn the_report_serializes_with_the_documented_field_names() {
    let report = compute(&history(), &options(Some(GroupBy::Rule)));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["by"], "rule");
    assert_eq!(json["per_day"][0]["day"], "2026-11-01");
    assert_eq!(json["totals"]["time_to_decision"]["p50_s"], 30.0);
    assert_eq!(json["totals"]["rejection_reasons"]["wrong_account"], 2);
    assert_eq!(json["breakdown"][0]["key"], "refund-large");
    let back: StatsReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn figures_read_as_people_write_them() {
    assert_eq!(format_rate(Some(4.0 / 7.0)), "57.1 %");
    assert_eq!(format_rate(Some(1.0)), "100.0 %");
    assert_eq!(format_rate(None), "-");
    assert_eq!(format_seconds(Some(4.0)), "4 s");
    assert_eq!(format_seconds(Some(9.5)), "9.5 s");
    assert_eq!(format_seconds(Some(150.0)), "2.5 min");
    assert_eq!(format_seconds(Some(7_200.0)), "2 h");
    assert_eq!(format_seconds(Some(129_600.0)), "1.5 d");
    assert_eq!(format_seconds(None), "-");
}

fn reviewer(who: &str) -> signoff_domain::Reviewer {
    signoff_domain::Reviewer { approver_id: ApproverId::parse(who).unwrap(), key_id: None, channel: Channel::Dashboard }
}

fn flag(mut request: Request, who: &str, seconds: f64) -> Request {
    let input = signoff_domain::FlagInput { reason: "wrong_amount".into(), comment: None, undo: true };
    request.flag(reviewer(who), input, after(request.created_at, seconds)).unwrap();
    request
}

#[test]
fn flags_misses_and_standing_grants_are_counted_apart() {
    let start = at(3, 9, 0);
    let sampled = || Verdict::Review { rule: "removal".into(), group: "moderators".into(), sampled: true };
    let flagged_review = flag(new_request("remove_comment", start, sampled()), "mo", 30.0);
    let mut confirmed_review = new_request("remove_comment", start, sampled());
    confirmed_review.confirm(reviewer("mo"), None, after(start, 40.0)).unwrap();
    let auto = || Verdict::Approve { rule: "small".into() };
    let missed = flag(new_request("refund", start, auto()), "dana", 600.0);
    let let_through = new_request("refund", start, auto());
    let grant = signoff_domain::Grant {
        id: "grt_1".into(),
        rule: "refunds".into(),
        key_id: "k_agent".into(),
        scope: Vec::new(),
        approver_id: ApproverId::parse("dana").unwrap(),
        channel: Channel::Dashboard,
        request_id: RequestId::new(),
        created_at: start,
        expires_at: after(start, 3600.0),
        revoked_at: None,
        revoked_by: None,
        uses: 0,
    };
    let mut granted = routed("refunds", "finance", "refund", start);
    granted.approve_by_grant(&grant, start);
    let granted_then_missed = flag(granted.clone(), "carl", 60.0);

    let requests = [flagged_review, confirmed_review, missed, let_through, granted, granted_then_missed];
    let totals = compute(&requests, &options(None)).totals;
    assert_eq!((totals.sampled_reviews, totals.flags, totals.misses, totals.granted), (2, 1, 2, 2));
    assert_eq!(totals.flag_rate, Some(0.5));
    // A grant's approval is neither policy's nor a person's verdict on that request.
    assert_eq!((totals.auto_approved, totals.human_decided), (2, 2));
    assert_eq!(
        totals.pending + totals.auto_approved + totals.auto_denied + totals.granted + totals.human_decided,
        totals.requests
    );
}
