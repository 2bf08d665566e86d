#!/usr/bin/env bash
# Prepares a fresh checkout: checks Node and Rust, installs pnpm if missing,
# installs the workspace's packages and builds everything (native cores first).
# Sourced or run by scripts/main.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "Node.js 20 or newer is required (https://nodejs.org)."
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is required; this is $(node --version)."
command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || die "a Rust toolchain is required (https://rustup.rs)."
export PATH="$HOME/.cargo/bin:$PATH" TURBO_TELEMETRY_DISABLED=1

if ! command -v pnpm >/dev/null || [ "$(pnpm --version | cut -d. -f1)" != 10 ]; then
  # corepack does not work on these machines; npm does.
  say "installing pnpm 10 with npm"
  npm install -g pnpm@10 >/dev/null 2>&1 || die "could not install pnpm (npm install -g pnpm@10)."
fi

say "pnpm install"
pnpm install --frozen-lockfile --reporter=append-only >/dev/null
say "building (Rust cores through napi-rs, then TypeScript)"
pnpm build --output-logs=errors-only
