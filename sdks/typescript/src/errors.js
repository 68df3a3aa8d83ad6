// Errors: one class per error code of the Signoff API (docs/api.md#errors), and the ends of a gated call or a
// question that did not run or got no answer. Branch on the class (or on `code`), never on `message`.

/** An error answered by the Signoff API; `status` is undefined when the server could not be reached. */
export class SignoffError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ status?: number, details?: Array<Record<string, unknown>>, retryAfter?: number, cause?: unknown }} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.details = options.details ?? [];
  }
}

/** The server could not be reached, or the connection broke, and retrying did not help. */
export class ConnectionFailed extends SignoffError {
  /** @param {string} message @param {{ cause?: unknown }} [options] */
  constructor(message, options = {}) {
    super("connection_failed", message, options);
  }
}

/**
 * Names a class by a string, so that minified bundles keep the name errors print with.
 * @template {Function} C
 * @param {C} Class
 * @param {string} name
 * @returns {C}
 */
function named(Class, name) {
  Object.defineProperty(Class.prototype, "name", { value: name, writable: true, configurable: true });
  return Class;
}
named(SignoffError, "SignoffError");
named(ConnectionFailed, "ConnectionFailed");

/** @type {Record<string, typeof SignoffError>} */
const classes = {};

/**
 * The class for one API error code.
 * @template {typeof SignoffError} B
 * @param {string} code the API's code, or "" for a class no code maps to
 * @param {string} name
 * @param {B} Base
 * @returns {B}
 */
function define(code, name, Base) {
  const Parent = /** @type {typeof SignoffError} */ (Base);
  const Class = /** @type {B} */ (named({ [name]: class extends Parent {} }[name], name));
  if (code) classes[code] = Class;
  return Class;
}

class WithRetryAfter extends SignoffError {
  /** @param {string} code @param {string} message @param {{ status?: number, details?: Array<Record<string, unknown>>, retryAfter?: number }} [options] */
  constructor(code, message, options = {}) {
    super(code, message, options);
    this.retryAfter = options.retryAfter;
  }
}

export const Conflict = define("", "Conflict", SignoffError);
export const BadRequest = define("bad_request", "BadRequest", SignoffError);
export const InvalidRequest = define("invalid_request", "InvalidRequest", SignoffError);
export const InvalidArgs = define("invalid_args", "InvalidArgs", SignoffError);
export const CommentRequired = define("comment_required", "CommentRequired", SignoffError);
export const InvalidEdit = define("invalid_edit", "InvalidEdit", SignoffError);
export const EditNotAllowed = define("edit_not_allowed", "EditNotAllowed", SignoffError);
export const InvalidReason = define("invalid_reason", "InvalidReason", SignoffError);
export const InvalidPolicy = define("invalid_policy", "InvalidPolicy", SignoffError);
export const InvalidRevision = define("invalid_revision", "InvalidRevision", SignoffError);
export const WrongKind = define("wrong_kind", "WrongKind", SignoffError);
export const InvalidAnswer = define("invalid_answer", "InvalidAnswer", SignoffError);
export const Unauthorized = define("unauthorized", "Unauthorized", SignoffError);
export const Forbidden = define("forbidden", "Forbidden", SignoffError);
export const NotAnApprover = define("not_an_approver", "NotAnApprover", Forbidden);
export const SelfApproval = define("self_approval", "SelfApproval", Forbidden);
export const NotFound = define("not_found", "NotFound", SignoffError);
export const MethodNotAllowed = define("method_not_allowed", "MethodNotAllowed", SignoffError);
export const IdempotencyConflict = define("idempotency_conflict", "IdempotencyConflict", Conflict);
export const AlreadyDecided = define("already_decided", "AlreadyDecided", Conflict);
export const OutcomeAlreadyReported = define("outcome_already_reported", "OutcomeAlreadyReported", Conflict);
export const NotDecided = define("not_decided", "NotDecided", Conflict);
export const AlreadyReviewed = define("already_reviewed", "AlreadyReviewed", Conflict);
export const NotReviewable = define("not_reviewable", "NotReviewable", Conflict);
export const PolicyChanged = define("policy_changed", "PolicyChanged", Conflict);
export const PayloadTooLarge = define("payload_too_large", "PayloadTooLarge", SignoffError);
export const FieldTooLarge = define("field_too_large", "FieldTooLarge", SignoffError);
export const UnsupportedMediaType = define("unsupported_media_type", "UnsupportedMediaType", SignoffError);
export const RateLimited = define("rate_limited", "RateLimited", WithRetryAfter);
export const Internal = define("internal", "Internal", SignoffError);
export const Unavailable = define("unavailable", "Unavailable", SignoffError);
export const Timeout = define("timeout", "Timeout", SignoffError);
export const TooManyConnections = define("too_many_connections", "TooManyConnections", WithRetryAfter);

/** Every API error code this SDK knows, mapped to its class. */
export const ERROR_CLASSES = Object.freeze(classes);

/**
 * The error for an API error answer: its code's class, `Conflict` for an unknown 409, else `SignoffError`.
 * @param {number} status
 * @param {unknown} body
 * @param {number} [retryAfter]
 * @returns {SignoffError}
 */
export function errorFromResponse(status, body, retryAfter) {
  const error = body !== null && typeof body === "object" && "error" in body ? body.error : undefined;
  if (error === null || typeof error !== "object" || !("code" in error) || typeof error.code !== "string") {
    return new SignoffError("http_error", `unexpected answer with status ${status}`, { status });
  }
  const code = error.code;
  const message = "message" in error ? String(error.message) : "";
  const details = "details" in error && Array.isArray(error.details) ? error.details : undefined;
  const Class = Object.hasOwn(ERROR_CLASSES, code) ? ERROR_CLASSES[code] : status === 409 ? Conflict : SignoffError;
  return new Class(code, message, { status, details, retryAfter });
}

/** A gated call that did not run because its request was not approved (`onReject: "throw"`). */
export class NotApproved extends Error {
  /** @param {string} message @param {import("./types.js").SignoffRequest} request */
  constructor(message, request) {
    super(message);
    this.request = request;
  }
}

/** Rejected by a person, by policy, or by a deadline with `on_timeout: reject`. */
export class Rejected extends NotApproved {}
/** No decision before the deadline, under `on_timeout: fail`: the request ended `expired`. */
export class Expired extends NotApproved {}
/** The request was withdrawn (cancelled) before anyone decided it. */
export class Cancelled extends NotApproved {}

/** A gated call or `askHuman` waited its `timeout` and the request is still pending; calling again resumes it. */
export class ApprovalTimeout extends Error {
  /** @param {string} message @param {import("./types.js").SignoffRequest} request */
  constructor(message, request) {
    super(message);
    this.request = request;
  }
}

/** `askHuman` got no answer: the question expired at its deadline, or was cancelled. */
export class Unanswered extends Error {
  /** @param {string} message @param {import("./types.js").SignoffRequest} request */
  constructor(message, request) {
    super(message);
    this.request = request;
  }
}

for (const [Class, name] of /** @type {const} */ ([
  [NotApproved, "NotApproved"],
  [Rejected, "Rejected"],
  [Expired, "Expired"],
  [Cancelled, "Cancelled"],
  [ApprovalTimeout, "ApprovalTimeout"],
  [Unanswered, "Unanswered"],
])) {
  named(Class, name);
}
