// Fused, transposed, converted arrays of one layer of a Weights file: the
// bridge between the file's layer plan and the pure kernels of fuse.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "yolo_io/fuse.hpp"
#include "yolo_io/weights.hpp"

namespace yolo_io {

// A new buffer, owned until handed to Python.
struct OwnedArray {
    std::unique_ptr<std::uint8_t[]> data;
    std::vector<std::int64_t> shape;
    DType dtype = DType::float32;
};

struct FusedLayer {
    OwnedArray weights;
    OwnedArray biases;
    FuseReport report;
};

enum class Flatten { automatic, chw, hwc };
Flatten parse_flatten(std::string_view name);  // "auto", "CHW", "HWC"

// (weights, biases) of convolutional layer `index` (batch norm fused when it
// has one) or connected layer `index` (likewise), in `layout` and `dtype`.
// A conv with share_index uses the arrays of the layer it shares. Throws
// std::invalid_argument for other layer types, an unknown layout, or HWCM on
// a conv that is not depthwise; std::out_of_range for a layer past the end of
// a partial file.
// With `fuse` false the batch norm is left out: the stored weights and biases
// (beta), only transposed and converted.
FusedLayer fuse_layer(const Weights& weights, int index, std::string_view layout, DType dtype,
                      Flatten flatten, bool fuse = true);

}  // namespace yolo_io
