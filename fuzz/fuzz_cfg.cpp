// libFuzzer harness: the cfg reader and the planner (every layer's shape and
// parameter plan), the code every .cfg from a stranger goes through.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common.hpp"
#include "yolo_io/model.hpp"
#include "yolo_io/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    fuzz::expect_typed([&] {
        const auto config = yolo_io::parse_config(text, "<fuzz>");
        // What load() computes from the cfg alone before it maps anything.
        volatile std::int64_t bytes = yolo_io::expected_bytes(*config, 20);
        (void)bytes;
    });
    return 0;
}
