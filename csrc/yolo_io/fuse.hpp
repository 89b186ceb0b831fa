// Conv/connected + batch-norm fusion, layout transposes and dtype conversion.
// Pure kernels: pointers, shapes and strides in, a caller-owned buffer out. No
// file knowledge (STYLE item 9).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace yolo_io {

// darknet's batch-norm epsilon: sqrt(var + .00001) in fuse_conv_batchnorm
// (network.c) and normalize_cpu (blas.c). The one place it is written;
// Python reads it as yolo_io._core.BN_EPSILON.
inline constexpr double kBnEpsilon = .00001;

enum class DType { float32, float16, bfloat16 };
// OIHW: darknet, PyTorch, ONNX. HWIO: TF/Keras Conv2D. OHWI: TFLite.
// HWCM: Keras DepthwiseConv2D (H, W, C, multiplier); the same bytes as HWIO.
enum class ConvLayout { OIHW, HWIO, OHWI, HWCM };
// OI: torch Linear (out, in). IO: Keras Dense (in, out).
enum class DenseLayout { OI, IO };

DType parse_dtype(std::string_view name);              // std::invalid_argument
ConvLayout parse_conv_layout(std::string_view name);   // std::invalid_argument
DenseLayout parse_dense_layout(std::string_view name); // std::invalid_argument
int dtype_size(DType t);

// darknet's BatchNorm arrays; all null when the layer has none.
struct BatchNormSrc {
    const float* scales = nullptr;
    const float* mean = nullptr;
    const float* variance = nullptr;
    bool present() const { return scales != nullptr; }
};

// A 4-d float32 source with element strides (OIHW logical order).
struct ConvSrc {
    const float* weights = nullptr;
    std::int64_t o = 0, i = 0, h = 0, w = 0;
    std::int64_t so = 0, si = 0, sh = 0, sw = 0;
    const float* biases = nullptr;
};

// A 2-d float32 source (outputs, inputs) with element strides.
struct DenseSrc {
    const float* weights = nullptr;
    std::int64_t o = 0, i = 0;
    std::int64_t so = 0, si = 0;
    const float* biases = nullptr;
    // When set, the inputs are a flattened (c, h, w) tensor in CHW order and
    // are re-ordered to HWC (what an NHWC framework flattens).
    bool to_hwc = false;
    std::int64_t c = 0, h = 0, w = 0;
};

// Result counters (for warnings).
struct FuseReport {
    std::int64_t overflow = 0;  // finite values that became +-inf in float16/bfloat16
};

// A connected layer as the 1x1 convolution it is, so that it runs the
// convolution kernels and is split into parts like one: OI is OIHW and IO is
// HWIO with h = w = 1. With `to_hwc` its inputs are the (c, h, w) image
// they flatten, and the layouts are OHWI (OI with HWC columns) and HWIO.
ConvSrc dense_as_conv(const DenseSrc& src);
ConvLayout dense_as_conv_layout(const DenseSrc& src, DenseLayout layout);

// A share of one convolution's work, so that threads can split a layer:
// output channels [o0, o1) and flattened input taps [c0, c1), where tap
// c = (i*h + y)*w + x.
struct ConvPart {
    std::int64_t o0 = 0, o1 = 0, c0 = 0, c1 = 0;
};
ConvPart whole_conv(const ConvSrc& src);
// Splits a convolution into parts of about `target` weights each: ranges of
// output channels with every tap (a multiple of 16 channels, so that each
// part's output starts 64-byte aligned), whose weights are one contiguous
// run of the source. A layer too small to split, or whose source is not
// contiguous, is one part.
std::vector<ConvPart> split_conv(const ConvSrc& src, ConvLayout layout, std::int64_t target);

// The elements of src.weights that part p reads: `count` elements from
// element `first` (the span of a strided source).
struct PartSpan {
    std::int64_t first = 0, count = 0;
};
PartSpan part_span(const ConvSrc& src, const ConvPart& p);

// The values part p of `src` reads, wherever they are: in the source itself
// (part_input) or copied out of a file into a buffer. Weight (o, i, y, x)
// of the part is at weights[(o - o0)*so + i*si + y*sh + x*sw] (src's
// strides) and its span (part_span) starts at weights[0]; channel o's bias
// and batch norm are at index o - o0.
struct PartInput {
    const float* weights = nullptr;
    const float* biases = nullptr;
    BatchNormSrc bn;
};
PartInput part_input(const ConvSrc& src, const BatchNormSrc& bn, const ConvPart& p);

// Writes the fused (or, without BN, the stored) weights and biases into
// `out_w` (o*i*h*w elements of `dtype` in `layout`) and `out_b` (o elements).
// Fusion is darknet's network.c:fuse_conv_batchnorm(), in double:
//   b' = float(b - gamma*mean/sqrt(var + .00001)),  w' = float(w * (gamma/sqrt(var + .00001)))
// With `part`, only that part's weights and biases (at their places in out_w
// and out_b); the parts of split_conv together write everything, each
// exactly once, with the same bits. `in` gives the part's values (src then
// gives only the shape and strides).
FuseReport fuse_conv(const ConvSrc& src, const BatchNormSrc& bn, ConvLayout layout, DType dtype,
                     void* out_w, void* out_b);
FuseReport fuse_conv(const ConvSrc& src, const PartInput& in, ConvLayout layout, DType dtype,
                     void* out_w, void* out_b, const ConvPart& part);

// float32 -> IEEE binary16 / bfloat16 bits, round to nearest even; NaN stays NaN.
std::uint16_t to_float16(float v);
std::uint16_t to_bfloat16(float v);
// to_float16 (`bfloat` false) or to_bfloat16, adding 1 to `overflow` when a
// finite value became +-inf.
std::uint16_t to_half_counted(float v, bool bfloat, std::int64_t& overflow);

}  // namespace yolo_io
