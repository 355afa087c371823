#!/usr/bin/env bash
# Detection rates of the self-validation runs over many seeds (release build).
#
#   harness/scripts/detect-rates.sh [SEEDS=20] [FAULTLINE=target/release/faultline]
#
# Prints, per variant, how many seeds ended invalid (exit 1), valid (0), unknown (2) or
# crashed (other). Safe Raft must be valid every time; each unsafe variant should be invalid.
set -uo pipefail
SEEDS=${1:-20}
BIN=${2:-${CARGO_TARGET_DIR:-target}/release/faultline}
OUT=$(mktemp -d /tmp/faultline-detect.XXXXXX)
BASE=(--nodes 3 --time-limit 10 --workload kv --nemesis-interval 1 --rate 800 --concurrency 40
      --op-timeout-ms 300 --no-report --results "$OUT")
run_variant() {
  local label=$1; shift
  local valid=0 invalid=0 unknown=0 crashed=0
  for seed in $(seq 1 "$SEEDS"); do
    "$BIN" test "${BASE[@]}" --seed "$seed" "$@" >/dev/null 2>&1
    case $? in 0) valid=$((valid+1));; 1) invalid=$((invalid+1));; 2) unknown=$((unknown+1));; *) crashed=$((crashed+1));; esac
  done
  printf '%-40s invalid %2d/%d  valid %2d  unknown %2d  crashed %2d\n' "$label" "$invalid" "$SEEDS" "$valid" "$unknown" "$crashed"
}
run_variant "safe raft (partition,kill)" --nemesis partition,kill --partition-shapes all
run_variant "--read unsafe-local (partition leader)" --nemesis partition --partition-shapes leader --kvnode-args "--read unsafe-local"
run_variant "--read unsafe-lease-wallclock (partition,clock)" --nemesis partition,clock --partition-shapes leader --kvnode-args "--read unsafe-lease-wallclock"
rm -rf "$OUT"
