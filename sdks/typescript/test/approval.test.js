// `requireApproval` against the real server: approve (with edits), reject, crash and resume, timeout, expiry, and
// call ids that match the Python SDK's.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import * as signoff from "signoff";
import { Signoff, approvalCallId, questionCallId, requireApproval, withRun } from "signoff";
import { PACKAGE, decideWhenPending, startServer } from "./support.js";

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

/** @param {Signoff} agent @param {string} runId */
async function onlyRequest(agent, runId) {
  const { items } = await agent.list({ runId });
  assert.equal(items.length, 1);
  return items[0];
}

/** Points the environment at the server, for tools gated without a client; restores it after the test. */
function useEnvironment(
  /** @type {import("node:test").TestContext} */ t,
  /** @type {string} */ url,
  /** @type {string} */ key,
) {
  const saved = { SIGNOFF_URL: process.env.SIGNOFF_URL, SIGNOFF_KEY: process.env.SIGNOFF_KEY };
  Object.assign(process.env, { SIGNOFF_URL: url, SIGNOFF_KEY: key });
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}

test("an approval runs the function once, with the edited arguments, and reports the outcome", async (t) => {
  const { server, agentKey, agent, dana } = await setup();
  useEnvironment(t, server.url, agentKey.key);
  const { refund, calls } = await import("./agent_tools.js");
  calls.length = 0;
  const approving = decideWhenPending(dana, "refund", (api, r) =>
    api.approve(r.id, { comment: "not the shipping", args: { ...r.args, amount: 100 } }),
  );
  assert.equal(await withRun("ticket-1", () => refund({ customer: "c_42", amount: 120 })), "refunded 100 to c_42");
  await approving;
  assert.deepEqual(calls, [{ customer: "c_42", amount: 100 }]);
  assert.equal(refund.name, "refund");

  const request = await onlyRequest(agent, "ticket-1");
  assert.equal(request.summary, "Refund 120 to c_42");
  assert.deepEqual(request.args, { customer: "c_42", amount: 120 });
  assert.equal(request.call_id, approvalCallId("refund", { customer: "c_42", amount: 120 }));
  assert.deepEqual(request.outcome?.detail, { result: "refunded 100 to c_42" });
  assert.equal(request.outcome?.ok, true);
});

test("a rejection returns a message for the model, and the same call in the run gets the same answer", async () => {
  const { agent, dana } = await setup();
  let ran = 0;
  const refund = requireApproval(async (/** @type {{ amount: number }} */ _args) => ran++, {
    action: "refund",
    client: agent,
    runId: "ticket-2",
  });
  const rejecting = decideWhenPending(dana, "refund", (api, r) => api.reject(r.id, "outside the refund window"));
  assert.equal(await refund({ amount: 120 }), "Rejected by dana: outside the refund window");
  await rejecting;
  assert.equal(
    await refund({ amount: 120 }),
    "Rejected by dana: outside the refund window",
    "a person is never asked twice",
  );
  assert.equal(ran, 0);
  assert.equal((await onlyRequest(agent, "ticket-2")).outcome, null);
});

test("a rejection throws when asked to, with the request attached", async () => {
  const { agent, dana } = await setup();
  const deleteRows = requireApproval(
    async function deleteRows(/** @type {{ table: string, where: string }} */ _args) {
      throw new Error("must not run");
    },
    { onReject: "throw", client: agent },
  );
  const rejecting = decideWhenPending(dana, "deleteRows", (api, r) => api.reject(r.id, "that is production"));
  await assert.rejects(deleteRows({ table: "orders", where: "1=1" }), (error) => {
    assert.ok(error instanceof signoff.Rejected && error instanceof signoff.NotApproved);
    assert.equal(error.message, "Rejected by dana: that is production");
    assert.equal(error.request.status, "rejected");
    assert.deepEqual(error.request.args, { table: "orders", where: "1=1" });
    return true;
  });
  await rejecting;
});

