// The client against the real server: every method, idempotency, the errors the server really answers, retries
// through a proxy that breaks connections, and the event stream resuming after a dropped connection.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import * as signoff from "signoff";
import { Signoff } from "signoff";
import { retryDelay } from "../src/retry.js";
import { TcpProxy, freePort, startServer } from "./support.js";

/** A fresh server with an agent and dana, an approver in `finance`. */
async function setup() {
  const server = await startServer();
  const agentKey = server.key("agent", "refund-bot");
  return {
    server,
    agentKey,
    agent: new Signoff({ url: server.url, key: agentKey.key }),
    dana: server.client("approver", "dana-laptop", "--approver", "dana"),
  };
}

test("create, get, list and idempotent creates", async () => {
  const { agent } = await setup();
  const fields = {
    summary: "Refund order 1042",
    reasoning: "Arrived broken",
    context: { ticket: "T-1" },
    confidence: 0.8,
    tags: ["refund"],
  };
  const created = await agent.create(
    "refund",
    { order: "1042", amount: 120 },
    { ...fields, idempotencyKey: "order-1042-refund" },
  );
  assert.equal(created.status, "pending");
  assert.equal(created.group, "finance");
  assert.equal(created.kind, "approval");
  assert.deepEqual(created.args, { order: "1042", amount: 120 });
  assert.equal(created.summary, "Refund order 1042");
  assert.deepEqual(created.context, { ticket: "T-1" });
  const again = await agent.create(
    "refund",
    { order: "1042", amount: 120 },
    { ...fields, idempotencyKey: "order-1042-refund" },
  );
  assert.equal(again.id, created.id);
  await assert.rejects(
    agent.create("refund", { order: "1042", amount: 999 }, { idempotencyKey: "order-1042-refund" }),
    (error) => {
      assert.ok(error instanceof signoff.IdempotencyConflict && error instanceof signoff.Conflict);
      assert.equal(error.status, 409);
      return true;
    },
  );

  // Without a key of the caller's, each create is its own request; a (runId, callId) pair is a key.
  assert.notEqual((await agent.create("refund", { amount: 1 })).id, (await agent.create("refund", { amount: 1 })).id);
  const first = await agent.create("refund", { amount: 2 }, { runId: "run-1", callId: "call-1" });
  assert.equal((await agent.create("refund", { amount: 2 }, { runId: "run-1", callId: "call-1" })).id, first.id);
  assert.equal(first.run_id, "run-1");
  assert.equal(first.call_id, "call-1");

  assert.deepEqual(await agent.get(created.id), created);
  assert.deepEqual(
    (await agent.list({ runId: "run-1" })).items.map((r) => r.id),
    [first.id],
  );
  const page = await agent.list({ action: "refund", limit: 2 });
  assert.equal(page.items.length, 2);
  assert.equal(page.next_cursor, page.items[1].id);
  const rest = await agent.list({ action: "refund", cursor: page.next_cursor ?? undefined });
  assert.equal(rest.items.length, 2);
  assert.equal(rest.next_cursor, null);
  const all = (await agent.list({ action: "refund" })).items.map((r) => r.id);
  assert.deepEqual(
    [...page.items, ...rest.items].map((r) => r.id),
    all,
  );
  assert.deepEqual((await agent.list({ status: "approved" })).items, []);
});

test("policy decides at create", async () => {
  const { agent } = await setup();
  const request = await agent.create("lookup", { customer: "c_42" });
  assert.equal(request.status, "approved");
  assert.deepEqual(request.decision?.by, { kind: "policy", rule: "auto-lookup" });
  const denied = await agent.create("wire_money", { iban: "DE89" });
  assert.equal(denied.status, "rejected");
});

