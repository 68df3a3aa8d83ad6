// Every ```ts block of the SDK's README is type-checked (strict) and run, each as its own process, against the real
// server, from a project that installed the SDK's folder with `npm install` (so the package's exports and
// declarations are what is used), and prints what the README says it does.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { before, test } from "node:test";
import { setTracingDisabled } from "@openai/agents";
import { Signoff } from "signoff";
import { PACKAGE, decideWhenPending, freePort, startServer } from "./support.js";

setTracingDisabled(true);

/** The README's ```ts blocks, in order. */
const blocks = [...readFileSync(join(PACKAGE, "README.md"), "utf8").matchAll(/^```ts\n(.*?)^```$/gms)].map((m) => m[1]);
const names = ["gate", "ask", "client", "errors", "receiver", "ai", "agents"];

// Inside the package folder, so the examples' other imports (`ai`, `zod`, `@openai/agents`) resolve to its
// devDependencies; `signoff` itself resolves to the project's own install of the folder.
const project = join(PACKAGE, "node_modules", ".readme-project");

before(() => {
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "readme-project", private: true, type: "module" }),
  );
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--silent", PACKAGE], {
    cwd: project,
    stdio: "inherit",
  });
  const compilerOptions = {
    target: "es2022",
    module: "nodenext",
    strict: true,
    types: ["node"],
    skipLibCheck: true,
    outDir: "out",
  };
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["*.ts"] }));
  blocks.forEach((code, i) => writeFileSync(join(project, `${names[i]}.ts`), code));
  execFileSync(join(PACKAGE, "node_modules/.bin/tsc"), ["-p", project], { stdio: "inherit" });
});

/**
 * Starts one example as its own process, configured like an agent would be.
 * @param {string} name
 * @param {Record<string, string>} env
 */
function start(name, env) {
  return spawn(
    process.execPath,
    ["--import", join(PACKAGE, "test/readme_models.js"), join(project, "out", `${name}.js`)],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
}

/** Runs an example to its end; resolves to what it printed. */
async function runBlock(/** @type {string} */ name, /** @type {Record<string, string>} */ env) {
  const child = start(name, env);
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  const [code] = await once(child, "exit");
  assert.equal(code, 0, `${name} exited with ${code}`);
  return output;
}

test("the README has the blocks this test runs", () => {
  assert.equal(blocks.length, names.length);
});

test("the README's examples run and print what it says", async () => {
  const server = await startServer({ settings: { SIGNOFF_ALLOW_PRIVATE_CALLBACKS: "true" } });
  const agentKey = server.key("agent", "refund-bot");
  const env = { SIGNOFF_URL: server.url, SIGNOFF_KEY: agentKey.key };
  const dana = server.client("approver", "dana-laptop", "--approver", "dana");
  const agent = new Signoff({ url: server.url, key: agentKey.key });
  /** @param {import("signoff").SignoffRequest} r */
  const lowerTheAmount = (/** @type {Signoff} */ api, r) =>
    api.approve(r.id, { comment: "not the shipping", args: { ...r.args, amount: 100 } });

  let deciding = decideWhenPending(dana, "refund", lowerTheAmount);
  assert.equal(await runBlock("gate", env), "Refunded 100 to c_42\n");
  await deciding;

  deciding = decideWhenPending(dana, "ask_human", (api, r) => api.answer(r.id, "eu"));
  assert.equal(await runBlock("ask", env), "replica in eu\n");
  await deciding;

  deciding = decideWhenPending(dana, (r) => r.action === "refund" && r.summary === "Refund order 1042", lowerTheAmount);
  assert.equal(await runBlock("client", env), "executing { amount: 100, order: '1042' }\n");
  await deciding;

  assert.equal(await runBlock("errors", env), "not_found 404 request not found\n");

  const refunds = (await agent.list({ action: "refund" })).items;
  assert.equal(refunds.length, 2);
  assert.ok(refunds.every((r) => r.outcome?.ok === true));

  for (const example of ["ai", "agents"]) {
    deciding = decideWhenPending(
      dana,
      (r) => r.action === "refund" && r.run_id === "ticket-7781" && r.status === "pending",
      (api, r) => api.approve(r.id),
    );
    assert.equal(await runBlock(example, { ...env, README_MODEL: example }), "Done: Refunded 120 to c_42.\n", example);
    await deciding;
  }
  // The gated call, then each framework's call: one request each (a framework's call is keyed by its own id).
  assert.equal((await agent.list({ runId: "ticket-7781", action: "refund" })).items.length, 3);
});

test("the README's callback receiver handles a real callback", async (t) => {
  const server = await startServer({ settings: { SIGNOFF_ALLOW_PRIVATE_CALLBACKS: "true" } });
  const agentKey = server.key("agent", "refund-bot");
  const port = await freePort();
  const receiver = start("receiver", {
    SIGNOFF_WEBHOOK_SECRET: /** @type {string} */ (agentKey.webhookSecret),
    PORT: String(port),
  });
  t.after(() => receiver.kill());
  const lines = createInterface({ input: receiver.stdout })[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, "listening");
  const agent = new Signoff({ url: server.url, key: agentKey.key });
  const request = await agent.create(
    "lookup",
    { customer: "c_7" },
    { callbackUrl: `http://127.0.0.1:${port}/signoff/callback`, state: { conversation: "c-5521" } },
  );
  assert.deepEqual(JSON.parse((await lines.next()).value), {
    id: request.id,
    status: "approved",
    args: { customer: "c_7" },
    state: { conversation: "c-5521" },
  });
  for await (const event of agent.events()) {
    if (event.kind !== "callback_attempted") continue;
    assert.deepEqual(
      [event.request_id, /** @type {any} */ (event.data).status, /** @type {any} */ (event.data).state],
      [request.id, 204, "delivered"],
    );
    break;
  }
});
