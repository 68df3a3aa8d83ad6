import type { Json, JsonObject, Page, RequestStatus, SignoffEvent, SignoffRequest } from "./types.js";
import type { AskHumanOptions, RequireApprovalOptions, Gated } from "./approval.js";

/** Where `signoff serve` listens by default. */
export declare const DEFAULT_URL: "http://127.0.0.1:8700";

export interface SignoffOptions {
  /** The server's address; default `SIGNOFF_URL`, else `http://127.0.0.1:8700`. */
  url?: string;
  /** An API key (`so_agent_...`, `so_approver_...`, `so_admin_...`); default `SIGNOFF_KEY`. */
  key?: string;
  /** Milliseconds one call may take (default 60 000); `wait` and `events` set their own. */
  timeout?: number;
  /** How often a call is tried again when the retry rules allow it (default 3). */
  maxRetries?: number;
  /** The `fetch` to send with (default the global one): for proxies, custom agents, or instrumentation. */
  fetch?: typeof globalThis.fetch;
}

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call (and its retries); the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The optional fields of a create, in camelCase (sent as the API's snake_case fields). */
export interface CreateOptions extends CallOptions {
  /** One line for the approver (at most 2000 characters). */
  summary?: string;
  /** Why the agent wants to do this. */
  reasoning?: string;
  /** What the approver should see besides the arguments. */
  context?: JsonObject;
  /** 0 to 1. */
  confidence?: number;
  tags?: string[];
  /** `pre` (the default): ask before acting; `post`: report an action already taken. */
  mode?: "pre" | "post";
  /** The agent's run (a conversation, ticket or job id). */
  runId?: string;
  /** The call within the run; with `runId`, the create's idempotency key. */
  callId?: string;
  /** Where the decision is POSTed as a signed callback (see `verifyWebhook`). */
  callbackUrl?: string;
  /** Opaque agent state, returned with the request and in its callback. */
  state?: JsonObject;
  /** Seconds: shortens the policy's deadline, never extends it. */
  timeoutSeconds?: number;
  /** The id of a rejected or expired request this one asks again. */
  revises?: string;
  /** The create's idempotency key; else `runId` with `callId`, else a fresh UUID per call (reused by its retries). */
  idempotencyKey?: string;
}

export interface AskOptions extends Omit<CreateOptions, "mode" | "revises" | "reasoning" | "confidence"> {
  /** The only answers accepted; without them, any text. */
  options?: string[];
  /** What policy sees (rules may route questions by it); default `ask_human`. */
  action?: string;
}

export interface ListOptions extends CallOptions {
  status?: RequestStatus;
  action?: string;
  /** Requests routed to this group: its queue. */
  group?: string;
  runId?: string;
  /** Page size, 1 to 500 (default 50). */
  limit?: number;
  /** The previous page's `next_cursor`. */
  cursor?: string;
}

export interface WaitOptions extends CallOptions {
  /** Milliseconds to wait at most; then the request is returned still pending. Default: until it is decided. */
  timeout?: number;
}

export interface ConfirmOptions extends CallOptions {
  comment?: string;
}

export interface FlagOptions extends CallOptions {
  comment?: string;
  /** Whether the agent must undo the action. */
  undo?: boolean;
}

export interface DecideOptions extends CallOptions {
  /** Required (non-blank) to reject. */
  comment?: string;
  /** For a rejection: one of the request's `reject_reasons` when it has any. */
  reason?: string;
  /** For an approval: the arguments approved instead of the proposal. */
  args?: JsonObject;
}

export interface EventsOptions extends CallOptions {
  /** Start after the event with this `seq` (default: the start of the log). */
  after?: number;
}

/**
 * A client of one Signoff server with one API key. Every method returns the API's JSON as documented in
 * docs/api.md. Calls are retried with backoff when that is safe: any call that never reached the server (a refused
 * connection, `429`, `503 too_many_connections`); GETs and creates (always idempotent) also after a broken
 * connection, a timeout, `500`, `502`, `503` and `504`. Decisions, answers, cancels and outcomes are never repeated
 * once the server may have acted. Errors are `SignoffError`s of the class named for their code.
 */
export declare class Signoff {
  constructor(options?: SignoffOptions);
  /** The server's address, without a trailing slash. */
  readonly url: string;
  /** Ask for approval. Policy places the request at once, so check `status`: it may already be decided. */
  create(action: string, args?: JsonObject, options?: CreateOptions): Promise<SignoffRequest>;
  /** Ask a person a question (`kind: question`); idempotent like `create`. */
  ask(question: string, options?: AskOptions): Promise<SignoffRequest>;
  get(id: string, options?: CallOptions): Promise<SignoffRequest>;
  /** One page of requests, newest first; pass `next_cursor` as `cursor` for the next page. */
  list(options?: ListOptions): Promise<Page<SignoffRequest>>;
  /** Long-polls (300 s at a time) until the request leaves `pending`, or `timeout` milliseconds pass. */
  wait(id: string, options?: WaitOptions): Promise<SignoffRequest>;
  /** Approve (optionally with edited `args`) or reject (a `comment` is required), as the key's person. */
  decide(id: string, outcome: "approve" | "reject", options?: DecideOptions): Promise<SignoffRequest>;
  approve(id: string, options?: Pick<DecideOptions, "comment" | "args" | "signal">): Promise<SignoffRequest>;
  reject(id: string, comment: string, options?: Pick<DecideOptions, "reason" | "signal">): Promise<SignoffRequest>;
  /** Answer a question, as the key's person (a member of its group); the first answer ends it. */
  answer(id: string, text: string, options?: CallOptions): Promise<SignoffRequest>;
  /** Confirm a pending sampled review, as the key's person: it is approved, with `review.verdict: "confirmed"`. */
  confirm(id: string, options?: ConfirmOptions): Promise<SignoffRequest>;
  /**
   * Flag what the agent did, as the key's person: a pending sampled review is rejected; a request policy let through
   * keeps its decision and records a miss. The agent gets a signed `request.flagged` callback.
   */
  flag(id: string, reason: string, options?: FlagOptions): Promise<SignoffRequest>;
  /** Withdraw a pending request. */
  cancel(id: string, reason?: string, options?: CallOptions): Promise<SignoffRequest>;
  /** Record what happened after executing (or failing to); once per request. */
  reportOutcome(id: string, ok: boolean, detail?: Json, options?: CallOptions): Promise<SignoffRequest>;
  /** The request's timeline: its audit events, oldest first. */
  requestEvents(id: string, options?: CallOptions): Promise<SignoffEvent[]>;
  /**
   * Every event this key may see, live (`for await`), from after `after`. A dropped connection is resumed with
   * `Last-Event-ID`, so no event is lost or repeated. It ends when you stop iterating (or abort), or by an error
   * after `maxRetries` failed reconnections in a row.
   */
  events(options?: EventsOptions): AsyncGenerator<SignoffEvent, void, undefined>;
  /** `requireApproval` with this client. */
  requireApproval<A extends JsonObject, R extends unknown[], T>(
    fn: (args: A, ...rest: R) => T,
    options: Omit<RequireApprovalOptions<A>, "client"> & { onReject: "throw" },
  ): Gated<A, R, Awaited<T>>;
  requireApproval<A extends JsonObject, R extends unknown[], T>(
    fn: (args: A, ...rest: R) => T,
    options?: Omit<RequireApprovalOptions<A>, "client">,
  ): Gated<A, R, Awaited<T> | string>;
  /** `askHuman` with this client. */
  askHuman(question: string, options?: Omit<AskHumanOptions, "client">): Promise<string>;
  /** The client without its key. */
  toString(): string;
}
