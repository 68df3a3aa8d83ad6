//! Decoding and validation of the policy YAML into the model, collecting every problem.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Env, Value};
use saphyr_parser::ScalarStyle;

use crate::digest::{Digest, DigestSchedule};
use crate::duration::parse_duration;
use crate::error::{PolicyError, PolicyErrors, PolicyWarning};
use crate::model::{
    Approver, Channel, Decision, Defaults, EVERYONE, EscalationStep, Group, OnError, OnTimeout, RouteSpec, Rule,
    RuleAction, Standing,
};
use crate::rotation::{Rotation, Schedule};
use crate::schema::{Schema, parse_schema};
use crate::yaml::{self, Kind, Node, Pos, is_null};
use chrono::{NaiveDate, NaiveTime};
use signoff_domain::ScopePath;

/// Variables a `when` condition may use.
pub(crate) const VARIABLES: [&str; 8] = ["action", "args", "context", "confidence", "tags", "mode", "agent", "run_id"];

/// Identifiers CEL resolves by itself (type names), allowed in conditions.
const BUILTIN_IDENTS: [&str; 11] =
    ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"];

/// The decoded policy, ready to be wrapped by `Policy`.
pub(crate) struct Parsed {
    pub approvers: Vec<Approver>,
    pub groups: BTreeMap<String, Group>,
    pub defaults: Defaults,
    pub rules: Vec<Rule>,
    pub actions: BTreeMap<String, Schema>,
    pub warnings: Vec<PolicyWarning>,
}

pub(crate) struct Cx<'s> {
    source: &'s str,
    pub(crate) errors: Vec<PolicyError>,
}

impl Cx<'_> {
    pub(crate) fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(PolicyError { line: Some(pos.line), column: Some(pos.column), message: message.into() });
    }
}

/// The fields of a mapping node, after unknown and duplicate keys were reported.
pub(crate) struct Fields<'n> {
    pos: Pos,
    map: HashMap<&'n str, (&'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(crate) fn get(&self, name: &str) -> Option<&'n Node> {
        self.map.get(name).map(|(_, v)| *v)
    }
    fn key(&self, name: &str) -> Option<&'n Node> {
        self.map.get(name).map(|(k, _)| *k)
    }
}

fn fields<'n>(cx: &mut Cx, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
    fields_of(cx, node, what, allowed, "field")
}

/// Like [`fields`], calling the keys `noun`s in errors (`unknown keyword`, `duplicate keyword`).
pub(crate) fn fields_of<'n>(
    cx: &mut Cx,
    node: &'n Node,
    what: &str,
    allowed: &[&str],
    noun: &str,
) -> Option<Fields<'n>> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(node.pos, format!("{what}: expected a mapping, found {}", node.describe()));
        return None;
    };
    let mut map: HashMap<&str, (&Node, &Node)> = HashMap::new();
    for (k, v) in entries {
        let Some(name) = k.key_text() else {
            cx.err(k.pos, format!("{what}: keys must be plain names"));
            continue;
        };
        if !allowed.contains(&name) {
            let list = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
            let hint =
                suggest(name, allowed.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            cx.err(k.pos, format!("{what}: unknown {noun} `{name}`{hint}; expected one of {list}"));
            continue;
        }
        if let Some((first, _)) = map.get(name) {
            cx.err(k.pos, format!("{what}: duplicate {noun} `{name}` (first set on line {})", first.pos.line));
            continue;
        }
        map.insert(name, (k, v));
    }
    Some(Fields { pos: node.pos, map })
}

/// The text of a scalar field of a mapping, looked up before decoding (for error labels).
fn peek<'n>(node: &'n Node, field: &str) -> Option<&'n str> {
    let Kind::Map(entries) = &node.kind else {
        return None;
    };
    entries.iter().find_map(|(k, v)| match (&k.kind, &v.kind) {
        (Kind::Scalar(key, _), Kind::Scalar(text, _)) if key == field && !text.trim().is_empty() => Some(text.as_str()),
        _ => None,
    })
}

/// A Discord id (a user's or a channel's): digits only, written as a number or a string.
fn discord_id(cx: &mut Cx, node: &Node, what: &str) -> Option<String> {
    let id = string(cx, node, what)?;
    if id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        cx.err(node.pos, format!("{what}: `{id}` is not a Discord id (digits only, e.g. \"80351110224678912\")"));
        return None;
    }
    Some(id)
}

pub(crate) fn string(cx: &mut Cx, node: &Node, what: &str) -> Option<String> {
    match &node.kind {
        Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => {
            cx.err(node.pos, format!("{what}: expected a string, found nothing"));
            None
        }
        Kind::Scalar(text, _) if text.trim().is_empty() => {
            cx.err(node.pos, format!("{what}: must not be empty"));
            None
        }
        Kind::Scalar(text, _) => Some(text.clone()),
        _ => {
            cx.err(node.pos, format!("{what}: expected a string, found {}", node.describe()));
            None
        }
    }
}

fn plain_scalar<'n>(cx: &mut Cx, node: &'n Node, what: &str, expected: &str) -> Option<&'n str> {
    match &node.kind {
        Kind::Scalar(text, ScalarStyle::Plain) if !is_null(text) => Some(text.as_str()),
        Kind::Scalar(text, _) => {
            cx.err(node.pos, format!("{what}: expected {expected}, found the string `{text}`"));
            None
        }
        _ => {
            cx.err(node.pos, format!("{what}: expected {expected}, found {}", node.describe()));
            None
        }
    }
}

pub(crate) fn integer(cx: &mut Cx, node: &Node, what: &str) -> Option<i64> {
    let text = plain_scalar(cx, node, what, "an integer")?;
    match text.parse::<i64>() {
        Ok(v) => Some(v),
        Err(_) => {
            cx.err(node.pos, format!("{what}: expected an integer, found `{text}`"));
            None
        }
    }
}

pub(crate) fn number(cx: &mut Cx, node: &Node, what: &str) -> Option<f64> {
    let text = plain_scalar(cx, node, what, "a number")?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            cx.err(node.pos, format!("{what}: expected a number, found `{text}`"));
            None
        }
    }
}

pub(crate) fn boolean(cx: &mut Cx, node: &Node, what: &str) -> Option<bool> {
    let text = plain_scalar(cx, node, what, "`true` or `false`")?;
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => {
            cx.err(node.pos, format!("{what}: expected `true` or `false`, found `{text}`"));
            None
        }
    }
}

fn duration(cx: &mut Cx, node: &Node, what: &str) -> Option<Duration> {
    let text = string(cx, node, what)?;
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.err(node.pos, format!("{what}: {e}"));
            None
        }
    }
}

