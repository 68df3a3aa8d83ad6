// `Signoff`: the HTTP API as typed methods, with idempotent creates, careful retries (see retry.js) and a resumable
// event stream. It uses the global `fetch` (or the one it is given) and holds no other resources.

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectionFailed, NotFound, SignoffError, errorFromResponse } from "./errors.js";
import { retryDelay } from "./retry.js";
// A cycle (approval.js makes clients), safe since neither module uses the other while loading.
import { askHuman, requireApproval } from "./approval.js";

export const DEFAULT_URL = "http://127.0.0.1:8700";
const USER_AGENT = "signoff-typescript/0.1.0";
/** The longest single long-poll the server accepts; `wait` loops over calls of at most this long. */
const MAX_WAIT_S = 300;
/** The server sends a heartbeat every 15 s; a stream silent for this long is taken as broken. */
const STREAM_IDLE_MS = 45_000;

/**
 * @typedef {import("./types.js").SignoffRequest} SignoffRequest
 * @typedef {import("./types.js").SignoffEvent} SignoffEvent
 * @typedef {{
 *   method: "GET" | "POST",
 *   path: string,
 *   query?: Record<string, string | number | undefined | null>,
 *   body?: unknown,
 *   headers?: Record<string, string>,
 *   repeatable: boolean,
 *   timeout?: number,
 * }} Call
 */

/**
 * A request id as one path segment, whatever it holds; a malformed id is then the server's `404`. The dot segments
 * `.` and `..` cannot be sent as a segment at all (URLs resolve them), so they are that `404` here.
 * @param {string} id
 */
function segment(id) {
  const text = String(id);
  if (text === "." || text === "..") throw new NotFound("not_found", "request not found", { status: 404 });
  return encodeURIComponent(text);
}

/**
 * The fields of `values` that are set (neither undefined nor null).
 * @param {Record<string, unknown>} values
 */
function defined(values) {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined && value !== null));
}

/**
 * The body of a create (or an ask): the API's snake_case fields from the SDK's options.
 * @param {Record<string, unknown>} fields
 * @param {import("./client.js").CreateOptions} options
 */
function createBody(fields, options) {
  return defined({
    ...fields,
    summary: options.summary,
    reasoning: options.reasoning,
    context: options.context,
    confidence: options.confidence,
    tags: options.tags,
    mode: options.mode,
    run_id: options.runId,
    call_id: options.callId,
    callback_url: options.callbackUrl,
    state: options.state,
    timeout_s: options.timeoutSeconds,
    revises: options.revises,
  });
}

/** @param {Response} response */
function retryAfterSeconds(response) {
  const value = Number.parseFloat(response.headers.get("retry-after") ?? "");
  return Number.isFinite(value) ? value : undefined;
}

/** @param {Response} response */
async function errorOf(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return errorFromResponse(response.status, body, retryAfterSeconds(response));
}

