//! Charts drawn on the server as inline SVG, for the Stats page: horizontal bars, and columns stacked per day. This
//! module computes the geometry and the words a screen reader hears; the templates write the elements (every text
//! escaped) and the style sheet colours them by class, so nothing is loaded from anywhere and no script runs.

/// The width of every chart's drawing, in SVG units (it scales to the page).
pub const WIDTH: u32 = 640;
/// Horizontal bars: room for the labels on the left, then the bars, then room for the value after the longest bar.
const LABEL_WIDTH: f64 = 180.0;
const BAR_AREA: f64 = 360.0;
const ROW: u32 = 26;
const BAR_HEIGHT: u32 = 18;
/// The longest label drawn in a chart (the table under it has the whole of it).
const LABEL_CHARS: usize = 26;

/// One horizontal bar chart.
pub struct BarChart {
    pub id: &'static str,
    pub title: String,
    /// The chart in words: its title and every bar's label and value.
    pub description: String,
    pub height: u32,
    pub bars: Vec<Bar>,
}

/// One bar: its label, its value as text, and where it is drawn.
pub struct Bar {
    pub label: String,
    /// The label as drawn: cut short when it would not fit.
    pub drawn_label: String,
    pub value: String,
    /// The value as a number, for `data-value`.
    pub amount: String,
    pub class: &'static str,
    pub y: u32,
    pub text_y: u32,
    pub length: String,
    pub value_x: String,
}

/// What one bar shows: a label, a value (scaled against the chart's largest, or `scale`), the value as people read
/// it, and the class that colours it.
pub struct BarInput {
    pub label: String,
    pub amount: f64,
    pub value: String,
    pub class: &'static str,
}

impl BarInput {
    pub fn new(label: impl Into<String>, amount: f64, value: impl Into<String>, class: &'static str) -> BarInput {
        BarInput { label: label.into(), amount, value: value.into(), class }
    }
}

impl BarChart {
    /// Bars scaled so that `scale` (or, when `None`, the largest amount) spans the bar area.
    pub fn new(id: &'static str, title: &str, inputs: Vec<BarInput>, scale: Option<f64>) -> BarChart {
        let largest = inputs.iter().map(|bar| bar.amount).fold(0.0, f64::max);
        let scale = scale.unwrap_or(largest).max(f64::MIN_POSITIVE);
        let words: Vec<String> = inputs.iter().map(|bar| format!("{} {}", bar.label, bar.value)).collect();
        let description =
            if words.is_empty() { format!("{title}: none") } else { format!("{title}: {}", words.join(", ")) };
        let bars = inputs
            .into_iter()
            .enumerate()
            .map(|(row, input)| {
                let length = (input.amount.max(0.0) / scale).min(1.0) * BAR_AREA;
                let y = row as u32 * ROW + 4;
                Bar {
                    drawn_label: shortened(&input.label),
                    label: input.label,
                    value: input.value,
                    amount: number(input.amount),
                    class: input.class,
                    y,
                    text_y: y + BAR_HEIGHT - 5,
                    length: number(length),
                    value_x: number(LABEL_WIDTH + length + 6.0),
                }
            })
            .collect::<Vec<_>>();
        BarChart { id, title: title.to_string(), description, height: bars.len().max(1) as u32 * ROW + 8, bars }
    }
}

/// The x where bars start (labels end before it).
pub fn bars_x() -> String {
    number(LABEL_WIDTH)
}

fn shortened(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_string();
    }
    let kept: String = label.chars().take(LABEL_CHARS - 1).collect();
    format!("{kept}…")
}

/// A coordinate or amount with at most one decimal: `12`, `12.5`.
fn number(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(String::from).unwrap_or(text)
}

/// Columns of requests per day, each stacked from the bottom: decided by policy, decided by people, the rest.
pub struct DayChart {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub height: u32,
    /// The largest day's requests, written at the top of the axis.
    pub top: u64,
    pub top_y: u32,
    pub baseline_y: u32,
    pub plot_x: u32,
    pub columns: Vec<Column>,
}

/// One day's column.
pub struct Column {
    pub day: String,
    /// The day in words, for the column's `<title>`.
    pub words: String,
    pub requests: u64,
    pub auto: u64,
    pub human: u64,
    pub other: u64,
    pub segments: Vec<Segment>,
    /// The day written under the column (only every few days, so the labels do not overlap).
    pub label: Option<String>,
    pub label_x: String,
}

pub struct Segment {
    pub class: &'static str,
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
}

/// One day's counts for [`DayChart::new`].
pub struct DayInput {
    pub day: chrono::NaiveDate,
    pub auto: u64,
    pub human: u64,
    pub other: u64,
}

const PLOT_TOP: u32 = 12;
const PLOT_HEIGHT: u32 = 160;
const PLOT_X: u32 = 40;
/// The most day labels drawn under the columns.
const DAY_LABELS: usize = 8;

