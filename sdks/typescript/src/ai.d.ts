import type { Signoff } from "./client.js";

export interface ToolApprovalOptions {
  /** The names of the tools to put to Signoff; default every tool. Others run as the AI SDK would without approval. */
  tools?: readonly string[];
  /** One line for the approver, per tool: a template over the input (`"Refund {amount} to {customer}"`) or a function. */
  summary?: Record<string, string | ((input: any) => string)>;
  /** The run the calls belong to; default the one set by `withRun`. */
  runId?: string;
  /** Milliseconds to wait for each decision before throwing `ApprovalTimeout` (out of `generateText`). */
  timeout?: number;
  /** Default a new client from `SIGNOFF_URL` and `SIGNOFF_KEY`. */
  client?: Signoff;
}

/** The statuses this approval answers, a subset of the AI SDK's `ToolApprovalStatus`. */
export type SignoffApprovalStatus =
  { type: "approved"; reason?: string } | { type: "denied"; reason?: string } | undefined;

/** A `GenericToolApprovalFunction` of the AI SDK. */
export type SignoffToolApproval = (options: {
  toolCall: { toolName: string; toolCallId: string; input: unknown };
}) => Promise<SignoffApprovalStatus>;

/**
 * A `toolApproval` for `generateText`, `streamText` or `ToolLoopAgent` that asks Signoff about each call of the
 * gated tools (one request per tool call, keyed by the run and the AI SDK's id of the call), waits for the decision,
 * and answers:
 * - `approved`, with the reason `Approved by dana: <comment>`: the tool runs;
 * - `denied`, with the reason for the model (`Rejected by dana: outside the refund window`, `Expired: ...`);
 * - `denied` also for an approval with edited arguments, naming them, since the AI SDK runs only the call as the model
 *   made it; the model's call again with exactly those arguments is approved at once, without asking again.
 * Still pending after `timeout`: throws `ApprovalTimeout`, which ends the generation; the request stays pending, and
 * the same tool call (by its id) asked about again picks it up.
 */
export declare function toolApproval(options?: ToolApprovalOptions): SignoffToolApproval;
