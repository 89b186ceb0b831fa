#include "yolo_io/fused.hpp"

#include <stdexcept>

namespace yolo_io {

namespace {

using i64 = std::int64_t;

struct Found {
    const float* data = nullptr;
    const ParamSpec* spec = nullptr;
};

Found find(const Weights& w, int index, std::string_view name) {
    const LayerInfo& layer = w.config().layers[static_cast<std::size_t>(index)];
    for (const auto& p : layer.params) {
        if (p.prefix.empty() && p.base == name) {
            return {w.layer_data(index) + p.offset, &p};
        }
    }
    return {};
}

// Element strides of a param as stored (honouring flipped / legacy layouts).
std::vector<i64> strides_of(const Weights& w, const ParamSpec& p) {
    std::vector<i64> out(static_cast<std::size_t>(p.ndim));
    if (p.legacy_transpose && w.header().transpose) {
        return {1, p.shape[0]};
    }
    if (p.strided) {
        for (int k = 0; k < p.ndim; ++k) out[static_cast<std::size_t>(k)] = p.strides[static_cast<std::size_t>(k)];
        return out;
    }
    i64 s = 1;
    for (int k = p.ndim; k-- > 0;) {
        out[static_cast<std::size_t>(k)] = s;
        s *= p.shape[static_cast<std::size_t>(k)];
    }
    return out;
}

OwnedArray allocate(std::vector<i64> shape, DType dtype) {
    i64 n = 1;
    for (i64 d : shape) n *= d;
    OwnedArray a;
    a.shape = std::move(shape);
    a.dtype = dtype;
    a.data.reset(new std::uint8_t[static_cast<std::size_t>(n * dtype_size(dtype)) + 1]);
    return a;
}

std::string where(const Weights& w, int index) {
    const LayerInfo& L = w.config().layers[static_cast<std::size_t>(index)];
    return "layer " + std::to_string(index) + " (" + std::string(L.type) + ", " +
           w.config().path + " line " + std::to_string(L.line) + ")";
}

}  // namespace

Flatten parse_flatten(std::string_view name) {
    if (name == "auto") return Flatten::automatic;
    if (name == "CHW") return Flatten::chw;
    if (name == "HWC") return Flatten::hwc;
    throw std::invalid_argument("flatten must be 'auto', 'CHW' or 'HWC', not '" +
                                std::string(name) + "'");
}

FusedLayer fuse_layer(const Weights& w, int index, std::string_view layout, DType dtype,
                      Flatten flatten, bool fuse) {
    const LayerInfo& layer = w.config().layers.at(static_cast<std::size_t>(index));
    const bool conv = layer.type == "convolutional";
    if (!conv && layer.type != "connected") {
        throw std::invalid_argument(where(w, index) + " has no weights to fuse: fused() is for "
                                    "convolutional and connected layers");
    }
    int src = conv && layer.share_index >= 0 ? layer.share_index : index;
    if (!w.loaded(src)) {
        throw std::out_of_range(where(w, src) + " is past the end of this partial file");
    }
    const Found weights = find(w, src, "weights");
    const Found biases = find(w, src, "biases");
    if (weights.data == nullptr || biases.data == nullptr) {
        throw std::invalid_argument(where(w, index) + " stores no weights (dontload=1)");
    }
    BatchNormSrc bn;
    if (fuse) {
        bn.scales = find(w, src, "scales").data;
        bn.mean = find(w, src, "rolling_mean").data;
        bn.variance = find(w, src, "rolling_variance").data;
    }
    const ParamSpec& p = *weights.spec;
    const std::vector<i64> st = strides_of(w, p);
    FusedLayer out;
    if (conv) {
        const ConvLayout lay = parse_conv_layout(layout);
        ConvSrc s{weights.data, p.shape[0], p.shape[1], p.shape[2], p.shape[3],
                  st[0],        st[1],      st[2],      st[3],      biases.data};
        std::vector<i64> shape;
        switch (lay) {
            case ConvLayout::OIHW: shape = {s.o, s.i, s.h, s.w}; break;
            case ConvLayout::HWIO: shape = {s.h, s.w, s.i, s.o}; break;
            case ConvLayout::OHWI: shape = {s.o, s.h, s.w, s.i}; break;
            case ConvLayout::HWCM: {
                const i64 c = layer.input_shape.c;
                if (s.i != 1 || c < 1 || s.o % c != 0) {
                    throw std::invalid_argument(
                        where(w, index) + " is not a depthwise convolution (groups = channels = " +
                        std::to_string(c) + ", filters a multiple of it); HWCM is Keras "
                        "DepthwiseConv2D's layout, use HWIO");
                }
                shape = {s.h, s.w, c, s.o / c};
                break;
            }
        }
        out.weights = allocate(shape, dtype);
        out.biases = allocate({s.o}, dtype);
        out.report = fuse_conv(s, bn, lay, dtype, out.weights.data.get(), out.biases.data.get());
        return out;
    }
    const DenseLayout lay = parse_dense_layout(layout);
    DenseSrc s{weights.data, p.shape[0], p.shape[1], st[0], st[1], biases.data};
    const Shape3& in = layer.input_shape;
    const bool image = in.h * in.w > 1 && in.size() == s.i;
    const bool hwc = flatten == Flatten::hwc ||
                     (flatten == Flatten::automatic && lay == DenseLayout::IO);
    if (hwc && image) {
        s.to_hwc = true;
        s.c = in.c;
        s.h = in.h;
        s.w = in.w;
    }
    out.weights = allocate(lay == DenseLayout::OI ? std::vector<i64>{s.o, s.i}
                                                  : std::vector<i64>{s.i, s.o},
                           dtype);
    out.biases = allocate({s.o}, dtype);
    out.report = fuse_dense(s, bn, lay, dtype, out.weights.data.get(), out.biases.data.get());
    return out;
}

}  // namespace yolo_io
