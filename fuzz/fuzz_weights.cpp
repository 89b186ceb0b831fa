// libFuzzer harness: a .cfg and a .weights file together, the load() path.
// The input is the cfg text, a NUL byte, then the weights file's bytes (a
// NUL cannot be in a cfg, so the split is unambiguous; without one, the
// whole input is the weights file of a small built-in cfg). Covers the
// header reader, the size check against the plan, partial files, each
// layer's arrays, and fusing every layer in every layout and dtype.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "common.hpp"
#include "yolo_io/fused.hpp"
#include "yolo_io/model.hpp"
#include "yolo_io/weights.hpp"

namespace {

constexpr std::string_view kSmallCfg =
    "[net]\nwidth=8\nheight=8\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
    "[convolutional]\nfilters=2\nsize=1\nstride=1\nactivation=linear\n"
    "[connected]\noutput=3\nactivation=linear\n";

void use(const yolo_io::Weights& w) {
    const auto& layers = w.config().layers;
    for (int i = 0; i < static_cast<int>(layers.size()); ++i) {
        const auto& layer = layers[static_cast<std::size_t>(i)];
        if (!w.loaded(i) || w.nbytes(i) == 0 || layer.kind_info().fuse == yolo_io::FuseAs::none) {
            continue;
        }
        const float* p = w.layer_data(i);
        volatile float sink = p[0] + p[w.nbytes(i) / 4 - 1];  // first and last float
        (void)sink;
        for (const char* layout : {"", "HWIO", "OHWI"}) {
            for (const char* dtype : {"float32", "float16", "bfloat16"}) {
                yolo_io::FuseOptions options;
                try {
                    options = yolo_io::parse_layer_fuse_options(layer, layout, dtype, "", true);
                } catch (const std::invalid_argument&) {  // a layout this kind cannot take
                    continue;
                }
                // Only a typed error may come out of fusing a loaded layer.
                fuzz::expect_typed([&] { (void)yolo_io::fuse_layer(w, i, options, 1); });
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
    std::string_view cfg = kSmallCfg;
    const std::uint8_t* weights = data;
    std::size_t weights_size = size;
    if (nul != nullptr && nul != data) {
        cfg = std::string_view(reinterpret_cast<const char*>(data),
                               static_cast<std::size_t>(nul - data));
        weights = nul + 1;
        weights_size = size - static_cast<std::size_t>(nul - data) - 1;
    }
    fuzz::expect_typed([&] {
        const auto config = yolo_io::parse_config(cfg, "<fuzz>");
        const fuzz::MemoryFile file(weights, weights_size);
        const auto mapped = std::make_shared<const yolo_io::MappedFile>(file.path());
        for (const bool partial : {false, true}) {
            fuzz::expect_typed([&] {
                const yolo_io::Weights w(config, mapped, partial);
                use(w);
            });
        }
    });
    return 0;
}
