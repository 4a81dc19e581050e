#!/usr/bin/env bash
# Fuzzes kiln's readers with cargo-fuzz (libFuzzer), each target for a fixed time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     # default: 60 s, every target
#
# Targets: idx, imdb_tar, textvec, model_config, safetensors, npz, pickle, pickle_repeat (see
# tests/fuzz_entry.rs). A dictionary in dict/<target>.dict (pickle opcodes, npy headers) is used when present.
# Seeds come from fuzz/seeds/ (fuzz/make_seeds.py regenerates them); the growing corpus
# lives in fuzz/corpus/ and crashes in fuzz/artifacts/ (both untracked). A crash found is
# fixed, then its input is copied to tests/fixtures/fuzz/<target>/ so the test suite
# replays it forever (tests/fuzz_regressions.rs).
#
# Needs cargo-fuzz (installed from crates.io when missing) and a nightly toolchain; with
# only a stable one, RUSTC_BOOTSTRAP=1 lets it accept the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(idx imdb_tar textvec model_config safetensors npz pickle pickle_repeat)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

"${fuzz[@]}" build
status=0
printf '%-14s %12s %10s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  log="artifacts/$t/last-run.log"
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  # A reader that believes a lying size is a finding: no single allocation may exceed
  # 1.1 GiB (the largest Dense kernel a config may declare is 1 GiB), nor RSS 3 GiB.
  if "${fuzz[@]}" run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=3072 \
       -malloc_limit_mb=1100 -timeout=10 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see fuzz/$log and fuzz/artifacts/$t/)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  printf '%-14s %12s %10s %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
done
exit $status
