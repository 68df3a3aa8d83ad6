// The follow-up pages in real headless Chromium: Expired, Review and History, each also on a 375 × 812 phone, and
// the Flag form of a request policy let through.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, noHorizontalScroll, signedInPage, startSignoff } from "./support.mjs";

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: cleo, name: Cleo Controller, email: cleo@example.com, groups: [directors] }
  - { id: mo, name: Mo Moderator, email: mo@example.com, groups: [moderators] }
groups:
  directors: { notify: [dashboard] }
  moderators: { notify: [dashboard] }
defaults: { route: directors, timeout: 24h, on_timeout: reject }
rules:
  - name: vendor-payment
    when: action == "pay_vendor"
    route: directors
    on_timeout: fail
  - name: expenses
    when: action == "expense"
    route: directors
  - name: comment-removal
    when: action == "remove_comment"
    review: { sample: 1.0, group: moderators }
  - name: lookups
    when: action == "lookup"
    decide: approve
`;

const PHONE = { width: 375, height: 812 };
let signoff, browser;
const keys = {};

before(async () => {
  signoff = await startSignoff(POLICY);
  keys.agent = signoff.makeKey("--role", "agent", "--name", "ops-bot");
  for (const person of ["dana", "cleo", "mo"]) {
    keys[person] = signoff.makeKey("--role", "approver", "--name", person, "--approver", person);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

async function statusOf(id) {
  return (await signoff.api("GET", `/v1/requests/${id}`, keys.agent)).body.status;
}

test("a request whose deadline passed under on_timeout: fail appears on Expired", async () => {
  const id = await signoff.create(keys.agent, {
    action: "pay_vendor",
    summary: "Pay Acme for the March invoice",
    args: { vendor: "Acme", amount: 4800 },
    timeout_s: 1,
  });
  while ((await statusOf(id)) !== "expired") await new Promise((tick) => setTimeout(tick, 100));
  const page = await signedInPage(browser, signoff.base, keys.dana, PHONE);
  await page.getByRole("link", { name: "Expired" }).click();
  const row = page.locator(`.row[data-id="${id}"]`);
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /Pay Acme for the March invoice/);
  assert.match(text, /amount: 4800/);
  assert.match(text, /group directors/);
  assert.match(text, /rule vendor-payment/);
  assert.ok(await row.locator("time[title$='UTC']").count(), "when it expired, with the UTC time on hover");
  assert.ok(await noHorizontalScroll(page), "expired on a phone");
  await page.context().close();
});

test("a sampled report is confirmed and another flagged on Review; a flag without a reason is refused", async () => {
  const report = (summary) =>
    signoff.create(keys.agent, { action: "remove_comment", mode: "post", summary, args: { comment_id: 42 }, reasoning: "Looked like spam." });
  const spam = await report("Removed a spam comment");
  const joke = await report("Removed a joke about the release");
  const page = await signedInPage(browser, signoff.base, keys.mo, PHONE);
  await page.getByRole("link", { name: "Review" }).click();
  await page.locator(`#report-${joke}`).waitFor();
  assert.ok(await noHorizontalScroll(page), "review on a phone");

  const jokeCard = page.locator(`#report-${joke}`);
  await jokeCard.getByRole("button", { name: "Flag" }).click();
  await page.locator(`#report-${joke} [role=alert]`).waitFor();
  assert.match(await page.locator(`#report-${joke} [role=alert]`).innerText(), /reason/i);
  assert.equal(await statusOf(joke), "pending");

  await page.locator(`#report-${spam}`).getByRole("button", { name: "Confirm" }).click();
  await page.locator("#review-done").waitFor();
  assert.match(await page.locator("#review-done").innerText(), /Confirmed “Removed a spam comment”/);
  assert.equal(await statusOf(spam), "approved");

  await page.getByLabel("Reason (required").fill("not_spam");
  await page.getByLabel("Comment (optional)").last().fill("It was a joke, not spam: put it back");
  await page.getByLabel("The action must be undone").check();
  await page.getByRole("button", { name: "Flag" }).click();
  await page.locator("#review-done").filter({ hasText: "Flagged" }).waitFor();
  assert.match(await page.locator("#review-done").innerText(), /“not_spam”. The agent is told to undo it/);
  const flagged = (await signoff.api("GET", `/v1/requests/${joke}`, keys.agent)).body;
  assert.equal(flagged.status, "rejected");
  assert.equal(flagged.decision.comment, "It was a joke, not spam: put it back");
  assert.deepEqual([flagged.review.verdict, flagged.review.reason, flagged.review.undo], ["flagged", "not_spam", true]);
  assert.equal(await page.locator(".report").count(), 0, "nothing waits for review any more");
  await page.context().close();
});

