// yolo_io._core: table of contents. Each area registers itself.
#include "common.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "yolo_io's compiled core (private; use the yolo_io package).";
    yolo_io::bindings::register_errors(m);
    yolo_io::bindings::register_config(m);
    yolo_io::bindings::register_weights(m);
}
