// The Advice page in real headless Chromium: the real `signoff` binary on a fresh SQLite file, a history of 20 small
// refunds that the approver approved unchanged (through the API), then the page as an approver (the finding, its
// evidence, its draft's diff and replay, no Apply button) and as an admin (Apply creates policy version 2 and shows
// the policy page).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startSignoff, launchBrowser, signedInPage, noHorizontalScroll } from "./support.mjs";

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [finance] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [admins] }
groups:
  finance: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins, timeout: 24h, on_timeout: reject }
rules:
  # Refunds under 100 go to finance.
  - name: refund-small
    when: action == "refund" && args.amount < 100
    route: finance
`;

let signoff, base, browser;
const keys = {};

before(async () => {
  signoff = await startSignoff(POLICY);
  base = signoff.base;
  keys.agent = signoff.makeKey("--role", "agent", "--name", "refund-bot");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.ada = signoff.makeKey("--role", "admin", "--name", "ada", "--approver", "ada");
  browser = await launchBrowser();
  for (let amount = 10; amount < 30; amount++) {
    const id = await signoff.create(keys.agent, { action: "refund", args: { amount } });
    const decided = await signoff.api("POST", `/v1/requests/${id}/decision`, keys.dana, { outcome: "approve" });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
  }
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

test("an approver sees the relax finding with its evidence, draft and replay, and no Apply button", async () => {
  const page = await signedInPage(browser, base, keys.dana);
  await page.getByRole("link", { name: "Advice" }).click();
  await page.getByRole("heading", { name: "Advice", exact: true }).waitFor();
  const finding = page.locator('#findings li[data-kind="relax_auto_approve"]');
  assert.match(await finding.locator("h2").innerText(), /Rule `refund-small`: 20 requests, 100\.0 % approved unchanged/);
  assert.match(await finding.locator("table.evidence").innerText(), /Decided by a person\s+20/);
  assert.match(await finding.locator("table.line-diff tr.removed").innerText(), /route: finance$/);
  assert.match(await finding.locator("table.line-diff tr.added").innerText(), /decide: approve$/);
  assert.match(await finding.locator(".replay").innerText(), /20 of 20 requests of the period would have had a different outcome/);
  assert.match(await finding.locator("table.changes").innerText(), /person \(finance\)\s+auto-approve\s+20/);
  assert.equal(await page.getByRole("button", { name: "Apply as a new policy version" }).count(), 0);
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await noHorizontalScroll(page), "the page fits a phone");
  await page.context().close();
});

test("an admin applies the finding: a new policy version, shown on the policy page", async () => {
  const page = await signedInPage(browser, base, keys.ada);
  await page.goto(`${base}/advice`);
  const finding = page.locator('#findings li[data-kind="relax_auto_approve"]');
  await finding.getByRole("button", { name: "Apply as a new policy version" }).click();
  await page.getByRole("heading", { name: "Policy", exact: true }).waitFor();
  assert.equal(await page.locator("#in-force").innerText(), "version 2");
  const versions = await signoff.api("GET", "/v1/policy/versions", keys.ada);
  assert.deepEqual(versions.body.map((v) => v.version), [2, 1]);
  const policy = await signoff.api("GET", "/v1/policy", keys.ada);
  assert.match(policy.body.source, /  # Refunds under 100 go to finance\.\n  - name: refund-small\n    when: action == "refund" && args.amount < 100\n    decide: approve\n$/);

  await page.goto(`${base}/advice`);
  await page.getByRole("heading", { name: "Advice", exact: true }).waitFor();
  assert.equal(await finding.count(), 0, "the rule approves by policy now");
  assert.match(await page.locator('#findings li[data-kind="add_tier"] h2').innerText(), /Group `finance` decides 100\.0 %/);
  await page.context().close();
});
