// yolo_io._core: table of contents. Each area registers itself.
#include "common.hpp"
#include "yolo_io/kernels.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "yolo_io's compiled core (private; use the yolo_io package).";
    yolo_io::bindings::register_errors(m);
    yolo_io::bindings::register_config(m);
    yolo_io::bindings::register_weights(m);
    yolo_io::bindings::register_writer(m);
    yolo_io::bindings::register_safetensors(m);
    // Test hooks: the portable and SIMD (AVX2/F16C, NEON) kernels must give the same bits.
    m.def("_simd_active", &yolo_io::kernels::simd_active,
          "Whether the SIMD fusion kernels (AVX2/F16C or NEON) are in use.");
    m.def("_set_simd", &yolo_io::kernels::set_simd, pybind11::arg("enabled"),
          "Enables or disables the SIMD fusion kernels; returns the previous setting.");
}