test("wait, decide with an edit, and report the outcome", async () => {
  const { agent, dana } = await setup();
  const request = await agent.create("refund", { order: "1042", amount: 120 }, { timeoutSeconds: 600 });
  assert.equal(request.timeout_s, 600);
  const started = Date.now();
  assert.equal((await agent.wait(request.id, { timeout: 1000 })).status, "pending");
  assert.ok(Date.now() - started >= 1000);
  assert.equal((await agent.wait(request.id, { timeout: 0 })).status, "pending");

  await assert.rejects(agent.reportOutcome(request.id, true), signoff.NotDecided);
  await assert.rejects(agent.approve(request.id), signoff.Forbidden);
  await assert.rejects(dana.reject(request.id, " "), signoff.CommentRequired);

  const waiting = agent.wait(request.id, { timeout: 30_000 });
  const approved = await dana.approve(request.id, {
    comment: "not the shipping",
    args: { order: "1042", amount: 100 },
  });
  const decided = await waiting;
  assert.deepEqual(decided, approved);
  assert.equal(decided.status, "approved");
  assert.deepEqual(decided.decision?.args, { order: "1042", amount: 100 });
  assert.equal(decided.decision?.edited, true);
  assert.deepEqual(decided.decision?.by, { kind: "human", approver_id: "dana", channel: "api" });
  assert.deepEqual(decided.args, { order: "1042", amount: 120 });
  await assert.rejects(dana.reject(request.id, "too late"), signoff.AlreadyDecided);

  const reported = await agent.reportOutcome(request.id, true, { refund_id: "re_1" });
  assert.equal(reported.outcome?.ok, true);
  assert.deepEqual(reported.outcome?.detail, { refund_id: "re_1" });
  await assert.rejects(agent.reportOutcome(request.id, false), signoff.OutcomeAlreadyReported);
  const kinds = (await agent.requestEvents(request.id)).map((e) => e.kind);
  assert.deepEqual(kinds, ["created", "routed", "decided", "outcome_reported"]);
});

test("reject with a reason, and cancel", async () => {
  const { agent, dana } = await setup();
  const rejected = await dana.reject((await agent.create("refund", { amount: 5 })).id, "outside the refund window", {
    reason: "policy",
  });
  assert.equal(rejected.status, "rejected");
  assert.equal(rejected.decision?.comment, "outside the refund window");
  assert.equal(rejected.decision?.reason, "policy");
  const decided = await dana.decide((await agent.create("refund", { amount: 7 })).id, "approve", { comment: "fine" });
  assert.equal(decided.decision?.comment, "fine");

  const cancelled = await agent.cancel((await agent.create("refund", { amount: 6 })).id, "the customer withdrew");
  assert.equal(cancelled.status, "cancelled");
  assert.equal(cancelled.decision?.reason, "the customer withdrew");
  assert.deepEqual(cancelled.decision?.by.kind, "agent");
  await assert.rejects(agent.cancel(cancelled.id), signoff.AlreadyDecided);
  assert.equal((await agent.cancel((await agent.create("refund", { amount: 8 })).id)).decision?.reason, null);
});

test("errors the server answers", async () => {
  const { server, agent } = await setup();
  const stranger = new Signoff({ url: server.url, key: "so_agent_not-a-real-key" });
  await assert.rejects(stranger.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192"), (error) => {
    assert.ok(error instanceof signoff.Unauthorized);
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
    return true;
  });
  await assert.rejects(agent.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192"), {
    name: "NotFound",
    code: "not_found",
    status: 404,
    message: "request not found",
  });
  await assert.rejects(agent.create("refund", {}, { confidence: 2 }), (error) => {
    assert.ok(error instanceof signoff.InvalidRequest);
    assert.match(error.message, /confidence/);
    return true;
  });
  await assert.rejects(agent.create("refund", {}, { mode: /** @type {"pre"} */ ("sideways") }), signoff.BadRequest);
  await assert.rejects(agent.list({ status: "maybe" }), signoff.InvalidRequest);
  await assert.rejects(agent.create("refund", {}, { callbackUrl: "http://127.0.0.1:9/cb" }), {
    name: "InvalidRequest",
    message: /^callback_url points to a private/,
  });
  await assert.rejects(agent.create("refund", { note: "x".repeat(70_000) }), signoff.FieldTooLarge);
  for (const bad of ["../requests", "not-a-uuid", "a/b?c", "..", "."]) {
    await assert.rejects(agent.get(bad), signoff.NotFound, bad);
  }
});

test("another agent's request is not found", async () => {
  const { server, agent } = await setup();
  const theirs = await agent.create("refund", { amount: 1 });
  await assert.rejects(server.client("agent", "other-bot").get(theirs.id), signoff.NotFound);
});

