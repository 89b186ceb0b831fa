// libFuzzer harness: a .safetensors file, as yolo_io.load(path) reads one:
// the header (length, JSON, dtypes, shapes, offsets), then, for a raw
// yolo_io export, its cfg and darknet header from the metadata and the check
// that the tensors are exactly the cfg's plan.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common.hpp"
#include "yolo_io/model.hpp"
#include "yolo_io/safetensors.hpp"
#include "yolo_io/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::expect_typed([&] {
        const fuzz::MemoryFile file(data, size);
        const auto mapped = std::make_shared<const yolo_io::MappedFile>(file.path());
        const yolo_io::SafetensorsFile st(mapped);
        for (const auto& t : st.tensors()) {
            volatile std::int64_t span = t.end - t.begin;
            (void)span;
        }
        if (st.meta("format") == nullptr) return;
        const auto config = yolo_io::parse_config(yolo_io::raw_export_cfg(st), st.path());
        const yolo_io::Weights w(config, st);
        for (int i = 0; i < w.covered_layers(); ++i) {
            if (w.nbytes(i) == 0) continue;
            volatile float sink = w.layer_data(i)[0];
            (void)sink;
        }
    });
    return 0;
}
