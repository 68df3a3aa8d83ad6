import type { WebhookMessage } from "./types.js";

/**
 * A callback's headers: a fetch `Headers`, Node's `IncomingHttpHeaders` (`req.headers`), or any record, map or list
 * of pairs. Names are matched case-insensitively.
 */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>
  | Iterable<readonly [string, string]>;

/** How far (seconds) a callback's timestamp may be from the receiver's clock, either way. */
export declare const WEBHOOK_TOLERANCE_SECONDS: 300;

/** The callback is not authentic (wrong signature or secret) or not fresh (timestamp out of tolerance). */
export declare class WebhookVerificationError extends Error {}

/**
 * Checks a callback's signature (constant-time) and that `webhook-timestamp` is within 5 minutes of `now` (Unix
 * seconds, default the clock); returns the parsed body. Pass the raw body exactly as received, before parsing it.
 * Throws `WebhookVerificationError` for a missing header, a stale timestamp, or no matching signature.
 */
export declare function verifyWebhook(
  headers: WebhookHeaders,
  body: string | Uint8Array | ArrayBuffer,
  secret: string,
  options?: { now?: number },
): WebhookMessage;

/** The `webhook-signature` value (`v1,<base64>`) of a message: to test a receiver. */
export declare function signWebhook(
  secret: string,
  webhookId: string,
  timestamp: number,
  body: string | Uint8Array | ArrayBuffer,
): string;
