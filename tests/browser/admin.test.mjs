// The admin pages in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core). Each run starts
// the real `signoff` binary on a fresh SQLite file and a free port, applies two policy versions and makes keys with
// the CLI, then drives the pages as an admin (and as an approver, who is refused) would.
// The helpers below are a copy of the minimum of dashboard.test.mjs (no shared support module existed yet).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startSignoff, launchBrowser, signedInPage, noHorizontalScroll } from "./support.mjs";

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

let signoff, base, browser;
const keys = {};

before(async () => {
  signoff = await startSignoff([POLICY, POLICY_V2]);
  base = signoff.base;
  keys.agent = signoff.makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.ada = signoff.makeKey("--role", "admin", "--name", "ada", "--approver", "ada");
  browser = await launchBrowser();
  for (const amount of [40, 400]) {
    await signoff.create(keys.agent, { action: "expense", args: { amount } });
  }
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

test("an admin sees the diff between two policy versions", async () => {
  const page = await signedInPage(browser, base, keys.ada);
  await page.getByRole("link", { name: "Admin", exact: true }).click();
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
  const page = await signedInPage(browser, base, keys.ada);
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
  const page = await signedInPage(browser, base, keys.ada);
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
  const page = await signedInPage(browser, base, keys.ada);
  await page.goto(`${base}/admin/keys`);
  await page.getByLabel("Name").fill("dana-phone");
  await page.getByLabel("Role").selectOption("approver");
  await page.getByLabel("Acts for (--approver)").fill("dana");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.locator("#new-secret").innerText()).trim();
  assert.match(secret, /^so_approver_/);
  assert.equal((await signoff.api("GET", "/v1/policy", secret)).status, 200, "the new key works");
  await page.goto(`${base}/admin/keys`);
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  await page.getByRole("link", { name: "Revoke dana-phone" }).click();
  await page.getByRole("heading", { name: "Revoke the key “dana-phone”?" }).waitFor();
  await page.getByRole("button", { name: "Revoke this key" }).click();
  await page.locator("#revoked").waitFor();
  assert.equal((await signoff.api("GET", "/v1/policy", secret)).status, 401, "the revoked key is refused");
  await page.context().close();
});

test("an approver sees no Admin entry and is refused on the admin URLs", async () => {
  const page = await signedInPage(browser, base, keys.dana);
  assert.equal(await page.getByRole("link", { name: "Admin", exact: true }).count(), 0);
  for (const path of ["/admin/policy", "/admin/keys", "/admin/audit"]) {
    const response = await page.goto(base + path);
    assert.equal(response.status(), 403, path);
    assert.match(await page.getByRole("alert").innerText(), /admin pages are for admins/);
  }
  await page.context().close();
});

test("on a 375 × 812 phone the admin pages do not scroll sideways", async () => {
  const page = await signedInPage(browser, base, keys.ada, { width: 375, height: 812 });
  for (const path of ["/admin/policy?from=1&to=2", "/admin/keys", "/admin/audit/verify"]) {
    await page.goto(base + path);
    assert.ok(await noHorizontalScroll(page), path);
  }
  await page.context().close();
});
