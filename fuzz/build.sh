#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz_cfg, fuzz_weights, fuzz_safetensors)
# into fuzz/build/ with clang, AddressSanitizer and UBSan. The core builds
# without Python, so the harnesses link it directly. Needs clang with its
# fuzzer runtime (Debian: clang and libclang-rt-dev, e.g. clang-14 and
# libclang-rt-14-dev); fuzz/run.sh installs them when apt-get can.
set -euo pipefail
cd "$(dirname "$0")"
CXX=${CXX:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$CXX" ]; then
    echo "fuzz/build.sh: no clang++ (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
mkdir -p build/obj
FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer -I../csrc -I.
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)
objs=()
for src in $(find ../csrc/yolo_io -name '*.cpp' | sort); do
    obj="build/obj/$(echo "${src#../csrc/}" | tr / _).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find ../csrc/yolo_io -name '*.hpp' -newer "$obj" -print -quit)" ]; then
        "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj" &
    fi
    objs+=("$obj")
done
wait
for harness in fuzz_cfg fuzz_weights fuzz_safetensors; do
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$harness.cpp" "${objs[@]}" -lpthread -o "build/$harness"
done
echo "built: $(ls build/fuzz_* | tr '\n' ' ')"
