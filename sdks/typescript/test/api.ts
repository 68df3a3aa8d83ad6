// The whole public API as a strict TypeScript user writes it: `tsc -p .` checks this file against the declarations
// (src/*.d.ts) through the package's own exports, with the real types of `ai` and `@openai/agents`. Type-level
// assertions pin the types that matter, and each `@ts-expect-error` a misuse the types must refuse (an unused one
// fails the check). Nothing here runs: the tests run the same calls against the server.

import { generateText, stepCountIs, tool, jsonSchema, type LanguageModel, type ToolApprovalConfiguration } from "ai";
import { Agent, run, tool as agentTool } from "@openai/agents";
import { z } from "zod";
import {
  AlreadyDecided,
  ApprovalTimeout,
  Cancelled,
  ConnectionFailed,
  DEFAULT_URL,
  ERROR_CLASSES,
  Expired,
  InvalidArgs,
  NotApproved,
  NotFound,
  RateLimited,
  Rejected,
  Signoff,
  SignoffError,
  TooManyConnections,
  Unanswered,
  WEBHOOK_TOLERANCE_SECONDS,
  WebhookVerificationError,
  answerText,
  approvalCallId,
  askHuman,
  currentRunId,
  errorFromResponse,
  notApprovedMessage,
  questionCallId,
  requireApproval,
  signWebhook,
  verifyWebhook,
  withRun,
  type DecidedBy,
  type Json,
  type JsonObject,
  type Page,
  type SignoffEvent,
  type SignoffRequest,
  type WebhookMessage,
} from "signoff";
import * as webhooks from "signoff/webhooks";
import { toolApproval, type SignoffToolApproval } from "signoff/ai";
import { needsApproval, resolveInterruptions } from "signoff/openai-agents";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T>(_value: T): void {}
function assertEqual<A, B>(_proof: Equal<A, B>): void {}

export async function clientUsage(): Promise<void> {
  const client = new Signoff({
    url: DEFAULT_URL,
    key: "so_agent_x",
    timeout: 10_000,
    maxRetries: 2,
    fetch: globalThis.fetch,
  });
  expectType<string>(client.url);
  new Signoff(); // SIGNOFF_URL and SIGNOFF_KEY

  const request = await client.create(
    "refund",
    { order: "1042", amount: 120 },
    {
      summary: "Refund order 1042",
      reasoning: "Arrived broken",
      context: { ticket: "T-1" },
      confidence: 0.8,
      tags: ["refund"],
      mode: "pre",
      runId: "run-1",
      callId: "call-1",
      callbackUrl: "https://agent.example.com/cb",
      state: { step: 3 },
      timeoutSeconds: 3600,
      idempotencyKey: "order-1042",
      signal: AbortSignal.timeout(1000),
    },
  );
  assertEqual<typeof request, SignoffRequest>(true);
  // @ts-expect-error args are a JSON object
  await client.create("refund", { when: new Date() });
  // @ts-expect-error mode is pre or post
  await client.create("refund", {}, { mode: "later" });

  const decided = await client.wait(request.id, { timeout: 60_000 });
  if (decided.status === "approved" && decided.decision !== null) {
    expectType<JsonObject>(decided.decision.args);
    const by: DecidedBy = decided.decision.by;
    if (by.kind === "human") expectType<string>(by.approver_id);
    await client.reportOutcome(decided.id, true, { refund_id: "re_1" });
  }
  expectType<string | null>(decided.deadline_at);
  expectType<number | null>(request.confidence);

  const page: Page<SignoffRequest> = await client.list({
    status: "pending",
    action: "refund",
    group: "finance",
    runId: "run-1",
    limit: 10,
  });
  await client.list({ cursor: page.next_cursor ?? undefined });
  await client.get(request.id);
  await client.decide(request.id, "approve", { comment: "ok", args: { amount: 100 } });
  // @ts-expect-error outcome is approve or reject
  await client.decide(request.id, "maybe");
  await client.approve(request.id, { comment: "ok", args: { amount: 100 } });
  await client.reject(request.id, "too much", { reason: "budget" });
  // @ts-expect-error a rejection needs its comment
  await client.reject(request.id);
  await client.cancel(request.id, "withdrawn");
  await client.cancel(request.id);
  const question = await client.ask("Which region?", {
    options: ["eu", "us"],
    action: "ask_region",
    runId: "r",
    callId: "c",
  });
  expectType<string | null>(question.question);
  expectType<string[]>(question.options);
  await client.answer(question.id, "eu");
  const events: SignoffEvent[] = await client.requestEvents(request.id);
  expectType<number>(events[0].seq);
  for await (const event of client.events({ after: 41, signal: AbortSignal.timeout(1000) })) {
    expectType<Json>(event.data);
    break;
  }
  expectType<string>(await client.askHuman("Which region?", { options: ["eu", "us"], timeout: 1000 }));
  expectType<string>(String(client));
}

