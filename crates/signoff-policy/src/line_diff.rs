//! A line diff of two texts (two policy versions): the longest common subsequence of their lines, shown as kept,
//! removed and added lines with their line numbers, unchanged stretches folded down to a few lines of context.

/// What happened to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// In both texts.
    Kept,
    /// Only in the old text.
    Removed,
    /// Only in the new text.
    Added,
    /// A stretch of unchanged lines left out; its text says how many.
    Folded,
}

impl Mark {
    /// The CSS class of the line.
    pub fn class(&self) -> &'static str {
        match self {
            Mark::Kept => "kept",
            Mark::Removed => "removed",
            Mark::Added => "added",
            Mark::Folded => "folded",
        }
    }

    /// The sign before the line, as in a unified diff.
    pub fn sign(&self) -> &'static str {
        match self {
            Mark::Kept | Mark::Folded => " ",
            Mark::Removed => "-",
            Mark::Added => "+",
        }
    }

    /// How a screen reader says it.
    pub fn words(&self) -> &'static str {
        match self {
            Mark::Kept | Mark::Folded => "",
            Mark::Removed => "removed: ",
            Mark::Added => "added: ",
        }
    }
}

/// One line of a diff, with its number in the old and the new text (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// What happened to the line.
    pub mark: Mark,
    /// Its number in the old text (kept and removed lines).
    pub old: Option<usize>,
    /// Its number in the new text (kept and added lines).
    pub new: Option<usize>,
    /// The line, without its line break.
    pub text: String,
}

/// Unchanged lines shown around each change.
const CONTEXT: usize = 3;
/// The largest table the LCS may fill (lines of old × lines of new, once common ends are set aside); beyond it
/// the differing middle is shown as removed, then added.
const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` against those of `old`, unchanged stretches folded to [`CONTEXT`] lines around each change.
/// Empty when the texts have the same lines.
pub fn diff(old: &str, new: &str) -> Vec<DiffLine> {
    let lines = full_diff(old, new);
    if lines.iter().all(|line| line.mark == Mark::Kept) {
        return Vec::new();
    }
    fold(lines)
}

/// The diff as unified-diff text: each line of [`diff`] after its sign (`+`, `-` or a space), one per line.
pub fn unified(old: &str, new: &str) -> String {
    diff(old, new).iter().map(|line| format!("{}{}\n", line.mark.sign(), line.text)).collect()
}

/// Every line of both texts, marked.
fn full_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (middle_a, middle_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);

    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    let mut push = |mark: Mark, text: &str, i: &mut usize, j: &mut usize| {
        let old = matches!(mark, Mark::Kept | Mark::Removed).then(|| {
            *i += 1;
            *i
        });
        let new = matches!(mark, Mark::Kept | Mark::Added).then(|| {
            *j += 1;
            *j
        });
        out.push(DiffLine { mark, old, new, text: text.to_string() });
    };
    for line in &a[..prefix] {
        push(Mark::Kept, line, &mut i, &mut j);
    }
    for (mark, line) in middle(middle_a, middle_b) {
        push(mark, line, &mut i, &mut j);
    }
    for line in &a[a.len() - suffix..] {
        push(Mark::Kept, line, &mut i, &mut j);
    }
    out
}

/// The differing middle of two texts, by the longest common subsequence of its lines.
fn middle<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<(Mark, &'t str)> {
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        let removed = a.iter().map(|line| (Mark::Removed, *line));
        return removed.chain(b.iter().map(|line| (Mark::Added, *line))).collect();
    }
    // lcs[i][j]: the length of the longest common subsequence of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((Mark::Kept, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j == b.len() || (i < a.len() && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
            out.push((Mark::Removed, a[i]));
            i += 1;
        } else {
            out.push((Mark::Added, b[j]));
            j += 1;
        }
    }
    out
}

/// Folds each run of kept lines farther than [`CONTEXT`] lines from any change into one [`Mark::Folded`] line.
fn fold(lines: Vec<DiffLine>) -> Vec<DiffLine> {
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].mark != Mark::Kept).collect();
    let near_change = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out: Vec<DiffLine> = Vec::new();
    let mut folded = 0;
    for (k, line) in lines.into_iter().enumerate() {
        if line.mark == Mark::Kept && !near_change(k) {
            folded += 1;
            continue;
        }
        if folded > 0 {
            out.push(folded_line(folded));
            folded = 0;
        }
        out.push(line);
    }
    if folded > 0 {
        out.push(folded_line(folded));
    }
    out
}

fn folded_line(count: usize) -> DiffLine {
    let text = format!("… {count} unchanged line{}", if count == 1 { "" } else { "s" });
    DiffLine { mark: Mark::Folded, old: None, new: None, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diff as unified-diff text: sign and line.
    fn signed(lines: &[DiffLine]) -> Vec<String> {
        lines.iter().map(|line| format!("{}{}", line.mark.sign(), line.text)).collect()
    }

    #[test]
    fn changed_lines_are_removed_then_added_between_kept_ones() {
        let old = "version: 1\nrules:\n  - name: a\n    decide: approve\n  - name: b\n";
        let new = "version: 1\nrules:\n  - name: a\n    decide: deny\n  - name: b\n  - name: c\n";
        assert_eq!(
            signed(&diff(old, new)),
            [
                " version: 1",
                " rules:",
                "   - name: a",
                "-    decide: approve",
                "+    decide: deny",
                "   - name: b",
                "+  - name: c",
            ]
        );
        let lines = diff(old, new);
        assert_eq!((lines[3].old, lines[3].new), (Some(4), None), "removed: numbered in the old text");
        assert_eq!((lines[4].old, lines[4].new), (None, Some(4)), "added: numbered in the new text");
        assert_eq!((lines[6].old, lines[6].new), (None, Some(6)));
    }

    #[test]
    fn the_same_lines_make_no_diff_and_far_unchanged_lines_fold() {
        assert!(diff("a\nb\n", "a\nb").is_empty(), "a final newline is no difference");
        let old: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        assert_eq!(
            signed(&diff(&old, &new)),
            [
                " … 6 unchanged lines",
                " line 7",
                " line 8",
                " line 9",
                "-line 10",
                "+line ten",
                " line 11",
                " line 12",
                " line 13",
                " … 7 unchanged lines",
            ]
        );
    }

    #[test]
    fn the_lcs_keeps_the_longest_common_run() {
        assert_eq!(signed(&diff("a\nb\nc\nd\n", "b\nc\nx\nd\n")), ["-a", " b", " c", "+x", " d"]);
        assert_eq!(signed(&diff("", "new\n")), ["+new"]);
        assert_eq!(signed(&diff("old\n", "")), ["-old"]);
        assert_eq!(unified("a\nb\n", "a\nc\n"), " a\n-b\n+c\n");
    }
}
