#include "yolo_io/kernels.hpp"

#include "yolo_io/fuse.hpp"

#include <atomic>
#include <cstring>

// The SIMD paths, chosen at compile time by architecture and compiler; any
// other target (or compiler: MSVC has neither <cpuid.h> nor GCC's target
// attributes) builds the portable paths only, as does -DYOLO_IO_PORTABLE_ONLY
// (tests/test_kernels.py compiles that with -Werror).
// - x86-64 with GCC or Clang: AVX2 and F16C, used when CPUID reports them.
// - AArch64: NEON (Advanced SIMD, part of every ARMv8-A CPU) and its native
//   float16 conversion (FCVTN), always available.
#if defined(YOLO_IO_PORTABLE_ONLY)
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define YOLO_IO_X86 1
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define YOLO_IO_NEON 1
#include <arm_neon.h>
#endif

namespace yolo_io::kernels {

namespace {

using i64 = std::int64_t;

inline float mul(float w, double s) { return static_cast<float>(static_cast<double>(w) * s); }

void scale_row_portable(const float* in, float* out, i64 n, const double* scale) {
    if (scale == nullptr) {
        std::memcpy(out, in, static_cast<std::size_t>(n) * sizeof(float));
        return;
    }
    const double s = *scale;
    for (i64 k = 0; k < n; ++k) out[k] = mul(in[k], s);
}

i64 to_half_portable(const float* in, std::uint16_t* out, i64 n, bool bfloat) {
    i64 overflow = 0;
    for (i64 k = 0; k < n; ++k) out[k] = to_half_counted(in[k], bfloat, overflow);
    return overflow;
}

void transpose_portable(const float* src, i64 rows, i64 cols, i64 stride, const double* scale,
                        const i64* dst_row, float* out) {
    // Tiles of B rows x T columns: rows are read sequentially, each output
    // row gets runs of B contiguous values.
    constexpr i64 B = 16;
    constexpr i64 T = 64;
    float tile[B][T];
    // Column stripes outermost, so that each output row is written front to
    // back as the rows advance (sequential writes, few pages at a time).
    for (i64 k0 = 0; k0 < cols; k0 += T) {
        const i64 kb = cols - k0 < T ? cols - k0 : T;
        for (i64 o0 = 0; o0 < rows; o0 += B) {
            const i64 ob = rows - o0 < B ? rows - o0 : B;
            for (i64 b = 0; b < ob; ++b) {
                const float* in = src + (o0 + b) * stride + k0;
                if (scale == nullptr) {
                    for (i64 t = 0; t < kb; ++t) tile[b][t] = in[t];
                } else {
                    const double s = scale[o0 + b];
                    for (i64 t = 0; t < kb; ++t) tile[b][t] = mul(in[t], s);
                }
            }
            for (i64 t = 0; t < kb; ++t) {
                float* dst = out + dst_row[k0 + t] + o0;
                for (i64 b = 0; b < ob; ++b) dst[b] = tile[b][t];
            }
        }
    }
}

#ifdef YOLO_IO_X86

#define YOLO_IO_AVX2 __attribute__((target("avx2")))

// 8 floats times one double, rounded back to float: the exact scalar result.
YOLO_IO_AVX2 inline __m256 mul8(__m256 v, __m256d s) {
    const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), s));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), s));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

// One row; streaming stores are left unfenced (scale_rows fences).
YOLO_IO_AVX2 void scale_row_avx2(const float* in, float* out, i64 n, const double* scale,
                                 bool stream) {
    i64 k = 0;
    if (stream) {  // scalar head up to a 32-byte boundary of out
        while (k < n && (reinterpret_cast<std::uintptr_t>(out + k) & 31U) != 0) {
            out[k] = scale != nullptr ? mul(in[k], *scale) : in[k];
            ++k;
        }
    }
    if (scale == nullptr) {
        if (stream) {
            for (; k + 8 <= n; k += 8) _mm256_stream_ps(out + k, _mm256_loadu_ps(in + k));
        } else {
            for (; k + 8 <= n; k += 8) _mm256_storeu_ps(out + k, _mm256_loadu_ps(in + k));
        }
        for (; k < n; ++k) out[k] = in[k];
    } else {
        const __m256d s = _mm256_set1_pd(*scale);
        if (stream) {
            for (; k + 8 <= n; k += 8) _mm256_stream_ps(out + k, mul8(_mm256_loadu_ps(in + k), s));
        } else {
            for (; k + 8 <= n; k += 8) _mm256_storeu_ps(out + k, mul8(_mm256_loadu_ps(in + k), s));
        }
        for (; k < n; ++k) out[k] = mul(in[k], *scale);
    }
}

