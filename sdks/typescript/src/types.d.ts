// The wire types of the Signoff API (docs/api.md), exactly as the server sends them: snake_case fields, every field
// present (`null` when it has no value). Objects may carry fields a newer server added; status and kind fields are
// open string unions for the same reason.

/** Any JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A JSON object: what `args`, `context` and `state` hold. */
export type JsonObject = { [key: string]: Json };

/** A string union that still accepts values a newer server may send. */
type Open<T extends string> = T | (string & {});

/** `pending`, then `approved`, `rejected`, `expired`, `cancelled` or (a question) `answered`. */
export type RequestStatus = Open<"pending" | "approved" | "rejected" | "expired" | "cancelled" | "answered">;

/** Who decided: a person, a policy rule, the deadline, or (a cancel) an agent or admin key. */
export type DecidedBy =
  | { kind: "human"; approver_id: string; channel: string }
  | { kind: "policy"; rule: string }
  | { kind: "timeout" }
  | { kind: "agent"; key_id: string }
  /** A standing approval (`grant_id`) that `approver_id` granted approved the request when it was created. */
  | { kind: "grant"; grant_id: string; approver_id: string };

/** The one decision of a request. Execute `args`, never the request's proposed `args`. */
export interface Decision {
  /** The request's new status. */
  outcome: Open<"approved" | "rejected" | "expired" | "cancelled" | "answered">;
  /** The arguments to execute: the proposal, or an approver's edit. */
  args: JsonObject;
  /** Whether `args` differ from the proposal. */
  edited: boolean;
  comment: string | null;
  reason: string | null;
  /** A question's answer (outcome `answered`). */
  answer?: string | null;
  by: DecidedBy;
  at: string;
}

/** One person's approval toward the quorum, with the arguments they approved. */
export interface Approval {
  approver_id: string;
  channel: string;
  comment: string | null;
  args: JsonObject;
  edited: boolean;
  at: string;
}

/** What the agent reported after executing (or failing to). */
export interface Outcome {
  ok: boolean;
  detail: Json;
  at: string;
}

export interface RequestedBy {
  key_id: string;
  key_name: string;
  /** The person who answers for the request and may never approve it, when there is one. */
  responsible?: string;
}

export interface Escalation {
  due_at: string;
  to: string;
  fired_at: string | null;
}

/** How the policy in force placed the request. */
export interface Placement {
  version: number;
  content_hash: string;
  rule: string | null;
  error: string | null;
  /** Tagged by `kind`: `approve`, `deny`, `route` or `review`. */
  verdict: { kind: Open<"approve" | "deny" | "route" | "review"> } & { [field: string]: Json };
}

/** An approval request or a question, as every endpoint that returns one answers it. */
export interface SignoffRequest {
  id: string;
  status: RequestStatus;
  /** `approval` (approve or reject) or `question` (answered with text). */
  kind: Open<"approval" | "question">;
  /** A question's text; null for an approval. */
  question: string | null;
  /** A question's allowed answers; empty means free text. */
  options: string[];
  action: string;
  /** The arguments the agent proposed (see `decision.args` for what to execute). */
  args: JsonObject;
  summary: string | null;
  reasoning: string | null;
  context: JsonObject;
  confidence: number | null;
  tags: string[];
  mode: Open<"pre" | "post">;
  run_id: string | null;
  call_id: string | null;
  callback_url: string | null;
  state: JsonObject | null;
  timeout_s: number | null;
  /** The rejected or expired request this one asks again. */
  revises: string | null;
  /** The request that asked this one again. */
  revised_by: string | null;
  requested_by: RequestedBy;
  created_at: string;
  updated_at: string;
  policy: Placement | null;
  group: string | null;
  approvals_required: number;
  approvals: Approval[];
  allow_edit: boolean;
  reject_reasons: string[];
  sampled: boolean | null;
  deadline_at: string | null;
  on_timeout: Open<"approve" | "reject" | "fail"> | null;
  escalations: Escalation[];
  decision: Decision | null;
  outcome: Outcome | null;
  /** A person's one review of the action once it ran; absent until reviewed. */
  review?: Review;
  /** What the agent reported doing about a flag, when its outcome was already reported; absent until then. */
  remediation?: Outcome;
}

/** A sampled review's confirmation or flag, or a flag on a request policy let through (`miss: true`). */
export interface Review {
  verdict: Open<"confirmed" | "flagged">;
  /** A flag's reason (free text or a short code such as `wrong_amount`); null on a confirmation. */
  reason: string | null;
  comment: string | null;
  /** A flag's demand that the agent undo the action. */
  undo: boolean;
  /** A flag on a request policy approved without a person: a miss of the gate. */
  miss: boolean;
  by: string;
  channel: string;
  at: string;
}

/** One event of the hash-chained audit log: a request's timeline, or the live stream. */
export interface SignoffEvent {
  seq: number;
  request_id: string | null;
  kind: Open<
    | "created"
    | "routed"
    | "escalated"
    | "approvals_reset"
    | "approval_recorded"
    | "decided"
    | "answered"
    | "cancelled"
    | "revised"
    | "confirmed"
    | "flagged"
    | "outcome_reported"
    | "callback_attempted"
    | "key_created"
    | "key_revoked"
    | "policy_applied"
    | "grant_created"
    | "grant_revoked"
  >;
  actor: string;
  data: Json;
  owner_key_id: string | null;
  at: string;
  prev_hash: string;
  hash: string;
}

/** One page of a list; pass `next_cursor` as `cursor` for the next, until it is null. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** The body of a callback, as `verifyWebhook` returns it. */
export interface WebhookMessage {
  /** `request.decided` when the request leaves `pending`; `request.flagged` when a person flags what the agent did. */
  type: Open<"request.decided" | "request.flagged">;
  timestamp: string;
  data: SignoffRequest;
}
