//! Advice: which gates to relax or tighten, found in a period's statistics, each finding with its evidence and, when
//! it changes policy, a draft with its line diff and its replay over the same requests.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use signoff_domain::Request;
use signoff_policy::draft::{self, NewRule};
use signoff_policy::line_diff::unified;
use signoff_policy::{Decision, Policy, ReplayRecord, Rule, RuleAction, replay};
use signoff_wire::advice::{Draft, Evidence, Finding, FindingKind, ReasonShare, ReplayChange, ReplaySummary};

use crate::calibration::calibrate;
use crate::stats::{Figures, GroupBy, NO_GROUP, NO_REASON, StatsOptions, compute};

/// What counts as enough evidence, and where each finding starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AdviceOptions {
    /// Requests created at or after this...
    pub since: DateTime<Utc>,
    /// ...and before this.
    pub until: DateTime<Utc>,
    /// Human decisions a rule needs before it gets findings (and the period before it gets an `add_tier` one).
    pub min_decisions: u64,
    /// `relax_auto_approve` when at least this share of a rule's human decisions approved unchanged.
    pub unchanged_target: f64,
    /// `tighten_check_before_asking` when at least this share of a rule's human decisions rejected.
    pub reject_high: f64,
    /// `add_tier` when one group has at least this share of all human decisions.
    pub group_share_high: f64,
    /// `confidence_threshold`: the unchanged approval rate above the threshold.
    pub threshold_target: f64,
    /// `gate_again` when at least this share of a rule's sampled reviews were flagged.
    pub flag_high: f64,
}

impl AdviceOptions {
    /// The defaults over `[since, until)`: 20 decisions, 98 % unchanged, 30 % rejected, 80 % of the load, a 99 %
    /// threshold target, 10 % flagged.
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> AdviceOptions {
        AdviceOptions {
            since,
            until,
            min_decisions: 20,
            unchanged_target: 0.98,
            reject_high: 0.3,
            group_share_high: 0.8,
            threshold_target: 0.99,
            flag_high: 0.1,
        }
    }
}

/// The findings for `policy` (the version in force) over the `requests` created in `[options.since,
/// options.until)` (others are ignored): per rule with at least `min_decisions` human decisions, in rule order, then
/// per group.
pub fn advise(policy: &Policy, requests: &[Request], options: &AdviceOptions) -> Vec<Finding> {
    let in_period: Vec<&Request> =
        requests.iter().filter(|r| options.since <= r.created_at && r.created_at < options.until).collect();
    let records: Vec<_> = in_period.iter().filter_map(|r| ReplayRecord::with_stored_verdict(r)).collect();
    let stats_of =
        |by| compute(requests, &StatsOptions { by: Some(by), ..StatsOptions::new(options.since, options.until) });
    let by_rule = stats_of(GroupBy::Rule);
    let advisor = Advisor { policy, options, records: &records };

    let mut findings = Vec::new();
    for rule in policy.rules() {
        let Some(figures) = by_rule.breakdown.iter().find(|b| b.key == rule.name).map(|b| &b.figures) else {
            continue;
        };
        findings.extend(advisor.review_findings(rule, figures));
        if figures.human_decided < options.min_decisions {
            continue;
        }
        findings.extend(advisor.relax(rule, figures));
        let of_rule = in_period.iter().copied().filter(|r| {
            r.policy.as_ref().is_some_and(|p| p.error.is_none() && p.rule.as_deref() == Some(rule.name.as_str()))
        });
        findings.extend(advisor.threshold(rule, figures, of_rule));
        findings.extend(advisor.tighten(rule, figures));
    }

    let by_group = stats_of(GroupBy::Group);
    let all = by_group.totals.human_decided;
    if all >= options.min_decisions {
        for group in by_group.breakdown.iter().filter(|b| b.key != NO_GROUP) {
            let share = group.figures.human_decided as f64 / all as f64;
            if share >= options.group_share_high {
                let message = format!(
                    "group `{}` decides {} of all requests decided by a person ({} of {all}) — consider a junior tier \
                     that decides the routine ones first",
                    group.key,
                    percent(share),
                    group.figures.human_decided
                );
                let evidence =
                    Evidence { figures: group.figures.clone(), top_reason: None, share_of_decisions: Some(share) };
                findings.push(finding(policy, FindingKind::AddTier, None, Some(&group.key), message, evidence, None));
            }
        }
    }
    findings
}

struct Advisor<'a> {
    policy: &'a Policy,
    options: &'a AdviceOptions,
    records: &'a [(ReplayRecord, signoff_policy::Verdict)],
}

