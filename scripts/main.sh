#!/usr/bin/env bash
# The main job: set up, then run the JS benchmarks of the packages built so
# far, each against the peers a user would pick instead:
# - rcqb: round trips against MessagePort, SharedArrayBuffer + Atomics and a
#   Unix socket, between threads and between processes;
# - smo-copy: copies into shared memory against Buffer.copy and TypedArray.set;
# - ipc: echo round trips between processes against a Unix socket,
#   process.send and MessagePort.
# (`pnpm bench` also runs the Rust benches: closed system, copy pipeline, echo.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node packages/rcqb/bench/roundtrip.mjs
node packages/smo-copy/bench/copy.mjs
node packages/ipc/bench/echo.mjs
