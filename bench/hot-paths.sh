#!/usr/bin/env bash
# Issue 16 benchmark (not a test): the hot paths beside their floors, in one run.
#
#   bench/hot-paths.sh                       # 3 rounds, 8 s per HTTP run, SQLite and PostgreSQL
#   ROUNDS=3 SECS=8 BIG=/work/data-100k bench/hot-paths.sh
#   BASE_BIN=/path/to/older/pivault bench/hot-paths.sh   # before/after, paired in each round
#   ONLY="http" bench/hot-paths.sh          # a subset: any of import big http pg dsr sm4
#
# Per round, each row beside its floor:
# - import: `pivault import` of users.csv + orders.csv + consent_events.csv into a fresh SQLite
#   store (rows/s = rows in those files / wall time), and the floor: a plain sqlite3 insert of
#   the same rows (Python's sqlite3, one TEXT column per CSV column, one transaction per file);
# - big (if BIG names a larger data set, e.g. from gen_dataset.py --users 100000): the same
#   two figures on it, for the cost-per-row ratio;
# - http (SQLite) and pg (PostgreSQL): `serve` on the imported store, then wrk -t2 -c50 on
#   `/healthz` (the floor), `GET /v1/subjects/{id}/fields?purpose=service` (audited reads) and
#   `POST /v1/decisions` (audited decisions), cycling through 1,000 subjects. Besides req/s and
#   p99: the share of the healthz floor, and serve's CPU time (user + system) per request, which
#   a loaded machine disturbs much less than throughput;
# - dsr (once, after the rounds): the erasure benchmark `cargo bench --bench dsr` (50 in flight);
# - sm4 (once): the seal+open example, SM4-GCM against AES-256-GCM in one program.
# wrk shares the two cores with `serve`. Needs wrk, sqlite3, python3, psql for pg.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-8}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-import big http pg dsr sm4}
DATA=${DATA:-$ROOT/../shared/data/zh_CN-10k}
BIG=${BIG:-}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
TARGET=${TARGET:-$ROOT/../target-bench}
WORK=$(mktemp -d)
trap 'pkill -f "$WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT
has() { [[ " $ONLY " == *" $1 "* ]]; }

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
echo "== building release binary" >&2
CARGO_TARGET_DIR=$TARGET cargo build --release -q -p pivault
cp "$TARGET/release/pivault" "$WORK/pivault-this"
# BASE_BIN=path: an older build, measured beside this one in every round (rows labelled
# `before` / `after`).
BINS=("after:$WORK/pivault-this")
if [ -n "${BASE_BIN:-}" ]; then cp "$BASE_BIN" "$WORK/pivault-base"; BINS=("before:$WORK/pivault-base" "${BINS[@]}"); fi
BIN="$WORK/pivault-this"

