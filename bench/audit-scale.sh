#!/usr/bin/env bash
# Issue 15 benchmark (not a test): audited decisions per second through 1, 2 and 4 release
# `pivault serve` processes on ONE PostgreSQL database, for this checkout (sharded audit log)
# and, in the same run, for BASE (default f28d683, the single-head design before issue 15).
#
#   bench/audit-scale.sh                  # both designs, 1/2/4 instances, 10 s per run
#   BASE=<rev> SECS=10 CONNS="16 64" ROUNDS=3 bench/audit-scale.sh
#   DBS=sqlite CONNS=64 ROUNDS=5 bench/audit-scale.sh   # SQLite only: 5 alternating pairs
#
# Also one `serve` on SQLite for each design (the target: the sharded build within 10% of the
# single-head one there).
#
# Each instance gets its own wrk (-t1 -c<each of $CONNS>) posting POST /v1/decisions for 64 imported
# subjects (allowed `service` uses: every one audited before it is answered). Reported:
# decisions/s summed over instances, non-2xx answers, audit entries written (must equal the
# 2xx count), and what active PostgreSQL backends waited on, sampled every 50 ms
# (pg_stat_activity.wait_event_type/wait_event): `Lock/tuple` and `Lock/transactionid` are
# writers queueing on a head row.
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust), wrk, psql, sqlite3, the data set at
# ../shared/data/zh_CN-10k (or DATA=...).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${BASE:-f28d683}
SECS=${SECS:-10}
DBS=${DBS:-sqlite postgres}  # DBS=sqlite ROUNDS=5: five alternating SQLite pairs only
CONNS=${CONNS:-16 64}  # connections per instance: one set of runs for each
DATA=${DATA:-$ROOT/../shared/data/zh_CN-10k}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
TARGET=${TARGET:-$ROOT/../target-bench}
WORK=$(mktemp -d)
BASE_SRC=${BASE_SRC:-$TARGET-base-src}
trap 'pkill -f "$WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
echo "== building release binaries (this checkout, and $BASE)" >&2
CARGO_TARGET_DIR=$TARGET cargo build --release -q -p pivault
cp "$TARGET/release/pivault" "$WORK/pivault-sharded"
# BASE is checked out once beside the target dir (kept, so a second run builds nothing)
[ -d "$BASE_SRC" ] || git worktree add -q --detach "$BASE_SRC" "$BASE"
(cd "$BASE_SRC" && git checkout -q --detach "$BASE" && CARGO_TARGET_DIR=$TARGET-base cargo build --release -q -p pivault)
cp "$TARGET-base/release/pivault" "$WORK/pivault-single"

# a slice of the data set: 200 accounts with their consent events
mkdir -p "$WORK/slice"
head -201 "$DATA/users.csv" > "$WORK/slice/users.csv"
python3 - "$DATA" "$WORK/slice" <<'PY'
import csv, sys
src, dst = sys.argv[1], sys.argv[2]
ids = {r['account_id'] for r in csv.DictReader(open(f'{dst}/users.csv', encoding='utf-8'))}
with open(f'{src}/consent_events.csv', encoding='utf-8') as f, open(f'{dst}/consent_events.csv', 'w', encoding='utf-8', newline='') as o:
    r = csv.DictReader(f); w = csv.DictWriter(o, fieldnames=r.fieldnames); w.writeheader()
    for row in r:
        if row['account_id'] in ids: w.writerow(row)
PY