test("an agent that crashed while waiting resumes the same request", async (t) => {
  const { server, agentKey, agent, dana } = await setup();
  const child = spawn(process.execPath, [join(PACKAGE, "test/agent_tools.js"), "ticket-3"], {
    env: { ...process.env, SIGNOFF_URL: server.url, SIGNOFF_KEY: agentKey.key },
    stdio: ["ignore", "pipe", "inherit"],
  });
  /** @type {import("signoff").SignoffRequest | undefined} */
  let request;
  for await (const event of agent.events()) {
    if (event.kind === "routed" && event.request_id) {
      request = await agent.get(event.request_id);
      break;
    }
  }
  assert.equal(request?.run_id, "ticket-3");
  assert.equal(request?.status, "pending");
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGKILL"); // the agent dies while it waits
  await exited;
  await dana.approve(request.id, { args: { customer: "c_42", amount: 110 } });

  useEnvironment(t, server.url, agentKey.key);
  const { refund, calls } = await import("./agent_tools.js");
  calls.length = 0;
  // The agent comes back and makes the same call in the same run.
  assert.equal(await withRun("ticket-3", () => refund({ customer: "c_42", amount: 120 })), "refunded 110 to c_42");
  assert.equal((await onlyRequest(agent, "ticket-3")).id, request.id);
  assert.deepEqual(calls, [{ customer: "c_42", amount: 110 }]);
});

test("a call that ran asks again when repeated", async () => {
  const { agent, dana } = await setup();
  let ran = 0;
  const refund = requireApproval(
    async (/** @type {{ amount: number }} */ { amount }) => `refunded ${amount} (${++ran})`,
    { action: "refund", client: agent },
  );
  await withRun("ticket-4", async () => {
    const approving = decideWhenPending(dana, "refund", (api, r) => api.approve(r.id));
    assert.equal(await refund({ amount: 5 }), "refunded 5 (1)");
    await approving;
    const rejecting = decideWhenPending(dana, "refund", (api, r) => api.reject(r.id, "once is enough"));
    assert.equal(await refund({ amount: 5 }), "Rejected by dana: once is enough");
    await rejecting;
  });
  const [second, first] = (await agent.list({ runId: "ticket-4" })).items;
  assert.equal(second.call_id, `${first.call_id}#2`);
  assert.equal(ran, 1);
});

