#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of every target in fuzz/: each runs FUZZ_SECONDS and
# fails on a crash or failed property (a panic), an input taking over 1 s, or over 256 MiB of memory.
#
#   scripts/test/fuzz.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=60 FUZZ_TARGETS="vpath dispatch")
#
# Targets build on the nightly toolchain with debug assertions (overflow checks) and no sanitizer: src/
# forbids unsafe code, and the fuzzed code links none of ffi/'s C libraries. Each target starts from its
# seed corpus (fuzz/corpus/<target>, checked in) and the inputs earlier runs found (target/fuzz/corpus,
# not checked in); a failing input is kept in target/fuzz/artifacts/. One line per target says what the
# run covered: executions, edges (cov) and features (ft), as libFuzzer counts them.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
export PATH="$HOME/.cargo/bin:$PATH"
FUZZ=(cargo +nightly fuzz)
BUILD_FLAGS=(--sanitizer none --debug-assertions)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("${FUZZ[@]}" list)
fi
"${FUZZ[@]}" build "${BUILD_FLAGS[@]}"

work=target/fuzz
mkdir -p "$work/artifacts"
failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    log="$work/$target.log"
    mkdir -p "$corpus"
    status=ok
    # New inputs go to the first directory only: the checked-in seeds stay as they are.
    "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=1 -rss_limit_mb=256 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$target-" >"$log" 2>&1 || status=FAILED
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    time=$(sed -n 's/^stat::.*//; s/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log")
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) .*/cov \1 ft \2/p' <<<"$done_line")
    echo "fuzz: $target: $status, ${runs:-?} executions in ${time:-?} s, ${cov:-no coverage line}"
    if [ "$status" != ok ]; then
        failed+=("$target")
        grep -E 'panicked at|ERROR: libFuzzer|Test unit written|^Base64' "$log" | sed 's/^/    /' || true
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]} (logs in $work/, inputs in $work/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, nothing found"
