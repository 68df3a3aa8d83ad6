// Preloaded (`node --import`) into the README's AI SDK and OpenAI Agents examples, which `declare const model`: the
// model they are given, by README_MODEL. Both play the same conversation: refund c_42 its 120, then say so.
import { Usage } from "@openai/agents";
import { MockLanguageModelV4 } from "ai/test";

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};
const input = JSON.stringify({ customer: "c_42", amount: 120 });

/** The text of the last tool result in a prompt: what the model says back. */
const lastToolText = (/** @type {any[]} */ messages) => JSON.stringify(messages.at(-1));

/** @type {Record<string, () => unknown>} */
const models = {
  ai: () => {
    let calls = 0;
    return new MockLanguageModelV4({
      doGenerate: async ({ prompt }) => {
        calls += 1;
        if (calls === 1) {
          const content = [
            { type: /** @type {const} */ ("tool-call"), toolCallId: "call-1", toolName: "refund", input },
          ];
          return { content, finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] };
        }
        const text = lastToolText(prompt).includes("Refunded 120 to c_42")
          ? "Done: Refunded 120 to c_42."
          : "I could not refund.";
        return {
          content: [{ type: "text", text }],
          finishReason: { unified: "stop", raw: undefined },
          usage,
          warnings: [],
        };
      },
    });
  },
  agents: () => {
    let calls = 0;
    return {
      async getResponse(/** @type {any} */ request) {
        calls += 1;
        const output =
          calls === 1
            ? [{ type: "function_call", callId: "call_1", name: "refund", status: "completed", arguments: input }]
            : [
                {
                  type: "message",
                  role: "assistant",
                  status: "completed",
                  content: [
                    {
                      type: "output_text",
                      text: lastToolText(request.input).includes("Refunded 120 to c_42")
                        ? "Done: Refunded 120 to c_42."
                        : "I could not refund.",
                    },
                  ],
                },
              ];
        return { usage: new Usage(), output };
      },
      async *getStreamedResponse() {
        throw new Error("not streamed");
      },
    };
  },
};

const make = models[process.env.README_MODEL ?? ""];
if (make) Object.assign(globalThis, { model: make() });
