// What gated calls, questions and the framework helpers share: run ids, call ids (the same as the Python SDK's),
// what this process remembers of the calls it made, and the messages for calls that were not approved. Not part of
// the package's exports; approval.js re-exports the public part.

import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomUUID } from "node:crypto";
import { ApprovalTimeout, Cancelled, Expired, IdempotencyConflict, NotApproved, Rejected } from "./errors.js";

/**
 * @typedef {import("./client.js").Signoff} Signoff
 * @typedef {import("./types.js").SignoffRequest} SignoffRequest
 * @typedef {import("./types.js").JsonObject} JsonObject
 */

const runs = new AsyncLocalStorage();
const PROCESS_RUN_ID = `process-${randomUUID()}`;

/**
 * Runs `fn` with gated calls and questions inside it belonging to the run `runId` (a conversation, ticket or job id).
 * @template T
 * @param {string} runId
 * @param {() => T} fn
 * @returns {T}
 */
export function withRun(runId, fn) {
  return runs.run(runId, fn);
}

/** The run id gated calls use here: the one set by `withRun`, else this process's own. */
export function currentRunId() {
  return /** @type {string | undefined} */ (runs.getStore()) ?? PROCESS_RUN_ID;
}

/**
 * A number as Python's `json.dumps` writes it, so call ids match the Python SDK's: integers in full, other numbers in
 * Python's `repr` (exponent form below 1e-4 and from 1e16).
 * @param {number} value
 */
function pythonNumber(value) {
  if (!Number.isFinite(value)) throw new TypeError(`${value} is not JSON`);
  if (Number.isInteger(value)) return BigInt(value).toString();
  const [mantissa, exponentText] = value.toExponential().split("e");
  const exponent = Number(exponentText);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace(/^-/, "").replace(".", "");
  const point = exponent + 1; // where the decimal point goes in `digits`
  if (point <= -4 || point > 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * `value` as compact JSON with sorted keys and only ASCII, as Python's `json.dumps(value, sort_keys=True,
 * separators=(",", ":"))` writes it; refuses anything that is not plain JSON.
 * @param {unknown} value
 * @returns {string}
 */
export function canonicalJson(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return String(value);
    case "number":
      return pythonNumber(value);
    case "string":
      return JSON.stringify(value).replace(
        /[^\x20-\x7e]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
      );
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        throw new TypeError(`a ${prototype?.constructor?.name ?? "non-plain object"} is not JSON`);
      }
      const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${canonicalJson(k)}:${canonicalJson(v)}`).join(",")}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} is not JSON`);
  }
}

/**
 * The call id of a gated call: the same for the same action and arguments (and the same as the Python SDK's).
 * @param {string} action
 * @param {JsonObject} args
 */
export function approvalCallId(action, args) {
  const digest = createHash("sha256")
    .update(`${action}\n${canonicalJson(args)}`)
    .digest("hex");
  return `${action.slice(0, 128)}:${digest.slice(0, 32)}`;
}

/**
 * The call id `askHuman` gives a question: the same for the same question and options (and the Python SDK's).
 * @param {string} question
 * @param {string[]} [options]
 */
export function questionCallId(question, options) {
  const text = `[${JSON.stringify(question)}, [${(options ?? []).map((o) => JSON.stringify(o)).join(", ")}]]`;
  return `ask_human:${createHash("sha256").update(text).digest("hex").slice(0, 32)}`;
}

/**
 * What this process remembers of the calls it made, each bounded (the oldest entries are forgotten first):
 * - `usedUp`: requests a gated call ran, so that the same call asked again in the run asks anew even before its
 *   outcome is reported;
 * - `editedApprovals`: approvals with edited arguments, by the run and the call id those arguments make, so that the
 *   model's call again with exactly them is that approval rather than a new question (see integration.js); each is
 *   used by one call, which `toolCalls` then ties to it.
 * - `toolCalls`: which request a framework's tool call was tied to, when not to its own.
 */
const usedUp = new Set();
const editedApprovals = new Map();
const toolCalls = new Map();
const MEMORY = 10_000;

/**
 * @param {Set<string> | Map<string, string>} memory
 * @param {string} key
 * @param {string} [value]
 */
function remember(memory, key, value) {
  if (memory instanceof Map) memory.set(key, /** @type {string} */ (value));
  else memory.add(key);
  const oldest = memory.keys().next();
  if (memory.size > MEMORY && !oldest.done) memory.delete(oldest.value);
}

/** @param {SignoffRequest} request */
export function markUsedUp(request) {
  remember(usedUp, request.id);
}

/** @param {string} runId @param {SignoffRequest} request approved, with `decision.args` other than the call's */
export function rememberEditedApproval(runId, request) {
  if (request.decision === null) return;
  remember(editedApprovals, `${runId}\n${approvalCallId(request.action, request.decision.args)}`, request.id);
}

/**
 * The call id of a framework's tool call: the framework's own id of it (`call_8Xk2...`, as the Python SDK's OpenAI
 * Agents integration keys it), or a digest of one longer than the API's 256 characters.
 * @param {string} toolCallId
 */
export function toolCallCallId(toolCallId) {
  if (toolCallId.length >= 1 && toolCallId.length <= 256) return toolCallId;
  return `tool-call:${createHash("sha256").update(toolCallId).digest("hex").slice(0, 32)}`;
}

/**
 * Checks that a gated call's arguments are one plain JSON object.
 * @param {unknown} args
 * @param {string} action
 * @returns {JsonObject}
 */
export function gatedArgs(args, action) {
  const value = args === undefined ? {} : args;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${action}: a gated call takes one object of arguments`);
  }
  try {
    canonicalJson(value);
  } catch (error) {
    throw new TypeError(
      `${action}: the arguments of a gated call must be JSON (${/** @type {Error} */ (error).message})`,
    );
  }
  return /** @type {JsonObject} */ (value);
}

