// Signing in by an emailed link (read from a real SMTP listener) and a revision's page, in real headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), against the real `signoff` binary with email configured.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startSignoff, launchBrowser, signedInPage } from "./support.mjs";
import { startSmtp, linksIn } from "./smtp.mjs";

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

let signoff, base, browser, smtp;
const keys = {};

before(async () => {
  smtp = await startSmtp();
  signoff = await startSignoff(POLICY, { SIGNOFF_SMTP_URL: smtp.url, SIGNOFF_EMAIL_FROM: "Signoff <signoff@example.com>" });
  base = signoff.base;
  keys.agent = signoff.makeKey("--role", "agent", "--name", "expenses-bot");
  keys.dana = signoff.makeKey("--role", "approver", "--name", "dana", "--approver", "dana");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  signoff?.stop();
  await smtp?.close();
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
  const first = await signoff.create(keys.agent, {
    action: "expense", summary: "Team offsite dinner", args: { amount: 900, currency: "EUR" },
  });
  const rejected = await signoff.api("POST", `/v1/requests/${first}/decision`, keys.dana, {
    outcome: "reject", reason: "too large", comment: "Keep dinners under 500",
  });
  assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
  const second = await signoff.create(keys.agent, {
    action: "expense", summary: "Team offsite dinner, smaller", args: { amount: 450, currency: "EUR" },
    reasoning: "Lowered after the rejection: too large", revises: first,
  });

  const page = await signedInPage(browser, base, keys.dana);
  await page.goto(`${base}/requests/${second}`);
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
  await page.context().close();
});
