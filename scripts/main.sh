#!/usr/bin/env bash
# The main job: set up, then run the JS benchmarks of the packages built so
# far, each against the peers a user would pick instead:
# - rcqb: round trips against MessagePort, SharedArrayBuffer + Atomics and a
#   Unix socket, between threads and between processes;
# - smo-copy: copies into shared memory against Buffer.copy and TypedArray.set;
# - ipc: echo round trips between processes against a Unix socket,
#   process.send and MessagePort;
# - libservice-union: lookups through 1, 4 and 16 layers against the local
#   libservice and node:fs;
# - iolib: the user-level path (iolib -> ipc -> I/O service -> union/local)
#   against node:fs on the kernel path, on bindfs and on unionfs-fuse
#   (Debian's packages, installed here when possible; skipped otherwise);
# - ioservice: what an idle I/O service costs (CPU over 10 s, resident memory);
# - libservice-ceph: the user-level CephFS client against ceph-fuse, on a
#   throw-away single-node cluster started here (Debian's packages, installed
#   when possible; the bench says it is skipped otherwise).
# (`pnpm bench` also runs the Rust benches: closed system, copy pipeline, echo, lookups.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The FUSE peers of the iolib benchmark (optional: it says so when they are missing).
if ! command -v bindfs >/dev/null || ! command -v unionfs-fuse >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq bindfs unionfs-fuse) >/dev/null 2>&1 || echo "[main] could not install bindfs and unionfs-fuse; their peers are skipped" >&2
  fi
fi
node packages/rcqb/bench/roundtrip.mjs
node packages/smo-copy/bench/copy.mjs
node packages/ipc/bench/echo.mjs
node packages/libservice-union/bench/layers.mjs
node packages/iolib/bench/ops.mjs
node packages/ioservice/bench/idle.mjs
if bash scripts/ceph-dev-cluster.sh install && bash scripts/ceph-dev-cluster.sh start; then
  eval "$(bash scripts/ceph-dev-cluster.sh env)"
  trap 'bash scripts/ceph-dev-cluster.sh stop' EXIT
fi
node packages/libservice-ceph/bench/ops.mjs
