#include "yolo_io/fuse.hpp"

#include "yolo_io/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace yolo_io {

namespace {

using i64 = std::int64_t;

std::uint32_t bits_of(float v) {
    std::uint32_t u = 0;
    std::memcpy(&u, &v, 4);
    return u;
}

// Per-output-channel scale and fused bias, exactly as darknet computes them.
struct ChannelFuse {
    double scale = 1.0;
    float bias = 0.0F;
};

ChannelFuse channel(const float* biases, const BatchNormSrc& bn, i64 f) {
    ChannelFuse out;
    const float b = biases[f];
    if (!bn.present()) {
        out.bias = b;
        return out;
    }
    const double denom = std::sqrt(static_cast<double>(bn.variance[f]) + kBnEpsilon);
    out.bias = static_cast<float>(
        static_cast<double>(b) -
        static_cast<double>(bn.scales[f]) * static_cast<double>(bn.mean[f]) / denom);
    out.scale = static_cast<double>(bn.scales[f]) / denom;
    return out;
}

}  // namespace

DType parse_dtype(std::string_view name) {
    if (name == "float32") return DType::float32;
    if (name == "float16") return DType::float16;
    if (name == "bfloat16") return DType::bfloat16;
    throw std::invalid_argument("dtype must be 'float32', 'float16' or 'bfloat16', not '" +
                                std::string(name) + "'");
}

ConvLayout parse_conv_layout(std::string_view name) {
    if (name == "OIHW") return ConvLayout::OIHW;
    if (name == "HWIO") return ConvLayout::HWIO;
    if (name == "OHWI") return ConvLayout::OHWI;
    if (name == "HWCM") return ConvLayout::HWCM;
    throw std::invalid_argument("a convolution's layout must be 'OIHW', 'HWIO', 'OHWI' or "
                                "'HWCM' (depthwise), not '" + std::string(name) + "'");
}

DenseLayout parse_dense_layout(std::string_view name) {
    if (name == "OI") return DenseLayout::OI;
    if (name == "IO") return DenseLayout::IO;
    throw std::invalid_argument("a connected layer's layout must be 'OI' or 'IO', not '" +
                                std::string(name) + "'");
}

int dtype_size(DType t) { return t == DType::float32 ? 4 : 2; }

std::uint16_t to_float16(float v) {
    const std::uint32_t x = bits_of(v);
    const std::uint32_t sign = (x >> 16) & 0x8000U;
    const std::uint32_t absx = x & 0x7fffffffU;
    if (absx >= 0x7f800000U) {  // inf or NaN
        return static_cast<std::uint16_t>(sign | 0x7c00U | (absx > 0x7f800000U ? 0x200U : 0U));
    }
    if (absx >= 0x477ff000U) {  // rounds to >= 65520: overflow to inf
        return static_cast<std::uint16_t>(sign | 0x7c00U);
    }
    if (absx < 0x38800000U) {  // below the smallest normal half: subnormal or zero
        if (absx < 0x33000000U) {  // < 2^-25: rounds to zero
            return static_cast<std::uint16_t>(sign);
        }
        const std::uint32_t mant = (absx & 0x7fffffU) | 0x800000U;
        const int shift = 126 - static_cast<int>(absx >> 23);  // 14..24
        std::uint32_t half = mant >> shift;
        const std::uint32_t rem = mant & ((1U << shift) - 1U);
        const std::uint32_t mid = 1U << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1U))) {
            ++half;
        }
        return static_cast<std::uint16_t>(sign | half);
    }
    // Normal: rebias the exponent, round the 13 dropped mantissa bits.
    std::uint32_t half = ((absx - 0x38000000U) >> 13);
    const std::uint32_t rem = absx & 0x1fffU;
    if (rem > 0x1000U || (rem == 0x1000U && (half & 1U))) {
        ++half;  // may carry into the exponent, which is correct
    }
    return static_cast<std::uint16_t>(sign | half);
}

std::uint16_t to_bfloat16(float v) {
    std::uint32_t x = bits_of(v);
    if ((x & 0x7fffffffU) > 0x7f800000U) {
        return static_cast<std::uint16_t>((x >> 16) | 0x40U);  // quiet NaN
    }
    x += 0x7fffU + ((x >> 16) & 1U);
    return static_cast<std::uint16_t>(x >> 16);
}

std::uint16_t to_half_counted(float v, bool bfloat, i64& overflow) {
    const std::uint16_t h = bfloat ? to_bfloat16(v) : to_float16(v);
    // The format's infinity, sign bit cleared.
    overflow += ((h & 0x7fffU) == (bfloat ? 0x7f80U : 0x7c00U)) && std::isfinite(v) ? 1 : 0;
    return h;
}

