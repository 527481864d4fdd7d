#!/usr/bin/env bash
# One whole import of the data set with the pivault binary $1: `migrate`, then `import` into a
# fresh SQLite vault in a temporary directory (removed at exit). For before/after timings, e.g.
#   farm-bench -n 9 --timeout 400 --vs 'bench/import-once.sh OLD/pivault' -- bench/import-once.sh NEW/pivault
# DATA (default ../shared/data/zh_CN-10k) names the data set.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$1"
data="${DATA:-$root/../shared/data/zh_CN-10k}"
d="$(mktemp -d)"
trap 'rm -rf "$d"' EXIT
export PIVAULT_DATABASE_URL="sqlite://$d/vault.db?mode=rwc" PIVAULT_MASTER_KEY_FILE="$d/master.key" \
  PIVAULT_POLICY="$root/policies/default.toml" PIVAULT_STAFF_POLICY="$root/policies/staff.cedar"
"$bin" migrate >/dev/null 2>&1
"$bin" import "$data" --rejects "$d/rejects" >/dev/null 2>&1