test("History filters decided requests by outcome and by person", async () => {
  const expense = (summary) => signoff.create(keys.agent, { action: "expense", summary, args: { amount: 75 } });
  const lunch = await expense("Lunch with the auditors");
  const taxi = await expense("Taxi to the airport");
  await expense("Still waiting");
  assert.equal((await signoff.api("POST", `/v1/requests/${lunch}/decision`, keys.dana, { outcome: "approve" })).status, 200);
  const reject = { outcome: "reject", comment: "Take the train" };
  assert.equal((await signoff.api("POST", `/v1/requests/${taxi}/decision`, keys.cleo, reject)).status, 200);

  const page = await signedInPage(browser, signoff.base, keys.dana, PHONE);
  await page.getByRole("link", { name: "History" }).click();
  const rows = page.locator("#history .row");
  await page.locator(`.row[data-id="${taxi}"]`).waitFor();
  assert.ok(await noHorizontalScroll(page), "history on a phone");
  const titles = async () => (await rows.locator(".title").allInnerTexts()).join(" | ");
  assert.doesNotMatch(await titles(), /Still waiting/);

  await page.getByLabel("Outcome").selectOption("rejected");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/outcome=rejected/);
  assert.match(await titles(), /Taxi to the airport/);
  assert.doesNotMatch(await titles(), /Lunch with the auditors/);
  assert.match(await page.locator(`.row[data-id="${taxi}"]`).innerText(), /by Cleo Controller via api.*Take the train/s);

  await page.getByLabel("Outcome").selectOption("");
  await page.getByLabel("Decided by").selectOption({ label: "Dana Director" });
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/person=dana/);
  assert.equal(await titles(), "Lunch with the auditors");
  await page.getByRole("link", { name: "Lunch with the auditors" }).click();
  await page.locator("#outcome").waitFor();
  assert.match(await page.locator("#outcome").innerText(), /approved by dana/);
  await page.context().close();
});

test("a request policy approved is flagged from History and its page, as a miss", async () => {
  const id = await signoff.create(keys.agent, { action: "lookup", summary: "Looked up customer c_42", args: { customer: "c_42" } });
  const page = await signedInPage(browser, signoff.base, keys.cleo, PHONE);
  await page.getByRole("link", { name: "History" }).click();
  const row = page.locator(`.row[data-id="${id}"]`);
  await row.waitFor();
  await row.getByRole("link", { name: "Flag…" }).click();
  await page.locator("#flag-form").waitFor();
  assert.ok(await noHorizontalScroll(page), "the flag form on a phone");

  await page.locator("#flag").click();
  await page.locator("#flag-error").waitFor();
  assert.match(await page.locator("#flag-error").innerText(), /reason/i);
  assert.equal((await signoff.api("GET", `/v1/requests/${id}`, keys.agent)).body.review, undefined);

  await page.locator("#flag-reason").fill("wrong_customer");
  await page.locator("#flag-comment").fill("c_24 was meant");
  await page.locator("#flag").click();
  await page.locator("#review-outcome").waitFor();
  assert.match(await page.locator("#review-outcome").innerText(), /flagged by cleo via dashboard.*wrong_customer/s);
  assert.match(await page.locator("#review").innerText(), /A miss of the gate/);
  assert.equal(await page.locator("#flag-form").count(), 0, "one review per request");
  const flagged = (await signoff.api("GET", `/v1/requests/${id}`, keys.agent)).body;
  assert.equal(flagged.status, "approved", "the decision stays");
  assert.deepEqual([flagged.review.miss, flagged.review.by, flagged.review.channel], [true, "cleo", "dashboard"]);
  await page.context().close();
});
