// yolo_io._core.SafetensorsFile and the safetensors header writers: the
// validated reader of a .safetensors file, a Weights from a raw yolo_io
// export, and the header bytes of yolo_io.save_safetensors().
#include <string>
#include <tuple>
#include <vector>

#include "common.hpp"
#include "yolo_io/safetensors.hpp"

namespace yolo_io::bindings {

namespace {

struct PySafetensors {
    std::shared_ptr<const SafetensorsFile> file;
};

}  // namespace

void register_safetensors(py::module_& m) {
    py::class_<PySafetensors>(m, "SafetensorsFile",
                              "A mapped .safetensors file whose header has been validated.")
        .def(py::init([](const std::filesystem::path& path, bool copy) {
                 std::shared_ptr<const MappedFile> mapped;
                 {
                     GilRelease release;  // copy=True reads the whole file
                     mapped = std::make_shared<const MappedFile>(path.string(), copy);
                 }
                 return PySafetensors{std::make_shared<const SafetensorsFile>(mapped)};
             }),
             py::arg("path"), py::arg("copy") = false)
        .def(
            "raw_cfg",
            [](const PySafetensors& s) { return py::bytes(raw_export_cfg(*s.file)); },
            "The cfg bytes of a raw yolo_io export (FormatError for any other file).");

    m.def(
        "weights_from_safetensors",
        [](const PyConfig& config, const PySafetensors& file) {
            return wrap_weights(std::make_shared<const Weights>(config.ptr, *file.file));
        },
        py::arg("config"), py::arg("file"),
        "A Weights on a raw yolo_io export, whose tensors must be exactly config's plan.");
    m.def(
        "raw_safetensors_header",
        [](const PyWeights& source) { return py::bytes(raw_export_header(*source.weights)); },
        py::arg("source"),
        "The header of the raw safetensors export of a mapped weights file; its data region "
        "is then WeightsWriter.write_layers(source, all layers).");
    m.def(
        "safetensors_header",
        [](const PyWeights& source,
           const std::vector<std::tuple<std::string, std::string, std::vector<std::int64_t>>>&
               tensors,
           const std::vector<std::pair<std::string, std::string>>& metadata) {
            std::vector<TensorEntry> entries;
            entries.reserve(tensors.size());
            for (const auto& [name, dtype, shape] : tensors) {
                entries.push_back(TensorEntry{name, dtype, shape, 0, 0});
            }
            Metadata meta(metadata.begin(), metadata.end());
            for (auto& kv : export_metadata(source.weights->config(), source.weights->header())) {
                meta.push_back(std::move(kv));
            }
            return py::bytes(safetensors_header(entries, meta));
        },
        py::arg("source"), py::arg("tensors"), py::arg("metadata"),
        "Header bytes for tensors (name, dtype, shape) laid out back to back in this order, "
        "with the metadata pairs, then the source's cfg and header.");
}

}  // namespace yolo_io::bindings
