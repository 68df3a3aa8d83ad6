//! Group digests: instead of one message per request, a group's members get one message per channel listing the
//! group's pending requests, every `every` or at wall-clock times in a time zone (see `docs/policy.md`).

use chrono::{DateTime, Duration as Span, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The field summed in a digest when the group names none: `args.amount`.
pub const DEFAULT_TOTAL: &str = "args.amount";

/// The fewest pending requests a digest is sent for when the group names no `min`.
pub const DEFAULT_MIN: u32 = 2;

/// A group's `digest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// When digests are sent.
    pub schedule: DigestSchedule,
    /// The fewest pending requests a digest is sent for; with fewer at a digest time, each request not asked yet is
    /// asked one by one then.
    pub min: u32,
    /// A request whose deadline is nearer than this (at creation, or later while it waits) is asked at once, one by
    /// one (whole seconds in JSON).
    #[serde(default, with = "secs_opt", skip_serializing_if = "Option::is_none")]
    pub urgent_after: Option<Duration>,
    /// The request field summed in the digest, as a path (`args.amount`, `context.cost.eur`); `None`: no total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
}

/// When a group's digests are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DigestSchedule {
    /// Every `every`, counted from the previous digest (the first one `every` after the server first sees the group).
    Every {
        /// Whole seconds in JSON.
        #[serde(with = "signoff_domain::secs")]
        every: Duration,
    },
    /// At each of `times` (increasing) in `timezone`, every day.
    At {
        /// Wall-clock times, in increasing order.
        times: Vec<NaiveTime>,
        /// The IANA time zone the times are in.
        timezone: Tz,
    },
}

impl DigestSchedule {
    /// The first digest time strictly after `after`: for `every`, `after + every`; for `at`, the next listed
    /// wall-clock time (a time that does not exist on a day, in a daylight-saving gap, is skipped that day; one that
    /// happens twice counts once, the earlier).
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            DigestSchedule::Every { every } => {
                after + Span::from_std(*every).unwrap_or(Span::MAX).max(Span::seconds(1))
            }
            DigestSchedule::At { times, timezone } => {
                let today = after.with_timezone(timezone).date_naive();
                for day in 0..=2 {
                    let date = today + Span::days(day);
                    for time in times {
                        let local = match timezone.from_local_datetime(&date.and_time(*time)) {
                            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                            LocalResult::None => continue,
                        };
                        let at = local.with_timezone(&Utc);
                        if at > after {
                            return at;
                        }
                    }
                }
                // Unreachable for a non-empty list (every day has all but gap times); a day later at worst.
                after + Span::days(1)
            }
        }
    }
}

/// Serde for an optional duration as whole seconds.
mod secs_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|secs| secs.map(Duration::from_secs))
    }
}

/// The numeric value at `path` (`args.amount`) in a request's `args` and `context`, if it is a number there.
pub fn field_number(path: &str, args: &serde_json::Value, context: &serde_json::Value) -> Option<f64> {
    let mut parts = path.split('.');
    let mut value = match parts.next()? {
        "args" => args,
        "context" => context,
        _ => return None,
    };
    for part in parts {
        value = value.get(part)?;
    }
    value.as_f64().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn wall_clock_digests_follow_the_time_zone() {
        let schedule = DigestSchedule::At {
            times: vec![NaiveTime::from_hms_opt(9, 0, 0).unwrap(), NaiveTime::from_hms_opt(15, 0, 0).unwrap()],
            timezone: "Europe/Berlin".parse().unwrap(),
        };
        // Winter: Berlin is UTC+1.
        assert_eq!(schedule.next_after(at("2026-01-05T07:00:00Z")), at("2026-01-05T08:00:00Z"));
        assert_eq!(schedule.next_after(at("2026-01-05T08:00:00Z")), at("2026-01-05T14:00:00Z"));
        assert_eq!(schedule.next_after(at("2026-01-05T20:00:00Z")), at("2026-01-06T08:00:00Z"));
        // Summer: UTC+2.
        assert_eq!(schedule.next_after(at("2026-07-01T10:00:00Z")), at("2026-07-01T13:00:00Z"));
    }

    #[test]
    fn every_counts_from_the_instant_given() {
        let schedule = DigestSchedule::Every { every: Duration::from_secs(3600) };
        assert_eq!(schedule.next_after(at("2026-01-05T07:10:00Z")), at("2026-01-05T08:10:00Z"));
    }

    #[test]
    fn totals_read_numbers_at_a_path() {
        let args = serde_json::json!({"amount": 12.5, "nested": {"eur": 3}, "text": "7"});
        let context = serde_json::json!({"cost": 2});
        assert_eq!(field_number("args.amount", &args, &context), Some(12.5));
        assert_eq!(field_number("args.nested.eur", &args, &context), Some(3.0));
        assert_eq!(field_number("context.cost", &args, &context), Some(2.0));
        assert_eq!(field_number("args.text", &args, &context), None);
        assert_eq!(field_number("args.missing", &args, &context), None);
        assert_eq!(field_number("state.x", &args, &context), None);
    }
}
