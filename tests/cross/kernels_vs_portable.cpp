// The SIMD kernels (csrc/yolo_io/kernels.cpp) against the portable ones, bit
// for bit, built without Python for another architecture and run under an
// emulator (tests/test_kernels.py: AArch64's NEON under qemu-aarch64).
// Inputs: random bits (NaN payloads, infinities, subnormals), values around
// float16's overflow and subnormal thresholds, ordinary weights; every edge
// of the blocking (4- and 8-value steps, 512-column stripes, leftovers).
// Prints one line per mismatch; exits 0 when there is none, 2 when the SIMD
// paths are not in use.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "yolo_io/kernels.hpp"

namespace {

using i64 = std::int64_t;

std::mt19937_64 rng(42);

float from_bits(std::uint32_t u) {
    float f = 0;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

float any_value() {
    const auto r = static_cast<std::uint32_t>(rng());
    switch (rng() % 8) {
        case 0: return from_bits(r);                                        // any bits
        case 1: return from_bits((r & 0x80000000u) | (0x477fe000u + r % 0x4000u));  // ~65520
        case 2: return from_bits(0x33000000u + r % 0x06000000u);            // half subnormals
        default: return std::uniform_real_distribution<float>(-4, 4)(rng);
    }
}

int mismatches = 0;

template <class T>
void same(const std::vector<T>& simd, const std::vector<T>& portable, const char* what, i64 a, i64 b) {
    if (std::memcmp(simd.data(), portable.data(), simd.size() * sizeof(T)) != 0) {
        ++mismatches;
        std::printf("%s differs (%lld, %lld)\n", what, static_cast<long long>(a), static_cast<long long>(b));
    }
}

std::vector<double> scales(i64 rows) {
    std::vector<double> s(static_cast<std::size_t>(rows));
    for (double& v : s) v = std::uniform_real_distribution<double>(-3, 3)(rng);
    s[0] = 1e300;  // products beyond float's range
    return s;
}

}  // namespace

int main() {
    using namespace yolo_io::kernels;
    if (!simd_active()) return 2;
    for (i64 n : {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1031}) {
        for (i64 rows : {1, 3, 8}) {
            std::vector<float> in(static_cast<std::size_t>(rows * n));
            for (float& v : in) v = any_value();
            const std::vector<double> s = scales(rows);
            for (const double* scale : {static_cast<const double*>(nullptr), s.data()}) {
                std::vector<float> a(in.size()), b(in.size());
                scale_rows(in.data(), a.data(), rows, n, scale, false);
                set_simd(false);
                scale_rows(in.data(), b.data(), rows, n, scale, false);
                set_simd(true);
                same(a, b, "scale_rows", rows, n);
            }
            for (bool bfloat : {false, true}) {
                std::vector<std::uint16_t> a(in.size()), b(in.size());
                const i64 oa = to_half(in.data(), a.data(), rows * n, bfloat);
                set_simd(false);
                const i64 ob = to_half(in.data(), b.data(), rows * n, bfloat);
                set_simd(true);
                same(a, b, bfloat ? "to_half(bfloat16)" : "to_half(float16)", rows, n);
                if (oa != ob) same(std::vector<i64>{oa}, std::vector<i64>{ob}, "overflow count", rows, n);
            }
        }
    }
    for (i64 rows : {1, 4, 7, 8, 9, 16, 17, 33}) {
        for (i64 cols : {1, 3, 4, 5, 8, 13, 515, 1030}) {
            const i64 stride = cols + rows % 3;
            const i64 row_length = rows + 5;
            std::vector<float> src(static_cast<std::size_t>(rows * stride));
            for (float& v : src) v = any_value();
            const std::vector<double> s = scales(rows);
            std::vector<i64> dst_row(static_cast<std::size_t>(cols));
            for (i64 k = 0; k < cols; ++k) dst_row[static_cast<std::size_t>(k)] = (k * 7 % cols) * row_length;
            for (const double* scale : {static_cast<const double*>(nullptr), s.data()}) {
                std::vector<float> a(static_cast<std::size_t>(cols * row_length)), b(a.size());
                transpose_scaled(src.data(), rows, cols, stride, scale, dst_row.data(), a.data(), false);
                set_simd(false);
                transpose_scaled(src.data(), rows, cols, stride, scale, dst_row.data(), b.data(), false);
                set_simd(true);
                same(a, b, "transpose_scaled", rows, cols);
            }
        }
    }
    return mismatches == 0 ? 0 : 1;
}
