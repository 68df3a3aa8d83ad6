// `needsApproval` and `resolveInterruptions` in the OpenAI Agents SDK's own runner, with a scripted model, against
// the real server: interruptions resolved by people's decisions (approve, reject, edit), policy deciding without an
// interruption, tools with `needsApproval: true`, a run state serialized and restored, and a timeout.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Agent, RunState, Usage, run, setTracingDisabled, tool } from "@openai/agents";
import { z } from "zod";
import * as signoff from "signoff";
import { needsApproval, resolveInterruptions } from "signoff/openai-agents";
import { decideWhenPending, startServer } from "./support.js";

setTracingDisabled(true);

/**
 * A `Model` that plays `steps` in turn: each gets the request's input and answers a tool call or a text.
 * @param {Array<(input: any[]) => { tool: string, input: object } | string>} steps
 */
function scriptedModel(steps) {
  /** @type {any[][]} */
  const inputs = [];
  return {
    inputs,
    async getResponse(/** @type {any} */ request) {
      inputs.push(typeof request.input === "string" ? [request.input] : request.input);
      const step = steps[inputs.length - 1];
      assert.ok(step, `the model was called ${inputs.length} times`);
      const answer = step(inputs.at(-1) ?? []);
      /** @type {any[]} */
      const output =
        typeof answer === "string"
          ? [
              {
                type: "message",
                role: "assistant",
                status: "completed",
                content: [{ type: "output_text", text: answer }],
              },
            ]
          : [
              {
                type: "function_call",
                callId: `call_${inputs.length}`,
                name: answer.tool,
                status: "completed",
                arguments: JSON.stringify(answer.input),
              },
            ];
      return { usage: new Usage(), output };
    },
    async *getStreamedResponse() {
      throw new Error("not streamed");
    },
  };
}

/** The tool outputs the model was shown. */
const toolOutputs = (/** @type {any[]} */ input) =>
  input.filter((item) => item?.type === "function_call_result").map((item) => item.output?.text ?? item.output);

/**
 * @param {ReturnType<typeof scriptedModel>} model
 * @param {{ client: signoff.Signoff, runId: string }} options
 * @param {boolean | "signoff"} approval Signoff's `needsApproval`, or a fixed one
 */
function refundAgent(model, options, approval = "signoff") {
  /** @type {Array<{ customer: string, amount: number }>} */
  const refunds = [];
  const refund = tool({
    name: "refund",
    description: "Refund a customer",
    parameters: z.object({ customer: z.string(), amount: z.number() }),
    needsApproval: approval === "signoff" ? needsApproval("refund", options) : approval,
    execute: async ({ customer, amount }) => {
      refunds.push({ customer, amount });
      return `refunded ${amount} to ${customer}`;
    },
  });
  const lookup = tool({
    name: "lookup",
    description: "Look a customer up",
    parameters: z.object({ customer: z.string() }),
    needsApproval: needsApproval("lookup", options),
    execute: async ({ customer }) => `${customer} is gold`,
  });
  return {
    agent: new Agent({ name: "support", instructions: "Help the customer.", model, tools: [refund, lookup] }),
    refunds,
  };
}

async function setup() {
  const server = await startServer();
  return {
    client: server.client("agent", "support-bot"),
    dana: server.client("approver", "dana-laptop", "--approver", "dana"),
  };
}

const refund = (/** @type {number} */ amount) => () => ({ tool: "refund", input: { customer: "c_42", amount } });

test("an interruption approved in Signoff runs the tool", async () => {
  const { client, dana } = await setup();
  const model = scriptedModel([refund(120), () => "Refunded"]);
  const { agent, refunds } = refundAgent(model, { client, runId: "chat-1" });
  let result = await run(agent, "Refund c_42");
  assert.equal(result.interruptions.length, 1);
  const [request] = (await client.list({ runId: "chat-1" })).items; // made by needsApproval, at the call
  assert.equal(request.status, "pending");
  assert.equal(request.call_id, "call_1", "keyed by the model's id of the tool call, as the Python SDK keys it");
  const approving = decideWhenPending(dana, "refund", (api, r) => api.approve(r.id));
  result = await run(agent, await resolveInterruptions(result, { client, runId: "chat-1" }));
  await approving;
  assert.equal(result.finalOutput, "Refunded");
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 120 }]);
  assert.deepEqual(toolOutputs(model.inputs[1]), ["refunded 120 to c_42"]);
  assert.equal((await client.list({ runId: "chat-1" })).items.length, 1);
});

