// What the browser tests share: the real `signoff` binary started on a fresh SQLite file and a free port with a
// policy applied, keys made with the CLI, the API, headless Chromium (Debian's /usr/bin/chromium through
// playwright-core; no browser is downloaded), signing in, and the phone-width check.
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
export const screenshots = join(root, "docs/screenshots");

function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

// Starts `signoff serve` with `policy` applied (a list: each version applied in turn) and `settings` (more SIGNOFF_*
// variables); returns its address and helpers bound to it.
export async function startSignoff(policy, settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), "signoff-browser-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    SIGNOFF_DATABASE_URL: `sqlite://${join(dir, "signoff.db")}`,
    SIGNOFF_LISTEN: `127.0.0.1:${port}`,
    SIGNOFF_PUBLIC_URL: base,
    SIGNOFF_LOG: "warn",
    ...settings,
  };
  const cli = (...args) => execFileSync(binary, args, { env, encoding: "utf8" });
  for (const [version, text] of [policy].flat().entries()) {
    writeFileSync(join(dir, `policy-${version}.yaml`), text);
    cli("policy", "apply", join(dir, `policy-${version}.yaml`));
  }
  const server = spawn(binary, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ready, fail) => {
    server.on("exit", (code) => fail(new Error(`signoff serve exited with ${code}`)));
    server.stdout.on("data", (chunk) => chunk.toString().includes("listening on") && ready());
  });
  return {
    base,
    makeKey: (...args) => JSON.parse(cli("keys", "create", "--json", ...args)).key,
    async api(method, path, key, body) {
      const response = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body && JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    },
    // Creates a request as `agentKey`; returns its id.
    async create(agentKey, body) {
      const created = await this.api("POST", "/v1/requests", agentKey, body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body.id;
    },
    stop() {
      server.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
}

// A page of a new browser context, signed in with `key` at `base`, on the queue.
export async function signedInPage(browser, base, key, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(base + "/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  return page;
}

export async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}
