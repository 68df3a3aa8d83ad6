// Verify Signoff's callbacks, signed per Standard Webhooks (https://www.standardwebhooks.com/): `webhook-id`,
// `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64>`, possibly several separated by spaces),
// the HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the bytes of the agent key's `whsec_...` secret.

import { createHmac, timingSafeEqual } from "node:crypto";

/** How far (seconds) a callback's timestamp may be from the receiver's clock, either way. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The callback is not authentic (wrong signature or secret) or not fresh (timestamp out of tolerance). */
export class WebhookVerificationError extends Error {}
Object.defineProperty(WebhookVerificationError.prototype, "name", {
  value: "WebhookVerificationError",
  writable: true,
  configurable: true,
});

/** @param {string} secret */
function secretBytes(secret) {
  const base64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new TypeError("a webhook secret is `whsec_` followed by base64");
  }
  return Buffer.from(base64, "base64");
}

/** @param {string | Uint8Array | ArrayBuffer} body */
function bodyBytes(body) {
  if (typeof body === "string") return Buffer.from(body, "utf8");
  return body instanceof ArrayBuffer ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * The `webhook-signature` value for a message (to test a receiver).
 * @param {string} secret
 * @param {string} webhookId
 * @param {number} timestamp Unix seconds
 * @param {string | Uint8Array | ArrayBuffer} body
 */
export function signWebhook(secret, webhookId, timestamp, body) {
  const mac = createHmac("sha256", secretBytes(secret));
  mac.update(`${webhookId}.${timestamp}.`);
  mac.update(bodyBytes(body));
  return `v1,${mac.digest("base64")}`;
}

/**
 * A header's value from a fetch `Headers`, Node's `IncomingHttpHeaders`, or any record, map or list of pairs.
 * @param {import("./webhooks.js").WebhookHeaders} headers
 * @param {string} name in lower case
 * @returns {string | undefined}
 */
function header(headers, name) {
  if (!(headers instanceof Map) && "get" in headers && typeof headers.get === "function") {
    return headers.get(name) ?? undefined;
  }
  const entries = Symbol.iterator in headers ? headers : Object.entries(headers);
  for (const [key, value] of /** @type {Iterable<[string, unknown]>} */ (entries)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return Array.isArray(value) ? value.join(" ") : String(value);
  }
  return undefined;
}

/**
 * Checks a callback's signature and freshness; returns its parsed body (`{ type, timestamp, data }`).
 * Pass the raw body as received, before any parsing.
 * @param {import("./webhooks.js").WebhookHeaders} headers
 * @param {string | Uint8Array | ArrayBuffer} body
 * @param {string} secret
 * @param {{ now?: number }} [options] `now` in Unix seconds (default: the clock)
 * @returns {import("./types.js").WebhookMessage}
 */
export function verifyWebhook(headers, body, secret, options = {}) {
  const id = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  for (const [name, value] of [
    ["webhook-id", id],
    ["webhook-timestamp", timestampText],
    ["webhook-signature", signatures],
  ]) {
    if (value === undefined) throw new WebhookVerificationError(`missing header ${name}`);
  }
  if (!/^\d+$/.test(/** @type {string} */ (timestampText))) {
    throw new WebhookVerificationError("webhook-timestamp is not a number");
  }
  const timestamp = Number(timestampText);
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - timestamp) > WEBHOOK_TOLERANCE_SECONDS) {
    throw new WebhookVerificationError("webhook-timestamp is too far from now");
  }
  const raw = bodyBytes(body);
  const expected = Buffer.from(signWebhook(secret, /** @type {string} */ (id), timestamp, raw).slice("v1,".length));
  for (const candidate of /** @type {string} */ (signatures).split(" ")) {
    const [version, value] = candidate.split(",", 2);
    if (version !== "v1" || value === undefined) continue;
    const given = Buffer.from(value);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return JSON.parse(raw.toString("utf8"));
  }
  throw new WebhookVerificationError("no matching signature");
}
