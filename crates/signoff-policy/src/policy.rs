//! The compiled [`Policy`]: parsing, lookups and evaluation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cel::{Context, Env, Value};
use sha2::{Digest, Sha256};

use crate::bindings::{Bindings, Needs};
use crate::error::{PolicyErrors, PolicyWarning};
use crate::eval::{EvalInput, Explanation, Mode, Route, RuleTrace, TraceStatus, Verdict, sample_draw};
use crate::model::{
    Approver, Decision, Defaults, EVERYONE, EscalationStep, Group, OnError, OnTimeout, RouteSpec, Rule, RuleAction,
};
use crate::parse;
use crate::prefilter::ActionIndex;
use crate::schema::{ArgProblem, Schema};
use signoff_domain::StandingTerms;

/// The source of [`Policy::builtin_default`].
pub const BUILTIN_SOURCE: &str = "# Built-in default policy: every request goes to a person.\n\
version: 1\n\
defaults: { route: everyone, timeout: 24h, on_timeout: reject }\n";

/// A parsed, validated and compiled policy. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    hash: String,
    builtin: bool,
    approvers: Vec<Approver>,
    approver_index: HashMap<String, usize>,
    groups: BTreeMap<String, Group>,
    defaults: Defaults,
    rules: Vec<Rule>,
    actions: BTreeMap<String, Schema>,
    warnings: Vec<PolicyWarning>,
    env: Arc<Env>,
    /// Per rule, the actions outside of which its condition is `false`, and by action the rules to consider.
    actions_index: ActionIndex,
    /// What the conditions read of `args` and `context`.
    needs: Needs,
}

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
}

impl Policy {
    /// Parses and fully validates a policy document. On failure, every problem found is
    /// returned, each with its line and column.
    pub fn parse(yaml: &str) -> Result<Policy, PolicyErrors> {
        Self::build(yaml, false)
    }

    fn build(yaml: &str, builtin: bool) -> Result<Policy, PolicyErrors> {
        let env = env();
        let parsed = parse::parse(yaml, &env)?;
        let approver_index = parsed.approvers.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        let actions_index = ActionIndex::new(&parsed.rules);
        let needs = Needs::of(&parsed.rules);
        Ok(Policy {
            inner: Arc::new(Inner {
                source: yaml.to_string(),
                hash: hex::encode(Sha256::digest(yaml.as_bytes())),
                builtin,
                approvers: parsed.approvers,
                approver_index,
                groups: parsed.groups,
                defaults: parsed.defaults,
                rules: parsed.rules,
                actions: parsed.actions,
                warnings: parsed.warnings,
                env,
                actions_index,
                needs,
            }),
        })
    }

    /// The policy in force when none was applied: no approvers, no rules, defaults
    /// `{route: everyone, timeout: 24h, on_timeout: reject}`. Its source is [`BUILTIN_SOURCE`].
    pub fn builtin_default() -> Policy {
        Self::build(BUILTIN_SOURCE, true).expect("the built-in policy is valid")
    }

    /// Whether this is [`Policy::builtin_default`].
    pub fn is_builtin(&self) -> bool {
        self.inner.builtin
    }

    /// The YAML source, exactly as given.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Lowercase hex SHA-256 of the source bytes.
    pub fn content_hash(&self) -> String {
        self.inner.hash.clone()
    }

