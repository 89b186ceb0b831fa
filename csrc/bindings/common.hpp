// First include of every binding TU: pybind11, the NumPy helpers, and the
// Python-side wrappers of core objects.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <memory>
#include <string_view>

#include "yolo_io/mapped_file.hpp"
#include "yolo_io/model.hpp"
#include "yolo_io/weights.hpp"

namespace py = pybind11;

namespace yolo_io::bindings {

// Releases the GIL around a core call, as py::gil_scoped_release does, but
// its destructor may throw. A daemon thread that takes the GIL back while the
// interpreter is finalizing is ended by CPython with pthread_exit, whose
// forced unwind runs up through this destructor; through pybind11's noexcept
// one it became std::terminate, an abort at exit while a daemon thread was in
// a call (tests/test_pool.py). pybind11's dispatcher lets the unwind pass.
class GilRelease {
public:
    GilRelease() : state_(PyEval_SaveThread()) {}
    ~GilRelease() noexcept(false) { PyEval_RestoreThread(state_); }
    GilRelease(const GilRelease&) = delete;
    GilRelease& operator=(const GilRelease&) = delete;

private:
    PyThreadState* state_;
};

// Python holder of a parsed config (pybind11 holders cannot be shared_ptr<const T>).
struct PyConfig {
    std::shared_ptr<const Config> ptr;
};

// Keeps a mapping alive: the base object of every view into it.
struct PyMapping {
    std::shared_ptr<const MappedFile> file;
};

// A weights file bound to a config, plus the read-only uint8 array of the
// whole file that every parameter view uses as its base.
struct PyWeights {
    std::shared_ptr<const Weights> weights;
    py::array raw;
};

// A core string as a Python str. A cfg need not be UTF-8 (darknet reads bytes),
// so cfg text, and messages and paths quoting it, decode as UTF-8 with
// errors="backslashreplace": a byte that is not UTF-8 shows as \xNN.
inline py::str to_py_str(std::string_view s) {
    PyObject* str =
        PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "backslashreplace");
    if (str == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(str);
}

// A file name from the core as a Python str, decoded as os.fsdecode() does
// (surrogateescape): a name in any encoding comes back as the same name, and
// goes back to the core unchanged. File names come in as std::filesystem::path
// (str, bytes or os.PathLike, encoded as os.fsencode() does).
inline py::str to_py_path(std::string_view s) {
    PyObject* str = PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    if (str == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(str);
}

// The Python object of a bound weights file: its whole mapping as a
// read-only uint8 array beside it.
PyWeights wrap_weights(std::shared_ptr<const Weights> weights);

void register_errors(py::module_& m);
void register_config(py::module_& m);
void register_weights(py::module_& m);
void register_writer(py::module_& m);
void register_safetensors(py::module_& m);

}  // namespace yolo_io::bindings
