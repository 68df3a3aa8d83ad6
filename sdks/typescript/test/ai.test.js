// `toolApproval` in the Vercel AI SDK's own loop (`generateText` with its mock model), against the real server:
// approved calls run, rejected ones reach the model as denials with Signoff's reason, an edit reaches the model and
// its call again with the approved arguments runs without asking again, policy decides without a person, and a
// timeout ends the generation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import * as signoff from "signoff";
import { Signoff, withRun } from "signoff";
import { toolApproval } from "signoff/ai";
import { decideWhenPending, startServer } from "./support.js";

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

/**
 * A model that plays `steps` in turn: each gets the prompt and answers tool calls (`{ tool, input }`) or a text.
 * @param {Array<(prompt: any[]) => { tool: string, input: object } | string>} steps
 */
function scriptedModel(steps) {
  /** @type {any[][]} */
  const prompts = [];
  const model = new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      prompts.push(prompt);
      const step = steps[prompts.length - 1];
      assert.ok(step, `the model was called ${prompts.length} times`);
      const answer = step(prompt);
      if (typeof answer === "string") {
        return {
          content: [{ type: "text", text: answer }],
          finishReason: { unified: "stop", raw: undefined },
          usage,
          warnings: [],
        };
      }
      const call = {
        type: /** @type {const} */ ("tool-call"),
        toolCallId: `call-${prompts.length}`,
        toolName: answer.tool,
        input: JSON.stringify(answer.input),
      };
      return { content: [call], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] };
    },
  });
  return { model, prompts };
}

/** The tool results the model was shown in a prompt. */
const toolResults = (/** @type {any[]} */ prompt) => prompt.flatMap((m) => (m.role === "tool" ? m.content : []));

/** @type {Array<{ customer: string, amount: number }>} */
let refunds = [];
const tools = {
  refund: tool({
    description: "Refund a customer",
    inputSchema: jsonSchema(
      /** @type {const} */ ({
        type: "object",
        properties: { customer: { type: "string" }, amount: { type: "number" } },
        required: ["customer", "amount"],
      }),
    ),
    execute: async (/** @type {any} */ { customer, amount }) => {
      refunds.push({ customer, amount });
      return `refunded ${amount} to ${customer}`;
    },
  }),
  lookup: tool({
    description: "Look a customer up",
    inputSchema: jsonSchema(
      /** @type {const} */ ({ type: "object", properties: { customer: { type: "string" } }, required: ["customer"] }),
    ),
    execute: async (/** @type {any} */ { customer }) => ({ customer, tier: "gold" }),
  }),
};

async function setup() {
  refunds = [];
  const server = await startServer();
  return {
    agent: server.client("agent", "support-bot"),
    dana: server.client("approver", "dana-laptop", "--approver", "dana"),
  };
}

const refund = (/** @type {number} */ amount) => () => ({ tool: "refund", input: { customer: "c_42", amount } });

test("an approved call runs, with Signoff's reason on the approval", async () => {
  const { agent, dana } = await setup();
  const { model, prompts } = scriptedModel([refund(120), () => "Done"]);
  const approving = decideWhenPending(dana, "refund", (api, r) => api.approve(r.id, { comment: "within policy" }));
  const result = await generateText({
    model,
    tools,
    toolApproval: toolApproval({
      client: agent,
      runId: "chat-1",
      summary: { refund: "Refund {amount} to {customer}" },
    }),
    prompt: "Refund c_42",
    stopWhen: stepCountIs(3),
  });
  await approving;
  assert.equal(result.text, "Done");
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 120 }]);
  const response = result.steps[0].content.find((p) => p.type === "tool-approval-response");
  assert.equal(response?.approved, true);
  assert.equal(response?.reason, "Approved by dana: within policy");
  assert.deepEqual(toolResults(prompts[1])[0].output, { type: "text", value: "refunded 120 to c_42" });
  const [request] = (await agent.list({ runId: "chat-1" })).items;
  assert.equal(request.summary, "Refund 120 to c_42");
  assert.equal(request.call_id, "call-1", "keyed by the AI SDK's id of the tool call");
});

test("a rejected call does not run; the model reads the rejection", async () => {
  const { agent, dana } = await setup();
  const { model, prompts } = scriptedModel([refund(120), () => "Sorry"]);
  const rejecting = decideWhenPending(dana, "refund", (api, r) => api.reject(r.id, "outside the refund window"));
  const result = await generateText({
    model,
    tools,
    toolApproval: toolApproval({ client: agent, runId: "chat-2" }),
    prompt: "Refund c_42",
    stopWhen: stepCountIs(3),
  });
  await rejecting;
  assert.deepEqual(refunds, []);
  const response = result.steps[0].content.find((p) => p.type === "tool-approval-response");
  assert.equal(response?.approved, false);
  assert.deepEqual(toolResults(prompts[1])[0].output, {
    type: "execution-denied",
    reason: "Rejected by dana: outside the refund window",
  });
});

