// yolo_io._core.Weights: a mapped .weights file bound to a Config, handing out
// read-only zero-copy NumPy views whose base keeps the mapping alive.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <system_error>
#include <string>

#include "common.hpp"
#include "yolo_io/arena_memory.hpp"
#include "yolo_io/fused.hpp"
#include "yolo_io/platform.hpp"

namespace yolo_io::bindings {

namespace {

void clear_writeable(py::array& a) {
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
}

int checked_index(const Weights& w, std::int64_t i) { return checked_layer_index(w.config(), i); }

py::dict layer_params(const PyWeights& self, std::int64_t index) {
    const Weights& w = *self.weights;
    int i = checked_index(w, index);
    py::dict out;
    if (!w.loaded(i)) {
        return out;  // beyond the end of a partial file
    }
    const LayerInfo& layer = w.config().layers[static_cast<std::size_t>(i)];
    const float* base = w.layer_data(i);
    const auto f32 = py::dtype::of<float>();
    for (const ParamSpec& p : layer.params) {
        const auto nd = static_cast<std::size_t>(p.ndim);
        std::vector<py::ssize_t> shape(p.shape.begin(), p.shape.begin() + p.ndim);
        std::vector<py::ssize_t> strides(nd);
        const std::vector<std::int64_t> elements = w.element_strides(p);
        for (std::size_t k = 0; k < nd; ++k) {
            strides[k] = static_cast<py::ssize_t>(4 * elements[k]);
        }
        // The base is the read-only whole-file array, so the view inherits
        // its flags (not writeable) and keeps the mapping alive.
        py::array view(f32, shape, strides, base + p.offset, self.raw);
        out[py::str(p.name())] = view;
    }
    return out;
}

py::dtype numpy_dtype(DType t);

// Hands an owned buffer to NumPy: one allocation, no copy; the capsule frees it.
// The capsule exists before the buffer's owner lets go, so that whatever
// throws in between (the capsule's creation, the array's) frees it once.
py::array to_numpy(OwnedArray&& a) {
    py::dtype dt = numpy_dtype(a.dtype);
    std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
    if (a.block) {  // a part of a shared block: the capsule holds a reference to it
        auto* keep = new std::shared_ptr<std::uint8_t>(std::move(a.block));
        py::capsule owner(keep, [](void* p) noexcept {
            delete static_cast<std::shared_ptr<std::uint8_t>*>(p);
        });
        return py::array(dt, shape, a.in_block, owner);
    }
    py::capsule owner(a.data.get(),
                      [](void* p) noexcept { MallocFree{}(static_cast<std::uint8_t*>(p)); });
    std::uint8_t* data = a.data.release();
    return py::array(dt, shape, data, owner);
}

py::tuple fused(const PyWeights& self, std::int64_t index, const std::optional<std::string>& layout,
                const std::string& dtype, const std::string& flatten, bool fuse, int threads) {
    const Weights& w = *self.weights;
    int i = checked_index(w, index);
    const FuseOptions options = parse_layer_fuse_options(
        w.config().layers[static_cast<std::size_t>(i)], layout.value_or(""), dtype, flatten, fuse);
    FusedLayer f;
    {
        GilRelease release;
        f = fuse_layer(w, i, options, threads);
    }
    return py::make_tuple(to_numpy(std::move(f.weights)), to_numpy(std::move(f.biases)),
                          f.report.overflow);
}

// Weights.fused() during a walk over the layers (Network.__iter__): `live`
// is the walk's network (a stopped walk fuses from it alone).
py::tuple walk_fused(FusedWalk& walk, const PyWeights& live, std::int64_t index,
                     const std::optional<std::string>& layout, const std::string& dtype,
                     const std::string& flatten, bool fuse, int threads) {
    const int i = checked_index(*live.weights, index);
    FusedLayer f;
    {
        GilRelease release;
        f = walk.fused(*live.weights, i, layout.value_or(""), dtype, flatten, fuse, threads);
    }
    return py::make_tuple(to_numpy(std::move(f.weights)), to_numpy(std::move(f.biases)),
                          f.report.overflow);
}

py::dtype numpy_dtype(DType t) {
    return t == DType::float32   ? py::dtype::of<float>()
           : t == DType::float16 ? py::dtype("float16")
                                 : py::dtype::of<std::uint16_t>();
}

// Every fused array of the network in one arena: a dict {layer: (w, b)} of
// views whose base is a capsule owning the arena.
py::tuple fused_all(const PyWeights& self, const std::optional<std::string>& conv_layout,
                    const std::optional<std::string>& dense_layout, const std::string& dtype,
                    const std::string& flatten, int threads, bool fuse, int first, int last) {
    const FuseOptions options =
        parse_fuse_options(conv_layout.value_or(""), dense_layout.value_or(""), dtype, flatten,
                           fuse);
    auto arena = std::make_unique<Arena>();
    {
        GilRelease release;
        *arena = fuse_network(*self.weights, options, threads, first, last);
    }
    std::uint8_t* base = arena->data.get();
    const py::dtype npdt = numpy_dtype(options.dtype);
    std::int64_t overflow = arena->report.overflow;
    // As in to_numpy(): the capsule owns the arena before the unique_ptr
    // lets go of it; a failure while the dict is built then frees it.
    py::capsule owner(arena.get(), [](void* p) noexcept { delete static_cast<Arena*>(p); });
    const Arena* raw = arena.release();
    py::dict out;
    for (const auto& e : raw->entries) {
        std::vector<py::ssize_t> shape(e.plan.weights_shape.begin(), e.plan.weights_shape.end());
        py::array w(npdt, shape, base + e.weights_offset, owner);
        py::array b(npdt, std::vector<py::ssize_t>{static_cast<py::ssize_t>(e.plan.biases_count)},
                    base + e.biases_offset, owner);
        out[py::int_(e.plan.layer)] = py::make_tuple(w, b);
    }
    return py::make_tuple(out, overflow);
}

void* checked_target(py::array a, const FusePlan& plan, bool weights, DType dt) {
    const std::vector<std::int64_t> want =
        weights ? plan.weights_shape : std::vector<std::int64_t>{plan.biases_count};
    std::string what = "layer " + std::to_string(plan.layer) + (weights ? " weights" : " biases");
    if (!a.dtype().is(numpy_dtype(dt))) {
        throw std::invalid_argument(what + ": the target has dtype " +
                                    std::string(py::str(a.dtype())) + ", expected " +
                                    std::string(py::str(numpy_dtype(dt))));
    }
    bool shape_ok = a.ndim() == static_cast<py::ssize_t>(want.size());
    for (std::size_t k = 0; shape_ok && k < want.size(); ++k) {
        shape_ok = a.shape(static_cast<py::ssize_t>(k)) == want[k];
    }
    if (!shape_ok) {
        std::string s = "(";
        for (auto d : want) s += std::to_string(d) + ",";
        throw std::invalid_argument(what + ": the target's shape differs from " + s + ")");
    }
    if (!(a.flags() & py::array::c_style) || !a.writeable()) {
        throw std::invalid_argument(what + ": the target must be C-contiguous and writeable");
    }
    // The kernels store through float* / uint16_t*: a misaligned target
    // (np.frombuffer(..., offset=1)) would be undefined behaviour.
    void* data = a.mutable_data();
    const std::size_t align = dt == DType::float32 ? alignof(float) : alignof(std::uint16_t);
    const auto address = reinterpret_cast<std::uintptr_t>(data);
    if (address % align != 0) {
        char hex[2 + 2 * sizeof(std::uintptr_t) + 1];
        std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(address));
        throw std::invalid_argument(
            what + " (targets[" + std::to_string(plan.layer) + "][" + (weights ? "0" : "1") +
            "]): the target's data at " + hex + " is not aligned to " + std::to_string(align) +
            " bytes, as " +
            (dt == DType::float32 ? "float32" : dt == DType::float16 ? "float16" : "bfloat16") +
            " needs; pass an aligned array (np.empty, or a copy)");
    }
    return data;
}

std::int64_t fuse_into(const PyWeights& self, const py::dict& targets,
                       const std::optional<std::string>& conv_layout,
                       const std::optional<std::string>& dense_layout,
                       const std::string& dtype, const std::string& flatten, int threads) {
    const Weights& w = *self.weights;
    const FuseOptions options =
        parse_fuse_options(conv_layout.value_or(""), dense_layout.value_or(""), dtype, flatten,
                           true);
    const DType dt = options.dtype;
    std::vector<FusePlan> plans;
    std::vector<std::pair<void*, void*>> outputs;
    std::vector<py::object> keep;  // the arrays stay referenced while the GIL is released
    for (auto item : targets) {
        int i = checked_index(w, py::cast<std::int64_t>(item.first));
        auto pair = py::cast<py::tuple>(item.second);
        if (pair.size() != 2) {
            throw std::invalid_argument("targets[" + std::to_string(i) +
                                        "] must be a (weights, biases) pair");
        }
        FusePlan plan = plan_fused(w, i, options);
        auto wa = py::cast<py::array>(pair[0]);
        auto ba = py::cast<py::array>(pair[1]);
        outputs.emplace_back(checked_target(wa, plan, true, dt),
                             checked_target(ba, plan, false, dt));
        keep.push_back(wa);
        keep.push_back(ba);
        plans.push_back(std::move(plan));
    }
    FuseReport r;
    {
        GilRelease release;
        r = run_fused_parallel(plans, outputs, threads);
    }
    return r.overflow;
}

void read_params_into(const PyWeights& self, const py::list& targets, int threads) {
    const Weights& w = *self.weights;
    std::vector<Weights::ParamCopy> copies;
    std::vector<py::object> keep;  // the arrays stay referenced while the GIL is released
    copies.reserve(targets.size());
    for (auto item : targets) {
        auto target = py::cast<py::tuple>(item);
        if (target.size() != 3 && target.size() != 4) {
            throw std::invalid_argument(
                "each target must be (layer, parameter name, array) or (layer, parameter name, "
                "address, bytes)");
        }
        const int i = checked_index(w, py::cast<std::int64_t>(target[0]));
        const auto name = py::cast<std::string>(target[1]);
        const LayerInfo& layer = w.config().layers[static_cast<std::size_t>(i)];
        std::size_t k = 0;
        while (k < layer.params.size() && layer.params[k].name() != name) ++k;
        if (k == layer.params.size()) {
            throw std::invalid_argument("layer " + std::to_string(i) + " has no parameter " + name);
        }
        const std::int64_t count = layer.params[k].count;
        const std::string where = "the target of layer " + std::to_string(i) + " " + name;
        if (target.size() == 4) {
            // Memory the caller owns and keeps alive (a torch tensor's storage,
            // checked by the caller to be CPU float32 and contiguous).
            const auto address = py::cast<std::uintptr_t>(target[2]);
            const auto bytes = py::cast<std::int64_t>(target[3]);
            if (address == 0 || bytes != 4 * count) {
                throw std::invalid_argument(where + " has " + std::to_string(bytes) +
                                            " bytes at " + std::to_string(address) + ", not " +
                                            std::to_string(4 * count));
            }
            copies.push_back({i, k, reinterpret_cast<void*>(address)});
            continue;
        }
        auto a = py::cast<py::array>(target[2]);
        if (!a.dtype().is(py::dtype::of<float>())) {
            throw std::invalid_argument(where + " is " + py::str(a.dtype()).cast<std::string>() +
                                        ", not float32");
        }
        if (!(a.flags() & py::array::c_style) || !a.writeable()) {
            throw std::invalid_argument(where + " must be writeable and C-contiguous");
        }
        if (a.size() != count) {
            throw std::invalid_argument(where + " has " + std::to_string(a.size()) +
                                        " elements, not " + std::to_string(count));
        }
        copies.push_back({i, k, a.mutable_data()});
        keep.push_back(a);
    }
    GilRelease release;
    w.copy_params(copies, threads);
}

}  // namespace

