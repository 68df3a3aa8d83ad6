// The admin pages in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core). Each run starts
// the real `signoff` binary on a fresh SQLite file and a free port, applies two policy versions and makes keys with
// the CLI, then drives the pages as an admin (and as an approver, who is refused) would.
// The helpers below are a copy of the minimum of dashboard.test.mjs (no shared support module existed yet).
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

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [admins] }
groups:
  directors: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins, timeout: 24h, on_timeout: reject }
rules:
  - name: director-expense
    when: action == "expense"
    route: directors
`;
const POLICY_V2 = POLICY.replace(`when: action == "expense"`, `when: action == "expense" && args.amount > 100`);

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
  dir = mkdtempSync(join(tmpdir(), "signoff-admin-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    SIGNOFF_DATABASE_URL: `sqlite://${join(dir, "signoff.db")}`,
    SIGNOFF_LISTEN: `127.0.0.1:${port}`,
    SIGNOFF_PUBLIC_URL: base,
    SIGNOFF_LOG: "warn",
  };
  writeFileSync(join(dir, "v1.yaml"), POLICY);
  writeFileSync(join(dir, "v2.yaml"), POLICY_V2);
  cli("policy", "apply", join(dir, "v1.yaml"));
  cli("policy", "apply", join(dir, "v2.yaml"));
  keys.agent = makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.ada = makeKey("--role", "admin", "--name", "ada", "--approver", "ada");
  server = spawn(binary, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ready, fail) => {
    server.on("exit", (code) => fail(new Error(`signoff serve exited with ${code}`)));
    server.stdout.on("data", (chunk) => chunk.toString().includes("listening on") && ready());
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  for (const amount of [40, 400]) {
    const created = await api("POST", "/v1/requests", keys.agent, { action: "expense", args: { amount } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("an admin sees the diff between two policy versions", async () => {
  const page = await signedInPage(keys.ada);
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("heading", { name: "Policy", exact: true }).waitFor();
  await page.getByLabel("From version").selectOption("1");
  await page.getByLabel("To version").selectOption("2");
  await page.getByRole("button", { name: "Show the diff" }).click();
  await page.getByRole("heading", { name: "From version 1 to version 2" }).waitFor();
  assert.match(await page.locator("#line-diff tr.removed").innerText(), /when: action == "expense"$/);
  assert.match(await page.locator("#line-diff tr.added").innerText(), /args\.amount > 100/);
  await page.context().close();
});

test("a pasted draft is tested against history, and an invalid one shows its errors", async () => {
  const page = await signedInPage(keys.ada);
  await page.goto(`${base}/admin/policy`);
  await page.getByLabel("Draft policy (YAML)").fill(POLICY_V2.replace("route: directors", "decide: approve"));
  await page.getByRole("button", { name: "Test against history" }).click();
  const result = page.locator("#test-result");
  await result.waitFor();
  assert.match(await result.innerText(), /1 of 2 requests from the last 30d would get a different outcome/);
  assert.match(await page.locator("#changes").innerText(), /person \(directors\)\s+auto-approve\s+1/);

  await page.getByLabel("Draft policy (YAML)").fill("version: 1\nrules:\n  - name: broken\n    when: action ==\n");
  await page.getByRole("button", { name: "Test against history" }).click();
  const errors = page.locator("#draft-errors");
  await errors.waitFor();
  assert.match(await errors.innerText(), /Line \d+, column \d+: /);
  await page.context().close();
});

test("an admin verifies the audit chain", async () => {
  const page = await signedInPage(keys.ada);
  await page.goto(`${base}/admin/audit`);
  await page.getByRole("button", { name: "Verify now" }).click();
  const verification = page.locator("#verification");
  await verification.waitFor();
  assert.match(await verification.innerText(), /OK: all \d+ events check out/);
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download the export" }).click();
  assert.match((await download).suggestedFilename(), /^signoff-audit-.*\.jsonl$/);
  await page.context().close();
});

test("an admin creates a key, sees its secret once, and revokes it", async () => {
  const page = await signedInPage(keys.ada);
  await page.goto(`${base}/admin/keys`);
  await page.getByLabel("Name").fill("dana-phone");
  await page.getByLabel("Role").selectOption("approver");
  await page.getByLabel("Acts for (--approver)").fill("dana");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.locator("#new-secret").innerText()).trim();
  assert.match(secret, /^so_approver_/);
  assert.equal((await api("GET", "/v1/policy", secret)).status, 200, "the new key works");
  await page.goto(`${base}/admin/keys`);
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  await page.getByRole("link", { name: "Revoke dana-phone" }).click();
  await page.getByRole("heading", { name: "Revoke the key “dana-phone”?" }).waitFor();
  await page.getByRole("button", { name: "Revoke this key" }).click();
  await page.locator("#revoked").waitFor();
  assert.equal((await api("GET", "/v1/policy", secret)).status, 401, "the revoked key is refused");
  await page.context().close();
});

test("an approver sees no Admin entry and is refused on the admin URLs", async () => {
  const page = await signedInPage(keys.dana);
  assert.equal(await page.getByRole("link", { name: "Admin" }).count(), 0);
  for (const path of ["/admin/policy", "/admin/keys", "/admin/audit"]) {
    const response = await page.goto(base + path);
    assert.equal(response.status(), 403, path);
    assert.match(await page.getByRole("alert").innerText(), /admin pages are for admins/);
  }
  await page.context().close();
});

test("on a 375 × 812 phone the admin pages do not scroll sideways", async () => {
  const page = await signedInPage(keys.ada, { width: 375, height: 812 });
  for (const path of ["/admin/policy?from=1&to=2", "/admin/keys", "/admin/audit/verify"]) {
    await page.goto(base + path);
    assert.ok(await noHorizontalScroll(page), path);
  }
  await page.context().close();
});
