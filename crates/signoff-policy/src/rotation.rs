//! On-call rotations: which member of a group's rotation is on call at an instant, since when, until when, and who
//! takes over next.
//!
//! Two schedules (see `docs/policy.md`):
//! - [`Schedule::Fixed`]: shifts of one fixed length from an instant (`every: 1w`, `starts: 2026-01-05T09:00:00Z`);
//! - [`Schedule::Local`]: shifts of whole days handed over at a wall-clock time in a time zone (`handover: "09:00"`,
//!   `time_zone: Europe/Berlin`, `starts: 2026-01-05`, `every: 1d`), so the hand-over follows daylight-saving time.
//!
//! Shifts go round the members in order, the first shift (from `starts`) to the first member; before `starts` the
//! rotation runs backwards the same way, so every instant has exactly one person on call.

use chrono::{DateTime, Duration as Span, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A group's on-call rotation: its members, in order, and when shifts change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Approver ids, in the order they take shifts; each a member of the group.
    pub members: Vec<String>,
    /// When shifts change.
    pub schedule: Schedule,
}

/// When a rotation's shifts change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Shifts of `every`, the first starting at `starts`.
    Fixed {
        /// When the first member's first shift starts.
        starts: DateTime<Utc>,
        /// The length of a shift (whole seconds in JSON).
        #[serde(with = "signoff_domain::secs")]
        every: Duration,
    },
    /// Shifts of `days` days, handed over at `handover` in `time_zone`; the first starts on `starts`.
    Local {
        /// The day the first member's first shift starts (at `handover`).
        starts: NaiveDate,
        /// The wall-clock time of each hand-over.
        handover: NaiveTime,
        /// The IANA time zone the hand-over time is in.
        time_zone: Tz,
        /// Days in a shift.
        days: u32,
    },
}

/// Who is on call at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCall<'r> {
    /// The approver on call.
    pub person: &'r str,
    /// When their shift started.
    pub since: DateTime<Utc>,
    /// When it ends: the next hand-over.
    pub until: DateTime<Utc>,
    /// Who takes over at `until`.
    pub next: &'r str,
}

impl Rotation {
    /// Who is on call at `at`.
    pub fn on_call(&self, at: DateTime<Utc>) -> OnCall<'_> {
        let (shift, since, until) = self.schedule.shift_at(at);
        let count = self.members.len() as i64;
        let person = |shift: i64| self.members[shift.rem_euclid(count) as usize].as_str();
        OnCall { person: person(shift), since, until, next: person(shift + 1) }
    }
}

impl Schedule {
    /// The number of the shift that holds `at` (0 from `starts`, negative before it), its start and its end.
    fn shift_at(&self, at: DateTime<Utc>) -> (i64, DateTime<Utc>, DateTime<Utc>) {
        match self {
            Schedule::Fixed { starts, every } => {
                let every = Span::from_std(*every).unwrap_or(Span::MAX).max(Span::seconds(1));
                let shift = (at - *starts).num_seconds().div_euclid(every.num_seconds());
                let since = *starts + Span::seconds(shift.saturating_mul(every.num_seconds()));
                (shift, since, since + every)
            }
            Schedule::Local { starts, handover, time_zone, days } => {
                let days = i64::from((*days).max(1));
                let today = at.with_timezone(time_zone).date_naive();
                // The day of the latest hand-over at or before `at`: today's, unless it is still ahead.
                let day = if at >= handover_at(today, *handover, *time_zone) { today } else { today - Span::days(1) };
                let shift = (day - *starts).num_days().div_euclid(days);
                let first_day = *starts + Span::days(shift * days);
                let since = handover_at(first_day, *handover, *time_zone);
                let until = handover_at(first_day + Span::days(days), *handover, *time_zone);
                (shift, since, until)
            }
        }
    }
}

