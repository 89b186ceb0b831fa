// yolo_io._core.Config / LayerInfo: the parsed cfg and its layer model.
#include <algorithm>
#include <string>

#include "common.hpp"
#include "yolo_io/sniff.hpp"
#include "yolo_io/writer.hpp"

namespace yolo_io::bindings {

namespace {

py::tuple shape_tuple(const Shape3& s) { return py::make_tuple(s.c, s.h, s.w); }

// The options of a section as darknet reads them: the first copy of each key
// (a copy without '=' reads as absent and hides later ones), as
// (key, value, line) tuples.
py::list section_options(const CfgSection& s) {
    py::list out;
    std::vector<std::string_view> seen;
    seen.reserve(s.options.size());
    for (const auto& o : s.options) {
        if (std::find(seen.begin(), seen.end(), o.key) != seen.end()) {
            continue;
        }
        seen.push_back(o.key);
        if (o.has_value) {
            out.append(py::make_tuple(to_py_str(o.key), to_py_str(o.value), o.line));
        }
    }
    return out;
}

// An attribute as the Python value it stands for: None, bool, int, float,
// str, or a tuple (of ints, or of int or float pairs).
py::object attr_value(const Config& c, const Attr& a) {
    switch (a.type) {
        case Attr::Type::none: return py::none();
        case Attr::Type::flag: return py::bool_(a.integer != 0);
        case Attr::Type::integer: return py::int_(a.integer);
        case Attr::Type::real: return py::float_(a.real);
        case Attr::Type::name: return to_py_str(a.text);
        case Attr::Type::ints: {
            py::tuple t(a.count);
            for (std::size_t k = 0; k < a.count; ++k) t[k] = c.attrs.ints[a.offset + k];
            return t;
        }
        case Attr::Type::int_pairs:
        case Attr::Type::real_pairs: {
            py::tuple t(a.count / 2);
            for (std::size_t k = 0; k < a.count / 2; ++k) {
                const std::size_t at = a.offset + 2 * k;
                if (a.type == Attr::Type::int_pairs) {
                    t[k] = py::make_tuple(c.attrs.ints[at], c.attrs.ints[at + 1]);
                } else {
                    t[k] = py::make_tuple(c.attrs.reals[at], c.attrs.reals[at + 1]);
                }
            }
            return t;
        }
    }
    return py::none();
}

py::object none_if_empty(std::string_view v) {
    return v.empty() ? py::object(py::none()) : py::object(to_py_str(v));
}

const LayerInfo& layer_at(const PyConfig& c, std::int64_t i) {
    return c.ptr->layers[static_cast<std::size_t>(checked_layer_index(*c.ptr, i))];
}

}  // namespace

void register_config(py::module_& m) {
    // LayerInfo objects are handed out by Config.layer() with
    // reference_internal: they keep their Config alive.
    py::class_<LayerInfo>(m, "LayerInfo", "One layer of a parsed cfg (read-only).")
        .def_readonly("index", &LayerInfo::index)
        .def_property_readonly("type", [](const LayerInfo& l) { return to_py_str(l.type); })
        .def_property_readonly("section", [](const LayerInfo& l) { return to_py_str(l.section); })
        .def_readonly("line", &LayerInfo::line)
        .def_property_readonly("inputs",
                               [](const LayerInfo& l) {
                                   py::tuple t(l.inputs.size());
                                   for (std::size_t i = 0; i < l.inputs.size(); ++i) {
                                       t[i] = l.inputs[i];
                                   }
                                   return t;
                               })
        .def_property_readonly("input_shape",
                               [](const LayerInfo& l) { return shape_tuple(l.input_shape); })
        .def_property_readonly("input_shapes",
                               [](const LayerInfo& l) {
                                   const std::vector<Shape3> shapes = l.all_input_shapes();
                                   py::tuple t(shapes.size());
                                   for (std::size_t k = 0; k < shapes.size(); ++k) {
                                       t[k] = shape_tuple(shapes[k]);
                                   }
                                   return t;
                               })
        .def_property_readonly("fusion",
                               [](const LayerInfo& l) {
                                   const FuseAs as = l.kind_info().fuse;
                                   return none_if_empty(as == FuseAs::conv    ? "conv"
                                                        : as == FuseAs::dense ? "dense"
                                                                              : "");
                               })
        .def_property_readonly("attrs_class",
                               [](const LayerInfo& l) { return to_py_str(l.kind_info().attrs); })
        .def_property_readonly("default_layout",
                               [](const LayerInfo& l) {
                                   return none_if_empty(l.kind_info().default_layout());
                               })
        .def_property_readonly("output_shape",
                               [](const LayerInfo& l) { return shape_tuple(l.output_shape); })
        .def_property_readonly("activation",
                               [](const LayerInfo& l) { return none_if_empty(l.activation); })
        .def_readonly("nfloats", &LayerInfo::nfloats)
        .def_readonly("dontload", &LayerInfo::dontload)
        .def_property_readonly("share_index",
                               [](const LayerInfo& l) -> py::object {
                                   if (l.share_index < 0) return py::none();
                                   return py::int_(l.share_index);
                               })
        .def_property_readonly("param_specs", [](const LayerInfo& l) {
            py::list out;
            for (const auto& p : l.params) {
                py::tuple shape(static_cast<std::size_t>(p.ndim));
                for (int k = 0; k < p.ndim; ++k) {
                    shape[static_cast<std::size_t>(k)] = p.shape[static_cast<std::size_t>(k)];
                }
                out.append(py::make_tuple(p.name(), shape, p.offset, p.count));
            }
            return out;
        })
        .def(
            "file_strides",
            [](const LayerInfo& l, bool transpose) {
                py::list out;
                for (const auto& p : l.params) {
                    py::tuple strides(static_cast<std::size_t>(p.ndim));
                    const auto elements = file_element_strides(p, transpose);
                    for (std::size_t k = 0; k < elements.size(); ++k) strides[k] = 4 * elements[k];
                    out.append(strides);
                }
                return out;
            },
            py::arg("transpose"),
            "Byte strides of each parameter as stored in a file (in param_specs order); "
            "transpose: the header's legacy flag.");

    py::class_<PyConfig>(m, "Config", "A parsed .cfg: [net] and the layer model.")
        .def_property_readonly("path", [](const PyConfig& c) { return to_py_path(c.ptr->path); })
        .def_property_readonly(
            "net_options",
            [](const PyConfig& c) { return section_options(c.ptr->net_section()); })
        .def(
            "layer_options",
            [](const PyConfig& c, std::int64_t i) {
                return section_options(c.ptr->section_of(
                    static_cast<std::size_t>(layer_at(c, i).index)));
            },
            py::arg("i"), "Options of layer i as (key, value, line).")
        .def(
            "layer_attrs",
            [](const PyConfig& c, std::int64_t i) {
                const LayerInfo& l = layer_at(c, i);
                py::list out;
                for (const Attr* a = c.ptr->attrs_begin(l); a != c.ptr->attrs_end(l); ++a) {
                    out.append(py::make_tuple(to_py_str(a->name), attr_value(*c.ptr, *a)));
                }
                return out;
            },
            py::arg("i"), "Typed hyperparameters of layer i as (name, value).")
        .def_property_readonly("input_shape",
                               [](const PyConfig& c) { return shape_tuple(c.ptr->input_shape); })
        .def_property_readonly("input_size", [](const PyConfig& c) { return c.ptr->input_size; })
        .def_property_readonly(
            "net_attrs",
            [](const PyConfig& c) {
                const NetInfo& n = c.ptr->net;
                py::list out;
                out.append(py::make_tuple("width", n.width));
                out.append(py::make_tuple("height", n.height));
                out.append(py::make_tuple("channels", n.channels));
                out.append(py::make_tuple("inputs", n.inputs));
                out.append(py::make_tuple("letter_box", n.letter_box));
                return out;
            },
            "The typed [net] options as (name, value).")
        .def_property_readonly(
            "source", [](const PyConfig& c) { return py::bytes(c.ptr->text.source); },
            "The cfg's bytes as given (a raw safetensors export stores them).")
        .def_property_readonly("total_floats",
                               [](const PyConfig& c) { return c.ptr->total_floats; })
        .def_property_readonly("diagnostics",
                               [](const PyConfig& c) {
                                   py::list out;
                                   for (const auto& d : c.ptr->diagnostics) {
                                       out.append(py::make_tuple(d.line, to_py_str(d.message)));
                                   }
                                   return out;
                               })
        .def("__len__", [](const PyConfig& c) { return c.ptr->layers.size(); })
        .def("layer", &layer_at, py::arg("i"), py::return_value_policy::reference_internal,
             "Layer i (0-based, darknet's index).")
        .def(
            "expected_bytes",
            [](const PyConfig& c, std::int64_t header_size, std::int64_t layers) {
                if (header_size != 16 && header_size != 20) {
                    throw std::invalid_argument("header_size must be 16 or 20");
                }
                if (layers < 0) {
                    return expected_bytes(*c.ptr, header_size);
                }
                return expected_bytes_upto(*c.ptr, header_size, static_cast<int>(layers));
            },
            py::arg("header_size") = 20, py::arg("layers") = -1,
            "Bytes a .weights file needs (all layers, or the first `layers`).");

    m.def(
        "parse_cfg_text",
        [](const std::string& text, const std::filesystem::path& path) {
            return PyConfig{parse_config(text, path.string())};
        },
        py::arg("text"), // A str default: a path default is converted to pathlib.Path when the
        // module loads, which imported pathlib with every `import yolo_io`.
        py::arg("path") = "<string>", "Parse cfg text.");
    m.def(
        "parse_cfg_file",
        [](const std::filesystem::path& path) {
            std::string text;
            {
                GilRelease release;  // a pipe's writer may take its time
                text = read_text_file(path.string());
            }
            return PyConfig{parse_config(text, path.string())};
        },
        py::arg("path"), "Read and parse a .cfg file.");
    m.def("layer_types", &layer_types, "Canonical names of every layer type.");
    m.def(
        "kind_table",
        [] {
            py::list rows;
            for (const KindInfo* k = kinds_begin(); k != kinds_end(); ++k) {
                py::list sections;
                for (std::string_view s : k->sections) {
                    if (!s.empty()) sections.append(to_py_str(s));
                }
                py::dict row;
                row["name"] = to_py_str(k->name);
                row["sections"] = py::tuple(sections);
                row["stores_params"] = k->has(kStoresParams);
                row["flat"] = k->has(kFlat);
                row["head"] = k->has(kHead);
                row["grid_head"] = k->has(kGridHead);
                row["no_image_out"] = k->has(kNoImageOut);
                row["dontloadscales"] = k->has(kDontloadscales);
                row["training_only"] = k->has(kTrainingOnly);
                row["fusion"] = none_if_empty(k->fuse == FuseAs::conv    ? "conv"
                                              : k->fuse == FuseAs::dense ? "dense"
                                                                         : "");
                row["default_layout"] = none_if_empty(k->default_layout());
                row["attrs"] = to_py_str(k->attrs);
                rows.append(std::move(row));
            }
            return rows;
        },
        "Every layer kind's row of the core's kind table (kinds.cpp), [net] excluded, in "
        "table order: its name, sections and facts.");
    m.def(
        "atoi", [](std::string_view s) { return c_atoi(s); }, py::arg("text"),
        "darknet's atoi() of an option value (or a .data value), whose whitespace darknet "
        "deleted: a sign and digits, 0 without; saturated to int32.");
    m.def(
        "sniff_file",
        [](const std::filesystem::path& path) { return kind_name(sniff_file(path.string())); },
        py::arg("path"), "What the first 4 KiB of a file look like: 'cfg', 'weights', 'safetensors' or "
        "'other'.");
}

}  // namespace yolo_io::bindings
