// The dashboard in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is
// downloaded). Each run starts the real `signoff` binary on a fresh SQLite file and a free port, makes keys with the
// CLI and drives the pages as people would. Screenshots of the queue and a request go to docs/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const binary = join(process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target"), "debug/signoff");
const screenshots = join(root, "docs/screenshots");

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: hugo, name: Hugo HR, email: hugo@example.com, groups: [hr] }
groups:
  directors: { notify: [dashboard] }
  hr: { notify: [dashboard] }
defaults: { route: directors, timeout: 24h, on_timeout: reject }
rules:
  - name: director-expense
    when: action == "expense"
    route: directors
    reject_reasons: [too large, wrong budget]
    escalate: [ { after: 4h, to: hr } ]
    timeout: 28h
`;

let dir, env, server, base, browser;
const keys = {};

function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

function cli(...args) {
  return execFileSync(binary, args, { env, encoding: "utf8" });
}

function makeKey(...args) {
  return JSON.parse(cli("keys", "create", "--json", ...args)).key;
}

async function api(method, path, key, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function createExpense(summary, amount) {
  const created = await api("POST", "/v1/requests", keys.agent, {
    action: "expense",
    summary,
    reasoning: "The team worked through the weekend on the release.",
    args: { amount, currency: "EUR", payee: { name: "Trattoria Roma", iban: "DE89370400440532013000" } },
    context: { ticket: "FIN-123", history: [{ month: "May", total: 310 }] },
    confidence: 0.82,
    tags: ["team", "food"],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

async function signedInPage(key, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(base + "/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  return page;
}

async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "signoff-browser-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    SIGNOFF_DATABASE_URL: `sqlite://${join(dir, "signoff.db")}`,
    SIGNOFF_LISTEN: `127.0.0.1:${port}`,
    SIGNOFF_PUBLIC_URL: base,
    SIGNOFF_LOG: "warn",
  };
  writeFileSync(join(dir, "policy.yaml"), POLICY);
  cli("policy", "apply", join(dir, "policy.yaml"));
  keys.agent = makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.hugo = makeKey("--role", "approver", "--name", "hugo", "--approver", "hugo");
  server = spawn(binary, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ready, fail) => {
    server.on("exit", (code) => fail(new Error(`signoff serve exited with ${code}`)));
    server.stdout.on("data", (chunk) => chunk.toString().includes("listening on") && ready());
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("signing in by key works, and a wrong key is refused on the page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + "/");
  assert.match(page.url(), /\/sign-in/);
  await page.getByLabel("API key").fill("so_approver_wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "That key is not valid" }).waitFor();
  await page.getByLabel("API key").fill(keys.agent);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "for people" }).waitFor();
  await page.getByLabel("API key").fill(keys.dana);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  assert.ok(await page.getByText("Dana Director").isVisible());
  await context.close();
});

test("a request created through the API appears in an open queue without a reload, and leaves when decided", async () => {
  const page = await signedInPage(keys.dana);
  await page.waitForFunction(() => document.documentElement.dataset.live === "open");
  const marker = await page.evaluate(() => (window.notReloaded = true));
  const id = await createExpense("Live lunch for the release team", 180);
  const row = page.locator(`.row[data-id="${id}"]`);
  await row.waitFor();
  assert.ok(await row.getByText("amount: 180").isVisible());
  assert.equal(await page.evaluate(() => window.notReloaded), marker, "the page was not reloaded");
  const decided = await api("POST", `/v1/requests/${id}/decision`, keys.dana, { outcome: "approve" });
  assert.equal(decided.status, 200, JSON.stringify(decided.body));
  await row.waitFor({ state: "detached" });
  await page.context().close();
});

