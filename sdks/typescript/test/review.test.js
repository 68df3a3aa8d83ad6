// The review loop against the real server: `confirm` and `flag`, the signed `request.flagged` callback the agent
// verifies with `verifyWebhook`, and the remediation it reports through `reportOutcome`.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { test } from "node:test";
import * as signoff from "signoff";
import { Signoff, verifyWebhook } from "signoff";
import { startServer } from "./support.js";

const REVIEW_POLICY = `\
version: 1
approvers:
  - { id: dana, name: Moderator, email: dana@example.com, groups: [moderators] }
groups:
  moderators: { notify: [] }
defaults: { route: moderators, timeout: 1h, on_timeout: reject }
rules:
  - name: every-removal
    when: action == "remove_comment"
    review: { sample: 1, group: moderators }
  - name: auto-lookup
    when: action == "lookup"
    decide: approve
`;

/**
 * A local endpoint that answers 204 and keeps each callback's headers and raw body.
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

test("a flag reaches the agent signed, and the agent reports its remediation", async (t) => {
  const server = await startServer({ policy: REVIEW_POLICY, settings: { SIGNOFF_ALLOW_PRIVATE_CALLBACKS: "true" } });
  const agentKey = server.key("agent", "mod-bot");
  const agent = new Signoff({ url: server.url, key: agentKey.key });
  const dana = server.client("approver", "dana-laptop", "--approver", "dana");
  const endpoint = await receiver(t);

  const report = await agent.create("remove_comment", { comment: "c-1" }, { mode: "post", callbackUrl: endpoint.url });
  assert.equal(report.sampled, true);
  await agent.reportOutcome(report.id, true, { removed: "c-1" });
  const flagged = await dana.flag(report.id, "not_spam", { comment: "a real review", undo: true });
  assert.equal(flagged.status, "rejected");
  assert.deepEqual(
    [flagged.review?.verdict, flagged.review?.reason, flagged.review?.undo, flagged.review?.miss],
    ["flagged", "not_spam", true, false],
  );
  await assert.rejects(dana.confirm(report.id), (error) => error instanceof signoff.AlreadyReviewed);

  const { headers, body } = await endpoint.next();
  const message = verifyWebhook(headers, body, /** @type {string} */ (agentKey.webhookSecret));
  assert.equal(message.type, "request.flagged");
  assert.equal(message.data.id, report.id);
  assert.equal(message.timestamp, message.data.review?.at);

  const remedied = await agent.reportOutcome(report.id, true, { restored: "c-1" });
  assert.deepEqual(remedied.remediation?.detail, { restored: "c-1" });
  assert.deepEqual(remedied.outcome?.detail, { removed: "c-1" });
});

test("confirm approves a sampled review; a flag on what policy approved is a miss", async () => {
  const server = await startServer({ policy: REVIEW_POLICY });
  const agent = server.client("agent", "mod-bot");
  const dana = server.client("approver", "dana-laptop", "--approver", "dana");

  const report = await agent.create("remove_comment", { comment: "c-2" }, { mode: "post" });
  const confirmed = await dana.confirm(report.id, { comment: "right call" });
  assert.equal(confirmed.status, "approved");
  assert.equal(confirmed.review?.verdict, "confirmed");
  assert.equal(confirmed.review?.comment, "right call");

  const lookup = await agent.create("lookup", { customer: "c_42" });
  const missed = await dana.flag(lookup.id, "wrong_customer");
  assert.equal(missed.status, "approved");
  assert.equal(missed.review?.miss, true);
  const other = await agent.create("lookup", { customer: "c_43" });
  await assert.rejects(dana.confirm(other.id), (error) => error instanceof signoff.NotReviewable);
  await assert.rejects(agent.flag(other.id, "own"), (error) => error instanceof signoff.Forbidden);
  await assert.rejects(dana.flag(other.id, " "), (error) => error instanceof signoff.InvalidRequest);
});