/** @param {unknown} error */
function describe(error) {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

/**
 * The signal of one attempt: the caller's, ended also after `timeout` milliseconds.
 * @param {AbortSignal | undefined} signal
 * @param {number | undefined} timeout
 */
function attemptSignal(signal, timeout) {
  const signals = [signal, timeout === undefined ? undefined : AbortSignal.timeout(timeout)].filter(
    (s) => s !== undefined,
  );
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

export class Signoff {
  /** @type {string} */
  #key;
  /** @type {typeof fetch} */
  #fetch;
  /** @type {number} */
  #timeout;
  /** @type {number} */
  #maxRetries;

  /** @param {import("./client.js").SignoffOptions} [options] */
  constructor(options = {}) {
    const url = options.url ?? process.env.SIGNOFF_URL ?? DEFAULT_URL;
    const key = options.key ?? process.env.SIGNOFF_KEY;
    if (!key) throw new TypeError("no API key: pass { key } or set SIGNOFF_KEY");
    /** @readonly */
    this.url = url.replace(/\/+$/, "");
    this.#key = key;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#timeout = options.timeout ?? 60_000;
    this.#maxRetries = options.maxRetries ?? 3;
  }

  /** The client without its key: `Signoff(http://127.0.0.1:8700, so_agent_...)`. */
  toString() {
    return `Signoff(${this.url}, ${this.#key.slice(0, 9)}...)`;
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return this.toString();
  }

  /**
   * Sends one call, trying again as the retry rules allow; answers the parsed JSON body.
   * @param {Call} call
   * @param {AbortSignal} [signal]
   * @returns {Promise<any>}
   */
  async #send(call, signal) {
    const url = new URL(this.url + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers = {
      authorization: `Bearer ${this.#key}`,
      "user-agent": USER_AGENT,
      accept: "application/json",
      ...call.headers,
    };
    if (call.body !== undefined) Object.assign(headers, { "content-type": "application/json" });
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    for (let attempt = 0; ; attempt++) {
      /** @type {unknown} */
      let failure;
      try {
        const response = await this.#fetch(url, {
          method: call.method,
          headers,
          body,
          signal: attemptSignal(signal, call.timeout ?? this.#timeout),
        });
        if (response.ok) return await response.json();
        failure = await errorOf(response);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        failure = error;
      }
      const delay = retryDelay(call, failure, attempt, this.#maxRetries);
      if (delay === undefined) {
        if (failure instanceof SignoffError) throw failure;
        throw new ConnectionFailed(`${call.method} ${call.path}: ${describe(failure)}`, { cause: failure });
      }
      await sleep(delay, undefined, { signal });
    }
  }

  /**
   * @param {string} action
   * @param {import("./types.js").JsonObject} [args]
   * @param {import("./client.js").CreateOptions} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async create(action, args, options = {}) {
    return this.#create(createBody({ action, args }, options), options);
  }

  /**
   * @param {Record<string, unknown>} body
   * @param {{ idempotencyKey?: string, runId?: string, callId?: string, signal?: AbortSignal }} options
   */
  async #create(body, options) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
    // No key of the caller's: one per call, reused by this call's own retries, so a retry never duplicates.
    else if (!(options.runId && options.callId)) headers["idempotency-key"] = randomUUID();
    return this.#send({ method: "POST", path: "/v1/requests", body, headers, repeatable: true }, options.signal);
  }

  /**
   * @param {string} question
   * @param {import("./client.js").AskOptions} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async ask(question, options = {}) {
    const fields = { action: options.action ?? "ask_human", kind: "question", question, options: options.options };
    return this.#create(createBody(fields, options), options);
  }

  /**
   * @param {string} id
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async get(id, options = {}) {
    return this.#send({ method: "GET", path: `/v1/requests/${segment(id)}`, repeatable: true }, options.signal);
  }

  /**
   * @param {import("./client.js").ListOptions} [options]
   * @returns {Promise<import("./types.js").Page<SignoffRequest>>}
   */
  async list(options = {}) {
    const query = {
      status: options.status,
      action: options.action,
      group: options.group,
      run_id: options.runId,
      limit: options.limit,
      cursor: options.cursor,
    };
    return this.#send({ method: "GET", path: "/v1/requests", query, repeatable: true }, options.signal);
  }

  /**
   * @param {string} id
   * @param {{ timeout?: number, signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async wait(id, options = {}) {
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout;
    const path = `/v1/requests/${segment(id)}/wait`;
    for (;;) {
      const seconds =
        deadline === undefined
          ? MAX_WAIT_S
          : Math.max(0, Math.min(MAX_WAIT_S, Math.ceil((deadline - Date.now()) / 1000)));
      const call = {
        method: /** @type {const} */ ("GET"),
        path,
        query: { timeout_s: seconds },
        repeatable: true,
        timeout: (seconds + 30) * 1000,
      };
      /** @type {SignoffRequest} */
      const request = await this.#send(call, options.signal);
      if (request.status !== "pending" || (deadline !== undefined && Date.now() >= deadline)) return request;
    }
  }

  /**
   * @param {string} id
   * @param {"approve" | "reject"} outcome
   * @param {import("./client.js").DecideOptions} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async decide(id, outcome, options = {}) {
    const body = defined({ outcome, comment: options.comment, reason: options.reason, args: options.args });
    return this.#send(
      { method: "POST", path: `/v1/requests/${segment(id)}/decision`, body, repeatable: false },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {{ comment?: string, args?: import("./types.js").JsonObject, signal?: AbortSignal }} [options]
   */
  async approve(id, options = {}) {
    return this.decide(id, "approve", options);
  }

  /**
   * @param {string} id
   * @param {string} comment
   * @param {{ reason?: string, signal?: AbortSignal }} [options]
   */
  async reject(id, comment, options = {}) {
    return this.decide(id, "reject", { ...options, comment });
  }

  /**
   * @param {string} id
   * @param {string} text
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async answer(id, text, options = {}) {
    return this.#send(
      { method: "POST", path: `/v1/requests/${segment(id)}/answer`, body: { text }, repeatable: false },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {import("./client.js").ConfirmOptions} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async confirm(id, options = {}) {
    return this.#send(
      {
        method: "POST",
        path: `/v1/requests/${segment(id)}/confirm`,
        body: defined({ comment: options.comment }),
        repeatable: false,
      },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {string} reason
   * @param {import("./client.js").FlagOptions} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async flag(id, reason, options = {}) {
    const body = defined({ reason, comment: options.comment, undo: options.undo });
    return this.#send(
      { method: "POST", path: `/v1/requests/${segment(id)}/flag`, body, repeatable: false },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {string} [reason]
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async cancel(id, reason, options = {}) {
    return this.#send(
      { method: "POST", path: `/v1/requests/${segment(id)}/cancel`, body: defined({ reason }), repeatable: false },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {boolean} ok
   * @param {import("./types.js").Json} [detail]
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffRequest>}
   */
  async reportOutcome(id, ok, detail, options = {}) {
    const body = defined({ ok, detail });
    return this.#send(
      { method: "POST", path: `/v1/requests/${segment(id)}/outcome`, body, repeatable: false },
      options.signal,
    );
  }

  /**
   * @param {string} id
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<SignoffEvent[]>}
   */
  async requestEvents(id, options = {}) {
    return this.#send({ method: "GET", path: `/v1/requests/${segment(id)}/events`, repeatable: true }, options.signal);
  }

  /**
   * @param {{ after?: number, signal?: AbortSignal }} [options]
   * @returns {AsyncGenerator<SignoffEvent, void, undefined>}
   */
  async *events(options = {}) {
    const stream = { method: /** @type {const} */ ("GET"), path: "/v1/events", repeatable: true };
    let lastId = options.after === undefined ? undefined : String(options.after);
    for (let attempt = 0; ; attempt++) {
      const connection = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, connection.signal]) : connection.signal;
      let idle = setTimeout(() => connection.abort(new Error("the event stream was silent too long")), STREAM_IDLE_MS);
      /** @type {unknown} */
      let failure;
      try {
        /** @type {Record<string, string>} */
        const headers = { authorization: `Bearer ${this.#key}`, "user-agent": USER_AGENT, accept: "text/event-stream" };
        if (lastId !== undefined) headers["last-event-id"] = lastId;
        const response = await this.#fetch(this.url + stream.path, { headers, signal });
        if (!response.ok || response.body === null) {
          failure = await errorOf(response);
        } else {
          const lines = sseLines(response.body);
          /** @type {string[]} */
          let data = [];
          /** @type {string | undefined} */
          let id;
          for await (const line of lines) {
            clearTimeout(idle);
            idle = setTimeout(
              () => connection.abort(new Error("the event stream was silent too long")),
              STREAM_IDLE_MS,
            );
            if (line === "") {
              if (id !== undefined) lastId = id;
              const event = data.length > 0 ? JSON.parse(data.join("\n")) : undefined;
              data = [];
              id = undefined;
              if (event !== undefined) {
                attempt = 0;
                yield event;
              }
            } else if (!line.startsWith(":")) {
              const colon = line.indexOf(":");
              const name = colon === -1 ? line : line.slice(0, colon);
              let value = colon === -1 ? "" : line.slice(colon + 1);
              if (value.startsWith(" ")) value = value.slice(1);
              if (name === "data") data.push(value);
              else if (name === "id") id = value;
            }
          }
          failure = new Error("the event stream ended");
        }
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        failure = error;
      } finally {
        clearTimeout(idle);
        connection.abort();
      }
      const delay = retryDelay(stream, failure, attempt, this.#maxRetries);
      if (delay === undefined) {
        if (failure instanceof SignoffError) throw failure;
        throw new ConnectionFailed(`GET /v1/events: ${describe(failure)}`, { cause: failure });
      }
      await sleep(delay, undefined, { signal: options.signal });
    }
  }

  /**
   * @template {import("./types.js").JsonObject} A
   * @template {unknown[]} R
   * @template T
   * @param {(args: A, ...rest: R) => T} fn
   * @param {import("./approval.js").RequireApprovalOptions<A>} [options]
   * @returns {import("./approval.js").Gated<A, R, Awaited<T> | string>}
   */
  requireApproval(fn, options = {}) {
    return requireApproval(fn, { ...options, client: this });
  }

  /**
   * @param {string} question
   * @param {Omit<import("./approval.js").AskHumanOptions, "client">} [options]
   * @returns {Promise<string>}
   */
  async askHuman(question, options = {}) {
    return askHuman(question, { ...options, client: this });
  }
}

/**
 * The lines of a `text/event-stream` body (split at CRLF, LF or CR).
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<string, void, undefined>}
 */
async function* sseLines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) !== -1) {
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (buffer[end] === "\r" && end === buffer.length - 1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        yield line;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