/// A group's `remind` list: durations after a request reaches the group, each longer than the one before.
fn reminder_schedule(cx: &mut Cx, node: &Node, what: &str) -> Vec<Duration> {
    const MAX_REMINDERS: usize = 10;
    let items = seq(cx, node, what);
    if items.len() > MAX_REMINDERS {
        cx.err(node.pos, format!("{what}: at most {MAX_REMINDERS} reminders, found {}", items.len()));
        return Vec::new();
    }
    let mut schedule: Vec<Duration> = Vec::new();
    for item in items {
        let Some(after) = duration(cx, item, what) else { continue };
        match schedule.last() {
            Some(&before) if after <= before => cx.err(
                item.pos,
                format!(
                    "{what}: reminders must be in increasing order ({} after {})",
                    crate::duration::format_duration(after),
                    crate::duration::format_duration(before)
                ),
            ),
            _ => schedule.push(after),
        }
    }
    schedule
}

/// A group's `rotation`: `members`, and either `every` from `starts` (an instant), or `handover` at a wall-clock time
/// in `time_zone` from `starts` (a date), every `every` whole days (one by default). Returns the members' positions,
/// for the check against the approvers.
fn decode_rotation(cx: &mut Cx, node: &Node, what: &str) -> Option<(Rotation, Vec<(Pos, String)>)> {
    const DAY: u64 = 86400;
    let f = fields(cx, node, what, &["members", "every", "starts", "handover", "time_zone"])?;
    let mut members: Vec<(Pos, String)> = Vec::new();
    match f.get("members") {
        None => cx.err(f.pos, format!("{what}: missing field `members` (e.g. `members: [carl, cleo]`)")),
        Some(list) => {
            let items = seq(cx, list, &format!("{what}: members"));
            if items.is_empty() {
                cx.err(list.pos, format!("{what}: members: list at least one approver"));
            }
            for item in items {
                let Some(id) = string(cx, item, &format!("{what}: members")) else { continue };
                if members.iter().any(|(_, m)| *m == id) {
                    cx.err(item.pos, format!("{what}: members: `{id}` is listed twice"));
                    continue;
                }
                members.push((item.pos, id));
            }
        }
    }
    let every = f.get("every").and_then(|n| duration(cx, n, &format!("{what}: every")).map(|d| (n.pos, d)));
    let text = |cx: &mut Cx, field: &str| {
        f.get(field).and_then(|n| string(cx, n, &format!("{what}: {field}")).map(|t| (n.pos, t)))
    };
    let starts = text(cx, "starts");
    let schedule = if f.get("handover").is_some() || f.get("time_zone").is_some() {
        let handover = match text(cx, "handover") {
            None => None,
            Some((pos, t)) => NaiveTime::parse_from_str(&t, "%H:%M")
                .map_err(|_| {
                    cx.err(pos, format!("{what}: handover: expected a wall-clock time like \"09:00\", found `{t}`"))
                })
                .ok(),
        };
        let time_zone = match text(cx, "time_zone") {
            None => None,
            Some((pos, t)) => t
                .parse::<chrono_tz::Tz>()
                .map_err(|_| {
                    cx.err(
                        pos,
                        format!("{what}: time_zone: unknown time zone `{t}`; expected an IANA name like Europe/Berlin"),
                    )
                })
                .ok(),
        };
        let start_day = match &starts {
            None => None,
            Some((pos, t)) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map_err(|_| {
                    cx.err(
                        *pos,
                        format!("{what}: starts: expected the first shift's date like 2026-01-05, found `{t}`"),
                    )
                })
                .ok(),
        };
        let days = match every {
            None => Some(1),
            Some((pos, every)) if every.as_secs() % DAY != 0 || every.subsec_nanos() != 0 => {
                cx.err(
                    pos,
                    format!("{what}: every: a rotation with a handover time changes in whole days (1d, 7d, ...)"),
                );
                None
            }
            Some((_, every)) => u32::try_from(every.as_secs() / DAY).ok(),
        };
        for (field, missing) in [
            ("handover", f.get("handover").is_none()),
            ("time_zone", f.get("time_zone").is_none()),
            ("starts", starts.is_none()),
        ] {
            if missing {
                cx.err(f.pos, format!("{what}: missing field `{field}` (a rotation with a handover time needs handover, time_zone and starts)"));
            }
        }
        Schedule::Local { starts: start_day?, handover: handover?, time_zone: time_zone?, days: days? }
    } else {
        let start = match &starts {
            None => {
                cx.err(f.pos, format!("{what}: missing field `starts` (e.g. `starts: 2026-01-05T09:00:00Z`)"));
                None
            }
            Some((pos, t)) => chrono::DateTime::parse_from_rfc3339(t).map(|s| s.with_timezone(&chrono::Utc)).map_err(|_| {
                cx.err(*pos, format!("{what}: starts: expected an RFC 3339 instant like 2026-01-05T09:00:00Z, found `{t}` (or give handover and time_zone)"))
            }).ok(),
        };
        if every.is_none() && f.get("every").is_none() {
            cx.err(f.pos, format!("{what}: missing field `every` (e.g. `every: 1w`)"));
        }
        Schedule::Fixed { starts: start?, every: every?.1 }
    };
    if members.is_empty() {
        return None;
    }
    let ids = members.iter().map(|(_, id)| id.clone()).collect();
    Some((Rotation { members: ids, schedule }, members))
}

