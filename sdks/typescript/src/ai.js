// Signoff for the Vercel AI SDK (`ai` 7): `toolApproval`, a function for the `toolApproval` setting of
// `generateText`, `streamText` and `ToolLoopAgent`. It puts each call of the gated tools to Signoff (one request per
// tool call, keyed by the AI SDK's id of it), waits for the decision, and answers the AI SDK's status: `approved`
// (the tool runs) or `denied` (the model gets the reason).
// It imports nothing from `ai`: the AI SDK calls it with its tool call.

import { decideToolCall, verdict } from "./integration.js";

/**
 * @param {import("./ai.js").ToolApprovalOptions} [options]
 * @returns {import("./ai.js").SignoffToolApproval}
 */
export function toolApproval(options = {}) {
  const gated = options.tools === undefined ? undefined : new Set(options.tools);
  return async ({ toolCall }) => {
    if (gated !== undefined && !gated.has(toolCall.toolName)) return undefined;
    const { approved, reason } = verdict(
      await decideToolCall(toolCall.toolName, toolCall.input, toolCall.toolCallId, options),
    );
    return approved ? { type: "approved", reason } : { type: "denied", reason };
  };
}
