// The layer-kind table: every section type darknet accepts, with the section
// names that select it, the builder that reads it (csrc/yolo_io/layers/) and
// its properties. This is the one place to add a layer type; every "which
// layers store data, fuse, are flat" question reads it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace yolo_io {

// darknet's LAYER_TYPE values that a cfg can name ([A] parser.c:
// string_to_layer_type(), plus the [P]-only [deconvolutional], [logistic],
// [l2norm] and [iseg]). `net` is the first section only.
enum class Kind : std::uint8_t {
    net,
    convolutional,
    deconvolutional,
    connected,
    local,
    maxpool,
    local_avgpool,
    avgpool,
    route,
    shortcut,
    scale_channels,
    sam,
    upsample,
    reorg,
    reorg3d,
    yolo,
    gaussian_yolo,
    region,
    detection,
    rnn,
    lstm,
    gru,
    crnn,
    conv_lstm,
    batchnorm,
    dropout,
    softmax,
    cost,
    normalization,
    activation,
    contrastive,
    crop,
    history,
    implicit,
    iseg,
    empty,
    logistic,
    l2norm,
    count_,  // not a kind: the number of kinds (the table's size)
};

// The number of kinds, [net] included: the kind table has one row for each.
constexpr std::size_t kKindCount = static_cast<std::size_t>(Kind::count_);

// What fused()/fused_all() can compute for a kind, and its default layout.
enum class FuseAs : std::uint8_t { none, conv, dense };

// The one place that decides a default layout: "OIHW" (darknet's, PyTorch's,
// ONNX's) for convolutions, "OI" for connected layers, "" for the rest.
constexpr std::string_view default_layout(FuseAs fuse) {
    return fuse == FuseAs::conv ? "OIHW" : fuse == FuseAs::dense ? "OI" : "";
}

// Properties of a kind.
enum KindFlag : unsigned {
    kStoresParams = 1u << 0,  // may read arrays from a .weights file
    // The output is a flat vector (l.outputs), not an image: an empty image
    // shape is no error, and the next layer's l.inputs is this l.outputs.
    kFlat = 1u << 1,
    kHead = 1u << 2,          // a detection head (yolo, region, ...)
    // darknet leaves out_w/h/c at 0 (softmax, cost, detection): a layer that
    // needs an image cannot follow it. We report the input shape, which is
    // what such a layer computes on.
    kNoImageOut = 1u << 3,
    // A head that decodes a grid of per-cell predictions from an image
    // (yolo, region): a convolution before it sets their number by filters=.
    kGridHead = 1u << 4,
    // Its darknet loader honours dontloadscales=1 (load_convolutional_weights,
    // load_connected_weights): the batch-norm arrays are not read.
    kDontloadscales = 1u << 5,
    // Training only: darknet computes nothing at inference that another layer
    // reads (cost, contrastive), so an inference graph leaves it out.
    kTrainingOnly = 1u << 6,
};

struct LayerInfo;
struct Ctx;
struct Built;
class Options;
using Builder = Built (*)(Options&, Ctx&, LayerInfo&);

struct KindInfo {
    Kind kind;
    std::string_view name;                    // canonical: "convolutional", ...
    std::array<std::string_view, 2> sections; // accepted headers; "" = none
    Builder build;                            // nullptr for net
    unsigned flags;
    FuseAs fuse;
    // The Python record of its typed hyperparameters (yolo_io.attrs).
    std::string_view attrs;

    bool has(KindFlag f) const { return (flags & f) != 0; }
    std::string_view default_layout() const { return yolo_io::default_layout(fuse); }
};

// The row of `kind`.
const KindInfo& kind_info(Kind kind);
// The row whose sections include `section` (e.g. "[conv]"), or nullptr.
const KindInfo* kind_of_section(std::string_view section);
// Every row but net, in table order.
const KindInfo* kinds_begin();
const KindInfo* kinds_end();

}  // namespace yolo_io
