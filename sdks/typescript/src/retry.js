// When a call is tried again, and after how long. Not part of the package's exports: the client uses it, and a unit
// test checks the rules.
//
// - Every call is retried when it never reached the server: a connection that could not be opened,
//   `429 rate_limited` and `503 too_many_connections` (both answered before the server looks at the call).
// - Calls that are safe to repeat (`repeatable`) are also retried after a broken connection, a timeout, and `500`,
//   `502`, `503` and `504`: every GET, and creates, which always carry an idempotency key, so a repeat returns the
//   request the first attempt made.
// - `decide`, `answer`, `confirm`, `flag`, `cancel` and `reportOutcome` are not repeated once the server may have
//   acted on them: a second attempt could only answer `409`, hiding the first one's result.

import { RateLimited, SignoffError, TooManyConnections } from "./errors.js";

/** Error codes (Node's and undici's) of a connection that could not be opened: the server never saw the call. */
const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

/**
 * Whether a failed `fetch` never reached the server (so any call may be sent again).
 * @param {unknown} error
 */
export function neverSent(error) {
  for (let cause = error, depth = 0; cause !== null && typeof cause === "object" && depth < 5; depth++) {
    if ("code" in cause && typeof cause.code === "string" && NEVER_SENT.has(cause.code)) return true;
    cause = "cause" in cause ? cause.cause : undefined;
  }
  return false;
}

/** @param {number} attempt */
function backoff(attempt) {
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
}

/**
 * How long to wait before trying `call` again after `failure` (an API error, or what `fetch` threw), or undefined
 * not to try again. `attempt` counts the retries made so far.
 * @param {{ repeatable: boolean }} call
 * @param {unknown} failure
 * @param {number} attempt
 * @param {number} maxRetries
 * @returns {number | undefined} milliseconds
 */
export function retryDelay(call, failure, attempt, maxRetries) {
  if (attempt >= maxRetries) return undefined;
  if (failure instanceof RateLimited || failure instanceof TooManyConnections) {
    return Math.max((failure.retryAfter ?? 0) * 1000, backoff(attempt));
  }
  if (failure instanceof SignoffError) {
    const status = failure.status ?? 0;
    return call.repeatable && [500, 502, 503, 504].includes(status) ? backoff(attempt) : undefined;
  }
  return neverSent(failure) || call.repeatable ? backoff(attempt) : undefined;
}
