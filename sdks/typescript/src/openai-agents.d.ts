import type { Signoff } from "./client.js";

export interface SignoffAgentsOptions {
  /** One line for the approver, per tool: a template over the input (`"Refund {amount} to {customer}"`) or a function. */
  summary?: Record<string, string | ((input: any) => string)>;
  /** The run the calls belong to; default the one set by `withRun`. */
  runId?: string;
  /** Milliseconds `resolveInterruptions` waits for the decisions before throwing `ApprovalTimeout`. */
  timeout?: number;
  /** Default a new client from `SIGNOFF_URL` and `SIGNOFF_KEY`. */
  client?: Signoff;
}

/** What `resolveInterruptions` reads of a `RunToolApprovalItem`. */
export interface ToolApprovalItem {
  readonly name?: string | undefined;
  readonly toolName?: string | undefined;
  readonly arguments?: string | undefined;
  /** The model's tool call; its `callId` ties the interruption to the request `needsApproval` made. */
  readonly rawItem?: unknown;
}

/** What `resolveInterruptions` uses of a `RunState`. */
export interface ApprovalState {
  approve(item: any, options?: { alwaysApprove?: boolean }): void;
  reject(item: any, options?: { alwaysReject?: boolean; message?: string }): void;
}

/**
 * A tool's `needsApproval` that asks Signoff at the call: it creates the request (people are notified at once) and
 * answers `false`, so the tool runs without an interruption, only when it is already approved for exactly these
 * arguments (by a policy rule, say); otherwise the run stops with an interruption for `resolveInterruptions`.
 */
export declare function needsApproval(
  action: string,
  options?: Omit<SignoffAgentsOptions, "timeout">,
): (runContext: unknown, input: unknown, callId?: string) => Promise<boolean>;

/**
 * Waits for Signoff's decision on each of a run's `interruptions` (the same requests `needsApproval` made, or new
 * ones for tools with `needsApproval: true`) and applies them on `result.state`: `approve` for an approval of the
 * call as made, `reject` with the reason as the message for the model otherwise (an approval with edited arguments
 * names them; the model's call again with exactly them then runs without asking again). Resolves to the state, to
 * resume with `run(agent, state)`. Still pending after `timeout`: throws `ApprovalTimeout` and applies nothing.
 */
export declare function resolveInterruptions<S extends ApprovalState>(
  result: { interruptions: readonly ToolApprovalItem[]; state: S },
  options?: SignoffAgentsOptions,
): Promise<S>;
