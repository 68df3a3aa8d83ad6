// The dashboard in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is
// downloaded). Each run starts the real `signoff` binary on a fresh SQLite file and a free port, makes keys with the
// CLI and drives the pages as people would. Screenshots of the queue and a request go to docs/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchBrowser, noHorizontalScroll, screenshots, signedInPage as signIn, startSignoff } from "./support.mjs";

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

let signoff, base, browser;
const keys = {};

const api = (...args) => signoff.api(...args);

async function createExpense(summary, amount) {
  return signoff.create(keys.agent, {
    action: "expense",
    summary,
    reasoning: "The team worked through the weekend on the release.",
    args: { amount, currency: "EUR", payee: { name: "Trattoria Roma", iban: "DE89370400440532013000" } },
    context: { ticket: "FIN-123", history: [{ month: "May", total: 310 }] },
    confidence: 0.82,
    tags: ["team", "food"],
  });
}

const signedInPage = (key, viewport) => signIn(browser, base, key, viewport);

before(async () => {
  signoff = await startSignoff(POLICY);
  base = signoff.base;
  keys.agent = signoff.makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  keys.hugo = signoff.makeKey("--role", "approver", "--name", "hugo", "--approver", "hugo");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  signoff?.stop();
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