    /// The `defaults` section (filled with built-in values where omitted).
    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.inner.rules
    }

    /// All approvers, in document order.
    pub fn approvers(&self) -> &[Approver] {
        &self.inner.approvers
    }

    /// All groups by name, including the implicit `everyone` (notify: `[dashboard]` unless
    /// declared).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.inner.groups.values()
    }

    /// The approver with this id.
    pub fn approver(&self, id: &str) -> Option<&Approver> {
        self.inner.approver_index.get(id).map(|&i| &self.inner.approvers[i])
    }

    /// The group with this name (`everyone` always exists).
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.inner.groups.get(name)
    }

    /// The reminder schedule of `group` (none for an unknown group).
    fn reminders(&self, group: &str) -> Vec<Duration> {
        self.group(group).map(|g| g.remind.clone()).unwrap_or_default()
    }

    /// The declared approvers in `group` (all approvers for `everyone`).
    pub fn members(&self, group: &str) -> Vec<&Approver> {
        self.inner.approvers.iter().filter(|a| group == EVERYONE || a.groups.iter().any(|g| g == group)).collect()
    }

    /// Whether `approver_id` may decide for `group`. `everyone` is true for any id (the
    /// service also admits approver keys not declared in the policy).
    pub fn is_member(&self, approver_id: &str, group: &str) -> bool {
        if group == EVERYONE {
            return true;
        }
        self.approver(approver_id).is_some_and(|a| a.groups.iter().any(|g| g == group))
    }

    /// What rule `rule` allows for standing approvals, if it is a route rule with `standing` needing one approval.
    /// A grant made under a rule applies only while the version in force says this.
    pub fn standing(&self, rule: &str) -> Option<StandingTerms> {
        let rule = self.inner.rules.iter().find(|r| r.name == rule)?;
        match &rule.action {
            RuleAction::Route(RouteSpec { approvals: 1, standing: Some(standing), .. }) => {
                Some(StandingTerms { rule: rule.name.clone(), max: standing.max, scope: standing.scope.clone() })
            }
            _ => None,
        }
    }

    /// Checks a request's `args` against the `actions:` schema for `action`. An action without a
    /// schema accepts any args. On failure, every problem is returned, in a stable order.
    pub fn check_args(&self, action: &str, args: &serde_json::Value) -> Result<(), Vec<ArgProblem>> {
        let Some(schema) = self.inner.actions.get(action) else {
            return Ok(());
        };
        let mut problems = Vec::new();
        schema.check(args, "$", &mut problems);
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Warnings about this (valid) policy, sorted by position: conditions that read an `args`
    /// field the action's `actions:` schema does not declare.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.inner.warnings
    }

    /// The actions that have an argument schema, in name order.
    pub fn schema_actions(&self) -> impl Iterator<Item = &str> {
        self.inner.actions.keys().map(String::as_str)
    }

    /// Decides a request: the first matching rule wins; no match routes to the defaults; a
    /// condition that fails to evaluate follows `defaults.on_error`: a deny (the default) or a
    /// route to its group, either carrying the error (see [`Verdict::eval_error`]).
    pub fn evaluate(&self, input: &EvalInput) -> Verdict {
        self.run(input, None, true)
    }

    /// [`explain`](Self::explain) as plain CEL evaluation: every condition run, every variable converted up front.
    #[cfg(test)]
    pub(crate) fn explain_plain(&self, input: &EvalInput) -> Explanation {
        let mut rules = Vec::new();
        let verdict = self.run(input, Some(&mut rules), false);
        Explanation { rules, verdict }
    }

    /// Like [`evaluate`](Self::evaluate), also reporting each rule considered.
    pub fn explain(&self, input: &EvalInput) -> Explanation {
        let mut rules = Vec::new();
        let verdict = self.run(input, Some(&mut rules), true);
        Explanation { rules, verdict }
    }

    fn run(&self, input: &EvalInput, mut trace: Option<&mut Vec<RuleTrace>>, fast: bool) -> Verdict {
        let inner = &*self.inner;
        let bindings = Bindings::new(input, &inner.needs);
        let mut ctx: Option<Context> = None;
        let index = &inner.actions_index;
        // An explanation lists every rule, those the index would skip as not matched.
        let order = if fast && trace.is_none() { index.candidates(input.action) } else { index.all() };
        for i in order {
            let rule = &inner.rules[i];
            let mut record = |status: TraceStatus| {
                if let Some(t) = trace.as_deref_mut() {
                    t.push(RuleTrace { rule: rule.name.clone(), line: rule.line, status });
                }
            };
            if rule.is_review() && input.mode != Mode::Post {
                record(TraceStatus::Skipped);
                continue;
            }
            if let Some(actions) = index.set(i).filter(|_| fast)
                && !actions.iter().any(|a| a == input.action)
            {
                record(TraceStatus::NotMatched);
                continue;
            }
            let matched = match &rule.program {
                None => Ok(true),
                Some(program) => {
                    let ctx = ctx.get_or_insert_with(|| {
                        #[cfg(test)]
                        if !fast {
                            return plain_context(&inner.env, input);
                        }
                        let mut ctx = Context::with_env(inner.env.clone());
                        ctx.set_variable_resolver(&bindings);
                        ctx
                    });
                    match program.execute(ctx) {
                        Ok(Value::Bool(b)) => Ok(b),
                        Ok(other) => Err(format!("condition returned a {} instead of a boolean", other.type_of())),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            match matched {
                Ok(false) => record(TraceStatus::NotMatched),
                Ok(true) => {
                    record(TraceStatus::Matched);
                    return self.verdict_for(rule, input);
                }
                Err(e) => {
                    let message = format!("rule `{}` could not be evaluated: {e}", rule.name);
                    record(TraceStatus::Error(e));
                    let d = &inner.defaults;
                    return match &d.on_error {
                        OnError::Deny => Verdict::Deny { rule: rule.name.clone(), error: Some(message) },
                        OnError::Route { group, approvals } => Verdict::Route(Route {
                            rule: Some(rule.name.clone()),
                            group: group.clone(),
                            approvals: *approvals,
                            allow_edit: true,
                            reject_reasons: Vec::new(),
                            timeout: d.timeout,
                            // An unevaluable condition never lets an action through.
                            on_timeout: match d.on_timeout {
                                OnTimeout::Approve => OnTimeout::Reject,
                                other => other,
                            },
                            escalate: Vec::new(),
                            remind: self.reminders(group),
                            eval_error: Some(message),
                        }),
                    };
                }
            }
        }
        self.defaults_verdict()
    }

    /// The defaults' route: where a request goes when no rule matched (and a question that a rule would decide at
    /// once, since only a person can answer it).
    pub fn defaults_verdict(&self) -> Verdict {
        let d = &self.inner.defaults;
        Verdict::Route(Route {
            rule: None,
            group: d.route.clone(),
            approvals: 1,
            allow_edit: true,
            reject_reasons: Vec::new(),
            timeout: d.timeout,
            on_timeout: d.on_timeout,
            escalate: Vec::new(),
            remind: self.reminders(&d.route),
            eval_error: None,
        })
    }

    fn verdict_for(&self, rule: &Rule, input: &EvalInput) -> Verdict {
        match &rule.action {
            RuleAction::Decide(Decision::Approve) => Verdict::Approve { rule: rule.name.clone() },
            RuleAction::Decide(Decision::Deny) => Verdict::Deny { rule: rule.name.clone(), error: None },
            RuleAction::Route(spec) => Verdict::Route(Route {
                rule: Some(rule.name.clone()),
                group: spec.group.clone(),
                approvals: spec.approvals,
                allow_edit: spec.allow_edit,
                reject_reasons: spec.reject_reasons.clone(),
                timeout: spec.timeout,
                on_timeout: spec.on_timeout,
                escalate: spec
                    .escalate
                    .iter()
                    .map(|step| EscalationStep { remind: self.reminders(&step.to), ..step.clone() })
                    .collect(),
                remind: self.reminders(&spec.group),
                eval_error: None,
            }),
            RuleAction::Review { sample, group } => Verdict::Review {
                rule: rule.name.clone(),
                group: group.clone(),
                sampled: sample_draw(input.request_id, &rule.name) < *sample,
            },
        }
    }
}

/// The variables as plain CEL evaluation binds them, every one converted up front: the reference the tests compare
/// the fast path with.
#[cfg(test)]
fn plain_context<'a>(env: &Arc<Env>, input: &EvalInput) -> Context<'a, 'a> {
    use cel::objects::{Key, Map};

    /// Integers stay `int` (or `uint` above `i64::MAX`), other numbers become `double`.
    fn json_to_cel(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
            serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
            serde_json::Value::Object(map) => {
                let m: HashMap<Key, Value> =
                    map.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v))).collect();
                Value::Map(Map { map: Arc::new(m) })
            }
        }
    }

    fn string_value(s: &str) -> Value {
        Value::String(Arc::new(s.to_string()))
    }

    let mut ctx = Context::with_env(env.clone());
    ctx.add_variable_from_value("action", string_value(input.action));
    ctx.add_variable_from_value("args", json_to_cel(input.args));
    ctx.add_variable_from_value("context", json_to_cel(input.context));
    ctx.add_variable_from_value("confidence", input.confidence.map_or(Value::Null, Value::Float));
    ctx.add_variable_from_value("tags", Value::List(Arc::new(input.tags.iter().map(|t| string_value(t)).collect())));
    ctx.add_variable_from_value("mode", string_value(input.mode.as_str()));
    ctx.add_variable_from_value("agent", string_value(input.agent));
    ctx.add_variable_from_value("run_id", input.run_id.map_or(Value::Null, string_value));
    ctx
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("hash", &self.inner.hash)
            .field("builtin", &self.inner.builtin)
            .field("approvers", &self.inner.approvers.len())
            .field("groups", &self.inner.groups.len())
            .field("rules", &self.inner.rules.len())
            .finish()
    }
}
