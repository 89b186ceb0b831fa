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
FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer -I../csrc -I. -DYOLO_IO_FUZZ
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)
# A change of compiler or flags rebuilds everything.
stamp="$CXX ${FLAGS[*]}"
if [ "$(cat build/obj/flags 2>/dev/null)" != "$stamp" ]; then
    rm -f build/obj/*.o
    echo "$stamp" > build/obj/flags
fi
newest_header=$(find ../csrc/yolo_io -name '*.hpp' -printf '%T@\n' | sort -n | tail -1)
objs=()
stale=()
for src in $(find ../csrc/yolo_io -name '*.cpp' | sort); do
    obj="build/obj/$(echo "${src#../csrc/}" | tr / _).o"
    objs+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || \
       [ "$(stat -c %Y "$obj")" -lt "${newest_header%.*}" ]; then
        rm -f "$obj"
        stale+=("$src")
    fi
done
# Compile the stale sources, as many at once as there are cores; any failure
# stops the build (no stale object is linked).
if [ ${#stale[@]} -gt 0 ]; then
    printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c '
        src={}; obj="build/obj/$(echo "${src#../csrc/}" | tr / _).o"
        exec "$0" "$@" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"' "$CXX" "${FLAGS[@]}"
fi
for harness in fuzz_cfg fuzz_weights fuzz_safetensors; do
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$harness.cpp" "${objs[@]}" -lpthread -o "build/$harness"
done
echo "built: build/fuzz_cfg build/fuzz_weights build/fuzz_safetensors"
