// A gated tool shared by the requireApproval tests and the agent process they crash (`node agent_tools.js RUN_ID`),
// which is configured by SIGNOFF_URL and SIGNOFF_KEY.
import { requireApproval, withRun } from "signoff";

/** @type {Array<{ customer: string, amount: number }>} Every time the tool's body really ran, with its arguments. */
export const calls = [];

export const refund = requireApproval(
  async (/** @type {{ customer: string, amount: number }} */ { customer, amount }) => {
    calls.push({ customer, amount });
    return `refunded ${amount} to ${customer}`;
  },
  { action: "refund", summary: "Refund {amount} to {customer}" },
);

if (process.argv[1] === new URL(import.meta.url).pathname) {
  await withRun(process.argv[2], async () => console.log(await refund({ customer: "c_42", amount: 120 })));
}
