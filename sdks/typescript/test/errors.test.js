// The SDK has an error class for every code the API documents (docs/api.md's errors table) and the server defines
// (`ErrorCode` in crates/signoff-wire), so a new code without a class fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import * as signoff from "signoff";
import { ERROR_CLASSES, errorFromResponse } from "signoff";
import { REPO } from "./support.js";

/** `code -> status` from the error table of docs/api.md. */
function documentedCodes() {
  const text = readFileSync(join(REPO, "docs/api.md"), "utf8");
  let table = text.slice(text.indexOf("| code | status | when |"));
  table = table.slice(0, table.indexOf("\n\n"));
  const rows = [...table.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)];
  assert.equal(rows.length, table.split("\n").length - 2, "every row of the table is read");
  return new Map(rows.map(([, code, status]) => [code, Number(status)]));
}

/** The variants of `ErrorCode`, in the snake_case the server sends. */
function serverCodes() {
  const source = readFileSync(join(REPO, "crates/signoff-wire/src/lib.rs"), "utf8");
  const body = /pub enum ErrorCode \{(.*?)\n\}/s.exec(source);
  assert.ok(body);
  const variants = [...body[1].matchAll(/^\s+([A-Z][A-Za-z]+),/gm)].map((m) => m[1]);
  return new Set(variants.map((v) => v.replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase()));
}

const pascal = (/** @type {string} */ code) =>
  code
    .split("_")
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join("");

test("the documented table and the server agree", () => {
  const documented = documentedCodes();
  assert.ok(documented.size >= 29);
  assert.deepEqual(new Set(documented.keys()), serverCodes());
});

test("every documented code has its class, exported under its name", async (t) => {
  for (const [code, status] of documentedCodes()) {
    await t.test(code, () => {
      assert.ok(Object.hasOwn(ERROR_CLASSES, code), `no SDK class for the API error code ${code}`);
      const Class = ERROR_CLASSES[code];
      assert.equal(Class.name, pascal(code));
      assert.equal(/** @type {Record<string, unknown>} */ (signoff)[pascal(code)], Class);
      const error = errorFromResponse(status, { error: { code, message: "m" } });
      assert.equal(Object.getPrototypeOf(error), Class.prototype);
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.equal(error.message, "m");
      assert.equal(error.name, pascal(code));
      assert.equal(String(error), `${pascal(code)}: m`);
      assert.ok(error instanceof signoff.SignoffError && error instanceof Error);
      assert.equal(error instanceof signoff.Conflict, status === 409);
      assert.equal(error instanceof signoff.Forbidden, status === 403);
    });
  }
});

test("details and Retry-After are kept", () => {
  const details = [{ message: "expected number, found string", path: "$.amount" }];
  const error = errorFromResponse(400, { error: { code: "invalid_args", message: "m", details } });
  assert.ok(error instanceof signoff.InvalidArgs);
  assert.deepEqual(error.details, details);
  const limited = errorFromResponse(429, { error: { code: "rate_limited", message: "slow down" } }, 3);
  assert.ok(limited instanceof signoff.RateLimited);
  assert.equal(limited.retryAfter, 3);
  assert.deepEqual(errorFromResponse(404, { error: { code: "not_found", message: "m" } }).details, []);
});

test("unknown codes and bodies still become SignoffErrors", () => {
  const newer = errorFromResponse(409, { error: { code: "some_new_conflict", message: "m" } });
  assert.equal(Object.getPrototypeOf(newer), signoff.Conflict.prototype);
  assert.equal(newer.code, "some_new_conflict");
  const teapot = errorFromResponse(418, { error: { code: "teapot", message: "m" } });
  assert.equal(Object.getPrototypeOf(teapot), signoff.SignoffError.prototype);
  assert.equal(teapot.name, "SignoffError");
  const html = errorFromResponse(502, "<html>bad gateway</html>");
  assert.equal(html.code, "http_error");
  assert.equal(html.status, 502);
});

test("the ends of gated calls carry their request", () => {
  const request = /** @type {import("signoff").SignoffRequest} */ (
    /** @type {unknown} */ ({ id: "r1", status: "rejected" })
  );
  for (const Class of [signoff.Rejected, signoff.Expired, signoff.Cancelled]) {
    const error = new Class("why", request);
    assert.ok(error instanceof signoff.NotApproved && error instanceof Error);
    assert.equal(error.request, request);
    assert.equal(String(error), `${Class.name}: why`);
  }
  assert.equal(new signoff.ApprovalTimeout("late", request).name, "ApprovalTimeout");
  assert.equal(new signoff.Unanswered("none", request).request, request);
  assert.equal(new signoff.ConnectionFailed("down").code, "connection_failed");
});
