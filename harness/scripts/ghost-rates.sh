#!/usr/bin/env bash
# Ghost-write detection: how often the unsafe Multi-Paxos variant (--unsafe-no-start-working)
# is caught, and that safe Multi-Paxos and safe Raft never are, under the same faults.
#
#   harness/scripts/ghost-rates.sh [UNSAFE_SEEDS=20] [SAFE_SEEDS=10] [FAULTLINE=target/release/faultline]
#
# Per variant: how many seeds ended invalid, and why — the ghost check (results.json has a
# `ghosts` section), linearizability (illegal), or both; then valid / unknown / crashed.
# The config is the one docs/ghost-detection.md explains: short leader isolations (so the new
# leader writes fewer instances than the isolated one left unchosen), many clients (so the
# isolated leader collects many doomed writes), lease reads (reads take no log instances), and a
# 200-ms election timeout so that more isolations fit in a run.
set -uo pipefail
UNSAFE_SEEDS=${1:-20}
SAFE_SEEDS=${2:-10}
BIN=${3:-${CARGO_TARGET_DIR:-target}/release/faultline}
OUT=$(mktemp -d /tmp/faultline-ghost.XXXXXX)
BASE=(--nodes 3 --time-limit 15 --workload register --nemesis partition --partition-shapes leader
      --nemesis-interval 0.5 --concurrency 100 --rate 200 --check-timeout 20 --no-report)
run_variant() {
  local label=$1 seeds=$2; shift 2
  local ghost=0 lin=0 both=0 valid=0 unknown=0 crashed=0
  for seed in $(seq 1 "$seeds"); do
    local dir="$OUT/$label/$seed"
    "$BIN" test "${BASE[@]}" --results "$dir" --seed "$seed" "$@" >"$dir.log" 2>&1
    local rc=$?
    local res
    res=$(find "$dir" -name results.json 2>/dev/null | head -1)
    local g=0 l=0
    [ -n "$res" ] && grep -q '"ghosts"' "$res" && g=1
    [ -n "$res" ] && grep -q '"verdict": "illegal"' "$res" && l=1
    case $rc in
      0) valid=$((valid+1));;
      1) if [ $g = 1 ] && [ $l = 1 ]; then both=$((both+1));
         elif [ $g = 1 ]; then ghost=$((ghost+1)); else lin=$((lin+1)); fi;;
      2) unknown=$((unknown+1));;
      *) crashed=$((crashed+1));;
    esac
  done
  printf '%-34s invalid %2d/%d (ghost only %d, linearizability only %d, both %d)  valid %2d  unknown %d  crashed %d\n' \
    "$label" $((ghost+lin+both)) "$seeds" "$ghost" "$lin" "$both" "$valid" "$unknown" "$crashed"
}
mkdir -p "$OUT"/{unsafe-multipaxos,multipaxos,raft}
run_variant unsafe-multipaxos "$UNSAFE_SEEDS" --engine multipaxos --kvnode-args "--unsafe-no-start-working --read lease --election-ticks 20"
run_variant multipaxos "$SAFE_SEEDS" --engine multipaxos --kvnode-args "--read lease --election-ticks 20"
run_variant raft "$SAFE_SEEDS" --engine raft --kvnode-args "--read lease --election-ticks 20"
echo "runs kept in $OUT"