/// The instant of the hand-over time on `day` in `zone`. A time repeated when clocks go back is its first
/// occurrence; a time skipped when clocks go forward is the first instant after the gap.
fn handover_at(day: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let mut local = day.and_time(time);
    loop {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => return instant.with_timezone(&Utc),
            // Inside a gap, which ends on a whole minute (hand-over times are whole minutes).
            LocalResult::None => local += Span::minutes(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn weekly() -> Rotation {
        Rotation {
            members: vec!["carl".into(), "cleo".into()],
            schedule: Schedule::Fixed { starts: at("2026-01-05T09:00:00Z"), every: Duration::from_secs(7 * 86400) },
        }
    }

    #[test]
    fn fixed_shifts_go_round_the_members_and_hand_over_at_the_exact_second() {
        let rotation = weekly();
        let first = rotation.on_call(at("2026-01-05T09:00:00Z"));
        assert_eq!((first.person, first.next), ("carl", "cleo"));
        assert_eq!((first.since, first.until), (at("2026-01-05T09:00:00Z"), at("2026-01-12T09:00:00Z")));
        assert_eq!(rotation.on_call(at("2026-01-12T08:59:59Z")).person, "carl");
        assert_eq!(rotation.on_call(at("2026-01-12T09:00:00Z")).person, "cleo");
        assert_eq!(rotation.on_call(at("2026-01-19T09:00:00Z")).person, "carl");
        // Before the first shift the rotation runs backwards: the week before belongs to cleo.
        let before = rotation.on_call(at("2026-01-05T08:59:59Z"));
        assert_eq!((before.person, before.since), ("cleo", at("2025-12-29T09:00:00Z")));
    }

    fn daily_in(zone: &str, members: &[&str]) -> Rotation {
        Rotation {
            members: members.iter().map(|m| m.to_string()).collect(),
            schedule: Schedule::Local {
                starts: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                handover: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                time_zone: zone.parse().unwrap(),
                days: 1,
            },
        }
    }

    #[test]
    fn a_local_hand_over_follows_daylight_saving_time() {
        // New York moves from EST (UTC-5) to EDT (UTC-4) on 2026-03-08: 09:00 local is 14:00 UTC before, 13:00 after.
        let rotation = daily_in("America/New_York", &["ann", "bob", "cat"]);
        let saturday = rotation.on_call(at("2026-03-07T14:00:00Z"));
        assert_eq!((saturday.since, saturday.until), (at("2026-03-07T14:00:00Z"), at("2026-03-08T13:00:00Z")));
        assert_eq!(rotation.on_call(at("2026-03-08T12:59:59Z")).person, saturday.person);
        let sunday = rotation.on_call(at("2026-03-08T13:00:00Z"));
        assert_eq!((sunday.person, sunday.since), (saturday.next, at("2026-03-08T13:00:00Z")));
        assert_eq!(sunday.until, at("2026-03-09T13:00:00Z"), "a day of 23 hours, then days of 24");
        // From 2026-03-01 (ann): the 7th is the 7th shift (ann, bob, cat, ann, bob, cat, ann), the 8th bob's.
        assert_eq!((saturday.person, sunday.person), ("ann", "bob"));
        // Back to EST on 2026-11-01: the hand-over is at 14:00 UTC again.
        let november = rotation.on_call(at("2026-11-01T13:30:00Z"));
        assert_eq!(november.until, at("2026-11-01T14:00:00Z"));
    }

    #[test]
    fn a_hand_over_time_skipped_or_repeated_by_the_clocks_is_well_defined() {
        // Berlin skips 02:00-03:00 on 2026-03-29 and repeats 02:00-03:00 on 2026-10-25.
        let mut rotation = daily_in("Europe/Berlin", &["ann", "bob"]);
        if let Schedule::Local { handover, .. } = &mut rotation.schedule {
            *handover = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        }
        let spring = rotation.on_call(at("2026-03-29T12:00:00Z"));
        assert_eq!(spring.since, at("2026-03-29T01:00:00Z"), "02:30 does not exist: the hand-over is at 03:00 CEST");
        let autumn = rotation.on_call(at("2026-10-25T12:00:00Z"));
        assert_eq!(autumn.since, at("2026-10-25T00:30:00Z"), "02:30 happens twice: the first one (CEST)");
    }

    #[test]
    fn weekly_local_shifts_hand_over_on_the_starting_weekday() {
        let mut rotation = daily_in("Europe/London", &["ann", "bob"]);
        if let Schedule::Local { days, starts, .. } = &mut rotation.schedule {
            *days = 7;
            *starts = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(); // a Monday
        }
        let now = rotation.on_call(at("2026-01-14T10:00:00Z"));
        assert_eq!((now.person, now.since, now.until), ("bob", at("2026-01-12T09:00:00Z"), at("2026-01-19T09:00:00Z")));
    }

    #[test]
    fn a_rotation_round_trips_through_json() {
        for rotation in [weekly(), daily_in("Asia/Kolkata", &["ann"])] {
            let json = serde_json::to_value(&rotation).unwrap();
            assert_eq!(serde_json::from_value::<Rotation>(json.clone()).unwrap(), rotation, "{json}");
        }
    }
}
