// Signing in by an emailed link (read from a real SMTP listener) and a revision's page, in real headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core). Runs the real `signoff` binary on a fresh SQLite file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startSmtp, linksIn } from "./smtp.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const binary = join(process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target"), "debug/signoff");

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
groups:
  directors: { notify: [email] }
defaults: { route: directors, timeout: 24h, on_timeout: reject }
rules:
  - name: director-expense
    when: action == "expense"
    route: directors
    reject_reasons: [too large, wrong budget]
`;

let dir, env, server, base, browser, smtp;
const keys = {};

function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

const cli = (...args) => execFileSync(binary, args, { env, encoding: "utf8" });
const makeKey = (...args) => JSON.parse(cli("keys", "create", "--json", ...args)).key;

async function api(method, path, key, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "signoff-browser-"));
  smtp = await startSmtp();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    SIGNOFF_DATABASE_URL: `sqlite://${join(dir, "signoff.db")}`,
    SIGNOFF_LISTEN: `127.0.0.1:${port}`,
    SIGNOFF_PUBLIC_URL: base,
    SIGNOFF_SMTP_URL: smtp.url,
    SIGNOFF_EMAIL_FROM: "Signoff <signoff@example.com>",
    SIGNOFF_LOG: "warn",
  };
  writeFileSync(join(dir, "policy.yaml"), POLICY);
  cli("policy", "apply", join(dir, "policy.yaml"));
  keys.agent = makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
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
  await smtp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("signing in by an emailed link works once; a used link is refused", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + "/sign-in");
  await page.getByLabel("Email address").fill("dana@example.com");
  await page.getByRole("button", { name: "Email me a link" }).click();
  await page.getByRole("status").filter({ hasText: "a sign-in link is on its way" }).waitFor();

  const mail = await smtp.waitFor((m) => m.includes("dana@example.com") && m.includes("Sign in to Signoff"));
  const link = linksIn(mail).find((l) => l.includes("/sign-in/link?token="));
  assert.ok(link, "the mail carries a sign-in link");
  await page.goto(link);
  await page.getByRole("heading", { name: "Sign in as Dana Director" }).waitFor();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  assert.ok(await page.getByText("Dana Director").isVisible());

  const again = await (await browser.newContext()).newPage();
  const answer = await again.goto(link);
  assert.equal(answer.status(), 410);
  await again.getByText("This sign-in link was already used").waitFor();
  await context.close();
});

test("a revision of a rejected request shows the earlier attempt, its rejection and the argument diff", async () => {
  const first = await api("POST", "/v1/requests", keys.agent, {
    action: "expense", summary: "Team offsite dinner", args: { amount: 900, currency: "EUR" },
  });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const rejected = await api("POST", `/v1/requests/${first.body.id}/decision`, keys.dana, {
    outcome: "reject", reason: "too large", comment: "Keep dinners under 500",
  });
  assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
  const second = await api("POST", "/v1/requests", keys.agent, {
    action: "expense", summary: "Team offsite dinner, smaller", args: { amount: 450, currency: "EUR" },
    reasoning: "Lowered after the rejection: too large", revises: first.body.id,
  });
  assert.equal(second.status, 201, JSON.stringify(second.body));

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + "/sign-in");
  await page.getByLabel("API key").fill(keys.dana);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  await page.goto(`${base}/requests/${second.body.id}`);
  const revision = page.locator("#revision");
  await revision.getByRole("heading", { name: /Attempt 2: asked again after Team offsite dinner/ }).waitFor();
  await revision.getByText("rejected by dana via api").waitFor();
  await revision.getByText("too large — Keep dinners under 500").waitFor();
  const row = revision.locator("table.diff tbody tr", { hasText: "amount" });
  assert.equal(await row.locator("td.old").innerText(), "900");
  assert.equal(await row.locator("td.new").innerText(), "450");
  assert.equal(await revision.locator("table.diff tbody tr").count(), 1, "only the amount changed");

  await revision.getByRole("link", { name: "Team offsite dinner" }).click();
  await page.locator("#revised-by").getByRole("link", { name: "the next attempt" }).waitFor();
  await context.close();
});