namespace {

// Converters float -> stored type; half types count finite values that overflow.
struct ToF32 {
    i64 overflow = 0;
    float operator()(float v) { return v; }
};
template <bool BFloat>
struct ToHalf {
    i64 overflow = 0;
    std::uint16_t operator()(float v) { return to_half_counted(v, BFloat, overflow); }
};
using ToF16 = ToHalf<false>;
using ToBF16 = ToHalf<true>;

// Calls fn(converter, (Out*)nullptr) for dtype's converter; returns its
// overflow count.
template <class Fn>
i64 with_converter(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::float32: {
            ToF32 cvt;
            fn(cvt, static_cast<float*>(nullptr));
            return cvt.overflow;
        }
        case DType::float16: {
            ToF16 cvt;
            fn(cvt, static_cast<std::uint16_t*>(nullptr));
            return cvt.overflow;
        }
        case DType::bfloat16: {
            ToBF16 cvt;
            fn(cvt, static_cast<std::uint16_t*>(nullptr));
            return cvt.overflow;
        }
    }
    return 0;
}

inline float scaled(float w, bool bn, double scale) {
    return bn ? static_cast<float>(static_cast<double>(w) * scale) : w;
}

bool contiguous(const ConvSrc& s) {
    return s.sw == 1 && s.sh == s.w && s.si == s.h * s.w && s.so == s.i * s.h * s.w;
}

bool hwio_like(ConvLayout layout) { return layout == ConvLayout::HWIO || layout == ConvLayout::HWCM; }

// The HWIO output row of input tap c = (i*H + y)*W + x: (y*W + x)*I + i.
i64 hwio_row(const ConvSrc& s, i64 c) {
    const i64 x = c % s.w;
    const i64 y = c / s.w % s.h;
    const i64 i = c / (s.w * s.h);
    return (y * s.w + x) * s.i + i;
}

// The float32 weights of part p (every tap of channels o0..o1) in `layout`,
// read from `in`. `out` is where the part starts: OIHW and OHWI parts are
// row-major from there; in HWIO/HWCM tap c of channel o goes to
// out[row(c) * pitch + (o - o0)], with row(c) the HWIO row (pitch O,
// straight into the result) or, `compact`, c (pitch o1 - o0, a temporary
// holding just the part). `scale[o - o0]` is the BN factor of channel o,
// null without BN (a bit-exact copy). `stream`: see kernels::scale_rows.
void conv_f32(const ConvSrc& s, const float* in, const double* scale, ConvLayout layout,
              const ConvPart& p, float* out, i64 pitch, bool compact, bool stream) {
    const i64 I = s.i, H = s.h, W = s.w, K = I * H * W;
    const i64 rows = p.o1 - p.o0;
    if (layout == ConvLayout::OIHW && contiguous(s)) {
        kernels::scale_rows(in, out, rows, K, scale, stream);
        return;
    }
    if (hwio_like(layout) && contiguous(s)) {
        std::vector<i64> dst_row(static_cast<std::size_t>(K));
        for (i64 c = 0; c < K; ++c) {
            dst_row[static_cast<std::size_t>(c)] = (compact ? c : hwio_row(s, c)) * pitch;
        }
        kernels::transpose_scaled(in, rows, K, K, scale, dst_row.data(), out, stream);
        return;
    }
    // Strided sources and OHWI.
    for (i64 o = p.o0; o < p.o1; ++o) {
        for (i64 i = 0; i < I; ++i) {
            for (i64 y = 0; y < H; ++y) {
                for (i64 x = 0; x < W; ++x) {
                    const float w = in[(o - p.o0) * s.so + i * s.si + y * s.sh + x * s.sw];
                    const i64 c = (i * H + y) * W + x;
                    i64 at = 0;
                    switch (layout) {
                        case ConvLayout::OIHW: at = (o - p.o0) * K + c; break;
                        case ConvLayout::HWIO:
                        case ConvLayout::HWCM:
                            at = (compact ? c : hwio_row(s, c)) * pitch + (o - p.o0);
                            break;
                        case ConvLayout::OHWI: at = (((o - p.o0) * H + y) * W + x) * I + i; break;
                    }
                    out[at] = scale != nullptr ? scaled(w, true, scale[o - p.o0]) : w;
                }
            }
        }
    }
}

}  // namespace

ConvSrc dense_as_conv(const DenseSrc& d) {
    if (d.to_hwc) {
        // Input j = (c*h + y)*w + x of the flattened image: strides of (c, y, x).
        return {d.weights, d.o, d.c, d.h, d.w, d.so, d.si * d.h * d.w, d.si * d.w, d.si, d.biases};
    }
    return {d.weights, d.o, d.i, 1, 1, d.so, d.si, 1, 1, d.biases};
}

ConvLayout dense_as_conv_layout(const DenseSrc& d, DenseLayout layout) {
    if (layout == DenseLayout::IO) return ConvLayout::HWIO;  // row (y*w + x)*c + i: the HWC column
    return d.to_hwc ? ConvLayout::OHWI : ConvLayout::OIHW;
}