test("an edit reaches the model, and its call again with the approved arguments runs without asking again", async () => {
  const { agent, dana } = await setup();
  const { model, prompts } = scriptedModel([
    refund(120),
    (prompt) => {
      // The model does what the denial says: it calls again with the arguments given there.
      const { reason } = toolResults(prompt)[0].output;
      const approved = JSON.parse(/these arguments: (\{.*?\})/.exec(reason)?.[1] ?? "null");
      return { tool: "refund", input: approved };
    },
    () => "Refunded 100",
  ]);
  const approving = decideWhenPending(dana, "refund", (api, r) =>
    api.approve(r.id, { comment: "not the shipping", args: { ...r.args, amount: 100 } }),
  );
  const result = await generateText({
    model,
    tools,
    toolApproval: toolApproval({ client: agent, runId: "chat-3" }),
    prompt: "Refund c_42",
    stopWhen: stepCountIs(4),
  });
  await approving;
  assert.equal(result.text, "Refunded 100");
  assert.match(
    toolResults(prompts[1])[0].output.reason,
    /^Not run as called: dana approved it only with these arguments: \{"amount":100,"customer":"c_42"\} \(not the shipping\)\. Call refund again/,
  );
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 100 }], "only the approved arguments ran");
  assert.equal((await agent.list({ runId: "chat-3" })).items.length, 1, "a person was asked once");
});

test("policy decides without a person, and tools left out are not put to Signoff", async () => {
  const { agent } = await setup();
  const { model } = scriptedModel([() => ({ tool: "lookup", input: { customer: "c_7" } }), () => "Gold"]);
  const gated = await generateText({
    model,
    tools,
    toolApproval: toolApproval({ client: agent, runId: "chat-4" }),
    prompt: "Who is c_7?",
    stopWhen: stepCountIs(3),
  });
  assert.equal(gated.steps[0].content.find((p) => p.type === "tool-approval-response")?.reason, "Approved by policy");
  assert.equal((await agent.list({ runId: "chat-4" })).items[0].decision?.by.kind, "policy");

  const other = scriptedModel([() => ({ tool: "lookup", input: { customer: "c_8" } }), () => "Gold"]);
  const ungated = await generateText({
    model: other.model,
    tools,
    toolApproval: toolApproval({ client: agent, runId: "chat-5", tools: ["refund"] }),
    prompt: "Who is c_8?",
    stopWhen: stepCountIs(3),
  });
  assert.equal(ungated.text, "Gold");
  assert.equal(
    ungated.steps[0].content.some((p) => p.type === "tool-approval-response"),
    false,
  );
  assert.deepEqual((await agent.list({ runId: "chat-5" })).items, []);
});

test("a timeout ends the generation; the same tool call again picks the same request up", async () => {
  const { agent, dana } = await setup();
  const approval = toolApproval({ client: agent, timeout: 300 });
  const first = scriptedModel([refund(50), () => "Done"]);
  await assert.rejects(
    withRun("chat-6", () =>
      generateText({ model: first.model, tools, toolApproval: approval, prompt: "Refund", stopWhen: stepCountIs(3) }),
    ),
    (error) => error instanceof signoff.ApprovalTimeout && error.request.status === "pending",
  );
  const [pending] = (await agent.list({ runId: "chat-6" })).items;
  await dana.approve(pending.id);
  const second = scriptedModel([refund(50), () => "Done"]);
  const result = await withRun("chat-6", () =>
    generateText({ model: second.model, tools, toolApproval: approval, prompt: "Refund", stopWhen: stepCountIs(3) }),
  );
  assert.equal(result.text, "Done");
  assert.deepEqual(refunds, [{ customer: "c_42", amount: 50 }]);
  assert.deepEqual(
    (await agent.list({ runId: "chat-6" })).items.map((r) => r.id),
    [pending.id],
  );
});

test("without a client, one is made from the environment", async (t) => {
  const server = await startServer();
  const key = server.key("agent", "env-bot").key;
  const saved = { SIGNOFF_URL: process.env.SIGNOFF_URL, SIGNOFF_KEY: process.env.SIGNOFF_KEY };
  Object.assign(process.env, { SIGNOFF_URL: server.url, SIGNOFF_KEY: key });
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const { model } = scriptedModel([() => ({ tool: "lookup", input: { customer: "c_9" } }), () => "Gold"]);
  await generateText({
    model,
    tools,
    toolApproval: toolApproval({ runId: "chat-7" }),
    prompt: "Who is c_9?",
    stopWhen: stepCountIs(3),
  });
  assert.equal((await new Signoff({ url: server.url, key }).list({ runId: "chat-7" })).items.length, 1);
});
