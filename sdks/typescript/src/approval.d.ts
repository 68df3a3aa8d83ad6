import type { Signoff } from "./client.js";
import type { JsonObject, SignoffRequest } from "./types.js";

/** A gated function: called like the original, it resolves once Signoff's decision allowed it to run (or not). */
export type Gated<A extends JsonObject, R extends unknown[], T> = (args: A, ...rest: R) => Promise<T>;

export interface RequireApprovalOptions<A extends JsonObject = JsonObject> {
  /** The request's action, which policy rules match on; default the function's name. */
  action?: string;
  /** One line for the approver: a template over the arguments (`"Refund {amount} to {customer}"`) or a function. */
  summary?: string | ((args: A) => string);
  /** Milliseconds to wait for a decision before throwing `ApprovalTimeout`; default until the request's deadline. */
  timeout?: number;
  /** Not approved: `"return"` a message for the model (the default), or `"throw"` `Rejected`, `Expired` or `Cancelled`. */
  onReject?: "return" | "throw";
  /** The run the call belongs to, or a function of its arguments; default the one set by `withRun`. */
  runId?: string | ((args: A) => string);
  /** The client to ask with; default a new one from `SIGNOFF_URL` and `SIGNOFF_KEY` at each call. */
  client?: Signoff;
}

/**
 * Gates `fn` behind a Signoff request. The gated function takes the same arguments: one JSON object (what the
 * approver sees and may edit), then anything else, passed through. Each call creates (or, in the same run, finds
 * again) a request keyed by the run id and a call id made from the action and the arguments, waits for its
 * decision, and then:
 * - approved: runs `fn` with the approved arguments (an approver's edit included) and reports the outcome;
 * - rejected, expired or cancelled: does not run; returns a message for the model, or throws with `onReject: "throw"`;
 * - still pending after `timeout`: throws `ApprovalTimeout`; calling again picks the same request up.
 */
export declare function requireApproval<A extends JsonObject, R extends unknown[], T>(
  fn: (args: A, ...rest: R) => T,
  options: RequireApprovalOptions<A> & { onReject: "throw" },
): Gated<A, R, Awaited<T>>;
export declare function requireApproval<A extends JsonObject, R extends unknown[], T>(
  fn: (args: A, ...rest: R) => T,
  options?: RequireApprovalOptions<A>,
): Gated<A, R, Awaited<T> | string>;

export interface AskHumanOptions {
  /** The only answers accepted; without them, any text. */
  options?: string[];
  /** Milliseconds to wait for the answer before throwing `ApprovalTimeout`; default until the question's deadline. */
  timeout?: number;
  /** What policy sees (rules may route questions by it); default `ask_human`. */
  action?: string;
  /** Default the one set by `withRun`. */
  runId?: string;
  /** Default one made from the question and its options: the same question in one run is asked once. */
  callId?: string;
  context?: JsonObject;
  client?: Signoff;
  signal?: AbortSignal;
}

/**
 * Asks a person `question` and resolves to the answer's text. Throws `Unanswered` when the question expired or was
 * cancelled, `ApprovalTimeout` when `timeout` passed first (asking again picks the same question up).
 */
export declare function askHuman(question: string, options?: AskHumanOptions): Promise<string>;

/** Runs `fn` with the gated calls and questions inside it (awaited or not) belonging to the run `runId`. */
export declare function withRun<T>(runId: string, fn: () => T): T;
/** The run id gated calls use here: the one set by `withRun`, else one random id for this process. */
export declare function currentRunId(): string;
/** What a gated call returns to the model for a request that was not approved: `"Rejected by dana: too much"`. */
export declare function notApprovedMessage(request: SignoffRequest): string;
/** A question's answer; else throws `Unanswered` (expired, cancelled) or `ApprovalTimeout` (still pending). */
export declare function answerText(request: SignoffRequest): string;
/** The call id of a gated call (`action:<32 hex>`): the same as the Python SDK's for the same arguments. */
export declare function approvalCallId(action: string, args: JsonObject): string;
/** The call id `askHuman` gives a question: the same as the Python SDK's `ask_human`. */
export declare function questionCallId(question: string, options?: string[]): string;
