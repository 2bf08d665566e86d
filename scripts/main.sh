#!/usr/bin/env bash
# The main job: set up, then run the rcqb benchmark that shows rcqb against its
# peers (MessagePort, SharedArrayBuffer + Atomics, a Unix socket), in threads
# and across processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pnpm --filter @polytropon/rcqb bench
