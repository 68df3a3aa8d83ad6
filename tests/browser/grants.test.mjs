// Standing approvals in real headless Chromium: "approve and similar ones for the next …" on the request page, the
// request it then approves naming the grant and its person, and the Grants page with Revoke (also on a phone).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, noHorizontalScroll, signedInPage, startSignoff } from "./support.mjs";

const POLICY = `version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [finance] }
  - { id: eve, name: Eve Examiner, email: eve@example.com, groups: [finance] }
groups:
  finance: { notify: [dashboard] }
defaults: { route: finance, timeout: 24h, on_timeout: reject }
rules:
  - name: refunds
    when: action == "refund"
    route: finance
    standing: { max: 4h, scope: [args.customer] }
  - name: wires
    when: action == "wire"
    route: finance
`;

const PHONE = { width: 375, height: 812 };
let signoff, browser;
const keys = {};

before(async () => {
  signoff = await startSignoff(POLICY);
  keys.agent = signoff.makeKey("--role", "agent", "--name", "refund-bot");
  for (const person of ["dana", "eve"]) {
    keys[person] = signoff.makeKey("--role", "approver", "--name", person, "--approver", person);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  signoff?.stop();
});

const refund = (customer, amount) =>
  signoff.create(keys.agent, { action: "refund", summary: `Refund ${customer}`, args: { customer, amount } });

test("approving with a standing window approves the next similar request, named on its page", async () => {
  const first = await refund("acme", 40);
  const page = await signedInPage(browser, signoff.base, keys.dana);
  await page.goto(`${signoff.base}/requests/${first}`);
  const choice = page.getByLabel("Approve and similar ones for the next …");
  const offered = await choice.locator("option").allInnerTexts();
  assert.deepEqual(offered, ["only this request", "15m", "1h", "4h"], "windows up to the rule's max");
  assert.match(await page.locator("#standing-scope").innerText(), /args\.customer = "acme"/);
  await choice.selectOption({ label: "1h" });
  await page.locator("#approve").click();
  await page.locator("#outcome").waitFor();
  assert.match(await page.locator("#status").innerText(), /approved/);

  const second = await refund("acme", 75);
  const created = await signoff.api("GET", `/v1/requests/${second}`, keys.agent);
  assert.equal(created.body.status, "approved", JSON.stringify(created.body));
  await page.goto(`${signoff.base}/requests/${second}`);
  assert.match(await page.locator("#outcome").innerText(), /approved by standing grant grt_[0-9a-f]+ of dana/);
  // A request under a rule without `standing` offers no window.
  const wire = await signoff.create(keys.agent, { action: "wire", args: { amount: 5 } });
  await page.goto(`${signoff.base}/requests/${wire}`);
  await page.locator("#approve").waitFor();
  assert.equal(await page.locator("#standing").count(), 0);
  await page.context().close();
});

test("the Grants page lists live grants; only their granter (or an admin) revokes them", async () => {
  const first = await refund("globex", 20);
  const decided = await signoff.api("POST", `/v1/requests/${first}/decision`, keys.dana, { outcome: "approve", standing_s: 600 });
  assert.equal(decided.status, 200, JSON.stringify(decided.body));
  const grant = (await signoff.api("GET", "/v1/grants", keys.dana)).body.items.find((g) => g.request_id === first);
  assert.ok(grant, "the grant is listed");

  const eve = await signedInPage(browser, signoff.base, keys.eve, PHONE);
  await eve.getByRole("link", { name: "Grants" }).click();
  const eveRow = eve.locator(`.row[data-id="${grant.id}"]`);
  await eveRow.waitFor();
  assert.match(await eveRow.innerText(), /args\.customer = "globex"/);
  assert.match(await eveRow.innerText(), /granted by Dana Director for refund-bot/);
  assert.equal(await eveRow.getByRole("button", { name: "Revoke" }).count(), 0, "eve did not grant it");
  assert.ok(await noHorizontalScroll(eve), "grants on a phone");
  await eve.context().close();

  const dana = await signedInPage(browser, signoff.base, keys.dana);
  await dana.getByRole("link", { name: "Grants" }).click();
  const row = dana.locator(`.row[data-id="${grant.id}"]`);
  await row.getByRole("button", { name: "Revoke" }).click();
  await dana.getByRole("heading", { name: "Standing approvals" }).waitFor();
  assert.equal(await dana.locator(`.row[data-id="${grant.id}"]`).count(), 0, "a revoked grant is no longer live");
  const later = await refund("globex", 30);
  assert.equal((await signoff.api("GET", `/v1/requests/${later}`, keys.agent)).body.status, "pending");

  // A form without the session's CSRF token revokes nothing.
  const other = await refund("initech", 10);
  await signoff.api("POST", `/v1/requests/${other}/decision`, keys.dana, { outcome: "approve", standing_s: 600 });
  const live = (await signoff.api("GET", "/v1/grants", keys.dana)).body.items.find((g) => g.request_id === other);
  const forged = await dana.request.post(`${signoff.base}/grants/${live.id}/revoke`, { form: { csrf: "forged" } });
  assert.equal(forged.status(), 403);
  const still = (await signoff.api("GET", "/v1/grants", keys.dana)).body.items.map((g) => g.id);
  assert.ok(still.includes(live.id), "the forged revoke did nothing");
  await dana.context().close();
});
