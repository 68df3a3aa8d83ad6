#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, the architecture invariants,
# and every test against both SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

# A CI run builds once from clean: incremental caches would only take disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

# PostgreSQL: the tests make (and drop) a fresh database on it per test.
pg_url="${SIGNOFF_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -d "$pg_url" 2>/dev/null; then
  echo "PostgreSQL is not answering at $pg_url; starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -d "$pg_url" && break; sleep 1; done
  pg_isready -d "$pg_url"
fi

# curl and jq: the README walkthrough is run as a test.
if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl jq
fi

# Python: the independent Standard Webhooks verifier that checks our callback signatures.
standardwebhooks_version=1.1.0
if [ ! -x .venv/bin/python ] || [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("standardwebhooks"))' 2>/dev/null)" != "$standardwebhooks_version" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "standardwebhooks==$standardwebhooks_version"
fi

# Schemathesis: checks the running server against docs/openapi.json (crates/signoff/tests/openapi.rs).
schemathesis_version=4.32.5
if ! .venv/bin/schemathesis --version 2>/dev/null | grep -qx "schemathesis, version $schemathesis_version"; then
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Architecture invariants: the pure crates know nothing of HTTP or SQL; dependencies point one way (the domain knows
# nothing of the policy engine, and the client compiles no CEL).
for pure in signoff-domain signoff-policy signoff-insights; do
  if cargo tree -p "$pure" -e normal --prefix none | grep -E '^(axum|hyper|reqwest|sqlx|rusqlite|tokio) '; then
    echo "invariant broken: $pure depends on I/O crates (above)" >&2
    exit 1
  fi
done
# Dependencies point one way: the domain knows nothing of the policy engine, and the client compiles no CEL.
for crate in signoff-domain signoff-wire signoff-client; do
  if cargo tree -p "$crate" -e normal --prefix none | grep -E '^(signoff-policy|cel) '; then
    echo "invariant broken: $crate depends on the policy engine (above)" >&2
    exit 1
  fi
done

# The server knows neither the dashboard nor the MCP server: the binary (and the testkit) compose them.
if cargo tree -p signoff-server -e normal --prefix none | grep -E '^(signoff-dashboard|signoff-mcp) '; then
  echo "invariant broken: signoff-server depends on a front end it should not know (above)" >&2
  exit 1
fi

cargo test --workspace

# The dashboard in real headless Chromium: Debian's package, driven by playwright-core (pinned in
# tests/browser/package-lock.json); no browser is ever downloaded. The tests start target/debug/signoff.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
cargo build --workspace --bins  # the binary `cargo test` built, with the same features: nothing is rebuilt
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# `node --test` runs every *.test.mjs file here.
(cd tests/browser && npm ci --no-audit --no-fund --silent && node --test)

# The Python SDK (sdks/python): its pinned test dependencies in .venv (reinstalled only when its pyproject.toml or
# requirements-test.txt change), lint and strict types, then its tests against target/debug/signoff (built above).
sdk_stamp=".venv/signoff-sdk-$(cat sdks/python/pyproject.toml sdks/python/requirements-test.txt | sha256sum | cut -c1-16)"
if [ ! -e "$sdk_stamp" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e 'sdks/python[test]' -r sdks/python/requirements-test.txt
  rm -f .venv/signoff-sdk-* && touch "$sdk_stamp"
fi
(cd sdks/python && ../../.venv/bin/ruff check --quiet . && ../../.venv/bin/ruff format --check --quiet . && ../../.venv/bin/mypy)
.venv/bin/pytest -q -n 4 sdks/python/tests  # each test has its own server, so they run side by side

# The MCP server through the official `mcp` Python client, pinned in tests/mcp/requirements.txt and installed in .venv
# beside the SDK's test dependencies (reinstalled only when that file changes): `signoff mcp` over stdio and `/mcp`
# over streamable HTTP, against target/debug/signoff (built above).
mcp_stamp=".venv/signoff-mcp-$(sha256sum tests/mcp/requirements.txt | cut -c1-16)"
if [ ! -e "$mcp_stamp" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/mcp/requirements.txt
  rm -f .venv/signoff-mcp-* && touch "$mcp_stamp"
fi
(cd tests/mcp && ../../.venv/bin/ruff check --quiet . && ../../.venv/bin/ruff format --check --quiet .)
.venv/bin/pytest -q -n 4 tests/mcp

# The TypeScript SDK (sdks/typescript): its pinned devDependencies (package-lock.json), formatting (prettier), the type
# check (the JavaScript against its JSDoc, the declarations, and a strict TypeScript user of the whole API), then its
# tests against target/debug/signoff (built above). Each test starts its own servers, so test files run side by side.
(cd sdks/typescript && npm ci --no-audit --no-fund --silent && npx prettier --check --log-level warn . && npx tsc -p . && node --test --test-concurrency=4 test/*.test.js)
