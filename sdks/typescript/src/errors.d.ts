import type { SignoffRequest } from "./types.js";

/** One itemised problem of an `invalid_args` or `invalid_policy` error. */
export interface ErrorDetail {
  message: string;
  /** A JSON path into the request's `args`, like `$.amount`. */
  path?: string;
  line?: number;
  column?: number;
  [field: string]: unknown;
}

export interface SignoffErrorOptions {
  status?: number;
  details?: ErrorDetail[];
  retryAfter?: number;
  cause?: unknown;
}

/** An error answered by the Signoff API: branch on the class or on `code`, never on `message`. */
export declare class SignoffError extends Error {
  constructor(code: string, message: string, options?: SignoffErrorOptions);
  /** The API's stable code, like `not_found` (`connection_failed` when the server could not be reached). */
  readonly code: string;
  /** The HTTP status; undefined when the server could not be reached. */
  readonly status: number | undefined;
  /** The itemised problems of `invalid_args` and `invalid_policy`; empty otherwise. */
  readonly details: ErrorDetail[];
}

/** The server could not be reached, or the connection broke, and retrying did not help. */
export declare class ConnectionFailed extends SignoffError {
  constructor(message: string, options?: { cause?: unknown });
}

/** 409: the call conflicts with the request's state or an earlier call. */
export declare class Conflict extends SignoffError {}
/** 400: the body is not JSON or has the wrong shape, or the query string does not parse. */
export declare class BadRequest extends SignoffError {}
/** 400: a value is out of range (a create's validation rules, a refused `callback_url`, ...). */
export declare class InvalidRequest extends SignoffError {}
/** 400: `args` do not fit the policy's schema for the action; `details` has each problem's `path`. */
export declare class InvalidArgs extends SignoffError {}
/** 400: a rejection needs a non-blank `comment`. */
export declare class CommentRequired extends SignoffError {}
/** 400: a decision's `args` is not an object, or came with a rejection. */
export declare class InvalidEdit extends SignoffError {}
/** 400: the request's rule does not allow edited arguments. */
export declare class EditNotAllowed extends SignoffError {}
/** 400: the rejection's `reason` is missing or not one of the request's `reject_reasons`. */
export declare class InvalidReason extends SignoffError {}
/** 400: the policy document is invalid; `details` lists every problem with its line and column. */
export declare class InvalidPolicy extends SignoffError {}
/** 400: `revises` names no rejected or expired request of this agent's, or one already revised. */
export declare class InvalidRevision extends SignoffError {}
/** 400: an answer to a request that asks for approval, or a decision on a question. */
export declare class WrongKind extends SignoffError {}
/** 400: an answer that is empty, too long, or not one of the question's options. */
export declare class InvalidAnswer extends SignoffError {}
/** 401: no key, an unknown key, or a revoked key. */
export declare class Unauthorized extends SignoffError {}
/** 403: the key's role may not do this, or its person is not in the request's group. */
export declare class Forbidden extends SignoffError {}
/** 403: an admin key bound to no person tried to decide: people decide, not keys. */
export declare class NotAnApprover extends Forbidden {}
/** 403: the person responsible for the request tried to approve it. */
export declare class SelfApproval extends Forbidden {}
/** 404: no such request (or another agent's), or no such route. */
export declare class NotFound extends SignoffError {}
/** 405: the route does not take this method. */
export declare class MethodNotAllowed extends SignoffError {}
/** 409: the idempotency key was used before with a different body. */
export declare class IdempotencyConflict extends Conflict {}
/** 409: the request is no longer pending. */
export declare class AlreadyDecided extends Conflict {}
/** 409: the request's outcome was already reported. */
export declare class OutcomeAlreadyReported extends Conflict {}
/** 409: an outcome for a `pre` request that is still pending. */
export declare class NotDecided extends Conflict {}
/** 409: a confirm or flag on a request that already has its one review. */
export declare class AlreadyReviewed extends Conflict {}
/** 409: a confirm or flag on a request that cannot be reviewed (a person approved it; it was rejected, expired or cancelled; or, for a confirm, policy let it through). */
export declare class NotReviewable extends Conflict {}
/** 409: an advice finding made for another policy version than the one in force. */
export declare class PolicyChanged extends Conflict {}
/** 413: the body is over 1 MiB. */
export declare class PayloadTooLarge extends SignoffError {}
/** 413: a field is over its cap; the message names it. */
export declare class FieldTooLarge extends SignoffError {}
/** 415: a JSON body without a JSON content type. */
export declare class UnsupportedMediaType extends SignoffError {}
/** 429: over the key's (or address's) rate limit; wait `retryAfter` seconds. */
export declare class RateLimited extends SignoffError {
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
}
/** 500: an unexpected server failure (the cause is in the server's log). */
export declare class Internal extends SignoffError {}
/** 503: the database is not reachable. */
export declare class Unavailable extends SignoffError {}
/** 503: the server did not answer within its request timeout. A create is safe to retry with its key. */
export declare class Timeout extends SignoffError {}
/** 503: the server is at its connection cap; wait `retryAfter` seconds. */
export declare class TooManyConnections extends SignoffError {
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
}

/** Every API error code this SDK knows, mapped to its class. */
export declare const ERROR_CLASSES: Readonly<Record<string, typeof SignoffError>>;

/** The error for an API error answer: its code's class, `Conflict` for an unknown 409, else `SignoffError`. */
export declare function errorFromResponse(status: number, body: unknown, retryAfter?: number): SignoffError;

/** A gated call that did not run because its request was not approved (`onReject: "throw"`). */
export declare class NotApproved extends Error {
  constructor(message: string, request: SignoffRequest);
  readonly request: SignoffRequest;
}
/** Rejected by a person, by policy, or by a deadline with `on_timeout: reject`. */
export declare class Rejected extends NotApproved {}
/** No decision before the deadline, under `on_timeout: fail`: the request ended `expired`. */
export declare class Expired extends NotApproved {}
/** The request was withdrawn (cancelled) before anyone decided it. */
export declare class Cancelled extends NotApproved {}

/** A gated call or `askHuman` waited its `timeout` and the request is still pending; calling again resumes it. */
export declare class ApprovalTimeout extends Error {
  constructor(message: string, request: SignoffRequest);
  readonly request: SignoffRequest;
}

/** `askHuman` got no answer: the question expired at its deadline, or was cancelled. */
export declare class Unanswered extends Error {
  constructor(message: string, request: SignoffRequest);
  readonly request: SignoffRequest;
}
