// float32 inner loops of the fusion: a scaled copy and a scaled transpose,
// each with a portable path and a SIMD path: on x86-64 AVX2 (and F16C),
// chosen at run time from CPUID; on AArch64 NEON and its native float16
// conversion.
// Both paths give the same bits: every product is float(double(w) * scale),
// rounded to nearest even, as darknet's fuse_conv_batchnorm computes it.
#pragma once

#include <cstdint>

namespace yolo_io::kernels {

// `rows` consecutive rows of n values, row r scaled by scale[r]:
//   out[r * n + k] = float(double(in[r * n + k]) * scale[r]).
// With `scale` null the values are copied bit for bit (no arithmetic, so NaN
// payloads survive). `stream` asks for non-temporal stores: for outputs much
// larger than the caches, which are written once and not read back soon; the
// stores are fenced once, at the end.
void scale_rows(const float* in, float* out, std::int64_t rows, std::int64_t n,
                const double* scale, bool stream);

// A scaled 2-d transpose with scattered output rows: for o < rows, k < cols,
//   out[dst_row[k] + o] = float(double(src[o * src_stride + k]) * scale[o])
// (scale null: a plain copy). HWIO is this with dst_row[k] the output row of
// input tap k times the row length.
void transpose_scaled(const float* src, std::int64_t rows, std::int64_t cols,
                      std::int64_t src_stride, const double* scale, const std::int64_t* dst_row,
                      float* out, bool stream);

// float32 -> IEEE binary16 (`bfloat` false) or bfloat16 bits, n values, with
// the bits of yolo_io::to_float16 / to_bfloat16 (fuse.hpp): round to nearest
// even, NaN to a quiet NaN. Returns how many finite values became +-inf.
std::int64_t to_half(const float* in, std::uint16_t* out, std::int64_t n, bool bfloat);

// transpose_scaled's column stripe: it reads this many columns of every row
// before it moves on, so a caller that splits the columns among threads
// splits at multiples of it to keep the same access pattern.
constexpr std::int64_t kTransposeStripe = 512;

// Whether the SIMD paths are in use (they are enabled, and the CPU has them:
// AVX2 and F16C on x86-64, always on AArch64; never elsewhere).
bool simd_active();
// Enables or disables the SIMD paths (for tests of the portable path);
// returns the previous setting. Enabling has no effect without CPU support.
bool set_simd(bool enabled);

// Outputs at least this large (bytes) are written with non-temporal stores.
constexpr std::int64_t kStreamBytes = std::int64_t{4} << 20;

}  // namespace yolo_io::kernels
