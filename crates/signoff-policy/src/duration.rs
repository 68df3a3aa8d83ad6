//! Policy durations (`90s`, `30m`, `4h`, `2d`, `1w`, `1h30m`) and their serde form (whole seconds).

use std::time::Duration;

pub use signoff_domain::format_duration;

/// Longest duration accepted anywhere in a policy: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses a policy duration: one or more `<digits><unit>` parts, units `w` (7 days), `d`, `h`, `m`, `s`,
/// from largest to smallest, each used at most once (`1w`, `2d`, `4h`, `1h30m`, `90s`).
///
/// The result is never zero and never longer than [`MAX_DURATION`]. The error is a complete
/// sentence fragment suitable for `field: <error>`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let explain = "expected a duration such as `90s`, `30m`, `4h`, `2d` or `1h30m`";
    if t.is_empty() {
        return Err(format!("empty duration; {explain}"));
    }
    let mut total: u64 = 0;
    let mut last_rank = usize::MAX;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration `{t}`; {explain}"));
        }
        let (num, after) = rest.split_at(digits);
        let unit = after.chars().next();
        let (rank, secs) = match unit {
            Some('w') => (4, 604_800u64),
            Some('d') => (3, 86_400),
            Some('h') => (2, 3_600),
            Some('m') => (1, 60),
            Some('s') => (0, 1),
            None => {
                return Err(format!("duration `{t}` has no unit; write e.g. `{num}s` or `{num}m`"));
            }
            Some(other) => {
                return Err(format!("unknown unit `{other}` in duration `{t}`; use `w`, `d`, `h`, `m` or `s`"));
            }
        };
        if rank >= last_rank {
            return Err(format!("invalid duration `{t}`: units must go from largest to smallest, each at most once"));
        }
        last_rank = rank;
        let n: u64 = num.parse().map_err(|_| format!("duration `{t}` is too long"))?;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{t}` is too long"))?;
        rest = &after[1..];
    }
    if total == 0 {
        return Err(format!("duration `{t}` is zero; it must be longer than zero"));
    }
    if total > MAX_DURATION.as_secs() {
        return Err(format!("duration `{t}` is longer than the maximum of 365d"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("4h").unwrap().as_secs(), 14_400);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("1w").unwrap().as_secs(), 604_800);
        assert_eq!(parse_duration("1w2d").unwrap().as_secs(), 777_600);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("1d2h3m4s").unwrap().as_secs(), 93_784);
    }

    #[test]
    fn rejects_garbage_with_precise_messages() {
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_duration("0h0m").unwrap_err().contains("zero"));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse_duration("h").unwrap_err().contains("invalid duration"));
        assert!(parse_duration("30m1h").unwrap_err().contains("largest to smallest"));
        assert!(parse_duration("1h1h").unwrap_err().contains("largest to smallest"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("-1h").unwrap_err().contains("invalid"));
        assert!(parse_duration("999999999999999999999d").unwrap_err().contains("too long"));
        assert!(parse_duration("366d").unwrap_err().contains("maximum"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["90s", "30m", "4h", "2d", "1h30m", "1d4h"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
