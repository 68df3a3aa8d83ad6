//! Times as the API and the stores write them: RFC 3339 in UTC, exactly as chrono's `Serialize` writes them
//! (`2026-12-01T23:22:47.926078Z`: 0, 3, 6 or 9 fractional digits, whichever is shortest without loss), formatted
//! by hand because chrono's formatter took a fifth of the time of serialising a request.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "crate::time::rfc3339")]` for a `DateTime<Utc>`.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = [0u8; 30];
    match format(at, &mut text) {
        Some(len) => serializer.serialize_str(std::str::from_utf8(&text[..len]).expect("ASCII digits")),
        None => serde::Serialize::serialize(at, serializer),
    }
}

/// `#[serde(serialize_with = "crate::time::rfc3339_opt")]` for an `Option<DateTime<Utc>>`.
pub fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `at` into `out`; `None` for what chrono writes differently (years outside 0..=9999, leap seconds).
fn format(at: &DateTime<Utc>, out: &mut [u8; 30]) -> Option<usize> {
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let fields = [
        (year as u32, 4, b'-'),
        (at.month(), 2, b'-'),
        (at.day(), 2, b'T'),
        (at.hour(), 2, b':'),
        (at.minute(), 2, b':'),
    ];
    let mut len = 0;
    for (value, width, separator) in fields {
        len = put_digits(out, len, value, width);
        out[len] = separator;
        len += 1;
    }
    len = put_digits(out, len, at.second(), 2);
    if nanos != 0 {
        out[len] = b'.';
        len += 1;
        len = match (nanos % 1_000_000, nanos % 1_000) {
            (0, _) => put_digits(out, len, nanos / 1_000_000, 3),
            (_, 0) => put_digits(out, len, nanos / 1_000, 6),
            _ => put_digits(out, len, nanos, 9),
        };
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` as `width` decimal digits at `at`; returns where they end.
fn put_digits(out: &mut [u8; 30], at: usize, mut value: u32, width: usize) -> usize {
    for place in (at..at + width).rev() {
        out[place] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    #[test]
    fn writes_exactly_what_chrono_writes() {
        let mut times = vec![
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(1_764_631_367, 926_078_000).unwrap(),
            Utc.timestamp_opt(1_764_631_367, 926_000_000).unwrap(),
            Utc.timestamp_opt(1_764_631_367, 926_078_123).unwrap(),
            Utc.timestamp_opt(1_764_631_367, 1).unwrap(),
            Utc.timestamp_opt(253_402_300_799, 999_999_999).unwrap(), // 9999-12-31T23:59:59.999999999Z
            Utc.timestamp_opt(-62_167_219_200, 0).unwrap(),           // year 0
            Utc.timestamp_opt(-62_167_219_201, 0).unwrap(),           // year -1: chrono's own form
            Utc.timestamp_opt(253_402_300_800, 0).unwrap(),           // year 10000: chrono's own form
            Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap(), // a leap second: chrono's own form
            Utc::now(),
        ];
        // A spread of instants across the years, with every fractional shape.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let seconds = (seed % 253_402_300_800) as i64;
            let nanos = match seed % 4 {
                0 => 0,
                1 => (seed >> 20) as u32 % 1_000 * 1_000_000,
                2 => (seed >> 20) as u32 % 1_000_000 * 1_000,
                _ => (seed >> 20) as u32 % 1_000_000_000,
            };
            times.push(Utc.timestamp_opt(seconds, nanos).unwrap());
        }
        for at in times {
            assert_eq!(serde_json::to_string(&Ours(at)).unwrap(), serde_json::to_string(&at).unwrap());
        }
    }
}
