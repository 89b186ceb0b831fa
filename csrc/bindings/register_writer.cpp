// yolo_io._core.WeightsWriter: the atomic output file of yolo_io.save(), fed
// with the header, float32 buffers, or a mapped network's layers.
#include <string>

#include "common.hpp"
#include "yolo_io/writer.hpp"

namespace yolo_io::bindings {

void register_writer(py::module_& m) {
    py::class_<AtomicFile>(m, "WeightsWriter",
                           "A file written under a temporary name and renamed over the target "
                           "by commit(); abort() or garbage collection removes the temporary.")
        .def(py::init([](const std::filesystem::path& path) {
                 return std::make_unique<AtomicFile>(path.string());
             }),
             py::arg("path"))
        .def(
            "write",
            [](AtomicFile& f, const py::buffer& data) {
                py::buffer_info info = data.request();
                if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize)) {
                    throw std::invalid_argument("write() takes a contiguous 1-d buffer");
                }
                const auto n = static_cast<std::size_t>(info.size * info.itemsize);
                GilRelease release;
                f.write(info.ptr, n);
            },
            py::arg("data"), "Appends the bytes of a contiguous buffer.")
        .def(
            "write_layers",
            [](AtomicFile& f, const PyWeights& source, int layers, const py::object& progress) {
                // Called between parts with the GIL: reports the bytes
                // written, and a pending signal (Ctrl-C) stops the copy.
                const Progress report = [&progress](std::int64_t written) {
                    const py::gil_scoped_acquire gil;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                    if (!progress.is_none()) progress(written);
                };
                GilRelease release;
                write_mapped_layers(*source.weights, layers, f, report);
            },
            py::arg("source"), py::arg("layers"), py::arg("progress") = py::none(),
            "Appends the data of the first `layers` layers of a mapped weights file; "
            "`progress(written)` is called every few MiB.")
        .def("extend_to", &AtomicFile::extend_to, py::arg("size"),
             "Extends the file to `size` bytes with zeros (a hole where the file system "
             "allows it).")
        .def_property_readonly("written", &AtomicFile::written)
        .def_property_readonly(
            "temporary",
            [](const AtomicFile& f) { return std::filesystem::path(f.temporary()); },
            "The temporary file's path (readable while it is written, e.g. to check it "
            "before commit()).")
        .def("commit", &AtomicFile::commit, py::call_guard<GilRelease>(),
             "fsync, rename over the target, fsync the folder.")
        .def("abort", &AtomicFile::abort, "Removes the temporary file.");

    m.def(
        "header_bytes",
        [](std::int64_t major, std::int64_t minor, std::int64_t revision, std::uint64_t seen) {
            return py::bytes(header_bytes(major, minor, revision, seen));
        },
        py::arg("major"), py::arg("minor"), py::arg("revision"), py::arg("seen"),
        "The header darknet writes for this version: 16 or 20 bytes.");
}

}  // namespace yolo_io::bindings
