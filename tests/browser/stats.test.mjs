// The Stats page in real headless Chromium: a small history seeded through the API, then its charts (inline SVG drawn
// by the server) and their tables checked against the figures computed by hand, on a desktop and on a phone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, noHorizontalScroll, signedInPage, startSignoff } from "./support.mjs";

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors, moderators] }
  - { id: cleo, name: Cleo Controller, email: cleo@example.com, groups: [directors] }
groups:
  directors: { notify: [dashboard] }
  moderators: { notify: [dashboard] }
defaults: { route: directors, timeout: 24h, on_timeout: reject }
rules:
  - name: small-refund
    when: action == "refund" && args.amount < 100
    decide: approve
  - name: large-refund
    when: action == "refund"
    route: directors
    reject_reasons: [wrong_account, too_much]
  - name: comment-removal
    when: action == "remove_comment"
    review: { sample: 1.0, group: moderators }
`;

const PHONE = { width: 375, height: 812 };
let signoff, browser;
const keys = {};

// Seven requests: two approved by policy; four large refunds (Dana approves one unchanged, Cleo one with an edit, Dana
// rejects one for `wrong_account`, one waits); and one sampled report that Dana confirms.
before(async () => {
  signoff = await startSignoff(POLICY);
  keys.agent = signoff.makeKey("--role", "agent", "--name", "refund-bot");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.cleo = signoff.makeKey("--role", "approver", "--name", "cleo", "--approver", "cleo");
  browser = await launchBrowser();
  const refund = (amount) => signoff.create(keys.agent, { action: "refund", args: { amount } });
  const decide = async (id, key, body) => {
    const decided = await signoff.api("POST", `/v1/requests/${id}/decision`, key, body);
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
  };
  await refund(20);
  await refund(30);
  await decide(await refund(500), keys.dana, { outcome: "approve" });
  await decide(await refund(600), keys.cleo, { outcome: "approve", args: { amount: 550 } });
  await decide(await refund(700), keys.dana, { outcome: "reject", comment: "not their account", reason: "wrong_account" });
  await refund(800);
  const report = await signoff.create(keys.agent, { action: "remove_comment", mode: "post", args: { comment_id: 7 } });
  await decide(report, keys.dana, { outcome: "approve" });
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

const bars = (page, chart) =>
  page.locator(`svg[data-chart="${chart}"] .bar-row`).evaluateAll((rows) =>
    rows.map((row) => [row.dataset.label, row.querySelector("text.value").textContent]),
  );

test("the Stats page draws the period's figures as SVG charts with their numbers in tables", async () => {
  const page = await signedInPage(browser, signoff.base, keys.dana);
  await page.getByRole("link", { name: "Stats" }).click();
  await page.getByRole("heading", { name: "Stats", level: 1 }).waitFor();
  assert.equal(await page.locator('nav a[aria-current="page"]').innerText(), "Stats");

  const summary = await page.locator("#summary").innerText();
  assert.match(summary, /Requests\s+7 \(0 questions, 1 pending\)/);
  assert.match(summary, /Decided by policy\s+2 \(2 approved, 0 denied\)/);
  assert.match(summary, /Decided by people\s+4 \(3 approved, 1 rejected\)/);
  assert.match(summary, /Approval rate\s+75\.0 %/);
  assert.match(summary, /Sampled reviews\s+1 \(0 flagged, 0\.0 %\)/);

  // Thirty days back touch 31 UTC days; today's column holds every request, stacked by policy, people and the rest.
  const days = page.locator('svg[data-chart="volume"] g.day');
  assert.equal(await days.count(), 31);
  const today = days.last();
  const counts = await today.evaluate((g) => [g.dataset.requests, g.dataset.auto, g.dataset.human, g.dataset.other]);
  assert.deepEqual(counts, ["7", "2", "4", "1"]);
  assert.equal(await today.locator("rect").count(), 3, "one segment each for policy, people and the rest");
  assert.match(await today.locator("title").textContent(), /7 requests: 2 by policy, 4 by people, 1 other/);
  const volume = page.locator('svg[data-chart="volume"]');
  assert.match(await volume.getAttribute("aria-label"), /^Requests per day: 7 requests over 31 days, at most 7 on /);
  assert.equal(await volume.getAttribute("role"), "img");
  assert.match(await volume.locator(":scope > title").textContent(), /7 requests over 31 days/);

  assert.deepEqual(await bars(page, "rates"), [
    ["approved", "75.0 %"],
    ["approved unchanged", "50.0 %"],
    ["approved with edits", "25.0 %"],
    ["rejected", "25.0 %"],
  ]);
  assert.deepEqual(await bars(page, "reasons"), [["wrong_account", "1"]]);
  assert.deepEqual((await bars(page, "times")).map(([label]) => label), ["p50", "p90", "p99"]);
  const deadlines = await bars(page, "deadlines");
  assert.deepEqual(deadlines.slice(0, 3), [["timed out", "0"], ["expired", "0"], ["escalated", "0"]]);
  assert.deepEqual(await bars(page, "load"), [["dana", "3 (75.0 %)"], ["cleo", "1 (25.0 %)"]]);
  // The longest bar of a chart spans its whole bar area; the others are in proportion.
  const widths = await page
    .locator('svg[data-chart="load"] rect')
    .evaluateAll((rects) => rects.map((rect) => Number(rect.getAttribute("width"))));
  assert.deepEqual(widths, [360, 120]);
  for (const chart of ["volume", "rates", "reasons", "times", "deadlines", "load"]) {
    const svg = page.locator(`svg[data-chart="${chart}"]`);
    assert.ok((await svg.getAttribute("aria-label")).length > 10, `${chart} says what it shows`);
    assert.equal(await svg.locator(":scope > title").count(), 1, `${chart} has a title`);
  }

  const loadRows = await page.locator("#table-load tbody tr").allInnerTexts();
  assert.match(loadRows[0], /^dana\s+3\s+75\.0 %\s+2\s+1\s+0\s+0/);
  await page.getByText("Numbers: Rejection reasons").click();
  assert.match(await page.locator("#table-reasons").innerText(), /wrong_account\s+1/);
  assert.equal(await page.locator("#table-volume tbody tr").count(), 31);
  assert.equal(await page.locator("script:not([src])").count(), 0, "no inline script");
  assert.equal(await page.locator("[src^='http'], [href^='http']:not(a)").count(), 0, "nothing from other hosts");
  await page.context().close();
});

test("broken down by rule, the page lists each rule and the flag rate of the reviewed ones; on a phone too", async () => {
  const page = await signedInPage(browser, signoff.base, keys.cleo, PHONE);
  await page.goto(signoff.base + "/stats");
  await page.getByLabel("Break down").selectOption("rule");
  await page.getByLabel("Period").selectOption("7d");
  await page.getByRole("button", { name: "Show" }).click();
  await page.locator("#table-breakdown").waitFor();
  assert.match(page.url(), /since=7d/);
  assert.ok(await noHorizontalScroll(page), "stats on a phone");
  const row = (key) => page.locator(`#table-breakdown tr[data-key="${key}"]`).innerText();
  assert.match(await row("large-refund"), /^large-refund\s+4\s+0\s+3\s+66\.7 %\s+33\.3 %\s+33\.3 %/);
  assert.match(await row("small-refund"), /^small-refund\s+2\s+2\s+0\s+-/);
  assert.match(await row("comment-removal"), /^comment-removal\s+1\s+0\s+1\s+100\.0 %/);
  assert.deepEqual(await bars(page, "flags"), [["comment-removal", "0.0 % (0 of 1)"]]);
  await page.context().close();
});

test("a period that does not parse is refused in words, with the form still there", async () => {
  const page = await signedInPage(browser, signoff.base, keys.dana);
  const response = await page.goto(signoff.base + "/stats?since=yesterday");
  assert.equal(response.status(), 400);
  assert.match(await page.getByRole("alert").innerText(), /^Since: invalid duration `yesterday`/);
  assert.equal(await page.locator("svg[data-chart]").count(), 0);
  await page.getByLabel("Period").selectOption("30d");
  await page.getByRole("button", { name: "Show" }).click();
  await page.locator('svg[data-chart="volume"]').waitFor();
  await page.context().close();
});