// In-register transpose of an 8x8 block: r[j] becomes column j.
YOLO_IO_AVX2 inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
    const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Loads 8 rows x 8 columns at src (row stride `stride`), scaled per row.
YOLO_IO_AVX2 inline void load8(__m256 r[8], const float* src, i64 stride, const double* scale) {
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm256_loadu_ps(src + j * stride);
        if (scale != nullptr) r[j] = mul8(r[j], _mm256_set1_pd(scale[j]));
    }
}

YOLO_IO_AVX2 void transpose_avx2(const float* src, i64 rows, i64 cols, i64 stride,
                                 const double* scale, const i64* dst_row, float* out,
                                 bool stream) {
    // Blocks of 16 rows x 8 columns: two 8x8 transposes, then each of the 8
    // output rows gets 16 contiguous values, one 64-byte line when aligned.
    bool aligned = (reinterpret_cast<std::uintptr_t>(out) & 63U) == 0;
    for (i64 k = 0; k < cols && aligned; ++k) aligned = dst_row[k] % 16 == 0;
    const bool nt = stream && aligned;
    const i64 rows16 = rows / 16 * 16;
    const i64 cols8 = cols / 8 * 8;
    // Stripes of columns outermost (see transpose_portable).
    // 512 columns (2 KB of each row) measured best on yolov4: shorter stripes
    // read too little of each row per visit, longer ones scatter the writes.
    constexpr i64 kStripe = kTransposeStripe;
    __m256 a[8];
    __m256 b[8];
    for (i64 c0 = 0; c0 < cols8; c0 += kStripe) {
        const i64 c1 = cols8 - c0 < kStripe ? cols8 : c0 + kStripe;
        for (i64 o0 = 0; o0 < rows16; o0 += 16) {
            const double* s = scale != nullptr ? scale + o0 : nullptr;
            for (i64 k0 = c0; k0 < c1; k0 += 8) {
                load8(a, src + o0 * stride + k0, stride, s);
                load8(b, src + (o0 + 8) * stride + k0, stride, s != nullptr ? s + 8 : nullptr);
                transpose8(a);
                transpose8(b);
                for (int j = 0; j < 8; ++j) {
                    float* dst = out + dst_row[k0 + j] + o0;
                    if (nt) {
                        _mm256_stream_ps(dst, a[j]);
                        _mm256_stream_ps(dst + 8, b[j]);
                    } else {
                        _mm256_storeu_ps(dst, a[j]);
                        _mm256_storeu_ps(dst + 8, b[j]);
                    }
                }
            }
        }
    }
    for (i64 k = cols8; k < cols; ++k) {  // leftover columns
        for (i64 o = 0; o < rows16; ++o) {
            const float v = src[o * stride + k];
            out[dst_row[k] + o] = scale != nullptr ? mul(v, scale[o]) : v;
        }
    }
    if (nt) _mm_sfence();
    if (rows16 < rows) {  // leftover rows
        transpose_portable(src + rows16 * stride, rows - rows16, cols, stride,
                           scale != nullptr ? scale + rows16 : nullptr, dst_row, out + rows16);
    }
}

// 8 values at a time: float16 with F16C's vcvtps2ph (round to nearest even,
// which for every finite value whose half is finite gives to_float16's bits),
// bfloat16 with integer rounding (to_bfloat16's formula). Lanes holding NaN
// or turned into inf are rare; they are redone by to_half_counted, which
// also counts the overflows.
__attribute__((target("avx2,f16c"))) i64 to_half_avx2(const float* in, std::uint16_t* out, i64 n,
                                                      bool bfloat) {
    const __m128i abs16 = _mm_set1_epi16(0x7fff);
    const __m128i inf16 = _mm_set1_epi16(bfloat ? 0x7f80 : 0x7c00);
    const __m256i round = _mm256_set1_epi32(0x7fff);
    const __m256i one = _mm256_set1_epi32(1);
    i64 overflow = 0;
    i64 k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(in + k);
        __m128i h;
        if (bfloat) {
            const __m256i x = _mm256_castps_si256(v);
            const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
            const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(round, lsb)), 16);
            // 32 -> 16 bits (values < 2^16): pack within 128-bit halves, then
            // gather qwords 0 and 2.
            h = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
        } else {
            h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), h);
        const int inf = _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, abs16), inf16));
        const int nan = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        if ((inf | nan) != 0) {
            for (i64 j = k; j < k + 8; ++j) out[j] = to_half_counted(in[j], bfloat, overflow);
        }
    }
    for (; k < n; ++k) out[k] = to_half_counted(in[k], bfloat, overflow);
    return overflow;
}