cat > "$WORK/dec.lua" <<'LUA'
local subjects = {}
for line in io.lines(os.getenv("SUBJECTS")) do subjects[#subjects + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local i = 0
request = function()
  i = i + 1
  local s = subjects[(i % #subjects) + 1]
  return wrk.format(nil, "/v1/decisions", nil,
    '{"action":"use","purpose":"service","subject_id":"' .. s .. '","categories":["user.contact.mobile"]}')
end
LUA

run() { # design instances [sqlite]
  local design=$1 n=$2 backend=${3:-postgres} bin="$WORK/pivault-$1" db="pvbench_$1_$2"
  local url="$PGURL/$db" key="$WORK/$db.key"
  if [ "$backend" = sqlite ]; then
    url="sqlite://$WORK/$db.db"
  else
    psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  fi
  export PIVAULT_DATABASE_URL=$url PIVAULT_MASTER_KEY_FILE=$key
  "$bin" import "$WORK/slice" >/dev/null 2>&1
  local token
  token=$("$bin" keys create --principal bench --purposes service 2>/dev/null | head -1)
  local q
  q() { if [ "$backend" = sqlite ]; then sqlite3 "$WORK/$db.db" "$1"; else psql -qtA "$url" -c "$1"; fi; }
  q "SELECT id FROM subjects ORDER BY id LIMIT 64" > "$WORK/subjects"
  local pids=()
  for i in $(seq 1 "$n"); do
    "$bin" serve --bind "127.0.0.1:$((18300 + i))" > "$WORK/serve-$design-$n-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((18300 + i))/healthz" >/dev/null && break; sleep 0.1; done
  done
  local before lsn0=""
  before=$(q "SELECT COUNT(*) FROM audit_log")
  [ "$backend" = sqlite ] || lsn0=$(q "SELECT pg_current_wal_lsn()")
  # lock-wait sampler
  ( end=$((SECONDS + SECS)); while [ $SECONDS -lt $end ]; do
      psql -qtA "$PGURL/postgres" -c "SELECT COALESCE(wait_event_type,'CPU') || '/' || COALESCE(wait_event,'-') FROM pg_stat_activity WHERE datname = '$db' AND state = 'active' AND pid <> pg_backend_pid()"
      sleep 0.05; done > "$WORK/waits-$design-$n" ) &
  local sampler=$!
  # CPU idle, % of both cores, each second (vmstat's first line is the average since boot)
  vmstat 1 "$((SECS + 1))" | awk 'NR > 3 { print $15 }' > "$WORK/idle-$design-$n" &
  local vm=$!
  # CPU ticks (1/CLK_TCK s) of the serve processes, of every PostgreSQL process, and of the
  # whole machine (busy = all but idle and iowait), for CPU per decision
  ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
  busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
  local s0 p0 b0
  s0=$(ticks "${pids[@]}"); p0=$(ticks $(pgrep -x postgres || true)); b0=$(busy)
  local wpids=()
  for i in $(seq 1 "$n"); do
    SUBJECTS="$WORK/subjects" TOKEN=$token wrk -t1 -c"$C" -d"${SECS}s" -s "$WORK/dec.lua" \
      "http://127.0.0.1:$((18300 + i))" > "$WORK/wrk-$design-$n-$i" 2>&1 &
    wpids+=($!)
  done
  wait "${wpids[@]}"
  local s1 p1 b1
  s1=$(ticks "${pids[@]}"); p1=$(ticks $(pgrep -x postgres || true)); b1=$(busy)
  wait "$sampler" || true; wait "$vm" || true
  kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true
  local after rate=0 reqs=0 bad=0 walpe="-"
  after=$(q "SELECT COUNT(*) FROM audit_log")
  # WAL written per audit entry (the whole cluster's WAL, so other databases' writes count too)
  [ "$backend" = sqlite ] || walpe=$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / GREATEST($after - $before, 1)" | cut -d. -f1)
  for i in $(seq 1 "$n"); do
    f="$WORK/wrk-$design-$n-$i"
    rate=$(python3 -c "print($rate + $(awk '/Requests\/sec/ {print $2}' "$f"))")
    reqs=$((reqs + $(awk '/requests in/ {print $1}' "$f")))
    nb=$(awk '/Non-2xx/ {print $NF}' "$f"); bad=$((bad + ${nb:-0}))
  done
  local waits
  waits=$(sort "$WORK/waits-$design-$n" | uniq -c | sort -rn | head -4 | awk '{printf "%s %s; ", $2, $1}')
  [ "$backend" = sqlite ] && waits="(SQLite)"
  local idle
  idle=$(sort -n "$WORK/idle-$design-$n" | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "?") }')
  local cpu
  cpu=$(python3 -c "t = 1e6 / $(getconf CLK_TCK) / max($reqs, 1); print(f'{($b1 - $b0) * t:.0f} ({($s1 - $s0) * t:.0f} + {($p1 - $p0) * t:.0f})')")
  printf '| %s | %s | %d | %d | %.0f | %d | %d | %d | %s | %s | %s | %s |\n' "$design" "$backend" "$n" "$C" "$rate" "$reqs" "$bad" "$((after - before))" "$walpe" "$idle" "$cpu" "$waits"
  [ "$backend" = sqlite ] || psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null
}

echo "| design | database | serve processes | connections each | decisions/s (sum) | requests | non-2xx | audit entries written | WAL bytes per entry | CPU idle % (median of 1 s samples) | busy CPU µs per decision (serve + PostgreSQL) | top waits of active backends (samples) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "${ROUNDS:-1}"); do
  for C in $CONNS; do
    if [[ " $DBS " == *" sqlite "* ]]; then
      run single 1 sqlite
      run sharded 1 sqlite
    fi
    if [[ " $DBS " == *" postgres "* ]]; then
      for n in 1 2 4; do
        run single "$n"
        run sharded "$n"
      done
    fi
  done
done
