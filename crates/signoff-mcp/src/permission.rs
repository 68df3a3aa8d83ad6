//! `approval_prompt`, Claude Code's `--permission-prompt-tool`: Claude Code calls it with the tool it wants to use
//! (`tool_name`), that tool's `input` and the `tool_use_id`, and reads the text it answers as JSON:
//! `{"behavior": "allow", "updatedInput": {...}}` or `{"behavior": "deny", "message": "..."}`.
//!
//! Each prompt becomes a request whose action is the tool's name and whose arguments are its input, so policy rules
//! match on them (`action == "Bash" && args.command.startsWith("git ")`). An approver's edited arguments become the
//! input Claude Code runs the tool with.

use crate::view;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_wire::{NewRequest, Request, Status};

/// The `run_id` of permission prompts: with the `tool_use_id` as `call_id`, asking again about the same tool use
/// resumes the same request.
pub const RUN_ID: &str = "claude-code";
/// The tag every permission prompt carries, for policy rules and queues.
pub const TAG: &str = "permission-prompt";
/// The longest summary made from a tool's input, in characters.
const SUMMARY_CHARS: usize = 500;
/// The input fields that say most about what a tool will do, in the order they are looked for.
const TELLING_FIELDS: [&str; 6] = ["command", "file_path", "notebook_path", "path", "url", "pattern"];

/// What Claude Code sends. Unknown fields are ignored, so newer versions keep working.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PermissionPrompt {
    /// The tool Claude Code wants to use, e.g. `Bash`, `Edit` or `mcp__github__create_issue`.
    pub tool_name: String,
    /// That tool's input.
    #[serde(default)]
    pub input: JsonObject,
    /// The id of this tool use.
    #[serde(default)]
    pub tool_use_id: Option<String>,
}

impl PermissionPrompt {
    /// The request that asks a person (or the policy) whether the tool may run.
    pub fn to_request(&self) -> NewRequest {
        let mut new = NewRequest::action(self.tool_name.clone());
        new.args = Value::Object(self.input.clone());
        new.summary = Some(summary(&self.tool_name, &self.input));
        new.reasoning = self.input.get("description").and_then(Value::as_str).map(String::from);
        new.tags = vec![TAG.to_string()];
        if let Some(tool_use_id) = &self.tool_use_id {
            new.run_id = Some(RUN_ID.to_string());
            new.call_id = Some(tool_use_id.clone());
        }
        new
    }
}

/// `Bash: rm -rf build`: the tool, and the input field that says most about what it will do.
fn summary(tool_name: &str, input: &JsonObject) -> String {
    let Some(detail) = TELLING_FIELDS.iter().find_map(|field| input.get(*field)?.as_str()) else {
        return tool_name.to_string();
    };
    let summary = format!("{tool_name}: {detail}");
    if summary.chars().count() <= SUMMARY_CHARS {
        return summary;
    }
    let mut cut: String = summary.chars().take(SUMMARY_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Claude Code's answer for a decided request: allow with the approved (perhaps edited) arguments, else deny and say
/// why.
pub fn answer(request: &Request) -> Value {
    match (&request.decision, request.status) {
        (Some(decision), Status::Approved) => json!({"behavior": "allow", "updatedInput": decision.args}),
        _ => json!({"behavior": "deny", "message": format!("Signoff: {}", view::message(request))}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(tool_name: &str, input: Value) -> PermissionPrompt {
        let Value::Object(input) = input else { panic!("input must be an object") };
        PermissionPrompt { tool_name: tool_name.into(), input, tool_use_id: Some("toolu_01".into()) }
    }

    #[test]
    fn a_prompt_asks_about_the_tool_with_its_input() {
        let new = prompt("Bash", json!({"command": "rm -rf build", "description": "Clean the build"})).to_request();
        assert_eq!(new.action, "Bash");
        assert_eq!(new.args, json!({"command": "rm -rf build", "description": "Clean the build"}));
        assert_eq!(new.summary.as_deref(), Some("Bash: rm -rf build"));
        assert_eq!(new.reasoning.as_deref(), Some("Clean the build"));
        assert_eq!(new.tags, [TAG]);
        assert_eq!((new.run_id.as_deref(), new.call_id.as_deref()), (Some(RUN_ID), Some("toolu_01")));
        new.validate().expect("a valid request");
    }

    #[test]
    fn the_summary_names_the_most_telling_field_and_stays_short() {
        let edit = prompt("Edit", json!({"old_string": "a", "file_path": "src/main.rs", "path": "ignored"}));
        assert_eq!(edit.to_request().summary.as_deref(), Some("Edit: src/main.rs"));
        let other = prompt("mcp__github__create_issue", json!({"title": "Bug"}));
        assert_eq!(other.to_request().summary.as_deref(), Some("mcp__github__create_issue"));
        let long = prompt("Bash", json!({"command": "x".repeat(2_000)})).to_request().summary.unwrap();
        assert_eq!(long.chars().count(), SUMMARY_CHARS);
        assert!(long.starts_with("Bash: xxx") && long.ends_with('…'), "{long}");
    }

    #[test]
    fn without_a_tool_use_id_a_prompt_is_not_idempotent() {
        let new = PermissionPrompt { tool_name: "Write".into(), input: JsonObject::new(), tool_use_id: None };
        let new = new.to_request();
        assert_eq!((new.run_id, new.call_id), (None, None));
    }
}