bool cpu_has_avx2_f16c() {
    // CPUID rather than __builtin_cpu_supports("f16c"), which clang before 16
    // does not know (fuzz/build.sh builds the core with clang): AVX2 is leaf
    // 7 EBX bit 5; F16C leaf 1 ECX bit 29 and AVX bit 28; all need the OS to
    // save the YMM registers (OSXSAVE, ECX bit 27, and XCR0 bits 1-2).
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    const bool f16c = (c & (1u << 29)) != 0;
    const bool avx = (c & (1u << 28)) != 0;
    const bool osxsave = (c & (1u << 27)) != 0;
    if (!f16c || !avx || !osxsave) return false;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x6u) != 0x6u) return false;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    return (b & (1u << 5)) != 0;
}

const bool kCpuSimd = cpu_has_avx2_f16c();

#elif defined(YOLO_IO_NEON)

// 4 floats times one double, rounded back to float (FCVTN rounds to nearest
// even, as the scalar cast does): the exact scalar result.
inline float32x4_t neon_mul4(float32x4_t v, float64x2_t s) {
    const float64x2_t lo = vmulq_f64(vcvt_f64_f32(vget_low_f32(v)), s);
    const float64x2_t hi = vmulq_f64(vcvt_high_f64_f32(v), s);
    return vcvt_high_f32_f64(vcvt_f32_f64(lo), hi);
}

// One row. NEON has no non-temporal store that the compilers expose, so
// `stream` is not used.
void scale_row_neon(const float* in, float* out, i64 n, const double* scale) {
    if (scale == nullptr) {
        std::memcpy(out, in, static_cast<std::size_t>(n) * sizeof(float));
        return;
    }
    const float64x2_t s = vdupq_n_f64(*scale);
    i64 k = 0;
    for (; k + 8 <= n; k += 8) {
        vst1q_f32(out + k, neon_mul4(vld1q_f32(in + k), s));
        vst1q_f32(out + k + 4, neon_mul4(vld1q_f32(in + k + 4), s));
    }
    for (; k + 4 <= n; k += 4) vst1q_f32(out + k, neon_mul4(vld1q_f32(in + k), s));
    for (; k < n; ++k) out[k] = mul(in[k], *scale);
}

// In-register transpose of a 4x4 block: r[j] becomes column j.
inline void neon_transpose4(float32x4_t r[4]) {
    const float32x4x2_t t01 = vtrnq_f32(r[0], r[1]);  // a0 b0 a2 b2 | a1 b1 a3 b3
    const float32x4x2_t t23 = vtrnq_f32(r[2], r[3]);  // c0 d0 c2 d2 | c1 d1 c3 d3
    r[0] = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
    r[1] = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
    r[2] = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
    r[3] = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
}

// Loads 4 rows x 4 columns at src (row stride `stride`), scaled per row.
inline void neon_load4(float32x4_t r[4], const float* src, i64 stride, const double* scale) {
    for (int j = 0; j < 4; ++j) {
        r[j] = vld1q_f32(src + j * stride);
        if (scale != nullptr) r[j] = neon_mul4(r[j], vdupq_n_f64(scale[j]));
    }
}

void transpose_neon(const float* src, i64 rows, i64 cols, i64 stride, const double* scale,
                    const i64* dst_row, float* out) {
    // Blocks of 8 rows x 4 columns: two 4x4 transposes, then each of the 4
    // output rows gets 8 contiguous values. Column stripes outermost, as in
    // transpose_avx2.
    const i64 rows8 = rows / 8 * 8;
    const i64 cols4 = cols / 4 * 4;
    constexpr i64 kStripe = kTransposeStripe;
    float32x4_t a[4];
    float32x4_t b[4];
    for (i64 c0 = 0; c0 < cols4; c0 += kStripe) {
        const i64 c1 = cols4 - c0 < kStripe ? cols4 : c0 + kStripe;
        for (i64 o0 = 0; o0 < rows8; o0 += 8) {
            const double* s = scale != nullptr ? scale + o0 : nullptr;
            for (i64 k0 = c0; k0 < c1; k0 += 4) {
                neon_load4(a, src + o0 * stride + k0, stride, s);
                neon_load4(b, src + (o0 + 4) * stride + k0, stride, s != nullptr ? s + 4 : nullptr);
                neon_transpose4(a);
                neon_transpose4(b);
                for (int j = 0; j < 4; ++j) {
                    float* dst = out + dst_row[k0 + j] + o0;
                    vst1q_f32(dst, a[j]);
                    vst1q_f32(dst + 4, b[j]);
                }
            }
        }
    }
    for (i64 k = cols4; k < cols; ++k) {  // leftover columns
        for (i64 o = 0; o < rows8; ++o) {
            const float v = src[o * stride + k];
            out[dst_row[k] + o] = scale != nullptr ? mul(v, scale[o]) : v;
        }
    }
    if (rows8 < rows) {  // leftover rows
        transpose_portable(src + rows8 * stride, rows - rows8, cols, stride,
                           scale != nullptr ? scale + rows8 : nullptr, dst_row, out + rows8);
    }
}

