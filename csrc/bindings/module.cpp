// yolo_io._core: table of contents. Each area registers itself.
#include "common.hpp"
#include "yolo_io/fuse.hpp"
#include "yolo_io/kernels.hpp"
#include "yolo_io/parallel.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "yolo_io's compiled core (private; use the yolo_io package).";
    // Threads coming back from the core once the interpreter exits (common.hpp).
    yolo_io::bindings::g_interpreter_exiting.store(false);
    pybind11::module_::import("atexit").attr("register")(
        pybind11::cpp_function(&yolo_io::bindings::on_interpreter_exit));
    pybind11::module_::import("os").attr("register_at_fork")(
        pybind11::arg("after_in_child") =
            pybind11::cpp_function(&yolo_io::bindings::after_fork_in_child));
    m.attr("BN_EPSILON") = yolo_io::kBnEpsilon;
    yolo_io::bindings::register_errors(m);
    yolo_io::bindings::register_config(m);
    yolo_io::bindings::register_weights(m);
    yolo_io::bindings::register_writer(m);
    yolo_io::bindings::register_safetensors(m);
    yolo_io::bindings::register_detect(m);
    // Test hooks: the portable and SIMD (AVX2/F16C, NEON) kernels must give the same bits.
    m.def("_simd_active", &yolo_io::kernels::simd_active,
          "Whether the SIMD fusion kernels (AVX2/F16C or NEON) are in use.");
    m.def("_set_simd", &yolo_io::kernels::set_simd, pybind11::arg("enabled"),
          "Enables or disables the SIMD fusion kernels; returns the previous setting.");
    // Test hooks: the thread pool (tests/test_pool.py).
    m.def(
        "_pool_stats",
        [] {
            const yolo_io::PoolStats s = yolo_io::pool_stats();
            pybind11::dict d;
            d["started"] = s.started;
            d["max_active"] = s.max_active;
            d["cap"] = s.cap;
            d["alive"] = s.alive;
            d["active"] = s.active;
            return d;
        },
        "The pool's workers: started in this process, most active at once since "
        "_pool_reset_max(), cap, alive, active now.");
    m.def("_pool_reset_max", &yolo_io::pool_reset_max,
          "Restarts the count of the most workers active at once from those active now.");
    m.def("_pool_fail_next", &yolo_io::pool_fail_next, pybind11::arg("count"),
          "The next `count` worker starts throw std::bad_alloc.");
}