/**
 * The request for one gated call: made, or found again (the same run and call).
 *
 * A call of `requireApproval` is keyed by its action and arguments, skipping requests already used up (they have an
 * outcome, or this process ran them). A framework's tool call is keyed by the framework's own id of the call, so each
 * call the model makes is asked on its own (those requests get no outcome to be used up by), and asking about the
 * same call again, as the OpenAI Agents SDK does on resuming, gets the same request.
 * @param {Signoff} api
 * @param {string} action
 * @param {JsonObject} args
 * @param {{ runId: string, summary?: string, toolCallId?: string, signal?: AbortSignal }} options
 * @returns {Promise<SignoffRequest>}
 */
export async function openRequest(api, action, args, options) {
  const { runId, summary, toolCallId, signal } = options;
  if (toolCallId !== undefined) {
    const call = `${runId}\n${toolCallId}`;
    const edit = `${runId}\n${approvalCallId(action, args)}`;
    const tied = toolCalls.get(call) ?? editedApprovals.get(edit);
    if (tied !== undefined) {
      editedApprovals.delete(edit);
      remember(toolCalls, call, tied);
      return api.get(tied, { signal });
    }
    const callId = toolCallCallId(toolCallId);
    try {
      return await api.create(action, args, { summary, runId, callId, signal });
    } catch (error) {
      // The same call made before with other fields (a summary given to one helper and not the other): that request.
      if (!(error instanceof IdempotencyConflict)) throw error;
      const found = await findByCallId(api, runId, callId, signal);
      if (found === undefined) throw error;
      return found;
    }
  }
  const callId = approvalCallId(action, args);
  for (let attempt = 1; ; attempt++) {
    const request = await api.create(action, args, {
      summary,
      runId,
      callId: attempt === 1 ? callId : `${callId}#${attempt}`,
      signal,
    });
    if (request.outcome === null && !usedUp.has(request.id)) return request;
  }
}

/**
 * @param {Signoff} api
 * @param {string} runId
 * @param {string} callId
 * @param {AbortSignal | undefined} signal
 */
async function findByCallId(api, runId, callId, signal) {
  for (let cursor; ;) {
    const page = await api.list({ runId, cursor, limit: 500, signal });
    const found = page.items.find((request) => request.call_id === callId);
    if (found !== undefined || page.next_cursor === null) return found;
    cursor = page.next_cursor;
  }
}

/**
 * What a gated call returns to the model for a request that was not approved.
 * @param {SignoffRequest} request
 */
export function notApprovedMessage(request) {
  const decision = request.decision;
  if (decision === null) return `Not approved: the request is ${request.status}`;
  const text = (decision.comment || decision.reason || "").trim();
  const by = decision.by;
  switch (request.status) {
    case "rejected": {
      if (by.kind === "timeout") return "Rejected: no decision before the deadline";
      const who = by.kind === "human" ? ` by ${by.approver_id}` : by.kind === "policy" ? " by policy" : "";
      return text ? `Rejected${who}: ${text}` : `Rejected${who}`;
    }
    case "expired":
      return "Expired: no decision before the deadline";
    case "cancelled":
      return text ? `Cancelled: ${text}` : "Cancelled";
    default:
      return `Not approved: the request is ${request.status}`;
  }
}

/**
 * The error a request that ended without approval becomes under `onReject: "throw"`.
 * @param {SignoffRequest} request
 */
export function notApprovedError(request) {
  const message = notApprovedMessage(request);
  const Class =
    request.status === "rejected"
      ? Rejected
      : request.status === "expired"
        ? Expired
        : request.status === "cancelled"
          ? Cancelled
          : NotApproved;
  return new Class(message, request);
}

/**
 * @param {SignoffRequest} request still pending
 * @param {number | undefined} timeout
 */
export function approvalTimeout(request, timeout) {
  return new ApprovalTimeout(`no decision on request ${request.id} within ${timeout} ms; it is still pending`, request);
}

/**
 * @param {string | ((args: any) => string) | undefined} summary
 * @param {JsonObject} args
 * @returns {string | undefined}
 */
export function summarize(summary, args) {
  if (summary === undefined) return undefined;
  if (typeof summary === "function") return summary(args);
  return summary.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (match, name) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    if (!Object.hasOwn(args, name)) throw new TypeError(`summary: no argument named ${JSON.stringify(name)}`);
    const value = args[name];
    return typeof value === "string" ? value : JSON.stringify(value);
  });
}

/**
 * @param {((args: JsonObject) => string) | string | undefined} runId
 * @param {JsonObject} args
 */
export function resolveRunId(runId, args) {
  if (runId === undefined) return currentRunId();
  return typeof runId === "function" ? runId(args) : runId;
}