// 4 values at a time: float16 with the native conversion (FCVTN, round to
// nearest even: to_float16's bits for every finite value whose half is
// finite, subnormals included), bfloat16 with integer rounding (to_bfloat16's
// formula). Lanes holding NaN or turned into inf are redone by
// to_half_counted, which also counts the overflows (as in to_half_avx2).
i64 to_half_neon(const float* in, std::uint16_t* out, i64 n, bool bfloat) {
    const uint16x4_t abs16 = vdup_n_u16(0x7fff);
    const uint16x4_t inf16 = vdup_n_u16(bfloat ? 0x7f80 : 0x7c00);
    const uint32x4_t round = vdupq_n_u32(0x7fff);
    const uint32x4_t one = vdupq_n_u32(1);
    i64 overflow = 0;
    i64 k = 0;
    for (; k + 4 <= n; k += 4) {
        const float32x4_t v = vld1q_f32(in + k);
        uint16x4_t h;
        if (bfloat) {
            const uint32x4_t x = vreinterpretq_u32_f32(v);
            const uint32x4_t lsb = vandq_u32(vshrq_n_u32(x, 16), one);
            h = vshrn_n_u32(vaddq_u32(x, vaddq_u32(round, lsb)), 16);
        } else {
            h = vreinterpret_u16_f16(vcvt_f16_f32(v));
        }
        vst1_u16(out + k, h);
        const uint16x4_t inf = vceq_u16(vand_u16(h, abs16), inf16);
        const uint32x4_t num = vceqq_f32(v, v);  // all ones unless NaN
        if ((vmaxv_u16(inf) | static_cast<std::uint32_t>(~vminvq_u32(num))) != 0) {
            for (i64 j = k; j < k + 4; ++j) out[j] = to_half_counted(in[j], bfloat, overflow);
        }
    }
    for (; k < n; ++k) out[k] = to_half_counted(in[k], bfloat, overflow);
    return overflow;
}

const bool kCpuSimd = true;

#else
const bool kCpuSimd = false;
#endif

std::atomic<bool> g_simd{true};

}  // namespace

bool simd_active() { return kCpuSimd && g_simd.load(std::memory_order_relaxed); }

bool set_simd(bool enabled) { return g_simd.exchange(enabled); }

void scale_rows(const float* in, float* out, i64 rows, i64 n, const double* scale, bool stream) {
#ifdef YOLO_IO_X86
    if (simd_active()) {
        for (i64 r = 0; r < rows; ++r) {
            scale_row_avx2(in + r * n, out + r * n, n, scale != nullptr ? scale + r : nullptr, stream);
        }
        if (stream) _mm_sfence();
        return;
    }
#elif defined(YOLO_IO_NEON)
    if (simd_active()) {
        for (i64 r = 0; r < rows; ++r) {
            scale_row_neon(in + r * n, out + r * n, n, scale != nullptr ? scale + r : nullptr);
        }
        return;
    }
#endif
    (void)stream;
    for (i64 r = 0; r < rows; ++r) {
        scale_row_portable(in + r * n, out + r * n, n, scale != nullptr ? scale + r : nullptr);
    }
}

void transpose_scaled(const float* src, i64 rows, i64 cols, i64 src_stride, const double* scale,
                      const i64* dst_row, float* out, bool stream) {
#ifdef YOLO_IO_X86
    if (simd_active()) {
        transpose_avx2(src, rows, cols, src_stride, scale, dst_row, out, stream);
        return;
    }
#elif defined(YOLO_IO_NEON)
    if (simd_active()) {
        transpose_neon(src, rows, cols, src_stride, scale, dst_row, out);
        return;
    }
#endif
    (void)stream;
    transpose_portable(src, rows, cols, src_stride, scale, dst_row, out);
}

}  // namespace yolo_io::kernels

namespace yolo_io::kernels {

i64 to_half(const float* in, std::uint16_t* out, i64 n, bool bfloat) {
#ifdef YOLO_IO_X86
    if (simd_active()) return to_half_avx2(in, out, n, bfloat);
#elif defined(YOLO_IO_NEON)
    if (simd_active()) return to_half_neon(in, out, n, bfloat);
#endif
    return to_half_portable(in, out, n, bfloat);
}

}  // namespace yolo_io::kernels

// A unity build compiles later files after this one: its macros end here.
#undef YOLO_IO_X86
#undef YOLO_IO_NEON
#undef YOLO_IO_AVX2