/// A group's `digest`: `every` (a duration) or `at` (wall-clock times, with `timezone`, UTC by default), with `min`,
/// `urgent_after` and `total` (a field path, or `none`).
fn decode_digest(cx: &mut Cx, node: &Node, what: &str) -> Option<Digest> {
    let f = fields(cx, node, what, &["every", "at", "timezone", "time_zone", "min", "urgent_after", "total"])?;
    if let (Some(_), Some(second)) = (f.key("timezone"), f.key("time_zone")) {
        cx.err(second.pos, format!("{what}: give `timezone` once (`time_zone` is the same field)"));
    }
    let zone_key = f.key("timezone").or_else(|| f.key("time_zone"));
    let zone_node = f.get("timezone").or_else(|| f.get("time_zone"));
    let schedule = match (f.get("every"), f.get("at")) {
        (Some(_), Some(at)) => {
            let pos = f.key("at").map_or(at.pos, |k| k.pos);
            cx.err(pos, format!("{what}: give either `every` or `at`, not both"));
            None
        }
        (None, None) => {
            cx.err(f.pos, format!("{what}: missing field `every` or `at` (e.g. `every: 1h` or `at: [\"09:00\"]`)"));
            None
        }
        (Some(every), None) => {
            if let Some(zone) = zone_key {
                cx.err(zone.pos, format!("{what}: timezone: only a digest with `at` times has a time zone"));
            }
            duration(cx, every, &format!("{what}: every")).map(|every| DigestSchedule::Every { every })
        }
        (None, Some(list)) => {
            let mut times: Vec<NaiveTime> = Vec::new();
            let items = seq(cx, list, &format!("{what}: at"));
            if items.is_empty() {
                cx.err(list.pos, format!("{what}: at: list at least one time (e.g. `at: [\"09:00\", \"15:00\"]`)"));
            }
            let mut bad = false;
            for item in items {
                let Some(text) = string(cx, item, &format!("{what}: at")) else {
                    bad = true;
                    continue;
                };
                let Ok(time) = NaiveTime::parse_from_str(&text, "%H:%M") else {
                    cx.err(item.pos, format!("{what}: at: expected a wall-clock time like \"09:00\", found `{text}`"));
                    bad = true;
                    continue;
                };
                if times.contains(&time) {
                    cx.err(item.pos, format!("{what}: at: `{text}` is listed twice"));
                    bad = true;
                    continue;
                }
                times.push(time);
            }
            times.sort();
            let timezone = match zone_node {
                None => Some(chrono_tz::UTC),
                Some(zone) => string(cx, zone, &format!("{what}: timezone")).and_then(|t| {
                    t.parse::<chrono_tz::Tz>()
                        .map_err(|_| {
                            cx.err(
                                zone.pos,
                                format!("{what}: timezone: unknown time zone `{t}`; expected an IANA name like Europe/Berlin"),
                            )
                        })
                        .ok()
                }),
            };
            match timezone {
                Some(timezone) if !bad && !times.is_empty() => Some(DigestSchedule::At { times, timezone }),
                _ => None,
            }
        }
    };
    let min = match f.get("min") {
        None => Some(crate::digest::DEFAULT_MIN),
        Some(node) => match integer(cx, node, &format!("{what}: min")) {
            Some(n) if (1..=10_000).contains(&n) => u32::try_from(n).ok(),
            Some(n) => {
                cx.err(node.pos, format!("{what}: min: expected a number of requests from 1 to 10000, found {n}"));
                None
            }
            None => None,
        },
    };
    let urgent_after = match f.get("urgent_after") {
        None => Some(None),
        Some(node) => duration(cx, node, &format!("{what}: urgent_after")).map(Some),
    };
    let total = match f.get("total") {
        None => Some(Some(crate::digest::DEFAULT_TOTAL.to_string())),
        Some(node) => match string(cx, node, &format!("{what}: total")) {
            Some(text) if text == "none" => Some(None),
            Some(text) => {
                let mut parts = text.split('.');
                let root = parts.next().unwrap_or_default();
                let rest: Vec<&str> = parts.collect();
                let plain = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !matches!(root, "args" | "context") || rest.is_empty() || !rest.iter().all(plain) {
                    cx.err(
                        node.pos,
                        format!(
                            "{what}: total: expected a field path under args or context (e.g. `args.amount`), or `none`, found `{text}`"
                        ),
                    );
                    None
                } else {
                    Some(Some(text))
                }
            }
            None => None,
        },
    };
    Some(Digest { schedule: schedule?, min: min?, urgent_after: urgent_after?, total: total? })
}

pub(crate) fn seq<'n>(cx: &mut Cx, node: &'n Node, what: &str) -> &'n [Node] {
    match &node.kind {
        Kind::Seq(items) => items,
        Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => &[],
        _ => {
            cx.err(node.pos, format!("{what}: expected a list, found {}", node.describe()));
            &[]
        }
    }
}