export async function gateUsage(client: Signoff): Promise<void> {
  const refund = requireApproval(
    async ({ customer, amount }: { customer: string; amount: number }) => `Refunded ${amount} to ${customer}`,
    { action: "refund", summary: "Refund {amount} to {customer}", timeout: 60_000, client },
  );
  // Not approved returns a message: the result is the function's, or a string.
  assertEqual<Awaited<ReturnType<typeof refund>>, string>(true);
  const strict = requireApproval(async ({ n }: { n: number }) => n * 2, { action: "double", onReject: "throw" });
  assertEqual<Awaited<ReturnType<typeof strict>>, number>(true);
  const lenient = requireApproval(async ({ n }: { n: number }) => n * 2, { action: "double" });
  assertEqual<Awaited<ReturnType<typeof lenient>>, number | string>(true);
  const withSummaryFn = client.requireApproval(async ({ id }: { id: string }, note: string) => ({ id, note }), {
    action: "lookup",
    summary: ({ id }) => `Look up ${id}`,
    runId: ({ id }) => `run-${id}`,
    onReject: "throw",
  });
  expectType<{ id: string; note: string }>(await withSummaryFn({ id: "c_1" }, "hi"));
  // @ts-expect-error the gated function takes the same arguments
  await refund({ customer: "c_42" });
  // @ts-expect-error a gated function's arguments are one JSON object
  requireApproval(async (when: Date) => when, { action: "schedule" });

  await withRun("ticket-7781", async () => {
    expectType<string>(currentRunId());
    await refund({ customer: "c_42", amount: 120 });
  });
  expectType<string>(
    await askHuman("Which region?", {
      options: ["eu", "us"],
      timeout: 1000,
      client,
      runId: "r",
      callId: "c",
      context: { a: 1 },
    }),
  );
  expectType<string>(approvalCallId("refund", { amount: 1 }));
  expectType<string>(questionCallId("Which region?", ["eu"]));

  try {
    await strict({ n: 1 });
  } catch (error) {
    if (error instanceof Rejected || error instanceof Expired || error instanceof Cancelled) {
      const ended: NotApproved = error;
      expectType<SignoffRequest>(ended.request);
      expectType<string>(notApprovedMessage(ended.request));
    } else if (error instanceof ApprovalTimeout) {
      expectType<string>(error.request.id);
    } else if (error instanceof Unanswered) {
      expectType<string>(answerText(error.request));
    }
  }
}

export function errorUsage(error: unknown): void {
  if (error instanceof NotFound || error instanceof AlreadyDecided) {
    expectType<string>(error.code);
    expectType<number | undefined>(error.status);
  }
  if (error instanceof InvalidArgs) expectType<string | undefined>(error.details[0]?.path);
  if (error instanceof RateLimited || error instanceof TooManyConnections)
    expectType<number | undefined>(error.retryAfter);
  if (error instanceof ConnectionFailed) expectType<SignoffError>(error);
  const made: SignoffError = errorFromResponse(404, { error: { code: "not_found", message: "m" } });
  const Class: typeof SignoffError | undefined = ERROR_CLASSES["not_found"];
  expectType<string>(made.message);
  void Class;
}

export function webhookUsage(
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  fetchHeaders: Headers,
): void {
  const message: WebhookMessage = verifyWebhook(headers, body, "whsec_x");
  expectType<SignoffRequest>(message.data);
  verifyWebhook(fetchHeaders, body.toString(), "whsec_x", { now: 1_746_092_463 });
  webhooks.verifyWebhook([["webhook-id", "msg_1"]], new Uint8Array(body), "whsec_x");
  expectType<string>(signWebhook("whsec_x", "msg_1", 1_746_092_463, body));
  expectType<300>(WEBHOOK_TOLERANCE_SECONDS);
  expectType<Error>(new WebhookVerificationError("bad"));
  // @ts-expect-error the body is the raw bytes or text, not parsed JSON
  verifyWebhook(headers, { type: "request.decided" }, "whsec_x");
}

export async function aiSdkUsage(model: LanguageModel, client: Signoff): Promise<void> {
  const tools = {
    refund: tool({
      inputSchema: z.object({ customer: z.string(), amount: z.number() }),
      execute: async ({ customer, amount }) => `Refunded ${amount} to ${customer}`,
    }),
    lookup: tool({
      inputSchema: jsonSchema<{ customer: string }>({ type: "object", properties: { customer: { type: "string" } } }),
      execute: async ({ customer }) => customer,
    }),
  };
  const approval: SignoffToolApproval = toolApproval({
    client,
    tools: ["refund"],
    runId: "chat-1",
    timeout: 60_000,
    summary: { refund: "Refund {amount} to {customer}" },
  });
  const config: ToolApprovalConfiguration<typeof tools, unknown> = approval;
  void config;
  const result = await generateText({
    model,
    tools,
    toolApproval: approval,
    prompt: "Refund c_42",
    stopWhen: stepCountIs(5),
  });
  expectType<string>(result.text);
  await generateText({ model, tools, toolApproval: toolApproval(), prompt: "Refund c_42" });
}

export async function openAiAgentsUsage(client: Signoff): Promise<void> {
  const refund = agentTool({
    name: "refund",
    description: "Refund a customer",
    parameters: z.object({ customer: z.string(), amount: z.number() }),
    needsApproval: needsApproval("refund", {
      client,
      runId: "chat-1",
      summary: { refund: "Refund {amount} to {customer}" },
    }),
    execute: async ({ customer, amount }) => `Refunded ${amount} to ${customer}`,
  });
  const agent = new Agent({ name: "support", instructions: "Help.", tools: [refund] });
  let result = await run(agent, "Refund c_42");
  while (result.interruptions.length > 0) {
    result = await run(agent, await resolveInterruptions(result, { client, runId: "chat-1", timeout: 60_000 }));
  }
  expectType<unknown>(result.finalOutput);
}