test("a rejection reaches the model as the tool's output", async () => {
  const { client, dana } = await setup();
  const model = scriptedModel([refund(120), () => "Sorry"]);
  const { agent, refunds } = refundAgent(model, { client, runId: "chat-2" });
  let result = await run(agent, "Refund c_42");
  const rejecting = decideWhenPending(dana, "refund", (api, r) => api.reject(r.id, "outside the refund window"));
  result = await run(agent, await resolveInterruptions(result, { client, runId: "chat-2" }));
  await rejecting;
  assert.equal(result.finalOutput, "Sorry");
  assert.deepEqual(refunds, []);
  assert.deepEqual(toolOutputs(model.inputs[1]), ["Rejected by dana: outside the refund window"]);
});

test("policy approves without an interruption", async () => {
  const { client } = await setup();
  const model = scriptedModel([() => ({ tool: "lookup", input: { customer: "c_7" } }), () => "Gold"]);
  const { agent } = refundAgent(model, { client, runId: "chat-3" });
  const result = await run(agent, "Who is c_7?");
  assert.equal(result.interruptions.length, 0);
  assert.equal(result.finalOutput, "Gold");
  assert.deepEqual(toolOutputs(model.inputs[1]), ["c_7 is gold"]);
  assert.equal((await client.list({ runId: "chat-3" })).items[0].decision?.by.kind, "policy");
});

test("an edit is told to the model, and its call again with the approved arguments runs without asking again", async () => {
  const { client, dana } = await setup();
  const model = scriptedModel([
    refund(120),
    (input) => ({
      tool: "refund",
      input: JSON.parse(/these arguments: (\{.*?\})/.exec(toolOutputs(input)[0])?.[1] ?? "null"),
    }),
    () => "Refunded 100",
  ]);
  const { agent, refunds } = refundAgent(model, { client, runId: "chat-4" });
  let result = await run(agent, "Refund c_42");
  const approving = decideWhenPending(dana, "refund", (api, r) =>
    api.approve(r.id, { args: { ...r.args, amount: 100 } }),
  );
  result = await run(agent, await resolveInterruptions(result, { client, runId: "chat-4" }));
  await approving;
  assert.equal(result.interruptions.length, 0, "the approved arguments ran without another interruption");
  assert.equal(result.finalOutput, "Refunded 100");
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 100 }]);
  assert.equal((await client.list({ runId: "chat-4" })).items.length, 1, "a person was asked once");
});

test("a tool with needsApproval: true, and a run state serialized and restored", async () => {
  const { client, dana } = await setup();
  const model = scriptedModel([refund(75), () => "Refunded"]);
  const { agent, refunds } = refundAgent(model, { client, runId: "chat-5" }, true);
  const first = await run(agent, "Refund c_42");
  assert.equal(first.interruptions.length, 1);
  assert.deepEqual((await client.list({ runId: "chat-5" })).items, [], "nothing asked Signoff yet");
  const saved = first.state.toString(); // e.g. kept in a database while a person decides

  const restored = await RunState.fromString(agent, saved);
  await assert.rejects(
    resolveInterruptions(
      { interruptions: restored.getInterruptions(), state: restored },
      { client, runId: "chat-5", timeout: 200 },
    ),
    signoff.ApprovalTimeout,
  );
  const [request] = (await client.list({ runId: "chat-5" })).items;
  assert.equal(request.status, "pending");
  await dana.approve(request.id);

  const again = await RunState.fromString(agent, saved);
  const result = await run(
    agent,
    await resolveInterruptions({ interruptions: again.getInterruptions(), state: again }, { client, runId: "chat-5" }),
  );
  assert.equal(result.finalOutput, "Refunded");
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 75 }]);
  assert.deepEqual(
    (await client.list({ runId: "chat-5" })).items.map((r) => r.id),
    [request.id],
  );
});