impl Advisor<'_> {
    /// People approve nearly everything unchanged: let policy approve it.
    fn relax(&self, rule: &Rule, figures: &Figures) -> Option<Finding> {
        let unchanged = figures.unchanged_rate?;
        if !matches!(rule.action, RuleAction::Route(_)) || unchanged < self.options.unchanged_target {
            return None;
        }
        let source = draft::approve_rule(self.policy.source(), &rule.name).ok()?;
        let message = format!(
            "rule `{}`: {} requests, {} approved unchanged, median {} to decide — consider auto-approve; to keep a \
             sample reviewed after the fact, have the agent report these actions in `mode: post` under a `review` \
             rule",
            rule.name,
            figures.requests,
            percent(unchanged),
            seconds(figures.time_to_decision.p50_s),
        );
        let evidence = Evidence { figures: figures.clone(), top_reason: None, share_of_decisions: None };
        let draft = self.draft(source)?;
        Some(finding(
            self.policy,
            FindingKind::RelaxAutoApprove,
            Some(&rule.name),
            None,
            message,
            evidence,
            Some(draft),
        ))
    }

    /// Above some confidence, people approve unchanged nearly always: approve those by policy.
    fn threshold<'r>(
        &self,
        rule: &Rule,
        figures: &Figures,
        requests: impl Iterator<Item = &'r Request>,
    ) -> Option<Finding> {
        if !matches!(rule.action, RuleAction::Route(_)) {
            return None;
        }
        let calibration = calibrate(requests, self.options.threshold_target, self.options.min_decisions)?;
        let threshold = calibration.threshold.clone()?;
        let x = threshold.confidence;
        let when = match &rule.when {
            Some(when) => format!("({}) && confidence != null && confidence >= {x:?}", when.trim()),
            None => format!("confidence != null && confidence >= {x:?}"),
        };
        let new_rule = NewRule {
            name: draft::unused_rule_name(self.policy, &format!("{}-confident", rule.name)),
            when: Some(when),
            decide: Decision::Approve,
        };
        let source = draft::insert_rule_before(self.policy.source(), &rule.name, &new_rule).ok()?;
        let message = format!(
            "rule `{}`: of the {} requests with confidence ≥ {x} that people decided, {} were approved unchanged (95 % \
             interval {}–{}) — consider auto-approving those",
            rule.name,
            threshold.human_decided,
            percent(threshold.unchanged_rate),
            percent(threshold.wilson_low),
            percent(threshold.wilson_high),
        );
        let evidence = Evidence { figures: figures.clone(), top_reason: None, share_of_decisions: None };
        let draft = self.draft(source)?;
        let mut found = finding(
            self.policy,
            FindingKind::ConfidenceThreshold,
            Some(&rule.name),
            None,
            message,
            evidence,
            Some(draft),
        );
        found.calibration = Some(calibration);
        Some(found)
    }

    /// Many rejections, mostly for one reason: the agent should check before asking.
    fn tighten(&self, rule: &Rule, figures: &Figures) -> Option<Finding> {
        let rejected = figures.rejected as f64 / figures.human_decided as f64;
        if figures.human_decided == 0 || rejected < self.options.reject_high {
            return None;
        }
        let (reason, count) = figures
            .rejection_reasons
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(reason, count)| (reason.clone(), *count))?;
        let share = count as f64 / figures.human_decided as f64;
        let because = if reason == NO_REASON {
            format!("{} rejected without a reason", percent(share))
        } else {
            format!("{} rejected with reason `{reason}`", percent(share))
        };
        let message = format!(
            "rule `{}`: {} of {} decisions rejected, {because} — the agent needs a check before asking",
            rule.name,
            percent(rejected),
            figures.human_decided,
        );
        let evidence = Evidence {
            figures: figures.clone(),
            top_reason: Some(ReasonShare { reason, count, share }),
            share_of_decisions: None,
        };
        Some(finding(
            self.policy,
            FindingKind::TightenCheckBeforeAsking,
            Some(&rule.name),
            None,
            message,
            evidence,
            None,
        ))
    }

    /// Flags on sampled reviews and misses of the gate (`Request.review`, counted by the statistics).
    fn review_findings(&self, rule: &Rule, figures: &Figures) -> Vec<Finding> {
        let mut found = Vec::new();
        let evidence = || Evidence { figures: figures.clone(), top_reason: None, share_of_decisions: None };
        if let Some(rate) = figures.flag_rate
            && figures.sampled_reviews >= self.options.min_decisions
            && rate >= self.options.flag_high
        {
            let message = format!(
                "rule `{}`: {} of {} sampled reviews flagged — consider asking people before acting again",
                rule.name,
                percent(rate),
                figures.sampled_reviews
            );
            found.push(finding(self.policy, FindingKind::GateAgain, Some(&rule.name), None, message, evidence(), None));
        }
        if figures.misses > 0 {
            let message = format!(
                "rule `{}`: {} action{} it let through flagged as a miss — consider sampling more of them for review",
                rule.name,
                figures.misses,
                if figures.misses == 1 { "" } else { "s" }
            );
            found.push(finding(
                self.policy,
                FindingKind::SampleMore,
                Some(&rule.name),
                None,
                message,
                evidence(),
                None,
            ));
        }
        found
    }

    /// The draft with its diff and its replay over the period's requests.
    fn draft(&self, source: String) -> Option<Draft> {
        let policy = Policy::parse(&source).ok()?;
        let report = replay(&policy, self.records.iter().cloned());
        let transitions = report
            .transitions
            .into_iter()
            .map(|t| ReplayChange { from: t.from, to: t.to, count: t.count as u64, examples: t.examples })
            .collect();
        let replay = ReplaySummary {
            total: report.total as u64,
            changed: report.changed as u64,
            draft_errors: report.draft_errors as u64,
            transitions,
        };
        Some(Draft { diff: unified(self.policy.source(), &source), source, replay })
    }
}

