// `requireApproval`: gate a function behind a Signoff request; `askHuman`: ask a person a question and get the text
// back; the run ids and call ids that make both safe to repeat.
//
// A gated call takes one JSON object of arguments (what the approver sees and may edit) and:
// 1. creates a request keyed by the run id and a call id made from the action and the arguments, so a retried or
//    resumed agent (a new process, the same run, the same call) gets the request it made before instead of asking
//    again. A request already used up (it has an outcome, or this process already ran it) makes the same call ask
//    anew: the call id gets `#2`, `#3`, ...;
// 2. waits for the decision (at most `timeout` ms, if given; else until the request's deadline decides it);
// 3. if approved, runs the function with the approved arguments (an approver's edit included) and reports the
//    outcome: `ok` with the JSON result, or the error's name and message, which is then thrown again;
// 4. if not approved, returns a message for the model (`onReject: "return"`) or throws `Rejected`, `Expired` or
//    `Cancelled` (`onReject: "throw"`). Still pending after `timeout` throws `ApprovalTimeout` either way.

import { Signoff } from "./client.js";
import { ApprovalTimeout, Unanswered } from "./errors.js";
import {
  approvalTimeout,
  currentRunId,
  gatedArgs,
  markUsedUp,
  notApprovedError,
  notApprovedMessage,
  openRequest,
  questionCallId,
  resolveRunId,
  summarize,
} from "./gate.js";

export { approvalCallId, currentRunId, notApprovedMessage, questionCallId, withRun } from "./gate.js";

/**
 * @typedef {import("./types.js").SignoffRequest} SignoffRequest
 * @typedef {import("./types.js").JsonObject} JsonObject
 */

const MAX_RESULT_CHARS = 16384;

/** @param {unknown} result */
function successDetail(result) {
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result);
  } catch {
    return null;
  }
  return text !== undefined && text.length <= MAX_RESULT_CHARS ? { result: JSON.parse(text) } : null;
}

/** @param {unknown} error */
function failureDetail(error) {
  const name = error instanceof Error ? (error.name !== "Error" ? error.name : error.constructor.name) : typeof error;
  const message = error instanceof Error ? error.message : String(error);
  return { error: name, message: message.slice(0, 2000) };
}

/**
 * Reports an outcome; a failure to report is a warning, not an error: the function ran, and its result matters more.
 * @param {Signoff} api
 * @param {SignoffRequest} request
 * @param {boolean} ok
 * @param {import("./types.js").Json} detail
 */
async function report(api, request, ok, detail) {
  try {
    await api.reportOutcome(request.id, ok, detail);
  } catch (error) {
    process.emitWarning(
      `signoff: could not report the outcome of request ${request.id}: ${/** @type {Error} */ (error).message}`,
    );
  }
}

/**
 * @template {JsonObject} A
 * @template {unknown[]} R
 * @template T
 * @param {(args: A, ...rest: R) => T} fn
 * @param {import("./approval.js").RequireApprovalOptions<A>} [options]
 * @returns {(args: A, ...rest: R) => Promise<Awaited<T> | string>}
 */
export function requireApproval(fn, options = {}) {
  if (typeof fn !== "function") throw new TypeError("requireApproval: the first argument is the function to gate");
  const action = options.action ?? fn.name;
  if (!action) throw new TypeError("requireApproval: name the action ({ action }) of an anonymous function");
  const onReject = options.onReject ?? "return";
  if (onReject !== "return" && onReject !== "throw") {
    throw new TypeError(`requireApproval: onReject is "return" or "throw", not ${JSON.stringify(onReject)}`);
  }
  /**
   * @param {A} args
   * @param {R} rest
   * @returns {Promise<any>} the function's result, or the message for a call that was not approved
   */
  async function gated(args, ...rest) {
    const proposed = gatedArgs(args, action);
    const runId = resolveRunId(/** @type {any} */ (options.runId), proposed);
    const summary = summarize(/** @type {any} */ (options.summary), proposed);
    const api = options.client ?? new Signoff();
    let request = await openRequest(api, action, proposed, { runId, summary });
    if (request.status === "pending") request = await api.wait(request.id, { timeout: options.timeout });
    if (request.status === "pending") throw approvalTimeout(request, options.timeout);
    if (request.status !== "approved" || request.decision === null) {
      if (onReject === "throw") throw notApprovedError(request);
      return notApprovedMessage(request);
    }
    markUsedUp(request);
    let result;
    try {
      result = await fn(/** @type {A} */ (request.decision.args), ...rest);
    } catch (error) {
      await report(api, request, false, failureDetail(error));
      throw error;
    }
    await report(api, request, true, successDetail(result));
    return result;
  }
  Object.defineProperty(gated, "name", { value: fn.name || action });
  return gated;
}

/**
 * The answer of a question that has one; else throws `Unanswered` (expired, cancelled) or `ApprovalTimeout` (pending).
 * @param {SignoffRequest} request
 * @returns {string}
 */
export function answerText(request) {
  const answer = request.decision?.answer;
  if (request.status === "answered" && typeof answer === "string") return answer;
  if (request.status === "pending") {
    throw new ApprovalTimeout(`no answer yet to question ${request.id}: ask again to keep waiting`, request);
  }
  if (request.status === "cancelled") {
    const why = request.decision?.reason || request.decision?.comment;
    throw new Unanswered(`No answer: the question was cancelled${why ? ` (${why})` : ""}`, request);
  }
  if (request.status === "expired") {
    throw new Unanswered("No answer: nobody answered the question before its deadline", request);
  }
  throw new Unanswered(`No answer: the request is ${request.status}`, request);
}

/**
 * @param {string} question
 * @param {import("./approval.js").AskHumanOptions} [options]
 * @returns {Promise<string>}
 */
export async function askHuman(question, options = {}) {
  const api = options.client ?? new Signoff();
  let request = await api.ask(question, {
    options: options.options,
    action: options.action,
    context: options.context,
    runId: options.runId ?? currentRunId(),
    callId: options.callId ?? questionCallId(question, options.options),
    signal: options.signal,
  });
  if (request.status === "pending")
    request = await api.wait(request.id, { timeout: options.timeout, signal: options.signal });
  return answerText(request);
}
