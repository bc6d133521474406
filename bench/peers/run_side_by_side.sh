#!/usr/bin/env bash
# Onward beside Celery, RQ, Dramatiq, Huey and procrastinate, in one session, back to back.
#
#   bash bench/peers/run_side_by_side.sh                       # 3 repetitions of 5,000 jobs
#   REPS=1 JOBS=2000 bash bench/peers/run_side_by_side.sh      # a quick look
#   PEERS="huey procrastinate" ONWARD="sqlite postgresql" bash bench/peers/run_side_by_side.sh
#   PEERS=huey ONWARD=sqlite,postgresql REPS=3 bash bench/peers/run_side_by_side.sh  # commas work too
#
# Each repetition runs every peer, then every Onward variant, with the same protocol
# (bench-peers' bench_common.py: same no-op job doing one Redis round trip, concurrency 2).
# At the end it prints the medians over the repetitions and each Onward figure as a ratio to
# each peer's. Env: REPS (3), JOBS (5000), PEERS, ONWARD (variants: sqlite, sqlite-p2,
# postgresql, postgresql-p2; -p2 = `--processes 2 --concurrency 1`), PEERS_DIR
# (../shared/bench-peers, beside the project), OUT (result directory), PEER_TIMEOUT (900 s per run).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$(cd "$ROOT/.." && pwd)/shared/bench-peers}
REPS=${REPS:-3}
JOBS=${JOBS:-5000}
PEERS=${PEERS:-"celery rq dramatiq huey procrastinate"}
ONWARD=${ONWARD:-"sqlite sqlite-p2 postgresql postgresql-p2"}
PEERS=${PEERS//,/ }   # commas or spaces between names
ONWARD=${ONWARD//,/ }
PEER_TIMEOUT=${PEER_TIMEOUT:-900}
OUT=${OUT:-/tmp/onward-side-by-side/$(date +%Y%m%d-%H%M%S)}
PEER_PY=${BENCH_VENV:-/tmp/bench-peers-venv}/bin/python
ONWARD_PY=${ONWARD_PY:-$ROOT/.venv/bin/python}
export PYTHONDONTWRITEBYTECODE=1

bash "$PEERS_DIR/setup.sh" >&2 || { echo "bench-peers setup.sh failed" >&2; exit 1; }
mkdir -p "$OUT"
{ echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "redis-server: $(redis-server --version | awk '{print $3}') (no persistence: --save '' --appendonly no)"
  echo "postgresql: $(psql -h 127.0.0.1 -U postgres -tAc 'show server_version') synchronous_commit=$(psql -h 127.0.0.1 -U postgres -tAc 'show synchronous_commit') fsync=$(psql -h 127.0.0.1 -U postgres -tAc 'show fsync')"
  "$PEER_PY" -c 'import importlib.metadata as m; print("peers:", ", ".join(f"{p} {m.version(p)}" for p in ["celery", "rq", "dramatiq", "huey", "procrastinate", "redis", "psycopg"]))'
  "$ONWARD_PY" -c 'import sys, sqlite3, importlib.metadata as m; print("onward:", m.version("onward"), "| python", sys.version.split()[0], "| sqlite", sqlite3.sqlite_version, "| psycopg", m.version("psycopg"))'
  echo "onward commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
  echo "settings: REPS=$REPS JOBS=$JOBS PEERS=\"$PEERS\" ONWARD=\"$ONWARD\""
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

run_one() {  # $1 = label, $2 = output file, rest = command
  local label=$1 dest=$2 tmp rc
  shift 2
  tmp=$(mktemp)
  timeout "$PEER_TIMEOUT" "$@" >"$tmp" 2>"$tmp.err"
  rc=$?
  if [ $rc -eq 0 ] && grep -q '^{' "$tmp"; then
    grep '^{' "$tmp" | tail -1 | tee -a "$dest" >&2
  else
    local why
    why=$(tail -c 300 "$tmp.err" | tr '\n"\\' '  /')
    echo "{\"peer\": \"$label\", \"error\": \"exit $rc: $why\"}" | tee -a "$dest" >&2
  fi
  rm -f "$tmp" "$tmp.err"
}

for rep in $(seq 1 "$REPS"); do
  mkdir -p "$OUT/rep$rep"
  export BENCH_LOG_DIR="$OUT/rep$rep/logs"
  echo "== rep $rep/$REPS ==" >&2
  for peer in $PEERS; do
    echo "-- $peer" >&2
    run_one "$peer" "$OUT/rep$rep/results.jsonl" "$PEER_PY" "$PEERS_DIR/bench_$peer.py" --jobs "$JOBS"
  done
  for variant in $ONWARD; do
    store=${variant%-p2}
    procs=1
    [ "$store" != "$variant" ] && procs=2
    echo "-- onward $variant" >&2
    run_one "onward-$variant" "$OUT/rep$rep/results.jsonl" env BENCH_PEERS_DIR="$PEERS_DIR" \
      "$ONWARD_PY" "$HERE/bench_onward.py" --store "$store" --processes "$procs" --jobs "$JOBS"
  done
done

"$ONWARD_PY" "$HERE/ratios.py" "$OUT" | tee "$OUT/summary.md"
echo "results: $OUT" >&2
