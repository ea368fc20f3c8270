#!/usr/bin/env bash
# bench_serve for two builds of `hearth serve` in one run: a base (a commit, built in a git worktree, or a binary)
# and this checkout's build. Each round runs every stream count on both servers, alternating which goes first, on a
# random-weight model of the SmolLM2-135M shape (float32, --max-batch 16, --ctx 1024: the bench/README.md setup),
# with a fresh server per run; `uptime` is recorded before and after each run. Prints one Markdown table (one row
# per build, stream count and round: aggregate tok/s, TTFT p50/p99, ITL p50/p99, load) and then the medians over
# the rounds.
#
#   bench/compare_serve.sh --base COMMIT        [--rounds 2] [--seconds 20] [--streams 1,4,16] [--build-dir build]
#   bench/compare_serve.sh --base-bin HEARTH    [...]
#
# --base COMMIT checks the commit out in a worktree under BUILD_DIR/compare-base (kept for the next run; ccache
# makes files shared with this checkout's build cheap) and builds its `hearth` there (scripts/build.sh). The current
# side is BUILD_DIR/apps/hearth as built; BUILD_DIR/bench/bench_serve (this checkout's) drives both, and
# BUILD_DIR/bench/make_random_model makes the model once (under BUILD_DIR/compare-model).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE="" BASE_BIN="" ROUNDS=2 SECONDS_PER=20 STREAMS=1,4,16 B=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) BASE=$2; shift 2 ;;
    --base-bin) BASE_BIN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --build-dir) B=$2; shift 2 ;;
    *) echo "compare_serve.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [[ -z $BASE && -z $BASE_BIN ]] || [[ -n $BASE && -n $BASE_BIN ]]; then
  echo "compare_serve.sh: give one of --base COMMIT or --base-bin HEARTH" >&2
  exit 2
fi
CUR_BIN=$ROOT/$B/apps/hearth
for f in "$CUR_BIN" "$B/bench/bench_serve" "$B/bench/make_random_model"; do
  [[ -x $f ]] || { echo "compare_serve.sh: $f is missing; build first (scripts/build.sh)" >&2; exit 2; }
done

if [[ -n $BASE ]]; then
  SHA=$(git rev-parse --verify "$BASE^{commit}")
  WT=$ROOT/$B/compare-base
  if [[ ! -d $WT ]]; then git worktree add --detach "$WT" "$SHA" >&2
  else git -C "$WT" checkout --detach -q "$SHA"; fi
  (cd "$WT" && scripts/build.sh --target hearth >&2)
  BASE_BIN=$WT/build/apps/hearth
  BASE_NAME="base ${SHA:0:7}"
else
  BASE_NAME="base $(basename "$(dirname "$(dirname "$BASE_BIN")")")"
fi
CUR_NAME="current $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib apps || echo '+dirty')"

# The real SmolLM2 tokenizer is not in the repository: GPT-2's, cut to the model's 49152 ids (ids < 49151 as in
# GPT-2, the merges that make them, <|endoftext|> as id 49151), as bench/bench_llamacpp.mjs does.
MODEL=$ROOT/$B/compare-model/rand135
if [[ ! -f $MODEL/config.json ]]; then
  TOK=$ROOT/$B/compare-model/tokenizer-gpt2-49152
  mkdir -p "$TOK"
  python3 - tests/fixtures/tokenizer-tests/gpt2 "$TOK" 49152 <<'PY'
import json, os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = json.load(open(os.path.join(src, "tokenizer.json")))
eot, last = "<|endoftext|>", n - 1
vocab = {piece: i for piece, i in t["model"]["vocab"].items() if i < last}
vocab[eot] = last
t["model"]["vocab"], t["model"]["merges"] = vocab, t["model"]["merges"][: last - 256]
for a in t["added_tokens"]:
    if a["content"] == eot: a["id"] = last
config = json.load(open(os.path.join(src, "tokenizer_config.json")))
config["added_tokens_decoder"] = {str(last): config["added_tokens_decoder"]["50256"]}
json.dump(t, open(os.path.join(dst, "tokenizer.json"), "w"))
json.dump(config, open(os.path.join(dst, "tokenizer_config.json"), "w"), indent=2)
PY
  "$B/bench/make_random_model" "$MODEL" --preset smollm2-135m --tokenizer "$TOK" >&2
fi

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

load() { uptime | sed 's/.*load average: //'; }

# run NAME BIN STREAMS ROUND: one server, one bench_serve level; appends a JSON line to $TMP/results.
run() {
  local name=$1 bin=$2 n=$3 round=$4 port
  "$bin" --json serve --model "$MODEL" --max-batch 16 --ctx 1024 --port 0 >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  for _ in $(seq 600); do
    port=$(jq -r 'select(.event == "listening") | .port' "$TMP/server.out" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $port ]] || { echo "compare_serve.sh: $name did not start listening" >&2; exit 1; }
  local before after
  before=$(load)
  "$B/bench/bench_serve" --port "$port" --streams "$n" --seconds "$SECONDS_PER" >"$TMP/bench.out"
  after=$(load)
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  tail -n 1 "$TMP/bench.out" | jq -c --arg name "$name" --arg round "$round" --arg before "$before" \
    --arg after "$after" '.levels[0] + {build: $name, round: ($round | tonumber), load_before: $before, load_after: $after}' \
    >>"$TMP/results"
  echo "compare_serve.sh: $name, $n streams, round $round: $(tail -n 1 "$TMP/results")" >&2
}

echo "compare_serve.sh: $BASE_NAME ($BASE_BIN) vs $CUR_NAME ($CUR_BIN), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')" >&2
for round in $(seq "$ROUNDS"); do
  for n in ${STREAMS//,/ }; do
    if (( round % 2 )); then
      run "$BASE_NAME" "$BASE_BIN" "$n" "$round"
      run "$CUR_NAME" "$CUR_BIN" "$n" "$round"
    else
      run "$CUR_NAME" "$CUR_BIN" "$n" "$round"
      run "$BASE_NAME" "$BASE_BIN" "$n" "$round"
    fi
  done
done

python3 - "$TMP/results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ms = lambda s: f"{1e3 * s:,.0f}"
print("| build | streams | round | requests | errors | aggregate tok/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | load before → after (1/5/15 min) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
order = []
for r in rows:
    if r["build"] not in order: order.append(r["build"])
for build in order:
    for r in sorted((r for r in rows if r["build"] == build), key=lambda r: (r["streams"], r["round"])):
        print(f"| {build} | {r['streams']} | {r['round']} | {r['requests']} | {r['errors']} | {r['tokens_per_s']:.1f} | "
              f"{ms(r['ttft_p50_s'])} / {ms(r['ttft_p99_s'])} | {1e3 * r['itl_p50_s']:.1f} / {1e3 * r['itl_p99_s']:.1f} | "
              f"{r['load_before']} → {r['load_after']} |")
print()
print("Medians over the rounds:")
print()
print("| build | streams | aggregate tok/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |")
print("| --- | --- | --- | --- | --- |")
for build in order:
    for n in sorted({r["streams"] for r in rows}):
        rs = [r for r in rows if r["build"] == build and r["streams"] == n]
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"| {build} | {n} | {med('tokens_per_s'):.1f} | {ms(med('ttft_p50_s'))} / {ms(med('ttft_p99_s'))} | "
              f"{1e3 * med('itl_p50_s'):.1f} / {1e3 * med('itl_p99_s'):.1f} |")
EOF
