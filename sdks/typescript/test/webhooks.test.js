// `verifyWebhook` accepts a real callback from the server and refuses a tampered one, a forged signature, another
// key's secret, an old timestamp and a missing header.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { test } from "node:test";
import { Signoff, WEBHOOK_TOLERANCE_SECONDS, WebhookVerificationError, signWebhook, verifyWebhook } from "signoff";
import * as webhooks from "signoff/webhooks";
import { startServer } from "./support.js";

/**
 * A local HTTP endpoint that answers 204 and keeps each callback's headers and raw body.
 * @param {import("node:test").TestContext} t
 */
async function receiver(t) {
  /** @type {Array<{ headers: import("node:http").IncomingHttpHeaders, body: Buffer }>} */
  const received = [];
  const http = createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    received.push({ headers: request.headers, body: Buffer.concat(chunks) });
    response.writeHead(204).end();
    http.emit("callback");
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  t.after(() => http.close());
  const port = /** @type {import("node:net").AddressInfo} */ (http.address()).port;
  return {
    url: `http://127.0.0.1:${port}/signoff/callback`,
    async next() {
      if (received.length === 0) await once(http, "callback");
      return /** @type {{ headers: import("node:http").IncomingHttpHeaders, body: Buffer }} */ (received.shift());
    },
  };
}

/** A real callback: a lookup (approved by policy at once) created with a callback URL. */
async function realCallback(/** @type {import("node:test").TestContext} */ t) {
  const server = await startServer({ settings: { SIGNOFF_ALLOW_PRIVATE_CALLBACKS: "true" } });
  const agentKey = server.key("agent", "refund-bot");
  const endpoint = await receiver(t);
  const agent = new Signoff({ url: server.url, key: agentKey.key });
  const request = await agent.create("lookup", { customer: "c_42" }, { callbackUrl: endpoint.url, state: { step: 3 } });
  const { headers, body } = await endpoint.next();
  return {
    request,
    headers,
    body,
    secret: /** @type {string} */ (agentKey.webhookSecret),
    otherSecret: /** @type {string} */ (server.key("agent", "other-bot").webhookSecret),
  };
}

test("a real callback verifies, from Node's headers or fetch's, as bytes or text", async (t) => {
  const { request, headers, body, secret } = await realCallback(t);
  const message = verifyWebhook(headers, body, secret);
  assert.equal(message.type, "request.decided");
  assert.equal(message.data.id, request.id);
  assert.equal(message.data.status, "approved");
  assert.deepEqual(message.data.state, { step: 3 });
  assert.equal(message.timestamp, message.data.decision?.at);
  const fetchHeaders = new Headers(/** @type {Record<string, string>} */ (headers));
  assert.deepEqual(verifyWebhook(fetchHeaders, body.toString("utf8"), secret), message);
  const shouted = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
  assert.deepEqual(webhooks.verifyWebhook(shouted, new Uint8Array(body), secret), message);
  assert.deepEqual(
    verifyWebhook(new Map(Object.entries(headers).map(([k, v]) => [k, String(v)])), body, secret),
    message,
  );
});

test("a tampered body, a forged signature, another key's secret, an old message and a missing header are refused", async (t) => {
  const { headers, body, secret, otherSecret } = await realCallback(t);
  const timestamp = Number(headers["webhook-timestamp"]);
  const tampered = Buffer.from(body.toString("utf8").replace('"approved"', '"rejected"'));
  assert.notDeepEqual(tampered, body);
  assert.throws(() => verifyWebhook(headers, tampered, secret), {
    name: "WebhookVerificationError",
    message: "no matching signature",
  });
  const forged = signWebhook(otherSecret, String(headers["webhook-id"]), timestamp, body);
  assert.throws(
    () => verifyWebhook({ ...headers, "webhook-signature": forged }, body, secret),
    WebhookVerificationError,
  );
  assert.throws(() => verifyWebhook(headers, body, otherSecret), /no matching signature/);
  assert.throws(() => verifyWebhook({ ...headers, "webhook-id": "msg_other" }, body, secret), /no matching signature/);
  assert.throws(
    () => verifyWebhook(headers, body, secret, { now: timestamp + WEBHOOK_TOLERANCE_SECONDS + 1 }),
    /too far/,
  );
  assert.throws(
    () => verifyWebhook(headers, body, secret, { now: timestamp - WEBHOOK_TOLERANCE_SECONDS - 1 }),
    /too far/,
  );
  assert.equal(
    verifyWebhook(headers, body, secret, { now: timestamp + WEBHOOK_TOLERANCE_SECONDS - 1 }).type,
    "request.decided",
  );
  const withoutId = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== "webhook-id"));
  assert.throws(() => verifyWebhook(withoutId, body, secret), { message: "missing header webhook-id" });
  assert.throws(() => verifyWebhook({ ...headers, "webhook-timestamp": "soon" }, body, secret), /not a number/);
  assert.throws(() => verifyWebhook(headers, body, "whsec_not base64!"), TypeError);
});

test("a signature matches among several, and only a v1 one", () => {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const body = '{"type":"request.decided"}';
  const good = signWebhook(secret, "msg_1", 1_746_092_463, body);
  assert.match(good, /^v1,[A-Za-z0-9+/]+=*$/);
  const headers = { "webhook-id": "msg_1", "webhook-timestamp": "1746092463", "webhook-signature": `v1,AAAA ${good}` };
  assert.deepEqual(verifyWebhook(headers, body, secret, { now: 1_746_092_463 }), { type: "request.decided" });
  const v2 = { ...headers, "webhook-signature": good.replace(/^v1,/, "v2,") };
  assert.throws(() => verifyWebhook(v2, body, secret, { now: 1_746_092_463 }), /no matching signature/);
});
