// yolo_io._core.nms_per_class: darknet's NMS for yolo_io.detect.
#include <cstdint>
#include <stdexcept>

#include "common.hpp"
#include "yolo_io/nms.hpp"

namespace yolo_io::bindings {

void register_detect(py::module_& m) {
    m.def(
        "nms_per_class",
        [](const py::array_t<float, py::array::c_style | py::array::forcecast>& boxes,
           const py::array_t<float, py::array::c_style | py::array::forcecast>& probs,
           float thresh, bool diou, double exponent) {
            if (boxes.ndim() != 2 || boxes.shape(1) != 4 || probs.ndim() != 2 ||
                probs.shape(0) != boxes.shape(0)) {
                throw std::invalid_argument("nms_per_class takes boxes (n, 4) and probs (n, classes)");
            }
            const auto n = static_cast<std::size_t>(boxes.shape(0));
            const auto classes = static_cast<std::size_t>(probs.shape(1));
            py::array_t<std::uint8_t> keep({boxes.shape(0), probs.shape(1)});
            const float* b = boxes.data();
            const float* p = probs.data();
            std::uint8_t* out = keep.mutable_data();
            {
                GilRelease release;
                nms_per_class(b, p, n, classes, thresh, diou ? Overlap::diou : Overlap::iou,
                              exponent, out);
            }
            return keep;
        },
        py::arg("boxes"), py::arg("probs"), py::arg("thresh"), py::arg("diou"),
        py::arg("exponent"),
        "darknet's per-class NMS: a (n, classes) uint8 array, 1 where a box survives for a "
        "class with a probability above 0.");
}

}  // namespace yolo_io::bindings
