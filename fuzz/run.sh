#!/usr/bin/env bash
# Builds the fuzz harnesses, seeds their corpora and runs each for SECONDS
# (default 600), two at a time (one per core of a 2-core machine).
#
#   fuzz/run.sh [SECONDS] [HARNESS...]      # harnesses: fuzz_cfg fuzz_weights fuzz_safetensors
#
# Needs clang and its fuzzer runtime; installs Debian's clang-14 and
# libclang-rt-14-dev with apt-get when clang++ is missing and apt-get can.
# Needs yolo_io importable (python -m pip install -e .) for the seed corpus.
# Each run's log goes to fuzz/build/<harness>.log, its last line the totals;
# a finding (crash, sanitizer report, leak, timeout, out-of-memory) is saved
# as fuzz/build/findings/<harness>/crash-... and the script exits 1. Turn a
# finding into a regression test (tests/test_hostile.py) before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(fuzz_cfg fuzz_weights fuzz_safetensors)

if ! command -v clang++ >/dev/null && ! command -v clang++-14 >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        # Debian 12: the fuzzer runtime is in libclang-rt-14-dev (Ubuntu
        # 22.04: libclang-common-14-dev, which clang-14 pulls in).
        apt-get install -y clang-14 libclang-rt-14-dev >/dev/null ||
            { apt-get update >/dev/null && apt-get install -y clang-14 libclang-rt-14-dev >/dev/null; }
    else
        echo "fuzz/run.sh: no clang++; install clang and its fuzzer runtime" \
             "(Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
        exit 2
    fi
fi
./build.sh
PYTHON=$(command -v python || command -v python3)
"$PYTHON" make_corpus.py

run_one() {
    local harness=$1
    rm -rf "build/findings/$harness"  # this run's findings only
    mkdir -p "build/findings/$harness"
    # The corpus grows as the fuzzer finds new coverage; -max_len fits a
    # cfg, a NUL and a small weights file (inputs that need more, such as the
    # size caps, are cases of tests/test_hostile.py). Limits: 2 GB of RSS
    # and 10 s per input (anything beyond is a finding).
    # The cfg harnesses get a dictionary of large values and sizing keys.
    local dict=()
    [ "$harness" = fuzz_safetensors ] || dict=(-dict=cfg.dict)
    "./build/$harness" "build/corpus/$harness" ${dict[@]+"${dict[@]}"} \
        -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 \
        -malloc_limit_mb=2048 -timeout=10 \
        -artifact_prefix="build/findings/$harness/" -print_final_stats=1 \
        >"build/$harness.log" 2>&1
}

status=0
pids=()
for harness in "${HARNESSES[@]}"; do
    run_one "$harness" &
    pids+=($!)
    if [ ${#pids[@]} -ge 2 ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

for harness in "${HARNESSES[@]}"; do
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/$harness.log" | grep -o '[0-9]*$' || echo "?")
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "build/$harness.log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
    found=$(ls "build/findings/$harness" | wc -l)
    echo "$harness: $runs executions in ${secs:-?} s, $(ls "build/corpus/$harness" | wc -l) corpus inputs, $found findings"
done
exit $status
