#!/usr/bin/env bash
# Runs the README's two commands as a new machine would: a git clone of this repository's
# committed HEAD into a temporary directory, then `npm ci && npm start` (until it serves, then
# Ctrl-C) and `npm test`, with CHJOB_TEST_WITHOUT counting the programs that Node alone lacks
# as missing, so their tests are skipped as on a machine without them.
#
#   scripts/fresh-clone-check.sh [--keep] [--no-start]
#
#   --keep      keep the temporary directory (its path is printed)
#   --no-start  skip `npm start` (e.g. when another process holds its ports)
#   CHJOB_TEST_WITHOUT  default clickhouse-server,python3-grpcio,postgresql; set it empty to use
#               what this machine has
#
# Exits with npm test's status. Takes about as long as the whole suite plus `npm ci`: it is not
# part of .ci/run. Uncommitted changes are not in the clone.
set -euo pipefail

keep=""
start=1
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --no-start) start="" ;;
    *) echo "usage: $0 [--keep] [--no-start]" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$repo" rev-parse HEAD)"
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
  echo "fresh-clone-check: the work tree has uncommitted changes; checking the committed HEAD only"
fi
export CHJOB_TEST_WITHOUT="${CHJOB_TEST_WITHOUT-clickhouse-server,python3-grpcio,postgresql}"

work="$(mktemp -d "${TMPDIR:-/tmp}/chjob-fresh.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill -KILL -- "-$server_pid" 2>/dev/null || true; fi
  if [[ -n "$keep" ]]; then echo "fresh-clone-check: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "fresh-clone-check: cloning $commit into $work/chjob"
git clone --quiet --no-hardlinks "$repo" "$work/chjob"
cd "$work/chjob"
git checkout --quiet --detach "$commit"

echo "fresh-clone-check: npm ci (node $(node --version), npm $(npm --version))"
npm ci

if [[ -n "$start" ]]; then
  echo "fresh-clone-check: npm start (until \"chjob serving\", at most 300 s)"
  # Its own process group, so that Ctrl-C (SIGINT) reaches npm and the service as in a terminal.
  setsid npm start >"$work/start.log" 2>&1 &
  server_pid=$!
  served=""
  for _ in $(seq 1 300); do
    if grep -q '"msg":"chjob serving"' "$work/start.log"; then served=1; break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 1
  done
  kill -INT -- "-$server_pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 1
  done
  kill -0 "$server_pid" 2>/dev/null && kill -KILL -- "-$server_pid" 2>/dev/null || true
  server_pid=""
  if [[ -z "$served" ]]; then
    echo "fresh-clone-check: npm start did not serve; the end of its output:" >&2
    tail -n 30 "$work/start.log" >&2
    exit 1
  fi
  echo "fresh-clone-check: npm start served: $(grep -m1 '"msg":"chjob serving"' "$work/start.log")"
fi

echo "fresh-clone-check: npm test (CI unset, CHJOB_TEST_WITHOUT=$CHJOB_TEST_WITHOUT)"
status=0
env -u CI npm test 2>&1 | tee "$work/test.log" || status=$?
echo "fresh-clone-check: npm test exited $status; closing line: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/test.log" | tail -n 1)"
exit "$status"
