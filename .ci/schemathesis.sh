#!/usr/bin/env bash
# Schema-driven fuzzing (issue 11): schemathesis against a `pivault serve` on a slice of the
# data set, driven by the server's own /openapi.json, with a key of each role and with none.
#
# Fails on any server error, any response that violates the document (schema, status code,
# content type), and any response that echoes a submitted PI-like value (the custom check in
# .ci/schemathesis_hooks.py). Prints the cases run, the time and the findings.
#
#   bash .ci/schemathesis.sh            # builds target/debug/pivault if PIVAULT_BIN is unset
#   PIVAULT_BIN=path/to/pivault PIVAULT_ST_USERS=300 PIVAULT_ST_SECONDS=40 bash .ci/schemathesis.sh
#
# Time bound: every run has --max-time, and the whole fuzzing part is under `timeout`
# (PIVAULT_ST_BUDGET, 290 s by default, at most 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TERM_COLOR=never

ST_VERSION=4.32.5
users="${PIVAULT_ST_USERS:-300}"
per_run="${PIVAULT_ST_SECONDS:-40}"
budget="${PIVAULT_ST_BUDGET:-290}"
data=../shared/data/zh_CN-10k
test -f "$data/users.csv" || { echo "FAIL: $data is missing" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== schemathesis $ST_VERSION (venv)"
venv="${PIVAULT_ST_VENV:-$work/venv}"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

echo "== the pivault binary"
bin="${PIVAULT_BIN:-}"
if [ -z "$bin" ]; then
  cargo build -p pivault
  bin="${CARGO_TARGET_DIR:-target}/debug/pivault"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
test -x "$bin" || { echo "FAIL: no pivault binary at $bin" >&2; exit 1; }

echo "== a fresh SQLite vault with the first $users accounts of the data set"
slice="$work/slice"
python3 - "$data" "$slice" "$users" <<'PY'
import csv, json, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
with open(os.path.join(src, "users.csv"), newline="", encoding="utf-8") as f:
    r = csv.reader(f); head = next(r); rows = [row for _, row in zip(range(n), r)]
col = head.index("account_id"); accounts = {row[col] for row in rows}
with open(os.path.join(out, "users.csv"), "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f); w.writerow(head); w.writerows(rows)
for name in ["consent_events.csv", "orders.csv", "face_templates.csv", "business_contacts.csv", "icp_filings.csv"]:
    with open(os.path.join(src, name), newline="", encoding="utf-8") as f:
        r = csv.reader(f); head = next(r); c = head.index("account_id")
        keep = [row for row in r if row[c] in accounts]
    with open(os.path.join(out, name), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f); w.writerow(head); w.writerows(keep)
with open(os.path.join(src, "tickets.jsonl"), encoding="utf-8") as f, \
     open(os.path.join(out, "tickets.jsonl"), "w", encoding="utf-8") as o:
    for line in f:
        if json.loads(line).get("account_id") in accounts:
            o.write(line)
PY
export PIVAULT_DATABASE_URL="sqlite://$work/vault.db"
export PIVAULT_MASTER_KEY_FILE="$work/master.key"
export PIVAULT_POLICY="$root/policies/default.toml"
export PIVAULT_STAFF_POLICY="$root/policies/staff.cedar"
"$bin" migrate >/dev/null
"$bin" import "$slice" --rejects "$work/rejects" >/dev/null
purposes="$(python3 - "$root/policies/default.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(",".join(p["id"] for p in tomllib.load(f)["purpose"]))
PY
)"
declare -A keys
for role in app admin support dpo security; do
  keys[$role]="$("$bin" keys create --principal "st-$role" --roles "$role" --purposes "$purposes" 2>/dev/null)"
done

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
"$bin" serve --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base/healthz" 2>/dev/null; }
for _ in $(seq 1 100); do up && break; sleep 0.1; done
up || { echo "FAIL: pivault serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }

# Real subject ids (by account id) so that path parameters reach stored subjects too.
subjects="$(python3 - "$slice/users.csv" "$base" "${keys[app]}" <<'PY'
import csv, json, sys, urllib.request
path, base, key = sys.argv[1:4]
with open(path, newline="", encoding="utf-8") as f:
    accounts = [row["account_id"] for _, row in zip(range(20), csv.DictReader(f))]
ids = []
for a in accounts:
    req = urllib.request.Request(base + "/v1/lookup", method="POST",
        data=json.dumps({"by": "account_id", "value": a, "purpose": "service"}).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        ids += json.load(r)["subjects"]
print(",".join(ids))
PY
)"
export PIVAULT_ST_SUBJECTS="$subjects"
export PYTHONPATH="$root/.ci${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
export PIVAULT_ST_FINDINGS="$work/echo-findings.txt"

checks="not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,no_pi_echo"
echo "== fuzzing $base/openapi.json (checks: $checks; $per_run s per run; budget $budget s)"
start=$(date +%s)
failed=0
total_cases=0
# schemathesis keeps a cache in ./.schemathesis: keep it out of the checkout.
cd "$work"
summary=""
# admin last: its stateful run may revoke the keys it lists (its own included).
for who in none app support dpo security admin; do
  args=()
  if [ "$who" != none ]; then args=(-H "Authorization: Bearer ${keys[$who]}"); fi
  report="$work/report-$who.ndjson"
  left=$((budget - ($(date +%s) - start)))
  if [ "$left" -le 5 ]; then echo "FAIL: the time budget ran out before the run as $who" >&2; failed=1; break; fi
  run_time=$((per_run < left - 5 ? per_run : left - 5))
  set +e
  timeout "$left" "$venv/bin/schemathesis" run "$base/openapi.json" \
    "${args[@]}" \
    --checks "$checks" \
    --max-time "$run_time" --max-examples 50 --workers 2 --seed 11 \
    --generation-database none --no-color --output-truncate true \
    --request-timeout 10 \
    --report ndjson --report-ndjson-path "$report" \
    >"$work/st-$who.log" 2>&1
  rc=$?
  set -e
  cases="$(grep -Eo '[0-9]+ generated' "$work/st-$who.log" | tail -n1 | grep -Eo '[0-9]+' || echo 0)"
  total_cases=$((total_cases + cases))
  if [ "$cases" -eq 0 ]; then
    echo "FAIL: the run as $who generated no test cases" >&2
    tail -n 20 "$work/st-$who.log" >&2
    failed=1
  fi
  echo "-- as $who: exit $rc; $cases cases; $(grep -E '^=+ .* in [0-9.]+s =+$' "$work/st-$who.log" | tail -n1 | tr -d '=' | xargs)"
  if [ "$rc" -ne 0 ]; then
    # An error that is schemathesis's own crash while generating cases (hypothesis's
    # "AST constructor recursion depth mismatch", a race between its two workers) is not a
    # finding about pivault: warn, and fail on everything else (failed checks, network
    # errors, timeouts, any other error).
    if ! grep -q '= FAILURES =' "$work/st-$who.log" \
      && ! grep -qE '^(Network Error|Timeout|Request Timeout|Server Error)' "$work/st-$who.log" \
      && [ "$(grep -c '^Runtime Error$' "$work/st-$who.log")" -gt 0 ] \
      && [ "$(grep -c '^Runtime Error$' "$work/st-$who.log")" -eq "$(grep -cE '^_+ [A-Z]+ /' "$work/st-$who.log")" ] \
      && grep -q 'AST constructor recursion depth mismatch' "$work/st-$who.log"; then
      echo "WARNING: schemathesis crashed generating cases as $who (its own error, below); not a finding" >&2
      grep -B2 -A2 'AST constructor recursion depth mismatch' "$work/st-$who.log" | head -n 10 >&2
    else
      failed=1
      sed -n '/FAILURES/,/SUMMARY/p' "$work/st-$who.log" | head -n 200
    fi
  fi
  summary+="$who:$rc "
done
elapsed=$(( $(date +%s) - start ))
echo "== schemathesis: $total_cases cases in ${elapsed}s; exit codes $summary"
if [ -s "$PIVAULT_ST_FINDINGS" ]; then
  echo "PI echoed in responses:"; sort -u "$PIVAULT_ST_FINDINGS"
fi
if [ "$failed" -ne 0 ]; then
  echo "FAIL: schemathesis found problems (above)" >&2
  exit 1
fi
echo "schemathesis: 0 findings"