slice() { # src dst: the three files the import row measures
  mkdir -p "$2"
  for f in users.csv orders.csv consent_events.csv; do ln -sf "$1/$f" "$2/$f"; done
}
slice "$DATA" "$WORK/small"
[ -n "$BIG" ] && slice "$BIG" "$WORK/big"
rows_of() { python3 -c "
import csv, sys
n = 0
for f in ('users.csv', 'orders.csv', 'consent_events.csv'):
    with open(f'$1/' + f, encoding='utf-8', newline='') as h: n += sum(1 for _ in csv.reader(h)) - 1
print(n)"; }
now() { date +%s.%N; }

plain_insert() { # dir -> rows/s of a plain sqlite3 insert of the same rows
  python3 - "$1" "$WORK/plain.db" <<'PY'
import csv, os, sqlite3, sys, time
src, db = sys.argv[1], sys.argv[2]
for s in ('', '-wal', '-shm', '-journal'):
    try: os.remove(db + s)
    except FileNotFoundError: pass
t = time.perf_counter(); n = 0
con = sqlite3.connect(db)
con.execute('PRAGMA journal_mode=WAL'); con.execute('PRAGMA synchronous=NORMAL')
for f in ('users.csv', 'orders.csv', 'consent_events.csv'):
    with open(os.path.join(src, f), encoding='utf-8', newline='') as h:
        r = csv.reader(h); cols = next(r); t_ = f.split('.')[0]
        con.execute(f'CREATE TABLE {t_} ({", ".join(c + " TEXT" for c in cols)})')
        rows = list(r); n += len(rows)
        with con:
            con.executemany(f'INSERT INTO {t_} VALUES ({", ".join("?" * len(cols))})', rows)
con.close()
print(round(n / (time.perf_counter() - t)))
PY
}

import_rate() { # dir store -> rows/s of pivault import into a fresh SQLite store
  local dir=$1 store=$2 rows t0 t1
  rm -rf "$store"; mkdir -p "$store"
  rows=$(rows_of "$dir")
  t0=$(now)
  PIVAULT_DATABASE_URL="sqlite://$store/pivault.db" PIVAULT_MASTER_KEY_FILE="$store/master.key" \
    "$BIN" import "$dir" --rejects "$store/rejects" >/dev/null 2>&1
  t1=$(now)
  python3 -c "print(round($rows / ($t1 - $t0)))"
}

cat > "$WORK/read.lua" <<'LUA'
local subjects = {}
for line in io.lines(os.getenv("SUBJECTS")) do subjects[#subjects + 1] = line end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/subjects/" .. subjects[(i % #subjects) + 1] .. "/fields?purpose=service")
end
LUA
cat > "$WORK/dec.lua" <<'LUA'
local subjects = {}
for line in io.lines(os.getenv("SUBJECTS")) do subjects[#subjects + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "/v1/decisions", nil,
    '{"action":"use","purpose":"service","subject_id":"' .. subjects[(i % #subjects) + 1] ..
    '","categories":["user.contact.mobile"]}')
end
LUA

TCK=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of a process, in ticks
wrk_run() { # port script|"" path -> "req/s p99 cpu-us-per-request" (of serve, pid $SERVE)
  local out c0 c1
  c0=$(cpu_of "$SERVE")
  if [ -n "$2" ]; then
    out=$(SUBJECTS="$WORK/subjects" TOKEN=$TOKEN wrk -t2 -c50 -d"${SECS}s" --latency -s "$WORK/$2" "http://127.0.0.1:$1$3")
  else
    out=$(wrk -t2 -c50 -d"${SECS}s" --latency "http://127.0.0.1:$1$3")
  fi
  c1=$(cpu_of "$SERVE")
  local bad n
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$bad" ] || echo "  (non-2xx answers on $3: $bad)" >&2
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out") $(python3 -c "print(round(($c1 - $c0) / $TCK * 1e6 / max($n, 1)))")"
}

http_rows() { # backend url keyfile port -> three wrk lines
  local backend=$1 url=$2 key=$3 port=$4
  export PIVAULT_DATABASE_URL=$url PIVAULT_MASTER_KEY_FILE=$key
  TOKEN=$("$BIN" keys create --principal "bench$RANDOM" --purposes service 2>/dev/null | head -1)
  if [[ "$url" == sqlite://* ]]; then
    sqlite3 "${url#sqlite://}" "SELECT id FROM subjects WHERE status = 'active' ORDER BY id LIMIT 1000" > "$WORK/subjects"
  else
    psql -qtA "$url" -c "SELECT id FROM subjects WHERE status = 'active' ORDER BY id LIMIT 1000" > "$WORK/subjects"
  fi
  "$BIN" serve --bind "127.0.0.1:$port" > "$WORK/serve.log" 2>&1 &
  local pid=$!
  SERVE=$pid
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  # warm-up: one short run of each, not reported
  SECS=2 wrk_run "$port" read.lua /v1 >/dev/null
  SECS=2 wrk_run "$port" dec.lua /v1 >/dev/null
  local h r d
  h=$(wrk_run "$port" "" /healthz)
  r=$(wrk_run "$port" read.lua /v1)
  d=$(wrk_run "$port" dec.lua /v1)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$backend" "$h" "$r" "$d" <<'PY'
import sys
b, h, r, d = sys.argv[1], *[s.split() for s in sys.argv[2:]]
H = float(h[0])
print(f"| {b} | healthz | {h[0]} req/s | p99 {h[1]} | 100% | {h[2]} µs |")
print(f"| {b} | audited read | {r[0]} req/s | p99 {r[1]} | {100 * float(r[0]) / H:.1f}% | {r[2]} µs |")
print(f"| {b} | decision | {d[0]} req/s | p99 {d[1]} | {100 * float(d[0]) / H:.1f}% | {d[2]} µs |")
PY
}

STORE="$WORK/store"
for round in $(seq 1 "$ROUNDS"); do
 for entry in "${BINS[@]}"; do
  L=${entry%%:*} BIN=${entry#*:}
  echo "== round $round, $L ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
  rm -rf "$STORE"
  if has import; then
    a=$(import_rate "$WORK/small" "$STORE"); p=$(plain_insert "$WORK/small")
    python3 -c "print(f'| $L | import, $(basename "$DATA") | $a rows/s | plain insert $p rows/s | {100 * $a / $p:.1f}% |')"
  fi
  if has big && [ -n "$BIG" ]; then
    a=$(import_rate "$WORK/big" "$WORK/bigstore"); p=$(plain_insert "$WORK/big")
    python3 -c "print(f'| $L | import, $(basename "$BIG") | $a rows/s | plain insert $p rows/s | {100 * $a / $p:.1f}% |')"
    rm -rf "$WORK/bigstore"
  fi
  if has http; then
    [ -f "$STORE/pivault.db" ] || import_rate "$WORK/small" "$STORE" >/dev/null
    http_rows "$L sqlite" "sqlite://$STORE/pivault.db" "$STORE/master.key" 18401
  fi
  if has pg; then
    db=pvbench_hot
    psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    PIVAULT_DATABASE_URL="$PGURL/$db" PIVAULT_MASTER_KEY_FILE="$WORK/pg.key" \
      "$BIN" import "$WORK/small" --rejects "$WORK/pgrejects" >/dev/null 2>&1
    http_rows "$L postgres" "$PGURL/$db" "$WORK/pg.key" 18402
    psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null
    rm -f "$WORK/pg.key"
  fi
 done
done
BIN="$WORK/pivault-this"

if has dsr; then
  echo "== erasures and access requests (cargo bench --bench dsr, $ROUNDS repetitions)"
  [ -f "$STORE/pivault.db" ] || import_rate "$WORK/small" "$STORE" >/dev/null
  # the full data set for the DSR store (the benchmark draws accounts from users.csv)
  rm -rf "$STORE"; mkdir -p "$STORE"
  PIVAULT_DATABASE_URL="sqlite://$STORE/pivault.db" PIVAULT_MASTER_KEY_FILE="$STORE/master.key" \
    "$BIN" import "$DATA" --rejects "$STORE/rejects" >/dev/null 2>&1
  sqlite3 "$STORE/pivault.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
  CARGO_TARGET_DIR=$TARGET cargo bench -q -p pivault-server --bench dsr -- --store "$STORE" \
    --data "$DATA" --reps "$ROUNDS" --seq 300 --conc 600 2>&1 | grep -v '^\s*$' | tail -25
fi
if has sm4; then
  echo "== seal+open of 1 KiB (cargo run --release --example seal_open_ratio)"
  CARGO_TARGET_DIR=$TARGET cargo run -q --release -p pivault-crypto --example seal_open_ratio 1 2>&1 | tail -8
fi
