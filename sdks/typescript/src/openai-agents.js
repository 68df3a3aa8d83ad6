// Signoff for the OpenAI Agents SDK (`@openai/agents`): `needsApproval` for a tool's `needsApproval`, which asks
// Signoff's policy at the call (a call policy approves at once runs without an interruption), and
// `resolveInterruptions`, which waits for the decisions of a run's interruptions and approves or rejects each on the
// run's state, to resume with `run(agent, state)`. It imports nothing from `@openai/agents`.

import { decideToolCall, verdict } from "./integration.js";
import { currentRunId, gatedArgs, openRequest, summarize } from "./gate.js";
import { Signoff } from "./client.js";

/**
 * @param {string} action the tool's name (what policy rules match on)
 * @param {Omit<import("./openai-agents.js").SignoffAgentsOptions, "timeout">} [options]
 * @returns {(runContext: unknown, input: unknown, callId?: string) => Promise<boolean>}
 */
export function needsApproval(action, options = {}) {
  return async (_runContext, input, toolCallId) => {
    const args = gatedArgs(input, action);
    const api = options.client ?? new Signoff();
    const runId = options.runId ?? currentRunId();
    const summary = summarize(options.summary?.[action], args);
    const request = await openRequest(api, action, args, { runId, summary, toolCallId });
    if (request.status !== "approved") return true;
    const { approved } = verdict({ request, runId, args });
    return !approved;
  };
}

/**
 * The arguments of an interruption's tool call.
 * @param {import("./openai-agents.js").ToolApprovalItem} item
 */
function itemArgs(item) {
  const text = item.arguments ?? "{}";
  try {
    return JSON.parse(text === "" ? "{}" : text);
  } catch {
    throw new TypeError(`${item.name}: the tool call's arguments are not JSON: ${text}`);
  }
}

/**
 * @template {import("./openai-agents.js").ApprovalState} S
 * @param {{ interruptions: import("./openai-agents.js").ToolApprovalItem[], state: S }} result
 * @param {import("./openai-agents.js").SignoffAgentsOptions} [options]
 * @returns {Promise<S>}
 */
export async function resolveInterruptions(result, options = {}) {
  const decided = await Promise.all(
    result.interruptions.map(async (item) => {
      const action = item.name ?? item.toolName;
      if (!action) throw new TypeError("an interruption without a tool name cannot be put to Signoff");
      const raw = /** @type {{ callId?: unknown } | undefined} */ (item.rawItem);
      const toolCallId = typeof raw?.callId === "string" ? raw.callId : undefined;
      return { item, verdict: verdict(await decideToolCall(action, itemArgs(item), toolCallId, options)) };
    }),
  );
  for (const { item, verdict } of decided) {
    if (verdict.approved) result.state.approve(item);
    else result.state.reject(item, { message: verdict.reason });
  }
  return result.state;
}
