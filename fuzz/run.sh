#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for SECONDS (default 60), then prints per target:
# runs (executions), time, coverage (libFuzzer's cov = edges, ft = features), corpus size and
# crashes. Not part of .ci/run (2 cores, 90 minutes): a separate command; numbers in README
# "Fuzzing".
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only a stable toolchain is assumed:
# RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags. No sanitizer (`-s none`): the workspace
# forbids `unsafe`, so AddressSanitizer would find little and double the build. Seeds come from
# fuzz/seed_corpus.py (the data set, the policies, the README's bodies); each target's working
# corpus grows in fuzz/corpus-run/TARGET; a crash input lands in fuzz/artifacts/TARGET/.
set -u
secs=${1:-60}
shift || true
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(policy_parse identifier_normalize import_csv_row import_jsonl_row route_bodies)
fi
export RUSTC_BOOTSTRAP=1
flags=(-s none --codegen-units 16)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
python3 fuzz/seed_corpus.py || exit 2
cargo fuzz build "${flags[@]}" || exit 2
mkdir -p fuzz/logs
rows=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus-run/$t" "fuzz/artifacts/$t"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    log="fuzz/logs/$t.log"
    start=$(date +%s)
    cargo fuzz run "${flags[@]}" "$t" "fuzz/corpus-run/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*')
    corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*')
    crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="rc=$rc"; fi
    [ "$rc" -ne 0 ] && failed=1
    rows+=("$(printf '| %-20s | %10s | %5ss | %6s | %7s | %6s | %s |' \
        "$t" "${runs:-?}" "$took" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
done
echo
echo "| target               |       runs |   time |    cov |      ft | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo "(logs: fuzz/logs/TARGET.log; crash inputs: fuzz/artifacts/TARGET/)"
exit $failed
