//! Calibrated confidence thresholds: how often people approved a rule's requests unchanged by the confidence the
//! agent reported, and the lowest confidence above which they nearly always did.

use signoff_domain::{DecidedBy, DecisionOutcome, Request};
use signoff_wire::advice::{Calibration, ConfidenceBucket, Threshold};

/// The normal quantile of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// What a person did with a request that carries a confidence: `Some((confidence, approved unchanged))` for a final
/// verdict given by a person, `None` otherwise (decided by policy or by the deadline, pending, cancelled, no
/// confidence).
pub fn human_verdict(request: &Request) -> Option<(f64, bool)> {
    let confidence = request.confidence?;
    let decision = request.decision.as_ref()?;
    if !matches!(decision.by, DecidedBy::Human { .. }) {
        return None;
    }
    match decision.outcome {
        DecisionOutcome::Approved => Some((confidence, !decision.edited)),
        DecisionOutcome::Rejected => Some((confidence, false)),
        _ => None,
    }
}

/// The calibration of one rule's requests: buckets 0.1 wide, and the lowest observed confidence X such that the
/// human-decided requests with confidence ≥ X number at least `min_decisions` and were approved unchanged at a rate
/// of at least `target` (the point estimate; the Wilson interval is reported beside it). `None` when no request
/// carries a confidence and was decided by a person.
pub fn calibrate<'r>(
    requests: impl IntoIterator<Item = &'r Request>,
    target: f64,
    min_decisions: u64,
) -> Option<Calibration> {
    let mut verdicts: Vec<(f64, bool)> = requests.into_iter().filter_map(human_verdict).collect();
    if verdicts.is_empty() {
        return None;
    }
    verdicts.sort_by(|a, b| a.0.total_cmp(&b.0));

    let buckets = (0..10)
        .map(|i| {
            let (from, to) = (f64::from(i) / 10.0, f64::from(i + 1) / 10.0);
            let inside = verdicts.iter().filter(|(c, _)| bucket_of(*c) == i as usize);
            let (n, unchanged) = inside.fold((0u64, 0u64), |(n, u), (_, ok)| (n + 1, u + u64::from(*ok)));
            ConfidenceBucket {
                from,
                to,
                human_decided: n,
                approved_unchanged: unchanged,
                unchanged_rate: (n > 0).then(|| unchanged as f64 / n as f64),
            }
        })
        .collect();

    // Walking down from the highest confidence, `above` counts the verdicts at or above the current one.
    let mut threshold = None;
    let (mut n, mut unchanged) = (0u64, 0u64);
    let mut i = verdicts.len();
    while i > 0 {
        let confidence = verdicts[i - 1].0;
        while i > 0 && verdicts[i - 1].0 == confidence {
            n += 1;
            unchanged += u64::from(verdicts[i - 1].1);
            i -= 1;
        }
        let rate = unchanged as f64 / n as f64;
        if n >= min_decisions && rate >= target {
            let (wilson_low, wilson_high) = wilson(unchanged, n);
            threshold = Some(Threshold {
                confidence,
                human_decided: n,
                approved_unchanged: unchanged,
                unchanged_rate: rate,
                wilson_low,
                wilson_high,
            });
        }
    }
    Some(Calibration { target, buckets, threshold })
}

/// The bucket of a confidence in [0, 1]: 0 for [0, 0.1), …, 9 for [0.9, 1].
fn bucket_of(confidence: f64) -> usize {
    ((confidence * 10.0).floor().max(0.0) as usize).min(9)
}

/// The 95 % Wilson score interval of `successes` out of `n` (n > 0).
pub fn wilson(successes: u64, n: u64) -> (f64, f64) {
    let all = successes == n;
    let (s, n) = (successes as f64, n as f64);
    let p = s / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At 0 % or 100 % the interval ends exactly at its bound; the float arithmetic would stop just short of it.
    let low = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if all { 1.0 } else { (centre + half).min(1.0) };
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 8 of 10: the interval [0.4902, 0.9433] (Wilson 1927, as tabulated by Newcombe 1998).
        let (low, high) = wilson(8, 10);
        assert!((low - 0.4902).abs() < 1e-4 && (high - 0.9433).abs() < 1e-4, "{low} {high}");
        let (low, high) = wilson(10, 10);
        assert!((low - 0.7225).abs() < 1e-4 && high == 1.0, "{low} {high}");
        let (low, _) = wilson(0, 5);
        assert_eq!(low, 0.0);
    }

    #[test]
    fn buckets_are_a_tenth_wide_and_one_is_in_the_last() {
        assert_eq!([0.0, 0.09, 0.1, 0.55, 0.9, 0.99, 1.0].map(bucket_of), [0, 0, 1, 5, 9, 9, 9]);
    }
}
