// Test support: the real `signoff serve` on a fresh SQLite file and a free port, with a policy applied and keys made
// by the CLI; an approver that decides from the event stream; a TCP proxy whose connections a test can break.
//
// The binary is $SIGNOFF_BIN, else ${CARGO_TARGET_DIR:-target}/debug/signoff at the repository's root (built by
// scripts/test.sh); nothing is built here.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";
import { Signoff } from "signoff";

export const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(PACKAGE, "../..");

export const POLICY = `\
version: 1
approvers:
  - { id: dana, name: Finance Director, email: dana@example.com, groups: [finance] }
  - { id: carl, name: Controller, email: carl@example.com, groups: [finance] }
groups:
  finance: { notify: [] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: auto-lookup
    when: action == "lookup"
    decide: approve
  - name: no-wires
    when: action == "wire_money"
    decide: deny
  - name: short-fuse
    when: action == "short_fuse"
    route: finance
    timeout: 1s
    on_timeout: fail
  - name: short-fuse-reject
    when: action == "short_fuse_reject"
    route: finance
    timeout: 1s
    on_timeout: reject
`;

/** Servers and proxies to stop after the test file's tests. */
const running = new Set();
after(async () => {
  for (const resource of running) await resource.stop();
});

export function signoffBinary() {
  if (process.env.SIGNOFF_BIN) return resolve(process.env.SIGNOFF_BIN);
  return resolve(REPO, process.env.CARGO_TARGET_DIR ?? "target", "debug/signoff");
}

/** @returns {Promise<number>} */
export function freePort() {
  return new Promise((ready, fail) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (address && typeof address === "object" ? ready(address.port) : fail(new Error("no port"))));
    });
  });
}

/**
 * Starts `signoff serve` with `policy` applied and `settings` (more SIGNOFF_* variables); it is stopped, and its
 * directory removed, after the test file's tests.
 * @param {{ policy?: string, settings?: Record<string, string> }} [options]
 */
export async function startServer({ policy = POLICY, settings = {} } = {}) {
  const binary = signoffBinary();
  if (!existsSync(binary)) throw new Error(`no signoff binary at ${binary}: run scripts/test.sh, or set SIGNOFF_BIN`);
  const directory = mkdtempSync(join(tmpdir(), "signoff-ts-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    SIGNOFF_DATABASE_URL: `sqlite://${join(directory, "signoff.db")}`,
    SIGNOFF_LISTEN: `127.0.0.1:${port}`,
    SIGNOFF_PUBLIC_URL: url,
    SIGNOFF_LOG: "warn",
    ...settings,
  };
  /** @param {string[]} args */
  const cli = (...args) => execFileSync(binary, args, { env, encoding: "utf8" });
  writeFileSync(join(directory, "policy.yaml"), policy);
  cli("policy", "apply", join(directory, "policy.yaml"));
  const process_ = spawn(binary, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ready, fail) => {
    const exited = (/** @type {number | null} */ code) => fail(new Error(`signoff serve exited with ${code}`));
    process_.once("exit", exited);
    let output = "";
    process_.stdout.on("data", (chunk) => {
      output += chunk;
      if (output.includes("listening on")) {
        process_.off("exit", exited);
        ready(undefined);
      }
    });
  });
  const server = {
    url,
    port,
    cli,
    /**
     * Makes a key with the CLI: `key("agent", "refund-bot")`, `key("approver", "dana-laptop", "--approver", "dana")`.
     * @param {string} role
     * @param {string} name
     * @param {string[]} extra
     * @returns {{ key: string, webhookSecret: string | null }}
     */
    key(role, name, ...extra) {
      const created = JSON.parse(cli("keys", "create", "--role", role, "--name", name, "--json", ...extra));
      return { key: created.key, webhookSecret: created.webhook_secret };
    },
    /** A client with a new key of `role`. */
    client(/** @type {string} */ role, /** @type {string} */ name, /** @type {string[]} */ ...extra) {
      return new Signoff({ url, key: server.key(role, name, ...extra).key });
    },
    async stop() {
      if (process_.exitCode === null) {
        const exited = new Promise((done) => process_.once("exit", done));
        process_.kill("SIGTERM");
        await exited;
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
  running.add(server);
  return server;
}

/**
 * Waits (on the approver's event stream, no sleeping) for the first pending request for `action` (or that `action`
 * accepts), then runs `decide(approver, request)`. Resolves to what `decide` resolved to.
 * @template T
 * @param {Signoff} approver
 * @param {string | ((request: import("signoff").SignoffRequest) => boolean)} action
 * @param {(approver: Signoff, request: import("signoff").SignoffRequest) => Promise<T>} decide
 * @returns {Promise<T>}
 */
export async function decideWhenPending(approver, action, decide) {
  const wanted =
    typeof action === "string" ? (/** @type {import("signoff").SignoffRequest} */ r) => r.action === action : action;
  for await (const event of approver.events()) {
    if (event.kind !== "routed" || event.request_id === null) continue;
    const request = await approver.get(event.request_id);
    if (request.status === "pending" && wanted(request)) return decide(approver, request);
  }
  throw new Error("the event stream ended");
}

/**
 * A TCP proxy in front of a server. `cut()` breaks every open connection, as a network failure would;
 * `loseNextAnswer()` lets the next call reach the server but breaks its connection before the answer gets back.
 */
export class TcpProxy {
  /** @param {number} upstreamPort */
  constructor(upstreamPort) {
    /** @type {Set<import("node:net").Socket>} */
    this.sockets = new Set();
    this.accepted = 0;
    this.loseAnswer = false;
    this.server = createServer((client) => {
      this.accepted += 1;
      const upstream = connect(upstreamPort, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.on("data", (data) => upstream.write(data));
      upstream.on("data", (data) => {
        if (this.loseAnswer) {
          this.loseAnswer = false;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(data);
      });
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  }

  /** @returns {Promise<string>} the proxy's URL */
  async listen() {
    await new Promise((ready) => this.server.listen(0, "127.0.0.1", () => ready(undefined)));
    const address = /** @type {import("node:net").AddressInfo} */ (this.server.address());
    running.add(this);
    return `http://127.0.0.1:${address.port}`;
  }

  cut() {
    for (const socket of this.sockets) socket.destroy();
  }

  loseNextAnswer() {
    this.loseAnswer = true;
  }

  stop() {
    this.cut();
    this.server.close();
  }
}