test("configured from the environment; the key stays out of its printed form", async (t) => {
  const { server, agentKey } = await setup();
  const saved = { url: process.env.SIGNOFF_URL, key: process.env.SIGNOFF_KEY };
  t.after(() => {
    for (const [name, value] of [
      ["SIGNOFF_URL", saved.url],
      ["SIGNOFF_KEY", saved.key],
    ]) {
      if (value === undefined) delete process.env[/** @type {string} */ (name)];
      else process.env[/** @type {string} */ (name)] = value;
    }
  });
  process.env.SIGNOFF_URL = `${server.url}/`;
  process.env.SIGNOFF_KEY = agentKey.key;
  const client = new Signoff();
  assert.equal(client.url, server.url);
  assert.equal((await client.create("refund")).status, "pending");
  const { inspect } = await import("node:util");
  for (const printed of [String(client), inspect(client), JSON.stringify(client)]) {
    assert.ok(!printed.includes(agentKey.key), printed);
  }
  assert.match(String(client), /so_agent_\.\.\./);
  delete process.env.SIGNOFF_KEY;
  assert.throws(() => new Signoff({ url: server.url }), /SIGNOFF_KEY/);
});

test("the event stream resumes after a dropped connection, losing and repeating nothing", async () => {
  const { server, agent, agentKey } = await setup();
  const proxy = new TcpProxy(server.port);
  const streaming = new Signoff({ url: await proxy.listen(), key: agentKey.key });
  const first = await agent.create("refund", { amount: 1 });
  const stream = streaming.events();
  const received = [(await stream.next()).value, (await stream.next()).value];
  assert.equal(proxy.accepted, 1);
  proxy.cut();
  const second = await agent.create("refund", { amount: 2 }); // written while the stream is down
  received.push((await stream.next()).value, (await stream.next()).value);
  assert.equal(proxy.accepted, 2, "it reconnected");
  await stream.return(undefined);
  assert.deepEqual(
    received.map((e) => [e?.request_id, e?.kind]),
    [
      [first.id, "created"],
      [first.id, "routed"],
      [second.id, "created"],
      [second.id, "routed"],
    ],
  );
  const timeline = [...(await agent.requestEvents(first.id)), ...(await agent.requestEvents(second.id))];
  assert.deepEqual(received, timeline);
});

test("the event stream starts after a given seq, and stops when aborted", async () => {
  const { agent } = await setup();
  const request = await agent.create("refund");
  const [created, routed] = await agent.requestEvents(request.id);
  for await (const event of agent.events({ after: created.seq })) {
    assert.deepEqual(event, routed);
    break;
  }
  const controller = new AbortController();
  const live = agent.events({ after: routed.seq, signal: controller.signal });
  const next = live.next();
  controller.abort(new Error("enough"));
  await assert.rejects(next, /enough/);
});

test("a create whose answer was lost is retried, and makes one request", async () => {
  const { server, agent, agentKey } = await setup();
  const proxy = new TcpProxy(server.port);
  const client = new Signoff({ url: await proxy.listen(), key: agentKey.key });
  proxy.loseNextAnswer();
  const created = await client.create("refund", { amount: 3 });
  assert.ok(proxy.accepted >= 2, "the first connection broke and a retry reconnected");
  assert.deepEqual(
    (await agent.list()).items.map((r) => r.id),
    [created.id],
  );
});

test("a decision whose answer was lost is not sent again", async () => {
  const { server, agent } = await setup();
  const request = await agent.create("refund", { amount: 4 });
  const proxy = new TcpProxy(server.port);
  const danaKey = server.key("approver", "dana-phone", "--approver", "dana").key;
  const dana = new Signoff({ url: await proxy.listen(), key: danaKey });
  proxy.loseNextAnswer();
  await assert.rejects(dana.approve(request.id), (error) => {
    assert.ok(error instanceof signoff.ConnectionFailed);
    assert.equal(error.status, undefined);
    assert.match(error.message, /^POST \/v1\/requests\/.+\/decision: /);
    return true;
  });
  assert.equal(proxy.accepted, 1, "no second attempt");
  assert.equal((await agent.get(request.id)).status, "approved", "the server did act on it");
});

test("rate-limited calls are retried after Retry-After", async () => {
  const server = await startServer({ settings: { SIGNOFF_RATE_LIMIT: "1" } });
  const key = server.key("agent", "busy-bot").key;
  const impatient = new Signoff({ url: server.url, key, maxRetries: 0 });
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 5; i++) await impatient.list(); // a key's first call counts against the address
    })(),
    (error) => {
      assert.ok(error instanceof signoff.RateLimited);
      assert.equal(error.status, 429);
      assert.ok((error.retryAfter ?? 0) >= 1);
      return true;
    },
  );
  const patient = new Signoff({ url: server.url, key, maxRetries: 3 });
  const started = Date.now();
  const ids = new Set();
  for (let n = 0; n < 3; n++) ids.add((await patient.create("refund", { n })).id); // creates: retried with one key
  assert.equal(ids.size, 3);
  assert.ok(Date.now() - started >= 1000);
  assert.equal((await patient.list({ action: "refund" })).items.length, 3, "no duplicates from the retries");
});

