#!/usr/bin/env bash
# Runs every fuzz target (or those named) one after another, each for
# FUZZ_SECONDS seconds or FUZZ_RUNS executions, whichever comes first, at
# low priority. Needs a nightly toolchain and cargo-fuzz; installs both if
# it can, and fails loudly if it cannot. Prints executions per target.
#
#   fuzz/run.sh [target...]        FUZZ_SECONDS=60 FUZZ_RUNS=-1 (unbounded)
set -u
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:--1}
ALL="huawei_sign aliyun_sign app_auth percent router gateway pipeline response plan"
TARGETS=${*:-$ALL}

fail() {
    echo "make fuzz: $*" >&2
    exit 1
}

command -v rustup >/dev/null || fail "rustup is not installed: fuzzing needs a nightly toolchain (https://rustup.rs); nothing was fuzzed"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --no-self-update ||
        fail "cannot install a nightly toolchain (cargo-fuzz needs one); nothing was fuzzed"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || fail "cannot install cargo-fuzz; nothing was fuzzed"
fi

# Input shape per target: its seeds and dictionary.
seeds() {
    case $1 in
        huawei_sign | aliyun_sign | app_auth | gateway | pipeline) echo requests ;;
        *) echo "$1" ;;
    esac
}
dict() {
    case $1 in
        huawei_sign | aliyun_sign | app_auth | gateway | pipeline) echo dict/request.dict ;;
        plan) echo dict/plan.dict ;;
        response) echo dict/response.dict ;;
        *) echo "" ;;
    esac
}

# No AddressSanitizer: the core has no `unsafe`, and without it the
# targets run about twice as fast. Overflow checks and debug assertions
# stay on (cargo-fuzz's default).
SANITIZER=(--sanitizer none)

# Longest input per target: a request, a value, a compiled plan.
max_len() {
    case $1 in
        plan) echo 32768 ;;
        percent) echo 512 ;;
        *) echo 1024 ;;
    esac
}

status=0
summary=""
for t in $TARGETS; do
    mkdir -p "corpus/$t"
    d=$(dict "$t")
    log="artifacts/$t.log"
    mkdir -p artifacts
    echo "== $t: up to ${SECONDS_PER_TARGET}s / $RUNS runs"
    if ! nice -n 10 cargo +nightly fuzz build "${SANITIZER[@]}" "$t"; then
        status=1
        summary+="$t: does not build"$'\n'
        continue
    fi
    # The generated corpus (corpus/$t) grows across runs; seeds/ is read only.
    nice -n 10 cargo +nightly fuzz run "${SANITIZER[@]}" "$t" "corpus/$t" "seeds/$(seeds "$t")" -- \
        -max_total_time="$SECONDS_PER_TARGET" -runs="$RUNS" \
        -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 \
        ${d:+-dict=$d} >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        status=1
        grep -E "^(==[0-9]+==|thread '|panicked|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -20
        summary+="$t: FAILED after ${runs:-?} executions (log: fuzz/$log)"$'\n'
    else
        summary+="$t: ${runs:-?} executions, no crash"$'\n'
    fi
done
echo "== summary"
printf '%s' "$summary"
exit $status
