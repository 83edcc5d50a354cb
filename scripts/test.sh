#!/usr/bin/env bash
# The whole test suite: installs missing test tools (rtpengine, sipp, chromium, postgresql), builds,
# finds or starts a PostgreSQL, and runs every test file under tap (settings in .taprc), then prints
# the coverage of src/ per folder and, last, `N passed, N failed` (CI reads that line).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh
prepare test

pg_tmp=""
work="$(mktemp -d)"
cleanup() {
  rm -rf "$work"
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

# `npm test -- --repeat N [FILE…]` runs the given test files (default: all) N times in a row and stops at
# the first failing run: the way to prove that a test passes every time, not just once.
repeat=1
if [ "${1:-}" = --repeat ]; then
  repeat="${2:?--repeat takes a count}"; shift 2
  [[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "monologue: --repeat takes a whole number, got '$repeat'" >&2; exit 2; }
fi
# Files that mostly wait (RFC 4028 intervals, 64*T1, Timer H, a storage outage, sipp's pauses around
# re-INVITEs, an event receiver's outage, a killed service's restart) and use little CPU: in a whole-suite run they go to a second runner beside the rest, which
# keeps the suite's wall time down on two cores. None of them asserts a tight time bound.
timer_bound=(test/e2e/session-timers.test.ts test/sip/indialog.test.ts test/sip/trust.test.ts
  test/e2e/inbound-trust.test.ts test/e2e/recording-ops.test.ts test/e2e/hold.test.ts test/events/outage.test.ts
  test/sip/midcall.test.ts test/e2e/crash.test.ts)
side=()
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' | sort)
  for t in "${timer_bound[@]}"; do
    [ -f "$t" ] || continue
    side+=("$t")
    for i in "${!files[@]}"; do [ "${files[$i]}" = "$t" ] && unset 'files[$i]'; done
  done
  files=("${files[@]}")
fi

# tap builds its Test class for the plugins named in .taprc (without its ts-node and mock plugins) on
# first use. Build it here once, not in two runners at the same moment.
if grep -qE '@tapjs/(typescript|mock)' node_modules/@tapjs/test/test-built/dist/esm/index.js 2>/dev/null; then
  npx --no-install tap build >/dev/null
fi

passed=0; failed=0; status=0; failures=()
# Adds one runner's counts (scripts/test-results.ts); a runner that died before counting still failed.
count() {
  local counts="$1" code="$2" p=0 f=0 lines=()
  if [ -s "$counts" ]; then
    read -r p f < "$counts"
    mapfile -t -s 1 lines < "$counts"; failures+=("${lines[@]}")
  fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$code" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
  return 0
}
# tap (settings in .taprc: tsx, one file at a time, 600 s per file) with its raw TAP read by
# scripts/test-results.ts, which prints a line per test and counts them. Each runner's test processes (and
# the node processes they spawn) write their V8 coverage under their own folder; tap's closing report
# in each runner therefore finds none (--allow-empty-coverage) and scripts/test-coverage.ts reports both.
run_tests() {
  local name="$1"; shift
  rm -rf "${work:?}/$name" "$work/$name.counts"; mkdir -p "$work/$name"
  npx --no-install tap -R tap --allow-empty-coverage --test-env="_TAPJS_PROCESSINFO_CWD_=$work/$name" "$@" \
    | node --import tsx scripts/test-results.ts "$work/$name.counts"
}
for run in $(seq 1 "$repeat"); do
  [ "$repeat" -gt 1 ] && echo "monologue: run $run of $repeat" >&2
  set +e
  side_pid=""
  if [ ${#side[@]} -gt 0 ]; then
    run_tests side "${side[@]}" >"$work/side.out" 2>&1 &
    side_pid=$!
  fi
  run_tests main "${files[@]}"
  status=$?
  side_status=0
  if [ -n "$side_pid" ]; then
    wait "$side_pid"; side_status=$?
    echo "monologue: timer-bound files, run beside the others:"; cat "$work/side.out"
  fi
  set -e
  count "$work/main.counts" "$status"
  [ -n "$side_pid" ] && count "$work/side.counts" "$side_status"
  [ "$status" -eq 0 ] && [ "$side_status" -eq 0 ] || { status=1; break; }
done
node --import tsx scripts/test-coverage.ts "$work/main" "$work/side" || echo "monologue: no coverage report (see above)"
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed:"; printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
exit "$status"