test("a server that is not there", async () => {
  const client = new Signoff({ url: `http://127.0.0.1:${await freePort()}`, key: "so_agent_x", maxRetries: 1 });
  await assert.rejects(client.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192"), (error) => {
    assert.ok(error instanceof signoff.ConnectionFailed);
    assert.match(error.message, /ECONNREFUSED/);
    return true;
  });
});

test("a call is bounded by the client's timeout; a long poll by its own", async (t) => {
  const { server, agentKey } = await setup();
  const request = await new Signoff({ url: server.url, key: agentKey.key }).create("refund");
  const quick = new Signoff({ url: server.url, key: agentKey.key, timeout: 200, maxRetries: 0 });
  const started = Date.now();
  assert.equal(
    (await quick.wait(request.id, { timeout: 1500 })).status,
    "pending",
    "the long poll outlives the timeout",
  );
  assert.ok(Date.now() - started >= 1500);

  // A listener that accepts connections and never answers.
  const silent = createServer(() => {});
  await new Promise((ready) => silent.listen(0, "127.0.0.1", () => ready(undefined)));
  t.after(() => silent.close());
  const port = /** @type {import("node:net").AddressInfo} */ (silent.address()).port;
  const hanging = new Signoff({ url: `http://127.0.0.1:${port}`, key: agentKey.key, timeout: 200, maxRetries: 1 });
  const before = Date.now();
  await assert.rejects(hanging.get(request.id), (error) => {
    assert.ok(error instanceof signoff.ConnectionFailed);
    assert.match(error.message, /timeout/i);
    return true;
  });
  assert.ok(Date.now() - before < 1500, "two attempts of 200 ms and one backoff");
});

test("the given fetch is the one used", async () => {
  const { server, agentKey } = await setup();
  /** @type {string[]} */
  const seen = [];
  const client = new Signoff({
    url: server.url,
    key: agentKey.key,
    fetch: (input, init) => {
      seen.push(`${init?.method} ${new URL(String(input)).pathname}`);
      return globalThis.fetch(input, init);
    },
  });
  await client.list();
  assert.deepEqual(seen, ["GET /v1/requests"]);
});

test("which calls are retried", () => {
  const refused = Object.assign(new TypeError("fetch failed"), {
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
  const reset = Object.assign(new TypeError("fetch failed"), {
    cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }),
  });
  const timedOut = new DOMException("The operation was aborted due to timeout", "TimeoutError");
  const busy = new signoff.RateLimited("rate_limited", "slow down", { status: 429, retryAfter: 2 });
  const crowded = new signoff.TooManyConnections("too_many_connections", "full", { status: 503, retryAfter: 1 });
  const crashed = new signoff.Internal("internal", "oops", { status: 500 });
  const invalid = new signoff.InvalidRequest("invalid_request", "m", { status: 400 });
  const once = { repeatable: false }; // decide, answer, cancel, reportOutcome
  const again = { repeatable: true }; // GETs, creates
  for (const call of [once, again]) {
    assert.ok((retryDelay(call, refused, 0, 3) ?? -1) >= 0);
    assert.ok((retryDelay(call, busy, 0, 3) ?? -1) >= 2000);
    assert.ok((retryDelay(call, crowded, 0, 3) ?? -1) >= 1000);
    assert.equal(retryDelay(call, busy, 3, 3), undefined, "max retries reached");
    assert.equal(retryDelay(call, invalid, 0, 3), undefined);
  }
  for (const failure of [reset, timedOut, crashed]) {
    assert.equal(retryDelay(once, failure, 0, 3), undefined);
    assert.ok((retryDelay(again, failure, 0, 3) ?? -1) >= 0);
  }
  const delays = [0, 1, 2, 3, 4, 5, 6].map(
    (attempt) => /** @type {number} */ (retryDelay(again, crashed, attempt, 10)),
  );
  assert.ok(delays[0] >= 125 && delays[0] <= 250 && delays[3] >= 1000 && delays[3] <= 2000, String(delays));
  assert.ok(delays.every((d) => d <= 8000));
});
