// Questions (human-as-tool) against the real server: `askHuman` answered through the API by an approver key,
// options, the wrong kind, expiry, cancelling, and a timeout after which asking again picks the question up.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as signoff from "signoff";
import { Signoff, askHuman, questionCallId, withRun } from "signoff";
import { decideWhenPending, startServer } from "./support.js";

async function setup() {
  const server = await startServer();
  return {
    server,
    agent: server.client("agent", "support-bot"),
    dana: server.client("approver", "dana-laptop", "--approver", "dana"),
  };
}

/** @param {string} text */
const answerWith = (text) => (/** @type {Signoff} */ api, /** @type {signoff.SignoffRequest} */ r) =>
  api.answer(r.id, text);

test("askHuman returns the answer an approver gave through the API", async () => {
  const { agent, dana } = await setup();
  const answering = decideWhenPending(dana, "ask_human", answerWith("Ship from the EU warehouse"));
  const answer = await withRun("ticket-1", () =>
    askHuman("Which warehouse should order 8812 ship from?", { client: agent }),
  );
  await answering;
  assert.equal(answer, "Ship from the EU warehouse");

  const { items } = await agent.list({ runId: "ticket-1" });
  assert.equal(items.length, 1);
  const [request] = items;
  assert.equal(request.kind, "question");
  assert.equal(request.status, "answered");
  assert.equal(request.question, "Which warehouse should order 8812 ship from?");
  assert.equal(request.call_id, questionCallId("Which warehouse should order 8812 ship from?"));
  assert.equal(request.decision?.answer, "Ship from the EU warehouse");
  assert.deepEqual(request.decision?.by, { kind: "human", approver_id: "dana", channel: "api" });
});

test("options limit the answers; the same question in the run is the same request", async () => {
  const { agent, dana } = await setup();
  const question = await agent.ask("Which region should the replica go to?", {
    options: ["eu", "us"],
    runId: "r",
    callId: "region",
  });
  assert.deepEqual(question.options, ["eu", "us"]);
  assert.equal(question.status, "pending");
  assert.equal(question.action, "ask_human");
  await assert.rejects(
    dana.answer(question.id, "asia"),
    (error) => error instanceof signoff.InvalidAnswer && error.code === "invalid_answer",
  );
  assert.equal((await dana.answer(question.id, "us")).decision?.answer, "us");
  const again = await agent.askHuman("Which region should the replica go to?", {
    options: ["eu", "us"],
    runId: "r",
    callId: "region",
  });
  assert.equal(again, "us");
  await assert.rejects(dana.answer(question.id, "eu"), signoff.AlreadyDecided);
});

test("a question cannot be approved, nor an approval answered", async () => {
  const { agent, dana } = await setup();
  const question = await agent.ask("Proceed?", { action: "deploy_question", summary: "Deploy now?" });
  assert.equal(question.summary, "Deploy now?");
  await assert.rejects(dana.approve(question.id), signoff.WrongKind);
  const approval = await agent.create("refund", { amount: 10 });
  await assert.rejects(dana.answer(approval.id, "yes"), signoff.WrongKind);
});

test("expiry and a timeout end askHuman; asking again picks the question up", async () => {
  const { agent, dana } = await setup();
  // `short_fuse` is routed with a 1 s deadline: a question nobody answers expires.
  await assert.rejects(askHuman("Still there?", { action: "short_fuse", client: agent }), (error) => {
    assert.ok(error instanceof signoff.Unanswered);
    assert.equal(error.request.status, "expired");
    assert.equal(error.message, "No answer: nobody answered the question before its deadline");
    return true;
  });

  await assert.rejects(
    withRun("run-timeout", () => agent.askHuman("Which courier?", { timeout: 500 })),
    (error) => {
      assert.ok(error instanceof signoff.ApprovalTimeout);
      assert.equal(error.request.status, "pending");
      return true;
    },
  );
  const [pending] = (await agent.list({ runId: "run-timeout" })).items;
  await dana.answer(pending.id, "DHL");
  assert.equal(await withRun("run-timeout", () => agent.askHuman("Which courier?")), "DHL");
  assert.equal((await agent.list({ runId: "run-timeout" })).items.length, 1);
});

test("a cancelled question is unanswered", async () => {
  const { agent } = await setup();
  const question = await agent.ask("Refund in cash?", { runId: "run-cancel", callId: "cash" });
  await agent.cancel(question.id, "customer withdrew");
  await assert.rejects(agent.askHuman("Refund in cash?", { runId: "run-cancel", callId: "cash" }), {
    name: "Unanswered",
    message: "No answer: the question was cancelled (customer withdrew)",
  });
});

test("askHuman without a client is configured from the environment", async (t) => {
  const { server, dana } = await setup();
  const key = server.key("agent", "env-bot").key;
  const saved = { SIGNOFF_URL: process.env.SIGNOFF_URL, SIGNOFF_KEY: process.env.SIGNOFF_KEY };
  Object.assign(process.env, { SIGNOFF_URL: server.url, SIGNOFF_KEY: key });
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const answering = decideWhenPending(dana, "ask_human", answerWith("42"));
  assert.equal(await askHuman("How many units are left?"), "42");
  await answering;
});