test("approve with edited arguments shows the diff and the decision", async () => {
  const id = await createExpense("Offsite dinner", 1200);
  const page = await signedInPage(keys.dana);
  await page.goto(`${base}/requests/${id}`);
  const edited = await page.getByLabel(/Edit the arguments/).inputValue();
  await page.getByLabel(/Edit the arguments/).fill(edited.replace("1200", "950"));
  await page.getByRole("button", { name: "Show the changes" }).click();
  const preview = page.locator("#edit-form table.diff");
  await preview.waitFor();
  assert.match(await preview.innerText(), /amount\s+1200\s+950/);
  await page.getByRole("button", { name: "Approve with edits" }).click();
  await page.locator("#outcome").waitFor();
  assert.match(await page.locator("#outcome").innerText(), /approved by dana via dashboard/);
  assert.match(await page.locator("#decision table.diff").innerText(), /amount\s+1200\s+950/);
  const stored = await api("GET", `/v1/requests/${id}`, keys.agent);
  assert.equal(stored.body.decision.args.amount, 950);
  await page.context().close();
});

test("rejecting without a comment is refused on the page", async () => {
  const id = await createExpense("Espresso machine", 640);
  const page = await signedInPage(keys.dana);
  await page.goto(`${base}/requests/${id}`);
  await page.getByLabel("Reason").selectOption("too large");
  await page.getByRole("button", { name: /^Reject/ }).click();
  const error = page.locator("#decision-error");
  await error.waitFor();
  assert.match(await error.innerText(), /comment/i);
  assert.equal(await page.locator("#status").innerText(), "pending");
  await page.getByLabel("Comment (required)").fill("Buy a cheaper one");
  await page.getByRole("button", { name: /^Reject/ }).click();
  await page.locator("#outcome").waitFor();
  assert.match(await page.locator("#outcome").innerText(), /rejected by dana.*too large — Buy a cheaper one/);
  await page.context().close();
});

test("a person outside the group sees no buttons, and hand-made POSTs are refused", async () => {
  const id = await createExpense("Conference tickets", 2000);
  const page = await signedInPage(keys.hugo);
  await page.goto(`${base}/requests/${id}`);
  await page.locator("#why-not").waitFor();
  assert.equal(await page.getByRole("button", { name: /^Approve/ }).count(), 0);
  assert.equal(await page.getByRole("button", { name: /^Reject/ }).count(), 0);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const post = (form) =>
    page.evaluate(
      async ([url, body]) => {
        const response = await fetch(url, { method: "POST", body: new URLSearchParams(body) });
        return { status: response.status, text: await response.text() };
      },
      [`${base}/requests/${id}/decide`, form],
    );
  const without = await post({ verdict: "approve" });
  assert.equal(without.status, 403);
  assert.match(without.text, /security token is missing or wrong/);
  const withToken = await post({ verdict: "approve", csrf });
  assert.equal(withToken.status, 403);
  assert.match(withToken.text, /directors/);
  assert.equal((await api("GET", `/v1/requests/${id}`, keys.agent)).body.status, "pending");
  await page.context().close();
});

test("a signed-out session cannot act", async () => {
  const id = await createExpense("Printer paper", 90);
  const page = await signedInPage(keys.dana);
  await page.goto(`${base}/requests/${id}`);
  const csrf = await page.locator('#approve-form input[name="csrf"]').inputValue();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  const answer = await page.evaluate(
    async ([url, csrf]) => {
      const response = await fetch(url, { method: "POST", body: new URLSearchParams({ verdict: "approve", csrf }) });
      return { status: response.status, text: await response.text() };
    },
    [`${base}/requests/${id}/decide`, csrf],
  );
  assert.equal(answer.status, 401);
  assert.match(answer.text, /not signed in/);
  assert.equal((await api("GET", `/v1/requests/${id}`, keys.agent)).body.status, "pending");
  await page.context().close();
});

test("on a 375 × 812 phone the queue and request pages do not scroll sideways; screenshots", async () => {
  const id = await createExpense("Client dinner with a rather long summary that has to wrap on a small phone screen", 4200);
  const page = await signedInPage(keys.dana, { width: 375, height: 812 });
  assert.ok(await noHorizontalScroll(page), "queue");
  await page.screenshot({ path: join(screenshots, "queue.png"), fullPage: true });
  await page.goto(`${base}/requests/${id}`);
  assert.ok(await noHorizontalScroll(page), "request");
  await page.screenshot({ path: join(screenshots, "request.png"), fullPage: true });
  await page.context().close();
});