impl DayChart {
    pub fn new(id: &'static str, title: &str, days: Vec<DayInput>) -> DayChart {
        let top = days.iter().map(|d| d.auto + d.human + d.other).max().unwrap_or(0);
        let baseline = PLOT_TOP + PLOT_HEIGHT;
        let slot = f64::from(WIDTH - PLOT_X - 8) / days.len().max(1) as f64;
        let every = days.len().div_ceil(DAY_LABELS).max(1);
        let scale = f64::from(PLOT_HEIGHT) / top.max(1) as f64;
        let total: u64 = days.iter().map(|d| d.auto + d.human + d.other).sum();
        // The first of the busiest days (`max_by_key` keeps the last).
        let busiest = days.iter().rev().max_by_key(|d| d.auto + d.human + d.other).filter(|_| top > 0);
        let span = if days.len() == 1 { "1 day".to_string() } else { format!("{} days", days.len()) };
        let description = match busiest {
            Some(day) => format!(
                "{title}: {total} requests over {span}, at most {top} on {} (by policy, by people, other)",
                day.day
            ),
            None => format!("{title}: no requests over {span}"),
        };
        let columns = days
            .into_iter()
            .enumerate()
            .map(|(index, day)| {
                let x = f64::from(PLOT_X) + slot * index as f64 + slot * 0.1;
                let width = (slot * 0.8).max(1.0);
                let mut bottom = f64::from(baseline);
                let mut segments = Vec::new();
                for (count, class) in [(day.auto, "auto"), (day.human, "human"), (day.other, "other")] {
                    if count == 0 {
                        continue;
                    }
                    let height = count as f64 * scale;
                    bottom -= height;
                    segments.push(Segment {
                        class,
                        x: number(x),
                        y: number(bottom),
                        width: number(width),
                        height: number(height),
                    });
                }
                let requests = day.auto + day.human + day.other;
                Column {
                    day: day.day.to_string(),
                    words: format!(
                        "{}: {requests} requests: {} by policy, {} by people, {} other",
                        day.day, day.auto, day.human, day.other
                    ),
                    requests,
                    auto: day.auto,
                    human: day.human,
                    other: day.other,
                    segments,
                    label: (index % every == 0).then(|| day.day.format("%m-%d").to_string()),
                    label_x: number(x + width / 2.0),
                }
            })
            .collect();
        DayChart {
            id,
            title: title.to_string(),
            description,
            height: baseline + 22,
            top,
            top_y: PLOT_TOP + 4,
            baseline_y: baseline,
            plot_x: PLOT_X,
            columns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_largest_or_to_the_given_scale() {
        let chart = BarChart::new(
            "reasons",
            "Rejection reasons",
            vec![BarInput::new("wrong_account", 4.0, "4", "bar"), BarInput::new("too_much", 1.0, "1", "bar")],
            None,
        );
        let lengths: Vec<&str> = chart.bars.iter().map(|b| b.length.as_str()).collect();
        assert_eq!(lengths, ["360", "90"]);
        assert_eq!(chart.description, "Rejection reasons: wrong_account 4, too_much 1");
        assert_eq!((chart.bars[1].y, chart.height), (30, 60));
        let rates = BarChart::new("rates", "Rates", vec![BarInput::new("approved", 0.25, "25.0 %", "bar")], Some(1.0));
        assert_eq!((rates.bars[0].length.as_str(), rates.bars[0].value_x.as_str()), ("90", "276"));
    }

    #[test]
    fn an_empty_chart_says_so_and_long_labels_are_cut() {
        let empty = BarChart::new("none", "Load per approver", Vec::new(), None);
        assert_eq!((empty.description.as_str(), empty.height), ("Load per approver: none", 34));
        let zero = BarChart::new("zero", "Flags", vec![BarInput::new("a", 0.0, "0", "bar")], None);
        assert_eq!(zero.bars[0].length, "0");
        let long = BarChart::new("long", "Rules", vec![BarInput::new("x".repeat(40), 1.0, "1", "bar")], None);
        assert_eq!(long.bars[0].drawn_label, format!("{}…", "x".repeat(25)));
        assert_eq!(long.bars[0].label.len(), 40);
    }

    #[test]
    fn day_columns_stack_from_the_baseline_and_label_every_few_days() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let days: Vec<DayInput> = (0..31u64)
            .map(|n| DayInput { day: start + chrono::Days::new(n), auto: n % 3, human: 1, other: 0 })
            .collect();
        let chart = DayChart::new("volume", "Requests per day", days);
        assert_eq!(chart.top, 3);
        assert_eq!(chart.columns.len(), 31);
        let labelled = chart.columns.iter().filter(|c| c.label.is_some()).count();
        assert_eq!(labelled, 8, "every 4th of 31 days");
        let third = &chart.columns[2];
        assert_eq!((third.requests, third.auto, third.human), (3, 2, 1));
        let heights: Vec<&str> = third.segments.iter().map(|s| s.height.as_str()).collect();
        // 160 units for the busiest day's 3 requests.
        assert_eq!(heights, ["106.7", "53.3"]);
        assert_eq!(third.segments[0].y, "65.3");
        assert_eq!(third.words, "2026-11-03: 3 requests: 2 by policy, 1 by people, 0 other");
        assert!(chart.description.starts_with("Requests per day: 61 requests over 31 days, at most 3 on 2026-11-03"));
        let quiet =
            DayChart::new("volume", "Requests per day", vec![DayInput { day: start, auto: 0, human: 0, other: 0 }]);
        assert_eq!(quiet.description, "Requests per day: no requests over 1 day");
        assert!(quiet.columns[0].segments.is_empty());
    }
}
