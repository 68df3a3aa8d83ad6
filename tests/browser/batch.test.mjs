// Batch review in real headless Chromium: from the queue's Review all link, one request left out, the rest approved
// in one action, each decided on its own (one decision event each, by the person, through the dashboard).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, noHorizontalScroll, signedInPage, startSignoff } from "./support.mjs";

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [refunds] }
groups:
  refunds: { notify: [dashboard], digest: { every: 1h } }
defaults: { route: refunds, timeout: 24h, on_timeout: reject }
`;

const PHONE = { width: 375, height: 812 };
let signoff, browser;
const keys = {};

before(async () => {
  signoff = await startSignoff(POLICY);
  keys.agent = signoff.makeKey("--role", "agent", "--name", "refund-bot");
  keys.admin = signoff.makeKey("--role", "admin", "--name", "root");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

async function statusOf(id) {
  return (await signoff.api("GET", `/v1/requests/${id}`, keys.agent)).body.status;
}

test("Review all: exclude one, approve the rest, each decided separately", async () => {
  const refund = (summary, amount) => signoff.create(keys.agent, { action: "refund", summary, args: { amount } });
  const ids = [await refund("Refund order 17", 120), await refund("Refund order 18", 300), await refund("Refund order 19", 520)];
  const page = await signedInPage(browser, signoff.base, keys.dana, PHONE);
  await page.locator("#review-all").getByRole("link", { name: "refunds" }).click();
  await page.getByRole("heading", { name: "Review all in refunds" }).waitFor();
  assert.match(await page.locator("#batch-count").innerText(), /3 requests you may decide, total 940 \(args\.amount\)/);
  assert.ok(await noHorizontalScroll(page), "batch review on a phone");
  for (const id of ids) assert.ok(await page.locator(`input[name=id][value="${id}"]`).isChecked(), `${id} ticked`);

  await page.getByLabel("Include Refund order 18").uncheck();
  await page.getByLabel("Comment (required to reject)").fill("Orders checked");
  await page.getByRole("button", { name: "Approve selected" }).click();
  await page.locator("#batch-outcomes").waitFor();
  const outcomes = await page.locator("#batch-outcomes").innerText();
  assert.match(outcomes, /Refund order 17: Approved\./);
  assert.match(outcomes, /Refund order 19: Approved\./);
  assert.doesNotMatch(outcomes, /Refund order 18/);

  assert.equal(await statusOf(ids[0]), "approved");
  assert.equal(await statusOf(ids[1]), "pending");
  assert.equal(await statusOf(ids[2]), "approved");
  for (const id of [ids[0], ids[2]]) {
    const events = (await signoff.api("GET", `/v1/requests/${id}/events`, keys.admin)).body;
    const list = Array.isArray(events) ? events : events.events;
    const decided = list.filter((e) => e.kind === "decided");
    assert.equal(decided.length, 1, JSON.stringify(list));
    assert.equal(decided[0].actor, "approver:dana");
    assert.equal(decided[0].data.by.approver_id, "dana");
    assert.equal(decided[0].data.by.channel, "dashboard");
  }
  // What was left out still waits, unticked, on the page.
  const left = page.locator(`input[name=id][value="${ids[1]}"]`);
  assert.equal(await left.isChecked(), false);
  assert.match(await page.locator("#batch-count").innerText(), /1 request you may decide, total 300/);
  await page.context().close();
});