fn on_timeout(cx: &mut Cx, node: &Node, what: &str) -> Option<OnTimeout> {
    let text = string(cx, node, what)?;
    match text.as_str() {
        "approve" => Some(OnTimeout::Approve),
        "reject" => Some(OnTimeout::Reject),
        "fail" => Some(OnTimeout::Fail),
        _ => {
            cx.err(node.pos, format!("{what}: expected `approve`, `reject` or `fail`, found `{text}`"));
            None
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A reference to a group, checked once every group is known.
struct GroupRef {
    pos: Pos,
    what: String,
    group: String,
    /// Requests are sent to it, so it needs members (false for approvers' `groups`).
    sends: bool,
}

struct RawRule {
    name: Option<String>,
    name_pos: Pos,
    when: Option<(String, Node)>,
    program: Option<Arc<cel::Program>>,
    /// `Some(true)`: constant true; `Some(false)`: constant false.
    constant: Option<bool>,
    action: Option<RuleAction>,
    route_timeout_explicit: bool,
    approvals_pos: Option<Pos>,
    escalate_pos: Vec<Pos>,
    line: usize,
}

/// Parses and validates `source`. `env` is the CEL environment conditions are compiled in.
pub(crate) fn parse(source: &str, env: &Arc<Env>) -> Result<Parsed, PolicyErrors> {
    let mut cx = Cx { source, errors: Vec::new() };
    let root = match yaml::parse(source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            cx.err(Pos { line: 1, column: 1 }, "the policy is empty; expected a mapping with `version: 1`");
            return Err(finish(cx.errors));
        }
        Err(e) => {
            cx.err(e.pos, format!("YAML syntax error: {}", e.message));
            return Err(finish(cx.errors));
        }
    };
    let Some(top) =
        fields(&mut cx, &root, "policy", &["version", "approvers", "groups", "defaults", "rules", "actions"])
    else {
        return Err(finish(cx.errors));
    };

    // version
    match top.get("version") {
        None => cx.err(top.pos, "policy: missing field `version` (write `version: 1`)"),
        Some(node) => {
            if let Some(v) = integer(&mut cx, node, "version")
                && v != 1
            {
                cx.err(node.pos, format!("version: unsupported version {v}; this build understands version 1"));
            }
        }
    }

    let mut group_refs: Vec<GroupRef> = Vec::new();

    // groups
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut group_pos: HashMap<String, Pos> = HashMap::new();
    // Each rotation's members with their positions, checked against the approvers once those are read.
    let mut rotation_members: Vec<(String, Vec<(Pos, String)>)> = Vec::new();
    if let Some(node) = top.get("groups") {
        match &node.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let Some(name) = string(&mut cx, k, "group name") else {
                        continue;
                    };
                    let what = format!("group `{name}`");
                    if let Some(first) = group_pos.get(&name) {
                        cx.err(k.pos, format!("{what}: declared twice (first on line {})", first.line));
                        continue;
                    }
                    group_pos.insert(name.clone(), k.pos);
                    let mut notify = Vec::new();
                    let mut slack_channel = None;
                    let mut discord_channel = None;
                    let mut remind = Vec::new();
                    let mut rotation = None;
                    let mut digest = None;
                    if let Some(f) = fields(
                        &mut cx,
                        v,
                        &what,
                        &["notify", "slack_channel", "discord_channel", "remind", "rotation", "digest"],
                    ) {
                        if let Some(node) = f.get("digest") {
                            digest = decode_digest(&mut cx, node, &format!("{what}: digest"));
                        }
                        if let Some(node) = f.get("remind") {
                            remind = reminder_schedule(&mut cx, node, &format!("{what}: remind"));
                        }
                        if let Some(node) = f.get("rotation")
                            && let Some((decoded, members)) =
                                decode_rotation(&mut cx, node, &format!("{what}: rotation"))
                        {
                            rotation_members.push((name.clone(), members));
                            rotation = Some(decoded);
                        }
                        if let Some(node) = f.get("slack_channel") {
                            slack_channel = string(&mut cx, node, &format!("{what}: slack_channel"))
                                .filter(|id| !id.trim().is_empty());
                        }
                        if let Some(node) = f.get("discord_channel") {
                            discord_channel = discord_id(&mut cx, node, &format!("{what}: discord_channel"));
                        }
                        match f.get("notify") {
                            None => cx.err(f.pos, format!("{what}: missing field `notify` (e.g. `notify: [email]`)")),
                            Some(list) => {
                                for item in seq(&mut cx, list, &format!("{what}: notify")) {
                                    let Some(ch) = string(&mut cx, item, &format!("{what}: notify")) else {
                                        continue;
                                    };
                                    match Channel::from_name(&ch) {
                                        Some(c) if !c.notifies() => cx.err(
                                            item.pos,
                                            format!(
                                                "{what}: api is not a notification channel; approvers can always decide through the API"
                                            ),
                                        ),
                                        Some(c) if notify.contains(&c) => {
                                            cx.err(item.pos, format!("{what}: channel `{ch}` is listed twice"))
                                        }
                                        Some(c) => notify.push(c),
                                        None => {
                                            let hint = suggest(&ch, Channel::NOTIFY.iter().map(|c| c.as_str()))
                                                .map(|s| format!(" (did you mean `{s}`?)"))
                                                .unwrap_or_default();
                                            cx.err(
                                                item.pos,
                                                format!(
                                                    "{what}: unknown channel `{ch}`{hint}; expected one of slack, email, sms, telegram, discord, dashboard"
                                                ),
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                    let group =
                        Group { name: name.clone(), notify, slack_channel, discord_channel, remind, rotation, digest };
                    groups.insert(name, group);
                }
            }
            Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => {}
            _ => cx.err(node.pos, format!("groups: expected a mapping of group names, found {}", node.describe())),
        }
    }
    groups.entry(EVERYONE.to_string()).or_insert_with(|| Group {
        name: EVERYONE.to_string(),
        notify: vec![Channel::Dashboard],
        slack_channel: None,
        discord_channel: None,
        remind: Vec::new(),
        rotation: None,
        digest: None,
    });

    // approvers
    let mut approvers: Vec<Approver> = Vec::new();
    let mut approver_pos: HashMap<String, Pos> = HashMap::new();
    // Groups listed by approver entries that are invalid: they count as having a member, so one
    // broken entry does not also report "group has no members" for every group it lists.
    let mut broken_memberships: Vec<String> = Vec::new();
    if let Some(node) = top.get("approvers") {
        for (i, item) in seq(&mut cx, node, "approvers").iter().enumerate() {
            let fallback = format!("approvers[{i}]");
            let early = peek(item, "id").map(|id| format!("approver `{id}`")).unwrap_or_else(|| fallback.clone());
            let Some(f) = fields(
                &mut cx,
                item,
                &early,
                &["id", "name", "email", "slack", "phone", "telegram", "discord", "groups"],
            ) else {
                continue;
            };
            let id = match f.get("id") {
                Some(n) => string(&mut cx, n, &format!("{fallback}: id")),
                None => {
                    cx.err(f.pos, format!("{fallback}: missing field `id`"));
                    None
                }
            };
            let what = id.as_ref().map(|id| format!("approver `{id}`")).unwrap_or(fallback);
            // Without a `name`, the id is the display name.
            let name = match f.get("name") {
                Some(n) => string(&mut cx, n, &format!("{what}: name")),
                None => id.clone(),
            };
            let mut opt = |field: &str| f.get(field).and_then(|n| string(&mut cx, n, &format!("{what}: {field}")));
            let email = opt("email");
            let slack = opt("slack");
            let phone = opt("phone");
            let telegram = opt("telegram");
            let discord = f.get("discord").and_then(|n| discord_id(&mut cx, n, &format!("{what}: discord")));
            let mut member_of: Vec<String> = Vec::new();
            if let Some(list) = f.get("groups") {
                for g in seq(&mut cx, list, &format!("{what}: groups")) {
                    let Some(gname) = string(&mut cx, g, &format!("{what}: groups")) else {
                        continue;
                    };
                    if gname == EVERYONE {
                        continue; // implicit
                    }
                    if member_of.contains(&gname) {
                        cx.err(g.pos, format!("{what}: group `{gname}` is listed twice"));
                        continue;
                    }
                    group_refs.push(GroupRef { pos: g.pos, what: what.clone(), group: gname.clone(), sends: false });
                    member_of.push(gname);
                }
            }
            let (Some(id), Some(name)) = (id, name) else {
                broken_memberships.extend(member_of);
                continue;
            };
            if let Some(first) = approver_pos.get(&id) {
                let pos = f.get("id").map(|n| n.pos).unwrap_or(f.pos);
                cx.err(pos, format!("{what}: duplicate approver id (first on line {})", first.line));
                broken_memberships.extend(member_of);
                continue;
            }
            approver_pos.insert(id.clone(), f.get("id").map(|n| n.pos).unwrap_or(f.pos));
            approvers.push(Approver { id, name, email, slack, phone, telegram, discord, groups: member_of });
        }
    }

    // defaults
    let mut defaults = Defaults {
        route: EVERYONE.to_string(),
        timeout: Duration::from_secs(24 * 3600),
        on_timeout: OnTimeout::Reject,
        on_error: OnError::Deny,
    };
    let mut on_error_approvals: Option<(Pos, u32)> = None;
    if let Some(node) = top.get("defaults")
        && let Some(f) = fields(&mut cx, node, "defaults", &["route", "timeout", "on_timeout", "on_error"])
    {
        if let Some(n) = f.get("on_error")
            && let Some((on_error, approvals_pos)) = decode_on_error(&mut cx, n, &mut group_refs)
        {
            if let (OnError::Route { approvals, .. }, Some(pos)) = (&on_error, approvals_pos) {
                on_error_approvals = Some((pos, *approvals));
            }
            defaults.on_error = on_error;
        }
        if let Some(n) = f.get("route")
            && let Some(g) = string(&mut cx, n, "defaults: route")
        {
            group_refs.push(GroupRef { pos: n.pos, what: "defaults: route".into(), group: g.clone(), sends: true });
            defaults.route = g;
        }
        if let Some(n) = f.get("timeout")
            && let Some(d) = duration(&mut cx, n, "defaults: timeout")
        {
            defaults.timeout = d;
        }
        if let Some(n) = f.get("on_timeout")
            && let Some(o) = on_timeout(&mut cx, n, "defaults: on_timeout")
        {
            defaults.on_timeout = o;
        }
    }

    // actions
    let mut actions: BTreeMap<String, Schema> = BTreeMap::new();
    if let Some(node) = top.get("actions") {
        match &node.kind {
            Kind::Map(entries) => {
                let mut action_pos: HashMap<String, Pos> = HashMap::new();
                for (k, v) in entries {
                    let Some(name) = string(&mut cx, k, "action name") else {
                        continue;
                    };
                    let what = format!("action `{name}`");
                    if let Some(first) = action_pos.get(&name) {
                        cx.err(k.pos, format!("{what}: declared twice (first on line {})", first.line));
                        continue;
                    }
                    action_pos.insert(name.clone(), k.pos);
                    let Some(f) = fields(&mut cx, v, &what, &["args", "description"]) else {
                        continue;
                    };
                    if let Some(d) = f.get("description") {
                        string(&mut cx, d, &format!("{what}: description"));
                    }
                    match f.get("args") {
                        None => cx.err(
                            f.pos,
                            format!("{what}: missing field `args` (a schema such as `{{ type: object }}`)"),
                        ),
                        Some(schema) => {
                            if let Some(schema) = parse_schema(&mut cx, schema, &format!("{what}: args")) {
                                actions.insert(name, schema);
                            }
                        }
                    }
                }
            }
            Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => {}
            _ => cx.err(node.pos, format!("actions: expected a mapping of action names, found {}", node.describe())),
        }
    }

    // rules
    let mut raw_rules: Vec<RawRule> = Vec::new();
    if let Some(node) = top.get("rules") {
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, item) in seq(&mut cx, node, "rules").iter().enumerate() {
            if let Some(raw) = decode_rule(&mut cx, env, item, i, &defaults, &mut group_refs) {
                if let Some(name) = &raw.name {
                    if let Some(first) = names.get(name) {
                        cx.err(raw.name_pos, format!("rule `{name}`: duplicate rule name (first on line {first})"));
                    } else {
                        names.insert(name.clone(), raw.line);
                    }
                }
                raw_rules.push(raw);
            }
        }
    }

    // membership
    let mut member_count: HashMap<&str, usize> = HashMap::new();
    for g in approvers.iter().flat_map(|a| &a.groups).chain(&broken_memberships) {
        *member_count.entry(g.as_str()).or_default() += 1;
    }

    // rotations take their members from the group's own
    for (group, members) in &rotation_members {
        for (pos, id) in members {
            match approvers.iter().find(|a| &a.id == id) {
                None => {
                    let hint = suggest(id, approvers.iter().map(|a| a.id.as_str()))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    cx.err(*pos, format!("group `{group}`: rotation: unknown approver `{id}`{hint}"));
                }
                Some(approver) if !approver.groups.contains(group) => cx.err(
                    *pos,
                    format!("group `{group}`: rotation: `{id}` is not a member of `{group}`; add it to their `groups`"),
                ),
                _ => {}
            }
        }
    }

    // group references: declared, and with members when something routes to them
    for r in &group_refs {
        if !groups.contains_key(&r.group) {
            let hint = suggest(&r.group, groups.keys().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            cx.err(r.pos, format!("{}: unknown group `{}`{hint}; declare it under `groups`", r.what, r.group));
        } else if r.sends && r.group != EVERYONE && member_count.get(r.group.as_str()).copied().unwrap_or(0) == 0 {
            cx.err(r.pos, format!("{}: group `{}` has no members; list it in an approver's `groups`", r.what, r.group));
        }
    }

    if let (OnError::Route { group, .. }, Some((pos, approvals))) = (&defaults.on_error, on_error_approvals) {
        let members = member_count.get(group.as_str()).copied().unwrap_or(0);
        if group != EVERYONE && members > 0 && approvals as usize > members {
            cx.err(
                pos,
                format!(
                    "defaults: on_error: approvals {approvals} exceeds the {members} member{} of group `{group}`",
                    if members == 1 { "" } else { "s" }
                ),
            );
        }
    }

    // per-rule checks that need the whole document
    for raw in &raw_rules {
        let label = raw.name.as_ref().map(|n| format!("rule `{n}`")).unwrap_or_else(|| "rule".into());
        if let (Some(RuleAction::Route(spec)), Some(pos)) = (&raw.action, raw.approvals_pos)
            && spec.group != EVERYONE
            && groups.contains_key(&spec.group)
        {
            let members = member_count.get(spec.group.as_str()).copied().unwrap_or(0);
            if members > 0 && spec.approvals as usize > members {
                cx.err(
                    pos,
                    format!(
                        "{label}: approvals {} exceeds the {members} member{} of group `{}`",
                        spec.approvals,
                        if members == 1 { "" } else { "s" },
                        spec.group
                    ),
                );
            }
        }
        if let Some(RuleAction::Route(spec)) = &raw.action {
            let mut prev: Option<Duration> = None;
            for (step, pos) in spec.escalate.iter().zip(&raw.escalate_pos) {
                if step.after >= spec.timeout {
                    let source = if raw.route_timeout_explicit { "the rule's timeout" } else { "the default timeout" };
                    cx.err(
                        *pos,
                        format!(
                            "{label}: escalation after {} is not shorter than {source} of {}",
                            crate::duration::format_duration(step.after),
                            crate::duration::format_duration(spec.timeout)
                        ),
                    );
                } else if let Some(p) = prev
                    && step.after <= p
                {
                    cx.err(
                        *pos,
                        format!(
                            "{label}: escalation steps must be in increasing order of `after` ({} after {})",
                            crate::duration::format_duration(step.after),
                            crate::duration::format_duration(p)
                        ),
                    );
                }
                prev = Some(step.after);
            }
        }
    }

    // shadowing
    for (i, raw) in raw_rules.iter().enumerate() {
        let Some(name) = &raw.name else { continue };
        if raw.when.is_some() && raw.program.is_none() {
            continue; // its condition is already reported
        }
        let norm = raw.when.as_ref().map(|(t, _)| normalize(t));
        for earlier in &raw_rules[..i] {
            let Some(ename) = &earlier.name else { continue };
            let covers_modes = !earlier.is_review() || raw.is_review();
            if !covers_modes {
                continue;
            }
            let always = earlier.when.is_none() || earlier.constant == Some(true);
            let same = match (&earlier.when, &norm) {
                (Some((t, _)), Some(n)) => earlier.program.is_some() && normalize(t) == *n,
                _ => false,
            };
            if always {
                cx.err(
                    raw.name_pos,
                    format!(
                        "rule `{name}` can never match: rule `{ename}` (line {}) before it always matches",
                        earlier.line
                    ),
                );
                break;
            }
            if same {
                cx.err(
                    raw.name_pos,
                    format!(
                        "rule `{name}` can never match: rule `{ename}` (line {}) before it has the same condition",
                        earlier.line
                    ),
                );
                break;
            }
        }
    }

    if !cx.errors.is_empty() {
        return Err(finish(cx.errors));
    }
    let mut warnings: Vec<PolicyWarning> = Vec::new();
    for raw in &raw_rules {
        if let (Some(name), Some((text, node)), Some(program)) = (&raw.name, &raw.when, &raw.program) {
            let label = format!("rule `{name}`");
            warnings.extend(crate::lint::rule_warnings(source, &label, node, text, program, &actions));
        }
    }
    warnings.sort_by_key(|w| (w.line, w.column));
    let rules = raw_rules
        .into_iter()
        .map(|r| Rule {
            name: r.name.unwrap_or_default(),
            when: r.when.map(|(t, _)| t),
            action: r.action.expect("validated"),
            line: r.line,
            program: r.program,
        })
        .collect();
    Ok(Parsed { approvers, groups, defaults, rules, actions, warnings })
}

/// Decodes `defaults.on_error`: `deny` or `{ route: GROUP, approvals: N }` (`approvals` defaults to 1).
/// Also returns the position of an explicit `approvals`, for the quorum check.
fn decode_on_error(cx: &mut Cx, node: &Node, group_refs: &mut Vec<GroupRef>) -> Option<(OnError, Option<Pos>)> {
    let what = "defaults: on_error";
    let expected = "expected `deny` or `{ route: GROUP, approvals: N }`";
    match &node.kind {
        Kind::Scalar(text, _) if text == "deny" => Some((OnError::Deny, None)),
        Kind::Map(_) => {
            let f = fields(cx, node, what, &["route", "approvals"])?;
            let group = match f.get("route") {
                Some(n) => {
                    let g = string(cx, n, &format!("{what}: route"))?;
                    group_refs.push(GroupRef { pos: n.pos, what: what.into(), group: g.clone(), sends: true });
                    g
                }
                None => {
                    cx.err(f.pos, format!("{what}: missing field `route` ({expected})"));
                    return None;
                }
            };
            let mut approvals = 1;
            let approvals_pos = f.get("approvals").map(|n| n.pos);
            if let Some(n) = f.get("approvals") {
                let v = integer(cx, n, &format!("{what}: approvals"))?;
                if !(1..=100).contains(&v) {
                    cx.err(n.pos, format!("{what}: approvals must be between 1 and 100, found {v}"));
                    return None;
                }
                approvals = v as u32;
            }
            Some((OnError::Route { group, approvals }, approvals_pos))
        }
        Kind::Scalar(text, _) => {
            cx.err(node.pos, format!("{what}: {expected}, found `{text}`"));
            None
        }
        Kind::Seq(_) => {
            cx.err(node.pos, format!("{what}: {expected}, found a list"));
            None
        }
    }
}

impl RawRule {
    fn is_review(&self) -> bool {
        matches!(self.action, Some(RuleAction::Review { .. }))
    }
}

fn finish(mut errors: Vec<PolicyError>) -> PolicyErrors {
    errors.sort_by_key(|e| (e.line, e.column));
    errors.dedup();
    PolicyErrors { errors }
}

/// Removes whitespace outside string literals, so `a==1` and `a == 1` compare equal.
fn normalize(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    out.push(c);
                } else if !c.is_whitespace() {
                    out.push(c);
                }
            }
        }
    }
    out
}

const RULE_FIELDS: [&str; 13] = [
    "name",
    "when",
    "decide",
    "route",
    "review",
    "approvals",
    "allow_edit",
    "reject_reasons",
    "timeout",
    "escalate",
    "on_timeout",
    "standing",
    "description",
];

const ROUTE_ONLY: [&str; 7] =
    ["approvals", "allow_edit", "reject_reasons", "timeout", "escalate", "on_timeout", "standing"];

fn decode_rule(
    cx: &mut Cx,
    env: &Arc<Env>,
    item: &Node,
    index: usize,
    defaults: &Defaults,
    group_refs: &mut Vec<GroupRef>,
) -> Option<RawRule> {
    let fallback = format!("rules[{index}]");
    let early = peek(item, "name").map(|n| format!("rule `{n}`")).unwrap_or_else(|| fallback.clone());
    let f = fields(cx, item, &early, &RULE_FIELDS)?;
    let name = match f.get("name") {
        Some(n) => string(cx, n, &format!("{fallback}: name")),
        None => {
            cx.err(f.pos, format!("{fallback}: missing field `name`"));
            None
        }
    };
    let name_pos = f.get("name").map(|n| n.pos).unwrap_or(f.pos);
    let label = name.as_ref().map(|n| format!("rule `{n}`")).unwrap_or(fallback);
    if let Some(d) = f.get("description") {
        string(cx, d, &format!("{label}: description"));
    }

    // condition
    let mut when = None;
    let mut program = None;
    let mut constant = None;
    if let Some(node) = f.get("when")
        && let Some(text) = string(cx, node, &format!("{label}: when"))
    {
        if let Some((p, c)) = compile(cx, env, node, &text, &label) {
            program = Some(Arc::new(p));
            constant = c;
        }
        when = Some((text, node.clone()));
    }

    // action
    let present: Vec<&str> = ["decide", "route", "review"].into_iter().filter(|k| f.get(k).is_some()).collect();
    let mut action = None;
    let mut approvals_pos = None;
    let mut escalate_pos = Vec::new();
    let mut route_timeout_explicit = false;
    match present.as_slice() {
        [] => cx.err(f.pos, format!("{label}: needs exactly one of `decide`, `route` or `review`")),
        [_, second, ..] => {
            let key = f.key(second).expect("present");
            cx.err(
                key.pos,
                format!(
                    "{label}: `{}` and `{second}` cannot be combined; a rule has exactly one of `decide`, `route` or `review`",
                    present[0]
                ),
            );
        }
        ["route"] => {
            let node = f.get("route").expect("present");
            let group = string(cx, node, &format!("{label}: route"));
            if let Some(g) = &group {
                group_refs.push(GroupRef { pos: node.pos, what: label.clone(), group: g.clone(), sends: true });
            }
            let mut approvals = 1u32;
            if let Some(n) = f.get("approvals") {
                approvals_pos = Some(n.pos);
                if let Some(v) = integer(cx, n, &format!("{label}: approvals")) {
                    if v < 1 {
                        cx.err(n.pos, format!("{label}: approvals must be at least 1, found {v}"));
                    } else if v > 100 {
                        cx.err(n.pos, format!("{label}: approvals {v} is more than 100"));
                    } else {
                        approvals = v as u32;
                    }
                }
            }
            let allow_edit =
                f.get("allow_edit").and_then(|n| boolean(cx, n, &format!("{label}: allow_edit"))).unwrap_or(true);
            let mut reject_reasons = Vec::new();
            if let Some(n) = f.get("reject_reasons") {
                for r in seq(cx, n, &format!("{label}: reject_reasons")) {
                    if let Some(s) = string(cx, r, &format!("{label}: reject_reasons")) {
                        if reject_reasons.contains(&s) {
                            cx.err(r.pos, format!("{label}: reject reason `{s}` is listed twice"));
                        } else {
                            reject_reasons.push(s);
                        }
                    }
                }
            }
            let timeout = match f.get("timeout") {
                Some(n) => {
                    route_timeout_explicit = true;
                    duration(cx, n, &format!("{label}: timeout"))
                }
                None => Some(defaults.timeout),
            };
            let on_timeout_v = f
                .get("on_timeout")
                .map(|n| on_timeout(cx, n, &format!("{label}: on_timeout")))
                .unwrap_or(Some(defaults.on_timeout));
            let mut escalate = Vec::new();
            if let Some(n) = f.get("escalate") {
                let what = format!("{label}: escalate");
                for step in seq(cx, n, &what) {
                    let Some(sf) = fields(cx, step, &what, &["after", "to"]) else {
                        continue;
                    };
                    let after = match sf.get("after") {
                        Some(a) => duration(cx, a, &format!("{what}: after")),
                        None => {
                            cx.err(sf.pos, format!("{what}: missing field `after`"));
                            None
                        }
                    };
                    let to = match sf.get("to") {
                        Some(t) => {
                            let g = string(cx, t, &format!("{what}: to"));
                            if let Some(g) = &g {
                                group_refs.push(GroupRef {
                                    pos: t.pos,
                                    what: what.clone(),
                                    group: g.clone(),
                                    sends: true,
                                });
                            }
                            g
                        }
                        None => {
                            cx.err(sf.pos, format!("{what}: missing field `to`"));
                            None
                        }
                    };
                    if let (Some(after), Some(to)) = (after, to) {
                        escalate_pos.push(sf.get("after").map(|a| a.pos).unwrap_or(sf.pos));
                        escalate.push(EscalationStep { after, to, remind: Vec::new() });
                    }
                }
            }
            let standing = f.get("standing").and_then(|n| decode_standing(cx, n, &label, approvals));
            if let (Some(group), Some(timeout), Some(on_timeout)) = (group, timeout, on_timeout_v) {
                action = Some(RuleAction::Route(RouteSpec {
                    group,
                    approvals,
                    allow_edit,
                    reject_reasons,
                    timeout,
                    escalate,
                    on_timeout,
                    standing,
                }));
            }
        }
        [only] => {
            for k in ROUTE_ONLY {
                if let Some(key) = f.key(k) {
                    cx.err(key.pos, format!("{label}: `{k}` only applies to `route` rules, not `{only}`"));
                }
            }
            if *only == "decide" {
                let node = f.get("decide").expect("present");
                if let Some(text) = string(cx, node, &format!("{label}: decide")) {
                    match text.as_str() {
                        "approve" => action = Some(RuleAction::Decide(Decision::Approve)),
                        "deny" => action = Some(RuleAction::Decide(Decision::Deny)),
                        _ => cx.err(node.pos, format!("{label}: decide: expected `approve` or `deny`, found `{text}`")),
                    }
                }
            } else {
                let node = f.get("review").expect("present");
                let what = format!("{label}: review");
                if let Some(rf) = fields(cx, node, &what, &["sample", "group"]) {
                    let sample = match rf.get("sample") {
                        Some(n) => number(cx, n, &format!("{what}: sample")).and_then(|v| {
                            if (0.0..=1.0).contains(&v) {
                                Some(v)
                            } else {
                                cx.err(
                                    n.pos,
                                    format!("{what}: sample must be between 0 and 1 (e.g. 0.05 for 5 %), found {v}"),
                                );
                                None
                            }
                        }),
                        None => {
                            cx.err(rf.pos, format!("{what}: missing field `sample`"));
                            None
                        }
                    };
                    let group = match rf.get("group") {
                        Some(n) => {
                            let g = string(cx, n, &format!("{what}: group"));
                            if let Some(g) = &g {
                                group_refs.push(GroupRef {
                                    pos: n.pos,
                                    what: what.clone(),
                                    group: g.clone(),
                                    sends: true,
                                });
                            }
                            g
                        }
                        None => {
                            cx.err(rf.pos, format!("{what}: missing field `group`"));
                            None
                        }
                    };
                    if let (Some(sample), Some(group)) = (sample, group) {
                        action = Some(RuleAction::Review { sample, group });
                    }
                }
            }
        }
    }

    Some(RawRule {
        name,
        name_pos,
        when,
        program,
        constant,
        action,
        route_timeout_explicit,
        approvals_pos,
        escalate_pos,
        line: item.pos.line,
    })
}

/// Decodes a route rule's `standing: {max: DURATION, scope: [action, args.FIELD, ...]}`. Refused on a rule that
/// needs more than one approval: a standing approval is one person's, and a quorum is never one person.
fn decode_standing(cx: &mut Cx, node: &Node, label: &str, approvals: u32) -> Option<Standing> {
    let what = format!("{label}: standing");
    let f = fields(cx, node, &what, &["max", "scope"])?;
    if approvals > 1 {
        cx.err(
            node.pos,
            format!(
                "{what}: a standing approval is one person's, so it never applies to a rule that needs {approvals} \
                 approvals; remove `standing` or set `approvals: 1`"
            ),
        );
        return None;
    }
    let max = match f.get("max") {
        Some(n) => duration(cx, n, &format!("{what}: max")),
        None => {
            cx.err(f.pos, format!("{what}: missing field `max` (the longest window a person may grant, e.g. `4h`)"));
            None
        }
    };
    let mut scope = vec![ScopePath::Action];
    if let Some(n) = f.get("scope") {
        for item in seq(cx, n, &format!("{what}: scope")) {
            let Some(text) = string(cx, item, &format!("{what}: scope")) else { continue };
            match ScopePath::parse(&text) {
                Ok(ScopePath::Action) => {}
                Ok(path) if scope.contains(&path) => {
                    cx.err(item.pos, format!("{what}: scope `{text}` is listed twice"))
                }
                Ok(path) => scope.push(path),
                Err(e) => cx.err(item.pos, format!("{what}: scope {e}")),
            }
        }
    }
    Some(Standing { max: max?, scope })
}

/// Compiles a condition, reporting syntax errors, unknown variables and constant conditions.
/// Returns the program and whether it is constant (`Some(true)` always, `Some(false)` never).
fn compile(cx: &mut Cx, env: &Arc<Env>, node: &Node, text: &str, label: &str) -> Option<(cel::Program, Option<bool>)> {
    let program = match env.compile(text) {
        Ok(p) => p,
        Err(errs) => {
            for e in &errs.errors {
                let mut line = usize::try_from(e.pos.0).unwrap_or(1).max(1);
                let mut col = usize::try_from(e.pos.1).unwrap_or(1).max(1);
                // An error at the very end (after a block scalar's final newline) points
                // just past the last character instead.
                let trimmed: Vec<&str> = text.trim_end().lines().collect();
                if line > trimmed.len().max(1) {
                    line = trimmed.len().max(1);
                    col = trimmed.last().map_or(0, |l| l.chars().count()) + 1;
                }
                let (pos, suffix) = expr_pos(cx.source, node, text, line, col);
                let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
                cx.err(pos, format!("{label}: invalid condition: {msg}{suffix}"));
            }
            return None;
        }
    };
    let mut unknown: Vec<(String, u64)> = Vec::new();
    free_variables(program.expression(), &mut Vec::new(), &mut unknown);
    if !unknown.is_empty() {
        for (name, id) in unknown {
            let (line, col) = program
                .source_info()
                .offset_for(id)
                .map(|(start, _)| offset_to_line_col(text, start as usize))
                .unwrap_or((1, 1));
            let (pos, suffix) = expr_pos(cx.source, node, text, line, col);
            let hint = suggest(&name, VARIABLES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            cx.err(
                pos,
                format!(
                    "{label}: unknown variable `{name}`{hint} in condition; available: {}{suffix}",
                    VARIABLES.join(", ")
                ),
            );
        }
        return None;
    }
    let mut uses_vars = Vec::new();
    collect_idents(program.expression(), &mut Vec::new(), &mut uses_vars);
    let mut constant = None;
    if uses_vars.is_empty() {
        let ctx = Context::with_env(env.clone());
        match program.execute(&ctx) {
            Ok(Value::Bool(b)) => {
                if !b {
                    cx.err(node.pos, format!("{label}: condition `{text}` is always false; the rule can never match"));
                    return None;
                }
                constant = Some(true);
            }
            Ok(v) => {
                cx.err(node.pos, format!("{label}: condition `{text}` is a {}, not a boolean", v.type_of()));
                return None;
            }
            Err(e) => {
                cx.err(node.pos, format!("{label}: condition `{text}` always fails to evaluate: {e}"));
                return None;
            }
        }
    }
    Some((program, constant))
}

pub(crate) fn offset_to_line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.chars().enumerate() {
        if i == offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Maps a (1-based) position inside a `when` expression to the YAML file. When the mapping
/// cannot be exact, returns the value's position and a suffix naming the expression position.
pub(crate) fn expr_pos(source: &str, node: &Node, text: &str, line: usize, col: usize) -> (Pos, String) {
    let fallback = (node.pos, format!(" (at line {line}, column {col} of the condition)"));
    let Kind::Scalar(_, style) = &node.kind else {
        return fallback;
    };
    let src_lines: Vec<&str> = source.lines().collect();
    match style {
        ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
            if !text.contains('\n') && line == 1 =>
        {
            let quote = usize::from(!matches!(style, ScalarStyle::Plain));
            let Some(src) = src_lines.get(node.pos.line - 1) else {
                return fallback;
            };
            let start = node.pos.column - 1 + quote;
            let prefix: String = src.chars().skip(start).take(col - 1).collect();
            let expected: String = text.chars().take(col - 1).collect();
            if prefix == expected {
                (Pos { line: node.pos.line, column: start + col }, String::new())
            } else {
                fallback
            }
        }
        ScalarStyle::Literal => {
            let first = text.lines().next().unwrap_or("").trim();
            for (i, src) in src_lines.iter().enumerate().skip(node.pos.line - 1).take(4) {
                if !first.is_empty() && src.trim() == first {
                    let indent = src.chars().take_while(|c| *c == ' ').count();
                    return (Pos { line: i + 1 + line - 1, column: indent + col }, String::new());
                }
            }
            fallback
        }
        _ => fallback,
    }
}

/// Collects identifiers not bound by a comprehension and not a variable or built-in name.
fn free_variables<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>, out: &mut Vec<(String, u64)>) {
    let mut all = Vec::new();
    collect_idents(expr, bound, &mut all);
    for (name, id) in all {
        if !VARIABLES.contains(&name.as_str()) && !BUILTIN_IDENTS.contains(&name.as_str()) {
            out.push((name, id));
        }
    }
}

/// Collects every free identifier of `expr` (including the policy variables).
fn collect_idents<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>, out: &mut Vec<(String, u64)>) {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            if !bound.contains(&name.as_str())
                && !BUILTIN_IDENTS.contains(&name.as_str())
                && !out.iter().any(|(n, _)| n == name)
            {
                out.push((name.clone(), expr.id));
            }
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                collect_idents(t, bound, out);
            }
            for a in &call.args {
                collect_idents(a, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            collect_idents(&c.iter_range, bound, out);
            collect_idents(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                bound.push(v);
            }
            bound.push(&c.accu_var);
            collect_idents(&c.loop_cond, bound, out);
            collect_idents(&c.loop_step, bound, out);
            collect_idents(&c.result, bound, out);
            bound.truncate(depth);
        }
        Expr::List(l) => {
            for e in &l.elements {
                collect_idents(e, bound, out);
            }
        }
        Expr::Map(m) => {
            for e in &m.entries {
                if let EntryExpr::MapEntry(me) = &e.expr {
                    collect_idents(&me.key, bound, out);
                    collect_idents(&me.value, bound, out);
                }
            }
        }
        Expr::Struct(s) => {
            for e in &s.entries {
                if let EntryExpr::StructField(sf) = &e.expr {
                    collect_idents(&sf.value, bound, out);
                }
            }
        }
        Expr::Select(s) => collect_idents(&s.operand, bound, out),
    }
}