/// A finding with its id: the first 8 hex digits of the policy's hash (so a finding about another version is told
/// apart from an unknown one), then 16 of the hash of its kind, subject and draft.
fn finding(
    policy: &Policy,
    kind: FindingKind,
    rule: Option<&str>,
    group: Option<&str>,
    message: String,
    evidence: Evidence,
    draft: Option<Draft>,
) -> Finding {
    let mut hash = Sha256::new();
    for part in [kind.as_str(), rule.unwrap_or(""), group.unwrap_or(""), draft.as_ref().map_or("", |d| &d.source)] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let id = format!("{}-{}", &policy.content_hash()[..8], &hex::encode(hash.finalize())[..16]);
    Finding {
        id,
        kind,
        rule: rule.map(String::from),
        group: group.map(String::from),
        message,
        evidence,
        calibration: None,
        draft,
    }
}

/// The policy a finding id was made for: its first 8 hex digits of the policy's content hash.
pub fn policy_of_finding(id: &str) -> Option<&str> {
    id.split_once('-').map(|(policy, _)| policy).filter(|p| p.len() == 8)
}

/// `98.5 %`.
pub fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// `6 s`, `4.5 min`, `3.2 h`; `-` when unknown.
fn seconds(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagged_reviews_and_misses_get_review_findings() {
        let policy = Policy::parse(
            "version: 1\napprovers:\n  - { id: dana, groups: [mods] }\ngroups:\n  mods: { notify: [dashboard] }\n\
             rules:\n  - name: removal\n    review: { sample: 0.1, group: mods }\n",
        )
        .unwrap();
        let now = Utc::now();
        let options = AdviceOptions::new(now, now);
        let advisor = Advisor { policy: &policy, options: &options, records: &[] };
        let rule = &policy.rules()[0];
        let flagged = Figures { sampled_reviews: 40, flags: 8, flag_rate: Some(0.2), misses: 2, ..Figures::default() };
        let found = advisor.review_findings(rule, &flagged);
        let kinds: Vec<FindingKind> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::GateAgain, FindingKind::SampleMore]);
        assert_eq!(
            found[0].message,
            "rule `removal`: 20.0 % of 40 sampled reviews flagged — consider asking people before acting again"
        );
        assert_eq!(
            found[1].message,
            "rule `removal`: 2 actions it let through flagged as a miss — consider sampling more of them for review"
        );
        let calm = Figures { sampled_reviews: 40, flags: 3, flag_rate: Some(0.075), ..Figures::default() };
        assert!(advisor.review_findings(rule, &calm).is_empty());
        let few = Figures { sampled_reviews: 5, flags: 5, flag_rate: Some(1.0), ..Figures::default() };
        assert!(advisor.review_findings(rule, &few).is_empty(), "too few reviews to say");
    }

    #[test]
    fn ids_name_the_policy_they_were_made_for() {
        let policy = Policy::builtin_default();
        let evidence = Evidence { figures: Figures::default(), top_reason: None, share_of_decisions: None };
        let f = finding(&policy, FindingKind::AddTier, None, Some("everyone"), "m".into(), evidence.clone(), None);
        assert_eq!(policy_of_finding(&f.id), Some(&policy.content_hash()[..8]));
        assert_eq!(f.id.len(), 8 + 1 + 16);
        let again =
            finding(&policy, FindingKind::AddTier, None, Some("everyone"), "other words".into(), evidence, None);
        assert_eq!(f.id, again.id, "the message is not part of the id");
        assert_eq!(policy_of_finding("nodash"), None);
    }
}
