// What the framework helpers (ai.js, openai-agents.js) share: one tool call put to Signoff, decided, and told back
// as "run it" or "do not, because ...". Not part of the package's exports.

import { Signoff } from "./client.js";
import {
  approvalTimeout,
  canonicalJson,
  currentRunId,
  gatedArgs,
  markUsedUp,
  notApprovedMessage,
  openRequest,
  rememberEditedApproval,
  summarize,
} from "./gate.js";

/**
 * @typedef {import("./types.js").JsonObject} JsonObject
 * @typedef {import("./types.js").SignoffRequest} SignoffRequest
 * @typedef {{
 *   client?: Signoff,
 *   runId?: string,
 *   timeout?: number,
 *   summary?: Record<string, string | ((input: any) => string)>,
 * }} GateOptions
 * @typedef {{ approved: true, request: SignoffRequest, reason: string | undefined }
 *   | { approved: false, request: SignoffRequest, reason: string }} Verdict
 */

/** @param {SignoffRequest} request approved */
function approvedReason(request) {
  const decision = request.decision;
  if (decision === null) return undefined;
  const comment = decision.comment?.trim();
  const by = decision.by;
  const who = by.kind === "human" ? ` by ${by.approver_id}` : by.kind === "policy" ? " by policy" : "";
  if (by.kind === "timeout") return "Approved: no decision before the deadline";
  return comment ? `Approved${who}: ${comment}` : `Approved${who}`;
}

/**
 * The request for a tool call, made (or found again) and waited for.
 * @param {string} action
 * @param {unknown} input
 * @param {string | undefined} toolCallId the framework's own id of the call
 * @param {GateOptions} options
 * @returns {Promise<{ request: SignoffRequest, runId: string, args: JsonObject }>}
 */
export async function decideToolCall(action, input, toolCallId, options) {
  const args = gatedArgs(input, action);
  const runId = options.runId ?? currentRunId();
  const api = options.client ?? new Signoff();
  const summary = summarize(options.summary?.[action], args);
  let request = await openRequest(api, action, args, { runId, summary, toolCallId });
  if (request.status === "pending") request = await api.wait(request.id, { timeout: options.timeout });
  if (request.status === "pending") throw approvalTimeout(request, options.timeout);
  return { request, runId, args };
}

/**
 * What the framework should do with a decided tool call made with `args`. An approval of other arguments (an
 * approver's edit) cannot run as the model made the call: it is refused with the approved arguments in the reason,
 * and remembered, so that the model's call again with exactly those arguments is that approval (run at once, not
 * asked again).
 * @param {{ request: SignoffRequest, runId: string, args: JsonObject }} call decided
 * @returns {Verdict}
 */
export function verdict({ request, runId, args }) {
  const decision = request.decision;
  if (request.status !== "approved" || decision === null) {
    return { approved: false, request, reason: notApprovedMessage(request) };
  }
  if (canonicalJson(decision.args) !== canonicalJson(args)) {
    rememberEditedApproval(runId, request);
    const by = decision.by.kind === "human" ? decision.by.approver_id : "the approver";
    const comment = decision.comment?.trim() ? ` (${decision.comment.trim()})` : "";
    return {
      approved: false,
      request,
      reason:
        `Not run as called: ${by} approved it only with these arguments: ${JSON.stringify(decision.args)}${comment}. ` +
        `Call ${request.action} again with exactly these arguments.`,
    };
  }
  markUsedUp(request); // keyed by its arguments (no framework call id): this call ran it
  return { approved: true, request, reason: approvedReason(request) };
}