ConvPart whole_conv(const ConvSrc& src) { return {0, src.o, 0, src.i * src.h * src.w}; }

std::vector<ConvPart> split_conv(const ConvSrc& s, ConvLayout layout, i64 target) {
    // Every layout takes every tap of a range of channels.
    const i64 K = s.i * s.h * s.w;
    std::vector<ConvPart> parts;
    if (contiguous(s)) {
        // Multiples of 16 channels keep every part's start 64-byte aligned.
        // HWIO and HWCM put the channels last: a part writes its `rows`
        // channels into each of K output rows O apart, so it takes 64 of them
        // at the least (256 bytes a row; with 16, a yolov4 HWIO call on one
        // thread took 61-63 ms, with 64 44-45 ms, with 128 40 ms but half
        // as many parts to share; steady state, issue 27).
        const bool channels_last = layout == ConvLayout::HWIO || layout == ConvLayout::HWCM;
        const i64 least = channels_last ? 64 : 16;
        const i64 rows = (std::max<i64>(target / std::max<i64>(K, 1), least) + 15) / 16 * 16;
        for (i64 o = 0; o < s.o; o += rows) parts.push_back({o, std::min(s.o, o + rows), 0, K});
    }
    if (parts.size() <= 1) return {whole_conv(s)};
    return parts;
}

PartSpan part_span(const ConvSrc& s, const ConvPart& p) {
    if (p.o1 <= p.o0 || s.i * s.h * s.w == 0) return {p.o0 * s.so, 0};
    // Strides are not negative: the span runs from weight (o0, 0, 0, 0) to
    // weight (o1 - 1, i - 1, h - 1, w - 1).
    const i64 last = (p.o1 - 1 - p.o0) * s.so + (s.i - 1) * s.si + (s.h - 1) * s.sh +
                     (s.w - 1) * s.sw;
    return {p.o0 * s.so, last + 1};
}

PartInput part_input(const ConvSrc& s, const BatchNormSrc& bn, const ConvPart& p) {
    PartInput in;
    in.weights = s.weights + part_span(s, p).first;
    in.biases = s.biases + p.o0;
    if (bn.present()) in.bn = {bn.scales + p.o0, bn.mean + p.o0, bn.variance + p.o0};
    return in;
}

FuseReport fuse_conv(const ConvSrc& s, const BatchNormSrc& bn, ConvLayout layout, DType dtype,
                     void* out_w, void* out_b) {
    const ConvPart whole = whole_conv(s);
    return fuse_conv(s, part_input(s, bn, whole), layout, dtype, out_w, out_b, whole);
}

FuseReport fuse_conv(const ConvSrc& s, const PartInput& in, ConvLayout layout, DType dtype,
                     void* out_w, void* out_b, const ConvPart& p) {
    const i64 O = s.o, K = s.i * s.h * s.w;
    const i64 rows = p.o1 - p.o0;
    std::vector<double> scale(static_cast<std::size_t>(rows));
    std::vector<float> bias(static_cast<std::size_t>(rows));
    for (i64 o = 0; o < rows; ++o) {
        const ChannelFuse cf = channel(in.biases, in.bn, o);
        scale[static_cast<std::size_t>(o)] = cf.scale;
        bias[static_cast<std::size_t>(o)] = cf.bias;
    }
    const double* sc = in.bn.present() ? scale.data() : nullptr;
    const bool hw = hwio_like(layout);
    FuseReport r;
    r.overflow = with_converter(dtype, [&](auto& cvt, auto* tag) {
        using Out = std::remove_pointer_t<decltype(tag)>;
        Out* b = static_cast<Out*>(out_b) + p.o0;
        for (i64 o = 0; o < rows; ++o) b[o] = cvt(bias[static_cast<std::size_t>(o)]);
        Out* w = static_cast<Out*>(out_w) + (hw ? p.o0 : p.o0 * K);
        if constexpr (std::is_same_v<Out, float>) {
            // Streaming stores when the whole layer is large, whatever the part.
            conv_f32(s, in.weights, sc, layout, p, w, O, false,
                     O * K * i64{4} >= kernels::kStreamBytes);
        } else {
            // float32 first, into a temporary the size of the part (so it is
            // read back from cache), then one conversion pass.
            std::vector<float> tmp(static_cast<std::size_t>(rows * K));
            conv_f32(s, in.weights, sc, layout, p, tmp.data(), rows, true, false);
            const bool bfloat = dtype == DType::bfloat16;
            if (hw) {
                for (i64 c = 0; c < K; ++c) {
                    cvt.overflow += kernels::to_half(tmp.data() + c * rows,
                                                     w + hwio_row(s, c) * O, rows, bfloat);
                }
            } else {
                cvt.overflow += kernels::to_half(tmp.data(), w, rows * K, bfloat);
            }
        }
    });
    return r;
}

}  // namespace yolo_io