PyWeights wrap_weights(std::shared_ptr<const Weights> weights) {
    const auto& file = weights->file();
    py::object owner = py::cast(PyMapping{file});
    py::array raw(py::dtype::of<std::uint8_t>(),
                  std::vector<py::ssize_t>{static_cast<py::ssize_t>(file->size())},
                  std::vector<py::ssize_t>{1}, file->data(), owner);
    clear_writeable(raw);
    return PyWeights{std::move(weights), std::move(raw)};
}

void register_weights(py::module_& m) {
    py::class_<PyMapping>(m, "Mapping", "Owner of a read-only file mapping.")
        .def_property_readonly("path", [](const PyMapping& s) { return to_py_path(s.file->path()); })
        .def_property_readonly(
            "file_id",
            [](const PyMapping& s) -> py::object {
                // (st_dev, st_ino) of the very file mapped (its kept descriptor, even
                // after its name was replaced); None for a private copy.
                const platform::UniqueFd fd(s.file->reopen());
                if (fd.get() < 0) return py::none();
                platform::FileInfo info;
                if (!platform::try_stat_fd(fd.get(), info)) return py::none();
                return py::make_tuple(info.device, info.inode);
            },
            "(st_dev, st_ino) of the mapped file, or None for a private copy.");

    py::class_<PyWeights>(m, "Weights", "A mapped .weights file checked against a Config.")
        .def(py::init([](const PyConfig& config, const std::filesystem::path& path, bool partial,
                         bool copy) {
                 std::shared_ptr<const MappedFile> file;
                 {
                     GilRelease release;  // copy=True reads the whole file
                     file = std::make_shared<const MappedFile>(path.string(), copy);
                 }
                 return wrap_weights(std::make_shared<const Weights>(config.ptr, file, partial));
             }),
             py::arg("config"), py::arg("path"), py::arg("partial") = false, py::arg("copy") = false)
        .def_property_readonly("header",
                               [](const PyWeights& s) {
                                   const Header& h = s.weights->header();
                                   return py::make_tuple(h.major, h.minor, h.revision, h.seen,
                                                         h.size, h.transpose);
                               })
        .def_property_readonly("path", [](const PyWeights& s) { return to_py_path(s.weights->file()->path()); })
        .def_property_readonly("covered_layers",
                               [](const PyWeights& s) { return s.weights->covered_layers(); })
        .def_property_readonly("raw",
                               [](const PyWeights& s) {
                                   // The first layer lost, if a layer's data is.
                                   s.weights->check_held(0, s.weights->covered_layers());
                                   const MappedFile& file = *s.weights->file();
                                   file.check_holds(0, file.size(), [] {
                                       return std::string("the whole file (raw)");
                                   });
                                   return s.raw;
                               })
        .def(
            "offset",
            [](const PyWeights& s, std::int64_t i) {
                return s.weights->offset(checked_index(*s.weights, i));
            },
            py::arg("i"), "Byte offset of layer i's data.")
        .def(
            "loaded",
            [](const PyWeights& s, std::int64_t i) {
                return s.weights->loaded(checked_index(*s.weights, i));
            },
            py::arg("i"), "Whether layer i's data is in the file.")
        .def(
            "evict",
            [](const PyWeights& s, std::int64_t i) { s.weights->evict(checked_index(*s.weights, i)); },
            py::arg("i"), "Drops layer i's pages from the resident set (the page cache keeps them).")
        .def("params", &layer_params, py::arg("i"), "Read-only views of layer i's arrays.")
        .def("fused", &fused, py::arg("i"), py::arg("layout") = py::none(), py::arg("dtype") = "float32",
             py::arg("flatten") = "auto", py::arg("fuse") = true, py::arg("threads") = 1,
             "(weights, biases, overflow count) of layer i, BN fused, in layout (None: the "
             "kind's default) and dtype; a large layer's parts shared by `threads` threads.")
        .def("fused_all", &fused_all, py::arg("conv_layout"), py::arg("dense_layout"), py::arg("dtype"), py::arg("flatten"),
             py::arg("threads"), py::arg("fuse") = true, py::arg("first") = 0, py::arg("last") = -1,
             "({layer: (weights, biases)}, overflow count): one arena. dense_layout None: IO "
             "beside HWIO/OHWI, else OI. Only layers first..last-1 (last -1: to the end).")
        .def(
            "fused_shapes",
            [](const PyWeights& self, const std::optional<std::string>& conv_layout,
               const std::optional<std::string>& dense_layout, const std::string& dtype,
               const std::string& flatten, bool fuse) {
                const FuseOptions options = parse_fuse_options(
                    conv_layout.value_or(""), dense_layout.value_or(""), dtype, flatten, fuse);
                py::dict out;
                for (const FusePlan& p : plan_network(*self.weights, options)) {
                    py::tuple shape(p.weights_shape.size());
                    for (std::size_t k = 0; k < p.weights_shape.size(); ++k) {
                        shape[k] = py::int_(p.weights_shape[k]);
                    }
                    out[py::int_(p.layer)] = py::make_tuple(shape, p.biases_count);
                }
                return out;
            },
            py::arg("conv_layout"), py::arg("dense_layout"), py::arg("dtype"), py::arg("flatten"), py::arg("fuse"),
            "{layer: (weights shape, biases count)} of what fused_all() would compute, "
            "computing nothing.")
        .def("read_params_into", &read_params_into, py::arg("targets"), py::arg("threads"),
             "Copy parameters out of the file with pread and threads into [(layer, name, "
             "float32 C-contiguous array)] or [(layer, name, address, bytes)] (caller-owned "
             "memory); every target is checked before the first byte.")
        .def("fuse_into", &fuse_into, py::arg("targets"), py::arg("conv_layout"), py::arg("dense_layout"), py::arg("dtype"),
             py::arg("flatten"), py::arg("threads"), "Fill caller buffers {layer: (w, b)}; overflow count.");

    py::class_<FusedWalk>(m, "FusedWalk",
                          "Layer.fused() for a walk over a network's layers in order: the next "
                          "layers are fused ahead by the core's pool (FusedWalk in fused.hpp).")
        .def(py::init([](const PyWeights& w) { return std::make_unique<FusedWalk>(w.weights); }),
             py::arg("weights"))
        .def("fused", &walk_fused, py::arg("weights"), py::arg("i"),
             py::arg("layout") = py::none(),
             py::arg("dtype") = "float32", py::arg("flatten") = "auto", py::arg("fuse") = true,
             py::arg("threads") = 1, "As Weights.fused(); the next layers are fused ahead.")
        .def("cancel", [](FusedWalk& w) {
                GilRelease release;
                w.cancel();
            }, "Stops the lookahead and drops what it fused.")
        .def_property_readonly("_ahead", &FusedWalk::ahead, "Layers fused ahead now (tests).")
        .def_property_readonly("_taken", &FusedWalk::taken,
                               "Results taken from the lookahead so far (tests).");

    m.def("release_cached_memory", &arena_release_cached,
          "Unmap the cached arena of a freed fused_all() result; bytes released.");
    m.def("_arena_cached_bytes", &arena_cached_bytes,
          "Bytes of the cached arena now (for tests).");
    m.def("_fusion_parts", &fusion_parts_run,
          "Parts of layers fused so far in this process (for tests).");
    m.def(
        "_shrink_before_fusion_reads",
        [](const std::filesystem::path& path, std::int64_t size) {
            set_fusion_read_hook([file = path.string(), size] {
                platform::truncate_path(file, size);
            });
        },
        py::arg("path"), py::arg("size"),
        "Truncate path to size in the next fusion call, after its plans and before its first "
        "read of the file (for tests).");
    m.def(
        "weights_problem",
        [](const std::filesystem::path& path) -> py::object {
            const MappedFile file(path.string());
            const auto* data = reinterpret_cast<const char*>(file.data());
            auto problem = why_not_weights(FileHead{
                std::string_view(data, static_cast<std::size_t>(file.size())), file.size(),
                path.string()});
            if (!problem) return py::none();
            return py::make_tuple(problem->kind, to_py_str(problem->why));
        },
        py::arg("path"),
        "(kind, reason) when the file cannot be a .weights file (text, an archive, empty, ...), "
        "else None.");
    m.def(
        "read_header",
        [](const std::filesystem::path& path) {
            const MappedFile file(path.string());
            const Header h = read_header(file);
            return py::make_tuple(h.major, h.minor, h.revision, h.seen, h.size, h.transpose,
                                  file.size());
        },
        py::arg("path"),
        "(major, minor, revision, seen, header size, transpose, file size) of a .weights file.");
    m.def("header_size_for", &header_size_for, py::arg("major"), py::arg("minor"),
          "Header bytes (16 or 20) implied by a version.");
    m.def("header_version_problem", &header_version_problem, py::arg("major"), py::arg("minor"),
          py::arg("revision"),
          "Why readers and writers refuse this header version (e.g. 'has a negative "
          "version (-1.2.0): ...'), or None.");
}

}  // namespace yolo_io::bindings
