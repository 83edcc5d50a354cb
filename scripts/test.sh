#!/usr/bin/env bash
# The whole test suite: installs missing test tools (rtpengine, sipp, chromium, postgresql), builds,
# finds or starts a PostgreSQL, and runs every test file with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh
prepare test

pg_tmp=""
cleanup() {
  if [ -n "$pg_tmp" ]; then
    runuser -u postgres -- "$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | head -1)")/pg_ctl" -D "$pg_tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_tmp"
  fi
}
trap cleanup EXIT
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432 && psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
  else
    # No PostgreSQL here: a throwaway one in a temporary folder on a free port, so no test skips it.
    bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | head -1)")"
    pg_tmp="$(mktemp -d)"; chmod 755 "$pg_tmp"
    port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
    run_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres "$pg_tmp"; runuser -u postgres -- "$@"; else "$@"; fi; }
    run_pg "$bin/initdb" -D "$pg_tmp/data" -A trust -U postgres >/dev/null
    run_pg "$bin/pg_ctl" -D "$pg_tmp/data" -o "-p $port -k $pg_tmp -c listen_addresses=127.0.0.1" -l "$pg_tmp/log" -w start >/dev/null
    run_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
  fi
fi
echo "monologue: PostgreSQL for tests at ${TEST_DATABASE_URL}" >&2

mapfile -t files < <(find test -name '*.test.ts' | sort)
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