test("a timeout throws, whatever onReject says, and a later call picks the request up", async () => {
  const { agent, dana } = await setup();
  /** @type {string[]} */
  const sent = [];
  const sendEmail = requireApproval(async (/** @type {{ to: string }} */ { to }) => void sent.push(to), {
    action: "send_email",
    timeout: 500,
    client: agent,
    runId: ({ to }) => `mail-${to}`,
  });
  const started = Date.now();
  await assert.rejects(sendEmail({ to: "jo@example.com" }), (error) => {
    assert.ok(error instanceof signoff.ApprovalTimeout);
    assert.equal(error.request.status, "pending");
    assert.equal(error.request.action, "send_email");
    assert.equal(error.request.run_id, "mail-jo@example.com");
    assert.deepEqual(error.request.args, { to: "jo@example.com" });
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 500 && elapsed < 5000, String(elapsed));
  const request = await onlyRequest(agent, "mail-jo@example.com");
  await dana.approve(request.id);
  await sendEmail({ to: "jo@example.com" });
  assert.deepEqual(sent, ["jo@example.com"]);
  assert.equal((await onlyRequest(agent, "mail-jo@example.com")).id, request.id);
});

test("an expired or deadline-rejected request ends the call", async () => {
  const { agent } = await setup();
  const returning = requireApproval(async (/** @type {{ n: number }} */ _args) => "ran", {
    action: "short_fuse",
    client: agent,
  });
  const throwing = requireApproval(async (/** @type {{ n: number }} */ _args) => "ran", {
    action: "short_fuse",
    client: agent,
    onReject: "throw",
  });
  assert.equal(await returning({ n: 1 }), "Expired: no decision before the deadline"); // policy: 1 s, then fail
  await assert.rejects(throwing({ n: 2 }), (error) => {
    assert.ok(error instanceof signoff.Expired);
    assert.equal(error.request.status, "expired");
    assert.equal(error.request.decision?.by.kind, "timeout");
    return true;
  });
  const timedOut = requireApproval(async (/** @type {{ n: number }} */ _args) => "ran", {
    action: "short_fuse_reject",
    client: agent,
  });
  assert.equal(await timedOut({ n: 3 }), "Rejected: no decision before the deadline"); // policy: 1 s, then reject
});

test("a failing function reports the failure and throws it", async () => {
  const { agent } = await setup();
  class LookupError extends Error {}
  const lookup = requireApproval(
    async (/** @type {{ customer: string }} */ { customer }) => {
      throw new LookupError(`no customer ${customer}`);
    },
    { action: "lookup", summary: ({ customer }) => `Look up ${customer.toUpperCase()}`, client: agent },
  );
  await assert.rejects(
    withRun("run-6", () => lookup({ customer: "c_404" })),
    LookupError,
  ); // policy approves lookups
  const request = await onlyRequest(agent, "run-6");
  assert.equal(request.summary, "Look up C_404");
  assert.equal(request.outcome?.ok, false);
  assert.deepEqual(request.outcome?.detail, { error: "LookupError", message: "no customer c_404" });
});

test("extra arguments pass through to the function", async () => {
  const { agent } = await setup();
  const lookup = requireApproval(
    async (/** @type {{ customer: string }} */ { customer }, /** @type {string} */ greeting) =>
      `${greeting} ${customer}`,
    {
      action: "lookup",
      client: agent,
    },
  );
  assert.equal(await lookup({ customer: "c_1" }, "hello"), "hello c_1");
  const bound = agent.requireApproval(async function lookup(/** @type {{ customer: string }} */ { customer }) {
    return { found: customer };
  });
  assert.deepEqual(await withRun("run-7", () => bound({ customer: "c_2" })), { found: "c_2" });
  assert.deepEqual((await onlyRequest(agent, "run-7")).outcome?.detail, { result: { found: "c_2" } });
});

test("arguments must be one JSON object, and the action must be named", async () => {
  const { agent } = await setup();
  const upload = requireApproval(async (/** @type {any} */ _args) => undefined, { action: "upload", client: agent });
  await assert.rejects(upload({ data: new Date() }), {
    name: "TypeError",
    message: /must be JSON \(a Date is not JSON\)/,
  });
  await assert.rejects(upload({ data: () => 1 }), /must be JSON/);
  await assert.rejects(upload({ n: Number.NaN }), /must be JSON/);
  await assert.rejects(upload([1, 2]), /one object of arguments/);
  assert.deepEqual((await agent.list()).items, []);
  assert.throws(() => requireApproval(async () => 1), /name the action/);
  assert.throws(
    () => requireApproval(async function go() {}, { onReject: /** @type {"throw"} */ ("raise") }),
    /onReject/,
  );
  const template = requireApproval(async (/** @type {{ a: number }} */ _args) => 1, {
    action: "t",
    summary: "{b}",
    client: agent,
  });
  await assert.rejects(template({ a: 1 }), /no argument named "b"/);
});

test("a policy denial and a cancel are told to the model", async () => {
  const { agent } = await setup();
  const wireMoney = requireApproval(
    async function wire_money(/** @type {{ iban: string }} */ _args) {
      throw new Error("must not run");
    },
    { client: agent },
  );
  assert.equal(await wireMoney({ iban: "DE89" }), "Rejected by policy: denied by policy rule `no-wires`");
  const refund = requireApproval(async (/** @type {{ amount: number }} */ _args) => "ran", {
    action: "refund",
    onReject: "throw",
    client: agent,
  });
  const cancelling = decideWhenPending(agent, "refund", (api, r) => api.cancel(r.id, "a duplicate")); // the agent withdraws it
  await assert.rejects(
    refund({ amount: 9 }),
    (error) => error instanceof signoff.Cancelled && error.message === "Cancelled: a duplicate",
  );
  await cancelling;
});

test("call ids are the Python SDK's", () => {
  // Computed with the Python SDK's rule: sha256(f"{action}\n{json.dumps(args, sort_keys=True, separators=(',', ':'))}").
  assert.equal(approvalCallId("refund", { customer: "c_42", amount: 120 }), "refund:38a8c59c1fb0f89f3dbda06379200ea4");
  const tricky = {
    b: [1, 2.5, null, true],
    a: { z: 'é☃😀\n"\\\x7f', y: 0.0001, x: 1e-5, w: 1.5e-7, v: -0.5, u: 9007199254740991, t: 1e-4, s: 12.375 },
  };
  assert.equal(approvalCallId("refund", tricky), "refund:de7f48c15580c1da80041a142e0a25d4");
  assert.equal(
    questionCallId("Which region should the replica go to?", ["eu", "us"]),
    "ask_human:db877de72261810fe812baa9b0acf33d",
  );
  assert.equal(questionCallId('Déjà vu?\n"ok"'), "ask_human:56c3abfa03f197fa70545db53f9936f2");
});
